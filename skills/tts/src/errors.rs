//! Error replies of OpenAI-style speech servers, turned into errors that name
//! the skill's own input field.
//!
//! OpenAI-shaped bodies (OpenAI, the simulator, Kokoro-FastAPI) are read by
//! `c41_kit::openai`; pydantic's 422 lists (openedai-speech and other
//! FastAPI servers) by `c41_kit::fastapi`. What stays here is the wording:
//! which of the skill's fields a server field is, and what to look up.

use crate::speech::{Source, Speech};
use c41_kit::openai::{self, ApiError};
use c41_kit::{SkillError, Value, fastapi};

/// The request path, for messages.
pub const SPEECH_PATH: &str = "/v1/audio/speech";

/// The skill's input field for a server field.
pub fn input_field(server_field: &str) -> Option<&'static str> {
    Some(match server_field {
        "input" => "text",
        "voice" => "voice",
        "model" => "model",
        "response_format" => "format",
        "speed" => "speed",
        "instructions" => "instructions",
        _ => return None,
    })
}

/// What the skill may look up to explain a refusal better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Nothing.
    Nothing,
    /// The server's voices (`GET /v1/audio/voices`).
    Voices,
    /// The server's models (`GET /v1/models`).
    Models,
}

/// " (from settings.voice in the c41 config)" when the value came from there.
pub fn whence(from: Source, key: &str) -> String {
    match from {
        Source::Settings => format!(" (from settings.{key} in the c41 config)"),
        _ => String::new(),
    }
}

/// The error for a non-2xx reply to `sent`, and what to look up to improve it.
pub fn explain(service: &str, status: u16, body: &[u8], sent: &Speech) -> (SkillError, Lookup) {
    let Some(e) = openai::parse(body) else {
        let err = fastapi::error(service, status, body, input_field);
        let lookup = match &err {
            SkillError::InvalidInput { field, .. } if field == "voice" => Lookup::Voices,
            SkillError::InvalidInput { field, .. } if field == "model" => Lookup::Models,
            _ => Lookup::Nothing,
        };
        let err = match err {
            SkillError::Backend { service, status, message } => {
                SkillError::backend(service, status, format!("POST {SPEECH_PATH}: {}", or_reason(&message, status)))
            }
            other => other,
        };
        return (err, lookup);
    };
    let code = e.code.as_deref().unwrap_or("");
    if code == "model_not_found" || (status == 404 && e.param.as_deref() == Some("model")) {
        let reason =
            format!("{service} has no model `{}`{}: {}", sent.model, whence(sent.model_from, "model"), e.message);
        return (SkillError::invalid("model", reason), Lookup::Models);
    }
    if (400..500).contains(&status) {
        let field = e.param.as_deref().and_then(input_field).or_else(|| blames_voice(&e).then_some("voice"));
        if let Some(field) = field {
            let (reason, lookup) = match field {
                "voice" => (
                    format!(
                        "{service} refused voice `{}`{}: {}",
                        sent.voice,
                        whence(sent.voice_from, "voice"),
                        e.message
                    ),
                    Lookup::Voices,
                ),
                "model" => (
                    format!(
                        "{service} refused model `{}`{}: {}",
                        sent.model,
                        whence(sent.model_from, "model"),
                        e.message
                    ),
                    Lookup::Models,
                ),
                _ => (format!("{service} refused it: {}", e.message), Lookup::Nothing),
            };
            return (SkillError::invalid(field, reason), lookup);
        }
    }
    let hint = match status {
        401 | 403 => " (the server wants credentials: set `token` or `token-env` for this service in the c41 config)",
        _ => "",
    };
    (
        SkillError::backend(
            service,
            Some(status),
            format!("POST {SPEECH_PATH}: {}{hint}", or_reason(&e.message, Some(status))),
        ),
        Lookup::Nothing,
    )
}

/// A server that names no `param` but says the voice is wrong (Kokoro's
/// "Invalid voice: ..." inside `detail`).
fn blames_voice(e: &ApiError) -> bool {
    let m = e.message.to_ascii_lowercase();
    m.contains("voice") && (m.contains("invalid") || m.contains("not found") || m.contains("unknown"))
}

/// The message, or the status's reason phrase when the body said nothing.
fn or_reason(message: &str, status: Option<u16>) -> String {
    if !message.trim().is_empty() {
        return message.trim().to_string();
    }
    match status {
        Some(500) => "Internal Server Error".into(),
        Some(502) => "Bad Gateway".into(),
        Some(503) => "Service Unavailable".into(),
        Some(504) => "Gateway Timeout".into(),
        _ => "(empty reply)".into(),
    }
}

/// Names from `GET /v1/audio/voices` (`{"voices": [...]}` of strings, or of
/// objects with `id`/`name`) or `GET /v1/models` (`{"data": [{"id"}]}`).
pub fn names(listing: &Value) -> Vec<String> {
    let items = listing
        .get("voices")
        .or_else(|| listing.get("data"))
        .or_else(|| listing.get("models"))
        .and_then(Value::as_array)
        .or_else(|| listing.as_array());
    items
        .into_iter()
        .flatten()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            v => v.get("id").or_else(|| v.get("name")).and_then(Value::as_str).map(str::to_string),
        })
        .collect()
}

/// The reason for an unknown voice or model once the server's listing is
/// known: the value, where it came from, and what the server has instead
/// (replacing the server's own message, which may list the same names).
pub fn unknown(service: &str, what: &str, value: &str, from: Source, names: &[String]) -> String {
    format!("{service} has no {what} `{value}`{}; {what}s on this server: {}", whence(from, what), names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::resolve;
    use c41_kit::json;

    fn sent(input: Value, settings: Value) -> Speech {
        resolve(&input, &settings).unwrap()
    }

    fn invalid(e: SkillError) -> (String, String) {
        match e {
            SkillError::InvalidInput { field, reason } => (field, reason),
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    fn openai(param: Option<&str>, code: &str, message: &str) -> Vec<u8> {
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn server_fields_map_to_skill_fields() {
        let s = sent(json!({"text": "hi"}), json!({}));
        for (param, field) in
            [("input", "text"), ("response_format", "format"), ("speed", "speed"), ("instructions", "instructions")]
        {
            let (e, lookup) = explain("tts", 400, &openai(Some(param), "invalid_value", "Invalid value."), &s);
            let (f, why) = invalid(e);
            assert_eq!(f, field);
            assert!(why.contains("tts refused it: Invalid value."), "{why}");
            assert_eq!(lookup, Lookup::Nothing);
        }
    }

    #[test]
    fn unknown_voice_names_voice_and_asks_for_the_listing() {
        let s = sent(json!({"text": "hi"}), json!({"voice": "bob"}));
        let body =
            openai(Some("voice"), "invalid_value", "Invalid value: 'bob'. Supported values are: 'alloy', and 'ash'.");
        let (e, lookup) = explain("tts-box", 400, &body, &s);
        let (f, why) = invalid(e);
        assert_eq!(f, "voice");
        assert_eq!(lookup, Lookup::Voices);
        assert!(
            why.contains("`bob` (from settings.voice in the c41 config)") && why.contains("'alloy', and 'ash'"),
            "{why}"
        );
        let listed =
            unknown("tts-box", "voice", &s.voice, s.voice_from, &names(&json!({"voices": ["alloy", {"id": "ash"}]})));
        assert_eq!(
            listed,
            "tts-box has no voice `bob` (from settings.voice in the c41 config); voices on this server: alloy, ash"
        );

        // Kokoro-FastAPI: no param, the message says it.
        let kokoro = br#"{"detail":{"error":"validation_error","message":"Invalid voice: bob. Available voices: af_heart","type":"invalid_request_error"}}"#;
        let (e, lookup) = explain("kokoro", 400, kokoro, &s);
        assert_eq!((invalid(e).0.as_str(), lookup), ("voice", Lookup::Voices));
    }

    #[test]
    fn unknown_model_names_model() {
        let s = sent(json!({"text": "hi", "model": "tts-9"}), json!({}));
        let body = json!({"error": {"message": "The model `tts-9` does not exist or you do not have access to it.", "type": "invalid_request_error", "param": null, "code": "model_not_found"}});
        let (e, lookup) = explain("tts", 404, body.to_string().as_bytes(), &s);
        let (f, why) = invalid(e);
        assert_eq!((f.as_str(), lookup), ("model", Lookup::Models));
        assert!(why.starts_with("tts has no model `tts-9`:"), "{why}");
        assert_eq!(
            names(&json!({"object": "list", "data": [{"id": "tts-1"}, {"id": "tts-1-hd"}]})),
            ["tts-1", "tts-1-hd"]
        );
    }

    #[test]
    fn server_failures_are_backend_errors_with_status() {
        let s = sent(json!({"text": "hi"}), json!({}));
        let body = json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}});
        match explain("tts", 500, body.to_string().as_bytes(), &s).0 {
            SkillError::Backend { service, status, message } => {
                assert_eq!((service.as_str(), status), ("tts", Some(500)));
                assert!(message.starts_with("POST /v1/audio/speech: The server had an error"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A 4xx that blames nothing we know is the server's problem to report.
        match explain("tts", 401, &openai(None, "invalid_api_key", "Incorrect API key provided."), &s).0 {
            SkillError::Backend { status: Some(401), message, .. } => {
                assert!(message.contains("token-env"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        // Plain text from a proxy.
        match explain("tts", 502, b"", &s).0 {
            SkillError::Backend { status: Some(502), message, .. } => {
                assert_eq!(message, "POST /v1/audio/speech: Bad Gateway")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fastapi_validation_lists_map_too() {
        let s = sent(json!({"text": "hi"}), json!({}));
        let body = br#"{"detail":[{"loc":["body","speed"],"msg":"ensure this value is less than or equal to 4.0","type":"value_error.number.not_le"}]}"#;
        let (f, why) = invalid(explain("openedai", 422, body, &s).0);
        assert_eq!(f, "speed");
        assert!(why.contains("less than or equal to 4.0"), "{why}");
    }
}
