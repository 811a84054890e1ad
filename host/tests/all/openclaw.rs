//! A real OpenClaw agent (the npm package, run headless with
//! `openclaw agent exec`) using c41, end to end: OpenClaw starts `c41 mcp`,
//! lists its tools to the model, calls one, and delivers the image the
//! sandboxed skill stored. And the SKILL.md route: OpenClaw loads the folders
//! `c41 export-skills` writes, the model reads one and runs its command with
//! OpenClaw's `exec` tool.
//!
//! Only the model is scripted: a loopback OpenAI-compatible
//! `/v1/chat/completions` server in this test, which answers the way a real
//! model would (a tool call, then a final reply repeating the `MEDIA:` line)
//! and records what OpenClaw sent it. The studio is the in-process simulator.
//!
//! Needs `tests/openclaw/setup.sh` to have run (Node 26 and OpenClaw from the
//! npm registry into target/openclaw; CI runs it first); without it the tests
//! fail under `CI` and are skipped otherwise.

use crate::common::*;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One agent run gets this long (a run takes ~20-30 s on 2 cores).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// The two agent runs share 2 cores: one at a time.
pub(crate) static AGENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_calls_the_c41_mcp_tool_and_delivers_the_image() {
    let Some(oc) = openclaw_setup() else { return };
    let _one_at_a_time = AGENT.lock().await;
    let Scene { studio: _studio, dir, workspace, out_dir, cfg } = Scene::new().await;

    let model = FakeModel::start(red_fox()).await;

    let home = dir.path().join("home");
    let config = write_openclaw_config(&home, model.addr, c41_mcp_server(&cfg));
    let run = run_agent(&oc, &home, &config, &workspace, "Make an image of a red fox", None).await;
    let requests = model.requests();

    // The model saw c41's skills as tools, with their input schemas.
    let first = requests.first().unwrap_or_else(|| panic!("OpenClaw never called the model\n{}", run.logs()));
    let names = tool_names(first);
    let tool = names
        .iter()
        .find(|n| n.ends_with("comfyui-image"))
        .unwrap_or_else(|| panic!("c41's tools reach the model: {names:?}\n{}", run.logs()))
        .clone();
    assert_eq!(tool, "c41__comfyui-image", "OpenClaw names MCP tools <server>__<tool>");
    for skill in ["c41__comfyui-video", "c41__hello-http", "c41__llm-route"] {
        assert!(names.iter().any(|n| n == skill), "{skill} is offered too: {names:?}");
    }
    let schema = &tool_def(first, &tool)["function"]["parameters"];
    assert_eq!(schema["properties"]["prompt"]["type"], "string", "{schema}");

    // OpenClaw called the tool through `c41 mcp` and fed its result back.
    let (called, result) = requests
        .iter()
        .find_map(last_tool_result)
        .unwrap_or_else(|| panic!("no tool result reached the model\n{}", run.logs()));
    assert_eq!(called, tool);
    let media = media_lines(&result);
    assert_eq!(media.len(), 1, "one MEDIA line in the tool result: {result}");
    let png = PathBuf::from(media[0].strip_prefix("MEDIA:").unwrap());

    // The agent run succeeded and delivered that file as an attachment.
    assert_eq!(run.code, Some(0), "openclaw agent exec exits 0\n{}", run.logs());
    let env = &run.envelope;
    assert_eq!(env["ok"], true, "{env:#}");
    assert_eq!(env["status"], "ok");
    assert_eq!(env["provider"], "fake");
    assert_eq!(env["toolSummary"]["tools"], json!([tool]), "{env:#}");
    assert_eq!(env["toolSummary"]["calls"], 1);
    assert_eq!(env["toolSummary"]["failures"].as_u64().unwrap_or(0), 0, "{env:#}");
    assert_eq!(delivered_media(env), vec![png.display().to_string()], "{env:#}");
    assert!(
        !env["final"].as_str().unwrap_or("").contains("MEDIA:"),
        "MEDIA lines become attachments, not text: {env:#}"
    );
    assert_real_png(&png, &out_dir);
    assert_eq!(requests.len(), 2, "one tool call, one final reply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_runs_an_exported_skill_md_with_exec() {
    let Some(oc) = openclaw_setup() else { return };
    let _one_at_a_time = AGENT.lock().await;
    let Scene { studio: _studio, dir, workspace, out_dir, cfg } = Scene::new().await;

    // `c41 export-skills` into the workspace's skills/ folder, the first place
    // OpenClaw loads skills from.
    let skills = workspace.join("skills");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_c41"))
        .arg("--config")
        .arg(&cfg)
        .arg("export-skills")
        .arg(&skills)
        .env("C41_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "export-skills: {}", String::from_utf8_lossy(&out.stderr));
    let skill_md = skills.join("comfyui-image/SKILL.md");
    assert!(skill_md.is_file());

    let input = json!({"prompt": "a red fox", "width": 256, "height": 256}).to_string();
    let model = FakeModel::start(Arc::new(move |req: &Value| {
        match last_tool_result(req) {
            // Pick the skill from the list in the system prompt and read it,
            // as OpenClaw's prompt says to.
            None => match skill_location(req, "comfyui-image") {
                Some(path) => Turn::Call("read".into(), json!({"path": path})),
                None => Turn::Say("fake model: comfyui-image is not in <available_skills>".into()),
            },
            // Run the command SKILL.md gives, with our input.
            Some((tool, text)) if tool == "read" => match skill_command(&text) {
                Some(cmd) => Turn::Call(
                    "exec".into(),
                    json!({
                        "title": "generate the image",
                        "command": cmd.replace("'<JSON object>'", &format!("'{input}'")),
                        "yieldMs": 120_000,
                        "timeoutSeconds": 120,
                    }),
                ),
                None => Turn::Say(format!("fake model: no c41 command in the skill file: {text}")),
            },
            Some((_, text)) => Turn::Say(format!("Here is your red fox.\n{}", media_lines(&text).join("\n"))),
        }
    }))
    .await;

    let home = dir.path().join("home");
    let config = write_openclaw_config(&home, model.addr, json!({}));
    // SKILL.md requires the `c41` binary on PATH (metadata.openclaw.requires.bins).
    let c41_dir = Path::new(env!("CARGO_BIN_EXE_c41")).parent().unwrap();
    let run = run_agent(&oc, &home, &config, &workspace, "Make an image of a red fox", Some(c41_dir)).await;
    let requests = model.requests();

    let first = requests.first().unwrap_or_else(|| panic!("OpenClaw never called the model\n{}", run.logs()));
    let location = skill_location(first, "comfyui-image")
        .unwrap_or_else(|| panic!("the exported skill is listed in the system prompt\n{}", run.logs()));
    assert_eq!(
        std::fs::canonicalize(expand_home(&location, &home)).unwrap(),
        std::fs::canonicalize(&skill_md).unwrap()
    );

    // The model read SKILL.md, ran its command with exec, and got MEDIA back.
    let results: Vec<(String, String)> = requests.iter().filter_map(last_tool_result).collect();
    let read = results.iter().find(|(t, _)| t == "read").unwrap_or_else(|| panic!("{results:?}\n{}", run.logs()));
    assert!(read.1.contains("run comfyui-image --input"), "{}", read.1);
    let exec = results.iter().find(|(t, _)| t == "exec").unwrap_or_else(|| panic!("{results:?}\n{}", run.logs()));
    let media = media_lines(&exec.1);
    assert_eq!(media.len(), 1, "one MEDIA line in the command's output: {}\n{}", exec.1, run.logs());
    let png = PathBuf::from(media[0].strip_prefix("MEDIA:").unwrap());

    assert_eq!(run.code, Some(0), "openclaw agent exec exits 0\n{}", run.logs());
    let env = &run.envelope;
    assert_eq!(env["ok"], true, "{env:#}");
    assert_eq!(env["toolSummary"]["tools"], json!(["read", "exec"]), "{env:#}");
    assert_eq!(delivered_media(env), vec![png.display().to_string()], "{env:#}");
    assert_real_png(&png, &out_dir);
    assert_eq!(requests.len(), 3, "read, exec, final reply");
}

/// "Make a fox, voice it, lip-sync it": the agent chains three c41 tools,
/// feeding the files of the first two into the third by the paths their
/// MEDIA lines gave, and delivers the talking-portrait video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_chains_image_voice_and_lip_sync() {
    let Some(oc) = openclaw_setup() else { return };
    let _one_at_a_time = AGENT.lock().await;
    let Scene { studio, dir, workspace, out_dir, cfg } = Scene::new().await;

    let model = FakeModel::start(Arc::new(|req: &Value| {
        let results = tool_results(req);
        let file_of = |tool: &str| {
            results
                .iter()
                .find(|(name, _)| name.ends_with(tool))
                .and_then(|(_, text)| media_lines(text).first().map(|m| m.trim_start_matches("MEDIA:").to_string()))
        };
        let tool = |suffix: &str| tool_names(req).into_iter().find(|n| n.ends_with(suffix));
        match results.len() {
            0 => match tool("comfyui-image") {
                Some(name) => Turn::Call(name, json!({"prompt": "a red fox, portrait", "width": 256, "height": 256})),
                None => Turn::Say("fake model: no comfyui-image tool".into()),
            },
            1 => match tool("tts") {
                Some(name) => Turn::Call(name, json!({"text": "Hello, I am a fox.", "format": "wav"})),
                None => Turn::Say("fake model: no tts tool".into()),
            },
            2 => match (tool("lip-sync"), file_of("comfyui-image"), file_of("tts")) {
                (Some(name), Some(image), Some(audio)) => Turn::Call(
                    name,
                    json!({"image": image, "audio": audio, "prompt": "a fox talking", "width": 128, "height": 128, "fps": 12}),
                ),
                other => Turn::Say(format!("fake model: cannot chain: {other:?}")),
            },
            _ => {
                let (_, text) = results.last().unwrap();
                Turn::Say(format!("Here is your talking fox.\n{}", media_lines(text).join("\n")))
            }
        }
    }))
    .await;

    let home = dir.path().join("home");
    let config = write_openclaw_config(&home, model.addr, c41_mcp_server(&cfg));
    let run = run_agent(&oc, &home, &config, &workspace, "Make a fox, give it a voice, and lip-sync it", None).await;
    let requests = model.requests();
    let last = requests.last().unwrap_or_else(|| panic!("OpenClaw never called the model\n{}", run.logs()));
    let results = tool_results(last);
    let called: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(called, ["c41__comfyui-image", "c41__tts", "c41__lip-sync"], "{}", run.logs());
    for (name, text) in &results {
        assert_eq!(media_lines(text).len(), 1, "{name} returned one file: {text}");
    }
    let video = PathBuf::from(media_lines(&results[2].1)[0].strip_prefix("MEDIA:").unwrap());

    assert_eq!(run.code, Some(0), "openclaw agent exec exits 0\n{}", run.logs());
    let env = &run.envelope;
    assert_eq!(env["ok"], true, "{env:#}");
    assert_eq!(env["toolSummary"]["calls"], 3, "{env:#}");
    assert_eq!(env["toolSummary"]["failures"].as_u64().unwrap_or(0), 0, "{env:#}");
    assert_eq!(delivered_media(env), vec![video.display().to_string()], "{env:#}");

    // The video is a real MP4 in the output dir, made from the portrait and
    // the voice the first two tools stored (HuMo saw both).
    assert!(video.starts_with(&out_dir) && video.extension().is_some_and(|e| e == "mp4"), "{}", video.display());
    let bytes = std::fs::read(&video).unwrap();
    assert_eq!(&bytes[4..8], b"ftyp", "an MP4 file");
    let humo = studio.humo.requests();
    assert_eq!(humo.len(), 1, "one lip-sync request");
    assert_eq!(humo[0].status, 200);
    assert_eq!(humo[0].image_size, Some((256, 256)), "the comfyui-image portrait reached HuMo");
    assert!(humo[0].audio_seconds.is_some_and(|s| s > 0.5), "the tts voice reached HuMo: {:?}", humo[0].audio_seconds);
    assert_eq!(requests.len(), 4, "three tool calls, one final reply");
}

/// A video that takes longer than OpenClaw's MCP request timeout: the call
/// answers `running` before the timeout, the agent calls `c41__wait` until
/// the result comes, and the MP4 is delivered. OpenClaw's timeout is
/// lowered to 5 s and the job takes about 12 s, so the test stays short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_gets_a_video_longer_than_its_request_timeout_through_c41_wait() {
    let Some(oc) = openclaw_setup() else { return };
    let _one_at_a_time = AGENT.lock().await;
    let Scene { studio, dir, workspace, out_dir, cfg } = Scene::new().await;
    // A workstation where each sampler step takes a second.
    let slow = c41_sim::comfyui::ComfySim::new(c41_sim::comfyui::ComfyConfig {
        video_max_side: Some(64),
        ..c41_sim::comfyui::ComfyConfig::default().with_delays(Duration::from_secs(1), Duration::from_millis(100))
    });
    let slow_addr = slow.start("127.0.0.1:0").await.unwrap();
    let studio_comfy = studio.services().into_iter().find(|s| s.0 == "comfyui").unwrap().2;
    let text = std::fs::read_to_string(&cfg).unwrap().replace(&studio_comfy, &format!("http://{slow_addr}"));
    std::fs::write(&cfg, text + "\n[mcp]\nanswer-within-secs = 3\n").unwrap();

    let input = json!({"prompt": "a paper boat on a pond", "seconds": 0.5, "fps": 16, "width": 128, "height": 128, "steps": 10});
    let model = FakeModel::start(Arc::new(move |req: &Value| match last_tool_result(req) {
        None => match tool_names(req).into_iter().find(|n| n.ends_with("comfyui-video")) {
            Some(name) => Turn::Call(name, input.clone()),
            None => Turn::Say(format!("fake model: no comfyui-video tool in {:?}", tool_names(req))),
        },
        Some((_, text)) if !media_lines(&text).is_empty() => {
            Turn::Say(format!("Here is your paper boat.\n{}", media_lines(&text).join("\n")))
        }
        // Still running: do what the result says.
        Some((_, text)) => match run_of(&text) {
            Some(run) if tool_names(req).iter().any(|n| n == "c41__wait") => {
                Turn::Call("c41__wait".into(), json!({"run": run}))
            }
            _ => Turn::Say(format!("fake model: cannot go on from: {text}")),
        },
    }))
    .await;

    let home = dir.path().join("home");
    let mut server = c41_mcp_server(&cfg);
    server["c41"]["requestTimeoutMs"] = json!(5000);
    let config = write_openclaw_config(&home, model.addr, server);
    let run = run_agent(&oc, &home, &config, &workspace, "Make a short video of a paper boat", None).await;
    let requests = model.requests();
    let last = requests.last().unwrap_or_else(|| panic!("OpenClaw never called the model\n{}", run.logs()));
    let results = tool_results(last);
    let called: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(called.first(), Some(&"c41__comfyui-video"), "{called:?}\n{}", run.logs());
    assert!(results[0].1.contains("still running") && results[0].1.contains("c41__wait"), "{}", results[0].1);
    assert!(called[1..].iter().all(|n| *n == "c41__wait") && called.len() >= 2, "{called:?}");
    let (_, final_text) = results.last().unwrap();
    let media = media_lines(final_text);
    assert_eq!(media.len(), 1, "the last wait returned the file: {final_text}");
    let video = PathBuf::from(media[0].strip_prefix("MEDIA:").unwrap());

    // The job really outlasted OpenClaw's request timeout, and no call failed.
    let history = crate::comfyui::http_json(slow_addr, "/history").await;
    let (_, entry) = history.as_object().unwrap().iter().next().expect("the job is in history");
    let stamps: Vec<u64> =
        entry["status"]["messages"].as_array().unwrap().iter().filter_map(|m| m[1]["timestamp"].as_u64()).collect();
    let job_ms = stamps.last().unwrap() - stamps.first().unwrap();
    eprintln!("video job: {job_ms} ms on the simulated workstation; {} wait call(s)", called.len() - 1);
    assert!(job_ms > 5000, "the job took {job_ms} ms, not longer than the 5 s request timeout");
    assert_eq!(run.code, Some(0), "openclaw agent exec exits 0\n{}", run.logs());
    let env = &run.envelope;
    assert_eq!(env["ok"], true, "{env:#}");
    assert_eq!(env["toolSummary"]["failures"].as_u64().unwrap_or(0), 0, "{env:#}");
    assert_eq!(delivered_media(env), vec![video.display().to_string()], "{env:#}");
    assert!(video.starts_with(&out_dir) && video.extension().is_some_and(|e| e == "mp4"), "{}", video.display());
    let bytes = std::fs::read(&video).unwrap();
    assert_eq!(&bytes[4..8], b"ftyp", "an MP4 file");
}

/// The run id a `running` result names (`{"run": "<id>"}` in its text).
fn run_of(text: &str) -> Option<String> {
    let at = text.find(r#"{"run": ""#)? + r#"{"run": ""#.len();
    Some(text[at..].split('"').next()?.to_string())
}

// ---- the scene ------------------------------------------------------------

/// A simulated studio and an agent workspace whose `c41-out` folder is the
/// skills' output dir: skills store files inside the workspace, where
/// OpenClaw's file policy lets the agent read them.
pub(crate) struct Scene {
    pub(crate) studio: c41::studio::SimStudio,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) workspace: PathBuf,
    pub(crate) out_dir: PathBuf,
    /// A c41 config granting every built-in skill the simulated services.
    pub(crate) cfg: PathBuf,
}

impl Scene {
    pub(crate) async fn new() -> Scene {
        let studio = c41::studio::SimStudio::start(c41::studio::SimPorts::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("workspace");
        let out_dir = workspace.join("c41-out");
        std::fs::create_dir_all(&workspace).unwrap();
        let cfg = dir.path().join("c41.toml");
        std::fs::write(&cfg, studio.config_toml(&out_dir.display().to_string())).unwrap();
        Scene { studio, dir, workspace, out_dir, cfg }
    }
}

/// OpenClaw's `mcpServers` entry that starts `c41 mcp` with `cfg`.
fn c41_mcp_server(cfg: &Path) -> Value {
    json!({"c41": {
        "command": env!("CARGO_BIN_EXE_c41"),
        "args": ["mcp", "--config", cfg],
        "env": {"C41_CACHE_DIR": cache_dir()},
    }})
}

// ---- OpenClaw -------------------------------------------------------------

/// Where tests/openclaw/setup.sh put OpenClaw and Node 26.
pub(crate) struct OpenClaw {
    bin: PathBuf,
    node_bin_dir: PathBuf,
}

/// OpenClaw and its Node, from the environment or from the file
/// tests/openclaw/setup.sh writes. `None` (after saying why) when they are
/// not set up outside CI; under CI that is a failure.
pub(crate) fn openclaw_setup() -> Option<OpenClaw> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let file =
        std::env::var_os("C41_OPENCLAW_ENV").map(PathBuf::from).unwrap_or_else(|| root.join("target/openclaw/env"));
    let from_file = std::fs::read_to_string(&file).unwrap_or_default();
    let get = |key: &str| -> Option<PathBuf> {
        std::env::var_os(key).map(PathBuf::from).or_else(|| {
            from_file.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(|v| PathBuf::from(v.trim())))
        })
    };
    match (get("C41_OPENCLAW_BIN"), get("C41_OPENCLAW_NODE_BIN_DIR")) {
        (Some(bin), Some(node)) if bin.is_file() && node.join("node").is_file() => {
            Some(OpenClaw { bin, node_bin_dir: node })
        }
        found => {
            let msg = format!(
                "OpenClaw is not set up (found {found:?}, env file {}); run tests/openclaw/setup.sh",
                file.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("skipping the OpenClaw test: {msg}");
            None
        }
    }
}

/// `$HOME/.openclaw/openclaw.json`: the scripted model as the only provider
/// and the default model, the given MCP servers, plain tool schemas.
pub(crate) fn write_openclaw_config(home: &Path, model: SocketAddr, mcp_servers: Value) -> PathBuf {
    let config = json!({
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
        "models": {
            "mode": "replace",
            "providers": {"fake": {
                "baseUrl": format!("http://{model}/v1"),
                "apiKey": "sk-local",
                "api": "openai-completions",
                "models": [{
                    "id": "fake-model",
                    "name": "Scripted test model",
                    "reasoning": false,
                    "input": ["text"],
                    "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                    "contextWindow": 128000,
                    "maxTokens": 4096,
                }],
            }},
        },
        "tools": {"toolSearch": false},
        "mcp": {"servers": mcp_servers},
    });
    let path = home.join(".openclaw/openclaw.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

/// What one `openclaw agent exec --json` run did.
pub(crate) struct AgentRun {
    pub(crate) code: Option<i32>,
    pub(crate) envelope: Value,
    stdout: String,
    stderr: String,
}

impl AgentRun {
    pub(crate) fn logs(&self) -> String {
        let tail: Vec<&str> = self.stderr.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("--- openclaw exit {:?}, stdout:\n{}\n--- stderr (tail):\n{}", self.code, self.stdout, tail.join("\n"))
    }
}

/// Run one headless agent turn with a bare environment and an isolated
/// HOME, Node 26 first on PATH. The run (and the MCP server and commands it
/// starts) is its own process group, killed when done, on timeout or panic.
pub(crate) async fn run_agent(
    oc: &OpenClaw,
    home: &Path,
    config: &Path,
    workspace: &Path,
    message: &str,
    extra_path: Option<&Path>,
) -> AgentRun {
    let mut path = vec![oc.node_bin_dir.clone()];
    path.extend(extra_path.map(Path::to_path_buf));
    path.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
    let path = std::env::join_paths(path).unwrap();
    let logs = home.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (out_file, err_file) = (logs.join("stdout"), logs.join("stderr"));
    let started = Instant::now();
    let child = tokio::process::Command::new(&oc.bin)
        .args([
            "agent",
            "exec",
            message,
            "--json",
            "--code-mode",
            "direct",
            "--timeout",
            &RUN_TIMEOUT.as_secs().to_string(),
        ])
        .arg("--config")
        .arg(config)
        .arg("--cwd")
        .arg(workspace)
        .current_dir(workspace)
        .env_clear()
        .env("HOME", home)
        .env("PATH", path)
        .env("SHELL", "/bin/sh")
        .env("TERM", "dumb")
        .env("USER", "c41-test")
        .env("LOGNAME", "c41-test")
        .env("NO_COLOR", "1")
        .env("C41_CACHE_DIR", cache_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .process_group(0)
        .spawn()
        .expect("openclaw starts");
    let mut group = ProcessGroup(child);
    let status = tokio::time::timeout(RUN_TIMEOUT + Duration::from_secs(30), group.0.wait()).await;
    drop(group);
    let stdout = std::fs::read_to_string(&out_file).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    let code = match status {
        Ok(s) => s.unwrap().code(),
        Err(_) => panic!("openclaw agent exec did not finish within {RUN_TIMEOUT:?}\n{stdout}\n{stderr}"),
    };
    eprintln!("openclaw agent exec: exit {code:?} in {:.1} s", started.elapsed().as_secs_f64());
    // stdout is reserved for the envelope; take the outermost object anyway.
    let envelope = stdout
        .find('{')
        .zip(stdout.rfind('}'))
        .and_then(|(a, b)| serde_json::from_str(&stdout[a..=b]).ok())
        .unwrap_or(Value::Null);
    let run = AgentRun { code, envelope, stdout, stderr };
    assert!(run.envelope.is_object(), "openclaw printed a JSON envelope\n{}", run.logs());
    run
}

/// A child in its own process group; the whole group is killed on drop.
struct ProcessGroup(tokio::process::Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        let _ = self.0.start_kill();
    }
}

// ---- the scripted model ---------------------------------------------------

/// The scripted model's next answer.
pub(crate) enum Turn {
    /// Call this tool with these arguments.
    Call(String, Value),
    /// Reply with this text and stop.
    Say(String),
}

pub(crate) type Script = Arc<dyn Fn(&Value) -> Turn + Send + Sync>;

/// A model asked for a red fox: it calls the c41 image tool by the name
/// OpenClaw gave it, then delivers what the tool returned, as the tool told
/// it to (its `MEDIA:` line in the final reply).
pub(crate) fn red_fox() -> Script {
    Arc::new(|req: &Value| match last_tool_result(req) {
        None => match tool_names(req).into_iter().find(|n| n.ends_with("comfyui-image")) {
            Some(name) => Turn::Call(name, json!({"prompt": "a red fox", "width": 256, "height": 256})),
            None => Turn::Say(format!("fake model: no comfyui-image tool in {:?}", tool_names(req))),
        },
        Some((_, text)) => Turn::Say(format!("Here is your red fox.\n{}", media_lines(&text).join("\n"))),
    })
}

/// An OpenAI-compatible chat-completions server on loopback that answers
/// each request with what the script says and records the request bodies.
#[derive(Clone)]
pub(crate) struct FakeModel {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
    script: Script,
}

impl FakeModel {
    pub(crate) async fn start(script: Script) -> FakeModel {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let model = FakeModel { addr: listener.local_addr().unwrap(), seen: Default::default(), script };
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route(
                "/v1/models",
                get(|| async { axum::Json(json!({"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "c41-test"}]})) }),
            )
            .with_state(model.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        model
    }

    pub(crate) fn requests(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

async fn chat_completions(State(model): State<FakeModel>, body: axum::body::Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut seen = model.seen.lock().unwrap();
        seen.push(req.clone());
        seen.len()
    };
    let (message, finish) = match (model.script)(&req) {
        Turn::Call(name, args) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_{n}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()},
            }]}),
            "tool_calls",
        ),
        Turn::Say(text) => (json!({"role": "assistant", "content": text}), "stop"),
    };
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15});
    let id = format!("chatcmpl-{n}");
    if req["stream"] != true {
        return axum::Json(json!({
            "id": id, "object": "chat.completion", "created": 1_700_000_000, "model": "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }))
        .into_response();
    }
    // Streamed (what OpenClaw asks for): the whole message as one delta,
    // then the finish reason with usage, then [DONE].
    let mut delta = message;
    if let Some(calls) = delta["tool_calls"].as_array_mut() {
        for (i, call) in calls.iter_mut().enumerate() {
            call["index"] = json!(i);
        }
    }
    let chunk = |choice: Value, usage: Option<&Value>| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake-model", "choices": [choice]});
        if let Some(u) = usage {
            c["usage"] = u.clone();
        }
        format!("data: {c}\n\n")
    };
    let sse = chunk(json!({"index": 0, "delta": delta, "finish_reason": null}), None)
        + &chunk(json!({"index": 0, "delta": {}, "finish_reason": finish}), Some(&usage))
        + "data: [DONE]\n\n";
    ([("content-type", "text/event-stream"), ("cache-control", "no-cache")], sse).into_response()
}

// ---- reading OpenClaw's requests and envelope -----------------------------

pub(crate) fn tool_names(req: &Value) -> Vec<String> {
    req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(String::from))
        .collect()
}

fn tool_def<'a>(req: &'a Value, name: &str) -> &'a Value {
    req["tools"].as_array().unwrap().iter().find(|t| t["function"]["name"] == name).unwrap()
}

/// A message's text, whether `content` is a string or a list of parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

/// The last tool result in the conversation: the called tool's name (from
/// the assistant's tool call it answers) and the result text.
/// Every tool result in the conversation so far, oldest first, with the
/// name of the tool that produced it.
fn tool_results(req: &Value) -> Vec<(String, String)> {
    let Some(messages) = req["messages"].as_array() else { return Vec::new() };
    messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|result| {
            let id = &result["tool_call_id"];
            let name = messages
                .iter()
                .filter(|m| m["role"] == "assistant")
                .flat_map(|m| m["tool_calls"].as_array().into_iter().flatten())
                .find(|c| &c["id"] == id)
                .and_then(|c| c["function"]["name"].as_str())
                .unwrap_or("?")
                .to_string();
            (name, content_text(&result["content"]))
        })
        .collect()
}

pub(crate) fn last_tool_result(req: &Value) -> Option<(String, String)> {
    tool_results(req).pop()
}

pub(crate) fn media_lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).filter(|l| l.starts_with("MEDIA:")).collect()
}

/// The `<location>` of a skill in the system prompt's `<available_skills>`.
fn skill_location(req: &Value, skill: &str) -> Option<String> {
    let system = req["messages"].as_array()?.iter().filter(|m| m["role"] == "system" || m["role"] == "developer");
    let text: String = system.map(|m| content_text(&m["content"])).collect();
    let at = text.find(&format!("<name>{skill}</name>"))?;
    let rest = &text[at..text[at..].find("</skill>").map_or(text.len(), |e| at + e)];
    let start = rest.find("<location>")? + "<location>".len();
    let end = rest.find("</location>")?;
    Some(rest[start..end].trim().to_string())
}

/// The `c41 ... run <skill> --input '<JSON object>'` line of a SKILL.md (as
/// the read tool returned it).
fn skill_command(text: &str) -> Option<String> {
    text.lines()
        .filter(|l| l.contains(" run ") && l.contains("--input"))
        .find_map(|l| l.find("c41 ").map(|i| l[i..].trim().to_string()))
}

fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(path),
    }
}

/// The media the run delivered, over all payloads.
pub(crate) fn delivered_media(envelope: &Value) -> Vec<String> {
    let mut urls: Vec<String> = envelope["payloads"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["mediaUrls"].as_array().into_iter().flatten())
        .filter_map(|u| u.as_str().map(String::from))
        .collect();
    urls.dedup();
    urls
}

/// `png` is a real PNG file inside c41's output dir.
pub(crate) fn assert_real_png(png: &Path, out_dir: &Path) {
    assert!(png.is_absolute(), "{}", png.display());
    let canonical = std::fs::canonicalize(png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(
        canonical.starts_with(std::fs::canonicalize(out_dir).unwrap()),
        "{} is in {}",
        png.display(),
        out_dir.display()
    );
    let bytes = std::fs::read(png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is a PNG", png.display());
    assert!(bytes.len() > 100, "{} has image data", png.display());
}
