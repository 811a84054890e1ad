//! The `c41` command line: global options and one file per subcommand.
//!
//! Data goes to stdout (outcomes, `MEDIA:` lines, `--json`); progress,
//! warnings and errors go to stderr. Exit codes: 0 success, 1 the skill ran
//! and failed (its error says whose fault), 2 usage, config or input errors.

mod check;
mod demo;
mod describe;
pub mod doctor;
mod export;
mod grant;
mod init;
mod install;
mod list;
mod mcp;
mod new;
mod openclaw;
pub mod output;
pub mod progress;
mod run;
mod runs;
mod serve;
mod shutdown;
mod sim;

use crate::app::App;
use crate::config::{self, LoadedConfig};
use crate::runtime::RuntimeOptions;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run AI-agent skills compiled to WebAssembly in a deny-by-default sandbox.
///
/// Each skill reaches only the services your config grants it (scheme, host
/// and port, matched exactly), within memory and time limits, and stores
/// what it makes as files in your output directory.
#[derive(Debug, Parser)]
#[command(name = "c41", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Config file [default: ~/.config/c41/c41.toml]
    #[arg(long, global = true, env = "C41_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Also load this skill component (.wasm); repeatable. It gets no grants
    /// unless the config names it under [skills.NAME] and either maps
    /// that file (`component = ...`) or `c41 grant <name>` recorded it.
    #[arg(long = "component", global = true, value_name = "PATH")]
    pub components: Vec<PathBuf>,

    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the skills, their versions and the services granted to them.
    List(list::Args),
    /// Show a skill's full description, including its input schema.
    Describe(describe::Args),
    /// Run a skill once and print its outcome and files.
    Run(run::Args),
    /// List recent runs; an interrupted one can be resumed.
    Runs(runs::RunsArgs),
    /// Continue an interrupted run (same input and id; a submitted ComfyUI job is followed, not redone).
    Resume(runs::ResumeArgs),
    /// Check that each configured service answers, and what is missing.
    Doctor(doctor::Args),
    /// Give a skill's config entry (grants, settings, state) to the component file now loaded under its name.
    Grant(grant::Args),
    /// Write a commented starter config for the Mac + workstation setup.
    Init(init::Args),
    /// Compile every skill now, so the first call of each starts at once.
    Install(install::Args),
    /// Check a component before you ship it: loads, imports, describe(), name, schema, services.
    Check(check::Args),
    /// Start a new skill crate (Cargo.toml, src/lib.rs with a test, README, config snippet).
    New(new::Args),
    /// Write an OpenClaw SKILL.md folder per skill (for agents using exec).
    ExportSkills(export::Args),
    /// Serve every skill as an MCP tool over stdio (for OpenClaw).
    Mcp(mcp::Args),
    /// Serve every skill over MCP on HTTP, for every agent and script on this machine.
    Serve(serve::Args),
    /// Set OpenClaw up to use c41: its MCP server entry and/or SKILL.md folders.
    Openclaw(openclaw::Args),
    /// Run the simulated studio (ComfyUI, Ollama, MMAudio, HuMo, TTS) in the foreground.
    Sim(sim::Args),
    /// Run every built-in skill once against the simulated studio.
    Demo(demo::Args),
}

impl Cli {
    /// Set up `tracing` on stderr: warnings by default, more with `-v`.
    pub fn init_logging(&self) {
        let default = match self.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},cranelift=warn,wasmtime=warn")));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init();
    }

    /// Run the subcommand.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let ctx = Ctx { config_path: self.config, components: self.components };
        match self.command {
            Command::List(a) => a.run(&ctx).await,
            Command::Describe(a) => a.run(&ctx).await,
            Command::Run(a) => a.run(&ctx).await,
            Command::Runs(a) => a.run(&ctx).await,
            Command::Resume(a) => a.run(&ctx).await,
            Command::Doctor(a) => a.run(&ctx).await,
            Command::Grant(a) => a.run(&ctx).await,
            Command::Init(a) => a.run(&ctx).await,
            Command::Install(a) => a.run(&ctx).await,
            Command::Check(a) => a.run(&ctx).await,
            Command::New(a) => a.run(&ctx).await,
            Command::Sim(a) => a.run(&ctx).await,
            Command::Mcp(a) => a.run(&ctx).await,
            Command::Serve(a) => a.run(&ctx).await,
            Command::Openclaw(a) => a.run(&ctx).await,
            Command::ExportSkills(a) => a.run(&ctx).await,
            Command::Demo(a) => a.run(&ctx).await,
        }
    }
}

/// What every subcommand gets from the global options.
pub struct Ctx {
    /// `--config` / `C41_CONFIG`.
    pub config_path: Option<PathBuf>,
    /// `--component` files.
    pub components: Vec<PathBuf>,
}

impl Ctx {
    /// Load the config (errors name file, line and key).
    pub fn config(&self) -> anyhow::Result<LoadedConfig> {
        Ok(config::load(self.config_path.as_deref())?)
    }

    /// Load the config, the engine and every skill.
    pub async fn app(&self) -> anyhow::Result<App> {
        let config = self.config()?;
        let options = RuntimeOptions::with_default_cache();
        let app = App::new(config, options, &self.components).await?;
        shutdown::on_signals(&app);
        for w in &app.catalog.warnings {
            eprintln!("warning: skipped a component in the skills directory: {w}");
        }
        Ok(app)
    }
}
