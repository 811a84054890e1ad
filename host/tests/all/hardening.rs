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
use std::time::Duration;

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
    serve_app(app).await.port()
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

/// Each `input-file.stream` holds read buffers in the host: streams count
/// as open files, so thousands of them are refused, not buffered.
#[tokio::test]
async fn input_streams_count_as_open_files() {
    let h = harness(&config(closed_port(), "open-files = 8"), &["hostile"]).await;
    let file = h.out.path().join("input.bin");
    std::fs::write(&file, vec![5u8; 3 << 20]).unwrap();
    let input = json!({"mode": "streams", "n": 20000, "file": file.display().to_string()});
    let (r, _) = h.run("test-hostile", input).await;
    let (message, fault) = limit_error(r);
    assert_eq!(fault, "limit");
    assert!(message.contains("more than 8 input files and artifact writers open at once"), "{message}");
    // The file holds one slot, its streams the other seven.
    assert!(message.contains("input-file.stream failed after 7"), "{message}");
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

/// SIGTERM while a skill is writing a file: the run is recorded as
/// interrupted at once (not left for a pid check to guess), the unfinished
/// file is removed, and c41 exits as a shell reports SIGTERM (143).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_records_the_run_as_interrupted_and_removes_its_unfinished_file() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("c41.toml");
    std::fs::write(&cfg, format!("output-dir = \"{}\"\n", out.display())).unwrap();
    let c41 = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_c41"));
        c.env("C41_CONFIG", &cfg)
            .env("C41_CACHE_DIR", cache_dir())
            .env("C41_STATE_DIR", dir.path().join("state"))
            .env_remove("RUST_LOG")
            .arg("--component")
            .arg(guest("hostile"));
        c
    };
    let mut child = c41()
        .args(["run", "test-hostile", "mode=hold-partial"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partials = || -> Vec<String> {
        std::fs::read_dir(&out)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !partials().iter().any(|n| n.starts_with(".c41-partial-")) {
        assert!(std::time::Instant::now() < deadline, "the skill never started its file");
        assert!(child.try_wait().unwrap().is_none(), "c41 ended before it was stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let mut stderr = child.stderr.take().unwrap();
    let ended = tokio::task::spawn_blocking(move || {
        let mut said = String::new();
        stderr.read_to_string(&mut said).unwrap();
        (child.wait().unwrap(), said)
    });
    let (status, said) = tokio::time::timeout(Duration::from_secs(30), ended).await.expect("c41 stops").unwrap();
    assert_eq!(status.code(), Some(143), "{said}");
    assert!(said.contains("stopped by SIGTERM") && said.contains("c41 resume"), "{said}");
    assert_eq!(partials(), Vec::<String>::new(), "the unfinished file is gone");
    let records: Vec<serde_json::Value> = std::fs::read_dir(dir.path().join("state/runs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["recorded"], "interrupted", "{}", records[0]);
    assert!(records[0]["error"].as_str().unwrap().contains("SIGTERM"), "{}", records[0]);
    let listed = c41().args(["runs", "--json"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["status"], "interrupted", "{listed}");
}

/// c41 raises its soft limit on open files to the hard limit at start, so
/// the per-call caps, not the process limit, are what a skill meets.
#[cfg(target_os = "linux")]
#[test]
fn the_soft_open_file_limit_is_raised_at_start() {
    use std::os::unix::process::CommandExt;
    let mut hard = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit on an owned struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) }, 0);
    let low = 256.min(hard.rlim_max);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_c41"));
    cmd.args(["mcp"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c41.toml");
    std::fs::write(&cfg, format!("output-dir = \"{}\"\n", dir.path().join("out").display())).unwrap();
    cmd.env("C41_CONFIG", &cfg).env("C41_CACHE_DIR", cache_dir()).env("C41_STATE_DIR", dir.path().join("state"));
    cmd.env_remove("RUST_LOG");
    // SAFETY: only setrlimit (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lowered = libc::rlimit { rlim_cur: low, rlim_max: hard.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // Once the server answers `initialize`, c41's main has run.
    use std::io::{BufRead, Write};
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    writeln!(child.stdin.as_mut().unwrap(), "{init}").unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut answer).unwrap();
    assert!(answer.contains("\"id\":1"), "{answer}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let seen: Option<u64> = line.split_whitespace().nth(3).and_then(|s| s.parse().ok());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen, Some(hard.rlim_max), "started with a soft limit of {low}");
}

/// The host checks a file input when the call starts; the skill opens it
/// later. Replaced meanwhile by a FIFO (whose open would block a thread for
/// ever) or by a symlink to a file outside the allowed directories, it is
/// refused at the open, at once, saying why.
#[cfg(unix)]
#[tokio::test]
async fn an_input_replaced_after_the_check_is_refused_at_the_open() {
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("secret.txt"), b"the secret").unwrap();
    for swap in ["fifo", "symlink"] {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>(1);
        let app = Router::new().route(
            "/swap",
            get(move || {
                let tx = tx.clone();
                async move {
                    let (done, swapped) = tokio::sync::oneshot::channel();
                    tx.send(done).await.unwrap();
                    swapped.await.unwrap();
                    "swapped"
                }
            }),
        );
        let port = serve_app(app).await.port();
        let h = harness(&config(port, "timeout-secs = 60"), &["hostile"]).await;
        let file = h.out.path().join("input.txt");
        std::fs::write(&file, b"the input").unwrap();
        let input = json!({"mode": "open-later", "url": format!("http://127.0.0.1:{port}/swap"), "file": file.display().to_string()});
        let swapper = {
            let (file, secret) = (file.clone(), secret.path().join("secret.txt"));
            async move {
                let done = rx.recv().await.unwrap();
                let tmp = file.with_file_name("swap.tmp");
                if swap == "fifo" {
                    let c = std::ffi::CString::new(tmp.as_os_str().as_encoded_bytes()).unwrap();
                    // SAFETY: a valid C string.
                    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
                } else {
                    std::os::unix::fs::symlink(&secret, &tmp).unwrap();
                }
                std::fs::rename(&tmp, &file).unwrap();
                done.send(()).unwrap();
            }
        };
        let started = std::time::Instant::now();
        let ((r, _), ()) = tokio::join!(h.run("test-hostile", input), swapper);
        let took = started.elapsed();
        let e = r.expect_err("refused").to_string();
        let why = if swap == "fifo" { "no longer a regular file" } else { "refusing to follow it" };
        assert!(e.contains("inputs.open") && e.contains(why), "{swap}: {e}");
        assert!(!e.contains("the secret"), "{e}");
        assert!(took < Duration::from_secs(30), "{swap}: refused at once, not at the deadline ({took:?})");
        still_serves(&h).await;
    }
}

/// Bytes this thread read and wrote through system calls so far (Linux's
/// per-thread `rchar`, `wchar`).
#[cfg(target_os = "linux")]
fn thread_io(tid: libc::pid_t) -> (u64, u64) {
    let io = std::fs::read_to_string(format!("/proc/self/task/{tid}/io")).unwrap();
    let field = |k: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{io}"))
    };
    (field("rchar:"), field("wchar:"))
}

/// File work (artifact writes, hashing, fsync, input reads, the journal)
/// runs on tokio's blocking pool, never on the thread that drives the
/// invocations: on a current-thread runtime, 16 MiB stored and 16 MiB read
/// leave that thread's own read and write counters nearly untouched.
#[cfg(target_os = "linux")]
#[test]
fn file_io_runs_on_the_blocking_pool_not_on_the_runtime_thread() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let h = harness(&config(closed_port(), "max-output-mb = 64"), &["hostile"]).await;
        let input = h.out.path().join("input.bin");
        std::fs::write(&input, vec![5u8; 16 << 20]).unwrap();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let (read0, written0) = thread_io(tid);
        let (r, _) = h.run("test-hostile", json!({"mode": "outputs", "n": 16})).await;
        assert_eq!(r.expect("16 files of 1 MiB stored").artifacts.len(), 16);
        let (r, _) = h.run("test-hostile", json!({"mode": "read", "file": input.display().to_string()})).await;
        assert_eq!(r.expect("the input read").text, format!("done {}", 16 << 20));
        let (read1, written1) = thread_io(tid);
        let (read, written) = (read1 - read0, written1 - written0);
        assert!(written < 1 << 20, "the runtime thread wrote {written} bytes itself");
        assert!(read < 1 << 20, "the runtime thread read {read} bytes itself");
    });
}

/// Chunks of every size are gathered into batches and written while the
/// skill goes on: the stored file is exactly what was written, its SHA-256
/// is right, and a skill that traps with a batch in flight leaves no file.
#[tokio::test]
async fn gathered_and_pipelined_writes_store_exactly_what_was_written() {
    use sha2::Digest;
    let h = harness(&config(closed_port(), "max-output-mb = 512"), &["hostile"]).await;
    let (r, _) = h.run("test-hostile", json!({"mode": "chunks", "n": 300})).await;
    let r = r.expect("stored");
    let a = &r.artifacts[0];
    let bytes = std::fs::read(&a.path).unwrap();
    let expected: Vec<u8> = (0..bytes.len() as u64).map(|b| (b % 251) as u8).collect();
    assert_eq!(r.text, format!("stored {}", expected.len()));
    assert!(bytes.len() > 4 << 20, "many batches: {} bytes", bytes.len());
    assert!(bytes == expected, "the file holds the bytes in order");
    assert_eq!(a.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(a.bytes, bytes.len() as u64);

    let before = h.output_files();
    let (r, _) = h.run("test-hostile", json!({"mode": "trap-mid-write", "n": 300})).await;
    assert!(r.is_err(), "the skill trapped");
    assert_eq!(h.output_files(), before, "no partial file left behind");
    // The per-file cap still holds across gathered chunks.
    let h = harness(&config(closed_port(), "max-artifact-mb = 1"), &["hostile"]).await;
    let (r, _) = h.run("test-hostile", json!({"mode": "chunks", "n": 300})).await;
    let (message, _) = limit_error(r);
    assert!(message.contains("limits.max-artifact-mb"), "{message}");
    assert!(h.output_files().is_empty(), "{:?}", h.output_files());
}
