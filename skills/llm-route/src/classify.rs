//! Deterministic classification of a request into a task class (a route).
//! Rules run in order and the first that decides wins, so the decision and
//! its reason are predictable and can be returned to the caller:
//!
//! 1. an explicit hint in a message (`task: coding`, `#coding`),
//! 2. code: a fenced block or unmistakable code syntax → `coding`,
//! 3. keywords of each route (built-in ones for the five standard classes,
//!    plus `keywords` from the settings); most distinct hits wins,
//! 4. length: a very long message → `long-message-route`.
//!
//! When none decides, the caller may ask the classifier model, then falls
//! back to the default route. The `task` input bypasses all of this.

use crate::ask::content_text;
use crate::config::Settings;
use serde_json::{Value, json};

/// Built-in keywords of the standard classes. Words match whole words (with
/// a plural `s`); phrases match whole-word sequences.
const BUILTIN: &[(&str, &[&str])] = &[
    (
        "coding",
        &[
            "code",
            "coding",
            "function",
            "compile",
            "compiler",
            "compiles",
            "bug",
            "debug",
            "refactor",
            "stack trace",
            "traceback",
            "exception",
            "segfault",
            "regex",
            "sql",
            "query",
            "api",
            "endpoint",
            "rust",
            "python",
            "javascript",
            "typescript",
            "golang",
            "java",
            "kotlin",
            "swift",
            "c++",
            "html",
            "css",
            "bash",
            "shell script",
            "unit test",
            "algorithm",
            "implement",
            "script",
            "repository",
            "git",
            "cargo",
            "npm",
            "dockerfile",
            "kubernetes",
            "syntax error",
            "struct",
            "enum",
            "borrow checker",
            "program",
            "programming",
            "library",
            "crate",
            "class",
            "method",
            "variable",
            "json",
            "yaml",
            "lint",
            "pull request",
        ],
    ),
    (
        "creative",
        &[
            "story",
            "stories",
            "poem",
            "poetry",
            "haiku",
            "lyrics",
            "song",
            "novel",
            "fiction",
            "fairy tale",
            "character",
            "plot",
            "screenplay",
            "script for a play",
            "fantasy",
            "limerick",
            "sonnet",
            "worldbuilding",
            "roleplay",
            "role-play",
            "bedtime story",
            "villain",
            "hero",
            "dragon",
            "imagine",
        ],
    ),
    (
        "reasoning",
        &[
            "prove",
            "proof",
            "theorem",
            "lemma",
            "step by step",
            "derive",
            "derivation",
            "reasoning",
            "logic",
            "puzzle",
            "riddle",
            "math",
            "mathematics",
            "calculate",
            "equation",
            "integral",
            "probability",
            "optimize",
            "optimise",
            "analyze",
            "analyse",
            "analysis",
            "trade-off",
            "tradeoff",
            "why does",
            "explain why",
            "hypothesis",
            "strategy",
            "plan",
            "compare",
            "evaluate",
            "paradox",
        ],
    ),
    (
        "balanced",
        &[
            "blog",
            "blog post",
            "essay",
            "article",
            "email",
            "letter",
            "marketing",
            "copy",
            "slogan",
            "tagline",
            "product description",
            "newsletter",
            "speech",
            "press release",
            "cover letter",
            "tweet",
            "caption",
            "rewrite",
            "tone",
        ],
    ),
    (
        "fast",
        &[
            "translate",
            "translation",
            "summarize",
            "summarise",
            "summary",
            "tl;dr",
            "tldr",
            "quick",
            "quickly",
            "briefly",
            "define",
            "definition",
            "what is",
            "who is",
            "spell",
            "grammar",
            "rephrase",
            "list",
            "hello",
            "hi",
            "thanks",
        ],
    ),
];

/// How a request was classified.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The route chosen.
    pub class: String,
    /// Which rule decided: `input.task`, `hint`, `code`, `keyword`,
    /// `length`, `classifier`, `default`, `model`.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
    /// Rule details (matched keywords, scores, lengths).
    pub detail: Value,
}

impl Classification {
    /// A classification decided by `rule`.
    pub fn new(class: &str, rule: &str, reason: impl Into<String>, detail: Value) -> Self {
        Classification { class: class.into(), rule: rule.into(), reason: reason.into(), detail }
    }

    /// As output data.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"class": self.class, "rule": self.rule, "reason": self.reason});
        if let (Value::Object(d), Value::Object(o)) = (&self.detail, &mut v) {
            for (k, val) in d {
                o.insert(k.clone(), val.clone());
            }
        }
        v
    }
}

/// The last user message's text: what the request is about.
pub fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content")))
        .unwrap_or_default()
}

/// Lowercase words, keeping `+`, `#`, `-`, `;` inside tokens (c++, c#,
/// trade-off, tl;dr), padded with spaces so ` word ` finds whole words.
fn normalize(text: &str) -> String {
    let mut out = String::from(" ");
    for word in text
        .to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '+' | '#' | '-' | ';' | '\'')))
        .map(|w| w.trim_matches(|c| matches!(c, '-' | ';' | '\'')))
        .filter(|w| !w.is_empty())
    {
        out.push_str(word);
        out.push(' ');
    }
    out
}

fn hits(norm: &str, keyword: &str) -> bool {
    let k = normalize(keyword);
    let k = k.trim();
    if k.is_empty() {
        return false;
    }
    norm.contains(&format!(" {k} ")) || (!k.contains(' ') && norm.contains(&format!(" {k}s ")))
}

/// Code syntax that prose rarely contains.
fn code_signal(text: &str) -> Option<&'static str> {
    if text.contains("```") {
        return Some("a fenced code block");
    }
    const PATTERNS: &[(&str, &str)] = &[
        ("fn main(", "Rust code"),
        ("pub fn ", "Rust code"),
        ("#include <", "C code"),
        ("def __init__", "Python code"),
        ("import numpy", "Python code"),
        ("console.log(", "JavaScript code"),
        ("public static void", "Java code"),
        ("SELECT * FROM", "SQL"),
        ("Traceback (most recent call last)", "a Python traceback"),
        ("error[E", "a Rust compiler error"),
    ];
    PATTERNS.iter().find(|(p, _)| text.contains(p)).map(|(_, what)| *what)
}

/// An explicit hint naming a route: `task: coding`, `route: coding` or a
/// `#coding` tag, in the last user message or a system message.
fn hint(messages: &[Value], routes: &[String]) -> Option<(String, String)> {
    let texts = messages.iter().rev().filter_map(|m| {
        let role = m.get("role").and_then(Value::as_str)?;
        matches!(role, "user" | "system").then(|| (role.to_string(), content_text(m.get("content"))))
    });
    // Only the last user message counts; earlier turns were other requests.
    let mut seen_user = false;
    for (role, text) in texts {
        if role == "user" {
            if seen_user {
                continue;
            }
            seen_user = true;
        }
        let lower = text.to_lowercase();
        for r in routes {
            let r_low = r.to_lowercase();
            for form in
                [format!("task: {r_low}"), format!("task:{r_low}"), format!("route: {r_low}"), format!("#{r_low}")]
            {
                if let Some(pos) = lower.find(&form) {
                    let end = pos + form.len();
                    let boundary =
                        lower[end..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'));
                    let start_ok = pos == 0 || !lower[..pos].ends_with(|c: char| c.is_alphanumeric());
                    if boundary && start_ok {
                        return Some((r.clone(), format!("`{}` in a {role} message", &text[pos..end])));
                    }
                }
            }
        }
    }
    None
}

/// Classify by the deterministic rules; `None` when no rule decided (then
/// the classifier model or the default route decides).
pub fn by_rules(settings: &Settings, messages: &[Value]) -> Option<Classification> {
    let routes: Vec<String> = settings.routes.keys().cloned().collect();
    if let Some((class, why)) = hint(messages, &routes) {
        return Some(Classification::new(&class, "hint", format!("explicit hint {why}"), json!({})));
    }
    let text = last_user_text(messages);
    if routes.iter().any(|r| r == "coding")
        && let Some(what) = code_signal(&text)
    {
        return Some(Classification::new("coding", "code", format!("the message contains {what}"), json!({})));
    }
    let norm = normalize(&text);
    let mut best: Option<(String, Vec<String>)> = None;
    let mut scores = serde_json::Map::new();
    for r in &routes {
        let builtin = BUILTIN
            .iter()
            .find(|(n, _)| n == r)
            .map(|(_, k)| k.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(Vec::new);
        let mut matched: Vec<String> = Vec::new();
        for k in builtin.into_iter().chain(settings.keywords(r)) {
            if !matched.contains(&k) && hits(&norm, &k) {
                matched.push(k);
            }
        }
        if matched.is_empty() {
            continue;
        }
        scores.insert(r.clone(), json!(matched.len()));
        if best.as_ref().is_none_or(|(_, m)| matched.len() > m.len()) {
            best = Some((r.clone(), matched));
        }
    }
    if let Some((class, matched)) = best {
        let reason = format!("keywords {}", matched.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "));
        return Some(Classification::new(&class, "keyword", reason, json!({"matched": matched, "scores": scores})));
    }
    let chars = text.chars().count();
    if let Some(long) = settings.long_message_route.as_ref().filter(|r| settings.routes.contains_key(*r))
        && chars > settings.long_message_chars
    {
        return Some(Classification::new(
            long,
            "length",
            format!("the message is {chars} characters long (over {})", settings.long_message_chars),
            json!({"chars": chars}),
        ));
    }
    None
}

/// The classifier model's prompt: the routes and what each is for.
pub fn classifier_prompt(settings: &Settings, text: &str) -> String {
    let mut p = String::from(
        "Classify the user's request into exactly one task class. Answer with JSON {\"class\": \"<name>\"} and nothing else.\nClasses:\n",
    );
    for r in settings.routes() {
        let about = r.description.clone().unwrap_or_else(|| match r.name.as_str() {
            "coding" => "programming, code, debugging, software tools".into(),
            "creative" => "stories, poems, fiction, imaginative writing".into(),
            "reasoning" => "math, logic, proofs, hard analysis, planning".into(),
            "balanced" => "everyday writing: emails, essays, blog posts, marketing copy".into(),
            "fast" => "quick questions, chit-chat, short factual answers, translation".into(),
            other => format!("{other} tasks"),
        });
        p.push_str(&format!("- {}: {about}\n", r.name));
    }
    let excerpt: String = text.chars().take(2000).collect();
    p.push_str("\nRequest:\n");
    p.push_str(&excerpt);
    p
}

/// The class named in the classifier's answer: JSON `{"class": ...}` first,
/// else the first route name found in the text.
pub fn parse_classifier_answer(answer: &str, routes: &[String]) -> Option<String> {
    let trimmed = answer.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed)
        && let Some(c) = v.get("class").and_then(Value::as_str)
        && let Some(r) = routes.iter().find(|r| r.eq_ignore_ascii_case(c.trim()))
    {
        return Some(r.clone());
    }
    let norm = normalize(trimmed);
    routes
        .iter()
        .filter_map(|r| norm.find(&format!(" {} ", r.to_lowercase())).map(|pos| (pos, r)))
        .min()
        .map(|(_, r)| r.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_json(json!({"long-message-route": "reasoning", "long-message-chars": 100})).unwrap()
    }

    fn user(text: &str) -> Vec<Value> {
        vec![json!({"role": "user", "content": text})]
    }

    fn class(text: &str) -> Option<(String, String)> {
        by_rules(&settings(), &user(text)).map(|c| (c.class, c.rule))
    }

    fn pair(c: &str, r: &str) -> Option<(String, String)> {
        Some((c.into(), r.into()))
    }

    #[test]
    fn keywords_pick_the_class() {
        assert_eq!(class("write a rust function that parses dates"), pair("coding", "keyword"));
        assert_eq!(class("Write me a short story about a dragon"), pair("creative", "keyword"));
        assert_eq!(class("Prove that the square root of 2 is irrational, step by step"), pair("reasoning", "keyword"));
        assert_eq!(class("draft an email to my landlord"), pair("balanced", "keyword"));
        assert_eq!(class("translate 'good morning' to French"), pair("fast", "keyword"));
        assert_eq!(class("I love poems"), pair("creative", "keyword"), "plurals match");
        assert_eq!(class("the codex of bugsy"), None, "no partial-word matches");
    }

    #[test]
    fn code_and_hints_beat_keywords() {
        assert_eq!(class("what does this do?\n```\nx = 1\n```"), pair("coding", "code"));
        assert_eq!(class("Traceback (most recent call last): ... poem"), pair("coding", "code"));
        assert_eq!(class("task: creative -- fix my rust function"), pair("creative", "hint"));
        assert_eq!(class("#reasoning write code"), pair("reasoning", "hint"));
        assert_eq!(class("see issue#fast"), None, "a hashtag glued to a word is no hint");
        let msgs =
            vec![json!({"role":"system","content":"route: coding"}), json!({"role":"user","content":"hello there"})];
        assert_eq!(by_rules(&settings(), &msgs).unwrap().rule, "hint");
    }

    #[test]
    fn only_the_last_user_message_counts() {
        let msgs = vec![
            json!({"role":"user","content":"write a poem"}),
            json!({"role":"assistant","content":"..."}),
            json!({"role":"user","content":"hmm ok"}),
        ];
        assert_eq!(by_rules(&settings(), &msgs), None);
    }

    #[test]
    fn length_and_nothing() {
        assert_eq!(class(&"blah ".repeat(30)), pair("reasoning", "length"));
        assert_eq!(class("ok then"), None);
        let s = Settings::from_json(
            json!({"routes": {"legal": ["m"], "fast": ["n"]}, "keywords": {"legal": ["contract", "clause"]}}),
        )
        .unwrap();
        assert_eq!(by_rules(&s, &user("check this contract clause")).unwrap().class, "legal");
        assert_eq!(by_rules(&s, &user("write a rust function")), None, "no coding route, no coding class");
    }

    #[test]
    fn detail_lists_matches() {
        let c = by_rules(&settings(), &user("debug this python function")).unwrap();
        assert_eq!(c.detail["matched"], json!(["function", "debug", "python"]));
        assert_eq!(c.to_json()["rule"], "keyword");
    }

    #[test]
    fn classifier_answers() {
        let routes: Vec<String> = ["coding", "fast"].iter().map(|s| s.to_string()).collect();
        assert_eq!(parse_classifier_answer(r#"{"class":"Fast"}"#, &routes).as_deref(), Some("fast"));
        assert_eq!(parse_classifier_answer("I think coding, maybe fast", &routes).as_deref(), Some("coding"));
        assert_eq!(parse_classifier_answer("no idea", &routes), None);
        assert!(classifier_prompt(&settings(), "hi").contains("- coding: programming"));
    }
}
