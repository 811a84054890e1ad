//! End-to-end tests over real HTTP on loopback.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

fn config() -> LlmConfig {
    LlmConfig {
        models: vec![
            SimModel::new("qwen3-coder").with_family("qwen3moe").with_parameter_size("30.5B").with_tools(),
            SimModel::new("gpt-oss").with_family("gptoss").with_tools().with_thinking(),
            SimModel::new("smollm2").with_parameter_size("135M"),
        ],
        load_time: Duration::from_millis(20),
        max_loaded: 2,
        token_delay: Duration::from_millis(1),
        max_pending: 8,
        ..LlmConfig::default()
    }
}

struct Harness {
    sim: LlmSim,
    server: SimServer,
    http: reqwest::Client,
}

impl Harness {
    async fn new(config: LlmConfig) -> Self {
        let sim = LlmSim::new(config);
        let server = sim.serve(0).await.expect("bind loopback");
        Self { sim, server, http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http.post(self.url(path)).json(&body).send().await.expect("request")
    }

    async fn get(&self, path: &str) -> Value {
        self.http.get(self.url(path)).send().await.expect("request").json().await.expect("json")
    }

    async fn ps_names(&self) -> Vec<String> {
        let ps = self.get("/api/ps").await;
        ps["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
    }
}

fn user(text: &str) -> Value {
    json!([{ "role": "user", "content": text }])
}

async fn ndjson(resp: reqwest::Response) -> Vec<Value> {
    let text = resp.text().await.unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"))).collect()
}

/// The payloads of the SSE `data:` events, in order.
async fn sse(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap_or_else(|| panic!("not an SSE data event: {e:?}")).to_string())
        .collect()
}

fn weather_tool() -> Value {
    json!([{ "type": "function", "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": { "type": "object", "required": ["city", "days"], "properties": {
            "city": { "type": "string" }, "days": { "type": "integer" }, "units": { "type": "string" } } }
    } }])
}

#[tokio::test]
async fn streamed_chat_chunks_parse_and_end_with_metrics() {
    let h = Harness::new(config()).await;
    let resp = h.post("/api/chat", json!({ "model": "qwen3-coder", "messages": user("hello there world") })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let chunks = ndjson(resp).await;
    let (last, tokens) = chunks.split_last().unwrap();
    assert!(tokens.len() >= 4, "one chunk per token: {chunks:?}");
    for c in tokens {
        assert_eq!(c["done"], false);
        assert_eq!(c["model"], "qwen3-coder");
        assert_eq!(c["message"]["role"], "assistant");
        assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
    }
    let text: String = tokens.iter().map(|c| c["message"]["content"].as_str().unwrap()).collect();
    assert_eq!(text, "[qwen3-coder] echo: hello there world");
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["message"]["content"], "");
    assert_eq!(last["eval_count"], tokens.len());
    assert!(last["prompt_eval_count"].as_u64().unwrap() >= 3);
    let load = last["load_duration"].as_u64().unwrap();
    assert!(load >= 20_000_000, "cold load reported: {load}");
    for key in ["total_duration", "prompt_eval_duration", "eval_duration"] {
        assert!(last[key].as_u64().unwrap() > 0, "{key}");
    }
    assert!(last["total_duration"].as_u64().unwrap() >= load);
}

#[tokio::test]
async fn non_streaming_chat_and_generate() {
    let h = Harness::new(config()).await;
    let resp = h.post("/api/chat", json!({ "model": "smollm2", "messages": user("hi"), "stream": false })).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"]["content"], "[smollm2] echo: hi");
    assert_eq!(body["done"], true);
    assert_eq!(body["eval_count"], 3);

    let resp = h.post("/api/generate", json!({ "model": "smollm2", "prompt": "why sky", "stream": false })).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["response"], "[smollm2] echo: why sky");
    assert_eq!(body["done_reason"], "stop");

    let chunks = ndjson(h.post("/api/generate", json!({ "model": "smollm2", "prompt": "why sky" })).await).await;
    let text: String = chunks.iter().map(|c| c["response"].as_str().unwrap()).collect();
    assert_eq!(text, "[smollm2] echo: why sky");
    assert_eq!(chunks.last().unwrap()["done"], true);
}

#[tokio::test]
async fn num_predict_caps_tokens() {
    let h = Harness::new(config()).await;
    let body = json!({ "model": "smollm2", "messages": user("one two three four"), "options": { "num_predict": 2 } });
    let chunks = ndjson(h.post("/api/chat", body).await).await;
    let last = chunks.last().unwrap();
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["eval_count"], 2);
    assert_eq!(chunks.len(), 3);
}

#[tokio::test]
async fn ollama_tool_calls_have_object_arguments() {
    let h = Harness::new(config()).await;
    let body = json!({ "model": "qwen3-coder", "messages": user("please call get_weather for Paris"),
        "tools": weather_tool(), "stream": false });
    let reply: Value = h.post("/api/chat", body.clone()).await.json().await.unwrap();
    let call = &reply["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["index"], 0);
    assert_eq!(call["arguments"], json!({ "city": "city-value", "days": 1 }));

    // A message that names no tool gets a plain answer.
    let mut plain = body.clone();
    plain["messages"] = user("just chat");
    let reply: Value = h.post("/api/chat", plain).await.json().await.unwrap();
    assert!(reply["message"].get("tool_calls").is_none());

    // Streaming carries the call in one chunk.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let chunks = ndjson(h.post("/api/chat", streamed).await).await;
    assert!(chunks.iter().any(|c| c["message"]["tool_calls"][0]["function"]["arguments"]["days"] == 1));

    let mut no_tools = body;
    no_tools["model"] = json!("smollm2");
    let resp = h.post("/api/chat", no_tools).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({ "error": "\"smollm2\" does not support tools" }));
    assert_eq!(h.sim.requests().iter().filter(|r| r.tool_calls == ["get_weather"]).count(), 2);
}

#[tokio::test]
async fn openai_tool_calls_have_string_arguments() {
    let h = Harness::new(config()).await;
    let body = json!({ "model": "qwen3-coder", "messages": user("use get_weather now"), "tools": weather_tool() });
    let reply: Value = h.post("/v1/chat/completions", body.clone()).await.json().await.unwrap();
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args = call["function"]["arguments"].as_str().expect("arguments is a JSON string");
    assert_eq!(serde_json::from_str::<Value>(args).unwrap(), json!({ "city": "city-value", "days": 1 }));

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let events = sse(h.post("/v1/chat/completions", streamed).await).await;
    let chunks: Vec<Value> =
        events.iter().filter(|e| *e != "[DONE]").map(|e| serde_json::from_str(e).unwrap()).collect();
    let delta_call = chunks.iter().find_map(|c| c["choices"][0]["delta"].get("tool_calls")).unwrap();
    assert!(delta_call[0]["function"]["arguments"].is_string());
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn think_streams_thinking_first_and_needs_the_capability() {
    let h = Harness::new(config()).await;
    let body = json!({ "model": "gpt-oss", "messages": user("riddle"), "think": "high" });
    let chunks = ndjson(h.post("/api/chat", body).await).await;
    let thinking: String = chunks.iter().filter_map(|c| c["message"]["thinking"].as_str()).collect();
    assert_eq!(thinking, "[gpt-oss] thinking (high) about: riddle");
    let first_content = chunks.iter().position(|c| c["message"]["content"] != "").unwrap();
    let last_thinking = chunks.iter().rposition(|c| c["message"].get("thinking").is_some()).unwrap();
    assert!(last_thinking < first_content);

    let body = json!({ "model": "gpt-oss", "prompt": "riddle", "think": true, "stream": false });
    let reply: Value = h.post("/api/generate", body).await.json().await.unwrap();
    assert_eq!(reply["thinking"], "[gpt-oss] thinking (medium) about: riddle");
    assert_eq!(reply["response"], "[gpt-oss] echo: riddle");

    let resp = h.post("/api/chat", json!({ "model": "smollm2", "messages": user("x"), "think": true })).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "\"smollm2\" does not support thinking");

    let body = json!({ "model": "gpt-oss", "messages": user("riddle"), "reasoning_effort": "low" });
    let reply: Value = h.post("/v1/chat/completions", body).await.json().await.unwrap();
    assert_eq!(reply["choices"][0]["message"]["reasoning"], "[gpt-oss] thinking (low) about: riddle");
}

#[tokio::test]
async fn format_json_and_schema_give_valid_json() {
    let h = Harness::new(config()).await;
    let chunks =
        ndjson(h.post("/api/chat", json!({ "model": "smollm2", "messages": user("list"), "format": "json" })).await)
            .await;
    let text: String = chunks.iter().map(|c| c["message"]["content"].as_str().unwrap()).collect();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({ "model": "smollm2", "echo": "list" }));

    let schema = json!({ "type": "object", "required": ["name", "age", "ok"], "properties": {
        "name": { "type": "string" }, "age": { "type": "integer" }, "ok": { "type": "boolean" } } });
    let body = json!({ "model": "smollm2", "messages": user("who"), "format": schema, "stream": false });
    let reply: Value = h.post("/api/chat", body).await.json().await.unwrap();
    let parsed: Value = serde_json::from_str(reply["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(parsed, json!({ "name": "name-value", "age": 1, "ok": true }));

    let body = json!({ "model": "smollm2", "messages": user("who"),
        "response_format": { "type": "json_schema", "json_schema": { "name": "p", "schema": schema } } });
    let reply: Value = h.post("/v1/chat/completions", body).await.json().await.unwrap();
    let parsed: Value = serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["age"], 1);
}

#[tokio::test]
async fn unknown_model_and_bad_body_errors() {
    let h = Harness::new(config()).await;
    let resp = h.post("/api/chat", json!({ "model": "nope", "messages": user("x") })).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({ "error": "model \"nope\" not found, try pulling it first" })
    );

    let resp = h.post("/v1/chat/completions", json!({ "model": "nope", "messages": user("x") })).await;
    assert_eq!(resp.status(), 404);
    let err = resp.json::<Value>().await.unwrap();
    assert_eq!(err["error"]["message"], "model 'nope' not found");
    assert!(err["error"]["type"].is_string());
    assert!(err["error"].get("code").is_some());

    let resp = h.http.post(h.url("/api/chat")).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    let resp = h.http.post(h.url("/v1/chat/completions")).body("[]").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());
    let resp = h.post("/api/show", json!({ "model": "nope" })).await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn busy_when_max_pending_is_exceeded() {
    let h = Harness::new(LlmConfig { max_pending: 1, token_delay: Duration::from_millis(40), ..config() }).await;
    let first = h.post("/api/chat", json!({ "model": "smollm2", "messages": user("a b c d") })).await;
    assert_eq!(first.status(), 200);
    assert_eq!(h.sim.in_flight(), 1);
    let resp = h.post("/api/chat", json!({ "model": "smollm2", "messages": user("x") })).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({ "error": "server busy, please try again.  maximum pending requests exceeded" })
    );
    let resp = h.post("/v1/chat/completions", json!({ "model": "smollm2", "messages": user("x") })).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().starts_with("server busy"));

    let chunks = ndjson(first).await;
    assert_eq!(chunks.last().unwrap()["done"], true);
    assert_eq!(h.sim.in_flight(), 0);
    let resp = h.post("/api/chat", json!({ "model": "smollm2", "messages": user("x"), "stream": false })).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn mid_stream_error_line_keeps_status_200() {
    let h = Harness::new(config()).await;
    h.sim.error_mid_stream_next();
    let resp = h.post("/api/chat", json!({ "model": "smollm2", "messages": user("a b c d e") })).await;
    assert_eq!(resp.status(), 200);
    let chunks = ndjson(resp).await;
    let (last, before) = chunks.split_last().unwrap();
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|c| c["done"] == false));
    assert!(last["error"].as_str().unwrap().contains("error"));
    assert!(last.get("done").is_none());

    h.sim.error_mid_stream_next();
    let resp =
        h.post("/v1/chat/completions", json!({ "model": "smollm2", "messages": user("a b c"), "stream": true })).await;
    assert_eq!(resp.status(), 200);
    let events = sse(resp).await;
    assert!(!events.contains(&"[DONE]".to_string()));
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string());

    // The fault fires once.
    let chunks = ndjson(h.post("/api/chat", json!({ "model": "smollm2", "messages": user("a") })).await).await;
    assert_eq!(chunks.last().unwrap()["done"], true);
}

#[tokio::test]
async fn cold_loads_and_lru_eviction_show_in_ps() {
    let h = Harness::new(LlmConfig { load_time: Duration::from_millis(150), ..config() }).await;
    assert!(h.ps_names().await.is_empty());
    let ask = |model: &str| json!({ "model": model, "messages": user("hi"), "stream": false });

    let t = Instant::now();
    let reply: Value = h.post("/api/chat", ask("qwen3-coder")).await.json().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(reply["load_duration"].as_u64().unwrap() >= 150_000_000);
    let t = Instant::now();
    let reply: Value = h.post("/api/chat", ask("qwen3-coder")).await.json().await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(150), "warm model answers at once");
    assert!(reply["load_duration"].as_u64().unwrap() < 150_000_000);

    h.post("/api/chat", ask("gpt-oss")).await;
    assert_eq!(h.ps_names().await, ["gpt-oss:latest", "qwen3-coder:latest"]);
    let ps = h.get("/api/ps").await;
    let entry = &ps["models"][0];
    assert!(entry["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(entry["size_vram"].as_u64().unwrap() > 0);
    assert!(entry["context_length"].as_u64().unwrap() > 0);

    // A third model evicts the least recently used one.
    h.post("/api/chat", ask("smollm2")).await;
    assert_eq!(h.ps_names().await, ["smollm2:latest", "gpt-oss:latest"]);
    assert_eq!(h.sim.loaded_models(), ["gpt-oss:latest", "smollm2:latest"]);
    let cold: Vec<bool> = h.sim.requests().iter().map(|r| r.cold_load).collect();
    assert_eq!(cold, [true, false, true, true]);
}

#[tokio::test]
async fn keep_alive_pins_unloads_and_loads() {
    let h = Harness::new(config()).await;
    let body = json!({ "model": "smollm2", "messages": user("hi"), "keep_alive": -1, "stream": false });
    h.post("/api/chat", body).await;
    let ps = h.get("/api/ps").await;
    assert!(ps["models"][0]["expires_at"].as_str().unwrap().starts_with("23"), "forever is far away: {ps}");

    let body = json!({ "model": "smollm2", "messages": user("hi"), "keep_alive": 0, "stream": false });
    h.post("/api/chat", body).await;
    assert!(h.ps_names().await.is_empty());

    let reply: Value =
        h.post("/api/generate", json!({ "model": "gpt-oss", "keep_alive": "10m" })).await.json().await.unwrap();
    assert_eq!(reply["done_reason"], "load");
    assert_eq!(h.ps_names().await, ["gpt-oss:latest"]);
    let reply: Value =
        h.post("/api/generate", json!({ "model": "gpt-oss", "keep_alive": 0 })).await.json().await.unwrap();
    assert_eq!(reply["done_reason"], "unload");
    assert!(h.ps_names().await.is_empty());

    let resp = h.post("/api/chat", json!({ "model": "smollm2", "messages": user("hi"), "keep_alive": "soon" })).await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn sse_stream_ends_with_usage_then_done() {
    let h = Harness::new(config()).await;
    let body = json!({ "model": "qwen3-coder", "messages": user("hello sse"), "stream": true,
        "stream_options": { "include_usage": true } });
    let resp = h.post("/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = sse(resp).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let n = chunks.len();
    let finish = &chunks[n - 2]["choices"][0];
    assert_eq!(finish["finish_reason"], "stop");
    assert_eq!(finish["delta"], json!({}));
    let usage_chunk = &chunks[n - 1];
    assert_eq!(usage_chunk["choices"], json!([]));
    let text: String = chunks[1..n - 2]
        .iter()
        .map(|c| {
            assert!(c["choices"][0]["finish_reason"].is_null());
            c["choices"][0]["delta"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "[qwen3-coder] echo: hello sse");
    let usage = &usage_chunk["usage"];
    assert_eq!(usage["completion_tokens"], n - 3);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap())
    );

    // Without include_usage the finish chunk is the last before [DONE].
    let body = json!({ "model": "qwen3-coder", "messages": user("hi"), "stream": true, "max_tokens": 1 });
    let events = sse(h.post("/v1/chat/completions", body).await).await;
    let finish: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn catalogue_endpoints() {
    let h = Harness::new(config()).await;
    let models = h.get("/v1/models").await;
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["qwen3-coder:latest", "gpt-oss:latest", "smollm2:latest"]);
    assert_eq!(models["data"][0]["object"], "model");
    assert!(models["data"][0]["created"].is_u64());
    assert!(models["data"][0]["owned_by"].is_string());

    let tags = h.get("/api/tags").await;
    let first = &tags["models"][0];
    assert_eq!(first["name"], "qwen3-coder:latest");
    assert_eq!(first["details"]["family"], "qwen3moe");
    assert_eq!(first["details"]["parameter_size"], "30.5B");
    assert_eq!(first["details"]["quantization_level"], "Q4_K_M");
    assert_eq!(first["digest"].as_str().unwrap().len(), 64);

    let show: Value = h.post("/api/show", json!({ "model": "gpt-oss" })).await.json().await.unwrap();
    assert_eq!(show["capabilities"], json!(["completion", "tools", "thinking"]));
    assert_eq!(show["model_info"]["general.architecture"], "gptoss");
    assert!(show["template"].as_str().unwrap().contains(".Tools"));

    assert_eq!(h.get("/api/version").await["version"], "0.12.6");
    let root = h.http.get(h.url("/")).send().await.unwrap().text().await.unwrap();
    assert_eq!(root, "Ollama is running");
}

#[tokio::test]
async fn replies_are_deterministic_and_name_the_model() {
    let h = Harness::new(config()).await;
    let mut replies = Vec::new();
    for model in ["qwen3-coder", "smollm2", "qwen3-coder:latest"] {
        let reply: Value = h
            .post("/api/chat", json!({ "model": model, "messages": user("same question"), "stream": false }))
            .await
            .json()
            .await
            .unwrap();
        replies.push(reply["message"]["content"].as_str().unwrap().to_string());
    }
    assert_eq!(
        replies,
        ["[qwen3-coder] echo: same question", "[smollm2] echo: same question", "[qwen3-coder] echo: same question"]
    );
    let reply: Value = h
        .post("/v1/chat/completions", json!({ "model": "smollm2", "messages": user("same question") }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "[smollm2] echo: same question");
    assert_eq!(reply["model"], "smollm2");

    let log = h.sim.requests();
    let served: Vec<&str> = log.iter().map(|r| r.served_by.as_deref().unwrap()).collect();
    assert_eq!(served, ["qwen3-coder:latest", "smollm2:latest", "qwen3-coder:latest", "smollm2:latest"]);
    assert_eq!(log[3].api, Api::OpenAiChat);
    assert_eq!(log[0].prompt, "same question");
}

#[tokio::test]
async fn fail_next_then_recover() {
    let h = Harness::new(config()).await;
    h.sim.fail_next(2, 500);
    let ask = json!({ "model": "smollm2", "messages": user("x"), "stream": false });
    let resp = h.post("/api/chat", ask.clone()).await;
    assert_eq!(resp.status(), 500);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    let resp = h.post("/v1/chat/completions", ask.clone()).await;
    assert_eq!(resp.status(), 500);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());
    assert_eq!(h.post("/api/chat", ask).await.status(), 200);
    let statuses: Vec<u16> = h.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
}

#[tokio::test]
async fn down_refuses_connections_and_drops_streams() {
    let h = Harness::new(LlmConfig { token_delay: Duration::from_millis(30), ..config() }).await;
    let resp = h.post("/api/chat", json!({ "model": "smollm2", "messages": user("a b c d e f g h") })).await;
    assert_eq!(resp.status(), 200);
    h.sim.set_down(true);
    assert!(resp.text().await.is_err(), "stream in progress is cut");
    let err = h.http.get(h.url("/api/tags")).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let fresh = reqwest::Client::new();
    assert!(fresh.get(h.url("/api/tags")).send().await.unwrap_err().is_connect(), "port closed");

    h.sim.set_down(false);
    let mut up = false;
    for _ in 0..50 {
        if fresh.get(h.url("/api/version")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(up, "back on the same port");
}

#[tokio::test]
async fn disconnect_during_cold_load_aborts_it() {
    let h = Harness::new(LlmConfig { load_time: Duration::from_millis(300), ..config() }).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(60)).build().unwrap();
    let body = json!({ "model": "smollm2", "messages": user("hi") });
    let err = impatient.post(h.url("/api/chat")).json(&body).send().await.unwrap_err();
    assert!(err.is_timeout());
    // The event: the server gave the load up (a load that ran on would end
    // after 300 ms and never count here).
    for _ in 0..500 {
        if h.sim.aborted_loads() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.sim.aborted_loads(), 1, "the server never noticed the client leave");
    assert!(h.ps_names().await.is_empty(), "the abandoned load never finished");
    assert_eq!(h.sim.in_flight(), 0);
    assert!(h.sim.requests().is_empty());
}
