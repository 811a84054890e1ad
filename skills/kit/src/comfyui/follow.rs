//! Following a submitted job to its end, truthfully.
//!
//! The websocket gives live progress (sampler steps, the node running,
//! previews) but is not trusted for the outcome: sockets drop and never
//! replay, and a restarted server closes them.
//!
//! Silence is normal (a queue wait, a 14B model load, the VAE decode of a
//! long video) and is never a reason to reconnect: ComfyUI routes a job's
//! events only to the socket registered under the job's `client_id`, and
//! when a socket closes it unregisters that id whichever socket holds it by
//! then, so a second socket under the same id followed by closing the first
//! leaves the job's events with nowhere to go. The socket is kept while it
//! is open; once it really closes the job is followed by polling alone (a
//! new socket under a new id would hear nothing of this job), and the next
//! job gets a socket of its own under a fresh id. The outcome always comes
//! from polling the server's own records, every `poll` interval and at once
//! when the socket hints the job ended:
//!
//! - `/api/jobs/{id}` on servers that have it;
//! - otherwise `/queue` then `/history/{id}`, in that order. A job moves from
//!   the queue into the history atomically, so "not in the queue" followed by
//!   "not in the history" means the server no longer knows it (it restarted,
//!   or someone deleted it), never a job that is merely running.
//!
//! Cancellation and the invocation's deadline are checked between socket
//! reads (at most every 250 ms), and both clean up on the server.

use super::client::{Backend, CallError};
use super::errors;
use super::protocol::{HistoryEntry, QueuePlace, WsEvent, preview_image};
use crate::progress::{self, Progress};
use crate::websocket::{Message, WebSocket};
use crate::{Invocation, SkillError, log};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Longest single wait on the socket: the cancellation latency.
const TICK: Duration = Duration::from_millis(250);
/// Longest wait for a socket's last frames once the history says done.
const DRAIN_FOR: Duration = Duration::from_secs(3);
/// How long a backend may stay unreachable during a job before we give up.
pub const LOST_CONTACT: Duration = Duration::from_secs(120);

/// How closely to follow a job.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Poll the server's records this often, socket or not.
    pub poll: Duration,
    /// A socket silent this long while the job runs is said so once in a
    /// progress message (the outcome still comes from polling; the socket
    /// is kept, see the module docs).
    pub stall: Duration,
    /// Give up (and clean up on the server) at this instant.
    pub deadline: Instant,
    /// When another backend could take the job over: how long this one may
    /// stay unreachable before the job is handed back as [`Followed::Lost`].
    /// `None`: keep trying for [`LOST_CONTACT`], then fail.
    pub failover: Option<Duration>,
}

/// How following a job ended, short of an error.
#[derive(Debug)]
pub enum Followed {
    /// The server's history says success.
    Finished(Finished),
    /// The backend stopped answering for [`FollowOptions::failover`]: the
    /// caller may run the job again elsewhere. The sentence says what was
    /// last seen.
    Lost(String),
}

/// A job that ended in success.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The server's history entry (outputs and messages).
    pub entry: HistoryEntry,
    /// Time from submission to the first node running.
    pub queued: Duration,
    /// Time from the first node running to the end.
    pub ran: Duration,
    /// Sampler progress events seen over the socket.
    pub steps_seen: u32,
    /// Previews forwarded.
    pub previews: u32,
    /// Images a `SaveImageWebsocket` node sent over the socket, in order:
    /// its only output (the history lists none). ComfyUI frames them like
    /// previews; they are told apart by the node executing when they came.
    pub ws_images: Vec<WsImage>,
}

/// An image a `SaveImageWebsocket` node sent.
#[derive(Debug, Clone)]
pub struct WsImage {
    /// The node that sent it.
    pub node: String,
    /// `image/png` or `image/jpeg`.
    pub mime: &'static str,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// Class of the node that sends its images over the socket as output.
pub const WEBSOCKET_SAVE: &str = "SaveImageWebsocket";

/// Where the job stands according to the server's records.
pub(crate) enum Status {
    Pending { ahead: usize },
    Running,
    Done(HistoryEntry),
    Gone(String),
}

pub(crate) async fn status(backend: &Backend, id: &str) -> Result<Status, CallError> {
    if backend.has_jobs_api().await {
        return match backend.job(id).await? {
            None => Ok(Status::Gone("the server does not know it (GET /api/jobs answered 404)".into())),
            Some(j) => match j.status.as_str() {
                "pending" => match backend.queue().await?.place(id) {
                    QueuePlace::Pending { ahead } => Ok(Status::Pending { ahead }),
                    _ => Ok(Status::Running),
                },
                "in_progress" => Ok(Status::Running),
                "cancelled" => Ok(Status::Gone("it was removed from the queue on the server (cancelled there)".into())),
                _ => match backend.history(id).await? {
                    Some(e) => Ok(Status::Done(e)),
                    None => Ok(Status::Gone(format!("the jobs API says `{}` but its history entry is gone", j.status))),
                },
            },
        };
    }
    match backend.queue().await?.place(id) {
        QueuePlace::Running => Ok(Status::Running),
        QueuePlace::Pending { ahead } => Ok(Status::Pending { ahead }),
        QueuePlace::Absent => match backend.history(id).await? {
            Some(e) => Ok(Status::Done(e)),
            None => Ok(Status::Gone("it is neither queued, running nor in the server's history".into())),
        },
    }
}

/// While a job waits in the queue and its socket is live, `/queue` is read
/// this many times less often: each read lists every queued job with its
/// whole workflow, and 64 waiting clients reading it every `poll` cost the
/// server (and c41) more than the jobs themselves.
const QUEUED_SLOWDOWN: u32 = 4;

/// How long [`cancel_remote`] keeps at it: inside the host's 10 s grace.
const CANCEL_FOR: Duration = Duration::from_secs(8);
/// How soon it looks again whether the job left the queue.
const CANCEL_RECHECK: Duration = Duration::from_millis(200);

/// Remove the job from the server, and check that it is gone: delete it
/// while it waits, interrupt it while it runs (only it: the interrupt names
/// our prompt id), and look again until `/queue` no longer holds it. Once is
/// not enough: a job can start between our look and our delete, and
/// ComfyUI acts on an interrupt only at the start of a node or a sampler
/// step (one that lands inside the last node is ignored and that job ends
/// on its own). Best effort, for at most 8 s (inside the host's 10 s
/// grace); the returned sentence says what was done.
pub async fn cancel_remote(backend: &Backend, id: &str) -> String {
    let started = Instant::now();
    let (mut deletes, mut interrupts, mut failures) = (0u32, 0u32, Vec::new());
    let outcome = loop {
        match backend.queue().await.map(|q| q.place(id)) {
            Ok(QueuePlace::Absent) => break None,
            Ok(QueuePlace::Pending { .. }) => {
                deletes += 1;
                if let Err(e) = backend.delete(id).await {
                    failures.push(e.to_string());
                }
            }
            Ok(QueuePlace::Running) => {
                interrupts += 1;
                if let Err(e) = backend.interrupt(id).await {
                    failures.push(e.to_string());
                }
            }
            Err(e) => {
                // Could not tell: do both; each is harmless when it does not apply.
                let _ = backend.delete(id).await;
                let _ = backend.interrupt(id).await;
                failures.push(e.to_string());
            }
        }
        if started.elapsed() >= CANCEL_FOR {
            break Some(format!("it was still queued or running after {}s", CANCEL_FOR.as_secs()));
        }
        wstd::task::sleep(CANCEL_RECHECK.into()).await;
    };
    let mut done = match (deletes, interrupts) {
        (0, 0) => "it had already left the queue".to_string(),
        (_, 0) => "deleted it from the queue".to_string(),
        (0, 1) => "interrupted it".to_string(),
        (0, n) => format!("interrupted it ({n} requests until it left the queue)"),
        (_, n) => format!("deleted it from the queue, then interrupted it when it had started ({n} requests)"),
    };
    if let Some(still) = &outcome {
        done.push_str(&format!("; {still}"));
    }
    if let Some(last) = failures.last() {
        done.push_str(&format!(" ({} failed request(s), last: {last})", failures.len()));
    }
    log::info(
        "comfyui job cancelled on the server",
        &[("prompt_id", id), ("backend", backend.name()), ("action", &done)],
    );
    done
}

/// Live state from the socket, for progress messages.
struct Live<'a> {
    graph: &'a Value,
    backend: &'a str,
    total_nodes: usize,
    cached: HashSet<String>,
    executed: HashSet<String>,
    current: Option<String>,
    step: Option<(u32, u32)>,
    started: Option<Instant>,
    steps_seen: u32,
    previews: u32,
    ws_images: Vec<WsImage>,
    terminal_hint: bool,
}

impl Live<'_> {
    fn class_of(&self, node: &str) -> String {
        self.graph.get(node).and_then(|n| n.get("class_type")).and_then(Value::as_str).unwrap_or("?").to_string()
    }

    /// 0.05..0.90 of the whole invocation is the job itself.
    fn fraction(&self) -> f32 {
        let done = (self.cached.len() + self.executed.len().saturating_sub(1)) as f32;
        let cur = match self.step {
            Some((n, m)) if m > 0 => n as f32 / m as f32,
            _ => 0.0,
        };
        let total = self.total_nodes.max(1) as f32;
        0.05 + 0.85 * ((done + cur) / total).clamp(0.0, 1.0)
    }

    /// A binary frame: a preview, or an output of `SaveImageWebsocket` when
    /// that node is the one running.
    fn handle_binary(&mut self, frame: &[u8]) {
        let Some((mime, img)) = preview_image(frame) else { return };
        match self.current.as_deref().filter(|n| self.class_of(n) == WEBSOCKET_SAVE) {
            Some(node) => self.ws_images.push(WsImage { node: node.to_string(), mime, bytes: img.to_vec() }),
            None => {
                self.previews += 1;
                progress::preview(mime, img);
            }
        }
    }

    /// The history can say "done" before this client has read the socket's
    /// last frames. Where those frames are outputs (`SaveImageWebsocket`),
    /// read on until the job's end event, for at most [`DRAIN_FOR`].
    fn drain(&mut self, ws: Option<&WebSocket>, prompt_id: &str) {
        let Some(sock) = ws else { return };
        let has_socket_outputs = self
            .graph
            .as_object()
            .is_some_and(|g| g.values().any(|n| n.get("class_type").and_then(Value::as_str) == Some(WEBSOCKET_SAVE)));
        let until = Instant::now() + DRAIN_FOR;
        while has_socket_outputs && !self.terminal_hint && Instant::now() < until {
            match sock.recv(TICK) {
                Ok(Some(Message::Text(t))) => self.handle_text(&t, prompt_id),
                Ok(Some(Message::Binary(b))) => self.handle_binary(&b),
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }

    fn handle_text(&mut self, text: &str, prompt_id: &str) {
        let Ok(ev) = serde_json::from_str::<WsEvent>(text) else { return };
        if ev.prompt_id().is_some_and(|p| p != prompt_id) {
            return;
        }
        match ev.kind.as_str() {
            "execution_start" => {
                self.started.get_or_insert_with(Instant::now);
                Progress::stage("running").fraction(0.05).message(format!("started on {}", self.backend)).report();
            }
            "execution_cached" => {
                for n in ev.data.get("nodes").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(id) = n.as_str() {
                        self.cached.insert(id.to_string());
                    }
                }
            }
            "executing" => match ev.data.get("node").and_then(Value::as_str) {
                None => self.terminal_hint = true,
                Some(node) => {
                    self.started.get_or_insert_with(Instant::now);
                    self.executed.insert(node.to_string());
                    self.current = Some(node.to_string());
                    self.step = None;
                    let label = errors::node_label(self.graph, node, "");
                    Progress::stage("running").fraction(self.fraction()).message(format!("running {label}")).report();
                }
            },
            "progress" => {
                let n = ev.data.get("value").and_then(Value::as_u64).unwrap_or(0) as u32;
                let m = ev.data.get("max").and_then(Value::as_u64).unwrap_or(0) as u32;
                let node =
                    ev.data.get("node").and_then(Value::as_str).map(str::to_string).or_else(|| self.current.clone());
                self.step = Some((n, m));
                self.steps_seen += 1;
                let class = node.as_deref().map(|n| self.class_of(n)).unwrap_or_else(|| "sampler".into());
                let at = node.map(|n| format!(" (node {n})")).unwrap_or_default();
                Progress::stage("sampling")
                    .fraction(self.fraction())
                    .step(n, m)
                    .message(format!("{class}{at} step {n}/{m}"))
                    .report();
            }
            "execution_success" | "execution_error" | "execution_interrupted" => self.terminal_hint = true,
            _ => {}
        }
    }
}

/// Follow job `id` on `backend` until it ends, the caller cancels, or the
/// deadline nears. Success only when the server's history says so.
pub async fn follow(
    cx: &Invocation,
    backend: &Backend,
    mut ws: Option<WebSocket>,
    id: &str,
    graph: &Value,
    opts: &FollowOptions,
) -> Result<Followed, SkillError> {
    let submitted = Instant::now();
    let mut live = Live {
        graph,
        backend: backend.name(),
        total_nodes: graph.as_object().map(|m| m.len()).unwrap_or(1),
        cached: HashSet::new(),
        executed: HashSet::new(),
        current: None,
        step: None,
        started: None,
        steps_seen: 0,
        previews: 0,
        ws_images: Vec::new(),
        terminal_hint: false,
    };
    let mut next_poll = Instant::now();
    let mut last_ws = Instant::now();
    let mut stall_reported = false;
    let mut unreachable_since: Option<Instant> = None;
    let mut last_place: Option<String> = None;

    loop {
        if cx.cancelled() {
            cancel_remote(backend, id).await;
            return Err(SkillError::Cancelled);
        }
        if Instant::now() >= opts.deadline {
            let what = cancel_remote(backend, id).await;
            let state = match &live.current {
                Some(n) => format!("still running {}", errors::node_label(graph, n, "")),
                None => last_place.clone().unwrap_or_else(|| "still queued".into()),
            };
            return Err(SkillError::Timeout(format!(
                "ComfyUI job {id} on {} ({state} after {}s, near this invocation's deadline: raise limits.timeout-secs); the skill {what}",
                backend.name(),
                submitted.elapsed().as_secs()
            )));
        }

        // Wait for the socket (or just wait) until the next poll is due.
        let wait = next_poll.saturating_duration_since(Instant::now()).min(TICK);
        match &ws {
            Some(sock) if !wait.is_zero() => match sock.recv(wait) {
                Ok(Some(Message::Text(t))) => {
                    last_ws = Instant::now();
                    stall_reported = false;
                    live.handle_text(&t, id);
                    if live.terminal_hint {
                        // Confirm from the server's records right away.
                        next_poll = next_poll.min(Instant::now());
                    }
                }
                Ok(Some(Message::Binary(b))) => {
                    last_ws = Instant::now();
                    live.handle_binary(&b);
                }
                Ok(None) => {}
                Err(e) => {
                    log::info(
                        "comfyui websocket closed; following by polling",
                        &[("backend", backend.name()), ("error", &e.to_string())],
                    );
                    ws = None;
                    next_poll = Instant::now();
                }
            },
            Some(_) => {}
            None if !wait.is_zero() => {
                wstd::task::sleep(wait.into()).await;
            }
            None => {}
        }

        let running = live.started.is_some();
        let silent = last_ws.elapsed() >= opts.stall;
        if running && ws.is_some() && !stall_reported && silent {
            stall_reported = true;
            Progress::stage("running")
                .fraction(live.fraction())
                .message(format!(
                    "no live progress from {} for {}s (websocket silent: loading models or decoding?); the job is followed by polling",
                    backend.name(),
                    last_ws.elapsed().as_secs()
                ))
                .report();
        }

        if Instant::now() < next_poll {
            continue;
        }
        match status(backend, id).await {
            Err(e) => {
                // Said once per outage (a line every poll would flood logs
                // and agents); details stay at debug level.
                let since = match unreachable_since {
                    Some(t) => {
                        log::debug("comfyui poll failed", &[("backend", backend.name()), ("error", &e.to_string())]);
                        t
                    }
                    None => {
                        let now = Instant::now();
                        unreachable_since = Some(now);
                        let wait = opts.failover.unwrap_or(LOST_CONTACT).as_secs();
                        log::warn(
                            "comfyui backend stopped answering",
                            &[("backend", backend.name()), ("prompt_id", id), ("error", &e.to_string())],
                        );
                        let then = if opts.failover.is_some() { "running it elsewhere" } else { "giving up" };
                        Progress::stage("running")
                            .fraction(live.fraction())
                            .message(format!(
                                "lost contact with {} ({e}); waiting up to {wait}s before {then}",
                                backend.name()
                            ))
                            .report();
                        now
                    }
                };
                if let Some(grace) = opts.failover
                    && since.elapsed() >= grace
                {
                    return Ok(Followed::Lost(format!("no answer for {}s: {e}", since.elapsed().as_secs())));
                }
                if since.elapsed() >= LOST_CONTACT {
                    return Err(backend
                        .fail(&format!("following job {id}: lost contact for {}s", since.elapsed().as_secs()), e));
                }
                next_poll = Instant::now() + opts.poll;
            }
            Ok(st) => {
                unreachable_since = None;
                match st {
                    Status::Pending { ahead } => {
                        let m = format!("waiting in queue on {}: {ahead} job(s) ahead", backend.name());
                        if last_place.as_deref() != Some(&m) {
                            Progress::stage("queued").fraction(0.05).message(m.clone()).report();
                            last_place = Some(m);
                        }
                        // The place in line comes from `/queue`, which lists
                        // every queued job in full: with a live socket (which
                        // says when the job starts) look less often.
                        let every = if ws.is_some() { opts.poll * QUEUED_SLOWDOWN } else { opts.poll };
                        next_poll = Instant::now() + every;
                    }
                    Status::Running => {
                        if live.started.is_none() {
                            live.started = Some(Instant::now());
                            Progress::stage("running")
                                .fraction(0.05)
                                .message(format!("running on {}", backend.name()))
                                .report();
                        } else if ws.is_none() || silent {
                            Progress::stage("running")
                                .fraction(live.fraction())
                                .message(match &live.current {
                                    // A long node without steps of its own
                                    // (a LoRA trainer): say which one runs.
                                    Some(n) => format!(
                                        "running {} on {} ({}s)",
                                        errors::node_label(graph, n, ""),
                                        backend.name(),
                                        submitted.elapsed().as_secs()
                                    ),
                                    None => {
                                        format!("running on {} ({}s)", backend.name(), submitted.elapsed().as_secs())
                                    }
                                })
                                .report();
                        }
                        // Right after a terminal event the history entry
                        // follows within milliseconds.
                        next_poll =
                            Instant::now() + if live.terminal_hint { Duration::from_millis(100) } else { opts.poll };
                    }
                    Status::Gone(why) => {
                        return Err(backend.error(
                            None,
                            format!(
                                "the server forgot job {id}: {why}. ComfyUI keeps its queue and history only in memory, so it was most likely restarted (or the job was deleted there); nothing was produced — submit again"
                            ),
                        ));
                    }
                    Status::Done(entry) => {
                        live.drain(ws.as_ref(), id);
                        let started = live.started.unwrap_or_else(Instant::now);
                        let queued = started.saturating_duration_since(submitted);
                        let ran = started.elapsed();
                        return conclude(entry, graph, backend, id).map(|entry| {
                            Followed::Finished(Finished {
                                entry,
                                queued,
                                ran,
                                steps_seen: live.steps_seen,
                                previews: live.previews,
                                ws_images: std::mem::take(&mut live.ws_images),
                            })
                        });
                    }
                }
            }
        }
    }
}

/// Success only if the history says success; otherwise the node, class and
/// exception, or the interruption.
fn conclude(entry: HistoryEntry, graph: &Value, backend: &Backend, id: &str) -> Result<HistoryEntry, SkillError> {
    let s = &entry.status;
    if let Some(err) = s.message("execution_error") {
        return Err(backend.error(None, errors::execution_error_message(graph, err)));
    }
    if let Some(data) = s.message("execution_interrupted") {
        return Err(backend.error(None, errors::interrupted_message(graph, Some(data))));
    }
    if s.status_str == "success" || (s.status_str.is_empty() && s.completed) {
        return Ok(entry);
    }
    let events: Vec<&str> = s.messages.iter().map(|(e, _)| e.as_str()).collect();
    Err(backend.error(None, format!("job {id} ended with status `{}` (events: {})", s.status_str, events.join(", "))))
}
