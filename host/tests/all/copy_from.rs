//! `artifact-writer.copy-from` (c41:skill@0.1.2): a response body goes from
//! the connection to the artifact store inside the host, without passing
//! through the skill. The starter skill (hello-http, through the kit's
//! `copy_body`) and the hostile guest (raw wasi:http, odd step sizes) store
//! exactly what the server sent; limits, a cut connection, a cancel and the
//! deadline end a copy as they end a write, leaving no file behind.

use crate::common::*;
use axum::Router;
use axum::routing::get;
use c41::app::RunError;
use c41::runtime::InvokeError;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// hello-http and the hostile guest, both granted `web` on `port`.
fn config(port: u16, limits: &str) -> String {
    format!(
        "output-dir = \"{{out}}\"\n[services.web]\nurl = \"http://127.0.0.1:{port}\"\nkind = \"http\"\n\
         [skills.hello-http]\ngrants = [\"web\"]\n[skills.hello-http.limits]\n{limits}\n\
         [skills.test-hostile]\ngrants = [\"web\"]\n"
    )
}

/// `/cut`: 1 MiB of a body, then the connection breaks. `/drip`: the head,
/// then nothing; `asked` is notified when it is asked for.
async fn bad_server(asked: Arc<tokio::sync::Notify>) -> u16 {
    let app = Router::new()
        .route(
            "/cut",
            get(|| async {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    vec![Ok(vec![1u8; 1 << 20]), Err(std::io::Error::other("the worker died"))];
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/drip",
            get(move || {
                let asked = asked.clone();
                async move {
                    asked.notify_one();
                    axum::body::Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>())
                }
            }),
        );
    serve_app(app).await.port()
}

#[tokio::test]
async fn a_download_goes_from_the_connection_to_the_store_without_entering_the_skill() {
    let (addr, _) = serve().await;
    let h = harness(&config(addr.port(), ""), &["hostile"]).await;
    let body = big_body();

    let (r, events) = h.run("hello-http", json!({"path": "/big"})).await;
    let r = r.expect("hello-http succeeds");
    let a = &r.artifacts[0];
    assert_eq!(std::fs::read(&a.path).unwrap(), body, "stored bytes are what the server sent");
    assert_eq!(a.sha256, hex::encode(Sha256::digest(&body)));
    assert_eq!(r.copied_in_host, body.len() as u64, "every byte was copied by the host");
    let downloads: Vec<_> = progress_reports(&events.events()).into_iter().filter(|p| p.0 == "download").collect();
    assert_eq!(downloads.last().and_then(|p| p.1), Some(1.0), "the skill reported the copy: {downloads:?}");

    // Raw wasi:http, steps that do not divide the body.
    let url = format!("http://{addr}/big");
    let (r, _) = h.run("test-hostile", json!({"mode": "copy", "url": url, "n": 100_003})).await;
    let r = r.expect("the hostile guest copies");
    assert_eq!(r.text, format!("copied {}", body.len()));
    assert_eq!(std::fs::read(&r.artifacts[0].path).unwrap(), body);
    assert_eq!(r.copied_in_host, body.len() as u64);
}

#[tokio::test]
async fn a_copy_obeys_the_artifact_limit_and_leaves_no_file() {
    let (addr, _) = serve().await;
    let h = harness(&config(addr.port(), "max-artifact-mb = 1"), &[]).await;
    let (r, _) = h.run("hello-http", json!({"path": "/big"})).await;
    match r {
        Err(RunError::Invoke(e @ InvokeError::Limit { .. })) => {
            assert!(e.to_string().contains("limits.max-artifact-mb"), "{e}");
        }
        other => panic!("expected the artifact limit, got {other:?}"),
    }
    assert!(h.output_files().is_empty(), "{:?}", h.output_files());
}

#[tokio::test]
async fn a_body_cut_mid_copy_is_the_services_fault_and_stores_nothing() {
    let port = bad_server(Default::default()).await;
    let h = harness(&config(port, ""), &[]).await;
    let (r, _) = h.run("hello-http", json!({"path": "/cut"})).await;
    let (service, _, message) = backend_error(r);
    assert_eq!(service, "web");
    assert!(message.contains("reading"), "{message}");
    assert!(h.output_files().is_empty(), "{:?}", h.output_files());
}

#[tokio::test]
async fn a_copy_from_a_silent_server_ends_at_a_cancel_and_at_the_deadline() {
    let asked = Arc::new(tokio::sync::Notify::new());
    let port = bad_server(asked.clone()).await;
    let h = harness(&config(port, "timeout-secs = 1"), &[]).await;

    let cancel = CancellationToken::new();
    let run = h.run_with("hello-http", json!({"path": "/drip"}), cancel.clone());
    let canceller = async {
        asked.notified().await;
        cancel.cancel();
    };
    let (run, ()) = tokio::join!(run, canceller);
    let (r, _) = run.into_parts();
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Cancelled))), "{r:?}");
    assert!(h.output_files().is_empty(), "{:?}", h.output_files());

    let (r, _) = h.run("hello-http", json!({"path": "/drip"})).await;
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Deadline { .. }))), "{r:?}");
    assert!(h.output_files().is_empty(), "{:?}", h.output_files());
}
