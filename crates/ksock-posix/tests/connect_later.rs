//! A connect that the family finishes later (a handshake), through the POSIX face: a
//! blocking `connect` waits for it; a nonblocking one is `EINPROGRESS`, then `POLLOUT` and
//! `SO_ERROR`, as on Linux TCP.

use ksock::testing::LaterFamily;
use ksock::{Errno, SockAddr, Stack};
use ksock_posix::consts::*;
use ksock_posix::{PollFd, Posix, encode_addr as encode};
use std::sync::Arc;
use std::thread;

fn setup() -> (Arc<Posix>, Arc<LaterFamily>) {
    let st = Stack::empty();
    let fam = LaterFamily::new();
    st.register_family(fam.clone()).unwrap();
    (Arc::new(Posix::new(st)), fam)
}

fn sin(port: u16) -> Vec<u8> {
    encode(&SockAddr::Inet(([10, 0, 0, 1], port).into())).unwrap()
}

fn so_error(px: &Posix, fd: i32) -> i32 {
    let mut v = [0u8; 4];
    let mut len = 4u32;
    px.getsockopt(fd, SOL_SOCKET, SO_ERROR, Some(&mut v), Some(&mut len))
        .unwrap();
    i32::from_ne_bytes(v)
}

fn pollout(px: &Posix, fd: i32, timeout_ms: i32) -> i16 {
    let mut fds = [PollFd {
        fd,
        events: POLLOUT,
        revents: 0,
    }];
    px.poll(&mut fds, timeout_ms).unwrap();
    fds[0].revents
}

#[test]
fn blocking_connect_waits_for_the_handshake() {
    let (px, fam) = setup();
    for outcome in [Ok(()), Err(Errno::ETIMEDOUT)] {
        let fd = px.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        let t = {
            let px = px.clone();
            thread::spawn(move || px.connect(fd, &sin(80)))
        };
        while fam.in_progress() != 1 {
            thread::yield_now();
        }
        fam.complete(outcome);
        assert_eq!(t.join().unwrap(), outcome);
        assert_eq!(
            so_error(&px, fd),
            0,
            "reported by connect, not left in SO_ERROR"
        );
        px.close(fd).unwrap();
    }
}

#[test]
fn nonblocking_connect_is_einprogress_then_pollout_and_so_error() {
    let (px, fam) = setup();
    let fd = px.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    assert_eq!(px.connect(fd, &sin(80)), Err(Errno::EINPROGRESS));
    assert_eq!(px.connect(fd, &sin(80)), Err(Errno::EALREADY));
    assert_eq!(pollout(&px, fd, 0), 0);
    let t = {
        let px = px.clone();
        thread::spawn(move || pollout(&px, fd, -1))
    };
    fam.complete(Ok(()));
    assert_eq!(t.join().unwrap() & POLLOUT, POLLOUT);
    assert_eq!(so_error(&px, fd), 0);
    assert_eq!(px.connect(fd, &sin(80)), Ok(()));
    assert_eq!(px.connect(fd, &sin(80)), Err(Errno::EISCONN));

    let fd2 = px.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    assert_eq!(px.connect(fd2, &sin(80)), Err(Errno::EINPROGRESS));
    fam.complete(Err(Errno::ECONNREFUSED));
    assert_ne!(pollout(&px, fd2, 0) & (POLLERR | POLLHUP), 0);
    assert_eq!(so_error(&px, fd2), Errno::ECONNREFUSED.raw());
    assert_eq!(so_error(&px, fd2), 0);
    for fd in [fd, fd2] {
        px.close(fd).unwrap();
    }
    assert_eq!(fam.in_progress(), 0);
}

#[test]
fn tcp_options_reach_the_family() {
    use ksock::testing::{IPPROTO_TCP, TCP_NODELAY};
    let (px, _fam) = setup();
    let fd = px.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let get = |name: i32| {
        let mut v = [0u8; 4];
        let mut len = 4u32;
        px.getsockopt(fd, IPPROTO_TCP, name, Some(&mut v), Some(&mut len))
            .map(|_| i32::from_ne_bytes(v))
    };
    assert_eq!(get(TCP_NODELAY), Ok(0));
    px.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &1i32.to_ne_bytes())
        .unwrap();
    assert_eq!(get(TCP_NODELAY), Ok(1));
    assert_eq!(get(77), Err(Errno::ENOPROTOOPT));
    assert_eq!(
        px.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &[1]),
        Err(Errno::EINVAL)
    );
    px.close(fd).unwrap();
}
