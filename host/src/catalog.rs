//! Which skills exist: the built-in ones compiled into the binary, the
//! components in the skills directory, components named in the config, and
//! `--component` files, in that order (a later one with the same name
//! replaces an earlier one). Loading never grants anything: grants come from
//! the config alone.

use crate::config::LoadedConfig;
use crate::runtime::{LoadError, LoadedSkill, Origin, Runtime};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

/// The loaded skills, by name.
#[derive(Default)]
pub struct Catalog {
    skills: IndexMap<String, LoadedSkill>,
    /// Components in the skills directory that could not be loaded (shown as
    /// warnings, not fatal).
    pub warnings: Vec<String>,
}

/// Why the catalog could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A component the user named explicitly is unusable.
    #[error(transparent)]
    Load(#[from] LoadError),
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
    /// Load every skill: built-ins, the skills directory, config components,
    /// then `extra` (`--component`).
    pub async fn load(runtime: &Runtime, config: &LoadedConfig, extra: &[PathBuf]) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        for (_, bytes) in crate::guests::BUILTIN {
            catalog.insert(runtime.load(bytes, Origin::Builtin).await?);
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
                match load_file(runtime, &path).await {
                    Ok(skill) => catalog.insert(skill),
                    Err(e) => catalog.warnings.push(e.to_string()),
                }
            }
        }
        for sc in config.config.skills.values() {
            if let Some(path) = &sc.component {
                catalog.insert(load_file(runtime, path).await?);
            }
        }
        for path in extra {
            catalog.insert(load_file(runtime, path).await?);
        }
        Ok(catalog)
    }

    fn insert(&mut self, skill: LoadedSkill) {
        let name = skill.description.name.clone();
        if let Some(old) = self.skills.get(&name) {
            tracing::debug!(skill = %name, replaced = %old.origin, by = %skill.origin, "skill replaced");
        }
        self.skills.insert(name, skill);
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

async fn load_file(runtime: &Runtime, path: &Path) -> Result<LoadedSkill, CatalogError> {
    let bytes = std::fs::read(path).map_err(|source| CatalogError::Read { path: path.to_path_buf(), source })?;
    let origin = Origin::File(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
    Ok(runtime.load(&bytes, origin).await?)
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
