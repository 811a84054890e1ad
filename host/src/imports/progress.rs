//! `c41:skill/progress`: reports go to the invocation's [`EventSink`] (the
//! CLI's bar or lines, the MCP server's notifications), cleaned by
//! [`skill_text`]: no control characters, stages and messages on one line
//! and truncated, `MEDIA:` lines neutralised, also across text-deltas.
//! Streamed text waits for room in every buffer of the sink
//! ([`EventSink::text_budgets`]), and what those buffers may hold counts
//! against the invocation's `limits.memory-mb`.
//!
//! [`EventSink`]: crate::events::EventSink
//! [`skill_text`]: crate::skill_text
//! [`EventSink::text_budgets`]: crate::events::EventSink::text_budgets

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

/// What the memory-limit message calls the bytes sinks buffer.
const BUFFERED: &str = "streamed text and progress buffered for MCP clients";

impl InvocationCtx {
    /// The sink's buffers (one per MCP listener) for this skill's text, each
    /// counted once against `limits.memory-mb` at the most it may hold: the
    /// charge follows the most buffers there ever were at once.
    fn buffers(&mut self) -> wasmtime::Result<Vec<Arc<crate::events::TextBudget>>> {
        let budgets = self.events.text_budgets();
        let held: u64 = budgets.iter().map(|b| b.held_at_most()).sum();
        if held > self.buffered_charged {
            self.limiter.charge(held - self.buffered_charged, BUFFERED)?;
            self.buffered_charged = held;
        }
        Ok(budgets)
    }

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
        self.buffers()?;
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
        for budget in self.buffers()? {
            budget.reserve(delta.len()).await;
        }
        self.events.emit(&self.skill, Event::TextDelta(delta));
        Ok(())
    }

    async fn text_reset(&mut self, reason: String) -> wasmtime::Result<()> {
        let rest = self.text.finish();
        let reason = clean_line(&reason, MAX_MESSAGE);
        for budget in self.buffers()? {
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
