//! Standalone media services the studio runs beside ComfyUI: MMAudio
//! (video-to-audio / text-to-audio), HuMo (audio-driven talking portrait)
//! and an OpenAI-style text-to-speech server.
//!
//! Each is an axum router over shared, inspectable state, with the same
//! shape of handle:
//!
//! | service | handle | routes |
//! | --- | --- | --- |
//! | [`mmaudio`] | [`MmAudioSim`](mmaudio::MmAudioSim) | `POST /process`, `GET /health` |
//! | [`humo`] | [`HumoSim`](humo::HumoSim) | `POST /generate`, `GET /health` |
//! | [`tts`] | [`TtsSim`](tts::TtsSim) | `POST /v1/audio/speech`, `GET /v1/models`, `GET /v1/audio/voices` |
//!
//! Every handle is `Clone` (clones share one state) and has `new(config)`,
//! `router()`, `async start("127.0.0.1:0") -> io::Result<SocketAddr>`,
//! `requests()` (the log of handled requests) and the fault switches
//! `fail_next(n, status)`, `set_delay(duration)` and `set_down(bool)`:
//!
//! - `fail_next(n, status)`: the next `n` *work* requests (the `POST`s) answer
//!   `status` before any parsing, in the body shape the real server's stack
//!   would use (uvicorn's plain text for MMAudio and HuMo, OpenAI's error JSON
//!   for TTS). Health and listing routes are not affected, so a client that
//!   polls them does not use up the failures.
//! - `set_delay(d)`: every request (any route) waits `d` first.
//! - `set_down(true)`: the port started by `start` closes (connection refused)
//!   and open connections fail on their next read or write; `set_down(false)`
//!   reopens the same port. Routers mounted elsewhere ignore it.
//!
//! The same switches work from outside the process (see [`crate::control`]):
//! `POST /c41-sim/faults` on the service's port with `fail=3x503`,
//! `delay=2s` or `down=5s`, and the `c41-sim-fault` header on one request.
//!
//! Everything they return is a real, decodable file made by [`crate::media`]:
//! content is synthetic but deterministic (the same request gives the same
//! bytes), and prompts and seeds change it.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use c41_sim::services::tts::{TtsConfig, TtsSim};
//! let tts = TtsSim::new(TtsConfig::default());
//! let addr = tts.start("127.0.0.1:0").await?;
//! println!("POST http://{addr}/v1/audio/speech");
//! # Ok(()) }
//! ```

mod common;
pub use common::{ServiceKind, ServiceSim};
pub(crate) mod decode;
pub mod humo;
pub mod mmaudio;
pub mod tts;

#[cfg(test)]
mod testutil;
