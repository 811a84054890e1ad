//! Showing a skill's progress on stderr: a bar when stderr is a terminal,
//! plain lines otherwise (logs, CI, an agent's `exec`). Streamed text goes
//! to stdout as it arrives. What a skill says was cleaned by the host
//! (`skill_text`) before it gets here; the number of reports shown is
//! limited by time ([`ProgressGate`]), whatever the skill sends.

use crate::events::{Event, EventSink, ProgressGate, progress_text};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At most one plain progress line per this interval (milestones aside:
/// see [`ProgressGate`]).
pub const LINE_INTERVAL: Duration = Duration::from_secs(1);
/// At most one bar update per this interval (stage changes aside).
pub const BAR_INTERVAL: Duration = Duration::from_millis(100);

/// The CLI's event sink.
pub struct CliProgress {
    shown: Arc<Shown>,
    stream_text: bool,
    streamed: AtomicBool,
}

/// What the progress display shows, shared with the thread that shows a
/// held report once its time has come.
struct Shown {
    bar: Option<ProgressBar>,
    /// One lock for deciding and showing, so reports appear in order.
    state: Mutex<State>,
    /// Where plain lines go (stderr; a buffer in tests).
    write_line: Box<dyn Fn(&str) + Send + Sync>,
    finished: AtomicBool,
}

struct State {
    /// Which reports are shown (by time, and stage changes).
    gate: ProgressGate,
    /// The newest report the gate held back, shown by the flusher when the
    /// gate lets it through: the last of a burst (a node change followed by
    /// a long silent node) is not lost.
    held: Option<Report>,
    last_line: String,
}

/// One progress report, as the sink got it.
#[derive(Debug, Clone)]
struct Report {
    skill: String,
    stage: String,
    fraction: Option<f32>,
    step: Option<(u32, u32)>,
    message: Option<String>,
}

impl CliProgress {
    /// A sink for stderr; `stream_text` prints text deltas to stdout.
    pub fn new(stream_text: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(1000);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} [{bar:30}] {percent:>3}% {wide_msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        // A bar redraws in place: a few updates a second look live.
        let interval = if bar.is_some() { BAR_INTERVAL } else { LINE_INTERVAL };
        Self::with(bar, interval, Box::new(|line| eprintln!("{line}")), stream_text)
    }

    /// Plain lines, each handed to `write_line`, at most one per `interval`
    /// (milestones aside): for tests of what a log shows.
    pub fn lines_to(write_line: Box<dyn Fn(&str) + Send + Sync>, interval: Duration) -> Self {
        Self::with(None, interval, write_line, false)
    }

    fn with(
        bar: Option<ProgressBar>,
        interval: Duration,
        write_line: Box<dyn Fn(&str) + Send + Sync>,
        stream_text: bool,
    ) -> Self {
        let shown = Arc::new(Shown {
            bar,
            state: Mutex::new(State { gate: ProgressGate::new(interval), held: None, last_line: String::new() }),
            write_line,
            finished: AtomicBool::new(false),
        });
        // Shows a held report once the gate admits it; ends with the sink.
        let weak = Arc::downgrade(&shown);
        let _ = std::thread::Builder::new().name("c41-progress".into()).spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(shown) = weak.upgrade() else { return };
                if shown.finished.load(Ordering::Relaxed) {
                    return;
                }
                let mut state = shown.state.lock().unwrap();
                if let Some(report) = state.held.take() {
                    shown.offer(&mut state, report);
                }
            }
        });
        CliProgress { shown, stream_text, streamed: AtomicBool::new(false) }
    }

    /// Writes streamed text to stdout at once, above the bar if there is one.
    fn write_stdout(&self, text: &str) {
        let out = || {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        };
        match &self.shown.bar {
            Some(bar) => bar.suspend(out),
            None => out(),
        }
    }

    /// Whether any text was streamed to stdout.
    pub fn streamed(&self) -> bool {
        self.streamed.load(Ordering::Relaxed)
    }

    /// Remove the bar. A report still held is dropped: the outcome follows.
    pub fn finish(&self) {
        self.shown.finished.store(true, Ordering::Relaxed);
        self.shown.state.lock().unwrap().held = None;
        if let Some(bar) = &self.shown.bar {
            bar.finish_and_clear();
        }
    }
}

impl Shown {
    /// Shows `report` if the gate admits it now, else holds it (in place of
    /// an older held one) for the flusher.
    fn offer(&self, state: &mut State, report: Report) {
        if !state.gate.admit(&report.stage, report.step, report.message.as_deref()) {
            if !self.finished.load(Ordering::Relaxed) {
                state.held = Some(report);
            }
            return;
        }
        state.held = None;
        let Report { skill, stage, fraction, step, message } = report;
        match &self.bar {
            Some(bar) => {
                bar.set_prefix(skill);
                if let Some(f) = fraction {
                    bar.set_position((f * 1000.0) as u64);
                }
                bar.set_message(progress_text(stage, step, message.as_deref()));
            }
            None => {
                // Plain lines are for logs and agents: every milestone (a
                // new stage, queue position or node), else at most one
                // line a second (the gate), and never the same line twice.
                let line = plain_line(&skill, &stage, fraction, step, message.as_deref());
                if state.last_line != line {
                    (self.write_line)(&line);
                    state.last_line = line;
                }
            }
        }
    }
}

/// One plain progress line: `[skill] stage 3/20 15%: message`.
pub fn plain_line(
    skill: &str,
    stage: &str,
    fraction: Option<f32>,
    step: Option<(u32, u32)>,
    message: Option<&str>,
) -> String {
    let mut line = format!("[{skill}] {stage}");
    if let Some((n, m)) = step {
        line.push_str(&format!(" {n}/{m}"));
    }
    if let Some(f) = fraction {
        line.push_str(&format!(" {:.0}%", f * 100.0));
    }
    if let Some(m) = message {
        line.push_str(": ");
        line.push_str(m);
    }
    line
}

impl EventSink for CliProgress {
    fn emit(&self, skill: &str, event: Event) {
        match event {
            Event::Progress { stage, fraction, step, message } => {
                let report = Report { skill: skill.to_string(), stage, fraction, step, message };
                self.shown.offer(&mut self.shown.state.lock().unwrap(), report);
            }
            Event::Preview { mime, bytes } => {
                tracing::debug!(skill, mime, bytes = bytes.len(), "preview");
            }
            Event::TextDelta(delta) => {
                if self.stream_text {
                    self.streamed.store(true, Ordering::Relaxed);
                    self.write_stdout(&delta);
                }
            }
            // Already in the host's log (stderr, `RUST_LOG`).
            Event::Log { .. } => {}
            Event::Service(name) => tracing::debug!(skill, service = %name, "reached"),
            // The text already printed cannot be taken back: mark the break
            // in the same stream, where whoever reads the text will see it.
            Event::TextReset(reason) => {
                if self.stream_text && self.streamed() {
                    self.write_stdout(&format!("\n[c41: the text above is void ({reason}); starting over]\n"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A burst of node changes (a ComfyUI graph whose first nodes are
    /// cached) goes past the gate's credit; the node still running at the
    /// end is shown once the gate lets it through, without another report.
    #[test]
    fn the_last_report_of_a_burst_is_shown_once_its_time_comes() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = {
            let lines = lines.clone();
            CliProgress::lines_to(
                Box::new(move |l| lines.lock().unwrap().push(l.to_string())),
                Duration::from_millis(50),
            )
        };
        for node in 0..40 {
            let message = Some(format!("node {node}"));
            sink.emit(
                "comfyui-image",
                Event::Progress { stage: "running".into(), fraction: None, step: None, message },
            );
        }
        let at_once = lines.lock().unwrap().len();
        assert!(at_once < 40, "the gate holds most of a burst back: {at_once} shown");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lines.lock().unwrap().iter().any(|l| l == "[comfyui-image] running: node 39") {
            assert!(Instant::now() < deadline, "the last node never showed: {:?}", lines.lock().unwrap());
            std::thread::sleep(Duration::from_millis(5));
        }
        let shown = lines.lock().unwrap().clone();
        assert_eq!(shown.last().map(String::as_str), Some("[comfyui-image] running: node 39"), "in order: {shown:?}");
    }
}
