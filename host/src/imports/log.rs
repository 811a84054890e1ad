//! `c41:skill/log`: guest log records become `tracing` events tagged with
//! the skill's name. Every part is cleaned and cut by
//! [`skill_text::clean_line`]: a record is one line, of bounded size,
//! without control characters, whatever the skill sends.
//!
//! [`skill_text::clean_line`]: crate::skill_text::clean_line

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::log::{Host, Level};
use crate::skill_text::clean_line;

/// Longest message kept; a skill must not flood the host's log.
pub const MAX_MESSAGE: usize = 8 * 1024;
/// Longest field key kept.
pub const MAX_KEY: usize = 128;
/// Longest field value kept.
pub const MAX_VALUE: usize = 2 * 1024;
/// Most fields kept per record.
pub const MAX_FIELDS: usize = 32;

/// The record's fields as one line: `key=value key=value`.
pub fn fields_line(fields: &[(String, String)]) -> String {
    let mut line = fields
        .iter()
        .take(MAX_FIELDS)
        .map(|(k, v)| format!("{}={}", clean_line(k, MAX_KEY), clean_line(v, MAX_VALUE)))
        .collect::<Vec<_>>()
        .join(" ");
    if fields.len() > MAX_FIELDS {
        line.push_str(&format!(" … ({} more fields cut)", fields.len() - MAX_FIELDS));
    }
    line
}

impl Host for InvocationCtx {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        let message = clean_line(&message, MAX_MESSAGE);
        let fields = fields_line(&fields);
        let skill = self.skill.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "c41::skill", skill, fields, "{message}"),
            Level::Debug => tracing::debug!(target: "c41::skill", skill, fields, "{message}"),
            Level::Info => tracing::info!(target: "c41::skill", skill, fields, "{message}"),
            Level::Warn => tracing::warn!(target: "c41::skill", skill, fields, "{message}"),
            Level::Error => tracing::error!(target: "c41::skill", skill, fields, "{message}"),
        }
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.events.emit(&self.skill, crate::events::Event::Log { level, message, fields });
        Ok(())
    }
}
