//! The host side of each WIT interface a skill imports, one file per
//! interface. Each is implemented on [`InvocationCtx`], so it sees only this
//! invocation's grants, inputs and outputs.
//!
//! [`InvocationCtx`]: crate::runtime::InvocationCtx

pub mod artifacts;
pub mod inputs;
mod invocation;
mod log;
pub(crate) mod progress;
mod settings;
pub mod state;
pub mod websocket;

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::types;

impl types::Host for InvocationCtx {}
