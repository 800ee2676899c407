use ksock::*;
use std::thread;
use std::time::Duration;

fn addr(n: &str) -> SockAddr {
    SockAddr::local(n).unwrap()
}

#[test]
fn seqpacket_roundtrip_and_close() {
    let st = Stack::new();
    let srv = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
    srv.bind(&addr("s")).unwrap();
    srv.listen(4).unwrap();
    let cli = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
    cli.connect(&addr("s")).unwrap();
    cli.send(b"one").unwrap();
    cli.send(b"").unwrap();
    let (c, peer) = srv.accept().unwrap();
    assert_eq!(peer, SockAddr::Unnamed);
    let mut b = [0u8; 2];
    let mut s: &mut [u8] = &mut b;
    let i = c.recvmsg(&mut s, MsgFlags::empty()).unwrap();
    assert_eq!(
        (i.len, i.full_len, i.flags.contains(MsgFlags::TRUNC)),
        (2, 3, true)
    );
    assert_eq!(c.recv(&mut b).unwrap(), 0);
    drop(cli);
    let mut s: &mut [u8] = &mut b;
    assert!(c.recvmsg(&mut s, MsgFlags::empty()).unwrap().eof);
    assert_eq!(c.state(), State::Closing);
    drop(c);
    drop(srv);
    assert_eq!(st.socket_count(), 0);
    assert!(st.family(Domain::LOCAL).unwrap().bound().is_empty());
}

#[test]
fn stream_blocking_threads() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    let t = thread::spawn(move || {
        let data = vec![7u8; 1 << 20];
        assert_eq!(a.send(&data).unwrap(), 1 << 20);
    });
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    while got < (1 << 20) {
        let n = b.recv(&mut buf).unwrap();
        assert!(n > 0);
        got += n;
    }
    t.join().unwrap();
    assert_eq!(b.recv(&mut buf).unwrap(), 0, "EOF after peer closed");
}

#[test]
fn dgram_and_timeouts() {
    let st = Stack::new();
    let r = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
    r.bind(&addr("r")).unwrap();
    let s = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
    s.bind(&addr("snd")).unwrap();
    assert_eq!(s.send(b"x"), Err(Errno::ENOTCONN));
    s.send_to(b"hi", &addr("r")).unwrap();
    let mut b = [0u8; 8];
    assert_eq!(r.recv_from(&mut b).unwrap(), (2, addr("snd")));
    r.set_option(
        SockOpt::RcvTimeo,
        OptVal::Time(Some(Duration::from_millis(20))),
    )
    .unwrap();
    assert_eq!(r.recv(&mut b), Err(Errno::EAGAIN));
    for _ in 0..MAX_QLEN {
        s.send_to(b"m", &addr("r")).unwrap();
    }
    s.set_nonblocking(true).unwrap();
    assert_eq!(s.send_to(b"m", &addr("r")), Err(Errno::EAGAIN));
}

const MAX_QLEN: usize = ksock::local::MAX_DGRAM_QLEN;

#[test]
fn async_connect_completes_in_background() {
    let st = Stack::new();
    let srv = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    srv.bind(&addr("bg")).unwrap();
    srv.listen(1).unwrap();
    let c1 = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    c1.connect(&addr("bg")).unwrap();
    let c2 = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    assert_eq!(c2.start_connect(&addr("bg")), Err(Errno::EINPROGRESS));
    assert_eq!(c2.state(), State::Connecting);
    assert_eq!(c2.start_connect(&addr("bg")), Err(Errno::EALREADY));
    let _a = srv.accept().unwrap();
    assert_eq!(c2.state(), State::Connected);
    assert_eq!(c2.connect_result(), Ok(()));
}

#[test]
fn reset_with_unread_data() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    a.send(b"hello").unwrap();
    b.send(b"unread").unwrap();
    drop(a);
    b.set_nonblocking(true).unwrap();
    assert_eq!(b.send(b"z"), Err(Errno::EPIPE));
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(&mut buf), Ok(5));
    assert_eq!(b.recv(&mut buf), Err(Errno::ECONNRESET));
    assert_eq!(b.recv(&mut buf), Ok(0));
}
