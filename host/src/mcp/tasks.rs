//! MCP tasks for clients that declare them: the tasks extension
//! `io.modelcontextprotocol/tasks` (SEP-2663) as rmcp 3.11 implements it.
//! A `tools/call` from such a client answers at once with a task whose id is
//! the run id; `tasks/get` reports `working` (with the progress line) and
//! then the final tool result, `tasks/cancel` cancels the run. The
//! 2025-11-25 form's `tasks/result` (block until the result) is answered
//! too. Runs are the same [`Run`]s the deferred-result path uses, so
//! `c41__wait` and `c41__runs` see them as well; rmcp's own `TaskManager` is
//! not used, to keep one record of each run.

use super::results::progress_line;
use super::runs::Run;
use rmcp::model::{CallToolResult, CreateTaskResult, DetailedTask, Task, TaskPayload, TaskStatus};
use rmcp::task_manager::current_timestamp;

/// Suggested `tasks/get` polling interval.
pub const POLL_INTERVAL_MS: u64 = 1000;

fn task(run: &Run) -> Task {
    let mut t = Task::new(run.id.clone(), TaskStatus::Working, run.created_at.clone(), current_timestamp())
        .with_poll_interval_ms(POLL_INTERVAL_MS);
    if run.result().is_none() {
        t = t.with_status_message(format!("{}: {}", run.skill, progress_line(&run.progress())));
    }
    t
}

/// The answer to a `tools/call` from a client with tasks.
pub fn created(run: &Run) -> CreateTaskResult {
    CreateTaskResult::new(task(run))
}

/// Whether a final result is the `cancelled` error.
pub fn was_cancelled(result: &CallToolResult) -> bool {
    result.structured_content.as_ref().is_some_and(|s| s["error"]["kind"] == "cancelled")
}

/// The task as `tasks/get` reports it.
pub fn detailed(run: &Run) -> DetailedTask {
    let payload = match run.result() {
        None => TaskPayload::Working,
        Some(r) if was_cancelled(&r) => TaskPayload::Cancelled,
        Some(r) => match serde_json::to_value(&*r) {
            Ok(serde_json::Value::Object(result)) => TaskPayload::Completed { result },
            _ => TaskPayload::Failed { error: Default::default() },
        },
    };
    DetailedTask::new(task(run), payload)
}
