//! Limits per user, the table file, long listings and `ksock ss` without `--mount`, through a
//! real mount driven by separate processes.

mod common;

use common::keep_local_only as local_mount_only;

include!("scenarios/limits.rs");
