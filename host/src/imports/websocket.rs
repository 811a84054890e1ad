//! `c41:skill/websocket`: client websockets for skills (ComfyUI's `/ws`
//! progress events), through the same grants as HTTP. A `ws://` URL is
//! checked as `http://`, `wss://` as `https://`, by
//! [`SandboxHooks::authorize`]; the host connects to the pinned address and
//! adds the service's headers.
//!
//! [`SandboxHooks::authorize`]: crate::sandbox::SandboxHooks::authorize

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::websocket::{Host, HostConnection, Message, WsError};
use crate::runtime::budget::Slot;
use crate::sandbox::{DEFAULT_CONNECT_TIMEOUT, Stream, open_stream};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use wasmtime::component::Resource;

/// Largest message accepted from a peer.
const MAX_MESSAGE: usize = 16 << 20;

/// The host object behind a `connection` resource.
pub struct WsConnection {
    socket: Option<WebSocketStream<Box<dyn Stream>>>,
    /// Counts against `limits.connections` while the connection lives.
    _slot: Slot,
}

impl Host for InvocationCtx {
    async fn connect(&mut self, url: String) -> wasmtime::Result<Result<Resource<WsConnection>, WsError>> {
        let Ok(uri) = url.parse::<http::Uri>() else {
            return Ok(Err(WsError::Connect(format!("not a URL: {url}"))));
        };
        let http_scheme = match uri.scheme_str() {
            Some("ws") => "http",
            Some("wss") => "https",
            other => return Ok(Err(WsError::Connect(format!("expected a ws:// or wss:// URL, got scheme {other:?}")))),
        };
        let mut parts = uri.clone().into_parts();
        parts.scheme = Some(http_scheme.parse().expect("static scheme"));
        let Ok(as_http) = http::Uri::from_parts(parts) else {
            return Ok(Err(WsError::Connect(format!("not a URL: {url}"))));
        };
        let pinned = match self.hooks.authorize(&as_http).await {
            Ok(p) => p,
            Err(denial) => return Ok(Err(WsError::Denied(denial.to_string()))),
        };
        let slot = match self.hooks.connection() {
            Ok(s) => s,
            Err(refused) => return Ok(Err(WsError::Connect(refused))),
        };
        let stream = match open_stream(pinned.addr, pinned.tls_name, DEFAULT_CONNECT_TIMEOUT).await {
            Ok(s) => s,
            Err(e) => return Ok(Err(WsError::Connect(e.to_string()))),
        };
        let mut request = match url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => return Ok(Err(WsError::Connect(e.to_string()))),
        };
        for (k, v) in pinned.headers {
            request.headers_mut().insert(k, v);
        }
        let config = tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE));
        let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(config));
        match tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, handshake).await {
            Ok(Ok((socket, _))) => {
                tracing::debug!(skill = %self.skill, %url, "websocket open");
                Ok(Ok(self.table.push(WsConnection { socket: Some(socket), _slot: slot })?))
            }
            Ok(Err(e)) => Ok(Err(WsError::Connect(e.to_string()))),
            Err(_) => Ok(Err(WsError::Connect("handshake timed out".into()))),
        }
    }
}

impl HostConnection for InvocationCtx {
    async fn recv(
        &mut self,
        this: Resource<WsConnection>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<Message>, WsError>> {
        // A wait in progress when the invocation is cancelled ends at once,
        // as if nothing arrived, so the skill sees the cancel and cleans up.
        let cancel = Some(self.cancel.clone()).filter(|c| !c.is_cancelled());
        let cancelled = async {
            match &cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let mut cancelled = std::pin::pin!(cancelled);
        let conn = self.table.get_mut(&this)?;
        let Some(socket) = conn.socket.as_mut() else {
            return Ok(Err(WsError::Closed));
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms.into());
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout_at(deadline, socket.next()) => match n {
                    Err(_) => return Ok(Ok(None)),
                    Ok(n) => n,
                },
                _ = &mut cancelled => return Ok(Ok(None)),
            };
            return Ok(match next {
                None | Some(Ok(tungstenite::Message::Close(_))) => {
                    conn.socket = None;
                    Err(WsError::Closed)
                }
                Some(Ok(tungstenite::Message::Text(t))) => Ok(Some(Message::Text(t.to_string()))),
                Some(Ok(tungstenite::Message::Binary(b))) => Ok(Some(Message::Binary(b.to_vec()))),
                Some(Ok(_)) => continue, // ping/pong/raw frames: handled by tungstenite
                Some(Err(e)) => {
                    conn.socket = None;
                    Err(WsError::Protocol(e.to_string()))
                }
            });
        }
    }

    async fn send(&mut self, this: Resource<WsConnection>, message: Message) -> wasmtime::Result<Result<(), WsError>> {
        let conn = self.table.get_mut(&this)?;
        let Some(socket) = conn.socket.as_mut() else {
            return Ok(Err(WsError::Closed));
        };
        let msg = match message {
            Message::Text(t) => tungstenite::Message::text(t),
            Message::Binary(b) => tungstenite::Message::binary(b),
        };
        Ok(socket.send(msg).await.map_err(|e| WsError::Protocol(e.to_string())))
    }

    async fn drop(&mut self, this: Resource<WsConnection>) -> wasmtime::Result<()> {
        let mut conn = self.table.delete(this)?;
        if let Some(mut socket) = conn.socket.take() {
            let _ = tokio::time::timeout(Duration::from_millis(200), socket.close(None)).await;
        }
        Ok(())
    }
}
