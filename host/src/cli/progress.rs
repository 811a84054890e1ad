//! Showing a skill's progress on stderr: a bar when stderr is a terminal,
//! plain lines otherwise (logs, CI, an agent's `exec`). Streamed text goes
//! to stdout as it arrives. What a skill says was cleaned by the host
//! (`skill_text`) before it gets here; the number of reports shown is
//! limited by time ([`ProgressGate`]), whatever the skill sends.

use crate::events::{Event, EventSink, ProgressGate, Report};
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
    /// Which reports are shown (by time, and stage changes); the report it
    /// held back is shown by the flusher once its time has come.
    gate: ProgressGate,
    last_line: String,
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
            state: Mutex::new(State { gate: ProgressGate::new(interval), last_line: String::new() }),
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
                if let Some(report) = state.gate.take_due() {
                    shown.show(&mut state, report);
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
        self.shown.state.lock().unwrap().gate.drop_held();
        if let Some(bar) = &self.shown.bar {
            bar.finish_and_clear();
        }
    }
}

impl Shown {
    /// Shows a report the gate let through.
    fn show(&self, state: &mut State, report: Report) {
        match &self.bar {
            Some(bar) => {
                bar.set_prefix(report.skill.clone());
                if let Some(f) = report.fraction {
                    bar.set_position((f * 1000.0) as u64);
                }
                bar.set_message(report.text());
            }
            None => {
                // Plain lines are for logs and agents: every milestone (a
                // new stage, queue position or node), else at most one
                // line a second (the gate), and never the same line twice.
                let Report { skill, stage, fraction, step, message } = &report;
                let line = plain_line(skill, stage, *fraction, *step, message.as_deref());
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
                let mut state = self.shown.state.lock().unwrap();
                match state.gate.offer(report) {
                    Some(report) => self.shown.show(&mut state, report),
                    // After `finish`, nothing is held: the outcome follows.
                    None if self.shown.finished.load(Ordering::Relaxed) => state.gate.drop_held(),
                    None => {}
                }
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

    /// A burst of node changes (a ComfyUI graph whose first nodes are
    /// cached) goes past the gate's credit; the node still running at the
    /// end is shown once the gate lets it through, without another report.
    #[test]
    fn the_last_report_of_a_burst_is_shown_once_its_time_comes() {
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let sink = CliProgress::lines_to(Box::new(move |l| tx.send(l.to_string()).unwrap()), Duration::from_millis(50));
        for node in 0..40 {
            let message = Some(format!("node {node}"));
            sink.emit(
                "comfyui-image",
                Event::Progress { stage: "running".into(), fraction: None, step: None, message },
            );
        }
        let at_once: Vec<String> = lines.try_iter().collect();
        assert!(at_once.len() < 40, "the gate holds most of a burst back: {} shown", at_once.len());
        // No further report comes: the flusher shows the held one.
        let next = lines.recv_timeout(Duration::from_secs(10)).expect("the last node is shown");
        assert_eq!(next, "[comfyui-image] running: node 39", "after {at_once:?}");
    }
}
