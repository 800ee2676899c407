//! The `/net` tree of ksock over 9P2000, the protocol of Plan 9's `exportfs` and `import`.
//!
//! - [`proto`]: the messages and their encoding (no I/O).
//! - [`server`]: serves a [`ksock_netfs::NetFs`] to 9P clients, one connection each,
//!   requests multiplexed by tag on the namespace's futures (a waiting request holds no
//!   thread and holds up no other tag); `Tflush` interrupts a waiting request.
//! - [`transport`]: where a server listens and a client connects: a Unix socket only its
//!   owner may use (checked with `SO_PEERCRED`), TCP, or a pair of pipes (`--stdio`).
//! - [`client`]: a 9P client with multiplexed tags, `Tflush` on cancel or timeout.
//! - [`import`]: a FUSE mount of a remote tree through the client (`ksock import`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod import;
pub mod proto;
mod readiness;
pub mod server;
pub mod transport;
