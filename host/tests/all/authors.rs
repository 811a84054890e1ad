//! What a skill author depends on: the kit's own copy of the WIT, and a
//! skill written in another language (Python, through componentize-py)
//! running in the same sandbox through the same harness (`c41-test`).
//! `cli::a_new_skill_…` walks `c41 new` from an empty folder.

use crate::common::cache_dir;
use c41_test::{Harness, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The kit builds outside this repository with the WIT inside the crate: that
/// copy must be the WIT the host implements, byte for byte.
#[test]
fn the_kit_carries_the_wit_the_host_implements() {
    for file in ["skill.wit", "deps/io/io.wit"] {
        let top = std::fs::read_to_string(root().join("wit").join(file)).unwrap();
        let kit = std::fs::read_to_string(root().join("skills/kit/wit").join(file)).unwrap();
        assert!(top == kit, "skills/kit/wit/{file} differs from wit/{file}: copy wit/ over skills/kit/wit/");
    }
}

/// componentize-py from tests/python/setup.sh, if installed.
fn componentize_py() -> Option<PathBuf> {
    let bin = root().join("target/python/venv/bin/componentize-py");
    if bin.is_file() {
        return Some(bin);
    }
    let msg = format!("no {}: run tests/python/setup.sh", bin.display());
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipping the Python skill test: {msg}");
    None
}

/// The contract is language-neutral: `examples/word-count-py` is Python
/// against `wit/skill.wit`, and it runs like a Rust skill: the host checks
/// its input, and its progress, log record and artifact come through.
#[tokio::test(flavor = "multi_thread")]
async fn a_python_skill_runs_in_the_same_sandbox() {
    let Some(cpy) = componentize_py() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("word_count_py.wasm");
    let built = Command::new(&cpy)
        .arg("-d")
        .arg(root().join("wit"))
        .args(["-w", "skill", "componentize", "app", "-o"])
        .arg(&wasm)
        .current_dir(root().join("examples/word-count-py"))
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));

    let h = Harness::builder().component(&wasm).cache_dir(cache_dir()).start().await;
    let run = h.run("word-count-py", json!({"text": "The cat and the hat, and THE bat.", "top": 2})).await;
    let out = run.outcome();
    assert_eq!(out.text, "the (3), and (2)");
    assert_eq!(out.data["distinct"], 5, "{}", out.data);
    let counts: serde_json::Value = serde_json::from_slice(&run.artifact_bytes(0)).unwrap();
    assert_eq!(counts, json!({"and": 2, "bat": 1, "cat": 1, "hat": 1, "the": 3}));
    assert_eq!(out.artifacts[0].mime, "application/json");
    let stages: Vec<String> = run.progress().into_iter().map(|p| p.stage).collect();
    assert_eq!(stages, ["count", "store", "done"]);
    let logs = run.logs();
    assert!(logs.iter().any(|l| l.message == "counted" && l.fields == "words=8 distinct=5"), "{logs:?}");

    // The host refuses input outside the schema before Python runs.
    let bad = h.run("word-count-py", json!({"text": "x", "top": 0})).await;
    assert!(bad.error().to_string().contains("top"), "{}", bad.error());
    // And the skill's own refusal arrives as a field-named error.
    let blank = h.run("word-count-py", json!({"text": "   "})).await;
    assert!(blank.error().to_string().contains("invalid input `text`: only blanks"), "{}", blank.error());
}

/// `c41:skill@0.1.1` added `inputs.fields`, 0.1.2 `artifact-writer.copy-from`
/// (the compatibility rule is in wit/skill.wit, "Versions"). A component
/// built against 0.1.0 (tests/guests/old-wit, whose bindings come from that
/// WIT as it was) still loads and runs on this host, and `c41 check` says
/// what it was built against; a component of today calls the additions.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_built_against_the_previous_wit_keeps_working() {
    let (old, today) = (crate::common::guest("old-wit"), crate::common::guest("hostile"));
    let files = tempfile::tempdir().unwrap();
    let input = files.path().join("clip.bin");
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&input, &bytes).unwrap();
    let h = Harness::builder()
        .component(&old)
        .component(&today)
        .cache_dir(cache_dir())
        .config(&format!("[inputs]\nallow = [{:?}]\n", files.path()))
        .start()
        .await;

    let run = h.run("test-old-wit", json!({"file": input})).await;
    assert_eq!(run.outcome().text, "3000 bytes");
    assert_eq!(run.artifact_bytes(0), bytes, "its artifact, written through the 0.1.0 imports");
    assert!(run.logs().iter().any(|l| l.message == "built against 0.1.0"), "{:?}", run.logs());
    assert_eq!(run.progress().first().map(|p| p.stage.as_str()), Some("copy"));

    let run = h.run("test-hostile", json!({"mode": "input-fields", "file": input})).await;
    assert_eq!(run.outcome().data["fields"], json!(["file"]));

    for (wasm, version) in [(&old, "0.1.0"), (&today, "0.1.2")] {
        let out = Command::new(env!("CARGO_BIN_EXE_c41")).arg("check").arg(wasm).output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("built against c41:skill@{version}")), "{}: {said}", wasm.display());
    }
}
