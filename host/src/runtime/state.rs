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
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
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
    pub(crate) max_artifact_bytes: u64,
    pub(crate) produced: Arc<Mutex<Vec<Produced>>>,
    pub(crate) inputs: FileInputs,
    pub(crate) cancel: CancellationToken,
    pub(crate) state: Option<Arc<crate::imports::state::StateStore>>,
    pub(crate) deadline: Instant,
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

/// Caps linear memory and remembers that the cap was hit, so the host can
/// say "memory limit" instead of a bare trap.
pub struct MemoryLimiter {
    inner: StoreLimits,
    limit: u64,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    /// A limiter for `limits.memory_bytes`.
    pub fn new(limits: &Limits) -> Self {
        let inner = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes as usize)
            .instances(64)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        MemoryLimiter { inner, limit: limits.memory_bytes, hit: false }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.hit = true;
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
