//! The OpenAI-compatible API (`/v1/*`) as Ollama, llama.cpp and friends
//! serve it: `{"error": {message, type, code}}` bodies, SSE streaming that
//! ends in `data: [DONE]`, and tool-call arguments as a JSON string.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::admit::{BUSY, Needs, Rejection, admit};
use super::reply::{Ask, Call, Format, Msg, Piece, Plan, Tool, plan};
use super::state::Shared;
use super::stream::{self, StreamJob};
use super::util::{canonical, unix_secs};
use super::{Api, RequestRecord, SimModel};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{*model}", get(model))
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(shared)
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 422 => "invalid_request_error",
        401 | 403 => "authentication_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

fn error_body(status: StatusCode, message: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": error_type(status), "param": null, "code": code } })
}

pub(crate) fn error(status: StatusCode, message: &str, code: Option<&str>) -> Response {
    (status, Json(error_body(status, message, code))).into_response()
}

fn listing(shared: &Shared, m: &SimModel) -> Value {
    json!({ "id": canonical(&m.name), "object": "model", "created": unix_secs(shared.started), "owned_by": "library" })
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let data: Vec<Value> = shared.config.models.iter().map(|m| listing(&shared, m)).collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}

async fn model(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match shared.model(&name) {
        Some(m) => Json(listing(&shared, m)).into_response(),
        None => not_found(&name),
    }
}

fn not_found(name: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("model '{name}' not found"), Some("model_not_found"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatRequest {
    model: String,
    messages: Vec<Value>,
    stream: bool,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    tools: Option<Vec<Value>>,
    response_format: Value,
    reasoning_effort: Option<String>,
    reasoning: Value,
}

/// Content is a string or a list of parts; only text parts count, and image
/// parts mark the message as needing vision.
fn message(v: &Value) -> Msg {
    let role = v.get("role").and_then(Value::as_str).unwrap_or("user").to_string();
    let (content, has_images) = match v.get("content") {
        Some(Value::String(s)) => (s.clone(), false),
        Some(Value::Array(parts)) => {
            let text = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ");
            let images = parts.iter().any(|p| p.get("type").and_then(Value::as_str) == Some("image_url"));
            (text, images)
        }
        _ => (String::new(), false),
    };
    Msg { role, content, has_images }
}

fn parse_format(v: &Value) -> Option<Format> {
    match v.get("type").and_then(Value::as_str) {
        Some("json_object") => Some(Format::Json),
        Some("json_schema") => {
            let schema = v.pointer("/json_schema/schema").cloned().unwrap_or_else(|| json!({}));
            Some(Format::Schema(schema))
        }
        _ => None,
    }
}

/// `reasoning_effort` (or `reasoning.effort`): on unless "none".
fn parse_think(req: &ChatRequest) -> Option<String> {
    let effort = req.reasoning_effort.clone().or_else(|| req.reasoning.get("effort")?.as_str().map(String::from))?;
    (effort != "none").then_some(effort)
}

struct Completion {
    id: String,
    created: u64,
    model: String,
}

impl Completion {
    fn chunk(&self, choices: Value) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": "fp_c41_sim", "choices": choices,
        })
    }

    fn delta(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        self.chunk(json!([{ "index": 0, "delta": delta, "finish_reason": finish_reason }]))
    }
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// Tool calls with `arguments` as a JSON string, as OpenAI clients expect.
fn tool_calls(calls: &[Call]) -> Value {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "index": i, "id": format!("call_{i}_{}", c.name), "type": "function",
                "function": { "name": c.name, "arguments": c.arguments.to_string() },
            })
        })
        .collect()
}

fn usage(plan: &Plan) -> Value {
    let completion = plan.eval_tokens();
    json!({ "prompt_tokens": plan.prompt_tokens, "completion_tokens": completion, "total_tokens": plan.prompt_tokens + completion })
}

fn finish_reason(plan: &Plan) -> &'static str {
    if !plan.calls.is_empty() {
        "tool_calls"
    } else if plan.truncated {
        "length"
    } else {
        "stop"
    }
}

const MID_STREAM_ERROR: &str = "an error was encountered while running the model: unexpected EOF";

async fn chat_completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, &format!("invalid request body: {e}"), None);
        }
    };
    let messages: Vec<Msg> = req.messages.iter().map(message).collect();
    let tools = Tool::parse_all(req.tools.as_deref().unwrap_or_default());
    let think = parse_think(&req);
    let log_error = |status: StatusCode, msg: &str| {
        shared.log(RequestRecord::failed(Api::OpenAiChat, &req.model, &messages, req.stream, status.as_u16(), msg));
    };

    if req.model.is_empty() || messages.is_empty() {
        let msg = if req.model.is_empty() { "model is required" } else { "messages must not be empty" };
        log_error(StatusCode::BAD_REQUEST, msg);
        return error(StatusCode::BAD_REQUEST, msg, None);
    }
    let needs = Needs {
        endpoint: "chat",
        tools: !tools.is_empty(),
        thinking: think.is_some(),
        vision: messages.iter().any(|m| m.has_images),
    };
    let (model, pending) = match admit(&shared, &req.model, needs) {
        Ok(ok) => ok,
        Err(rejection) => {
            let (status, msg, code) = match rejection {
                Rejection::Injected(s) => (s, format!("simulated failure ({})", s.as_u16()), None),
                Rejection::NotFound => {
                    (StatusCode::NOT_FOUND, format!("model '{}' not found", req.model), Some("model_not_found"))
                }
                Rejection::Unsupported(what) => {
                    (StatusCode::BAD_REQUEST, format!("\"{}\" does not support {what}", req.model), None)
                }
                Rejection::Busy => (StatusCode::SERVICE_UNAVAILABLE, BUSY.to_string(), Some("server_busy")),
            };
            log_error(status, &msg);
            return error(status, &msg, code);
        }
    };

    let lease = shared.acquire(&model, shared.default_keep_alive()).await;
    let format = parse_format(&req.response_format);
    let max_tokens = req.max_completion_tokens.or(req.max_tokens).filter(|n| *n > 0);
    let plan = plan(&Ask {
        model: &model,
        messages: &messages,
        tools: &tools,
        format: format.as_ref(),
        think: think.as_deref(),
        max_tokens: max_tokens.map(|n| n as usize),
        echo_chars: shared.config.echo_chars,
    });
    let broken = shared.take_mid_stream();
    let status = if broken && !req.stream { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    shared.log(RequestRecord {
        api: Api::OpenAiChat,
        model: req.model.clone(),
        served_by: Some(canonical(&model.name)),
        prompt: plan.prompt.clone(),
        reply: plan.full_content.clone(),
        tool_calls: plan.call_names(),
        status: status.as_u16(),
        stream: req.stream,
        cold_load: lease.cold,
        error: broken.then(|| MID_STREAM_ERROR.to_string()),
    });
    let completion = Completion {
        id: format!("chatcmpl-{}", shared.next_id()),
        created: unix_secs(SystemTime::now()),
        model: req.model.clone(),
    };
    let delay = shared.token_delay();

    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        let pieces = plan
            .pieces()
            .iter()
            .map(|p| {
                let delta = match p {
                    Piece::Thinking(t) => json!({ "reasoning": t }),
                    Piece::Content(t) => json!({ "content": t }),
                    Piece::Calls(calls) => json!({ "tool_calls": tool_calls(calls) }),
                };
                sse(&completion.delta(delta, None))
            })
            .collect();
        let lead = vec![sse(&completion.delta(json!({ "role": "assistant", "content": "" }), None))];
        let (reason, usage) = (finish_reason(&plan), usage(&plan));
        let body = stream::spawn(StreamJob {
            lead,
            pieces,
            delay,
            break_with: broken.then(|| sse(&error_body(StatusCode::INTERNAL_SERVER_ERROR, MID_STREAM_ERROR, None))),
            finish: Box::new(move |_| {
                let mut out = vec![sse(&completion.delta(json!({}), Some(reason)))];
                if include_usage {
                    let mut last = completion.chunk(json!([]));
                    last["usage"] = usage;
                    out.push(sse(&last));
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                out
            }),
            guards: Box::new((pending, lease)),
        });
        return ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body)
            .into_response();
    }

    let steps = plan.pieces().len();
    if broken {
        tokio::time::sleep(delay * steps.min(2) as u32).await;
        return error(StatusCode::INTERNAL_SERVER_ERROR, MID_STREAM_ERROR, None);
    }
    tokio::time::sleep(delay * steps as u32).await;
    let mut message = json!({ "role": "assistant", "content": plan.content_text() });
    let thinking = plan.thinking_text();
    if !thinking.is_empty() {
        message["reasoning"] = json!(thinking);
    }
    if !plan.calls.is_empty() {
        message["tool_calls"] = tool_calls(&plan.calls);
    }
    let reply = json!({
        "id": completion.id, "object": "chat.completion", "created": completion.created,
        "model": completion.model, "system_fingerprint": "fp_c41_sim",
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason(&plan) }],
        "usage": usage(&plan),
    });
    drop((pending, lease));
    Json(reply).into_response()
}
