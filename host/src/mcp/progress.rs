//! The progress forwarder: a running skill's events, turned into MCP
//! `notifications/progress` for the one request that is listening (the
//! original `tools/call`, or a `wait` call later on), in order, from one task.
//!
//! A run outlives the request that started it (see [`super::runs`]), so the
//! forwarder is attached to a request, not to the run: it ends when its
//! channel closes (the request was answered or the run ended), and a later
//! `wait` call attaches a new one with its own progress token.

use crate::events::Event;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use tokio::sync::mpsc;

/// Send every event from `rx` to `peer` as progress on `token`, until `rx`
/// closes or the client goes away. Await the handle to know the last
/// notification went out before the response does.
pub fn forward_progress(
    peer: Peer<RoleServer>,
    token: ProgressToken,
    mut rx: mpsc::UnboundedReceiver<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // MCP wants progress to increase with every notification.
        let mut last = 0.0f64;
        while let Some(event) = rx.recv().await {
            let (fraction, message) = match event {
                Event::Progress { stage, fraction, step, message } => {
                    let mut m = stage;
                    if let Some((n, total)) = step {
                        m.push_str(&format!(" {n}/{total}"));
                    }
                    if let Some(text) = message {
                        m.push_str(": ");
                        m.push_str(&text);
                    }
                    (fraction, m)
                }
                Event::TextDelta(delta) => (None, delta),
                // Clients show progress messages as a log: say plainly that
                // the text so far no longer counts.
                Event::TextReset(reason) => (None, format!("\n[the text above is void: {reason}; starting over]\n")),
                Event::Preview { .. } => continue,
            };
            let progress = fraction.map(|f| f as f64 * 100.0).unwrap_or(last).max(last + 0.001);
            last = progress;
            let note = ProgressNotificationParam::new(token.clone(), progress).with_total(100.0).with_message(message);
            if peer.notify_progress(note).await.is_err() {
                break;
            }
        }
    })
}
