//! lora-train: trains a LoRA on the studio's ComfyUI workstation with
//! ComfyUI's own training nodes, for client-specific characters, products
//! and styles.
//!
//! The dataset goes into an input subfolder of its own (`c41-lora/<run id>`,
//! so two trainings never mix): each image as `NNN.<ext>` with a caption
//! beside it as `NNN.txt` (ComfyUI's text-set loader pairs them by name, and
//! an image without a caption breaks the training, see the simulator's
//! `training` module). `SaveLoRANode` reports no file, so the skill gives it
//! a prefix of its own (`loras/c41/<name>-<run>`), derives the name it writes
//! (`<name>-<run>_<steps>_steps_00001_.safetensors`) and downloads that
//! through `/view`, with the loss graph. Everything else (backend choice,
//! following, cancel, resume after a restart, failover) is the shared
//! ComfyUI client's.

use c41_kit::comfyui::{self, Dataset, DatasetFile, Job, Library, Options, OutputFile};
use c41_kit::schema::JsonSchema;
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, Value, inputs, json, settings};
use serde::Deserialize;
use serde_json::Map;

struct LoraTrain;

/// The built-in base workflows: (name, API graph, binding sidecar).
const BUILTINS: &[(&str, &str, &str)] = &[(
    "z-image",
    include_str!("../../workflows/z_image_lora_train.json"),
    include_str!("../../workflows/z_image_lora_train.bindings.json"),
)];

const DEFAULT_BASE: &str = "z-image";

/// Where datasets go below ComfyUI's `input/`.
pub const DATASET_FOLDER: &str = "c41-lora";
/// Where `SaveLoRANode` writes below `output/` (and so, with `output/loras`
/// among the LoRA paths, below the LoRA folder: `c41/...`).
pub const LORA_FOLDER: &str = "loras/c41";

/// The image types ComfyUI's dataset loader reads.
const IMAGE_TYPES: &[&str] = &["png", "jpg", "jpeg", "webp"];
/// Largest training image accepted.
const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// A file input: a path or an `artifact:` reference.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(extend("format" = "c41-file"))]
pub struct FileInput(pub String);

// The input. The schema agents see (`input.schema.json`) is derived from
// this type; `C41_BLESS=1 cargo test` rewrites it after a change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The training images (PNG, JPEG or WebP), as paths or artifact: references; 4 to 500. 10-30 varied images of the subject train best.
    #[schemars(length(min = 4, max = 500))]
    pub images: Vec<FileInput>,
    /// One caption per image, in the same order (include the trigger word in each). Default: `caption` for every image.
    pub captions: Option<Vec<String>>,
    /// The caption of every image without one of its own; `{trigger}` is replaced by `trigger`. Default: "a photo of {trigger}".
    #[schemars(length(min = 1, max = 2000))]
    pub caption: Option<String>,
    /// The word the LoRA learns for the subject (use it in prompts later), e.g. "fxfox". Needed unless `captions` are given.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{2,40}$"))]
    pub trigger: Option<String>,
    /// The LoRA's name: lowercase letters, digits, - and _ (the file is named after it and the run).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,39}$"))]
    pub name: String,
    /// Base model workflow. Built-in: z-image (Z-Image, ComfyUI's trainer). The config may add more under settings.workflows.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub base: Option<String>,
    /// Training steps. Default: the workflow's own (100 for z-image).
    #[schemars(range(min = 1, max = 100000))]
    pub steps: Option<u64>,
    /// LoRA rank (size and capacity). Default: the workflow's own (16 for z-image).
    #[schemars(range(min = 1, max = 128))]
    pub rank: Option<u64>,
    /// Learning rate. Default: the workflow's own (0.0003 for z-image).
    #[schemars(range(min = 0.0000001, max = 1))]
    pub learning_rate: Option<f64>,
    /// Images per training step. Default: the workflow's own (1).
    #[schemars(range(min = 1, max = 64))]
    pub batch_size: Option<u64>,
    /// Seed of the weight initialisation and noise; random when absent, returned in data.seed.
    #[schemars(range(min = 0, max = 9007199254740991i64))]
    pub seed: Option<u64>,
    /// Side in pixels the images are resized to (square). Default: the workflow's own (512 for z-image).
    #[schemars(range(min = 256, max = 2048), extend("multipleOf" = 64))]
    pub resolution: Option<u64>,
    /// Only check which base workflows each granted ComfyUI backend can run; trains nothing. `c41 doctor` uses it.
    pub check: Option<bool>,
}

/// The dataset as uploaded: each image as `NNN.<ext>`, its caption as `NNN.txt`.
fn dataset(input: &Input, run: &str) -> Result<Dataset, SkillError> {
    let fields: Vec<String> = inputs::fields().into_iter().filter(|f| f.starts_with("images/")).collect();
    if fields.len() != input.images.len() {
        return Err(SkillError::internal(format!("the host opened {} of {} images", fields.len(), input.images.len())));
    }
    if let Some(captions) = &input.captions
        && captions.len() != input.images.len()
    {
        return Err(SkillError::invalid(
            "captions",
            format!("{} captions for {} images: give one per image, in order", captions.len(), input.images.len()),
        ));
    }
    let template = input.caption.as_deref().unwrap_or("a photo of {trigger}");
    let default_caption = match (&input.trigger, template.contains("{trigger}")) {
        (Some(t), _) => Some(template.replace("{trigger}", t)),
        (None, false) => Some(template.to_string()),
        (None, true) => None,
    };
    let mut files = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let file = inputs::open(field)?;
        let name = file.name();
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        if !IMAGE_TYPES.contains(&ext.as_str()) {
            return Err(SkillError::invalid(
                field.as_str(),
                format!("{name}: ComfyUI's dataset loader reads only {} images", IMAGE_TYPES.join(", ")),
            ));
        }
        if file.size() > MAX_IMAGE_BYTES {
            return Err(SkillError::invalid(field.as_str(), format!("{name} is over {} MiB", MAX_IMAGE_BYTES >> 20)));
        }
        let caption = match input.captions.as_ref().map(|c| c[i].trim().to_string()) {
            Some(c) if !c.is_empty() => c,
            Some(_) => return Err(SkillError::invalid(format!("captions/{i}"), "empty: every image needs a caption")),
            None => default_caption.clone().ok_or_else(|| {
                SkillError::invalid("trigger", "give a trigger word (or captions, or a caption without {trigger})")
            })?,
        };
        files.push(DatasetFile::Input { field: field.clone(), name: format!("{i:03}.{ext}") });
        files.push(DatasetFile::Text { name: format!("{i:03}.txt"), text: caption });
    }
    Ok(Dataset { param: "dataset".into(), subfolder: format!("{DATASET_FOLDER}/{run}"), files })
}

/// The name `SaveLoRANode` gives the file for `prefix` after `steps` steps:
/// `<prefix name>_<steps>_steps_<counter:05>_.safetensors`, counter 1 in a
/// prefix used once.
pub fn saved_name(prefix_name: &str, steps: u64) -> String {
    format!("{prefix_name}_{steps}_steps_00001_.safetensors")
}

impl Skill for LoraTrain {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "lora-train",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Train a LoRA (a character, product or style) from captioned images with ComfyUI's trainer on the workstation (base: Z-Image).",
        input_schema: include_str!("../input.schema.json"),
        output: "text: what was trained, where, and the name to use it by; artifacts: the LoRA (.safetensors) and the loss graph (PNG); \
                 data: {lora (its name in ComfyUI's LoRA list), listed (whether the backend lists it), file: {subfolder, filename}, \
                 dataset (the input subfolder), images, steps, rank, learning_rate, batch_size, resolution, seed, base, backend, prompt_id, timings, ...}",
        services: &[comfyui::SERVICE_KIND],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let settings = settings::all();
        let library = Library::new(BUILTINS, &settings);
        if cx.input.get("check").and_then(Value::as_bool) == Some(true) {
            let defaults = vec![settings.get("base").and_then(Value::as_str).unwrap_or(DEFAULT_BASE).to_string()];
            return comfyui::check(&library, &["dataset"], &defaults).await;
        }
        let input: Input = cx.input()?;
        let base = input
            .base
            .clone()
            .or_else(|| settings.get("base").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| DEFAULT_BASE.into());
        let workflow = library.get(&base)?;

        // The run's own names: a short id keeps file names readable.
        let run: String = cx.id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
        let dataset = dataset(&input, &cx.id)?;
        let seed = input.seed.unwrap_or_else(|| cx.random_seed());
        let prefix_name = format!("{}-{run}", input.name);
        let mut params = Map::new();
        for key in ["steps", "rank", "learning_rate", "batch_size", "resolution"] {
            if let Some(v) = cx.input.get(key).filter(|v| !v.is_null()) {
                params.insert(key.into(), v.clone());
            }
        }
        params.insert("seed".into(), json!(seed));
        params.insert("prefix".into(), json!(format!("{LORA_FOLDER}/{prefix_name}")));
        let steps = input.steps.or_else(|| workflow.template_value("steps").and_then(Value::as_u64)).unwrap_or(16);
        let lora_file = OutputFile {
            filename: saved_name(&prefix_name, steps),
            subfolder: LORA_FOLDER.into(),
            kind: "output".into(),
        };
        let images = input.images.len();
        let subfolder = dataset.subfolder.clone();
        let job = Job {
            workflow: &workflow,
            params,
            files: Vec::new(),
            dataset: Some(dataset),
            unreported: vec![lora_file.clone()],
        };
        let done = comfyui::run(&cx, job, &Options::from_settings(&settings)).await?;

        // Its name as LoRA loaders see it, when `output/loras` is a LoRA path.
        let lora = format!("c41/{}", lora_file.filename);
        let listed = lora_listed(&done.backend, &lora).await;
        let applied = &done.instance.applied;
        let mut data = done.data(&workflow);
        for key in ["steps", "rank", "learning_rate", "batch_size", "resolution"] {
            data[key] = applied.get(key).cloned().unwrap_or(Value::Null);
        }
        data["seed"] = json!(seed);
        data["base"] = json!(workflow.name);
        data["images"] = json!(images);
        data["dataset"] = json!(subfolder);
        data["lora"] = json!(lora);
        data["listed"] = json!(listed);
        data["file"] = json!({"subfolder": lora_file.subfolder, "filename": lora_file.filename});
        let path = done.artifacts.first().map(|a| a.path.as_str()).unwrap_or_default();
        let mut text = format!(
            "Trained LoRA `{}` on {} ({images} images, {steps} steps, seed {seed}) in {:.1}s: {path}",
            input.name,
            done.backend,
            done.timings.total.as_secs_f32()
        );
        if listed {
            text.push_str(&format!(
                ". {} lists it as the LoRA `{lora}` (LoraLoaderModelOnly's lora_name)",
                done.backend
            ));
        } else {
            text.push_str(&format!(
                ". {} does not list it as a LoRA: copy output/{}/{} into models/loras/c41/ on that machine, \
                 or add output/loras to the loras paths in ComfyUI's extra_model_paths.yaml",
                done.backend, lora_file.subfolder, lora_file.filename
            ));
        }
        Ok(Outcome { text, artifacts: done.artifacts, data })
    }
}

/// Whether `backend` lists `lora` among the LoRAs `LoraLoaderModelOnly` can
/// load. Best effort: a failed look is "no".
async fn lora_listed(backend: &str, lora: &str) -> bool {
    let Some(service) = settings::services_of_kind(comfyui::SERVICE_KIND).into_iter().find(|s| s.name == backend)
    else {
        return false;
    };
    let info = comfyui::Backend::new(service).object_info("LoraLoaderModelOnly").await;
    let list = info.ok().flatten().and_then(|v| v.pointer("/input/required/lora_name/0").cloned());
    list.and_then(|l| l.as_array().map(|a| a.iter().any(|n| n == lora))).unwrap_or(false)
}

c41_kit::skill!(LoraTrain);

c41_kit::input_schema_test!(Input);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saved_name_is_what_save_lora_node_writes() {
        // comfy_extras/nodes_train.py SaveLoRA.save with steps, counter 1.
        assert_eq!(saved_name("fox-1a2b3c4d", 40), "fox-1a2b3c4d_40_steps_00001_.safetensors");
    }
}
