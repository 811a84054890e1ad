//! Shared helpers: a loopback HTTP server that records what it saw, and an
//! [`App`] built from a config string.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use c41::app::App;
use c41::config::{self, LoadedConfig};
use c41::events::Recorder;
use c41::runtime::RuntimeOptions;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The path of a test guest component built by build.rs.
pub fn guest(name: &str) -> PathBuf {
    let (_, path) = c41::guests::TEST_GUESTS.iter().find(|(n, _)| *n == name).expect("test guest exists");
    PathBuf::from(path)
}

/// A shared compiled-component cache, so tests compile each guest once.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c41-component-cache")
}

/// What the test server saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Request paths, in order.
    pub paths: Arc<Mutex<Vec<String>>>,
    /// The Authorization header of each request.
    pub auth: Arc<Mutex<Vec<Option<String>>>>,
}

/// The body `/big` serves: 3 MiB of varied bytes.
pub fn big_body() -> Vec<u8> {
    (0..3 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
}

/// Serve `/`, `/hello.txt` and `/big` on 127.0.0.1 at a free port.
pub async fn serve() -> (SocketAddr, Seen) {
    async fn record(State(seen): State<Seen>, uri: axum::http::Uri, headers: HeaderMap) {
        seen.paths.lock().unwrap().push(uri.path().to_string());
        seen.auth
            .lock()
            .unwrap()
            .push(headers.get("authorization").map(|v| v.to_str().unwrap_or("").to_string()));
    }
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/hello.txt",
            get(|s: State<Seen>, u: axum::http::Uri, h: HeaderMap| async move {
                record(s, u, h).await;
                ([("content-type", "text/plain")], "hello from the forge\n")
            }),
        )
        .route(
            "/big",
            get(|s: State<Seen>, u: axum::http::Uri, h: HeaderMap| async move {
                record(s, u, h).await;
                ([("content-type", "application/octet-stream")], big_body())
            }),
        )
        .fallback(|s: State<Seen>, u: axum::http::Uri, h: HeaderMap| async move {
            record(s, u, h).await;
            "index"
        })
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// A port on 127.0.0.1 that nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A test host: a temp output dir and a config.
pub struct Harness {
    pub app: App,
    pub out: tempfile::TempDir,
}

/// Build an App from config text (`{out}` is replaced by the output dir)
/// with the given test guests loaded.
pub async fn harness(config_text: &str, guests: &[&str]) -> Harness {
    let out = tempfile::tempdir().unwrap();
    let text = config_text.replace("{out}", &out.path().display().to_string());
    let loaded: LoadedConfig = config::parse(&text, Path::new("/test/c41.toml")).expect("test config parses");
    let options = RuntimeOptions { cache_dir: Some(cache_dir()), pooling: None };
    let components: Vec<PathBuf> = guests.iter().map(|g| guest(g)).collect();
    let app = App::new(loaded, options, &components).await.expect("app builds");
    Harness { app, out }
}

impl Harness {
    /// Invoke `skill` with `input`, recording events.
    pub async fn run(&self, skill: &str, input: Value) -> (Result<c41::runtime::Invoked, c41::app::RunError>, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        let r = self.app.invoke(skill, input, rec.clone(), CancellationToken::new()).await;
        (r, rec)
    }

    /// Files in the output dir (names), sorted.
    pub fn output_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
