//! llm-route: sends an agent's chat request to the model that fits the task,
//! on the granted Ollama and OpenAI-compatible backends, streaming tokens to
//! the caller as they arrive and falling back along the route when a model
//! is missing, a backend is down or busy, or a stream breaks.
//!
//! The flow of one call: read the settings (routes, aliases, placement),
//! ask every granted backend what it has and what is loaded, classify the
//! request (input `task`/`model`, then rules, then the optional classifier
//! model, then the default route), order the route's candidates (loaded
//! ones first when the route allows), and try them in turn. Every attempt
//! is reported in the outcome data.

mod ask;
mod classify;
mod config;
mod decide;
mod net;
mod ollama;
mod openai;
mod route;
mod stream;

use ask::Ask;
use c41_kit::progress::{self, Progress};
use c41_kit::schema::JsonSchema;
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, Value, json, log, settings, state};
use config::Settings;
use net::{Failure, Stop};
use route::{Backend, Candidate, Kind};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// The host-kept state key marking a backend (by URL) as cooling down.
fn cooldown_key(url: &str) -> String {
    format!("cooldown/{url}")
}

/// Where a backend's model list is kept between calls (`inventory-cache-ms`):
/// it is forgotten as soon as a call may have changed what is loaded.
fn inventory_key(url: &str) -> String {
    format!("inventory/{url}")
}

/// A backend's listing as an earlier call saw it, if still fresh.
fn cached_inventory(s: &Settings, svc: &settings::Service, kind: Kind) -> Option<Backend> {
    if s.inventory_cache_ms == 0 {
        return None;
    }
    let v: Value = serde_json::from_str(&state::get(&inventory_key(&svc.url))?).ok()?;
    let names = |k: &str| v.get(k).and_then(|l| serde_json::from_value::<Vec<String>>(l.clone()).ok());
    Some(Backend {
        name: svc.name.clone(),
        kind,
        url: svc.url.clone(),
        listed: names("listed"),
        loaded: names("loaded"),
        down: None,
    })
}

/// Keep a reachable backend's listing for later calls.
fn remember_inventory(s: &Settings, b: &Backend) {
    if s.inventory_cache_ms > 0 && b.down.is_none() {
        let v = json!({"listed": b.listed, "loaded": b.loaded});
        state::set(&inventory_key(&b.url), &v.to_string(), Duration::from_millis(s.inventory_cache_ms));
    }
}

struct LlmRoute;

// The input. The schema agents see (`input.schema.json`) is derived from
// this type; `C41_BLESS=1 cargo test` rewrites it after a change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The conversation, OpenAI or Ollama style: {role: system|user|assistant|tool, content (string or OpenAI content parts), tool_calls?, tool_call_id?, tool_name?, images? (base64)}. Tool results from an earlier turn go in as role `tool` messages.
    #[schemars(extend("type" = "array", "minItems" = 1, "items" = {"type": "object", "required": ["role"], "properties": {"role": {"type": "string", "enum": ["system", "user", "assistant", "tool", "developer"]}, "content": {"type": ["string", "array", "null"]}, "tool_calls": {"type": "array"}, "tool_call_id": {"type": "string"}, "tool_name": {"type": "string"}, "images": {"type": "array", "items": {"type": "string"}}}}))]
    pub messages: Vec<Value>,
    /// Force a task class (a route name from the config, e.g. coding, creative, fast, reasoning, balanced) instead of classifying the request.
    pub task: Option<String>,
    /// Use this model (or alias, e.g. `coder`, `fast`, or a route name) instead of routing. Still falls back across backends that have it.
    pub model: Option<String>,
    /// Tools the model may call, OpenAI style: [{type: function, function: {name, description, parameters}}]. Calls come back in data.tool_calls.
    #[schemars(extend("type" = "array"))]
    pub tools: Option<Value>,
    /// Structured output: "json", or a JSON schema the reply must match.
    #[schemars(extend("type" = ["string", "object"]))]
    pub format: Option<Value>,
    /// Sampling temperature (backend default if unset).
    #[schemars(range(min = 0, max = 2))]
    pub temperature: Option<f64>,
    /// Cap on generated tokens.
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// Stream reply tokens to the caller as they arrive (the CLI prints them live, MCP gets progress). The outcome holds the whole reply either way.
    #[schemars(extend("default" = true))]
    pub stream: Option<bool>,
    /// Ask a reasoning model to think first (Ollama `think`, OpenAI `reasoning_effort`); the reasoning comes back in data.thinking.
    #[schemars(extend("type" = ["boolean", "string"], "enum" = [true, false, "low", "medium", "high"]))]
    pub think: Option<Value>,
}

const OUTPUT: &str = "text: the model's reply. data: {model, model_id, backend, backend_kind, task, reason, \
classification: {class, rule (input.task|model|hint|code|keyword|length|classifier|default), reason, ...}, cold_load, load_ms, \
first_token_ms, attempts: [{model, backend, outcome (ok|not-found|busy|down|timeout|error|mid-stream-error|...), status?, error?, ms}], \
usage: {prompt_tokens, completion_tokens}, tokens_per_second, finish_reason, tool_calls: [{id, type, function: {name, arguments (object)}}], \
thinking?, backends: [{name, kind, up, loaded}], routes: the routes, aliases and default route in force}. \
Routes come from [skills.llm-route.settings] in the c41 config (routes, aliases, default-route, models, classifier); \
backends are the granted `ollama` and `openai` services.";

/// One attempt, as reported in the outcome.
fn attempt_json(c: &Candidate, backends: &[Backend], outcome: &str, f: Option<&Failure>, ms: u64) -> Value {
    let mut v = json!({
        "model": c.model,
        "backend": c.backend.map(|i| backends[i].name.clone()),
        "outcome": outcome,
        "ms": ms,
    });
    if c.id != c.model {
        v["model_id"] = json!(c.id);
    }
    if let Some(f) = f {
        if let Some(s) = f.status {
            v["status"] = json!(s);
        }
        v["error"] = json!(f.message);
        if f.tokens > 0 {
            v["tokens_before_failure"] = json!(f.tokens);
        }
    }
    v
}

fn settings_error(e: String) -> SkillError {
    SkillError::Denied {
        target: "[skills.llm-route.settings]".into(),
        reason: format!("the llm-route settings in the c41 config are unusable: {e}"),
    }
}

fn tool_calls_text(calls: &[Value]) -> String {
    let parts: Vec<String> = calls
        .iter()
        .map(|c| format!("{}({})", c["function"]["name"].as_str().unwrap_or("?"), c["function"]["arguments"]))
        .collect();
    format!("tool calls: {}", parts.join(", "))
}

impl Skill for LlmRoute {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "llm-route",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Chat with the local LLM that fits the task: routes coding, creative, reasoning, fast and balanced requests to the configured models on Ollama and OpenAI-compatible servers, prefers loaded models, falls back on failures, streams tokens live.",
        input_schema: include_str!("../input.schema.json"),
        output: OUTPUT,
        services: &["ollama", "openai"],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let started = Instant::now();
        let s = Settings::from_json(settings::all()).map_err(settings_error)?;
        let input: Input = cx.input()?;
        let forward = input.stream.unwrap_or(true);

        let services: Vec<_> =
            settings::services().into_iter().filter(|s| s.kind == "ollama" || s.kind == "openai").collect();
        if services.is_empty() {
            return Err(SkillError::Denied {
                target: "ollama".into(),
                reason: "no `ollama` or `openai` service is granted to llm-route; add one under [services] and list it in [skills.llm-route] grants".into(),
            });
        }
        Progress::stage("discover")
            .fraction(0.0)
            .message(format!("asking {} backend(s) what is loaded", services.len()))
            .report();
        let mut backends = Vec::new();
        for svc in &services {
            let kind = if svc.kind == "ollama" { Kind::Ollama } else { Kind::OpenAi };
            if let Some(b) = cached_inventory(&s, svc, kind) {
                backends.push(b);
                continue;
            }
            let b = net::discover(svc, kind, net::Timeouts::for_discovery(&s)).await?;
            remember_inventory(&s, &b);
            if let Some(why) = &b.down {
                log::warn("backend unreachable", &[("backend", &b.name), ("error", why)]);
                if s.cooldown_secs > 0 {
                    state::set(&cooldown_key(&b.url), "down", Duration::from_secs(s.cooldown_secs));
                }
            }
            backends.push(b);
        }
        cx.check_cancelled()?;

        let (class, models, classification) = decide::decide(
            &s,
            &backends,
            input.model.as_deref(),
            input.task.as_deref(),
            &input.messages,
            cx.remaining_ms(),
        )
        .await?;
        let prefer = input.model.is_none() && s.route(&class).map(|r| r.prefer_loaded).unwrap_or(s.prefer_loaded);
        let (cands, order_note) = route::candidates(&s, &models, &backends, prefer);
        let mut reason = format!("{class}: {}", classification.reason);
        if let Some(n) = &order_note {
            reason.push_str(&format!("; {n}"));
        }
        Progress::stage("route")
            .fraction(0.05)
            .message(format!(
                "{reason} → trying {}",
                cands.iter().map(|c| c.model.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .report();
        log::info("route", &[("class", &class), ("rule", &classification.rule), ("reason", &reason)]);

        let mut attempts: Vec<Value> = Vec::new();
        let mut cooled: Vec<Option<String>> =
            backends.iter().map(|b| b.down.as_ref().map(|e| format!("down: {e}"))).collect();
        // Backends that failed in an earlier call are skipped while they cool
        // down, unless that would leave no candidate of this route to try.
        let earlier: Vec<Option<String>> = backends.iter().map(|b| state::get(&cooldown_key(&b.url))).collect();
        let usable = |bi: usize| cooled[bi].is_none() && earlier[bi].is_none();
        if cands.iter().any(|c| c.backend.is_some_and(usable)) {
            for (slot, why) in cooled.iter_mut().zip(earlier) {
                if slot.is_none()
                    && let Some(outcome) = why
                {
                    *slot = Some(format!("cooling down after `{outcome}` in an earlier call (cooldown-secs)"));
                }
            }
        }
        let mut last: Option<(String, Failure)> = None;
        for (n, c) in cands.iter().enumerate() {
            let t0 = Instant::now();
            let Some(bi) = c.backend else {
                let backend = s.model(&c.model).backend.unwrap_or_default();
                let f = Failure {
                    outcome: "unavailable",
                    status: None,
                    message: format!("backend `{backend}` (models.{}.backend) is not granted to llm-route", c.model),
                    tokens: 0,
                };
                attempts.push(attempt_json(c, &backends, f.outcome, Some(&f), 0));
                last = Some((backend, f));
                continue;
            };
            let b = &backends[bi];
            if let Some(why) = &cooled[bi] {
                let outcome = if b.down.is_some() { "down" } else { "cooldown" };
                let f = Failure { outcome, status: None, message: format!("skipped: {} is {why}", b.name), tokens: 0 };
                attempts.push(attempt_json(c, &backends, outcome, Some(&f), 0));
                last = Some((b.name.clone(), f));
                continue;
            }
            cx.check_cancelled()?;
            if c.loaded != Some(true) {
                let msg = match c.loaded {
                    Some(false) => {
                        format!("{} is not loaded on {}: cold load (a large model can take minutes)", c.model, b.name)
                    }
                    _ => format!("{} on {} may need to load", c.model, b.name),
                };
                Progress::stage("load").fraction(0.1).message(msg).report();
            }
            Progress::stage("generate").fraction(0.15).message(format!("{} on {}", c.model, b.name)).report();
            let keep_alive = s.model(&c.model).keep_alive.or(s.keep_alive.clone());
            let ask = Ask {
                model: &c.id,
                messages: &input.messages,
                tools: input.tools.as_ref(),
                format: input.format.as_ref(),
                temperature: input.temperature,
                max_tokens: input.max_tokens,
                think: input.think.as_ref(),
                keep_alive: keep_alive.as_ref(),
                stream: true,
            };
            let model_name = c.model.clone();
            let on_token = |tok: &str, count: u64| {
                if forward {
                    progress::text_delta(tok);
                }
                if count.is_multiple_of(32) {
                    Progress::stage("generate")
                        .fraction(0.5)
                        .message(format!("{count} tokens from {model_name}"))
                        .report();
                }
            };
            match net::chat(b, &ask, net::Timeouts::for_attempt(&s, c, cx.remaining_ms()), on_token).await {
                Ok(answer) => {
                    let ms = t0.elapsed().as_millis() as u64;
                    attempts.push(attempt_json(c, &backends, "ok", None, ms));
                    let r = answer.reply;
                    let estimated = r.completion_tokens.is_none();
                    let completion = r.completion_tokens.unwrap_or(r.content_events);
                    let tps = r.tokens_per_second.or_else(|| {
                        (answer.generation_ms > 0 && completion > 1)
                            .then(|| (completion - 1) as f64 * 1000.0 / answer.generation_ms as f64)
                    });
                    let cold = match c.loaded {
                        Some(l) => Some(!l || r.load_ms.is_some_and(|ms| ms > 1000.0)),
                        None => r.load_ms.map(|ms| ms > 1000.0),
                    };
                    if n > 0 {
                        reason.push_str(&format!("; answered by {} after {} failed attempt(s)", c.model, n));
                    }
                    let text = if r.text.is_empty() && !r.tool_calls.is_empty() {
                        tool_calls_text(&r.tool_calls)
                    } else {
                        r.text.clone()
                    };
                    let mut data = json!({
                        "model": c.model,
                        "model_id": c.id,
                        "served_model": r.served_model,
                        "backend": b.name,
                        "backend_kind": b.kind.as_str(),
                        "task": class,
                        "reason": reason,
                        "classification": classification.to_json(),
                        "placement": c.placement,
                        "cold_load": cold,
                        "load_ms": r.load_ms.map(|m| m.round() as u64),
                        "first_token_ms": answer.first_token_ms,
                        "total_ms": started.elapsed().as_millis() as u64,
                        "attempts": attempts,
                        "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": completion, "estimated": estimated},
                        "tokens_per_second": tps.map(|t| (t * 10.0).round() / 10.0),
                        "finish_reason": r.finish_reason,
                        "tool_calls": r.tool_calls,
                        "backends": backends.iter().map(Backend::to_json).collect::<Vec<_>>(),
                        "routes": s.summary(),
                    });
                    if !r.thinking.is_empty() {
                        data["thinking"] = json!(r.thinking);
                    }
                    Progress::stage("done")
                        .fraction(1.0)
                        .message(format!(
                            "{} on {}: {completion} tokens{}",
                            c.model,
                            b.name,
                            tps.map(|t| format!(", {t:.1} tok/s")).unwrap_or_default()
                        ))
                        .report();
                    state::clear(&cooldown_key(&b.url));
                    // A model that was not loaded may have pushed others
                    // out of memory (Ollama, a llama-server router with
                    // `--models-max`): the next call asks again.
                    if cold != Some(false) {
                        state::clear(&inventory_key(&b.url));
                    }
                    return Ok(Outcome { text, artifacts: Vec::new(), data });
                }
                Err(Stop::Abort(e)) => return Err(e),
                Err(Stop::Failed(f)) => {
                    let ms = t0.elapsed().as_millis() as u64;
                    log::warn(
                        "attempt failed",
                        &[("model", &c.model), ("backend", &b.name), ("outcome", f.outcome), ("error", &f.message)],
                    );
                    attempts.push(attempt_json(c, &backends, f.outcome, Some(&f), ms));
                    // What it has may have changed (a model removed, the
                    // server restarted): the next call asks again.
                    state::clear(&inventory_key(&b.url));
                    if f.cools_backend() {
                        cooled[bi] = Some(format!("cooling down after `{}`", f.outcome));
                        if s.cooldown_secs > 0 {
                            state::set(&cooldown_key(&b.url), f.outcome, Duration::from_secs(s.cooldown_secs));
                        }
                    }
                    let next = cands.get(n + 1);
                    if f.tokens > 0 && forward {
                        // The caller already has this attempt's first tokens.
                        progress::text_reset(&format!(
                            "{} on {} failed after {} token(s) ({}); {}",
                            c.model,
                            b.name,
                            f.tokens,
                            f.outcome,
                            next.map_or("no other model to try".to_string(), |m| format!(
                                "{} answers instead",
                                m.model
                            )),
                        ));
                    }
                    if let Some(next) = next {
                        let msg = format!("{} on {} failed ({}); trying {}", c.model, b.name, f.outcome, next.model);
                        Progress::stage("fallback").fraction(0.2).message(msg).report();
                    }
                    last = Some((b.name.clone(), f));
                }
            }
        }
        let summary: Vec<String> = attempts
            .iter()
            .map(|a| {
                format!(
                    "{}@{}: {}{}",
                    a["model"].as_str().unwrap_or("?"),
                    a["backend"].as_str().unwrap_or("-"),
                    a["outcome"].as_str().unwrap_or("?"),
                    a.get("status").map(|s| format!(" ({s})")).unwrap_or_default()
                )
            })
            .collect();
        let (service, f) = last.unwrap_or_else(|| {
            (
                backends[0].name.clone(),
                Failure {
                    outcome: "unavailable",
                    status: None,
                    message: format!("route `{class}` has no candidate on the granted backends"),
                    tokens: 0,
                },
            )
        });
        Err(SkillError::backend(
            service,
            f.status,
            format!(
                "all {} candidate(s) of route `{class}` failed; last: {} — attempts: {}",
                attempts.len().max(1),
                f.message,
                if summary.is_empty() { "none".into() } else { summary.join("; ") }
            ),
        ))
    }
}

c41_kit::skill!(LlmRoute);

c41_kit::input_schema_test!(Input);
