//! `c41 serve [--listen ADDR] [--install]`: the Mac's always-on skill host
//! (see [`crate::serve`]).

use super::Ctx;
use crate::config::DEFAULT_LISTEN;
use crate::mcp::McpServer;
use crate::serve::{Guard, check_listen, router};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

const AFTER_HELP: &str = "\
One process for every agent session and script: the runtime, the run journal and the runs are
shared, and a run goes on when the client that started it goes away. SIGTERM records running runs
as interrupted; the next `c41 serve` on the same journal resumes them under their ids (a ComfyUI
job is followed on the server, not submitted again), so `wait` on such an id still answers.

MCP over Streamable HTTP at http://ADDR/mcp. OpenClaw:
  mcp.servers.c41 = {url: \"http://127.0.0.1:7411/mcp\", transport: \"streamable-http\"}
Only this daemon's own Host and Origin are accepted (no DNS rebinding). Listening beyond loopback
needs a token ([serve] token or token-env in the config), which every request then carries as
`Authorization: Bearer <token>`.

--install writes a launchd agent (macOS: ~/Library/LaunchAgents/dev.c41.serve.plist) or a systemd
user unit (Linux: ~/.config/systemd/user/c41-serve.service) that starts this command at login,
prints it and how to start it, and starts nothing.";

/// Serve every skill over MCP on HTTP, for every client on this machine.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Where to listen [default: `[serve] listen` in the config, else 127.0.0.1:7411].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Most invocations running at once; more calls wait for a free slot.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::runtime::MAX_POOL_INSTANCES)))]
    pub max_concurrent: u32,
    /// Write the service file that starts `c41 serve` at login (launchd on
    /// macOS, systemd on Linux), print it, and start nothing.
    #[arg(long)]
    pub install: bool,
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let config = ctx.config()?;
        let listen = match self.listen {
            Some(a) => a,
            None => {
                let text = config.config.serve.listen.as_ref().map(|l| l.get_ref().as_str()).unwrap_or(DEFAULT_LISTEN);
                match text.parse() {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("error: [serve] listen = {text:?}: {e} (write ADDRESS:PORT, e.g. 127.0.0.1:7411)");
                        return Ok(ExitCode::from(2));
                    }
                }
            }
        };
        let token = config.config.serve.token();
        if let Err(why) = check_listen(&listen, token.as_deref()) {
            eprintln!("error: {why}");
            return Ok(ExitCode::from(2));
        }
        if self.install {
            return install(config.path.as_deref(), &ctx.components, &listen);
        }
        let app = super::mcp::long_running_app(ctx, self.max_concurrent).await?;
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: cannot listen on {listen}: {e} (is another c41 serve running? --listen chooses another)"
                );
                return Ok(ExitCode::from(2));
            }
        };
        let bound = listener.local_addr()?;
        let server = McpServer::new(app.clone());
        // The daemon before this one (same journal) may have left runs
        // interrupted: they go on here, under their ids.
        if let Some(before) = app.runs.as_ref().and_then(|log| log.take_over_daemon()) {
            let resumed = server.resume_runs_of(before);
            if !resumed.is_empty() {
                eprintln!("c41 serve: resuming {} run(s) the last daemon left: {}", resumed.len(), resumed.join(", "));
            }
        }
        let routes = router(&app, server, Guard::new(&bound, token), CancellationToken::new());
        eprintln!("c41 serve: listening on http://{bound} (MCP at http://{bound}/mcp)");
        axum::serve(listener, routes).await?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Write the login service file for this OS and say how to start it: the
/// same `c41` with the same config and `--component`s, by absolute path.
fn install(config: Option<&Path>, components: &[PathBuf], listen: &SocketAddr) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let mut args = vec![exe.display().to_string()];
    if let Some(c) = config {
        args.extend(["--config".into(), std::path::absolute(c)?.display().to_string()]);
    }
    for c in components {
        args.extend(["--component".into(), std::path::absolute(c)?.display().to_string()]);
    }
    args.extend(["serve".into(), "--listen".into(), listen.to_string()]);
    let (path, text, start) = if cfg!(target_os = "macos") {
        let home = dirs::home_dir().ok_or_else(|| anyhow::anyhow!("no home directory"))?;
        let path = home.join("Library/LaunchAgents/dev.c41.serve.plist");
        let start = format!("launchctl load -w {}", path.display());
        (path, launchd_plist(&args), start)
    } else {
        let dir = dirs::config_dir().ok_or_else(|| anyhow::anyhow!("no config directory"))?;
        let path = dir.join("systemd/user/c41-serve.service");
        (path, systemd_unit(&args), "systemctl --user daemon-reload && systemctl --user enable --now c41-serve".into())
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::files::write_atomically(&path, text.as_bytes())?;
    println!("wrote {}:\n\n{text}", path.display());
    println!("Nothing was started. To start it now and at every login:\n  {start}");
    Ok(ExitCode::SUCCESS)
}

/// A systemd user unit running `args`.
fn systemd_unit(args: &[String]) -> String {
    let exec: Vec<String> =
        args.iter().map(|a| shlex::try_quote(a).map(|q| q.into_owned()).unwrap_or_default()).collect();
    format!(
        "[Unit]\nDescription=c41 skill host (c41 serve)\nAfter=network-online.target\n\n\
         [Service]\nExecStart={}\nRestart=on-failure\n# SIGTERM: running runs are recorded as interrupted; `c41 resume` picks them up.\nKillSignal=SIGTERM\n\n\
         [Install]\nWantedBy=default.target\n",
        exec.join(" ")
    )
}

/// A launchd agent running `args` at login, kept alive.
fn launchd_plist(args: &[String]) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let program: String = args.iter().map(|a| format!("    <string>{}</string>\n", escape(a))).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n  <key>Label</key>\n  <string>dev.c41.serve</string>\n  <key>ProgramArguments</key>\n  <array>\n{program}  </array>\n  \
         <key>RunAtLoad</key>\n  <true/>\n  <key>KeepAlive</key>\n  <true/>\n</dict>\n</plist>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_files_run_this_serve_with_its_config() {
        let args: Vec<String> =
            ["/opt/c41 bin/c41", "--config", "/home/me/c41.toml", "serve", "--listen", "127.0.0.1:7411"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let unit = systemd_unit(&args);
        assert!(
            unit.contains("ExecStart='/opt/c41 bin/c41' --config /home/me/c41.toml serve --listen 127.0.0.1:7411\n"),
            "{unit}"
        );
        assert!(unit.contains("WantedBy=default.target"));
        let plist = launchd_plist(&args);
        assert!(plist.contains("<string>/opt/c41 bin/c41</string>\n    <string>--config</string>"), "{plist}");
        assert!(plist.contains("<key>KeepAlive</key>"));
    }
}
