//! The latest preview image of each run, kept next to its journal entry
//! (`<runs>/<id>.preview.png`), so a person can look at a long job while it
//! runs (`c41 -v run` prints the path once; `c41 runs` and MCP's running
//! results name it) and after it ended. Bounded: one file per run, at most
//! [`MAX_PREVIEW`] bytes, rewritten at most every [`WRITE_EVERY`], written
//! atomically on the blocking pool, and pruned with the journal.

use crate::events::{Event, EventSink, TextBudget};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bigger previews are not kept (a sampler preview is tens of KiB).
pub const MAX_PREVIEW: usize = 4 << 20;
/// Shortest time between two writes of a run's preview.
pub const WRITE_EVERY: Duration = Duration::from_millis(500);

/// The file a run's preview is kept in, for a MIME type.
pub fn file_for(dir: &Path, run: &str, mime: &str) -> PathBuf {
    let ext = if mime == "image/jpeg" { "jpg" } else { "png" };
    dir.join(format!("{run}.preview.{ext}"))
}

/// The run's kept preview, if there is one.
pub fn of(dir: &Path, run: &str) -> Option<PathBuf> {
    ["image/png", "image/jpeg"].iter().map(|m| file_for(dir, run, m)).find(|p| p.is_file())
}

/// Removes a run's previews (the journal pruned its record).
pub fn remove(dir: &Path, run: &str) {
    for m in ["image/png", "image/jpeg"] {
        let _ = std::fs::remove_file(file_for(dir, run, m));
    }
}

#[derive(Default)]
struct Pending {
    latest: Option<(String, Arc<Vec<u8>>)>,
    written: Option<Instant>,
    announced: bool,
    /// Writes handed out so far, numbered.
    taken: u64,
}

/// An event sink in front of another that keeps the run's latest preview.
pub struct Keeper {
    inner: Arc<dyn EventSink>,
    dir: PathBuf,
    run: String,
    pending: Arc<Mutex<Pending>>,
    /// The number of the write on disk: writes run on the blocking pool and
    /// may finish out of order; an older one never replaces a newer one.
    on_disk: Arc<Mutex<u64>>,
}

impl Keeper {
    /// Keep `run`'s previews in `dir`, passing every event on to `inner`.
    pub fn new(inner: Arc<dyn EventSink>, dir: &Path, run: &str) -> Arc<Self> {
        Arc::new(Keeper {
            inner,
            dir: dir.to_path_buf(),
            run: run.to_string(),
            pending: Arc::default(),
            on_disk: Arc::default(),
        })
    }

    /// Writes the preview that arrived since the last write, if any (at the
    /// end of the run, so the last one is never lost to the rate limit).
    pub async fn flush(&self) {
        let job = self.take();
        if let Some(job) = job {
            let _ = tokio::task::spawn_blocking(job).await;
        }
    }

    /// The write of the latest preview, if one waits.
    fn take(&self) -> Option<impl FnOnce() + Send + 'static> {
        let mut p = self.pending.lock().unwrap();
        let (mime, bytes) = p.latest.take()?;
        p.written = Some(Instant::now());
        let announce = !std::mem::replace(&mut p.announced, true);
        p.taken += 1;
        let seq = p.taken;
        let (dir, run, on_disk) = (self.dir.clone(), self.run.clone(), self.on_disk.clone());
        Some(move || {
            let mut on_disk = on_disk.lock().unwrap();
            if *on_disk > seq {
                return;
            }
            *on_disk = seq;
            let path = file_for(&dir, &run, &mime);
            match crate::files::write_atomically(&path, &bytes) {
                Ok(()) if announce => tracing::info!(run, path = %path.display(), "latest preview kept"),
                Ok(()) => {}
                Err(e) => tracing::debug!(run, path = %path.display(), "cannot keep the preview: {e}"),
            }
            // A server that switched from PNG to JPEG previews: one file.
            let other = if mime == "image/jpeg" { "image/png" } else { "image/jpeg" };
            let _ = std::fs::remove_file(file_for(&dir, &run, other));
        })
    }
}

impl EventSink for Keeper {
    fn emit(&self, skill: &str, event: Event) {
        if let Event::Preview { mime, bytes } = &event
            && bytes.len() <= MAX_PREVIEW
            && matches!(mime.as_str(), "image/png" | "image/jpeg")
        {
            let due = {
                let mut p = self.pending.lock().unwrap();
                p.latest = Some((mime.clone(), bytes.clone()));
                p.written.is_none_or(|t| t.elapsed() >= WRITE_EVERY)
            };
            if due && let Some(job) = self.take() {
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => drop(rt.spawn_blocking(job)),
                    Err(_) => job(),
                }
            }
        }
        self.inner.emit(skill, event);
    }

    fn text_budgets(&self) -> Vec<Arc<TextBudget>> {
        self.inner.text_budgets()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Recorder;

    fn preview(byte: u8, len: usize) -> Event {
        Event::Preview { mime: "image/png".into(), bytes: Arc::new(vec![byte; len]) }
    }

    #[tokio::test]
    async fn the_latest_preview_is_kept_bounded_and_every_event_passes_on() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let keeper = Keeper::new(rec.clone(), dir.path(), "run-1");
        for b in 1..=5u8 {
            keeper.emit("s", preview(b, 100));
        }
        keeper.emit("s", preview(9, MAX_PREVIEW + 1)); // too big: not kept
        keeper.flush().await;
        let kept = of(dir.path(), "run-1").expect("a preview is kept");
        assert_eq!(std::fs::read(&kept).unwrap(), vec![5u8; 100], "the latest one that fits");
        assert_eq!(rec.events().len(), 6, "every event reaches the inner sink");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "one file per run");
        remove(dir.path(), "run-1");
        assert_eq!(of(dir.path(), "run-1"), None);
    }
}
