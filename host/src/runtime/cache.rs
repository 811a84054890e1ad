//! Compiled components cached on disk, so a second `c41 run` skips Cranelift.
//!
//! Key: the engine's compatibility hash (wasmtime version, target, compiler
//! settings) and the component's SHA-256. A cache entry is written atomically
//! (temp file + rename); an unreadable or stale entry is recompiled and
//! replaced, never trusted. The cache directory must be the user's own
//! (0700, owned, no symlink; see `cache_perms`), else it is not used.
//!
//! Beside each compiled component, under the same key, the cache keeps what
//! its `describe()` answered (`<sha256>.describe.json`), so listing a skill
//! never needs the component compiled again.

use super::cache_perms::{check, ensure_private_dir};
use super::describe::DescribeRecord;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a load hit the cache (benchmarks and `-v` logs report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialised a precompiled component.
    Hit,
    /// Compiled, and stored for next time.
    Compiled,
    /// Compiled; no cache directory is in use.
    Uncached,
}

/// The on-disk cache of precompiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache under `dir` (none: always compile).
    pub fn new(dir: Option<PathBuf>) -> Self {
        ComponentCache { dir }
    }

    /// The default location: `C41_CACHE_DIR`, else `<cache dir>/c41/components`.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("C41_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("c41").join("components")))
    }

    /// The cache entry of a component whose bytes hash to `sha256` (hex),
    /// without its extension (none without a cache directory).
    fn entry(&self, engine: &Engine, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = format!("{:016x}", h.finish());
        Some(dir.join(engine_key).join(sha256))
    }

    /// The directories of `path` are the user's own (created 0700 if need be).
    fn private(&self, path: &Path) -> Result<(), String> {
        [self.dir.as_deref(), path.parent()].into_iter().flatten().try_for_each(ensure_private_dir)
    }

    /// What `describe()` answered for `bytes` last time, if the cache has it
    /// (in a directory and file that are the user's own).
    pub fn description(&self, engine: &Engine, sha256: &str) -> Option<DescribeRecord> {
        let path = self.entry(engine, sha256)?.with_extension("describe.json");
        if !path.exists() || self.private(&path).and_then(|()| check(&path, false)).is_err() {
            return None;
        }
        let text = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&text) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cached description: {e}");
                None
            }
        }
    }

    /// Keep what `describe()` answered for `bytes`.
    pub fn store_description(&self, engine: &Engine, sha256: &str, record: &DescribeRecord) {
        let Some(path) = self.entry(engine, sha256).map(|p| p.with_extension("describe.json")) else { return };
        if let Err(why) = self.private(&path) {
            tracing::warn!("not caching the description: {why}");
            return;
        }
        let json = serde_json::to_vec(record).expect("a description serialises");
        if let Err(e) = crate::files::write_atomically(&path, &json) {
            tracing::warn!(path = %path.display(), "cannot cache the description: {e}");
        }
    }

    /// The compiled component for `bytes` (which hash to `sha256`), from the
    /// cache when possible.
    pub fn load(&self, engine: &Engine, bytes: &[u8], sha256: &str) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry(engine, sha256).map(|p| p.with_extension("cwasm")) else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Uncached));
        };
        // Native code is loaded from here: only from directories that are
        // the user's own (see `cache_perms`).
        if let Err(why) = self.private(&path) {
            tracing::warn!("not using the compiled-component cache: {why}");
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Uncached));
        }
        let usable = path.exists()
            && check(&path, false)
                .inspect_err(|why| tracing::warn!("recompiling instead of trusting a cached component: {why}"))
                .is_ok();
        if usable {
            // SAFETY: the file is one this cache wrote with
            // `Engine::precompile_component` for an engine with the same
            // compatibility hash (part of the path), in a directory only
            // this user can write (checked above); wasmtime checks the
            // header again and refuses an incompatible artifact.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(path = %path.display(), "ignoring unusable cached component: {e:#}"),
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = crate::files::write_atomically(&path, &compiled) {
            tracing::warn!(path = %path.display(), "cannot cache compiled component: {e}");
        }
        // SAFETY: `compiled` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, CacheOutcome::Compiled))
    }
}
