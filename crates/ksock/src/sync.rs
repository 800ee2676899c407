//! The core's synchronization types: its one lock type (`parking_lot` on std, a spin lock on
//! bare metal) and the atomics beside it.
//!
//! Both locks are `?Sized`-friendly, which lets a socket keep its protocol state inline as a
//! `dyn Protocol` behind the same lock as its state machine (one allocation per socket).
//!
//! Built with `--cfg shuttle` (and `std`), both are [shuttle](https://docs.rs/shuttle)'s
//! instead, so that the concurrency models in `crates/ksock-models` explore the core's
//! interleavings under randomized schedules. Nothing else changes.

#[cfg(all(feature = "std", not(shuttle)))]
pub use parking_lot::Mutex;

#[cfg(not(feature = "std"))]
pub use spin::Mutex;

#[cfg(all(feature = "std", shuttle))]
pub use model::Mutex;

/// The atomics the core's lock-free paths use (the interest mask, handle counts, ids,
/// accounting, datagram queue room).
pub mod atomic {
    #[cfg(not(all(feature = "std", shuttle)))]
    pub use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

    #[cfg(all(feature = "std", shuttle))]
    pub use shuttle::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
}

#[cfg(all(feature = "std", shuttle))]
mod model {
    /// shuttle's mutex with `parking_lot`'s interface (no poisoning).
    #[derive(Default)]
    pub struct Mutex<T: ?Sized>(shuttle::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// A new mutex holding `value`.
        pub fn new(value: T) -> Mutex<T> {
            Mutex(shuttle::sync::Mutex::new(value))
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Locks it (a scheduling point for shuttle).
        pub fn lock(&self) -> shuttle::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}
