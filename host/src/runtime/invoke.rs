//! One invocation from start to finish: a fresh Store with this call's
//! grants and limits, the call itself under a deadline and a cancellation
//! token, and the translation of every way it can end into one clear
//! [`InvokeError`] (whose fault, which field, which grant).

use super::LoadedSkill;
use super::bindings::c41::skill::types as wit;
use super::bindings::{Skill, SkillPre};
use super::budget::{LimitLog, Slots};
use super::output::GuestOutput;
use super::state::{InvocationCtx, MAX_HANDLES, MemoryLimiter};
use crate::config::{GrantedService, Limits};
use crate::events::{Discard, EventSink};
use crate::input::FileInputs;
use crate::sandbox::{DenialLog, SandboxHooks};
use crate::skill_text;
use c41_artifacts::{ArtifactStore, StoredArtifact};
use c41_policy::Denial;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTableError;
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

/// How long a cancelled skill may take to clean up (delete its remote job)
/// before the host stops it.
pub const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// Everything one call needs besides the skill.
pub struct InvokeRequest {
    /// The input, validated, with file fields resolved.
    pub input: Value,
    /// The resolved file inputs.
    pub files: FileInputs,
    /// The services granted (already capped by what the skill declares).
    pub services: Vec<GrantedService>,
    /// The skill's settings.
    pub settings: Map<String, Value>,
    /// Limits for this call.
    pub limits: Limits,
    /// Where artifacts go (none: the skill cannot store files).
    pub store: Option<ArtifactStore>,
    /// Where progress goes.
    pub events: Arc<dyn EventSink>,
    /// Cancels the call (Ctrl-C, MCP cancel).
    pub cancel: CancellationToken,
    /// The skill's state that outlives calls (none: `state.get` finds
    /// nothing and `state.set` is dropped).
    pub state: Option<Arc<crate::imports::state::StateStore>>,
    /// The invocation id to give the skill: a new uuid, or (resuming a run
    /// the host was stopped in) the id of that run, by which the skill finds
    /// what it kept in its state.
    pub invocation_id: Option<String>,
}

/// A successful call.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// The invocation id given to the skill.
    pub invocation_id: String,
    /// Text for the agent or person.
    pub text: String,
    /// Files stored, as the host recorded them.
    pub artifacts: Vec<StoredArtifact>,
    /// Structured data.
    pub data: Value,
    /// Requests the sandbox refused although the call succeeded.
    pub denials: Vec<Denial>,
    /// Wall-clock time of the call.
    pub elapsed: Duration,
    /// Bytes of the artifacts that went from a stream to the store in the
    /// host (`artifact-writer.copy-from`), never entering the skill.
    pub copied_in_host: u64,
    /// Bytes of input files the skill read into its own memory
    /// (`input-file.read`); an upload spliced from `input-file.stream`
    /// adds nothing here.
    pub inputs_read_by_skill: u64,
}

/// How a call failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The skill refused its input.
    #[error("invalid input `{field}`: {reason}")]
    InvalidInput {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The sandbox (or a service) refused something. When the host refused
    /// a request, `denials` says exactly what and which grant would allow it.
    #[error("{}", denied_message(.target, .reason, .denials))]
    Denied {
        /// What the skill said was refused.
        target: String,
        /// The skill's reason.
        reason: String,
        /// The refusals the host recorded.
        denials: Vec<Denial>,
    },
    /// A service failed.
    #[error("{service}{}: {message}", .status.map(|s| format!(" answered {s}")).unwrap_or_default())]
    Backend {
        /// The service.
        service: String,
        /// HTTP status, if any.
        status: Option<u16>,
        /// Its message.
        message: String,
    },
    /// The skill gave up waiting for something.
    #[error("timed out waiting for {what}")]
    Timeout {
        /// What.
        what: String,
    },
    /// Cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// The component hit the memory cap.
    #[error("stopped: the skill exceeded its memory limit of {} MiB (limits.memory-mb) with {by}", .limit_bytes >> 20)]
    MemoryLimit {
        /// The cap.
        limit_bytes: u64,
        /// What grew past it: a linear memory, wasi:http header fields the
        /// host holds, text buffered for MCP clients.
        by: String,
    },
    /// The call ran past its deadline.
    #[error("stopped: the skill ran past its deadline of {}s (limits.timeout-secs)", .limit.as_secs())]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// The component trapped (a bug: panic, unreachable, ...). Requests the
    /// host refused before the crash are listed beside it, not blamed for it.
    #[error("the skill crashed: {message}{}{}", refused_beside(.denials), if .output.is_empty() { String::new() } else { format!("\nskill output:\n{}", .output) })]
    Trap {
        /// wasmtime's message.
        message: String,
        /// The tail of the skill's stdout/stderr (a panic message).
        output: String,
        /// Requests the host refused before the crash.
        denials: Vec<Denial>,
    },
    /// The host enforced a limit (open files, connections, handles, output
    /// size) and the call failed after it.
    #[error("stopped: {message}{}", if .detail.is_empty() { String::new() } else { format!(" (the skill then failed: {})", .detail) })]
    Limit {
        /// The host's refusal, naming the config key.
        message: String,
        /// What the skill made of it (its error or trap).
        detail: String,
    },
    /// The skill reported an internal error.
    #[error("the skill failed: {message}")]
    Internal {
        /// Its message.
        message: String,
    },
    /// The component could not be compiled or linked (its description was
    /// known without compiling it).
    #[error("the skill's component cannot be used: {message}")]
    Component {
        /// wasmtime's message.
        message: String,
    },
    /// The outcome listed a file the host did not store in this call.
    #[error("the skill returned an artifact the host did not store in this call: {path}")]
    ForgedArtifact {
        /// The claimed path.
        path: String,
    },
}

fn refused_beside(denials: &[Denial]) -> String {
    if denials.is_empty() {
        return String::new();
    }
    let mut m = format!("\nthe host had refused {} request(s) before the crash:", denials.len());
    for d in denials.iter().take(5) {
        m.push_str(&format!("\n  {d}"));
    }
    m
}

fn denied_message(target: &str, reason: &str, denials: &[Denial]) -> String {
    match denials.first() {
        Some(d) => {
            let mut m = d.to_string();
            if denials.len() > 1 {
                m.push_str(&format!(" (and {} more refused requests)", denials.len() - 1));
            }
            m
        }
        None => format!("denied {target}: {reason}"),
    }
}

impl InvokeError {
    /// Machine-readable kind (`--json` `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            InvokeError::InvalidInput { .. } => "invalid-input",
            InvokeError::Denied { .. } => "denied",
            InvokeError::Backend { .. } => "backend",
            InvokeError::Timeout { .. } => "timeout",
            InvokeError::Cancelled => "cancelled",
            InvokeError::MemoryLimit { .. } => "memory-limit",
            InvokeError::Deadline { .. } => "deadline",
            InvokeError::Trap { .. } => "trap",
            InvokeError::Limit { .. } => "limit",
            InvokeError::Internal { .. } => "internal",
            InvokeError::ForgedArtifact { .. } => "forged-artifact",
            InvokeError::Component { .. } => "component",
        }
    }

    /// Whose fault it was (`--json` `error.fault`): `input`, `grant`,
    /// `service`, `limit`, `caller` or `skill`. A `denied` error is the
    /// grant's fault only when the host refused a request; a skill's own
    /// `denied` with no refusal behind it is a service's answer.
    pub fn fault(&self) -> &'static str {
        match self {
            InvokeError::InvalidInput { .. } => "input",
            InvokeError::Denied { denials, .. } if denials.is_empty() => "service",
            InvokeError::Denied { .. } => "grant",
            InvokeError::Backend { .. } | InvokeError::Timeout { .. } => "service",
            InvokeError::MemoryLimit { .. } | InvokeError::Deadline { .. } | InvokeError::Limit { .. } => "limit",
            InvokeError::Cancelled => "caller",
            InvokeError::Trap { .. }
            | InvokeError::Internal { .. }
            | InvokeError::ForgedArtifact { .. }
            | InvokeError::Component { .. } => "skill",
        }
    }
}

fn new_ctx(
    skill: &str,
    services: Vec<GrantedService>,
    limits: &Limits,
    denials: DenialLog,
    events: Arc<dyn EventSink>,
    output: &GuestOutput,
) -> InvocationCtx {
    let limit_log = LimitLog::default();
    let connections = Slots::new(limits.connections, "outgoing connections", "limits.connections");
    let mut table = wasmtime::component::ResourceTable::new();
    table.set_max_capacity(MAX_HANDLES);
    let mut wasi = WasiCtx::builder();
    // Deny by default, and say so: no preopened directories, no environment,
    // no arguments, no sockets, no name lookups. Output is captured.
    wasi.stdout(output.clone())
        .stderr(output.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    InvocationCtx {
        skill: skill.to_string(),
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        table,
        hooks: SandboxHooks::new(skill, &services, denials, connections, limit_log.clone())
            .reporting_to(events.clone()),
        limiter: MemoryLimiter::new(limits),
        events,
        services,
        settings: Map::new(),
        artifacts: None,
        limits: *limits,
        files: Slots::new(limits.open_files, "input files and artifact writers", "limits.open-files"),
        output_bytes: 0,
        copied_in_host: 0,
        inputs_read_by_skill: 0,
        limit_log,
        produced: Arc::new(Mutex::new(Vec::new())),
        inputs: FileInputs::default(),
        cancel: CancellationToken::new(),
        state: None,
        deadline: Instant::now().checked_add(limits.timeout).unwrap_or_else(far_future),
        buffered_charged: 0,
        text: Default::default(),
    }
}

/// A deadline that never comes (a timeout too large for the clock; the
/// config refuses those, a `Limits` built in code might not).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

fn new_store(engine: &Engine, ctx: InvocationCtx) -> Store<InvocationCtx> {
    let mut store = Store::new(engine, ctx);
    store.limiter(|ctx| &mut ctx.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    store
}

/// Ask a prepared component to describe itself, in a store with no grants,
/// under `limits` (memory and deadline), holding an instance slot when the
/// pool has them.
pub(super) async fn describe(
    engine: &Engine,
    pre: &SkillPre<InvocationCtx>,
    slots: Option<&tokio::sync::Semaphore>,
    limits: &Limits,
) -> wasmtime::Result<wit::Description> {
    let _slot = match slots {
        Some(s) => Some(s.acquire().await?),
        None => None,
    };
    let output = GuestOutput::default();
    let ctx = new_ctx("(describe)", Vec::new(), limits, DenialLog::default(), Arc::new(Discard), &output);
    let mut store = new_store(engine, ctx);
    let call = async {
        let instance: Skill = pre.instantiate_async(&mut store).await?;
        instance.call_describe(&mut store).await
    };
    let result = tokio::time::timeout(limits.timeout, call).await;
    match result {
        Ok(Err(_)) if store.data().limiter.hit.is_some() => Err(wasmtime::Error::msg(format!(
            "describe exceeded the memory limit of {} MiB (limits.memory-mb)",
            limits.memory_bytes >> 20
        ))),
        Ok(r) => r,
        Err(_) => Err(wasmtime::Error::msg(format!(
            "describe did not return within {} s (limits.timeout-secs, at most {} s for describe)",
            limits.timeout.as_secs_f32(),
            super::describe::DESCRIBE_MAX.as_secs()
        ))),
    }
}

impl LoadedSkill {
    /// Run the skill once on a fresh instance.
    pub async fn invoke(&self, req: InvokeRequest) -> Result<Invoked, InvokeError> {
        let (pre, _) = self.component.prepare().await.map_err(|e| InvokeError::Component { message: e.to_string() })?;
        let name = self.description.name.clone();
        let invocation_id = req.invocation_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let denials = DenialLog::default();
        let output = GuestOutput::default();
        let limits = req.limits;

        // Wait for a free instance slot (pooling): never fail for lack of one.
        let _slot = match &self.component.shared.slots {
            Some(s) => tokio::select! {
                permit = s.clone().acquire_owned() => Some(permit.map_err(|_| InvokeError::Cancelled)?),
                _ = req.cancel.cancelled() => return Err(InvokeError::Cancelled),
            },
            None => None,
        };
        let started = Instant::now();
        let mut ctx = new_ctx(&name, req.services, &limits, denials.clone(), req.events, &output);
        ctx.settings = req.settings;
        ctx.artifacts = req.store;
        ctx.inputs = req.files;
        ctx.cancel = req.cancel.clone();
        ctx.hooks.abort_on_cancel(req.cancel.clone());
        ctx.state = req.state;
        let produced = ctx.produced.clone();
        let mut store = new_store(pre.engine(), ctx);

        let request = wit::Request { input: req.input.to_string(), invocation_id: invocation_id.clone() };
        let cancel = req.cancel.clone();
        let result = {
            let call = async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance.call_invoke(&mut store, &request).await
            };
            tokio::select! {
                r = call => Some(r),
                _ = tokio::time::sleep(limits.timeout) => None,
                _ = async { cancel.cancelled().await; tokio::time::sleep(CANCEL_GRACE).await } => {
                    return Err(InvokeError::Cancelled);
                }
            }
        };
        // Text held back by the `MEDIA:` check goes out before the outcome.
        store.data_mut().flush_text();
        let denied = denials.all();
        let limited = store.data().limit_log.all();
        let attribute = |e: InvokeError| attribute(e, &denied, &limited);

        let outcome = match result {
            None => return Err(InvokeError::Deadline { limit: limits.timeout }),
            // Whatever the skill made of its aborted requests, the cause was
            // the cancel.
            Some(Err(_) | Ok(Err(_))) if cancel.is_cancelled() => return Err(InvokeError::Cancelled),
            Some(Err(trap)) => {
                if let Some(by) = store.data().limiter.hit.clone() {
                    return Err(InvokeError::MemoryLimit { limit_bytes: limits.memory_bytes, by });
                }
                if let Some(ResourceTableError::Full) = trap.downcast_ref::<ResourceTableError>() {
                    return Err(InvokeError::Limit {
                        message: format!(
                            "the skill held more than {MAX_HANDLES} handles at once (wasi:http fields, requests, \
                             bodies, input files, artifact writers, websockets)"
                        ),
                        detail: String::new(),
                    });
                }
                return Err(attribute(InvokeError::Trap {
                    message: skill_text::clean_max(&format!("{trap:#}"), MAX_ERROR),
                    output: skill_text::clean(&output.text()),
                    denials: denied.clone(),
                }));
            }
            Some(Ok(Err(skill_error))) => return Err(attribute(from_wit(skill_error))),
            Some(Ok(Ok(outcome))) => outcome,
        };

        let stored = produced.lock().unwrap().clone();
        let mut artifacts = Vec::with_capacity(outcome.artifacts.len());
        for a in &outcome.artifacts {
            match stored.iter().find(|s| s.path.display().to_string() == a.path) {
                Some(s) => artifacts.push(s.clone()),
                None => return Err(InvokeError::ForgedArtifact { path: skill_text::clean_line(&a.path, MAX_ERROR) }),
            }
        }
        let data = match serde_json::from_str::<Value>(&outcome.data) {
            Ok(v @ Value::Object(_)) => v,
            Ok(other) => {
                return Err(InvokeError::Internal {
                    message: format!(
                        "outcome.data must be a JSON object (wit/skill.wit, record outcome), not {}",
                        crate::input::type_name(&other)
                    ),
                });
            }
            Err(_) if outcome.data.trim().is_empty() => Value::Object(Map::new()),
            Err(e) => return Err(InvokeError::Internal { message: format!("outcome.data is not JSON: {e}") }),
        };
        let guest_output = output.text();
        if !guest_output.is_empty() {
            // One log line: the skill's output must not forge others.
            let guest_output = skill_text::clean_line(&guest_output, MAX_ERROR);
            tracing::debug!(skill = %name, "skill output: {guest_output}");
        }
        let text = skill_text::clean(&outcome.text);
        let copied_in_host = store.data().copied_in_host;
        let inputs_read_by_skill = store.data().inputs_read_by_skill;
        Ok(Invoked {
            invocation_id,
            text,
            artifacts,
            data,
            denials: denied,
            elapsed: started.elapsed(),
            copied_in_host,
            inputs_read_by_skill,
        })
    }
}

/// Whose fault a failed call was, given what the host refused during it: a
/// limit the host enforced is the cause of whatever followed; a refused
/// request is the cause of a skill error ("connection reset", a backend
/// error), but a trap stays a trap (with its message) and lists the
/// refusals beside it.
fn attribute(e: InvokeError, denied: &[Denial], limited: &[String]) -> InvokeError {
    if matches!(e, InvokeError::InvalidInput { .. } | InvokeError::Cancelled) {
        return e;
    }
    if let Some(first) = limited.first() {
        let detail = match &e {
            InvokeError::Trap { message, output, .. } => {
                format!("{message}{}", if output.is_empty() { String::new() } else { format!("; output: {output}") })
            }
            other => other.to_string(),
        };
        return InvokeError::Limit { message: first.clone(), detail };
    }
    if denied.is_empty() || matches!(e, InvokeError::Trap { .. }) {
        return e;
    }
    let (target, reason) = match &e {
        InvokeError::Denied { target, reason, .. } => (target.clone(), reason.clone()),
        other => (String::new(), other.to_string()),
    };
    InvokeError::Denied { target, reason, denials: denied.to_vec() }
}

/// Longest error message of a skill kept (messages are also cleaned by
/// [`skill_text`]: they are printed, and MCP clients read them).
pub const MAX_ERROR: usize = 16 * 1024;

/// The skill's error, its words cleaned and cut.
fn from_wit(e: wit::SkillError) -> InvokeError {
    let line = |s: String| skill_text::clean_line(&s, MAX_ERROR);
    let text = |s: String| skill_text::clean_max(&s, MAX_ERROR);
    match e {
        wit::SkillError::InvalidInput(i) => InvokeError::InvalidInput { field: line(i.field), reason: text(i.reason) },
        wit::SkillError::Denied(d) => {
            InvokeError::Denied { target: line(d.target), reason: text(d.reason), denials: Vec::new() }
        }
        wit::SkillError::Backend(b) => {
            InvokeError::Backend { service: line(b.service), status: b.status, message: text(b.message) }
        }
        wit::SkillError::Timeout(what) => InvokeError::Timeout { what: text(what) },
        wit::SkillError::Cancelled => InvokeError::Cancelled,
        wit::SkillError::Internal(message) => InvokeError::Internal { message: text(message) },
    }
}
