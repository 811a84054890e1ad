//! The host as one object: config + runtime + catalog, and [`App::invoke`],
//! which turns a user's request into a sandboxed call (validate the input,
//! resolve files, compute grants and limits) and back.

use crate::catalog::{Catalog, CatalogError};
use crate::config::LoadedConfig;
use crate::events::EventSink;
use crate::input::{FilePolicy, InputError, resolve_files};
use crate::runtime::{InvokeError, InvokeRequest, Invoked, Runtime, RuntimeOptions};
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
            RunError::Output(_) => "output-dir",
            RunError::Invoke(e) => e.kind(),
        }
    }
    /// `--json` `error.fault`.
    pub fn fault(&self) -> &'static str {
        match self {
            RunError::UnknownSkill { .. } | RunError::Input(_) => "input",
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
        let runtime = Runtime::new(options.clone()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let catalog = Catalog::load(&runtime, &config, components).await.map_err(|e: CatalogError| anyhow::anyhow!(e))?;
        let state = crate::imports::state::StateStore::new(options_state_dir(&options));
        Ok(App { config, runtime, catalog, state })
    }

    /// Run `skill` on `input` (a JSON object from the user or agent).
    pub async fn invoke(
        &self,
        skill: &str,
        mut input: Value,
        events: Arc<dyn EventSink>,
        cancel: CancellationToken,
    ) -> Result<Invoked, RunError> {
        let loaded = self.catalog.get(skill).ok_or_else(|| RunError::UnknownSkill {
            name: skill.to_string(),
            suggestion: self.catalog.suggest(skill).map(str::to_string),
        })?;
        loaded.schema.apply_defaults(&mut input);
        loaded.schema.validate(&input)?;
        let store = ArtifactStore::open(self.config.output_dir())?;
        let mut allow_dirs = self.config.config.inputs.allow_dirs.clone();
        if let Ok(cwd) = std::env::current_dir() {
            allow_dirs.push(cwd);
        }
        let files = resolve_files(&loaded.schema, &mut input, &FilePolicy { store: Some(&store), allow_dirs })?;
        let (services, ignored) = self.config.effective_grants(skill, &loaded.description.services);
        for name in ignored {
            tracing::warn!(skill, service = %name, "granted in the config but not declared by the skill; not granted");
        }
        let request = InvokeRequest {
            input,
            files,
            services,
            settings: self.config.settings_for(skill),
            limits: self.config.limits_for(skill),
            store: Some(store),
            events,
            cancel,
            state: Some(self.state.clone()),
        };
        tracing::info!(skill, "invoking");
        Ok(loaded.invoke(request).await?)
    }
}

/// Skill state lives beside the compiled-component cache (same lifetime,
/// same "safe to delete" nature); no cache dir means memory only.
fn options_state_dir(options: &RuntimeOptions) -> Option<PathBuf> {
    options.cache_dir.as_ref().and_then(|d| d.parent()).map(|p| p.join("state"))
}
