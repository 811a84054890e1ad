//! Error replies of FastAPI servers (the small wrappers the studio runs
//! around MMAudio, HuMo and similar models), turned into errors that name the
//! skill's own input field when the server blamed one.
//!
//! FastAPI answers `{"detail": "text"}` for an `HTTPException`, and
//! `{"detail": [{"loc": ["body", "duration"], "msg": "...", "type": "..."}]}`
//! for validation errors (422, or 400 from wrappers that check uploads).
//! Wrappers that check a field by hand often raise `HTTPException(400,
//! "video: not an MP4/MOV file")`: a string detail that starts with the field
//! it blames, which [`error`] attributes too.

use crate::SkillError;
use serde_json::Value;

/// One problem a FastAPI server reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The form or body field the server blamed (last element of `loc`),
    /// if any.
    pub field: Option<String>,
    /// The server's message.
    pub msg: String,
}

/// The problems in a FastAPI error body; a body that is not FastAPI's shape
/// becomes one problem carrying its text.
pub fn problems(body: &[u8]) -> Vec<Problem> {
    let text = || String::from_utf8_lossy(body).trim().to_string();
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return vec![Problem { field: None, msg: text() }];
    };
    match v.get("detail") {
        Some(Value::String(s)) => vec![Problem { field: None, msg: s.clone() }],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| {
                let field =
                    item.get("loc").and_then(Value::as_array).and_then(|loc| loc.last()).and_then(|f| match f {
                        Value::String(s) if s != "body" => Some(s.clone()),
                        _ => None,
                    });
                let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid").to_string();
                Problem { field, msg }
            })
            .collect(),
        _ => vec![Problem { field: None, msg: v.to_string() }],
    }
}

/// The error for a failed call to `service`: when a 4xx blamed a field
/// that `input_field` maps to one of the skill's inputs (the server's
/// `duration` is the skill's `seconds`, say), an invalid-input error naming
/// that input; otherwise a backend error with the status and every problem.
/// A field is blamed by a validation error's `loc`, or by a string detail of
/// the form `"<field>: <message>"`.
pub fn error(
    service: &str,
    status: u16,
    body: &[u8],
    input_field: impl Fn(&str) -> Option<&'static str>,
) -> SkillError {
    let problems = problems(body);
    if (400..500).contains(&status) {
        for p in &problems {
            let field = match p.field.as_deref() {
                Some(f) => input_field(f),
                None => p.msg.split_once(':').and_then(|(f, _)| input_field(f.trim())),
            };
            if let Some(input) = field {
                return SkillError::invalid(input, format!("{service} refused it: {}", p.msg));
            }
        }
    }
    let text: Vec<String> = problems
        .iter()
        .map(|p| match &p.field {
            Some(f) => format!("{f}: {}", p.msg),
            None => p.msg.clone(),
        })
        .collect();
    SkillError::backend(service, Some(status), text.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_detail_shapes() {
        let list = br#"{"detail":[{"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"},
                                  {"loc":["body","duration"],"msg":"ensure this value is greater than 0","type":"value_error.number.not_gt"}]}"#;
        assert_eq!(
            problems(list),
            vec![
                Problem { field: Some("prompt".into()), msg: "field required".into() },
                Problem { field: Some("duration".into()), msg: "ensure this value is greater than 0".into() },
            ]
        );
        assert_eq!(problems(br#"{"detail":"video: not an MP4/MOV file"}"#)[0].msg, "video: not an MP4/MOV file");
        assert_eq!(problems(b"Internal Server Error")[0], Problem { field: None, msg: "Internal Server Error".into() });
    }

    #[test]
    fn names_the_skill_input_when_it_can() {
        let body = br#"{"detail":[{"loc":["body","duration"],"msg":"ensure this value is less than or equal to 30","type":"value_error.number.not_le"}]}"#;
        let map = |f: &str| (f == "duration").then_some("seconds");
        match error("mmaudio", 422, body, map) {
            SkillError::InvalidInput { field, reason } => {
                assert_eq!(field, "seconds");
                assert!(reason.contains("less than or equal to 30"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        match error("mmaudio", 400, br#"{"detail":"duration: longer than the video"}"#, map) {
            SkillError::InvalidInput { field, reason } => {
                assert_eq!(field, "seconds");
                assert_eq!(reason, "mmaudio refused it: duration: longer than the video");
            }
            other => panic!("{other:?}"),
        }
        // An unknown prefix, or a 5xx, blames nothing.
        let e = error("mmaudio", 400, br#"{"detail":"upload failed: too big"}"#, map);
        assert_eq!(e, SkillError::backend("mmaudio", Some(400), "upload failed: too big"));
        let e = error("mmaudio", 500, br#"{"detail":"duration: encoder crashed"}"#, map);
        assert!(matches!(e, SkillError::Backend { status: Some(500), .. }), "{e:?}");
        match error("mmaudio", 500, br#"{"detail":"encoding failed: x"}"#, map) {
            SkillError::Backend { service, status, message } => {
                assert_eq!((service.as_str(), status), ("mmaudio", Some(500)));
                assert_eq!(message, "encoding failed: x");
            }
            other => panic!("{other:?}"),
        }
    }
}
