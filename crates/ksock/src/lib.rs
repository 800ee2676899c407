//! ksock: a kernel-grade socket layer.
//!
//! One core, three faces. This crate is the core ([`Socket`], [`Stack`], the state machine,
//! options, readiness, wakers and upcalls, buffer chains) with the in-memory [`local`]
//! family. It is `#![no_std]` with `alloc`; the default `std` feature adds blocking calls
//! with timeouts and `std::io` adapters.
//!
//! ```
//! use ksock::{Stack, Domain, SockType, SockAddr};
//!
//! let stack = Stack::new();
//! let server = stack.socket(Domain::LOCAL, SockType::SEQPACKET, 0)?;
//! server.bind(&SockAddr::local("dwm")?)?;
//! server.listen(16)?;
//!
//! let client = stack.socket(Domain::LOCAL, SockType::SEQPACKET, 0)?;
//! client.connect(&SockAddr::local("dwm")?)?;
//! let (conn, _peer) = server.accept()?;
//!
//! client.send(b"hello")?;
//! let mut buf = [0u8; 64];
//! let n = conn.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok::<(), ksock::Errno>(())
//! ```

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod account;
pub mod addr;
mod asyncio;
#[cfg(feature = "std")]
mod blocking;
pub mod buf;
pub mod errno;
pub mod event;
pub mod family;
pub mod local;
pub mod opt;
mod socket;
pub mod stack;
pub mod state;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
#[doc(hidden)]
pub mod trace;
pub mod types;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

pub use account::Account;
pub use addr::{LocalName, SockAddr};
#[cfg(feature = "std")]
pub use blocking::block_on;
pub use buf::{Chain, ChainSink, Gather, RecvSink, Scatter, SendBuf};
pub use errno::{Errno, Result};
pub use event::{Events, Upcall};
pub use family::{Family, Protocol, SockRef};
pub use opt::{OptVal, SockOpt};
pub use socket::{SOMAXCONN, Socket, SocketCore, SocketInfo, WeakSocket};
pub use stack::Stack;
pub use state::State;
pub use types::{Cred, Domain, MsgFlags, Queues, RecvInfo, Shutdown, SockType};
