//! The progress forwarder: a running skill's events, turned into MCP
//! `notifications/progress` for the one request that is listening (the
//! original `tools/call`, or a `wait` call later on), in order, from one task,
//! through a bounded [`Outbox`]: progress limited by time, streamed text
//! held to a budget (the skill waits when the client does not read).
//!
//! A run outlives the request that started it (see [`super::runs`]), so the
//! forwarder is attached to a request, not to the run: it ends when its
//! outbox closes (the request was answered or the run ended), and a later
//! `wait` call attaches a new one with its own progress token.

use crate::events::{Note, Outbox};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use std::sync::Arc;

/// At most one progress notification per this interval (stage changes aside).
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// Most bytes of streamed text buffered for one listener; beyond, the skill's
/// `text-delta` waits until the client read some.
pub const TEXT_BUDGET: usize = 1 << 20;

/// Send every note from `outbox` to `peer` as progress on `token`, until the
/// outbox is closed and empty or the client goes away (then the outbox is
/// abandoned, so the skill never waits for it). Await the handle to know the
/// last notification went out before the response does.
pub fn forward_progress(
    peer: Peer<RoleServer>,
    token: ProgressToken,
    outbox: Arc<Outbox>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // MCP wants progress to increase with every notification.
        let mut last = 0.0f64;
        while let Some((note, cost)) = outbox.next().await {
            let (fraction, message) = match note {
                Note::Progress(fraction, line) => (fraction, line),
                Note::Text(text) => (None, text),
            };
            let progress = fraction.map(|f| f as f64 * 100.0).unwrap_or(last).max(last + 0.001);
            last = progress;
            let note = ProgressNotificationParam::new(token.clone(), progress).with_total(100.0).with_message(message);
            if peer.notify_progress(note).await.is_err() {
                outbox.abandon();
                break;
            }
            outbox.sent(cost);
        }
    })
}
