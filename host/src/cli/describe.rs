//! `c41 describe SKILL [--json]`

use super::Ctx;
use super::list::skill_json;
use crate::app::RunError;
use serde_json::{Value, json};
use std::process::ExitCode;

/// Describe one skill.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The skill.
    pub skill: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let app = ctx.app().await?;
        let Some(s) = app.catalog.get(&self.skill) else {
            let e = RunError::UnknownSkill {
                name: self.skill.clone(),
                suggestion: app.catalog.suggest(&self.skill).map(str::to_string),
            };
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        };
        let d = &s.description;
        let limits = app.config.limits_for(&d.name);
        if self.json {
            let mut v = skill_json(&app, &d.name);
            v["output"] = json!(d.output);
            v["input_schema"] = d.input_schema.clone();
            v["limits"] = json!({
                "memory_mb": limits.memory_bytes >> 20,
                "timeout_secs": limits.timeout.as_secs(),
                "max_artifact_mb": limits.max_artifact_bytes >> 20,
            });
            v["settings"] = Value::Object(app.config.settings_for(&d.name));
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(ExitCode::SUCCESS);
        }
        let in_force = app.grants_in_force(s);
        let (granted, ignored) = in_force.as_ref().cloned().unwrap_or_default();
        println!("{} {} ({})", d.name, d.version, s.origin);
        if let crate::runtime::Origin::File(_) = &s.origin {
            println!("sha256 {}", s.sha256);
        }
        println!("{}\n", d.summary);
        println!("Input:");
        for line in input_fields(d) {
            println!("  {line}");
        }
        println!("\nOutput:\n  {}", d.output);
        println!(
            "\nServices:\n  declares: {}",
            if d.services.is_empty() { "none".into() } else { d.services.join(", ") }
        );
        if let Err(e) = &in_force {
            println!("  granted:  none: {e}");
        } else if granted.is_empty() {
            println!("  granted:  none");
        }
        for g in &granted {
            println!("  granted:  {} = {}", g.name, g.url);
        }
        if !ignored.is_empty() {
            println!("  ignored:  {} (granted in the config, not declared by the skill)", ignored.join(", "));
        }
        let settings = app.config.config.skills.get(&d.name).map(|sc| sc.settings.clone()).unwrap_or_default();
        if settings.is_empty() {
            println!("\nSettings: none in the config (the skill's defaults apply)");
        } else {
            // As the user wrote them, e.g. llm-route's routes and aliases.
            println!("\nSettings in force ([skills.{}.settings]):", d.name);
            for line in toml::to_string(&settings).unwrap_or_default().lines() {
                println!("  {line}");
            }
        }
        println!(
            "\nLimits: {} MiB memory, {}s deadline, {} MiB per artifact",
            limits.memory_bytes >> 20,
            limits.timeout.as_secs(),
            limits.max_artifact_bytes >> 20
        );
        println!("\nInput schema:\n{}", serde_json::to_string_pretty(&d.input_schema)?);
        Ok(ExitCode::SUCCESS)
    }
}

/// One line per input field: `name: type [required, default, range]  description`.
pub fn input_fields(d: &crate::runtime::SkillDescription) -> Vec<String> {
    let required: Vec<&str> = d
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut lines = Vec::new();
    if let Some(props) = d.input_schema.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            let ty = p.get("type").map(|t| t.to_string().trim_matches('"').to_string()).unwrap_or_else(|| "any".into());
            let is_file = p.get("format").and_then(Value::as_str) == Some(crate::input::FILE_FORMAT);
            let ty = if is_file { "file (path or artifact:<sha256>)".into() } else { ty };
            let mut extra = Vec::new();
            if required.contains(&k.as_str()) {
                extra.push("required".to_string());
            }
            if let Some(d) = p.get("default") {
                extra.push(format!("default {d}"));
            }
            match (p.get("minimum"), p.get("maximum")) {
                (Some(lo), Some(hi)) => extra.push(format!("{lo}..={hi}")),
                (Some(lo), None) => extra.push(format!(">= {lo}")),
                (None, Some(hi)) => extra.push(format!("<= {hi}")),
                _ => {}
            }
            if let Some(e) = p.get("enum") {
                extra.push(format!("one of {e}"));
            }
            let extra = if extra.is_empty() { String::new() } else { format!(" [{}]", extra.join(", ")) };
            let desc = p.get("description").and_then(Value::as_str).unwrap_or("");
            lines.push(format!("{k}: {ty}{extra}  {desc}").trim_end().to_string());
        }
    }
    lines
}
