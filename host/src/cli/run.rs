//! `c41 run SKILL [--input JSON|@file] [key=value ...] [--json]`

use super::Ctx;
use super::output::{print_failure, print_success};
use super::progress::CliProgress;
use crate::app::RunError;
use crate::input;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Run a skill once.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  c41 run hello-http path=/index.html\n  c41 run comfyui-image --input '{\"prompt\":\"a red fox\"}' --json\n  c41 run comfyui-video --input @job.json"
)]
pub struct Args {
    /// The skill (see `c41 list`).
    pub skill: String,
    /// The input as a JSON object, or @FILE to read it from a file.
    #[arg(long, short, value_name = "JSON|@FILE")]
    pub input: Option<String>,
    /// Input fields as key=value (JSON values for non-string fields).
    #[arg(value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
    /// Print one JSON object instead of text and MEDIA: lines.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let mut app = ctx.app().await?;
        app.inputs_from_cwd = at_terminal();
        let Some(loaded) = app.catalog.get(&self.skill) else {
            let e = RunError::UnknownSkill {
                name: self.skill.clone(),
                suggestion: app.catalog.suggest(&self.skill).map(str::to_string),
            };
            return Ok(print_failure(&self.skill, &e, self.json));
        };
        let value = match input::from_cli(self.input.as_deref(), &self.fields, &loaded.description.input_schema) {
            Ok(v) => v,
            Err(e) => return Ok(print_failure(&self.skill, &RunError::Input(e), self.json)),
        };
        let progress = Arc::new(CliProgress::new(!self.json));
        let result = app.invoke(&self.skill, value, progress.clone(), cancel_on_ctrl_c()).await;
        progress.finish();
        Ok(match result {
            Ok(r) => print_success(&self.skill, &r, self.json, progress.streamed()),
            Err(e) => print_failure(&self.skill, &e, self.json),
        })
    }
}

/// Whether a person runs this command at a terminal: only then do file
/// inputs come from (and relative paths resolve against) the working
/// directory.
pub(super) fn at_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdin())
}

/// A token Ctrl-C cancels (the skill cleans up, e.g. removes its ComfyUI
/// job); a second Ctrl-C quits at once, leaving the run to `c41 resume`.
pub(super) fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ncancelling (Ctrl-C again to quit now; `c41 resume` picks the run up later)…");
            token.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    cancel
}
