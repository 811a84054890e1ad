//! What nodes do: a small symbolic model of ComfyUI's data (images, latents,
//! audio, video) that is cheap to pass around, rendered into real files only
//! by the save nodes. Sizes, frame counts, fps and durations flow through the
//! graph as in ComfyUI, so outputs have the shape the workflow asked for.

use super::execute::{NodeRun, Stop};
use crate::media::{self, Frames, Pcm};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub(crate) enum Pic {
    Solid(u32),
    Gradient(u64, u32),
    Pixels { w: u32, h: u32, rgb: Arc<Vec<u8>> },
}

#[derive(Clone, Debug)]
pub(crate) struct Img {
    pub w: u32,
    pub h: u32,
    pub pics: Vec<Pic>,
}

impl Img {
    fn render(&self, i: usize) -> Vec<u8> {
        match &self.pics[i] {
            Pic::Solid(c) => media::solid_frame(self.w, self.h, *c),
            Pic::Gradient(seed, idx) => media::gradient_frame(self.w, self.h, *seed, *idx),
            Pic::Pixels { w, h, rgb } if *w == self.w && *h == self.h => rgb.to_vec(),
            Pic::Pixels { w, h, rgb } => {
                let mut out = Vec::with_capacity((self.w * self.h * 3) as usize);
                for y in 0..self.h {
                    let sy = (u64::from(y) * u64::from(*h) / u64::from(self.h)) as usize;
                    for x in 0..self.w {
                        let sx = (u64::from(x) * u64::from(*w) / u64::from(self.w)) as usize;
                        let p = (sy * *w as usize + sx) * 3;
                        out.extend_from_slice(&rgb[p..p + 3]);
                    }
                }
                out
            }
        }
    }

    pub(crate) fn frames(&self) -> Frames {
        Frames { width: self.w, height: self.h, rgb: (0..self.pics.len()).map(|i| self.render(i)).collect() }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Lat {
    pub w: u32,
    pub h: u32,
    pub length: u32,
    pub batch: u32,
    pub seed: u64,
}

#[derive(Clone, Debug)]
pub(crate) enum Sound {
    Silence,
    Tone(u64),
    Pcm(Arc<Vec<f32>>),
}

#[derive(Clone, Debug)]
pub(crate) struct Aud {
    pub rate: u32,
    pub channels: u16,
    pub seconds: f64,
    pub sound: Sound,
}

impl Aud {
    pub(crate) fn pcm(&self) -> Pcm {
        let n = (self.seconds * f64::from(self.rate)).round() as usize * usize::from(self.channels);
        let samples = match &self.sound {
            Sound::Silence => vec![0.0; n],
            Sound::Tone(seed) => media::tone(self.rate, self.channels, self.seconds, *seed),
            Sound::Pcm(p) => p.to_vec(),
        };
        Pcm { sample_rate: self.rate, channels: self.channels, samples }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Vid {
    Made { images: Img, fps: f64, audio: Option<Aud> },
    File { name: String, data: Bytes },
}

#[derive(Clone, Debug)]
pub(crate) enum Val {
    Image(Img),
    Latent(Lat),
    Audio(Aud),
    Video(Vid),
    /// A FLOAT output (a video's frame rate), or an INT passed by link.
    Number(f64),
    /// `TrainLoraNode`'s LORA_MODEL: enough to write its file.
    Lora {
        rank: u32,
        seed: u64,
    },
    /// A LOSS_MAP: the loss at each training step.
    Loss(Arc<Vec<f64>>),
    /// CONDITIONING of a dataset loader: how many conditionings.
    Conditioning(u32),
    Other,
}

/// A node's result: values by output slot, and the UI output of save nodes.
pub(crate) struct Out {
    pub values: Vec<Val>,
    pub ui: Option<Value>,
}

pub(crate) fn fail(ty: &str, msg: impl Into<String>) -> Stop {
    Stop::Failed { ty: ty.into(), msg: msg.into() }
}

/// Inputs of one node: literals from the prompt and linked values.
pub(crate) struct Args<'a> {
    pub literal: &'a Map<String, Value>,
    pub linked: Vec<(String, Val)>,
}

impl Args<'_> {
    pub(crate) fn int(&self, k: &str, d: i64) -> i64 {
        self.literal.get(k).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))).unwrap_or(d)
    }
    fn float(&self, k: &str, d: f64) -> f64 {
        let linked = || match self.get(k) {
            Some(Val::Number(n)) => Some(*n),
            _ => None,
        };
        self.literal.get(k).and_then(Value::as_f64).or_else(linked).unwrap_or(d)
    }
    pub(crate) fn str(&self, k: &str, d: &str) -> String {
        self.literal.get(k).and_then(Value::as_str).unwrap_or(d).to_string()
    }
    pub(crate) fn get(&self, k: &str) -> Option<&Val> {
        self.linked.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }
    fn first_image(&self) -> Option<&Img> {
        self.linked.iter().find_map(|(_, v)| if let Val::Image(i) = v { Some(i) } else { None })
    }
    pub(crate) fn first_latent(&self) -> Option<&Lat> {
        self.linked.iter().find_map(|(_, v)| if let Val::Latent(l) = v { Some(l) } else { None })
    }
    fn first_audio(&self) -> Option<&Aud> {
        self.linked.iter().find_map(|(_, v)| if let Val::Audio(a) = v { Some(a) } else { None })
    }
    fn first_video(&self) -> Option<&Vid> {
        self.linked.iter().find_map(|(_, v)| if let Val::Video(a) = v { Some(a) } else { None })
    }
    pub(crate) fn image(&self, k: &str) -> Result<Img, Stop> {
        match self.get(k) {
            Some(Val::Image(i)) => Ok(i.clone()),
            _ => self.first_image().cloned().ok_or_else(|| fail("KeyError", format!("'{k}'"))),
        }
    }
    fn size(&self) -> Option<(u32, u32)> {
        let w = self.literal.get("width").and_then(Value::as_u64)?;
        let h = self.literal.get("height").and_then(Value::as_u64)?;
        Some((w.clamp(1, 16384) as u32, h.clamp(1, 16384) as u32))
    }
}

pub(crate) fn mix(a: u64, b: u64) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    (a, b).hash(&mut h);
    h.finish()
}

fn latent_images(l: &Lat) -> Img {
    let n = l.length.max(1) * l.batch.max(1);
    Img { w: l.w, h: l.h, pics: (0..n).map(|i| Pic::Gradient(l.seed, i)).collect() }
}

const SAMPLERS: &[&str] = &["KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced", "MMAudioSampler"];

fn sampler_steps(class: &str, a: &Args<'_>, prompt: &indexmap::IndexMap<String, Value>) -> u32 {
    let steps = a.int("steps", 20).max(0);
    let n = match class {
        "KSamplerAdvanced" => steps.min(a.int("end_at_step", 10000)) - a.int("start_at_step", 0),
        "SamplerCustomAdvanced" | "SamplerCustom" => prompt
            .values()
            .find(|n| n["class_type"].as_str().is_some_and(|c| c.ends_with("Scheduler")))
            .and_then(|n| n.pointer("/inputs/steps"))
            .and_then(Value::as_i64)
            .unwrap_or(20),
        _ => steps,
    };
    n.clamp(0, 10_000) as u32
}

/// Runs one node. `sig` is its cache key, also the seed of anything it makes.
pub(crate) async fn run(
    run: &mut NodeRun<'_>,
    class: &str,
    a: &Args<'_>,
    outputs: &[String],
    sig: u64,
) -> Result<Out, Stop> {
    if let Some(msg) = run.shared.faults.node_failure(class) {
        return Err(fail("RuntimeError", msg));
    }
    if SAMPLERS.contains(&class) {
        let steps = sampler_steps(class, a, &run.job.prompt);
        let preview_size = a.first_latent().map(|l| (l.w.min(64), l.h.min(64))).unwrap_or((64, 64));
        for i in 1..=steps {
            let preview = if run.shared.cfg.previews {
                let (w, h) = preview_size;
                media::png(w, h, &media::gradient_frame(w, h, sig, i)).ok()
            } else {
                None
            };
            run.step(i, steps, preview).await?;
        }
    } else {
        run.idle().await?;
    }
    let out = |values: Vec<Val>| Ok(Out { values, ui: None });
    match class {
        "EmptyImage" => {
            let (w, h) = a.size().unwrap_or((512, 512));
            let color = a.int("color", 0) as u32;
            out(vec![Val::Image(Img { w, h, pics: vec![Pic::Solid(color); a.int("batch_size", 1).max(1) as usize] })])
        }
        "ImageBatch" => {
            let (i1, i2) = (a.image("image1")?, a.image("image2")?);
            let mut pics = i1.pics.clone();
            for (k, p) in i2.pics.iter().enumerate() {
                pics.push(match p {
                    Pic::Pixels { .. } | Pic::Solid(_) => p.clone(),
                    Pic::Gradient(..) if i2.w == i1.w && i2.h == i1.h => p.clone(),
                    Pic::Gradient(..) => Pic::Pixels { w: i2.w, h: i2.h, rgb: Arc::new(i2.render(k)) },
                });
            }
            out(vec![Val::Image(Img { w: i1.w, h: i1.h, pics })])
        }
        "VAEDecode" | "VAEDecodeTiled" | "VAEDecodeHunyuan3D" => {
            let l = a.first_latent().cloned().unwrap_or(Lat { w: 512, h: 512, length: 1, batch: 1, seed: sig });
            out(vec![Val::Image(latent_images(&l))])
        }
        "LoadImage" | "LoadImageMask" => {
            let name = a.str("image", "");
            let data =
                run.input_file(&name).ok_or_else(|| fail("FileNotFoundError", format!("No such file: '{name}'")))?;
            let img = decode_image(&data, sig).ok_or_else(|| {
                fail("PIL.UnidentifiedImageError", format!("cannot identify image file '{}'", run.input_path(&name)))
            })?;
            out(vec![Val::Image(img), Val::Other])
        }
        "LoadAudio" => {
            let name = a.str("audio", "");
            let data =
                run.input_file(&name).ok_or_else(|| fail("FileNotFoundError", format!("No such file: '{name}'")))?;
            let aud = decode_audio(&data).ok_or_else(|| {
                fail("RuntimeError", format!("Failed to load audio: could not decode '{}'", run.input_path(&name)))
            })?;
            out(vec![Val::Audio(aud)])
        }
        "LoadVideo" => {
            let name = a.str("file", "");
            let data =
                run.input_file(&name).ok_or_else(|| fail("FileNotFoundError", format!("No such file: '{name}'")))?;
            out(vec![Val::Video(Vid::File { name, data })])
        }
        "EmptyAudio" => out(vec![Val::Audio(Aud {
            rate: a.int("sample_rate", 44100).clamp(1, 384_000) as u32,
            channels: a.int("channels", 2).clamp(1, 8) as u16,
            seconds: a.float("duration", 60.0).clamp(0.0, 3600.0),
            sound: Sound::Silence,
        })]),
        "MMAudioSampler" => out(vec![Val::Audio(Aud {
            rate: 44100,
            channels: 1,
            seconds: a.float("duration", 8.0).clamp(0.0, 3600.0),
            sound: Sound::Tone(sig),
        })]),
        "CreateVideo" => {
            let images = a.image("images")?;
            let audio = match a.get("audio") {
                Some(Val::Audio(au)) => Some(au.clone()),
                _ => None,
            };
            out(vec![Val::Video(Vid::Made { images, fps: a.float("fps", 30.0), audio })])
        }
        // nodes_images.py: `s_in[batch_index:batch_index + length]`, both
        // clamped to the batch.
        "ImageFromBatch" => {
            let mut img = a.image("image")?;
            let n = img.pics.len();
            let from = (a.int("batch_index", 0).max(0) as usize).min(n.saturating_sub(1));
            let length = (a.int("length", 1).max(1) as usize).min(n - from);
            img.pics = img.pics[from..from + length].to_vec();
            out(vec![Val::Image(img)])
        }
        "GetVideoComponents" => match a.first_video() {
            Some(Vid::Made { images, audio, fps }) => out(vec![
                Val::Image(images.clone()),
                Val::Audio(audio.clone().unwrap_or(Aud {
                    rate: 44100,
                    channels: 2,
                    seconds: 0.0,
                    sound: Sound::Silence,
                })),
                Val::Number(*fps),
            ]),
            Some(Vid::File { name, data }) => {
                let (images, fps) = file_frames(data, sig).ok_or_else(|| run.invalid_video(name))?;
                // The sound track is not decoded: a clip's length of silence.
                let seconds = images.pics.len() as f64 / fps;
                let audio = Aud { rate: 44100, channels: 2, seconds, sound: Sound::Silence };
                out(vec![Val::Image(images), Val::Audio(audio), Val::Number(fps)])
            }
            None => Err(fail("KeyError", "'video'")),
        },
        "LoadImageSetFromFolderNode" | "LoadImageTextSetFromFolderNode" => {
            super::training::load_folder(run, class, a, sig)
        }
        "VAEEncode" => super::training::vae_encode(a, sig),
        "TrainLoraNode" => super::training::train(run, a, sig).await,
        "SaveLoRANode" => super::training::save_lora(run, a),
        "LossGraphNode" => super::training::loss_graph(run, a).await,
        _ if SAVES.contains(&class) => super::save::save(run, class, a).await,
        _ => out(generic(class, a, outputs, sig)),
    }
}

/// An uploaded video's frames, as PyAV gives them to `GetVideoComponents`,
/// and its frame rate. The simulator reads H.264 in MP4/MOV (what Wan and
/// the simulator write, and what phones record); when its decoder gives up
/// on a stream, stand-in frames of the container's size and count. `None`:
/// no such video (ComfyUI then fails with PyAV's InvalidDataError).
fn file_frames(data: &[u8], seed: u64) -> Option<(Img, f64)> {
    let v = crate::services::decode::mp4_video(data).ok()?;
    let img = match v.frames {
        Some(f) if !f.rgb.is_empty() => Img {
            w: f.width,
            h: f.height,
            pics: f.rgb.into_iter().map(|rgb| Pic::Pixels { w: f.width, h: f.height, rgb: Arc::new(rgb) }).collect(),
        },
        _ => Img { w: v.width, h: v.height, pics: (0..v.frame_count).map(|i| Pic::Gradient(seed, i)).collect() },
    };
    Some((img, v.fps))
}

const SAVES: &[&str] = &[
    "SaveImage",
    "PreviewImage",
    "SaveImageWebsocket",
    "SaveAnimatedWEBP",
    "SaveAnimatedPNG",
    "SaveWEBM",
    "SaveVideo",
    "SaveAudio",
    "SaveAudioMP3",
    "SaveAudioOpus",
    "PreviewAudio",
    "VHS_VideoCombine",
];

/// Nodes the simulator has no special model of: each output slot takes the
/// first input of the same kind (resized when the node sets width/height),
/// or something new of the requested size.
fn generic(class: &str, a: &Args<'_>, outputs: &[String], sig: u64) -> Vec<Val> {
    outputs
        .iter()
        .enumerate()
        .map(|(i, ty)| {
            let seed = mix(sig, i as u64);
            match ty.as_str() {
                "IMAGE" => {
                    let mut img = a.first_image().cloned().unwrap_or_else(|| {
                        let (w, h) = a.size().unwrap_or((512, 512));
                        Img { w, h, pics: vec![Pic::Gradient(seed, 0)] }
                    });
                    if let Some((w, h)) = a.size() {
                        img = resize(img, w, h);
                    }
                    Val::Image(img)
                }
                "LATENT" => {
                    let made = a.size().map(|(w, h)| Lat {
                        w,
                        h,
                        length: a.int("length", 1).max(1) as u32,
                        batch: a.int("batch_size", 1).max(1) as u32,
                        seed,
                    });
                    let l = match (SAMPLERS.contains(&class), made, a.first_latent()) {
                        (_, Some(l), _) => l,
                        (_, None, Some(l)) => Lat { seed: mix(l.seed, seed), ..l.clone() },
                        (_, None, None) => Lat { w: 512, h: 512, length: 1, batch: 1, seed },
                    };
                    Val::Latent(l)
                }
                "AUDIO" => Val::Audio(a.first_audio().cloned().unwrap_or(Aud {
                    rate: 44100,
                    channels: 2,
                    seconds: 1.0,
                    sound: Sound::Tone(seed),
                })),
                "VIDEO" => match a.first_video() {
                    Some(v) => Val::Video(v.clone()),
                    None => Val::Other,
                },
                _ => Val::Other,
            }
        })
        .collect()
}

pub(crate) fn resize(img: Img, w: u32, h: u32) -> Img {
    if img.w == w && img.h == h {
        return img;
    }
    let pics = (0..img.pics.len())
        .map(|i| match &img.pics[i] {
            Pic::Pixels { .. } => Pic::Pixels { w: img.w, h: img.h, rgb: Arc::new(img.render(i)) },
            p => p.clone(),
        })
        .collect();
    Img { w, h, pics }
}

pub(crate) fn decode_image(data: &[u8], seed: u64) -> Option<Img> {
    if data.starts_with(b"\x89PNG") {
        let mut dec = png::Decoder::new(std::io::Cursor::new(data));
        dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut r = dec.read_info().ok()?;
        let mut buf = vec![0; r.output_buffer_size()?];
        let info = r.next_frame(&mut buf).ok()?;
        let (w, h) = (info.width, info.height);
        let px = (w * h) as usize;
        let rgb: Vec<u8> = match info.color_type {
            png::ColorType::Rgb => buf[..px * 3].to_vec(),
            png::ColorType::Rgba => buf[..px * 4].chunks(4).flat_map(|c| [c[0], c[1], c[2]]).collect(),
            png::ColorType::Grayscale => buf[..px].iter().flat_map(|&g| [g, g, g]).collect(),
            png::ColorType::GrayscaleAlpha => buf[..px * 2].chunks(2).flat_map(|c| [c[0], c[0], c[0]]).collect(),
            png::ColorType::Indexed => return None,
        };
        return Some(Img { w, h, pics: vec![Pic::Pixels { w, h, rgb: Arc::new(rgb) }] });
    }
    let (w, h) = if data.starts_with(&[0xff, 0xd8]) {
        jpeg_size(data)?
    } else if data.len() > 30 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        (512, 512)
    } else {
        return None;
    };
    Some(Img { w, h, pics: vec![Pic::Gradient(seed, 0)] })
}

fn jpeg_size(d: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 < d.len() {
        if d[i] != 0xff {
            return None;
        }
        let marker = d[i + 1];
        let len = usize::from(u16::from_be_bytes([d[i + 2], d[i + 3]]));
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            let h = u16::from_be_bytes([d[i + 5], d[i + 6]]);
            let w = u16::from_be_bytes([d[i + 7], d[i + 8]]);
            return Some((u32::from(w), u32::from(h)));
        }
        i += 2 + len;
    }
    None
}

fn decode_audio(data: &[u8]) -> Option<Aud> {
    let pcm = if data.starts_with(b"fLaC") {
        let mut r = claxon::FlacReader::new(std::io::Cursor::new(data)).ok()?;
        let info = r.streaminfo();
        let scale = (1u64 << (info.bits_per_sample - 1)) as f32;
        let samples: Vec<f32> = r.samples().map(|s| s.map(|v| v as f32 / scale)).collect::<Result<_, _>>().ok()?;
        Pcm { sample_rate: info.sample_rate, channels: info.channels as u16, samples }
    } else if data.len() > 44 && &data[..4] == b"RIFF" && &data[8..12] == b"WAVE" {
        wav(data)?
    } else {
        let mut dec = rusty_mp3::Mp3Decoder::new();
        dec.push(data);
        dec.flush();
        let (mut samples, mut rate, mut ch) = (Vec::new(), 0, 0);
        while let Ok(f) = dec.next_frame() {
            rate = f.sample_rate;
            ch = f.channels;
            samples.extend_from_slice(&f.samples);
        }
        if rate == 0 {
            return None;
        }
        Pcm { sample_rate: rate, channels: ch, samples }
    };
    let seconds = pcm.frames() as f64 / f64::from(pcm.sample_rate.max(1));
    Some(Aud { rate: pcm.sample_rate, channels: pcm.channels, seconds, sound: Sound::Pcm(Arc::new(pcm.samples)) })
}

fn wav(d: &[u8]) -> Option<Pcm> {
    let mut i = 12;
    let (mut ch, mut rate, mut bits) = (0u16, 0u32, 0u16);
    while i + 8 <= d.len() {
        let id = &d[i..i + 4];
        let len = u32::from_le_bytes(d[i + 4..i + 8].try_into().ok()?) as usize;
        let body = d.get(i + 8..(i + 8 + len).min(d.len()))?;
        if id == b"fmt " && body.len() >= 16 {
            ch = u16::from_le_bytes([body[2], body[3]]);
            rate = u32::from_le_bytes(body[4..8].try_into().ok()?);
            bits = u16::from_le_bytes([body[14], body[15]]);
        } else if id == b"data" && bits == 16 && ch > 0 {
            let samples = body.chunks_exact(2).map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0).collect();
            return Some(Pcm { sample_rate: rate, channels: ch, samples });
        }
        i += 8 + len + (len & 1);
    }
    None
}

pub(crate) fn ui_file(filename: &str, subfolder: &str, kind: &str) -> Value {
    json!({"filename": filename, "subfolder": subfolder, "type": kind})
}
