//! `c41:skill/progress`: reports go to the invocation's [`EventSink`] (the
//! CLI's bar or lines, the MCP server's notifications), cleaned by
//! [`skill_text`]: no control characters, stages and messages on one line
//! and truncated, `MEDIA:` lines neutralised, also across text-deltas.
//! Streamed text waits for room when the sink buffers it
//! ([`EventSink::text_budget`]).
//!
//! [`EventSink`]: crate::events::EventSink
//! [`skill_text`]: crate::skill_text
//! [`EventSink::text_budget`]: crate::events::EventSink::text_budget

use crate::events::Event;
use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::progress::{Host, Update};
use crate::skill_text::clean_line;
use std::sync::Arc;

/// Largest preview image passed on; bigger ones are dropped.
const MAX_PREVIEW: usize = 4 << 20;
/// Longest stage name shown.
pub const MAX_STAGE: usize = 200;
/// Longest progress message or text-reset reason shown.
pub const MAX_MESSAGE: usize = 2 * 1024;

impl InvocationCtx {
    /// Emits the streamed text held back by the `MEDIA:` check, at the end
    /// of the invocation.
    pub(crate) fn flush_text(&mut self) {
        let rest = self.text.finish();
        if !rest.is_empty() {
            self.events.emit(&self.skill, Event::TextDelta(rest));
        }
    }
}

impl Host for InvocationCtx {
    async fn report(&mut self, update: Update) -> wasmtime::Result<()> {
        let fraction = update.fraction.filter(|f| f.is_finite()).map(|f| f.clamp(0.0, 1.0));
        let stage = clean_line(&update.stage, MAX_STAGE);
        let message = update.message.map(|m| clean_line(&m, MAX_MESSAGE));
        self.events.emit(&self.skill, Event::Progress { stage, fraction, step: update.step, message });
        Ok(())
    }

    async fn preview(&mut self, mime: String, bytes: Vec<u8>) -> wasmtime::Result<()> {
        if bytes.len() <= MAX_PREVIEW && matches!(mime.as_str(), "image/jpeg" | "image/png" | "image/webp") {
            self.events.emit(&self.skill, Event::Preview { mime, bytes: Arc::new(bytes) });
        }
        Ok(())
    }

    async fn text_delta(&mut self, delta: String) -> wasmtime::Result<()> {
        let delta = self.text.push(&delta);
        if delta.is_empty() {
            return Ok(());
        }
        if let Some(budget) = self.events.text_budget() {
            budget.reserve(delta.len()).await;
        }
        self.events.emit(&self.skill, Event::TextDelta(delta));
        Ok(())
    }

    async fn text_reset(&mut self, reason: String) -> wasmtime::Result<()> {
        let rest = self.text.finish();
        let reason = clean_line(&reason, MAX_MESSAGE);
        if let Some(budget) = self.events.text_budget() {
            if !rest.is_empty() {
                budget.reserve(rest.len()).await;
            }
            budget.reserve(reason.len()).await;
        }
        if !rest.is_empty() {
            self.events.emit(&self.skill, Event::TextDelta(rest));
        }
        self.events.emit(&self.skill, Event::TextReset(reason));
        Ok(())
    }
}
