//! An OpenAI-style text-to-speech server (`/v1/audio/speech`), as OpenAI
//! serves it and as local servers (Kokoro-FastAPI, openedai-speech) copy it.
//!
//! # `POST /v1/audio/speech` (JSON)
//!
//! ```json
//! {"model": "tts-1", "input": "Hello there.", "voice": "alloy",
//!  "response_format": "mp3", "speed": 1.0, "instructions": "optional"}
//! ```
//!
//! | field | type | default | rule |
//! | --- | --- | --- | --- |
//! | `model` | string, **required** | | one of [`TtsConfig::models`] (`tts-1`, `tts-1-hd`, `gpt-4o-mini-tts`) |
//! | `input` | string, **required** | | 1 to `max_input_chars` (4096) characters |
//! | `voice` | string, **required** | | one of [`TtsConfig::voices`] (OpenAI's eleven) |
//! | `response_format` | string | `mp3` | `mp3`, `wav`, `flac` or `pcm` (OpenAI's `opus` and `aac` are refused) |
//! | `speed` | number | `1.0` | `0.25..=4.0` |
//! | `instructions` | string | none | accepted and ignored, like `tts-1` ignores it |
//!
//! **200**: the audio bytes, mono at `sample_rate` (24 kHz, OpenAI's rate):
//!
//! | format | `Content-Type` | body |
//! | --- | --- | --- |
//! | `mp3` | `audio/mpeg` | MPEG-2 Layer III, CBR `mp3_kbps` (64) |
//! | `wav` | `audio/wav` | RIFF/WAVE, PCM 16-bit, exact chunk sizes |
//! | `flac` | `audio/flac` | 16-bit FLAC |
//! | `pcm` | `audio/pcm` | raw signed 16-bit little-endian samples, no header |
//!
//! The sound is speech-like and deterministic: 50 ms of silence, then one
//! formant "blip" per character (vowels voiced, hissing consonants as noise,
//! spaces and punctuation as pauses, `.`/`!`/`?` longest), then 50 ms of
//! silence. Each letter lasts about 70 ms ÷ `speed`, so the length grows
//! with the text and shrinks with `speed`; the voice sets the pitch. The same
//! request always gives the same bytes.
//!
//! **Errors** have OpenAI's shape and name the field in `param`:
//!
//! ```json
//! {"error":{"message":"Invalid 'input': string too short. Expected a string with minimum length 1, but got an empty string instead.",
//!           "type":"invalid_request_error","param":"input","code":"string_below_min_length"}}
//! ```
//!
//! | status | `code` | when |
//! | --- | --- | --- |
//! | 400 | `null` (param `null`) | the body is not a JSON object |
//! | 400 | `missing_required_parameter` | `model`, `input` or `voice` absent (or null) |
//! | 400 | `invalid_type` | a field of the wrong JSON type |
//! | 400 | `string_below_min_length` / `string_above_max_length` | `input` empty or too long |
//! | 400 | `invalid_value` | unknown `voice` or `response_format` (the message lists the allowed values) |
//! | 400 | `unsupported_value` | `response_format` `opus` or `aac`, which the simulator cannot encode |
//! | 400 | `decimal_below_min_value` / `decimal_above_max_value` | `speed` out of range |
//! | 404 | `model_not_found` | unknown `model` |
//!
//! # `GET /v1/models`
//!
//! `{"object":"list","data":[{"id":"tts-1","object":"model","created":1699053241,"owned_by":"system"}, ...]}`.
//!
//! # `GET /v1/audio/voices`
//!
//! `{"voices":["alloy","ash",...]}` (Kokoro-FastAPI's listing; OpenAI has none).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::common::{self, Rng};
use super::decode;
use crate::media::{self, Pcm};

/// How the simulated TTS server behaves.
#[derive(Debug, Clone)]
pub struct TtsConfig {
    /// Model ids it serves (and lists at `/v1/models`).
    pub models: Vec<String>,
    /// Voices it accepts.
    pub voices: Vec<String>,
    /// Output sample rate.
    pub sample_rate: u32,
    /// Longest `input` accepted, in characters.
    pub max_input_chars: usize,
    /// MP3 bit rate.
    pub mp3_kbps: u32,
}

impl Default for TtsConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        Self {
            models: s(&["tts-1", "tts-1-hd", "gpt-4o-mini-tts"]),
            voices: s(&[
                "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
            ]),
            sample_rate: 24_000,
            max_input_chars: 4096,
            mp3_kbps: 64,
        }
    }
}

/// A validated speech request.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRequest {
    /// Model id.
    pub model: String,
    /// Text to speak.
    pub input: String,
    /// Voice name.
    pub voice: String,
    /// `mp3`, `wav`, `flac` or `pcm`.
    pub response_format: String,
    /// Speaking rate, 0.25 to 4.
    pub speed: f64,
    /// Style instructions, if sent.
    pub instructions: Option<String>,
}

/// One `POST /v1/audio/speech` that reached the handler.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsRecord {
    /// The request, when it validated.
    pub request: Option<SpeechRequest>,
    /// HTTP status sent.
    pub status: u16,
    /// The error message sent, if any.
    pub error: Option<String>,
    /// Seconds of audio produced.
    pub audio_seconds: Option<f64>,
}

type Shared = common::Shared<TtsConfig, TtsRecord>;

impl common::ServiceKind for TtsConfig {
    const KIND: &'static str = "tts";
}

/// A simulated TTS server; clones share state (see [`ServiceSim`] for the
/// fault switches and the request log).
pub type TtsSim = common::ServiceSim<TtsConfig, TtsRecord>;

impl TtsSim {
    /// `POST /v1/audio/speech`, `GET /v1/models` and `GET /v1/audio/voices`,
    /// with the fault switches applied.
    pub fn router(&self) -> Router {
        let r = Router::new()
            .route("/v1/audio/speech", post(speech))
            .route("/v1/models", get(models))
            .route("/v1/audio/voices", get(voices))
            .with_state(self.shared.clone());
        self.with_faults(r, server_error)
    }

    /// Binds `addr` (e.g. `"127.0.0.1:0"`), serves in a background task and
    /// returns the bound address; honours `set_down`.
    pub async fn start(&self, addr: &str) -> std::io::Result<SocketAddr> {
        common::start(self.router(), addr, &self.shared.faults).await
    }
}

/// An OpenAI error reply.
struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl ApiError {
    fn bad(param: &'static str, code: &'static str, message: String) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message, param: Some(param), code: Some(code) }
    }

    fn into_response(self) -> Response {
        let ty = match self.status.as_u16() {
            400 | 404 | 422 => "invalid_request_error",
            _ => "server_error",
        };
        let body = json!({"error": {"message": self.message, "type": ty, "param": self.param, "code": self.code}});
        (self.status, Json(body)).into_response()
    }
}

fn server_error(status: StatusCode) -> Response {
    ApiError {
        status,
        message: "The server had an error while processing your request. Sorry about that!".into(),
        param: None,
        code: None,
    }
    .into_response()
}

async fn models(State(s): State<Arc<Shared>>) -> Json<Value> {
    let data: Vec<Value> = s
        .config
        .models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 1_699_053_241, "owned_by": "system"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn voices(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({"voices": s.config.voices}))
}

/// OpenAI's wording for a JSON value's type.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn missing(name: &'static str) -> ApiError {
    ApiError::bad(name, "missing_required_parameter", format!("Missing required parameter: '{name}'."))
}

fn wrong_type(name: &'static str, want: &str, got: &Value) -> ApiError {
    let got = type_name(got);
    ApiError::bad(name, "invalid_type", format!("Invalid type for '{name}': expected {want}, but got {got} instead."))
}

fn string<'a>(body: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(name, "a string", v)),
    }
}

/// "'a', 'b', and 'c'", as OpenAI lists allowed values.
fn listing(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

const OPENAI_FORMATS: [&str; 6] = ["mp3", "opus", "aac", "flac", "wav", "pcm"];
const SIM_FORMATS: [&str; 4] = ["mp3", "wav", "flac", "pcm"];

fn parse(body: &[u8], cfg: &TtsConfig) -> Result<SpeechRequest, ApiError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)".into(),
            param: None,
            code: None,
        });
    };
    let model = string(&body, "model")?.ok_or_else(|| missing("model"))?;
    let input = string(&body, "input")?.ok_or_else(|| missing("input"))?;
    let voice = string(&body, "voice")?.ok_or_else(|| missing("voice"))?;
    let format = string(&body, "response_format")?.unwrap_or("mp3");
    let instructions = string(&body, "instructions")?.map(str::to_string);
    let speed = match body.get("speed") {
        None | Some(Value::Null) => 1.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(1.0),
        Some(v) => return Err(wrong_type("speed", "a decimal", v)),
    };
    if !cfg.models.iter().any(|m| m == model) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist or you do not have access to it."),
            param: None,
            code: Some("model_not_found"),
        });
    }
    let chars = input.chars().count();
    if chars == 0 {
        return Err(ApiError::bad("input", "string_below_min_length",
            "Invalid 'input': string too short. Expected a string with minimum length 1, but got an empty string instead.".into()));
    }
    if chars > cfg.max_input_chars {
        let max = cfg.max_input_chars;
        return Err(ApiError::bad(
            "input",
            "string_above_max_length",
            format!(
                "Invalid 'input': string too long. Expected a string with maximum length {max}, but got a string with length {chars} instead."
            ),
        ));
    }
    if !cfg.voices.iter().any(|v| v == voice) {
        let allowed: Vec<&str> = cfg.voices.iter().map(String::as_str).collect();
        return Err(ApiError::bad(
            "voice",
            "invalid_value",
            format!("Invalid value: '{voice}'. Supported values are: {}.", listing(&allowed)),
        ));
    }
    if !SIM_FORMATS.contains(&format) {
        return Err(if OPENAI_FORMATS.contains(&format) {
            ApiError::bad(
                "response_format",
                "unsupported_value",
                format!("Unsupported value: '{format}'. The simulator encodes only {}.", listing(&SIM_FORMATS)),
            )
        } else {
            ApiError::bad(
                "response_format",
                "invalid_value",
                format!("Invalid value: '{format}'. Supported values are: {}.", listing(&OPENAI_FORMATS)),
            )
        });
    }
    if speed < 0.25 {
        return Err(ApiError::bad(
            "speed",
            "decimal_below_min_value",
            format!("Invalid 'speed': decimal below minimum value. Expected a value >= 0.25, but got {speed} instead."),
        ));
    }
    if speed > 4.0 {
        return Err(ApiError::bad(
            "speed",
            "decimal_above_max_value",
            format!("Invalid 'speed': decimal above maximum value. Expected a value <= 4, but got {speed} instead."),
        ));
    }
    Ok(SpeechRequest {
        model: model.into(),
        input: input.into(),
        voice: voice.into(),
        response_format: format.into(),
        speed,
        instructions,
    })
}

async fn speech(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = match parse(&body, &s.config) {
        Ok(r) => r,
        Err(e) => {
            s.log.push(TtsRecord {
                request: None,
                status: e.status.as_u16(),
                error: Some(e.message.clone()),
                audio_seconds: None,
            });
            return e.into_response();
        }
    };
    let cfg = s.config.clone();
    let r = req.clone();
    let job = common::blocking(move || {
        let pcm = synthesize(&r.input, &r.voice, r.speed, cfg.sample_rate);
        let seconds = pcm.frames() as f64 / f64::from(cfg.sample_rate);
        let bytes = match r.response_format.as_str() {
            "wav" => Ok(decode::wav_write(&pcm)),
            "pcm" => Ok(decode::s16le(&pcm)),
            "flac" => media::flac(&pcm),
            _ => media::mp3(&pcm, cfg.mp3_kbps),
        };
        bytes.map(|b| (b, seconds)).map_err(|e| e.to_string())
    });
    let mut rec = TtsRecord { request: Some(req.clone()), status: 200, error: None, audio_seconds: None };
    match job.await.and_then(|r| r) {
        Ok((bytes, seconds)) => {
            rec.audio_seconds = Some(seconds);
            s.log.push(rec);
            let ct = content_type(&req.response_format);
            ([(header::CONTENT_TYPE, ct)], bytes).into_response()
        }
        Err(e) => {
            rec.status = 500;
            rec.error = Some(e);
            s.log.push(rec);
            server_error(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The `Content-Type` OpenAI sends for each format.
fn content_type(format: &str) -> &'static str {
    match format {
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "pcm" => "audio/pcm",
        _ => "audio/mpeg",
    }
}

/// What one character sounds like.
enum Sound {
    /// A voiced formant pair (F1, F2) at this loudness.
    Voiced(f64, f64, f64),
    /// A hiss.
    Noise,
    /// A pause.
    Silence,
}

const VOWELS: [(f64, f64); 6] =
    [(730.0, 1090.0), (530.0, 1840.0), (270.0, 2290.0), (570.0, 840.0), (300.0, 870.0), (440.0, 1020.0)];

/// The sound of `c` and its length in letter units.
fn sound(c: char) -> (Sound, f64) {
    let c = c.to_ascii_lowercase();
    if let Some(i) = "aeiouy".find(c) {
        let (f1, f2) = VOWELS[i];
        return (Sound::Voiced(f1, f2, 1.0), 1.2);
    }
    match c {
        's' | 'z' | 'f' | 'h' | 'x' | 'c' | 'q' | 't' | 'k' | 'p' => (Sound::Noise, 0.7),
        c if c.is_ascii_alphabetic() => (Sound::Voiced(250.0, 1500.0, 0.6), 0.7),
        ' ' | '\t' | '\n' | '\r' => (Sound::Silence, 0.6),
        ',' | ';' | ':' | '-' => (Sound::Silence, 2.5),
        '.' | '!' | '?' => (Sound::Silence, 4.5),
        c if c.is_alphanumeric() => {
            let (f1, f2) = VOWELS[c as usize % VOWELS.len()];
            (Sound::Voiced(f1, f2, 0.9), 1.1)
        }
        _ => (Sound::Silence, 0.3),
    }
}

/// Speech-like mono audio for `text` (see the module docs).
fn synthesize(text: &str, voice: &str, speed: f64, rate: u32) -> Pcm {
    let r = f64::from(rate);
    let voice_seed = common::stable_hash(&[voice.as_bytes()]);
    let mut rng = Rng(common::stable_hash(&[voice.as_bytes(), text.as_bytes()]));
    let f0_base = 90.0 + (voice_seed % 150) as f64;
    let unit = 0.07 / speed;
    let pad = (0.05 * r) as usize;
    let total = text.chars().count().max(1) as f64;
    let mut out = vec![0f32; pad];
    let mut phase = 0.0f64;
    for (k, c) in text.chars().enumerate() {
        let (snd, units) = sound(c);
        let n = ((units * unit * r) as usize).max(1);
        // Falling intonation over the utterance.
        let f0 = f0_base * (1.15 - 0.3 * k as f64 / total);
        for i in 0..n {
            let env = (std::f64::consts::PI * i as f64 / n as f64).sin();
            let t = i as f64 / r;
            let v = match snd {
                Sound::Voiced(f1, f2, loud) => {
                    phase = (phase + f0 / r).fract();
                    let pulse = (1.0 - phase).powi(3);
                    let tau = std::f64::consts::TAU;
                    let formants = 0.6 * (tau * f1 * t).sin() + 0.4 * (tau * f2 * t).sin();
                    0.35 * loud * env * pulse * formants
                }
                Sound::Noise => 0.12 * env * f64::from(rng.signed()),
                Sound::Silence => 0.0,
            };
            out.push(v as f32);
        }
    }
    out.extend(std::iter::repeat_n(0.0, pad));
    Pcm { sample_rate: rate, channels: 1, samples: out }
}

#[cfg(test)]
mod tests;
