//! Structured logging into the host's `tracing` output.

use crate::bindings::c41::skill::log::{self as wit, Level};

fn emit(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    wit::log(level, message, &fields);
}

/// Log at debug level.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Debug, message, fields)
}
/// Log at info level.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Info, message, fields)
}
/// Log at warn level.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Warn, message, fields)
}
/// Log at error level.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Error, message, fields)
}
