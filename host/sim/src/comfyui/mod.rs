//! ComfyUI simulator: the HTTP + websocket API of a ComfyUI server, on loopback.
//!
//! Clients of ComfyUI fail in ways that only show against a real server:
//! events that go only to the submitting socket, `{}` history for running and
//! unknown jobs alike, validation errors only in the 400 body, renamed
//! uploads, cooperative interrupts, restarts that forget everything. This
//! simulator reproduces those behaviours as recorded from ComfyUI 0.3.64 (and
//! the newer `/api/jobs` endpoints behind a switch), executes workflows "for
//! real in a small way" (real PNG/MP4/WebM/WebP/FLAC/MP3 files of the
//! requested size and length), and exposes fault switches so tests can make it
//! misbehave on purpose.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use c41_sim::comfyui::{ComfyConfig, ComfySim};
//! let sim = ComfySim::new(ComfyConfig::default());
//! let addr = sim.start("127.0.0.1:0").await?; // serves in the background
//! println!("ComfyUI at http://{addr}");
//! # Ok(()) }
//! ```

mod execute;
mod faults;
mod graph;
mod nodes;
mod objinfo;
mod pyfmt;
mod routes;
mod save;
mod state;
mod training;
mod validate;
mod ws;

#[cfg(test)]
mod compare;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use faults::Fault;

/// What the simulated server has installed and how it behaves.
#[derive(Debug, Clone)]
pub struct ComfyConfig {
    /// Installed model files per folder (`checkpoints`, `diffusion_models`,
    /// `vae`, `text_encoders`, `audio_encoders`, `mmaudio`, `loras`, ...).
    /// Loader nodes accept only these names; `unet` and `clip` are aliases.
    pub models: BTreeMap<String, Vec<String>>,
    /// Time each sampler step takes (KSampler, SamplerCustomAdvanced, MMAudio...),
    /// so progress events and interrupts can be exercised.
    pub step_delay: Duration,
    /// Time every other executed node takes.
    pub node_delay: Duration,
    /// Behave like a newer server (≥ 0.38): serve `/api/jobs`, reject
    /// non-uuid4 `prompt_id`s with `invalid_prompt_id`, and report unknown
    /// classes as `missing_node_type`. Off: answer those routes with 404 and
    /// report unknown classes as `invalid_prompt`, like 0.3.64.
    pub jobs_api: bool,
    /// Send binary preview frames during sampler steps.
    pub previews: bool,
    /// History entries kept before the oldest are dropped (real: 10000).
    pub history_cap: usize,
    /// The install path used in error messages and tracebacks.
    pub base_dir: String,
    /// `comfyui_version` in `/system_stats`.
    pub version: String,
    /// Largest side of encoded video frames (MP4, WebM, animated WebP/PNG,
    /// GIF); bigger requests are scaled down, keeping the aspect ratio and the
    /// frame count. `None` renders the requested size, which for a default
    /// Wan or HuMo workflow (640×640×81) costs seconds of encoding in debug
    /// builds. Still images are always full size.
    pub video_max_side: Option<u32>,
    /// Node classes this server lacks (an older ComfyUI, a custom node pack
    /// not installed): absent from `/object_info` and unknown to `/prompt`.
    pub without_nodes: Vec<String>,
    /// Report each training step of `TrainLoraNode` as `progress` (a
    /// server whose trainer uses ComfyUI's ProgressBar). Off, as in 0.3.64:
    /// the trainer's steps go only to the server's console (tqdm), so a
    /// client sees the node start and, minutes later, end.
    pub training_progress: bool,
    /// List LoRAs that `SaveLoRANode` wrote under `output/loras` among the
    /// `loras` (names relative to it), as a server whose
    /// `extra_model_paths.yaml` adds `output/loras` to its LoRA paths does:
    /// a trained LoRA can then be used without copying it. Off: only
    /// `models/loras` (the default install).
    pub trained_loras_visible: bool,
}

impl Default for ComfyConfig {
    /// A studio workstation: the Wan 2.2, HuMo, Flux 2, Z-Image and MMAudio
    /// files the skills' workflows name; quick steps; the newer API on.
    fn default() -> Self {
        let mut models = BTreeMap::new();
        let mut put = |folder: &str, files: &[&str]| {
            models.insert(folder.to_string(), files.iter().map(|s| s.to_string()).collect());
        };
        put(
            "diffusion_models",
            &[
                "flux2_dev_fp8mixed.safetensors",
                "humo_17B_fp8_e4m3fn.safetensors",
                "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
                "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
                "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
                "z_image_turbo_bf16.safetensors",
            ],
        );
        put(
            "text_encoders",
            &[
                "mistral_3_small_flux2_fp8.safetensors",
                "qwen_3_4b.safetensors",
                "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
            ],
        );
        put("vae", &["ae.safetensors", "flux2-vae.safetensors", "wan_2.1_vae.safetensors"]);
        put("audio_encoders", &["whisper_large_v3_fp16.safetensors"]);
        put(
            "mmaudio",
            &[
                "apple_DFN5B-CLIP-ViT-H-14-384_fp16.safetensors",
                "mmaudio_large_44k_v2_fp16.safetensors",
                "mmaudio_synchformer_fp16.safetensors",
                "mmaudio_vae_44k_fp16.safetensors",
            ],
        );
        put("checkpoints", &[]);
        put("loras", &[]);
        ComfyConfig {
            models,
            step_delay: Duration::from_millis(5),
            node_delay: Duration::ZERO,
            jobs_api: true,
            previews: true,
            history_cap: 10_000,
            base_dir: "/opt/ComfyUI".into(),
            version: "0.3.64".into(),
            video_max_side: None,
            without_nodes: Vec::new(),
            training_progress: false,
            trained_loras_visible: true,
        }
    }
}

impl ComfyConfig {
    /// Replaces the installed files of one model folder.
    pub fn with_models(mut self, folder: &str, files: &[&str]) -> Self {
        let folder = objinfo::canonical_folder(folder).to_string();
        self.models.insert(folder, files.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Sets how long each sampler step and each other node take.
    pub fn with_delays(mut self, step: Duration, node: Duration) -> Self {
        self.step_delay = step;
        self.node_delay = node;
        self
    }

    /// A server lacking these node classes (an older ComfyUI: `Flux2Scheduler`
    /// and `EmptyFlux2LatentImage` are newer than 0.3.64).
    pub fn without_nodes(mut self, classes: &[&str]) -> Self {
        self.without_nodes.extend(classes.iter().map(|c| c.to_string()));
        self
    }

    /// Switches between the newer (true) and the 0.3.64 (false) server.
    pub fn with_jobs_api(mut self, on: bool) -> Self {
        self.jobs_api = on;
        self
    }
}

/// A running simulated ComfyUI: cheap to clone, all clones share one server state.
#[derive(Clone)]
pub struct ComfySim {
    shared: Arc<state::Shared>,
}

/// A file the simulator holds, as `/view` would address it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileRef {
    /// `input`, `output` or `temp`.
    pub kind: String,
    /// Folder below the kind's root ("" for the root).
    pub subfolder: String,
    /// File name.
    pub filename: String,
}

impl ComfySim {
    /// A fresh server: empty queue and history, no uploads, no outputs.
    pub fn new(config: ComfyConfig) -> Self {
        ComfySim { shared: Arc::new(state::Shared::new(config)) }
    }

    /// All routes, also under `/api/...`. Starts the executor on the current
    /// tokio runtime, so call it from inside one.
    /// The fault control route ([`crate::control::CONTROL_PATH`]) is served
    /// beside them, outside the faults.
    pub fn router(&self) -> axum::Router {
        execute::ensure_worker(&self.shared);
        routes::router(self.shared.clone()).merge(crate::control::router(Arc::new(self.clone())))
    }

    /// Serves on `listener` until the listener fails; the `down` fault closes
    /// the port and reopens it on the same address.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let app = self.router();
        let listener = crate::offswitch::OffSwitch::new(listener, self.shared.faults.down.subscribe())?;
        axum::serve(listener, app).await
    }

    /// Binds `addr` (e.g. `"127.0.0.1:0"`), serves in a background task and
    /// returns the bound address.
    pub async fn start(&self, addr: &str) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.serve(listener).await {
                tracing::warn!("comfyui sim stopped: {e}");
            }
        });
        Ok(bound)
    }

    /// The configuration the server was made with.
    pub fn config(&self) -> &ComfyConfig {
        &self.shared.cfg
    }

    /// Jobs waiting plus the one running.
    pub fn queue_remaining(&self) -> usize {
        self.shared.lock().queue_remaining()
    }

    /// Number of history entries.
    pub fn history_len(&self) -> usize {
        self.shared.lock().history.len()
    }

    /// Every file held (uploads, outputs, temp previews).
    pub fn files(&self) -> Vec<FileRef> {
        self.shared.lock().files.keys().cloned().collect()
    }

    /// The bytes of one held file.
    pub fn file(&self, kind: &str, subfolder: &str, filename: &str) -> Option<bytes::Bytes> {
        let key = FileRef { kind: kind.into(), subfolder: subfolder.into(), filename: filename.into() };
        self.shared.lock().files.get(&key).cloned()
    }

    /// Places a file as if it had been uploaded (or copied into `input/`).
    pub fn put_file(&self, kind: &str, subfolder: &str, filename: &str, data: impl Into<bytes::Bytes>) {
        let key = FileRef { kind: kind.into(), subfolder: subfolder.into(), filename: filename.into() };
        self.shared.lock().files.insert(key, data.into());
    }

    /// Client ids with an open websocket.
    pub fn ws_clients(&self) -> Vec<String> {
        self.shared.clients.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// Simulates a server restart: queue, history and cache are wiped, the
    /// running job vanishes without a trace, and every websocket is closed.
    /// Files on "disk" (uploads, outputs) survive, as they would.
    pub fn restart(&self) {
        self.shared.restart();
    }

    /// Arms a fault; see [`Fault`]. Faults stay until [`clear_faults`](Self::clear_faults)
    /// unless they count themselves down.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.inject(fault);
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Websockets stay open but silently stop delivering anything (true), or resume (false).
    pub fn set_stall_ws(&self, on: bool) {
        self.inject(Fault::StallWebsocket(on));
    }

    /// The next `n` HTTP requests answer `status` (e.g. 500 or 503) instead.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.inject(Fault::FailRequests { count: n, status });
    }

    /// Closes the port (true; open connections fail on their next read or
    /// write) or reopens it (false). Only servers started by
    /// [`start`](Self::start) or [`serve`](Self::serve) honour it.
    pub fn set_down(&self, down: bool) {
        self.shared.faults.down.send_replace(down);
    }
}

impl crate::control::FaultTarget for ComfySim {
    fn kind(&self) -> &'static str {
        "comfyui"
    }

    fn supported(&self) -> &'static [&'static str] {
        &["delay", "fail", "down", "clear", "restart", "stall-ws", "drop-view", "fail-node"]
    }

    fn apply(&self, fault: &crate::control::FaultSpec) -> Result<(), String> {
        use crate::control::FaultSpec as F;
        match fault.clone() {
            F::Delay(d) => self.inject(Fault::Delay(d)),
            F::Fail { count, status } => self.fail_next(count, status),
            F::Down(d) => {
                let me = self.clone();
                crate::control::down_for(d, move |down| me.set_down(down));
            }
            F::Clear => self.clear_faults(),
            F::Restart => self.restart(),
            F::StallWs(on) => self.set_stall_ws(on),
            F::DropView(n) => self.inject(Fault::DropView(Some(n))),
            F::FailNode { class_type, message } => self.inject(Fault::FailNode { class_type, message }),
            F::MidStreamError | F::TokenDelay(_) | F::LoadTime(_) => {
                return Err(crate::control::unsupported(self, fault));
            }
        }
        Ok(())
    }
}
