//! Which component binary a skill's grants belong to.
//!
//! Grants, tokens, settings and state are given to a skill *name* in the
//! config, but a name is only what a component says about itself. So a
//! component loaded from a file gets its `[skills.<name>]` entry only if it
//! is the component the user meant: the file the config names
//! (`component = "..."`, optionally with `sha256 = "..."`), or the file and
//! SHA-256 recorded by `c41 grant <name>` in the grants lock beside the
//! config (`c41.toml` -> `c41.grants.toml`). A different file, or the same
//! file rebuilt, gets nothing until the user runs `c41 grant <name>` again.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One recorded grant: the component file and its SHA-256 when granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// Absolute path of the component.
    pub component: PathBuf,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    #[serde(default)]
    skills: IndexMap<String, Pin>,
}

/// The grants lock beside `config`: `c41.toml` -> `c41.grants.toml`.
pub fn lock_path(config: &Path) -> PathBuf {
    let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "c41".into());
    config.with_file_name(format!("{stem}.grants.toml"))
}

/// The pins recorded beside `config` (none if there is no lock file).
pub fn load(config: &Path) -> Result<IndexMap<String, Pin>, String> {
    let path = lock_path(config);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(IndexMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let lock: LockFile = toml::from_str(&text)
        .map_err(|e| format!("invalid grants lock {}: {}", path.display(), e.to_string().trim_end()))?;
    Ok(lock.skills)
}

/// Record `pin` for `skill` in the lock beside `config` (written atomically).
pub fn save(config: &Path, skill: &str, pin: Pin) -> Result<PathBuf, String> {
    let mut pins = load(config)?;
    pins.insert(skill.to_string(), pin);
    let path = lock_path(config);
    let body = toml::to_string(&LockFile { skills: pins }).map_err(|e| e.to_string())?;
    let text = format!(
        "# Written by `c41 grant`: the component file (and its SHA-256) that each skill's\n\
         # [skills.<name>] grants, settings and state in {} belong to. Another file, or\n\
         # this file rebuilt, gets nothing until `c41 grant <name>` is run again.\n\n{body}",
        config.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    );
    crate::files::write_atomically(&path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The SHA-256 of a component, as pins record it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_round_trip_beside_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("studio.toml");
        assert_eq!(lock_path(&config), dir.path().join("studio.grants.toml"));
        assert!(load(&config).unwrap().is_empty());
        let pin = Pin { component: "/x/a.wasm".into(), sha256: "ab".repeat(32) };
        save(&config, "a", pin.clone()).unwrap();
        save(&config, "b", Pin { component: "/x/b.wasm".into(), sha256: "cd".repeat(32) }).unwrap();
        let pins = load(&config).unwrap();
        assert_eq!(pins["a"], pin);
        assert_eq!(pins.len(), 2);
    }
}
