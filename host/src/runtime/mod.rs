//! The wasmtime side: one [`Engine`] with a compiled-component cache, a
//! linker that provides exactly the imports of the `skill` world (plus the
//! WASI parts a Rust guest needs and the policed `wasi:http`), and
//! [`LoadedSkill`]s ready to instantiate.
//!
//! Loading a skill only describes it (see [`describe`]): the component is
//! compiled, or fetched from the cache, on its first invocation (or by
//! [`LoadedSkill::prepare`]), so listing skills and starting `c41 mcp` cost no
//! Cranelift. Each invocation gets a fresh Store and instance (no state leaks
//! between calls), built from an `InstancePre` made once per skill.

#[allow(missing_docs)]
pub mod bindings;
pub mod budget;
pub(crate) mod byte_lists;
mod cache;
mod cache_perms;
pub mod describe;
mod http_fields;
mod invoke;
mod output;
mod state;

pub use cache::{CacheOutcome, ComponentCache};
pub use invoke::{CANCEL_GRACE, InvokeError, InvokeRequest, Invoked};
pub use state::{InvocationCtx, MAX_CORE_INSTANCES, MAX_HANDLES, MAX_MEMORIES, MAX_TABLES};

use crate::config::Limits;
use crate::input::InputSchema;
use bindings::SkillPre;
use bytes::Bytes;
use describe::{DescribeRecord, RawDescription};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch ticks. Each tick lets a running guest yield to the
/// async runtime, so deadlines and cancellation fire even in a tight loop.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine settings.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached (none: compile every time).
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator (long-running modes: `c41 mcp`), sized for
    /// this many concurrent instances with this much memory each.
    pub pooling: Option<PoolingOptions>,
}

impl RuntimeOptions {
    /// The CLI's engine: compiled components cached in the default cache
    /// dir (`C41_CACHE_DIR`, else the platform cache dir), no pooling.
    pub fn with_default_cache() -> Self {
        RuntimeOptions { cache_dir: cache::ComponentCache::default_dir(), pooling: None }
    }
}

/// Pooling allocator sizing.
#[derive(Debug, Clone, Copy)]
pub struct PoolingOptions {
    /// Concurrent instances.
    pub instances: u32,
    /// Largest linear memory per instance, in bytes.
    pub max_memory_bytes: u64,
}

/// Where a skill came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum Origin {
    /// Compiled into the `c41` binary.
    Builtin,
    /// A `.wasm` file (skills directory, config `component`, `--component`).
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// What a skill says about itself (`describe`), parsed and checked.
#[derive(Debug, Clone, Serialize)]
pub struct SkillDescription {
    /// Identifier and config key.
    pub name: String,
    /// Version.
    pub version: String,
    /// One line.
    pub summary: String,
    /// JSON Schema of the input.
    pub input_schema: serde_json::Value,
    /// What the outcome holds.
    pub output: String,
    /// Service kinds it may need (its ceiling).
    pub services: Vec<String>,
}

/// A described skill; its component is compiled on first use.
pub struct LoadedSkill {
    /// Its description.
    pub description: SkillDescription,
    /// Its compiled input schema.
    pub schema: InputSchema,
    /// Where it came from.
    pub origin: Origin,
    /// SHA-256 of the component's bytes: with the origin, its identity
    /// (grants belong to it, see `config::pins`).
    pub sha256: String,
    component: Arc<LazyComponent>,
}

/// A component's bytes and, once needed, its compiled form.
struct LazyComponent {
    shared: Arc<Shared>,
    bytes: Bytes,
    /// Hex SHA-256 of `bytes`: the pin, and the compile cache's key.
    sha256: String,
    origin: Origin,
    compiled: tokio::sync::OnceCell<(SkillPre<InvocationCtx>, CacheOutcome)>,
}

impl LazyComponent {
    /// Compile (or fetch from the cache) and link, once; on a blocking thread,
    /// so a server keeps answering while Cranelift works.
    async fn prepare(&self) -> Result<&(SkillPre<InvocationCtx>, CacheOutcome), LoadError> {
        let component_err = |message: String| LoadError::Component { origin: self.origin.clone(), message };
        self.compiled
            .get_or_try_init(|| async {
                let (shared, bytes, sha) = (self.shared.clone(), self.bytes.clone(), self.sha256.clone());
                let (component, outcome) =
                    tokio::task::spawn_blocking(move || shared.cache.load(&shared.engine, &bytes, &sha))
                        .await
                        .map_err(|e| component_err(format!("compiling: {e}")))?
                        .map_err(|e| component_err(format!("{e:#}")))?;
                check_resources(&component).map_err(component_err)?;
                let pre =
                    self.shared.linker.instantiate_pre(&component).map_err(|e| component_err(format!("{e:#}")))?;
                let pre = SkillPre::new(pre).map_err(|e| component_err(format!("{e:#}")))?;
                Ok((pre, outcome))
            })
            .await
    }
}

impl LoadedSkill {
    /// Compile the component now (from the cache when possible) unless that
    /// was done already; says whether the cache had it. `c41 install` and
    /// `c41 mcp`'s warm-up call this; an invocation does it on its own.
    pub async fn prepare(&self) -> Result<CacheOutcome, LoadError> {
        Ok(self.component.prepare().await?.1)
    }
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a component, or not of the `skill` world.
    #[error("{origin}: not a c41 skill component: {message}")]
    Component {
        /// Where from.
        origin: Origin,
        /// wasmtime's message.
        message: String,
    },
    /// `describe` failed or returned something unusable.
    #[error("{origin}: bad description: {message}")]
    Description {
        /// Where from.
        origin: Origin,
        /// Why.
        message: String,
    },
}

/// The engine, linker and cache shared by all skills of a process.
pub struct Runtime {
    shared: Arc<Shared>,
    ticker_stop: Arc<AtomicBool>,
}

/// What compiling a component needs; shared with each [`LoadedSkill`].
struct Shared {
    engine: Engine,
    linker: Linker<InvocationCtx>,
    cache: ComponentCache,
    /// With the pooling allocator: one permit per instance slot, held by
    /// every live store, so calls beyond the pool wait their turn instead
    /// of failing ("maximum concurrent limit reached").
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// How many times a component's `describe()` was called to load it
    /// (not answered from the cache): a cached description costs nothing.
    describe_calls: AtomicU64,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Build the engine and the linker.
    pub fn new(options: RuntimeOptions) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let mut slots = None;
        if let Some(p) = options.pooling {
            // Per-component caps times the instance count: a component that
            // fits the caps (checked at load) always finds room in the pool.
            let instances = p.instances.clamp(1, MAX_POOL_INSTANCES);
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(instances)
                .total_core_instances(instances * MAX_CORE_INSTANCES)
                .total_memories(instances * MAX_MEMORIES)
                .total_tables(instances * MAX_TABLES)
                .max_core_instances_per_component(MAX_CORE_INSTANCES)
                .max_memories_per_component(MAX_MEMORIES)
                .max_tables_per_component(MAX_TABLES)
                .max_memories_per_module(MAX_MEMORIES)
                .max_tables_per_module(MAX_TABLES)
                .max_memory_size(usize::try_from(p.max_memory_bytes).unwrap_or(usize::MAX))
                // Reset what a call touched with memset instead of madvise:
                // no page faults on the next call and no TLB-shootdown IPIs
                // to every core (the profile of a pooled call showed both).
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT / 16)
                // Only the pages a call dirtied are reset, where the kernel
                // can say which (Linux 6.7+ PAGEMAP_SCAN; elsewhere all).
                .pagemap_scan(wasmtime::Enabled::Auto)
                // What must be decommitted anyway goes in batches.
                .decommit_batch_size(8);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            slots = Some(Arc::new(tokio::sync::Semaphore::new(instances as usize)));
        }
        let engine = Engine::new(&config)?;

        let mut linker: Linker<InvocationCtx> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        http_fields::add_to_linker(&mut linker)?;
        // The world's own interfaces, one by one: `Skill::add_to_linker`
        // would also add wasi:io, which `copy-from` shares with wasmtime-wasi
        // (already linked above).
        {
            use bindings::c41::skill::*;
            fn ctx(ctx: &mut InvocationCtx) -> &mut InvocationCtx {
                ctx
            }
            log::add_to_linker::<_, HasSelf<_>>(&mut linker, ctx)?;
            progress::add_to_linker::<_, HasSelf<_>>(&mut linker, ctx)?;
            artifacts::add_to_linker::<_, HasSelf<_>>(&mut linker, ctx)?;
            settings::add_to_linker::<_, HasSelf<_>>(&mut linker, ctx)?;
            invocation::add_to_linker::<_, HasSelf<_>>(&mut linker, ctx)?;
            inputs::add_to_linker::<_, HasSelf<_>>(&mut linker, ctx)?;
            websocket::add_to_linker::<_, HasSelf<_>>(&mut linker, ctx)?;
            state::add_to_linker::<_, HasSelf<_>>(&mut linker, ctx)?;
        }
        byte_lists::add_to_linker(&mut linker)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new().name("c41-epoch".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        }
        let cache = ComponentCache::new(options.cache_dir);
        Ok(Runtime {
            shared: Arc::new(Shared { engine, linker, cache, slots, describe_calls: AtomicU64::new(0) }),
            ticker_stop,
        })
    }

    /// The engine (benchmarks, tests).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// The compiled-component cache (`c41 check` compiles through it).
    pub fn cache(&self) -> &ComponentCache {
        &self.shared.cache
    }

    /// How many times this runtime called a component's `describe()` to
    /// load it, rather than reading the cached answer (tests prove a
    /// looping `describe()` costs its deadline once).
    pub fn describe_calls(&self) -> u64 {
        self.shared.describe_calls.load(Ordering::Relaxed)
    }

    /// Describe a component: a built-in from the description embedded in it
    /// (no compiling), any other from the description cache, else by calling
    /// its `describe()` under `limits` (see [`describe::describe_limits`]) and
    /// caching the answer, a failure included. The component itself is
    /// compiled later, on first use.
    pub async fn load(
        &self,
        bytes: impl Into<Bytes>,
        origin: Origin,
        limits: &Limits,
    ) -> Result<LoadedSkill, LoadError> {
        let bytes = bytes.into();
        let sha256 = crate::config::pins::sha256_hex(&bytes);
        self.load_hashed(bytes, sha256, origin, limits).await
    }

    /// [`load`](Self::load) for bytes whose SHA-256 is known already: the
    /// built-ins', hashed when `c41` was built, so that a start does not hash
    /// some 10 MB of components again.
    pub async fn load_hashed(
        &self,
        bytes: Bytes,
        sha256: String,
        origin: Origin,
        limits: &Limits,
    ) -> Result<LoadedSkill, LoadError> {
        let component = Arc::new(LazyComponent {
            shared: self.shared.clone(),
            bytes,
            sha256: sha256.clone(),
            origin: origin.clone(),
            compiled: tokio::sync::OnceCell::new(),
        });
        let embedded = match origin {
            Origin::Builtin => describe::embedded(&component.bytes),
            Origin::File(_) => None,
        };
        let raw = match embedded {
            Some(raw) => raw,
            None => self.describe(&component, limits).await?,
        };
        let (description, schema) = describe::check(raw, &origin)?;
        Ok(LoadedSkill { description, schema, origin, sha256, component })
    }

    /// The component's own `describe()`, from the cache or by calling it.
    async fn describe(&self, component: &LazyComponent, limits: &Limits) -> Result<RawDescription, LoadError> {
        let limits = describe::describe_limits(limits);
        let (engine, cache, sha) = (&self.shared.engine, &self.shared.cache, &component.sha256);
        let failed = |message: String| LoadError::Description { origin: component.origin.clone(), message };
        let record = match cache.description(engine, sha).filter(|r| r.applies_to(&limits)) {
            Some(record) => record,
            None => {
                let (pre, _) = component.prepare().await?;
                self.shared.describe_calls.fetch_add(1, Ordering::Relaxed);
                let record = match invoke::describe(engine, pre, self.shared.slots.as_deref(), &limits).await {
                    Ok(d) => DescribeRecord::Described(d.into()),
                    Err(e) => DescribeRecord::failed(format!("{e:#}"), &limits),
                };
                cache.store_description(engine, sha, &record);
                record
            }
        };
        match record {
            DescribeRecord::Described(raw) => Ok(raw),
            DescribeRecord::Failed { message, .. } => Err(failed(message)),
        }
    }

    /// What the component's `describe()` itself answers, compiling it if
    /// need be and bypassing every cache (tests compare it with the fast
    /// path).
    pub async fn describe_by_calling(
        &self,
        bytes: impl Into<Bytes>,
        limits: &Limits,
    ) -> Result<RawDescription, LoadError> {
        let bytes = bytes.into();
        let component = LazyComponent {
            shared: self.shared.clone(),
            sha256: crate::config::pins::sha256_hex(&bytes),
            bytes,
            origin: Origin::Builtin,
            compiled: tokio::sync::OnceCell::new(),
        };
        let (pre, _) = component.prepare().await?;
        let d = invoke::describe(
            &self.shared.engine,
            pre,
            self.shared.slots.as_deref(),
            &describe::describe_limits(limits),
        )
        .await
        .map_err(|e| LoadError::Description { origin: Origin::Builtin, message: format!("{e:#}") })?;
        Ok(d.into())
    }
}

/// What a component may import: the interfaces `wit/skill.wit`'s world
/// names (wasi:filesystem and wasi:sockets link for `std` but are denied at
/// run time). `c41 check` and a test hold components to it.
pub const DOCUMENTED_IMPORTS: &[&str] = &[
    "c41:skill/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:http/types@",
    "wasi:http/outgoing-handler@",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Bytes of each pooled linear memory reset in place (memset) after a call,
/// rather than returned to the kernel: about what a Rust skill touches for
/// a small call.
const KEEP_RESIDENT: usize = 1 << 20;

/// Most instance slots the pooling allocator is sized for (`--max-concurrent`).
pub const MAX_POOL_INSTANCES: u32 = 256;

/// Refuse a component that defines more memories, tables or core instances
/// than one instance may have: the pooling allocator could not place it, and
/// without pooling it would only be a way around the memory cap's intent.
fn check_resources(component: &wasmtime::component::Component) -> Result<(), String> {
    let Some(r) = component.resources_required() else {
        return Err("it instantiates imported core modules, which c41 does not allow".into());
    };
    if r.num_memories > MAX_MEMORIES {
        return Err(format!(
            "it defines {} linear memories; a c41 skill may have at most {MAX_MEMORIES} (limits.memory-mb caps \
             their sum)",
            r.num_memories
        ));
    }
    if r.num_tables > MAX_TABLES {
        return Err(format!("it defines {} tables; a c41 skill may have at most {MAX_TABLES}", r.num_tables));
    }
    Ok(())
}
