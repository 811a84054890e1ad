//! c41-sim: protocol-faithful simulators of the studio's servers, on loopback.
//!
//! Each simulator is an axum router over shared, inspectable state, so tests
//! can drive it over real HTTP and look inside. Shapes follow the real
//! servers' recorded transcripts (see `shared/reference/` in the repo notes).
#![deny(missing_docs)]

pub mod comfyui;
pub mod control;
pub mod llm;
pub mod media;
mod offswitch;
pub mod services;
