//! c41: runs AI-agent skills compiled to WebAssembly components in a sandbox
//! that grants nothing by default, and serves them to people (the `c41` CLI)
//! and to agents.
//!
//! Where to look:
//! - [`config`]: the TOML file users write (services, grants, limits).
//! - [`sandbox`]: the outgoing-HTTP policy hook, the one place requests are
//!   allowed or refused (matching itself lives in `c41-policy`).
//! - [`runtime`]: the wasmtime engine, the compiled-component cache, limits,
//!   and one invocation from start to finish.
//! - [`imports`]: the host side of each WIT interface a skill imports.
//! - [`catalog`]: which skills exist (built-in, skills directory, `--component`).
//! - [`skill_text`]: what of a skill's words may be shown (no control
//!   characters, no forged `MEDIA:` lines).
//! - [`cli`]: the `c41` commands.
#![deny(missing_docs)]

pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod events;
mod files;
pub mod imports;
pub mod input;
pub mod mcp;
pub mod preview;
pub mod queue;
pub mod runs;
pub mod runtime;
pub mod sandbox;
pub mod serve;
pub mod skill_text;
pub mod studio;
pub mod web;

/// The guest components built by `build.rs`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
