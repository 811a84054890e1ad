//! Skill names and grants belong to components, not to whatever describes
//! itself under a name: an impostor (tests/guests/impostor, which claims the
//! built-in `llm-route`) is refused with both files named, unless the config
//! maps that file to the name; and a different binary under a granted name
//! gets nothing until `c41 grant` records it.

use crate::common::*;
use c41::app::{App, RunError};
use c41::config;
use c41::runtime::{Origin, RuntimeOptions};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

async fn app(config: &Path, components: &[PathBuf]) -> anyhow::Result<App> {
    let loaded = config::load(Some(config))?;
    let options = RuntimeOptions { cache_dir: Some(cache_dir()), pooling: None };
    let state = config.parent().unwrap().join("state");
    App::with_state_root(loaded, options, components, Some(state)).await
}

const LLM_GRANTS: &str = "output-dir = \"{out}\"\n[services.ollama]\nurl = \"http://127.0.0.1:9\"\n\
    token = \"s3cret-bearer\"\n[skills.llm-route]\ngrants = [\"ollama\"]\n[skills.llm-route.settings]\nsecret = \"42\"\n";

#[tokio::test]
async fn a_component_cannot_take_a_builtin_name() {
    let dir = tempfile::tempdir().unwrap();
    let skills = dir.path().join("skills");
    std::fs::create_dir(&skills).unwrap();
    let impostor = skills.join("llm-route.wasm");
    std::fs::copy(guest("impostor"), &impostor).unwrap();
    let cfg = write_config(dir.path(), &format!("skills-dir = \"{}\"\n{LLM_GRANTS}", skills.display()));

    // From the skills directory: skipped with a warning naming both.
    let a = app(&cfg, &[]).await.expect("the host starts");
    assert_eq!(a.catalog.get("llm-route").unwrap().origin, Origin::Builtin, "the built-in keeps its name");
    let warning = a.catalog.warnings.join("\n");
    let path = impostor.canonicalize().unwrap();
    assert!(warning.contains(&format!("refused {}", path.display())), "{warning}");
    assert!(warning.contains("claims the name `llm-route`, which the built-in skill already has"), "{warning}");
    assert!(warning.contains("[skills.llm-route] component ="), "says how to opt in: {warning}");
    // The built-in still runs its own code (it fails on the closed port, as itself).
    let r = a
        .invoke("llm-route", json!({"prompt": "hi"}), std::sync::Arc::new(c41::events::Discard), Default::default())
        .await;
    assert!(!matches!(&r, Ok(i) if i.text == "impostor ran"), "{r:?}");

    // With --component: a hard error naming both.
    let err = app(&write_config(dir.path(), LLM_GRANTS), std::slice::from_ref(&impostor)).await.err().expect("refused");
    let err = err.to_string();
    assert!(err.contains(&path.display().to_string()) && err.contains("the built-in skill"), "{err}");
}

#[tokio::test]
async fn the_config_may_map_a_file_to_a_builtin_name_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let impostor = dir.path().join("my-router.wasm");
    std::fs::copy(guest("impostor"), &impostor).unwrap();
    let text = LLM_GRANTS
        .replace("[skills.llm-route]\n", &format!("[skills.llm-route]\ncomponent = \"{}\"\n", impostor.display()));
    let a = app(&write_config(dir.path(), &text), &[]).await.unwrap();
    assert!(matches!(a.catalog.get("llm-route").unwrap().origin, Origin::File(_)), "the user chose this file");
    let r = a.invoke("llm-route", json!({}), std::sync::Arc::new(c41::events::Discard), Default::default()).await;
    let data = r.expect("runs with what the config gives it").data;
    assert_eq!(data["services"], json!(["ollama=http://127.0.0.1:9"]));
}

#[tokio::test]
async fn a_different_binary_under_a_granted_name_gets_nothing_until_granted_again() {
    let (addr, _) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.wasm");
    std::fs::copy(guest("hostile"), &file).unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[services.web]\nurl = \"http://{addr}\"\nkind = \"http\"\n\
             [skills.test-hostile]\ngrants = [\"web\"]\n"
        ),
    );
    let run = |a: App| async move {
        a.invoke("test-hostile", json!({"mode": "ok"}), std::sync::Arc::new(c41::events::Discard), Default::default())
            .await
    };
    // Never granted: refused before it runs, with the command that fixes it.
    match run(app(&cfg, std::slice::from_ref(&file)).await.unwrap()).await {
        Err(e @ RunError::Ungranted { .. }) => {
            assert_eq!((e.kind(), e.fault()), ("ungranted", "grant"));
            let m = e.to_string();
            assert!(m.contains("run `c41 grant test-hostile`") && m.contains("hostile.wasm"), "{m}");
            assert!(m.contains("no grant was ever recorded"), "{m}");
        }
        other => panic!("expected ungranted, got {other:?}"),
    }
    // `c41 grant` records this file and its sha256 beside the config.
    let grant = Command::new(env!("CARGO_BIN_EXE_c41"))
        .env("C41_CONFIG", &cfg)
        .env("C41_CACHE_DIR", cache_dir())
        .arg("--component")
        .arg(&file)
        .args(["grant", "test-hostile"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&grant.stdout);
    assert!(grant.status.success(), "{said}{}", String::from_utf8_lossy(&grant.stderr));
    assert!(said.contains("services: web") && said.contains("c41.grants.toml"), "{said}");
    assert_eq!(run(app(&cfg, std::slice::from_ref(&file)).await.unwrap()).await.expect("granted").text, "done 0");

    // The same path, another binary (one custom section appended): nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&[0, 6, 5, b'e', b'v', b'i', b'l', b'!']);
    std::fs::write(&file, bytes).unwrap();
    match run(app(&cfg, std::slice::from_ref(&file)).await.unwrap()).await {
        Err(e @ RunError::Ungranted { .. }) => {
            let m = e.to_string();
            assert!(m.contains("it was granted with sha256") && m.contains("the file now has sha256"), "{m}");
        }
        other => panic!("expected ungranted after the swap, got {other:?}"),
    }
}

#[test]
fn list_shows_an_ungranted_component_and_mcp_refuses_an_absurd_pool() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.wasm");
    std::fs::copy(guest("hostile"), &file).unwrap();
    let cfg = write_config(
        dir.path(),
        "output-dir = \"{out}\"\n[services.web]\nurl = \"http://127.0.0.1:9\"\nkind = \"http\"\n\
         [skills.test-hostile]\ngrants = [\"web\"]\n",
    );
    let c41 = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_c41"));
        c.env("C41_CONFIG", &cfg).env("C41_CACHE_DIR", cache_dir());
        c
    };
    let out = c41().arg("--component").arg(&file).arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(ungranted: run `c41 grant test-hostile`)"), "{text}");
    let out = c41().arg("--component").arg(&file).args(["list", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = v.as_array().unwrap().iter().find(|s| s["name"] == "test-hostile").unwrap();
    assert_eq!(h["granted"], json!([]));
    assert!(h["ungranted"].as_str().unwrap().contains("c41 grant test-hostile"), "{h}");
    // `describe` and `doctor` say the same: no grant shown as in force, the
    // file's sha256 and the command that fixes it; doctor counts a problem.
    let out = c41().arg("--component").arg(&file).args(["describe", "test-hostile"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("granted:  web"), "{text}");
    assert!(text.contains("granted:  none: skill `test-hostile`") && text.contains("c41 grant test-hostile"), "{text}");
    let sha = c41::config::pins::sha256_hex(&std::fs::read(&file).unwrap());
    assert!(text.contains(&format!("sha256 {sha}")), "{text}");
    let out = c41().arg("--component").arg(&file).args(["doctor", "--timeout", "1"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("test-hostile") && l.contains("FAIL") && l.contains("c41 grant")),
        "{text}"
    );
    assert!(!text.contains("test-hostile     may reach web"), "{text}");
    // --max-concurrent is range-checked: 0 or a pool size that would
    // overflow the allocator's arithmetic is a usage error.
    for n in ["0", "100000", "4294967295"] {
        let out = c41().args(["mcp", "--max-concurrent", n]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "--max-concurrent {n}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--max-concurrent"), "--max-concurrent {n}");
    }
}
