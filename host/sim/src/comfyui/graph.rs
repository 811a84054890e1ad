//! Execution order and cache keys, following ComfyUI's ExecutionList: outputs
//! are staged depth-first, and among ready nodes output nodes go first, then
//! nodes feeding an output directly, then two steps away. Clients never see
//! the order documented, only the event stream it produces, so matching it
//! keeps recorded event sequences comparable.

use super::validate::is_link;
use indexmap::{IndexMap, IndexSet};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

fn links(node: &Value) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    if let Some(inputs) = node.get("inputs").and_then(Value::as_object) {
        for val in inputs.values() {
            if is_link(val) {
                v.push((val[0].as_str().unwrap_or_default().to_string(), val[1].as_u64().unwrap_or(0)));
            }
        }
    }
    v
}

/// The order nodes run in, or `Err(remaining)` on a dependency cycle.
pub(crate) fn order(
    prompt: &IndexMap<String, Value>,
    outputs: &[String],
    is_output: &dyn Fn(&str) -> bool,
    cached: &HashSet<String>,
) -> Result<Vec<String>, Vec<String>> {
    let mut pending: IndexSet<String> = IndexSet::new();
    let mut block_count: HashMap<String, usize> = HashMap::new();
    let mut blocking: HashMap<String, IndexSet<String>> = HashMap::new();
    for o in outputs {
        add_node(prompt, o, cached, &mut pending, &mut block_count, &mut blocking);
    }
    let mut out = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<&String> = pending.iter().filter(|n| block_count.get(*n).copied().unwrap_or(0) == 0).collect();
        if ready.is_empty() {
            return Err(pending.into_iter().collect());
        }
        let blocks_output = |n: &String, depth: usize| -> bool {
            let first = blocking.get(n).into_iter().flatten();
            if depth == 1 {
                first.clone().any(|b| is_output(b))
            } else {
                first.flat_map(|b| blocking.get(b).into_iter().flatten()).any(|b| is_output(b))
            }
        };
        let pick = ready
            .iter()
            .find(|n| is_output(n))
            .or_else(|| ready.iter().find(|n| blocks_output(n, 1)))
            .or_else(|| ready.iter().find(|n| blocks_output(n, 2)))
            .unwrap_or(&ready[0])
            .to_string();
        pending.shift_remove(&pick);
        for to in blocking.get(&pick).cloned().unwrap_or_default() {
            if let Some(c) = block_count.get_mut(&to) {
                *c = c.saturating_sub(1);
            }
        }
        out.push(pick);
    }
    Ok(out)
}

fn add_node(
    prompt: &IndexMap<String, Value>,
    root: &str,
    cached: &HashSet<String>,
    pending: &mut IndexSet<String>,
    block_count: &mut HashMap<String, usize>,
    blocking: &mut HashMap<String, IndexSet<String>>,
) {
    let mut stack = vec![root.to_string()];
    let mut found = Vec::new();
    while let Some(u) = stack.pop() {
        if pending.contains(&u) {
            continue;
        }
        pending.insert(u.clone());
        block_count.insert(u.clone(), 0);
        blocking.insert(u.clone(), IndexSet::new());
        let Some(node) = prompt.get(&u) else { continue };
        for (from, _) in links(node) {
            if !cached.contains(&from) {
                stack.push(from.clone());
            }
            found.push((from, u.clone()));
        }
    }
    for (from, to) in found {
        if cached.contains(&from) {
            continue;
        }
        add_node(prompt, &from, cached, pending, block_count, blocking);
        if let Some(b) = blocking.get_mut(&from)
            && b.insert(to.clone())
        {
            *block_count.entry(to).or_insert(0) += 1;
        }
    }
}

/// Cache keys: a node's class, its literal inputs, the keys of the nodes it
/// reads from, and `salt` (the content of files a loader reads), so any
/// upstream change invalidates everything downstream, as in ComfyUI.
pub(crate) fn signatures(prompt: &IndexMap<String, Value>, salt: &dyn Fn(&str, &Value) -> u64) -> HashMap<String, u64> {
    let mut memo = HashMap::new();
    for id in prompt.keys() {
        sig(prompt, id, salt, &mut memo, &mut HashSet::new());
    }
    memo
}

fn sig(
    prompt: &IndexMap<String, Value>,
    id: &str,
    salt: &dyn Fn(&str, &Value) -> u64,
    memo: &mut HashMap<String, u64>,
    visiting: &mut HashSet<String>,
) -> u64 {
    if let Some(s) = memo.get(id) {
        return *s;
    }
    let Some(node) = prompt.get(id) else { return 0 };
    if !visiting.insert(id.to_string()) {
        return 0;
    }
    let mut h = DefaultHasher::new();
    let class = node["class_type"].as_str().unwrap_or_default();
    class.hash(&mut h);
    if let Some(inputs) = node.get("inputs").and_then(Value::as_object) {
        let mut keys: Vec<&String> = inputs.keys().collect();
        keys.sort();
        for k in keys {
            k.hash(&mut h);
            let v = &inputs[k];
            if is_link(v) {
                sig(prompt, v[0].as_str().unwrap_or_default(), salt, memo, visiting).hash(&mut h);
                v[1].as_u64().hash(&mut h);
            } else {
                v.to_string().hash(&mut h);
            }
        }
    }
    salt(class, node).hash(&mut h);
    let s = h.finish();
    visiting.remove(id);
    memo.insert(id.to_string(), s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_first_then_their_feeders() {
        let p: IndexMap<String, Value> = serde_json::from_value(json!({
            "1": {"class_type": "EmptyAudio", "inputs": {}},
            "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0]}},
            "3": {"class_type": "SaveAudioMP3", "inputs": {"audio": ["1", 0]}},
            "4": {"class_type": "EmptyImage", "inputs": {}},
            "5": {"class_type": "CreateVideo", "inputs": {"images": ["4", 0], "audio": ["1", 0]}},
            "6": {"class_type": "SaveVideo", "inputs": {"video": ["5", 0]}},
            "7": {"class_type": "PreviewAudio", "inputs": {"audio": ["1", 0]}},
        }))
        .unwrap();
        let outs = ["3", "7", "2", "6"].map(String::from);
        let is_out = |n: &str| ["2", "3", "6", "7"].contains(&n);
        let o = order(&p, &outs, &is_out, &HashSet::new()).unwrap();
        // As recorded from the real server for this prompt and output order.
        assert_eq!(o, ["1", "3", "7", "2", "4", "5", "6"]);
    }
}
