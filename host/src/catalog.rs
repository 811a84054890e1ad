//! Which skills exist: the built-in ones compiled into the binary,
//! components named in the config, the components in the skills directory,
//! and `--component` files. Loading never grants anything: grants come from
//! the config, and only to the component it names (see `config::pins`).
//!
//! Names are never taken over: a built-in's name, and every name already
//! loaded, is reserved. A second component claiming one is refused with an
//! error naming both files (a warning for the skills directory), unless the
//! config maps that very file to that name (`[skills.<name>] component`).
//! The MCP control tool names ([`RESERVED`]) are never skill names.
//!
//! Loading describes each skill without compiling it when it can (see
//! [`crate::runtime::describe`]); a component is compiled on first use.

use crate::config::{Limits, LoadedConfig};
use crate::runtime::{LoadError, LoadedSkill, Origin, Runtime};
use bytes::Bytes;
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

/// Names no component may take: the MCP server's own tools.
pub const RESERVED: &[&str] = &["wait", "runs", "cancel"];

/// The loaded skills, by name.
#[derive(Default)]
pub struct Catalog {
    skills: IndexMap<String, LoadedSkill>,
    /// Components in the skills directory that could not be loaded or were
    /// refused (shown as warnings, not fatal).
    pub warnings: Vec<String>,
}

/// Why the catalog could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A component the user named explicitly is unusable.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A component claims a name that is reserved or already loaded.
    #[error("{0}")]
    Name(String),
    /// A component file the user named cannot be read.
    #[error("cannot read component {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Catalog {
    /// Load every skill: built-ins, config components (which may replace a
    /// built-in: the user said so), the skills directory, then `extra`
    /// (`--component`).
    pub async fn load(runtime: &Runtime, config: &LoadedConfig, extra: &[PathBuf]) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        for (_, bytes, sha256) in crate::guests::BUILTIN {
            let (bytes, sha256) = (Bytes::from_static(bytes), sha256.to_string());
            let skill = runtime.load_hashed(bytes, sha256, Origin::Builtin, &config.limits_for("")).await?;
            catalog.skills.insert(skill.description.name.clone(), skill);
        }
        for (name, sc) in &config.config.skills {
            if let Some(path) = &sc.component {
                let skill = load_file(runtime, path, &config.limits_for(name)).await?;
                if skill.description.name != *name {
                    return Err(CatalogError::Name(format!(
                        "{}: the config loads it as [skills.{name}], but it describes itself as `{}`",
                        skill.origin, skill.description.name
                    )));
                }
                reserved(&skill).map_err(CatalogError::Name)?;
                catalog.skills.insert(name.clone(), skill);
            }
        }
        if let Some(dir) = config.skills_dir() {
            let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                    .collect(),
                Err(_) => Vec::new(),
            };
            files.sort();
            for path in files {
                let added = match load_file(runtime, &path, &config.limits_for("")).await {
                    Ok(skill) => catalog.add(skill, config),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = added {
                    catalog.warnings.push(e);
                }
            }
        }
        for path in extra {
            let skill = load_file(runtime, path, &config.limits_for("")).await?;
            catalog.add(skill, config).map_err(CatalogError::Name)?;
        }
        Ok(catalog)
    }

    /// Add a component found on disk, unless its name is reserved or taken
    /// by another component. The same bytes again (a built starter loaded
    /// with `--component`) or the file the config already loaded are no
    /// takeover: they are skipped quietly.
    fn add(&mut self, skill: LoadedSkill, config: &LoadedConfig) -> Result<(), String> {
        reserved(&skill)?;
        let name = skill.description.name.clone();
        let Some(old) = self.skills.get(&name) else {
            self.skills.insert(name, skill);
            return Ok(());
        };
        if old.sha256 == skill.sha256 || old.origin == skill.origin {
            tracing::debug!(skill = %name, ignored = %skill.origin, "same component loaded twice");
            return Ok(());
        }
        let config_file = config.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "your config".into());
        Err(format!(
            "refused {}: it claims the name `{name}`, which {} already has; skill names are never taken over. \
             To run this file as `{name}` instead, set [skills.{name}] component = \"{}\" in {config_file}",
            skill.origin,
            match &old.origin {
                Origin::Builtin => "the built-in skill".to_string(),
                Origin::File(p) => p.display().to_string(),
            },
            skill.origin,
        ))
    }

    /// The skill called `name`.
    pub fn get(&self, name: &str) -> Option<&LoadedSkill> {
        self.skills.get(name)
    }

    /// All skills, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &LoadedSkill> {
        self.skills.values()
    }

    /// The closest skill name to a mistyped one, for "did you mean".
    pub fn suggest(&self, name: &str) -> Option<&str> {
        self.skills
            .keys()
            .map(|k| (strsim_distance(k, name), k))
            .filter(|(d, k)| *d <= 3.max(k.len() / 3))
            .min()
            .map(|(_, k)| k.as_str())
    }
}

/// Refuse the MCP control tool names.
fn reserved(skill: &LoadedSkill) -> Result<(), String> {
    let name = &skill.description.name;
    if RESERVED.contains(&name.as_str()) {
        return Err(format!(
            "refused {}: `{name}` is reserved for the MCP server's own tools ({})",
            skill.origin,
            RESERVED.join(", ")
        ));
    }
    Ok(())
}

/// Load a component file; `limits` are those its `describe()` runs under.
async fn load_file(runtime: &Runtime, path: &Path, limits: &Limits) -> Result<LoadedSkill, CatalogError> {
    let bytes =
        tokio::fs::read(path).await.map_err(|source| CatalogError::Read { path: path.to_path_buf(), source })?;
    let origin = Origin::File(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
    Ok(runtime.load(bytes, origin, limits).await?)
}

/// Levenshtein distance (small inputs: skill names).
fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
