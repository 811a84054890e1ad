//! `c41 mcp --attach`: stdio for the agent, the running `c41 serve` behind
//! it. An agent that can only start MCP servers as commands (one `c41 mcp`
//! per session) then shares the daemon's runtime, queue, journal and runs
//! instead of starting its own: each JSON-RPC line from stdin is POSTed to
//! the daemon's Streamable HTTP endpoint, and every message it answers
//! (a JSON body, or each event of an SSE stream: progress, then the result)
//! is written to stdout as one line.
//!
//! Requests are relayed concurrently (a long tool call does not hold up a
//! `c41__wait` or a cancel); notifications and responses in order, so
//! `notifications/initialized` arrives after `initialize`.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Where the daemon is and how to talk to it.
struct Daemon {
    url: http::Uri,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
    session: Mutex<Option<String>>,
    protocol: Mutex<Option<String>>,
    stdout: tokio::sync::Mutex<tokio::io::Stdout>,
}

/// Relay stdin/stdout to the daemon at `url` (its `/mcp`) until stdin ends.
pub async fn attach(url: http::Uri, token: Option<String>) -> anyhow::Result<()> {
    let daemon = Arc::new(Daemon {
        url,
        token,
        client: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
        session: Mutex::new(None),
        protocol: Mutex::new(None),
        stdout: tokio::sync::Mutex::new(tokio::io::stdout()),
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("not JSON: {e}")}});
                daemon.write(&error).await;
                continue;
            }
        };
        let is_request = message.get("method").is_some() && message.get("id").is_some_and(|id| !id.is_null());
        let is_initialize = message["method"] == "initialize";
        if is_request && !is_initialize {
            let daemon = daemon.clone();
            tokio::spawn(async move { daemon.relay(message).await });
        } else {
            daemon.relay(message).await;
        }
    }
    daemon.close().await;
    Ok(())
}

impl Daemon {
    async fn write(&self, message: &Value) {
        let mut out = self.stdout.lock().await;
        let _ = out.write_all(format!("{message}\n").as_bytes()).await;
        let _ = out.flush().await;
    }

    fn request(&self, method: http::Method, body: Bytes) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(self.url.clone())
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(id) = self.session.lock().unwrap().as_deref() {
            req = req.header("mcp-session-id", id);
        }
        if let Some(v) = self.protocol.lock().unwrap().as_deref() {
            req = req.header("mcp-protocol-version", v);
        }
        if let Some(t) = &self.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(Full::new(body)).expect("a valid request")
    }

    /// POST one message; write what comes back. A failure becomes a JSON-RPC
    /// error for the request it was (a notification's is only logged).
    async fn relay(&self, message: Value) {
        let id = message.get("id").cloned().filter(|_| message.get("method").is_some());
        if let Err(why) = self.exchange(&message).await {
            tracing::warn!("c41 serve at {}: {why}", self.url);
            if let Some(id) = id {
                self.write(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": why}})).await;
            }
        }
    }

    async fn exchange(&self, message: &Value) -> Result<(), String> {
        let req = self.request(http::Method::POST, Bytes::from(message.to_string()));
        let resp = self.client.request(req).await.map_err(|e| {
            format!("cannot reach c41 serve at {}: {e} (start it with `c41 serve`, or drop --attach)", self.url)
        })?;
        let status = resp.status();
        if message["method"] == "initialize"
            && let Some(id) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok())
        {
            *self.session.lock().unwrap() = Some(id.to_string());
        }
        let sse = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let mut body = resp.into_body();
        if !status.is_success() {
            let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            let hint = if status == http::StatusCode::NOT_FOUND && self.session.lock().unwrap().is_some() {
                " (the daemon no longer knows this session: it restarted; restart the MCP client)"
            } else {
                ""
            };
            return Err(format!("c41 serve answered {status}: {}{hint}", text.trim()));
        }
        if !sse {
            let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            if !bytes.is_empty() {
                let reply: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON-RPC: {e}"))?;
                self.answered(&reply).await;
            }
            return Ok(());
        }
        // Server-sent events: `data:` lines up to a blank line are one message.
        let (mut pending, mut data) = (Vec::<u8>::new(), String::new());
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("the event stream broke: {e}"))?;
            let Ok(chunk) = frame.into_data() else { continue };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\r', '\n']);
                if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    data.push('\n');
                } else if line.is_empty() && !data.trim().is_empty() {
                    match serde_json::from_str::<Value>(data.trim()) {
                        Ok(m) => self.answered(&m).await,
                        Err(e) => tracing::warn!("an event that is not JSON-RPC: {e}"),
                    }
                    data.clear();
                } else if line.is_empty() {
                    data.clear();
                }
            }
        }
        Ok(())
    }

    /// Pass a message on to the agent, noting the protocol version an
    /// `initialize` result settles on.
    async fn answered(&self, message: &Value) {
        if let Some(v) = message["result"]["protocolVersion"].as_str()
            && message["result"]["serverInfo"].is_object()
        {
            *self.protocol.lock().unwrap() = Some(v.to_string());
        }
        self.write(message).await;
    }

    /// End the session on the daemon (its runs go on there).
    async fn close(&self) {
        if self.session.lock().unwrap().is_none() {
            return;
        }
        let _ = self.client.request(self.request(http::Method::DELETE, Bytes::new())).await;
    }
}
