//! Events at the socket layer's decision points, through the `tracing` crate with the
//! `trace` feature (target `ksock`); without it they compile to nothing, so a kernel build
//! pays nothing.
//!
//! `ev!(debug, "socket created", id = s.id(), ty = s.ty())`: a level, a message, then
//! fields, each a name and a value with `Debug`. Off, the values are not evaluated.
//!
//! A family outside the core emits its own events with the same macro, exported as
//! `ksock::trace_event!`: whether it is on follows the core's `trace` feature.

/// `tracing`, for the exported macro's expansion.
#[cfg(feature = "trace")]
#[doc(hidden)]
pub use tracing as __tracing;

/// An event at a decision point (see the `trace` module): `trace_event!(debug, "message",
/// name = value, ...)`. Compiles to nothing without the core's `trace` feature.
#[cfg(feature = "trace")]
#[macro_export]
macro_rules! trace_event {
    ($lvl:ident, $msg:literal $(, $k:ident = $v:expr)* $(,)?) => {
        $crate::trace::__tracing::$lvl!(target: "ksock", $($k = ?$v,)* $msg)
    };
}

/// An event at a decision point (see the `trace` module): `trace_event!(debug, "message",
/// name = value, ...)`. Compiles to nothing without the core's `trace` feature.
#[cfg(not(feature = "trace"))]
#[macro_export]
macro_rules! trace_event {
    ($lvl:ident, $msg:literal $(, $k:ident = $v:expr)* $(,)?) => {
        if false {
            $(let _ = &$v;)*
        }
    };
}

pub(crate) use crate::trace_event as ev;
