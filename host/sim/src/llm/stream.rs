//! Paced streaming shared by NDJSON and SSE: a background task writes one
//! chunk per token into the response body, holding the request's pending
//! slot and model lease until the last chunk, as a busy real server would.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Builds the closing chunks once the generation time is known.
pub(crate) type Finish = Box<dyn FnOnce(Duration) -> Vec<Bytes> + Send>;

pub(crate) struct StreamJob {
    /// Sent at once (e.g. the SSE role delta).
    pub lead: Vec<Bytes>,
    /// One per token, each after `delay`.
    pub pieces: Vec<Bytes>,
    pub delay: Duration,
    /// An error chunk that replaces the rest of the stream after a couple
    /// of pieces (the mid-stream fault).
    pub break_with: Option<Bytes>,
    pub finish: Finish,
    /// Released when the stream ends or the client goes away.
    pub guards: Box<dyn Send>,
}

/// How many pieces go out before a mid-stream fault hits.
const PIECES_BEFORE_FAULT: usize = 2;

pub(crate) fn spawn(job: StreamJob) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        let StreamJob { lead, pieces, delay, break_with, finish, guards } = job;
        let started = Instant::now();
        for chunk in lead {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        let stop_at = break_with.as_ref().map(|_| PIECES_BEFORE_FAULT.min(pieces.len()));
        for (i, chunk) in pieces.into_iter().enumerate() {
            if stop_at == Some(i) {
                break;
            }
            tokio::time::sleep(delay).await;
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        // Free the slot and start the keep-alive timer before the client
        // can see the end, so state checked right after "done" is settled.
        let closing = match break_with {
            Some(err) => vec![err],
            None => finish(started.elapsed()),
        };
        drop(guards);
        for chunk in closing {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let chunks =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    Body::from_stream(chunks)
}
