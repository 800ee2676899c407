//! What the file face answers: errnos and `err` texts for refused operations, the peer's
//! credentials, and what a zero-length write does. Through a real mount, from separate
//! processes.

mod common;

use common::keep_local_only as local_mount_only;

include!("scenarios/answers.rs");
