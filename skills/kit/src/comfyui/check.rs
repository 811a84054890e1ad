//! Readiness: which workflows each granted backend can run, and what is
//! missing where one cannot (a node class, a model file) with how to fix
//! it. Runs nothing on the servers; `c41 doctor` asks every ComfyUI skill
//! for this through its `check` input.

use super::workflow::Library;
use super::{Backend, SERVICE_KIND, lacks};
use crate::{Outcome, SkillError, settings};
use serde_json::{Map, Value, json};

/// Check every workflow of `library` on every granted backend.
/// `file_params`: parameters filled by uploads (their template values are
/// placeholders, not files the server must have). `defaults`: the workflows
/// used when a caller names none; those and the user's own workflows are
/// expected to run somewhere, the other built-ins only if their models are
/// installed.
pub async fn check(library: &Library, file_params: &[&str], defaults: &[String]) -> Result<Outcome, SkillError> {
    settings::require_service(SERVICE_KIND)?;
    let services = settings::services_of_kind(SERVICE_KIND);
    let mut lines = Vec::new();
    let mut backends = Vec::new();
    // Workflow → runs on at least one backend.
    let mut runnable: Map<String, Value> = Map::new();
    let mut broken = Vec::new();
    let names = library.names();
    for s in services {
        let backend = Backend::new(s);
        let url = backend.service.url.clone();
        if let Err(e) = backend.queue_remaining().await {
            lines.push(format!("{:<14} unreachable ({url}): {e}", backend.name()));
            backends.push(json!({"name": backend.name(), "url": url, "reachable": false, "error": e.to_string()}));
            continue;
        }
        let mut checked = Vec::new();
        for name in &names {
            let wf = match library.get(name) {
                Ok(wf) => wf,
                Err(e) => {
                    if !broken.iter().any(|(n, _)| n == name) {
                        broken.push((name.clone(), e.to_string()));
                    }
                    continue;
                }
            };
            let instance = wf.instantiate(&Map::new())?;
            let skip: Vec<(String, String)> = file_params.iter().flat_map(|p| instance.targets(p)).collect();
            match lacks(&backend, &instance.graph, &skip).await {
                Ok(missing) if missing.is_empty() => {
                    lines.push(format!("{:<14} {name:<18} ready", backend.name()));
                    runnable.insert(name.clone(), Value::Bool(true));
                    checked.push(json!({"workflow": name, "ready": true}));
                }
                Ok(missing) => {
                    lines.push(format!("{:<14} {name:<18} missing {}", backend.name(), missing.join("; ")));
                    runnable.entry(name.clone()).or_insert(Value::Bool(false));
                    checked.push(json!({"workflow": name, "ready": false, "missing": missing}));
                }
                Err(e) => {
                    lines.push(format!("{:<14} {name:<18} cannot tell: {e}", backend.name()));
                    runnable.entry(name.clone()).or_insert(Value::Bool(false));
                    checked.push(json!({"workflow": name, "ready": false, "error": e.to_string()}));
                }
            }
        }
        backends.push(json!({"name": backend.name(), "url": url, "reachable": true, "workflows": checked}));
    }
    for (name, e) in &broken {
        lines.push(format!("workflow {name} is broken: {e}"));
    }
    // What a user will hit: a default or their own workflow that no backend
    // can run, or a workflow that does not load.
    let user_defined = |n: &str| library.is_user(n);
    let mut problems: Vec<String> = runnable
        .iter()
        .filter(|(n, ok)| *ok == &Value::Bool(false) && (defaults.iter().any(|d| d == *n) || user_defined(n)))
        .map(|(n, _)| format!("{n} cannot run on any granted backend"))
        .collect();
    problems.extend(broken.iter().map(|(n, _)| format!("{n} is broken")));
    if runnable.is_empty() && broken.is_empty() {
        problems.push("no granted ComfyUI backend is reachable".into());
    }
    let text = lines.join("\n");
    let data = json!({"ready": problems.is_empty(), "problems": problems, "defaults": defaults, "backends": backends});
    Ok(Outcome { text, artifacts: Vec::new(), data })
}
