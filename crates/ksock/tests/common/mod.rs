//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ksock::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};

pub fn addr(n: &str) -> SockAddr {
    SockAddr::local(n).unwrap()
}

pub fn sock(st: &Stack, ty: SockType) -> Socket {
    st.socket(Domain::LOCAL, ty, 0).unwrap()
}

/// A listener of `ty` bound to `name`.
pub fn listener(st: &Stack, ty: SockType, name: &str, backlog: usize) -> Socket {
    let l = sock(st, ty);
    l.bind(&addr(name)).unwrap();
    l.listen(backlog).unwrap();
    l
}

/// A connected (client, server) pair through a listener, which is closed afterwards.
pub fn connected(st: &Stack, ty: SockType, name: &str) -> (Socket, Socket) {
    let l = listener(st, ty, name, 4);
    let c = sock(st, ty);
    c.connect(&addr(name)).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Asserts that nothing is left: no open socket, no bound name.
#[track_caller]
pub fn assert_clean(st: &Stack) {
    assert_eq!(
        st.socket_count(),
        0,
        "sockets left open: {:?}",
        st.sockets()
    );
    let names = st.family(Domain::LOCAL).unwrap().bound();
    assert!(names.is_empty(), "names left bound: {names:?}");
}

/// Nonblocking receive of one record / some bytes into a fresh buffer.
pub fn recv_now(s: &Socket, len: usize) -> Result<(Vec<u8>, RecvInfo)> {
    let mut buf = vec![0u8; len];
    let mut sink: &mut [u8] = &mut buf;
    let info = s.recvmsg(&mut sink, MsgFlags::DONTWAIT)?;
    buf.truncate(info.len);
    Ok((buf, info))
}

pub fn send_now(s: &Socket, data: &[u8]) -> Result<usize> {
    s.sendmsg(&mut &data[..], None, MsgFlags::DONTWAIT)
}

/// A waker that counts its wake-ups.
pub struct CountWaker(pub AtomicUsize);

impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn count_waker() -> (Arc<CountWaker>, Waker) {
    let c = Arc::new(CountWaker(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

impl CountWaker {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub const TYPES: [SockType; 3] = [SockType::STREAM, SockType::SEQPACKET, SockType::DGRAM];
pub const CONN_TYPES: [SockType; 2] = [SockType::STREAM, SockType::SEQPACKET];
