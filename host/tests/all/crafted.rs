//! Components Rust cannot express, crafted in the test from WAT and the real
//! `wit/skill.wit` (wat + wit-component): several linear memories, and a
//! reserved name. They prove the memory cap counts every memory of a
//! component, that a component with more memories than a skill may have is
//! refused with a clear message, and that the MCP control tool names cannot
//! be taken.

use crate::common::*;
use c41::app::RunError;
use c41::runtime::{InvokeError, MAX_MEMORIES};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Little-endian bytes as a WAT data string.
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "\\{b:02x}");
        s
    })
}

/// A skill component named `name` whose core module defines `memories`
/// linear memories; `invoke` grows each memory but the first by
/// `grow_pages` pages (64 KiB each), then returns "ok".
fn crafted(name: &str, memories: usize, grow_pages: u32) -> Vec<u8> {
    // Strings at the start of memory 0, then the return areas.
    let strings = [name, "0.0.0", "crafted", r#"{"type":"object"}"#, "none", "ok", "{}"];
    let mut data = Vec::new();
    let mut at = Vec::new();
    for s in strings {
        at.push((data.len() as u32, s.len() as u32));
        data.extend_from_slice(s.as_bytes());
    }
    // description: name, version, summary, input-schema, output (ptr, len each), services (empty list)
    let mut describe = Vec::new();
    for (p, l) in &at[..5] {
        describe.extend_from_slice(&p.to_le_bytes());
        describe.extend_from_slice(&l.to_le_bytes());
    }
    describe.extend_from_slice(&[0; 8]);
    // result<outcome, _>: tag 0, then text, artifacts (empty), data
    let mut result = vec![0u8; 4];
    for (p, l) in [at[5], (0, 0), at[6]] {
        result.extend_from_slice(&p.to_le_bytes());
        result.extend_from_slice(&l.to_le_bytes());
    }
    let mut wat = String::from("(module\n  (memory (export \"memory\") 1)\n");
    for i in 1..memories {
        writeln!(wat, "  (memory $m{i} 1)").unwrap();
    }
    let grows: String =
        (1..memories).map(|i| format!("    (drop (memory.grow $m{i} (i32.const {grow_pages})))\n")).collect();
    write!(
        wat,
        r#"  (global $bump (mut i32) (i32.const 8192))
  (data (memory 0) (i32.const 0) "{}")
  (data (memory 0) (i32.const 1024) "{}")
  (data (memory 0) (i32.const 2048) "{}")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.and (i32.add (i32.add (global.get $bump) (local.get 3)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "describe") (result i32) (i32.const 1024))
  (func (export "invoke") (param i32 i32 i32 i32) (result i32)
{grows}    (i32.const 2048))
)"#,
        wat_bytes(&data),
        wat_bytes(&describe),
        wat_bytes(&result)
    )
    .unwrap();
    let mut module = wat::parse_str(&wat).expect("the crafted module is valid WAT");
    let mut resolve = wit_parser::Resolve::default();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let (pkg, _) = resolve.push_dir(&wit).expect("wit/ parses");
    let world = resolve.select_world(&[pkg], Some("skill")).unwrap();
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    wit_component::ComponentEncoder::default().module(&module).unwrap().encode().expect("encodes as a component")
}

fn write(dir: &Path, file: &str, bytes: Vec<u8>) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, bytes).unwrap();
    p
}

async fn app_with(component: &Path, config: &str) -> anyhow::Result<c41::app::App> {
    let out = tempfile::tempdir().unwrap();
    let loaded = c41::config::parse(
        &format!("output-dir = \"{}\"\n{config}", out.path().display()),
        Path::new("/test/c41.toml"),
    )
    .unwrap();
    let options = c41::runtime::RuntimeOptions { cache_dir: Some(cache_dir()), pooling: None };
    let state = out.path().join("state");
    c41::app::App::with_state_root(loaded, options, &[component.to_path_buf()], Some(state)).await
}

#[tokio::test]
async fn memory_mb_caps_the_sum_of_all_memories_of_a_component() {
    let dir = tempfile::tempdir().unwrap();
    // 4 memories; invoke grows three of them by 40 MiB each: each one is
    // under the 64 MiB cap, their sum is not.
    let file = write(dir.path(), "four.wasm", crafted("test-four-memories", 4, 640));
    let limits = "[skills.test-four-memories.limits]\nmemory-mb = 64\n";
    let app = app_with(&file, limits).await.expect("4 memories are allowed");
    let run =
        || app.invoke("test-four-memories", json!({}), std::sync::Arc::new(c41::events::Discard), Default::default());
    match run().await {
        Err(RunError::Invoke(e @ InvokeError::MemoryLimit { .. })) => {
            assert_eq!(e.fault(), "limit");
            assert!(e.to_string().contains("64 MiB") && e.to_string().contains("limits.memory-mb"), "{e}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    // The same component within its cap runs, and the host carries on.
    let small = write(dir.path(), "small.wasm", crafted("test-four-memories", 4, 16));
    let app = app_with(&small, limits).await.unwrap();
    let r = app.invoke("test-four-memories", json!({}), std::sync::Arc::new(c41::events::Discard), Default::default());
    assert_eq!(r.await.expect("3 x 1 MiB fit in 64 MiB").text, "ok");
}

#[tokio::test]
async fn a_component_with_more_memories_than_a_skill_may_have_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sixteen.wasm", crafted("test-sixteen", 16, 1888));
    let err = app_with(&file, "").await.err().expect("refused").to_string();
    assert!(err.contains(&dir.path().canonicalize().unwrap().join("sixteen.wasm").display().to_string()), "{err}");
    assert!(err.contains(&format!("defines 16 linear memories; a c41 skill may have at most {MAX_MEMORIES}")), "{err}");
    // The same refusal with the pooling allocator (`c41 mcp`).
    let out = tempfile::tempdir().unwrap();
    let loaded =
        c41::config::parse(&format!("output-dir = \"{}\"\n", out.path().display()), Path::new("/t/c41.toml")).unwrap();
    let options = c41::runtime::RuntimeOptions {
        cache_dir: Some(cache_dir()),
        pooling: Some(c41::runtime::PoolingOptions { instances: 2, max_memory_bytes: 128 << 20 }),
    };
    let err = c41::app::App::with_state_root(loaded, options, &[file], Some(out.path().join("s"))).await;
    let err = err.err().expect("refused").to_string();
    // wasmtime's pooling allocator refuses it while compiling, in its words.
    assert!(err.contains("sixteen.wasm: not a c41 skill component"), "{err}");
    assert!(err.contains(&format!("memories count of 16 exceeds the per-instance limit of {MAX_MEMORIES}")), "{err}");
}

#[tokio::test]
async fn the_mcp_control_tool_names_are_not_skill_names() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["wait", "runs", "cancel"] {
        let file = write(dir.path(), &format!("{name}.wasm"), crafted(name, 1, 0));
        let err = app_with(&file, "").await.err().expect("refused").to_string();
        assert!(err.contains(&format!("`{name}` is reserved for the MCP server's own tools")), "{err}");
    }
}
