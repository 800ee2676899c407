//! The kernel face of ksock: XNU's `kpi_socket` in Rust.
//!
//! Code that embeds ksock (a kernel, a driver, a user-space stack) uses sockets with no file
//! descriptor, through the functions of XNU's `kpi_socket.h`, one for one: [`sock_socket`],
//! [`sock_bind`], [`sock_listen`], [`sock_accept`], [`sock_connect`], [`sock_connectwait`],
//! [`sock_send`], [`sock_sendmbuf`], [`sock_receive`], [`sock_receivembuf`],
//! [`sock_shutdown`], [`sock_close`], [`sock_getsockname`], [`sock_getpeername`],
//! [`sock_getsockopt`], [`sock_setsockopt`], [`sock_ioctl`], [`sock_gettype`],
//! [`sock_isconnected`], [`sock_isnonblocking`], [`sock_setpriv`], [`sock_retain`],
//! [`sock_release`], and the upcall ([`SockUpcall`]). Each is a thin translation onto the
//! core ([`ksock`]); the KPI keeps no socket state of its own.
//!
//! In Rust terms: results are `Result<_, Errno>` (Linux numbers, as everywhere in ksock:
//! `EWOULDBLOCK` = `EAGAIN` = 11, `ENOTSUP` = `EOPNOTSUPP` = 95, `SOL_SOCKET` = 1); a
//! `socket_t` is a [`Sock`]; an `mbuf_t` is an [`Mbuf`] (a [`ksock::Chain`] of shared
//! slices); a `struct msghdr` is a [`SendMsg`] or [`RecvMsg`]; addresses go in as
//! [`SockAddr`](ksock::SockAddr) and come out into the caller's storage as bytes
//! ([`sockaddr`]), truncated to fit, with their full length returned.
//!
//! # References and closing
//!
//! A [`Sock`] is one reference. [`sock_socket`] and [`sock_accept`] make the first,
//! [`sock_retain`] more; [`sock_close`], [`sock_release`] or a drop give one up. The socket
//! closes when the last is gone, so a **retained socket survives `sock_close`**: after
//! `sock_close`, the retained reference still sends, receives, accepts and gets upcalls
//! exactly as before; its name stays bound and its peer notices nothing. At the last
//! `sock_release` it closes for real: the name is freed, the peer reads end of file (or
//! `ECONNRESET` if data was left unread), pending connections of a listener are reset, the
//! upcall runs a last time (on a socket where every call is `EBADF`) and the socket leaves
//! the stack's table. This is XNU's `soclose` of a retained socket, which only drops the
//! closer's use count.
//!
//! # Waiting
//!
//! The core never blocks. A KPI call waits only if the socket is blocking
//! ([`FIONBIO`] off) and the call has no `MSG_DONTWAIT`; it then sleeps through the
//! [`Park`] the [`Kpi`] was made with, until woken, until the socket's `SO_RCVTIMEO` /
//! `SO_SNDTIMEO` runs out (`EWOULDBLOCK`, or the partial count), or until the park reports
//! `EINTR`. With the default `std` feature, `Kpi::with_threads` parks std threads; a
//! kernel built with `--no-default-features` supplies its own [`Park`].
//!
//! # Upcalls
//!
//! A socket's upcall fires when there is data past the low-water mark, room to write, a
//! connection to accept, a connect completed or failed, a shutdown (either side), the
//! peer's close, and exactly once more at its own close (on a socket where every call is
//! `EBADF`). It runs with no lock held, may not block ([`WaitF::DontWait`]), may run
//! concurrently on several threads and may be spurious. It may call any `sock_*` function
//! with `MSG_DONTWAIT` on the socket it gets; it runs on the thread whose call changed the
//! socket, so a call made in an upcall may run the peer's upcall inside it (as XNU's
//! `sorwakeup` does). Upcalls that already started may still be running on other threads
//! when `sock_close` returns; while one runs, it holds a reference, so a `sock_close`
//! racing with it finishes when it returns.
//!
//! # Example: an in-kernel style client
//!
//! ```
//! use ksock::{Domain, Errno, MsgFlags, SockAddr, SockType, Stack};
//! use ksock_kpi::*;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//!
//! let kpi = Kpi::with_threads(Stack::new());
//! // A server to talk to.
//! let server = sock_socket(&kpi, Domain::LOCAL, SockType::STREAM, 0, None)?;
//! sock_bind(&server, &SockAddr::local("echo")?)?;
//! sock_listen(&server, 16)?;
//!
//! // The client: its upcall counts the times it was told to look at the socket.
//! let looks = Arc::new(AtomicUsize::new(0));
//! let upcall = SockUpcall::new(looks.clone(), |_so, looks, _waitf| {
//!     looks.fetch_add(1, Ordering::Relaxed);
//! });
//! let client = sock_socket(&kpi, Domain::LOCAL, SockType::STREAM, 0, Some(upcall))?;
//! match sock_connect(&client, &SockAddr::local("echo")?, MsgFlags::DONTWAIT) {
//!     Ok(()) => {}
//!     Err(e) if e == Errno::EINPROGRESS => sock_connectwait(&client, Duration::from_secs(5))?,
//!     Err(e) => return Err(e),
//! }
//! assert!(looks.load(Ordering::Relaxed) >= 1, "the upcall saw the connect complete");
//!
//! let mut from = [0u8; 64];
//! let (conn, from_len) = sock_accept(&server, Some(&mut from), MsgFlags::empty(), None)?;
//! assert_eq!(sockaddr::decode(&from[..from_len])?, SockAddr::Unnamed);
//!
//! // Send a chain: its slices move to the peer without a copy.
//! let sent = sock_sendmbuf(&client, None, Mbuf::from(&b"ping"[..]), MsgFlags::empty())?;
//! assert_eq!(sent, 4);
//! let m = sock_receivembuf(&conn, None, 64, MsgFlags::empty())?;
//! assert_eq!(m.to_vec(), b"ping");
//! sock_sendmbuf(&conn, None, m, MsgFlags::empty())?; // echo the very same slices back
//! let reply = sock_receivembuf(&client, None, 4, MsgFlags::WAITALL)?;
//! assert_eq!(reply.to_vec(), b"ping");
//!
//! sock_close(conn);
//! sock_close(client);
//! sock_close(server);
//! assert_eq!(kpi.stack().socket_count(), 0);
//! # Ok::<(), Errno>(())
//! ```

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod api;
mod mbuf;
mod msg;
pub mod park;
mod sock;
pub mod sockaddr;

pub use api::{
    FIONBIO, FIONREAD, MSG_USEUPCALL, SHUT_RD, SHUT_RDWR, SHUT_WR, sock_accept, sock_bind,
    sock_close, sock_connect, sock_connectwait, sock_getpeername, sock_getsockname,
    sock_getsockopt, sock_gettype, sock_ioctl, sock_isconnected, sock_isnonblocking, sock_listen,
    sock_receive, sock_receivembuf, sock_release, sock_retain, sock_send, sock_sendmbuf,
    sock_setpriv, sock_setsockopt, sock_shutdown, sock_socket,
};
pub use ksock::opt::SOL_SOCKET;
pub use mbuf::Mbuf;
pub use msg::{RecvMsg, SendMsg};
pub use park::Park;
#[cfg(feature = "std")]
pub use park::ThreadPark;
pub use sock::{Kpi, Sock, SockUpcall, WaitF};
