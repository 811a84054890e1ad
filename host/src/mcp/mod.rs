//! The MCP server (`c41 mcp`): every skill becomes a tool, so an agent such
//! as OpenClaw calls skills natively. This module only translates between
//! MCP and [`App`]: the sandbox, grants and limits are the same as for
//! `c41 run`.
//!
//! - `tools/list`: one tool per skill (its input schema is the skill's),
//!   plus c41's own `wait`, `runs` and `cancel` ([`tools`]).
//! - `tools/call`: starts the skill as a run ([`runs`]) and waits for it up
//!   to `mcp.answer-within-secs`. Finished in time: the result. Not: a
//!   successful result saying it is still running and to call `c41__wait`;
//!   the run goes on here. Progress and streamed text go out as
//!   `notifications/progress` to whichever request listens ([`progress`]).
//!   A cancel notification for a call that still waits cancels the run.
//! - Clients that declare MCP tasks get a task instead ([`tasks`]).
//! - The result's text ends with one `MEDIA:<absolute path>` line per file
//!   and tells the agent to repeat them in its reply: OpenClaw delivers a
//!   file only when the final reply carries that line ([`results`]).
//! - Lines that are not JSON-RPC get the errors JSON-RPC prescribes
//!   ([`framing`]).

pub mod attach;
pub mod framing;
pub mod progress;
pub mod results;
pub mod runs;
pub mod tasks;
pub mod tools;

pub use results::result_text;
pub use tools::RESERVED_TOOL_NAMES;

use crate::app::App;
use crate::runtime::CANCEL_GRACE;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, CustomRequest, CustomResult,
    GetTaskParams, GetTaskResult, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use runs::{Registry, Run};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Serves the skills of an [`App`] over MCP.
#[derive(Clone)]
pub struct McpServer {
    app: Arc<App>,
    runs: Arc<Registry>,
    answer_within: Duration,
}

impl McpServer {
    /// A server for `app`'s skills; tool calls answer within the config's
    /// `mcp.answer-within-secs`.
    pub fn new(app: Arc<App>) -> Self {
        let answer_within = app.config.config.mcp.answer_within();
        let runs = Arc::new(Registry::new(crate::queue::JobQueue::for_config(&app.config.config)));
        McpServer { app, runs, answer_within }
    }

    /// The host whose skills this serves.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The runs started through this server (by any client).
    pub fn runs(&self) -> &Arc<Registry> {
        &self.runs
    }

    /// Resume the runs daemon process `pid` left interrupted, each under its
    /// own id, so clients that wait on them get their results; their ids.
    pub fn resume_runs_of(&self, pid: u32) -> Vec<String> {
        let Some(log) = self.app.runs.as_ref() else { return Vec::new() };
        log.interrupted_runs_of(pid)
            .into_iter()
            .map(|r| self.runs.resume(self.app.clone(), "restart", r).id.clone())
            .collect()
    }

    fn skill_tools(&self) -> Vec<Tool> {
        self.app
            .catalog
            .iter()
            .filter(|s| !RESERVED_TOOL_NAMES.contains(&s.description.name.as_str()))
            .map(|s| {
                let d = &s.description;
                let schema = match &d.input_schema {
                    serde_json::Value::Object(m) => m.clone(),
                    _ => serde_json::Map::new(),
                };
                let description = format!(
                    "{} Output: {} Files come back as MEDIA:<path> lines; repeat them in your reply to deliver the files. A long job answers `running` with a run id: then call c41__wait with it.",
                    d.summary.trim_end_matches('.').to_string() + ".",
                    d.output
                );
                Tool::new(d.name.clone(), description, Arc::new(schema))
            })
            .collect()
    }

    fn all_tools(&self) -> Vec<Tool> {
        let mut all = self.skill_tools();
        all.extend(tools::definitions());
        all
    }

    /// Wait up to `within` for `run`, forwarding its progress to this
    /// request meanwhile; its final result, or `running`. With
    /// `cancel_on_abort`, the request's cancellation cancels the run (the
    /// original call); without, it only ends the wait (`wait`).
    async fn await_run(
        &self,
        run: &Run,
        within: Duration,
        context: &RequestContext<RoleServer>,
        cancel_on_abort: bool,
    ) -> CallToolResult {
        let listener = context.meta.get_progress_token().map(|token| {
            let (id, outbox) = run.listen();
            (id, progress::forward_progress(context.peer.clone(), token, outbox))
        });
        let result = tokio::select! {
            r = run.wait(within) => r,
            _ = context.ct.cancelled() => {
                if cancel_on_abort {
                    run.cancel();
                    run.wait(CANCEL_GRACE + Duration::from_secs(2)).await
                } else {
                    None
                }
            }
        };
        if let Some((id, forwarder)) = listener {
            // Let the last notes out before the response.
            run.unlisten(id);
            let _ = forwarder.await;
        }
        match result {
            Some(r) => (*r).clone(),
            None => {
                let preview = self.app.runs.as_ref().and_then(|l| l.preview_of(&run.id));
                results::running_result(&run.skill, &run.id, &run.progress(), preview.as_deref())
            }
        }
    }

    fn task_run(&self, id: &str) -> Result<Arc<Run>, ErrorData> {
        self.runs.find(id).map_err(|e| ErrorData::invalid_params(format!("task {id}: {e}"), None))
    }
}

/// Who sent a request, for the queue's fairness: its Streamable HTTP session,
/// else the one client of a stdio server.
fn client_of(context: &RequestContext<RoleServer>) -> String {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id")?.to_str().ok())
        .map(|id| format!("mcp:{id}"))
        .unwrap_or_else(|| "mcp".into())
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_tasks().build())
            .with_server_info(Implementation::new("c41", env!("CARGO_PKG_VERSION")).with_title("c41 skills"))
            .with_instructions(
                "Sandboxed skills: image and video generation on ComfyUI, routed local LLMs, and more. \
                 Files a tool makes come back as MEDIA:<absolute path> lines: repeat them in your final reply. \
                 A job that takes long answers `running` with a run id: call c41__wait with that run to get its result.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.all_tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.all_tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let args = request.arguments.unwrap_or_default();
        match name.as_str() {
            "wait" => return Ok(tools::wait(self, &args, &context).await.into()),
            "runs" => return Ok(tools::runs(self, &args).into()),
            "cancel" => return Ok(tools::cancel(self, &args).await.into()),
            _ => {}
        }
        if self.app.catalog.get(&name).is_none() {
            return Err(ErrorData::invalid_params(format!("no skill named `{name}`"), None));
        }
        let run = self.runs.start(self.app.clone(), &client_of(&context), &name, Value::Object(args));
        if context.client_capabilities().is_some_and(|c| c.supports_tasks()) {
            return Ok(CallToolResponse::Task(tasks::created(&run)));
        }
        Ok(self.await_run(&run, self.answer_within, &context, true).await.into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(tasks::detailed(&*self.task_run(&request.task_id)?)))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_run(&request.task_id)?.cancel();
        Ok(())
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Err(ErrorData::invalid_params(format!("task {}: c41 tasks never ask for input", request.task_id), None))
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        if request.method != "tasks/result" {
            return Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                format!("no method `{}`", request.method),
                None,
            ));
        }
        let id = request.params.as_ref().and_then(|p| p["taskId"].as_str()).unwrap_or_default().to_string();
        let run = self.task_run(&id)?;
        tokio::select! {
            r = run.finished() => Ok(CustomResult::new(serde_json::to_value(&*r).unwrap_or_default())),
            _ = context.ct.cancelled() => Err(ErrorData::internal_error("tasks/result: the request was cancelled", None)),
        }
    }
}
