//! `c41 init [--force] [--output-dir DIR]`

use super::Ctx;
use crate::config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write a starter config.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Overwrite an existing config.
    #[arg(long)]
    pub force: bool,
    /// Where artifacts should go [default: ~/.local/share/c41/output]
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let path = match ctx.config_path.clone().or_else(config::default_path) {
            Some(p) => p,
            None => anyhow::bail!("cannot tell where the config goes; pass --config FILE"),
        };
        if path.exists() && !self.force {
            eprintln!("error: {} already exists; pass --force to overwrite it", path.display());
            return Ok(ExitCode::from(2));
        }
        let out = self
            .output_dir
            .unwrap_or_else(|| dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("c41").join("output"));
        let text = config::starter_config(&out.display().to_string());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(std::path::Path::new(".")))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.persist(&path)?;
        println!("{}", path.display());
        eprintln!(
            "wrote a starter config; edit the service URLs, then run `c41 doctor` (and `c41 install` to compile the skills ahead of time)"
        );
        Ok(ExitCode::SUCCESS)
    }
}
