//! The `/net` namespace of ksock, without any host file system glue.
//!
//! ```text
//! /<family>/                 local, inet (whatever families the stack has)
//! /<family>/<type>           factory: opening it creates a socket (Plan 9's clone)
//! /<family>/addrs            listening addresses, one per line
//! /<family>/table            every socket of the family, one line each (see [`status`])
//! /<family>/<id>/ctl         commands in (see [`ctl`]); reading gives the id
//! /<family>/<id>/data        read = receive, write = send
//! /<family>/<id>/accept      opening it accepts: the open file is the connection's data
//! /<family>/<id>/listen      opening it accepts: the open file is the connection's ctl
//! /<family>/<id>/local       local address
//! /<family>/<id>/remote      peer address
//! /<family>/<id>/status      key value lines (see [`status`])
//! /<family>/<id>/err         the last error, as "ENAME: what happened"
//! ```
//!
//! A file name may carry `:nonblock` (`:n`) flags. [`NetFs`] resolves names to [`Node`]s
//! (each with a stable inode number), reports attributes and listings, checks ownership
//! (a socket's directory is its creator's, mode 0700), and opens [`Handle`]s. Everything
//! that can wait is a future driven by the core's wakers, so a host (the FUSE face, a test)
//! decides how to wait; [`exec`] has a small blocking driver for tests and tools.
//!
//! A socket lives while the process that created it is alive (the host reports process
//! exits with [`NetFs::process_exited`]) or any of its files is open, and ends at once on
//! `hangup`. An accepted connection lives while any of its files is open.
//!
//! ```
//! use ksock_netfs::{Cred, NetFs, OpenMode, exec::block_on};
//! use bytes::Bytes;
//!
//! let fs = NetFs::new(ksock::Stack::new());
//! let me = Cred::new(1000, 1000, 0);
//! let factory = fs.resolve("/local/seqpacket", &me)?.ino;
//! let server = block_on(fs.open(factory, OpenMode::RDWR, me))?;
//! block_on(server.write(Bytes::from_static(b"bind dwm && listen"), false))?;
//! let id = block_on(server.read(32, false))?;
//! assert_eq!(id, server.id().unwrap().to_string());
//! # Ok::<(), ksock::Errno>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ctl;
pub mod exec;
mod fs;
mod handle;
mod node;
pub mod park;
pub mod status;

pub use fs::{
    Access, Attr, Config, Cred, DEFAULT_MAX_BUFFERED_PER_USER, DEFAULT_MAX_SOCKETS_PER_USER,
    DirEntry, NetFs, OpenMode, ProcId, Resolver,
};
pub use handle::{Handle, HandleKind};
pub use node::{MAX_ID, Node, PathFlags, SockFile, parse_id, split_flags};
