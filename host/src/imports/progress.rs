//! `c41:skill/progress`: reports go to the invocation's [`EventSink`] (the
//! CLI's bar or lines, the MCP server's notifications).
//!
//! [`EventSink`]: crate::events::EventSink

use crate::events::Event;
use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::progress::{Host, Update};
use std::sync::Arc;

/// Largest preview image passed on; bigger ones are dropped.
const MAX_PREVIEW: usize = 4 << 20;

impl Host for InvocationCtx {
    fn report(&mut self, update: Update) -> wasmtime::Result<()> {
        let fraction = update.fraction.filter(|f| f.is_finite()).map(|f| f.clamp(0.0, 1.0));
        self.events.emit(
            &self.skill,
            Event::Progress { stage: update.stage, fraction, step: update.step, message: update.message },
        );
        Ok(())
    }

    fn preview(&mut self, mime: String, bytes: Vec<u8>) -> wasmtime::Result<()> {
        if bytes.len() <= MAX_PREVIEW && matches!(mime.as_str(), "image/jpeg" | "image/png" | "image/webp") {
            self.events.emit(&self.skill, Event::Preview { mime, bytes: Arc::new(bytes) });
        }
        Ok(())
    }

    fn text_delta(&mut self, delta: String) -> wasmtime::Result<()> {
        self.events.emit(&self.skill, Event::TextDelta(delta));
        Ok(())
    }

    fn text_reset(&mut self, reason: String) -> wasmtime::Result<()> {
        self.events.emit(&self.skill, Event::TextReset(reason));
        Ok(())
    }
}
