//! 64 `comfyui-image` jobs at once through `c41 mcp` (a separate process,
//! JSON-RPC over stdio, progress notifications on) against the ComfyUI
//! simulator, vs a native tokio client doing the same HTTP and websocket
//! work for 64 jobs at once (connect `/ws`, `POST /prompt` with the same
//! graph, wait for the job's end on the socket, `GET /history`, `GET /view`
//! into a file). Both wait on the same server, which runs one job at a
//! time: the ratio is what c41 adds to a burst, not the server's speed.
//! Also: errors (none expected) and the peak RSS of the `c41 mcp` process.
//!
//! Run: `cargo bench -p c41 --bench concurrency` (`JOBS=64` by default).

use c41_sim::comfyui::{ComfyConfig, ComfySim};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One HTTP request to the simulator: status and body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, bytes::Bytes) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

/// One job the way a hand-written client would run it.
async fn native_job(addr: SocketAddr, graph: Value, out: std::path::PathBuf) -> Result<(), String> {
    let client_id = format!("native-{}", uuid::Uuid::new_v4().simple());
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws?clientId={client_id}"), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (status, body) = http(addr, "POST", "/prompt", Some(json!({"prompt": graph, "client_id": client_id}))).await;
    let reply: Value = serde_json::from_slice(&body).map_err(|e| format!("{status}: {e}"))?;
    let id = reply["prompt_id"].as_str().ok_or_else(|| format!("no prompt_id: {reply}"))?.to_string();
    while let Some(msg) = ws.next().await {
        let tokio_tungstenite::tungstenite::Message::Text(text) = msg.map_err(|e| e.to_string())? else { continue };
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        let ended = v["type"] == "executing" && v["data"]["node"].is_null() && v["data"]["prompt_id"] == id.as_str();
        if ended || (v["type"] == "execution_error" && v["data"]["prompt_id"] == id.as_str()) {
            break;
        }
    }
    let _ = ws.close(None).await;
    let (_, body) = http(addr, "GET", &format!("/history/{id}"), None).await;
    let history: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let outputs = history[&id]["outputs"].as_object().ok_or("no outputs")?.clone();
    for images in outputs.values().filter_map(|o| o["images"].as_array()) {
        for img in images {
            let path = format!(
                "/view?filename={}&subfolder={}&type={}",
                img["filename"].as_str().unwrap_or_default(),
                img["subfolder"].as_str().unwrap_or_default(),
                img["type"].as_str().unwrap_or_default()
            );
            let (status, png) = http(addr, "GET", &path, None).await;
            if status != 200 {
                return Err(format!("/view answered {status}"));
            }
            tokio::fs::write(out.join(img["filename"].as_str().unwrap_or("x.png")), &png)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

/// The `c41 mcp` process's peak resident memory (Linux), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let jobs: u64 = std::env::var("JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let sim = ComfySim::new(ComfyConfig::default().with_delays(Duration::from_millis(2), Duration::ZERO));
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c41.toml");
    std::fs::write(
        &config,
        format!(
            "output-dir = \"{}\"\n[mcp]\nanswer-within-secs = 3600\n[services.forge]\nurl = \"http://{addr}\"\nkind = \"comfyui\"\n\
             [skills.comfyui-image]\ngrants = [\"forge\"]\n[skills.comfyui-image.settings]\npoll-ms = 500\n",
            tmp.path().join("out").display()
        ),
    )
    .unwrap();

    // c41 mcp: all calls sent at once, answers read as they come.
    let mut child = Command::new(env!("CARGO_BIN_EXE_c41"))
        .args(["mcp", "--max-concurrent", &jobs.to_string(), "--config"])
        .arg(&config)
        .env("C41_CACHE_DIR", tmp.path().join("cache"))
        .env("C41_STATE_DIR", tmp.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn c41 mcp");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut send = |v: Value| {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    };
    let mut recv = || -> Value {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "c41 mcp closed its output");
        serde_json::from_str(&line).unwrap()
    };
    send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}));
    while recv()["id"] != 0 {}
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    let tools = loop {
        let v = recv();
        if v["id"] == 1 {
            break v;
        }
    };
    let tool = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .find(|n| n.contains("comfyui") && n.contains("image"))
        .expect("a comfyui-image tool")
        .to_string();
    let call = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool,
            "arguments": {"prompt": format!("a lighthouse, take {id}"), "width": 256, "height": 256, "seed": id},
            "_meta": {"progressToken": id}}})
    };
    // `c41 mcp` compiles every skill in the background at its first start:
    // let it finish (as after `c41 install`), so the burst does not race it.
    let skills = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["name"].as_str().unwrap_or("").starts_with("c41__"))
        .count();
    let compiled =
        || walk(&tmp.path().join("cache")).iter().filter(|p| p.extension().is_some_and(|e| e == "cwasm")).count();
    let deadline = Instant::now() + Duration::from_secs(300);
    while compiled() < skills && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // One call first: gives the graph the native client sends.
    send(call(100));
    let first = loop {
        let v = recv();
        if v["id"] == 100 {
            break v;
        }
    };
    let prompt_id = first["result"]["structuredContent"]["data"]["prompt_id"]
        .as_str()
        .or_else(|| first["result"]["structuredContent"]["prompt_id"].as_str())
        .unwrap_or_else(|| panic!("no prompt_id in {first}"))
        .to_string();
    let (_, history) = http(addr, "GET", &format!("/history/{prompt_id}"), None).await;
    let history: Value = serde_json::from_slice(&history).unwrap();
    let graph = history[&prompt_id]["prompt"][2].clone();

    let t0 = Instant::now();
    for id in 1000..1000 + jobs {
        send(call(id));
    }
    let (mut answered, mut failed, mut progress) = (0, 0, 0);
    while answered < jobs {
        let v = recv();
        if v["method"] == "notifications/progress" {
            progress += 1;
        } else if v["id"].as_u64().is_some_and(|id| id >= 1000) {
            answered += 1;
            if v["result"]["isError"] == true || !v["error"].is_null() {
                failed += 1;
            }
        }
    }
    let ours = t0.elapsed();
    let rss = peak_rss_mib(pid);
    let _ = child.kill();
    let _ = child.wait();

    // The native client: the same burst.
    let out = tmp.path().join("native");
    std::fs::create_dir_all(&out).unwrap();
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..jobs)
        .map(|i| {
            let mut g = graph.clone();
            // A different seed per job, as c41 sent.
            for node in g.as_object_mut().unwrap().values_mut() {
                let inputs = &mut node["inputs"];
                let key = ["seed", "noise_seed"].into_iter().find(|k| inputs.get(*k).is_some_and(Value::is_u64));
                if let Some(key) = key {
                    inputs[key] = json!(i);
                }
            }
            tokio::spawn(native_job(addr, g, out.clone()))
        })
        .collect();
    let mut native_failed = 0;
    for t in tasks {
        if t.await.unwrap().is_err() {
            native_failed += 1;
        }
    }
    let native = t0.elapsed();
    println!(
        "burst {jobs:>3} jobs  {:>9.1} ms vs native {:>9.1} ms  ratio {:>5.2}x  errors {failed} vs {native_failed}; \
         {progress} progress notifications; c41 mcp peak RSS {}",
        ours.as_secs_f64() * 1e3,
        native.as_secs_f64() * 1e3,
        ours.as_secs_f64() / native.as_secs_f64(),
        rss.map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
}
