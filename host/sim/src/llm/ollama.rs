//! Ollama's native API (`/api/*`): NDJSON streaming on by default, Go-style
//! `{"error": "..."}` bodies, loading and unloading through empty prompts and
//! `keep_alive`. The catalogue endpoints live in `catalogue`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::admit::{BUSY, Needs, Rejection, admit};
use super::catalogue;
use super::reply::{Ask, Format, Msg, Piece, Plan, Tool, plan};
use super::state::Shared;
use super::stream::{self, StreamJob};
use super::util::{KeepAlive, canonical, keep_alive, rfc3339};
use super::{Api, RequestRecord};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { "Ollama is running" }))
        .route("/api/version", get(catalogue::version))
        .route("/api/tags", get(catalogue::tags))
        .route("/api/ps", get(catalogue::ps))
        .route("/api/show", post(catalogue::show))
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
        .with_state(shared)
}

pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// Decodes a body the way Ollama reports problems: an empty body is
/// "missing request body", anything else is the decoder's message.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("missing request body".into());
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatMessage {
    role: String,
    content: Option<String>,
    images: Option<Vec<Value>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    tools: Option<Vec<Value>>,
    format: Value,
    options: Value,
    stream: Option<bool>,
    keep_alive: Option<Value>,
    think: Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GenerateRequest {
    model: String,
    prompt: Option<String>,
    system: Option<String>,
    images: Option<Vec<Value>>,
    format: Value,
    options: Value,
    stream: Option<bool>,
    keep_alive: Option<Value>,
    think: Value,
}

/// What chat and generate have in common once decoded.
struct Job {
    api: Api,
    model: String,
    stream: bool,
    messages: Vec<Msg>,
    tools: Vec<Tool>,
    format: Value,
    options: Value,
    keep_alive: Option<Value>,
    think: Value,
    /// No prompt at all: a load (or, with keep_alive 0, unload) request.
    empty: bool,
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: ChatRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let messages: Vec<Msg> = req
        .messages
        .into_iter()
        .map(|m| Msg {
            role: m.role,
            content: m.content.unwrap_or_default(),
            has_images: m.images.is_some_and(|i| !i.is_empty()),
        })
        .collect();
    let job = Job {
        api: Api::OllamaChat,
        model: req.model,
        stream: req.stream.unwrap_or(true),
        empty: messages.is_empty(),
        messages,
        tools: Tool::parse_all(req.tools.as_deref().unwrap_or_default()),
        format: req.format,
        options: req.options,
        keep_alive: req.keep_alive,
        think: req.think,
    };
    run(shared, job).await
}

async fn generate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: GenerateRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let prompt = req.prompt.unwrap_or_default();
    let has_images = req.images.is_some_and(|i| !i.is_empty());
    let mut messages = Vec::new();
    if let Some(system) = req.system.filter(|s| !s.is_empty()) {
        messages.push(Msg { role: "system".into(), content: system, has_images: false });
    }
    let empty = prompt.is_empty() && !has_images;
    messages.push(Msg { role: "user".into(), content: prompt, has_images });
    let job = Job {
        api: Api::OllamaGenerate,
        model: req.model,
        stream: req.stream.unwrap_or(true),
        messages,
        tools: Vec::new(),
        format: req.format,
        options: req.options,
        keep_alive: req.keep_alive,
        think: req.think,
        empty,
    };
    run(shared, job).await
}

fn parse_format(v: &Value) -> Result<Option<Format>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s == "json" => Ok(Some(Format::Json)),
        Value::Object(_) => Ok(Some(Format::Schema(v.clone()))),
        _ => Err(format!("invalid format: {v}; expected \"json\" or a valid JSON schema")),
    }
}

/// `think`: a bool, or a reasoning effort. Returns the effort when on.
fn parse_think(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Bool(true) => Ok(Some("medium".into())),
        Value::String(s) if matches!(s.as_str(), "low" | "medium" | "high") => Ok(Some(s.clone())),
        _ => Err(format!("invalid think value: {v} (must be \"high\", \"medium\", \"low\", true, or false)")),
    }
}

fn log_error(shared: &Shared, job: &Job, status: StatusCode, msg: &str) {
    shared.log(RequestRecord::failed(job.api, &job.model, &job.messages, job.stream, status.as_u16(), msg));
}

fn fail(shared: &Shared, job: &Job, status: StatusCode, msg: String) -> Response {
    log_error(shared, job, status, &msg);
    error(status, msg)
}

fn ndjson(v: &Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

/// The message `/api/chat` or the fields `/api/generate` put in one chunk.
fn piece_chunk(api: Api, model: &str, piece: &Piece<'_>) -> Value {
    let mut c = json!({ "model": model, "created_at": rfc3339(SystemTime::now()) });
    let (thinking, content) = match piece {
        Piece::Thinking(t) => (Some(*t), ""),
        Piece::Content(t) => (None, *t),
        Piece::Calls(_) => (None, ""),
    };
    if api == Api::OllamaChat {
        let mut msg = json!({ "role": "assistant", "content": content });
        if let Some(t) = thinking {
            msg["thinking"] = json!(t);
        }
        if let Piece::Calls(calls) = piece {
            msg["tool_calls"] = tool_calls(calls);
        }
        c["message"] = msg;
    } else {
        c["response"] = json!(content);
        if let Some(t) = thinking {
            c["thinking"] = json!(t);
        }
    }
    c["done"] = json!(false);
    c
}

fn tool_calls(calls: &[super::reply::Call]) -> Value {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({ "id": format!("call_{i}_{}", c.name), "function": { "index": i, "name": c.name, "arguments": c.arguments } })
        })
        .collect()
}

/// Timings in nanoseconds, as Ollama reports them.
#[derive(Clone, Copy)]
struct Timing {
    start: Instant,
    load: Duration,
    prompt_tokens: u64,
    eval_tokens: u64,
}

impl Timing {
    fn write(self, c: &mut Value, generation: Duration) {
        let prompt_eval = Duration::from_micros(50 * self.prompt_tokens);
        let eval = generation.max(Duration::from_micros(1));
        let total = self.start.elapsed().max(self.load + prompt_eval + eval);
        c["total_duration"] = json!(total.as_nanos() as u64);
        c["load_duration"] = json!(self.load.as_nanos() as u64);
        c["prompt_eval_count"] = json!(self.prompt_tokens);
        c["prompt_eval_duration"] = json!(prompt_eval.as_nanos() as u64);
        c["eval_count"] = json!(self.eval_tokens);
        c["eval_duration"] = json!(eval.as_nanos() as u64);
    }
}

fn done_chunk(api: Api, model: &str, done_reason: &str) -> Value {
    let mut c = json!({ "model": model, "created_at": rfc3339(SystemTime::now()) });
    if api == Api::OllamaChat {
        c["message"] = json!({ "role": "assistant", "content": "" });
    } else {
        c["response"] = json!("");
    }
    c["done"] = json!(true);
    c["done_reason"] = json!(done_reason);
    c
}

const MID_STREAM_ERROR: &str = "an error was encountered while running the model: unexpected EOF";

async fn run(shared: Arc<Shared>, job: Job) -> Response {
    let start = Instant::now();
    if job.model.is_empty() {
        return fail(&shared, &job, StatusCode::BAD_REQUEST, "model is required".into());
    }
    let keep = match job.keep_alive.as_ref().map(keep_alive).transpose() {
        Ok(k) => k.unwrap_or(shared.default_keep_alive()),
        Err(e) => return fail(&shared, &job, StatusCode::BAD_REQUEST, e),
    };
    let format = match parse_format(&job.format) {
        Ok(f) => f,
        Err(e) => return fail(&shared, &job, StatusCode::BAD_REQUEST, e),
    };
    let think = match parse_think(&job.think) {
        Ok(t) => t,
        Err(e) => return fail(&shared, &job, StatusCode::BAD_REQUEST, e),
    };
    let needs = Needs {
        endpoint: if job.api == Api::OllamaChat { "chat" } else { "generate" },
        tools: !job.tools.is_empty(),
        thinking: think.is_some(),
        vision: job.messages.iter().any(|m| m.has_images),
    };
    let (model, pending) = match admit(&shared, &job.model, needs) {
        Ok(ok) => ok,
        Err(rejection) => {
            let (status, msg) = match rejection {
                Rejection::Injected(status) => (status, format!("simulated failure ({})", status.as_u16())),
                Rejection::NotFound => {
                    (StatusCode::NOT_FOUND, format!("model \"{}\" not found, try pulling it first", job.model))
                }
                Rejection::Unsupported(what) => {
                    (StatusCode::BAD_REQUEST, format!("\"{}\" does not support {what}", job.model))
                }
                Rejection::Busy => (StatusCode::SERVICE_UNAVAILABLE, BUSY.to_string()),
            };
            return fail(&shared, &job, status, msg);
        }
    };

    if job.empty {
        let reason = if keep == KeepAlive::For(Duration::ZERO) {
            shared.unload(&model);
            "unload"
        } else {
            drop(shared.acquire(&model, keep).await);
            "load"
        };
        drop(pending);
        return Json(done_chunk(job.api, &job.model, reason)).into_response();
    }

    let lease = shared.acquire(&model, keep).await;
    let max_tokens = job.options.get("num_predict").and_then(Value::as_i64).filter(|n| *n > 0);
    let plan = plan(&Ask {
        model: &model,
        messages: &job.messages,
        tools: &job.tools,
        format: format.as_ref(),
        think: think.as_deref(),
        max_tokens: max_tokens.map(|n| n as usize),
        echo_chars: shared.config.echo_chars,
    });
    let broken = shared.take_mid_stream();
    let (status, stream_error) = if broken && !job.stream {
        (StatusCode::INTERNAL_SERVER_ERROR, Some(MID_STREAM_ERROR.to_string()))
    } else {
        (StatusCode::OK, broken.then(|| MID_STREAM_ERROR.to_string()))
    };
    shared.log(RequestRecord {
        api: job.api,
        model: job.model.clone(),
        served_by: Some(canonical(&model.name)),
        prompt: plan.prompt.clone(),
        reply: plan.full_content.clone(),
        tool_calls: plan.call_names(),
        status: status.as_u16(),
        stream: job.stream,
        cold_load: lease.cold,
        error: stream_error,
    });
    let timing =
        Timing { start, load: lease.load_duration, prompt_tokens: plan.prompt_tokens, eval_tokens: plan.eval_tokens() };
    let done_reason = if plan.truncated { "length" } else { "stop" };
    let delay = shared.token_delay();

    if job.stream {
        let pieces = plan.pieces().iter().map(|p| ndjson(&piece_chunk(job.api, &job.model, p))).collect();
        let (api, name) = (job.api, job.model.clone());
        let body = stream::spawn(StreamJob {
            lead: Vec::new(),
            pieces,
            delay,
            break_with: broken.then(|| ndjson(&json!({ "error": MID_STREAM_ERROR }))),
            finish: Box::new(move |generation| {
                let mut done = done_chunk(api, &name, done_reason);
                timing.write(&mut done, generation);
                vec![ndjson(&done)]
            }),
            guards: Box::new((pending, lease)),
        });
        return ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    }

    let generation_start = Instant::now();
    let steps = plan.pieces().len();
    if broken {
        tokio::time::sleep(delay * steps.min(2) as u32).await;
        return error(StatusCode::INTERNAL_SERVER_ERROR, MID_STREAM_ERROR);
    }
    tokio::time::sleep(delay * steps as u32).await;
    let mut reply = whole_reply(job.api, &job.model, &plan, done_reason);
    timing.write(&mut reply, generation_start.elapsed());
    drop((pending, lease));
    Json(reply).into_response()
}

fn whole_reply(api: Api, model: &str, plan: &Plan, done_reason: &str) -> Value {
    let mut reply = done_chunk(api, model, done_reason);
    let thinking = plan.thinking_text();
    if api == Api::OllamaChat {
        let msg = &mut reply["message"];
        msg["content"] = json!(plan.content_text());
        if !thinking.is_empty() {
            msg["thinking"] = json!(thinking);
        }
        if !plan.calls.is_empty() {
            msg["tool_calls"] = tool_calls(&plan.calls);
        }
    } else {
        reply["response"] = json!(plan.content_text());
        if !thinking.is_empty() {
            reply["thinking"] = json!(thinking);
        }
    }
    reply
}
