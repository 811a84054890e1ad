//! Field-by-field comparison of the simulator's JSON with a recorded real
//! answer: same keys and JSON types all the way down, equal values where
//! they are deterministic. Ids, timestamps and counters are never equal
//! between runs, so the rules name what to tolerate.

use serde_json::Value;

/// What a comparison tolerates.
#[derive(Default, Clone)]
pub(crate) struct Rules {
    /// Keys whose values may differ (their JSON type must still match).
    pub loose_values: Vec<&'static str>,
    /// Keys whose content is checked for type only, not recursed into
    /// (maps keyed by ids, tracebacks of different lengths).
    pub opaque: Vec<&'static str>,
    /// JSON-pointer-like paths ("/a/0/b") to skip entirely.
    pub skip_paths: Vec<String>,
}

impl Rules {
    /// The usual noise: ids, timestamps, client ids, counters in file names.
    pub(crate) fn standard() -> Self {
        Rules {
            loose_values: vec!["prompt_id", "timestamp", "sid", "client_id", "create_time", "exception_message"],
            opaque: vec!["traceback", "current_inputs"],
            // History's prompt tuple starts with the queue number and the id.
            skip_paths: vec!["/prompt/0".into(), "/prompt/1".into()],
        }
    }

    pub(crate) fn loose(mut self, keys: &[&'static str]) -> Self {
        self.loose_values.extend_from_slice(keys);
        self
    }

    pub(crate) fn opaque(mut self, keys: &[&'static str]) -> Self {
        self.opaque.extend_from_slice(keys);
        self
    }

    pub(crate) fn skip(mut self, path: &str) -> Self {
        self.skip_paths.push(path.to_string());
        self
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// File names carry per-server counters and random temp prefixes.
fn normalize_filename(s: &str) -> String {
    let mut out = String::new();
    let mut digits = 0;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            continue;
        }
        if digits > 0 {
            out.push_str(if digits == 5 { "#####" } else { "#" });
            digits = 0;
        }
        out.push(c);
    }
    if digits > 0 {
        out.push('#');
    }
    match out.strip_prefix("ComfyUI_temp_") {
        Some(rest) => format!("ComfyUI_temp_?{}", rest.get(5..).unwrap_or("")),
        None => out,
    }
}

/// Differences between `expected` (real) and `actual` (simulated), one per line.
pub(crate) fn diff(expected: &Value, actual: &Value, rules: &Rules) -> Vec<String> {
    let mut out = Vec::new();
    walk(expected, actual, "", None, rules, &mut out);
    out
}

fn walk(e: &Value, a: &Value, path: &str, key: Option<&str>, rules: &Rules, out: &mut Vec<String>) {
    if rules.skip_paths.iter().any(|p| p == path) {
        return;
    }
    if kind(e) != kind(a) {
        out.push(format!("{path}: type {} != {} (expected {e}, got {a})", kind(e), kind(a)));
        return;
    }
    let loose = key.is_some_and(|k| rules.loose_values.contains(&k));
    if key.is_some_and(|k| rules.opaque.contains(&k)) {
        return;
    }
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            for k in eo.keys() {
                match ao.get(k) {
                    Some(av) => walk(&eo[k], av, &format!("{path}/{k}"), Some(k), rules, out),
                    None => out.push(format!("{path}: missing key {k:?}")),
                }
            }
            for k in ao.keys().filter(|k| !eo.contains_key(*k)) {
                out.push(format!("{path}: unexpected key {k:?}"));
            }
        }
        (Value::Array(ea), Value::Array(aa)) => {
            if ea.len() != aa.len() && !loose {
                out.push(format!("{path}: array length {} != {}", ea.len(), aa.len()));
                return;
            }
            for (i, (x, y)) in ea.iter().zip(aa).enumerate() {
                walk(x, y, &format!("{path}/{i}"), if loose { key } else { None }, rules, out);
            }
        }
        (Value::String(x), Value::String(y)) if key == Some("filename") => {
            if normalize_filename(x) != normalize_filename(y) {
                out.push(format!("{path}: filename {x:?} != {y:?}"));
            }
        }
        _ if loose => {}
        _ => {
            if e != a {
                out.push(format!("{path}: {e} != {a}"));
            }
        }
    }
}

/// Panics with every difference listed, for use in tests.
pub(crate) fn assert_same_shape(what: &str, expected: &Value, actual: &Value, rules: &Rules) {
    let d = diff(expected, actual, rules);
    assert!(d.is_empty(), "{what}: simulator differs from the real transcript:\n  {}", d.join("\n  "));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_type_key_and_value_differences() {
        let r = Rules::standard();
        assert!(diff(&json!({"a": 1, "timestamp": 5}), &json!({"a": 1, "timestamp": 9}), &r).is_empty());
        assert_eq!(diff(&json!({"a": 1}), &json!({"a": 1.0}), &r).len(), 1);
        assert_eq!(diff(&json!({"a": 1}), &json!({"b": 1}), &r).len(), 2);
        assert!(diff(&json!({"filename": "img_00002_.png"}), &json!({"filename": "img_00001_.png"}), &r).is_empty());
        assert_eq!(diff(&json!({"filename": "img_00002_.png"}), &json!({"filename": "im_00001_.png"}), &r).len(), 1);
    }
}
