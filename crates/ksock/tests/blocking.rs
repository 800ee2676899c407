//! Blocking calls from threads: wake-ups, timeouts, WAITALL, low-water marks, hang-ups.

mod common;
use common::*;
use ksock::*;
use std::thread;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn blocked_reader_is_woken_by_writer_for_each_type() {
    let st = Stack::new();
    for ty in TYPES {
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        b.set_option(SockOpt::RcvTimeo, OptVal::Time(Some(LONG)))
            .unwrap();
        let t = thread::spawn(move || {
            let mut buf = [0u8; 16];
            let n = b.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        thread::sleep(Duration::from_millis(20));
        a.send(b"wake").unwrap();
        assert_eq!(t.join().unwrap(), b"wake", "{ty}");
    }
    assert_clean(&st);
}

#[test]
fn blocked_reader_sees_eof_when_peer_closes_and_ebadf_on_hangup() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        let t = thread::spawn(move || {
            let mut s: &mut [u8] = &mut [0u8; 4];
            b.recvmsg(&mut s, MsgFlags::empty()).map(|i| i.eof)
        });
        thread::sleep(Duration::from_millis(20));
        drop(a);
        assert_eq!(t.join().unwrap(), Ok(true));

        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        let b2 = b.clone();
        let t = thread::spawn(move || b2.recv(&mut [0u8; 4]));
        thread::sleep(Duration::from_millis(20));
        b.hangup();
        assert_eq!(
            t.join().unwrap(),
            Err(Errno::EBADF),
            "hangup wakes blocked readers"
        );
        drop((a, b));
    }
    assert_clean(&st);
}

#[test]
fn blocked_writer_resumes_when_reader_drains() {
    let st = Stack::new();
    for ty in TYPES {
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        a.set_option(SockOpt::SndBuf, OptVal::Int(4096)).unwrap();
        let msg = vec![9u8; 1000];
        let writer = thread::spawn(move || {
            for _ in 0..100 {
                assert_eq!(a.send(&msg).unwrap(), 1000);
            }
        });
        let mut got = 0;
        let mut buf = [0u8; 1000];
        while got < 100_000 {
            got += b.recv(&mut buf).unwrap();
        }
        writer.join().unwrap();
        assert_eq!(got, 100_000, "{ty}");
    }
    assert_clean(&st);
}

#[test]
fn blocking_connect_waits_for_backlog_room() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let l = listener(&st, ty, "room", 1);
        let first = sock(&st, ty);
        first.connect(&addr("room")).unwrap();
        let second = sock(&st, ty);
        let st2 = st.clone();
        let t = thread::spawn(move || {
            second.connect(&addr("room")).unwrap();
            assert_eq!(second.state(), State::Connected);
            drop(st2);
            second
        });
        thread::sleep(Duration::from_millis(30));
        assert_eq!(l.info().unwrap().queues.pending, 1, "the second waits");
        let (_s1, _) = l.accept().unwrap();
        let second = t.join().unwrap();
        let (s2, _) = l.accept().unwrap();
        second.send(b"ok").unwrap();
        assert_eq!(s2.recv(&mut [0u8; 4]).unwrap(), 2);
        drop((l, first, second, s2, _s1));
    }
    assert_clean(&st);
}

#[test]
fn blocked_connect_fails_when_listener_closes() {
    let st = Stack::new();
    let l = listener(&st, SockType::STREAM, "shut", 1);
    let first = sock(&st, SockType::STREAM);
    first.connect(&addr("shut")).unwrap();
    let second = sock(&st, SockType::STREAM);
    let t = thread::spawn(move || second.connect(&addr("shut")));
    thread::sleep(Duration::from_millis(30));
    drop(l);
    assert_eq!(t.join().unwrap(), Err(Errno::ECONNREFUSED));
    drop(first);
    assert_clean(&st);
}

#[test]
fn blocking_accept_and_timeouts() {
    let st = Stack::new();
    let l = listener(&st, SockType::SEQPACKET, "acc", 4);
    l.set_option(
        SockOpt::RcvTimeo,
        OptVal::Time(Some(Duration::from_millis(30))),
    )
    .unwrap();
    assert_eq!(
        l.accept().unwrap_err(),
        Errno::EAGAIN,
        "SO_RCVTIMEO bounds accept"
    );
    l.set_option(SockOpt::RcvTimeo, OptVal::Time(None)).unwrap();
    let st2 = st.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let c = sock(&st2, SockType::SEQPACKET);
        c.connect(&addr("acc")).unwrap();
        c
    });
    let (s, _) = l.accept().unwrap();
    let c = t.join().unwrap();
    s.set_option(
        SockOpt::RcvTimeo,
        OptVal::Time(Some(Duration::from_millis(20))),
    )
    .unwrap();
    assert_eq!(s.recv(&mut [0u8; 4]), Err(Errno::EAGAIN));
    c.set_option(SockOpt::SndBuf, OptVal::Int(0)).unwrap();
    c.set_option(
        SockOpt::SndTimeo,
        OptVal::Time(Some(Duration::from_millis(20))),
    )
    .unwrap();
    let rec = vec![1u8; 2000];
    while c.send(&rec).is_ok() {}
    assert_eq!(c.send(&rec), Err(Errno::EAGAIN), "SO_SNDTIMEO bounds send");
    drop((l, s, c));
    assert_clean(&st);
}

#[test]
fn stream_send_timeout_returns_the_part_sent() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    a.set_option(SockOpt::SndBuf, OptVal::Int(0)).unwrap();
    a.set_option(
        SockOpt::SndTimeo,
        OptVal::Time(Some(Duration::from_millis(20))),
    )
    .unwrap();
    let cap = a.options().unwrap().sndbuf();
    assert_eq!(a.send(&vec![1u8; cap * 3]), Ok(cap));
    assert_eq!(b.nread().unwrap(), cap);
    drop((a, b));
    assert_clean(&st);
}

#[test]
fn waitall_and_lowat_wait_for_enough_bytes() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    let w = thread::spawn(move || {
        for chunk in [b"ab".as_slice(), b"cd", b"ef", b"gh"] {
            thread::sleep(Duration::from_millis(5));
            a.send(chunk).unwrap();
        }
        a
    });
    let mut buf = [0u8; 6];
    let mut s: &mut [u8] = &mut buf;
    let info = b.recvmsg(&mut s, MsgFlags::WAITALL).unwrap();
    assert_eq!(info.len, 6);
    assert_eq!(&buf, b"abcdef");
    b.set_option(SockOpt::RcvLowat, OptVal::Int(2)).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(&mut buf), Ok(2));
    assert_eq!(&buf[..2], b"gh");
    let a = w.join().unwrap();
    // WAITALL stops at end of file with what arrived.
    a.send(b"xyz").unwrap();
    drop(a);
    let mut buf = [0u8; 10];
    let mut s: &mut [u8] = &mut buf;
    let info = b.recvmsg(&mut s, MsgFlags::WAITALL).unwrap();
    assert_eq!((info.len, info.eof), (3, false));
    drop(b);
    assert_clean(&st);
}

#[test]
fn error_after_partial_waitall_is_reported_next() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    a.send(b"part").unwrap();
    b.send(b"unread").unwrap();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        drop(a);
    });
    let mut buf = [0u8; 10];
    let mut s: &mut [u8] = &mut buf;
    let info = b.recvmsg(&mut s, MsgFlags::WAITALL).unwrap();
    assert_eq!(info.len, 4);
    t.join().unwrap();
    assert_eq!(b.recv(&mut buf), Err(Errno::ECONNRESET));
    assert_eq!(b.recv(&mut buf), Ok(0));
    drop(b);
    assert_clean(&st);
}

#[test]
fn nonblocking_flag_and_dontwait_never_block() {
    let st = Stack::new();
    let (a, b) = st
        .socketpair(Domain::LOCAL, SockType::SEQPACKET, 0)
        .unwrap();
    assert_eq!(recv_now(&b, 4).unwrap_err(), Errno::EAGAIN);
    b.set_nonblocking(true).unwrap();
    assert!(b.is_nonblocking());
    assert_eq!(b.recv(&mut [0u8; 4]), Err(Errno::EAGAIN));
    b.set_nonblocking(false).unwrap();
    a.send(b"x").unwrap();
    assert_eq!(b.recv(&mut [0u8; 4]), Ok(1));
    drop((a, b));
    assert_clean(&st);
}

#[test]
fn wait_reports_readiness() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    assert_eq!(
        b.wait(Events::IN, Some(Duration::from_millis(10))),
        Events::empty()
    );
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        a.send(b"x").unwrap();
        a
    });
    assert!(b.wait(Events::IN, Some(LONG)).contains(Events::IN));
    drop(t.join().unwrap());
    assert!(b.wait(Events::IN, Some(LONG)).contains(Events::HUP));
    drop(b);
    assert_clean(&st);
}
