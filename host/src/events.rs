//! What a running skill reports while it works (progress, previews, streamed
//! text), and the seam through which the CLI and the MCP server show it.

use std::sync::Arc;

/// One report from a running skill.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `progress.report`.
    Progress {
        /// Stage name.
        stage: String,
        /// Overall completion 0..=1, if known.
        fraction: Option<f32>,
        /// Step n of m, if counted.
        step: Option<(u32, u32)>,
        /// A sentence for people.
        message: Option<String>,
    },
    /// `progress.preview`: an image of work in progress.
    Preview {
        /// `image/jpeg` or `image/png`.
        mime: String,
        /// The image.
        bytes: Arc<Vec<u8>>,
    },
    /// `progress.text-delta`: streamed text (LLM tokens).
    TextDelta(String),
    /// `progress.text-reset`: the streamed text so far is void; why.
    TextReset(String),
}

/// Receives a skill's events as they happen. Implementations must be cheap:
/// they run inside the skill's host calls.
pub trait EventSink: Send + Sync {
    /// Handle one event of `skill`.
    fn emit(&self, skill: &str, event: Event);
}

/// Drops every event (describe calls, tests that do not care).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl EventSink for Discard {
    fn emit(&self, _: &str, _: Event) {}
}

/// Keeps every event, for tests and for callers that want them afterwards.
#[derive(Debug, Default)]
pub struct Recorder(std::sync::Mutex<Vec<Event>>);

impl Recorder {
    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

impl EventSink for Recorder {
    fn emit(&self, _: &str, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}
