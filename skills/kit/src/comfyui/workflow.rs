//! Workflow templates and their bindings.
//!
//! A template is an API-format graph exported from ComfyUI ("Export (API)").
//! A binding sidecar says which node inputs each skill parameter sets, so a
//! new workflow needs no code: ship the two JSON files, or put them in the
//! config. Bindings are checked against the graph when the workflow is
//! loaded, so a typo is reported as "binding `seed` → node 25: no such node"
//! before anything is sent to a server.
//!
//! Sidecar format (all keys but `bindings` optional):
//!
//! ```json
//! {
//!   "description": "Flux 2 Dev text→image",
//!   "required": ["prompt"],
//!   "bindings": {
//!     "prompt": [{"node": "4", "input": "text"}],
//!     "seed":   [{"node": "7", "input": "noise_seed"}],
//!     "steps":  [{"node": "10", "input": "steps"},
//!                {"node": "10", "input": "end_at_step", "scale": 0.5}],
//!     "negative_prompt": [{"title": "Negative", "input": "text"}]
//!   },
//!   "outputs": ["13"],
//!   "frames_step": 4
//! }
//! ```
//!
//! A target names a node by id (`node`) or by its title in the editor
//! (`title`, i.e. `_meta.title`). `scale` multiplies a numeric parameter
//! (a two-pass sampler switching at half the steps). The value sent keeps the
//! type of the template's value: an integer input gets a rounded integer, a
//! float input a float. `outputs` limits the downloads to those nodes;
//! without it every file of type `output` is downloaded. `frames_step` is
//! the frame-count rule of video models (`4` for Wan: 4n+1 frames).

use crate::SkillError;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// One node input a parameter sets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Node id in the graph.
    #[serde(default)]
    pub node: Option<String>,
    /// Or the node's title (`_meta.title`), resolved when loading.
    #[serde(default)]
    pub title: Option<String>,
    /// The input's name.
    pub input: String,
    /// Multiply a numeric parameter by this before setting it.
    #[serde(default)]
    pub scale: Option<f64>,
}

/// A binding sidecar, as shipped next to a template or written in settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// One line for people choosing a workflow.
    #[serde(default)]
    pub description: String,
    /// Parameters that must be given (`image` for image→video).
    #[serde(default)]
    pub required: Vec<String>,
    /// Parameter name → the inputs it sets.
    #[serde(default)]
    pub bindings: IndexMap<String, Vec<Target>>,
    /// Output nodes to download (default: every `output` file).
    #[serde(default)]
    pub outputs: Option<Vec<String>>,
    /// Valid frame counts are `k * frames_step + 1`.
    #[serde(default)]
    pub frames_step: Option<u32>,
    /// The nodes whose MODEL (output 0) LoRAs apply to: the model loaders.
    /// A workflow without it takes no `loras`.
    #[serde(default)]
    pub lora_after: Option<Vec<String>>,
    /// Only in settings: the graph itself (JSON text or a table).
    #[serde(default)]
    pub graph: Option<Value>,
}

/// A loaded, checked workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Its name (`flux2-dev`).
    pub name: String,
    /// Where it came from, for messages (`built-in`, `settings workflows.x`).
    pub source: String,
    /// One line for people.
    pub description: String,
    graph: Map<String, Value>,
    /// Parameter → resolved targets (node ids, never titles).
    bindings: IndexMap<String, Vec<Target>>,
    required: Vec<String>,
    outputs: Option<Vec<String>>,
    /// Valid frame counts are `k * frames_step + 1` (1: any count).
    pub frames_step: u32,
    lora_after: Vec<String>,
}

/// A LoRA to apply: its name as the server lists it, and how strongly.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, crate::schema::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lora {
    /// The LoRA as ComfyUI lists it (`c41/fox-1a2b3c4d_40_steps_00001_.safetensors`, from lora-train's data.lora, or a file in models/loras).
    #[schemars(length(min = 1, max = 400))]
    pub name: String,
    /// How strongly it applies to the model (1.0: as trained; negative inverts).
    #[serde(default = "full_strength")]
    #[schemars(range(min = -10, max = 10))]
    pub strength: f64,
}

fn full_strength() -> f64 {
    1.0
}

impl Lora {
    /// Check the names of `loras` (the input field `loras`): a LoRA is
    /// named as the server lists it. ComfyUI has no upload for models, so a
    /// file of this machine cannot be sent: say how to place it instead.
    pub fn check_all(loras: &[Lora]) -> Result<(), SkillError> {
        for (i, l) in loras.iter().enumerate() {
            let n = l.name.trim();
            if n.starts_with("artifact:") || n.starts_with('/') || n.starts_with('~') || n.contains("..") {
                return Err(SkillError::invalid(
                    format!("loras/{i}/name"),
                    format!(
                        "`{n}` is a file here, not a LoRA on the server: ComfyUI takes no model uploads; copy the \
                         .safetensors into ComfyUI/models/loras on the workstation and name it as it is listed there \
                         (a lora-train result is listed already when output/loras is a LoRA path)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A workflow with parameters applied, ready to submit.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The graph to send.
    pub graph: Value,
    /// Each parameter that was set, with the value the graph got at its
    /// first target (after scaling and type conversion), and each bound
    /// parameter left at the template's value.
    pub applied: Map<String, Value>,
    /// Parameters given but not bound by this workflow.
    pub ignored: Vec<String>,
    bindings: IndexMap<String, Vec<Target>>,
}

fn invalid(workflow: &str, source: &str, why: impl std::fmt::Display) -> SkillError {
    SkillError::invalid("workflow", format!("workflow `{workflow}` ({source}): {why}"))
}

/// Parse a graph given as JSON text or as a JSON object (from TOML).
fn parse_graph(v: &Value) -> Result<Map<String, Value>, String> {
    let v = match v {
        Value::String(text) => {
            serde_json::from_str::<Value>(text).map_err(|e| format!("graph is not valid JSON: {e}"))?
        }
        other => other.clone(),
    };
    let Value::Object(map) = v else {
        return Err("graph must be an API-format workflow: a JSON object of nodes".into());
    };
    // The UI format ("nodes": [...], "links": [...]) is a different thing.
    if map.contains_key("nodes") && map.contains_key("links") {
        return Err("graph is in the editor's format; export it with \"Export (API)\" instead".into());
    }
    for (id, node) in &map {
        if node.get("class_type").and_then(Value::as_str).is_none() {
            return Err(format!("node {id} has no class_type: not an API-format workflow"));
        }
    }
    Ok(map)
}

impl Workflow {
    /// Load and check a workflow: every binding must name a node that exists
    /// and an input that node has, holding a value (not a link).
    pub fn load(name: &str, source: &str, graph: &Value, sidecar: Sidecar) -> Result<Workflow, SkillError> {
        let graph = parse_graph(graph).map_err(|e| invalid(name, source, e))?;
        let mut bindings = IndexMap::new();
        for (param, targets) in sidecar.bindings {
            if targets.is_empty() {
                return Err(invalid(name, source, format!("binding `{param}` has no targets")));
            }
            let mut resolved = Vec::new();
            for t in targets {
                let id = match (&t.node, &t.title) {
                    (Some(id), _) => id.clone(),
                    (None, Some(title)) => {
                        let found: Vec<&String> = graph
                            .iter()
                            .filter(|(_, n)| n.pointer("/_meta/title").and_then(Value::as_str) == Some(title))
                            .map(|(id, _)| id)
                            .collect();
                        match found.as_slice() {
                            [one] => (*one).clone(),
                            [] => {
                                return Err(invalid(
                                    name,
                                    source,
                                    format!("binding `{param}` → node titled \"{title}\": no node has that title"),
                                ));
                            }
                            many => {
                                return Err(invalid(
                                    name,
                                    source,
                                    format!(
                                        "binding `{param}` → node titled \"{title}\": {} nodes have that title; use `node`",
                                        many.len()
                                    ),
                                ));
                            }
                        }
                    }
                    (None, None) => {
                        return Err(invalid(
                            name,
                            source,
                            format!("binding `{param}`: a target needs `node` or `title`"),
                        ));
                    }
                };
                let Some(node) = graph.get(&id) else {
                    let mut ids: Vec<&String> = graph.keys().collect();
                    ids.sort_by_key(|i| (i.parse::<u64>().unwrap_or(u64::MAX), i.to_string()));
                    let ids: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
                    return Err(invalid(
                        name,
                        source,
                        format!("binding `{param}` → node {id}: no such node (the graph has {})", ids.join(", ")),
                    ));
                };
                let class = node.get("class_type").and_then(Value::as_str).unwrap_or("?");
                let inputs = node.get("inputs").and_then(Value::as_object);
                let Some(current) = inputs.and_then(|i| i.get(&t.input)) else {
                    let have: Vec<&str> = inputs.map(|i| i.keys().map(String::as_str).collect()).unwrap_or_default();
                    return Err(invalid(
                        name,
                        source,
                        format!(
                            "binding `{param}` → node {id} ({class}) input `{}`: no such input (it has {})",
                            t.input,
                            if have.is_empty() { "none".to_string() } else { have.join(", ") }
                        ),
                    ));
                };
                if current.is_array() {
                    return Err(invalid(
                        name,
                        source,
                        format!(
                            "binding `{param}` → node {id} ({class}) input `{}`: it is linked to another node, not a value",
                            t.input
                        ),
                    ));
                }
                if t.scale.is_some() && !current.is_number() {
                    return Err(invalid(
                        name,
                        source,
                        format!("binding `{param}` → node {id} input `{}`: `scale` needs a numeric input", t.input),
                    ));
                }
                resolved.push(Target { node: Some(id), title: None, ..t });
            }
            bindings.insert(param, resolved);
        }
        for r in &sidecar.required {
            if !bindings.contains_key(r) {
                return Err(invalid(name, source, format!("`{r}` is required but not bound to any node")));
            }
        }
        for id in sidecar.lora_after.iter().flatten() {
            if !graph.contains_key(id) {
                return Err(invalid(name, source, format!("lora_after node {id}: no such node")));
            }
        }
        if let Some(outs) = &sidecar.outputs {
            for o in outs {
                if !graph.contains_key(o) {
                    return Err(invalid(name, source, format!("output node {o}: no such node")));
                }
            }
        }
        Ok(Workflow {
            name: name.to_string(),
            source: source.to_string(),
            description: sidecar.description,
            graph,
            bindings,
            required: sidecar.required,
            outputs: sidecar.outputs,
            frames_step: sidecar.frames_step.unwrap_or(1).max(1),
            lora_after: sidecar.lora_after.unwrap_or_default(),
        })
    }

    /// This workflow with `loras` applied: after each `lora_after` node, a
    /// chain of `LoraLoaderModelOnly` (one per LoRA, in order), and every
    /// node that used that node's MODEL uses the chain's instead. A backend
    /// that lacks a LoRA is then skipped like one that lacks a model file.
    pub fn with_loras(&self, loras: &[Lora]) -> Result<Workflow, SkillError> {
        if loras.is_empty() {
            return Ok(self.clone());
        }
        if self.lora_after.is_empty() {
            return Err(SkillError::invalid(
                "loras",
                format!(
                    "workflow `{}` ({}) does not say where LoRAs go: list its model loader node(s) in `lora_after` of its bindings",
                    self.name, self.source
                ),
            ));
        }
        let mut graph = self.graph.clone();
        let mut next = graph.keys().filter_map(|k| k.parse::<u64>().ok()).max().unwrap_or(0) + 1;
        for source in &self.lora_after {
            let mut model = json!([source, 0]);
            let mut chain = Vec::new();
            for l in loras {
                let id = next.to_string();
                next += 1;
                graph.insert(
                    id.clone(),
                    json!({"class_type": "LoraLoaderModelOnly",
                           "inputs": {"model": model, "lora_name": l.name, "strength_model": l.strength},
                           "_meta": {"title": format!("LoRA {}", l.name)}}),
                );
                model = json!([id, 0]);
                chain.push(id);
            }
            let from = json!([source, 0]);
            for (_, node) in graph.iter_mut().filter(|(id, _)| !chain.contains(id)) {
                for v in node.get_mut("inputs").and_then(Value::as_object_mut).into_iter().flat_map(|i| i.values_mut())
                {
                    if *v == from {
                        *v = model.clone();
                    }
                }
            }
        }
        Ok(Workflow { graph, ..self.clone() })
    }

    /// Load a built-in template and its sidecar, both JSON text embedded in
    /// the skill. A broken built-in is a bug in the skill.
    pub fn builtin(name: &str, graph: &str, sidecar: &str) -> Result<Workflow, SkillError> {
        let sidecar: Sidecar = serde_json::from_str(sidecar)
            .map_err(|e| SkillError::internal(format!("built-in workflow {name}: sidecar: {e}")))?;
        Workflow::load(name, "built-in", &Value::String(graph.to_string()), sidecar)
            .map_err(|e| SkillError::internal(format!("built-in {e}")))
    }

    /// Whether `param` sets anything.
    pub fn binds(&self, param: &str) -> bool {
        self.bindings.contains_key(param)
    }

    /// Parameters that must be given.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// The template's own value for `param` (its first target), which is
    /// what the job uses when the caller gives none.
    pub fn template_value(&self, param: &str) -> Option<&Value> {
        let t = self.bindings.get(param)?.first()?;
        self.graph.get(t.node.as_deref()?)?.get("inputs")?.get(&t.input)
    }

    /// Output nodes to download, if the sidecar limits them.
    pub fn outputs(&self) -> Option<&[String]> {
        self.outputs.as_deref()
    }

    /// The graph with `params` applied. Parameters the workflow does not
    /// bind are listed in `ignored`; a value of the wrong type is an
    /// invalid-input error naming the parameter.
    pub fn instantiate(&self, params: &Map<String, Value>) -> Result<Instance, SkillError> {
        let mut inst = Instance {
            graph: Value::Object(self.graph.clone()),
            applied: Map::new(),
            ignored: Vec::new(),
            bindings: self.bindings.clone(),
        };
        for (param, value) in params {
            if value.is_null() {
                continue;
            }
            if self.binds(param) {
                inst.set(param, value)?;
            } else {
                inst.ignored.push(param.clone());
            }
        }
        for param in self.bindings.keys() {
            if !inst.applied.contains_key(param)
                && let Some(v) = self.template_value(param)
            {
                inst.applied.insert(param.clone(), v.clone());
            }
        }
        Ok(inst)
    }
}

/// Convert `value` to the template's type, scaled.
fn convert(param: &str, value: &Value, current: &Value, scale: Option<f64>) -> Result<Value, SkillError> {
    let bad = |want: &str| SkillError::invalid(param, format!("expected {want}, got {value}"));
    Ok(match current {
        Value::Number(cur) => {
            let Some(x) = value.as_f64() else { return Err(bad("a number")) };
            if cur.is_f64() {
                Value::from(x * scale.unwrap_or(1.0))
            } else if scale.is_none() && (value.is_u64() || value.is_i64()) {
                // Seeds up to 2^64-1 must survive exactly.
                value.clone()
            } else {
                let v = (x * scale.unwrap_or(1.0)).round();
                if v >= 0.0 { Value::from(v as u64) } else { Value::from(v as i64) }
            }
        }
        Value::String(_) => match value {
            Value::String(_) => value.clone(),
            Value::Number(n) => Value::String(n.to_string()),
            _ => return Err(bad("a string")),
        },
        Value::Bool(_) => match value {
            Value::Bool(_) => value.clone(),
            _ => return Err(bad("true or false")),
        },
        _ => value.clone(),
    })
}

impl Instance {
    /// Set `param` on every input it is bound to (a no-op for unbound ones).
    pub fn set(&mut self, param: &str, value: &Value) -> Result<(), SkillError> {
        let Some(targets) = self.bindings.get(param) else {
            return Ok(());
        };
        let mut first = None;
        for t in targets {
            let node = t.node.as_deref().unwrap_or_default();
            let Some(slot) =
                self.graph.get_mut(node).and_then(|n| n.get_mut("inputs")).and_then(|i| i.get_mut(&t.input))
            else {
                continue;
            };
            let v = convert(param, value, slot, t.scale)?;
            *slot = v.clone();
            if first.is_none() {
                first = Some(v);
            }
        }
        if let Some(v) = first {
            self.applied.insert(param.to_string(), v);
        }
        Ok(())
    }

    /// The (node, input) pairs `param` sets, e.g. to leave uploads out of a
    /// capability check before they exist on the server.
    pub fn targets(&self, param: &str) -> Vec<(String, String)> {
        self.bindings
            .get(param)
            .map(|ts| ts.iter().map(|t| (t.node.clone().unwrap_or_default(), t.input.clone())).collect())
            .unwrap_or_default()
    }
}

/// The workflows a skill can run: its built-ins plus the user's from
/// settings (`workflows.<name> = { graph = ..., bindings = ... }`), which
/// may also replace a built-in of the same name.
#[derive(Debug, Clone)]
pub struct Library {
    builtins: Vec<(&'static str, &'static str, &'static str)>,
    user: Map<String, Value>,
}

/// A workflow entry whose `bindings` is a whole sidecar (what
/// `bindings-file = "x.bindings.json"` gives when the file is in the
/// documented sidecar format, `{description, required, bindings, outputs,
/// frames_step}`) is read as that sidecar; the entry's own keys win.
fn unwrap_sidecar(spec: &Value) -> Value {
    let mut spec = spec.clone();
    let Some(obj) = spec.as_object_mut() else { return spec };
    let nested = match obj.get("bindings") {
        Some(Value::Object(b)) if b.get("bindings").is_some_and(Value::is_object) => b.clone(),
        _ => return spec,
    };
    obj.remove("bindings");
    for (k, v) in nested {
        obj.entry(k).or_insert(v);
    }
    spec
}

impl Library {
    /// `builtins`: (name, graph JSON, sidecar JSON); `settings`: the skill's
    /// settings object.
    pub fn new(builtins: &[(&'static str, &'static str, &'static str)], settings: &Value) -> Library {
        let user = settings.get("workflows").and_then(Value::as_object).cloned().unwrap_or_default();
        Library { builtins: builtins.to_vec(), user }
    }

    /// Whether `name` is the user's own (from settings), not a built-in.
    pub fn is_user(&self, name: &str) -> bool {
        self.user.contains_key(name)
    }

    /// Every workflow name, built-ins first.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.builtins.iter().map(|(n, _, _)| n.to_string()).collect();
        for k in self.user.keys() {
            if !v.contains(k) {
                v.push(k.clone());
            }
        }
        v
    }

    /// Load and check one workflow by name.
    pub fn get(&self, name: &str) -> Result<Workflow, SkillError> {
        if let Some(spec) = self.user.get(name) {
            let source = format!("settings workflows.{name}");
            let spec = unwrap_sidecar(spec);
            let sidecar: Sidecar = serde_json::from_value(spec).map_err(|e| {
                invalid(
                    name,
                    &source,
                    format!(
                        "expected {{ graph, bindings, required?, outputs?, description?, frames_step? }}, where `bindings` (or the file `bindings-file` names) is either {{ param: [{{ node, input, scale? }}] }} or a whole sidecar {{ description?, required?, bindings, outputs?, frames_step? }} (examples/workflows/README.md): {e}"
                    ),
                )
            })?;
            let graph = match &sidecar.graph {
                Some(g) => g.clone(),
                None => {
                    // A user sidecar for a built-in graph: rebind without copying it.
                    match self.builtins.iter().find(|(n, _, _)| *n == name) {
                        Some((_, g, _)) => Value::String(g.to_string()),
                        None => return Err(invalid(name, &source, "no `graph`: paste the API-format JSON as `graph`")),
                    }
                }
            };
            return Workflow::load(name, &source, &graph, sidecar);
        }
        match self.builtins.iter().find(|(n, _, _)| *n == name) {
            Some((n, g, s)) => Workflow::builtin(n, g, s),
            None => Err(SkillError::invalid(
                "workflow",
                format!("no workflow named `{name}`; available: {}", self.names().join(", ")),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BUILTINS: &[(&str, &str, &str)] = &[
        (
            "flux2-dev",
            include_str!("../../../workflows/flux2_dev_t2i.json"),
            include_str!("../../../workflows/flux2_dev_t2i.bindings.json"),
        ),
        (
            "z-image-turbo",
            include_str!("../../../workflows/z_image_turbo_t2i.json"),
            include_str!("../../../workflows/z_image_turbo_t2i.bindings.json"),
        ),
        (
            "wan22-t2v",
            include_str!("../../../workflows/wan22_t2v.json"),
            include_str!("../../../workflows/wan22_t2v.bindings.json"),
        ),
        (
            "wan22-i2v",
            include_str!("../../../workflows/wan22_i2v.json"),
            include_str!("../../../workflows/wan22_i2v.bindings.json"),
        ),
    ];

    #[test]
    fn every_builtin_template_matches_its_bindings() {
        for (name, graph, sidecar) in BUILTINS {
            let wf = Workflow::builtin(name, graph, sidecar).unwrap_or_else(|e| panic!("{name}: {e}"));
            for p in ["prompt", "seed", "width", "height", "steps", "cfg"] {
                assert!(wf.binds(p), "{name} binds {p}");
            }
        }
    }

    #[test]
    fn loras_chain_between_each_model_loader_and_its_users() {
        let (_, g, s) = BUILTINS[2];
        let wf = Workflow::builtin("wan22-t2v", g, s).unwrap();
        let loras = [
            Lora { name: "a.safetensors".into(), strength: 0.8 },
            Lora { name: "b.safetensors".into(), strength: 1.0 },
        ];
        let with = wf.with_loras(&loras).unwrap();
        let g = &with.graph;
        // Two loaders (high and low noise), two LoRAs each.
        let chain: Vec<(&String, &Value)> =
            g.iter().filter(|(_, n)| n["class_type"] == "LoraLoaderModelOnly").collect();
        assert_eq!(chain.len(), 4);
        for (loader, user) in [("1", "5"), ("2", "6")] {
            let first = chain.iter().find(|(_, n)| n["inputs"]["model"] == json!([loader, 0])).unwrap();
            assert_eq!(first.1["inputs"]["lora_name"], "a.safetensors");
            assert_eq!(first.1["inputs"]["strength_model"], 0.8);
            let second = chain.iter().find(|(_, n)| n["inputs"]["model"] == json!([first.0, 0])).unwrap();
            assert_eq!(second.1["inputs"]["lora_name"], "b.safetensors");
            assert_eq!(g[user]["inputs"]["model"], json!([second.0, 0]), "the user takes the chain's end");
        }
        assert_eq!(wf.with_loras(&[]).unwrap().graph, wf.graph, "no LoRA, no change");
        // A user workflow that does not say where LoRAs go is refused.
        let sidecar: Sidecar = serde_json::from_value(json!({"bindings": {}})).unwrap();
        let user =
            Workflow::load("mine", "settings", &json!({"1": {"class_type": "UNETLoader", "inputs": {}}}), sidecar)
                .unwrap();
        let e = user.with_loras(&loras).unwrap_err().to_string();
        assert!(e.contains("lora_after") && e.contains("loras"), "{e}");
        let e = Lora::check_all(&[Lora { name: "artifact:1a2b3c4d".into(), strength: 1.0 }]).unwrap_err().to_string();
        assert!(e.contains("loras/0/name") && e.contains("models/loras"), "{e}");
    }

    #[test]
    fn values_keep_the_template_type_and_scale() {
        let (_, g, s) = BUILTINS[2];
        let wf = Workflow::builtin("wan22-t2v", g, s).unwrap();
        let params = json!({"steps": 25, "fps": 24, "seed": 18446744073709551615u64, "cfg": 5, "bogus": 1});
        let inst = wf.instantiate(params.as_object().unwrap()).unwrap();
        let g = &inst.graph;
        assert_eq!(g["10"]["inputs"]["end_at_step"], 13);
        assert_eq!(g["11"]["inputs"]["start_at_step"], 13);
        assert_eq!(g["13"]["inputs"]["fps"], 24.0);
        assert_eq!(g["10"]["inputs"]["noise_seed"], json!(18446744073709551615u64));
        assert_eq!(g["11"]["inputs"]["cfg"], 5.0);
        assert_eq!(inst.ignored, ["bogus"]);
        assert_eq!(inst.applied["frames"], 81, "unset parameters report the template's value");
        let bad = json!({"steps": "many"});
        assert!(wf.instantiate(bad.as_object().unwrap()).is_err());
    }

    #[test]
    fn bad_bindings_are_named() {
        let graph = json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "link": ["2", 0]}}});
        let load = |b: Value| {
            let sidecar: Sidecar = serde_json::from_value(json!({"bindings": b})).unwrap();
            Workflow::load("t", "test", &graph, sidecar).unwrap_err().to_string()
        };
        assert!(load(json!({"w": [{"node": "9", "input": "width"}]})).contains("binding `w` → node 9: no such node"));
        assert!(
            load(json!({"w": [{"node": "1", "input": "hieght"}]}))
                .contains("input `hieght`: no such input (it has width, link)")
        );
        assert!(load(json!({"w": [{"node": "1", "input": "link"}]})).contains("linked"));
        assert!(load(json!({"w": []})).contains("no targets"));
    }
}
