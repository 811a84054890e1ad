//! What the sandbox costs, as ratios against a baseline measured in the same
//! run (never as absolute time limits):
//!
//! - `load`: loading a component from the compiled-component cache vs
//!   compiling it with Cranelift.
//! - `invoke`: one full `c41` invocation of a trivial skill (fresh Store,
//!   instantiate from the InstancePre, describe-free call, run journal) vs
//!   the same work done by calling a native Rust function through tokio
//!   (`spawn` + await).
//! - `invoke-pooled`: the same call as `c41 mcp` makes it (pooling allocator,
//!   copy-on-write memory images), without the run journal: median and p99
//!   of 1000 calls.
//! - `fetch`: hello-http downloading 8 MiB from a loopback server through the
//!   sandbox (policy check, pinned connect, guest streaming into the artifact
//!   store) vs a native hyper client reading the same body and writing it to a
//!   file; `fetch-durable`: the same baseline hashing the body (sha256) and
//!   fsyncing the file as the artifact store does, so the two rows separate
//!   the sandbox's cost from durability's. Each call stores a new file;
//!   `fetch-again` stores the same bytes under the same name, which the
//!   store deduplicates after comparing them with the file it already has.
//! - `upload`: audio-gen sending an 8 MiB video to an MMAudio-shaped server
//!   (the input file spliced into the request body in the host,
//!   `input-file.stream`) and storing its short reply vs a native hyper
//!   client posting the same multipart body read from the file and writing
//!   the reply; `upload-durable`: that baseline hashing and fsyncing the
//!   reply as the store does.
//!
//! Run: `cargo bench -p c41 --bench sandbox`.

use c41::app::App;
use c41::config;
use c41::events::Discard;
use c41::runtime::{Origin, Runtime, RuntimeOptions};
use http_body_util::{BodyExt, Empty};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Median of `n` runs of `f`.
async fn time<F, Fut>(n: usize, f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    percentiles(n, f).await.0
}

/// Median and 99th percentile of `n` runs of `f`.
async fn percentiles<F, Fut>(n: usize, mut f: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed());
    }
    v.sort();
    (v[n / 2], v[(n * 99 / 100).min(n - 1)])
}

fn report(name: &str, measured: Duration, baseline: Duration, what: &str) {
    println!(
        "{name:<13} {:>10.3} ms vs baseline {:>10.3} ms  ratio {:>8.2}x  ({what})",
        measured.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        measured.as_secs_f64() / baseline.as_secs_f64()
    );
}

fn guest_bytes(name: &str) -> Vec<u8> {
    let (_, path) = c41::guests::TEST_GUESTS.iter().find(|(n, _)| *n == name).unwrap();
    std::fs::read(path).unwrap()
}

/// Describe `bytes` and compile it (from the runtime's cache when it has it).
async fn prepare(runtime: &Runtime, bytes: &[u8]) {
    let skill = runtime.load(bytes.to_vec(), Origin::Builtin, &c41::config::Limits::default()).await.unwrap();
    skill.prepare().await.unwrap();
}

/// The baseline client: one GET over a fresh connection with plain hyper,
/// the whole body in memory.
async fn native_get(addr: std::net::SocketAddr, path: &str) -> bytes::Bytes {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path).header("host", addr.to_string()).body(Empty::<bytes::Bytes>::new()).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    resp.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = guest_bytes("hello-http");

    // load: cached vs compiled
    let uncached = Runtime::new(RuntimeOptions::default()).unwrap();
    let compile = time(3, || prepare(&uncached, &bytes)).await;
    let cached_rt = Runtime::new(RuntimeOptions { cache_dir: Some(tmp.path().join("cache")), pooling: None }).unwrap();
    prepare(&cached_rt, &bytes).await;
    let cached = time(20, || prepare(&cached_rt, &bytes)).await;
    report("load", cached, compile, "cache hit vs Cranelift compile: lower is better");

    // A loopback server with an 8 MiB body.
    let body: Arc<Vec<u8>> = Arc::new((0..8 << 20).map(|i: u32| ((i * 31) >> 7) as u8).collect());
    let app_router = {
        let body = body.clone();
        axum::Router::new().route(
            "/blob",
            axum::routing::get(move || {
                let b = body.clone();
                async move { b.as_ref().clone() }
            }),
        )
    };
    // An MMAudio-shaped sink: reads the whole upload, answers a short FLAC.
    let flac = c41_sim::media::flac(&c41_sim::media::Pcm { sample_rate: 44100, channels: 1, samples: vec![0.0; 4410] })
        .unwrap();
    let app_router = app_router
        .route(
            "/process",
            axum::routing::post(move |body: axum::body::Bytes| {
                let flac = flac.clone();
                async move {
                    std::hint::black_box(body.len());
                    ([("content-type", "audio/flac")], flac)
                }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app_router).await.unwrap() });

    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let clip = out_dir.join("clip.mp4");
    std::fs::write(&clip, body.as_ref()).unwrap();
    let text = format!(
        "output-dir = \"{}\"\n[services.web]\nurl = \"http://{addr}\"\nkind = \"http\"\n[skills.hello-http]\ngrants = [\"web\"]\n\
         [services.mmaudio]\nurl = \"http://{addr}\"\n[skills.audio-gen]\ngrants = [\"mmaudio\"]\n",
        out_dir.display()
    );
    let loaded = config::parse(&text, Path::new("/bench/c41.toml")).unwrap();
    let runaway = std::path::PathBuf::from(c41::guests::TEST_GUESTS.iter().find(|(n, _)| *n == "runaway").unwrap().1);
    let app = App::new(loaded, RuntimeOptions { cache_dir: Some(tmp.path().join("cache")), pooling: None }, &[runaway])
        .await
        .unwrap();

    // invoke: a trivial skill call vs a trivial native task
    let invoke = time(50, || async {
        app.invoke("test-runaway", json!({"mode": "ok"}), Arc::new(Discard), CancellationToken::new()).await.unwrap();
    })
    .await;
    let native = time(50, || async {
        tokio::spawn(async { std::hint::black_box(serde_json::to_string(&json!({"text": "fine"})).unwrap()) })
            .await
            .unwrap();
    })
    .await;
    report("invoke", invoke, native, "fresh sandboxed instance + call vs a native tokio task");

    // invoke-pooled: what `c41 mcp` does per call (pooling allocator,
    // copy-on-write memory images, the InstancePre reused), without the run
    // journal (its fsync is durability, measured apart): median and p99 of
    // 1000 calls.
    let loaded =
        config::parse(&format!("output-dir = \"{}\"\n", out_dir.display()), Path::new("/bench/c41.toml")).unwrap();
    let pooling = c41::runtime::PoolingOptions { instances: 16, max_memory_bytes: 512 << 20 };
    let runaway = std::path::PathBuf::from(c41::guests::TEST_GUESTS.iter().find(|(n, _)| *n == "runaway").unwrap().1);
    let pooled = App::with_state_root(
        loaded,
        RuntimeOptions { cache_dir: Some(tmp.path().join("cache")), pooling: Some(pooling) },
        &[runaway],
        None,
    )
    .await
    .unwrap();
    let call = || async {
        pooled
            .invoke("test-runaway", json!({"mode": "ok"}), Arc::new(Discard), CancellationToken::new())
            .await
            .unwrap();
    };
    for _ in 0..50 {
        call().await;
    }
    let calls: usize = std::env::var("CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let (median_pooled, p99_pooled) = percentiles(calls, call).await;
    let (median_native, p99_native) = percentiles(calls, || async {
        tokio::spawn(async { std::hint::black_box(serde_json::to_string(&json!({"text": "fine"})).unwrap()) })
            .await
            .unwrap();
    })
    .await;
    report(
        "invoke-pooled",
        median_pooled,
        median_native,
        "median of CALLS (1000): pooled instance + call vs a native tokio task",
    );
    report("  p99", p99_pooled, p99_native, "99th percentile of the same calls");
    // `ONLY_POOLED=1 CALLS=20000 perf record …`: profile this row alone.
    if std::env::var_os("ONLY_POOLED").is_some() {
        return;
    }

    // fetch: 8 MiB through the sandbox into the artifact store vs native hyper + file write.
    // Each call stores a new file, as the baseline writes one: the same bytes
    // under the same name again take the store's dedupe path, which compares
    // them with the file it has instead of syncing a copy (`fetch-again`).
    let fetch = |name: String| {
        let app = &app;
        async move {
            let input = json!({"path": "/blob", "name": name});
            app.invoke("hello-http", input, Arc::new(Discard), CancellationToken::new()).await.unwrap();
        }
    };
    let calls = std::sync::atomic::AtomicU32::new(0);
    let sandboxed =
        time(11, || fetch(format!("blob{}.bin", calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))).await;
    let again = time(11, || fetch("blob0.bin".to_string())).await;
    let out = tmp.path().join("native.bin");
    let native = time(11, || async {
        let data = native_get(addr, "/blob").await;
        std::fs::write(&out, &data).unwrap();
    })
    .await;
    report("fetch", sandboxed, native, "8 MiB via hello-http in the sandbox vs native hyper");
    // The same baseline doing what the artifact store does besides streaming:
    // sha256 of the body and an fsync of the file before it counts as stored.
    // The gap between the two rows is durability, not the sandbox.
    let native_durable = time(11, || async {
        let data = native_get(addr, "/blob").await;
        std::hint::black_box(<sha2::Sha256 as sha2::Digest>::digest(&data));
        let mut file = std::fs::File::create(&out).unwrap();
        std::io::Write::write_all(&mut file, &data).unwrap();
        file.sync_all().unwrap();
    })
    .await;
    report("fetch-durable", sandboxed, native_durable, "8 MiB via hello-http vs native hyper + sha256 + fsync");
    report(
        "fetch-again",
        again,
        native_durable,
        "the same 8 MiB under the same name: the store compares it with the file it has",
    );

    // upload: 8 MiB video streamed through audio-gen vs native hyper posting
    // the same multipart form (read from the file, sent whole).
    let input = json!({"prompt": "rain", "video": clip.display().to_string(), "seconds": 1, "seed": 1});
    let sandboxed = time(9, || async {
        app.invoke("audio-gen", input.clone(), Arc::new(Discard), CancellationToken::new()).await.unwrap();
    })
    .await;
    let native_upload = |durable: bool| {
        let (clip, out_dir) = (clip.clone(), out_dir.clone());
        async move {
            let video = tokio::fs::read(&clip).await.unwrap();
            let mut form = Vec::with_capacity(video.len() + 1024);
            for (k, v) in [("prompt", "rain"), ("duration", "1"), ("seed", "1")] {
                form.extend_from_slice(
                    format!("--b\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
                );
            }
            form.extend_from_slice(b"--b\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n");
            form.extend_from_slice(&video);
            form.extend_from_slice(b"\r\n--b--\r\n");
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            let req = http::Request::post("/process")
                .header("host", addr.to_string())
                .header("content-type", "multipart/form-data; boundary=b")
                .body(http_body_util::Full::new(bytes::Bytes::from(form)))
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            let data = resp.into_body().collect().await.unwrap().to_bytes();
            let mut file = std::fs::File::create(out_dir.join("native.flac")).unwrap();
            std::io::Write::write_all(&mut file, &data).unwrap();
            if durable {
                // As the store keeps the reply: hashed and synced.
                std::hint::black_box(<sha2::Sha256 as sha2::Digest>::digest(&data));
                file.sync_all().unwrap();
            }
        }
    };
    let native = time(9, || native_upload(false)).await;
    let native_durable = time(9, || native_upload(true)).await;
    report("upload", sandboxed, native, "8 MiB video spliced by audio-gen in the sandbox vs native hyper");
    report("upload-durable", sandboxed, native_durable, "the same vs native hyper storing the reply hashed and synced");
}
