//! Login pages waiting for the wallet's decision.
//!
//! The login page asks `/login/{id}/status?wait=1` and the node holds the request until the
//! sign-in is decided, expires, or `decision_wait` (25 s) passes. A holder takes seconds to scan and
//! approve; polling once a second cost a sign-in an HTTP exchange and a store read per
//! second of that, more than the sign-in itself. Decisions taken on this node wake their
//! waiters at once; those taken on another node sharing the store are seen by re-reading
//! the status every `decision_recheck` (2 s). Both are in [`crate::config::PlatformConfig`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub struct DecisionWatch {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
    closing: AtomicBool,
}

/// One waiter's registration; dropping it forgets the sign-in once nobody waits for it.
pub struct Waiter<'a> {
    watch: &'a DecisionWatch,
    id: String,
    notify: Arc<Notify>,
}

impl Waiter<'_> {
    /// Resolves at the next decision of the sign-in (or the node's closing) after it is
    /// enabled or first polled.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl DecisionWatch {
    /// Registers interest in `id`. Take it (and enable its `notified()`) before reading the
    /// status, so that a decision between the read and the wait is not missed.
    pub fn wait_for(&self, id: &str) -> Waiter<'_> {
        let notify = Arc::clone(
            self.lock()
                .entry(id.to_owned())
                .or_insert_with(|| Arc::new(Notify::new())),
        );
        Waiter {
            watch: self,
            id: id.to_owned(),
            notify,
        }
    }

    /// `id` was decided (or ended) on this node: its waiters answer now.
    pub fn decided(&self, id: &str) {
        if let Some(notify) = self.lock().get(id) {
            notify.notify_waiters();
        }
    }

    /// The node is shutting down: every waiter answers now (the page asks again, of a node
    /// that is up), and no request waits from here on.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for notify in self.lock().values() {
            notify.notify_waiters();
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// How many sign-ins have a waiter (for tests of the clean-up).
    #[cfg(test)]
    pub fn watched(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut waiting = self.watch.lock();
        // The map's reference and this one: nobody else waits for this sign-in.
        if waiting
            .get(&self.id)
            .is_some_and(|notify| Arc::strong_count(notify) <= 2)
        {
            waiting.remove(&self.id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_decision_wakes_every_waiter_and_the_entry_goes_with_the_last() {
        let watch = DecisionWatch::default();
        let (first, second) = (watch.wait_for("a"), watch.wait_for("a"));
        let other = watch.wait_for("b");
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
        assert_eq!(watch.watched(), 2);
        drop(first);
        assert_eq!(watch.watched(), 2, "one waiter for a is left");
        drop(second);
        assert_eq!(watch.watched(), 1);
        drop(other);
        assert_eq!(watch.watched(), 0);
    }

    #[tokio::test]
    async fn closing_wakes_waiters_and_is_remembered() {
        let watch = DecisionWatch::default();
        let waiter = watch.wait_for("a");
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
