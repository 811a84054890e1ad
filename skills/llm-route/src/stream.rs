//! Incremental framing of streamed response bodies. HTTP body frames split
//! lines anywhere (even inside a UTF-8 character), so both NDJSON and SSE are
//! cut into lines here before any JSON is parsed, and a reply is assembled
//! from the typed events the protocol modules produce.
//!
//! Nothing here touches the WIT imports, so it runs in native unit tests.

use serde_json::{Map, Value, json};

/// Splits a byte stream into lines, whatever the frame boundaries.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// Feed one frame; returns the lines it completed (without `\n` or a
    /// trailing `\r`). Bytes after the last newline wait for the next frame.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let Some(last) = self.buf.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.buf.split_off(last + 1);
        let done = std::mem::replace(&mut self.buf, rest);
        done[..done.len() - 1].split(|&b| b == b'\n').map(line_text).collect()
    }

    /// The unterminated last line at the end of the stream, if any: servers
    /// may omit the final newline.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let line = line_text(&rest);
        (!line.trim().is_empty()).then_some(line)
    }
}

fn line_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Server-sent events: collects `data:` lines into event payloads. Comments,
/// `event:`, `id:` and `retry:` lines carry nothing an LLM client needs.
#[derive(Debug, Default)]
pub struct Sse {
    data: Vec<String>,
}

impl Sse {
    /// Feed one line; returns a payload when the line ends an event. A
    /// `[DONE]` payload also ends an event at once: some servers omit the
    /// blank line after it.
    pub fn line(&mut self, line: &str) -> Option<String> {
        if line.is_empty() {
            return self.flush();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            if value == "[DONE]" && self.data.is_empty() {
                return Some(value.to_string());
            }
            self.data.push(value.to_string());
        }
        None
    }

    /// The pending event at the end of the stream.
    pub fn flush(&mut self) -> Option<String> {
        if self.data.is_empty() { None } else { Some(std::mem::take(&mut self.data).join("\n")) }
    }
}

/// One thing a backend said while streaming, in protocol-neutral terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Reply text, to be forwarded to the caller at once.
    Content(String),
    /// Reasoning text (Ollama `thinking`, OpenAI `reasoning`); kept, not
    /// streamed as reply text.
    Thinking(String),
    /// Complete tool calls (Ollama sends them whole).
    ToolCalls(Vec<Value>),
    /// A fragment of a tool call (OpenAI streams name and arguments in
    /// pieces, keyed by index).
    ToolCallDelta {
        /// Which call the fragment belongs to.
        index: usize,
        /// The call id, in the first fragment.
        id: Option<String>,
        /// The function name, in the first fragment.
        name: Option<String>,
        /// A piece of the JSON-encoded arguments.
        arguments: String,
    },
    /// Why generation stopped (`stop`, `length`, `tool_calls`).
    Finish(String),
    /// Token counts.
    Usage {
        /// Tokens of the prompt.
        prompt: Option<u64>,
        /// Tokens generated.
        completion: Option<u64>,
    },
    /// Timings the server measured itself.
    Timing {
        /// Time spent loading the model (Ollama `load_duration`).
        load_ms: Option<f64>,
        /// Generation speed.
        tokens_per_second: Option<f64>,
    },
    /// The model name the server says answered.
    Model(String),
    /// An error reported inside a 200 stream: the attempt failed.
    Error(String),
    /// The server ended the reply normally.
    Done,
}

/// A reply assembled from events.
#[derive(Debug, Default, Clone)]
pub struct Reply {
    /// The reply text.
    pub text: String,
    /// Reasoning text, if the model produced any.
    pub thinking: String,
    /// Tool calls as `{id, type: "function", function: {name, arguments}}`,
    /// with `arguments` a JSON object whichever protocol carried them.
    pub tool_calls: Vec<Value>,
    /// Partial OpenAI tool calls: (id, name, argument text) by index.
    partial_calls: Vec<(Option<String>, String, String)>,
    /// Why generation stopped.
    pub finish_reason: Option<String>,
    /// Prompt tokens, if reported.
    pub prompt_tokens: Option<u64>,
    /// Generated tokens, if reported.
    pub completion_tokens: Option<u64>,
    /// Model load time the server reported.
    pub load_ms: Option<f64>,
    /// Generation speed the server reported.
    pub tokens_per_second: Option<f64>,
    /// The model name the server reported.
    pub served_model: Option<String>,
    /// Content events seen (an estimate of tokens when usage is missing).
    pub content_events: u64,
    /// True once the server ended the reply normally.
    pub done: bool,
}

impl Reply {
    /// Apply one event; returns the error text of an [`Event::Error`].
    pub fn apply(&mut self, event: Event) -> Option<String> {
        match event {
            Event::Content(t) => {
                self.content_events += 1;
                self.text.push_str(&t);
            }
            Event::Thinking(t) => self.thinking.push_str(&t),
            Event::ToolCalls(calls) => {
                let base = self.tool_calls.len();
                self.tool_calls.extend(calls.into_iter().enumerate().map(|(i, c)| normalize_call(&c, base + i)));
            }
            Event::ToolCallDelta { index, id, name, arguments } => {
                if self.partial_calls.len() <= index {
                    self.partial_calls.resize(index + 1, (None, String::new(), String::new()));
                }
                let slot = &mut self.partial_calls[index];
                if id.is_some() {
                    slot.0 = id;
                }
                if let Some(n) = name {
                    slot.1.push_str(&n);
                }
                slot.2.push_str(&arguments);
            }
            Event::Finish(r) => self.finish_reason = Some(r),
            Event::Usage { prompt, completion } => {
                self.prompt_tokens = prompt.or(self.prompt_tokens);
                self.completion_tokens = completion.or(self.completion_tokens);
            }
            Event::Timing { load_ms, tokens_per_second } => {
                self.load_ms = load_ms.or(self.load_ms);
                self.tokens_per_second = tokens_per_second.or(self.tokens_per_second);
            }
            Event::Model(m) => {
                if self.served_model.is_none() && !m.is_empty() {
                    self.served_model = Some(m);
                }
            }
            Event::Error(e) => return Some(e),
            Event::Done => self.done = true,
        }
        None
    }

    /// Turn streamed tool-call fragments into whole calls; call once at the
    /// end of the stream.
    pub fn close(&mut self) {
        for (i, (id, name, args)) in std::mem::take(&mut self.partial_calls).into_iter().enumerate() {
            if name.is_empty() && args.is_empty() {
                continue;
            }
            let call = json!({"id": id, "function": {"name": name, "arguments": args}});
            let n = self.tool_calls.len();
            self.tool_calls.push(normalize_call(&call, n.max(i)));
        }
    }
}

/// One tool call in the shape the skill returns: OpenAI's, with `arguments`
/// decoded to a JSON object (Ollama's convention), so callers can read the
/// arguments without knowing which backend answered.
pub fn normalize_call(call: &Value, index: usize) -> Value {
    let f = call.get("function").unwrap_or(call);
    let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
    let arguments = match f.get("arguments") {
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        Some(v) => v.clone(),
        None => Value::Object(Map::new()),
    };
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("call_{index}"));
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_any_frame_split() {
        let text = "{\"a\":\"é\"}\r\n{\"b\":2}\n\n{\"c\":3}";
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            let mut l = Lines::default();
            let mut out = l.push(&bytes[..cut]);
            out.extend(l.push(&bytes[cut..]));
            out.extend(l.finish());
            assert_eq!(out, vec!["{\"a\":\"é\"}", "{\"b\":2}", "", "{\"c\":3}"], "cut at {cut}");
        }
    }

    #[test]
    fn byte_by_byte_frames() {
        let mut l = Lines::default();
        let mut out = Vec::new();
        for b in "x\ny\n".as_bytes() {
            out.extend(l.push(&[*b]));
        }
        assert_eq!(out, vec!["x", "y"]);
        assert_eq!(l.finish(), None);
    }

    #[test]
    fn sse_events_comments_and_done() {
        let mut s = Sse::default();
        let mut got = Vec::new();
        for line in [
            ": keep-alive",
            "event: message",
            "data: {\"a\":1}",
            "",
            "data:{\"b\":",
            "data: 2}",
            "id: 7",
            "",
            "data: [DONE]",
        ] {
            got.extend(s.line(line));
        }
        got.extend(s.flush());
        assert_eq!(got, vec!["{\"a\":1}", "{\"b\":\n2}", "[DONE]"]);
    }

    #[test]
    fn reply_assembles_streamed_tool_calls() {
        let mut r = Reply::default();
        r.apply(Event::ToolCallDelta {
            index: 0,
            id: Some("c1".into()),
            name: Some("get_weather".into()),
            arguments: String::new(),
        });
        r.apply(Event::ToolCallDelta { index: 0, id: None, name: None, arguments: "{\"city\":".into() });
        r.apply(Event::ToolCallDelta { index: 0, id: None, name: None, arguments: "\"Paris\"}".into() });
        r.apply(Event::ToolCallDelta {
            index: 1,
            id: Some("c2".into()),
            name: Some("noop".into()),
            arguments: String::new(),
        });
        r.close();
        assert_eq!(
            r.tool_calls,
            vec![
                json!({"id":"c1","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}}),
                json!({"id":"c2","type":"function","function":{"name":"noop","arguments":{}}}),
            ]
        );
    }

    #[test]
    fn errors_are_returned_not_stored() {
        let mut r = Reply::default();
        assert_eq!(r.apply(Event::Content("a".into())), None);
        assert_eq!(r.apply(Event::Error("boom".into())), Some("boom".into()));
        assert_eq!(r.text, "a");
        assert_eq!(r.content_events, 1);
    }
}
