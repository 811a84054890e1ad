//! `GET /ws?clientId=`: the event socket. The first message is `status` with
//! the socket's `sid`; execution events reach only the socket registered under
//! the prompt's `client_id`; reconnecting with the same id replaces the old
//! socket (which stays open, silent) and nothing is replayed. When any socket
//! closes, its id is unregistered, even if a newer socket holds it by then:
//! ComfyUI's handler ends in `self.sockets.pop(sid, None)`, so a client that
//! reconnects under the same id and then drops the old socket loses every
//! event of its jobs from then on.

use super::state::{Shared, WsOut};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

pub(crate) async fn handler(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let sid = q
        .get("clientId")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    upgrade.on_upgrade(move |socket| session(shared, sid, socket))
}

async fn session(shared: Arc<Shared>, sid: String, socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<WsOut>();
    let conn = shared.register(&sid, tx.clone());
    let n = shared.lock().queue_remaining();
    let hello = json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": n}}, "sid": sid}});
    let _ = tx.send(WsOut::Text(hello.to_string()));
    drop(tx);
    let (mut sink, mut stream) = socket.split();
    let faults = shared.clone();
    let writer = async move {
        while let Some(msg) = rx.recv().await {
            if faults.faults.stall_ws() {
                continue; // open but silent
            }
            let m = match msg {
                WsOut::Text(t) => Message::Text(t.into()),
                WsOut::Binary(b) => Message::Binary(b.into()),
            };
            if sink.send(m).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let reader = async {
        // Clients may send feature_flags; nothing else is expected.
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    tokio::select! {
        _ = writer => {},
        _ = reader => {},
    }
    shared.unregister(&sid, conn);
}
