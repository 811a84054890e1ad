//! ComfyUI's LoRA training nodes (`comfy_extras/nodes_train.py` of 0.3.64),
//! as a client sees them: the dataset loaders read an input subfolder
//! (images, and for the text variant a `.txt` caption beside each), the
//! trainer takes `steps × grad_accumulation_steps` steps of the configured
//! step delay and can be interrupted between them, `SaveLoRANode` writes a
//! real `.safetensors` file under `output/` and reports nothing, and
//! `LossGraphNode` plots the loss to a temp PNG it reports as a UI image.
//!
//! Quirks kept because clients meet them on the real server:
//! - a missing or empty caption yields *two* conditionings (the empty one is
//!   appended, then the encoded empty text too), so the trainer then fails
//!   with "Number of positive conditions (…) does not match number of
//!   images (…)": a client must caption every image;
//! - `SaveLoRANode` with `steps` names the file `<name>_<steps>_steps_<counter:05>_`,
//!   and the next counter is read from the digits after `<name>_`, so a
//!   prefix reused after a 40-step training continues at 41;
//! - the trainer reports no `progress` (its steps go to tqdm) unless the
//!   server is configured otherwise.

use super::execute::{NodeRun, Stop};
use super::nodes::{Args, Img, Lat, Out, Val, decode_image, fail, resize, ui_file};
use crate::media;
use serde_json::json;
use std::sync::Arc;

fn out(values: Vec<Val>) -> Result<Out, Stop> {
    Ok(Out { values, ui: None })
}

/// `LoadImageSetFromFolderNode` / `LoadImageTextSetFromFolderNode`.
pub(crate) fn load_folder(run: &NodeRun<'_>, class: &str, a: &Args<'_>, sig: u64) -> Result<Out, Stop> {
    let folder = a.str("folder", "");
    let files = run.shared.lock().input_folder_files(&folder);
    let is_image = |n: &str| [".png", ".jpg", ".jpeg", ".webp"].iter().any(|e| n.to_ascii_lowercase().ends_with(e));
    let images: Vec<&(String, bytes::Bytes)> = files.iter().filter(|(n, _)| is_image(n)).collect();
    if images.is_empty() {
        return Err(fail("ValueError", "No valid images found in input"));
    }
    let mut decoded = Vec::new();
    for (name, data) in &images {
        let img = decode_image(data, sig).ok_or_else(|| {
            fail(
                "PIL.UnidentifiedImageError",
                format!("cannot identify image file '{}'", run.input_path(&format!("{folder}/{name}"))),
            )
        })?;
        decoded.push(img);
    }
    let text = class == "LoadImageTextSetFromFolderNode";
    let wanted = |k: &str| Some(a.int(k, -1)).filter(|v| text && *v > 0).map(|v| v as u32);
    let (w, h) = (wanted("width").unwrap_or(decoded[0].w), wanted("height").unwrap_or(decoded[0].h));
    let pics = decoded.into_iter().flat_map(|img| resize(img, w, h).pics).collect();
    let batch = Val::Image(Img { w, h, pics });
    if !text {
        return out(vec![batch]);
    }
    // One conditioning per caption; two for a missing or empty one (see above).
    let conditionings = images
        .iter()
        .map(|(name, _)| {
            let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
            let caption = files.iter().find(|(n, _)| *n == format!("{stem}.txt")).map(|(_, b)| b.clone());
            match caption.map(|b| String::from_utf8_lossy(&b).trim().to_string()) {
                Some(c) if !c.is_empty() => 1,
                _ => 2,
            }
        })
        .sum();
    out(vec![batch, Val::Conditioning(conditionings)])
}

/// `VAEEncode`: one latent per image of the batch.
pub(crate) fn vae_encode(a: &Args<'_>, sig: u64) -> Result<Out, Stop> {
    let img = a.image("pixels")?;
    let batch = img.pics.len().max(1) as u32;
    out(vec![Val::Latent(Lat { w: img.w, h: img.h, length: 1, batch, seed: sig })])
}

/// `TrainLoraNode`: checks the dataset as the real one does, then trains.
pub(crate) async fn train(run: &mut NodeRun<'_>, a: &Args<'_>, sig: u64) -> Result<Out, Stop> {
    let images = a.first_latent().map(|l| l.batch.max(1) * l.length.max(1)).unwrap_or(1);
    let positive = match a.get("positive") {
        Some(Val::Conditioning(n)) => *n,
        _ => 1,
    };
    if !(positive == images || positive == 1) {
        return Err(fail(
            "ValueError",
            format!("Number of positive conditions ({positive}) does not match number of images ({images})."),
        ));
    }
    let existing = a.str("existing_lora", "[None]");
    let existing_steps = if existing == "[None]" {
        0
    } else {
        if !run.shared.loras().contains(&existing) {
            return Err(fail(
                "FileNotFoundError",
                format!("Model in folder 'loras' with filename '{existing}' not found."),
            ));
        }
        existing
            .split("_steps_")
            .next()
            .and_then(|s| s.rsplit('_').next())
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| fail("ValueError", format!("invalid literal for int() with base 10: '{existing}'")))?
    };
    let steps = a.int("steps", 16).clamp(1, 100_000) as u32;
    let total = steps * a.int("grad_accumulation_steps", 1).clamp(1, 1024) as u32;
    let mut loss = Vec::with_capacity(total as usize);
    let seed = a.int("seed", 0) as u64;
    for i in 1..=total {
        run.training_step(i, total).await?;
        // A falling, noisy curve: what a loss graph of a working run looks like.
        let noise = (super::nodes::mix(seed, u64::from(i)) % 1000) as f64 / 1000.0;
        loss.push(0.05 + 0.25 / (1.0 + f64::from(i) / 8.0) + 0.03 * noise);
    }
    let lora = Val::Lora { rank: a.int("rank", 8).clamp(1, 128) as u32, seed: super::nodes::mix(seed, sig) };
    out(vec![Val::Other, lora, Val::Loss(Arc::new(loss)), Val::Number(f64::from(steps + existing_steps))])
}

/// `SaveLoRANode`: the file under `output/<prefix dir>`, no UI output.
pub(crate) fn save_lora(run: &NodeRun<'_>, a: &Args<'_>) -> Result<Out, Stop> {
    let Some(Val::Lora { rank, seed }) = a.get("lora") else {
        return Err(fail("KeyError", "'lora'"));
    };
    let prefix = a.str("prefix", "loras/ComfyUI_trained_lora");
    let (sub, name) = super::save::split_prefix(&prefix);
    let counter = super::save::next_counter(run, "output", &sub, &name);
    let file = match a.get("steps") {
        Some(Val::Number(steps)) => format!("{name}_{}_steps_{counter:05}_.safetensors", *steps as u64),
        _ => format!("{name}_{counter:05}_.safetensors"),
    };
    super::save::store(run, "output", &sub, &file, safetensors(*rank, *seed));
    Ok(Out { values: vec![], ui: None })
}

/// `LossGraphNode`: the loss plotted on 840×520, saved to temp.
pub(crate) async fn loss_graph(run: &NodeRun<'_>, a: &Args<'_>) -> Result<Out, Stop> {
    let Some(Val::Loss(values)) = a.get("loss") else {
        return Err(fail("KeyError", "'loss'"));
    };
    let values = values.clone();
    let png = tokio::task::spawn_blocking(move || plot(&values))
        .await
        .map_err(|e| fail("RuntimeError", e.to_string()))?
        .map_err(|e| fail("RuntimeError", e.0))?;
    // datetime.now().strftime("%Y%m%d_%H%M%S")
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let date: String = stamp.replace('T', "_").chars().filter(|c| c.is_ascii_digit() || *c == '_').collect();
    let file = format!("{}_{date}.png", a.str("filename_prefix", "loss_graph"));
    super::save::store(run, "temp", "", &file, png);
    Ok(Out { values: vec![], ui: Some(json!({"images": [ui_file(&file, "", "temp")]})) })
}

fn plot(loss: &[f64]) -> media::Result<Vec<u8>> {
    let (width, height, margin) = (800usize, 480usize, 40usize);
    let (w, h) = (width + margin, height + margin);
    let mut rgb = vec![255u8; w * h * 3];
    let mut dot = |x: usize, y: usize, c: [u8; 3]| {
        if x < w && y < h {
            rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
        }
    };
    for y in 0..height {
        dot(margin, y, [0, 0, 0]);
    }
    for x in margin..w {
        dot(x, height, [0, 0, 0]);
    }
    let (lo, hi) = loss.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = (hi - lo).max(1e-9);
    let point = |i: usize, v: f64| {
        (margin + i * width / loss.len().max(1), height - ((v - lo) / span * height as f64) as usize)
    };
    for i in 1..loss.len() {
        let ((x0, y0), (x1, y1)) = (point(i - 1, loss[i - 1]), point(i, loss[i]));
        let n = x1.abs_diff(x0).max(y1.abs_diff(y0)).max(1);
        for k in 0..=n {
            let x = x0 as f64 + (x1 as f64 - x0 as f64) * k as f64 / n as f64;
            let y = y0 as f64 + (y1 as f64 - y0 as f64) * k as f64 / n as f64;
            dot(x as usize, y as usize, [0, 0, 255]);
            dot(x as usize, y as usize + 1, [0, 0, 255]);
        }
    }
    media::png(w as u32, h as u32, &rgb)
}

/// A LoRA state dict as `safetensors.torch.save_file` writes it: an 8-byte
/// little-endian header length, the JSON header (dtype, shape and byte range
/// of each tensor; padded with spaces to 8 bytes), then the tensors' bytes.
pub fn safetensors(rank: u32, seed: u64) -> Vec<u8> {
    const DIM: usize = 64;
    let rank = rank as usize;
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for layer in 0..2 {
        for (part, shape) in [("lora_down", [rank, DIM]), ("lora_up", [DIM, rank])] {
            let start = data.len();
            for k in 0..shape[0] * shape[1] {
                // bf16 of a small weight: the high half of an f32.
                let v = ((super::nodes::mix(seed, (layer * 1_000_000 + k) as u64) % 2000) as f32 - 1000.0) / 1e5;
                data.extend_from_slice(&v.to_bits().to_le_bytes()[2..]);
            }
            header.insert(
                format!("diffusion_model.layers.{layer}.attention.qkv.{part}.weight"),
                json!({"dtype": "BF16", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
    }
    let mut text = serde_json::Value::Object(header).to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut file = (text.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&text);
    file.extend_from_slice(&data);
    file
}
