//! The sandbox, proven on real components: what a skill may reach, what it
//! may not, and that every refusal is explained by the host.

use crate::common::*;
use c41::app::RunError;
use c41::runtime::InvokeError;
use c41_policy::DenialReason;
use serde_json::json;
use sha2::{Digest, Sha256};

fn config(port: u16) -> String {
    format!(
        r#"
output-dir = "{{out}}"
[services.web]
url = "http://127.0.0.1:{port}"
kind = "http"
token = "s3cret"
[skills.hello-http]
grants = ["web"]
[skills.test-escape]
grants = ["web"]
"#
    )
}

/// The host's recorded denials for a failed run (panics if it is not one).
fn denials(r: Result<c41::runtime::Invoked, RunError>) -> Vec<c41_policy::Denial> {
    match r {
        Err(RunError::Invoke(InvokeError::Denied { denials, .. })) => denials,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test]
async fn starter_skill_runs_end_to_end_and_stores_its_artifact_atomically() {
    let (addr, seen) = serve().await;
    let h = harness(&config(addr.port()), &[]).await;
    let (r, events) = h.run("hello-http", json!({"path": "/big"})).await;
    let r = r.expect("hello-http succeeds");
    assert_eq!(r.artifacts.len(), 1);
    let a = &r.artifacts[0];
    let body = big_body();
    assert_eq!(a.bytes, body.len() as u64);
    assert_eq!(a.sha256, hex::encode(Sha256::digest(&body)), "sha256 reported by the host");
    assert!(a.path.is_absolute() && a.path.starts_with(h.out.path().canonicalize().unwrap()));
    assert_eq!(std::fs::read(&a.path).unwrap(), body, "stored bytes are what the server sent");
    assert_eq!(
        h.output_files(),
        vec![a.path.file_name().unwrap().to_string_lossy().into_owned()],
        "no partial files left"
    );
    assert_eq!(r.data["status"], 200);
    // Progress reached the host, and ended at 100%.
    let fractions: Vec<f32> = events
        .events()
        .iter()
        .filter_map(|e| match e {
            c41::events::Event::Progress { fraction, .. } => *fraction,
            _ => None,
        })
        .collect();
    assert!(fractions.len() >= 3, "several progress reports: {fractions:?}");
    assert_eq!(fractions.last(), Some(&1.0));
    // The host added the configured token; the skill never had it.
    assert_eq!(seen.auth.lock().unwrap().last().unwrap().as_deref(), Some("Bearer s3cret"));
}

/// (URL asked for, the URL the host must name ("" = 127.0.0.1 at the asked
/// port), the expected reason, whether the skill's grant is the closest one).
type Case = (String, &'static str, fn(&DenialReason) -> bool, bool);

#[tokio::test]
async fn refusals_are_recorded_and_explained_by_the_host() {
    let (addr, seen) = serve().await;
    let port = addr.port();
    let other = closed_port();
    let h = harness(&config(port), &[]).await;
    let cases: Vec<Case> = vec![
        // (url, the URL the host must name, reason, is the grant the closest one)
        (format!("http://127.0.0.1:{other}/"), "", |r| matches!(r, DenialReason::NoGrantForPort), true),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            "http://169.254.169.254:80",
            |r| matches!(r, DenialReason::NoGrantForHost),
            false,
        ),
        (format!("http://2130706433:{other}/"), "", |r| matches!(r, DenialReason::NoGrantForPort), true),
        (format!("http://0x7f.1:{other}/"), "", |r| matches!(r, DenialReason::NoGrantForPort), true),
        (format!("http://user@127.0.0.1:{port}/"), "", |r| matches!(r, DenialReason::UserInfo), false),
        (
            format!("http://127.0.0.1:{port}@example.com/"),
            "http://example.com:80",
            |r| matches!(r, DenialReason::UserInfo),
            false,
        ),
        (format!("https://127.0.0.1:{port}/"), "", |r| matches!(r, DenialReason::NoGrantForScheme), true),
    ];
    for (url, named, reason, closest_is_grant) in cases {
        let (r, _) = h.run("hello-http", json!({ "url": url })).await;
        let d = denials(r);
        assert_eq!(d.len(), 1, "{url}: one refusal recorded");
        let d = &d[0];
        assert!(reason(&d.reason), "{url}: unexpected reason {:?}", d.reason);
        let expected_url = if named.is_empty() {
            let p = if url.contains(&other.to_string()) { other } else { port };
            let scheme = if url.starts_with("https") { "https" } else { "http" };
            format!("{scheme}://127.0.0.1:{p}")
        } else {
            named.to_string()
        };
        assert_eq!(d.url, expected_url, "{url}: the host names the normalised target");
        assert_eq!(
            d.closest.as_ref().map(|g| g.service.as_str()) == Some("web"),
            closest_is_grant,
            "{url}: closest grant"
        );
        let msg = RunError::Invoke(InvokeError::Denied {
            target: String::new(),
            reason: String::new(),
            denials: vec![d.clone()],
        })
        .to_string();
        assert!(msg.contains(&expected_url) && msg.contains("refused"), "{url}: message names the target: {msg}");
    }
    assert!(seen.paths.lock().unwrap().is_empty(), "no refused request reached the server");
}

#[tokio::test]
async fn a_decimal_spelling_of_the_granted_address_is_the_same_grant() {
    let (addr, seen) = serve().await;
    let h = harness(&config(addr.port()), &[]).await;
    let (r, _) = h.run("hello-http", json!({ "url": format!("http://2130706433:{}/hello.txt", addr.port()) })).await;
    assert_eq!(r.expect("same host and port, other spelling").artifacts[0].bytes, 21);
    assert_eq!(seen.paths.lock().unwrap().as_slice(), ["/hello.txt"]);
}

#[tokio::test]
async fn name_grants_are_resolved_and_pinned_by_the_host() {
    let (addr, seen) = serve().await;
    let text = config(addr.port()).replace("http://127.0.0.1:", "http://localhost:");
    let h = harness(&text, &[]).await;
    let (r, _) = h.run("hello-http", json!({"path": "/hello.txt"})).await;
    r.expect("localhost grant works");
    // A name that is not granted is refused before any lookup.
    let (r, _) = h.run("hello-http", json!({ "url": format!("http://127.0.0.1:{}/", addr.port()) })).await;
    let d = denials(r);
    assert!(matches!(d[0].reason, DenialReason::NoGrantForHost), "an IP is not the granted name: {:?}", d[0]);
    assert_eq!(seen.paths.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn no_grant_means_no_network_at_all() {
    let (addr, seen) = serve().await;
    let h = harness(&config(addr.port()).replace("grants = [\"web\"]", "grants = []"), &[]).await;
    let (r, _) = h.run("hello-http", json!({ "url": format!("http://127.0.0.1:{}/", addr.port()) })).await;
    match r {
        Err(RunError::Invoke(InvokeError::Denied { target, .. })) => {
            assert_eq!(target, "http", "the skill reports the missing service")
        }
        other => panic!("expected denied, got {other:?}"),
    }
    assert!(seen.paths.lock().unwrap().is_empty());
}

#[tokio::test]
async fn grants_never_exceed_what_the_skill_declares() {
    let (addr, _) = serve().await;
    // `web` is granted but declared as an ollama service: hello-http declares
    // only `http`, so it must not get it.
    let text = config(addr.port()).replace("kind = \"http\"", "kind = \"ollama\"");
    let h = harness(&text, &[]).await;
    let (services, ignored) = h.app.config.effective_grants("hello-http", &["http".to_string()]);
    assert!(services.is_empty());
    assert_eq!(ignored, vec!["web"]);
    let (r, _) = h.run("hello-http", json!({"path": "/"})).await;
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Denied { .. }))), "{r:?}");
}

#[tokio::test]
async fn environment_files_and_sockets_are_closed() {
    let (addr, _) = serve().await;
    let h = harness(&config(addr.port()), &["escape"]).await;
    let (r, _) = h.run("test-escape", json!({ "tcp": addr.to_string() })).await;
    let data = r.expect("escape guest returns its findings").data;
    assert_eq!(data["env"], json!([]), "no environment variables");
    assert!(data["file"].as_str().unwrap().starts_with("error"), "no host files: {}", data["file"]);
    assert!(
        data["tcp"].as_str().unwrap().starts_with("error"),
        "no raw sockets, even to a granted port: {}",
        data["tcp"]
    );
}

#[tokio::test]
async fn a_forged_artifact_path_is_rejected() {
    // A skill may only return files the host stored for it in this call:
    // otherwise it could hand the agent `MEDIA:/etc/passwd`.
    let (addr, _) = serve().await;
    let h = harness(&config(addr.port()), &["escape"]).await;
    let (r, _) = h.run("test-escape", json!({"forge": "/etc/passwd"})).await;
    match r {
        Err(RunError::Invoke(InvokeError::ForgedArtifact { path })) => assert_eq!(path, "/etc/passwd"),
        other => panic!("expected a forged-artifact error, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_input_names_the_field_before_the_skill_runs() {
    let (addr, seen) = serve().await;
    let h = harness(&config(addr.port()), &[]).await;
    let (r, _) = h.run("hello-http", json!({"path": 7})).await;
    let e = r.unwrap_err();
    assert_eq!(e.field(), Some("path"), "{e}");
    let (r, _) = h.run("hello-http", json!({"bogus": true})).await;
    let e = r.unwrap_err();
    assert_eq!(e.field(), Some("bogus"), "{e}");
    assert!(seen.paths.lock().unwrap().is_empty());
}

#[tokio::test]
async fn websockets_go_through_the_same_grants() {
    use axum::extract::ws::{Message, WebSocketUpgrade};
    let app = axum::Router::new().route(
        "/ws",
        axum::routing::get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(|mut socket| async move {
                while let Some(Ok(Message::Text(t))) = socket.recv().await {
                    let _ = socket.send(Message::Text(format!("echo: {t}").into())).await;
                }
            })
        }),
    );
    let port = serve_app(app).await.port();
    let h = harness(&config(port), &["escape"]).await;

    let (r, _) = h.run("test-escape", json!({ "ws": format!("ws://127.0.0.1:{port}/ws?clientId=abc") })).await;
    assert_eq!(r.expect("granted websocket works").text, "echo: hello over ws");

    let other = closed_port();
    let (r, _) = h.run("test-escape", json!({ "ws": format!("ws://127.0.0.1:{other}/ws") })).await;
    let d = denials(r);
    assert_eq!(d[0].url, format!("http://127.0.0.1:{other}"), "ws:// is checked as http://");
    assert!(matches!(d[0].reason, DenialReason::NoGrantForPort));
}
