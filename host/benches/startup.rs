//! How soon `c41 mcp` answers an agent: the time from spawning the server to
//! its answer to `initialize`, and to `tools/list`, with an empty
//! compiled-component cache ("cold", a first start after installing) and
//! with a full one ("warm"), against what a start cost when every built-in
//! skill had to be compiled before the first answer (measured here as
//! compiling them all, in-process, with Cranelift).
//!
//! Run: `cargo bench -p c41 --bench startup` (release build), or
//! `cargo bench -p c41 --bench startup --profile dev` for the debug build the
//! tests use. Figures, never limits: nothing here fails on a slow machine.

use c41::config::Limits;
use c41::runtime::{Origin, Runtime, RuntimeOptions};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Start `c41 mcp` with `cache` as its component cache; the times to the
/// `initialize` answer and to the `tools/list` answer, and the tool count.
fn first_answers(config: &Path, cache: &Path, state: &Path) -> (Duration, Duration, usize) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_c41"))
        .args(["mcp", "--config"])
        .arg(config)
        .env("C41_CACHE_DIR", cache)
        .env("C41_STATE_DIR", state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn c41 mcp");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut answer = |msg: Value| -> Value {
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
        if msg.get("id").is_none() {
            return Value::Null;
        }
        loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "c41 mcp closed its output");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == msg["id"] {
                return v;
            }
        }
    };
    answer(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}));
    let initialized = started.elapsed();
    answer(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let tools = answer(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let listed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    (initialized, listed, tools["result"]["tools"].as_array().map_or(0, Vec::len))
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c41.toml");
    std::fs::write(&config, format!("output-dir = {:?}\n", tmp.path().join("out").display().to_string())).unwrap();
    let state = tmp.path().join("state");

    // What every start used to wait for: compiling each built-in skill.
    let compile_all = {
        let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
        let started = Instant::now();
        for (_, bytes, _) in c41::guests::BUILTIN {
            let skill = runtime.load(*bytes, Origin::Builtin, &Limits::default()).await.unwrap();
            skill.prepare().await.unwrap();
        }
        started.elapsed()
    };

    let runs = 5;
    let (mut cold_init, mut cold_list) = (Vec::new(), Vec::new());
    let mut tools = 0;
    for i in 0..runs {
        let cache = tmp.path().join(format!("empty-cache-{i}"));
        let (init, list, n) = first_answers(&config, &cache, &state);
        tools = n;
        cold_init.push(init);
        cold_list.push(list);
    }
    // A warm cache: `c41 install` filled it.
    let warm_cache = tmp.path().join("warm-cache");
    let status = Command::new(env!("CARGO_BIN_EXE_c41"))
        .args(["install", "--config"])
        .arg(&config)
        .env("C41_CACHE_DIR", &warm_cache)
        .env("C41_STATE_DIR", &state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "c41 install failed");
    let (mut warm_init, mut warm_list) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (init, list, _) = first_answers(&config, &warm_cache, &state);
        warm_init.push(init);
        warm_list.push(list);
    }

    let compile_all_ms = ms(compile_all);
    println!("compiling the {} built-in skills (what a start used to wait for): {compile_all_ms:.0} ms", tools);
    for (what, init, list) in [("empty cache", cold_init, cold_list), ("full cache", warm_init, warm_list)] {
        let (init, list) = (ms(median(init)), ms(median(list)));
        println!(
            "{what:<12} initialize answered after {init:>7.1} ms, tools/list ({tools} tools) after {list:>7.1} ms  \
             ratio to compiling {:.4}x",
            list / compile_all_ms
        );
    }
}
