//! comfyui-image: text→image on the studio's ComfyUI workstations.
//!
//! All protocol work lives in `c41_kit::comfyui`; this crate only maps the
//! skill's input to workflow parameters and the result to an outcome.

use c41_kit::comfyui::{self, Job, Library, Options};
use c41_kit::schema::JsonSchema;
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, Value, json, settings};
use serde::Deserialize;
use serde_json::Map;

struct ComfyImage;

/// The built-in workflows: (name, API graph, binding sidecar).
const BUILTINS: &[(&str, &str, &str)] = &[
    (
        "flux2-dev",
        include_str!("../../workflows/flux2_dev_t2i.json"),
        include_str!("../../workflows/flux2_dev_t2i.bindings.json"),
    ),
    (
        "z-image-turbo",
        include_str!("../../workflows/z_image_turbo_t2i.json"),
        include_str!("../../workflows/z_image_turbo_t2i.bindings.json"),
    ),
];

const DEFAULT_WORKFLOW: &str = "flux2-dev";

// The input. The schema agents see (`input.schema.json`) is derived from
// this type; `C41_BLESS=1 cargo test` rewrites it after a change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What the image shows, in plain English; be concrete about subject, setting, light and style.
    #[schemars(length(min = 1, max = 8000))]
    pub prompt: String,
    /// What to avoid. Only workflows with a negative prompt use it; flux2-dev and z-image-turbo have none and list it in data.ignored.
    #[schemars(length(max = 8000))]
    pub negative_prompt: Option<String>,
    /// Image width in pixels (multiple of 16). Default: the workflow's own (1024 for the built-ins).
    #[schemars(range(min = 256, max = 2048), extend("multipleOf" = 16))]
    pub width: Option<u64>,
    /// Image height in pixels (multiple of 16). Default: the workflow's own (1024 for the built-ins).
    #[schemars(range(min = 256, max = 2048), extend("multipleOf" = 16))]
    pub height: Option<u64>,
    /// Noise seed; the same seed, prompt and settings give the same image. Random when absent; the seed used is returned in data.seed.
    #[schemars(range(min = 0, max = 9007199254740991i64))]
    pub seed: Option<u64>,
    /// Sampler steps. Default: the workflow's own (flux2-dev 20, z-image-turbo 8). More is slower, rarely better past the default.
    #[schemars(range(min = 1, max = 100))]
    pub steps: Option<u64>,
    /// Prompt adherence. Default: the workflow's own (flux2-dev guidance 4.0, z-image-turbo cfg 1.0; keep 1.0 for turbo models).
    #[schemars(range(min = 0, max = 30))]
    pub cfg: Option<f64>,
    /// Number of images, generated as one batch (one seed). Default: the workflow's own (1 for the built-ins).
    #[schemars(range(min = 1, max = 8))]
    pub count: Option<u64>,
    /// Only check which workflows each granted ComfyUI backend can run (node types and model files present) and say what is missing and how to fix it; runs nothing. `c41 doctor` uses it.
    pub check: Option<bool>,
    /// Workflow name. Built-in: flux2-dev (Flux 2 Dev, best quality; the default unless the config sets settings.workflow), z-image-turbo (Z-Image Turbo, fast). The config may add more under settings.workflows.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub workflow: Option<String>,
    /// LoRAs to apply to the model, in order: [{name, strength}], named as ComfyUI lists them (lora-train's data.lora, or a file in models/loras). A backend that lacks one is skipped as for a missing model.
    #[schemars(length(max = 8))]
    pub loras: Option<Vec<comfyui::Lora>>,
}

impl Skill for ComfyImage {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "comfyui-image",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Generate images from a text prompt with ComfyUI (Flux 2 Dev, Z-Image Turbo or a configured workflow).",
        input_schema: include_str!("../input.schema.json"),
        output: "text: what was generated, where and with which seed; artifacts: the image files (PNG as the workflow saves them), in order; \
                     data: {seed, workflow, backend, prompt_id, width, height, steps, count, params (every bound parameter's value), ignored (inputs this workflow does not use), \
                     files: [{server_name, subfolder, path, mime, bytes, sha256}], timings: {prepare_ms, queued_ms, run_ms, download_ms, total_ms}}",
        services: &[comfyui::SERVICE_KIND],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let settings = settings::all();
        let library = Library::new(BUILTINS, &settings);
        if cx.input.get("check").and_then(Value::as_bool) == Some(true) {
            let defaults =
                vec![settings.get("workflow").and_then(Value::as_str).unwrap_or(DEFAULT_WORKFLOW).to_string()];
            return comfyui::check(&library, &[], &defaults).await;
        }
        let name = cx
            .str("workflow")
            .map(str::to_string)
            .or_else(|| settings.get("workflow").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| DEFAULT_WORKFLOW.into());
        let input: Input = cx.input()?;
        let loras = input.loras.unwrap_or_default();
        comfyui::Lora::check_all(&loras)?;
        let workflow = library.get(&name)?.with_loras(&loras)?;

        let seed = cx.u64("seed").unwrap_or_else(|| cx.random_seed());
        let mut params = Map::new();
        for key in ["prompt", "negative_prompt", "width", "height", "steps", "cfg", "count"] {
            if let Some(v) = cx.input.get(key).filter(|v| !v.is_null()) {
                params.insert(key.into(), v.clone());
            }
        }
        params.insert("seed".into(), json!(seed));

        let job = Job { workflow: &workflow, params, files: Vec::new(), dataset: None, unreported: Vec::new() };
        let done = comfyui::run(&cx, job, &Options::from_settings(&settings)).await?;

        let applied = &done.instance.applied;
        let mut data = done.data(&workflow);
        for key in ["width", "height", "steps", "count"] {
            data[key] = applied.get(key).cloned().unwrap_or(Value::Null);
        }
        data["seed"] = json!(seed);
        data["loras"] = json!(loras);
        let n = done.artifacts.len();
        let paths: Vec<&str> = done.artifacts.iter().map(|a| a.path.as_str()).collect();
        let size = match (applied.get("width"), applied.get("height")) {
            (Some(w), Some(h)) => format!(", {w}×{h}"),
            _ => String::new(),
        };
        let with_loras: String = loras.iter().map(|l| format!(" with LoRA {} ({})", l.name, l.strength)).collect();
        let text = format!(
            "Generated {n} image{} with {}{with_loras} on {} (seed {seed}{size}) in {:.1}s: {}",
            if n == 1 { "" } else { "s" },
            workflow.name,
            done.backend,
            done.timings.total.as_secs_f32(),
            paths.join(", ")
        );
        Ok(Outcome { text, artifacts: done.artifacts, data })
    }
}

c41_kit::skill!(ComfyImage);

c41_kit::input_schema_test!(Input);
