//! The checks every inference request passes before any model work, in the
//! order a real server applies them; each API words the refusals its own way.

use std::sync::Arc;

use axum::http::StatusCode;

use super::SimModel;
use super::state::{Pending, Shared};

/// Why a request was turned away.
pub(crate) enum Rejection {
    /// A scheduled `fail_next` failure with this status.
    Injected(StatusCode),
    NotFound,
    /// The model lacks this capability ("tools", "thinking", ...).
    Unsupported(&'static str),
    /// `max_pending` requests are already in flight.
    Busy,
}

/// What the request needs from the model.
pub(crate) struct Needs {
    /// Endpoint word used when the model cannot complete at all.
    pub endpoint: &'static str,
    pub tools: bool,
    pub thinking: bool,
    pub vision: bool,
}

pub(crate) fn admit(shared: &Arc<Shared>, model: &str, needs: Needs) -> Result<(SimModel, Pending), Rejection> {
    if let Some(status) = shared.take_failure() {
        return Err(Rejection::Injected(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)));
    }
    let model = shared.model(model).cloned().ok_or(Rejection::NotFound)?;
    let caps = model.capabilities;
    let missing = [
        (!caps.completion, needs.endpoint),
        (needs.tools && !caps.tools, "tools"),
        (needs.thinking && !caps.thinking, "thinking"),
        (needs.vision && !caps.vision, "vision"),
    ]
    .into_iter()
    .find_map(|(miss, what)| miss.then_some(what));
    if let Some(what) = missing {
        return Err(Rejection::Unsupported(what));
    }
    let pending = shared.try_enter().ok_or(Rejection::Busy)?;
    Ok((model, pending))
}

/// Ollama's wording for the busy queue, shared by both APIs.
pub(crate) const BUSY: &str = "server busy, please try again.  maximum pending requests exceeded";
