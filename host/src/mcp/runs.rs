//! Deferred results: the runs this server started, kept past the request
//! that started them.
//!
//! An MCP client gives up on a request after its own timeout (OpenClaw: 60 s
//! by default, and progress does not reset it), while a Wan 2.2 video takes
//! minutes. So every skill call becomes a [`Run`] that lives in a task of its
//! own: the `tools/call` request waits for it up to `mcp.answer-within-secs`
//! and then answers "still running, call `c41__wait`"; `wait` (or
//! `tasks/get`) later hands out the very result the call would have given.
//! Cancelling a run (a cancel notification while the call still waits,
//! `c41__cancel`, `tasks/cancel`) cancels the invocation.

use super::results;
use crate::app::App;
use crate::app::RunError;
use crate::events::{Event, EventSink, Outbox, TextBudget};
use crate::queue::{JobQueue, Place};
use crate::runs::RunRecord;
use crate::runtime::{InvokeError, Invoked};
use indexmap::IndexMap;
use rmcp::model::CallToolResult;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Finished runs kept in memory for `wait` (the run journal keeps more).
pub const KEEP_FINISHED: usize = 100;

/// Where a running job stands: its last progress report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Stage name (`queued`, `sampling`, ...).
    pub stage: Option<String>,
    /// Overall completion 0..=1.
    pub fraction: Option<f32>,
    /// Step n of m.
    pub step: Option<(u32, u32)>,
    /// The last message.
    pub message: Option<String>,
    /// The service it reached last (the ComfyUI backend it runs on).
    pub backend: Option<String>,
    /// Where it waits in this host's queue, before it starts.
    pub queued: Option<Place>,
}

/// How a run ended, for people (the page); clients get the full result.
#[derive(Debug, Clone)]
pub struct Ended {
    /// `ok`, `failed` or `cancelled`.
    pub status: &'static str,
    /// The outcome's text, or the error.
    pub text: String,
    /// The stored files.
    pub artifacts: Vec<c41_artifacts::StoredArtifact>,
    /// The outcome's data (seed, backend, ...).
    pub data: Value,
    /// End, in milliseconds since the Unix epoch.
    pub ended_ms: u64,
}

impl Ended {
    fn of(result: &Result<Invoked, RunError>) -> Ended {
        let ended_ms = crate::files::now_ms();
        match result {
            Ok(r) => Ended {
                status: "ok",
                text: r.text.clone(),
                artifacts: r.artifacts.clone(),
                data: r.data.clone(),
                ended_ms,
            },
            Err(e) => Ended {
                status: if matches!(e, RunError::Invoke(InvokeError::Cancelled)) { "cancelled" } else { "failed" },
                text: e.to_string(),
                artifacts: Vec::new(),
                data: Value::Null,
                ended_ms,
            },
        }
    }
}

/// The latest preview image of a run, kept in memory for the page.
#[derive(Debug, Clone)]
pub struct Preview {
    /// `image/png` or `image/jpeg`.
    pub mime: String,
    /// The image.
    pub bytes: Arc<Vec<u8>>,
    /// How many previews came before it (for the page to ask for a new one).
    pub number: u64,
}

/// One invocation started by this server.
pub struct Run {
    /// The invocation id (also the run journal's id).
    pub id: String,
    /// The skill.
    pub skill: String,
    /// Start, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Start, as an ISO 8601 timestamp (for MCP tasks).
    pub created_at: String,
    /// Who started it (an MCP session, `page`), for the queue's fairness.
    pub client: String,
    cancel: CancellationToken,
    ended: Mutex<Option<Ended>>,
    preview: Mutex<Option<Preview>>,
    changes: Arc<watch::Sender<u64>>,
    done: watch::Sender<Option<Arc<CallToolResult>>>,
    progress: Mutex<Snapshot>,
    listeners: Mutex<Vec<(u64, Arc<Outbox>)>>,
    next_listener: std::sync::atomic::AtomicU64,
}

impl Run {
    /// The final result, once the run ended.
    pub fn result(&self) -> Option<Arc<CallToolResult>> {
        self.done.borrow().clone()
    }

    /// The last progress report.
    pub fn progress(&self) -> Snapshot {
        self.progress.lock().unwrap().clone()
    }

    /// How it ended, once it did.
    pub fn ended(&self) -> Option<Ended> {
        self.ended.lock().unwrap().clone()
    }

    /// Its latest preview image.
    pub fn preview(&self) -> Option<Preview> {
        self.preview.lock().unwrap().clone()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Ask the invocation to stop (the skill cleans up, then it ends as
    /// `cancelled`).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether a cancel was asked for.
    pub fn cancel_requested(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The final result, or `None` if the run is still going after `within`.
    pub async fn wait(&self, within: Duration) -> Option<Arc<CallToolResult>> {
        let mut rx = self.done.subscribe();
        let r = tokio::time::timeout(within, rx.wait_for(Option::is_some)).await;
        r.ok().and_then(|r| r.ok().and_then(|v| v.clone()))
    }

    /// Receive this run's events from now on, through a bounded [`Outbox`]
    /// (progress limited by time, text held to a budget the skill waits
    /// on); [`Run::unlisten`] (or the run ending) closes it.
    pub fn listen(&self) -> (u64, Arc<Outbox>) {
        let outbox = Outbox::new(super::progress::PROGRESS_INTERVAL, super::progress::TEXT_BUDGET);
        let id = self.next_listener.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.result().is_none() {
            self.listeners.lock().unwrap().push((id, outbox.clone()));
        } else {
            outbox.close();
        }
        (id, outbox)
    }

    /// Wait until the run ends, however long that takes.
    pub async fn finished(&self) -> Arc<CallToolResult> {
        let mut rx = self.done.subscribe();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`: unreachable while we hold it.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stop sending events to listener `id`.
    pub fn unlisten(&self, id: u64) {
        self.listeners.lock().unwrap().retain(|(l, outbox)| {
            if *l == id {
                outbox.close();
            }
            *l != id
        });
    }

    fn finish(&self, result: CallToolResult, ended: Ended) {
        for (_, outbox) in self.listeners.lock().unwrap().drain(..) {
            outbox.close();
        }
        *self.ended.lock().unwrap() = Some(ended);
        self.done.send_replace(Some(Arc::new(result)));
        self.changed();
    }

    fn set_place(&self, place: Option<Place>) {
        let mut p = self.progress.lock().unwrap();
        match &place {
            Some(at) => {
                p.stage = Some("waiting".into());
                p.message = Some(format!(
                    "waiting for {}: {} in this host's queue (max-jobs)",
                    at.services.join(", "),
                    match at.position {
                        1 => "next".to_string(),
                        n => format!("{} run(s) ahead", n - 1),
                    }
                ));
            }
            None => {
                p.stage = Some("starting".into());
                p.message = None;
            }
        }
        p.queued = place;
        drop(p);
        self.changed();
    }
}

/// The run's event sink: keeps the last progress report and passes every
/// event on to whoever listens.
struct RunEvents(Arc<Run>);

impl EventSink for RunEvents {
    fn emit(&self, skill: &str, event: Event) {
        match &event {
            Event::Progress { stage, fraction, step, message } => {
                let mut p = self.0.progress.lock().unwrap();
                p.stage = Some(stage.clone());
                p.fraction = fraction.or(p.fraction);
                p.step = *step;
                p.message = message.clone();
                drop(p);
                self.0.changed();
            }
            Event::Service(name) => {
                self.0.progress.lock().unwrap().backend = Some(name.clone());
                self.0.changed();
            }
            Event::Preview { mime, bytes } => {
                let mut kept = self.0.preview.lock().unwrap();
                let number = kept.as_ref().map(|p| p.number + 1).unwrap_or(1);
                *kept = Some(Preview { mime: mime.clone(), bytes: bytes.clone(), number });
                drop(kept);
                self.0.changed();
            }
            _ => {}
        }
        for (_, outbox) in self.0.listeners.lock().unwrap().iter() {
            outbox.emit(skill, event.clone());
        }
    }

    /// Every listener's budget: each buffers the text for its own client
    /// (the original call, a `wait`, a task's progress), so the skill waits
    /// for the slowest reader, and no listener holds more than its budget.
    fn text_budgets(&self) -> Vec<Arc<TextBudget>> {
        self.0.listeners.lock().unwrap().iter().flat_map(|(_, outbox)| outbox.text_budgets()).collect()
    }
}

/// Why a run could not be found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Nothing matches.
    #[error("no run `{0}` in this c41 process")]
    NotFound(String),
    /// Several runs match the prefix.
    #[error("`{0}` matches several runs ({1}); give more of the id")]
    Ambiguous(String, String),
}

/// The runs of this server, newest last, and the queue they go through.
pub struct Registry {
    runs: Mutex<IndexMap<String, Arc<Run>>>,
    queue: Arc<JobQueue>,
    changes: Arc<watch::Sender<u64>>,
}

impl Registry {
    /// No runs yet; runs wait in `queue` for their limited services.
    pub fn new(queue: Arc<JobQueue>) -> Registry {
        Registry { runs: Mutex::default(), queue, changes: Arc::new(watch::channel(0).0) }
    }

    /// Changes whenever a run starts, reports, shows a preview, or ends.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Start `skill` on `input` for `client` in a task of its own (after
    /// its place in the queue) and return the run.
    pub fn start(&self, app: Arc<App>, client: &str, skill: &str, input: Value) -> Arc<Run> {
        let id = uuid::Uuid::new_v4().to_string();
        self.launch(app, &id, client, skill, move |app, run, events| async move {
            app.invoke_as(&run.id, &run.skill, input, events, run.cancel.clone()).await
        })
    }

    /// Resume `record`, a run an earlier process left interrupted, under its
    /// own id: a client waiting on that id gets its result (a ComfyUI job is
    /// followed on the server, not submitted again).
    pub fn resume(&self, app: Arc<App>, client: &str, record: RunRecord) -> Arc<Run> {
        let (id, skill) = (record.id.clone(), record.skill.clone());
        self.launch(app, &id, client, &skill, move |app, run, events| async move {
            app.resume(&record, events, run.cancel.clone()).await
        })
    }

    /// Register a run `id` of `skill` and, in a task of its own, wait for
    /// its place in the queue, then do `work` for it.
    fn launch<F, W>(&self, app: Arc<App>, id: &str, client: &str, skill: &str, work: W) -> Arc<Run>
    where
        W: FnOnce(Arc<App>, Arc<Run>, Arc<dyn EventSink>) -> F + Send + 'static,
        F: std::future::Future<Output = Result<Invoked, RunError>> + Send,
    {
        let run = Arc::new(Run {
            id: id.to_string(),
            skill: skill.to_string(),
            started_ms: crate::files::now_ms(),
            created_at: rmcp::task_manager::current_timestamp(),
            client: client.to_string(),
            cancel: CancellationToken::new(),
            done: watch::channel(None).0,
            progress: Mutex::new(Snapshot::default()),
            listeners: Mutex::new(Vec::new()),
            next_listener: Default::default(),
            ended: Mutex::new(None),
            preview: Mutex::new(None),
            changes: self.changes.clone(),
        });
        self.insert(run.clone());
        run.changed();
        let services = match app.catalog.get(skill).map(|s| app.grants_in_force(s)) {
            Some(Ok((granted, _))) => granted.into_iter().map(|g| g.name).collect(),
            _ => Vec::new(),
        };
        let limited = self.queue.limited(&services);
        let queue = self.queue.clone();
        let task_run = run.clone();
        tokio::spawn(async move {
            let run = task_run;
            let place = queue.admit(&run.client, limited, |p| run.set_place(p));
            let ticket = tokio::select! {
                t = place => Some(t),
                _ = run.cancel.cancelled() => None,
            };
            let result = match ticket {
                Some(_ticket) => {
                    let events: Arc<dyn EventSink> = Arc::new(RunEvents(run.clone()));
                    work(app, run.clone(), events).await
                }
                None => Err(RunError::Invoke(InvokeError::Cancelled)),
            };
            run.finish(results::final_result(&run.skill, &run.id, &result), Ended::of(&result));
        });
        run
    }

    fn insert(&self, run: Arc<Run>) {
        let mut runs = self.runs.lock().unwrap();
        runs.insert(run.id.clone(), run);
        let finished: Vec<String> = runs.values().filter(|r| r.result().is_some()).map(|r| r.id.clone()).collect();
        for old in finished.iter().take(finished.len().saturating_sub(KEEP_FINISHED)) {
            runs.shift_remove(old);
        }
    }

    /// The run whose id is or starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Result<Arc<Run>, LookupError> {
        let prefix = prefix.trim();
        let runs = self.runs.lock().unwrap();
        if let Some(r) = runs.get(prefix) {
            return Ok(r.clone());
        }
        let matches: Vec<&Arc<Run>> =
            runs.values().filter(|r| !prefix.is_empty() && r.id.starts_with(prefix)).collect();
        match matches.as_slice() {
            [] => Err(LookupError::NotFound(prefix.to_string())),
            [one] => Ok((*one).clone()),
            many => Err(LookupError::Ambiguous(
                prefix.to_string(),
                many.iter().take(4).map(|r| r.id[..8.min(r.id.len())].to_string()).collect::<Vec<_>>().join(", "),
            )),
        }
    }

    /// Every run kept, newest first.
    pub fn list(&self) -> Vec<Arc<Run>> {
        self.runs.lock().unwrap().values().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn run() -> Arc<Run> {
        Arc::new(Run {
            id: "r".into(),
            skill: "s".into(),
            started_ms: 0,
            created_at: String::new(),
            client: String::new(),
            cancel: CancellationToken::new(),
            done: watch::channel(None).0,
            progress: Mutex::new(Snapshot::default()),
            listeners: Mutex::new(Vec::new()),
            next_listener: Default::default(),
            ended: Mutex::new(None),
            preview: Mutex::new(None),
            changes: Arc::new(watch::channel(0).0),
        })
    }

    /// A skill streams text while two clients listen: one reads, one does
    /// not. The skill waits on the one that does not read, and that
    /// listener holds no more than its own budget.
    #[tokio::test]
    async fn every_listener_holds_text_to_its_own_budget() {
        let run = run();
        let events = RunEvents(run.clone());
        let (_, reading) = run.listen();
        let (_, idle) = run.listen();
        assert_eq!(events.text_budgets().len(), 2);
        let piece = "x".repeat(64 * 1024);
        let mut sent = 0;
        loop {
            let reserved = async {
                for b in events.text_budgets() {
                    b.reserve(piece.len()).await;
                }
            };
            if reserved.now_or_never().is_none() {
                break;
            }
            events.emit("s", Event::TextDelta(piece.clone()));
            sent += piece.len();
            // The reading client takes everything at once.
            while let Some(Some((_, cost))) = reading.next().now_or_never() {
                reading.sent(cost);
            }
            assert!(sent <= 2 * super::super::progress::TEXT_BUDGET, "the skill never waited: {sent} bytes sent");
        }
        let (_, held) = idle.waiting();
        assert!(held <= super::super::progress::TEXT_BUDGET, "the idle listener holds {held} bytes");
        assert!(
            held + piece.len() > super::super::progress::TEXT_BUDGET,
            "it waited only once that one was full: {held}"
        );
    }
}
