//! The reference: Linux AF_UNIX through `libc`, with abstract names only (no files).
//!
//! Tests run on several threads of one process, so a scenario must never touch a
//! descriptor number it does not own: numbers it closed are replaced by a number that is
//! never open before the call, which gives `EBADF` as a reused number would not.

use super::api::{Api, PollFd, R};
use ksock::Errno;
use std::collections::BTreeSet;
use std::io::{IoSlice, IoSliceMut};
use std::sync::Mutex;

/// Never an open descriptor (far past any `RLIMIT_NOFILE` the tests run with).
const NEVER_OPEN: i32 = 0x3fff_0000;

#[derive(Default)]
pub struct Linux {
    open: Mutex<BTreeSet<i32>>,
}

fn errno() -> Errno {
    Errno::from_raw(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

fn cvt(r: libc::c_int) -> R<i32> {
    if r < 0 { Err(errno()) } else { Ok(r) }
}

fn cvt_len(r: libc::ssize_t) -> R<usize> {
    if r < 0 { Err(errno()) } else { Ok(r as usize) }
}

/// A pointer for an optional buffer; the claimed length must fit in it (a scenario that
/// wants `EFAULT` passes no buffer at all), or the kernel would write past it.
fn out_ptr(buf: Option<&mut [u8]>, len: Option<&u32>) -> *mut libc::sockaddr {
    match buf {
        Some(b) => {
            if let Some(&l) = len {
                assert!(
                    (l as i32) < 0 || l as usize <= b.len(),
                    "scenario bug: a length past its buffer"
                );
            }
            b.as_mut_ptr().cast()
        }
        None => std::ptr::null_mut(),
    }
}

fn len_ptr(len: Option<&mut u32>) -> *mut libc::socklen_t {
    len.map_or(std::ptr::null_mut(), |l| l as *mut u32)
}

impl Linux {
    fn fd(&self, fd: i32) -> i32 {
        let open = self.open.lock().unwrap();
        if fd >= 0 && !open.contains(&fd) {
            NEVER_OPEN
        } else {
            fd
        }
    }

    fn track(&self, r: R<i32>) -> R<i32> {
        if let Ok(fd) = r {
            self.open.lock().unwrap().insert(fd);
        }
        r
    }
}

// SAFETY (for every `unsafe` block below): each call passes pointers made from live Rust
// references (or null) with lengths no larger than the buffers they point into; `IoSlice`
// and `IoSliceMut` are ABI-compatible with `struct iovec`, and `PollFd` is laid out as
// `struct pollfd` (checked by a test). The descriptors are owned by this scenario (see
// `Linux::fd`).
impl Api for Linux {
    fn is_linux(&self) -> bool {
        true
    }

    fn socket(&self, domain: i32, ty: i32, protocol: i32) -> R<i32> {
        self.track(cvt(unsafe { libc::socket(domain, ty, protocol) }))
    }

    fn socketpair(&self, domain: i32, ty: i32, protocol: i32) -> R<[i32; 2]> {
        let mut sv = [-1; 2];
        cvt(unsafe { libc::socketpair(domain, ty, protocol, sv.as_mut_ptr()) })?;
        self.track(Ok(sv[0]))?;
        self.track(Ok(sv[1]))?;
        Ok(sv)
    }

    fn bind(&self, fd: i32, addr: &[u8]) -> R<()> {
        cvt(unsafe { libc::bind(self.fd(fd), addr.as_ptr().cast(), addr.len() as u32) }).map(drop)
    }

    fn listen(&self, fd: i32, backlog: i32) -> R<()> {
        cvt(unsafe { libc::listen(self.fd(fd), backlog) }).map(drop)
    }

    fn connect(&self, fd: i32, addr: &[u8]) -> R<()> {
        cvt(unsafe { libc::connect(self.fd(fd), addr.as_ptr().cast(), addr.len() as u32) })
            .map(drop)
    }

    fn accept4(
        &self,
        fd: i32,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
        flags: i32,
    ) -> R<i32> {
        let a = out_ptr(addr, addrlen.as_deref());
        let l = len_ptr(addrlen);
        self.track(cvt(unsafe { libc::accept4(self.fd(fd), a, l, flags) }))
    }

    fn sendto(&self, fd: i32, buf: &[u8], flags: i32, addr: Option<&[u8]>) -> R<usize> {
        let (a, l) = addr.map_or((std::ptr::null(), 0), |a| (a.as_ptr(), a.len()));
        cvt_len(unsafe {
            libc::sendto(
                self.fd(fd),
                buf.as_ptr().cast(),
                buf.len(),
                flags,
                a.cast(),
                l as u32,
            )
        })
    }

    fn recvfrom(
        &self,
        fd: i32,
        buf: &mut [u8],
        flags: i32,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
    ) -> R<usize> {
        let a = out_ptr(addr, addrlen.as_deref());
        let l = len_ptr(addrlen);
        cvt_len(unsafe {
            libc::recvfrom(self.fd(fd), buf.as_mut_ptr().cast(), buf.len(), flags, a, l)
        })
    }

    fn sendmsg(&self, fd: i32, name: Option<&[u8]>, iov: &[IoSlice<'_>], flags: i32) -> R<usize> {
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        if let Some(n) = name {
            m.msg_name = n.as_ptr() as *mut _;
            m.msg_namelen = n.len() as u32;
        }
        m.msg_iov = iov.as_ptr() as *mut libc::iovec;
        m.msg_iovlen = iov.len();
        cvt_len(unsafe { libc::sendmsg(self.fd(fd), &m, flags) })
    }

    fn recvmsg(
        &self,
        fd: i32,
        name: Option<&mut [u8]>,
        namelen: &mut u32,
        iov: &mut [IoSliceMut<'_>],
        flags: i32,
        msg_flags: &mut i32,
    ) -> R<usize> {
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        m.msg_name = out_ptr(name, Some(namelen)).cast();
        m.msg_namelen = *namelen;
        m.msg_iov = iov.as_mut_ptr().cast();
        m.msg_iovlen = iov.len();
        let r = cvt_len(unsafe { libc::recvmsg(self.fd(fd), &mut m, flags) });
        if r.is_ok() {
            *namelen = m.msg_namelen;
            *msg_flags = m.msg_flags;
        }
        r
    }

    fn shutdown(&self, fd: i32, how: i32) -> R<()> {
        cvt(unsafe { libc::shutdown(self.fd(fd), how) }).map(drop)
    }

    fn close(&self, fd: i32) -> R<()> {
        let real = self.fd(fd);
        let r = cvt(unsafe { libc::close(real) }).map(drop);
        if real == fd {
            self.open.lock().unwrap().remove(&fd);
        }
        r
    }

    fn getsockname(&self, fd: i32, addr: Option<&mut [u8]>, addrlen: Option<&mut u32>) -> R<()> {
        let a = out_ptr(addr, addrlen.as_deref());
        let l = len_ptr(addrlen);
        cvt(unsafe { libc::getsockname(self.fd(fd), a, l) }).map(drop)
    }

    fn getpeername(&self, fd: i32, addr: Option<&mut [u8]>, addrlen: Option<&mut u32>) -> R<()> {
        let a = out_ptr(addr, addrlen.as_deref());
        let l = len_ptr(addrlen);
        cvt(unsafe { libc::getpeername(self.fd(fd), a, l) }).map(drop)
    }

    fn getsockopt(
        &self,
        fd: i32,
        level: i32,
        name: i32,
        optval: Option<&mut [u8]>,
        optlen: Option<&mut u32>,
    ) -> R<()> {
        let v = out_ptr(optval, optlen.as_deref());
        let l = len_ptr(optlen);
        cvt(unsafe { libc::getsockopt(self.fd(fd), level, name, v.cast(), l) }).map(drop)
    }

    fn setsockopt(&self, fd: i32, level: i32, name: i32, optval: &[u8]) -> R<()> {
        cvt(unsafe {
            libc::setsockopt(
                self.fd(fd),
                level,
                name,
                optval.as_ptr().cast(),
                optval.len() as u32,
            )
        })
        .map(drop)
    }

    fn ioctl(&self, fd: i32, request: u64, arg: &mut i32) -> R<()> {
        cvt(unsafe { libc::ioctl(self.fd(fd), request as _, arg as *mut i32) }).map(drop)
    }

    fn fcntl(&self, fd: i32, cmd: i32, arg: i32) -> R<i32> {
        let r = cvt(unsafe { libc::fcntl(self.fd(fd), cmd, arg) });
        if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
            return self.track(r);
        }
        r
    }

    fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> R<usize> {
        let mut real: Vec<PollFd> = fds
            .iter()
            .map(|p| PollFd::new(self.fd(p.fd), p.events))
            .collect();
        let r = cvt(unsafe {
            libc::poll(
                real.as_mut_ptr().cast(),
                real.len() as libc::nfds_t,
                timeout_ms,
            )
        })?;
        for (p, q) in fds.iter_mut().zip(&real) {
            p.revents = q.revents;
        }
        Ok(r as usize)
    }

    fn dup(&self, fd: i32) -> R<i32> {
        self.track(cvt(unsafe { libc::dup(self.fd(fd)) }))
    }

    fn other_fd(&self) -> R<i32> {
        self.track(cvt(unsafe {
            libc::open(c"/dev/null".as_ptr(), libc::O_RDWR)
        }))
    }

    fn finish(&self) {
        let left: Vec<i32> = std::mem::take(&mut *self.open.lock().unwrap())
            .into_iter()
            .collect();
        for fd in left {
            unsafe { libc::close(fd) };
        }
    }
}
