//! All integration tests of the host, in one binary (like wasmtime's
//! `tests/all`): real components from `tests/guests` and `examples/`, real
//! HTTP to servers on loopback, the real sandbox.

mod audio_gen;
mod authors;
mod cli;
mod comfyui;
mod common;
mod copy_from;
mod crafted;
mod forger;
mod hardening;
mod identity;
mod inputs;
mod limits;
mod lip_sync;
mod llm_route;
mod lora_train;
mod mcp;
mod openclaw;
mod openclaw_install;
mod page;
mod resume_config;
mod sandbox;
mod serve;
mod startup;
mod tts;
