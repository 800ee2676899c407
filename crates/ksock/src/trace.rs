//! Events at the socket layer's decision points, through the `tracing` crate with the
//! `trace` feature (target `ksock`); without it they compile to nothing, so a kernel build
//! pays nothing.
//!
//! `ev!(debug, "socket created", id = s.id(), ty = s.ty())`: a level, a message, then
//! fields, each a name and a value with `Debug`. Off, the values are not evaluated.

#[cfg(feature = "trace")]
macro_rules! ev {
    ($lvl:ident, $msg:literal $(, $k:ident = $v:expr)* $(,)?) => {
        ::tracing::$lvl!(target: "ksock", $($k = ?$v,)* $msg)
    };
}

#[cfg(not(feature = "trace"))]
macro_rules! ev {
    ($lvl:ident, $msg:literal $(, $k:ident = $v:expr)* $(,)?) => {
        if false {
            $(let _ = &$v;)*
        }
    };
}

pub(crate) use ev;
