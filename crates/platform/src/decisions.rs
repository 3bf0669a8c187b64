//! Login pages waiting for the wallet's decision.
//!
//! The login page asks `/login/{id}/status?wait=1` and the node holds the request until the
//! sign-in is decided or expires, or `sign_in.decision_wait_seconds` (25 s) pass. A holder
//! takes seconds to scan and approve; polling once a second cost a sign-in an HTTP exchange
//! and a store read per second of that, more than the sign-in itself.
//!
//! A decision taken on this node wakes its waiters at once. One taken on another node
//! sharing the store (behind a load balancer, the wallet's request and the browser's rarely
//! meet on one node) is found by the node asking the store every
//! `sign_in.decision_recheck_ms` (0.5 s) which of the sign-ins it holds pages for have ended,
//! all in one call. PostgreSQL's `LISTEN`/`NOTIFY` would be immediate, but a committing
//! transaction that notified holds a lock shared by the whole database cluster until its
//! commit is on disk: every approval on every node would commit one after the other.
//!
//! Held requests are bounded: at most `sign_in.max_waiting_per_sign_in` (4: a login page,
//! perhaps open in a second tab or after a reload; more is not a browser's) per sign-in and
//! `sign_in.max_waiting_requests` (100,000: each costs a connection and a few hundred bytes)
//! per node; beyond, the status is answered at once, and the page asks again a second
//! later, as it did before it could wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// A sign-in with waiters: how to wake them, and how many there are (counted explicitly:
/// the entry goes when the count reaches zero, under the map's lock).
struct Watched {
    notify: Arc<Notify>,
    waiters: usize,
}

/// The waiters of this node, by sign-in, and how many in all.
#[derive(Default)]
struct Waiting {
    by_sign_in: HashMap<String, Watched>,
    total: usize,
}

pub struct DecisionWatch {
    waiting: Mutex<Waiting>,
    /// Held requests per node, and per sign-in.
    max_waiting: usize,
    max_waiting_per_sign_in: usize,
    closing: AtomicBool,
    /// Whether the task that looks for other nodes' decisions runs (started with the first
    /// waiter).
    pub(crate) checking: AtomicBool,
}

/// One waiter's registration; dropping it forgets the sign-in once nobody waits for it.
pub struct Waiter<'a> {
    watch: &'a DecisionWatch,
    id: String,
    notify: Arc<Notify>,
}

impl Waiter<'_> {
    /// Resolves at the sign-in's next decision (or the node's closing) after it is enabled
    /// or first polled.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl DecisionWatch {
    pub fn new(max_waiting: usize, max_waiting_per_sign_in: usize) -> Self {
        Self {
            waiting: Mutex::default(),
            max_waiting,
            max_waiting_per_sign_in,
            closing: AtomicBool::new(false),
            checking: AtomicBool::new(false),
        }
    }

    /// Registers interest in `id`, unless the sign-in or the node already has as many
    /// waiters as allowed. Take it (and enable its `notified()`) before reading the status,
    /// so that a decision between the read and the wait is not missed.
    pub fn wait_for(&self, id: &str) -> Option<Waiter<'_>> {
        let mut waiting = self.lock();
        if waiting.total >= self.max_waiting {
            return None;
        }
        let watched = waiting
            .by_sign_in
            .entry(id.to_owned())
            .or_insert_with(|| Watched {
                notify: Arc::new(Notify::new()),
                waiters: 0,
            });
        if watched.waiters >= self.max_waiting_per_sign_in {
            return None;
        }
        watched.waiters += 1;
        let notify = Arc::clone(&watched.notify);
        waiting.total += 1;
        Some(Waiter {
            watch: self,
            id: id.to_owned(),
            notify,
        })
    }

    /// `id` was decided (or ended): its waiters answer now.
    pub fn decided(&self, id: &str) {
        if let Some(watched) = self.lock().by_sign_in.get(id) {
            watched.notify.notify_waiters();
        }
    }

    /// The sign-ins that have waiters on this node.
    pub fn watched(&self) -> Vec<String> {
        self.lock().by_sign_in.keys().cloned().collect()
    }

    /// How many requests wait for `id` on this node.
    pub fn waiting_for(&self, id: &str) -> usize {
        self.lock()
            .by_sign_in
            .get(id)
            .map_or(0, |watched| watched.waiters)
    }

    /// The node is shutting down: every waiter answers now (the page asks again, of a node
    /// that is up), and no request waits from here on.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for watched in self.lock().by_sign_in.values() {
            watched.notify.notify_waiters();
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut waiting = self.watch.lock();
        waiting.total -= 1;
        if let Some(watched) = waiting.by_sign_in.get_mut(&self.id) {
            watched.waiters -= 1;
            if watched.waiters == 0 {
                waiting.by_sign_in.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::settings::SignInSettings;

    /// The bounds a node has by default.
    const MAX_WAITERS: usize = 100_000;
    const MAX_WAITERS_PER_SIGN_IN: usize = 4;

    fn watch() -> DecisionWatch {
        let defaults = SignInSettings::default();
        assert_eq!(
            (
                defaults.max_waiting_requests,
                defaults.max_waiting_per_sign_in
            ),
            (MAX_WAITERS, MAX_WAITERS_PER_SIGN_IN)
        );
        DecisionWatch::new(MAX_WAITERS, MAX_WAITERS_PER_SIGN_IN)
    }

    #[tokio::test]
    async fn a_decision_wakes_every_waiter_and_the_entry_goes_with_the_last() {
        let watch = watch();
        let (first, second) = (watch.wait_for("a").unwrap(), watch.wait_for("a").unwrap());
        let other = watch.wait_for("b").unwrap();
        assert_eq!(watch.waiting_for("a"), 2);
        {
            let (woken_first, woken_second) = (first.notified(), second.notified());
            tokio::pin!(woken_first, woken_second);
            woken_first.as_mut().enable();
            woken_second.as_mut().enable();
            watch.decided("a");
            // Both resolve without any other wake-up (a missed one would hang the test).
            woken_first.await;
            woken_second.await;
        }
        let mut watched = watch.watched();
        watched.sort();
        assert_eq!(watched, ["a", "b"]);
        drop(first);
        assert_eq!(watch.waiting_for("a"), 1, "one waiter for a is left");
        drop(second);
        assert_eq!(watch.watched(), ["b"]);
        drop(other);
        assert!(watch.watched().is_empty());
        assert_eq!(watch.lock().total, 0);
    }

    /// A node holds at most `MAX_WAITERS` requests in all; beyond that (or a sign-in's own
    /// bound) `wait_for` refuses, and a place freed is taken again.
    #[test]
    fn a_node_holds_at_most_its_bound_of_waiters() {
        let watch = watch();
        let sign_ins = MAX_WAITERS / MAX_WAITERS_PER_SIGN_IN;
        let mut held = Vec::with_capacity(MAX_WAITERS);
        for n in 0..sign_ins {
            let id = n.to_string();
            for _ in 0..MAX_WAITERS_PER_SIGN_IN {
                held.push(watch.wait_for(&id).unwrap());
            }
            assert!(watch.wait_for(&id).is_none(), "a fifth waiter for {id}");
        }
        assert_eq!(watch.lock().total, MAX_WAITERS);
        assert!(watch.wait_for("another").is_none());
        assert!(watch.watched().iter().all(|id| id != "another"));
        held.pop();
        assert!(watch.wait_for("another").is_some());
    }

    /// Waiters of one sign-in dropped on many threads at once: the entry goes with the
    /// last, whatever the order.
    #[test]
    fn waiters_dropped_together_leave_nothing_behind() {
        let watch = watch();
        for _ in 0..200 {
            let waiters: Vec<_> = (0..MAX_WAITERS_PER_SIGN_IN)
                .map(|_| watch.wait_for("a").unwrap())
                .collect();
            std::thread::scope(|scope| {
                for waiter in waiters {
                    scope.spawn(move || drop(waiter));
                }
            });
            assert!(watch.watched().is_empty());
            assert_eq!(watch.lock().total, 0);
        }
    }

    #[test]
    fn a_sign_in_has_a_bounded_number_of_waiters() {
        let watch = watch();
        let held: Vec<_> = (0..MAX_WAITERS_PER_SIGN_IN)
            .map(|_| watch.wait_for("a").unwrap())
            .collect();
        assert!(watch.wait_for("a").is_none());
        assert!(
            watch.wait_for("b").is_some(),
            "other sign-ins may still wait"
        );
        drop(held);
        assert!(watch.wait_for("a").is_some());
    }

    #[tokio::test]
    async fn closing_wakes_waiters_and_is_remembered() {
        let watch = watch();
        let waiter = watch.wait_for("a").unwrap();
        {
            let woken = waiter.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            assert!(!watch.is_closing());
            watch.close();
            woken.await;
        }
        assert!(watch.is_closing());
    }
}
