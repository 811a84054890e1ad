//! A hostile component (tests/guests/hostile, written against the raw WIT and
//! wasi:http) tries to make the host hold more than its limits allow: header
//! fields, open files, artifact writers, connections, output bytes. Each
//! attempt ends that call with a clear `limit` error naming the config key,
//! and the host goes on serving other calls. Also: whose fault a failure is.

use crate::common::*;
use axum::Router;
use axum::routing::get;
use c41::app::RunError;
use c41::runtime::InvokeError;
use serde_json::json;

/// Config for the hostile guest: `{web}` is its one granted service.
fn config(web_port: u16, limits: &str) -> String {
    format!(
        "output-dir = \"{{out}}\"\n[services.web]\nurl = \"http://127.0.0.1:{web_port}\"\nkind = \"http\"\n\
         [skills.test-hostile]\ngrants = [\"web\"]\n[skills.test-hostile.limits]\n{limits}\n"
    )
}

/// The limit error a run ended with, as `(message, fault)`.
fn limit_error(r: Result<c41::runtime::Invoked, RunError>) -> (String, &'static str) {
    match r {
        Err(RunError::Invoke(e @ InvokeError::Limit { .. })) => (e.to_string(), e.fault()),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

async fn still_serves(h: &Harness) {
    let (r, _) = h.run("test-hostile", json!({"mode": "ok"})).await;
    assert_eq!(r.expect("the host serves the next call").text, "done 0");
}

/// A server whose `/drip` answers the head and never ends the body.
async fn drip_server() -> u16 {
    let app = Router::new().route(
        "/drip",
        get(|| async { axum::body::Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn header_fields_held_by_the_host_count_against_memory_mb() {
    // 2000 fields of 120 KiB would be 234 MiB of host memory.
    let h = harness(&config(closed_port(), "memory-mb = 64"), &["hostile"]).await;
    let (r, _) = h.run("test-hostile", json!({"mode": "fields", "n": 2000})).await;
    match r {
        Err(RunError::Invoke(e @ InvokeError::MemoryLimit { .. })) => {
            assert_eq!(e.fault(), "limit");
            assert!(e.to_string().contains("64 MiB") && e.to_string().contains("limits.memory-mb"), "{e}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    // Under the cap, the same guest is served normally.
    let (r, _) = h.run("test-hostile", json!({"mode": "fields", "n": 50})).await;
    assert_eq!(r.expect("50 fields fit in 64 MiB").text, "done 50");
}

#[tokio::test]
async fn open_input_files_are_capped_per_call_and_a_concurrent_call_is_unharmed() {
    let h = harness(&config(closed_port(), "open-files = 8"), &["hostile"]).await;
    let file = h.out.path().join("input.bin");
    std::fs::write(&file, b"data").unwrap();
    let input = json!({"mode": "files", "n": 20000, "file": file.display().to_string()});
    let hostile = h.run("test-hostile", input);
    let innocent = h.run("test-hostile", json!({"mode": "ok"}));
    let ((r, _), (ok, _)) = tokio::join!(hostile, innocent);
    let (message, fault) = limit_error(r);
    assert_eq!(fault, "limit");
    assert!(message.contains("more than 8 input files and artifact writers open at once"), "{message}");
    assert!(message.contains("limits.open-files") && message.contains("failed after 8"), "{message}");
    assert_eq!(ok.expect("the concurrent call is unharmed").text, "done 0");
    // The run journal still records runs.
    let runs = h.app.runs.as_ref().expect("a run journal").list();
    assert!(runs.iter().any(|r| r.error.as_deref().is_some_and(|e| e.contains("limits.open-files"))), "journal");
    still_serves(&h).await;
}

#[tokio::test]
async fn artifact_writers_are_capped_and_leave_no_files() {
    let h = harness(&config(closed_port(), "open-files = 4"), &["hostile"]).await;
    let (r, _) = h.run("test-hostile", json!({"mode": "writers", "n": 1000})).await;
    let (message, _) = limit_error(r);
    assert!(message.contains("more than 4") && message.contains("limits.open-files"), "{message}");
    assert!(h.output_files().is_empty(), "no partial files: {:?}", h.output_files());
    still_serves(&h).await;
}

#[tokio::test]
async fn outgoing_connections_are_capped_per_call() {
    let port = drip_server().await;
    let h = harness(&config(port, "connections = 3"), &["hostile"]).await;
    let url = format!("http://127.0.0.1:{port}/drip");
    let (r, _) = h.run("test-hostile", json!({"mode": "connections", "n": 50, "url": url})).await;
    let (message, fault) = limit_error(r);
    assert_eq!(fault, "limit");
    assert!(
        message.contains("more than 3 outgoing connections") && message.contains("limits.connections"),
        "{message}"
    );
    assert!(message.contains("failed after 3"), "{message}");
    // The connections died with the call: the next one gets its own three.
    let (r, _) = h.run("test-hostile", json!({"mode": "connections", "n": 3, "url": url})).await;
    assert_eq!(r.expect("three connections fit").text, "done 3");
}

#[tokio::test]
async fn output_of_one_call_is_capped_in_total_as_a_limit() {
    let h = harness(&config(closed_port(), "max-output-mb = 3\nmax-artifact-mb = 2"), &["hostile"]).await;
    let (r, _) = h.run("test-hostile", json!({"mode": "outputs", "n": 100})).await;
    let (message, fault) = limit_error(r);
    assert_eq!(fault, "limit", "too-large is a limit, not a grant");
    assert!(message.contains(&format!("{} bytes", 3 << 20)) && message.contains("limits.max-output-mb"), "{message}");
    assert!(h.output_files().len() <= 3, "at most 3 MiB stored: {:?}", h.output_files());
    let (r, _) = h.run("test-hostile", json!({"mode": "outputs", "n": 2})).await;
    assert_eq!(r.expect("two 1 MiB files fit").artifacts.len(), 2);
}

#[tokio::test]
async fn a_trap_after_a_refusal_is_reported_as_the_trap_with_the_refusal_beside_it() {
    let (addr, _) = serve().await;
    let other = closed_port();
    let h = harness(&config(addr.port(), ""), &["hostile"]).await;
    let url = format!("http://127.0.0.1:{other}/x");
    let (r, _) = h.run("test-hostile", json!({"mode": "trap-after-deny", "url": url})).await;
    match r {
        Err(RunError::Invoke(e @ InvokeError::Trap { .. })) => {
            assert_eq!((e.kind(), e.fault()), ("trap", "skill"));
            let m = e.to_string();
            assert!(m.contains("boom: the skill panicked after the refusal"), "the panic text: {m}");
            assert!(m.contains(&format!("refused http://127.0.0.1:{other}")), "the refusal beside it: {m}");
            let InvokeError::Trap { denials, .. } = e else { unreachable!() };
            assert_eq!(denials.len(), 1);
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    still_serves(&h).await;
}

#[tokio::test]
async fn a_skills_own_denied_error_is_not_blamed_on_the_grant() {
    let h = harness(&config(closed_port(), ""), &["hostile"]).await;
    let (r, _) = h.run("test-hostile", json!({"mode": "own-denied"})).await;
    match r {
        Err(RunError::Invoke(e @ InvokeError::Denied { .. })) => {
            assert_eq!(e.kind(), "denied");
            assert_eq!(e.fault(), "service", "no host refusal behind it: not the grant");
            assert!(e.to_string().contains("job 42"), "{e}");
        }
        other => panic!("expected the skill's denied error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_pool_wait_for_a_slot_instead_of_trapping() {
    // A pool of 2 instance slots (`c41 mcp --max-concurrent 2`) and 6 calls
    // at once: the extra calls queue; none fails with "maximum concurrent
    // limit reached".
    let out = tempfile::tempdir().unwrap();
    let text = "[skills.test-runaway.limits]\ntimeout-secs = 1\n".to_string();
    let loaded =
        c41::config::parse(&format!("output-dir = \"{}\"\n{text}", out.path().display()), "/t/c41.toml".as_ref())
            .unwrap();
    let options = c41::runtime::RuntimeOptions {
        cache_dir: Some(cache_dir()),
        pooling: Some(c41::runtime::PoolingOptions { instances: 2, max_memory_bytes: 512 << 20 }),
    };
    let app = c41::app::App::new(loaded, options, &[guest("runaway")]).await.expect("app builds");
    let calls = (0..6).map(|_| {
        app.invoke(
            "test-runaway",
            json!({"mode": "spin"}),
            std::sync::Arc::new(c41::events::Discard),
            tokio_util::sync::CancellationToken::new(),
        )
    });
    for r in futures::future::join_all(calls).await {
        assert!(
            matches!(r, Err(RunError::Invoke(InvokeError::Deadline { .. }))),
            "queued, then its own deadline: {r:?}"
        );
    }
    let r = app
        .invoke("test-runaway", json!({"mode": "ok"}), std::sync::Arc::new(c41::events::Discard), Default::default())
        .await;
    assert_eq!(r.expect("the pool is free again").text, "fine");
}

#[tokio::test]
async fn handles_held_at_once_are_capped_per_call() {
    let h = harness(&config(closed_port(), ""), &["hostile"]).await;
    let (r, _) = h.run("test-hostile", json!({"mode": "handles", "n": 100_000})).await;
    let (message, fault) = limit_error(r);
    assert_eq!(fault, "limit");
    assert!(message.contains(&format!("more than {} handles", c41::runtime::MAX_HANDLES)), "{message}");
    let (r, _) = h.run("test-hostile", json!({"mode": "handles", "n": 1000})).await;
    assert_eq!(r.expect("1000 handles are fine").text, "done 1000");
}
