//! How the socket files of a real mount behave as files: writes that wait hold up no other
//! write, page-cache reads take nothing, open files keep their attributes, and `ksock mount`
//! refuses mount points that would surprise.
//!
//! Completion is checked against generous deadlines (a step that should take milliseconds
//! gets ten seconds): they catch a write stuck behind another, never measure one.

mod common;

use common::keep_local_only as local_mount_only;

include!("scenarios/fuse_files.rs");
