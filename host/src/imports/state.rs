//! `c41:skill/state`: small per-skill state that outlives an invocation
//! (llm-route's backend cooldowns, a ComfyUI skill's submitted job). Kept in
//! memory for the process and on disk under the state directory, so one-shot
//! `c41 run` calls and a resumed run share it too. Values expire; limits keep
//! a skill from using it as storage.
//!
//! On disk, per skill: `<skill>.json`, a snapshot written atomically with
//! fsync, and `<skill>.log`, the sets since that snapshot, one JSON line
//! each, appended without fsync (a killed process leaves them in the page
//! cache; only a power loss can take the last ones). Reading replays the log
//! over the snapshot. The log is folded into a new snapshot once per
//! invocation ([`StateStore::flush`], at its end) or when it outgrows
//! [`MAX_LOG`], so a skill that sets the same 64 KiB value a hundred times
//! writes about 6 MiB and fsyncs once, instead of rewriting and fsyncing the
//! whole file on every set.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::state::Host;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Longest key kept.
pub const MAX_KEY: usize = 256;
/// Longest value kept.
pub const MAX_VALUE: usize = 64 * 1024;
/// Most keys per skill.
pub const MAX_KEYS: usize = 256;
/// Longest time to live.
pub const MAX_TTL_MS: u64 = 24 * 60 * 60 * 1000;
/// A skill's log of sets is folded into its snapshot once it is this long,
/// even mid-invocation, so the disk holds at most this much more than the
/// state itself.
pub const MAX_LOG: u64 = 4 << 20;

type Entries = HashMap<String, (String, u64)>;

/// One skill's state in memory, and what of it is not yet in its snapshot.
#[derive(Debug, Default)]
struct Skill {
    entries: Entries,
    /// Bytes appended to the log since the last snapshot.
    logged: u64,
}

/// The state of every skill of this process.
#[derive(Debug, Default)]
pub struct StateStore {
    dir: Option<PathBuf>,
    skills: Mutex<HashMap<String, Skill>>,
    written: AtomicU64,
}

impl StateStore {
    /// A store persisted under `dir` (none: memory only).
    pub fn new(dir: Option<PathBuf>) -> Arc<Self> {
        Arc::new(StateStore { dir, skills: Mutex::default(), written: AtomicU64::new(0) })
    }

    fn snapshot_file(&self, skill: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{skill}.json")))
    }

    fn log_file(&self, skill: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{skill}.log")))
    }

    /// Bytes this store wrote to disk so far (snapshots and log lines).
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// The skill's state: from memory, else its snapshot with the log
    /// replayed over it (a torn last line is ignored).
    fn load(&self, skill: &str) -> Skill {
        let mut entries: Entries = self
            .snapshot_file(skill)
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut logged = 0;
        if let Some(file) = self.log_file(skill).and_then(|p| std::fs::File::open(p).ok()) {
            for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
                logged += line.len() as u64 + 1;
                if let Ok((key, value, expires)) = serde_json::from_str::<(String, String, u64)>(&line) {
                    if expires == 0 {
                        entries.remove(&key);
                    } else {
                        entries.insert(key, (value, expires));
                    }
                }
            }
        }
        Skill { entries, logged }
    }

    fn with<R>(&self, skill: &str, f: impl FnOnce(&mut Skill) -> R) -> R {
        let mut skills = self.skills.lock().unwrap();
        let state = skills.entry(skill.to_string()).or_insert_with(|| self.load(skill));
        let now = crate::files::now_ms();
        state.entries.retain(|_, (_, expires)| *expires > now);
        f(state)
    }

    /// The live value of `key` for `skill`.
    pub fn get(&self, skill: &str, key: &str) -> Option<String> {
        self.with(skill, |s| s.entries.get(key).map(|(v, _)| v.clone()))
    }

    /// Store (or with `ttl_ms` 0, delete) `key` for `skill`: in memory, and
    /// appended to the skill's log.
    pub fn set(&self, skill: &str, key: &str, value: &str, ttl_ms: u64) {
        if key.len() > MAX_KEY || value.len() > MAX_VALUE {
            tracing::debug!(skill, key, "state entry too large; ignored");
            return;
        }
        self.with(skill, |s| {
            let expires = if ttl_ms == 0 {
                s.entries.remove(key);
                0
            } else if s.entries.len() < MAX_KEYS || s.entries.contains_key(key) {
                let expires = crate::files::now_ms() + ttl_ms.min(MAX_TTL_MS);
                s.entries.insert(key.to_string(), (value.to_string(), expires));
                expires
            } else {
                return;
            };
            let Some(path) = self.log_file(skill) else { return };
            let mut line = serde_json::to_vec(&(key, value, expires)).unwrap_or_default();
            line.push(b'\n');
            if let Err(e) = append(&path, &line) {
                tracing::debug!(skill, path = %path.display(), "cannot persist skill state: {e}");
                return;
            }
            self.written.fetch_add(line.len() as u64, Ordering::Relaxed);
            s.logged += line.len() as u64;
            if s.logged > MAX_LOG {
                self.fold(skill, s);
            }
        })
    }

    /// Whether `skill` has sets not yet folded into its snapshot (so the
    /// caller can skip a trip to the blocking pool when it has none).
    pub fn needs_flush(&self, skill: &str) -> bool {
        self.skills.lock().unwrap().get(skill).is_some_and(|s| s.logged > 0)
    }

    /// Folds `skill`'s log into its snapshot (one fsync), if anything was
    /// logged since the last one. Runs at the end of each invocation.
    pub fn flush(&self, skill: &str) {
        let mut skills = self.skills.lock().unwrap();
        if let Some(s) = skills.get_mut(skill)
            && s.logged > 0
        {
            self.fold(skill, s);
        }
    }

    fn fold(&self, skill: &str, s: &mut Skill) {
        let (Some(snapshot), Some(log)) = (self.snapshot_file(skill), self.log_file(skill)) else { return };
        let bytes = serde_json::to_vec(&s.entries).unwrap_or_default();
        match crate::files::write_atomically(&snapshot, &bytes) {
            Ok(()) => {
                self.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                let _ = std::fs::remove_file(log);
                s.logged = 0;
            }
            Err(e) => tracing::debug!(skill, path = %snapshot.display(), "cannot persist skill state: {e}"),
        }
    }
}

/// Appends `line` to `path` in one write (creating both if missing).
fn append(path: &std::path::Path, line: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(line)
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
        assert!(a.with("s", |s| s.entries.is_empty()), "oversized keys are ignored");
    }

    #[test]
    fn sets_are_appended_and_folded_once_per_invocation() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(Some(dir.path().to_path_buf()));
        let value = "v".repeat(MAX_VALUE);
        // 100 sets of 64 KiB, on distinct keys: rewriting the whole file on
        // every set wrote the sum of its growing sizes (about 320 MiB).
        for i in 0..100 {
            store.set("big", &format!("key-{i}"), &value, 60_000);
        }
        let logged = store.bytes_written();
        // The sets' own 6.5 MB, and one fold when the log passed MAX_LOG.
        assert!(logged < 12 << 20, "sets append their own bytes only: {logged}");
        // A process killed before the invocation ended still left them.
        let other = StateStore::new(Some(dir.path().to_path_buf()));
        assert_eq!(other.get("big", "key-99").as_deref(), Some(value.as_str()), "the log is replayed");

        store.flush("big");
        let total = store.bytes_written();
        assert!(total < 20 << 20, "one fold at the end: {total} bytes written in all");
        assert!(!dir.path().join("big.log").exists(), "folded into the snapshot");
        let after = StateStore::new(Some(dir.path().to_path_buf()));
        assert_eq!(after.get("big", "key-0").as_deref(), Some(value.as_str()));
        store.flush("big");
        assert_eq!(store.bytes_written(), total, "nothing to fold, nothing written");

        // A torn last line (a crash mid-append) is ignored.
        std::fs::write(dir.path().join("t.log"), "[\"a\",\"1\",99999999999999]\n[\"b\",\"2\",9").unwrap();
        let torn = StateStore::new(Some(dir.path().to_path_buf()));
        assert_eq!((torn.get("t", "a").as_deref(), torn.get("t", "b")), (Some("1"), None));
    }
}
