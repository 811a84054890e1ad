//! Error replies of OpenAI-style servers (OpenAI itself, and the local
//! servers that copy its API: Kokoro-FastAPI, openedai-speech, llama.cpp,
//! vLLM), read into one shape so a skill can map the blamed `param` to its
//! own input field in its own words.
//!
//! OpenAI answers `{"error": {"message", "type", "param", "code"}}`;
//! Kokoro-FastAPI wraps a similar object in FastAPI's `detail`
//! (`{"detail": {"error": "validation_error", "message": ..., "type": ...}}`).
//! Pydantic's 422 lists are the `fastapi` module's.

use serde_json::Value;

/// The `error` object of an OpenAI-style reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What the server said (the whole object as JSON when it has no
    /// `message`).
    pub message: String,
    /// Its category (`invalid_request_error`, `server_error`).
    pub kind: Option<String>,
    /// The request field it blamed, if any.
    pub param: Option<String>,
    /// Its machine-readable code (`invalid_value`, `model_not_found`);
    /// llama.cpp's numeric code as text; Kokoro-FastAPI's `error` string.
    pub code: Option<String>,
}

/// Reads `{"error": {...}}` (OpenAI) or `{"detail": {"message": ...}}`
/// (Kokoro-FastAPI); `None` for any other body.
pub fn parse(body: &[u8]) -> Option<ApiError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v
        .get("error")
        .filter(|e| e.is_object())
        .or_else(|| v.get("detail").filter(|d| d.get("message").is_some_and(Value::is_string)))?;
    let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    Some(ApiError {
        message: s("message").unwrap_or_else(|| e.to_string()),
        kind: s("type"),
        param: s("param"),
        code: s("code").or_else(|| e.get("code").and_then(Value::as_i64).map(|n| n.to_string())).or_else(|| s("error")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openais_error_object() {
        let body = br#"{"error":{"message":"Invalid value: 'bob'.","type":"invalid_request_error","param":"voice","code":"invalid_value"}}"#;
        assert_eq!(
            parse(body),
            Some(ApiError {
                message: "Invalid value: 'bob'.".into(),
                kind: Some("invalid_request_error".into()),
                param: Some("voice".into()),
                code: Some("invalid_value".into()),
            })
        );
        let nulls =
            br#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#;
        let e = parse(nulls).unwrap();
        assert_eq!((e.param, e.code, e.kind.as_deref()), (None, None, Some("server_error")));
        let llama =
            parse(br#"{"error":{"code":400,"message":"model 'nope' not found","type":"invalid_request_error"}}"#)
                .unwrap();
        assert_eq!((llama.code.as_deref(), llama.message.as_str()), (Some("400"), "model 'nope' not found"));
        let bare = parse(br#"{"error":{"type":"x"}}"#).unwrap();
        assert_eq!(bare.message, r#"{"type":"x"}"#);
    }

    #[test]
    fn reads_kokoros_detail_object() {
        let body =
            br#"{"detail":{"error":"validation_error","message":"Invalid voice: bob","type":"invalid_request_error"}}"#;
        let e = parse(body).unwrap();
        assert_eq!(
            (e.message.as_str(), e.code.as_deref(), e.param),
            ("Invalid voice: bob", Some("validation_error"), None)
        );
    }

    #[test]
    fn other_bodies_are_not_openais() {
        assert_eq!(parse(br#"{"detail":[{"loc":["body","speed"],"msg":"x","type":"y"}]}"#), None);
        assert_eq!(parse(br#"{"detail":"nope"}"#), None);
        assert_eq!(parse(br#"{"error":"a string"}"#), None);
        assert_eq!(parse(b"Bad Gateway"), None);
    }
}
