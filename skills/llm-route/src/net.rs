//! HTTP to the backends: discovery (`/api/tags`, `/api/ps`, `/v1/models`)
//! and one streamed chat attempt, with every failure sorted into an outcome
//! the fallback logic can act on (try the next model, or skip the backend).

use crate::ask::{Ask, error_message};
use crate::config::Settings;
use crate::route::{Backend, Candidate, Kind};
use crate::stream::{Event, Lines, Reply, Sse};
use crate::{ollama, openai};
use c41_kit::http::{self, HttpError, TransportKind};
use c41_kit::wstd::future::FutureExt as _;
use c41_kit::wstd::http::{Body, BodyExt as _, Method, Request, Response};
use c41_kit::{SkillError, settings::Service};
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};

/// Timeouts of one request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To open the connection.
    pub connect: Duration,
    /// Until the response head arrives (covers a cold model load).
    pub first_byte: Duration,
    /// Longest pause inside a streamed body.
    pub between_bytes: Duration,
}

impl Timeouts {
    /// The timeouts for a chat attempt: long when the model may have to load,
    /// and never past the host's deadline.
    pub fn for_attempt(s: &Settings, c: &Candidate, remaining_ms: u64) -> Timeouts {
        let cold = s.model(&c.model).first_byte_timeout_secs.unwrap_or(s.first_byte_timeout_secs);
        let first = if c.loaded == Some(true) { s.warm_first_byte_timeout_secs.min(cold) } else { cold };
        let cap = Duration::from_millis(remaining_ms.saturating_sub(1000).max(1000));
        Timeouts {
            connect: Duration::from_secs(s.connect_timeout_secs.max(1)).min(cap),
            first_byte: Duration::from_secs(first.max(1)).min(cap),
            between_bytes: Duration::from_secs(s.between_bytes_timeout_secs.max(1)).min(cap),
        }
    }

    /// Discovery asks small questions: no cold-load allowance.
    pub fn for_discovery(s: &Settings) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(s.connect_timeout_secs.max(1)),
            first_byte: Duration::from_secs(15),
            between_bytes: Duration::from_secs(15),
        }
    }
}

/// Why an attempt failed, sorted for the fallback logic.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `not-found`, `busy`, `unsupported`, `rejected`, `error`, `down`,
    /// `timeout`, `denied`, `mid-stream-error`, `incomplete`.
    pub outcome: &'static str,
    /// The HTTP status, when the backend answered with one.
    pub status: Option<u16>,
    /// The backend's message.
    pub message: String,
    /// Reply tokens already forwarded to the caller when it failed.
    pub tokens: u64,
}

impl Failure {
    fn new(outcome: &'static str, status: Option<u16>, message: impl Into<String>) -> Self {
        Failure { outcome, status, message: message.into(), tokens: 0 }
    }

    /// Failures that say the whole backend is unusable for a while, so its
    /// other models are skipped in this call.
    pub fn cools_backend(&self) -> bool {
        matches!(self.outcome, "down" | "timeout" | "busy" | "denied")
    }

    /// From an HTTP error status and body.
    pub fn from_status(status: u16, body: &str) -> Self {
        let message = error_message(body);
        let lower = message.to_lowercase();
        let outcome = match status {
            404 => "not-found",
            400 | 422 if lower.contains("not found") || lower.contains("does not exist") => "not-found",
            400 if lower.contains("does not support") => "unsupported",
            429 | 503 => "busy",
            408 | 504 => "timeout",
            400..=499 => "rejected",
            _ => "error",
        };
        Failure::new(outcome, Some(status), message)
    }

    /// From a failed request, as the kit's client sorts it.
    fn from_http(e: HttpError) -> Self {
        match e {
            HttpError::Status { status, body } => Failure::from_status(status, &body),
            HttpError::Transport { kind, .. } => {
                let outcome = match kind {
                    TransportKind::Timeout => "timeout",
                    TransportKind::Denied => "denied",
                    TransportKind::Unreachable => "down",
                };
                Failure::new(outcome, None, e.to_string())
            }
            // llm-route sends no input files.
            HttpError::Input { .. } => Failure::new("error", None, e.to_string()),
        }
    }

    /// From a transport error (no HTTP status) while `what` went on.
    fn from_transport(what: &str, e: &c41_kit::wstd::http::Error) -> Self {
        Failure::from_http(HttpError::transport(what, e))
    }
}

/// How an attempt ended when it did not produce a reply.
#[derive(Debug)]
pub enum Stop {
    /// The attempt failed; the next candidate may succeed.
    Failed(Failure),
    /// The whole invocation must end (cancelled).
    Abort(SkillError),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Self {
        Stop::Failed(f)
    }
}

/// Await `fut`, checking every half second whether the caller cancelled: a
/// cold load can keep a request waiting for minutes.
pub async fn cancellable<F: Future>(fut: F) -> Result<F::Output, SkillError> {
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().timeout(c41_kit::wstd::time::Duration::from_millis(500)).await {
            Ok(v) => return Ok(v),
            Err(_) => {
                if c41_kit::bindings::c41::skill::invocation::cancelled() {
                    return Err(SkillError::Cancelled);
                }
            }
        }
    }
}

async fn send(url: &str, method: Method, body: Option<Vec<u8>>, t: Timeouts) -> Result<Response<Body>, Stop> {
    let what = format!("{method} {url}");
    let mut req = Request::builder().method(method).uri(url);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .map_err(|e| Stop::Failed(Failure::new("rejected", None, format!("{what}: bad request: {e}"))))?;
    let timeouts = http::Timeouts {
        connect: Some(t.connect),
        first_byte: Some(t.first_byte),
        between_bytes: Some(t.between_bytes),
    };
    let resp = cancellable(http::exchange(req, timeouts, false)).await.map_err(Stop::Abort)?;
    resp.map_err(|e| Failure::from_http(e).into())
}

async fn get_json(url: &str, t: Timeouts) -> Result<Value, Stop> {
    let resp = send(url, Method::GET, None, t).await?;
    let mut body = resp.into_body();
    let bytes =
        cancellable(body.contents()).await.map_err(Stop::Abort)?.map_err(|e| Failure::from_transport(url, &e))?;
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::new("error", None, format!("GET {url}: unexpected JSON: {e}")).into())
}

/// Ask a backend which models it has and which are loaded. A backend that
/// cannot be reached is marked down; one that answers oddly is kept, with
/// nothing known about its models.
pub async fn discover(service: &Service, kind: Kind, t: Timeouts) -> Result<Backend, SkillError> {
    let mut b =
        Backend { name: service.name.clone(), kind, url: service.url.clone(), listed: None, loaded: None, down: None };
    let outcome = |s: Stop| -> Result<Failure, SkillError> {
        match s {
            Stop::Failed(f) => Ok(f),
            Stop::Abort(e) => Err(e),
        }
    };
    match kind {
        Kind::Ollama => {
            match get_json(&format!("{}/api/tags", b.url), t).await {
                Ok(v) => b.listed = Some(ollama::model_names(&v)),
                Err(s) => {
                    let f = outcome(s)?;
                    if f.cools_backend() {
                        b.down = Some(f.message);
                        return Ok(b);
                    }
                }
            }
            if let Ok(v) = get_json(&format!("{}/api/ps", b.url), t).await {
                b.loaded = Some(ollama::model_names(&v));
            }
        }
        Kind::OpenAi => match get_json(&format!("{}{}", b.url, openai::MODELS), t).await {
            Ok(v) => {
                let (ids, loaded) = openai::model_listing(&v);
                b.listed = Some(ids);
                b.loaded = loaded;
            }
            Err(s) => {
                let f = outcome(s)?;
                if f.cools_backend() {
                    b.down = Some(f.message);
                }
            }
        },
    }
    Ok(b)
}

/// A finished reply and its timing.
#[derive(Debug)]
pub struct Answer {
    /// The assembled reply.
    pub reply: Reply,
    /// From sending the request to the first reply token (or the end).
    pub first_token_ms: Option<u64>,
    /// From the first token to the end.
    pub generation_ms: u64,
}

/// Send one chat request and read the reply as it streams. `on_token` gets
/// each content token as it arrives (the caller's live stream); an error at
/// any point, before or after the first token, is a [`Failure`].
pub async fn chat(
    backend: &Backend,
    ask: &Ask<'_>,
    t: Timeouts,
    mut on_token: impl FnMut(&str, u64),
) -> Result<Answer, Stop> {
    let (path, body) = match backend.kind {
        Kind::Ollama => (ollama::CHAT, ollama::body(ask)),
        Kind::OpenAi => (openai::CHAT, openai::body(ask)),
    };
    let url = format!("{}{path}", backend.url);
    let started = Instant::now();
    let bytes = serde_json::to_vec(&body).map_err(|e| Stop::Abort(SkillError::internal(e)))?;
    let resp = send(&url, Method::POST, Some(bytes), t).await?;
    let mut frames = resp.into_body().into_boxed_body();
    let (mut lines, mut sse, mut reply) = (Lines::default(), Sse::default(), Reply::default());
    let mut whole = String::new();
    let mut first: Option<Instant> = None;
    let streamed_openai = backend.kind == Kind::OpenAi && ask.stream;
    let mut handle = |line: String, reply: &mut Reply, first: &mut Option<Instant>| -> Result<(), Failure> {
        let events: Vec<Event> = match backend.kind {
            Kind::Ollama => ollama::chunk(&line),
            Kind::OpenAi if streamed_openai => sse.line(&line).map(|d| openai::chunk(&d)).unwrap_or_default(),
            Kind::OpenAi => {
                whole.push_str(&line);
                whole.push('\n');
                Vec::new()
            }
        };
        for e in events {
            if let Event::Content(tok) = &e {
                first.get_or_insert_with(Instant::now);
                on_token(tok, reply.content_events + 1);
            }
            if let Some(err) = reply.apply(e) {
                return Err(Failure {
                    outcome: "mid-stream-error",
                    status: None,
                    message: err,
                    tokens: reply.content_events,
                });
            }
        }
        Ok(())
    };
    loop {
        let frame = cancellable(frames.frame()).await.map_err(Stop::Abort)?;
        match frame {
            None => break,
            Some(Err(e)) => {
                let mut f = Failure::from_transport(&format!("reading the reply from {url}"), &e);
                if f.outcome == "down" {
                    f.outcome = "mid-stream-error";
                }
                f.tokens = reply.content_events;
                return Err(f.into());
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    for line in lines.push(data) {
                        handle(line, &mut reply, &mut first)?;
                    }
                }
            }
        }
    }
    if let Some(line) = lines.finish() {
        handle(line, &mut reply, &mut first)?;
    }
    if streamed_openai {
        if let Some(d) = sse.flush() {
            for e in openai::chunk(&d) {
                if let Some(err) = reply.apply(e) {
                    return Err(Failure {
                        outcome: "mid-stream-error",
                        status: None,
                        message: err,
                        tokens: reply.content_events,
                    }
                    .into());
                }
            }
        }
    } else if backend.kind == Kind::OpenAi {
        for e in openai::chunk(&whole) {
            if let Some(err) = reply.apply(e) {
                return Err(Failure::new("error", None, err).into());
            }
        }
        reply.done = true;
    }
    if !reply.done && reply.finish_reason.is_none() {
        return Err(Failure {
            outcome: "incomplete",
            status: None,
            message: format!("the stream from {url} ended before the reply was complete"),
            tokens: reply.content_events,
        }
        .into());
    }
    reply.close();
    let end = Instant::now();
    Ok(Answer {
        first_token_ms: Some(first.unwrap_or(end).duration_since(started).as_millis() as u64),
        generation_ms: first.map(|f| end.duration_since(f).as_millis() as u64).unwrap_or(0),
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_sort_into_outcomes() {
        let o = |status, body: &str| Failure::from_status(status, body).outcome;
        assert_eq!(o(404, r#"{"error":"model \"x\" not found, try pulling it first"}"#), "not-found");
        assert_eq!(o(400, r#"{"error":{"message":"model 'x' not found"}}"#), "not-found");
        assert_eq!(o(400, r#"{"error":"\"m\" does not support tools"}"#), "unsupported");
        assert_eq!(o(400, r#"{"error":{"message":"exceed_context_size_error"}}"#), "rejected");
        assert_eq!(o(503, "server busy"), "busy");
        assert_eq!(o(429, ""), "busy");
        assert_eq!(o(500, "boom"), "error");
        assert!(Failure::from_status(503, "").cools_backend());
        assert!(!Failure::from_status(500, "").cools_backend());
        assert!(!Failure::from_status(404, "").cools_backend());
    }

    #[test]
    fn cold_loads_get_the_long_timeout_within_the_deadline() {
        let s = Settings::from_json(json!({"models": {"big": {"first-byte-timeout-secs": 1500}}})).unwrap();
        let c = |model: &str, loaded| Candidate {
            model: model.into(),
            id: model.into(),
            backend: Some(0),
            loaded,
            placement: "listed",
        };
        assert_eq!(Timeouts::for_attempt(&s, &c("m", Some(true)), u64::MAX).first_byte, Duration::from_secs(180));
        assert_eq!(Timeouts::for_attempt(&s, &c("m", Some(false)), u64::MAX).first_byte, Duration::from_secs(900));
        assert_eq!(Timeouts::for_attempt(&s, &c("m", None), u64::MAX).first_byte, Duration::from_secs(900));
        assert_eq!(Timeouts::for_attempt(&s, &c("big", None), u64::MAX).first_byte, Duration::from_secs(1500));
        assert_eq!(Timeouts::for_attempt(&s, &c("big", None), 61_000).first_byte, Duration::from_secs(60));
    }
}
