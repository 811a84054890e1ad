//! `c41 sim`: run the simulated studio in the foreground.

use super::Ctx;
use crate::studio::{SimPorts, SimStudio};
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
        eprintln!("c41 sim: simulated backends on loopback (no GPU, no models; real file formats):");
        for (name, kind, url) in studio.services() {
            eprintln!("  {name:<8} {kind:<8} {url}");
        }
        eprintln!("\nSave this as a config and run skills against it (c41 --config FILE run ...):\n");
        println!("{}", studio.config_toml(&self.output_dir));
        eprintln!("Ctrl-C stops the simulator.");
        tokio::signal::ctrl_c().await?;
        Ok(ExitCode::SUCCESS)
    }
}
