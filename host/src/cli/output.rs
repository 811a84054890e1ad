//! How outcomes and errors are printed: text for people (with one
//! `MEDIA:<absolute path>` line per file, which OpenClaw turns into an
//! attachment) or one JSON object with `--json`.
//!
//! `--json` success: `{"skill","ok":true,"text","artifacts":[{"path","mime",
//! "bytes","sha256"}],"data","invocation_id","elapsed_ms","denials"}`.
//! `--json` failure: `{"skill","ok":false,"error":{"kind","fault","message",
//! "field"?,"service"?,"status"?,"denials"?}}`. `kind` says what happened,
//! `fault` whose fault it was (input, grant, service, limit, caller, skill,
//! c41).

use crate::app::RunError;
use crate::runtime::{InvokeError, Invoked};
use c41_policy::Denial;
use serde_json::{Value, json};
use std::process::ExitCode;

fn denial_json(d: &Denial) -> Value {
    json!({
        "url": d.url,
        "reason": d.reason.to_string(),
        "message": d.to_string(),
        "closest_grant": d.closest.as_ref().map(|g| json!({"service": g.service, "url": g.url})),
    })
}

/// The `--json` object for a success.
pub fn success_json(skill: &str, r: &Invoked) -> Value {
    json!({
        "skill": skill,
        "ok": true,
        "text": r.text,
        "artifacts": r.artifacts.iter().map(|a| json!({
            "path": a.path, "mime": a.mime, "bytes": a.bytes, "sha256": a.sha256,
        })).collect::<Vec<_>>(),
        "data": r.data,
        "invocation_id": r.invocation_id,
        "elapsed_ms": r.elapsed.as_millis() as u64,
        "denials": r.denials.iter().map(denial_json).collect::<Vec<_>>(),
    })
}

/// The `--json` object for a failure.
pub fn failure_json(skill: &str, e: &RunError) -> Value {
    let mut error = json!({ "kind": e.kind(), "fault": e.fault(), "message": e.to_string() });
    if let Some(field) = e.field() {
        error["field"] = json!(field);
    }
    match e {
        RunError::Invoke(InvokeError::Backend { service, status, .. }) => {
            error["service"] = json!(service);
            error["status"] = json!(status);
        }
        RunError::Invoke(InvokeError::Denied { denials, .. }) if !denials.is_empty() => {
            error["denials"] = json!(denials.iter().map(denial_json).collect::<Vec<_>>());
        }
        _ => {}
    }
    json!({ "skill": skill, "ok": false, "error": error })
}

/// Print a success; `streamed` says the text already went out live.
pub fn print_success(skill: &str, r: &Invoked, as_json: bool, streamed: bool) -> ExitCode {
    if as_json {
        println!("{}", success_json(skill, r));
        return ExitCode::SUCCESS;
    }
    if streamed {
        println!();
    } else if !r.text.is_empty() {
        println!("{}", r.text);
    }
    for a in &r.artifacts {
        println!("MEDIA:{}", a.path.display());
    }
    for d in &r.denials {
        eprintln!("warning: {skill}: {d}");
    }
    ExitCode::SUCCESS
}

/// Print a failure to stderr (or the JSON object to stdout).
pub fn print_failure(skill: &str, e: &RunError, as_json: bool) -> ExitCode {
    if as_json {
        println!("{}", failure_json(skill, e));
    } else {
        eprintln!("error: {skill}: {e}");
        if let RunError::Invoke(InvokeError::Denied { denials, .. }) = e
            && let Some(d) = denials.first()
        {
            let hint = match &d.closest {
                Some(g) => format!("the grant `{}` allows only {}", g.service, g.url),
                None => "grant a service with that URL under [services] and list it in this skill's `grants`".into(),
            };
            eprintln!("  = help: {hint}");
        }
    }
    exit_code(e)
}

/// 2 for errors before the skill ran (usage, input), 1 for failures of a run.
pub fn exit_code(e: &RunError) -> ExitCode {
    match e {
        RunError::UnknownSkill { .. } | RunError::Input(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}
