//! Events at the family's decision points, through the `tracing` crate with the `trace`
//! feature (target `ksock`, as the core's); without it they compile to nothing.
//!
//! `ev!(debug, "SYN dropped", port = p)`: a level, a message, then fields, each a name and
//! a value with `Debug`. Off, the values are not evaluated.

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
