//! Time for families whose protocols keep timers (retransmission, keep-alive, a connect
//! that gives up), supplied by the host so that a `no_std` kernel can drive them.
//!
//! The shape is quinn-proto's `poll_timeout` / `handle_timeout` and aster-bigtcp's
//! `ScheduleNextPoll`: nothing in the core sleeps or spawns. A family reads the time from
//! the stack ([`StackInner::now`](crate::stack::StackInner::now)) and asks to be called
//! back ([`StackInner::schedule`](crate::stack::StackInner::schedule)); the host's
//! [`Clock`] remembers the earliest request and, at or after it, calls
//! [`Stack::on_timer`](crate::Stack::on_timer), which runs every family's due work
//! ([`Family::on_timer`](crate::Family::on_timer)) and returns when it next wants to run.
//!
//! Times are nanoseconds on the clock's own monotonic scale (its origin is its own).
//! With the `std` feature, [`ThreadClock`] is a clock with a thread that calls back; tests
//! use a clock they advance by hand (`testing::ManualClock`), so nothing depends on the
//! wall clock.

/// A monotonic clock and a one-shot timer, supplied by the host.
pub trait Clock: Send + Sync {
    /// Now, in nanoseconds since the clock's origin.
    fn now(&self) -> u64;

    /// Asks for [`Stack::on_timer`](crate::Stack::on_timer) to be called at `at` or soon
    /// after. Only the earliest outstanding request matters: a later one may be ignored
    /// until the earlier has fired (its `on_timer` returns the next time anyway).
    fn wake_at(&self, at: u64);
}

#[cfg(feature = "std")]
pub use threaded::ThreadClock;

#[cfg(feature = "std")]
mod threaded {
    use super::Clock;
    use crate::stack::{Stack, StackInner};
    use alloc::sync::{Arc, Weak};
    use std::sync::{Condvar, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    /// A [`Clock`] over [`Instant`] with a thread that calls the stack back when a timer
    /// comes due. While none is set it sleeps without waking at all; the thread ends when
    /// the clock is dropped (with the stack that holds it) or the stack is gone.
    pub struct ThreadClock {
        inner: Arc<Inner>,
    }

    struct Inner {
        origin: Instant,
        /// The next timer, and whether the clock was dropped.
        next: Mutex<(Option<u64>, bool)>,
        changed: Condvar,
    }

    impl Inner {
        fn now(&self) -> u64 {
            u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }
    }

    impl ThreadClock {
        /// Starts the clock and its thread for `stack`, and gives the stack the clock.
        pub fn start(stack: &Stack) -> std::io::Result<Arc<ThreadClock>> {
            let inner = Arc::new(Inner {
                origin: Instant::now(),
                next: Mutex::new((None, false)),
                changed: Condvar::new(),
            });
            let weak: Weak<StackInner> = Arc::downgrade(stack.inner());
            let i = inner.clone();
            thread::Builder::new()
                .name("ksock-timer".into())
                .spawn(move || run(&i, weak))?;
            let clock = Arc::new(ThreadClock { inner });
            stack.set_clock(clock.clone());
            Ok(clock)
        }
    }

    fn run(c: &Inner, stack: Weak<StackInner>) {
        let mut g = c.next.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if g.1 {
                return;
            }
            match g.0 {
                None => {
                    g = c.changed.wait(g).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                Some(at) => {
                    let wait = Duration::from_nanos(at.saturating_sub(c.now()));
                    if !wait.is_zero() {
                        g = match c.changed.wait_timeout(g, wait) {
                            Ok((g, _)) => g,
                            Err(e) => e.into_inner().0,
                        };
                        continue;
                    }
                }
            }
            g.0 = None;
            drop(g);
            let Some(inner) = stack.upgrade() else { return };
            let again = Stack::from_inner(inner).on_timer(c.now());
            g = c.next.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = again {
                g.0 = Some(g.0.map_or(at, |n| n.min(at)));
            }
        }
    }

    impl Drop for ThreadClock {
        fn drop(&mut self) {
            let mut g = self.inner.next.lock().unwrap_or_else(|e| e.into_inner());
            g.1 = true;
            self.inner.changed.notify_one();
        }
    }

    impl Clock for ThreadClock {
        fn now(&self) -> u64 {
            self.inner.now()
        }

        fn wake_at(&self, at: u64) {
            let mut g = self.inner.next.lock().unwrap_or_else(|e| e.into_inner());
            if g.0.is_none_or(|n| at < n) {
                g.0 = Some(at);
                self.inner.changed.notify_one();
            }
        }
    }
}
