//! One job queue for every client of a long-running host (`c41 serve`,
//! `c41 mcp`): a service with `max-jobs = N` in the config gets at most N
//! runs at once from this host, however many agent sessions, scripts and
//! browser tabs ask, and the waiting runs are let in fairly between clients.
//!
//! Fair means: when a place frees, the waiting run that fits is taken from
//! the client served least recently, so one client queueing twenty videos
//! does not keep another's single image waiting behind all twenty. Runs of
//! one client keep their order. A run that touches no limited service never
//! waits here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The queue. Shared by every run of one host process.
pub struct JobQueue {
    state: Mutex<State>,
    /// Bumped whenever a run is let in or leaves, so waiters look again.
    changes: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    limits: BTreeMap<String, usize>,
    running: HashMap<String, usize>,
    /// Waiting runs, oldest first.
    waiting: Vec<Waiter>,
    /// Let in, not yet picked up by their waiter: id → services.
    admitted: HashMap<u64, Vec<String>>,
    next_id: u64,
    /// Admissions so far, and the admission count at each client's last one.
    admissions: u64,
    served: HashMap<String, u64>,
}

struct Waiter {
    id: u64,
    client: String,
    services: Vec<String>,
}

/// Where a waiting run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// 1 for the next run to go in on these services.
    pub position: usize,
    /// The limited services it waits for.
    pub services: Vec<String>,
}

/// A place in the limited services; dropping it frees the place.
pub struct Ticket {
    queue: Arc<JobQueue>,
    services: Vec<String>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.queue.release(&self.services);
    }
}

/// Removes a waiter that gave up (its run was cancelled while waiting).
struct Waiting<'a> {
    queue: &'a Arc<JobQueue>,
    id: u64,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let services = {
            let mut s = self.queue.state.lock().unwrap();
            s.waiting.retain(|w| w.id != self.id);
            s.admitted.remove(&self.id)
        };
        match services {
            // Let in just as it gave up: pass the place on.
            Some(services) => self.queue.release(&services),
            None => self.queue.changed(),
        }
    }
}

impl JobQueue {
    /// A queue for `limits`: service name → most runs at once.
    pub fn new(limits: BTreeMap<String, usize>) -> Arc<JobQueue> {
        Arc::new(JobQueue { state: Mutex::new(State { limits, ..State::default() }), changes: watch::channel(0).0 })
    }

    /// A queue for the `max-jobs` of `config`'s services.
    pub fn for_config(config: &crate::config::Config) -> Arc<JobQueue> {
        JobQueue::new(
            config
                .services
                .iter()
                .filter_map(|(name, svc)| Some((name.clone(), *svc.max_jobs.as_ref()?.get_ref() as usize)))
                .collect(),
        )
    }

    /// Which of `services` have a limit.
    pub fn limited(&self, services: &[String]) -> Vec<String> {
        let s = self.state.lock().unwrap();
        services.iter().filter(|name| s.limits.contains_key(*name)).cloned().collect()
    }

    /// Wait for a place on `services` (the limited ones among a run's
    /// granted services) for a run of `client`; `waiting` hears where the
    /// run stands whenever that changes, and `None` once it is let in.
    /// Dropping the future gives the place up.
    pub async fn admit(
        self: &Arc<Self>,
        client: &str,
        services: Vec<String>,
        waiting: impl Fn(Option<Place>),
    ) -> Ticket {
        if services.is_empty() {
            return Ticket { queue: self.clone(), services };
        }
        let mut changes = self.changes.subscribe();
        let id = {
            let mut s = self.state.lock().unwrap();
            s.next_id += 1;
            let id = s.next_id;
            s.waiting.push(Waiter { id, client: client.to_string(), services: services.clone() });
            s.let_in();
            id
        };
        self.changed();
        let mut guard = Waiting { queue: self, id, done: false };
        let mut told = None;
        loop {
            let place = {
                let mut s = self.state.lock().unwrap();
                if let Some(services) = s.admitted.remove(&id) {
                    guard.done = true;
                    if told.is_some() {
                        waiting(None);
                    }
                    return Ticket { queue: self.clone(), services };
                }
                s.place_of(id)
            };
            if place != told {
                waiting(place.clone());
                told = place;
            }
            // The sender lives in `self`, which this future borrows.
            let _ = changes.changed().await;
        }
    }

    fn release(&self, services: &[String]) {
        if services.is_empty() {
            return;
        }
        {
            let mut s = self.state.lock().unwrap();
            for name in services {
                if let Some(n) = s.running.get_mut(name) {
                    *n = n.saturating_sub(1);
                }
            }
            s.let_in();
        }
        self.changed();
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

impl State {
    fn fits(&self, w: &Waiter) -> bool {
        w.services.iter().all(|name| self.running.get(name).copied().unwrap_or(0) < self.limits[name])
    }

    /// Let in every waiting run that fits, least recently served client first.
    fn let_in(&mut self) {
        loop {
            let next = self
                .waiting
                .iter()
                .enumerate()
                .filter(|(_, w)| self.fits(w))
                .min_by_key(|(i, w)| (self.served.get(&w.client).copied().unwrap_or(0), *i))
                .map(|(i, _)| i);
            let Some(i) = next else { return };
            let w = self.waiting.remove(i);
            for name in &w.services {
                *self.running.entry(name.clone()).or_default() += 1;
            }
            self.admissions += 1;
            self.served.insert(w.client, self.admissions);
            self.admitted.insert(w.id, w.services);
        }
    }

    /// 1 + the waiting runs ahead of `id` that wait for one of its services.
    fn place_of(&self, id: u64) -> Option<Place> {
        let at = self.waiting.iter().position(|w| w.id == id)?;
        let me = &self.waiting[at];
        let ahead = self.waiting[..at].iter().filter(|w| w.services.iter().any(|s| me.services.contains(s))).count();
        Some(Place { position: ahead + 1, services: me.services.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn queue(limit: usize) -> Arc<JobQueue> {
        JobQueue::new([("forge".to_string(), limit)].into())
    }

    fn forge() -> Vec<String> {
        vec!["forge".into()]
    }

    #[tokio::test]
    async fn a_limited_service_gets_at_most_its_limit_and_the_next_waits_its_turn() {
        let q = queue(2);
        let a = q.admit("x", forge(), |_| {}).now_or_never().expect("first place");
        let _b = q.admit("x", forge(), |_| {}).now_or_never().expect("second place");
        let places = Arc::new(Mutex::new(Vec::new()));
        let seen = places.clone();
        let q2 = q.clone();
        let third = tokio::spawn(async move { q2.admit("x", forge(), move |p| seen.lock().unwrap().push(p)).await });
        while places.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(places.lock().unwrap()[0], Some(Place { position: 1, services: forge() }));
        assert!(!third.is_finished());
        drop(a);
        let _c = third.await.unwrap();
        assert_eq!(places.lock().unwrap().last(), Some(&None), "told it is in");
        // Unlimited services never wait.
        let free = q.admit("x", q.limited(&["ollama".into()]), |_| {}).now_or_never();
        assert!(free.is_some());
    }

    #[tokio::test]
    async fn a_freed_place_goes_to_the_client_served_least_recently() {
        let q = queue(1);
        let first = q.admit("busy", forge(), |_| {}).now_or_never().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        // The busy client queues three more, then another client one.
        for (client, n) in [("busy", 1), ("busy", 2), ("busy", 3), ("other", 1)] {
            let (queue, order) = (q.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _ticket = queue.admit(client, forge(), |_| {}).await;
                order.lock().unwrap().push(format!("{client}{n}"));
            }));
            // Each is in the queue before the next comes.
            while q.state.lock().unwrap().waiting.len() < waiting.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["other1", "busy1", "busy2", "busy3"]);
    }

    #[tokio::test]
    async fn a_run_that_gives_up_waiting_leaves_no_trace() {
        let q = queue(1);
        let first = q.admit("x", forge(), |_| {}).now_or_never().unwrap();
        let gave_up = q.admit("x", forge(), |_| {}).now_or_never();
        assert!(gave_up.is_none(), "it waited, then its future was dropped");
        assert!(q.state.lock().unwrap().waiting.is_empty());
        drop(first);
        assert!(q.admit("x", forge(), |_| {}).now_or_never().is_some(), "the place is free again");
    }
}
