//! The scenarios of `tests/inet_files.rs` through `ksock export` and `ksock import` (9P2000)
//! instead of `ksock mount`: the same files must give the same results (SPEC section 8).

mod common;

use common::exclude_local_only as local_mount_only;

include!("scenarios/inet_files.rs");
