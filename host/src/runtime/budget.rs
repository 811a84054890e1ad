//! Per-invocation caps on what a skill holds open (input files, artifact
//! writers, outgoing connections) and the log of every limit the host
//! enforced, so a failure after a refusal is reported as `limit` with the
//! host's own words, not as whatever the guest made of it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The limit refusals of one invocation, in order: each message names the
/// config key (`limits.open-files`), shared between the store and the
/// outgoing-HTTP hook.
#[derive(Debug, Clone, Default)]
pub struct LimitLog(Arc<Mutex<Vec<String>>>);

impl LimitLog {
    /// Record one refusal.
    pub fn record(&self, skill: &str, message: String) {
        tracing::warn!(skill, "{message}");
        let mut log = self.0.lock().unwrap();
        // A flood of refusals keeps the first few: they say it all.
        if log.len() < 16 {
            log.push(message);
        }
    }

    /// All refusals so far, oldest first.
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A capped count of things open at once (`limits.open-files`,
/// `limits.connections`). Cloned into whatever opens them.
#[derive(Debug, Clone)]
pub struct Slots {
    open: Arc<AtomicUsize>,
    max: usize,
    what: &'static str,
    key: &'static str,
}

impl Slots {
    /// Up to `max` of `what` at once, configured by `key`.
    pub fn new(max: usize, what: &'static str, key: &'static str) -> Self {
        Slots { open: Arc::new(AtomicUsize::new(0)), max, what, key }
    }

    /// Take one slot, or the refusal message when all are in use. The slot
    /// is given back when the returned [`Slot`] is dropped.
    pub fn take(&self) -> Result<Slot, String> {
        let taken = self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1));
        match taken {
            Ok(_) => Ok(Slot(self.open.clone())),
            Err(_) => {
                Err(format!("refused: more than {} {} open at once in one call ({})", self.max, self.what, self.key))
            }
        }
    }

    /// How many are open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One taken slot; dropping it frees it.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cap_and_come_back() {
        let s = Slots::new(2, "input files and artifact writers", "limits.open-files");
        let a = s.take().unwrap();
        let _b = s.take().unwrap();
        let err = s.take().unwrap_err();
        assert!(err.contains("more than 2 input files") && err.contains("limits.open-files"), "{err}");
        drop(a);
        assert_eq!(s.open(), 1);
        s.take().expect("a slot came back");
    }
}
