//! Deterministic "generation": the reply is a pure function of the request,
//! so tests can predict it exactly and see which model produced it.

use serde_json::{Map, Value, json};

use super::SimModel;
use super::util::truncate;

/// One chat message, reduced to what the reply depends on.
pub(crate) struct Msg {
    pub role: String,
    pub content: String,
    pub has_images: bool,
}

/// A tool the client offers (`{type, function: {name, parameters}}`).
pub(crate) struct Tool {
    pub name: String,
    pub parameters: Value,
}

impl Tool {
    /// Reads the OpenAI-style tool list both APIs share; entries without a
    /// name are ignored.
    pub fn parse_all(tools: &[Value]) -> Vec<Tool> {
        tools
            .iter()
            .filter_map(|t| {
                let f = t.get("function").unwrap_or(t);
                Some(Tool {
                    name: f.get("name")?.as_str()?.to_string(),
                    parameters: f.get("parameters").cloned().unwrap_or(Value::Null),
                })
            })
            .collect()
    }
}

/// Structured output requested by the client.
pub(crate) enum Format {
    /// Any valid JSON (`"json"`, `json_object`).
    Json,
    /// JSON matching this schema.
    Schema(Value),
}

/// Everything a reply depends on.
pub(crate) struct Ask<'a> {
    pub model: &'a SimModel,
    pub messages: &'a [Msg],
    pub tools: &'a [Tool],
    pub format: Option<&'a Format>,
    /// Reasoning effort when thinking is on.
    pub think: Option<&'a str>,
    pub max_tokens: Option<usize>,
    pub echo_chars: usize,
}

/// A planned tool call.
pub(crate) struct Call {
    pub name: String,
    pub arguments: Value,
}

/// One streamed step.
pub(crate) enum Piece<'a> {
    Thinking(&'a str),
    Content(&'a str),
    Calls(&'a [Call]),
}

/// The whole reply, decided before the first byte is sent.
pub(crate) struct Plan {
    /// The last user message (or prompt), for the request log.
    pub prompt: String,
    pub thinking: Vec<String>,
    pub content: Vec<String>,
    pub calls: Vec<Call>,
    /// Content before any token cap, for the request log.
    pub full_content: String,
    /// Whether the token cap cut the reply ("length").
    pub truncated: bool,
    pub prompt_tokens: u64,
}

impl Plan {
    pub fn pieces(&self) -> Vec<Piece<'_>> {
        let mut out: Vec<Piece<'_>> = self.thinking.iter().map(|t| Piece::Thinking(t)).collect();
        out.extend(self.content.iter().map(|t| Piece::Content(t)));
        if !self.calls.is_empty() {
            out.push(Piece::Calls(&self.calls));
        }
        out
    }

    pub fn thinking_text(&self) -> String {
        self.thinking.concat()
    }

    pub fn content_text(&self) -> String {
        self.content.concat()
    }

    /// Generated tokens, as `eval_count` / `completion_tokens` report them.
    pub fn eval_tokens(&self) -> u64 {
        let calls: usize = self.calls.iter().map(|c| c.arguments.to_string().len() / 4 + 2).sum();
        (self.thinking.len() + self.content.len() + calls) as u64
    }

    pub fn call_names(&self) -> Vec<String> {
        self.calls.iter().map(|c| c.name.clone()).collect()
    }
}

/// Decides the reply: tool calls when the last user message names an
/// offered tool, otherwise `[model] echo: <message>` (or JSON when a format
/// is asked for), preceded by thinking when enabled.
pub(crate) fn plan(ask: &Ask<'_>) -> Plan {
    let name = &ask.model.name;
    let prompt = ask.messages.iter().rev().find(|m| m.role == "user").map(|m| m.content.clone()).unwrap_or_default();
    let echo = truncate(&prompt, ask.echo_chars);
    let last = ask.messages.last();
    let last_is_user = last.is_some_and(|m| m.role == "user");

    let calls: Vec<Call> = if last_is_user {
        let asked = prompt.to_lowercase();
        ask.tools
            .iter()
            .filter(|t| asked.contains(&t.name.to_lowercase()))
            .map(|t| Call { name: t.name.clone(), arguments: object_for(&t.parameters, 0) })
            .collect()
    } else {
        Vec::new()
    };

    let (full_content, mut content) = if !calls.is_empty() {
        (String::new(), Vec::new())
    } else if let Some(m) = last.filter(|m| m.role == "tool") {
        let text = format!("[{name}] tool result: {}", truncate(&m.content, ask.echo_chars));
        let toks = words(&text);
        (text, toks)
    } else {
        match ask.format {
            Some(Format::Json) => {
                let text = json!({"model": name, "echo": echo}).to_string();
                let toks = pieces_of(&text, 8);
                (text, toks)
            }
            Some(Format::Schema(schema)) => {
                let text = sample_value("value", schema, 0).to_string();
                let toks = pieces_of(&text, 8);
                (text, toks)
            }
            None => {
                let text = format!("[{name}] echo: {echo}");
                let toks = words(&text);
                (text, toks)
            }
        }
    };

    let mut thinking =
        ask.think.map(|level| words(&format!("[{name}] thinking ({level}) about: {echo}"))).unwrap_or_default();

    let mut truncated = false;
    if let Some(max) = ask.max_tokens
        && thinking.len() + content.len() > max
    {
        truncated = true;
        thinking.truncate(max);
        content.truncate(max - thinking.len());
    }

    let prompt_tokens =
        ask.messages.iter().map(|m| m.content.split_whitespace().count() as u64 + 1).sum::<u64>().max(1);

    Plan { prompt, thinking, content, calls, full_content, truncated, prompt_tokens }
}

/// Splits text into word-like tokens that concatenate back to it.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_whitespace() && cur.chars().any(|c| !c.is_whitespace()) {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits text into chunks of `n` characters.
fn pieces_of(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

/// An object with the schema's required properties (all of them when none
/// are marked required), each with a simple value of the right type.
fn object_for(schema: &Value, depth: usize) -> Value {
    let props = schema.get("properties").and_then(Value::as_object);
    let names: Vec<String> = match schema.get("required").and_then(Value::as_array) {
        Some(req) => req.iter().filter_map(|r| r.as_str().map(String::from)).collect(),
        None => props.map(|p| p.keys().cloned().collect()).unwrap_or_default(),
    };
    let mut out = Map::new();
    for name in names {
        let prop = props.and_then(|p| p.get(&name)).unwrap_or(&Value::Null);
        let value = sample_value(&name, prop, depth + 1);
        out.insert(name, value);
    }
    Value::Object(out)
}

/// A simple value valid for `schema`: its first enum value or a fixed value
/// of its type.
fn sample_value(name: &str, schema: &Value, depth: usize) -> Value {
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "integer" => json!(1),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "null" => Value::Null,
        "array" if depth < 8 => {
            let items = schema.get("items").unwrap_or(&Value::Null);
            json!([sample_value(name, items, depth + 1)])
        }
        "object" if depth < 8 => object_for(schema, depth),
        "array" => json!([]),
        "object" => json!({}),
        _ => json!(format!("{name}-value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(model: &'a SimModel, msgs: &'a [Msg], tools: &'a [Tool]) -> Ask<'a> {
        Ask { model, messages: msgs, tools, format: None, think: None, max_tokens: None, echo_chars: 80 }
    }

    fn user(text: &str) -> Vec<Msg> {
        vec![Msg { role: "user".into(), content: text.into(), has_images: false }]
    }

    #[test]
    fn echo_is_tokenised_losslessly() {
        let m = SimModel::new("m1");
        let msgs = user("hello  big world");
        let p = plan(&ask(&m, &msgs, &[]));
        assert_eq!(p.content_text(), "[m1] echo: hello  big world");
        assert_eq!(p.content.len(), 5);
    }

    #[test]
    fn schema_values_follow_types() {
        let schema = json!({"type":"object","required":["city","days","tags","unit"],"properties":{
            "city":{"type":"string"},"days":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},
            "unit":{"type":"string","enum":["c","f"]},"extra":{"type":"boolean"}}});
        assert_eq!(object_for(&schema, 0), json!({"city":"city-value","days":1,"tags":["tags-value"],"unit":"c"}));
    }
}
