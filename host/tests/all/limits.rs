//! Limits stop a runaway component with a clear error, and the host (and
//! every other invocation) carries on.

use crate::common::*;
use c41::app::RunError;
use c41::runtime::InvokeError;
use serde_json::json;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
output-dir = "{out}"
[skills.test-runaway.limits]
memory-mb = 32
timeout-secs = 2
"#;

#[tokio::test]
async fn memory_cap_stops_a_runaway_and_the_host_carries_on() {
    let h = harness(CONFIG, &["runaway"]).await;
    let (r, _) = h.run("test-runaway", json!({"mode": "memory"})).await;
    match r {
        Err(RunError::Invoke(e @ InvokeError::MemoryLimit { .. })) => {
            assert_eq!(e.fault(), "limit");
            assert!(e.to_string().contains("32 MiB") && e.to_string().contains("limits.memory-mb"), "{e}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    let (r, _) = h.run("test-runaway", json!({"mode": "ok"})).await;
    assert_eq!(r.expect("a fresh instance works after the trap").text, "fine");
}

#[tokio::test]
async fn deadline_stops_a_busy_loop() {
    let h = harness(CONFIG, &["runaway"]).await;
    let started = Instant::now();
    let (r, _) = h.run("test-runaway", json!({"mode": "spin"})).await;
    match r {
        Err(RunError::Invoke(e @ InvokeError::Deadline { .. })) => {
            assert!(e.to_string().contains("2s") && e.to_string().contains("limits.timeout-secs"), "{e}")
        }
        other => panic!("expected the deadline, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30), "stopped near its deadline");
    let (r, _) = h.run("test-runaway", json!({"mode": "ok"})).await;
    r.expect("the host carries on");
}

#[tokio::test]
async fn deadline_stops_a_skill_blocked_in_a_host_call() {
    let h = harness(CONFIG, &["runaway"]).await;
    let (r, _) = h.run("test-runaway", json!({"mode": "sleep"})).await;
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Deadline { .. }))), "{r:?}");
}

#[tokio::test]
async fn a_runaway_does_not_block_other_invocations() {
    let h = harness(CONFIG, &["runaway"]).await;
    // Each time is taken inside its own future, as that call ends.
    let spin = async {
        let (r, _) = h.run("test-runaway", json!({"mode": "spin"})).await;
        (r, Instant::now())
    };
    let ok = async {
        let (r, _) = h.run("test-runaway", json!({"mode": "ok"})).await;
        (r, Instant::now())
    };
    let ((spun, spin_done), (ok, ok_done)) = tokio::join!(spin, ok);
    assert!(matches!(spun, Err(RunError::Invoke(InvokeError::Deadline { .. }))), "{spun:?}");
    assert_eq!(ok.expect("runs beside the runaway").text, "fine");
    assert!(ok_done <= spin_done, "the good call finished while the runaway was still spinning");
}

#[tokio::test]
async fn artifact_cap_refuses_an_oversized_file_and_leaves_nothing() {
    let (addr, _) = serve().await;
    let text = format!(
        "output-dir = \"{{out}}\"\n[services.web]\nurl = \"http://127.0.0.1:{}\"\nkind = \"http\"\n\
         [skills.hello-http]\ngrants = [\"web\"]\n[skills.hello-http.limits]\nmax-artifact-mb = 1\n",
        addr.port()
    );
    let h = harness(&text, &[]).await;
    let (r, _) = h.run("hello-http", json!({"path": "/big"})).await;
    match r {
        Err(RunError::Invoke(e @ InvokeError::Limit { .. })) => {
            assert_eq!((e.kind(), e.fault()), ("limit", "limit"), "too-large is a limit, not a grant");
            let m = e.to_string();
            assert!(m.contains("1048576") && m.contains("limits.max-artifact-mb"), "{m}")
        }
        other => panic!("expected the artifact limit, got {other:?}"),
    }
    assert!(h.output_files().is_empty(), "no partial file: {:?}", h.output_files());
}
