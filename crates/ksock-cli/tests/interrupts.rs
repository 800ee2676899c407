//! Signals and exits through a real mount: interrupted requests (`FUSE_INTERRUPT`), and
//! sockets that live exactly as long as their creating process (pidfds).
//!
//! Some tests mount in this process, to read the mount's counters (which requests were
//! interrupted, which processes are watched); the clients are always other processes.
//! Others run `ksock mount` itself. They need root, `/dev/fuse`, python3 and gcc, and fail
//! loudly without them.

mod common;

use common::keep_local_only as local_mount_only;

include!("scenarios/interrupts.rs");
