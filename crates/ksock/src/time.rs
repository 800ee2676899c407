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
    /// comes due. While none is set it sleeps, waking once a second only to notice the
    /// stack going away; the thread ends when the stack is gone.
    pub struct ThreadClock {
        origin: Instant,
        next: Mutex<Option<u64>>,
        changed: Condvar,
    }

    impl ThreadClock {
        /// Starts the clock and its thread for `stack`, and gives the stack the clock.
        pub fn start(stack: &Stack) -> std::io::Result<Arc<ThreadClock>> {
            let clock = Arc::new(ThreadClock {
                origin: Instant::now(),
                next: Mutex::new(None),
                changed: Condvar::new(),
            });
            let weak: Weak<StackInner> = Arc::downgrade(stack.inner());
            let c = clock.clone();
            thread::Builder::new()
                .name("ksock-timer".into())
                .spawn(move || c.run(weak))?;
            stack.set_clock(clock.clone());
            Ok(clock)
        }

        fn run(&self, stack: Weak<StackInner>) {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                // Wake now and then to notice the stack going away.
                let wait = match *next {
                    None => Duration::from_secs(1),
                    Some(at) => Duration::from_nanos(at.saturating_sub(self.now())),
                };
                if !wait.is_zero() {
                    next = match self.changed.wait_timeout(next, wait) {
                        Ok((g, _)) => g,
                        Err(e) => e.into_inner().0,
                    };
                }
                let Some(inner) = stack.upgrade() else { return };
                if next.is_some_and(|at| at <= self.now()) {
                    *next = None;
                    drop(next);
                    let again = Stack::from_inner(inner).on_timer(self.now());
                    next = self.next.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(at) = again {
                        *next = Some(next.map_or(at, |n| n.min(at)));
                    }
                }
            }
        }
    }

    impl Clock for ThreadClock {
        fn now(&self) -> u64 {
            u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }

        fn wake_at(&self, at: u64) {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            if next.is_none_or(|n| at < n) {
                *next = Some(at);
                self.changed.notify_one();
            }
        }
    }
}
