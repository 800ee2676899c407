//! The scenarios of `tests/mount.rs` through `ksock export` and `ksock import` (9P2000)
//! instead of `ksock mount`: the same files must give the same results (SPEC section 8).

mod common;

include!("scenarios/mount.rs");
