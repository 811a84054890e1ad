//! Turning ComfyUI's error bodies into one sentence a person can act on.
//!
//! ComfyUI reports a bad workflow only in the 400 body of `POST /prompt`
//! (never over the websocket) and a failed run only as `execution_error`
//! with a Python exception. Both name node ids the user never saw, so every
//! message here adds the node's class and title, the input, the value sent
//! and, for a missing model file, what the server has instead.

use super::protocol::{ErrorInfo, NodeErrors, PromptRejected};
use serde_json::Value;

/// `#12 VAELoader "Load VAE"`: the id the server uses, plus what a person
/// recognises in the graph.
pub fn node_label(graph: &Value, id: &str, class_hint: &str) -> String {
    let node = graph.get(id);
    let class =
        node.and_then(|n| n.get("class_type")).and_then(Value::as_str).filter(|c| !c.is_empty()).unwrap_or(class_hint);
    let title = node.and_then(|n| n.pointer("/_meta/title")).and_then(Value::as_str);
    match title {
        Some(t) if t != class => format!("node {id} ({class} \"{t}\")"),
        _ => format!("node {id} ({class})"),
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => {
            let s = other.to_string();
            if s.len() > 120 { format!("{}...", &s[..117]) } else { s }
        }
    }
}

/// The allowed values of a combo input, from `extra_info.input_config`
/// (`[[choices...], {...}]` or `["COMBO", {"options": [...]}]`).
fn choices(extra: &Value) -> Option<Vec<String>> {
    let config = extra.get("input_config")?;
    let list = match config.get(0)? {
        Value::Array(a) => a.clone(),
        Value::String(s) if s == "COMBO" => config.get(1)?.get("options")?.as_array()?.clone(),
        _ => return None,
    };
    Some(list.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect())
}

/// One validation error of one node, as a clause.
fn explain(e: &ErrorInfo) -> String {
    let input = e.extra_info.get("input_name").and_then(Value::as_str);
    let received = e.extra_info.get("received_value");
    let reason = match e.kind.as_str() {
        "value_not_in_list" => {
            let sent = received.map(short).unwrap_or_else(|| "the value".into());
            let looks_like_file = received.and_then(Value::as_str).is_some_and(|s| s.contains('.') && !s.contains(' '));
            let what = if looks_like_file { "is not installed on the server" } else { "is not an allowed value" };
            match choices(&e.extra_info) {
                Some(c) if c.is_empty() => format!("{sent} {what}; the server has none"),
                Some(c) => format!("{sent} {what}; the server has: {}", c.join(", ")),
                // A long list is elided by the server; its details still name it.
                None => format!("{sent} {what} ({})", e.details),
            }
        }
        "required_input_missing" => "required input is missing".to_string(),
        "custom_validation_failed" => {
            // LoadImage & co.: the uploaded file is not where the node looks.
            format!("{} ({})", e.message, e.details)
        }
        _ => {
            let mut r = e.message.clone();
            if !e.details.is_empty() && !r.contains(&e.details) {
                r.push_str(&format!(" ({})", e.details));
            }
            if let Some(v) = received
                && !r.contains(&short(v))
            {
                r.push_str(&format!(", got {}", short(v)));
            }
            r
        }
    };
    let input = input.map(str::to_string).or_else(|| {
        // required_input_missing puts the input name in `details`.
        (e.kind == "required_input_missing" && !e.details.is_empty()).then(|| e.details.clone())
    });
    match input {
        Some(i) => format!("input `{i}`: {reason} [{}]", e.kind),
        None => format!("{reason} [{}]", e.kind),
    }
}

/// The message for a 400 reply to `POST /prompt`, naming every failing
/// node, its class, the input, the reason, and for a missing model file the
/// files the server has instead.
pub fn rejection_message(workflow: &str, graph: &Value, body: &str) -> String {
    let Ok(r) = serde_json::from_str::<PromptRejected>(body) else {
        return format!("the server rejected workflow `{workflow}`: {}", body.trim());
    };
    let mut parts = Vec::new();
    let mut ids: Vec<&String> = r.node_errors.keys().collect();
    ids.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string()));
    for id in ids {
        let Ok(n) = serde_json::from_value::<NodeErrors>(r.node_errors[id.as_str()].clone()) else {
            continue;
        };
        let label = node_label(graph, id, &n.class_type);
        for e in &n.errors {
            parts.push(format!("{label} {}", explain(e)));
        }
    }
    let head = format!("the server rejected workflow `{workflow}`");
    if !parts.is_empty() {
        return format!("{head}: {}", parts.join("; "));
    }
    match r.error {
        Some(e) => {
            // An unknown class (`invalid_prompt` on 0.3.x, `missing_node_type`
            // later) names the node only in details/extra_info.
            let node = e.extra_info.get("node_id").and_then(Value::as_str).map(str::to_string).or_else(|| {
                e.details.strip_prefix("Node ID '#").and_then(|s| s.strip_suffix('\'')).map(str::to_string)
            });
            // 0.3.x names an unknown class only in its message.
            let class = e
                .extra_info
                .get("class_type")
                .and_then(Value::as_str)
                .or_else(|| e.message.split_once("node ")?.1.strip_suffix(" does not exist."))
                .unwrap_or("");
            let mut m = format!("{head}: {}", e.message);
            if let Some(id) = node {
                m.push_str(&format!(" ({})", node_label(graph, &id, class)));
            } else if !e.details.is_empty() && e.details != e.message {
                m.push_str(&format!(" ({})", e.details));
            }
            if matches!(e.kind.as_str(), "invalid_prompt" | "missing_node_type") && m.contains("not") {
                m.push_str("; ");
                m.push_str(&missing_node_fix(class));
            }
            format!("{m} [{}]", e.kind)
        }
        None => format!("{head}: {}", body.trim()),
    }
}

/// The message for `execution_error`: the node, its class and the Python
/// exception, which is all ComfyUI knows.
pub fn execution_error_message(graph: &Value, data: &Value) -> String {
    let node = data.get("node_id").and_then(Value::as_str).unwrap_or("?");
    let class = data.get("node_type").and_then(Value::as_str).unwrap_or("");
    let ty = data.get("exception_type").and_then(Value::as_str).unwrap_or("exception");
    let msg = data.get("exception_message").and_then(Value::as_str).unwrap_or("").trim();
    format!("the job failed at {}: {ty}: {msg}", node_label(graph, node, class))
}

/// The message for `execution_interrupted`.
pub fn interrupted_message(graph: &Value, data: Option<&Value>) -> String {
    match data.and_then(|d| d.get("node_id")).and_then(Value::as_str) {
        Some(node) => {
            let class = data.and_then(|d| d.get("node_type")).and_then(Value::as_str).unwrap_or("");
            format!(
                "the job was interrupted on the server at {} (someone pressed Cancel in ComfyUI, or another client called /interrupt)",
                node_label(graph, node, class)
            )
        }
        None => "the job was interrupted on the server".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_model_names_file_and_alternatives() {
        let body = r#"{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": {"1": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "vae_name: 'flux2-vae.safetensors' not in ['pixel_space']", "extra_info": {"input_name": "vae_name", "input_config": [["pixel_space"], {}], "received_value": "flux2-vae.safetensors"}}], "dependent_outputs": ["4"], "class_type": "VAELoader"}}}"#;
        let graph = json!({"1": {"class_type": "VAELoader", "inputs": {"vae_name": "flux2-vae.safetensors"}}});
        let m = rejection_message("flux2-dev", &graph, body);
        assert!(m.contains("node 1 (VAELoader)"), "{m}");
        assert!(m.contains("input `vae_name`"), "{m}");
        assert!(m.contains("'flux2-vae.safetensors' is not installed"), "{m}");
        assert!(m.contains("the server has: pixel_space"), "{m}");
    }
}

/// Node classes that ship with ComfyUI itself, and the first release that
/// has them (read from ComfyUI's history: the release after the commit that
/// added each). A server without one is older, not missing a custom node.
const CORE_SINCE: &[(&str, &str)] = &[
    ("Flux2Scheduler", "releases newer than 0.3.64, with Flux 2 support"),
    ("EmptyFlux2LatentImage", "releases newer than 0.3.64, with Flux 2 support"),
    ("EmptyAudio", "0.3.61 and newer"),
    ("WanHuMoImageToVideo", "0.3.60 and newer"),
    ("AudioEncoderLoader", "0.3.53 and newer"),
    ("AudioEncoderEncode", "0.3.53 and newer"),
    ("Wan22ImageToVideoLatent", "0.3.46 and newer"),
    ("TrainLoraNode", "0.3.41 and newer"),
    ("SaveLoRANode", "0.3.41 and newer"),
    ("LoraModelLoader", "0.3.41 and newer"),
    ("LoadImageSetFromFolderNode", "0.3.41 and newer"),
    ("LoadImageTextSetFromFolderNode", "0.3.41 and newer"),
    ("LossGraphNode", "0.3.41 and newer"),
    ("CreateVideo", "0.3.31 and newer"),
    ("SaveVideo", "0.3.31 and newer"),
    ("WanImageToVideo", "0.3.16 and newer"),
    ("LoadAudio", "0.3.10 and newer"),
    ("SaveAudio", "0.3.10 and newer"),
];

/// How to get node class `class` onto a server that lacks it: update
/// ComfyUI for a core node (naming the release that has it), else install
/// the custom node pack.
pub fn missing_node_fix(class: &str) -> String {
    match CORE_SINCE.iter().find(|(c, _)| *c == class) {
        Some((_, since)) => format!(
            "{class} ships with ComfyUI itself ({since}): update ComfyUI on that server (`git pull` and restart, or the app's update), or use another backend"
        ),
        None if class.is_empty() => "install the custom node on the server or use another backend".to_string(),
        None => format!(
            "{class} is not part of ComfyUI: install the custom node pack that provides it on the server, or use another backend"
        ),
    }
}

#[cfg(test)]
mod fix_tests {
    use super::missing_node_fix;

    #[test]
    fn core_nodes_ask_for_an_update_custom_nodes_for_an_install() {
        let m = missing_node_fix("Flux2Scheduler");
        assert!(m.contains("ships with ComfyUI itself") && m.contains("update ComfyUI"), "{m}");
        assert!(missing_node_fix("WanHuMoImageToVideo").contains("0.3.60"));
        let m = missing_node_fix("MMAudioSampler");
        assert!(m.contains("custom node pack") && !m.contains("update ComfyUI"), "{m}");
    }
}
