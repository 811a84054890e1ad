//! `c41:skill/state`: small per-skill state that outlives an invocation
//! (llm-route's backend cooldowns). Kept in memory for the process and in
//! `<cache dir>/c41/state/<skill>.json` (written atomically) so one-shot
//! `c41 run` calls share it too. Values expire; limits keep a skill from
//! using it as storage.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::state::Host;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Longest key kept.
pub const MAX_KEY: usize = 256;
/// Longest value kept.
pub const MAX_VALUE: usize = 64 * 1024;
/// Most keys per skill.
pub const MAX_KEYS: usize = 256;
/// Longest time to live.
pub const MAX_TTL_MS: u64 = 24 * 60 * 60 * 1000;

type Entries = HashMap<String, (String, u64)>;

/// The state of every skill of this process.
#[derive(Debug, Default)]
pub struct StateStore {
    dir: Option<PathBuf>,
    skills: Mutex<HashMap<String, Entries>>,
}

impl StateStore {
    /// A store persisted under `dir` (none: memory only).
    pub fn new(dir: Option<PathBuf>) -> Arc<Self> {
        Arc::new(StateStore { dir, skills: Mutex::default() })
    }

    fn file(&self, skill: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{skill}.json")))
    }

    fn with<R>(&self, skill: &str, f: impl FnOnce(&mut Entries) -> R) -> R {
        let mut skills = self.skills.lock().unwrap();
        let entries = skills.entry(skill.to_string()).or_insert_with(|| {
            self.file(skill)
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        });
        let now = crate::files::now_ms();
        entries.retain(|_, (_, expires)| *expires > now);
        f(entries)
    }

    /// The live value of `key` for `skill`.
    pub fn get(&self, skill: &str, key: &str) -> Option<String> {
        self.with(skill, |e| e.get(key).map(|(v, _)| v.clone()))
    }

    /// Store (or with `ttl_ms` 0, delete) `key` for `skill`.
    pub fn set(&self, skill: &str, key: &str, value: &str, ttl_ms: u64) {
        if key.len() > MAX_KEY || value.len() > MAX_VALUE {
            tracing::debug!(skill, key, "state entry too large; ignored");
            return;
        }
        let snapshot = self.with(skill, |e| {
            if ttl_ms == 0 {
                e.remove(key);
            } else if e.len() < MAX_KEYS || e.contains_key(key) {
                e.insert(key.to_string(), (value.to_string(), crate::files::now_ms() + ttl_ms.min(MAX_TTL_MS)));
            }
            serde_json::to_vec(e).unwrap_or_default()
        });
        if let Some(path) = self.file(skill)
            && let Err(e) = crate::files::write_atomically(&path, &snapshot)
        {
            tracing::debug!(skill, path = %path.display(), "cannot persist skill state: {e}");
        }
    }
}

impl Host for InvocationCtx {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.state.as_ref().and_then(|s| s.get(&self.skill, &key)))
    }

    fn set(&mut self, key: String, value: String, ttl_ms: u64) -> wasmtime::Result<()> {
        if let Some(s) = &self.state {
            s.set(&self.skill, &key, &value, ttl_ms);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_persist_and_stay_per_skill() {
        let dir = tempfile::tempdir().unwrap();
        let a = StateStore::new(Some(dir.path().to_path_buf()));
        a.set("llm-route", "cooldown/ollama", "down", 60_000);
        a.set("llm-route", "short", "x", 1);
        assert_eq!(a.get("llm-route", "cooldown/ollama").as_deref(), Some("down"));
        assert_eq!(a.get("other-skill", "cooldown/ollama"), None, "never shared between skills");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(a.get("llm-route", "short"), None, "expired");

        let b = StateStore::new(Some(dir.path().to_path_buf()));
        assert_eq!(b.get("llm-route", "cooldown/ollama").as_deref(), Some("down"), "a later process sees it");
        b.set("llm-route", "cooldown/ollama", "", 0);
        assert_eq!(b.get("llm-route", "cooldown/ollama"), None, "ttl 0 deletes");

        a.set("s", &"k".repeat(MAX_KEY + 1), "v", 1000);
        assert!(a.with("s", |e| e.is_empty()), "oversized keys are ignored");
    }
}
