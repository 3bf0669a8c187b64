//! When the SQLite writer commits: as soon as a core is free, not while every core is busy
//! serving requests.
//!
//! A commit costs far more than the writes in it: the WAL's `fsync` (a flush request to the
//! device), the write lock, and every reader connection re-reading its pages afterwards
//! (SQLite drops a connection's page cache when another connection has committed). Woken by
//! each write, the writer thread used to preempt the request handlers and commit groups of
//! about six writes. Held back while the handlers still have work, it commits everything
//! they produced in one go; when a core is idle anyway it commits at once, so a quiet
//! server adds no latency. Each write is still on disk before it is answered.
//!
//! The server's async runtime reports its workers' park and unpark events here
//! ([`worker_parked`], [`worker_unparked`]); without those reports (tests, other programs)
//! no core ever counts as busy and every commit is immediate.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The longest a commit is held back: a runtime that never idles (a flood of reads) must
/// not starve the writes queued behind it.
pub const MAX_HOLD: Duration = Duration::from_millis(2);

static BUSY_WORKERS: AtomicUsize = AtomicUsize::new(0);
/// Writers waiting for a core (one per store; a process may open several, as tests do).
static WAITING_WRITERS: AtomicUsize = AtomicUsize::new(0);
static GATE: Mutex<()> = Mutex::new(());
static CORE_FREED: Condvar = Condvar::new();

thread_local! {
    /// Whether this thread is counted in `BUSY_WORKERS`, so that an unmatched park (a
    /// worker that started running before its first report) never underflows the count.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A runtime worker starts running tasks.
pub fn worker_unparked() {
    COUNTED.with(|counted| {
        if !counted.replace(true) {
            BUSY_WORKERS.fetch_add(1, Ordering::SeqCst);
        }
    });
}

/// A runtime worker has no task left to run and goes idle.
pub fn worker_parked() {
    COUNTED.with(|counted| {
        if counted.replace(false) {
            BUSY_WORKERS.fetch_sub(1, Ordering::SeqCst);
            if WAITING_WRITERS.load(Ordering::SeqCst) > 0 {
                let _gate = GATE.lock();
                CORE_FREED.notify_all();
            }
        }
    });
}

fn every_core_busy() -> bool {
    BUSY_WORKERS.load(Ordering::SeqCst) >= cores()
}

/// Waits, at most `max`, until some core is not busy with request work.
pub(crate) fn wait_for_free_core(max: Duration) {
    if !every_core_busy() {
        return;
    }
    let deadline = Instant::now() + max;
    // SeqCst on both sides: either the parking worker sees this writer counted and notifies
    // under the lock, or this thread sees the decremented count below; a wake-up cannot be
    // lost.
    WAITING_WRITERS.fetch_add(1, Ordering::SeqCst);
    let mut gate = GATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    while every_core_busy() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        gate = match CORE_FREED.wait_timeout(gate, deadline - now) {
            Ok((gate, _)) => gate,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    drop(gate);
    WAITING_WRITERS.fetch_sub(1, Ordering::SeqCst);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc::{Sender, channel};
    use std::thread::JoinHandle;

    /// One thread per core, each reported busy until told to park.
    fn busy_workers() -> Vec<(Sender<()>, JoinHandle<()>)> {
        let (ready_tx, ready_rx) = channel();
        let workers: Vec<_> = (0..cores())
            .map(|_| {
                let ready = ready_tx.clone();
                let (park_tx, park_rx) = channel::<()>();
                let handle = std::thread::spawn(move || {
                    worker_unparked();
                    worker_unparked(); // counted once
                    ready.send(()).unwrap();
                    park_rx.recv().unwrap();
                    worker_parked();
                    worker_parked(); // unmatched: ignored
                });
                (park_tx, handle)
            })
            .collect();
        for _ in 0..cores() {
            ready_rx.recv().unwrap();
        }
        workers
    }

    #[test]
    fn a_commit_is_held_while_every_core_is_busy_until_one_parks_or_the_bound_passes() {
        // No reports: nothing is busy, no wait (a 30 s bound would show).
        let started = Instant::now();
        wait_for_free_core(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10));

        let workers = busy_workers();
        assert!(every_core_busy());
        // Nobody parks: held for the bound, then released anyway.
        let started = Instant::now();
        wait_for_free_core(Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(every_core_busy());

        // A worker parks after 50 ms: the writer goes then, long before its 30 s bound.
        let mut workers = workers.into_iter();
        let (first_park, first_handle) = workers.next().unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            first_park.send(()).unwrap();
        });
        let started = Instant::now();
        wait_for_free_core(Duration::from_secs(30));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(40), "waited {waited:?}");
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
        assert!(!every_core_busy());

        releaser.join().unwrap();
        first_handle.join().unwrap();
        for (park, handle) in workers {
            park.send(()).unwrap();
            handle.join().unwrap();
        }
        assert_eq!(BUSY_WORKERS.load(Ordering::SeqCst), 0);
    }
}
