//! The request the caller made, independent of which protocol carries it, and
//! the helpers both protocols share for messages and error bodies.

use serde_json::Value;

/// One chat request, as the caller gave it.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The model id to send (what the backend knows the model as).
    pub model: &'a str,
    /// Chat messages, OpenAI or Ollama style.
    pub messages: &'a [Value],
    /// Tools in OpenAI's `{type, function: {name, description, parameters}}`
    /// shape, which Ollama also accepts.
    pub tools: Option<&'a Value>,
    /// `"json"` or a JSON schema.
    pub format: Option<&'a Value>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Cap on generated tokens.
    pub max_tokens: Option<u64>,
    /// Reasoning switch: a bool or `low`/`medium`/`high`.
    pub think: Option<&'a Value>,
    /// Ollama `keep_alive` (pinning a favourite model).
    pub keep_alive: Option<&'a Value>,
    /// Whether the backend should stream (the router always streams, except
    /// for the classifier's one-word answer).
    pub stream: bool,
}

/// The text of a message's `content`: a string, or the text parts of an
/// OpenAI content list.
pub fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Base64 images inside OpenAI `image_url` parts given as data URLs (the only
/// kind a sandboxed skill can pass on without fetching anything).
pub fn content_images(content: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(parts)) = content else { return Vec::new() };
    parts
        .iter()
        .filter_map(|p| {
            let url = p.get("image_url").and_then(|u| u.get("url").or(Some(u))).and_then(Value::as_str)?;
            let (_, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
            Some(data.to_string())
        })
        .collect()
}

/// The name of the tool call `id` answered, searching earlier assistant
/// messages: Ollama wants `tool_name` where OpenAI has `tool_call_id`.
pub fn tool_name_for(messages: &[Value], before: usize, id: &str) -> Option<String> {
    messages[..before].iter().rev().find_map(|m| {
        m.get("tool_calls")?.as_array()?.iter().find_map(|c| {
            (c.get("id").and_then(Value::as_str) == Some(id))
                .then(|| c.pointer("/function/name").and_then(Value::as_str).map(str::to_string))
                .flatten()
        })
    })
}

/// The most useful text of an error body: `{"error": "..."}` (Ollama),
/// `{"error": {"message": ...}}` (OpenAI), or the raw text.
pub fn error_message(body: &str) -> String {
    let trimmed = body.trim();
    if let Some(e) = c41_kit::openai::parse(trimmed.as_bytes()) {
        return e.message;
    }
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        if let Some(Value::String(s)) = v.get("error") {
            return s.clone();
        }
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            return m.to_string();
        }
    }
    let mut s: String = trimmed.chars().take(500).collect();
    if s.is_empty() {
        s = "(empty body)".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_shapes() {
        assert_eq!(
            error_message(r#"{"error":"model \"x\" not found, try pulling it first"}"#),
            "model \"x\" not found, try pulling it first"
        );
        assert_eq!(
            error_message(
                r#"{"error":{"code":400,"message":"model 'nope' not found","type":"invalid_request_error"}}"#
            ),
            "model 'nope' not found"
        );
        assert_eq!(error_message("  Bad Gateway \n"), "Bad Gateway");
        assert_eq!(error_message(""), "(empty body)");
    }

    #[test]
    fn content_parts() {
        let c = json!([{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]);
        assert_eq!(content_text(Some(&c)), "look");
        assert_eq!(content_images(Some(&c)), vec!["AAAA"]);
        assert_eq!(content_text(Some(&Value::Null)), "");
    }

    #[test]
    fn tool_names_from_earlier_calls() {
        let msgs = vec![
            json!({"role":"assistant","tool_calls":[{"id":"c9","function":{"name":"get_weather","arguments":"{}"}}]}),
            json!({"role":"tool","tool_call_id":"c9","content":"sunny"}),
        ];
        assert_eq!(tool_name_for(&msgs, 1, "c9").as_deref(), Some("get_weather"));
        assert_eq!(tool_name_for(&msgs, 1, "zz"), None);
    }
}
