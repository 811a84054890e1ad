//! Files named in skill settings. A skill cannot read host files, so the host
//! reads them for it at load time: in `[skills.<name>.settings]`, a key
//! ending in `-file` whose value is a path (relative to the config file) is
//! replaced by the key without the suffix holding the file's content: parsed
//! JSON for a `.json` file, text otherwise. This is how a user adds an
//! exported ComfyUI workflow without pasting it into the config:
//!
//! ```toml
//! [skills.comfyui-image.settings.workflows.my-sdxl]
//! graph-file = "workflows/sdxl_api.json"        # becomes `graph`
//! bindings-file = "workflows/sdxl.bindings.json" # becomes `bindings`
//! ```

use serde_json::{Map, Value};
use std::path::Path;

/// Largest settings file read (a ComfyUI API graph is tens of KiB).
pub const MAX_FILE: u64 = 16 << 20;

/// Replace every `<key>-file` in `settings` (recursively) by `<key>`.
/// Errors are `(dotted key, message)`.
pub fn inline(settings: &mut Map<String, Value>, base: &Path, at: &str) -> Result<(), (String, String)> {
    let keys: Vec<String> = settings.keys().cloned().collect();
    for key in keys {
        let here = format!("{at}.{key}");
        if let Some(target) = key.strip_suffix("-file")
            && let Some(Value::String(rel)) = settings.get(&key)
        {
            let path = base.join(rel);
            let fail = |m: String| (here.clone(), format!("{}: {m}", path.display()));
            let meta = std::fs::metadata(&path).map_err(|e| fail(e.to_string()))?;
            if meta.len() > MAX_FILE {
                return Err(fail(format!("larger than {} MiB", MAX_FILE >> 20)));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
            let value = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
                serde_json::from_str(&text).map_err(|e| fail(format!("not valid JSON: {e}")))?
            } else {
                Value::String(text)
            };
            settings.remove(&key);
            settings.insert(target.to_string(), value);
            continue;
        }
        if let Some(Value::Object(inner)) = settings.get_mut(&key) {
            inline(inner, base, &here)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_keys_become_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("g.json"), r#"{"1": {"class_type": "SaveImage", "inputs": {"x": null}}}"#)
            .unwrap();
        std::fs::write(dir.path().join("note.txt"), "hello").unwrap();
        let mut s =
            json!({"workflows": {"mine": {"graph-file": "g.json", "description": "d"}}, "note-file": "note.txt"});
        inline(s.as_object_mut().unwrap(), dir.path(), "skills.x.settings").unwrap();
        assert_eq!(s["workflows"]["mine"]["graph"]["1"]["class_type"], "SaveImage");
        assert!(s["workflows"]["mine"]["graph"]["1"]["inputs"]["x"].is_null(), "JSON nulls survive");
        assert_eq!(s["note"], "hello");
        assert!(s["workflows"]["mine"].get("graph-file").is_none());

        let mut bad = json!({"workflows": {"mine": {"graph-file": "missing.json"}}});
        let (key, msg) = inline(bad.as_object_mut().unwrap(), dir.path(), "skills.x.settings").unwrap_err();
        assert_eq!(key, "skills.x.settings.workflows.mine.graph-file");
        assert!(msg.contains("missing.json"), "{msg}");
    }
}
