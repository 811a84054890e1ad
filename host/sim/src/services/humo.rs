//! A HuMo wrapper: a talking portrait from one picture and one sound.
//!
//! HuMo ships no HTTP server; on the workstation it runs as a ComfyUI
//! workflow or behind a small FastAPI wrapper. This module *is* the wrapper's
//! specification: the shapes below are the contract the studio's clients and
//! the README rely on.
//!
//! # `POST /generate` (multipart/form-data)
//!
//! | field | kind | default | rule |
//! | --- | --- | --- | --- |
//! | `image` | file, **required** | | reference portrait, PNG or JPEG |
//! | `audio` | file, **required** | | WAV (PCM 8/16/24/32-bit or float), FLAC or MP3; at most `max_seconds` (30) long |
//! | `prompt` | text, **required** | | non-empty |
//! | `width` | int | from the image | multiple of 16, `16..=max_side` (1280) |
//! | `height` | int | from the image | multiple of 16, `16..=max_side` |
//! | `fps` | int | `25` | `1..=60` |
//! | `seed` | int | `0` | any i64 |
//! | `steps` | int | `50` | `1..=200` |
//!
//! Empty text fields count as absent. With neither `width` nor `height`, the
//! image's size is used, scaled down to fit `max_side` and rounded down to
//! multiples of 16; with one of them, the other follows the image's aspect
//! ratio (rounded to a multiple of 16).
//!
//! **200**: `video/mp4` (`Content-Disposition: attachment;
//! filename="humo.mp4"`) with
//! - an H.264 track of `width`×`height` at `fps` with
//!   `max(1, round(audio seconds × fps))` frames: the portrait (scaled,
//!   nearest neighbour) with a dark "mouth" bar below its centre whose height
//!   follows the loudness (RMS) of the audio during each frame, so silence
//!   shows a closed mouth and speech visibly moves it;
//! - an AAC-LC track: the uploaded audio re-encoded at its own sample rate,
//!   except that rates below 32 kHz are resampled (linearly) to 48 kHz; more
//!   than two channels are cut to the first two. Its edit list skips the
//!   encoder's 1024-sample priming, so the sound starts with the first
//!   frame (no lip-sync offset) and is presented exactly as long as the
//!   input; the media itself holds whole AAC frames (up to two more, 2 ×
//!   1024 samples, than the input).
//!
//! The output is a pure function of the inputs: the bar's colour comes from
//! `prompt`, `seed` and `steps`, so changing any of them changes the bytes,
//! and the same request always gives the same bytes.
//!
//! **Errors** always have FastAPI's list shape, naming the field in `loc`:
//! - **422** for a missing, badly typed or out-of-range field, every problem
//!   listed (`{"detail":[{"loc":["body","audio"],"msg":"field required",
//!   "type":"value_error.missing"}]}`; also `type_error.integer`,
//!   `value_error.number.not_ge` / `not_le` with `ctx.limit_value`, and
//!   `value_error.number.not_multiple` with `ctx.multiple_of`);
//! - **400** for an upload that does not decode, or audio that is too long:
//!   `{"detail":[{"loc":["body","image"],"msg":"not a PNG or JPEG image",
//!   "type":"value_error.image"}]}` (`value_error.audio` for `audio`);
//! - **400** `{"detail":"There was an error parsing the body"}` for a broken
//!   multipart body (FastAPI's own);
//! - **500** `{"detail":"encoding failed: ..."}` if the encoder refuses.
//!
//! # `GET /health`
//!
//! `{"status":"ok"}`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::common::{self, FieldErrors, Form};
use super::decode::{self, Rgb};
use crate::media::{self, Frames, Pcm};

/// How the simulated HuMo wrapper behaves.
#[derive(Debug, Clone)]
pub struct HumoConfig {
    /// Largest width or height accepted (and the cap for image-derived sizes).
    pub max_side: u32,
    /// Longest audio accepted, in seconds.
    pub max_seconds: f64,
}

impl Default for HumoConfig {
    fn default() -> Self {
        Self { max_side: 1280, max_seconds: 30.0 }
    }
}

/// The validated text fields of a `/generate` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumoParams {
    /// Scene description.
    pub prompt: String,
    /// Requested width, if given.
    pub width: Option<u32>,
    /// Requested height, if given.
    pub height: Option<u32>,
    /// Output frame rate.
    pub fps: u32,
    /// Sampling seed.
    pub seed: i64,
    /// Sampling steps.
    pub steps: u32,
}

/// One `/generate` request that reached the handler.
#[derive(Debug, Clone, PartialEq)]
pub struct HumoRecord {
    /// The text fields, when they validated.
    pub params: Option<HumoParams>,
    /// The portrait's size, when it decoded.
    pub image_size: Option<(u32, u32)>,
    /// The audio's length in seconds, when it decoded.
    pub audio_seconds: Option<f64>,
    /// Output size, when a video was made.
    pub output_size: Option<(u32, u32)>,
    /// Output frame count, when a video was made.
    pub frames: Option<u32>,
    /// HTTP status sent.
    pub status: u16,
    /// The error sent, as `field: message`.
    pub error: Option<String>,
}

type Shared = common::Shared<HumoConfig, HumoRecord>;

impl common::ServiceKind for HumoConfig {
    const KIND: &'static str = "humo";
}

/// A simulated HuMo wrapper; clones share state (see [`ServiceSim`] for the
/// fault switches and the request log).
pub type HumoSim = common::ServiceSim<HumoConfig, HumoRecord>;

impl HumoSim {
    /// `POST /generate` and `GET /health`, with the fault switches applied.
    pub fn router(&self) -> Router {
        let r = Router::new()
            .route("/generate", post(generate))
            .route("/health", get(common::health))
            .layer(DefaultBodyLimit::max(1 << 30))
            .with_state(self.shared.clone());
        self.with_faults(r, common::plain_failure)
    }

    /// Binds `addr` (e.g. `"127.0.0.1:0"`), serves in a background task and
    /// returns the bound address; honours `set_down`.
    pub async fn start(&self, addr: &str) -> std::io::Result<SocketAddr> {
        common::start(self.router(), addr, &self.shared.faults).await
    }
}

fn record(status: u16, error: Option<String>) -> HumoRecord {
    HumoRecord { params: None, image_size: None, audio_seconds: None, output_size: None, frames: None, status, error }
}

fn validate(form: &Form, max_side: u32) -> Result<HumoParams, FieldErrors> {
    let mut errs = FieldErrors::default();
    for file in ["image", "audio"] {
        if form.part(file).is_none() {
            errs.missing(file);
        }
    }
    let prompt = errs.required(form, "prompt");
    let side = |errs: &mut FieldErrors, name: &str| {
        form.text(name)?;
        let v = errs.int(form, name, 0, 16, i64::from(max_side));
        if v % 16 != 0 {
            let ctx = json!({"multiple_of": 16});
            errs.push(name, "ensure this value is a multiple of 16", "value_error.number.not_multiple", Some(ctx));
        }
        Some(v as u32)
    };
    let width = side(&mut errs, "width");
    let height = side(&mut errs, "height");
    let fps = errs.int(form, "fps", 25, 1, 60) as u32;
    let seed = errs.int(form, "seed", 0, i64::MIN, i64::MAX);
    let steps = errs.int(form, "steps", 50, 1, 200) as u32;
    match prompt {
        Some(prompt) if errs.is_empty() => Ok(HumoParams { prompt, width, height, fps, seed, steps }),
        _ => Err(errs),
    }
}

/// A 400 or 500 from the render step.
enum Failure {
    Upload { field: &'static str, msg: String },
    Internal(String),
}

async fn generate(State(s): State<Arc<Shared>>, mp: Result<Multipart, MultipartRejection>) -> Response {
    let form = match common::read_form(mp).await {
        Ok(f) => f,
        Err(resp) => {
            s.log.push(record(400, Some("broken multipart body".into())));
            return resp;
        }
    };
    let params = match validate(&form, s.config.max_side) {
        Ok(p) => p,
        Err(errs) => {
            s.log.push(record(422, Some(errs.summary())));
            return errs.respond(StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let image = form.part("image").map(|p| p.data.clone()).unwrap_or_default();
    let audio = form.part("audio").map(|p| p.data.clone()).unwrap_or_default();
    let cfg = s.config.clone();
    let p = params.clone();
    let mut rec = record(200, None);
    rec.params = Some(params);
    let job = common::blocking(move || {
        let out = render(&p, &cfg, &image, &audio, &mut rec);
        (out, rec)
    });
    let (bytes, rec) = match job.await {
        Ok((Ok(bytes), rec)) => (bytes, rec),
        Ok((Err(failure), mut rec)) => {
            let resp = match failure {
                Failure::Upload { field, msg } => {
                    rec.status = 400;
                    rec.error = Some(format!("{field}: {msg}"));
                    let mut errs = FieldErrors::default();
                    errs.push(field, &msg, &format!("value_error.{field}"), None);
                    errs.respond(StatusCode::BAD_REQUEST)
                }
                Failure::Internal(msg) => {
                    rec.status = 500;
                    rec.error = Some(msg.clone());
                    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"detail": msg}))).into_response()
                }
            };
            s.log.push(rec);
            return resp;
        }
        Err(msg) => {
            s.log.push(record(500, Some(msg.clone())));
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"detail": msg}))).into_response();
        }
    };
    s.log.push(rec);
    ([(header::CONTENT_TYPE, "video/mp4"), (header::CONTENT_DISPOSITION, "attachment; filename=\"humo.mp4\"")], bytes)
        .into_response()
}

fn render(
    p: &HumoParams,
    cfg: &HumoConfig,
    image: &[u8],
    audio: &[u8],
    rec: &mut HumoRecord,
) -> Result<Vec<u8>, Failure> {
    let upload = |field, msg| Failure::Upload { field, msg };
    let img = decode::image(image).map_err(|m| upload("image", m))?;
    rec.image_size = Some((img.width, img.height));
    let pcm = decode::audio(audio).map_err(|m| upload("audio", m))?;
    let seconds = pcm.frames() as f64 / f64::from(pcm.sample_rate);
    rec.audio_seconds = Some(seconds);
    if seconds > cfg.max_seconds {
        let msg = format!("the audio is {seconds:.1} s long; the limit is {} s", cfg.max_seconds);
        return Err(upload("audio", msg));
    }
    let (w, h) = output_size(&img, p.width, p.height, cfg.max_side);
    let n = ((seconds * f64::from(p.fps)).round() as u32).max(1);
    rec.output_size = Some((w, h));
    rec.frames = Some(n);
    let tint = common::stable_hash(&[p.prompt.as_bytes(), &p.seed.to_le_bytes(), &p.steps.to_le_bytes()]);
    let frames = talking(&img, w, h, &pcm, p.fps, n, tint);
    let pcm = if pcm.sample_rate < 32_000 { resample(&pcm, 48_000) } else { pcm };
    media::mp4(&frames, f64::from(p.fps), Some(&pcm)).map_err(|e| Failure::Internal(format!("encoding failed: {e}")))
}

/// Linear-interpolation resampling (enough for a stand-in).
fn resample(pcm: &Pcm, rate: u32) -> Pcm {
    let ch = usize::from(pcm.channels.max(1));
    let n_in = pcm.frames();
    let n_out = (n_in as u64 * u64::from(rate) / u64::from(pcm.sample_rate)) as usize;
    let step = f64::from(pcm.sample_rate) / f64::from(rate);
    let mut samples = Vec::with_capacity(n_out * ch);
    for i in 0..n_out {
        let pos = i as f64 * step;
        let (k, frac) = (pos as usize, pos.fract() as f32);
        let k1 = (k + 1).min(n_in - 1);
        for c in 0..ch {
            let (a, b) = (pcm.samples[k * ch + c], pcm.samples[k1 * ch + c]);
            samples.push(a + (b - a) * frac);
        }
    }
    Pcm { sample_rate: rate, channels: pcm.channels, samples }
}

fn round16(v: f64) -> u32 {
    ((v / 16.0).round() as u32 * 16).max(16)
}

/// The output size: as asked, or derived from the image (see the module docs).
fn output_size(img: &Rgb, width: Option<u32>, height: Option<u32>, max_side: u32) -> (u32, u32) {
    let (iw, ih) = (f64::from(img.width), f64::from(img.height));
    match (width, height) {
        (Some(w), Some(h)) => (w, h),
        (Some(w), None) => (w, round16(f64::from(w) * ih / iw).min(max_side)),
        (None, Some(h)) => (round16(f64::from(h) * iw / ih).min(max_side), h),
        (None, None) => {
            let k = (f64::from(max_side) / iw.max(ih)).min(1.0);
            let down16 = |v: f64| ((v * k) as u32 / 16 * 16).max(16);
            (down16(iw), down16(ih))
        }
    }
}

/// The portrait with a mouth bar that opens with the audio's loudness.
fn talking(img: &Rgb, w: u32, h: u32, pcm: &Pcm, fps: u32, n: u32, tint: u64) -> Frames {
    let base = decode::scale(img, w, h);
    let per = f64::from(pcm.sample_rate) / f64::from(fps);
    let ch = usize::from(pcm.channels.max(1));
    let levels: Vec<f64> = (0..n)
        .map(|i| {
            let a = (f64::from(i) * per) as usize * ch;
            let b = ((f64::from(i + 1) * per) as usize * ch).min(pcm.samples.len());
            let win = pcm.samples.get(a..b).unwrap_or(&[]);
            let sum: f64 = win.iter().map(|s| f64::from(*s).powi(2)).sum();
            (sum / win.len().max(1) as f64).sqrt()
        })
        .collect();
    let peak = levels.iter().copied().fold(0.0, f64::max);
    let colour = [90 + (tint % 80) as u8, 10 + (tint >> 8) as u8 % 40, 20 + (tint >> 16) as u8 % 40];
    let bar_w = (w / 4).max(2);
    let x0 = (w - bar_w) / 2;
    let cy = h * 72 / 100;
    let max_open = (h / 6).max(2);
    let rgb = levels
        .iter()
        .map(|&level| {
            let open = if peak > 0.0 { level / peak } else { 0.0 };
            let bar_h = ((open * f64::from(max_open)).round() as u32).max(2);
            let y0 = cy.saturating_sub(bar_h / 2);
            let mut f = base.clone();
            for y in y0..(y0 + bar_h).min(h) {
                for x in x0..x0 + bar_w {
                    let i = ((y * w + x) * 3) as usize;
                    f[i..i + 3].copy_from_slice(&colour);
                }
            }
            f
        })
        .collect();
    Frames { width: w, height: h, rgb }
}

#[cfg(test)]
mod tests;
