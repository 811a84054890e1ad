//! c41's own tools beside the skills: `wait`, `runs` and `cancel` (in
//! OpenClaw `c41__wait`, `c41__runs`, `c41__cancel`). Their names are
//! reserved: no skill may take them ([`RESERVED_TOOL_NAMES`]).
//!
//! A run this server started is waited on, listed and cancelled here. A run
//! another c41 process started (found in the run journal) can be waited on
//! and listed, read-only: it is cancelled only where it runs.

use super::McpServer;
use super::results::{journal_result, progress_line, tool_error};
use super::runs::{LookupError, Run};
use crate::runs::{RunRecord, Status};
use crate::runtime::CANCEL_GRACE;
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use rmcp::service::RequestContext;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tool names c41 keeps for itself; a skill describing itself by one of
/// them is refused at load.
pub const RESERVED_TOOL_NAMES: &[&str] = crate::catalog::RESERVED;

/// How often a run of another process is looked up in the journal while
/// `wait` waits for it.
const JOURNAL_POLL: Duration = Duration::from_millis(250);

fn schema(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(JsonObject::new()),
    }
}

/// The definitions of `wait`, `runs` and `cancel`.
pub fn definitions() -> Vec<Tool> {
    let run =
        json!({"type": "string", "description": "The run id a `running` result named (a unique prefix is enough)."});
    vec![
        Tool::new(
            "wait",
            "Wait for a c41 run that answered `running`, then return its result exactly as the original call would have (text and MEDIA:<path> lines; repeat those in your reply), or `running` again if it is still going after within_secs.",
            schema(json!({
                "type": "object",
                "properties": {
                    "run": run,
                    "within_secs": {"type": "integer", "minimum": 0, "description": "Longest wait in seconds (default and cap: the server's mcp.answer-within-secs)."},
                },
                "required": ["run"],
                "additionalProperties": false,
            })),
        ),
        Tool::new(
            "runs",
            "List recent c41 runs (this server's and other c41 processes'): id, skill, status (running, ok, failed, cancelled, interrupted) and progress.",
            schema(json!({
                "type": "object",
                "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 50, "description": "How many (default 10)."}},
                "additionalProperties": false,
            })),
        ),
        Tool::new(
            "cancel",
            "Cancel a running c41 run (its remote job is removed too). Returns its result if it had already finished.",
            schema(json!({
                "type": "object",
                "properties": {"run": run},
                "required": ["run"],
                "additionalProperties": false,
            })),
        ),
    ]
}

fn run_arg(args: &JsonObject, tool: &str) -> Result<String, String> {
    match args.get("run").and_then(Value::as_str) {
        Some(r) if !r.trim().is_empty() => Ok(r.trim().to_string()),
        _ => Err(format!("{tool}: give `run`, the run id a `running` result named")),
    }
}

/// Where a run was found.
enum Found {
    Here(Arc<Run>),
    Elsewhere(Box<RunRecord>),
}

fn locate(server: &McpServer, id: &str) -> Result<Found, String> {
    match server.runs.find(id) {
        Ok(run) => Ok(Found::Here(run)),
        Err(e @ LookupError::Ambiguous(..)) => Err(e.to_string()),
        Err(LookupError::NotFound(_)) => match server.app.runs.as_ref().map(|log| log.find(id)) {
            Some(Ok(rec)) => Ok(Found::Elsewhere(Box::new(rec))),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(format!("no run `{id}` (this c41 keeps no run journal)")),
        },
    }
}

/// `wait {run, within_secs?}`.
pub async fn wait(server: &McpServer, args: &JsonObject, context: &RequestContext<RoleServer>) -> CallToolResult {
    let id = match run_arg(args, "wait") {
        Ok(id) => id,
        Err(e) => return tool_error(e),
    };
    let within = args
        .get("within_secs")
        .and_then(Value::as_u64)
        .map(Duration::from_secs)
        .unwrap_or(server.answer_within)
        .min(server.answer_within);
    match locate(server, &id) {
        Err(e) => tool_error(e),
        Ok(Found::Here(run)) => server.await_run(&run, within, context, false).await,
        Ok(Found::Elsewhere(rec)) => wait_journal(server, *rec, within, context).await,
    }
}

/// Follow a run of another process in the journal until it ends or
/// `within` passes. Read-only: the journal is never written here.
async fn wait_journal(
    server: &McpServer,
    mut rec: RunRecord,
    within: Duration,
    context: &RequestContext<RoleServer>,
) -> CallToolResult {
    let Some(log) = server.app.runs.as_ref() else { return journal_result(&rec) };
    let until = Instant::now() + within;
    while rec.status() == Status::Running && Instant::now() < until {
        tokio::select! {
            _ = tokio::time::sleep(JOURNAL_POLL.min(until.saturating_duration_since(Instant::now()))) => {}
            _ = context.ct.cancelled() => break,
        }
        match log.find(&rec.id) {
            Ok(r) => rec = r,
            Err(e) => return tool_error(format!("run {} left the journal while waiting: {e}", rec.id)),
        }
    }
    journal_result(&rec)
}

/// The status word of a run of this server.
fn status_of(run: &Run) -> String {
    let Some(r) = run.result() else { return "running".into() };
    let s = r.structured_content.as_ref();
    if s.is_some_and(|s| s["error"]["kind"] == "cancelled") {
        return "cancelled".into();
    }
    s.and_then(|s| s["status"].as_str()).unwrap_or("ended").to_string()
}

/// `runs {limit?}`.
pub fn runs(server: &McpServer, args: &JsonObject) -> CallToolResult {
    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(10).clamp(1, 50) as usize;
    let mut rows: Vec<Value> = server
        .runs
        .list()
        .iter()
        .map(|r| {
            let mut row = json!({"run": r.id, "skill": r.skill, "status": status_of(r), "started_ms": r.started_ms});
            if r.result().is_none() {
                row["progress"] = json!(progress_line(&r.progress()));
            }
            row
        })
        .collect();
    if let Some(log) = &server.app.runs {
        for rec in log.list() {
            if !rows.iter().any(|r| r["run"] == rec.id.as_str()) {
                rows.push(json!({
                    "run": rec.id, "skill": rec.skill, "status": rec.status().as_str(),
                    "started_ms": rec.started_ms, "pid": rec.pid,
                }));
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r["started_ms"].as_u64().unwrap_or(0)));
    rows.truncate(limit);
    let now = crate::files::now_ms();
    let mut text = String::new();
    for r in &rows {
        let age = now.saturating_sub(r["started_ms"].as_u64().unwrap_or(now)) / 1000;
        text.push_str(&format!(
            "{} {} {} (started {age}s ago){}\n",
            r["run"].as_str().unwrap_or(""),
            r["skill"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["progress"].as_str().map(|p| format!(": {p}")).unwrap_or_default(),
        ));
    }
    if rows.is_empty() {
        text.push_str("no runs yet\n");
    }
    let mut out = CallToolResult::success(vec![ContentBlock::text(text)]);
    out.structured_content = Some(json!({"runs": rows}));
    out
}

/// `cancel {run}`.
pub async fn cancel(server: &McpServer, args: &JsonObject) -> CallToolResult {
    let id = match run_arg(args, "cancel") {
        Ok(id) => id,
        Err(e) => return tool_error(e),
    };
    let run = match locate(server, &id) {
        Err(e) => return tool_error(e),
        Ok(Found::Elsewhere(rec)) if rec.status() == Status::Running => {
            return tool_error(format!(
                "run {} ({}) runs in another c41 process (pid {}): it can be waited on here, read-only, but cancelled only there",
                rec.id, rec.skill, rec.pid
            ));
        }
        Ok(Found::Elsewhere(rec)) => return journal_result(&rec),
        Ok(Found::Here(run)) => run,
    };
    run.cancel();
    match run.wait(CANCEL_GRACE + Duration::from_secs(2)).await {
        // It finished before the cancel took: hand out its files.
        Some(r) if status_of(&run) == "ok" => (*r).clone(),
        Some(r) => {
            let why = r.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default();
            let mut out = CallToolResult::success(vec![ContentBlock::text(format!(
                "Cancelled {} run {}. ({why})",
                run.skill, run.id
            ))]);
            out.structured_content = Some(json!({"status": status_of(&run), "run": run.id, "skill": run.skill}));
            out
        }
        None => {
            let mut out = CallToolResult::success(vec![ContentBlock::text(format!(
                "Asked {} run {} to stop; it is still cleaning up (c41__runs shows when it ends).",
                run.skill, run.id
            ))]);
            out.structured_content = Some(json!({"status": "cancelling", "run": run.id, "skill": run.skill}));
            out
        }
    }
}
