//! The one lock type of the core: `parking_lot` on std, a spin lock on bare metal.
//!
//! Both are `?Sized`-friendly, which lets a socket keep its protocol state inline as a
//! `dyn Protocol` behind the same lock as its state machine (one allocation per socket).

#[cfg(feature = "std")]
pub use parking_lot::Mutex;

#[cfg(not(feature = "std"))]
pub use spin::Mutex;
