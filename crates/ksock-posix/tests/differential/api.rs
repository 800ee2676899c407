//! The calls a scenario may make, implemented twice: Linux AF_UNIX ([`crate::linux`]) and
//! the ksock POSIX face ([`crate::ksock_impl`]).

use ksock::Errno;
pub use ksock_posix::PollFd;
use std::io::{IoSlice, IoSliceMut};

pub type R<T> = Result<T, Errno>;

/// The socket calls, with the POSIX face's signatures (`None` is a null pointer).
pub trait Api: Sync {
    fn is_linux(&self) -> bool;
    fn socket(&self, domain: i32, ty: i32, protocol: i32) -> R<i32>;
    fn socketpair(&self, domain: i32, ty: i32, protocol: i32) -> R<[i32; 2]>;
    fn bind(&self, fd: i32, addr: &[u8]) -> R<()>;
    fn listen(&self, fd: i32, backlog: i32) -> R<()>;
    fn connect(&self, fd: i32, addr: &[u8]) -> R<()>;
    fn accept4(
        &self,
        fd: i32,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
        flags: i32,
    ) -> R<i32>;
    fn sendto(&self, fd: i32, buf: &[u8], flags: i32, addr: Option<&[u8]>) -> R<usize>;
    fn recvfrom(
        &self,
        fd: i32,
        buf: &mut [u8],
        flags: i32,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
    ) -> R<usize>;
    fn sendmsg(&self, fd: i32, name: Option<&[u8]>, iov: &[IoSlice<'_>], flags: i32) -> R<usize>;
    /// Returns the count; `namelen` and `msg_flags` come back as the kernel sets them.
    fn recvmsg(
        &self,
        fd: i32,
        name: Option<&mut [u8]>,
        namelen: &mut u32,
        iov: &mut [IoSliceMut<'_>],
        flags: i32,
        msg_flags: &mut i32,
    ) -> R<usize>;
    fn shutdown(&self, fd: i32, how: i32) -> R<()>;
    fn close(&self, fd: i32) -> R<()>;
    fn getsockname(&self, fd: i32, addr: Option<&mut [u8]>, addrlen: Option<&mut u32>) -> R<()>;
    fn getpeername(&self, fd: i32, addr: Option<&mut [u8]>, addrlen: Option<&mut u32>) -> R<()>;
    fn getsockopt(
        &self,
        fd: i32,
        level: i32,
        name: i32,
        optval: Option<&mut [u8]>,
        optlen: Option<&mut u32>,
    ) -> R<()>;
    fn setsockopt(&self, fd: i32, level: i32, name: i32, optval: &[u8]) -> R<()>;
    fn ioctl(&self, fd: i32, request: u64, arg: &mut i32) -> R<()>;
    fn fcntl(&self, fd: i32, cmd: i32, arg: i32) -> R<i32>;
    fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> R<usize>;
    fn dup(&self, fd: i32) -> R<i32>;
    /// A descriptor that is not a socket.
    fn other_fd(&self) -> R<i32>;
    /// Closes what the scenario left open and checks nothing leaked.
    fn finish(&self);
}
