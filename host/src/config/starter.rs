//! The commented starter config `c41 init` writes, for the studio's two
//! machines: the Mac ("the brain", Ollama) and the GPU workstation ("the
//! forge", ComfyUI, MMAudio, HuMo).

/// The starter config text. `output_dir` is filled in by the caller.
pub fn starter_config(output_dir: &str) -> String {
    format!(
        r#"# c41 config. Everything a skill may reach is granted here, and nothing else.
# Docs: README.md ("Config" and "Sandbox model"). Check it with `c41 doctor`.

# Where skills' files (images, videos, audio) are stored.
output-dir = "{output_dir}"

# Extra skill components (*.wasm) to load. They get no grants unless a
# [skills.<name>] table below names them.
# skills-dir = "~/.config/c41/skills"

# ---------------------------------------------------------------------------
# Services: name = base URL. A grant is scheme + host + port, matched exactly:
# granting http://10.0.0.5:8188 does not open any other port on 10.0.0.5.
# `kind` defaults to the name (or the part before "-": comfyui-2 is a comfyui).
# ---------------------------------------------------------------------------

# The Mac Studio: Ollama (native API and /v1).
[services.ollama]
url = "http://127.0.0.1:11434"

# The GPU workstation on the LAN: ComfyUI (Flux 2 Dev, Z-Image, Wan 2.2, HuMo).
[services.comfyui]
url = "http://forge.local:8188"
# token = "..."            # if a bearer-token proxy sits in front of it
# token-env = "COMFY_TOKEN"  # or read the token from this environment variable

# A second workstation later: another comfyui backend.
# [services.comfyui-2]
# url = "http://forge2.local:8188"

# The workstation's standalone model servers: MMAudio (sound for a video or
# a prompt) and the HuMo wrapper (talking portrait from an image and a voice).
[services.mmaudio]
url = "http://forge.local:8000"
[services.humo]
url = "http://forge.local:8001"

# Light text-to-speech on the Mac (an OpenAI-style /v1/audio/speech server
# such as Kokoro-FastAPI).
[services.tts]
url = "http://127.0.0.1:8880"

# ---------------------------------------------------------------------------
# Limits for every invocation (per skill below overrides).
# ---------------------------------------------------------------------------
[limits]
memory-mb = 512          # all memories and tables of the component, plus header bytes the host holds
timeout-secs = 1800      # wall-clock deadline of one invocation
max-artifact-mb = 8192   # largest single file a skill may store
# max-output-mb = 16384   # all files of one call together
# open-files = 64         # input files and artifact writers open at once
# connections = 32        # HTTP requests in flight and websockets at once

# ---------------------------------------------------------------------------
# Skills: what each one may reach. A grant takes effect only if the skill
# also declares that kind of service (`c41 describe SKILL` lists them).
# ---------------------------------------------------------------------------
[skills.hello-http]
grants = []              # the starter skill; grant it an `http` service to try it

[skills.comfyui-image]
grants = ["comfyui"]     # list several comfyui services: the shortest queue wins
[skills.comfyui-image.settings]
workflow = "flux2-dev"   # or "z-image-turbo"
# poll-ms = 2000         # how often the job is checked besides the websocket
# stall-secs = 15        # a silent websocket is given up after this long
# Your own exported API workflow (see examples/workflows/README.md):
# [skills.comfyui-image.settings.workflows.my-sdxl]
# graph-file = "workflows/sdxl_api.json"
# bindings-file = "workflows/sdxl.bindings.json"

[skills.comfyui-video]
grants = ["comfyui"]
[skills.comfyui-video.settings]
workflow = "wan22-t2v"        # text->video
image-workflow = "wan22-i2v"  # used when an `image` is given
[skills.comfyui-video.limits]
timeout-secs = 3600

[skills.lora-train]
grants = ["comfyui"]     # trains on the workstation with ComfyUI's own trainer nodes
# [skills.lora-train.settings]
# base = "z-image"       # the base workflow; add your own under settings.workflows
[skills.lora-train.limits]
timeout-secs = 14400     # a training takes tens of minutes; agents get it through c41__wait
max-output-mb = 4096

[skills.tts]
grants = ["tts"]
[skills.tts.settings]
voice = "alloy"          # the server's voice names: GET /v1/audio/voices
# model = "tts-1"
# format = "mp3"         # mp3, wav, flac or pcm

[skills.audio-gen]
grants = ["mmaudio"]
# [skills.audio-gen.settings]
# seconds = 8
# steps = 25

[skills.lip-sync]
grants = ["humo"]
[skills.lip-sync.limits]
timeout-secs = 3600

[skills.llm-route]
grants = ["ollama"]

# Task class -> models, best first (also the fallback order). A loaded model
# is preferred unless the route says prefer-loaded = false. See
# examples/configs/llm-route.toml for every option.
[skills.llm-route.settings]
default-route = "fast"
[skills.llm-route.settings.routes]
creative = ["kimi-k2", "minimax-m2.1", "gpt-oss:120b"]
coding = ["qwen3-coder:480b", "gpt-oss:120b"]
fast = ["gpt-oss:120b"]
reasoning = {{ models = ["deepseek-v3.2", "gpt-oss:120b"], prefer-loaded = false }}
balanced = ["minimax-m2.1", "kimi-k2", "gpt-oss:120b"]
[skills.llm-route.settings.aliases]
coder = "qwen3-coder:480b"
fast = "gpt-oss:120b"
"#
    )
}
