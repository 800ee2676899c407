//! How a KPI call waits: the embedding kernel's way of putting a thread to sleep.
//!
//! The core never blocks: every operation has a poll form that registers a [`Waker`]. A
//! blocking KPI call polls, and while the answer is `Pending` it sleeps through the [`Park`]
//! the [`Kpi`](crate::Kpi) was made with, until the waker fires, the socket's timeout
//! (`SO_RCVTIMEO` / `SO_SNDTIMEO`, or `sock_connectwait`'s) runs out, or the sleep is
//! interrupted (`EINTR`, for kernels with signals). With the `std` feature, `ThreadPark`
//! does this with std threads.

use core::task::{Context, Poll, Waker};
use core::time::Duration;
use ksock::{Errno, Result};

/// A kernel's sleep primitive, as the KPI's blocking calls use it.
///
/// The contract is the one of `std::thread::park`: [`waker`](Park::waker) returns a waker
/// bound to the calling thread; waking it makes that thread's current or next
/// [`park`](Park::park) return (a wake that comes first is not lost). `park` may also return
/// early for no reason: the caller polls again and parks again.
pub trait Park: Send + Sync + 'static {
    /// A waker that ends the calling thread's sleep in [`park`](Park::park).
    fn waker(&self) -> Waker;

    /// Sleeps the calling thread until its waker is woken (or was, since the last return),
    /// `timeout` passes (`None`: no limit) or it returns spuriously. `Err(EINTR)` if the sleep
    /// was interrupted: the blocking call stops and reports it (or the bytes it already
    /// moved).
    fn park(&self, timeout: Option<Duration>) -> Result<()>;

    /// A monotonic clock (any origin), for deadlines.
    fn now(&self) -> Duration;
}

/// The absolute deadline for a wait of `timeout` that starts now (`None`: no limit; a
/// deadline past the clock's range is no limit either).
pub(crate) fn deadline(park: &dyn Park, timeout: Option<Duration>) -> Option<Duration> {
    timeout.and_then(|t| park.now().checked_add(t))
}

/// Polls `f` until it is ready, sleeping between polls. `EWOULDBLOCK` once `until` has
/// passed with `f` still pending; `EINTR` if the sleep was interrupted.
pub(crate) fn block_on<T>(
    park: &dyn Park,
    until: Option<Duration>,
    mut f: impl FnMut(&mut Context<'_>) -> Poll<Result<T>>,
) -> Result<T> {
    let waker = park.waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(r) = f(&mut cx) {
            return r;
        }
        let left = match until {
            None => None,
            Some(d) => {
                let now = park.now();
                if now >= d {
                    return Err(Errno::EWOULDBLOCK);
                }
                Some(d - now)
            }
        };
        park.park(left)?;
    }
}

#[cfg(feature = "std")]
pub use thread::ThreadPark;

#[cfg(feature = "std")]
mod thread {
    use super::Park;
    use core::task::Waker;
    use core::time::Duration;
    use ksock::Result;
    use std::sync::Arc;
    use std::task::Wake;
    use std::thread::{self, Thread};
    use std::time::Instant;

    /// [`Park`] on std threads: `thread::park_timeout`, and a waker that unparks the thread.
    #[derive(Debug)]
    pub struct ThreadPark {
        origin: Instant,
    }

    impl Default for ThreadPark {
        fn default() -> Self {
            ThreadPark::new()
        }
    }

    impl ThreadPark {
        /// A parker whose clock starts now.
        pub fn new() -> ThreadPark {
            ThreadPark {
                origin: Instant::now(),
            }
        }
    }

    struct Unpark(Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    std::thread_local! {
        /// One waker per thread: registering it again with a socket merges with the old entry.
        static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
    }

    impl Park for ThreadPark {
        fn waker(&self) -> Waker {
            WAKER.with(Waker::clone)
        }

        fn park(&self, timeout: Option<Duration>) -> Result<()> {
            match timeout {
                None => thread::park(),
                Some(t) => thread::park_timeout(t),
            }
            Ok(())
        }

        fn now(&self) -> Duration {
            self.origin.elapsed()
        }
    }
}
