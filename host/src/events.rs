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

    /// The sink's budget for buffered text, if it buffers any: the skill's
    /// `text-delta` waits for room in it before the delta is emitted.
    fn text_budget(&self) -> Option<&TextBudget> {
        None
    }
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

/// Decides which progress reports are shown, by time alone: however many
/// reports a skill sends (20 000 distinct steps, say), a sink shows at most
/// one per `interval`, plus stage changes (themselves limited to a burst of
/// [`STAGE_BURST`], refilled one per `interval`, so alternating stages
/// cannot flood either). A report not shown is dropped: the next one shown
/// carries the newer state.
#[derive(Debug)]
pub struct ProgressGate {
    interval: std::time::Duration,
    stage: String,
    last: Option<std::time::Instant>,
    stage_credit: f64,
}

/// How many stage changes may pass at once, faster than the interval.
pub const STAGE_BURST: f64 = 8.0;

impl ProgressGate {
    /// A gate letting one report through per `interval`, plus stage changes.
    pub fn new(interval: std::time::Duration) -> Self {
        ProgressGate { interval, stage: String::new(), last: None, stage_credit: STAGE_BURST }
    }

    /// Whether a report of `stage`, arriving now, is shown.
    pub fn admit(&mut self, stage: &str) -> bool {
        let now = std::time::Instant::now();
        let since = self.last.map(|t| now.duration_since(t));
        if let Some(since) = since {
            let refill = since.as_secs_f64() / self.interval.as_secs_f64().max(1e-9);
            self.stage_credit = (self.stage_credit + refill).min(STAGE_BURST);
        }
        let due = since.is_none_or(|s| s >= self.interval);
        let new_stage = self.stage != stage && self.stage_credit >= 1.0;
        if !(due || new_stage) {
            return false;
        }
        if !due {
            self.stage_credit -= 1.0;
        }
        if self.stage != stage {
            self.stage = stage.to_string();
        }
        self.last = Some(now);
        true
    }
}

/// Back-pressure for streamed text: a sink that buffers text before
/// sending it (the MCP server, whose client may read slowly or not at all)
/// holds at most `max` bytes of it per invocation. The skill's
/// `text-delta` call waits for room ([`reserve`](Self::reserve)); the sink
/// gives the room back once the text went out ([`release`](Self::release)).
#[derive(Debug)]
pub struct TextBudget {
    room: tokio::sync::Semaphore,
    max: usize,
}

impl TextBudget {
    /// A budget of `max` bytes (at least 1).
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, u32::MAX as usize >> 1);
        TextBudget { room: tokio::sync::Semaphore::new(max), max }
    }

    /// What a text of `bytes` counts against the budget (a piece larger than
    /// the whole budget counts as the whole budget, so it can still pass).
    pub fn cost(&self, bytes: usize) -> usize {
        bytes.clamp(1, self.max)
    }

    /// Waits until `bytes` of text fit. Returns at once once the budget is
    /// [`close`](Self::close)d (the client is gone: nothing is buffered).
    pub async fn reserve(&self, bytes: usize) {
        if let Ok(permit) = self.room.acquire_many(self.cost(bytes) as u32).await {
            permit.forget();
        }
    }

    /// Gives back the room of text that went out (`cost` as computed by
    /// [`cost`](Self::cost)).
    pub fn release(&self, cost: usize) {
        self.room.add_permits(cost);
    }

    /// No more waiting: the reader is gone.
    pub fn close(&self) {
        self.room.close();
    }
}
