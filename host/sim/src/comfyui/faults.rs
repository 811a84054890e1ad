//! Fault switches: the ways real ComfyUI servers misbehave that clients must survive.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// A misbehaviour to arm with [`ComfySim::inject`](super::ComfySim::inject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Every HTTP request waits this long first (a loaded or distant server).
    Delay(Duration),
    /// The next `count` HTTP requests answer `status` (500, 502, 503...) with a
    /// plain-text body, as a crashing worker or a proxy in front would.
    FailRequests {
        /// How many requests fail before normal service resumes.
        count: u32,
        /// The HTTP status they get.
        status: u16,
    },
    /// `/view` announces the full length, sends `after_bytes`, then drops the
    /// connection (`None` turns it off).
    DropView(Option<usize>),
    /// Websockets stay open but deliver nothing (true) or resume (false).
    StallWebsocket(bool),
    /// Nodes of `class_type` raise `RuntimeError(message)` when executed, as a
    /// loader does on a broken model file.
    FailNode {
        /// Class whose nodes fail.
        class_type: String,
        /// The exception message.
        message: String,
    },
}

#[derive(Default)]
struct Armed {
    delay: Duration,
    fail_count: u32,
    fail_status: u16,
    drop_view: Option<usize>,
    stall_ws: bool,
    fail_nodes: HashMap<String, String>,
}

/// The armed faults, shared by the routes, the executor, the sockets and the
/// listener (which closes the port while `down`).
pub(crate) struct Faults {
    armed: Mutex<Armed>,
    pub(crate) down: watch::Sender<bool>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { armed: Mutex::default(), down: watch::channel(false).0 }
    }
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn inject(&self, f: Fault) {
        let mut a = self.lock();
        match f {
            Fault::Delay(d) => a.delay = d,
            Fault::FailRequests { count, status } => {
                a.fail_count = count;
                a.fail_status = status;
            }
            Fault::DropView(n) => a.drop_view = n,
            Fault::StallWebsocket(on) => a.stall_ws = on,
            Fault::FailNode { class_type, message } => {
                a.fail_nodes.insert(class_type, message);
            }
        }
    }

    pub(crate) fn clear(&self) {
        *self.lock() = Armed::default();
        self.down.send_replace(false);
    }

    pub(crate) fn stall_ws(&self) -> bool {
        self.lock().stall_ws
    }

    pub(crate) fn drop_view(&self) -> Option<usize> {
        self.lock().drop_view
    }

    pub(crate) fn node_failure(&self, class_type: &str) -> Option<String> {
        self.lock().fail_nodes.get(class_type).cloned()
    }

    /// Consumes one failing request if any are armed.
    fn take_failure(&self) -> Option<u16> {
        let mut a = self.lock();
        if a.fail_count > 0 {
            a.fail_count -= 1;
            Some(a.fail_status)
        } else {
            None
        }
    }
}

/// Applies the request's own `c41-sim-fault` header, then armed delays and
/// 5xx bursts, before any route runs.
pub(crate) async fn middleware(State(faults): State<Arc<super::state::Shared>>, req: Request, next: Next) -> Response {
    let gate = crate::control::Gate {
        delay: faults.faults.lock().delay,
        armed: |_: &Request| faults.faults.take_failure(),
        fail: |_: &Request, code: StatusCode| {
            let text = format!("{} {}", code.as_u16(), code.canonical_reason().unwrap_or("Error"));
            (code, text).into_response()
        },
        drain: false,
    };
    crate::control::gate(req, next, gate).await
}
