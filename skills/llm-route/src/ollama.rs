//! Ollama's native chat API: `POST /api/chat` with NDJSON streaming. Used
//! instead of Ollama's `/v1` because only the native API carries `think`,
//! `keep_alive`, load timings and JSON-schema `format`.

use crate::ask::{Ask, content_images, content_text, tool_name_for};
use crate::stream::Event;
use serde_json::{Map, Value, json};

/// The chat endpoint.
pub const CHAT: &str = "/api/chat";

/// The request body for `ask`.
pub fn body(ask: &Ask<'_>) -> Value {
    let mut b = json!({
        "model": ask.model,
        "messages": messages(ask.messages),
        "stream": ask.stream,
    });
    if let Some(tools) = ask.tools.filter(|t| t.as_array().is_some_and(|a| !a.is_empty())) {
        b["tools"] = tools.clone();
    }
    if let Some(f) = ask.format {
        b["format"] = f.clone();
    }
    let mut options = Map::new();
    if let Some(t) = ask.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(n) = ask.max_tokens {
        options.insert("num_predict".into(), json!(n));
    }
    if !options.is_empty() {
        b["options"] = Value::Object(options);
    }
    if let Some(t) = ask.think {
        b["think"] = t.clone();
    }
    if let Some(k) = ask.keep_alive {
        b["keep_alive"] = k.clone();
    }
    b
}

/// Messages in Ollama's shape: plain-text content with `images` beside it,
/// tool-call arguments as objects, tool results named by `tool_name`.
pub fn messages(input: &[Value]) -> Vec<Value> {
    input
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            let mut out = json!({"role": role, "content": content_text(m.get("content"))});
            let mut images: Vec<Value> = m.get("images").and_then(Value::as_array).cloned().unwrap_or_default();
            images.extend(content_images(m.get("content")).into_iter().map(Value::String));
            if !images.is_empty() {
                out["images"] = Value::Array(images);
            }
            if let Some(t) = m.get("thinking").filter(|t| t.is_string()) {
                out["thinking"] = t.clone();
            }
            if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(n, c)| {
                        let c = crate::stream::normalize_call(c, n);
                        let mut call = json!({"function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}});
                        call["id"] = c["id"].clone();
                        call
                    })
                    .collect();
                out["tool_calls"] = Value::Array(calls);
            }
            if role == "tool" {
                let name = m.get("tool_name").or_else(|| m.get("name")).and_then(Value::as_str).map(str::to_string).or_else(|| {
                    m.get("tool_call_id").and_then(Value::as_str).and_then(|id| tool_name_for(input, i, id))
                });
                if let Some(n) = name {
                    out["tool_name"] = json!(n);
                }
                if let Some(id) = m.get("tool_call_id") {
                    out["tool_call_id"] = id.clone();
                }
            }
            out
        })
        .collect()
}

/// The events of one NDJSON line (or of a whole non-streamed reply, which
/// has the same shape with `done: true`). Blank lines yield nothing; a line
/// that is not JSON is an error, since a 200 stream must not carry one.
pub fn chunk(line: &str) -> Vec<Event> {
    let line = line.trim();
    if line.is_empty() {
        return Vec::new();
    }
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return vec![Event::Error(format!("unreadable NDJSON line ({e}): {}", short(line)))],
    };
    let mut out = Vec::new();
    if let Some(err) = v.get("error") {
        let msg = err.as_str().map(str::to_string).unwrap_or_else(|| err.to_string());
        out.push(Event::Error(msg));
        return out;
    }
    if let Some(m) = v.get("model").and_then(Value::as_str) {
        out.push(Event::Model(m.to_string()));
    }
    let msg = v.get("message");
    let thinking = msg.and_then(|m| m.get("thinking")).or_else(|| v.get("thinking")).and_then(Value::as_str);
    if let Some(t) = thinking.filter(|t| !t.is_empty()) {
        out.push(Event::Thinking(t.to_string()));
    }
    // `/api/generate` puts the text in `response`; accept it too.
    let content = msg.and_then(|m| m.get("content")).or_else(|| v.get("response")).and_then(Value::as_str);
    if let Some(c) = content.filter(|c| !c.is_empty()) {
        out.push(Event::Content(c.to_string()));
    }
    if let Some(calls) = msg.and_then(|m| m.get("tool_calls")).and_then(Value::as_array).filter(|c| !c.is_empty()) {
        out.push(Event::ToolCalls(calls.clone()));
    }
    if v.get("done").and_then(Value::as_bool) == Some(true) {
        let ns = |k: &str| v.get(k).and_then(Value::as_f64);
        if let Some(r) = v.get("done_reason").and_then(Value::as_str) {
            out.push(Event::Finish(r.to_string()));
        }
        let (prompt, completion) =
            (v.get("prompt_eval_count").and_then(Value::as_u64), v.get("eval_count").and_then(Value::as_u64));
        if prompt.is_some() || completion.is_some() {
            out.push(Event::Usage { prompt, completion });
        }
        let tps = match (completion, ns("eval_duration")) {
            (Some(n), Some(d)) if d > 0.0 => Some(n as f64 / d * 1e9),
            _ => None,
        };
        let load_ms = ns("load_duration").map(|d| d / 1e6);
        if tps.is_some() || load_ms.is_some() {
            out.push(Event::Timing { load_ms, tokens_per_second: tps });
        }
        out.push(Event::Done);
    }
    out
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Model names from `GET /api/tags` or `GET /api/ps`.
pub fn model_names(listing: &Value) -> Vec<String> {
    listing
        .get("models")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("name").or_else(|| m.get("model")).and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Lines, Reply};

    #[test]
    fn every_chunk_type() {
        assert_eq!(chunk(""), vec![]);
        assert_eq!(
            chunk(r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"Hel"},"done":false}"#),
            vec![Event::Model("m".into()), Event::Content("Hel".into())]
        );
        assert_eq!(
            chunk(r#"{"model":"m","message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}"#),
            vec![Event::Model("m".into()), Event::Thinking("hmm".into())]
        );
        let calls = chunk(
            r#"{"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"function":{"index":0,"name":"f","arguments":{"a":1}}}]},"done":false}"#,
        );
        assert!(matches!(&calls[1], Event::ToolCalls(c) if c[0]["function"]["name"] == "f"));
        assert_eq!(
            chunk(
                r#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":5,"load_duration":2000000,"prompt_eval_count":7,"prompt_eval_duration":1,"eval_count":10,"eval_duration":500000000}"#
            ),
            vec![
                Event::Model("m".into()),
                Event::Finish("stop".into()),
                Event::Usage { prompt: Some(7), completion: Some(10) },
                Event::Timing { load_ms: Some(2.0), tokens_per_second: Some(20.0) },
                Event::Done,
            ]
        );
        assert_eq!(
            chunk(r#"{"error":"an error was encountered while running the model: unexpected EOF"}"#),
            vec![Event::Error("an error was encountered while running the model: unexpected EOF".into())]
        );
        assert_eq!(
            chunk(r#"{"model":"m","response":"gen","done":false}"#),
            vec![Event::Model("m".into()), Event::Content("gen".into())]
        );
        assert!(matches!(&chunk("not json")[0], Event::Error(e) if e.contains("unreadable")));
        // A done chunk without metrics (all are omitempty).
        assert_eq!(chunk(r#"{"done":true}"#), vec![Event::Done]);
    }

    #[test]
    fn a_split_stream_reassembles() {
        let stream = concat!(
            r#"{"model":"m","message":{"role":"assistant","content":"Hello"},"done":false}"#,
            "\n",
            r#"{"model":"m","message":{"role":"assistant","content":" wörld"},"done":false}"#,
            "\n",
            r#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":2,"eval_duration":1000000000}"#,
            "\n",
        );
        for size in [1, 3, 17, 64, 1000] {
            let mut lines = Lines::default();
            let mut reply = Reply::default();
            for frame in stream.as_bytes().chunks(size) {
                for line in lines.push(frame) {
                    for e in chunk(&line) {
                        assert_eq!(reply.apply(e), None);
                    }
                }
            }
            assert_eq!(reply.text, "Hello wörld");
            assert!(reply.done);
            assert_eq!(reply.tokens_per_second, Some(2.0));
            assert_eq!(reply.served_model.as_deref(), Some("m"));
        }
    }

    #[test]
    fn openai_style_history_becomes_ollama_style() {
        let msgs = vec![
            json!({"role":"user","content":[{"type":"text","text":"weather?"}]}),
            json!({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}),
            json!({"role":"tool","tool_call_id":"c1","content":"sunny"}),
        ];
        let out = messages(&msgs);
        assert_eq!(out[0], json!({"role":"user","content":"weather?"}));
        assert_eq!(out[1]["tool_calls"][0]["function"]["arguments"], json!({"city":"Paris"}));
        assert_eq!(out[1]["content"], "");
        assert_eq!(out[2]["tool_name"], "get_weather");
    }

    #[test]
    fn request_body_maps_options() {
        let msgs = vec![json!({"role":"user","content":"hi"})];
        let think = json!("high");
        let keep = json!("30m");
        let b = body(&Ask {
            model: "m",
            messages: &msgs,
            tools: None,
            format: None,
            temperature: Some(0.2),
            max_tokens: Some(5),
            think: Some(&think),
            keep_alive: Some(&keep),
            stream: true,
        });
        assert_eq!(b["options"], json!({"temperature":0.2,"num_predict":5}));
        assert_eq!(b["think"], "high");
        assert_eq!(b["keep_alive"], "30m");
        assert!(b.get("tools").is_none());
    }

    #[test]
    fn listings() {
        let tags = json!({"models":[{"name":"qwen3-coder:latest","model":"qwen3-coder:latest"},{"model":"x:1b"}]});
        assert_eq!(model_names(&tags), vec!["qwen3-coder:latest", "x:1b"]);
        assert!(model_names(&json!({})).is_empty());
    }
}
