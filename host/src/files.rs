//! File and clock helpers shared by the compiled-component cache, the skill
//! state store and the run journal, so each writes its files one way.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsynced, then renamed over `path`. Readers see the old file or
/// the new one, never half of it; the directory is created if missing.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other(format!("{} has no directory", path.display())))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
