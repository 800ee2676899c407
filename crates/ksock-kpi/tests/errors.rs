//! Flags, errnos and results of each KPI call: validation, EWOULDBLOCK / EINPROGRESS /
//! EALREADY / EISCONN, truncation, peeking, waiting for all, partial counts, nonblocking
//! inheritance. A failed call changes nothing: the socket table is checked around them.

mod common;

use common::*;
use ksock::{Domain, Errno, MsgFlags, OptVal, SockAddr, SockOpt, SockType};
use ksock_kpi::*;
use std::thread;
use std::time::Duration;

#[test]
fn sock_socket_errors() {
    let k = kpi();
    let cases = [
        (
            Domain::from_raw(99),
            SockType::STREAM,
            0,
            Errno::EAFNOSUPPORT,
        ),
        (Domain::INET, SockType::STREAM, 0, Errno::EAFNOSUPPORT),
        (Domain::LOCAL, SockType::RDM, 0, Errno::ESOCKTNOSUPPORT),
        (
            Domain::LOCAL,
            SockType::from_raw(7).unwrap(),
            0,
            Errno::ESOCKTNOSUPPORT,
        ),
        (Domain::LOCAL, SockType::STREAM, 6, Errno::EPROTONOSUPPORT),
        (Domain::LOCAL, SockType::DGRAM, -1, Errno::EPROTONOSUPPORT),
    ];
    for (d, t, p, want) in cases {
        let (up, seen) = counting();
        assert_eq!(
            sock_socket(&k, d, t, p, Some(up)).unwrap_err(),
            want,
            "{d:?} {t} {p}"
        );
        assert_eq!(k.stack().socket_count(), 0);
        assert_eq!(seen.calls(), 0);
    }
    assert_eq!(SockType::from_raw(11).unwrap_err(), Errno::EINVAL);
    let so = sock_socket(&k, Domain::LOCAL, SockType::SEQPACKET, 1, None).unwrap();
    assert_eq!(
        sock_gettype(&so),
        (Domain::LOCAL, SockType::SEQPACKET, 0),
        "a local socket keeps no protocol number"
    );
    drop(so);
    assert_clean(&k);
}

#[test]
fn sock_accept_takes_only_dontwait_and_checks_flags_first() {
    let k = kpi();
    let l = listener(&k, SockType::STREAM, "acc", 4);
    let plain = sock(&k, SockType::STREAM);
    let c = sock(&k, SockType::STREAM);
    sock_connect(&c, &addr("acc"), MsgFlags::empty()).unwrap();
    for bad in [
        MsgFlags::PEEK,
        MsgFlags::WAITALL,
        MsgFlags::DONTWAIT | MsgFlags::EOR,
        MSG_USEUPCALL,
        MSG_USEUPCALL | MsgFlags::DONTWAIT,
    ] {
        assert_eq!(
            sock_accept(&l, None, bad, None).unwrap_err(),
            Errno::ENOTSUP,
            "{bad:?}"
        );
        assert_eq!(
            sock_accept(&plain, None, bad, None).unwrap_err(),
            Errno::ENOTSUP,
            "{bad:?}: the flags are checked before the state"
        );
    }
    assert_eq!(k.stack().socket_count(), 3, "nothing was dequeued");
    assert_eq!(
        sock_accept(&plain, None, MsgFlags::DONTWAIT, None).unwrap_err(),
        Errno::EINVAL,
        "not listening"
    );
    let d = sock(&k, SockType::DGRAM);
    assert_eq!(
        sock_accept(&d, None, MsgFlags::DONTWAIT, None).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    let (s, _) = sock_accept(&l, None, MsgFlags::DONTWAIT, None).unwrap();
    assert_eq!(
        sock_accept(&l, None, MsgFlags::DONTWAIT, None).unwrap_err(),
        Errno::EWOULDBLOCK,
        "queue empty"
    );
    let mut on = 1;
    sock_ioctl(&l, FIONBIO, &mut on).unwrap();
    assert_eq!(
        sock_accept(&l, None, MsgFlags::empty(), None).unwrap_err(),
        Errno::EWOULDBLOCK,
        "a nonblocking listener"
    );
    drop((l, plain, c, d, s));
    assert_clean(&k);
}

#[test]
fn the_accepted_socket_inherits_the_listeners_mode_not_the_calls_flag() {
    let k = kpi();
    let l = listener(&k, SockType::SEQPACKET, "mode", 4);
    let clients: Vec<Sock> = (0..2)
        .map(|_| {
            let c = sock(&k, SockType::SEQPACKET);
            sock_connect(&c, &addr("mode"), MsgFlags::empty()).unwrap();
            c
        })
        .collect();
    let (a, _) = sock_accept(&l, None, MsgFlags::DONTWAIT, None).unwrap();
    assert!(
        !sock_isnonblocking(&a),
        "MSG_DONTWAIT is not the listener's mode"
    );
    let mut on = 1;
    sock_ioctl(&l, FIONBIO, &mut on).unwrap();
    let (b, _) = sock_accept(&l, None, MsgFlags::empty(), None).unwrap();
    assert!(sock_isnonblocking(&b));
    assert_eq!(recv_now(&b, 4).unwrap_err(), Errno::EWOULDBLOCK);
    let mut iov_buf = [0u8; 4];
    let mut iov = [&mut iov_buf[..]];
    assert_eq!(
        sock_receive(&b, &mut RecvMsg::new(&mut iov), MsgFlags::empty()),
        Err(Errno::EWOULDBLOCK),
        "a nonblocking socket never waits"
    );
    drop((a, b, clients, l));
    assert_clean(&k);
}

#[test]
fn accept_fills_from_truncated_and_reports_the_full_length() {
    let k = kpi();
    let l = listener(&k, SockType::STREAM, "srv", 4);
    let c = sock(&k, SockType::STREAM);
    sock_bind(&c, &addr("clientname")).unwrap();
    sock_connect(&c, &addr("srv"), MsgFlags::empty()).unwrap();
    let anon = sock(&k, SockType::STREAM);
    sock_connect(&anon, &addr("srv"), MsgFlags::empty()).unwrap();

    let mut from = [0xEEu8; 7];
    let (a, len) = sock_accept(&l, Some(&mut from), MsgFlags::empty(), None).unwrap();
    assert_eq!(len, 12, "family and ten bytes");
    assert_eq!(&from[..2], &sockaddr::AF_LOCAL.to_ne_bytes());
    assert_eq!(&from[2..], b"clien");
    let mut big = [0u8; 64];
    let (b, len) = sock_accept(&l, Some(&mut big), MsgFlags::empty(), None).unwrap();
    assert_eq!(len, 2, "an unnamed peer is its family alone");
    assert_eq!(sockaddr::decode(&big[..len]), Ok(SockAddr::Unnamed));
    drop((a, b, c, anon, l));
    assert_clean(&k);
}

#[test]
fn a_blocking_accept_waits_up_to_its_timeout() {
    let park = FakePark::new();
    let k = park.kpi();
    let l = listener(&k, SockType::STREAM, "slow", 4);
    set_time(&l, SockOpt::RcvTimeo, Duration::from_secs(3));
    assert_eq!(
        sock_accept(&l, None, MsgFlags::empty(), None).unwrap_err(),
        Errno::EWOULDBLOCK
    );
    assert!(park.parks() >= 1);
    // A connection that arrives while it sleeps is taken.
    let kk = k.clone();
    let client = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = client.clone();
    park.on_park(move |_| {
        let c = sock(&kk, SockType::STREAM);
        sock_connect(&c, &addr("slow"), MsgFlags::empty()).unwrap();
        *slot.lock().unwrap() = Some(c);
        Ok(())
    });
    let (a, _) = sock_accept(&l, None, MsgFlags::empty(), None).unwrap();
    drop((a, l, client.lock().unwrap().take()));
    assert_clean(&k);
}

#[test]
fn connect_flags_and_states() {
    let k = kpi();
    let l = listener(&k, SockType::STREAM, "there", 4);
    let c = sock(&k, SockType::STREAM);
    for bad in [MsgFlags::PEEK, MsgFlags::EOR, MSG_USEUPCALL] {
        assert_eq!(
            sock_connect(&c, &addr("there"), bad),
            Err(Errno::ENOTSUP),
            "{bad:?}"
        );
    }
    assert!(!sock_isconnected(&c));
    assert_eq!(
        sock_connect(&c, &addr("nobody"), MsgFlags::DONTWAIT),
        Err(Errno::ECONNREFUSED)
    );
    let sp = listener(&k, SockType::SEQPACKET, "seq", 4);
    assert_eq!(
        sock_connect(&c, &addr("seq"), MsgFlags::empty()),
        Err(Errno::EPROTOTYPE)
    );
    assert_eq!(
        sock_connect(&l, &addr("there"), MsgFlags::empty()),
        Err(Errno::EINVAL),
        "a listener"
    );
    assert_eq!(sock_connect(&c, &addr("there"), MsgFlags::empty()), Ok(()));
    assert_eq!(
        sock_connect(&c, &addr("there"), MsgFlags::DONTWAIT),
        Err(Errno::EISCONN)
    );
    assert_eq!(
        sock_connect(&c, &addr("there"), MsgFlags::empty()),
        Err(Errno::EISCONN)
    );
    assert!(sock_isconnected(&c));
    drop((c, l, sp));
    assert_clean(&k);
}

/// A listener with a backlog of one that is full.
fn full_listener(k: &Kpi) -> (Sock, Sock) {
    let l = listener(k, SockType::STREAM, "full", 1);
    let first = sock(k, SockType::STREAM);
    sock_connect(&first, &addr("full"), MsgFlags::empty()).unwrap();
    (l, first)
}

#[test]
fn a_nonblocking_socket_connects_in_the_background() {
    let k = kpi();
    let (l, first) = full_listener(&k);
    let c = sock(&k, SockType::STREAM);
    let mut on = 1;
    sock_ioctl(&c, FIONBIO, &mut on).unwrap();
    assert_eq!(
        sock_connect(&c, &addr("full"), MsgFlags::empty()),
        Err(Errno::EINPROGRESS),
        "nonblocking mode counts like MSG_DONTWAIT"
    );
    assert_eq!(
        sock_connect(&c, &addr("full"), MsgFlags::empty()),
        Err(Errno::EALREADY)
    );
    drop(sock_accept(&l, None, MsgFlags::empty(), None).unwrap());
    assert_eq!(sock_connectwait(&c, Duration::from_secs(5)), Ok(()));
    drop((c, l, first));
    assert_clean(&k);
}

#[test]
fn a_blocking_connect_times_out_into_the_background_or_is_interrupted() {
    let park = FakePark::new();
    let k = park.kpi();
    let (l, first) = full_listener(&k);
    let c = sock(&k, SockType::STREAM);
    set_time(&c, SockOpt::SndTimeo, Duration::from_secs(1));
    assert_eq!(
        sock_connect(&c, &addr("full"), MsgFlags::empty()),
        Err(Errno::EINPROGRESS),
        "timed out, still going on"
    );
    assert_eq!(
        sock_connectwait(&c, Duration::from_secs(1)),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(
        sock_connect(&c, &addr("full"), MsgFlags::empty()),
        Err(Errno::EALREADY)
    );

    let c2 = sock(&k, SockType::STREAM);
    park.on_park(|_| Err(EINTR));
    assert_eq!(
        sock_connect(&c2, &addr("full"), MsgFlags::empty()),
        Err(Errno::EINTR)
    );
    assert_eq!(
        sock_connect(&c2, &addr("full"), MsgFlags::DONTWAIT),
        Err(Errno::EALREADY),
        "an interrupted connect goes on"
    );
    // Each accept makes room for one of them; in the end both are connected.
    drop(sock_accept(&l, None, MsgFlags::empty(), None).unwrap());
    assert_eq!(
        [&c, &c2]
            .map(sock_isconnected)
            .iter()
            .filter(|&&b| b)
            .count(),
        1,
        "one slot, one connect completed"
    );
    drop(sock_accept(&l, None, MsgFlags::empty(), None).unwrap());
    assert_eq!(sock_connectwait(&c, Duration::ZERO), Ok(()));
    assert_eq!(sock_connectwait(&c2, Duration::ZERO), Ok(()));
    drop((c, c2, l, first));
    assert_clean(&k);
}

#[test]
fn a_blocking_connect_waits_for_room() {
    let k = kpi();
    let (l, first) = full_listener(&k);
    thread::scope(|sc| {
        let h = sc.spawn(|| {
            let c = sock(&k, SockType::STREAM);
            sock_connect(&c, &addr("full"), MsgFlags::empty()).map(|()| c)
        });
        // Accept until the waiting client got through (it is queued once it has).
        let mut got = vec![sock_accept(&l, None, MsgFlags::empty(), None).unwrap().0];
        got.push(sock_accept(&l, None, MsgFlags::empty(), None).unwrap().0);
        let c = h.join().unwrap().unwrap();
        assert!(sock_isconnected(&c));
        drop((got, c));
    });
    drop((l, first));
    assert_clean(&k);
}

#[test]
fn connectwait_without_a_connect_is_einval() {
    let k = kpi();
    let c = sock(&k, SockType::STREAM);
    assert_eq!(sock_connectwait(&c, Duration::ZERO), Err(Errno::EINVAL));
    let (a, b) = pair(&k, SockType::STREAM);
    assert_eq!(sock_connectwait(&a, Duration::ZERO), Ok(()));
    drop((a, b, c));
    assert_clean(&k);
}

#[test]
fn shutdown_checks_how_then_the_state() {
    let k = kpi();
    let lone = sock(&k, SockType::STREAM);
    for bad in [-1, 3, 42] {
        assert_eq!(sock_shutdown(&lone, bad), Err(Errno::EINVAL), "how {bad}");
    }
    assert_eq!(sock_shutdown(&lone, SHUT_RDWR), Err(Errno::ENOTCONN));
    let l = listener(&k, SockType::STREAM, "l", 1);
    assert_eq!(sock_shutdown(&l, SHUT_RD), Err(Errno::ENOTCONN));
    let (c, s) = pair(&k, SockType::STREAM);
    assert_eq!(sock_shutdown(&c, 7), Err(Errno::EINVAL));
    assert_eq!(
        send_now(&c, b"still open"),
        Ok(10),
        "a bad how changed nothing"
    );
    sock_shutdown(&c, SHUT_WR).unwrap();
    assert_eq!(recv_now(&s, 64).unwrap().0, b"still open");
    assert_eq!(recv_now(&s, 64).unwrap().0, b"", "end of file");
    assert!(sock_isconnected(&c), "shut down one way, still connected");
    drop((lone, l, c, s));
    assert_clean(&k);
}

#[test]
fn names_are_truncated_to_the_callers_storage() {
    let k = kpi();
    let l = listener(&k, SockType::SEQPACKET, "abcdef", 4);
    let mut four = [0u8; 4];
    assert_eq!(sock_getsockname(&l, &mut four), Ok(8));
    assert_eq!(&four[2..], b"ab");
    assert_eq!(sock_getsockname(&l, &mut []), Ok(8));
    let mut name = [0u8; 64];
    assert_eq!(
        sock_getpeername(&l, &mut name),
        Err(Errno::ENOTCONN),
        "a listener has no peer"
    );
    let c = sock(&k, SockType::SEQPACKET);
    assert_eq!(sock_getsockname(&c, &mut name), Ok(2), "unbound");
    assert_eq!(sock_getpeername(&c, &mut name), Err(Errno::ENOTCONN));
    sock_connect(&c, &addr("abcdef"), MsgFlags::empty()).unwrap();
    let n = sock_getpeername(&c, &mut name).unwrap();
    assert_eq!(sockaddr::decode(&name[..n]), Ok(addr("abcdef")));
    let mut three = [0u8; 3];
    assert_eq!(sock_getpeername(&c, &mut three), Ok(8));
    assert_eq!(three[2], b'a');
    let (a, _) = sock_accept(&l, None, MsgFlags::empty(), None).unwrap();
    let n = sock_getsockname(&a, &mut name).unwrap();
    assert_eq!(
        sockaddr::decode(&name[..n]),
        Ok(addr("abcdef")),
        "named like its listener"
    );
    assert_eq!(sock_bind(&c, &addr("abcdef")), Err(Errno::EINVAL));
    let other = sock(&k, SockType::DGRAM);
    assert_eq!(sock_bind(&other, &addr("abcdef")), Err(Errno::EADDRINUSE));
    // No autobind in the KPI (XNU has none): an unnamed bind is EINVAL, bound or not.
    assert_eq!(sock_bind(&other, &SockAddr::Unnamed), Err(Errno::EINVAL));
    assert_eq!(sock_getsockname(&other, &mut name), Ok(2), "still unnamed");
    assert_eq!(sock_bind(&c, &SockAddr::Unnamed), Err(Errno::EINVAL));
    drop((l, c, a, other));
    assert_clean(&k);
}

#[test]
fn options_by_number() {
    let k = kpi();
    let so = sock(&k, SockType::STREAM);
    let get = |opt: i32| sock_getsockopt(&so, SOL_SOCKET, opt);
    assert_eq!(get(SockOpt::Type.raw()), Ok(OptVal::Int(1)));
    assert_eq!(get(SockOpt::AcceptConn.raw()), Ok(OptVal::Int(0)));
    assert_eq!(get(9999), Err(Errno::ENOPROTOOPT));
    assert_eq!(
        sock_getsockopt(&so, 6, SockOpt::SndBuf.raw()),
        Err(Errno::ENOPROTOOPT),
        "another level"
    );
    for (opt, val, want) in [
        (SockOpt::Type.raw(), OptVal::Int(2), Errno::ENOPROTOOPT),
        (SockOpt::Error.raw(), OptVal::Int(0), Errno::ENOPROTOOPT),
        (12345, OptVal::Int(0), Errno::ENOPROTOOPT),
        (SockOpt::RcvTimeo.raw(), OptVal::Int(1), Errno::EINVAL),
        (SockOpt::SndBuf.raw(), OptVal::Time(None), Errno::EINVAL),
    ] {
        assert_eq!(
            sock_setsockopt(&so, SOL_SOCKET, opt, val),
            Err(want),
            "{opt}"
        );
    }
    let t = Some(Duration::from_millis(1500));
    sock_setsockopt(&so, SOL_SOCKET, SockOpt::RcvTimeo.raw(), OptVal::Time(t)).unwrap();
    assert_eq!(get(SockOpt::RcvTimeo.raw()), Ok(OptVal::Time(t)));
    sock_setpriv(&so, true).unwrap();
    assert!(so.as_socket().unwrap().is_priv());
    sock_setpriv(&so, false).unwrap();
    assert!(!so.as_socket().unwrap().is_priv());
    drop(so);
    assert_clean(&k);
}

#[test]
fn ioctls() {
    let k = kpi();
    let (c, s) = pair(&k, SockType::STREAM);
    let mut arg = 5;
    sock_ioctl(&c, FIONBIO, &mut arg).unwrap();
    assert!(sock_isnonblocking(&c));
    arg = 0;
    sock_ioctl(&c, FIONBIO, &mut arg).unwrap();
    assert!(!sock_isnonblocking(&c));
    sock_ioctl(&s, FIONREAD, &mut arg).unwrap();
    assert_eq!(arg, 0);
    send_now(&c, b"12345").unwrap();
    send_now(&c, b"678").unwrap();
    sock_ioctl(&s, FIONREAD, &mut arg).unwrap();
    assert_eq!(arg, 8, "a stream counts every unread byte");
    assert_eq!(sock_ioctl(&s, 0x5401, &mut arg), Err(Errno::ENOTTY));
    assert_eq!(arg, 8, "an unknown request leaves the argument alone");

    let (sc, ss) = pair(&k, SockType::SEQPACKET);
    send_now(&sc, b"12345").unwrap();
    send_now(&sc, b"678").unwrap();
    sock_ioctl(&ss, FIONREAD, &mut arg).unwrap();
    assert_eq!(arg, 8, "records: every unread byte, as Linux counts them");
    let l = listener(&k, SockType::STREAM, "ioctl", 1);
    assert_eq!(sock_ioctl(&l, FIONREAD, &mut arg), Err(Errno::EINVAL));
    drop((c, s, sc, ss, l));
    assert_clean(&k);
}

#[test]
fn send_and_receive_flag_and_buffer_checks() {
    let k = kpi();
    let (c, s) = pair(&k, SockType::SEQPACKET);
    for bad in [
        MsgFlags::PEEK,
        MsgFlags::WAITALL,
        MsgFlags::TRUNC,
        MSG_USEUPCALL,
    ] {
        assert_eq!(
            sock_send(&c, &SendMsg::new(&[b"x"]), bad),
            Err(Errno::ENOTSUP),
            "send {bad:?}"
        );
    }
    for bad in [MsgFlags::EOR, MsgFlags::NOSIGNAL, MSG_USEUPCALL] {
        let mut b = [0u8; 4];
        let mut iov = [&mut b[..]];
        assert_eq!(
            sock_receive(&s, &mut RecvMsg::new(&mut iov), bad),
            Err(Errno::ENOTSUP),
            "receive {bad:?}"
        );
        assert_eq!(
            sock_receivembuf(&s, None, 4, bad).unwrap_err(),
            Errno::ENOTSUP
        );
    }
    assert_eq!(
        sock_send(&c, &SendMsg::new(&[]), MsgFlags::empty()),
        Err(Errno::EINVAL),
        "no iovec"
    );
    assert_eq!(
        sock_receive(&s, &mut RecvMsg::default(), MsgFlags::DONTWAIT),
        Err(Errno::EINVAL),
        "no iovec"
    );
    let mut empty = [0u8; 0];
    let mut b = [0u8; 4];
    let mut iov = [&mut empty[..], &mut b[..]];
    assert_eq!(
        sock_receive(&s, &mut RecvMsg::new(&mut iov), MsgFlags::DONTWAIT),
        Err(Errno::EINVAL),
        "an empty first iovec"
    );
    assert_eq!(
        sock_receivembuf(&s, None, 0, MsgFlags::DONTWAIT).unwrap_err(),
        Errno::EINVAL,
        "room for nothing"
    );
    let mut iov = [&mut b[..]];
    let mut with_iov = RecvMsg::new(&mut iov);
    assert_eq!(
        sock_receivembuf(&s, Some(&mut with_iov), 4, MsgFlags::DONTWAIT).unwrap_err(),
        Errno::EINVAL,
        "sock_receivembuf ignores no iovec: it refuses them"
    );
    assert_eq!(
        sock_receivembuf(&s, None, 4, MsgFlags::DONTWAIT).unwrap_err(),
        Errno::EWOULDBLOCK,
        "nothing was sent"
    );
    // Empty records are records.
    assert_eq!(
        sock_send(&c, &SendMsg::new(&[b""]), MsgFlags::empty()),
        Ok(0)
    );
    let mut msg = RecvMsg::default();
    let m = sock_receivembuf(&s, Some(&mut msg), 4, MsgFlags::DONTWAIT).unwrap();
    assert!(m.is_empty() && msg.flags.contains(MsgFlags::EOR));
    drop((c, s));
    assert_clean(&k);
}

#[test]
fn records_scatter_gather_truncate_and_peek() {
    let k = kpi();
    let (c, s) = pair(&k, SockType::SEQPACKET);
    let iov: [&[u8]; 3] = [b"abc", b"", b"defgh"];
    assert_eq!(sock_send(&c, &SendMsg::new(&iov), MsgFlags::empty()), Ok(8));
    send_now(&c, b"second").unwrap();
    send_now(&c, b"third record").unwrap();

    let (mut x, mut y) = ([0u8; 2], [0u8; 3]);
    let mut iov = [&mut x[..], &mut y[..]];
    let mut msg = RecvMsg::new(&mut iov);
    assert_eq!(sock_receive(&s, &mut msg, MsgFlags::PEEK), Ok(5));
    assert!(msg.flags.contains(MsgFlags::TRUNC));
    assert_eq!(
        sock_receive(&s, &mut msg, MsgFlags::TRUNC),
        Ok(8),
        "MSG_TRUNC asks for the record's full length"
    );
    assert!(msg.flags.contains(MsgFlags::TRUNC | MsgFlags::EOR));
    assert_eq!((&x, &y), (b"ab", b"cde"), "scattered over both buffers");

    let mut big = [0u8; 64];
    let mut iov = [&mut big[..]];
    let mut msg = RecvMsg::new(&mut iov);
    assert_eq!(sock_receive(&s, &mut msg, MsgFlags::empty()), Ok(6));
    assert!(
        !msg.flags.contains(MsgFlags::TRUNC),
        "the rest was discarded"
    );
    assert_eq!(&big[..6], b"second");
    assert_eq!(
        recv_now(&s, 5).unwrap(),
        (b"third".to_vec(), MsgFlags::TRUNC | MsgFlags::EOR)
    );
    assert_eq!(recv_now(&s, 5).unwrap_err(), Errno::EWOULDBLOCK);
    drop((c, s));
    assert_clean(&k);
}

#[test]
fn datagram_senders_address_is_truncated_too() {
    let k = kpi();
    let srv = sock(&k, SockType::DGRAM);
    sock_bind(&srv, &addr("srv")).unwrap();
    let cli = sock(&k, SockType::DGRAM);
    sock_bind(&cli, &addr("a-long-client-name")).unwrap();
    let to = addr("srv");
    sock_send(&cli, &SendMsg::new(&[b"hi"]).to(&to), MsgFlags::empty()).unwrap();
    let anon = sock(&k, SockType::DGRAM);
    sock_send(&anon, &SendMsg::new(&[b"yo"]).to(&to), MsgFlags::empty()).unwrap();

    let mut name = [0u8; 6];
    let mut buf = [0u8; 8];
    let mut iov = [&mut buf[..]];
    let mut msg = RecvMsg::new(&mut iov).with_name(&mut name);
    assert_eq!(sock_receive(&srv, &mut msg, MsgFlags::empty()), Ok(2));
    assert_eq!(msg.namelen, 20);
    assert_eq!(&name[2..], b"a-lo");
    let mut msg = RecvMsg::new(&mut iov).with_name(&mut name);
    assert_eq!(sock_receive(&srv, &mut msg, MsgFlags::empty()), Ok(2));
    assert_eq!(msg.namelen, 0, "a sender without a name");
    drop((srv, cli, anon));
    assert_clean(&k);
}

#[test]
fn ewouldblock_and_partial_counts() {
    let k = kpi();
    let (c, s) = pair(&k, SockType::STREAM);
    assert_eq!(recv_now(&s, 8).unwrap_err(), Errno::EWOULDBLOCK);
    set_int(&c, SockOpt::SndBuf, 1);
    let big = vec![1u8; 10_000];
    let n = send_now(&c, &big).unwrap();
    assert!(n > 0 && n < big.len(), "a partial stream send: {n}");
    assert_eq!(send_now(&c, &big), Err(Errno::EWOULDBLOCK));
    let (sc, ss) = pair(&k, SockType::SEQPACKET);
    set_int(&sc, SockOpt::SndBuf, 1);
    assert_eq!(
        send_now(&sc, &big),
        Err(Errno::EMSGSIZE),
        "a record is never partial"
    );
    drop((c, s, sc, ss));
    assert_clean(&k);
}

#[test]
fn waitall_waits_for_everything_in_pieces() {
    let k = kpi();
    let (c, s) = pair(&k, SockType::STREAM);
    thread::scope(|sc| {
        sc.spawn(|| {
            for piece in [&b"ab"[..], b"cde", b"fghij"] {
                sock_send(&c, &SendMsg::new(&[piece]), MsgFlags::empty()).unwrap();
                thread::yield_now();
            }
        });
        let mut buf = [0u8; 10];
        let mut iov = [&mut buf[..]];
        let n = sock_receive(&s, &mut RecvMsg::new(&mut iov), MsgFlags::WAITALL).unwrap();
        assert_eq!(n, 10);
        assert_eq!(&buf, b"abcdefghij");
    });
    // WAITALL stops at end of file with what there is.
    send_now(&c, b"xyz").unwrap();
    sock_shutdown(&c, SHUT_WR).unwrap();
    let m = sock_receivembuf(&s, None, 100, MsgFlags::WAITALL).unwrap();
    assert_eq!(m.to_vec(), b"xyz");
    drop((c, s));
    assert_clean(&k);
}

#[test]
fn a_blocking_receive_returns_a_partial_count_when_interrupted_or_timed_out() {
    for interrupted in [true, false] {
        let park = FakePark::new();
        let k = park.kpi();
        let (c, s) = pair(&k, SockType::STREAM);
        send_now(&c, b"abc").unwrap();
        if interrupted {
            park.on_park(|_| Err(EINTR));
        } else {
            set_time(&s, SockOpt::RcvTimeo, Duration::from_secs(2));
        }
        let m = sock_receivembuf(&s, None, 10, MsgFlags::WAITALL).unwrap();
        assert_eq!(m.to_vec(), b"abc");
        assert!(park.parks() >= 1);
        let got = sock_receivembuf(&s, None, 10, MsgFlags::WAITALL);
        assert_eq!(
            got.unwrap_err(),
            if interrupted {
                Errno::EINTR
            } else {
                Errno::EWOULDBLOCK
            }
        );
        drop((c, s));
        assert_clean(&k);
    }
}

#[test]
fn an_error_after_a_partial_receive_is_kept_for_the_next_call() {
    let park = FakePark::new();
    let k = park.kpi();
    let (c, s) = pair(&k, SockType::STREAM);
    send_now(&s, b"unread by c").unwrap();
    send_now(&c, b"abc").unwrap();
    // While `s` waits for more, `c` closes with data unread: a reset.
    let closing = std::sync::Mutex::new(Some(c));
    park.on_park(move |_| {
        drop(closing.lock().unwrap().take());
        Ok(())
    });
    let mut buf = [0u8; 64];
    let mut iov = [&mut buf[..]];
    let mut msg = RecvMsg::new(&mut iov);
    assert_eq!(sock_receive(&s, &mut msg, MsgFlags::WAITALL), Ok(3));
    assert_eq!(&buf[..3], b"abc");
    let mut iov = [&mut buf[..]];
    assert_eq!(
        sock_receive(&s, &mut RecvMsg::new(&mut iov), MsgFlags::empty()),
        Err(Errno::ECONNRESET),
        "the reset met after the bytes"
    );
    let mut iov = [&mut buf[..]];
    assert_eq!(
        sock_receive(&s, &mut RecvMsg::new(&mut iov), MsgFlags::empty()),
        Ok(0),
        "then end of file"
    );
    drop(s);
    assert_clean(&k);
}

#[test]
fn peek_leaves_the_bytes_for_the_next_receive() {
    for ty in CONN_TYPES {
        let k = kpi();
        let (c, s) = pair(&k, ty);
        send_now(&c, b"hello").unwrap();
        send_now(&c, b"world").unwrap();
        let peeked = sock_receivembuf(&s, None, 3, MsgFlags::PEEK).unwrap();
        assert_eq!(peeked.to_vec(), b"hel", "{ty}");
        let mut buf = [0u8; 32];
        let mut iov = [&mut buf[..]];
        let mut msg = RecvMsg::new(&mut iov);
        let n = sock_receive(&s, &mut msg, MsgFlags::PEEK | MsgFlags::DONTWAIT).unwrap();
        let want: &[u8] = if ty == SockType::STREAM {
            b"helloworld"
        } else {
            b"hello"
        };
        assert_eq!(&buf[..n], want, "{ty}");
        let all = sock_receivembuf(&s, None, 32, MsgFlags::DONTWAIT).unwrap();
        assert_eq!(all.to_vec(), want, "{ty}: peeking consumed nothing");
        drop((c, s));
        assert_clean(&k);
    }
}
