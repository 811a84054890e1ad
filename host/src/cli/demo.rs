//! `c41 demo`: the whole system on a laptop. Starts the simulated studio
//! in-process, runs every built-in skill once through the real sandboxed
//! host, and shows where each file landed.

use super::Ctx;
use super::progress::CliProgress;
use crate::app::App;
use crate::config::{self, LoadedConfig};
use crate::runtime::RuntimeOptions;
use crate::studio::{SimPorts, SimStudio};
use c41_artifacts::StoredArtifact;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Run each built-in skill against simulated backends.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo's files go [default: <data dir>/c41/demo]
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// What the demo asks of each built-in skill. `made` holds the files of
/// the skills that ran before it (by skill name), so later skills work on
/// earlier results the way an agent chains them: the clip gets a
/// soundtrack, the portrait is voiced and lip-synced.
pub fn demo_input(skill: &str, made: &HashMap<String, Vec<StoredArtifact>>) -> Option<Value> {
    let first = |from: &str| made.get(from).and_then(|a| a.first()).map(|a| format!("artifact:{}", a.sha256));
    Some(match skill {
        "hello-http" => json!({"path": "/system_stats", "name": "system_stats.json"}),
        "comfyui-image" => {
            json!({"prompt": "a red fox in the snow, studio light", "width": 512, "height": 512, "seed": 41})
        }
        "comfyui-video" => {
            json!({"prompt": "a paper boat drifting on a pond", "frames": 17, "fps": 16, "width": 320, "height": 192, "seed": 41})
        }
        "llm-route" => {
            json!({"messages": [{"role": "user", "content": "Write a Rust function that reverses a string."}]})
        }
        "tts" => {
            json!({"text": "Hello from the forge. Every file you see was made by a simulated studio.", "format": "wav"})
        }
        "audio-gen" => match first("comfyui-video") {
            Some(video) => {
                json!({"prompt": "water lapping against a paper boat", "video": video, "seconds": 2, "seed": 41})
            }
            None => json!({"prompt": "rain on a tin roof", "seconds": 2, "seed": 41}),
        },
        "lip-sync" => json!({
            "image": first("comfyui-image")?,
            "audio": first("tts")?,
            "prompt": "a red fox telling a story",
            "width": 256, "height": 256, "fps": 16,
        }),
        // A LoRA of the demo's fox (the one image, four times: the trainer
        // wants at least four).
        "lora-train" => {
            let fox = first("comfyui-image")?;
            json!({"images": [fox, fox, fox, fox], "trigger": "fxfox", "name": "demo-fox", "steps": 20, "resolution": 256, "seed": 41})
        }
        _ => return None,
    })
}

impl Args {
    pub(super) async fn run(self, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
        eprintln!("c41 demo: the backends are SIMULATED (ComfyUI and Ollama stand-ins on loopback, no GPU).");
        eprintln!(
            "To use your real servers: `c41 init`, edit the service URLs, `c41 doctor`, then `c41 run SKILL ...`.\n"
        );
        let studio = SimStudio::start(SimPorts::default())
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the simulator: {e}"))?;
        let out = self
            .output_dir
            .unwrap_or_else(|| dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("c41").join("demo"));
        let text = studio.config_toml(&out.display().to_string());
        let parsed: config::Config = toml::from_str(&text)?;
        let loaded = LoadedConfig::from_config(parsed, None)?;
        let app = App::new(loaded, RuntimeOptions::with_default_cache(), &[]).await?;

        let mut failed = 0;
        let mut ran = 0;
        let mut made = HashMap::new();
        let mut data: HashMap<String, Value> = HashMap::new();
        for skill in app.catalog.iter() {
            let name = skill.description.name.clone();
            let Some(input) = demo_input(&name, &made) else { continue };
            ran += 1;
            println!("== {name}: {}", skill.description.summary);
            let progress = Arc::new(CliProgress::new(true));
            let result = app.invoke(&name, input, progress.clone(), CancellationToken::new()).await;
            progress.finish();
            match result {
                Ok(r) => {
                    if progress.streamed() {
                        println!();
                    } else {
                        println!("{}", r.text);
                    }
                    for a in &r.artifacts {
                        println!("MEDIA:{}", a.path.display());
                    }
                    println!("({} ms)\n", r.elapsed.as_millis());
                    made.insert(name.clone(), r.artifacts);
                    data.insert(name, r.data);
                }
                Err(e) => {
                    failed += 1;
                    println!("FAILED: {e}\n");
                }
            }
        }
        // HuMo and MMAudio as the workstation usually runs them: inside ComfyUI.
        let on_comfyui = format!(
            "{text}\n[skills.lip-sync.settings]\nbackend = \"comfyui\"\nmax-frames = 401\n[skills.audio-gen.settings]\nbackend = \"comfyui\"\n"
        );
        let loaded = LoadedConfig::from_config(toml::from_str(&on_comfyui)?, None)?;
        let app = App::new(loaded, RuntimeOptions::with_default_cache(), &[]).await?;
        let mut extra: Vec<(String, &str, Value)> = Vec::new();
        for name in ["lip-sync", "audio-gen"] {
            let Some(mut input) = demo_input(name, &made) else { continue };
            if name == "audio-gen" {
                input = json!({"prompt": "rain on a tin roof", "seconds": 2, "seed": 41});
            }
            extra.push((format!("{name} on ComfyUI (backend = \"comfyui\")"), name, input));
        }
        // The fox again, with the LoRA trained on it (on Z-Image, so with
        // the Z-Image workflow: a LoRA fits the model it was trained on).
        if let Some(lora) = data.get("lora-train").and_then(|d| d["lora"].as_str()) {
            let input = json!({"prompt": "fxfox, a red fox in a summer meadow", "workflow": "z-image-turbo",
                               "width": 512, "height": 512, "seed": 41, "loras": [{"name": lora, "strength": 0.9}]});
            extra.push(("comfyui-image with the trained LoRA".into(), "comfyui-image", input));
        }
        for (title, name, input) in extra {
            ran += 1;
            println!("== {title}");
            let progress = Arc::new(CliProgress::new(true));
            let result = app.invoke(name, input, progress.clone(), CancellationToken::new()).await;
            progress.finish();
            match result {
                Ok(r) => {
                    println!("{}", r.text);
                    for a in &r.artifacts {
                        println!("MEDIA:{}", a.path.display());
                    }
                    println!("({} ms)\n", r.elapsed.as_millis());
                }
                Err(e) => {
                    failed += 1;
                    println!("FAILED: {e}\n");
                }
            }
        }
        println!("{ran} skill(s) ran against the simulated studio, {failed} failed; files are in {}", out.display());
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}
