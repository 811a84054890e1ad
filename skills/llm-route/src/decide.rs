//! Which route (or explicit model) a request goes to, and why: the input's
//! `model` or `task` when given, else the deterministic rules, else the
//! optional classifier model, else the default route.

use crate::ask::Ask;
use crate::classify::{self, Classification};
use crate::config::Settings;
use crate::net::{self, Stop, Timeouts};
use crate::route::{self, Backend};
use c41_kit::progress::Progress;
use c41_kit::{SkillError, Value, json};
use std::time::Duration;

/// The route name, its candidate models in order, and the classification
/// (rule and reason) that chose them.
pub async fn decide(
    s: &Settings,
    backends: &[Backend],
    model: Option<&str>,
    task: Option<&str>,
    messages: &[Value],
    remaining_ms: u64,
) -> Result<(String, Vec<String>, Classification), SkillError> {
    let decided = if let Some(wanted) = model {
        let (route, models, why) = resolve_model(s, backends, wanted)?;
        let class = route.clone().or(task.map(str::to_string)).unwrap_or_else(|| "model".into());
        (class.clone(), models, Classification::new(&class, "model", why, json!({})))
    } else if let Some(task) = task {
        let name = s.route(task).map(|r| r.name).or_else(|| s.alias(task).filter(|a| s.routes.contains_key(a)));
        let Some(name) = name else {
            let known: Vec<&str> = s.routes.keys().map(String::as_str).collect();
            return Err(SkillError::invalid(
                "task",
                format!("no route called `{task}`; the routes are {}", known.join(", ")),
            ));
        };
        let r = s.route(&name).expect("route exists");
        (
            name.clone(),
            r.models,
            Classification::new(&name, "input.task", format!("the caller asked for `{task}`"), json!({})),
        )
    } else {
        let mut c = classify::by_rules(s, messages);
        let mut classifier_error = None;
        if c.is_none() && s.classifier.enabled {
            Progress::stage("route").fraction(0.02).message("asking the classifier model").report();
            match ask_classifier(s, backends, messages, remaining_ms).await {
                Ok(found) => c = Some(found),
                Err(e) => classifier_error = Some(e),
            }
        }
        let mut c = c.unwrap_or_else(|| {
            let d = s.default_route();
            Classification::new(&d, "default", "no rule matched; the default route", json!({}))
        });
        if let Some(e) = classifier_error {
            c.detail["classifier_error"] = json!(e);
        }
        let models = s.route(&c.class).map(|r| r.models).unwrap_or_default();
        (c.class.clone(), models, c)
    };
    Ok(decided)
}

/// Resolve the input `model`: an alias, a route name, or a model name.
/// Returns the route's name (if it names one) and the models to try.
fn resolve_model(
    s: &Settings,
    backends: &[Backend],
    wanted: &str,
) -> Result<(Option<String>, Vec<String>, String), SkillError> {
    let (target, via) = match s.alias(wanted) {
        Some(t) => (t.clone(), format!("alias `{wanted}` → `{t}`")),
        None => (wanted.to_string(), format!("`model` = `{wanted}`")),
    };
    if let Some(r) = s.route(&target) {
        return Ok((Some(r.name.clone()), r.models, format!("{via}, which names the route `{}`", r.name)));
    }
    let configured = s.models.contains_key(&target);
    let listed = backends.iter().any(|b| b.listed_as(&s.model(&target).id.unwrap_or_else(|| target.clone())).is_some());
    let unknowable = backends.iter().any(|b| b.listed.is_none());
    if !(configured || listed || unknowable) {
        let mut known: Vec<String> = s.aliases.keys().cloned().collect();
        known.extend(s.routes.keys().cloned());
        for b in backends {
            known.extend(b.listed.iter().flatten().cloned());
        }
        known.sort();
        known.dedup();
        return Err(SkillError::invalid(
            "model",
            format!(
                "no backend has a model called `{target}` and it is no alias or route; known: {}",
                known.join(", ")
            ),
        ));
    }
    Ok((None, vec![target], via))
}

/// Ask the classifier model which route fits; `Err` says why it could not.
async fn ask_classifier(
    s: &Settings,
    backends: &[Backend],
    messages: &[Value],
    remaining_ms: u64,
) -> Result<Classification, String> {
    let model = s.classifier.model.clone().ok_or("classifier.enabled is set but classifier.model is not")?;
    let names: Vec<String> = s.routes.keys().cloned().collect();
    let prompt = classify::classifier_prompt(s, &classify::last_user_text(messages));
    let msgs = vec![json!({"role": "user", "content": prompt})];
    let format =
        json!({"type": "object", "properties": {"class": {"type": "string", "enum": names}}, "required": ["class"]});
    let (cands, _) = route::candidates(s, std::slice::from_ref(&model), backends, false);
    let mut last = format!("no backend serves the classifier model `{model}`");
    for c in cands {
        let Some(b) = c.backend.map(|i| &backends[i]) else { continue };
        if b.down.is_some() {
            continue;
        }
        let keep_alive = s.model(&c.model).keep_alive.or(s.keep_alive.clone());
        let ask = Ask {
            model: &c.id,
            messages: &msgs,
            tools: None,
            format: Some(&format),
            temperature: Some(0.0),
            max_tokens: Some(64),
            think: None,
            keep_alive: keep_alive.as_ref(),
            stream: false,
        };
        let mut t = Timeouts::for_attempt(s, &c, remaining_ms);
        t.first_byte = t.first_byte.min(Duration::from_secs(s.classifier.timeout_secs.max(1)));
        match net::chat(b, &ask, t, |_, _| {}).await {
            Ok(a) => {
                return match classify::parse_classifier_answer(&a.reply.text, &names) {
                    Some(class) => Ok(Classification::new(
                        &class,
                        "classifier",
                        format!("the classifier model {} on {} chose it", c.model, b.name),
                        json!({"classifier_model": c.model}),
                    )),
                    None => Err(format!(
                        "the classifier model answered no known class: {}",
                        a.reply.text.chars().take(200).collect::<String>()
                    )),
                };
            }
            Err(Stop::Failed(f)) => last = format!("{} on {}: {} {}", c.model, b.name, f.outcome, f.message),
            Err(Stop::Abort(e)) => return Err(e.to_string()),
        }
    }
    Err(last)
}
