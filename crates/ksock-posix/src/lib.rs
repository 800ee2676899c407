//! The POSIX face of ksock: a descriptor table and the Linux socket calls, with Linux
//! semantics, over a [`ksock::Stack`].
//!
//! Every call takes and returns what its C counterpart does, in Rust clothing: descriptors
//! are `i32`, addresses are raw `struct sockaddr` bytes (build local ones with
//! [`unix_abstract`] or [`unix_path`]), an output address is a buffer plus a `socklen_t`
//! that goes in as the buffer's length and comes back as the untruncated length, and errors
//! are [`Errno`] values with Linux numbers. `None` stands for a null pointer; a length
//! larger than the buffer it describes is `EFAULT`, as it would be for unmapped memory.
//! The numbers in [`consts`] are Linux's (x86-64, arm64, riscv64).
//!
//! ```
//! use ksock_posix::{consts::*, unix_abstract, Posix};
//!
//! let px = Posix::new(ksock::Stack::new());
//! let srv = px.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)?;
//! px.bind(srv, &unix_abstract(b"dwm"))?;
//! px.listen(srv, 16)?;
//! let cli = px.socket(AF_UNIX, SOCK_SEQPACKET, 0)?;
//! px.connect(cli, &unix_abstract(b"dwm"))?;
//! let conn = px.accept4(srv, None, None, SOCK_NONBLOCK)?;
//! px.send(cli, b"hello", 0)?;
//! let mut buf = [0u8; 3];
//! assert_eq!(px.recv(conn, &mut buf, MSG_TRUNC)?, 5, "MSG_TRUNC: the record's length");
//! assert_eq!(&buf, b"hel");
//! assert_eq!(px.recv(conn, &mut buf, 0), Err(ksock::Errno::EAGAIN));
//! # Ok::<(), ksock::Errno>(())
//! ```
//!
//! # Addresses
//!
//! An abstract `sockaddr_un` (`sun_path` starting with NUL) names the ksock local name made
//! of the bytes after the NUL, so `"\0dwm"` here is `dwm` in `/net/local/addrs` and in the
//! kernel face. A path name names the ksock name made of the path's bytes up to its first
//! NUL. Both share one namespace (`"\0/run/x"` is `/run/x`); names starting with `/` are
//! reported as paths (NUL-terminated, as Linux reports them), all others as abstract
//! names. `bind` with the family alone picks a free five-hex-digit abstract name.
//!
//! # `accept4`
//!
//! In the order of SPEC section 6 (Linux `__sys_accept4_file` and `do_accept`): unknown
//! descriptor `EBADF`; flags other than `SOCK_NONBLOCK | SOCK_CLOEXEC` `EINVAL` before any
//! effect; the new descriptor is reserved (`EMFILE`, nothing dequeued); not a socket
//! `ENOTSOCK`; the protocol accept, blocking as the listener is; the peer's name if asked
//! for (`ECONNABORTED` if it cannot be had), copied truncated with the untruncated length
//! reported; then the descriptor is installed. A failure after the reservation frees it and
//! closes the new socket. The new descriptor is nonblocking and close-on-exec only from
//! `flags`.
//!
//! # Differences from Linux
//!
//! Checked call by call against Linux AF_UNIX by the crate's differential suite. Where
//! SPEC decides otherwise:
//! - a listener's backlog is how many connections may wait (Linux lets one more wait);
//! - a datagram receiver holds 10 records from strangers (Linux 11);
//! - one namespace for all socket types: a name of another type is `EPROTOTYPE` and cannot
//!   be bound twice (Linux keeps a namespace per type: `ECONNREFUSED`, and binds);
//! - names are 1 to 255 bytes: the empty abstract name is `EINVAL`;
//! - `shutdown` of a socket that is not connected (or a listener) is `ENOTCONN` (Linux 0);
//! - `bind` on a connected socket is `EINVAL` (the state table; Linux binds);
//! - `connect` on a listener or a connected socket fails with `EINVAL` / `EISCONN` even
//!   when the target does not exist (Linux looks the name up first: `ECONNREFUSED`).
//!
//! By design or not (yet) supported:
//! - `POLLOUT` while at most half the send buffer is in use (Linux: a quarter; a blocked
//!   writer is woken at the same point); buffer accounting counts payload bytes (plus 32
//!   per record) where Linux counts kernel memory, so how much fits before `EAGAIN`
//!   differs;
//! - buffer sizes follow Linux's default limits (`wmem_max` = `rmem_max` = 212992) whatever
//!   the host's sysctls say;
//! - timeouts are kept as given, not rounded up to kernel ticks;
//! - no urgent data (`MSG_OOB` is `EOPNOTSUPP` on sends, `EINVAL` on stream receives),
//!   no ancillary data (no `SCM_RIGHTS`, `SCM_CREDENTIALS`), no `SO_PEEK_OFF`;
//! - socket options other than those of [`Posix::getsockopt`] are `ENOPROTOOPT` (Linux
//!   also knows `SO_REUSEADDR`, `SO_KEEPALIVE`, `SO_PASSCRED`, `SO_PEERCRED`, ...);
//! - `connect(AF_UNSPEC)` cannot dissolve a datagram association: `EOPNOTSUPP`;
//! - a nonblocking datagram receive with the read side shut returns end of file (Linux
//!   `EAGAIN`, though its poll says readable);
//! - a path name creates no file: it is free as soon as its socket closes, and a missing
//!   one is `ECONNREFUSED` (Linux `ENOENT`);
//! - autobound names are handed out in order, not at random;
//! - `fcntl`: `O_ASYNC` and `O_DIRECT` are `EINVAL` (no signals are ever sent); no locks,
//!   `F_SETOWN` or leases (`EINVAL`); `ioctl`: only `FIONBIO` and `FIONREAD` (`SIOCOUTQ`
//!   and interface requests are `ENOTTY`);
//! - a writer blocked on a full peer that then closes gets `EPIPE` (Linux `ECONNRESET` if
//!   the writer was already asleep, `EPIPE` otherwise).

mod addr;
pub mod consts;
mod poll;
mod table;

pub use addr::{encode as encode_addr, unix_abstract, unix_path};
pub use ksock::{Errno, Result, Stack};
pub use poll::PollFd;

use addr::{Target, Use, copy_out, encode_from, encode_name};
use consts::*;
use ksock::{Cred, Gather, Scatter};
use ksock::{Domain, MsgFlags, OptVal, RecvInfo, Shutdown, SockAddr, SockOpt, SockType, Socket};
use std::any::Any;
use std::io::{IoSlice, IoSliceMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use table::{File, Kind, Table};

/// A descriptor.
pub type Fd = i32;

/// The descriptor limit of [`Posix::new`] (Linux's default `RLIMIT_NOFILE` soft limit).
pub const DEFAULT_FD_LIMIT: usize = 1024;

/// A message to send: an optional address (`msg_name`, `msg_namelen`) and a gather list.
/// Ancillary data is not supported.
#[derive(Clone, Copy, Debug)]
pub struct MsgHdr<'a> {
    /// The destination, as raw `sockaddr` bytes (`None`: a null `msg_name`). Lengths past
    /// `sizeof(struct sockaddr_storage)` are cut to it, as Linux does.
    pub name: Option<&'a [u8]>,
    /// The bytes, in order.
    pub iov: &'a [IoSlice<'a>],
}

/// A message to receive into: an optional address buffer, a scatter list, and the flags
/// that come back.
#[derive(Debug)]
pub struct MsgHdrMut<'a, 'b> {
    /// Where the sender's address goes (`None`: a null `msg_name`).
    pub name: Option<&'a mut [u8]>,
    /// In: the length of `name`'s buffer. Out: the sender's untruncated address length
    /// (0 for an unnamed sender). Untouched when `name` is `None`.
    pub namelen: u32,
    /// The buffers, filled in order.
    pub iov: &'a mut [IoSliceMut<'b>],
    /// Out: `MSG_TRUNC` if a record did not fit (and `MSG_CMSG_CLOEXEC` if it was passed in).
    pub flags: i32,
}

impl<'a, 'b> MsgHdrMut<'a, 'b> {
    /// A header with no address buffer.
    pub fn new(iov: &'a mut [IoSliceMut<'b>]) -> Self {
        MsgHdrMut {
            name: None,
            namelen: 0,
            iov,
            flags: 0,
        }
    }
}

/// A descriptor table over a stack: one process's view of its sockets.
pub struct Posix {
    stack: Stack,
    table: Table,
    cred: Cred,
}

impl std::fmt::Debug for Posix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Posix")
            .field("fds", &self.table.open_fds())
            .field("limit", &self.table.limit())
            .finish()
    }
}

fn split_type(ty: i32) -> Result<(i32, bool, bool)> {
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((
        ty & SOCK_TYPE_MASK,
        flags & SOCK_NONBLOCK != 0,
        flags & SOCK_CLOEXEC != 0,
    ))
}

/// Linux `__sock_create`'s range checks.
fn check_domain_type(domain: i32, base: i32) -> Result<(Domain, SockType)> {
    if !(0..NPROTO).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT);
    }
    if base >= SOCK_MAX {
        return Err(Errno::EINVAL);
    }
    Ok((Domain::from_raw(domain as u16), SockType::from_raw(base)?))
}

fn timeval(d: Option<Duration>) -> [u8; 16] {
    let (s, us) = d.map_or((0i64, 0i64), |d| {
        (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i64::from(d.subsec_micros()),
        )
    });
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&s.to_ne_bytes());
    v[8..].copy_from_slice(&us.to_ne_bytes());
    v
}

fn parse_timeval(b: &[u8]) -> Result<Option<Duration>> {
    if b.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let mut s = [0u8; 8];
    let mut us = [0u8; 8];
    s.copy_from_slice(&b[..8]);
    us.copy_from_slice(&b[8..16]);
    let (s, us) = (i64::from_ne_bytes(s), i64::from_ne_bytes(us));
    if !(0..1_000_000).contains(&us) {
        return Err(Errno::EDOM);
    }
    if s < 0 {
        // Linux: a negative time means "do not wait at all".
        return Ok(Some(Duration::ZERO));
    }
    if s == 0 && us == 0 {
        return Ok(None);
    }
    Ok(Some(Duration::new(s as u64, us as u32 * 1000)))
}

impl Posix {
    /// A table of [`DEFAULT_FD_LIMIT`] descriptors over `stack`.
    pub fn new(stack: Stack) -> Posix {
        Posix::with_fd_limit(stack, DEFAULT_FD_LIMIT)
    }

    /// A table of at most `limit` descriptors (numbers `0..limit`); past it, calls that
    /// make descriptors fail with `EMFILE`.
    pub fn with_fd_limit(stack: Stack, limit: usize) -> Posix {
        Posix {
            stack,
            table: Table::new(limit.min(i32::MAX as usize)),
            cred: Cred {
                pid: std::process::id(),
                uid: nix::unistd::getuid().as_raw(),
                gid: nix::unistd::getgid().as_raw(),
            },
        }
    }

    /// The credentials its sockets are made with (`SO_PEERCRED` of their peers); by
    /// default the calling process's.
    pub fn cred(&self) -> Cred {
        self.cred
    }

    /// Acts for another process: sockets made from now on record `cred`.
    pub fn set_cred(&mut self, cred: Cred) {
        self.cred = cred;
    }

    /// The stack the sockets live in.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The descriptor limit.
    pub fn fd_limit(&self) -> usize {
        self.table.limit()
    }

    /// The open descriptors, in increasing order.
    pub fn open_fds(&self) -> Vec<Fd> {
        self.table.open_fds()
    }

    /// Another handle to the socket behind `fd` (for use with the core API or other faces).
    pub fn socket_handle(&self, fd: Fd) -> Result<Socket> {
        Ok(self.table.get(fd)?.file.sock()?.clone())
    }

    /// Puts a file that is not a socket in the table (a host sharing the table with its own
    /// files). Socket calls on it fail with `ENOTSOCK`; `close`, `dup`, `fcntl`, `FIONBIO`
    /// and `poll` (always readable and writable) work.
    pub fn install_other(&self, file: Arc<dyn Any + Send + Sync>) -> Result<Fd> {
        let slot = self.table.reserve(0)?;
        let f = File {
            kind: Kind::Other(file),
            status: Default::default(),
        };
        Ok(slot.install(Arc::new(f), false))
    }

    /// The host's object behind `fd` (`None` for a socket).
    pub fn other_file(&self, fd: Fd) -> Result<Option<Arc<dyn Any + Send + Sync>>> {
        Ok(match &self.file(fd)?.kind {
            Kind::Socket(_) => None,
            Kind::Other(o) => Some(o.clone()),
        })
    }

    /// What `exec` does to the table: closes every close-on-exec descriptor.
    pub fn exec(&self) {
        drop(self.table.remove_cloexec());
    }

    /// Closes every descriptor (what process exit does).
    pub fn close_all(&self) {
        drop(self.table.remove_all());
    }

    fn file(&self, fd: Fd) -> Result<Arc<File>> {
        Ok(self.table.get(fd)?.file)
    }

    fn with_sock<T>(&self, fd: Fd, f: impl FnOnce(&Socket) -> Result<T>) -> Result<T> {
        let file = self.file(fd)?;
        f(file.sock()?)
    }

    // ----- creation -----

    /// `socket(domain, type, protocol)`; `type` may carry `SOCK_NONBLOCK | SOCK_CLOEXEC`.
    /// Other type flags `EINVAL`; unknown domain `EAFNOSUPPORT`; type out of range
    /// `EINVAL`; a type the family lacks `ESOCKTNOSUPPORT`; bad protocol `EPROTONOSUPPORT`;
    /// table full `EMFILE`.
    pub fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Result<Fd> {
        let (base, nonblock, cloexec) = split_type(ty)?;
        let (domain, ty) = check_domain_type(domain, base)?;
        let sock = self.stack.socket(domain, ty, protocol)?;
        sock.set_cred(self.cred)?;
        if nonblock {
            sock.set_nonblocking(true)?;
        }
        let slot = self.table.reserve(0)?;
        Ok(slot.install(Arc::new(File::socket(sock)), cloexec))
    }

    /// `socketpair(domain, type, protocol)`: two connected, unnamed sockets. The two
    /// descriptors are reserved first, as Linux does (`EMFILE` before any other check).
    pub fn socketpair(&self, domain: i32, ty: i32, protocol: i32) -> Result<[Fd; 2]> {
        let (base, nonblock, cloexec) = split_type(ty)?;
        let r1 = self.table.reserve(0)?;
        let r2 = self.table.reserve(0)?;
        let (domain, ty) = check_domain_type(domain, base)?;
        let (a, b) = self
            .stack
            .socketpair_as(domain, ty, protocol, Some(self.cred))?;
        if nonblock {
            a.set_nonblocking(true)?;
            b.set_nonblocking(true)?;
        }
        Ok([
            r1.install(Arc::new(File::socket(a)), cloexec),
            r2.install(Arc::new(File::socket(b)), cloexec),
        ])
    }

    /// `dup(fd)`: a new descriptor (the lowest free) for the same open file; not
    /// close-on-exec.
    pub fn dup(&self, fd: Fd) -> Result<Fd> {
        self.dup_from(fd, 0, false)
    }

    fn dup_from(&self, fd: Fd, min: usize, cloexec: bool) -> Result<Fd> {
        let file = self.file(fd)?;
        let slot = self.table.reserve(min)?;
        Ok(slot.install(file, cloexec))
    }

    /// `close(fd)`. The socket closes when no other descriptor or handle refers to it.
    pub fn close(&self, fd: Fd) -> Result<()> {
        let entry = self.table.remove(fd)?;
        drop(entry);
        Ok(())
    }

    // ----- names and connections -----

    /// `bind(fd, addr)`. Local sockets: an address of the family alone (`addrlen ==
    /// sizeof(sa_family_t)`) is Linux's autobind, which the family serves
    /// (`Socket::autobind`): the local family picks a free abstract name of five hex digits (all taken: `ENOSPC`);
    /// a no-op on a socket that has a name.
    pub fn bind(&self, fd: Fd, addr: &[u8]) -> Result<()> {
        self.with_sock(fd, |s| match addr::decode(s.domain(), addr, Use::Bind)? {
            Target::Addr(a) => s.bind(&a),
            Target::Autobind => s.autobind(),
            Target::Unspec => Err(Errno::EAFNOSUPPORT),
        })
    }

    /// `listen(fd, backlog)`. A backlog past `SOMAXCONN` (or negative) is `SOMAXCONN`.
    pub fn listen(&self, fd: Fd, backlog: i32) -> Result<()> {
        let backlog = if backlog as u32 > SOMAXCONN as u32 {
            SOMAXCONN
        } else {
            backlog
        };
        self.with_sock(fd, |s| s.listen(backlog as usize))
    }

    /// `connect(fd, addr)`: blocks while the listener's backlog is full (up to
    /// `SO_SNDTIMEO`), unless the descriptor is nonblocking (`EAGAIN`). Datagram sockets:
    /// sets the default peer (dissolving it with `AF_UNSPEC` is not supported:
    /// `EOPNOTSUPP`).
    pub fn connect(&self, fd: Fd, addr: &[u8]) -> Result<()> {
        self.with_sock(fd, |s| {
            let what = if s.ty() == SockType::DGRAM {
                Use::DgramConnect
            } else {
                Use::Connect
            };
            match addr::decode(s.domain(), addr, what)? {
                Target::Addr(a) => s.connect(&a),
                Target::Unspec => Err(Errno::EOPNOTSUPP),
                Target::Autobind => Err(Errno::EINVAL),
            }
        })
    }

    /// `accept(fd, addr, addrlen)`: `accept4` with no flags.
    pub fn accept(&self, fd: Fd, addr: Option<&mut [u8]>, addrlen: Option<&mut u32>) -> Result<Fd> {
        self.accept4(fd, addr, addrlen, 0)
    }

    /// `accept4(fd, addr, addrlen, flags)`, in the order of SPEC section 6 (see the crate
    /// documentation).
    pub fn accept4(
        &self,
        fd: Fd,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
        flags: i32,
    ) -> Result<Fd> {
        // 1. The descriptor.
        let file = self.file(fd)?;
        // 2. The flags, before anything happens.
        if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        // 3. Reserve the new descriptor: a full table dequeues nothing. Dropping the
        //    reservation (any failure below) frees it.
        let slot = self.table.reserve(0)?;
        // 4. A socket?
        let listener = file.sock()?;
        // 5, 6. The protocol accept: the family makes the new socket with the listener's
        //    type and operations; it blocks (or not) as the listener does. From here on, a
        //    failure drops `sock`, which closes it.
        let (sock, _) = listener.accept()?;
        // 7. The peer's name, if wanted.
        if let Some(buf) = addr {
            let name = sock
                .peer_addr()
                .ok()
                .and_then(|p| encode_name(sock.domain(), &p))
                .ok_or(Errno::ECONNABORTED)?;
            copy_out(&name, Some(buf), addrlen)?;
        }
        // 8. Install, with the modes `flags` asks for and nothing inherited.
        sock.set_nonblocking(flags & SOCK_NONBLOCK != 0)?;
        Ok(slot.install(Arc::new(File::socket(sock)), flags & SOCK_CLOEXEC != 0))
    }

    /// `getsockname(fd, addr, addrlen)`.
    pub fn getsockname(
        &self,
        fd: Fd,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
    ) -> Result<()> {
        self.with_sock(fd, |s| {
            let name = encode_name(s.domain(), &s.local_addr()?).ok_or(Errno::EOPNOTSUPP)?;
            copy_out(&name, addr, addrlen)
        })
    }

    /// `getpeername(fd, addr, addrlen)`; not connected: `ENOTCONN`.
    pub fn getpeername(
        &self,
        fd: Fd,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
    ) -> Result<()> {
        self.with_sock(fd, |s| {
            let name = encode_name(s.domain(), &s.peer_addr()?).ok_or(Errno::EOPNOTSUPP)?;
            copy_out(&name, addr, addrlen)
        })
    }

    /// `shutdown(fd, how)`: `how` other than `SHUT_RD`, `SHUT_WR`, `SHUT_RDWR` is `EINVAL`;
    /// not connected `ENOTCONN`.
    pub fn shutdown(&self, fd: Fd, how: i32) -> Result<()> {
        self.with_sock(fd, |s| s.shutdown(Shutdown::from_raw(how)?))
    }

    // ----- data -----

    /// `send(fd, buf, flags)`.
    pub fn send(&self, fd: Fd, buf: &[u8], flags: i32) -> Result<usize> {
        self.sendto(fd, buf, flags, None)
    }

    /// `sendto(fd, buf, flags, addr)`. An empty `addr` is no address, as a zero
    /// `addrlen` is on Linux.
    pub fn sendto(&self, fd: Fd, buf: &[u8], flags: i32, addr: Option<&[u8]>) -> Result<usize> {
        let file = self.file(fd)?;
        let s = file.sock()?;
        if let Some(a) = addr {
            addr::check_len(a)?;
        }
        let iov = [IoSlice::new(buf)];
        self.send_on(s, &mut Gather::new(&iov), addr, flags)
    }

    /// `sendmsg(fd, msg, flags)`: the gather list goes as one record (seqpacket, dgram) or
    /// in order (stream). More than `UIO_MAXIOV` iovecs: `EMSGSIZE`.
    pub fn sendmsg(&self, fd: Fd, msg: &MsgHdr<'_>, flags: i32) -> Result<usize> {
        let file = self.file(fd)?;
        let s = file.sock()?;
        let name = msg.name.map(|n| &n[..n.len().min(SOCKADDR_STORAGE_LEN)]);
        if msg.iov.len() > UIO_MAXIOV {
            return Err(Errno::EMSGSIZE);
        }
        self.send_on(s, &mut Gather::new(msg.iov), name, flags)
    }

    fn send_on(
        &self,
        s: &Socket,
        src: &mut Gather<'_, IoSlice<'_>>,
        name: Option<&[u8]>,
        flags: i32,
    ) -> Result<usize> {
        let ty = s.ty();
        if flags & MSG_OOB != 0 {
            // ksock has no urgent data.
            return Err(Errno::EOPNOTSUPP);
        }
        let name = name.filter(|n| !n.is_empty());
        let to = match (name, ty) {
            (None, _) => None,
            // A stream refuses any address (EISCONN or EOPNOTSUPP), whatever it holds.
            (Some(_), SockType::STREAM) => Some(SockAddr::Unnamed),
            // Linux ignores the address of a seqpacket send.
            (Some(_), SockType::SEQPACKET) => None,
            (Some(raw), _) => match addr::decode(s.domain(), raw, Use::SendTo)? {
                Target::Addr(a) => Some(a),
                _ => return Err(Errno::EINVAL),
            },
        };
        let mut m = MsgFlags::empty();
        if flags & MSG_DONTWAIT != 0 {
            m |= MsgFlags::DONTWAIT;
        }
        if flags & MSG_NOSIGNAL != 0 {
            m |= MsgFlags::NOSIGNAL;
        }
        s.sendmsg(src, to.as_ref(), m)
    }

    /// `recv(fd, buf, flags)`.
    pub fn recv(&self, fd: Fd, buf: &mut [u8], flags: i32) -> Result<usize> {
        self.recvfrom(fd, buf, flags, None, None)
    }

    /// `recvfrom(fd, buf, flags, addr, addrlen)`. With `MSG_TRUNC`, a record's full length
    /// is returned even if it did not fit. The address is written after the data was taken
    /// (so a bad `addrlen` loses the data, as on Linux).
    pub fn recvfrom(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: i32,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
    ) -> Result<usize> {
        let file = self.file(fd)?;
        let s = file.sock()?;
        let mut iov = [IoSliceMut::new(buf)];
        let (n, info) = Self::recv_on(s, &mut Scatter::new(&mut iov), flags)?;
        if let Some(a) = addr {
            copy_out(&encode_from(&info.from), Some(a), addrlen)?;
        }
        Ok(n)
    }

    /// `recvmsg(fd, msg, flags)`: scatters one record (or the available bytes of a stream)
    /// over the iovecs; `msg.flags` comes back with `MSG_TRUNC` if a record was cut.
    pub fn recvmsg(&self, fd: Fd, msg: &mut MsgHdrMut<'_, '_>, flags: i32) -> Result<usize> {
        let file = self.file(fd)?;
        let s = file.sock()?;
        if msg.name.is_some() && (msg.namelen as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        if msg.iov.len() > UIO_MAXIOV {
            return Err(Errno::EMSGSIZE);
        }
        let (n, info) = Self::recv_on(s, &mut Scatter::new(msg.iov), flags)?;
        if let Some(name) = msg.name.as_deref_mut() {
            copy_out(&encode_from(&info.from), Some(name), Some(&mut msg.namelen))?;
        }
        msg.flags = flags & MSG_CMSG_CLOEXEC;
        if info.flags.contains(MsgFlags::TRUNC) {
            msg.flags |= MSG_TRUNC;
        }
        Ok(n)
    }

    fn recv_on(
        s: &Socket,
        sink: &mut Scatter<'_, IoSliceMut<'_>>,
        flags: i32,
    ) -> Result<(usize, RecvInfo)> {
        let ty = s.ty();
        if flags & MSG_OOB != 0 {
            // ksock has no urgent data: what Linux says when none is queued.
            return Err(match ty {
                SockType::STREAM => Errno::EINVAL,
                SockType::SEQPACKET if s.peer_addr().is_err() => Errno::ENOTCONN,
                _ => Errno::EOPNOTSUPP,
            });
        }
        let mut m = MsgFlags::empty();
        for (bit, f) in [
            (MSG_PEEK, MsgFlags::PEEK),
            (MSG_TRUNC, MsgFlags::TRUNC),
            (MSG_DONTWAIT, MsgFlags::DONTWAIT),
            (MSG_WAITALL, MsgFlags::WAITALL),
        ] {
            if flags & bit != 0 {
                m |= f;
            }
        }
        let info = s.recvmsg(sink, m)?;
        let n = if flags & MSG_TRUNC != 0 && ty.is_record() {
            info.full_len
        } else {
            info.len
        };
        Ok((n, info))
    }

    // ----- options and modes -----

    /// `getsockopt(fd, level, name, optval, optlen)`: `SOL_SOCKET` options `SO_TYPE`,
    /// `SO_ERROR` (read and cleared), `SO_SNDBUF`, `SO_RCVBUF`, `SO_RCVLOWAT`, `SO_SNDLOWAT`,
    /// `SO_RCVTIMEO`/`SO_SNDTIMEO` (old and new numbers, a 64-bit `timeval`),
    /// `SO_ACCEPTCONN`, `SO_DOMAIN`, `SO_PROTOCOL`. The value is truncated to `optlen`, which
    /// comes back as the length written. Unknown: `ENOPROTOOPT`; other levels on a local
    /// socket: `EOPNOTSUPP`; no `optlen`: `EFAULT`; negative `optlen`: `EINVAL`.
    pub fn getsockopt(
        &self,
        fd: Fd,
        level: i32,
        name: i32,
        optval: Option<&mut [u8]>,
        optlen: Option<&mut u32>,
    ) -> Result<()> {
        self.with_sock(fd, |s| {
            if level != SOL_SOCKET {
                // Linux asks the protocol first (AF_UNIX has no protocol options at all:
                // `EOPNOTSUPP` before the arguments are looked at).
                s.option_level(level)?;
            }
            let Some(optlen) = optlen else {
                return Err(Errno::EFAULT);
            };
            let len = *optlen as i32;
            if len < 0 {
                return Err(Errno::EINVAL);
            }
            let value: Vec<u8> = if level == SOL_SOCKET && name == SO_SNDLOWAT {
                1i32.to_ne_bytes().to_vec()
            } else {
                match s.get_option(SockOpt::from_raw(level, name)?)? {
                    OptVal::Int(v) => v.to_ne_bytes().to_vec(),
                    OptVal::Time(t) => timeval(t).to_vec(),
                    // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
                    OptVal::Cred(c) => [c.pid, c.uid, c.gid]
                        .iter()
                        .flat_map(|v| v.to_ne_bytes())
                        .collect(),
                    // struct linger { int l_onoff; int l_linger; }
                    OptVal::Linger(l) => {
                        let (on, secs) = (l.is_some() as i32, l.unwrap_or(0) as i32);
                        [on, secs].iter().flat_map(|v| v.to_ne_bytes()).collect()
                    }
                }
            };
            let n = (len as usize).min(value.len());
            if n > 0 {
                match optval {
                    Some(b) if b.len() >= n => b[..n].copy_from_slice(&value[..n]),
                    _ => return Err(Errno::EFAULT),
                }
            }
            *optlen = n as u32;
            Ok(())
        })
    }

    /// `setsockopt(fd, level, name, optval)`: `optval`'s length is `optlen`. Shorter than an
    /// `int`: `EINVAL` (for any name, as Linux checks the length first); a timeout shorter
    /// than a `timeval` `EINVAL`, microseconds out of range `EDOM`, a negative time means "do
    /// not wait", zero means "wait forever". Read-only and unknown options: `ENOPROTOOPT`.
    pub fn setsockopt(&self, fd: Fd, level: i32, name: i32, optval: &[u8]) -> Result<()> {
        self.with_sock(fd, |s| {
            if level != SOL_SOCKET {
                s.option_level(level)?;
            }
            if optval.len() < 4 {
                return Err(Errno::EINVAL);
            }
            let opt = SockOpt::from_raw(level, name)?;
            if opt.read_only() {
                return Err(Errno::ENOPROTOOPT);
            }
            let val = if opt.is_time() {
                OptVal::Time(parse_timeval(optval)?)
            } else if opt == SockOpt::Linger {
                // struct linger: shorter is EINVAL, as Linux's `sock_setsockopt`.
                if optval.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let int = |b: &[u8]| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                let (on, secs) = (int(&optval[..4]), int(&optval[4..8]));
                OptVal::Linger((on != 0).then_some(secs.max(0) as u32))
            } else {
                let mut v = [0u8; 4];
                v.copy_from_slice(&optval[..4]);
                OptVal::Int(i32::from_ne_bytes(v))
            };
            s.set_option(opt, val)
        })
    }

    /// `ioctl(fd, request, arg)`: `FIONBIO` (`*arg != 0` makes the descriptor nonblocking)
    /// and `FIONREAD` (`*arg` = bytes a receive would return: a stream's or seqpacket's
    /// queued bytes, a datagram's next record; a listener: `EINVAL`). Others: `ENOTTY`.
    pub fn ioctl(&self, fd: Fd, request: u64, arg: &mut i32) -> Result<()> {
        let file = self.file(fd)?;
        match request {
            FIONBIO => file.set_nonblocking(*arg != 0),
            FIONREAD => match &file.kind {
                Kind::Socket(s) => {
                    *arg = i32::try_from(s.nread()?).unwrap_or(i32::MAX);
                    Ok(())
                }
                Kind::Other(_) => Err(Errno::ENOTTY),
            },
            _ => Err(Errno::ENOTTY),
        }
    }

    /// `fcntl(fd, cmd, arg)`: `F_GETFD`/`F_SETFD` (`FD_CLOEXEC`), `F_GETFL`/`F_SETFL`
    /// (`O_NONBLOCK`; `O_APPEND` and `O_NOATIME` are kept and reported but mean nothing to a
    /// socket; `O_DIRECT` and `O_ASYNC` are `EINVAL`), `F_DUPFD`, `F_DUPFD_CLOEXEC`.
    /// Others: `EINVAL`.
    pub fn fcntl(&self, fd: Fd, cmd: i32, arg: i32) -> Result<i32> {
        let entry = self.table.get(fd)?;
        let file = &entry.file;
        match cmd {
            F_GETFD => Ok(if entry.cloexec { FD_CLOEXEC } else { 0 }),
            F_SETFD => self.table.set_cloexec(fd, arg & FD_CLOEXEC != 0).map(|_| 0),
            F_GETFL => {
                let mut fl = O_RDWR | (file.status.load(Ordering::Acquire) & !O_NONBLOCK);
                if file.is_nonblocking() {
                    fl |= O_NONBLOCK;
                }
                Ok(fl)
            }
            F_SETFL => {
                if arg & (O_DIRECT | O_ASYNC) != 0 {
                    return Err(Errno::EINVAL);
                }
                file.set_nonblocking(arg & O_NONBLOCK != 0)?;
                let keep = O_APPEND | O_NOATIME;
                let old = file.status.load(Ordering::Acquire);
                file.status
                    .store((old & !keep) | (arg & keep), Ordering::Release);
                Ok(0)
            }
            F_DUPFD | F_DUPFD_CLOEXEC => {
                let min = usize::try_from(arg).map_err(|_| Errno::EINVAL)?;
                if min >= self.table.limit() {
                    return Err(Errno::EINVAL);
                }
                self.dup_from(fd, min, cmd == F_DUPFD_CLOEXEC)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// `poll(fds, timeout_ms)`: waits until one descriptor has an event of interest (or
    /// `POLLERR`, `POLLHUP`, `POLLNVAL`), or `timeout_ms` passes (negative: forever; 0: look
    /// once). Returns how many entries have events. Sockets report Linux's bits (`POLLIN |
    /// POLLRDNORM`, `POLLOUT | POLLWRNORM | POLLWRBAND`, `POLLRDHUP`, ...); a closed or
    /// unknown descriptor `POLLNVAL`; a negative one is skipped. More entries than the
    /// descriptor limit: `EINVAL`.
    pub fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize> {
        poll::poll(&self.table, fds, timeout_ms)
    }
}
