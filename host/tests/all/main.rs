//! All integration tests of the host, in one binary (like wasmtime's
//! `tests/all`): real components from `tests/guests` and `examples/`, real
//! HTTP to servers on loopback, the real sandbox.

mod common;
mod limits;
mod sandbox;
mod cli;
mod mcp;
mod comfyui;
mod llm_route;
mod openclaw;
mod tts;
mod audio_gen;
mod lip_sync;
