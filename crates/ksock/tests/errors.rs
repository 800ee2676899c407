//! Every misuse of SPEC section 3 gets its errno, changes nothing and leaks nothing.

mod common;
use common::*;
use ksock::*;

#[test]
fn names_are_one_to_255_bytes() {
    assert_eq!(SockAddr::local(""), Err(Errno::EINVAL));
    assert_eq!(SockAddr::local("x".repeat(256)), Err(Errno::ENAMETOOLONG));
    let st = Stack::new();
    let s = sock(&st, SockType::STREAM);
    s.bind(&addr(&"n".repeat(255))).unwrap();
    assert_eq!(s.local_addr().unwrap(), addr(&"n".repeat(255)));
    // Other families' addresses and no address are not local names.
    let t = sock(&st, SockType::STREAM);
    assert_eq!(t.bind(&SockAddr::Unnamed), Err(Errno::EINVAL));
    assert_eq!(
        t.bind(
            &"127.0.0.1:80"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into()
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(t.state(), State::New, "a failed bind changes nothing");
    drop((s, t));
    assert_clean(&st);
}

#[test]
fn bind_errors() {
    let st = Stack::new();
    for ty in TYPES {
        let a = sock(&st, ty);
        a.bind(&addr("taken")).unwrap();
        assert_eq!(a.state(), State::Bound);
        let b = sock(&st, ty);
        assert_eq!(b.bind(&addr("taken")), Err(Errno::EADDRINUSE), "{ty}");
        assert_eq!(b.state(), State::New);
        assert_eq!(b.local_addr().unwrap(), SockAddr::Unnamed);
        assert_eq!(
            a.bind(&addr("other")),
            Err(Errno::EINVAL),
            "already bound: {ty}"
        );
        assert_eq!(
            a.local_addr().unwrap(),
            addr("taken"),
            "a failed rebind keeps the name"
        );
        // One namespace for all types.
        let other_ty = if ty == SockType::DGRAM {
            SockType::STREAM
        } else {
            SockType::DGRAM
        };
        assert_eq!(
            sock(&st, other_ty).bind(&addr("taken")),
            Err(Errno::EADDRINUSE)
        );
        drop(a);
        // The name is free as soon as its socket closes.
        b.bind(&addr("taken")).unwrap();
    }
    assert_clean(&st);
}

#[test]
fn name_is_freed_at_close_not_when_connections_end() {
    let st = Stack::new();
    let l = listener(&st, SockType::SEQPACKET, "svc", 4);
    let c = sock(&st, SockType::SEQPACKET);
    c.connect(&addr("svc")).unwrap();
    let (s, _) = l.accept().unwrap();
    drop(l);
    let l2 = listener(&st, SockType::SEQPACKET, "svc", 4);
    // The old connection still works.
    c.send(b"still").unwrap();
    assert_eq!(recv_now(&s, 10).unwrap().0, b"still");
    drop((c, s, l2));
    assert_clean(&st);
}

#[test]
fn listen_errors_and_backlog_update() {
    let st = Stack::new();
    let d = sock(&st, SockType::DGRAM);
    d.bind(&addr("d")).unwrap();
    assert_eq!(d.listen(5), Err(Errno::EOPNOTSUPP));
    assert_eq!(d.state(), State::Bound);
    for ty in CONN_TYPES {
        let s = sock(&st, ty);
        assert_eq!(s.listen(5), Err(Errno::EINVAL), "not bound");
        assert_eq!(s.state(), State::New);
        s.bind(&addr("l")).unwrap();
        s.listen(1).unwrap();
        assert_eq!(s.get_option(SockOpt::AcceptConn), Ok(OptVal::Int(1)));
        let c1 = sock(&st, ty);
        c1.connect(&addr("l")).unwrap();
        let c2 = sock(&st, ty);
        assert_eq!(
            c2.try_connect(&addr("l")),
            Err(Errno::EAGAIN),
            "backlog of 1 is full"
        );
        assert_eq!(c2.state(), State::New, "a refused connect rolls back");
        s.listen(2).unwrap();
        assert_eq!(s.info().unwrap().queues.backlog, 2);
        c2.try_connect(&addr("l")).unwrap();
        assert_eq!(s.info().unwrap().queues.pending, 2);
        // A connected socket cannot listen.
        assert_eq!(c1.listen(3), Err(Errno::EINVAL));
        drop((s, c1, c2));
    }
    drop(d);
    assert_clean(&st);
}

#[test]
fn connect_errors() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let c = sock(&st, ty);
        assert_eq!(c.connect(&addr("nobody")), Err(Errno::ECONNREFUSED));
        assert_eq!(c.state(), State::New);
        let bound = sock(&st, ty);
        bound.bind(&addr("bound")).unwrap();
        assert_eq!(
            c.connect(&addr("bound")),
            Err(Errno::ECONNREFUSED),
            "bound but not listening"
        );
        let other = if ty == SockType::STREAM {
            SockType::SEQPACKET
        } else {
            SockType::STREAM
        };
        let _o = listener(&st, other, "other", 4);
        assert_eq!(c.connect(&addr("other")), Err(Errno::EPROTOTYPE));
        let dg = sock(&st, SockType::DGRAM);
        dg.bind(&addr("dg")).unwrap();
        assert_eq!(c.connect(&addr("dg")), Err(Errno::EPROTOTYPE));
        assert_eq!(c.connect(&SockAddr::Unnamed), Err(Errno::EINVAL));
        let l = listener(&st, ty, "here", 4);
        assert_eq!(
            l.connect(&addr("here")),
            Err(Errno::EINVAL),
            "a listener cannot connect"
        );
        c.connect(&addr("here")).unwrap();
        assert_eq!(c.state(), State::Connected);
        assert_eq!(c.connect(&addr("here")), Err(Errno::EISCONN));
        assert_eq!(c.peer_addr().unwrap(), addr("here"));
        // The listener closed: refused, and no name left behind.
        drop(l);
        let c2 = sock(&st, ty);
        assert_eq!(c2.connect(&addr("here")), Err(Errno::ECONNREFUSED));
        drop((c, c2, bound, dg));
    }
    assert_clean(&st);
}

#[test]
fn accept_errors() {
    let st = Stack::new();
    let d = sock(&st, SockType::DGRAM);
    assert_eq!(d.try_accept().unwrap_err(), Errno::EOPNOTSUPP);
    for ty in CONN_TYPES {
        let s = sock(&st, ty);
        assert_eq!(s.try_accept().unwrap_err(), Errno::EINVAL);
        s.bind(&addr("a")).unwrap();
        assert_eq!(s.try_accept().unwrap_err(), Errno::EINVAL);
        s.listen(3).unwrap();
        assert_eq!(s.try_accept().unwrap_err(), Errno::EAGAIN);
        s.set_nonblocking(true).unwrap();
        assert_eq!(s.accept().unwrap_err(), Errno::EAGAIN, "nonblocking accept");
    }
    drop(d);
    assert_clean(&st);
}

#[test]
fn client_may_write_before_accept_and_accept_takes_oldest() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let l = listener(&st, ty, "early", 8);
        let mut clients = Vec::new();
        for i in 0..3u8 {
            let c = sock(&st, ty);
            c.bind(&addr(&format!("client{i}"))).unwrap();
            c.connect(&addr("early")).unwrap();
            c.send(&[i; 3]).unwrap();
            clients.push(c);
        }
        for i in 0..3u8 {
            let (s, peer) = l.accept().unwrap();
            assert_eq!(peer, addr(&format!("client{i}")), "oldest first");
            assert_eq!(s.peer_addr().unwrap(), peer);
            assert_eq!(
                s.local_addr().unwrap(),
                addr("early"),
                "named like the listener"
            );
            assert_eq!(recv_now(&s, 10).unwrap().0, vec![i; 3]);
        }
        drop((l, clients));
    }
    assert_clean(&st);
}

#[test]
fn closed_client_is_still_handed_out_with_its_data() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let l = listener(&st, ty, "late", 2);
        let c = sock(&st, ty);
        c.connect(&addr("late")).unwrap();
        c.send(b"bye").unwrap();
        drop(c);
        let (s, _) = l.accept().unwrap();
        assert_eq!(s.state(), State::Closing, "the peer is already gone");
        assert_eq!(recv_now(&s, 10).unwrap().0, b"bye");
        let (_, info) = recv_now(&s, 10).unwrap();
        assert!(info.eof, "then end of file");
        assert_eq!(send_now(&s, b"x"), Err(Errno::EPIPE));
        drop((l, s));
    }
    assert_clean(&st);
}

#[test]
fn pending_connections_of_a_closed_listener_are_reset() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let l = listener(&st, ty, "gone", 4);
        let c = sock(&st, ty);
        c.connect(&addr("gone")).unwrap();
        c.send(b"lost").unwrap();
        drop(l);
        assert!(
            c.readiness()
                .contains(Events::ERR | Events::HUP | Events::IN)
        );
        assert_eq!(recv_now(&c, 10).unwrap_err(), Errno::ECONNRESET);
        assert!(
            recv_now(&c, 10).unwrap().1.eof,
            "ECONNRESET once, then end of file"
        );
        assert_eq!(send_now(&c, b"x"), Err(Errno::EPIPE));
        assert_eq!(c.state(), State::Closing);
        drop(c);
    }
    assert_clean(&st);
}

#[test]
fn records_are_atomic_truncated_and_never_dropped() {
    let st = Stack::new();
    let (a, b) = st
        .socketpair(Domain::LOCAL, SockType::SEQPACKET, 0)
        .unwrap();
    a.set_option(SockOpt::SndBuf, OptVal::Int(4096)).unwrap();
    let sndbuf = a.options().unwrap().sndbuf();
    assert_eq!(sndbuf, 8192);
    let big = vec![1u8; sndbuf - 31];
    assert_eq!(
        send_now(&a, &big),
        Err(Errno::EMSGSIZE),
        "larger than the send buffer"
    );
    assert_eq!(b.nread().unwrap(), 0, "nothing of it was sent");
    let fits = vec![2u8; sndbuf - 32];
    assert_eq!(send_now(&a, &fits), Ok(sndbuf - 32));
    assert_eq!(
        send_now(&a, b""),
        Err(Errno::EAGAIN),
        "full: not even an empty record"
    );
    assert_eq!(b.nread().unwrap(), sndbuf - 32);
    let (got, info) = recv_now(&b, 100).unwrap();
    assert_eq!(got.len(), 100);
    assert!(info.flags.contains(MsgFlags::TRUNC));
    assert_eq!(info.full_len, sndbuf - 32);
    assert_eq!(
        b.nread().unwrap(),
        0,
        "the rest of a truncated record is discarded"
    );
    send_now(&a, b"").unwrap();
    send_now(&a, b"after").unwrap();
    let (got, info) = recv_now(&b, 10).unwrap();
    assert!(
        got.is_empty() && !info.eof,
        "a zero-length record is not end of file"
    );
    assert_eq!(recv_now(&b, 10).unwrap().0, b"after");
    drop((a, b));
    assert_clean(&st);
}

#[test]
fn peek_and_trunc_flag_on_records() {
    let st = Stack::new();
    let (a, b) = st
        .socketpair(Domain::LOCAL, SockType::SEQPACKET, 0)
        .unwrap();
    a.send(b"abcdef").unwrap();
    let mut buf = [0u8; 3];
    let mut s: &mut [u8] = &mut buf;
    let info = b
        .recvmsg(&mut s, MsgFlags::PEEK | MsgFlags::DONTWAIT)
        .unwrap();
    assert_eq!((info.len, info.full_len), (3, 6));
    assert!(info.flags.contains(MsgFlags::TRUNC));
    assert_eq!(b.nread().unwrap(), 6, "peek consumes nothing");
    let mut s: &mut [u8] = &mut buf;
    let info = b
        .recvmsg(&mut s, MsgFlags::TRUNC | MsgFlags::DONTWAIT)
        .unwrap();
    assert_eq!((info.len, info.full_len), (3, 6));
    assert_eq!(&buf, b"abc");
    drop((a, b));
    assert_clean(&st);
}

#[test]
fn stream_partial_write_and_buffer_bound() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    a.set_option(SockOpt::SndBuf, OptVal::Int(2304)).unwrap();
    let cap = a.options().unwrap().sndbuf();
    let data: Vec<u8> = (0..cap * 2).map(|i| i as u8).collect();
    assert_eq!(
        send_now(&a, &data),
        Ok(cap),
        "a stream write that fits partly returns the part"
    );
    assert_eq!(send_now(&a, &data), Err(Errno::EAGAIN));
    assert!(!a.readiness().contains(Events::OUT));
    let (got, _) = recv_now(&b, cap * 3).unwrap();
    assert_eq!(got, data[..cap]);
    assert!(a.readiness().contains(Events::OUT));
    assert_eq!(send_now(&a, b""), Ok(0));
    drop((a, b));
    assert_clean(&st);
}

#[test]
fn close_gives_eof_epipe_and_reset_once() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        // Closing without unread data: EOF after the data, EPIPE for writes.
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        a.send(b"last").unwrap();
        drop(a);
        assert_eq!(b.state(), State::Closing);
        let ev = b.readiness();
        assert!(
            ev.contains(Events::IN | Events::OUT | Events::HUP | Events::RDHUP)
                && !ev.contains(Events::ERR),
            "{ev:?}"
        );
        assert_eq!(send_now(&b, b"x"), Err(Errno::EPIPE));
        assert_eq!(recv_now(&b, 10).unwrap().0, b"last");
        assert!(recv_now(&b, 10).unwrap().1.eof);
        assert!(recv_now(&b, 10).unwrap().1.eof, "EOF stays");
        drop(b);

        // Closing with unread data: the peer sees ECONNRESET once, after its data on a
        // stream, before its records on seqpacket (as Linux).
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        a.send(b"to b").unwrap();
        b.send(b"never read").unwrap();
        drop(a);
        assert!(b.readiness().contains(Events::ERR));
        if ty == SockType::SEQPACKET {
            assert_eq!(recv_now(&b, 10).unwrap_err(), Errno::ECONNRESET);
            assert_eq!(recv_now(&b, 10).unwrap().0, b"to b");
            assert!(recv_now(&b, 10).unwrap().1.eof);
            drop(b);
            continue;
        }
        assert_eq!(recv_now(&b, 10).unwrap().0, b"to b");
        assert_eq!(
            b.get_option(SockOpt::Error),
            Ok(OptVal::Int(Errno::ECONNRESET.raw()))
        );
        assert_eq!(
            b.get_option(SockOpt::Error),
            Ok(OptVal::Int(0)),
            "SO_ERROR reads and clears"
        );
        assert!(recv_now(&b, 10).unwrap().1.eof);
        drop(b);
    }
    assert_clean(&st);
}

#[test]
fn reset_is_reported_by_recv_on_stream_and_by_send_on_seqpacket() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    b.send(b"unread").unwrap();
    drop(a);
    assert_eq!(send_now(&b, b"x"), Err(Errno::EPIPE));
    assert_eq!(recv_now(&b, 10).unwrap_err(), Errno::ECONNRESET);
    assert!(recv_now(&b, 10).unwrap().1.eof);
    drop(b);

    // As on Linux, a seqpacket send reports the pending error first.
    let (a, b) = st
        .socketpair(Domain::LOCAL, SockType::SEQPACKET, 0)
        .unwrap();
    b.send(b"unread").unwrap();
    drop(a);
    assert_eq!(send_now(&b, b"x"), Err(Errno::ECONNRESET));
    assert_eq!(send_now(&b, b"x"), Err(Errno::EPIPE));
    assert!(recv_now(&b, 10).unwrap().1.eof);
    drop(b);
    assert_clean(&st);
}

#[test]
fn shutdown_each_direction() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        a.send(b"pending").unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(a.state(), State::Closing);
        assert_eq!(
            b.state(),
            State::Connected,
            "the peer's shutdown does not move b"
        );
        assert_eq!(send_now(&a, b"x"), Err(Errno::EPIPE));
        assert!(b.readiness().contains(Events::RDHUP | Events::IN));
        assert!(!b.readiness().contains(Events::HUP));
        assert_eq!(recv_now(&b, 10).unwrap().0, b"pending");
        assert!(
            recv_now(&b, 10).unwrap().1.eof,
            "my wr gives the peer end of file"
        );
        b.send(b"back").unwrap();
        assert_eq!(
            recv_now(&a, 10).unwrap().0,
            b"back",
            "the other direction still works"
        );
        a.shutdown(Shutdown::Write).unwrap();

        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        b.send(b"queued").unwrap();
        a.shutdown(Shutdown::Read).unwrap();
        assert_eq!(
            send_now(&b, b"x"),
            Err(Errno::EPIPE),
            "my rd makes the peer's writes fail"
        );
        assert_eq!(
            recv_now(&a, 10).unwrap().0,
            b"queued",
            "what was queued is still readable"
        );
        assert!(recv_now(&a, 10).unwrap().1.eof);
        assert!(a.readiness().contains(Events::RDHUP | Events::IN));
        a.shutdown(Shutdown::Write).unwrap();
        assert!(a.readiness().contains(Events::HUP), "both directions shut");
        a.shutdown(Shutdown::Both).unwrap();
        drop((a, b));
    }
    let s = sock(&st, SockType::STREAM);
    assert_eq!(s.shutdown(Shutdown::Both), Err(Errno::ENOTCONN));
    let d = sock(&st, SockType::DGRAM);
    assert_eq!(d.shutdown(Shutdown::Read), Err(Errno::ENOTCONN));
    assert_eq!(Shutdown::from_raw(3), Err(Errno::EINVAL));
    drop((s, d));
    assert_clean(&st);
}

#[test]
fn send_and_recv_state_errors() {
    let st = Stack::new();
    let s = sock(&st, SockType::STREAM);
    assert_eq!(send_now(&s, b"x"), Err(Errno::ENOTCONN));
    assert_eq!(s.send_to(b"x", &addr("a")), Err(Errno::EOPNOTSUPP));
    assert_eq!(
        recv_now(&s, 1).unwrap_err(),
        Errno::EINVAL,
        "Linux: unconnected stream recv"
    );
    let q = sock(&st, SockType::SEQPACKET);
    assert_eq!(send_now(&q, b"x"), Err(Errno::ENOTCONN));
    assert_eq!(recv_now(&q, 1).unwrap_err(), Errno::ENOTCONN);
    let (a, _b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    assert_eq!(a.send_to(b"x", &addr("a")), Err(Errno::EISCONN));
    assert_eq!(
        a.sendmsg(&mut &b"x"[..], None, MsgFlags::from_bits_retain(1)),
        Err(Errno::EOPNOTSUPP),
        "MSG_OOB"
    );
    drop((s, q, a, _b));
    assert_clean(&st);
}

#[test]
fn dgram_rules() {
    let st = Stack::new();
    let r = sock(&st, SockType::DGRAM);
    r.bind(&addr("r")).unwrap();
    let s = sock(&st, SockType::DGRAM);
    assert_eq!(
        send_now(&s, b"x"),
        Err(Errno::ENOTCONN),
        "unconnected send needs an address"
    );
    assert_eq!(
        s.sendmsg(&mut &b"x"[..], Some(&addr("none")), MsgFlags::DONTWAIT),
        Err(Errno::ECONNREFUSED)
    );
    let l = listener(&st, SockType::STREAM, "strm", 1);
    assert_eq!(s.send_to(b"x", &addr("strm")), Err(Errno::EPROTOTYPE));
    assert_eq!(s.connect(&addr("strm")), Err(Errno::EPROTOTYPE));
    // The queue limit applies to senders the receiver is not connected to.
    for i in 0..local::MAX_DGRAM_QLEN {
        assert_eq!(
            s.sendmsg(&mut &[i as u8][..], Some(&addr("r")), MsgFlags::DONTWAIT),
            Ok(1)
        );
    }
    assert_eq!(
        s.sendmsg(&mut &b"x"[..], Some(&addr("r")), MsgFlags::DONTWAIT),
        Err(Errno::EAGAIN)
    );
    assert_eq!(r.nread().unwrap(), 1);
    let (got, info) = recv_now(&r, 4).unwrap();
    assert_eq!((got, info.from), (vec![0], SockAddr::Unnamed));
    assert_eq!(
        s.sendmsg(&mut &b"y"[..], Some(&addr("r")), MsgFlags::DONTWAIT),
        Ok(1),
        "room again"
    );
    // Connected receivers take only from their peer.
    let p = sock(&st, SockType::DGRAM);
    p.bind(&addr("p")).unwrap();
    r.connect(&addr("p")).unwrap();
    assert_eq!(r.state(), State::Connected);
    assert_eq!(s.send_to(b"x", &addr("r")), Err(Errno::EPERM));
    // A record larger than the send buffer.
    let big = vec![0u8; s.options().unwrap().sndbuf()];
    assert_eq!(
        s.sendmsg(&mut &big[..], Some(&addr("p")), MsgFlags::DONTWAIT),
        Err(Errno::EMSGSIZE)
    );
    // The peer closed: refused once, then not connected.
    let q = sock(&st, SockType::DGRAM);
    q.connect(&addr("p")).unwrap();
    drop(p);
    assert_eq!(send_now(&q, b"x"), Err(Errno::ECONNREFUSED));
    assert_eq!(send_now(&q, b"x"), Err(Errno::ENOTCONN));
    assert_eq!(q.state(), State::Closing);
    drop((r, s, l, q));
    assert_clean(&st);
}

#[test]
fn dgram_from_and_truncation() {
    let st = Stack::new();
    let r = sock(&st, SockType::DGRAM);
    r.bind(&addr("rx")).unwrap();
    let s = sock(&st, SockType::DGRAM);
    s.bind(&addr("tx")).unwrap();
    s.send_to(b"0123456789", &addr("rx")).unwrap();
    s.send_to(b"", &addr("rx")).unwrap();
    let (got, info) = recv_now(&r, 4).unwrap();
    assert_eq!(got, b"0123");
    assert!(info.flags.contains(MsgFlags::TRUNC));
    assert_eq!((info.full_len, info.from), (10, addr("tx")));
    let (got, info) = recv_now(&r, 4).unwrap();
    assert!(got.is_empty() && !info.eof && !info.flags.contains(MsgFlags::TRUNC));
    assert_eq!(recv_now(&r, 4).unwrap_err(), Errno::EAGAIN);
    drop((r, s));
    assert_clean(&st);
}

#[test]
fn options() {
    let st = Stack::new();
    let s = sock(&st, SockType::SEQPACKET);
    assert_eq!(s.get_option(SockOpt::Type), Ok(OptVal::Int(5)));
    assert_eq!(s.get_option(SockOpt::Domain), Ok(OptVal::Int(1)));
    assert_eq!(s.get_option(SockOpt::AcceptConn), Ok(OptVal::Int(0)));
    assert_eq!(s.get_option(SockOpt::Error), Ok(OptVal::Int(0)));
    assert_eq!(s.get_option(SockOpt::SndBuf), Ok(OptVal::Int(212_992)));
    assert_eq!(SockOpt::from_raw(1, 12345), Err(Errno::ENOPROTOOPT));
    assert_eq!(
        s.set_option(SockOpt::Type, OptVal::Int(1)),
        Err(Errno::ENOPROTOOPT)
    );
    assert_eq!(
        s.set_option(SockOpt::RcvTimeo, OptVal::Int(1)),
        Err(Errno::EINVAL)
    );
    let before = s.options().unwrap();
    assert_eq!(
        s.set_option(SockOpt::SndBuf, OptVal::Time(None)),
        Err(Errno::EINVAL)
    );
    assert_eq!(s.options().unwrap(), before, "a failed set changes nothing");
    drop(s);
    assert_clean(&st);
}

#[test]
fn every_call_after_close_is_ebadf() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    let a2 = a.clone();
    a.hangup();
    assert!(a2.is_closed());
    assert_eq!(a2.state(), State::Closed);
    assert_eq!(a2.send(b"x"), Err(Errno::EBADF));
    assert_eq!(recv_now(&a2, 1).unwrap_err(), Errno::EBADF);
    assert_eq!(a2.bind(&addr("x")), Err(Errno::EBADF));
    assert_eq!(a2.listen(1), Err(Errno::EBADF));
    assert_eq!(a2.connect(&addr("x")), Err(Errno::EBADF));
    assert_eq!(a2.try_accept().unwrap_err(), Errno::EBADF);
    assert_eq!(a2.shutdown(Shutdown::Both), Err(Errno::EBADF));
    assert_eq!(a2.get_option(SockOpt::SndBuf), Err(Errno::EBADF));
    assert_eq!(
        a2.set_option(SockOpt::SndBuf, OptVal::Int(1)),
        Err(Errno::EBADF)
    );
    assert_eq!(a2.local_addr(), Err(Errno::EBADF));
    assert_eq!(a2.set_nonblocking(true), Err(Errno::EBADF));
    assert_eq!(a2.readiness(), Events::NVAL);
    assert_eq!(st.get(a2.id()).map(|s| s.id()), None, "gone from the table");
    assert!(recv_now(&b, 1).unwrap().1.eof, "the peer sees end of file");
    drop((a, a2, b));
    assert_clean(&st);
}

#[test]
fn ids_are_unique_and_not_reused() {
    let st = Stack::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let s = sock(&st, SockType::STREAM);
        assert!(seen.insert(s.id()), "id {} reused", s.id());
        assert!(st.get(s.id()).unwrap().same_socket(&s));
    }
    assert_clean(&st);
}

#[test]
fn socket_creation_errors() {
    let st = Stack::new();
    assert_eq!(
        st.socket(Domain::INET, SockType::STREAM, 0).unwrap_err(),
        Errno::EAFNOSUPPORT
    );
    assert_eq!(
        st.socket(Domain::LOCAL, SockType::RDM, 0).unwrap_err(),
        Errno::ESOCKTNOSUPPORT
    );
    assert_eq!(
        st.socket(Domain::LOCAL, SockType::STREAM, 6).unwrap_err(),
        Errno::EPROTONOSUPPORT
    );
    assert_eq!(SockType::from_raw(11), Err(Errno::EINVAL));
    assert_eq!(
        st.socket(Domain::LOCAL, SockType::from_raw(10).unwrap(), 0)
            .unwrap_err(),
        Errno::ESOCKTNOSUPPORT,
        "SOCK_PACKET is a type number, just not one the local family has"
    );
    assert_eq!(st.socket_count(), 0);
}

#[test]
fn fionread_counts_every_queued_byte_and_refuses_listeners() {
    let st = Stack::new();
    let (a, b) = st
        .socketpair(Domain::LOCAL, SockType::SEQPACKET, 0)
        .unwrap();
    a.send(b"early").unwrap();
    a.send(b"bird").unwrap();
    assert_eq!(
        b.nread().unwrap(),
        9,
        "seqpacket: all records, as Linux sums"
    );
    let (c, d) = st.socketpair(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
    c.send(b"one").unwrap();
    c.send(b"three").unwrap();
    assert_eq!(d.nread().unwrap(), 3, "dgram: the next record");
    let l = listener(&st, SockType::STREAM, "fionread", 1);
    assert_eq!(l.nread(), Err(Errno::EINVAL));
    drop((a, b, c, d, l));
    assert_clean(&st);
}

#[test]
fn a_connected_datagram_socket_refuses_even_itself() {
    let st = Stack::new();
    let a = sock(&st, SockType::DGRAM);
    a.bind(&addr("self-a")).unwrap();
    let b = sock(&st, SockType::DGRAM);
    b.bind(&addr("self-b")).unwrap();
    assert_eq!(
        a.send_to(b"me", &addr("self-a")),
        Ok(2),
        "unconnected: itself is fine"
    );
    a.connect(&addr("self-b")).unwrap();
    assert_eq!(a.send_to(b"me", &addr("self-a")), Err(Errno::EPERM));
    assert_eq!(recv_now(&a, 8).unwrap().0, b"me");
    drop((a, b));
    assert_clean(&st);
}
