use super::*;
use serde_json::json;

fn schema() -> InputSchema {
    InputSchema::compile(&json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string"},
            "steps": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            "seed": {"type": "integer"},
            "image": {"type": "string", "format": "c41-file"},
            "frames": {"type": "array", "items": {"type": "string", "format": "c41-file"}}
        }
    }))
    .unwrap()
}

#[test]
fn cli_pairs_follow_the_schema_types() {
    let s = schema();
    let v = from_cli(Some(r#"{"seed": 5}"#), &["prompt=42".into(), "steps=30".into()], s.schema()).unwrap();
    assert_eq!(v, json!({"seed": 5, "prompt": "42", "steps": 30}), "prompt stays a string, steps is a number");
    assert!(matches!(from_cli(Some("[1]"), &[], s.schema()), Err(InputError::NotJson { .. })));
    assert!(matches!(from_cli(None, &["novalue".into()], s.schema()), Err(InputError::Schema { .. })));
}

#[test]
fn validation_errors_name_the_field() {
    let s = schema();
    for (input, field) in [
        (json!({}), "prompt"),
        (json!({"prompt": "x", "steps": 0}), "steps"),
        (json!({"prompt": "x", "steps": "many"}), "steps"),
        (json!({"prompt": "x", "sed": 1}), "sed"),
        (json!({"prompt": "x", "frames": [1]}), "frames/0"),
    ] {
        let e = s.validate(&input).expect_err(&input.to_string());
        assert_eq!(e.field(), field, "{input}: {e}");
    }
    let mut ok = json!({"prompt": "x"});
    s.apply_defaults(&mut ok);
    assert_eq!(ok["steps"], 20);
    s.validate(&ok).unwrap();
}

#[test]
fn file_inputs_resolve_inside_allowed_dirs_only() {
    let s = schema();
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(store_dir.path()).unwrap();
    let img = allowed.path().join("ref.png");
    std::fs::write(&img, b"png").unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, b"no").unwrap();
    let mut pending = store.create("earlier.png", "image/png", 1 << 20).unwrap();
    pending.write(b"earlier").unwrap();
    let earlier = pending.finish().unwrap();
    let policy = FilePolicy { store: Some(&store), allow_dirs: vec![allowed.path().to_path_buf()], cwd: None };

    let mut input = json!({"prompt": "x", "image": img.display().to_string(), "frames": [earlier.reference()]});
    let files = resolve_files(&s, &mut input, &policy).unwrap();
    assert_eq!(input["image"], "ref.png", "the skill sees a file name, not a host path");
    assert_eq!(files.get("image").unwrap().mime, "image/png");
    assert_eq!(files.get("frames/0").unwrap().path, earlier.path);
    assert_eq!(files.fields(), vec!["image", "frames/0"]);

    let mut input = json!({"prompt": "x", "image": secret.display().to_string()});
    let e = resolve_files(&s, &mut input, &policy).unwrap_err();
    assert_eq!(e.field(), "image");
    assert!(e.to_string().contains("`inputs.allow`"), "{e}");

    // Without a working directory that counts, a relative path is refused,
    // even one that names a file in the process's working directory.
    let mut input = json!({"prompt": "x", "image": "ref.png"});
    let e = resolve_files(&s, &mut input, &policy).unwrap_err();
    assert_eq!(e.field(), "image");
    assert!(e.to_string().contains("relative path") && e.to_string().contains("`inputs.allow`"), "{e}");
    // With one (`c41 run` at a terminal), it resolves against it.
    let at_terminal = FilePolicy { cwd: Some(allowed.path().to_path_buf()), allow_dirs: Vec::new(), ..policy.clone() };
    let mut input = json!({"prompt": "x", "image": "ref.png"});
    resolve_files(&s, &mut input, &at_terminal).unwrap();
    assert_eq!(input["image"], "ref.png");

    let mut input = json!({"prompt": "x", "image": "artifact:deadbeefdeadbeef"});
    assert_eq!(resolve_files(&s, &mut input, &policy).unwrap_err().field(), "image");

    // Null is no file, as absent is (a schema derived from an `Option`
    // allows it, and agents send it for "not given").
    let mut input = json!({"prompt": "x", "image": null});
    assert!(resolve_files(&s, &mut input, &policy).unwrap().fields().is_empty());
    assert_eq!(input["image"], Value::Null);
}
