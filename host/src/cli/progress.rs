//! Showing a skill's progress on stderr: a bar when stderr is a terminal,
//! plain lines otherwise (logs, CI, an agent's `exec`). Streamed text goes
//! to stdout as it arrives. What a skill says was cleaned by the host
//! (`skill_text`) before it gets here; the number of reports shown is
//! limited by time ([`ProgressGate`]), whatever the skill sends.

use crate::events::{Event, EventSink, ProgressGate};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// At most one plain progress line per this interval (milestones aside:
/// see [`ProgressGate`]).
pub const LINE_INTERVAL: Duration = Duration::from_secs(1);
/// At most one bar update per this interval (stage changes aside).
pub const BAR_INTERVAL: Duration = Duration::from_millis(100);

/// The CLI's event sink.
pub struct CliProgress {
    bar: Option<ProgressBar>,
    /// Which reports are shown (by time, and stage changes).
    gate: Mutex<ProgressGate>,
    last_line: Mutex<String>,
    stream_text: bool,
    streamed: AtomicBool,
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
        CliProgress {
            bar,
            gate: Mutex::new(ProgressGate::new(interval)),
            last_line: Mutex::new(String::new()),
            stream_text,
            streamed: AtomicBool::new(false),
        }
    }

    /// Writes streamed text to stdout at once, above the bar if there is one.
    fn write_stdout(&self, text: &str) {
        let out = || {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(out),
            None => out(),
        }
    }

    /// Whether any text was streamed to stdout.
    pub fn streamed(&self) -> bool {
        self.streamed.load(Ordering::Relaxed)
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
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
            Event::Progress { stage, fraction, step, message } => match &self.bar {
                _ if !self.gate.lock().unwrap().admit(&stage, step, message.as_deref()) => {}
                Some(bar) => {
                    bar.set_prefix(skill.to_string());
                    if let Some(f) = fraction {
                        bar.set_position((f * 1000.0) as u64);
                    }
                    let mut msg = stage.clone();
                    if let Some((n, m)) = step {
                        msg.push_str(&format!(" {n}/{m}"));
                    }
                    if let Some(m) = message {
                        msg.push_str(": ");
                        msg.push_str(&m);
                    }
                    bar.set_message(msg);
                }
                None => {
                    // Plain lines are for logs and agents: every milestone (a
                    // new stage, queue position or node), else at most one
                    // line a second (the gate), and never the same line twice.
                    let line = plain_line(skill, &stage, fraction, step, message.as_deref());
                    let mut last = self.last_line.lock().unwrap();
                    if *last != line {
                        eprintln!("{line}");
                        *last = line;
                    }
                }
            },
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
