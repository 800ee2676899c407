//! Concurrency models of the ksock core's lock-free and cross-socket paths.
//!
//! The models (`tests/models.rs`) run real core code (sockets of the local family, driven
//! through the nonblocking and poll forms of the API) on several threads and check what
//! must hold however the threads interleave: no lost wake-up, no leaked connection, no
//! limit overrun, a socket closed exactly at its last handle.
//!
//! Built with `--cfg shuttle`, the core's lock and atomics are
//! [shuttle](https://docs.rs/shuttle)'s (`ksock::sync`), every lock and atomic access is a
//! scheduling point, and [`check`] runs each model under that many randomized schedules:
//!
//! ```sh
//! RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p ksock-models --release
//! ```
//!
//! A failing schedule is printed with a seed to replay it (`shuttle::replay`). Built
//! without it (as `cargo test --workspace` does), the same models run a few times on OS
//! threads: a smoke test, not a search.

use std::sync::Arc;
use std::task::{Context, Wake, Waker};

#[cfg(shuttle)]
pub use shuttle::thread;
#[cfg(not(shuttle))]
pub use std::thread;

#[cfg(shuttle)]
use shuttle::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(shuttle))]
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `model` under `schedules` randomized schedules (shuttle), or a tenth as many
/// times on OS threads.
pub fn check(schedules: usize, model: impl Fn() + Send + Sync + 'static) {
    #[cfg(shuttle)]
    shuttle::check_random(model, schedules);
    #[cfg(not(shuttle))]
    for _ in 0..(schedules / 10).max(1) {
        model();
    }
}

/// As [`check`], with shuttle's PCT scheduler (bugs that need a few threads to be
/// preempted at just the right points, `depth` of them).
pub fn check_pct(schedules: usize, depth: usize, model: impl Fn() + Send + Sync + 'static) {
    #[cfg(shuttle)]
    shuttle::check_pct(model, schedules, depth);
    #[cfg(not(shuttle))]
    {
        let _ = depth;
        for _ in 0..(schedules / 10).max(1) {
            model();
        }
    }
}

/// A waker that counts how often it was woken.
#[derive(Default)]
pub struct Counter(AtomicUsize);

impl Counter {
    /// A new counter and a waker for it.
    pub fn new() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter::default());
        let w = Waker::from(c.clone());
        (c, w)
    }

    /// How often it was woken.
    pub fn woken(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A context whose waker is `w`.
pub fn cx(w: &Waker) -> Context<'_> {
    Context::from_waker(w)
}
