//! `c41 runs` and `c41 resume RUN`: the run journal (see `crate::runs`).

use super::Ctx;
use super::output::{print_failure, print_success};
use super::progress::CliProgress;
use crate::runs::{RunLog, RunRecord, Status};
use crate::runtime::RuntimeOptions;
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;

fn journal() -> anyhow::Result<RunLog> {
    let options = RuntimeOptions::with_default_cache();
    let root = crate::app::state_root(&options)
        .ok_or_else(|| anyhow::anyhow!("no place for the run journal: set C41_STATE_DIR or C41_CACHE_DIR"))?;
    Ok(RunLog::new(root.join("runs")))
}

fn age(ms: u64) -> String {
    let s = crate::files::now_ms().saturating_sub(ms) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// The recent runs: id, status, skill and what came of them. An
/// `interrupted` run's process died before it ended: `c41 resume ID`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  c41 runs\n  c41 runs --json -n 5\n  c41 resume 3f2a9c01")]
pub struct RunsArgs {
    /// How many runs to show, newest first.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl RunsArgs {
    pub(super) async fn run(self, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let log = journal()?;
        let runs: Vec<RunRecord> = log.list().into_iter().take(self.limit).collect();
        if self.json {
            let v: Vec<_> = runs
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    v["status"] = json!(r.status());
                    v
                })
                .collect();
            println!("{}", serde_json::Value::Array(v));
            return Ok(ExitCode::SUCCESS);
        }
        if runs.is_empty() {
            eprintln!("no runs recorded yet in {}", log.dir().display());
            return Ok(ExitCode::SUCCESS);
        }
        println!("{:<8}  {:<11}  {:<9}  {:<14}  RESULT", "RUN", "STATUS", "STARTED", "SKILL");
        for r in &runs {
            let result = match r.status() {
                Status::Ok => r.files.first().map(|f| f.display().to_string()).unwrap_or_else(|| "(no files)".into()),
                Status::Failed => r.error.clone().unwrap_or_default(),
                Status::Interrupted => {
                    format!("process {} ended mid-run: c41 resume {}", r.pid, &r.id[..8.min(r.id.len())])
                }
                Status::Running => match log.preview_of(&r.id) {
                    Some(p) => format!("in process {}; preview {}", r.pid, p.display()),
                    None => format!("in process {}", r.pid),
                },
            };
            let result: String = result.lines().next().unwrap_or("").chars().take(100).collect();
            println!(
                "{:<8}  {:<11}  {:<9}  {:<14}  {result}",
                &r.id[..8.min(r.id.len())],
                r.status().as_str(),
                age(r.started_ms),
                r.skill
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Continue a run that was interrupted (or failed): the same skill, input
/// and invocation id. A ComfyUI job that was submitted before the
/// interruption is followed on the server, not generated again.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run's id, or the start of it (`c41 runs` shows them).
    pub run: String,
    /// Print one JSON object instead of text and MEDIA: lines.
    #[arg(long)]
    pub json: bool,
    /// Resume even though the run's process still seems alive (its pid was
    /// reused by another program after a reboot, say).
    #[arg(long)]
    pub force: bool,
}

impl ResumeArgs {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let record = match journal()?.find(&self.run) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let short = &record.id[..8.min(record.id.len())];
        match record.status() {
            Status::Running if !self.force => {
                eprintln!(
                    "error: run {short} ({}) is still running in process {} (if that process is something else now, add --force)",
                    record.skill, record.pid
                );
                return Ok(ExitCode::from(2));
            }
            Status::Ok => {
                eprintln!("run {short} ({}) already finished; its files:", record.skill);
                for f in &record.files {
                    println!("MEDIA:{}", f.display());
                }
                return Ok(ExitCode::SUCCESS);
            }
            Status::Running | Status::Interrupted | Status::Failed => {}
        }
        // The config the run used, unless one is given now (--config or
        // C41_CONFIG): the same grants, and no guessing in a bare shell.
        let ctx = match (&ctx.config_path, &record.config) {
            (None, Some(recorded)) => {
                if !recorded.exists() {
                    eprintln!(
                        "error: run {short} ({}) used the config {}, which is missing now; restore it or pass --config FILE",
                        record.skill,
                        recorded.display()
                    );
                    return Ok(ExitCode::from(2));
                }
                &Ctx { config_path: Some(recorded.clone()), components: ctx.components.clone() }
            }
            _ => ctx,
        };
        eprintln!("resuming run {short} ({}) started {}", record.skill, age(record.started_ms));
        let mut app = ctx.app().await?;
        app.inputs_from_cwd = super::run::at_terminal();
        let progress = Arc::new(CliProgress::new(!self.json));
        let result = app.resume(&record, progress.clone(), super::run::cancel_on_ctrl_c()).await;
        progress.finish();
        Ok(match result {
            Ok(r) => print_success(&record.skill, &r, self.json, progress.streamed()),
            Err(e) => print_failure(&record.skill, &e, self.json),
        })
    }
}
