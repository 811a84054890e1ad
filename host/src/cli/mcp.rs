//! `c41 mcp`: serve the skills over MCP on stdin/stdout.

use super::Ctx;
use crate::app::App;
use crate::mcp::McpServer;
use crate::runtime::{PoolingOptions, RuntimeOptions};
use rmcp::ServiceExt;
use std::process::ExitCode;
use std::sync::Arc;

const AFTER_HELP: &str = "\
Long jobs: a tool call not finished within `mcp.answer-within-secs` (config, default 45) answers
successfully with {\"status\":\"running\",\"run\":\"<id>\",\"progress\":{...}} and the job goes on here.
The agent then calls c41__wait {run, within_secs?} for the final result (the same text and MEDIA:
lines the call would have returned), c41__runs to list runs, c41__cancel {run} to stop one. Runs of
other c41 processes (the run journal) can be waited on, read-only. Clients that declare MCP tasks
(io.modelcontextprotocol/tasks) get a task instead: tasks/get, tasks/result, tasks/cancel.

--attach relays stdio to a running `c41 serve` (URL default: http://<[serve] listen>/mcp, the
token from [serve]) instead of starting a runtime here: the session then shares the daemon's runs,
queue and journal, and its runs go on when the session ends.

OpenClaw starts MCP servers with a minimal environment: pass the config explicitly.
`c41 openclaw install` writes the entry; by hand:
  openclaw mcp add c41 --command c41 --arg mcp --arg --config --arg /abs/c41.toml --timeout 3600";

/// Serve every skill as an MCP tool over stdio (for OpenClaw and other agents).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Most invocations running at once (sizes the pooling allocator); more
    /// calls wait for a free slot, they never fail for lack of one.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::runtime::MAX_POOL_INSTANCES)))]
    pub max_concurrent: u32,
    /// Attach to a running `c41 serve` (its /mcp URL; default: the config's
    /// [serve] listen) instead of starting a runtime here.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub attach: Option<String>,
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        if let Some(url) = self.attach {
            let config = ctx.config()?;
            let url = match url.as_str() {
                "" => format!(
                    "http://{}/mcp",
                    config
                        .config
                        .serve
                        .listen
                        .as_ref()
                        .map(|l| l.get_ref().as_str())
                        .unwrap_or(crate::config::DEFAULT_LISTEN)
                ),
                _ => url,
            };
            let uri = match url.parse::<http::Uri>() {
                Ok(u) if matches!(u.scheme_str(), Some("http")) => u,
                _ => {
                    eprintln!("error: --attach {url:?}: give the daemon's MCP URL, e.g. http://127.0.0.1:7411/mcp");
                    return Ok(ExitCode::from(2));
                }
            };
            tracing::info!(%uri, "relaying MCP on stdio to c41 serve");
            crate::mcp::attach::attach(uri, config.config.serve.token()).await?;
            return Ok(ExitCode::SUCCESS);
        }
        let app = long_running_app(ctx, self.max_concurrent).await?;
        tracing::info!(skills = app.catalog.iter().count(), "serving skills over MCP on stdio");
        let service = McpServer::new(app).serve(crate::mcp::framing::stdio()).await?;
        service.waiting().await?;
        Ok(ExitCode::SUCCESS)
    }
}

/// The app of a long-running server (`c41 mcp`, `c41 serve`): instance slots
/// pre-reserved with the pooling allocator (sized for the largest memory
/// limit in the config), stopped gracefully on SIGTERM/SIGHUP, and every
/// component compiled in the background so that a first call rarely waits
/// (the tools are listed from their descriptions alone).
pub(super) async fn long_running_app(ctx: &Ctx, max_concurrent: u32) -> anyhow::Result<Arc<App>> {
    let config = ctx.config()?;
    let skills: Vec<String> = config.config.skills.keys().cloned().collect();
    let max_memory = skills
        .iter()
        .map(|s| config.limits_for(s).memory_bytes)
        .chain([config.limits_for("").memory_bytes])
        .max()
        .unwrap_or(512 << 20);
    let options = RuntimeOptions {
        pooling: Some(PoolingOptions { instances: max_concurrent, max_memory_bytes: max_memory }),
        ..RuntimeOptions::with_default_cache()
    };
    let app = Arc::new(App::new(config, options, &ctx.components).await?);
    super::shutdown::on_signals(&app);
    let warm = app.clone();
    tokio::spawn(async move {
        for skill in warm.catalog.iter() {
            if let Err(e) = skill.prepare().await {
                tracing::warn!(skill = %skill.description.name, "cannot compile: {e}");
            }
        }
    });
    Ok(app)
}
