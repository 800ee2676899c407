//! What the differential suite cannot ask Linux: SPEC section 6's step 7 (`ECONNABORTED`
//! with full unwinding), `exec`, non-socket files, path names.

use ksock::family::{Accepted, OpCtx, Progress};
use ksock::opt::Options;
use ksock::stack::StackRef;
use ksock::{
    Domain, Errno, Events, Family, MsgFlags, Protocol, Queues, RecvInfo, RecvSink, Result, SendBuf,
    Shutdown, SockAddr, SockRef, SockType, SocketCore, Stack,
};
use ksock_posix::consts::*;
use ksock_posix::{Posix, unix_abstract, unix_path};
use std::sync::Arc;

/// A family whose listeners always have a connection waiting, and whose connections cannot
/// name their peer.
struct Nameless;

const NAMELESS: Domain = Domain::from_raw(40);

struct NamelessSock {
    listening: bool,
}

impl Protocol for NamelessSock {
    fn bind(&mut self, _: &mut OpCtx<'_>, _: &SockAddr) -> Result<()> {
        Ok(())
    }
    fn listen(&mut self, _: &mut OpCtx<'_>, _: usize) -> Result<()> {
        self.listening = true;
        Ok(())
    }
    fn connect(&mut self, _: &mut OpCtx<'_>, _: &SockAddr) -> Result<Progress> {
        Err(Errno::ECONNREFUSED)
    }
    fn accept(&mut self, cx: &mut OpCtx<'_>) -> Result<Accepted> {
        let me = cx.me();
        let sock: SockRef = SocketCore::new(
            me.stack(),
            NAMELESS,
            me.ty(),
            0,
            NamelessSock { listening: false },
        );
        Ok(Accepted {
            sock,
            peer: SockAddr::Unnamed,
            peer_gone: false,
        })
    }
    fn send(
        &mut self,
        _: &mut OpCtx<'_>,
        src: SendBuf<'_>,
        _: Option<&SockAddr>,
        _: MsgFlags,
    ) -> Result<usize> {
        let n = src.remaining();
        match src {
            SendBuf::Copy(b) => b.advance(n),
            SendBuf::Share(c) => drop(c.split_to(n)),
        }
        Ok(n)
    }
    fn recv(&mut self, _: &mut OpCtx<'_>, _: &mut dyn RecvSink, _: MsgFlags) -> Result<RecvInfo> {
        Err(Errno::EAGAIN)
    }
    fn shutdown(&mut self, _: &mut OpCtx<'_>, _: Shutdown) -> Result<()> {
        Ok(())
    }
    fn close(&mut self, _: &mut OpCtx<'_>) {}
    fn readiness(&self, _: &Options) -> Events {
        if self.listening {
            Events::IN
        } else {
            Events::OUT
        }
    }
    fn local_addr(&self) -> SockAddr {
        SockAddr::Unnamed
    }
    fn peer_addr(&self) -> Option<SockAddr> {
        None
    }
    fn take_error(&mut self) -> Option<Errno> {
        None
    }
    fn has_error(&self) -> bool {
        false
    }
    fn queues(&self) -> Queues {
        Queues::default()
    }
    fn nread(&self) -> usize {
        0
    }
}

impl Family for Nameless {
    fn domain(&self) -> Domain {
        NAMELESS
    }
    fn name(&self) -> &'static str {
        "nameless"
    }
    fn types(&self) -> &'static [SockType] {
        &[SockType::STREAM]
    }
    fn create(&self, stack: &StackRef, ty: SockType, _: i32) -> Result<SockRef> {
        Ok(SocketCore::new(
            stack,
            NAMELESS,
            ty,
            0,
            NamelessSock { listening: false },
        ))
    }
    fn parse_addr(&self, _: &[u8]) -> Result<SockAddr> {
        Err(Errno::EINVAL)
    }
    fn listening(&self) -> Vec<SockAddr> {
        Vec::new()
    }
}

#[test]
fn accept4_econnaborted_unwinds_everything() {
    let stack = Stack::new();
    stack.register_family(Arc::new(Nameless)).unwrap();
    let px = Posix::new(stack.clone());
    let l = px.socket(40, SOCK_STREAM, 0).unwrap();
    let h = px.socket_handle(l).unwrap();
    h.bind(&SockAddr::Unnamed).unwrap();
    h.listen(4).unwrap();
    drop(h);
    let fds = px.open_fds();
    let ids = stack.ids();
    let mut a = [0u8; 16];
    let mut len = 16u32;
    // 7. The peer's name cannot be had: ECONNABORTED, the reserved descriptor is free
    // again and the new socket is closed.
    assert_eq!(
        px.accept4(l, Some(&mut a), Some(&mut len), SOCK_CLOEXEC),
        Err(Errno::ECONNABORTED)
    );
    assert_eq!(len, 16, "addrlen untouched");
    assert_eq!(px.open_fds(), fds);
    assert_eq!(stack.ids(), ids, "the new socket is closed");
    // Without an address nothing needs the name, and the connection is installed in the
    // lowest descriptor, the one the failed call had reserved.
    let s = px.accept4(l, None, None, SOCK_NONBLOCK).unwrap();
    assert_eq!(s, 1);
    assert_eq!(px.fcntl(s, F_GETFL, 0), Ok(O_RDWR | O_NONBLOCK));
    assert_eq!(px.fcntl(s, F_GETFD, 0), Ok(0));
    assert_eq!(stack.ids().len(), ids.len() + 1);
    px.close_all();
    assert_eq!(stack.socket_count(), 0);
}

#[test]
fn exec_closes_close_on_exec_descriptors() {
    let stack = Stack::new();
    let px = Posix::new(stack.clone());
    let a = px.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0).unwrap();
    let b = px.socket(AF_UNIX, SOCK_DGRAM, 0).unwrap();
    let [c, d] = px.socketpair(AF_UNIX, SOCK_SEQPACKET, 0).unwrap();
    px.fcntl(c, F_SETFD, FD_CLOEXEC).unwrap();
    let e = px.dup(c).unwrap();
    assert_eq!(px.open_fds(), vec![a, b, c, d, e]);
    px.exec();
    assert_eq!(px.open_fds(), vec![b, d, e]);
    assert_eq!(
        stack.socket_count(),
        3,
        "c's socket lives on through its dup"
    );
    assert_eq!(px.send(e, b"x", 0), Ok(1));
    assert_eq!(px.socket(AF_UNIX, SOCK_STREAM, 0), Ok(0), "lowest free");
    px.close_all();
    assert_eq!(stack.socket_count(), 0);
    assert!(px.open_fds().is_empty());
}

#[test]
fn other_files_share_the_table() {
    let px = Posix::with_fd_limit(Stack::new(), 4);
    let obj: Arc<dyn std::any::Any + Send + Sync> = Arc::new(String::from("a pipe"));
    let o = px.install_other(obj).unwrap();
    let got = px.other_file(o).unwrap().unwrap();
    assert_eq!(
        got.downcast_ref::<String>().map(String::as_str),
        Some("a pipe")
    );
    let s = px.socket(AF_UNIX, SOCK_STREAM, 0).unwrap();
    assert!(px.other_file(s).unwrap().is_none());
    assert_eq!(px.listen(o, 1), Err(Errno::ENOTSOCK));
    assert_eq!(px.socket_handle(o).err(), Some(Errno::ENOTSOCK));
    let mut fds = [ksock_posix::PollFd::new(o, POLLIN | POLLOUT)];
    assert_eq!(px.poll(&mut fds, 0), Ok(1));
    assert_eq!(fds[0].revents, POLLIN | POLLOUT);
    assert_eq!(px.close(o), Ok(()));
    assert_eq!(px.other_file(o).err(), Some(Errno::EBADF));
}

#[test]
fn path_names_share_the_namespace() {
    let stack = Stack::new();
    let px = Posix::new(stack.clone());
    let l = px.socket(AF_UNIX, SOCK_STREAM, 0).unwrap();
    px.bind(l, &unix_path(b"/run/ksock.sock")).unwrap();
    px.listen(l, 2).unwrap();
    // The ksock name is the path; other faces see it as such.
    let names = stack.family(Domain::LOCAL).unwrap().listening();
    assert_eq!(names, vec![SockAddr::local("/run/ksock.sock").unwrap()]);
    // Reported as a path, NUL-terminated as Linux reports one.
    let mut a = [0u8; 64];
    let mut len = 64u32;
    px.getsockname(l, Some(&mut a), Some(&mut len)).unwrap();
    assert_eq!(&a[..len as usize], &unix_path(b"/run/ksock.sock")[..]);
    assert_eq!(len as usize, 2 + 15 + 1);
    // The same name spelt as an abstract name reaches it.
    let c = px.socket(AF_UNIX, SOCK_STREAM, 0).unwrap();
    px.connect(c, &unix_abstract(b"/run/ksock.sock")).unwrap();
    // A path that was never bound: refused (no file system, so not ENOENT).
    let d = px.socket(AF_UNIX, SOCK_STREAM, 0).unwrap();
    assert_eq!(
        px.connect(d, &unix_path(b"/run/none")),
        Err(Errno::ECONNREFUSED)
    );
    // Closing frees the name at once: nothing to unlink.
    px.close(l).unwrap();
    let l2 = px.socket(AF_UNIX, SOCK_STREAM, 0).unwrap();
    assert_eq!(px.bind(l2, &unix_path(b"/run/ksock.sock")), Ok(()));
    // A name bound elsewhere without a leading '/' comes back as an abstract name.
    let k = stack.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
    k.bind(&SockAddr::local("dwm").unwrap()).unwrap();
    let e = px.socket(AF_UNIX, SOCK_DGRAM, 0).unwrap();
    px.connect(e, &unix_abstract(b"dwm")).unwrap();
    let mut len = 64u32;
    px.getpeername(e, Some(&mut a), Some(&mut len)).unwrap();
    assert_eq!(&a[..len as usize], &unix_abstract(b"dwm")[..]);
    drop(k);
    px.close_all();
    assert_eq!(stack.socket_count(), 0);
}

#[test]
fn a_blocked_call_keeps_its_socket_after_close() {
    // As on Linux: close() on a descriptor another thread is blocked on does not end that
    // call; the socket lives until the call returns.
    let stack = Stack::new();
    let px = Posix::new(stack.clone());
    let [a, b] = px.socketpair(AF_UNIX, SOCK_STREAM, 0).unwrap();
    std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut buf = [0u8; 8];
            px.recv(a, &mut buf, 0).map(|n| buf[..n].to_vec())
        });
        // Wait until the reader is parked (its socket has a waiter), then close its fd.
        let s = px.socket_handle(a).unwrap();
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while s.core().waiter_count() == 0 {
            assert!(
                std::time::Instant::now() < give_up,
                "the reader never waited"
            );
            std::thread::yield_now();
        }
        drop(s);
        px.close(a).unwrap();
        assert_eq!(px.send(b, b"late", 0), Ok(4));
        assert_eq!(h.join().unwrap(), Ok(b"late".to_vec()));
    });
    px.close(b).unwrap();
    assert_eq!(stack.socket_count(), 0);
}
