//! `c41:skill/invocation`: cancellation and the time left before the
//! deadline.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::invocation::Host;
use std::time::Instant;

impl Host for InvocationCtx {
    fn cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.cancel.is_cancelled())
    }

    fn remaining_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.deadline.saturating_duration_since(Instant::now()).as_millis() as u64)
    }
}
