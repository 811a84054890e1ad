//! Test guest: tries every way out of the sandbox and reports what happened,
//! so tests can assert that each one is closed. It reads environment
//! variables, opens host files, opens a TCP socket, and fetches `url`.

use c41_kit::wstd::http::{Body, Client, Request};
use c41_kit::{Description, Invocation, Outcome, Skill, SkillError, json};

struct Escape;

impl Skill for Escape {
    fn describe() -> Description {
        Description {
            name: "test-escape".into(),
            version: "0.0.0".into(),
            summary: "Test guest that probes the sandbox.".into(),
            input_schema: r#"{"type":"object","properties":{"url":{"type":"string"},"tcp":{"type":"string"},"forge":{"type":"string"},"ws":{"type":"string"}}}"#.into(),
            output: "data: {env, file, tcp, http}".into(),
            services: vec!["http".into()],
        }
    }

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        if let Some(path) = cx.str("forge") {
            // Claim a file the host never stored: the host must refuse it.
            let fake =
                c41_kit::Artifact { path: path.into(), mime: "text/plain".into(), bytes: 1, sha256: "0".repeat(64) };
            return Ok(Outcome { text: "here is a file".into(), artifacts: vec![fake], data: json!({}) });
        }
        if let Some(url) = cx.str("ws") {
            // Echo one message through a websocket, as ComfyUI's client will.
            let ws = c41_kit::websocket::connect(url, "http")?;
            ws.send_text("hello over ws")?;
            let reply = match ws.recv(std::time::Duration::from_secs(5))? {
                Some(c41_kit::websocket::Message::Text(t)) => t,
                Some(c41_kit::websocket::Message::Binary(b)) => format!("{} bytes", b.len()),
                None => "timeout".into(),
            };
            return Ok(Outcome { text: reply, artifacts: vec![], data: json!({}) });
        }
        let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        let file = match std::fs::read("/etc/hostname") {
            Ok(bytes) => format!("read {} bytes", bytes.len()),
            Err(e) => format!("error: {e}"),
        };
        let tcp = match cx.str("tcp") {
            Some(addr) => match std::net::TcpStream::connect(addr) {
                Ok(_) => "connected".to_string(),
                Err(e) => format!("error: {e}"),
            },
            None => "not tried".into(),
        };
        let http = match cx.str("url") {
            Some(url) => {
                let req =
                    Request::get(url).body(Body::empty()).map_err(|e| SkillError::invalid("url", e.to_string()))?;
                match Client::new().send(req).await {
                    Ok(resp) => format!("status {}", resp.status().as_u16()),
                    Err(e) => {
                        // Report it like a real skill would: as a backend failure.
                        return Err(SkillError::backend("http", None, format!("GET {url}: {e:#}")));
                    }
                }
            }
            None => "not tried".into(),
        };
        Ok(Outcome {
            text: "probed".into(),
            data: json!({"env": env, "file": file, "tcp": tcp, "http": http}),
            artifacts: vec![],
        })
    }
}

c41_kit::skill!(Escape);
