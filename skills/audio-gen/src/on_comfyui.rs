//! The same sound on the workstation's ComfyUI, through the ComfyUI-MMAudio
//! custom nodes (`MMAudioModelLoader`, `MMAudioFeatureUtilsLoader`,
//! `MMAudioSampler`), run by the shared ComfyUI client (upload, progress,
//! cancel, resume, failover):
//!
//! - text to audio: the built-in `mmaudio-t2a` workflow, `SaveAudio` → FLAC;
//! - video to audio: `mmaudio-v2a` uploads the clip, `LoadVideo` →
//!   `GetVideoComponents` gives its frames (which guide the sampler) and
//!   frame rate, and `CreateVideo` + `SaveVideo` write the clip again as MP4
//!   with the new sound, as the HTTP service returns it.
//!
//! Settings `workflow` and `video-workflow` name other workflows for each.

use c41_kit::comfyui::{self, FileParam, Job, Library, Options};
use c41_kit::{Invocation, Outcome, SkillError, Value, inputs, json};
use serde_json::Map;

use crate::params::{self, Mode, Params};

const BUILTINS: &[(&str, &str, &str)] = &[
    (
        "mmaudio-t2a",
        include_str!("../../workflows/mmaudio_t2a.json"),
        include_str!("../../workflows/mmaudio_t2a.bindings.json"),
    ),
    (
        "mmaudio-v2a",
        include_str!("../../workflows/mmaudio_v2a.json"),
        include_str!("../../workflows/mmaudio_v2a.bindings.json"),
    ),
];

/// The workflow for `mode`: the setting's, else the built-in.
fn workflow_name(mode: Mode, settings: &Value) -> String {
    let (key, builtin) = match mode {
        Mode::TextToAudio => ("workflow", "mmaudio-t2a"),
        Mode::VideoToAudio => ("video-workflow", "mmaudio-v2a"),
    };
    settings.get(key).and_then(Value::as_str).unwrap_or(builtin).to_string()
}

/// Which workflows each granted ComfyUI backend can run (`check: true`).
pub async fn check(settings: &Value) -> Result<Outcome, SkillError> {
    let library = Library::new(BUILTINS, settings);
    let defaults = [Mode::TextToAudio, Mode::VideoToAudio].map(|m| workflow_name(m, settings));
    comfyui::check(&library, &["video"], &defaults).await
}

/// Run `p` on the granted ComfyUI backends.
pub async fn run(cx: &Invocation, p: &Params, settings: &Value) -> Result<Outcome, SkillError> {
    let library = Library::new(BUILTINS, settings);
    let workflow = library.get(&workflow_name(p.mode, settings))?;
    let (mut files, mut video, mut m) = (Vec::new(), None, Map::new());
    let mut seconds = p.seconds;
    if p.mode == Mode::VideoToAudio {
        let mut file = inputs::open("video")?;
        let name = file.name();
        // The sound is as long as the clip, or cut to `seconds`.
        let info = file.probe()?.filter(|i| i.seconds > 0.0).ok_or_else(|| {
            SkillError::invalid("video", format!("{name} is not an MP4 or MOV video this skill can read"))
        })?;
        // A clip longer than `seconds` is cut to it, frames and sound.
        if let Some(fps) = info.video.as_ref().and_then(|v| v.fps).filter(|_| info.seconds > seconds) {
            m.insert("frames".into(), json!(((seconds * fps).floor() as u64).max(1)));
        }
        seconds = seconds.min(info.seconds);
        files.push(FileParam { param: "video".into(), field: "video".into() });
        video = Some(name);
    }
    m.insert("prompt".into(), json!(p.prompt));
    m.insert("negative_prompt".into(), json!(p.negative_prompt));
    m.insert("seconds".into(), json!((seconds * 100.0).floor() / 100.0));
    m.insert("steps".into(), json!(p.steps));
    m.insert("cfg".into(), json!(p.cfg));
    m.insert("seed".into(), json!(p.seed));
    // Named as the HTTP service's result is (`sound.flac`, `<clip>-sound.mp4`).
    let ext = match p.mode {
        Mode::TextToAudio => "flac",
        Mode::VideoToAudio => "mp4",
    };
    let file = params::file_name(p.name.as_deref(), video.as_deref(), ext);
    let stem = file.strip_suffix(&format!(".{ext}")).unwrap_or(&file).to_string();
    m.insert("name".into(), json!(format!("c41/{stem}")));
    let job = Job { workflow: &workflow, params: m, files, dataset: None, unreported: Vec::new() };
    let opts = Options { store_as: Some(stem), ..Options::from_settings(settings) };
    let done = comfyui::run(cx, job, &opts).await?;

    let info = done.media.first().cloned().flatten();
    let artifact = done.artifacts.first().ok_or_else(|| SkillError::internal("the workflow stored no file"))?;
    let heard = info.as_ref().map_or(p.seconds, |i| i.seconds);
    let prompt = params::quoted_prompt(&p.prompt);
    let text = match &video {
        None => format!(
            "Made {heard:.1} s of sound for {prompt} (seed {}) with MMAudio on ComfyUI {}: {}",
            p.seed, done.backend, artifact.path
        ),
        Some(v) => format!(
            "Added {heard:.1} s of sound for {prompt} to {v} (seed {}) with MMAudio on ComfyUI {}: {}",
            p.seed, done.backend, artifact.path
        ),
    };
    let mut data = done.data(&workflow);
    for (k, v) in [
        ("prompt", json!(p.prompt)),
        ("negative_prompt", json!(p.negative_prompt)),
        ("seconds", json!(p.seconds)),
        ("measured_seconds", json!(info.as_ref().map(|i| (i.seconds * 1000.0).round() / 1000.0))),
        ("sample_rate", json!(info.as_ref().and_then(|i| i.sample_rate))),
        ("has_audio_track", json!(info.as_ref().and_then(|i| i.has_audio_track))),
        ("video", json!(video)),
        ("steps", json!(p.steps)),
        ("cfg", json!(p.cfg)),
        ("seed", json!(p.seed)),
        ("mode", json!(p.mode.as_str())),
        ("file", json!(file)),
        ("mime", json!(artifact.mime)),
        ("bytes", json!(artifact.bytes)),
        ("service", json!(done.backend)),
    ] {
        data[k] = v;
    }
    Ok(Outcome { text, artifacts: done.artifacts, data })
}
