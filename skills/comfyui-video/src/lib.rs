//! comfyui-video: text→video and image→video (Wan 2.2 14B) on the studio's
//! ComfyUI workstations.
//!
//! All protocol work lives in `c41_kit::comfyui`; this crate maps seconds or
//! frames to what the model accepts, picks the image→video workflow when a
//! start image is given, and shapes the outcome.

use c41_kit::comfyui::{self, FileParam, Job, Library, Options};
use c41_kit::schema::JsonSchema;
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, Value, json, settings};
use serde::Deserialize;
use serde_json::Map;

struct ComfyVideo;

/// The built-in workflows: (name, API graph, binding sidecar).
const BUILTINS: &[(&str, &str, &str)] = &[
    (
        "wan22-t2v",
        include_str!("../../workflows/wan22_t2v.json"),
        include_str!("../../workflows/wan22_t2v.bindings.json"),
    ),
    (
        "wan22-i2v",
        include_str!("../../workflows/wan22_i2v.json"),
        include_str!("../../workflows/wan22_i2v.bindings.json"),
    ),
];

const DEFAULT_T2V: &str = "wan22-t2v";
const DEFAULT_I2V: &str = "wan22-i2v";

// The input. The schema agents see (`input.schema.json`) is derived from
// this type; `C41_BLESS=1 cargo test` rewrites it after a change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What happens in the clip: subject, action, camera movement, style.
    #[schemars(length(min = 1, max = 8000))]
    pub prompt: String,
    /// What to avoid. Default: the workflow's own (blurry, low quality, static, distorted, watermark, text).
    #[schemars(length(max = 8000))]
    pub negative_prompt: Option<String>,
    /// Start image for image→video: a file path or an artifact reference (artifact:<sha256>), e.g. a comfyui-image result. Selects the image→video workflow (wan22-i2v) unless `workflow` is given.
    #[schemars(extend("format" = "c41-file"))]
    pub image: Option<String>,
    /// Clip length in seconds; converted to frames at `fps` and rounded to what the model accepts (Wan: 4n+1 frames). Give `seconds` or `frames`, not both. Default: 81 frames (about 5 s at 16 fps).
    #[schemars(range(max = 20), extend("exclusiveMinimum" = 0))]
    pub seconds: Option<f64>,
    /// Clip length in frames (Wan: 4n+1, other counts are rounded to the nearest). Give `seconds` or `frames`, not both. Default: 81.
    #[schemars(range(min = 1, max = 321))]
    pub frames: Option<u64>,
    /// Frames per second of the saved video. Default: the workflow's own (Wan 2.2 14B is trained at 16 fps).
    #[schemars(range(min = 4, max = 60))]
    pub fps: Option<u64>,
    /// Video width in pixels (multiple of 16). Default: the workflow's own (832 for the built-ins). 832×480 or 480×832 are the model's native sizes; 1280×720 is slower.
    #[schemars(range(min = 128, max = 1920), extend("multipleOf" = 16))]
    pub width: Option<u64>,
    /// Video height in pixels (multiple of 16). Default: the workflow's own (480 for the built-ins).
    #[schemars(range(min = 128, max = 1920), extend("multipleOf" = 16))]
    pub height: Option<u64>,
    /// Noise seed. Random when absent; the seed used is returned in data.seed.
    #[schemars(range(min = 0, max = 9007199254740991i64))]
    pub seed: Option<u64>,
    /// Sampler steps, split between the high- and low-noise passes. Default: the workflow's own (20).
    #[schemars(range(min = 2, max = 100))]
    pub steps: Option<u64>,
    /// Prompt adherence. Default: the workflow's own (3.5).
    #[schemars(range(min = 0, max = 30))]
    pub cfg: Option<f64>,
    /// Only check which workflows each granted ComfyUI backend can run (node types and model files present) and say what is missing and how to fix it; runs nothing. `c41 doctor` uses it.
    pub check: Option<bool>,
    /// Workflow name. Built-in: wan22-t2v (text→video; the default without `image`, or settings.workflow), wan22-i2v (image→video; the default with `image`, or settings.image-workflow). The config may add more under settings.workflows.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub workflow: Option<String>,
    /// LoRAs to apply to the model, in order: [{name, strength}], named as ComfyUI lists them (lora-train's data.lora, or a file in models/loras). A backend that lacks one is skipped as for a missing model.
    #[schemars(length(max = 8))]
    pub loras: Option<Vec<comfyui::Lora>>,
}

/// The nearest frame count of the form `k * step + 1` (at least 1).
fn round_frames(frames: u64, step: u32) -> u64 {
    let step = u64::from(step.max(1));
    let k = ((frames.saturating_sub(1) as f64) / step as f64).round() as u64;
    k * step + 1
}

impl Skill for ComfyVideo {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "comfyui-video",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Generate a short video from a text prompt, or animate a start image, with ComfyUI (Wan 2.2 14B or a configured workflow).",
        input_schema: include_str!("../input.schema.json"),
        output: "text: what was generated, where, its length and seed; artifacts: the video file(s) as the workflow saves them (mp4, webm or animated webp); \
                     data: {seed, workflow, backend, prompt_id, frames, fps, seconds, width, height, frames_requested?, params, ignored, uploads, \
                     files: [{server_name, subfolder, path, mime, bytes, sha256}], timings: {prepare_ms, queued_ms, run_ms, download_ms, total_ms}}",
        services: &[comfyui::SERVICE_KIND],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let settings = settings::all();
        let library = Library::new(BUILTINS, &settings);
        if cx.input.get("check").and_then(Value::as_bool) == Some(true) {
            let defaults = vec![
                settings.get("workflow").and_then(Value::as_str).unwrap_or(DEFAULT_T2V).to_string(),
                settings.get("image-workflow").and_then(Value::as_str).unwrap_or(DEFAULT_I2V).to_string(),
            ];
            return comfyui::check(&library, &["image"], &defaults).await;
        }
        let has_image = cx.input.get("image").is_some_and(|v| !v.is_null());
        let setting = |k: &str| settings.get(k).and_then(Value::as_str).map(str::to_string);
        let name = match cx.str("workflow") {
            Some(w) => w.to_string(),
            None if has_image => setting("image-workflow").unwrap_or_else(|| DEFAULT_I2V.into()),
            None => setting("workflow").unwrap_or_else(|| DEFAULT_T2V.into()),
        };
        let input: Input = cx.input()?;
        let loras = input.loras.unwrap_or_default();
        comfyui::Lora::check_all(&loras)?;
        let workflow = library.get(&name)?.with_loras(&loras)?;

        if cx.input.get("seconds").is_some() && cx.input.get("frames").is_some() {
            return Err(SkillError::invalid("seconds", "give `seconds` or `frames`, not both"));
        }
        // Seconds become frames at the fps the video will have: the caller's,
        // else the workflow's own.
        let fps = cx
            .input
            .get("fps")
            .and_then(Value::as_f64)
            .or_else(|| workflow.template_value("fps").and_then(Value::as_f64))
            .unwrap_or(16.0);
        let requested = match (cx.input.get("seconds").and_then(Value::as_f64), cx.u64("frames")) {
            (Some(s), _) => Some(((s * fps).round() as u64).max(1)),
            (None, Some(f)) => Some(f),
            (None, None) => None,
        };
        let frames = requested.map(|f| round_frames(f, workflow.frames_step));

        let seed = cx.u64("seed").unwrap_or_else(|| cx.random_seed());
        let mut params = Map::new();
        for key in ["prompt", "negative_prompt", "width", "height", "steps", "cfg", "fps"] {
            if let Some(v) = cx.input.get(key).filter(|v| !v.is_null()) {
                params.insert(key.into(), v.clone());
            }
        }
        if let Some(f) = frames {
            params.insert("frames".into(), json!(f));
        }
        params.insert("seed".into(), json!(seed));
        let files =
            if has_image { vec![FileParam { param: "image".into(), field: "image".into() }] } else { Vec::new() };

        let job = Job { workflow: &workflow, params, files, dataset: None, unreported: Vec::new() };
        let done = comfyui::run(&cx, job, &Options::from_settings(&settings)).await?;

        // Length, rate and size as the file holds them (a workflow may scale
        // or ignore what was bound); what was sent is in data.params.
        let applied = &done.instance.applied;
        let video = done.media.iter().flatten().find_map(|m| m.video.as_ref().filter(|v| v.frames > 0));
        let frames_used = video.map(|v| v.frames).or_else(|| applied.get("frames").and_then(Value::as_u64));
        let fps_used = video
            .and_then(|v| v.fps)
            .map(|f| (f * 1000.0).round() / 1000.0)
            .or_else(|| applied.get("fps").and_then(Value::as_f64))
            .unwrap_or(fps);
        let seconds = frames_used.map(|f| f as f64 / fps_used);
        let mut data = done.data(&workflow);
        data["seed"] = json!(seed);
        data["loras"] = json!(loras);
        data["frames"] = json!(frames_used);
        data["fps"] = json!(fps_used);
        data["seconds"] = json!(seconds.map(|s| (s * 1000.0).round() / 1000.0));
        data["steps"] = applied.get("steps").cloned().unwrap_or(Value::Null);
        for (key, from_file) in [("width", video.map(|v| v.width)), ("height", video.map(|v| v.height))] {
            data[key] = from_file
                .filter(|n| *n > 0)
                .map(Value::from)
                .or_else(|| applied.get(key).cloned())
                .unwrap_or(Value::Null);
        }
        if let (Some(r), Some(f)) = (requested, frames)
            && r != f
        {
            data["frames_requested"] = json!(r);
        }
        let size = match (data.get("width").filter(|v| !v.is_null()), data.get("height").filter(|v| !v.is_null())) {
            (Some(w), Some(h)) => format!(", {w}×{h}"),
            _ => String::new(),
        };
        let length = match (seconds, frames_used) {
            (Some(s), Some(f)) => format!("{s:.2} s video ({f} frames at {fps_used} fps{size})"),
            _ => format!("video{size}"),
        };
        let paths: Vec<&str> = done.artifacts.iter().map(|a| a.path.as_str()).collect();
        let text = format!(
            "Generated a {length} with {} on {} (seed {seed}) in {:.1}s: {}",
            workflow.name,
            done.backend,
            done.timings.total.as_secs_f32(),
            paths.join(", ")
        );
        Ok(Outcome { text, artifacts: done.artifacts, data })
    }
}

c41_kit::skill!(ComfyVideo);

c41_kit::input_schema_test!(Input);
