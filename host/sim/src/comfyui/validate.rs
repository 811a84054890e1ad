//! Prompt validation, following ComfyUI's `validate_prompt`/`validate_inputs`:
//! only nodes that lead to an output node are checked, and each error has the
//! real type, message, details and extra_info, because clients parse them.

use super::pyfmt;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The loaders whose file input is checked by their own VALIDATE_INPUTS
/// (so a missing file is `custom_validation_failed`, not `value_not_in_list`).
const CUSTOM_FILE_CHECK: &[(&str, &str, &str)] = &[
    ("LoadImage", "image", "Invalid image file"),
    ("LoadImageMask", "image", "Invalid image file"),
    ("LoadAudio", "audio", "Invalid audio file"),
    ("LoadVideo", "file", "Invalid video file"),
];

pub(crate) struct Accepted {
    pub outputs: Vec<String>,
    pub node_errors: Value,
}

pub(crate) struct Rejected {
    pub error: Value,
    pub node_errors: Value,
}

fn err(ty: &str, message: impl Into<String>, details: impl Into<String>, extra: Value) -> Value {
    json!({"type": ty, "message": message.into(), "details": details.into(), "extra_info": extra})
}

pub(crate) fn is_link(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.len() == 2 && a[0].is_string() && a[1].is_u64())
}

/// Validates `prompt` (and normalises literal values in place, as the real
/// server converts "64" to 64 before queueing). `input_exists` says whether
/// an input file (`name` or `sub/name`) is there, for the loaders that check
/// their file themselves.
pub(crate) fn validate(
    prompt: &mut IndexMap<String, Value>,
    catalogue: &Map<String, Value>,
    newer: bool,
    partial: Option<&[String]>,
    input_exists: &dyn Fn(&str) -> bool,
) -> Result<Accepted, Box<Rejected>> {
    let mut outputs = Vec::new();
    for (id, node) in prompt.iter() {
        let Some(class) = node.get("class_type").and_then(Value::as_str) else {
            return Err(Box::new(Rejected {
                error: err(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    format!("Node ID '#{id}'"),
                    json!({}),
                ),
                node_errors: json!({}),
            }));
        };
        let Some(def) = catalogue.get(class) else {
            let error = if newer {
                let title = node.pointer("/_meta/title").and_then(Value::as_str).unwrap_or(class);
                err(
                    "missing_node_type",
                    format!("Node '{title}' not found. The custom node may not be installed."),
                    format!("Node ID '#{id}'"),
                    json!({"node_id": id, "class_type": class, "node_title": title}),
                )
            } else {
                err(
                    "invalid_prompt",
                    format!("Cannot execute because node {class} does not exist."),
                    format!("Node ID '#{id}'"),
                    json!({}),
                )
            };
            return Err(Box::new(Rejected { error, node_errors: json!({}) }));
        };
        if def.get("output_node").and_then(Value::as_bool) == Some(true) && partial.is_none_or(|p| p.contains(id)) {
            outputs.push(id.clone());
        }
    }
    if outputs.is_empty() {
        return Err(Box::new(Rejected {
            error: err("prompt_no_outputs", "Prompt has no outputs", "", json!({})),
            node_errors: json!({}),
        }));
    }

    let mut v = Validator { prompt, catalogue, validated: HashMap::new(), input_exists };
    let mut good = Vec::new();
    let mut failed: Vec<(String, Vec<Value>)> = Vec::new();
    let mut node_errors: IndexMap<String, Value> = IndexMap::new();
    for o in &outputs {
        let (ok, reasons) = match v.node(o) {
            Ok(r) => r,
            Err(e) => {
                let reasons = vec![err(
                    "exception_during_validation",
                    "Exception when validating node",
                    e.details,
                    json!({"exception_type": e.ty, "traceback": []}),
                )];
                v.validated.insert(o.clone(), (false, reasons.clone()));
                (false, reasons)
            }
        };
        if ok {
            good.push(o.clone());
            continue;
        }
        failed.push((o.clone(), reasons));
        for (node_id, (valid, reasons)) in v.validated.iter() {
            if *valid || reasons.is_empty() {
                continue;
            }
            let entry = node_errors.entry(node_id.clone()).or_insert_with(|| {
                let class = v.prompt[node_id]["class_type"].clone();
                json!({"errors": reasons, "dependent_outputs": [], "class_type": class})
            });
            if let Some(d) = entry["dependent_outputs"].as_array_mut() {
                d.push(json!(o));
            }
        }
    }
    let node_errors = Value::Object(node_errors.into_iter().collect());
    if good.is_empty() {
        let details: Vec<String> = failed
            .iter()
            .flat_map(|(_, rs)| {
                rs.iter().map(|r| format!("{}: {}", pyfmt::str(&r["message"]), pyfmt::str(&r["details"])))
            })
            .collect();
        return Err(Box::new(Rejected {
            error: err(
                "prompt_outputs_failed_validation",
                "Prompt outputs failed validation",
                details.join("\n"),
                json!({}),
            ),
            node_errors,
        }));
    }
    Ok(Accepted { outputs: good, node_errors })
}

/// A Python exception escaping validation (a dangling link, say).
struct PyErr {
    ty: &'static str,
    details: String,
}

struct Validator<'a> {
    prompt: &'a mut IndexMap<String, Value>,
    catalogue: &'a Map<String, Value>,
    validated: HashMap<String, (bool, Vec<Value>)>,
    input_exists: &'a dyn Fn(&str) -> bool,
}

/// (input_type, extra_info, category) of one declared input.
fn input_info(def: &Value, name: &str) -> Option<(Value, Value, &'static str)> {
    for cat in ["required", "optional"] {
        if let Some(spec) = def.pointer(&format!("/input/{cat}/{name}")) {
            let arr = spec.as_array()?;
            let ty = arr.first().cloned().unwrap_or(Value::Null);
            let extra = arr.get(1).cloned().unwrap_or_else(|| json!({}));
            return Some((ty, extra, if cat == "required" { "required" } else { "optional" }));
        }
    }
    None
}

fn declared_inputs(def: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for cat in ["required", "optional"] {
        if let Some(order) = def.pointer(&format!("/input_order/{cat}")).and_then(Value::as_array) {
            names.extend(order.iter().filter_map(Value::as_str).map(String::from));
        } else if let Some(m) = def.pointer(&format!("/input/{cat}")).and_then(Value::as_object) {
            names.extend(m.keys().cloned());
        }
    }
    names
}

fn types_match(received: &str, wanted: &Value) -> bool {
    let Some(wanted) = wanted.as_str() else {
        // A combo fed by a link: only another combo (or a wildcard) fits.
        return received == "COMBO" || received == "*";
    };
    if received == wanted || received == "*" || wanted == "*" {
        return true;
    }
    let r: Vec<&str> = received.split(',').map(str::trim).collect();
    wanted.split(',').map(str::trim).any(|w| r.contains(&w))
}

fn py_int(v: &Value) -> Result<Value, String> {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
        Value::Number(n) => Ok(json!(n.as_f64().unwrap_or(0.0).trunc() as i64)),
        Value::Bool(b) => Ok(json!(i64::from(*b))),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(|i| json!(i))
            .map_err(|_| format!("invalid literal for int() with base 10: {}", pyfmt::repr_str(s))),
        other => Err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            py_type(other)
        )),
    }
}

fn py_float(v: &Value) -> Result<Value, String> {
    match v {
        Value::Number(n) => Ok(json!(n.as_f64().unwrap_or(0.0))),
        Value::Bool(b) => Ok(json!(if *b { 1.0 } else { 0.0 })),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(|f| json!(f))
            .map_err(|_| format!("could not convert string to float: {}", pyfmt::repr_str(s))),
        other => Err(format!("float() argument must be a string or a real number, not '{}'", py_type(other))),
    }
}

fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

impl Validator<'_> {
    fn node(&mut self, id: &str) -> Result<(bool, Vec<Value>), PyErr> {
        if let Some(r) = self.validated.get(id) {
            return Ok(r.clone());
        }
        let node = self.prompt[id].clone();
        let class = node["class_type"].as_str().unwrap_or_default().to_string();
        let def = self.catalogue[&class].clone();
        let empty = Map::new();
        let inputs = node.get("inputs").and_then(Value::as_object).unwrap_or(&empty).clone();
        let mut errors = Vec::new();
        let mut valid = true;
        let names = declared_inputs(&def);
        for x in &names {
            if let Some((_, _, "required")) = input_info(&def, x)
                && !inputs.contains_key(x)
            {
                errors.push(err(
                    "required_input_missing",
                    "Required input is missing",
                    x.clone(),
                    json!({"input_name": x}),
                ));
            }
        }
        let custom = CUSTOM_FILE_CHECK.iter().find(|(c, _, _)| *c == class);
        for x in &names {
            let Some(val) = inputs.get(x) else { continue };
            let (input_type, extra, _) = input_info(&def, x).unwrap_or((Value::Null, json!({}), "optional"));
            let info = json!([input_type, extra]);
            if let Value::Array(link) = val {
                if link.len() != 2 {
                    errors.push(err(
                        "bad_linked_input",
                        "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        x.clone(),
                        json!({"input_name": x, "input_config": info, "received_value": val}),
                    ));
                    continue;
                }
                let o_id = pyfmt::str(&link[0]);
                let Some(src) = self.prompt.get(&o_id) else {
                    return Err(PyErr { ty: "KeyError", details: pyfmt::repr_str(&o_id) });
                };
                let o_class = src["class_type"].as_str().unwrap_or_default().to_string();
                let outs =
                    self.catalogue.get(&o_class).and_then(|d| d["output"].as_array().cloned()).unwrap_or_default();
                let idx = link[1].as_u64().unwrap_or(u64::MAX) as usize;
                let Some(received) = outs.get(idx).and_then(Value::as_str).map(String::from) else {
                    return Err(PyErr { ty: "IndexError", details: "tuple index out of range".into() });
                };
                if !types_match(&received, &input_type) {
                    let shown = if input_type.is_string() { pyfmt::str(&input_type) } else { pyfmt::repr(&input_type) };
                    errors.push(err(
                        "return_type_mismatch",
                        "Return type mismatch between linked nodes",
                        format!("{x}, received_type({received}) mismatch input_type({shown})"),
                        json!({"input_name": x, "input_config": info, "received_type": received, "linked_node": val}),
                    ));
                    continue;
                }
                let (ok, _) = self.node(&o_id)?;
                if !ok {
                    valid = false;
                }
                continue;
            }
            let mut val = val.clone();
            if let Some(inner) = val.get("__value__").cloned() {
                val = inner;
            }
            let converted = match input_type.as_str() {
                Some("INT") => py_int(&val),
                Some("FLOAT") => py_float(&val),
                Some("STRING") => Ok(Value::String(pyfmt::str(&val))),
                Some("BOOLEAN") => Ok(json!(match &val {
                    Value::Bool(b) => *b,
                    Value::Null => false,
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::String(s) => !s.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty(),
                })),
                _ => Ok(val.clone()),
            };
            let val = match converted {
                Ok(v) => v,
                Err(ex) => {
                    let ty = pyfmt::str(&input_type);
                    errors.push(err(
                        "invalid_input_type",
                        format!("Failed to convert an input value to a {ty} value"),
                        format!("{x}, {}, {ex}", pyfmt::str(&val)),
                        json!({"input_name": x, "input_config": info, "received_value": val, "exception_message": ex}),
                    ));
                    continue;
                }
            };
            if let Some(n) = self.prompt.get_mut(id).and_then(|n| n.get_mut("inputs")).and_then(|i| i.get_mut(x)) {
                *n = val.clone();
            }
            // `folder_paths.exists_annotated_filepath`: the file is there,
            // listed or not (a file in a subfolder is not listed).
            if let Some((_, input_name, msg)) = custom.filter(|(_, input, _)| input == x) {
                if !val.as_str().is_some_and(|name| (self.input_exists)(name)) {
                    errors.push(err(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        format!("{input_name} - {msg}: {}", pyfmt::str(&val)),
                        json!({"input_name": input_name}),
                    ));
                }
                continue;
            }
            if let (Some(min), Some(v)) = (extra.get("min").and_then(as_f64), as_f64(&val))
                && v < min
            {
                errors.push(err(
                    "value_smaller_than_min",
                    format!("Value {} smaller than min of {}", pyfmt::str(&val), pyfmt::str(&extra["min"])),
                    x.clone(),
                    json!({"input_name": x, "input_config": info, "received_value": val}),
                ));
                continue;
            }
            if let (Some(max), Some(v)) = (extra.get("max").and_then(as_f64), as_f64(&val))
                && v > max
            {
                errors.push(err(
                    "value_bigger_than_max",
                    format!("Value {} bigger than max of {}", pyfmt::str(&val), pyfmt::str(&extra["max"])),
                    x.clone(),
                    json!({"input_name": x, "input_config": info, "received_value": val}),
                ));
                continue;
            }
            if input_type.is_array() || input_type.as_str() == Some("COMBO") {
                let options = combo_options(&input_type, &extra);
                if !options.contains(&val) {
                    let (list_info, config) = if options.len() > 20 {
                        (format!("(list of length {})", options.len()), Value::Null)
                    } else {
                        (pyfmt::repr(&Value::Array(options.clone())), info.clone())
                    };
                    errors.push(err(
                        "value_not_in_list",
                        "Value not in list",
                        format!("{x}: '{}' not in {list_info}", pyfmt::str(&val)),
                        json!({"input_name": x, "input_config": config, "received_value": val}),
                    ));
                }
            }
        }
        let r = (errors.is_empty() && valid, errors);
        self.validated.insert(id.to_string(), r.clone());
        Ok(r)
    }
}

fn combo_options(input_type: &Value, extra: &Value) -> Vec<Value> {
    match input_type {
        Value::Array(a) => a.clone(),
        _ => extra.get("options").and_then(Value::as_array).cloned().unwrap_or_default(),
    }
}
