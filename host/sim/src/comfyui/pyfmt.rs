//! Python's `str()` and `repr()` of JSON values: real error messages are
//! built with f-strings, and clients match on them.

use serde_json::Value;

pub(crate) fn repr_str(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

pub(crate) fn float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == f.trunc() && f.abs() < 1e16 {
        return format!("{f:.1}");
    }
    let s = format!("{f:?}");
    match s.split_once('e') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e:0>2}"),
        Some((m, e)) => format!("{m}e-{:0>2}", &e[1..]),
        None => s,
    }
}

fn number(n: &serde_json::Number) -> String {
    if n.is_f64() { float(n.as_f64().unwrap_or(0.0)) } else { n.to_string() }
}

/// `str(v)`.
pub(crate) fn str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// `repr(v)`.
pub(crate) fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => number(n),
        Value::String(s) => repr_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter().map(|(k, v)| format!("{}: {}", repr_str(k), repr(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python() {
        assert_eq!(repr(&json!(["pixel_space"])), "['pixel_space']");
        assert_eq!(repr(&json!(["it's"])), "[\"it's\"]");
        assert_eq!(str(&json!(0)), "0");
        assert_eq!(str(&json!(1.0)), "1.0");
        assert_eq!(str(&json!(0.1)), "0.1");
        assert_eq!(float(1e20), "1e+20");
        assert_eq!(str(&json!(true)), "True");
    }
}
