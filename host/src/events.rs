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
    /// The skill reached one of its granted services (emitted by the
    /// sandbox when the service differs from the one reached before): where
    /// a run is running, for people watching it.
    Service(String),
    /// `log.log`: a record the skill wrote, cleaned to one line (it also goes
    /// to the host's own log). For tests and tools that watch a run; the CLI
    /// and MCP leave it to the host's log.
    Log {
        /// `trace`, `debug`, `info`, `warn` or `error`.
        level: &'static str,
        /// The message.
        message: String,
        /// The fields as `key=value key=value`.
        fields: String,
    },
}

/// Receives a skill's events as they happen. Implementations must be cheap:
/// they run inside the skill's host calls.
pub trait EventSink: Send + Sync {
    /// Handle one event of `skill`.
    fn emit(&self, skill: &str, event: Event);

    /// The budgets of everything that buffers this sink's text (each MCP
    /// listener has its own): the skill's `text-delta` waits for room in
    /// every one of them before the delta is emitted, and the most they can
    /// hold together ([`TextBudget::held_at_most`]) counts against the
    /// invocation's `limits.memory-mb`.
    fn text_budgets(&self) -> Vec<Arc<TextBudget>> {
        Vec::new()
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

/// One progress report of a skill, as a sink got it.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The skill that sent it.
    pub skill: String,
    /// The stage (`upload`, `sampling`).
    pub stage: String,
    /// Overall fraction done, 0 to 1.
    pub fraction: Option<f32>,
    /// Step `n` of `m` within the stage.
    pub step: Option<(u32, u32)>,
    /// What is happening, for a person.
    pub message: Option<String>,
}

impl Report {
    /// The report as one line of text: `stage n/m: message`, as the
    /// terminal bar and MCP notifications show it.
    pub fn text(&self) -> String {
        let mut line = self.stage.clone();
        if let Some((n, m)) = self.step {
            line.push_str(&format!(" {n}/{m}"));
        }
        if let Some(m) = &self.message {
            line.push_str(": ");
            line.push_str(m);
        }
        line
    }
}

/// Decides which progress reports are shown, by time alone: however many
/// reports a skill sends (20 000 distinct steps, say), a sink shows at most
/// one per `interval`, plus milestones (themselves limited to a burst of
/// [`STAGE_BURST`], refilled one per `interval`, so alternating stages
/// cannot flood either). A milestone is a change of stage, or a report
/// without a step whose message differs from the last one shown ("waiting
/// in queue: 2 ahead" → "1 ahead", "running node 3" → "running node 7"):
/// what a person or an agent must not miss. Only repeats of a stage with
/// steps are throttled. Of the reports not shown, the gate keeps the newest
/// and hands it out once its time has come ([`take_due`](Self::take_due)):
/// the last report of a burst (a node change, then a long silent node) is
/// not lost, and everything older is.
#[derive(Debug)]
pub struct ProgressGate {
    interval: std::time::Duration,
    held: Option<Report>,
    stage: String,
    /// The message of the last report shown, for milestones within a stage.
    message: String,
    last: Option<std::time::Instant>,
    stage_credit: f64,
}

/// How many stage changes may pass at once, faster than the interval.
pub const STAGE_BURST: f64 = 8.0;

impl ProgressGate {
    /// A gate letting one report through per `interval`, plus stage changes.
    pub fn new(interval: std::time::Duration) -> Self {
        ProgressGate {
            interval,
            held: None,
            stage: String::new(),
            message: String::new(),
            last: None,
            stage_credit: STAGE_BURST,
        }
    }

    /// `report` if it is shown now; otherwise the gate holds it, in place of
    /// an older held one.
    pub fn offer(&mut self, report: Report) -> Option<Report> {
        if self.admit(&report.stage, report.step, report.message.as_deref()) {
            self.held = None;
            Some(report)
        } else {
            self.held = Some(report);
            None
        }
    }

    /// The held report, if there is one and the gate lets it through now.
    pub fn take_due(&mut self) -> Option<Report> {
        let held = self.held.take()?;
        self.offer(held)
    }

    /// How long to wait before asking [`take_due`](Self::take_due) again,
    /// while a report is held.
    pub fn held_for(&self) -> Option<std::time::Duration> {
        self.held.as_ref().map(|_| self.interval)
    }

    /// Forgets the held report (the outcome follows).
    pub fn drop_held(&mut self) {
        self.held = None;
    }

    /// Whether a report of `stage` (with its `step` and `message`),
    /// arriving now, is shown.
    pub fn admit(&mut self, stage: &str, step: Option<(u32, u32)>, message: Option<&str>) -> bool {
        let now = std::time::Instant::now();
        let since = self.last.map(|t| now.duration_since(t));
        if let Some(since) = since {
            let refill = since.as_secs_f64() / self.interval.as_secs_f64().max(1e-9);
            self.stage_credit = (self.stage_credit + refill).min(STAGE_BURST);
        }
        let due = since.is_none_or(|s| s >= self.interval);
        let message = message.unwrap_or("");
        let milestone = self.stage != stage || (step.is_none() && self.message != message);
        if !(due || (milestone && self.stage_credit >= 1.0)) {
            return false;
        }
        if !due {
            self.stage_credit -= 1.0;
        }
        if self.stage != stage {
            self.stage = stage.to_string();
        }
        if self.message != message {
            self.message = message.to_string();
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
        // Text that reached a listener added after the skill reserved room
        // was never taken from it: never give back more than the budget.
        let taken = self.max.saturating_sub(self.room.available_permits());
        self.room.add_permits(cost.min(taken));
    }

    /// The most bytes a sink with this budget keeps for a skill: its text,
    /// plus the progress notes it may queue ([`PROGRESS_HELD`]).
    pub fn held_at_most(&self) -> u64 {
        (self.max + PROGRESS_HELD) as u64
    }

    /// No more waiting: the reader is gone.
    pub fn close(&self) {
        self.room.close();
    }
}

/// What a [`Outbox`] hands its reader: one message to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A progress report that passed the [`ProgressGate`]: completion, if
    /// known, and the line to show (`stage n/m: message`).
    Progress(Option<f32>, String),
    /// Streamed text, consecutive deltas (and text-reset notices) merged.
    Text(String),
}

/// A bounded queue of a skill's events for a reader that sends them
/// somewhere slow (the MCP server's notifications to a client that may not
/// read): progress reports pass a [`ProgressGate`] and a waiting report is
/// replaced by a newer one; streamed text is merged into one piece and held
/// to the [`TextBudget`] (the skill's `text-delta` waits for room); previews
/// are dropped. So what is buffered stays small whatever the skill sends.
pub struct Outbox {
    inner: std::sync::Mutex<OutboxState>,
    wake: tokio::sync::Notify,
    budget: Arc<TextBudget>,
}

#[derive(Default)]
struct OutboxState {
    notes: std::collections::VecDeque<(Note, usize)>,
    /// Which progress reports are sent; [`Outbox::next`] sends the one it
    /// held back once its time has come.
    gate: Option<ProgressGate>,
    /// No more events will come (the invocation ended).
    closed: bool,
    /// Nobody reads any more (the client is gone): drop everything.
    abandoned: bool,
}

/// Most progress notes waiting at once (older ones are dropped).
const MAX_WAITING: usize = 32;

/// The most bytes of progress notes an [`Outbox`] queues: 32 (`MAX_WAITING`)
/// lines of a stage, a step count and a message, each cut to its length.
pub const PROGRESS_HELD: usize =
    MAX_WAITING * (crate::imports::progress::MAX_STAGE + crate::imports::progress::MAX_MESSAGE + 32);

impl Outbox {
    /// An outbox letting one progress report through per `interval` (plus
    /// stage changes) and buffering at most `text_bytes` of text.
    pub fn new(interval: std::time::Duration, text_bytes: usize) -> Arc<Self> {
        Arc::new(Outbox {
            inner: std::sync::Mutex::new(OutboxState { gate: Some(ProgressGate::new(interval)), ..Default::default() }),
            wake: tokio::sync::Notify::new(),
            budget: Arc::new(TextBudget::new(text_bytes)),
        })
    }

    /// The next note, once there is one; `None` after [`close`](Self::close)
    /// when everything was taken. Call [`sent`](Self::sent) with the note's
    /// cost once it went out.
    pub async fn next(&self) -> Option<(Note, usize)> {
        loop {
            let notified = self.wake.notified();
            let wait_for_held = {
                let mut s = self.inner.lock().unwrap();
                if let Some(n) = s.notes.pop_front() {
                    return Some(n);
                }
                if s.closed || s.abandoned {
                    return None;
                }
                let gate = s.gate.as_mut();
                if let Some(report) = gate.and_then(ProgressGate::take_due) {
                    return Some((Note::Progress(report.fraction, report.text()), 0));
                }
                s.gate.as_ref().and_then(ProgressGate::held_for)
            };
            match wait_for_held {
                // Until something new comes, or the held report's time.
                Some(interval) => {
                    let _ = tokio::time::timeout(interval, notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// A note of this cost went out: its text no longer counts.
    pub fn sent(&self, cost: usize) {
        if cost > 0 {
            self.budget.release(cost);
        }
    }

    /// No more events: [`next`](Self::next) ends once the queue is empty.
    pub fn close(&self) {
        self.inner.lock().unwrap().closed = true;
        self.wake.notify_one();
    }

    /// The reader is gone: drop what waits and never make a skill wait.
    pub fn abandon(&self) {
        let mut s = self.inner.lock().unwrap();
        s.abandoned = true;
        s.notes.clear();
        self.budget.close();
    }

    /// How many notes wait, and how many bytes of text (tests, diagnostics).
    pub fn waiting(&self) -> (usize, usize) {
        let s = self.inner.lock().unwrap();
        let text = s.notes.iter().map(|(n, _)| if let Note::Text(t) = n { t.len() } else { 0 }).sum();
        (s.notes.len(), text)
    }

    fn push_text(s: &mut OutboxState, text: String, cost: usize) {
        if let Some((Note::Text(last), last_cost)) = s.notes.back_mut() {
            last.push_str(&text);
            *last_cost += cost;
        } else {
            s.notes.push_back((Note::Text(text), cost));
        }
    }
}

impl EventSink for Outbox {
    fn emit(&self, skill: &str, event: Event) {
        let mut s = self.inner.lock().unwrap();
        if s.abandoned {
            if let Event::TextDelta(t) | Event::TextReset(t) = &event {
                // Never owed: the skill reserved this room before emitting.
                self.budget.release(self.budget.cost(t.len()));
            }
            return;
        }
        match event {
            Event::Progress { stage, fraction, step, message } => {
                let report = Report { skill: skill.to_string(), stage, fraction, step, message };
                let Some(report) = s.gate.as_mut().and_then(|g| g.offer(report)) else {
                    // Held: `next` sends it when its time comes.
                    drop(s);
                    self.wake.notify_one();
                    return;
                };
                let note = Note::Progress(report.fraction, report.text());
                match s.notes.back_mut() {
                    Some((last @ Note::Progress(..), _)) => *last = note,
                    _ => {
                        let is_progress = |(n, _): &(Note, usize)| matches!(n, Note::Progress(..));
                        if s.notes.iter().filter(|n| is_progress(n)).count() >= MAX_WAITING
                            && let Some(i) = s.notes.iter().position(is_progress)
                        {
                            s.notes.remove(i);
                        }
                        s.notes.push_back((note, 0));
                    }
                }
            }
            Event::TextDelta(text) => {
                let cost = self.budget.cost(text.len());
                Self::push_text(&mut s, text, cost);
            }
            // Clients show progress messages as a log: say plainly that the
            // text so far no longer counts.
            Event::TextReset(reason) => {
                let cost = self.budget.cost(reason.len());
                Self::push_text(&mut s, format!("\n[the text above is void: {reason}; starting over]\n"), cost);
            }
            Event::Preview { .. } | Event::Log { .. } | Event::Service(_) => return,
        }
        drop(s);
        self.wake.notify_one();
    }

    fn text_budgets(&self) -> Vec<Arc<TextBudget>> {
        vec![self.budget.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::time::Duration;

    fn progress(stage: &str, step: u32) -> Event {
        Event::Progress { stage: stage.into(), fraction: None, step: Some((step, 20_000)), message: None }
    }

    #[test]
    fn the_gate_lets_stage_changes_and_one_report_per_interval_through() {
        let mut gate = ProgressGate::new(Duration::from_secs(3600));
        let shown = (0..20_000).filter(|i| gate.admit("sampling", Some((*i, 20_000)), Some("KSampler"))).count();
        assert_eq!(shown, 1, "distinct steps of one stage: one report per interval");
        assert!(gate.admit("decoding", None, None), "a stage change passes");
        let alternating = (0..1000).filter(|i| gate.admit(if i % 2 == 0 { "a" } else { "b" }, None, None)).count();
        assert!(alternating <= STAGE_BURST as usize, "alternating stages cannot flood: {alternating}");
    }

    #[test]
    fn queue_positions_and_node_changes_pass_the_gate_but_cannot_flood_it() {
        let mut gate = ProgressGate::new(Duration::from_secs(3600));
        assert!(gate.admit("queued", None, Some("submitted to comfyui")));
        assert!(gate.admit("queued", None, Some("waiting in queue: 2 job(s) ahead")), "a new queue position");
        assert!(!gate.admit("queued", None, Some("waiting in queue: 2 job(s) ahead")), "the same one again");
        assert!(gate.admit("queued", None, Some("waiting in queue: 1 job(s) ahead")), "the position moved");
        assert!(gate.admit("running", None, Some("started on comfyui")));
        assert!(gate.admit("running", None, Some("running node 3 (ImageBlur)")), "the first node is shown");
        let flood = (0..1000).filter(|i| gate.admit("running", None, Some(&format!("node {i}")))).count();
        assert!(flood <= STAGE_BURST as usize, "distinct messages cannot flood: {flood}");
    }

    #[tokio::test]
    async fn the_outbox_merges_text_coalesces_progress_and_holds_text_to_its_budget() {
        let outbox = Outbox::new(Duration::from_secs(3600), 10);
        for i in 0..1000 {
            outbox.emit("s", progress("sampling", i));
        }
        outbox.emit("s", Event::Preview { mime: "image/png".into(), bytes: Arc::new(vec![0; 1 << 20]) });
        let budget = outbox.text_budgets().remove(0);
        for piece in ["ab", "cd", "ef"] {
            budget.reserve(piece.len()).await;
            outbox.emit("s", Event::TextDelta(piece.into()));
        }
        assert_eq!(outbox.waiting(), (2, 6), "one progress note, one merged text, no preview");
        // The budget is 10 bytes: 6 are out, a 5-byte delta waits.
        assert!(budget.reserve(5).now_or_never().is_none(), "the skill waits for room");
        assert_eq!(outbox.next().await, Some((Note::Progress(None, "sampling 0/20000".into()), 0)));
        let (note, cost) = outbox.next().await.unwrap();
        assert_eq!(note, Note::Text("abcdef".into()));
        outbox.sent(cost);
        tokio::time::timeout(Duration::from_secs(5), budget.reserve(5)).await.expect("room once the text went out");
        outbox.abandon();
        tokio::time::timeout(Duration::from_secs(5), budget.reserve(10)).await.expect("never waits for a gone reader");
        outbox.close();
        assert_eq!(outbox.next().await, None);
    }

    #[tokio::test]
    async fn the_last_report_of_a_burst_reaches_the_client_once_its_time_comes() {
        let outbox = Outbox::new(Duration::from_millis(100), 10);
        for i in 0..=50 {
            outbox.emit("s", progress("sampling", i));
        }
        assert_eq!(outbox.waiting(), (1, 0), "the gate let the first through and holds the newest");
        assert_eq!(outbox.next().await, Some((Note::Progress(None, "sampling 0/20000".into()), 0)));
        // Nothing else comes: the held report goes out on its own.
        let held = tokio::time::timeout(Duration::from_secs(10), outbox.next()).await.expect("the held report is sent");
        assert_eq!(held, Some((Note::Progress(None, "sampling 50/20000".into()), 0)));
        outbox.close();
        assert_eq!(outbox.next().await, None, "and only once");
    }
}
