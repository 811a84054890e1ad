//! The simulated studio: every backend the skills talk to, started
//! in-process on loopback from `c41-sim`, plus the config that points c41 at
//! it. `c41 sim` serves it in the foreground; `c41 demo` and tests start it
//! on free ports.

use c41_sim::comfyui::{ComfyConfig, ComfySim};
use c41_sim::control::{FaultSpec, FaultTarget};
use c41_sim::llm::{LlmConfig, LlmSim, SimModel, SimServer};
use c41_sim::services::humo::HumoSim;
use c41_sim::services::mmaudio::MmAudioSim;
use c41_sim::services::tts::TtsSim;
use std::net::SocketAddr;

/// Ports to bind on 127.0.0.1 (0 = any free port).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimPorts {
    /// ComfyUI (real default 8188).
    pub comfyui: u16,
    /// Ollama, also serving `/v1` (real default 11434).
    pub ollama: u16,
    /// Standalone MMAudio (`POST /process`).
    pub mmaudio: u16,
    /// HuMo wrapper (`POST /generate`).
    pub humo: u16,
    /// OpenAI-style TTS (`POST /v1/audio/speech`).
    pub tts: u16,
}

impl SimPorts {
    /// The real servers' default ports, for `c41 sim`.
    pub fn defaults() -> Self {
        SimPorts { comfyui: 8188, ollama: 11434, mmaudio: 8000, humo: 8001, tts: 8880 }
    }
}

/// The studio's models as the simulated Ollama lists them: the Mac's big
/// MoE models and a small fast one.
pub fn studio_models() -> Vec<SimModel> {
    vec![
        SimModel::new("kimi-k2").with_family("deepseek2").with_parameter_size("1T").with_tools(),
        SimModel::new("qwen3-coder:480b").with_family("qwen3moe").with_parameter_size("480B").with_tools(),
        SimModel::new("gpt-oss:120b").with_family("gptoss").with_parameter_size("120B").with_tools().with_thinking(),
        SimModel::new("deepseek-v3.2").with_family("deepseek2").with_parameter_size("671B").with_thinking(),
        SimModel::new("minimax-m2.1").with_family("minimax").with_parameter_size("230B").with_tools(),
        SimModel::new("qwen3:4b").with_family("qwen3").with_parameter_size("4B"),
    ]
}

/// A running simulated studio.
pub struct SimStudio {
    /// The ComfyUI simulator (inspect files, inject faults).
    pub comfyui: ComfySim,
    /// The Ollama/OpenAI simulator.
    pub llm: LlmSim,
    /// The MMAudio simulator.
    pub mmaudio: MmAudioSim,
    /// The HuMo simulator.
    pub humo: HumoSim,
    /// The TTS simulator.
    pub tts: TtsSim,
    comfyui_addr: SocketAddr,
    ollama: SimServer,
    mmaudio_addr: SocketAddr,
    humo_addr: SocketAddr,
    tts_addr: SocketAddr,
}

impl SimStudio {
    /// Start every simulator on 127.0.0.1: ComfyUI, Ollama (+ /v1), MMAudio,
    /// HuMo and TTS.
    pub async fn start(ports: SimPorts) -> std::io::Result<SimStudio> {
        let comfyui = ComfySim::new(ComfyConfig::default());
        let comfyui_addr = comfyui.start(&format!("127.0.0.1:{}", ports.comfyui)).await?;
        let llm = LlmSim::new(LlmConfig { models: studio_models(), ..LlmConfig::default() });
        let ollama = llm.serve(ports.ollama).await?;
        let mmaudio = MmAudioSim::default();
        let mmaudio_addr = mmaudio.start(&format!("127.0.0.1:{}", ports.mmaudio)).await?;
        let humo = HumoSim::default();
        let humo_addr = humo.start(&format!("127.0.0.1:{}", ports.humo)).await?;
        let tts = TtsSim::default();
        let tts_addr = tts.start(&format!("127.0.0.1:{}", ports.tts)).await?;
        Ok(SimStudio { comfyui, llm, mmaudio, humo, tts, comfyui_addr, ollama, mmaudio_addr, humo_addr, tts_addr })
    }

    /// Base URLs by service name.
    pub fn services(&self) -> Vec<(&'static str, &'static str, String)> {
        vec![
            ("comfyui", "comfyui", format!("http://{}", self.comfyui_addr)),
            ("ollama", "ollama", self.ollama.url()),
            ("mmaudio", "mmaudio", format!("http://{}", self.mmaudio_addr)),
            ("humo", "humo", format!("http://{}", self.humo_addr)),
            ("tts", "tts", format!("http://{}", self.tts_addr)),
        ]
    }

    /// The simulator behind a service name of [`services`](Self::services).
    pub fn fault_target(&self, service: &str) -> Option<&dyn FaultTarget> {
        Some(match service {
            "comfyui" => &self.comfyui,
            "ollama" => &self.llm,
            "mmaudio" => &self.mmaudio,
            "humo" => &self.humo,
            "tts" => &self.tts,
            _ => return None,
        })
    }

    /// Arms a fault written `SERVICE:FAULT` (`comfyui:fail=3x503`,
    /// `ollama:down`); the error names the service or the fault that is
    /// wrong and what would be right. Call inside the tokio runtime.
    pub fn apply_fault(&self, spec: &str) -> Result<FaultSpec, String> {
        let names = || self.services().iter().map(|s| s.0).collect::<Vec<_>>().join(", ");
        let (service, fault) = spec
            .split_once(':')
            .ok_or_else(|| format!("`{spec}`: write SERVICE:FAULT, e.g. comfyui:fail=3x503 (services: {})", names()))?;
        let target = self
            .fault_target(service.trim())
            .ok_or_else(|| format!("`{spec}`: no simulated service `{service}` (services: {})", names()))?;
        let fault: FaultSpec = fault.parse().map_err(|e| format!("`{spec}`: {e}"))?;
        target.apply(&fault).map_err(|e| format!("`{spec}`: {e}"))?;
        Ok(fault)
    }

    /// A config granting every built-in skill the simulated services it
    /// needs, storing artifacts in `output_dir`.
    pub fn config_toml(&self, output_dir: &str) -> String {
        let mut t = format!("# c41 config for the simulated studio (c41 sim)\noutput-dir = \"{output_dir}\"\n\n");
        for (name, kind, url) in self.services() {
            t.push_str(&format!("[services.{name}]\nurl = \"{url}\"\nkind = \"{kind}\"\n\n"));
        }
        // The starter skill fetches from ComfyUI's /system_stats as a plain
        // HTTP service.
        t.push_str(&format!("[services.web]\nurl = \"http://{}\"\nkind = \"http\"\n\n", self.comfyui_addr));
        t.push_str("[skills.hello-http]\ngrants = [\"web\"]\n\n");
        for skill in ["comfyui-image", "comfyui-video", "lora-train"] {
            t.push_str(&format!("[skills.{skill}]\ngrants = [\"comfyui\"]\n\n"));
        }
        t.push_str("[skills.tts]\ngrants = [\"tts\"]\n\n");
        // Their HTTP services win; `backend = "comfyui"` runs them on ComfyUI.
        for (skill, service) in [("audio-gen", "mmaudio"), ("lip-sync", "humo")] {
            t.push_str(&format!("[skills.{skill}]\ngrants = [\"{service}\", \"comfyui\"]\n\n"));
        }
        t.push_str("[skills.llm-route]\ngrants = [\"ollama\"]\n");
        t
    }
}
