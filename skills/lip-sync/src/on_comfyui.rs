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

/// Largest side asked of ComfyUI when the size comes from the portrait (the
/// HTTP service's cap too).
const MAX_SIDE: u32 = 1280;

/// The clip's size on ComfyUI: what the input asks for; a side left out
/// follows the portrait's aspect ratio, and with neither the portrait's
/// aspect is kept at about the workflow's own pixel count (640×640), so a
/// 9:16 portrait is not cropped square. Multiples of 16, `16..=1280`.
/// Without a readable portrait size, absent sides stay the workflow's.
pub fn fit(
    portrait: Option<(u32, u32)>,
    width: Option<u32>,
    height: Option<u32>,
    template: (u32, u32),
) -> (Option<u32>, Option<u32>) {
    let Some((iw, ih)) = portrait.filter(|(w, h)| *w > 0 && *h > 0) else { return (width, height) };
    let r16 = |x: f64| ((x / 16.0).round() as u32 * 16).clamp(16, MAX_SIDE);
    let aspect = f64::from(iw) / f64::from(ih);
    match (width, height) {
        (Some(w), Some(h)) => (Some(w), Some(h)),
        (Some(w), None) => (Some(w), Some(r16(f64::from(w) / aspect))),
        (None, Some(h)) => (Some(r16(f64::from(h) * aspect)), Some(h)),
        (None, None) => {
            let area = f64::from(template.0) * f64::from(template.1);
            let h = (area / aspect).sqrt();
            let (w, h) = (h * aspect, h);
            let shrink = (f64::from(MAX_SIDE) / w.max(h)).min(1.0);
            (Some(r16(w * shrink)), Some(r16(h * shrink)))
        }
    }
}

/// The portrait's width and height, from its header.
fn portrait_size() -> Result<Option<(u32, u32)>, SkillError> {
    let head = inputs::open("image")?.read_chunk()?;
    Ok(c41_kit::media::image::size(&head))
}

/// How long the sound lasts, read from its header.
fn sound_seconds() -> Result<f64, SkillError> {
    let mut file = inputs::open("audio")?;
    let name = file.name();
    file.probe()?.map(|i| i.seconds).filter(|s| *s > 0.0).ok_or_else(|| {
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
    let side = |k: &str, d: u32| workflow.template_value(k).and_then(Value::as_u64).map_or(d, |v| v as u32);
    let (width, height) = fit(portrait_size()?, params.width, params.height, (side("width", 640), side("height", 640)));
    if let Some(w) = width {
        p.insert("width".into(), json!(w));
    }
    if let Some(h) = height {
        p.insert("height".into(), json!(h));
    }
    let stem = params.file_name.trim_end_matches(".mp4");
    p.insert("name".into(), json!(format!("c41/{stem}")));
    let files = vec![
        FileParam { param: "image".into(), field: "image".into() },
        FileParam { param: "audio".into(), field: "audio".into() },
    ];
    let job = Job { workflow: &workflow, params: p, files, dataset: None, unreported: Vec::new() };
    // Stored as the HTTP service's result is (`lipsync.mp4`), not under
    // ComfyUI's `lipsync_00001_.mp4`.
    let opts = Options { store_as: Some(stem.to_string()), ..Options::from_settings(settings) };
    let done = comfyui::run(cx, job, &opts).await?;

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
    data["width"] = json!(width);
    data["height"] = json!(height);
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
    use super::{fit, frames_for};

    #[test]
    fn the_portrait_keeps_its_aspect_at_the_workflows_pixel_count() {
        let t = (640, 640);
        assert_eq!(fit(Some((720, 1280)), None, None, t), (Some(480), Some(848)), "9:16 portrait");
        assert_eq!(fit(Some((1000, 1000)), None, None, t), (Some(640), Some(640)));
        assert_eq!(fit(Some((1920, 1080)), None, None, t), (Some(848), Some(480)));
        assert_eq!(fit(Some((720, 1280)), Some(512), None, t), (Some(512), Some(912)), "height follows width");
        assert_eq!(fit(Some((720, 1280)), None, Some(1280), t), (Some(720), Some(1280)));
        assert_eq!(fit(Some((720, 1280)), Some(320), Some(320), t), (Some(320), Some(320)), "asked for: kept");
        assert_eq!(fit(None, None, None, t), (None, None), "no portrait size: the workflow's");
        assert_eq!(fit(Some((100, 8000)), None, None, t), (Some(16), Some(1280)), "capped like the service");
    }

    #[test]
    fn frames_cover_the_sound_in_wan_counts() {
        assert_eq!(frames_for(3.84, 25), 97, "96 frames needed: 97");
        assert_eq!(frames_for(3.88, 25), 97);
        assert_eq!(frames_for(3.89, 25), 101);
        assert_eq!(frames_for(0.01, 25), 1);
        assert_eq!(frames_for(1.0, 16), 17);
    }
}
