//! `llm-route` streaming from a real llama.cpp `llama-server` (the tiny
//! SmolLM2 model `tests/llama/setup.sh` installs) against a native client
//! reading the same stream from the same server with the same request:
//! time to the first token (from the call, routing and the sandbox
//! included) and tokens per second (deltas between the first and the last),
//! alternating the two clients, medians of `RUNS` (default 9) each.
//!
//! Run: `tests/llama/setup.sh; cargo bench -p c41 --bench llm`.

use c41::app::App;
use c41::config;
use c41::events::{Event, EventSink};
use c41::runtime::{PoolingOptions, RuntimeOptions};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PROMPT: &str = "Write two sentences about a lighthouse.";
const MAX_TOKENS: u32 = 48;

/// The llama-server binary and model that tests/llama/setup.sh recorded.
fn llama_setup() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let env = std::fs::read_to_string(root.join("target/llama/env")).expect("run tests/llama/setup.sh first");
    let get = |k: &str| env.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix('=').map(|v| PathBuf::from(v.trim())));
    (get("C41_LLAMA_SERVER").expect("C41_LLAMA_SERVER"), get("C41_LLAMA_MODEL").expect("C41_LLAMA_MODEL"))
}

/// What one streamed reply looked like to its client.
struct Stream {
    first: Duration,
    tokens: usize,
    span: Duration,
}

impl Stream {
    fn per_second(&self) -> f64 {
        (self.tokens.saturating_sub(1)) as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

/// Records when each text delta arrived.
struct Deltas(Instant, Mutex<Vec<Duration>>);

impl EventSink for Deltas {
    fn emit(&self, _: &str, event: Event) {
        if let Event::TextDelta(t) = event
            && !t.is_empty()
        {
            self.1.lock().unwrap().push(self.0.elapsed());
        }
    }
}

fn stream_of(at: &[Duration]) -> Stream {
    Stream { first: at[0], tokens: at.len(), span: *at.last().unwrap() - at[0] }
}

async fn sandboxed(app: &App) -> Stream {
    let sink = Arc::new(Deltas(Instant::now(), Mutex::new(Vec::new())));
    let input = json!({"messages": [{"role": "user", "content": PROMPT}], "model": "smollm2",
                       "max_tokens": MAX_TOKENS, "temperature": 0, "stream": true});
    app.invoke("llm-route", input, sink.clone(), CancellationToken::new()).await.expect("llm-route answers");
    stream_of(&sink.1.lock().unwrap())
}

/// The same request by a plain hyper client: SSE lines, one delta per
/// `choices[0].delta.content`.
async fn native(port: u16) -> Stream {
    let t0 = Instant::now();
    let body = json!({"model": "smollm2", "messages": [{"role": "user", "content": PROMPT}], "stream": true,
                      "stream_options": {"include_usage": true}, "max_tokens": MAX_TOKENS, "temperature": 0});
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::post("/v1/chat/completions")
        .header("host", format!("127.0.0.1:{port}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let mut resp = sender.send_request(req).await.unwrap().into_body();
    let (mut at, mut pending) = (Vec::new(), Vec::new());
    while let Some(frame) = resp.frame().await {
        let Ok(data) = frame.unwrap().into_data() else { continue };
        pending.extend_from_slice(&data);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let Some(json) = line.strip_prefix(b"data: ") else { continue };
            let Ok(v) = serde_json::from_slice::<Value>(json) else { continue };
            if v["choices"][0]["delta"]["content"].as_str().is_some_and(|c| !c.is_empty()) {
                at.push(t0.elapsed());
            }
        }
    }
    stream_of(&at)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(9);
    let (server, model) = llama_setup();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(&server)
        .args(["-m", &model.display().to_string(), "-a", "smollm2", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", "2048", "-t", "2", "--jinja"])
        .env("LD_LIBRARY_PATH", server.parent().unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("llama-server starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    while health(port).await.is_none() {
        assert!(Instant::now() < deadline, "llama-server not healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "output-dir = \"{}\"\n[services.llama]\nurl = \"http://127.0.0.1:{port}\"\nkind = \"openai\"\n\
         [skills.llm-route]\ngrants = [\"llama\"]\n",
        tmp.path().join("out").display()
    );
    let app = |pooling| {
        let loaded = config::parse(&text, Path::new("/bench/c41.toml")).unwrap();
        let options = RuntimeOptions { cache_dir: Some(tmp.path().join("cache")), pooling };
        App::with_state_root(loaded, options, &[], Some(tmp.path().join("state")))
    };
    // What `c41 run` builds (a fresh instance per call), and what `c41 mcp`
    // builds (pooled instances).
    let unpooled = app(None).await.unwrap();
    let pooled = app(Some(PoolingOptions { instances: 8, max_memory_bytes: 256 << 20 })).await.unwrap();
    // Warm all three (model in memory, prompt cache, the component compiled,
    // the model list kept in the skill's state).
    sandboxed(&unpooled).await;
    sandboxed(&pooled).await;
    native(port).await;
    let (mut ours, mut ours_pooled, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(sandboxed(&unpooled).await);
        ours_pooled.push(sandboxed(&pooled).await);
        theirs.push(native(port).await);
    }
    let _ = child.kill();
    let _ = child.wait();
    let ms = |v: &[Stream]| median(v.iter().map(|s| s.first.as_secs_f64() * 1e3).collect());
    let rate = |v: &[Stream]| median(v.iter().map(Stream::per_second).collect());
    let tokens = |v: &[Stream]| median(v.iter().map(|s| s.tokens as f64).collect());
    for (name, v) in [("ttft", &ours), ("ttft pooled", &ours_pooled)] {
        println!(
            "{name:<13} {:>8.2} ms vs native {:>8.2} ms  added {:>6.2} ms",
            ms(v),
            ms(&theirs),
            ms(v) - ms(&theirs)
        );
    }
    println!(
        "tokens/s      {:>8.1}    vs native {:>8.1}     ratio {:>5.3}x  ({} vs {} deltas, {runs} runs each)",
        rate(&ours),
        rate(&theirs),
        rate(&ours) / rate(&theirs),
        tokens(&ours),
        tokens(&theirs)
    );
}

/// `GET /health` answered 200.
async fn health(port: u16) -> Option<()> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    let req = http::Request::get("/health")
        .header("host", format!("127.0.0.1:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    (resp.status() == 200).then_some(())
}
