//! `c41 grant SKILL`: record that the component now loaded as SKILL is the
//! one its `[skills.SKILL]` grants, settings and state belong to (path and
//! SHA-256, in the grants lock beside the config). Run it after installing
//! or rebuilding a skill you trust; until then a different binary under
//! that name gets nothing.

use super::Ctx;
use crate::config::pins::{self, Pin};
use crate::runtime::Origin;
use std::process::ExitCode;

/// Give SKILL's config entry to the component file now loaded under that name.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The skill (as `c41 list` shows it).
    pub skill: String,
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let app = ctx.app().await?;
        let Some(skill) = app.catalog.get(&self.skill) else {
            anyhow::bail!("no skill named `{}`; `c41 list` shows the skills", self.skill);
        };
        let Origin::File(file) = &skill.origin else {
            println!("`{}` is built into c41: its grants need no pin", self.skill);
            return Ok(ExitCode::SUCCESS);
        };
        let Some(config) = &app.config.path else {
            anyhow::bail!("no config file to grant in; `c41 init` writes one, or pass --config");
        };
        let pin = Pin { component: file.clone(), sha256: skill.sha256.clone() };
        let lock = pins::save(config, &self.skill, pin).map_err(anyhow::Error::msg)?;
        let (granted, _) = app.config.effective_grants(&self.skill, &skill.description.services);
        let names: Vec<&str> = granted.iter().map(|g| g.name.as_str()).collect();
        println!(
            "granted: [skills.{}] of {} now belongs to {} (sha256 {}); services: {}\nrecorded in {}",
            self.skill,
            config.display(),
            file.display(),
            skill.sha256,
            if names.is_empty() { "(none)".to_string() } else { names.join(", ") },
            lock.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
