//! The inet family (TCP and UDP on smoltcp, over the mount's in-process loopback) through a
//! real mount, driven by separate processes (sh and python3): echoes and transfers through
//! `data` files, datagrams with `headers on`, the errors and their `err` texts, what
//! `status`, `table`, `addrs` and `ksock ss` show, a listen backlog, and sockets ending
//! with their files and processes.

mod common;

use common::keep_local_only as local_mount_only;

include!("scenarios/inet_files.rs");
