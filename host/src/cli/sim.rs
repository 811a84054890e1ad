//! `c41 sim`: run the simulated studio in the foreground.

use super::Ctx;
use crate::studio::{SimPorts, SimStudio};
use std::io::Write;
use std::process::ExitCode;

/// Serve simulated ComfyUI, Ollama, MMAudio, HuMo and TTS servers on loopback.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// ComfyUI port.
    #[arg(long, default_value_t = SimPorts::defaults().comfyui)]
    pub comfyui_port: u16,
    /// Ollama port (also serves the OpenAI-compatible /v1).
    #[arg(long, default_value_t = SimPorts::defaults().ollama)]
    pub ollama_port: u16,
    /// MMAudio port.
    #[arg(long, default_value_t = SimPorts::defaults().mmaudio)]
    pub mmaudio_port: u16,
    /// HuMo port.
    #[arg(long, default_value_t = SimPorts::defaults().humo)]
    pub humo_port: u16,
    /// TTS port.
    #[arg(long, default_value_t = SimPorts::defaults().tts)]
    pub tts_port: u16,
    /// Where the printed config stores artifacts.
    #[arg(long, default_value = "~/c41-sim-output")]
    pub output_dir: String,
    /// Start with a fault armed, as SERVICE:FAULT; repeatable. Faults:
    /// delay=2s, fail=503 or fail=3x503, down or down=5s (every service);
    /// restart, stall-ws, drop-view=BYTES, fail-node=CLASS:MESSAGE (comfyui);
    /// mid-stream-error, token-delay=50ms, load-time=5s (ollama). While
    /// running, POST faults to /c41-sim/faults on a service's port.
    #[arg(long = "fault", value_name = "SERVICE:FAULT")]
    pub faults: Vec<String>,
}

impl Args {
    pub(super) async fn run(self, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let ports = SimPorts {
            comfyui: self.comfyui_port,
            ollama: self.ollama_port,
            mmaudio: self.mmaudio_port,
            humo: self.humo_port,
            tts: self.tts_port,
        };
        let studio = SimStudio::start(ports).await.map_err(|e| anyhow::anyhow!("cannot start the simulator: {e}"))?;
        let mut armed = Vec::new();
        for spec in &self.faults {
            match studio.apply_fault(spec) {
                Ok(fault) => armed.push(format!("{}:{fault}", spec.split_once(':').map_or("", |s| s.0).trim())),
                Err(e) => {
                    eprintln!("c41 sim: --fault {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        eprintln!("c41 sim: simulated backends on loopback (no GPU, no models; real file formats):");
        for (name, kind, url) in studio.services() {
            eprintln!("  {name:<8} {kind:<8} {url}");
        }
        if !armed.is_empty() {
            eprintln!("\nFaults armed: {}", armed.join(", "));
        }
        let comfy = &studio.services()[0].2;
        eprintln!(
            "\nBreak a backend while it runs: curl -d fail=3x503 {comfy}{path}  (DELETE clears; \
             GET lists the faults a service has; header {header}: delay=2s or fail=503 breaks one request)",
            path = c41_sim::control::CONTROL_PATH,
            header = c41_sim::control::HEADER,
        );
        eprintln!("\nSave this as a config and run skills against it (c41 --config FILE run ...):\n");
        // Not println!: a reader that goes away (`c41 sim | head`) must not
        // take the simulator down with it.
        let _ = writeln!(std::io::stdout().lock(), "{}", studio.config_toml(&self.output_dir));
        eprintln!("Ctrl-C stops the simulator.");
        tokio::signal::ctrl_c().await?;
        Ok(ExitCode::SUCCESS)
    }
}
