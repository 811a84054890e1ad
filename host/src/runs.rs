//! The run journal: every invocation is recorded before the skill starts
//! (skill, input, invocation id, the process running it) and updated when it
//! ends, one small JSON file per run, written atomically. A run whose process
//! died midway (killed, crashed, the Mac went to sleep) shows as
//! *interrupted*: `c41 runs` lists it and `c41 resume` calls the skill again
//! with the same input and the same invocation id. Skills that keep the job
//! they submitted in their state (the ComfyUI skills) then follow that job
//! on the server instead of generating it again.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// How many run records are kept; older ones are pruned as new runs start.
pub const KEEP: usize = 200;
/// Most bytes of a run's outcome text, and of its error, kept in its record:
/// the first and last half of it (a 100 MB reply must not make a 100 MB
/// record; `c41 runs` shows how it began and ended).
pub const MAX_KEPT: usize = 16 * 1024;

/// Where a run stands, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recorded {
    /// Started, not yet ended (or its process died: see [`RunRecord::status`]).
    Running,
    /// Ended with an outcome.
    Ok,
    /// Ended with an error.
    Failed,
    /// Its process was told to stop (SIGTERM, SIGHUP) before it ended: the
    /// job it submitted may still be running, `c41 resume` picks it up.
    Interrupted,
}

/// Where a run stands, as shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its process is still at it.
    Running,
    /// Its process is gone and it never ended: `c41 resume` picks it up.
    Interrupted,
    /// Ended with an outcome.
    Ok,
    /// Ended with an error.
    Failed,
}

impl Status {
    /// The word shown in `c41 runs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Interrupted => "interrupted",
            Status::Ok => "ok",
            Status::Failed => "failed",
        }
    }
}

/// One run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The invocation id (a uuid), given to the skill.
    pub id: String,
    /// The skill.
    pub skill: String,
    /// The input as given (after schema defaults, before file resolution),
    /// so a resume resolves `artifact:` references and paths again.
    pub input: Value,
    /// Start, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// The process that runs it.
    pub pid: u32,
    /// What the journal says.
    pub recorded: Recorded,
    /// End, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// The outcome's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The stored files (absolute paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
    /// The error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times it was resumed.
    #[serde(default)]
    pub resumed: u32,
    /// The config file the run used (absolute; none: built-in defaults), so
    /// `c41 resume` runs it with the same grants without `--config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// The run's latest preview image, kept beside this record
    /// ([`crate::preview`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<PathBuf>,
    /// The outcome's structured data (the seed a random run used, the
    /// backend), when small: the page shows it with the run's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RunRecord {
    /// Where the run stands: a run recorded as running whose process is
    /// gone was interrupted.
    pub fn status(&self) -> Status {
        match self.recorded {
            Recorded::Ok => Status::Ok,
            Recorded::Failed => Status::Failed,
            Recorded::Interrupted => Status::Interrupted,
            Recorded::Running if process_alive(self.pid) => Status::Running,
            Recorded::Running => Status::Interrupted,
        }
    }
}

/// Whether a process is alive (a reused pid reads as alive: the run then
/// shows as running until that process ends too).
#[cfg(unix)]
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    // Signal 0 checks existence and permission without sending anything.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
pub(crate) fn process_alive(_pid: u32) -> bool {
    true
}

/// Why `c41 resume RUN` found nothing to resume.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// No record matches.
    #[error("no run `{0}` (`c41 runs` lists the recent ones)")]
    NotFound(String),
    /// Several records match the prefix.
    #[error("`{0}` matches several runs ({1}); give more of the id")]
    Ambiguous(String, String),
}

/// The journal directory.
#[derive(Debug, Clone)]
pub struct RunLog {
    dir: PathBuf,
}

impl RunLog {
    /// A journal in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RunLog { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records a run that is starting, in this process.
    pub fn start(&self, id: &str, skill: &str, input: &Value, resumed: u32, config: Option<&Path>) -> RunRecord {
        let rec = RunRecord {
            id: id.to_string(),
            skill: skill.to_string(),
            input: input.clone(),
            started_ms: crate::files::now_ms(),
            pid: std::process::id(),
            recorded: Recorded::Running,
            finished_ms: None,
            text: None,
            files: Vec::new(),
            error: None,
            resumed,
            config: config.map(Path::to_path_buf),
            preview: None,
            data: None,
        };
        self.write(&rec);
        self.prune();
        rec
    }

    /// Records how a run ended.
    pub fn finish(&self, mut rec: RunRecord, outcome: Result<(&str, Vec<PathBuf>), String>) {
        rec.finished_ms = Some(crate::files::now_ms());
        rec.preview = self.preview_of(&rec.id);
        match outcome {
            Ok((text, files)) => {
                rec.recorded = Recorded::Ok;
                rec.text = Some(crate::skill_text::head_tail(text, MAX_KEPT));
                rec.files = files;
            }
            Err(e) => {
                rec.recorded = Recorded::Failed;
                rec.error = Some(crate::skill_text::head_tail(&e, MAX_KEPT));
            }
        }
        self.write(&rec);
    }

    /// Records every run of this process that has not ended as
    /// interrupted, with `why`: the process is about to stop (a signal) and
    /// `c41 resume` should pick them up. Returns them.
    pub fn interrupt_own(&self, why: &str) -> Vec<RunRecord> {
        let me = std::process::id();
        let mine: Vec<RunRecord> =
            self.list().into_iter().filter(|r| r.pid == me && r.recorded == Recorded::Running).collect();
        for mut rec in mine.iter().cloned() {
            rec.recorded = Recorded::Interrupted;
            rec.finished_ms = Some(crate::files::now_ms());
            rec.error = Some(why.to_string());
            rec.preview = self.preview_of(&rec.id);
            self.write(&rec);
        }
        mine
    }

    /// Records that this process is now the daemon (`c41 serve`) keeping
    /// this journal, and returns the pid of the daemon before it, if one ran:
    /// its interrupted runs are this daemon's to resume.
    pub fn take_over_daemon(&self) -> Option<u32> {
        let path = self.dir.join(".serve-pid");
        let before = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse().ok());
        if let Err(e) = std::fs::create_dir_all(&self.dir)
            .and_then(|()| crate::files::write_atomically(&path, std::process::id().to_string().as_bytes()))
        {
            tracing::warn!(dir = %self.dir.display(), "cannot record the daemon's pid: {e}");
        }
        before.filter(|&pid| pid != std::process::id())
    }

    /// The runs process `pid` left interrupted (a signal, or a crash).
    pub fn interrupted_runs_of(&self, pid: u32) -> Vec<RunRecord> {
        self.list().into_iter().filter(|r| r.pid == pid && r.status() == Status::Interrupted).collect()
    }

    /// Writes `rec` atomically (temp file, fsync, rename). The journal is a
    /// convenience: failing to write it is logged, never fatal to the run.
    fn write(&self, rec: &RunRecord) {
        let path = self.dir.join(format!("{}.json", rec.id));
        let r = serde_json::to_vec_pretty(rec)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::files::write_atomically(&path, &bytes));
        if let Err(e) = r {
            tracing::warn!(dir = %self.dir.display(), run = %rec.id, "cannot write the run journal: {e}");
        }
    }

    /// The run's latest preview image, while it runs or after.
    pub fn preview_of(&self, id: &str) -> Option<PathBuf> {
        crate::preview::of(&self.dir, id)
    }

    /// Every readable record, newest first.
    pub fn list(&self) -> Vec<RunRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut runs: Vec<RunRecord> = entries
            .flatten()
            .filter(|e| {
                e.file_name().to_string_lossy().ends_with(".json") && !e.file_name().to_string_lossy().starts_with('.')
            })
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        runs.sort_by_key(|r: &RunRecord| std::cmp::Reverse(r.started_ms));
        runs
    }

    /// The run whose id is or starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Result<RunRecord, FindError> {
        let prefix = prefix.trim();
        let mut matches: Vec<RunRecord> =
            self.list().into_iter().filter(|r| !prefix.is_empty() && r.id.starts_with(prefix)).collect();
        match matches.len() {
            0 => Err(FindError::NotFound(prefix.to_string())),
            1 => Ok(matches.remove(0)),
            _ => Err(FindError::Ambiguous(
                prefix.to_string(),
                matches.iter().take(4).map(|r| r.id[..8.min(r.id.len())].to_string()).collect::<Vec<_>>().join(", "),
            )),
        }
    }

    /// Keeps the newest [`KEEP`] records. Runs on every start, so it only
    /// counts directory entries unless there is something to prune.
    fn prune(&self) {
        let count = std::fs::read_dir(&self.dir).map(|d| d.count()).unwrap_or(0);
        if count <= KEEP {
            return;
        }
        for old in self.list().into_iter().skip(KEEP) {
            let _ = std::fs::remove_file(self.dir.join(format!("{}.json", old.id)));
            crate::preview::remove(&self.dir, &old.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_start_and_end_and_finds_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::new(dir.path().join("runs"));
        let a = log.start("aaaa1111-0000", "tts", &json!({"text": "hi"}), 0, None);
        assert_eq!(a.status(), Status::Running, "our own process is alive");
        log.finish(a, Ok(("spoke", vec![PathBuf::from("/out/a.wav")])));
        let b = log.start("aaaa2222-0000", "comfyui-video", &json!({"prompt": "boat"}), 0, None);
        log.finish(b, Err("comfyui answered 500".into()));

        let runs = log.list();
        assert_eq!(runs.len(), 2);
        let a = log.find("aaaa1").unwrap();
        assert_eq!((a.status(), a.text.as_deref(), a.files.len()), (Status::Ok, Some("spoke"), 1));
        assert_eq!(log.find("aaaa2").unwrap().status(), Status::Failed);
        assert!(matches!(log.find("aaaa"), Err(FindError::Ambiguous(..))));
        assert!(matches!(log.find("zzz"), Err(FindError::NotFound(_))));
        assert!(matches!(log.find(""), Err(FindError::NotFound(_))));

        // A huge outcome or error keeps only its head and tail.
        let big = format!("HEAD{}TAIL", "x".repeat(10 << 20));
        let c = log.start("cccc3333-0000", "llm-route", &json!({}), 0, None);
        log.finish(c, Ok((big.as_str(), vec![])));
        let d = log.start("dddd4444-0000", "llm-route", &json!({}), 0, None);
        log.finish(d, Err(big.clone()));
        for (id, kept) in
            [("cccc3333-0000", log.find("cccc").unwrap().text), ("dddd4444-0000", log.find("dddd").unwrap().error)]
        {
            let kept = kept.unwrap();
            assert!(kept.starts_with("HEAD") && kept.ends_with("TAIL") && kept.len() < MAX_KEPT + 100, "{id}");
            let file = std::fs::metadata(dir.path().join("runs").join(format!("{id}.json"))).unwrap();
            assert!(file.len() < 2 * MAX_KEPT as u64, "{id}: a {} byte record", file.len());
        }
        assert!(
            !dir.path().join("runs").read_dir().unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp"))
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_run_whose_process_died_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::new(dir.path());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut rec = log.start("dead-run", "comfyui-video", &json!({}), 0, None);
        rec.pid = pid;
        log.write(&rec);
        assert_eq!(log.find("dead").unwrap().status(), Status::Interrupted);
    }

    #[test]
    fn keeps_only_the_newest_records() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::new(dir.path());
        for i in 0..KEEP + 3 {
            let mut rec = log.start(&format!("run-{i:04}"), "tts", &json!({}), 0, None);
            rec.started_ms = i as u64;
            log.write(&rec);
        }
        log.prune();
        let runs = log.list();
        assert_eq!(runs.len(), KEEP);
        assert_eq!(runs[0].id, format!("run-{:04}", KEEP + 2), "newest first");
    }
}
