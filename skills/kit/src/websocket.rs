//! Client websockets through the host (`c41:skill/websocket`), policed by the
//! same grants as HTTP. Calls block the skill until a message arrives or the
//! timeout passes, so loop with a short timeout and check cancellation.

use crate::SkillError;
use crate::bindings::c41::skill::websocket::{self as wit, Connection, WsError};
use std::time::Duration;
pub use wit::Message;

/// An open websocket.
pub struct WebSocket {
    inner: Connection,
    service: String,
}

fn to_skill_error(service: &str, e: WsError) -> SkillError {
    match e {
        WsError::Denied(why) => SkillError::Denied { target: service.into(), reason: why },
        WsError::Connect(why) => SkillError::backend(service, None, format!("websocket: {why}")),
        WsError::Closed => SkillError::backend(service, None, "websocket closed"),
        WsError::Protocol(why) => SkillError::backend(service, None, format!("websocket: {why}")),
    }
}

/// Connect to `url` (`ws://` or `wss://`); `service` names it in errors.
pub fn connect(url: &str, service: &str) -> Result<WebSocket, SkillError> {
    let inner = wit::connect(url).map_err(|e| to_skill_error(service, e))?;
    Ok(WebSocket { inner, service: service.to_string() })
}

impl WebSocket {
    /// The next message, or `None` if none came within `timeout`.
    pub fn recv(&self, timeout: Duration) -> Result<Option<Message>, SkillError> {
        let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        self.inner.recv(ms).map_err(|e| to_skill_error(&self.service, e))
    }

    /// Send a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SkillError> {
        self.inner.send(&Message::Text(text.to_string())).map_err(|e| to_skill_error(&self.service, e))
    }
}
