//! `c41 list [--json]`

use super::Ctx;
use crate::app::App;
use serde_json::{Value, json};
use std::process::ExitCode;

/// List the skills.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One skill as `c41 list --json` shows it.
pub fn skill_json(app: &App, name: &str) -> Value {
    let s = app.catalog.get(name).expect("listed skill exists");
    let in_force = app.grants_in_force(s);
    let (granted, ignored) = in_force.as_ref().cloned().unwrap_or_default();
    json!({
        "name": s.description.name,
        "version": s.description.version,
        "summary": s.description.summary,
        "origin": s.origin,
        "declares": s.description.services,
        "granted": granted.iter().map(|g| json!({"service": g.name, "kind": g.kind, "url": g.url})).collect::<Vec<_>>(),
        "granted_but_undeclared": ignored,
        "ungranted": in_force.err().map(|e| e.to_string()),
    })
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let app = ctx.app().await?;
        if self.json {
            let all: Vec<Value> = app.catalog.iter().map(|s| skill_json(&app, &s.description.name)).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
            return Ok(ExitCode::SUCCESS);
        }
        let rows: Vec<[String; 4]> = app
            .catalog
            .iter()
            .map(|s| {
                let name = &s.description.name;
                let granted = match app.grants_in_force(s) {
                    Ok((granted, _)) => Ok(granted),
                    Err(_) => Err(format!("(ungranted: run `c41 grant {name}`)")),
                };
                let grants = match granted {
                    Err(note) => note,
                    Ok(granted) if granted.is_empty() => "(none)".to_string(),
                    Ok(granted) => granted.iter().map(|g| g.name.clone()).collect::<Vec<_>>().join(","),
                };
                [s.description.name.clone(), s.description.version.clone(), grants, s.description.summary.clone()]
            })
            .collect();
        let header = ["SKILL".to_string(), "VERSION".into(), "GRANTED".into(), "SUMMARY".into()];
        let width = |i: usize| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        for r in std::iter::once(&header).chain(rows.iter()) {
            println!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
        }
        if app.config.path.is_none() {
            eprintln!("\nnote: no config file found, so no skill is granted any service; `c41 init` writes one");
        }
        Ok(ExitCode::SUCCESS)
    }
}
