//! `c41 install`: compile every skill ahead of time, with a progress bar, so
//! the first call of each starts at once.

use super::Ctx;
use crate::runtime::CacheOutcome;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::process::ExitCode;

/// Precompile every skill (the built-ins and the config's components) into
/// the compiled-component cache.
#[derive(Debug, clap::Args)]
pub struct Args {}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let app = ctx.app().await?;
        let skills: Vec<_> = app.catalog.iter().collect();
        let bar = ProgressBar::with_draw_target(Some(skills.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} compiling [{bar:30}] {pos}/{len} {wide_msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let mut failed = 0;
        for skill in skills {
            let name = &skill.description.name;
            bar.set_message(name.clone());
            let line = match skill.prepare().await {
                Ok(CacheOutcome::Hit) => format!("{name}: already compiled"),
                Ok(CacheOutcome::Compiled) => format!("{name}: compiled"),
                Ok(CacheOutcome::Uncached) => format!("{name}: compiled (no cache directory: nothing kept)"),
                Err(e) => {
                    failed += 1;
                    format!("{name}: {e}")
                }
            };
            bar.suspend(|| println!("{line}"));
            bar.inc(1);
        }
        bar.finish_and_clear();
        match crate::runtime::ComponentCache::default_dir() {
            Some(dir) => eprintln!("compiled components are in {}", dir.display()),
            None => eprintln!("no cache directory: set C41_CACHE_DIR to keep compiled components"),
        }
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}
