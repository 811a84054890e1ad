//! `c41 serve`: the skills over MCP on Streamable HTTP, one process shared by
//! every client, guarded by Host, Origin and token; `--install` writes the
//! login service file and starts nothing.

use crate::common::{serve, write_config};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// A `c41 serve` child process and the address it listens on.
pub(crate) struct Daemon {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `c41 serve` with `cfg` (and `env` set for it alone) and wait for
/// its "listening on" line.
pub(crate) fn start(cfg: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_c41"))
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .args(extra)
        .envs(env.iter().copied())
        .env("C41_CACHE_DIR", crate::common::cache_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("c41 serve said where it listens").unwrap();
        if let Some(rest) = line.strip_prefix("c41 serve: listening on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the daemon never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Daemon { child, addr }
}

/// One HTTP request; (status, response headers, body text).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, hyper::HeaderMap, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", addr.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    if body.is_some() {
        req = req.header("content-type", "application/json").header("accept", "application/json, text/event-stream");
    }
    let resp = sender.send_request(req.body(Full::new(Bytes::from(bytes))).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    let text = String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned();
    (parts.status.as_u16(), parts.headers, text)
}

/// An MCP client session over Streamable HTTP.
struct Session {
    addr: SocketAddr,
    id: String,
    next: u64,
    auth: Vec<(&'static str, String)>,
}

impl Session {
    async fn open(addr: SocketAddr, auth: Vec<(&'static str, String)>) -> Session {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "c41-test", "version": "0"}}});
        let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, h, text) = request(addr, "POST", "/mcp", &headers, Some(&init)).await;
        assert_eq!(status, 200, "{text}");
        let id = h.get("mcp-session-id").expect("a session id").to_str().unwrap().to_string();
        let reply = rpc_reply(&text, 0);
        assert_eq!(reply["result"]["serverInfo"]["name"], "c41", "{reply}");
        let mut s = Session { addr, id, next: 1, auth };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let (status, _, _) = request(addr, "POST", "/mcp", &s.headers(), Some(&note)).await;
        assert_eq!(status, 202);
        s.next = 1;
        s
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        let mut h: Vec<(&str, &str)> = self.auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.push(("mcp-session-id", self.id.as_str()));
        h
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (status, _, text) = request(self.addr, "POST", "/mcp", &self.headers(), Some(&msg)).await;
        assert_eq!(status, 200, "{method}: {text}");
        rpc_reply(&text, id)
    }
}

/// The JSON-RPC reply with `id` in a JSON or SSE (`data:` lines) body.
fn rpc_reply(text: &str, id: u64) -> Value {
    let mut bodies: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        bodies.push(v);
    }
    bodies.into_iter().find(|v| v["id"] == id).unwrap_or_else(|| panic!("no reply {id} in {text}"))
}

fn tool_text(result: &Value) -> String {
    result["result"]["content"].as_array().unwrap().iter().filter_map(|c| c["text"].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_daemon_serves_mcp_over_http_to_every_client() {
    let (site, _) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[services.site]\nurl = \"http://{site}\"\nkind = \"http\"\n\
             [skills.hello-http]\ngrants = [\"site\"]\n"
        ),
    );
    let d = start(&cfg, &["--listen", "127.0.0.1:0"], &[]);
    let (status, _, text) = request(d.addr, "GET", "/health", &[], None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["ok"], true);

    let mut a = Session::open(d.addr, Vec::new()).await;
    let tools = a.call("tools/list", json!({})).await;
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"hello-http") && names.contains(&"wait"), "{names:?}");
    let done = a.call("tools/call", json!({"name": "hello-http", "arguments": {"path": "/hello.txt"}})).await;
    let text = tool_text(&done);
    assert!(text.lines().any(|l| l.starts_with("MEDIA:/") && l.ends_with(".txt")), "{text}");

    // Another client sees the same runs: one host for everyone.
    let mut b = Session::open(d.addr, Vec::new()).await;
    let runs = tool_text(&b.call("tools/call", json!({"name": "runs", "arguments": {}})).await);
    assert!(runs.contains("hello-http"), "{runs}");

    // DNS rebinding: a name that resolves here but is not the daemon's, and
    // a page of another site, are refused before MCP sees them.
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
    let port = d.addr.port().to_string();
    let evil_host = format!("evil.example:{port}");
    let (status, _, why) = request(d.addr, "POST", "/mcp", &[("host", evil_host.as_str())], Some(&ping)).await;
    assert_eq!(status, 403, "{why}");
    let (status, _, why) = request(d.addr, "POST", "/mcp", &[("origin", "https://evil.example")], Some(&ping)).await;
    assert_eq!((status, why.contains("Origin")), (403, true), "{why}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_request_and_is_required_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let open = write_config(dir.path(), "output-dir = \"{out}\"\n");
    let refused = Command::new(env!("CARGO_BIN_EXE_c41"))
        .arg("--config")
        .arg(&open)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs a token"), "{refused:?}");

    let locked = dir.path().join("locked.toml");
    std::fs::write(&locked, format!("output-dir = {:?}\n[serve]\ntoken-env = \"C41_TEST_SERVE_TOKEN\"\n", dir.path()))
        .unwrap();
    let d = start(&locked, &["--listen", "127.0.0.1:0"], &[("C41_TEST_SERVE_TOKEN", "s3cret")]);
    let (status, h, _) = request(d.addr, "GET", "/health", &[], None).await;
    assert_eq!((status, h.get("www-authenticate").map(|v| v.to_str().unwrap())), (401, Some("Bearer")));
    let (status, _, _) = request(d.addr, "GET", "/health", &[("authorization", "Bearer wrong")], None).await;
    assert_eq!(status, 401);
    let (status, _, _) = request(d.addr, "GET", "/health", &[("authorization", "Bearer s3cret")], None).await;
    assert_eq!(status, 200);
    let mut s = Session::open(d.addr, vec![("authorization", "Bearer s3cret".to_string())]).await;
    let tools = s.call("tools/list", json!({})).await;
    assert!(tools["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()));
}

#[test]
fn install_writes_the_login_service_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "output-dir = \"{out}\"\n");
    let home = dir.path().join("home");
    let out = Command::new(env!("CARGO_BIN_EXE_c41"))
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--install", "--listen", "127.0.0.1:7499", "--component", "mine.wasm"])
        .current_dir(dir.path())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    let unit = home.join(".config/systemd/user/c41-serve.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let mine = dir.path().join("mine.wasm");
    let args = format!("--config {} --component {} serve --listen 127.0.0.1:7499", cfg.display(), mine.display());
    assert!(text.contains(&args), "the same config and components, by absolute path: {text}");
    assert!(said.contains(&unit.display().to_string()) && said.contains("Nothing was started"), "{said}");
}

/// A real OpenClaw agent reaches c41 through the daemon: its MCP server
/// entry is `{url, transport: "streamable-http"}`, not a process it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_uses_the_daemon_over_streamable_http() {
    use crate::openclaw::*;
    let Some(oc) = openclaw_setup() else { return };
    let _one_at_a_time = AGENT.lock().await;
    let Scene { studio: _studio, dir, workspace, out_dir, cfg } = Scene::new().await;
    let daemon = start(&cfg, &["--listen", "127.0.0.1:0"], &[]);

    let model = FakeModel::start(red_fox()).await;
    let home = dir.path().join("home");
    let server = json!({"c41": {"url": format!("http://{}/mcp", daemon.addr), "transport": "streamable-http"}});
    let config = write_openclaw_config(&home, model.addr, server);
    let run = run_agent(&oc, &home, &config, &workspace, "Make an image of a red fox", None).await;

    let requests = model.requests();
    let (called, result) = requests
        .iter()
        .find_map(last_tool_result)
        .unwrap_or_else(|| panic!("no tool result reached the model\n{}", run.logs()));
    assert_eq!(called, "c41__comfyui-image", "{}", run.logs());
    let media = media_lines(&result);
    assert_eq!(media.len(), 1, "one MEDIA line in the tool result: {result}");
    let png = std::path::PathBuf::from(media[0].strip_prefix("MEDIA:").unwrap());
    assert_eq!(run.code, Some(0), "openclaw agent exec exits 0\n{}", run.logs());
    assert_eq!(delivered_media(&run.envelope), vec![png.display().to_string()], "{:#}", run.envelope);
    assert_real_png(&png, &out_dir);
}

/// A daemon stopped mid-job (SIGTERM, as launchd or systemd stop it)
/// records the run interrupted; the next daemon on the same journal resumes
/// it under its id, following the ComfyUI job already on the server, and a
/// client's `wait` on that id gets the image.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_daemon_resumes_the_runs_the_last_one_left() {
    use c41_sim::comfyui::{ComfyConfig, ComfySim};
    let sim =
        ComfySim::new(ComfyConfig::default().with_delays(std::time::Duration::from_millis(150), Default::default()));
    let comfy = sim.start("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[mcp]\nanswer-within-secs = 1\n[services.comfyui]\nurl = \"http://{comfy}\"\n\
             [skills.comfyui-image]\ngrants = [\"comfyui\"]\n"
        ),
    );
    let state = dir.path().join("state").display().to_string();
    let env = [("C41_STATE_DIR", state.as_str())];

    let first = start(&cfg, &["--listen", "127.0.0.1:0"], &env);
    let mut client = Session::open(first.addr, Vec::new()).await;
    let args = json!({"prompt": "a lighthouse at dusk", "width": 256, "height": 256, "steps": 20});
    let answer = client.call("tools/call", json!({"name": "comfyui-image", "arguments": args})).await;
    let run = answer["result"]["structuredContent"]["run"].as_str().unwrap_or_else(|| panic!("{answer}")).to_string();
    assert_eq!(answer["result"]["structuredContent"]["status"], "running", "{answer}");

    // Stopped as a service manager stops it, once the job is on the server.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sim.queue_remaining() == 0 {
        assert!(std::time::Instant::now() < deadline, "the job never reached the server");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut first = first;
    unsafe { libc::kill(first.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(first.child.wait().unwrap().code(), Some(128 + libc::SIGTERM));
    assert_eq!(sim.history_len(), 0, "stopped before the job ended");
    assert_eq!(sim.queue_remaining(), 1, "the job goes on on the server");

    let second = start(&cfg, &["--listen", "127.0.0.1:0"], &env);
    let mut client = Session::open(second.addr, Vec::new()).await;
    // `wait` answers within `answer-within-secs`: ask until the run is done.
    let mut text = String::new();
    for _ in 0..60 {
        let done = client.call("tools/call", json!({"name": "wait", "arguments": {"run": run}})).await;
        text = tool_text(&done);
        if done["result"]["structuredContent"]["status"] != "running" {
            break;
        }
    }
    assert!(text.lines().any(|l| l.starts_with("MEDIA:/") && l.ends_with(".png")), "{text}");
    assert_eq!(sim.history_len(), 1, "one job: followed, not submitted again");
}

/// `c41 mcp --attach`: an agent that starts MCP servers as commands gets the
/// daemon's runtime and runs through stdio: tools, progress and the result
/// come from the daemon, which keeps the run; with no daemon, the request
/// gets an error that says how to start one.
#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_session_attaches_to_the_running_daemon() {
    use c41_sim::comfyui::{ComfyConfig, ComfySim};
    let sim = ComfySim::new(ComfyConfig::default());
    let comfy = sim.start("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[services.comfyui]\nurl = \"http://{comfy}\"\n\
             [skills.comfyui-image]\ngrants = [\"comfyui\"]\n"
        ),
    );
    let state = dir.path().join("state").display().to_string();
    let daemon = start(&cfg, &["--listen", "127.0.0.1:0"], &[("C41_STATE_DIR", state.as_str())]);
    let own_state = dir.path().join("attached-state");
    let url = format!("http://{}/mcp", daemon.addr);
    let mut session = crate::mcp::Session::attach(&cfg, &url, &own_state);
    let init = session.init(json!({}));
    assert_eq!(init["result"]["serverInfo"]["name"], "c41", "{init}");
    let (listed, _) = session.call(2, "tools/list", json!({}));
    assert!(listed["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "comfyui-image"), "{listed}");
    let (result, progress) =
        session.tool(3, "comfyui-image", json!({"prompt": "a fox", "width": 256, "height": 256, "steps": 4}));
    let text = tool_text(&json!({"result": result}));
    assert!(text.contains("MEDIA:"), "{text}");
    assert!(!progress.is_empty(), "progress notifications come through the relay");

    // The run is the daemon's: its page lists it; the relay kept no journal.
    let (status, _, body) = request(daemon.addr, "GET", "/api/runs", &[], None).await;
    assert_eq!(status, 200, "{body}");
    let runs: Value = serde_json::from_str(&body).unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!((runs[0]["skill"].as_str(), runs[0]["state"].as_str()), (Some("comfyui-image"), Some("ok")));
    assert!(!own_state.join("runs").exists(), "the attached session ran nothing itself");
    drop(session);

    let closed = format!("http://127.0.0.1:{}/mcp", crate::common::closed_port());
    let mut orphan = crate::mcp::Session::attach(&cfg, &closed, &own_state);
    let (answer, _) = orphan.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    let message = answer["error"]["message"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(message.contains("cannot reach c41 serve") && message.contains("c41 serve"), "{message}");
}
