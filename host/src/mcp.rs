//! The MCP server (`c41 mcp`): every skill becomes a tool, so an agent such
//! as OpenClaw calls skills natively. This module only translates between
//! MCP and [`App`]: the sandbox, grants and limits are the same as for
//! `c41 run`.
//!
//! - `tools/list`: one tool per skill; its input schema is the skill's.
//! - `tools/call`: runs the skill. Progress and streamed text (an LLM's
//!   tokens) go out as `notifications/progress` when the caller sent a
//!   progress token, through a bounded [`Outbox`]: progress limited by time,
//!   text held to a budget (the skill waits when the client does not read). A cancel notification cancels the invocation (the skill
//!   gets to clean up, e.g. delete its ComfyUI job).
//! - The result's text ends with one `MEDIA:<absolute path>` line per file
//!   and tells the agent to repeat them in its reply: OpenClaw delivers a
//!   file only when the final reply carries that line. The structured
//!   content is the same object `c41 run --json` prints.

use crate::app::App;
use crate::cli::output::{failure_json, success_json};
use crate::events::{Discard, EventSink, Note, Outbox};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use std::sync::Arc;

/// Serves the skills of an [`App`] over MCP.
#[derive(Clone)]
pub struct McpServer {
    app: Arc<App>,
}

impl McpServer {
    /// A server for `app`'s skills.
    pub fn new(app: Arc<App>) -> Self {
        McpServer { app }
    }

    fn tools(&self) -> Vec<Tool> {
        self.app
            .catalog
            .iter()
            .map(|s| {
                let d = &s.description;
                let schema = match &d.input_schema {
                    serde_json::Value::Object(m) => m.clone(),
                    _ => serde_json::Map::new(),
                };
                let description = format!(
                    "{} Output: {} Files come back as MEDIA:<path> lines; repeat them in your reply to deliver the files.",
                    d.summary.trim_end_matches('.').to_string() + ".",
                    d.output
                );
                Tool::new(d.name.clone(), description, Arc::new(schema))
            })
            .collect()
    }
}

/// At most one progress notification per this interval (stage changes aside).
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// Most bytes of streamed text buffered for one call; beyond, the skill's
/// `text-delta` waits until the client read some.
pub const TEXT_BUDGET: usize = 1 << 20;

/// Sends a call's events from `outbox` to the client as progress on
/// `token`, in order, from one task, until the outbox is closed and empty or
/// the client is gone (then the outbox is abandoned, so the skill never waits
/// for it).
fn forward_progress(peer: Peer<RoleServer>, token: ProgressToken, outbox: Arc<Outbox>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // MCP wants progress to increase with every notification.
        let mut last = 0.0f64;
        while let Some((note, cost)) = outbox.next().await {
            let (fraction, message) = match note {
                Note::Progress(fraction, line) => (fraction, line),
                Note::Text(text) => (None, text),
            };
            let progress = fraction.map(|f| f as f64 * 100.0).unwrap_or(last).max(last + 0.001);
            last = progress;
            let note = ProgressNotificationParam::new(token.clone(), progress).with_total(100.0).with_message(message);
            if peer.notify_progress(note).await.is_err() {
                outbox.abandon();
                break;
            }
            outbox.sent(cost);
        }
    })
}

/// The tool result text: the outcome, then the MEDIA lines.
pub fn result_text(text: &str, files: &[std::path::PathBuf]) -> String {
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

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("c41", env!("CARGO_PKG_VERSION")).with_title("c41 skills"))
            .with_instructions(
                "Sandboxed skills: image and video generation on ComfyUI, routed local LLMs, and more. \
                 Files a tool makes come back as MEDIA:<absolute path> lines: repeat them in your final reply.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let skill = request.name.to_string();
        if self.app.catalog.get(&skill).is_none() {
            return Err(ErrorData::invalid_params(format!("no skill named `{skill}`"), None));
        }
        let input = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let outbox = Outbox::new(PROGRESS_INTERVAL, TEXT_BUDGET);
        let forwarder = context
            .meta
            .get_progress_token()
            .map(|token| forward_progress(context.peer.clone(), token, outbox.clone()));
        let events: Arc<dyn EventSink> = if forwarder.is_some() { outbox.clone() } else { Arc::new(Discard) };
        let result = self.app.invoke(&skill, input, events, context.ct.clone()).await;
        outbox.close();
        if let Some(f) = forwarder {
            // The sink is gone with the invocation; let the last notes out
            // before the result.
            let _ = f.await;
        }
        let result = match result {
            Ok(r) => {
                let files: Vec<_> = r.artifacts.iter().map(|a| a.path.clone()).collect();
                let mut out = CallToolResult::success(vec![ContentBlock::text(result_text(&r.text, &files))]);
                out.structured_content = Some(success_json(&skill, &r));
                out
            }
            Err(e) => {
                let mut out = CallToolResult::error(vec![ContentBlock::text(format!("{skill}: {e}"))]);
                out.structured_content = Some(failure_json(&skill, &e));
                out
            }
        };
        Ok(result.into())
    }
}
