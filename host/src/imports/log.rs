//! `c41:skill/log`: guest log records become `tracing` events tagged with
//! the skill's name.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::log::{Host, Level};

/// Longest message kept; a skill must not flood the host's log.
const MAX_MESSAGE: usize = 8 * 1024;

impl Host for InvocationCtx {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" …");
        }
        let fields = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        let skill = self.skill.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "c41::skill", skill, fields, "{message}"),
            Level::Debug => tracing::debug!(target: "c41::skill", skill, fields, "{message}"),
            Level::Info => tracing::info!(target: "c41::skill", skill, fields, "{message}"),
            Level::Warn => tracing::warn!(target: "c41::skill", skill, fields, "{message}"),
            Level::Error => tracing::error!(target: "c41::skill", skill, fields, "{message}"),
        }
        Ok(())
    }
}
