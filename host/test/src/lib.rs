//! Test a c41 skill component from `cargo test`, the way users will run it.
//!
//! A [`Harness`] is a real c41 host (the same wasmtime sandbox, grants,
//! limits and artifact store as `c41 run`) with the services a skill needs:
//! an axum router of your own as a mock service, or the built-in simulated
//! studio (ComfyUI, Ollama, MMAudio, HuMo, TTS). A [`Run`] holds what the
//! call returned and everything it did on the way: progress, log records,
//! streamed text, and the requests the sandbox refused.
//!
//! ```no_run
//! use c41_test::{Harness, json};
//!
//! # async fn weather() {
//! // Build the component (`cargo build --target wasm32-wasip2 --release`).
//! let wasm = c41_test::build_component(env!("CARGO_MANIFEST_DIR")).unwrap();
//! // A mock weather service.
//! let api = axum::Router::new().route("/now", axum::routing::get(|| async { "sunny" }));
//! let h = Harness::builder().component(&wasm).mock_service("forecast", "http", api).start().await;
//!
//! let run = h.run("weather", json!({"city": "Oslo"})).await;
//! assert_eq!(run.outcome().text, "sunny in Oslo");
//! assert!(run.denials().is_empty(), "asked only the granted service");
//! assert_eq!(run.artifact_bytes(0), b"sunny");
//! # }
//! ```
//!
//! Every component added with [`Builder::component`] is granted every
//! service the builder adds (as if you had run `c41 grant`), unless the
//! config text you give has its own `[skills.NAME]` table.
#![deny(missing_docs)]

use c41::app::{App, RunError};
use c41::config::{self, pins::Pin};
use c41::events::{Event, Recorder};
use c41::runtime::{InvokeError, Invoked, Origin, RuntimeOptions};
pub use c41_policy::Denial;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub use c41::app::RunError as Error;
pub use c41::events::Event as RunEvent;
pub use c41::runtime::Invoked as Outcome;
pub use c41::studio::SimStudio;
pub use serde_json::{Value, json};

/// Build the skill crate at `crate_dir` for `wasm32-wasip2` in release mode
/// and return the component's path (`target/wasm32-wasip2/release/NAME.wasm`
/// of that crate, or of `CARGO_TARGET_DIR`). Cargo's own output is shown
/// when the build fails.
pub fn build_component(crate_dir: impl AsRef<Path>) -> Result<PathBuf, String> {
    let dir = crate_dir.as_ref();
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .map_err(|e| format!("{}: {e}", dir.join("Cargo.toml").display()))?;
    let name = package_name(&manifest).ok_or_else(|| format!("{}: no [package] name", dir.display()))?;
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--target", "wasm32-wasip2", "--release"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build failed in {}:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr)));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| dir.join("target"));
    let wasm = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
    if wasm.is_file() { Ok(wasm) } else { Err(format!("cargo built no {}", wasm.display())) }
}

/// `name` of the `[package]` table, read without a TOML parser's worth of
/// dependencies: the first `name = "..."` line after `[package]`.
fn package_name(manifest: &str) -> Option<String> {
    let package = manifest.split("[package]").nth(1)?;
    let line = package.lines().take_while(|l| !l.trim_start().starts_with('[')).find(|l| {
        let l = l.trim_start();
        l.starts_with("name") && l["name".len()..].trim_start().starts_with('=')
    })?;
    Some(line.split_once('=')?.1.trim().trim_matches('"').to_string())
}

/// What a [`Harness`] will be: the config, the components, the services.
#[derive(Default)]
#[must_use = "call start() to get the harness"]
pub struct Builder {
    config: String,
    components: Vec<PathBuf>,
    services: Vec<(String, String, String)>,
    mocks: Vec<(String, String, axum::Router)>,
    studio: bool,
    cache_dir: Option<PathBuf>,
}

impl Builder {
    /// Load the component at `path` (a `.wasm` file), granted every service
    /// of this builder.
    pub fn component(mut self, path: impl AsRef<Path>) -> Self {
        self.components.push(path.as_ref().to_path_buf());
        self
    }

    /// Serve `router` on a free loopback port as the service `name` of
    /// `kind` (`http`, `comfyui`, `ollama`, ...): a mock of the server your
    /// skill talks to.
    pub fn mock_service(mut self, name: &str, kind: &str, router: axum::Router) -> Self {
        self.mocks.push((name.into(), kind.into(), router));
        self
    }

    /// A service that already runs (a real one, or one your test started).
    pub fn service(mut self, name: &str, kind: &str, url: &str) -> Self {
        self.services.push((name.into(), kind.into(), url.into()));
        self
    }

    /// Start the simulated studio (what `c41 sim` serves): services
    /// `comfyui`, `ollama`, `mmaudio`, `humo` and `tts`, reachable through
    /// [`Harness::studio`] to inspect them or break them on purpose.
    pub fn simulated_studio(mut self) -> Self {
        self.studio = true;
        self
    }

    /// More config text (TOML), as in a c41 config: settings, limits, your
    /// own grants. `{out}` stands for the harness's output directory; a
    /// top-level `output-dir` is added when the text has none.
    pub fn config(mut self, toml: &str) -> Self {
        self.config.push_str(toml);
        if !toml.ends_with('\n') {
            self.config.push('\n');
        }
        self
    }

    /// Where compiled components are cached (default: `C41_CACHE_DIR`, else
    /// c41's cache directory, as for `c41 run`).
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Start the services and the host. Panics with the reason when the
    /// config, a component or a service cannot be used: a test cannot go on.
    pub async fn start(self) -> Harness {
        let out = tempfile::tempdir().expect("a temp dir for artifacts");
        let state = tempfile::tempdir().expect("a temp dir for state");
        let mut services = self.services;
        let mut servers = Vec::new();
        for (name, kind, router) in self.mocks {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
            let addr = listener.local_addr().expect("its address");
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
            services.push((name, kind, format!("http://{addr}")));
        }
        let studio = match self.studio {
            true => {
                Some(SimStudio::start(c41::studio::SimPorts::default()).await.expect("the simulated studio starts"))
            }
            false => None,
        };
        if let Some(s) = &studio {
            services.extend(s.services().into_iter().map(|(n, k, u)| (n.to_string(), k.to_string(), u)));
        }
        let options = match self.cache_dir {
            Some(dir) => RuntimeOptions { cache_dir: Some(dir), pooling: None },
            None => RuntimeOptions::with_default_cache(),
        };

        // The components' names, to grant them (descriptions are cached).
        let runtime = c41::runtime::Runtime::new(options.clone()).expect("the runtime starts");
        let mut names = Vec::new();
        for path in &self.components {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let skill = runtime
                .load(bytes, Origin::File(path.clone()), &config::Limits::default())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            names.push(skill.description.name.clone());
        }

        let outdir = out.path().display().to_string();
        let mut text = self.config.replace("{out}", &outdir);
        if !text.lines().any(|l| l.trim_start().starts_with("output-dir")) {
            text.insert_str(0, &format!("output-dir = {:?}\n", outdir));
        }
        for (name, kind, url) in &services {
            text.push_str(&format!("\n[services.{name}]\nurl = {url:?}\nkind = {kind:?}\n"));
        }
        let all: Vec<String> = services.iter().map(|(n, ..)| format!("{n:?}")).collect();
        for name in names.iter().filter(|_| !all.is_empty()) {
            if !text.contains(&format!("[skills.{name}]")) {
                text.push_str(&format!("\n[skills.{name}]\ngrants = [{}]\n", all.join(", ")));
            }
        }
        // Relative paths in the text resolve against the working directory:
        // the crate's own folder under `cargo test`.
        let at = std::env::current_dir().unwrap_or_default().join("c41.toml");
        let loaded =
            config::parse(&text, &at).unwrap_or_else(|e| panic!("the test config does not parse: {e}\n---\n{text}"));
        let mut app = App::with_state_root(loaded, options, &self.components, Some(state.path().to_path_buf()))
            .await
            .unwrap_or_else(|e| panic!("the host does not start: {e:#}"));
        // As if the user had run `c41 grant` for each component.
        let pins: Vec<(String, Pin)> = app
            .catalog
            .iter()
            .filter_map(|s| match &s.origin {
                Origin::File(p) => {
                    Some((s.description.name.clone(), Pin { component: p.clone(), sha256: s.sha256.clone() }))
                }
                Origin::Builtin => None,
            })
            .collect();
        app.config.pins.extend(pins);
        Harness { app, out, studio, servers, config_text: text, _state: state }
    }
}

/// A running c41 host for one test. Dropping it stops its mock services and
/// removes its output and state directories.
pub struct Harness {
    /// The host, for what the harness does not wrap.
    pub app: App,
    /// The output directory (artifacts land here).
    pub out: tempfile::TempDir,
    studio: Option<SimStudio>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    config_text: String,
    /// This harness's own skill state and run journal: no test sees
    /// another's.
    _state: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

impl Harness {
    /// Start describing a harness.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Invoke `skill` with `input` as `c41 run` would, and keep everything
    /// it did.
    pub async fn run(&self, skill: &str, input: Value) -> Run {
        self.run_with(skill, input, CancellationToken::new()).await
    }

    /// [`run`](Self::run), cancelled when `cancel` is (as Ctrl-C or an MCP
    /// cancellation does).
    pub async fn run_with(&self, skill: &str, input: Value, cancel: CancellationToken) -> Run {
        let events = Arc::new(Recorder::default());
        let result = self.app.invoke(skill, input, events.clone(), cancel).await;
        Run { result, events }
    }

    /// The simulated studio, if [`Builder::simulated_studio`] started it.
    pub fn studio(&self) -> &SimStudio {
        self.studio.as_ref().expect("the harness was built without simulated_studio()")
    }

    /// The config the host runs with (services, grants and your text).
    pub fn config_text(&self) -> &str {
        &self.config_text
    }

    /// The names of the files in the output directory, sorted.
    pub fn output_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.out.path())
            .expect("the output directory")
            .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The stage (`queue`, `sampling`, `download`, ...).
    pub stage: String,
    /// Overall completion 0..=1, if the skill knew it.
    pub fraction: Option<f32>,
    /// Step n of m, if counted.
    pub step: Option<(u32, u32)>,
    /// The sentence shown to people.
    pub message: Option<String>,
}

/// One record the skill logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The message.
    pub message: String,
    /// The fields, as `key=value key=value`.
    pub fields: String,
}

/// What one invocation returned, and what it did on the way.
pub struct Run {
    /// The outcome, or how the call failed.
    pub result: Result<Invoked, RunError>,
    /// Every event, in order.
    pub events: Arc<Recorder>,
}

impl Run {
    /// The outcome; panics with the error when the call failed.
    #[track_caller]
    pub fn outcome(&self) -> &Invoked {
        match &self.result {
            Ok(o) => o,
            Err(e) => panic!("the run failed: {e}"),
        }
    }

    /// The error; panics when the call succeeded.
    #[track_caller]
    pub fn error(&self) -> &RunError {
        match &self.result {
            Ok(o) => panic!("the run succeeded (text: {:?})", o.text),
            Err(e) => e,
        }
    }

    /// The bytes of the `i`-th artifact of the outcome.
    #[track_caller]
    pub fn artifact_bytes(&self, i: usize) -> Vec<u8> {
        let a = self.outcome().artifacts.get(i).unwrap_or_else(|| panic!("the outcome has no artifact {i}"));
        std::fs::read(&a.path).unwrap_or_else(|e| panic!("{}: {e}", a.path.display()))
    }

    /// Every progress report, in order.
    pub fn progress(&self) -> Vec<Progress> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Progress { stage, fraction, step, message } => Some(Progress { stage, fraction, step, message }),
                _ => None,
            })
            .collect()
    }

    /// Every record the skill logged, in order.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Log { level, message, fields } => Some(LogRecord { level, message, fields }),
                _ => None,
            })
            .collect()
    }

    /// The text the skill streamed (`progress.text-delta`), joined.
    pub fn streamed_text(&self) -> String {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::TextDelta(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// Requests the sandbox refused, whether the call went on or failed.
    pub fn denials(&self) -> Vec<Denial> {
        match &self.result {
            Ok(o) => o.denials.clone(),
            Err(RunError::Invoke(InvokeError::Denied { denials, .. })) => denials.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// The parts, for tests written before [`Run`] existed.
    pub fn into_parts(self) -> (Result<Invoked, RunError>, Arc<Recorder>) {
        (self.result, self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::package_name;

    #[test]
    fn reads_the_package_name() {
        let m = "[workspace]\nname = \"no\"\n[package]\nversion = \"1\"\nname = \"weather-now\"\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(m).as_deref(), Some("weather-now"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }
}
