//! Small per-skill state that outlives one invocation (`c41:skill/state`):
//! remember that a backend failed, so the next call skips it for a while.
//! The host keeps it per skill and expires every value.

use crate::bindings::c41::skill::state as wit;
use std::time::Duration;

/// The live value under `key`.
pub fn get(key: &str) -> Option<String> {
    wit::get(key)
}

/// Keep `value` under `key` for `ttl` (capped by the host at one day).
pub fn set(key: &str, value: &str, ttl: Duration) {
    let ms = ttl.as_millis().min(u64::MAX as u128) as u64;
    if ms > 0 {
        wit::set(key, value, ms);
    }
}

/// Forget `key`.
pub fn clear(key: &str) {
    wit::set(key, "", 0);
}
