//! A standalone MMAudio server: video-to-audio and text-to-audio.
//!
//! Modelled on the small FastAPI wrappers people put around MMAudio
//! (`POST /process` with a multipart form). Validation errors are FastAPI's
//! (pydantic v1 wording), other failures are `HTTPException`s.
//!
//! # `POST /process` (multipart/form-data)
//!
//! | field | kind | default | rule |
//! | --- | --- | --- | --- |
//! | `video` | file, optional | none: text-to-audio | MP4/MOV with an H.264 track |
//! | `prompt` | text, **required** | | non-empty |
//! | `negative_prompt` | text | `""` | |
//! | `duration` | float seconds | `8.0` | `0 < duration <= max_duration` (30) |
//! | `cfg_strength` | float | `4.5` | |
//! | `num_steps` | int | `25` | `1..=1000` |
//! | `seed` | int | `42` | any i64 |
//!
//! As in FastAPI, an empty text field counts as absent.
//!
//! **200 with a video**: `video/mp4` (`Content-Disposition: attachment;
//! filename="output.mp4"`): the input's frames, decoded from H.264 and
//! re-encoded (H.264, same size cropped to even, same frame rate), with one
//! AAC-LC mono 44.1 kHz track of generated sound. Like MMAudio, the clip is
//! cut to `duration`: the output has `min(frames, round(duration × fps))`
//! frames and the sound is generated for exactly that long, so a video
//! longer than `duration` gives `duration` seconds of both. (The AAC media
//! holds whole 1024-sample frames after the encoder's 1024-sample priming;
//! the track's edit list skips the priming and presents exactly the sound's
//! length, as ffmpeg's muxer does.) Should the decoder reject the
//! stream (profiles beyond Baseline/Main/most of High), the frames are
//! replaced by a synthetic gradient of the same size, rate and length, and
//! the request log says `decoded: false`.
//!
//! **200 without a video**: `audio/flac` (`filename="output.flac"`), 16-bit
//! mono 44.1 kHz, exactly `duration` seconds.
//!
//! The sound (a hum plus decaying noise "events") is a pure function of
//! `prompt`, `negative_prompt`, `cfg_strength`, `num_steps` and `seed`; the
//! same request always returns the same bytes.
//!
//! **422** for a missing or badly typed field, every problem listed:
//!
//! ```json
//! {"detail":[{"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"},
//!            {"loc":["body","duration"],"msg":"value is not a valid float","type":"type_error.float"}]}
//! ```
//!
//! Range errors read `{"loc":["body","duration"],"msg":"ensure this value is
//! greater than 0","type":"value_error.number.not_gt","ctx":{"limit_value":0}}`
//! (also `not_le`, `not_ge`).
//!
//! **400** `{"detail":"video: not an MP4/MOV file"}` when the upload is not a
//! video the simulator can read (also for MP4s without an H.264 track), and
//! `{"detail":"There was an error parsing the body"}` for a broken multipart
//! body; **500** `{"detail":"encoding failed: ..."}` if an encoder refuses.
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

use super::common::{self, FieldErrors, Form, Rng};
use super::decode;
use crate::media::{self, Frames, Pcm};

/// How the simulated MMAudio server behaves.
#[derive(Debug, Clone)]
pub struct MmAudioConfig {
    /// Output sample rate (MMAudio's `large_44k` models: 44100).
    pub sample_rate: u32,
    /// Largest `duration` accepted, in seconds.
    pub max_duration: f64,
}

impl Default for MmAudioConfig {
    fn default() -> Self {
        Self { sample_rate: 44_100, max_duration: 30.0 }
    }
}

/// A validated `/process` form.
#[derive(Debug, Clone, PartialEq)]
pub struct MmAudioParams {
    /// What the sound should be.
    pub prompt: String,
    /// What it should not be.
    pub negative_prompt: String,
    /// Requested seconds of audio.
    pub duration: f64,
    /// Classifier-free guidance strength.
    pub cfg_strength: f64,
    /// Sampling steps.
    pub num_steps: u32,
    /// Sampling seed.
    pub seed: i64,
}

/// What the uploaded video turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInput {
    /// The client's file name.
    pub filename: Option<String>,
    /// Width in pixels (container's).
    pub width: u32,
    /// Height in pixels (container's).
    pub height: u32,
    /// Frames in the input.
    pub frame_count: u32,
    /// Frames per second of the input.
    pub fps: f64,
    /// Whether the H.264 frames were decoded (false: stand-in frames were drawn).
    pub decoded: bool,
}

/// One `/process` request that reached the handler.
#[derive(Debug, Clone, PartialEq)]
pub struct MmAudioRecord {
    /// The parsed form, when it validated.
    pub params: Option<MmAudioParams>,
    /// The upload, when one was given and read.
    pub video: Option<VideoInput>,
    /// HTTP status sent.
    pub status: u16,
    /// Error sent (first validation problem or the 400's detail).
    pub error: Option<String>,
    /// `video/mp4` or `audio/flac` on success.
    pub content_type: Option<&'static str>,
    /// Seconds of audio produced.
    pub audio_seconds: Option<f64>,
}

type Shared = common::Shared<MmAudioConfig, MmAudioRecord>;

impl common::ServiceKind for MmAudioConfig {
    const KIND: &'static str = "mmaudio";
}

/// A simulated MMAudio server; clones share state (see [`ServiceSim`] for the
/// fault switches and the request log).
pub type MmAudioSim = common::ServiceSim<MmAudioConfig, MmAudioRecord>;

impl MmAudioSim {
    /// `POST /process` and `GET /health`, with the fault switches applied.
    pub fn router(&self) -> Router {
        let r = Router::new()
            .route("/process", post(process))
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

fn record(status: u16, error: Option<String>) -> MmAudioRecord {
    MmAudioRecord { params: None, video: None, status, error, content_type: None, audio_seconds: None }
}

fn validate(form: &Form, max_duration: f64) -> Result<MmAudioParams, FieldErrors> {
    let mut errs = FieldErrors::default();
    let inf = f64::INFINITY;
    let prompt = errs.required(form, "prompt");
    let duration = errs.float(form, "duration", 8.0, 0.0, max_duration);
    let cfg_strength = errs.float(form, "cfg_strength", 4.5, -inf, inf);
    let num_steps = errs.int(form, "num_steps", 25, 1, 1000);
    let seed = errs.int(form, "seed", 42, i64::MIN, i64::MAX);
    match prompt {
        Some(prompt) if errs.is_empty() => Ok(MmAudioParams {
            prompt,
            negative_prompt: form.text("negative_prompt").unwrap_or_default(),
            duration,
            cfg_strength,
            num_steps: num_steps as u32,
            seed,
        }),
        _ => Err(errs),
    }
}

async fn process(State(s): State<Arc<Shared>>, mp: Result<Multipart, MultipartRejection>) -> Response {
    let form = match common::read_form(mp).await {
        Ok(f) => f,
        Err(resp) => {
            s.log.push(record(400, Some("broken multipart body".into())));
            return resp;
        }
    };
    let params = match validate(&form, s.config.max_duration) {
        Ok(p) => p,
        Err(errs) => {
            s.log.push(record(422, Some(errs.summary())));
            return errs.respond(StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let video = form.part("video").map(|p| (p.filename.clone(), p.data.clone()));
    let rate = s.config.sample_rate;
    let p = params.clone();
    let job = common::blocking(move || render(&p, rate, video)).await;
    let mut rec = record(200, None);
    rec.params = Some(params);
    let job = job.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e));
    let out = match job.and_then(|r| r) {
        Ok(out) => out,
        Err((status, detail)) => {
            rec.status = status.as_u16();
            rec.error = Some(detail.clone());
            s.log.push(rec);
            return (status, Json(json!({ "detail": detail }))).into_response();
        }
    };
    rec.video = out.video;
    rec.content_type = Some(out.content_type);
    rec.audio_seconds = Some(out.audio_seconds);
    s.log.push(rec);
    let disposition = format!("attachment; filename=\"{}\"", out.filename);
    ([(header::CONTENT_TYPE, out.content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], out.bytes)
        .into_response()
}

struct Rendered {
    bytes: Vec<u8>,
    content_type: &'static str,
    filename: &'static str,
    audio_seconds: f64,
    video: Option<VideoInput>,
}

/// Renders the reply (`Err`: 400 for an unreadable upload, 500 if an encoder fails).
fn render(
    p: &MmAudioParams,
    rate: u32,
    video: Option<(Option<String>, bytes::Bytes)>,
) -> Result<Rendered, (StatusCode, String)> {
    let seed = common::stable_hash(&[
        p.prompt.as_bytes(),
        p.negative_prompt.as_bytes(),
        &p.cfg_strength.to_bits().to_le_bytes(),
        &p.num_steps.to_le_bytes(),
        &p.seed.to_le_bytes(),
    ]);
    let internal = |e: media::MediaError| {
        let msg = format!("encoding failed: {e}");
        (StatusCode::INTERNAL_SERVER_ERROR, msg)
    };
    let Some((filename, data)) = video else {
        let pcm = foley(rate, p.duration, seed);
        return Ok(Rendered {
            bytes: media::flac(&pcm).map_err(internal)?,
            content_type: "audio/flac",
            filename: "output.flac",
            audio_seconds: pcm.frames() as f64 / f64::from(rate),
            video: None,
        });
    };
    let v = decode::mp4_video(&data).map_err(|e| (StatusCode::BAD_REQUEST, format!("video: {e}")))?;
    let available = v.frames.as_ref().map_or(v.frame_count, |f| f.rgb.len() as u32);
    let wanted = ((p.duration * v.fps).round() as u32).max(1);
    let n = available.min(wanted);
    let frames = match &v.frames {
        Some(f) => Frames { width: f.width, height: f.height, rgb: f.rgb[..n as usize].to_vec() },
        None => Frames {
            width: v.width,
            height: v.height,
            rgb: (0..n).map(|i| media::gradient_frame(v.width, v.height, seed, i)).collect(),
        },
    };
    let seconds = f64::from(n) / v.fps;
    let pcm = foley(rate, seconds, seed);
    Ok(Rendered {
        bytes: media::mp4(&frames, v.fps, Some(&pcm)).map_err(internal)?,
        content_type: "video/mp4",
        filename: "output.mp4",
        audio_seconds: seconds,
        video: Some(VideoInput {
            filename,
            width: v.width,
            height: v.height,
            frame_count: v.frame_count,
            fps: v.fps,
            decoded: v.frames.is_some(),
        }),
    })
}

/// Mono "foley": a low hum with a slow tremolo and decaying noise hits.
fn foley(rate: u32, seconds: f64, seed: u64) -> Pcm {
    let n = (seconds * f64::from(rate)).round().max(0.0) as usize;
    let mut rng = Rng(seed);
    let hum = 60.0 + rng.unit() * 300.0;
    let gap = 0.2 + rng.unit() * 0.5;
    let tau = f64::from(rate) * (0.02 + rng.unit() * 0.06);
    let tau_pi = std::f64::consts::TAU;
    let mut out: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (0.12 * (tau_pi * hum * t).sin() * (0.6 + 0.4 * (tau_pi * 0.5 * t).sin())) as f32
        })
        .collect();
    let mut t = rng.unit() * gap;
    while t < seconds {
        let start = (t * f64::from(rate)) as usize;
        let amp = 0.2 + 0.4 * rng.unit();
        let len = (tau * 5.0) as usize;
        for (k, s) in out.iter_mut().skip(start).take(len).enumerate() {
            *s += (amp * (-(k as f64) / tau).exp()) as f32 * rng.signed();
        }
        t += gap * (0.5 + rng.unit());
    }
    for s in &mut out {
        *s = s.clamp(-1.0, 1.0);
    }
    Pcm { sample_rate: rate, channels: 1, samples: out }
}

#[cfg(test)]
mod tests;
