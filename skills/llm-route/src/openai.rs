//! OpenAI-compatible chat completions (`POST /v1/chat/completions`, SSE), as
//! llama.cpp's llama-server, mlx_lm.server, LM Studio and exo serve them.

use crate::ask::{Ask, content_images, content_text};
use crate::stream::Event;
use serde_json::{Value, json};

/// The chat endpoint.
pub const CHAT: &str = "/v1/chat/completions";
/// The model listing.
pub const MODELS: &str = "/v1/models";

/// The request body for `ask`.
pub fn body(ask: &Ask<'_>) -> Value {
    let mut b = json!({
        "model": ask.model,
        "messages": messages(ask.messages),
        "stream": ask.stream,
    });
    if ask.stream {
        b["stream_options"] = json!({"include_usage": true});
    }
    if let Some(tools) = ask.tools.filter(|t| t.as_array().is_some_and(|a| !a.is_empty())) {
        b["tools"] = tools.clone();
    }
    match ask.format {
        Some(Value::String(s)) if s == "json" => b["response_format"] = json!({"type": "json_object"}),
        Some(schema @ Value::Object(_)) => {
            b["response_format"] =
                json!({"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": true}})
        }
        _ => {}
    }
    if let Some(t) = ask.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(n) = ask.max_tokens {
        b["max_tokens"] = json!(n);
    }
    match ask.think {
        Some(Value::Bool(true)) => b["reasoning_effort"] = json!("medium"),
        Some(Value::Bool(false)) => b["reasoning_effort"] = json!("none"),
        Some(Value::String(level)) => b["reasoning_effort"] = json!(level),
        _ => {}
    }
    b
}

/// Messages in OpenAI's shape: tool-call arguments as JSON strings with ids,
/// tool results keyed by `tool_call_id`, Ollama `images` as data-URL parts.
/// Fields OpenAI servers do not know (`thinking`, `tool_name`) are dropped:
/// strict servers refuse them.
pub fn messages(input: &[Value]) -> Vec<Value> {
    let mut last_ids: Vec<(String, String)> = Vec::new();
    input
        .iter()
        .map(|m| {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            let mut images = content_images(m.get("content"));
            if let Some(extra) = m.get("images").and_then(Value::as_array) {
                images.extend(extra.iter().filter_map(Value::as_str).map(str::to_string));
            }
            let content = if images.is_empty() {
                match m.get("content") {
                    Some(Value::Null) | None if m.get("tool_calls").is_some() => Value::Null,
                    _ => json!(content_text(m.get("content"))),
                }
            } else {
                let mut parts = vec![json!({"type": "text", "text": content_text(m.get("content"))})];
                parts.extend(images.iter().map(
                    |b64| json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}}),
                ));
                Value::Array(parts)
            };
            let mut out = json!({"role": role, "content": content});
            if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                last_ids.clear();
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(n, c)| {
                        let c = crate::stream::normalize_call(c, n);
                        let (id, name) =
                            (c["id"].as_str().unwrap_or_default().to_string(), c["function"]["name"].clone());
                        last_ids.push((name.as_str().unwrap_or_default().to_string(), id.clone()));
                        let args = match &c["function"]["arguments"] {
                            Value::String(s) => s.clone(),
                            v => v.to_string(),
                        };
                        json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
                    })
                    .collect();
                out["tool_calls"] = Value::Array(calls);
            }
            if role == "tool" {
                let id = m.get("tool_call_id").and_then(Value::as_str).map(str::to_string).or_else(|| {
                    let name = m.get("tool_name").or_else(|| m.get("name")).and_then(Value::as_str)?;
                    last_ids.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone())
                });
                out["tool_call_id"] = json!(id.unwrap_or_else(|| "call_0".into()));
            }
            if let Some(name) = m.get("name").filter(|_| role != "tool") {
                out["name"] = name.clone();
            }
            out
        })
        .collect()
}

/// The events of one SSE payload (the text after `data: `).
pub fn chunk(data: &str) -> Vec<Event> {
    let data = data.trim();
    if data.is_empty() {
        return Vec::new();
    }
    if data == "[DONE]" {
        return vec![Event::Done];
    }
    let v: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            return vec![Event::Error(format!(
                "unreadable SSE event ({e}): {}",
                data.chars().take(200).collect::<String>()
            ))];
        }
    };
    let mut out = Vec::new();
    if v.get("error").is_some() {
        return vec![Event::Error(crate::ask::error_message(data))];
    }
    if let Some(m) = v.get("model").and_then(Value::as_str) {
        out.push(Event::Model(m.to_string()));
    }
    for choice in v.get("choices").and_then(Value::as_array).into_iter().flatten() {
        // Streamed chunks carry `delta`; a whole (non-streamed) reply carries
        // `message`. Both have the same fields.
        let Some(d) = choice.get("delta").or_else(|| choice.get("message")) else { continue };
        for key in ["reasoning_content", "reasoning"] {
            if let Some(t) = d.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(Event::Thinking(t.to_string()));
            }
        }
        if let Some(c) = d.get("content").and_then(Value::as_str).filter(|c| !c.is_empty()) {
            out.push(Event::Content(c.to_string()));
        }
        for (n, call) in d.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let f = call.get("function");
            out.push(Event::ToolCallDelta {
                index: call.get("index").and_then(Value::as_u64).map(|i| i as usize).unwrap_or(n),
                id: call.get("id").and_then(Value::as_str).map(str::to_string),
                name: f.and_then(|f| f.get("name")).and_then(Value::as_str).map(str::to_string),
                arguments: match f.and_then(|f| f.get("arguments")) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(v) => v.to_string(),
                },
            });
        }
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            out.push(Event::Finish(r.to_string()));
        }
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        out.push(Event::Usage {
            prompt: u.get("prompt_tokens").and_then(Value::as_u64),
            completion: u.get("completion_tokens").and_then(Value::as_u64),
        });
    }
    // llama.cpp reports its own speed.
    if let Some(tps) = v.pointer("/timings/predicted_per_second").and_then(Value::as_f64) {
        out.push(Event::Timing { load_ms: None, tokens_per_second: Some(tps) });
    }
    out
}

/// Model ids from `GET /v1/models`, and which of them are loaded when the
/// server says (llama.cpp router mode reports `status.value`; others do not,
/// and then nothing is known about loading).
pub fn model_listing(listing: &Value) -> (Vec<String>, Option<Vec<String>>) {
    let entries = listing.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    let ids: Vec<String> =
        entries.iter().filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string)).collect();
    let with_status: Vec<(&str, &str)> =
        entries.iter().filter_map(|m| Some((m.get("id")?.as_str()?, m.pointer("/status/value")?.as_str()?))).collect();
    let loaded = (!with_status.is_empty())
        .then(|| with_status.iter().filter(|(_, s)| *s == "loaded").map(|(id, _)| id.to_string()).collect());
    (ids, loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Lines, Reply, Sse};

    #[test]
    fn every_chunk_type() {
        assert_eq!(chunk("[DONE]"), vec![Event::Done]);
        assert_eq!(
            chunk(
                r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"model":"q","object":"chat.completion.chunk"}"#
            ),
            vec![Event::Model("q".into())]
        );
        assert_eq!(chunk(r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#), vec![Event::Content("Hi".into())]);
        assert_eq!(
            chunk(r#"{"choices":[{"index":0,"delta":{"reasoning":"hmm"}}]}"#),
            vec![Event::Thinking("hmm".into())]
        );
        assert_eq!(
            chunk(
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\""}}]}}]}"#
            ),
            vec![Event::ToolCallDelta {
                index: 0,
                id: Some("c".into()),
                name: Some("f".into()),
                arguments: "{\"a\"".into()
            }]
        );
        assert_eq!(
            chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#),
            vec![Event::Finish("length".into())]
        );
        assert_eq!(
            chunk(
                r#"{"choices":[],"usage":{"completion_tokens":8,"prompt_tokens":31},"timings":{"predicted_per_second":2.5}}"#
            ),
            vec![
                Event::Usage { prompt: Some(31), completion: Some(8) },
                Event::Timing { load_ms: None, tokens_per_second: Some(2.5) }
            ]
        );
        assert_eq!(chunk(r#"{"error":{"message":"boom","type":"api_error"}}"#), vec![Event::Error("boom".into())]);
        assert!(matches!(&chunk("{oops")[0], Event::Error(_)));
    }

    #[test]
    fn a_split_sse_stream_reassembles() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            ": ping\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Bon\"}}]}\r\n\r\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"jour ü\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"x\\\":1}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n",
            "data: [DONE]\n\n",
        );
        for size in [1, 2, 7, 50, 4096] {
            let (mut lines, mut sse, mut reply) = (Lines::default(), Sse::default(), Reply::default());
            for frame in stream.as_bytes().chunks(size) {
                for line in lines.push(frame) {
                    if let Some(data) = sse.line(&line) {
                        for e in chunk(&data) {
                            assert_eq!(reply.apply(e), None);
                        }
                    }
                }
            }
            reply.close();
            assert_eq!(reply.text, "Bonjour ü");
            assert_eq!(reply.tool_calls[0]["function"]["arguments"], json!({"x": 1}));
            assert_eq!((reply.prompt_tokens, reply.completion_tokens), (Some(3), Some(4)));
            assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
            assert!(reply.done);
        }
    }

    #[test]
    fn ollama_style_history_becomes_openai_style() {
        let msgs = vec![
            json!({"role":"user","content":"look","images":["AAAA"]}),
            json!({"role":"assistant","content":"","thinking":"x","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}),
            json!({"role":"tool","tool_name":"get_weather","content":"sunny"}),
        ];
        let out = messages(&msgs);
        assert_eq!(out[0]["content"][1]["image_url"]["url"], "data:image/png;base64,AAAA");
        assert_eq!(out[1]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(out[1]["tool_calls"][0]["id"], "call_0");
        assert!(out[1].get("thinking").is_none());
        assert_eq!(out[2]["tool_call_id"], "call_0");
        assert!(out[2].get("tool_name").is_none());
    }

    #[test]
    fn formats_and_listing() {
        let msgs = vec![json!({"role":"user","content":"hi"})];
        let schema = json!({"type":"object"});
        let ask = Ask {
            model: "m",
            messages: &msgs,
            tools: None,
            format: Some(&schema),
            temperature: None,
            max_tokens: Some(3),
            think: None,
            keep_alive: None,
            stream: true,
        };
        let b = body(&ask);
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["max_tokens"], 3);
        assert_eq!(b["stream_options"]["include_usage"], true);
        let listing = json!({"data":[{"id":"a","status":{"value":"loaded"}},{"id":"b","status":{"value":"unloaded"}}]});
        assert_eq!(model_listing(&listing), (vec!["a".to_string(), "b".to_string()], Some(vec!["a".to_string()])));
        assert_eq!(model_listing(&json!({"data":[{"id":"a"}]})), (vec!["a".to_string()], None));
    }
}
