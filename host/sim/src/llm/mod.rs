//! Ollama and OpenAI-compatible LLM server simulators.
//!
//! A real Ollama serves its native `/api/*` and the OpenAI-compatible `/v1/*`
//! API on one port, with cold loads, LRU eviction and a bounded queue; clients
//! (routers, fallback chains) must cope with all of that. [`LlmSim`] fakes it
//! deterministically: every reply names the model that produced it, so a test
//! can tell which backend answered, and fault switches let tests exercise
//! error paths that a real server only shows under load.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use c41_sim::llm::{LlmConfig, LlmSim};
//! let sim = LlmSim::new(LlmConfig::default());
//! let server = sim.serve(0).await?; // 127.0.0.1, any free port
//! println!("ollama at {}, openai at {}/v1", server.url(), server.url());
//! # Ok(()) }
//! ```

mod admit;
mod catalogue;
mod ollama;
mod openai;
mod reply;
mod server;
mod state;
mod stream;
mod util;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use server::SimServer;

use state::Shared;

/// What a model can do; requests needing a missing capability get a 400,
/// which is how a router learns it picked the wrong model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Plain text generation (every chat model).
    pub completion: bool,
    /// Native tool calling.
    pub tools: bool,
    /// Separate reasoning output (`think`).
    pub thinking: bool,
    /// Image input.
    pub vision: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self { completion: true, tools: false, thinking: false, vision: false }
    }
}

impl Capabilities {
    /// The names `/api/show` reports, in Ollama's order.
    pub fn names(&self) -> Vec<&'static str> {
        [(self.completion, "completion"), (self.tools, "tools"), (self.thinking, "thinking"), (self.vision, "vision")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect()
    }
}

/// One model the simulator "has pulled".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimModel {
    /// Name as clients use it; `x` and `x:latest` are the same model.
    pub name: String,
    /// Architecture family (`details.family`).
    pub family: String,
    /// Human-readable size, e.g. `"30.5B"`.
    pub parameter_size: String,
    /// Quantization level, e.g. `"Q4_K_M"`.
    pub quantization: String,
    /// What requests it accepts.
    pub capabilities: Capabilities,
    /// Bytes on disk, also reported as `size_vram` once loaded.
    pub size: u64,
    /// Context window reported by `/api/ps` and `/api/show`.
    pub context_length: u64,
}

impl SimModel {
    /// A small completion-only model; refine it with the `with_*` builders.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            family: "llama".into(),
            parameter_size: "8B".into(),
            quantization: "Q4_K_M".into(),
            capabilities: Capabilities::default(),
            size: 4_920_753_328,
            context_length: 4096,
        }
    }

    /// Sets the architecture family.
    pub fn with_family(mut self, family: impl Into<String>) -> Self {
        self.family = family.into();
        self
    }

    /// Sets the parameter size label.
    pub fn with_parameter_size(mut self, size: impl Into<String>) -> Self {
        self.parameter_size = size.into();
        self
    }

    /// Sets the quantization label.
    pub fn with_quantization(mut self, q: impl Into<String>) -> Self {
        self.quantization = q.into();
        self
    }

    /// Sets the size in bytes.
    pub fn with_size(mut self, bytes: u64) -> Self {
        self.size = bytes;
        self
    }

    /// Sets the context window.
    pub fn with_context_length(mut self, tokens: u64) -> Self {
        self.context_length = tokens;
        self
    }

    /// Enables tool calling.
    pub fn with_tools(mut self) -> Self {
        self.capabilities.tools = true;
        self
    }

    /// Enables `think`.
    pub fn with_thinking(mut self) -> Self {
        self.capabilities.thinking = true;
        self
    }

    /// Enables image input.
    pub fn with_vision(mut self) -> Self {
        self.capabilities.vision = true;
        self
    }

    /// A catalogue resembling the studio's models, for the demo and quick tests.
    pub fn catalogue() -> Vec<SimModel> {
        vec![
            SimModel::new("qwen3-coder")
                .with_family("qwen3moe")
                .with_parameter_size("30.5B")
                .with_size(18_556_699_863)
                .with_context_length(262_144)
                .with_tools(),
            SimModel::new("gpt-oss")
                .with_family("gptoss")
                .with_parameter_size("20.9B")
                .with_quantization("MXFP4")
                .with_size(13_780_173_724)
                .with_context_length(131_072)
                .with_tools()
                .with_thinking(),
            SimModel::new("llama3.2")
                .with_parameter_size("3.2B")
                .with_size(2_019_393_189)
                .with_context_length(131_072)
                .with_tools(),
            SimModel::new("llava")
                .with_parameter_size("7B")
                .with_quantization("Q4_0")
                .with_size(4_733_363_377)
                .with_vision(),
            SimModel::new("smollm2")
                .with_parameter_size("135M")
                .with_quantization("Q4_1")
                .with_size(92_000_000)
                .with_context_length(8192),
        ]
    }
}

/// How the simulated server behaves.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// The models it can serve; anything else is a 404.
    pub models: Vec<SimModel>,
    /// How long a cold load delays the first byte.
    pub load_time: Duration,
    /// How many models fit at once; loading one more evicts the least
    /// recently used idle model.
    pub max_loaded: usize,
    /// Pause before each streamed token (also spent, in total, by
    /// non-streaming replies).
    pub token_delay: Duration,
    /// Requests in flight (loading, queued or generating) beyond this get 503.
    pub max_pending: usize,
    /// How long a model stays loaded after a request without `keep_alive`.
    pub keep_alive: Duration,
    /// What `/api/version` reports.
    pub version: String,
    /// How many characters of the user's message a reply echoes.
    pub echo_chars: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            models: SimModel::catalogue(),
            load_time: Duration::from_millis(100),
            max_loaded: 3,
            token_delay: Duration::from_millis(5),
            max_pending: 512,
            keep_alive: Duration::from_secs(300),
            version: "0.12.6".into(),
            echo_chars: 80,
        }
    }
}

/// Which API a logged request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /api/chat`.
    OllamaChat,
    /// `POST /api/generate`.
    OllamaGenerate,
    /// `POST /v1/chat/completions`.
    OpenAiChat,
}

/// One inference request as the simulator saw it, for assertions about
/// routing ("which model answered what").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Endpoint it came through.
    pub api: Api,
    /// Model name as the client sent it.
    pub model: String,
    /// Canonical name (`name:tag`) of the model that answered, if one did.
    pub served_by: Option<String>,
    /// The last user message (or prompt) it answered.
    pub prompt: String,
    /// Full reply content, before any `num_predict`/`max_tokens` cut.
    pub reply: String,
    /// Names of the tools it called.
    pub tool_calls: Vec<String>,
    /// HTTP status sent.
    pub status: u16,
    /// Whether the client asked for streaming.
    pub stream: bool,
    /// Whether it waited for a cold load.
    pub cold_load: bool,
    /// Error sent, as a status body or mid-stream line.
    pub error: Option<String>,
}

impl RequestRecord {
    /// The record of a request refused before any reply (an error status
    /// or an error line), in either API.
    pub(crate) fn failed(api: Api, model: &str, messages: &[reply::Msg], stream: bool, status: u16, msg: &str) -> Self {
        RequestRecord {
            api,
            model: model.to_string(),
            served_by: None,
            prompt: messages.iter().rev().find(|m| m.role == "user").map(|m| m.content.clone()).unwrap_or_default(),
            reply: String::new(),
            tool_calls: Vec::new(),
            status,
            stream,
            cold_load: false,
            error: Some(msg.to_string()),
        }
    }
}

/// A simulated Ollama (native and OpenAI-compatible API) with shared,
/// inspectable state; clones share that state.
#[derive(Clone)]
pub struct LlmSim {
    shared: Arc<Shared>,
}

impl LlmSim {
    /// Builds a simulator with nothing loaded.
    pub fn new(config: LlmConfig) -> Self {
        Self { shared: Arc::new(Shared::new(config)) }
    }

    /// The native Ollama API under `/api/*` (plus `GET /`).
    pub fn ollama_router(&self) -> Router {
        ollama::router(self.shared.clone())
    }

    /// The OpenAI-compatible API under `/v1/*`.
    pub fn openai_router(&self) -> Router {
        openai::router(self.shared.clone())
    }

    /// Both APIs on one router, as a real Ollama serves them on one port,
    /// honouring the `c41-sim-fault` request header, with the fault control
    /// route ([`crate::control::CONTROL_PATH`]) beside them.
    pub fn router(&self) -> Router {
        self.ollama_router()
            .merge(self.openai_router())
            .layer(axum::middleware::from_fn_with_state(self.shared.clone(), request_fault))
            .merge(crate::control::router(Arc::new(self.clone())))
    }

    /// Serves [`router`](Self::router) on `127.0.0.1:port` (0 = any free
    /// port) in a background task; only this path honours
    /// [`set_down`](Self::set_down).
    pub async fn serve(&self, port: u16) -> std::io::Result<SimServer> {
        server::serve(self.router(), self.shared.down_receiver(), port).await
    }

    /// Makes the next `n` inference requests (chat, generate, chat
    /// completions) fail with `status` and an error body in the API's shape.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.shared.fail_next(n, status);
    }

    /// Makes the next inference request break after a couple of tokens: an
    /// error line (NDJSON) or event (SSE) while the status stays 200, or a
    /// 500 if it was not streaming.
    pub fn error_mid_stream_next(&self) {
        self.shared.error_mid_stream_next();
    }

    /// Takes a served simulator down (new connections refused, open ones,
    /// including streams in progress, dropped) or brings it back up on the
    /// same port.
    pub fn set_down(&self, down: bool) {
        self.shared.set_down(down);
    }

    /// Whether [`set_down`](Self::set_down) is in force.
    pub fn is_down(&self) -> bool {
        self.shared.is_down()
    }

    /// Changes the per-token delay for requests that start from now on.
    pub fn set_token_delay(&self, delay: Duration) {
        self.shared.set_token_delay(delay);
    }

    /// Changes how long cold loads take from now on.
    pub fn set_load_time(&self, load_time: Duration) {
        self.shared.set_load_time(load_time);
    }

    /// Loads a model instantly (a warm start for tests); false if unknown.
    pub fn preload(&self, model: &str) -> bool {
        self.shared.preload(model)
    }

    /// Unloads every idle model.
    pub fn unload_all(&self) {
        self.shared.unload_all();
    }

    /// Canonical names of the loaded models, least recently used first.
    pub fn loaded_models(&self) -> Vec<String> {
        self.shared.loaded_names()
    }

    /// Every inference request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Requests currently loading, queued or streaming.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Model listings served so far (`GET /api/tags`, `/api/ps`,
    /// `/v1/models`): what a client's discovery costs the server.
    pub fn listings(&self) -> usize {
        self.shared.listings.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Cold loads abandoned because the client disconnected mid-load.
    pub fn aborted_loads(&self) -> usize {
        self.shared.aborted_loads()
    }
}

/// A request's own `c41-sim-fault` header: the failure comes in the shape of
/// the API that was called.
/// An armed `delay` applies first.
async fn request_fault(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if matches!(req.uri().path(), "/api/tags" | "/api/ps" | "/v1/models") {
        shared.listings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let gate = crate::control::Gate {
        delay: shared.first_byte_delay(),
        // Armed failures are the inference requests' own (see `admit`).
        armed: |_: &axum::extract::Request| None,
        fail: |req: &axum::extract::Request, status: axum::http::StatusCode| {
            let msg = format!("simulated failure ({})", status.as_u16());
            if req.uri().path().starts_with("/v1/") {
                openai::error(status, &msg, None)
            } else {
                ollama::error(status, msg)
            }
        },
        drain: false,
    };
    crate::control::gate(req, next, gate).await
}

impl crate::control::FaultTarget for LlmSim {
    fn kind(&self) -> &'static str {
        "ollama"
    }

    fn supported(&self) -> &'static [&'static str] {
        &["delay", "fail", "down", "clear", "mid-stream-error", "token-delay", "load-time"]
    }

    fn apply(&self, fault: &crate::control::FaultSpec) -> Result<(), String> {
        use crate::control::FaultSpec as F;
        match fault {
            // A delay before the first byte: what a far or overloaded server
            // looks like, as opposed to the per-token delay.
            F::Delay(d) => self.shared.set_first_byte_delay(*d),
            F::Fail { count, status } => self.fail_next(*count as usize, *status),
            F::Down(d) => {
                let me = self.clone();
                crate::control::down_for(*d, move |down| me.set_down(down));
            }
            F::Clear => self.shared.clear_faults(),
            F::MidStreamError => self.error_mid_stream_next(),
            F::TokenDelay(d) => self.set_token_delay(*d),
            F::LoadTime(d) => self.set_load_time(*d),
            F::Restart | F::StallWs(_) | F::DropView(_) | F::FailNode { .. } => {
                return Err(crate::control::unsupported(self, fault));
            }
        }
        Ok(())
    }
}

impl Default for LlmSim {
    fn default() -> Self {
        Self::new(LlmConfig::default())
    }
}
