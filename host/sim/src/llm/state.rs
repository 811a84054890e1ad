//! Shared simulator state: which models are loaded (with Ollama's keep-alive
//! and LRU eviction rules), the pending-request budget, fault switches and
//! the request log.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::util::{KeepAlive, canonical};
use super::{LlmConfig, RequestRecord, SimModel};

pub(crate) struct Shared {
    pub config: LlmConfig,
    /// When the simulator started; stands in for models' `modified_at`.
    pub started: SystemTime,
    inner: Mutex<Inner>,
    /// Serialises cold loads, as Ollama's scheduler loads one model at a time.
    load_lock: tokio::sync::Mutex<()>,
    in_flight: AtomicUsize,
    /// Cold loads given up because the client went away (the future was
    /// dropped mid-load), counted so a test can wait for that event.
    aborted_loads: AtomicUsize,
    /// Model listings served (`/api/tags`, `/api/ps`, `/v1/models`).
    pub listings: AtomicUsize,
    ids: AtomicU64,
    down: watch::Sender<bool>,
}

struct Inner {
    loaded: Vec<Loaded>,
    requests: Vec<RequestRecord>,
    fail: Option<(usize, u16)>,
    mid_stream: usize,
    token_delay: Duration,
    load_time: Duration,
    first_byte_delay: Duration,
}

struct Loaded {
    name: String,
    /// None: kept forever.
    expires: Option<SystemTime>,
    last_used: Instant,
    /// Requests using it right now; a busy model is never evicted or expired.
    refs: usize,
}

impl Inner {
    fn purge(&mut self) {
        let now = SystemTime::now();
        self.loaded.retain(|m| m.refs > 0 || m.expires.is_none_or(|e| e > now));
    }

    fn find(&mut self, name: &str) -> Option<&mut Loaded> {
        self.loaded.iter_mut().find(|m| m.name == name)
    }

    /// Evicts the least recently used idle model; false if all are busy.
    fn evict_lru(&mut self) -> bool {
        let lru = self
            .loaded
            .iter()
            .enumerate()
            .filter(|(_, m)| m.refs == 0)
            .min_by_key(|(_, m)| m.last_used)
            .map(|(i, _)| i);
        lru.map(|i| self.loaded.remove(i)).is_some()
    }
}

/// Holds one slot of `max_pending` until dropped.
pub(crate) struct Pending(Arc<Shared>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Keeps a loaded model busy for one request; on drop its keep-alive timer
/// starts, as in Ollama.
pub(crate) struct Lease {
    shared: Arc<Shared>,
    name: String,
    keep: KeepAlive,
    /// Time spent waiting for the model to be ready.
    pub load_duration: Duration,
    /// Whether that wait included a cold load.
    pub cold: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        let Some(i) = inner.loaded.iter().position(|m| m.name == self.name) else {
            return;
        };
        let m = &mut inner.loaded[i];
        m.refs = m.refs.saturating_sub(1);
        m.last_used = Instant::now();
        m.expires = self.keep.deadline();
        if m.refs == 0 && self.keep == KeepAlive::For(Duration::ZERO) {
            inner.loaded.remove(i);
        }
    }
}

impl Shared {
    pub fn new(config: LlmConfig) -> Self {
        let inner = Inner {
            loaded: Vec::new(),
            requests: Vec::new(),
            fail: None,
            mid_stream: 0,
            token_delay: config.token_delay,
            load_time: config.load_time,
            first_byte_delay: Duration::ZERO,
        };
        Self {
            config,
            started: SystemTime::now(),
            inner: Mutex::new(inner),
            load_lock: tokio::sync::Mutex::new(()),
            in_flight: AtomicUsize::new(0),
            aborted_loads: AtomicUsize::new(0),
            listings: AtomicUsize::new(0),
            ids: AtomicU64::new(1),
            down: watch::channel(false).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn model(&self, name: &str) -> Option<&SimModel> {
        let wanted = canonical(name);
        self.config.models.iter().find(|m| canonical(&m.name) == wanted)
    }

    pub fn default_keep_alive(&self) -> KeepAlive {
        KeepAlive::For(self.config.keep_alive)
    }

    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    pub fn token_delay(&self) -> Duration {
        self.lock().token_delay
    }

    pub fn set_token_delay(&self, d: Duration) {
        self.lock().token_delay = d;
    }

    pub fn set_load_time(&self, d: Duration) {
        self.lock().load_time = d;
    }

    /// Every request waits this long before it is handled.
    pub fn first_byte_delay(&self) -> Duration {
        self.lock().first_byte_delay
    }

    pub fn set_first_byte_delay(&self, d: Duration) {
        self.lock().first_byte_delay = d;
    }

    /// Disarms every fault and restores the configured timings.
    pub fn clear_faults(&self) {
        let mut inner = self.lock();
        inner.fail = None;
        inner.mid_stream = 0;
        inner.first_byte_delay = Duration::ZERO;
        inner.token_delay = self.config.token_delay;
        inner.load_time = self.config.load_time;
        drop(inner);
        self.set_down(false);
    }

    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().fail = (n > 0).then_some((n, status));
    }

    /// Consumes one scheduled failure, if any.
    pub fn take_failure(&self) -> Option<u16> {
        let mut inner = self.lock();
        let (n, status) = inner.fail?;
        inner.fail = (n > 1).then_some((n - 1, status));
        Some(status)
    }

    pub fn error_mid_stream_next(&self) {
        self.lock().mid_stream += 1;
    }

    pub fn take_mid_stream(&self) -> bool {
        let mut inner = self.lock();
        let armed = inner.mid_stream > 0;
        inner.mid_stream = inner.mid_stream.saturating_sub(1);
        armed
    }

    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    pub fn down_receiver(&self) -> watch::Receiver<bool> {
        self.down.subscribe()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn aborted_loads(&self) -> usize {
        self.aborted_loads.load(Ordering::SeqCst)
    }

    /// Takes a pending slot, or None when the queue is full (503).
    pub fn try_enter(self: &Arc<Self>) -> Option<Pending> {
        let prev = self.in_flight.fetch_add(1, Ordering::SeqCst);
        if prev >= self.config.max_pending {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Pending(self.clone()))
    }

    /// Marks a loaded model busy; false if it is not loaded.
    fn touch(&self, name: &str, keep: KeepAlive) -> bool {
        let mut inner = self.lock();
        inner.purge();
        match inner.find(name) {
            Some(m) => {
                m.refs += 1;
                m.last_used = Instant::now();
                m.expires = keep.deadline();
                true
            }
            None => false,
        }
    }

    /// Makes `model` ready for a request, cold-loading it (and evicting the
    /// LRU idle model when full) if needed. Dropping the future mid-load
    /// aborts the load, like a client disconnecting from Ollama.
    pub async fn acquire(self: &Arc<Self>, model: &SimModel, keep: KeepAlive) -> Lease {
        let start = Instant::now();
        let name = canonical(&model.name);
        let lease = |cold| Lease {
            shared: self.clone(),
            name: name.clone(),
            keep,
            load_duration: start.elapsed().max(Duration::from_micros(1)),
            cold,
        };
        if self.touch(&name, keep) {
            return lease(false);
        }
        let _one_load_at_a_time = self.load_lock.lock().await;
        if self.touch(&name, keep) {
            return lease(true);
        }
        loop {
            {
                let mut inner = self.lock();
                inner.purge();
                if inner.loaded.len() < self.config.max_loaded.max(1) || inner.evict_lru() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let load_time = self.lock().load_time;
        // Counts the load as aborted if this future is dropped before it ends.
        struct Aborted<'a>(Option<&'a AtomicUsize>);
        impl Drop for Aborted<'_> {
            fn drop(&mut self) {
                if let Some(n) = self.0 {
                    n.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        let mut aborted = Aborted(Some(&self.aborted_loads));
        tokio::time::sleep(load_time).await;
        aborted.0 = None;
        let mut inner = self.lock();
        while inner.loaded.len() >= self.config.max_loaded.max(1) && inner.evict_lru() {}
        inner.loaded.push(Loaded { name: name.clone(), expires: keep.deadline(), last_used: Instant::now(), refs: 1 });
        drop(inner);
        lease(true)
    }

    /// Unloads an idle model now (`keep_alive: 0` with an empty prompt).
    pub fn unload(&self, model: &SimModel) {
        let name = canonical(&model.name);
        let mut inner = self.lock();
        inner.loaded.retain(|m| m.name != name || m.refs > 0);
    }

    pub fn preload(&self, name: &str) -> bool {
        let Some(model) = self.model(name) else {
            return false;
        };
        let name = canonical(&model.name);
        let expires = Some(SystemTime::now() + self.config.keep_alive);
        let mut inner = self.lock();
        inner.purge();
        if let Some(m) = inner.find(&name) {
            m.last_used = Instant::now();
            m.expires = expires;
            return true;
        }
        while inner.loaded.len() >= self.config.max_loaded.max(1) && inner.evict_lru() {}
        inner.loaded.push(Loaded { name, expires, last_used: Instant::now(), refs: 0 });
        true
    }

    pub fn unload_all(&self) {
        self.lock().loaded.retain(|m| m.refs > 0);
    }

    /// Loaded models, least recently used first, with their expiry
    /// (None: forever).
    pub fn loaded(&self) -> Vec<(SimModel, Option<SystemTime>)> {
        let mut inner = self.lock();
        inner.purge();
        let mut list: Vec<_> = inner.loaded.iter().collect();
        list.sort_by_key(|m| m.last_used);
        list.iter().filter_map(|m| Some((self.model(&m.name)?.clone(), m.expires))).collect()
    }

    pub fn loaded_names(&self) -> Vec<String> {
        self.loaded().into_iter().map(|(m, _)| canonical(&m.name)).collect()
    }

    pub fn log(&self, record: RequestRecord) {
        self.lock().requests.push(record);
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}
