//! What a tool call answers: the text an agent reads (the outcome, then one
//! `MEDIA:<absolute path>` line per file), and a short `structuredContent`
//! with what an agent acts on: the status, the run id, the text, the files
//! and a short `data`. The full detail (backend URLs, routing tables,
//! timings) stays behind `c41 describe` and `c41 runs`: an agent pays for
//! every character of a tool result.

use super::runs::Snapshot;
use crate::app::RunError;
use crate::runs::{RunRecord, Status};
use crate::runtime::Invoked;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// A top-level `data` entry longer than this (as JSON) is left out of the
/// MCP result; its key is listed under `omitted`.
pub const DATA_ENTRY_MAX: usize = 240;

/// The tool result text: the outcome, then the MEDIA lines.
pub fn result_text(text: &str, files: &[PathBuf]) -> String {
    if files.is_empty() {
        return text.to_string();
    }
    let mut out = text.trim_end().to_string();
    out.push_str("\n\nTo deliver the files, put each of these lines, exactly, on its own line in your final reply:\n");
    for f in files {
        out.push_str(&format!("MEDIA:{}\n", f.display()));
    }
    out
}

/// `data` cut to what fits an agent's context: small top-level entries are
/// kept, big ones (tables, lists of backends) are named under `omitted`.
pub fn short_data(data: &Value) -> Value {
    let Value::Object(map) = data else {
        return if data.to_string().len() <= DATA_ENTRY_MAX { data.clone() } else { json!({"omitted": ["data"]}) };
    };
    let mut kept = Map::new();
    let mut omitted = Vec::new();
    for (k, v) in map {
        let empty = v.is_null() || v.as_array().is_some_and(Vec::is_empty) || v.as_object().is_some_and(Map::is_empty);
        if empty {
            continue;
        }
        if v.to_string().len() <= DATA_ENTRY_MAX {
            kept.insert(k.clone(), v.clone());
        } else {
            omitted.push(k.clone());
        }
    }
    if !omitted.is_empty() {
        kept.insert("omitted".into(), json!(omitted));
    }
    Value::Object(kept)
}

/// The final result of a run, as the original `tools/call` returns it (and
/// `wait`, and `tasks/get`, the same).
pub fn final_result(skill: &str, run: &str, result: &Result<Invoked, RunError>) -> CallToolResult {
    match result {
        Ok(r) => {
            let files: Vec<_> = r.artifacts.iter().map(|a| a.path.clone()).collect();
            let mut out = CallToolResult::success(vec![ContentBlock::text(result_text(&r.text, &files))]);
            out.structured_content = Some(json!({
                "status": "ok",
                "run": run,
                "skill": skill,
                "text": r.text,
                "files": r.artifacts.iter().map(|a| json!({"path": a.path, "mime": a.mime, "bytes": a.bytes})).collect::<Vec<_>>(),
                "data": short_data(&r.data),
            }));
            out
        }
        Err(e) => {
            let mut out = CallToolResult::error(vec![ContentBlock::text(format!("{skill}: {e}"))]);
            let mut error = json!({"kind": e.kind(), "fault": e.fault(), "message": e.to_string()});
            if let Some(field) = e.field() {
                error["field"] = json!(field);
            }
            out.structured_content = Some(json!({"status": "failed", "run": run, "skill": skill, "error": error}));
            out
        }
    }
}

/// One line saying where a running job stands: `sampling 12/30 (41%)`.
pub fn progress_line(p: &Snapshot) -> String {
    let mut line = p.stage.clone().unwrap_or_else(|| "starting".into());
    if let Some((n, m)) = p.step {
        line.push_str(&format!(" {n}/{m}"));
    }
    if let Some(f) = p.fraction {
        line.push_str(&format!(" ({:.0}%)", f * 100.0));
    }
    if let Some(m) = &p.message {
        line.push_str(": ");
        line.push_str(m);
    }
    line
}

/// The answer to a call that did not finish in time: a success that says
/// the job goes on and how to get its result.
///
/// MCP's progress notifications carry only numbers and a message, and a
/// running result is no place for a file the run has not finished: the
/// latest preview image is named by its path (`preview`), for a client that
/// can show a local file.
pub fn running_result(
    skill: &str,
    run: &str,
    progress: &Snapshot,
    preview: Option<&std::path::Path>,
) -> CallToolResult {
    let mut text = format!(
        "{skill} is still running (run {run}; {}): call c41__wait with {{\"run\": \"{run}\"}} to get its result; the files will follow. (c41__cancel with the same run stops it.)",
        progress_line(progress)
    );
    if let Some(p) = preview {
        text.push_str(&format!(" Latest preview image: {}", p.display()));
    }
    let mut out = CallToolResult::success(vec![ContentBlock::text(text)]);
    out.structured_content = Some(json!({
        "status": "running",
        "run": run,
        "skill": skill,
        "progress": {"stage": progress.stage, "fraction": progress.fraction, "step": progress.step, "message": progress.message},
        "preview": preview,
    }));
    out
}

/// The result of a run another process recorded in the journal: the same
/// text and MEDIA lines the original call gave (the journal keeps the text
/// and the files, not `data`).
pub fn journal_result(rec: &RunRecord) -> CallToolResult {
    let (skill, run) = (&rec.skill, &rec.id);
    match rec.status() {
        Status::Ok => {
            let text = rec.text.clone().unwrap_or_default();
            let out = CallToolResult::success(vec![ContentBlock::text(result_text(&text, &rec.files))]);
            structured(
                out,
                json!({
                    "status": "ok", "run": run, "skill": skill, "text": text,
                    "files": rec.files.iter().map(|p| json!({"path": p})).collect::<Vec<_>>(),
                }),
            )
        }
        Status::Failed => {
            let message = rec.error.clone().unwrap_or_default();
            let out = CallToolResult::error(vec![ContentBlock::text(format!("{skill}: {message}"))]);
            structured(out, json!({"status": "failed", "run": run, "skill": skill, "error": {"message": message}}))
        }
        Status::Interrupted => {
            let text = format!(
                "{skill} run {run} was interrupted: the c41 process running it (pid {}) ended before it did. `c41 resume {run}` continues it.",
                rec.pid
            );
            structured(
                CallToolResult::error(vec![ContentBlock::text(text)]),
                json!({"status": "interrupted", "run": run, "skill": skill}),
            )
        }
        Status::Running => {
            let text = format!(
                "{skill} is still running in another c41 process (run {run}, pid {}). Call c41__wait with {{\"run\": \"{run}\"}} again to get its result.",
                rec.pid
            );
            structured(
                CallToolResult::success(vec![ContentBlock::text(text)]),
                json!({"status": "running", "run": run, "skill": skill, "progress": {}}),
            )
        }
    }
}

/// A tool-level error (unknown run, bad arguments) the agent can read.
pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    let message = message.into();
    let mut out = CallToolResult::error(vec![ContentBlock::text(message.clone())]);
    out.structured_content = Some(json!({"status": "error", "error": {"message": message}}));
    out
}

/// `out` with `value` as its `structuredContent`.
fn structured(mut out: CallToolResult, value: Value) -> CallToolResult {
    out.structured_content = Some(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_data_keeps_small_entries_and_names_the_rest() {
        let routes: Vec<Value> = (0..40).map(|i| json!({"name": format!("route-{i}"), "url": "http://x"})).collect();
        let data = json!({"model": "qwen", "backend": "ollama", "routes": routes, "tool_calls": [], "thinking": null});
        let short = short_data(&data);
        assert_eq!(short, json!({"model": "qwen", "backend": "ollama", "omitted": ["routes"]}));
    }

    #[test]
    fn media_lines_follow_the_text() {
        let t = result_text("a fox", &[PathBuf::from("/out/fox.png")]);
        assert!(t.starts_with("a fox\n\n"), "{t}");
        assert!(t.ends_with("\nMEDIA:/out/fox.png\n"), "{t}");
        assert_eq!(result_text("plain", &[]), "plain");
    }
}
