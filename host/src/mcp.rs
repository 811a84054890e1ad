//! The MCP server (`c41 mcp`): every skill becomes a tool, so an agent such
//! as OpenClaw calls skills natively. This module only translates between
//! MCP and [`App`]: the sandbox, grants and limits are the same as for
//! `c41 run`.
//!
//! - `tools/list`: one tool per skill; its input schema is the skill's.
//! - `tools/call`: runs the skill. Progress and streamed text (an LLM's
//!   tokens) go out as `notifications/progress` when the caller sent a
//!   progress token. A cancel notification cancels the invocation (the skill
//!   gets to clean up, e.g. delete its ComfyUI job).
//! - The result's text ends with one `MEDIA:<absolute path>` line per file
//!   and tells the agent to repeat them in its reply: OpenClaw delivers a
//!   file only when the final reply carries that line. The structured
//!   content is the same object `c41 run --json` prints.

use crate::app::App;
use crate::cli::output::{failure_json, success_json};
use crate::events::{Event, EventSink};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use std::sync::Arc;
use tokio::sync::mpsc;

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

/// Forwards a skill's events to the MCP client as progress notifications,
/// in order, from one task.
struct McpProgress {
    tx: mpsc::UnboundedSender<Event>,
}

impl EventSink for McpProgress {
    fn emit(&self, _skill: &str, event: Event) {
        let _ = self.tx.send(event);
    }
}

fn forward_progress(
    peer: Peer<RoleServer>,
    token: ProgressToken,
    mut rx: mpsc::UnboundedReceiver<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // MCP wants progress to increase with every notification.
        let mut last = 0.0f64;
        while let Some(event) = rx.recv().await {
            let (fraction, message) = match event {
                Event::Progress { stage, fraction, step, message } => {
                    let mut m = stage;
                    if let Some((n, total)) = step {
                        m.push_str(&format!(" {n}/{total}"));
                    }
                    if let Some(text) = message {
                        m.push_str(": ");
                        m.push_str(&text);
                    }
                    (fraction, m)
                }
                Event::TextDelta(delta) => (None, delta),
                // Clients show progress messages as a log: say plainly that
                // the text so far no longer counts.
                Event::TextReset(reason) => (None, format!("\n[the text above is void: {reason}; starting over]\n")),
                Event::Preview { .. } => continue,
            };
            let progress = fraction.map(|f| f as f64 * 100.0).unwrap_or(last).max(last + 0.001);
            last = progress;
            let note = ProgressNotificationParam::new(token.clone(), progress).with_total(100.0).with_message(message);
            if peer.notify_progress(note).await.is_err() {
                break;
            }
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
        let (tx, rx) = mpsc::unbounded_channel();
        let forwarder =
            context.meta.get_progress_token().map(|token| forward_progress(context.peer.clone(), token, rx));
        let events = Arc::new(McpProgress { tx });
        let result = self.app.invoke(&skill, input, events, context.ct.clone()).await;
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
