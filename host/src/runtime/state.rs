//! The per-invocation state every host import works on (`T` in
//! `Store<T>`): one per Store, so one per invocation; nothing is shared
//! between invocations except the read-only config and the artifact store.

use crate::config::{GrantedService, Limits};
use crate::events::EventSink;
use crate::imports::artifacts::Produced;
use crate::input::FileInputs;
use crate::sandbox::SandboxHooks;
use c41_artifacts::ArtifactStore;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Everything one invocation's host calls can see.
pub struct InvocationCtx {
    pub(crate) skill: String,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: SandboxHooks,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) services: Vec<GrantedService>,
    pub(crate) settings: serde_json::Map<String, serde_json::Value>,
    pub(crate) artifacts: Option<ArtifactStore>,
    pub(crate) limits: Limits,
    /// Input files and artifact writers open now (`limits.open-files`).
    pub(crate) files: super::budget::Slots,
    /// Bytes written to artifacts in this call (`limits.max-output-mb`).
    pub(crate) output_bytes: u64,
    /// Bytes `copy-from` moved from a stream into artifacts in the host.
    pub(crate) copied_in_host: u64,
    /// Bytes of input files the skill read into its memory (`input-file.read`).
    pub(crate) inputs_read_by_skill: u64,
    /// Limits the host enforced in this call.
    pub(crate) limit_log: super::budget::LimitLog,
    pub(crate) produced: Arc<Mutex<Vec<Produced>>>,
    pub(crate) inputs: FileInputs,
    pub(crate) cancel: CancellationToken,
    pub(crate) state: Option<Arc<crate::imports::state::StateStore>>,
    pub(crate) deadline: Instant,
    /// Bytes of sink buffers counted against `limits.memory-mb` so far
    /// ([`crate::events::TextBudget::held_at_most`]).
    pub(crate) buffered_charged: u64,
    /// The text-deltas so far, as [`crate::skill_text`] cleans them.
    pub(crate) text: crate::skill_text::TextStream,
}

impl WasiView for InvocationCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InvocationCtx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Most linear memories a component may define. Rust skills have one; the
/// pooling allocator reserves this many slots per instance, and a component
/// declaring more is refused when it is loaded (in every mode, so `c41 run`
/// and `c41 mcp` agree).
pub const MAX_MEMORIES: u32 = 4;
/// Most tables a component may define.
pub const MAX_TABLES: u32 = 16;
/// Most core instances inside one component.
pub const MAX_CORE_INSTANCES: u32 = 32;
/// Most handles (wasi:http fields, requests, bodies, pollables, artifact
/// writers, input files, websockets) one invocation may hold at once.
pub const MAX_HANDLES: usize = 4096;
/// Bytes a table element costs the host.
const TABLE_ELEMENT_BYTES: u64 = 8;

/// Caps what a store may hold: the *sum* of all its linear memories and
/// tables, plus the host-side bytes the guest makes the host keep (header
/// fields), against `limits.memory-mb`; remembers that the cap was hit, so
/// the host can say "memory limit" instead of a bare trap.
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
    /// Growth allowed but not yet confirmed (undone if it fails).
    pending: u64,
    /// What hit the cap (a linear memory, header fields, buffered text).
    pub(crate) hit: Option<String>,
}

impl MemoryLimiter {
    /// A limiter for `limits.memory_bytes`.
    pub fn new(limits: &Limits) -> Self {
        MemoryLimiter { limit: limits.memory_bytes, used: 0, pending: 0, hit: None }
    }

    /// Count `bytes` the host keeps on the guest's behalf; refuses (and
    /// marks the cap as hit) when they do not fit.
    pub fn charge(&mut self, bytes: u64, what: &str) -> wasmtime::Result<()> {
        if self.used.saturating_add(bytes) > self.limit {
            self.hit = Some(what.to_string());
            wasmtime::bail!("{what}: {bytes} more bytes would exceed limits.memory-mb ({} MiB)", self.limit >> 20);
        }
        self.used += bytes;
        Ok(())
    }

    fn grow(&mut self, current: u64, desired: u64, maximum: Option<usize>, what: &str) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current);
        if maximum.is_some_and(|m| desired > m as u64) {
            wasmtime::bail!("{what} cannot grow to {desired} bytes: beyond its own maximum");
        }
        self.charge(delta, what)?;
        self.pending = delta;
        Ok(true)
    }

    fn grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.used -= std::mem::take(&mut self.pending);
        Err(error.context("growing failed"))
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current as u64, desired as u64, maximum, "a linear memory")
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let max = maximum.map(|m| m.saturating_mul(TABLE_ELEMENT_BYTES as usize));
        let bytes = |n: usize| (n as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        self.grow(bytes(current), bytes(desired), max, "a table")
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed(error)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES as usize
    }
    fn tables(&self) -> usize {
        MAX_TABLES as usize
    }
    fn memories(&self) -> usize {
        MAX_MEMORIES as usize
    }
}
