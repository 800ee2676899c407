//! The reference: Linux AF_UNIX sockets through system calls.

use crate::work::Fd;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, connect, listen, socket,
    socketpair,
};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The Linux type for a ksock type.
pub fn sock_type(ty: ksock::SockType) -> SockType {
    match ty {
        ksock::SockType::SEQPACKET => SockType::SeqPacket,
        ksock::SockType::DGRAM => SockType::Datagram,
        _ => SockType::Stream,
    }
}

/// A connected AF_UNIX pair.
pub fn pair(ty: ksock::SockType) -> Result<(Fd, Fd), String> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        sock_type(ty),
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("socketpair(AF_UNIX): {e}"))?;
    Ok((Fd(a), Fd(b)))
}

/// Takes ownership of a descriptor `accept4` just returned.
fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was returned by a successful accept4 a moment ago; nothing else holds
    // it, so this is its only owner and it is closed exactly once, on drop.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// An AF_UNIX listener on an abstract name (no file system entry, nothing to clean up).
pub struct Listener {
    fd: OwnedFd,
    addr: UnixAddr,
    ty: SockType,
}

impl Listener {
    /// Listens on `\0ksock-bench-<pid>-<tag>` with the largest backlog.
    pub fn new(ty: ksock::SockType, tag: &str) -> Result<Listener, String> {
        let ty = sock_type(ty);
        let name = format!("ksock-bench-{}-{tag}", std::process::id());
        let addr = UnixAddr::new_abstract(name.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
        let fd = socket(AddressFamily::Unix, ty, SockFlag::SOCK_CLOEXEC, None)
            .map_err(|e| format!("socket(AF_UNIX): {e}"))?;
        bind(fd.as_raw_fd(), &addr).map_err(|e| format!("bind(@{name}): {e}"))?;
        listen(&fd, Backlog::MAXCONN).map_err(|e| format!("listen(@{name}): {e}"))?;
        Ok(Listener { fd, addr, ty })
    }

    /// One connection set up and torn down: socket, connect, accept, close both.
    pub fn connect_accept(&self) -> Result<(), String> {
        let c = socket(AddressFamily::Unix, self.ty, SockFlag::SOCK_CLOEXEC, None)
            .map_err(|e| format!("socket(AF_UNIX): {e}"))?;
        connect(c.as_raw_fd(), &self.addr).map_err(|e| format!("connect: {e}"))?;
        let s = accept4(self.fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC)
            .map_err(|e| format!("accept4: {e}"))?;
        drop(own(s));
        drop(c);
        Ok(())
    }
}
