//! The same lip-sync on the workstation's ComfyUI, which ships HuMo itself
//! (`WanHuMoImageToVideo`, the whisper audio encoder, `CreateVideo` with the
//! sound, `SaveVideo`): the built-in `humo` workflow run through the shared
//! ComfyUI client (uploads, progress, cancel, resume, failover).
//!
//! The clip's frame count follows the sound: HuMo makes Wan-style clips of
//! `4n + 1` frames, so the sound's length at `fps` is rounded up to the next
//! such count. HuMo was trained on 97 frames (3.9 s at 25 fps); longer clips
//! are made in one pass up to `settings.max-frames` (default 97), and a
//! longer sound is refused with the length it may have, rather than cut.

use c41_kit::comfyui::{self, FileParam, Job, Library, Options};
use c41_kit::media::Probe;
use c41_kit::{Invocation, Outcome, SkillError, Value, inputs, json};
use serde_json::Map;

use crate::plan::{self, Made, Params};

/// The built-in workflow.
const BUILTINS: &[(&str, &str, &str)] =
    &[("humo", include_str!("../../workflows/humo_api.json"), include_str!("../../workflows/humo.bindings.json"))];

/// Frames HuMo was trained on; the default ceiling.
pub const TRAINED_FRAMES: u64 = 97;

/// The smallest `4n + 1` frame count covering `seconds` at `fps`.
pub fn frames_for(seconds: f64, fps: u32) -> u64 {
    let needed = (seconds * f64::from(fps)).ceil().max(1.0) as u64;
    needed.saturating_sub(1).div_ceil(4) * 4 + 1
}

/// How long the sound lasts, read from its header.
fn sound_seconds() -> Result<f64, SkillError> {
    let mut file = inputs::open("audio")?;
    let name = file.name();
    let mut probe = Probe::new();
    loop {
        let chunk = file.read_chunk()?;
        if chunk.is_empty() {
            break;
        }
        probe.feed(&chunk);
    }
    probe.finish().info().map(|i| i.seconds).filter(|s| *s > 0.0).ok_or_else(|| {
        SkillError::invalid("audio", format!("cannot tell how long {name} lasts: send a WAV, FLAC or MP3 file"))
    })
}

/// Which workflows each granted ComfyUI backend can run (`check: true`).
pub async fn check(settings: &Value) -> Result<Outcome, SkillError> {
    let library = Library::new(BUILTINS, settings);
    let default = settings.get("workflow").and_then(Value::as_str).unwrap_or("humo").to_string();
    comfyui::check(&library, &["image", "audio"], &[default]).await
}

/// Run `params` on the granted ComfyUI backends.
pub async fn run(cx: &Invocation, params: &Params, settings: &Value) -> Result<Outcome, SkillError> {
    let library = Library::new(BUILTINS, settings);
    let name = settings.get("workflow").and_then(Value::as_str).unwrap_or("humo");
    let workflow = library.get(name)?;
    let max_frames = settings.get("max-frames").and_then(Value::as_u64).unwrap_or(TRAINED_FRAMES).max(1);
    let seconds = sound_seconds()?;
    let frames = frames_for(seconds, params.fps);
    if frames > max_frames {
        return Err(SkillError::invalid(
            "audio",
            format!(
                "the sound lasts {seconds:.2} s, which needs {frames} frames at {} fps; HuMo on ComfyUI makes at most {max_frames} frames here ({:.2} s; it was trained on {TRAINED_FRAMES}). Send a shorter sound, or raise [skills.lip-sync.settings] max-frames (longer clips cost more VRAM and may drift)",
                params.fps,
                max_frames as f64 / f64::from(params.fps)
            ),
        ));
    }
    let mut p = Map::new();
    p.insert("prompt".into(), json!(params.prompt));
    p.insert("seed".into(), json!(params.seed.unsigned_abs()));
    p.insert("steps".into(), json!(params.steps));
    p.insert("fps".into(), json!(params.fps));
    p.insert("frames".into(), json!(frames));
    if let Some(w) = params.width {
        p.insert("width".into(), json!(w));
    }
    if let Some(h) = params.height {
        p.insert("height".into(), json!(h));
    }
    let stem = params.file_name.trim_end_matches(".mp4");
    p.insert("name".into(), json!(format!("c41/{stem}")));
    let files = vec![
        FileParam { param: "image".into(), field: "image".into() },
        FileParam { param: "audio".into(), field: "audio".into() },
    ];
    let job = Job { workflow: &workflow, params: p, files };
    let done = comfyui::run(cx, job, &Options::from_settings(settings)).await?;

    let (image_name, audio_name) = (inputs::open("image")?.name(), inputs::open("audio")?.name());
    let made = done.media.iter().flatten().find_map(|m| {
        let v = m.video.as_ref()?;
        Some(Made {
            frames: v.frames,
            seconds: m.seconds,
            width: v.width,
            height: v.height,
            video_codec: v.codec.clone(),
            audio_codec: m.has_audio_track.filter(|a| *a).map(|_| "mp4a".to_string()),
        })
    });
    let paths: Vec<&str> = done.artifacts.iter().map(|a| a.path.as_str()).collect();
    let text = format!(
        "{} with HuMo on ComfyUI {}: {}",
        plan::summary(&image_name, &audio_name, params.fps, made.as_ref()),
        done.backend,
        paths.join(", ")
    );
    let mut data = done.data(&workflow);
    data["prompt"] = json!(params.prompt);
    data["fps"] = json!(params.fps);
    data["seed"] = json!(params.seed.unsigned_abs());
    data["steps"] = json!(params.steps);
    data["frames_requested"] = json!(frames);
    data["sound_seconds"] = json!((seconds * 1000.0).round() / 1000.0);
    data["service"] = json!(done.backend);
    data["image"] = json!(image_name);
    data["audio"] = json!(audio_name);
    data["output"] = json!(made.map(|m| json!({
        "width": m.width, "height": m.height, "frames": m.frames,
        "seconds": (m.seconds * 1000.0).round() / 1000.0, "video_codec": m.video_codec, "audio_codec": m.audio_codec,
    })));
    Ok(Outcome { text, artifacts: done.artifacts, data })
}

#[cfg(test)]
mod tests {
    use super::frames_for;

    #[test]
    fn frames_cover_the_sound_in_wan_counts() {
        assert_eq!(frames_for(3.84, 25), 97, "96 frames needed: 97");
        assert_eq!(frames_for(3.88, 25), 97);
        assert_eq!(frames_for(3.89, 25), 101);
        assert_eq!(frames_for(0.01, 25), 1);
        assert_eq!(frames_for(1.0, 16), 17);
    }
}
