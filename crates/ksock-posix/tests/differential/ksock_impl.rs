//! The subject: the ksock POSIX face over a fresh stack with the inet family (its own
//! in-process loopback) installed.

use super::api::{Api, PollFd, R};
use ksock::{Domain, Stack};
use ksock_inet::InetFamily;
use ksock_posix::{MsgHdr, MsgHdrMut, Posix};
use std::io::{IoSlice, IoSliceMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long closing connections may take to finish on the loopback before the leak check
/// fails (their handshakes end at once; a timer tick may be needed).
const SETTLE: Duration = Duration::from_secs(2);

pub struct Ksock {
    pub px: Posix,
    pub inet: Arc<InetFamily>,
    active: AtomicUsize,
    epoch: AtomicU64,
}

impl Ksock {
    pub fn new() -> Ksock {
        Ksock::with_fd_limit(ksock_posix::DEFAULT_FD_LIMIT)
    }

    pub fn with_fd_limit(limit: usize) -> Ksock {
        let stack = Stack::new();
        let inet = ksock_inet::install(&stack).expect("install the inet family");
        Ksock {
            px: Posix::with_fd_limit(stack, limit),
            inet,
            active: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    fn tables(&self) -> (Vec<i32>, Vec<u64>) {
        (self.px.open_fds(), self.px.stack().ids())
    }

    /// Runs one call; if it fails and no other call ran meanwhile, checks that the
    /// descriptor table and the socket table are as they were.
    fn call<T>(&self, what: &str, f: impl FnOnce() -> R<T>) -> R<T> {
        let was = self.active.fetch_add(1, Ordering::SeqCst);
        let e0 = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let before = self.tables();
        let r = f();
        let after = self.tables();
        let now = self.active.fetch_sub(1, Ordering::SeqCst);
        let solo = was == 0 && now == 1 && self.epoch.load(Ordering::SeqCst) == e0;
        if let (true, Err(e)) = (solo, &r) {
            assert_eq!(
                before, after,
                "{what} failed with {e:?} but changed the descriptor or socket table"
            );
        }
        r
    }
}

impl Api for Ksock {
    fn is_linux(&self) -> bool {
        false
    }
    fn socket(&self, domain: i32, ty: i32, protocol: i32) -> R<i32> {
        self.call("socket", || self.px.socket(domain, ty, protocol))
    }
    fn socketpair(&self, domain: i32, ty: i32, protocol: i32) -> R<[i32; 2]> {
        self.call("socketpair", || self.px.socketpair(domain, ty, protocol))
    }
    fn bind(&self, fd: i32, addr: &[u8]) -> R<()> {
        self.call("bind", || self.px.bind(fd, addr))
    }
    fn listen(&self, fd: i32, backlog: i32) -> R<()> {
        self.call("listen", || self.px.listen(fd, backlog))
    }
    fn connect(&self, fd: i32, addr: &[u8]) -> R<()> {
        self.call("connect", || self.px.connect(fd, addr))
    }
    fn accept4(
        &self,
        fd: i32,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
        flags: i32,
    ) -> R<i32> {
        self.call("accept4", || self.px.accept4(fd, addr, addrlen, flags))
    }
    fn sendto(&self, fd: i32, buf: &[u8], flags: i32, addr: Option<&[u8]>) -> R<usize> {
        self.call("sendto", || self.px.sendto(fd, buf, flags, addr))
    }
    fn recvfrom(
        &self,
        fd: i32,
        buf: &mut [u8],
        flags: i32,
        addr: Option<&mut [u8]>,
        addrlen: Option<&mut u32>,
    ) -> R<usize> {
        self.call("recvfrom", || {
            self.px.recvfrom(fd, buf, flags, addr, addrlen)
        })
    }
    fn sendmsg(&self, fd: i32, name: Option<&[u8]>, iov: &[IoSlice<'_>], flags: i32) -> R<usize> {
        self.call("sendmsg", || {
            self.px.sendmsg(fd, &MsgHdr { name, iov }, flags)
        })
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
        let mut m = MsgHdrMut {
            name,
            namelen: *namelen,
            iov,
            flags: 0,
        };
        let r = self.call("recvmsg", || self.px.recvmsg(fd, &mut m, flags));
        if r.is_ok() {
            *namelen = m.namelen;
            *msg_flags = m.flags;
        }
        r
    }
    fn shutdown(&self, fd: i32, how: i32) -> R<()> {
        self.call("shutdown", || self.px.shutdown(fd, how))
    }
    fn close(&self, fd: i32) -> R<()> {
        self.call("close", || self.px.close(fd))
    }
    fn getsockname(&self, fd: i32, addr: Option<&mut [u8]>, addrlen: Option<&mut u32>) -> R<()> {
        self.call("getsockname", || self.px.getsockname(fd, addr, addrlen))
    }
    fn getpeername(&self, fd: i32, addr: Option<&mut [u8]>, addrlen: Option<&mut u32>) -> R<()> {
        self.call("getpeername", || self.px.getpeername(fd, addr, addrlen))
    }
    fn getsockopt(
        &self,
        fd: i32,
        level: i32,
        name: i32,
        optval: Option<&mut [u8]>,
        optlen: Option<&mut u32>,
    ) -> R<()> {
        self.call("getsockopt", || {
            self.px.getsockopt(fd, level, name, optval, optlen)
        })
    }
    fn setsockopt(&self, fd: i32, level: i32, name: i32, optval: &[u8]) -> R<()> {
        self.call("setsockopt", || self.px.setsockopt(fd, level, name, optval))
    }
    fn ioctl(&self, fd: i32, request: u64, arg: &mut i32) -> R<()> {
        self.call("ioctl", || self.px.ioctl(fd, request, arg))
    }
    fn fcntl(&self, fd: i32, cmd: i32, arg: i32) -> R<i32> {
        self.call("fcntl", || self.px.fcntl(fd, cmd, arg))
    }
    fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> R<usize> {
        self.call("poll", || self.px.poll(fds, timeout_ms))
    }
    fn dup(&self, fd: i32) -> R<i32> {
        self.call("dup", || self.px.dup(fd))
    }
    fn other_fd(&self) -> R<i32> {
        self.call("install_other", || self.px.install_other(Arc::new(())))
    }
    fn finish(&self) {
        self.px.close_all();
        let st = self.px.stack();
        assert_eq!(
            st.socket_count(),
            0,
            "ksock sockets left after every descriptor closed: {:?}",
            st.sockets()
        );
        let names = st
            .family(Domain::LOCAL)
            .map(|f| f.bound())
            .unwrap_or_default();
        assert!(names.is_empty(), "ksock names left bound: {names:?}");
        self.inet_settles();
    }
}

impl Ksock {
    /// The inet family's leak check: once every descriptor is closed, its smoltcp sockets
    /// (connections finishing their close included) and its port bindings all go, driving
    /// the interface meanwhile.
    fn inet_settles(&self) {
        let until = Instant::now() + SETTLE;
        loop {
            self.inet.poll();
            if self.inet.socket_count() == 0 && self.inet.port_count() == 0 {
                return;
            }
            assert!(
                Instant::now() < until,
                "inet leak: {} smoltcp sockets, {} ports after every descriptor closed: {:#?}",
                self.inet.socket_count(),
                self.inet.port_count(),
                self.inet.sockets()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
