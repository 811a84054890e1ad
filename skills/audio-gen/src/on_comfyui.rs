//! The same text-to-audio on the workstation's ComfyUI, through the
//! ComfyUI-MMAudio custom nodes (`MMAudioModelLoader`,
//! `MMAudioFeatureUtilsLoader`, `MMAudioSampler` → `SaveAudio`, a FLAC): the
//! built-in `mmaudio-t2a` workflow run by the shared ComfyUI client
//! (progress, cancel, resume, failover). Video-to-audio stays with the
//! MMAudio HTTP service for now.

use c41_kit::comfyui::{self, Job, Library, Options};
use c41_kit::{Invocation, Outcome, SkillError, Value, json};
use serde_json::Map;

use crate::params::{self, Mode, Params};

const BUILTINS: &[(&str, &str, &str)] = &[(
    "mmaudio-t2a",
    include_str!("../../workflows/mmaudio_t2a.json"),
    include_str!("../../workflows/mmaudio_t2a.bindings.json"),
)];

/// Which workflows each granted ComfyUI backend can run (`check: true`).
pub async fn check(settings: &Value) -> Result<Outcome, SkillError> {
    let library = Library::new(BUILTINS, settings);
    let default = settings.get("workflow").and_then(Value::as_str).unwrap_or("mmaudio-t2a").to_string();
    comfyui::check(&library, &[], &[default]).await
}

/// Run `p` on the granted ComfyUI backends.
pub async fn run(cx: &Invocation, p: &Params, settings: &Value) -> Result<Outcome, SkillError> {
    if p.mode == Mode::VideoToAudio {
        return Err(SkillError::invalid(
            "video",
            "a soundtrack for a video is made by the MMAudio HTTP service; on ComfyUI this skill makes sound from a prompt only: grant an `mmaudio` service, or leave `video` out",
        ));
    }
    let library = Library::new(BUILTINS, settings);
    let name = settings.get("workflow").and_then(Value::as_str).unwrap_or("mmaudio-t2a");
    let workflow = library.get(name)?;
    let mut m = Map::new();
    m.insert("prompt".into(), json!(p.prompt));
    m.insert("negative_prompt".into(), json!(p.negative_prompt));
    m.insert("seconds".into(), json!(p.seconds));
    m.insert("steps".into(), json!(p.steps));
    m.insert("cfg".into(), json!(p.cfg));
    m.insert("seed".into(), json!(p.seed));
    m.insert("name".into(), json!(format!("c41/{}", p.name.as_deref().unwrap_or("sound"))));
    let job = Job { workflow: &workflow, params: m, files: Vec::new() };
    let done = comfyui::run(cx, job, &Options::from_settings(settings)).await?;

    let info = done.media.first().cloned().flatten();
    let artifact = done.artifacts.first().ok_or_else(|| SkillError::internal("the workflow stored no file"))?;
    let heard = info.as_ref().map_or(p.seconds, |i| i.seconds);
    let text = format!(
        "Made {heard:.1} s of sound for {} (seed {}) with MMAudio on ComfyUI {}: {}",
        params::quoted_prompt(&p.prompt),
        p.seed,
        done.backend,
        artifact.path
    );
    let mut data = done.data(&workflow);
    for (k, v) in [
        ("prompt", json!(p.prompt)),
        ("negative_prompt", json!(p.negative_prompt)),
        ("seconds", json!(p.seconds)),
        ("measured_seconds", json!(info.as_ref().map(|i| (i.seconds * 1000.0).round() / 1000.0))),
        ("sample_rate", json!(info.as_ref().and_then(|i| i.sample_rate))),
        ("steps", json!(p.steps)),
        ("cfg", json!(p.cfg)),
        ("seed", json!(p.seed)),
        ("mode", json!(p.mode.as_str())),
        ("file", json!(artifact.path.rsplit('/').next())),
        ("mime", json!(artifact.mime)),
        ("bytes", json!(artifact.bytes)),
        ("service", json!(done.backend)),
    ] {
        data[k] = v;
    }
    Ok(Outcome { text, artifacts: done.artifacts, data })
}
