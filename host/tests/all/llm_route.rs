//! The llm-route skill, sandboxed, against the Ollama/OpenAI simulator (two
//! backends: an Ollama and an OpenAI-compatible server) and against a real
//! llama.cpp `llama-server` with a real tiny model (SmolLM2-135M).
//!
//! The real-server tests need `tests/llama/setup.sh` to have run (CI runs
//! it first); without it they fail under `CI` and are skipped otherwise.

use crate::common::*;
use c41::app::RunError;
use c41::events::{Event, Recorder};
use c41::runtime::{InvokeError, Invoked};
use c41_sim::llm::{Api, LlmConfig, LlmSim, SimModel, SimServer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The two simulated backends: `ollama` (native API) and `openai-b`
/// (OpenAI-compatible), with different models so a reply shows which
/// backend answered.
struct Sims {
    a: LlmSim,
    a_srv: SimServer,
    b: LlmSim,
    b_srv: SimServer,
}

async fn sims() -> Sims {
    let fast = |models: Vec<SimModel>| LlmConfig {
        models,
        load_time: Duration::from_millis(30),
        token_delay: Duration::from_millis(1),
        ..LlmConfig::default()
    };
    let a = LlmSim::new(fast(vec![
        SimModel::new("qwen3-coder").with_tools(),
        SimModel::new("gpt-oss").with_tools().with_thinking(),
        SimModel::new("llama3.2").with_tools(),
    ]));
    let b = LlmSim::new(fast(vec![SimModel::new("smollm2"), SimModel::new("mistral").with_tools().with_thinking()]));
    let (a_srv, b_srv) = (a.serve(0).await.unwrap(), b.serve(0).await.unwrap());
    Sims { a, a_srv, b, b_srv }
}

/// The settings every simulator test starts from; `extra` adds keys to the
/// same `[skills.llm-route.settings]` table.
fn config_text(a: &str, b: &str, extra: &str) -> String {
    format!(
        r#"
output-dir = "{{out}}"
[services.ollama]
url = "{a}"
[services.openai-b]
url = "{b}"
kind = "openai"
[skills.llm-route]
grants = ["ollama", "openai-b"]
[skills.llm-route.settings]
default-route = "fast"
routes.coding = ["qwen3-coder", "gpt-oss"]
routes.creative = ["gpt-oss", "mistral"]
routes.fast = ["llama3.2", "smollm2"]
routes.reasoning = {{ models = ["qwen3-coder", "gpt-oss"], prefer-loaded = false }}
routes.balanced = ["mistral", "llama3.2"]
routes.missing = ["no-such-model", "qwen3-coder"]
routes.missing-b = ["ghost", "smollm2"]
routes.spread = ["qwen3-coder", "gpt-oss", "smollm2"]
aliases.coder = "qwen3-coder"
aliases.tiny = "smollm2"
models.ghost = {{ backend = "openai-b" }}
{extra}
"#
    )
}

async fn route_harness(s: &Sims, extra: &str) -> Harness {
    harness(&config_text(&s.a_srv.url(), &s.b_srv.url(), extra), &[]).await
}

fn ask(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

fn ok(r: Result<Invoked, RunError>) -> Invoked {
    match r {
        Ok(r) => r,
        Err(e) => panic!("llm-route failed: {e}"),
    }
}

fn deltas(rec: &Recorder) -> Vec<String> {
    rec.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::TextDelta(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn stages(rec: &Recorder) -> Vec<(String, String)> {
    rec.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Progress { stage, message, .. } => Some((stage, message.unwrap_or_default())),
            _ => None,
        })
        .collect()
}

/// (model, outcome) of every attempt.
fn attempts(data: &Value) -> Vec<(String, String)> {
    data["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["model"].as_str().unwrap().to_string(), a["outcome"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn routes_by_task_class_and_streams_tokens_live() {
    let s = sims().await;
    let h = route_harness(&s, "").await;
    let prompt = "write a rust function that adds two numbers";
    let (r, rec) = h.run("llm-route", ask(prompt)).await;
    let r = ok(r);
    assert_eq!(r.text, format!("[qwen3-coder] echo: {prompt}"));
    let d = &r.data;
    assert_eq!(d["model"], "qwen3-coder");
    assert_eq!(d["backend"], "ollama");
    assert_eq!(d["backend_kind"], "ollama");
    assert_eq!(d["task"], "coding");
    assert_eq!(d["classification"]["rule"], "keyword");
    assert_eq!(d["classification"]["matched"], json!(["function", "rust"]));
    assert!(d["reason"].as_str().unwrap().contains("`rust`"), "{}", d["reason"]);
    assert_eq!(attempts(d), pairs(&[("qwen3-coder", "ok")]));
    assert_eq!(d["cold_load"], true, "nothing was loaded");
    assert!(d["usage"]["completion_tokens"].as_u64().unwrap() >= 5);
    assert!(d["usage"]["prompt_tokens"].as_u64().unwrap() >= 1);
    assert_eq!(d["usage"]["estimated"], false);
    assert!(d["tokens_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(d["finish_reason"], "stop");
    // The routes in force travel with every answer (describe cannot read settings).
    assert_eq!(d["routes"]["routes"]["coding"]["models"], json!(["qwen3-coder", "gpt-oss"]));
    assert_eq!(d["routes"]["aliases"]["coder"], "qwen3-coder");
    assert_eq!(d["backends"][1]["name"], "openai-b");

    // Tokens arrived one by one, before the call ended.
    let tokens = deltas(&rec);
    assert!(tokens.len() >= 5, "{tokens:?}");
    assert_eq!(tokens.concat(), r.text);
    let events = rec.events();
    let first_delta = events.iter().position(|e| matches!(e, Event::TextDelta(_))).unwrap();
    let done = events.iter().position(|e| matches!(e, Event::Progress { stage, .. } if stage == "done")).unwrap();
    assert!(first_delta < done);
    let st: Vec<String> = stages(&rec).into_iter().map(|(s, _)| s).collect();
    for want in ["route", "load", "generate", "done"] {
        assert!(st.iter().any(|s| s == want), "stage {want} in {st:?}");
    }
    let reqs = s.a.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].served_by.as_deref(), Some("qwen3-coder:latest"));
    assert!(reqs[0].stream && reqs[0].api == Api::OllamaChat);

    // stream: false keeps the caller's stream quiet; the outcome is the same.
    let (r, rec) =
        h.run("llm-route", json!({"messages": [{"role": "user", "content": prompt}], "stream": false})).await;
    assert_eq!(ok(r).text, format!("[qwen3-coder] echo: {prompt}"));
    assert!(deltas(&rec).is_empty());
}

#[tokio::test]
async fn classification_rules_aliases_and_overrides() {
    let s = sims().await;
    let h = route_harness(&s, "").await;
    let cases: Vec<(Value, &str, &str, &str)> = vec![
        // (input, task, rule, model)
        (ask("Write me a short story about a dragon"), "creative", "keyword", "gpt-oss"),
        // gpt-oss is loaded since the story, and coding prefers loaded models.
        (ask("what is wrong here?\n```\nlet x = 1\n```"), "coding", "code", "gpt-oss"),
        (ask("task: reasoning -- hello"), "reasoning", "hint", "qwen3-coder"),
        (
            json!({"messages": [{"role": "user", "content": "hmm"}], "task": "balanced"}),
            "balanced",
            "input.task",
            "mistral",
        ),
        (ask("ok then"), "fast", "default", "llama3.2"),
        (
            json!({"messages": [{"role": "user", "content": "a poem"}], "model": "coder"}),
            "model",
            "model",
            "qwen3-coder",
        ),
        (json!({"messages": [{"role": "user", "content": "hi"}], "model": "tiny"}), "model", "model", "smollm2"),
        (json!({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-oss"}), "model", "model", "gpt-oss"),
        (json!({"messages": [{"role": "user", "content": "hi"}], "model": "balanced"}), "balanced", "model", "mistral"),
    ];
    for (input, task, rule, model) in cases {
        let (r, _) = h.run("llm-route", input.clone()).await;
        let d = ok(r).data;
        assert_eq!(
            (d["task"].as_str().unwrap(), d["classification"]["rule"].as_str().unwrap(), d["model"].as_str().unwrap()),
            (task, rule, model),
            "{input}"
        );
    }
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "model": "tiny"})).await;
    let d = ok(r).data;
    assert_eq!((d["backend"].as_str(), d["backend_kind"].as_str()), (Some("openai-b"), Some("openai")));
    assert!(d["classification"]["reason"].as_str().unwrap().contains("alias `tiny`"));

    let (r, _) =
        h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "model": "nope-model"})).await;
    let e = r.unwrap_err();
    assert_eq!(e.field(), Some("model"), "{e}");
    assert!(e.to_string().contains("coder") && e.to_string().contains("smollm2"), "lists what is known: {e}");
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "bogus"})).await;
    assert_eq!(r.unwrap_err().field(), Some("task"));
    // Refused by the schema before the skill runs.
    let (r, _) = h.run("llm-route", json!({"messages": []})).await;
    assert!(r.is_err());
}

#[tokio::test]
async fn prefers_a_loaded_model_and_reports_cold_loads() {
    let s = sims().await;
    s.a.set_load_time(Duration::from_millis(300));
    let h = route_harness(&s, "").await;
    assert!(s.a.preload("gpt-oss"));
    let (r, rec) =
        h.run("llm-route", json!({"messages": [{"role": "user", "content": "refactor this"}], "task": "coding"})).await;
    let d = ok(r).data;
    assert_eq!(d["model"], "gpt-oss", "the loaded candidate goes first");
    assert_eq!(d["cold_load"], false);
    assert!(d["reason"].as_str().unwrap().contains("gpt-oss is loaded"), "{}", d["reason"]);
    assert_eq!(d["backends"][0]["loaded"], json!(["gpt-oss:latest"]));
    assert!(!stages(&rec).iter().any(|(s, _)| s == "load"), "no cold-load stage for a warm model");

    // A route that opts out keeps its order and pays the cold load.
    let (r, rec) =
        h.run("llm-route", json!({"messages": [{"role": "user", "content": "x"}], "task": "reasoning"})).await;
    let d = ok(r).data;
    assert_eq!(d["model"], "qwen3-coder");
    assert_eq!(d["cold_load"], true);
    assert!(d["load_ms"].as_u64().unwrap() >= 250, "{}", d["load_ms"]);
    let load = stages(&rec).into_iter().find(|(s, _)| s == "load").expect("a load stage");
    assert!(load.1.contains("cold load"), "{load:?}");
    let mut loaded = s.a.loaded_models();
    loaded.sort();
    assert_eq!(loaded, vec!["gpt-oss:latest", "qwen3-coder:latest"]);
}

#[tokio::test]
async fn model_lists_are_reused_across_calls_until_a_load_may_change_them() {
    let s = sims().await;
    let h = route_harness(&s, "").await;
    assert!(s.a.preload("gpt-oss"));
    let coding = json!({"messages": [{"role": "user", "content": "refactor this"}], "task": "coding"});
    let listed = || listed_of(&s);

    let (r, _) = h.run("llm-route", coding.clone()).await;
    assert_eq!(ok(r).data["cold_load"], false);
    assert_eq!(listed(), (2, 1), "the first call asks /api/tags, /api/ps and /v1/models");

    // A warm answer changes nothing: the next call routes on what it knew.
    let (r, _) = h.run("llm-route", coding.clone()).await;
    let d = ok(r).data;
    assert_eq!((d["model"].as_str(), d["cold_load"].as_bool()), (Some("gpt-oss"), Some(false)), "{d}");
    assert_eq!(d["backends"][0]["loaded"], json!(["gpt-oss:latest"]), "the kept list is reported as before");
    assert_eq!(listed(), (2, 1), "no second discovery within inventory-cache-ms");

    // A cold load may push other models out: that backend is asked again.
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "x"}], "task": "reasoning"})).await;
    assert_eq!(ok(r).data["cold_load"], true);
    let (r, _) = h.run("llm-route", coding.clone()).await;
    ok(r);
    assert_eq!(listed(), (4, 1), "only the backend that loaded is asked again");

    // A failed attempt forgets the list as well.
    s.a.fail_next(1, 500);
    let (r, _) = h.run("llm-route", coding.clone()).await;
    ok(r);
    let before = listed();
    let (r, _) = h.run("llm-route", coding.clone()).await;
    ok(r);
    assert_eq!(listed().0, before.0 + 2, "asked again after the failure");

    // 0 turns the cache off.
    let s = sims().await;
    let h = route_harness(&s, "inventory-cache-ms = 0\n").await;
    for _ in 0..2 {
        let (r, _) = h.run("llm-route", coding.clone()).await;
        ok(r);
    }
    assert_eq!(listed_of(&s), (4, 2));
}

fn listed_of(s: &Sims) -> (usize, usize) {
    (s.a.listings(), s.b.listings())
}

#[tokio::test]
async fn falls_back_when_a_model_is_missing() {
    let s = sims().await;
    let h = route_harness(&s, "").await;
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "missing"})).await;
    let d = ok(r).data;
    assert_eq!(attempts(&d), pairs(&[("no-such-model", "not-found"), ("qwen3-coder", "ok")]));
    assert_eq!(d["attempts"][0]["status"], 404);
    assert_eq!(d["attempts"][0]["backend"], "ollama");
    assert!(d["attempts"][0]["error"].as_str().unwrap().contains("not found"));
    assert!(d["reason"].as_str().unwrap().contains("after 1 failed attempt"));

    // The same on the OpenAI-compatible backend, with the model pinned there.
    let (r, _) =
        h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "missing-b"})).await;
    let d = ok(r).data;
    assert_eq!(attempts(&d), pairs(&[("ghost", "not-found"), ("smollm2", "ok")]));
    assert_eq!(
        (d["attempts"][0]["backend"].as_str(), d["attempts"][0]["status"].as_u64()),
        (Some("openai-b"), Some(404))
    );
    assert_eq!(d["backend"], "openai-b");
}

#[tokio::test]
async fn a_busy_backend_is_skipped_for_the_rest_of_the_call() {
    let s = sims().await;
    let h = route_harness(&s, "").await;
    s.a.fail_next(1, 503);
    let (r, rec) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "spread"})).await;
    let r = ok(r);
    assert_eq!(attempts(&r.data), pairs(&[("qwen3-coder", "busy"), ("gpt-oss", "cooldown"), ("smollm2", "ok")]));
    assert_eq!(r.data["attempts"][0]["status"], 503);
    assert_eq!(r.text, "[smollm2] echo: hi");
    assert_eq!(s.a.requests().len(), 1, "the cooled backend got no second request");
    assert!(stages(&rec).iter().any(|(s, m)| s == "fallback" && m.contains("busy")), "{:?}", stages(&rec));
}

#[tokio::test]
async fn falls_back_on_errors_before_and_after_the_first_token() {
    let s = sims().await;
    let h = route_harness(&s, "").await;
    // A 500 before anything streamed: the next model on the same backend.
    s.a.fail_next(1, 500);
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "coding"})).await;
    let d = ok(r).data;
    assert_eq!(attempts(&d), pairs(&[("qwen3-coder", "error"), ("gpt-oss", "ok")]));
    assert_eq!(d["attempts"][0]["status"], 500);

    // An NDJSON error line after two tokens: the next model answers, the
    // outcome holds only its reply, and the caller is told the text so far
    // is void (text-reset) before the new text streams.
    s.a.error_mid_stream_next();
    let (r, rec) = h
        .run("llm-route", json!({"messages": [{"role": "user", "content": "hello there friend"}], "task": "reasoning"}))
        .await;
    let r = ok(r);
    assert_eq!(attempts(&r.data), pairs(&[("qwen3-coder", "mid-stream-error"), ("gpt-oss", "ok")]));
    assert_eq!(r.data["attempts"][0]["tokens_before_failure"], 2);
    assert!(r.data["attempts"][0]["error"].as_str().unwrap().contains("unexpected EOF"));
    assert_eq!(r.text, "[gpt-oss] echo: hello there friend");
    let streamed = deltas(&rec).concat();
    assert!(streamed.starts_with("[qwen3-coder] echo:") && streamed.ends_with(&r.text), "{streamed}");
    let events = rec.events();
    let reset = events.iter().position(|e| matches!(e, Event::TextReset(_))).expect("a text-reset event");
    let Event::TextReset(reason) = &events[reset] else { unreachable!() };
    assert!(
        reason.contains("qwen3-coder")
            && reason.contains("after 2 token(s)")
            && reason.contains("gpt-oss answers instead"),
        "{reason}"
    );
    let after: String = events[reset..]
        .iter()
        .filter_map(|e| match e {
            Event::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(after, r.text, "after the reset, exactly the final text streams");

    // An SSE error event on the OpenAI-compatible backend.
    s.b.error_mid_stream_next();
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "balanced"})).await;
    let d = ok(r).data;
    assert_eq!(attempts(&d), pairs(&[("mistral", "mid-stream-error"), ("llama3.2", "ok")]));
    assert_eq!(d["backend"], "ollama");

    // The stream breaks before the first reply token (only reasoning went out).
    s.a.error_mid_stream_next();
    let (r, rec) = h
        .run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "creative", "think": true}))
        .await;
    let r = ok(r);
    assert_eq!(attempts(&r.data), pairs(&[("gpt-oss", "mid-stream-error"), ("mistral", "ok")]));
    assert!(r.data["attempts"][0].get("tokens_before_failure").is_none());
    assert_eq!(deltas(&rec).concat(), r.text, "nothing of the failed attempt reached the caller");
}

#[tokio::test]
async fn falls_back_when_a_backend_is_down() {
    let s = sims().await;
    let h = route_harness(&s, "").await;
    s.a.set_down(true);
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "spread"})).await;
    let d = ok(r).data;
    assert_eq!(attempts(&d), pairs(&[("qwen3-coder", "down"), ("gpt-oss", "down"), ("smollm2", "ok")]));
    assert_eq!(d["backends"][0]["up"], false);
    assert!(d["attempts"][0]["error"].as_str().unwrap().contains("ollama"));

    // Every candidate down: a backend error naming each attempt.
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "coding"})).await;
    match r {
        Err(RunError::Invoke(InvokeError::Backend { service, message, .. })) => {
            assert_eq!(service, "ollama");
            assert!(
                message.contains("qwen3-coder@ollama: down") && message.contains("gpt-oss@ollama: down"),
                "{message}"
            );
        }
        other => panic!("expected a backend error, got {other:?}"),
    }

    // Back up: routing returns to it.
    s.a.set_down(false);
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "hi"}], "task": "coding"})).await;
    assert_eq!(ok(r).data["model"], "qwen3-coder");
}

#[tokio::test]
async fn a_failed_backend_cools_down_across_calls() {
    let s = sims().await;
    let h = route_harness(&s, "cooldown-secs = 1\n").await;
    let spread = json!({"messages": [{"role": "user", "content": "hi"}], "task": "spread"});
    s.a.set_down(true);
    let (r, _) = h.run("llm-route", spread.clone()).await;
    assert_eq!(ok(r).data["model"], "smollm2", "falls back while ollama is down");

    // Up again, but still cooling down: a later call skips it without
    // waiting on it, and says so.
    s.a.set_down(false);
    let (r, _) = h.run("llm-route", spread.clone()).await;
    let d = ok(r).data;
    assert_eq!(attempts(&d), pairs(&[("qwen3-coder", "cooldown"), ("gpt-oss", "cooldown"), ("smollm2", "ok")]));
    assert!(d["attempts"][0]["error"].as_str().unwrap().contains("earlier call"), "{}", d["attempts"][0]);

    // Once the cooldown has passed, it is first choice again.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (r, _) = h.run("llm-route", spread).await;
    assert_eq!(ok(r).data["model"], "qwen3-coder");
}

#[tokio::test]
async fn tool_calls_pass_through_both_protocols() {
    let s = sims().await;
    let h = route_harness(&s, "").await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    for (model, api) in [("coder", Api::OllamaChat), ("mistral", Api::OpenAiChat)] {
        let first = json!({"role": "user", "content": "call get_weather for Paris"});
        let (r, _) = h.run("llm-route", json!({"messages": [first], "model": model, "tools": tools})).await;
        let r = ok(r);
        let calls = r.data["tool_calls"].as_array().unwrap().clone();
        assert_eq!(calls.len(), 1, "{model}: {}", r.data);
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(
            calls[0]["function"]["arguments"],
            json!({"city": "city-value"}),
            "{model}: arguments are an object"
        );
        assert!(r.text.starts_with("tool calls: get_weather("), "{}", r.text);
        if api == Api::OpenAiChat {
            assert_eq!(r.data["finish_reason"], "tool_calls");
        }
        // The next turn: the call as returned, and its result.
        let id = calls[0]["id"].as_str().unwrap().to_string();
        let history = json!([
            first,
            {"role": "assistant", "content": "", "tool_calls": calls},
            {"role": "tool", "tool_call_id": id, "content": "sunny, 21 C"},
        ]);
        let (r, _) = h.run("llm-route", json!({"messages": history, "model": model, "tools": tools})).await;
        let r = ok(r);
        assert!(r.text.ends_with("tool result: sunny, 21 C"), "{model}: {}", r.text);
        assert_eq!(r.data["tool_calls"], json!([]));
    }
    let apis: Vec<Api> = s.a.requests().iter().chain(s.b.requests().iter()).map(|q| q.api).collect();
    assert_eq!(apis, vec![Api::OllamaChat, Api::OllamaChat, Api::OpenAiChat, Api::OpenAiChat]);
    assert_eq!(s.a.requests()[0].tool_calls, vec!["get_weather"]);
}

#[tokio::test]
async fn structured_output_thinking_and_options_reach_the_backend() {
    let s = sims().await;
    let h = route_harness(&s, "keep-alive = \"10m\"").await;
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]});
    for model in ["coder", "tiny"] {
        let (r, _) = h
            .run(
                "llm-route",
                json!({"messages": [{"role": "user", "content": "6*7?"}], "model": model, "format": schema}),
            )
            .await;
        let r = ok(r);
        let v: Value = serde_json::from_str(&r.text).unwrap_or_else(|e| panic!("{model}: not JSON ({e}): {}", r.text));
        assert_eq!(v, json!({"answer": 1}));
    }
    let (r, _) = h.run("llm-route", json!({"messages": [{"role": "user", "content": "why is the sky blue"}], "model": "gpt-oss", "think": "high", "max_tokens": 3})).await;
    let r = ok(r);
    assert!(r.data["thinking"].as_str().unwrap().contains("thinking (high)"), "{}", r.data);
    assert_eq!(r.data["finish_reason"], "length");
    assert_eq!(r.data["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn the_classifier_model_decides_when_no_rule_does() {
    let s = sims().await;
    let h = route_harness(&s, "classifier.enabled = true\nclassifier.model = \"llama3.2\"").await;
    let (r, _) = h.run("llm-route", ask("hmm, ok then")).await;
    let d = ok(r).data;
    assert_eq!(d["classification"]["rule"], "classifier");
    assert_eq!(d["classification"]["classifier_model"], "llama3.2");
    // The simulator answers a schema with its first enum value: the first route.
    assert_eq!(d["task"], "coding");
    let reqs = s.a.requests();
    assert_eq!((reqs[0].model.as_str(), reqs[0].stream), ("llama3.2", false), "the classifier's one-shot request");
    assert!(reqs[0].prompt.contains("Classify"));
    // A rule that decides saves the classifier call.
    s.a.clear_requests();
    let (r, _) = h.run("llm-route", ask("write a poem")).await;
    assert_eq!(ok(r).data["classification"]["rule"], "keyword");
    assert_eq!(s.a.requests().len(), 1);

    // A classifier that fails leaves the default route, and says why.
    let h = route_harness(&s, "classifier.enabled = true\nclassifier.model = \"nope\"").await;
    let (r, _) = h.run("llm-route", ask("hmm, ok then")).await;
    let d = ok(r).data;
    assert_eq!(d["classification"]["rule"], "default");
    assert!(d["classification"]["classifier_error"].as_str().unwrap().contains("not found"), "{}", d["classification"]);
}

#[tokio::test]
async fn bad_settings_and_missing_grants_are_explained() {
    let s = sims().await;
    let h = route_harness(&s, "routes.broken = []").await;
    let (r, _) = h.run("llm-route", ask("hi")).await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains("routes.broken"), "{e}");
    let h = harness("output-dir = \"{out}\"\n", &[]).await;
    let (r, _) = h.run("llm-route", ask("hi")).await;
    match r {
        Err(RunError::Invoke(InvokeError::Denied { reason, .. })) => assert!(reason.contains("ollama"), "{reason}"),
        other => panic!("expected denied, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_tokens_as_they_stream() {
    let s = sims().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c41.toml");
    let text =
        config_text(&s.a_srv.url(), &s.b_srv.url(), "").replace("{out}", &dir.path().join("out").display().to_string());
    std::fs::write(&cfg, text).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_c41"))
            .env("C41_CONFIG", &cfg)
            .env("C41_CACHE_DIR", cache_dir())
            .env_remove("RUST_LOG")
            .args([
                "run",
                "llm-route",
                "--input",
                r#"{"messages":[{"role":"user","content":"write a rust function"}]}"#,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.matches("[qwen3-coder] echo: write a rust function").count(),
        1,
        "printed once, as it streamed: {stdout}"
    );
    assert!(stderr.contains("[llm-route] route"), "{stderr}");
    assert!(stderr.contains("[llm-route] done"), "{stderr}");
}

// ---- a real llama.cpp server ----------------------------------------------

/// The llama-server binary and the GGUF model, from the environment or from
/// the file tests/llama/setup.sh writes. `None` (after saying why) when they
/// are not set up outside CI; under CI that is a failure.
fn llama_setup() -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let file = std::env::var_os("C41_LLAMA_ENV").map(PathBuf::from).unwrap_or_else(|| root.join("target/llama/env"));
    let from_file = std::fs::read_to_string(&file).unwrap_or_default();
    let get = |key: &str| -> Option<PathBuf> {
        std::env::var_os(key).map(PathBuf::from).or_else(|| {
            from_file.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(|v| PathBuf::from(v.trim())))
        })
    };
    match (get("C41_LLAMA_SERVER"), get("C41_LLAMA_MODEL")) {
        (Some(s), Some(m)) if s.is_file() && m.is_file() => Some((s, m)),
        found => {
            let msg = format!(
                "llama-server or the SmolLM2 model is not set up (found {found:?}, env file {}); run tests/llama/setup.sh",
                file.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("skipping the real llama-server test: {msg}");
            None
        }
    }
}

/// The real-server tests share 2 cores: one at a time.
static REAL_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running llama-server in its own process group, stopped (with the model
/// processes router mode starts) on drop.
struct LlamaServer {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    async fn start(server: &Path, args: &[String], dir: tempfile::TempDir) -> LlamaServer {
        use std::os::unix::process::CommandExt;
        let port = closed_port();
        let log = dir.path().join("llama-server.log");
        let lib = server.parent().unwrap();
        let ld = match std::env::var_os("LD_LIBRARY_PATH") {
            Some(old) => format!("{}:{}", lib.display(), old.to_string_lossy()),
            None => lib.display().to_string(),
        };
        let child = std::process::Command::new(server)
            .args(args)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-c", "2048", "-t", "2", "--jinja"])
            .env("LD_LIBRARY_PATH", ld)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("llama-server.err")).unwrap())
            .process_group(0)
            .spawn()
            .expect("llama-server starts");
        let s = LlamaServer { child, port, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((200, _)) = s.get("/health").await {
                return s;
            }
            assert!(Instant::now() < deadline, "llama-server not healthy within 60 s: {}", s.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn logs(&self) -> String {
        let err = self.log.with_file_name("llama-server.err");
        let tail = |p: &Path| {
            let t = std::fs::read_to_string(p).unwrap_or_default();
            t.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        format!("{}\n{}", tail(&self.log), tail(&err))
    }

    /// A plain GET: status and body.
    async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await.ok()?.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Some((status, body))
    }

    /// Router mode: each model's `status.value` from `/v1/models`.
    async fn model_states(&self) -> Vec<(String, String)> {
        let (_, body) = self.get("/v1/models").await.expect("/v1/models answers");
        // Chunked transfer encoding may wrap the JSON; take the outermost object.
        let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
        let v: Value = serde_json::from_str(json).unwrap();
        let mut out: Vec<(String, String)> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_str().unwrap().to_string(), m["status"]["value"].as_str().unwrap_or("?").to_string()))
            .collect();
        out.sort();
        out
    }

    /// Wait until `/v1/models` shows `want` (model swaps finish in the background).
    async fn wait_for_states(&self, want: &[(&str, &str)]) {
        let want = pairs(want);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.model_states().await;
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "model states {got:?}, wanted {want:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; the group may already be gone.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn llama_config(url: &str, settings: &str) -> String {
    format!(
        "output-dir = \"{{out}}\"\n[services.llama]\nurl = \"{url}\"\nkind = \"openai\"\n[skills.llm-route]\ngrants = [\"llama\"]\n[skills.llm-route.settings]\n{settings}\n"
    )
}

#[tokio::test]
async fn real_llama_server_streams_a_completion_through_the_sandbox() {
    let Some((server, model)) = llama_setup() else { return };
    let _one = REAL_SERVER.lock().await;
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let srv =
        LlamaServer::start(&server, &["-m".into(), model.display().to_string(), "-a".into(), "smollm2".into()], dir)
            .await;
    let started = t0.elapsed();
    let h = harness(&llama_config(&srv.url(), "routes.fast = [\"smollm2\"]"), &[]).await;
    let t1 = Instant::now();
    let (r, rec) = h
        .run("llm-route", json!({"messages": [{"role": "user", "content": "Say hello to the studio."}], "max_tokens": 12, "temperature": 0}))
        .await;
    let r = r.unwrap_or_else(|e| panic!("{e}\n{}", srv.logs()));
    let d = &r.data;
    assert!(!r.text.trim().is_empty(), "{d}");
    let tokens = deltas(&rec);
    assert!(tokens.len() >= 2, "streamed token by token: {tokens:?}");
    assert_eq!(tokens.concat(), r.text);
    assert_eq!(
        (d["model"].as_str(), d["backend"].as_str(), d["backend_kind"].as_str()),
        (Some("smollm2"), Some("llama"), Some("openai"))
    );
    assert_eq!(d["task"], "fast");
    let n = d["usage"]["completion_tokens"].as_u64().unwrap();
    assert!((1..=12).contains(&n), "{d}");
    assert_eq!(d["usage"]["estimated"], false, "llama-server reports usage");
    assert!(d["usage"]["prompt_tokens"].as_u64().unwrap() > 3);
    assert!(d["tokens_per_second"].as_f64().unwrap() > 0.0);
    assert!(matches!(d["finish_reason"].as_str(), Some("length" | "stop")));
    eprintln!(
        "real llama-server: ready in {started:?}, {n} tokens streamed in {:?} ({} tok/s)",
        t1.elapsed(),
        d["tokens_per_second"]
    );
}

#[tokio::test]
async fn real_llama_router_swaps_models_and_falls_back_on_not_found() {
    let Some((server, model)) = llama_setup() else { return };
    let _one = REAL_SERVER.lock().await;
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    for name in ["qwen3-coder", "gpt-oss"] {
        std::os::unix::fs::symlink(&model, models.join(format!("{name}.gguf"))).unwrap();
    }
    let args: Vec<String> =
        vec!["--models-dir".into(), models.display().to_string(), "--models-max".into(), "1".into()];
    let srv = LlamaServer::start(&server, &args, dir).await;
    srv.wait_for_states(&[("gpt-oss", "unloaded"), ("qwen3-coder", "unloaded")]).await;
    let settings = r#"
routes.coding = ["ghost-model", "qwen3-coder", "gpt-oss"]
routes.fast = { models = ["gpt-oss", "qwen3-coder"], prefer-loaded = false }
routes.balanced = ["qwen3-coder", "gpt-oss"]
"#;
    let h = harness(&llama_config(&srv.url(), settings), &[]).await;
    let (h, srv) = (&h, &srv);
    let run = |task: &'static str| async move {
        let input =
            json!({"messages": [{"role": "user", "content": "Hi!"}], "task": task, "max_tokens": 4, "temperature": 0});
        let (r, rec) = h.run("llm-route", input).await;
        (r.unwrap_or_else(|e| panic!("{task}: {e}\n{}", srv.logs())), rec)
    };

    // A model the server does not have: its real "not found", then the next.
    let (r, rec) = run("coding").await;
    let d = &r.data;
    assert_eq!(attempts(d), pairs(&[("ghost-model", "not-found"), ("qwen3-coder", "ok")]), "{d}");
    assert_eq!(d["attempts"][0]["status"], 400, "llama-server says 400 model not found: {d}");
    assert!(d["attempts"][0]["error"].as_str().unwrap().contains("not found"));
    assert_eq!(d["cold_load"], true, "router mode listed it unloaded");
    assert!(!deltas(&rec).is_empty());
    srv.wait_for_states(&[("gpt-oss", "unloaded"), ("qwen3-coder", "loaded")]).await;

    // Another route whose first choice is the other model: a real swap.
    let (r, _) = run("fast").await;
    assert_eq!((r.data["model"].as_str(), r.data["cold_load"].as_bool()), (Some("gpt-oss"), Some(true)), "{}", r.data);
    srv.wait_for_states(&[("gpt-oss", "loaded"), ("qwen3-coder", "unloaded")]).await;

    // Load awareness: the route prefers qwen3-coder, but gpt-oss is warm.
    let (r, _) = run("balanced").await;
    let d = &r.data;
    assert_eq!((d["model"].as_str(), d["cold_load"].as_bool()), (Some("gpt-oss"), Some(false)), "{d}");
    assert!(d["reason"].as_str().unwrap().contains("gpt-oss is loaded"), "{d}");
    eprintln!("real llama-server router: 3 routed calls with 2 model loads in {:?}", t0.elapsed());
}
