//! The host as one object: config + runtime + catalog, and [`App::invoke`],
//! which turns a user's request into a sandboxed call (validate the input,
//! resolve files, compute grants and limits) and back.

use crate::catalog::{Catalog, CatalogError};
use crate::config::{GrantedService, LoadedConfig};
use crate::events::EventSink;
use crate::input::{FilePolicy, InputError, resolve_files};
use crate::runs::{RunLog, RunRecord};
use crate::runtime::{InvokeError, InvokeRequest, Invoked, LoadedSkill, Origin, Runtime, RuntimeOptions};
use c41_artifacts::ArtifactStore;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Config, engine and skills of one `c41` process.
pub struct App {
    /// The config in force.
    pub config: LoadedConfig,
    /// The engine.
    pub runtime: Runtime,
    /// The skills.
    pub catalog: Catalog,
    /// Per-skill state shared by this process's invocations.
    pub state: std::sync::Arc<crate::imports::state::StateStore>,
    /// The run journal (none when there is nowhere to keep it).
    pub runs: Option<RunLog>,
    /// Whether the working directory is a place file inputs may come from
    /// (and relative paths resolve against): only for `c41 run` at a
    /// terminal. Off by default: an MCP server's working directory is
    /// whatever its client chose.
    pub inputs_from_cwd: bool,
}

/// Why a run could not happen or failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No skill by that name.
    #[error("no skill named `{name}`{}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_else(|| "; `c41 list` shows the skills".into()))]
    UnknownSkill {
        /// The name asked for.
        name: String,
        /// The closest known name.
        suggestion: Option<String>,
    },
    /// The input was refused before the skill ran.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The component is not the one the config's grants were given to.
    #[error(
        "skill `{skill}` from {file} (sha256 {sha256}) is not the component the grants and settings of \
         [skills.{skill}] in {config} were given to: {why}. Nothing was run. If you trust this file, run \
         `c41 grant {skill}`"
    )]
    Ungranted {
        /// The skill name.
        skill: String,
        /// The component file.
        file: String,
        /// Its SHA-256.
        sha256: String,
        /// The config file.
        config: String,
        /// Why it does not match.
        why: String,
    },
    /// The output directory is unusable.
    #[error("output directory: {0}")]
    Output(#[from] c41_artifacts::ArtifactError),
    /// The skill failed.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
}

impl RunError {
    /// `--json` `error.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::UnknownSkill { .. } => "unknown-skill",
            RunError::Input(_) => "invalid-input",
            RunError::Ungranted { .. } => "ungranted",
            RunError::Output(_) => "output-dir",
            RunError::Invoke(e) => e.kind(),
        }
    }
    /// `--json` `error.fault`.
    pub fn fault(&self) -> &'static str {
        match self {
            RunError::UnknownSkill { .. } | RunError::Input(_) => "input",
            RunError::Ungranted { .. } => "grant",
            RunError::Output(_) => "c41",
            RunError::Invoke(e) => e.fault(),
        }
    }
    /// The input field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            RunError::Input(e) => Some(e.field()),
            RunError::Invoke(InvokeError::InvalidInput { field, .. }) => Some(field),
            _ => None,
        }
    }
}

impl App {
    /// Build the runtime and load every skill.
    pub async fn new(config: LoadedConfig, options: RuntimeOptions, components: &[PathBuf]) -> anyhow::Result<App> {
        let root = state_root(&options);
        Self::with_state_root(config, options, components, root).await
    }

    /// [`new`](Self::new), with skill state and the run journal kept under
    /// `root` (none: memory only, no journal) instead of the default place:
    /// tests give each harness its own, so no test sees another's state.
    pub async fn with_state_root(
        config: LoadedConfig,
        options: RuntimeOptions,
        components: &[PathBuf],
        root: Option<PathBuf>,
    ) -> anyhow::Result<App> {
        let runtime = Runtime::new(options.clone()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let catalog =
            Catalog::load(&runtime, &config, components).await.map_err(|e: CatalogError| anyhow::anyhow!(e))?;
        sweep_partials(&config, crate::runs::process_alive);
        let state = crate::imports::state::StateStore::new(root.as_ref().map(|r| r.join("state")));
        let runs = root.map(|r| RunLog::new(r.join("runs")));
        Ok(App { config, runtime, catalog, state, runs, inputs_from_cwd: false })
    }

    /// Whether `skill` gets its config entry's grants, settings and state:
    /// built-ins always; a component file only if it is the one the config
    /// names or `c41 grant` pinned. A file that is not, under a name whose
    /// entry grants something, is refused with the command that fixes it;
    /// one with nothing granted runs with nothing (and no state).
    pub fn entitled(&self, skill: &LoadedSkill) -> Result<bool, RunError> {
        let Origin::File(file) = &skill.origin else { return Ok(true) };
        let name = &skill.description.name;
        match self.config.identity(name, file, &skill.sha256) {
            Ok(()) => Ok(true),
            Err(_) if !self.config.entitles(name) => Ok(false),
            Err(why) => Err(RunError::Ungranted {
                skill: name.clone(),
                file: file.display().to_string(),
                sha256: skill.sha256.clone(),
                config: self
                    .config
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the config".into()),
                why,
            }),
        }
    }

    /// The services `skill` may reach now, and those granted in the config
    /// but not declared by it: what `entitled` allows, so `c41 list`,
    /// `describe` and `doctor` never show grants a different binary under
    /// the same name would not get.
    pub fn grants_in_force(&self, skill: &LoadedSkill) -> Result<(Vec<GrantedService>, Vec<String>), RunError> {
        let d = &skill.description;
        Ok(if self.entitled(skill)? { self.config.effective_grants(&d.name, &d.services) } else { Default::default() })
    }

    /// Run an interrupted (or failed) run again: the same skill and input,
    /// and the same invocation id, so a skill that kept the job it had
    /// submitted follows it instead of starting over.
    pub async fn resume(
        &self,
        run: &RunRecord,
        events: Arc<dyn EventSink>,
        cancel: CancellationToken,
    ) -> Result<Invoked, RunError> {
        self.invoke_run(&run.skill, run.input.clone(), events, cancel, Some((run.id.clone(), run.resumed + 1)), true)
            .await
    }

    /// Run `skill` on `input` (a JSON object from the user or agent).
    pub async fn invoke(
        &self,
        skill: &str,
        input: Value,
        events: Arc<dyn EventSink>,
        cancel: CancellationToken,
    ) -> Result<Invoked, RunError> {
        self.invoke_run(skill, input, events, cancel, None, true).await
    }

    /// Ask a ComfyUI skill which of its workflows each granted backend can
    /// run: `{"check": true}`, which such skills answer before reading any
    /// other input, so the schema's required fields (a prompt, an image) are
    /// not asked for. Runs nothing on the servers; `c41 doctor` uses it.
    pub async fn check_readiness(&self, skill: &str) -> Result<Invoked, RunError> {
        let input = serde_json::json!({"check": true});
        let events: Arc<dyn EventSink> = Arc::new(crate::events::Discard);
        self.invoke_run(skill, input, events, CancellationToken::new(), None, false).await
    }

    /// [`invoke`](Self::invoke) under an invocation id chosen by the caller
    /// (a new uuid), so the caller can name the run (`c41 mcp`'s deferred
    /// results, the run journal) before it ends.
    pub async fn invoke_as(
        &self,
        id: &str,
        skill: &str,
        input: Value,
        events: Arc<dyn EventSink>,
        cancel: CancellationToken,
    ) -> Result<Invoked, RunError> {
        self.invoke_run(skill, input, events, cancel, Some((id.to_string(), 0)), true).await
    }

    /// [`invoke`](Self::invoke), recorded in the run journal; `resuming`
    /// carries the id of the run to continue and how often it was resumed.
    async fn invoke_run(
        &self,
        skill: &str,
        mut input: Value,
        events: Arc<dyn EventSink>,
        cancel: CancellationToken,
        resuming: Option<(String, u32)>,
        validate: bool,
    ) -> Result<Invoked, RunError> {
        let loaded = self.catalog.get(skill).ok_or_else(|| RunError::UnknownSkill {
            name: skill.to_string(),
            suggestion: self.catalog.suggest(skill).map(str::to_string),
        })?;
        let entitled = self.entitled(loaded)?;
        if validate {
            loaded.schema.apply_defaults(&mut input);
            loaded.schema.validate(&input)?;
        }
        let given = input.clone();
        let store = ArtifactStore::open(self.config.output_dir())?;
        let policy = FilePolicy {
            store: Some(&store),
            allow_dirs: self.config.config.inputs.allow.clone(),
            cwd: if self.inputs_from_cwd { std::env::current_dir().ok() } else { None },
        };
        let files = resolve_files(&loaded.schema, &mut input, &policy)?;
        let (services, ignored) = match entitled {
            true => self.config.effective_grants(skill, &loaded.description.services),
            false => Default::default(),
        };
        for name in ignored {
            tracing::warn!(skill, service = %name, "granted in the config but not declared by the skill; not granted");
        }
        let (id, resumed) = resuming.unwrap_or_else(|| (uuid::Uuid::new_v4().to_string(), 0));
        // The run's latest preview is kept beside its journal entry.
        let keeper = self.runs.as_ref().map(|log| crate::preview::Keeper::new(events.clone(), log.dir(), &id));
        let events: Arc<dyn EventSink> = match &keeper {
            Some(k) => k.clone(),
            None => events,
        };
        let request = InvokeRequest {
            input,
            files,
            services,
            settings: if entitled { self.config.settings_for(skill) } else { Default::default() },
            limits: self.config.limits_for(skill),
            store: Some(store),
            events,
            cancel,
            state: entitled.then(|| self.state.clone()),
            invocation_id: Some(id.clone()),
        };
        // The journal is written (and fsynced) on the blocking pool; it
        // records the config, so `c41 resume` uses the same one.
        let config = self.config.path.as_ref().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()));
        let record = match &self.runs {
            Some(log) if validate => {
                let (log, id, skill, given) = (log.clone(), id.clone(), skill.to_string(), given.clone());
                tokio::task::spawn_blocking(move || log.start(&id, &skill, &given, resumed, config.as_deref()))
                    .await
                    .ok()
            }
            _ => None,
        };
        tracing::info!(skill, run = %id, "invoking");
        let result = loaded.invoke(request).await;
        if let Some(k) = keeper {
            k.flush().await;
        }
        // The skill's state sets of this invocation, folded with one fsync.
        if self.state.needs_flush(skill) {
            let state = self.state.clone();
            let name = skill.to_string();
            let _ = tokio::task::spawn_blocking(move || state.flush(&name)).await;
        }
        if let (Some(log), Some(mut record)) = (&self.runs, record) {
            // Kept when small: a record is read whole by `c41 runs`.
            record.data = result.as_ref().ok().map(|r| r.data.clone()).filter(|d| {
                !d.is_null() && d.as_object().is_none_or(|o| !o.is_empty()) && d.to_string().len() <= 8 * 1024
            });
            let outcome = match &result {
                Ok(r) => Ok((r.text.clone(), r.artifacts.iter().map(|a| a.path.clone()).collect::<Vec<_>>())),
                Err(e) => Err(e.to_string()),
            };
            let log = log.clone();
            let finish = move || {
                log.finish(record, outcome.as_ref().map(|(t, f)| (t.as_str(), f.clone())).map_err(Clone::clone))
            };
            let _ = tokio::task::spawn_blocking(finish).await;
        }
        Ok(result?)
    }
}

/// Deletes the `.c41-partial-*` files that c41 processes which are gone
/// (SIGKILL, a crash, a power cut) left in the output directory; partials of
/// a live process (another c41 storing a file right now) stay. `alive`
/// says which processes are: on a graceful stop, this one no longer is.
pub(crate) fn sweep_partials(config: &LoadedConfig, alive: impl Fn(u32) -> bool) {
    let dir = config.output_dir();
    if !dir.is_dir() {
        return;
    }
    let Ok(store) = ArtifactStore::open(dir) else { return };
    for path in store.sweep_partials(alive) {
        tracing::info!(path = %path.display(), "removed an unfinished artifact a stopped c41 left behind");
    }
}

/// Skill state and the run journal live in `C41_STATE_DIR`, else beside the
/// compiled-component cache (`~/.cache/c41/state`, `~/.cache/c41/runs`);
/// no cache dir means memory only and no journal.
pub fn state_root(options: &RuntimeOptions) -> Option<PathBuf> {
    std::env::var_os("C41_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| options.cache_dir.as_ref().and_then(|d| d.parent()).map(PathBuf::from))
}
