//! The node catalogue: the real `/object_info` of ComfyUI 0.3.64, plus the
//! schemas it lacks (Flux 2, MMAudio, VideoHelperSuite), with every file list
//! rewritten from the simulated install so validation and `/object_info`
//! agree about which models and inputs exist.

use serde_json::{Map, Value, json};
use std::sync::LazyLock;

static REAL: &str = include_str!("object_info.json");

/// The unmodified catalogue with the added node schemas, parsed once.
static BASE: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let mut m: Map<String, Value> = serde_json::from_str(REAL).expect("embedded object_info.json parses");
    for (name, schema) in added_schemas() {
        m.insert(name.to_string(), schema);
    }
    // Flux 2 text encoders load with CLIPLoader type "flux2" (added after 0.3.64).
    if let Some(types) =
        m.get_mut("CLIPLoader").and_then(|c| c.pointer_mut("/input/required/type/0")).and_then(Value::as_array_mut)
    {
        types.push(json!("flux2"));
    }
    m
});

/// Where a file-list input takes its choices from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A model folder (`models/<name>`).
    Folder(&'static str),
    /// The VAE folder, plus the built-in "pixel_space" entry.
    Vae,
    /// Uploaded input files of one media kind.
    Input(MediaKind),
    /// The input directory's subfolders, recursively
    /// (`folder_paths.get_input_subfolders()`).
    InputFolders,
    /// The LoRAs, then `[None]` (`TrainLoraNode`'s `existing_lora`).
    LorasOrNone,
}

/// The media kinds ComfyUI filters input files by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Image,
    Audio,
    Video,
    /// Every file (LoadImageMask does not filter by type).
    Any,
}

impl MediaKind {
    pub(crate) fn matches(self, name: &str) -> bool {
        let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let list: &[&str] = match self {
            MediaKind::Image => &["png", "jpg", "jpeg", "webp", "gif", "bmp", "tiff", "tif"],
            MediaKind::Audio => &["flac", "wav", "mp3", "ogg", "opus", "m4a", "aac"],
            MediaKind::Video => &["mp4", "webm", "mov", "mkv", "avi", "gif", "m4v"],
            MediaKind::Any => return true,
        };
        list.contains(&ext.as_str())
    }
}

/// (class, input, source) for every input whose choices are files.
pub(crate) const FILE_INPUTS: &[(&str, &str, Source)] = &[
    ("CheckpointLoaderSimple", "ckpt_name", Source::Folder("checkpoints")),
    ("CheckpointLoader", "ckpt_name", Source::Folder("checkpoints")),
    ("ImageOnlyCheckpointLoader", "ckpt_name", Source::Folder("checkpoints")),
    ("unCLIPCheckpointLoader", "ckpt_name", Source::Folder("checkpoints")),
    ("UNETLoader", "unet_name", Source::Folder("diffusion_models")),
    ("VAELoader", "vae_name", Source::Vae),
    ("CLIPLoader", "clip_name", Source::Folder("text_encoders")),
    ("DualCLIPLoader", "clip_name1", Source::Folder("text_encoders")),
    ("DualCLIPLoader", "clip_name2", Source::Folder("text_encoders")),
    ("TripleCLIPLoader", "clip_name1", Source::Folder("text_encoders")),
    ("TripleCLIPLoader", "clip_name2", Source::Folder("text_encoders")),
    ("TripleCLIPLoader", "clip_name3", Source::Folder("text_encoders")),
    ("CLIPVisionLoader", "clip_name", Source::Folder("clip_vision")),
    ("LoraLoader", "lora_name", Source::Folder("loras")),
    ("LoraLoaderModelOnly", "lora_name", Source::Folder("loras")),
    ("ControlNetLoader", "control_net_name", Source::Folder("controlnet")),
    ("UpscaleModelLoader", "model_name", Source::Folder("upscale_models")),
    ("AudioEncoderLoader", "audio_encoder_name", Source::Folder("audio_encoders")),
    ("MMAudioModelLoader", "mmaudio_model", Source::Folder("mmaudio")),
    ("MMAudioFeatureUtilsLoader", "vae_model", Source::Folder("mmaudio")),
    ("MMAudioFeatureUtilsLoader", "synchformer_model", Source::Folder("mmaudio")),
    ("MMAudioFeatureUtilsLoader", "clip_model", Source::Folder("mmaudio")),
    ("LoadImage", "image", Source::Input(MediaKind::Image)),
    ("LoadImageMask", "image", Source::Input(MediaKind::Any)),
    ("LoadAudio", "audio", Source::Input(MediaKind::Audio)),
    ("LoadVideo", "file", Source::Input(MediaKind::Video)),
    ("LoadImageSetFromFolderNode", "folder", Source::InputFolders),
    ("LoadImageTextSetFromFolderNode", "folder", Source::InputFolders),
    ("TrainLoraNode", "existing_lora", Source::LorasOrNone),
];

/// Folder aliases ComfyUI accepts for `/models/{folder}` (old and new names).
pub(crate) fn canonical_folder(name: &str) -> &str {
    match name {
        "unet" => "diffusion_models",
        "clip" => "text_encoders",
        "t2i_adapter" => "controlnet",
        other => other,
    }
}

/// Model folders `/models` lists, as a real server of that era does.
pub(crate) const FOLDERS: &[&str] = &[
    "checkpoints",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "latent_upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
    "mmaudio",
];

/// The catalogue with file lists filled by `choices`.
pub(crate) fn catalogue(choices: impl Fn(Source) -> Vec<String>) -> Map<String, Value> {
    let mut m = BASE.clone();
    for (class, input, source) in FILE_INPUTS {
        let list = Value::from(choices(*source));
        let Some(spec) = m.get_mut(*class).and_then(|c| input_spec_mut(c, input)) else {
            continue;
        };
        set_options(spec, list);
    }
    m
}

/// The catalogue entry for one class, with file lists filled by `choices`.
pub(crate) fn class(name: &str, choices: impl Fn(Source) -> Vec<String>) -> Option<Value> {
    let mut c = BASE.get(name)?.clone();
    for (class, input, source) in FILE_INPUTS.iter().filter(|(c, _, _)| *c == name) {
        debug_assert_eq!(*class, name);
        if let Some(spec) = input_spec_mut(&mut c, input) {
            set_options(spec, Value::from(choices(*source)));
        }
    }
    Some(c)
}

fn input_spec_mut<'a>(class: &'a mut Value, input: &str) -> Option<&'a mut Value> {
    let inputs = class.get_mut("input")?;
    for cat in ["required", "optional"] {
        if inputs.get(cat).and_then(|c| c.get(input)).is_some() {
            return inputs.get_mut(cat)?.get_mut(input);
        }
    }
    None
}

/// Replaces the choices of a combo spec, old (`[[...], {...}]`) or new
/// (`["COMBO", {"options": [...]}]`) style.
fn set_options(spec: &mut Value, list: Value) {
    let Some(arr) = spec.as_array_mut() else {
        return;
    };
    if arr.first().and_then(Value::as_str) == Some("COMBO") {
        if let Some(opts) = arr.get_mut(1).and_then(Value::as_object_mut) {
            opts.insert("options".into(), list);
        }
    } else if let Some(first) = arr.first_mut() {
        *first = list;
    }
}

/// `[name, display name, python module, category]` of an added node.
type Names<'a> = [&'a str; 4];

fn node(names: Names<'_>, required: Value, optional: Option<Value>, outputs: &[&str], output_node: bool) -> Value {
    let [name, display, module, category] = names;
    let order = |v: &Value| -> Vec<String> { v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default() };
    let mut input = json!({ "required": required });
    let mut input_order = json!({ "required": order(&required) });
    if let Some(opt) = optional {
        input_order["optional"] = json!(order(&opt));
        input["optional"] = opt;
    }
    json!({
        "input": input,
        "input_order": input_order,
        "output": outputs,
        "output_is_list": outputs.iter().map(|_| false).collect::<Vec<_>>(),
        "output_name": outputs,
        "name": name,
        "display_name": display,
        "description": "",
        "python_module": module,
        "category": category,
        "output_node": output_node,
    })
}

fn added_schemas() -> Vec<(&'static str, Value)> {
    let int =
        |d: i64, min: i64, max: i64, step: i64| json!(["INT", {"default": d, "min": min, "max": max, "step": step}]);
    let seed = json!(["INT", {"default": 0, "min": 0, "max": 18446744073709551615u64, "control_after_generate": true}]);
    vec![
        (
            "Flux2Scheduler",
            node(
                ["Flux2Scheduler", "Flux2Scheduler", "comfy_extras.nodes_flux", "sampling/custom_sampling/schedulers"],
                json!({"steps": int(20, 1, 4096, 1), "width": int(1024, 16, 16384, 1), "height": int(1024, 16, 16384, 1)}),
                None,
                &["SIGMAS"],
                false,
            ),
        ),
        (
            "EmptyFlux2LatentImage",
            node(
                ["EmptyFlux2LatentImage", "Empty Flux 2 Latent", "comfy_extras.nodes_flux", "latent"],
                json!({"width": int(1024, 16, 16384, 16), "height": int(1024, 16, 16384, 16), "batch_size": int(1, 1, 4096, 1)}),
                None,
                &["LATENT"],
                false,
            ),
        ),
        (
            "MMAudioModelLoader",
            node(
                ["MMAudioModelLoader", "MMAudio ModelLoader", "custom_nodes.ComfyUI-MMAudio", "MMAudio"],
                json!({"mmaudio_model": [[], {"tooltip": "These models are loaded from the 'ComfyUI/models/mmaudio' -folder"}],
                       "base_precision": [["fp16", "fp32", "bf16"], {"default": "fp16"}]}),
                None,
                &["MMAUDIO_MODEL"],
                false,
            ),
        ),
        (
            "MMAudioFeatureUtilsLoader",
            node(
                ["MMAudioFeatureUtilsLoader", "MMAudio FeatureUtilsLoader", "custom_nodes.ComfyUI-MMAudio", "MMAudio"],
                json!({"vae_model": [[], {"tooltip": "These models are loaded from 'ComfyUI/models/mmaudio'"}],
                       "synchformer_model": [[], {}],
                       "clip_model": [[], {}]}),
                Some(json!({"bigvgan_vocoder_model": ["VOCODER_MODEL"],
                            "mode": [["16k", "44k"], {"default": "44k"}],
                            "precision": [["fp16", "fp32", "bf16"], {"default": "fp16"}]})),
                &["MMAUDIO_FEATUREUTILS"],
                false,
            ),
        ),
        (
            "MMAudioSampler",
            node(
                ["MMAudioSampler", "MMAudio Sampler", "custom_nodes.ComfyUI-MMAudio", "MMAudio"],
                json!({"mmaudio_model": ["MMAUDIO_MODEL"],
                       "feature_utils": ["MMAUDIO_FEATUREUTILS"],
                       "duration": ["FLOAT", {"default": 8.0, "min": 1.0, "max": 60.0, "step": 0.01}],
                       "steps": int(25, 1, 100, 1),
                       "cfg": ["FLOAT", {"default": 4.5, "min": 1.0, "max": 100.0, "step": 0.1}],
                       "seed": seed,
                       "prompt": ["STRING", {"default": "", "multiline": true}],
                       "negative_prompt": ["STRING", {"default": "", "multiline": true}],
                       "mask_away_clip": ["BOOLEAN", {"default": false}],
                       "force_offload": ["BOOLEAN", {"default": true}]}),
                Some(json!({"images": ["IMAGE"]})),
                &["AUDIO"],
                false,
            ),
        ),
        (
            "VHS_VideoCombine",
            node(
                [
                    "VHS_VideoCombine",
                    "Video Combine 🎥🅥🅗🅢",
                    "custom_nodes.ComfyUI-VideoHelperSuite",
                    "Video Helper Suite 🎥🅥🅗🅢",
                ],
                json!({"images": ["IMAGE"],
                       "frame_rate": ["FLOAT", {"default": 8, "min": 1, "step": 1}],
                       "loop_count": ["INT", {"default": 0, "min": 0, "max": 100, "step": 1}],
                       "filename_prefix": ["STRING", {"default": "AnimateDiff"}],
                       "format": [["image/gif", "image/webp", "video/webm", "video/h264-mp4", "video/h265-mp4"], {}],
                       "pingpong": ["BOOLEAN", {"default": false}],
                       "save_output": ["BOOLEAN", {"default": true}]}),
                Some(json!({"audio": ["AUDIO"], "meta_batch": ["VHS_BatchManager"], "vae": ["VAE"]})),
                &["VHS_FILENAMES"],
                true,
            ),
        ),
    ]
}
