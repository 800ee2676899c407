//! An error carries its reason from where it happens: the family or the core says why an
//! operation fails (`OpCtx::fail`), the socket keeps it with the errno, and
//! `Socket::error_reason` gives it back while that errno is the socket's last failure.

mod common;
use common::*;
use ksock::testing::LaterFamily;
use ksock::*;

#[track_caller]
fn fails_with(s: &Socket, r: Result<impl std::fmt::Debug>, e: Errno, why: &str) {
    assert_eq!(r.map(|_| ()).unwrap_err(), e);
    assert_eq!(s.error_reason(e), Some(why), "{e:#}");
}

#[test]
fn connect_refusals_say_which_one() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let c = sock(&st, ty);
        fails_with(
            &c,
            c.try_connect(&addr("nobody")),
            Errno::ECONNREFUSED,
            "no socket is bound to that name",
        );
        let b = sock(&st, ty);
        b.bind(&addr("bound")).unwrap();
        fails_with(
            &c,
            c.try_connect(&addr("bound")),
            Errno::ECONNREFUSED,
            "the name is bound but not listening",
        );
        let other = if ty == SockType::STREAM {
            SockType::SEQPACKET
        } else {
            SockType::STREAM
        };
        let l = listener(&st, other, "other", 1);
        fails_with(
            &c,
            c.try_connect(&addr("other")),
            Errno::EPROTOTYPE,
            "the listener is of another type",
        );
        let full = listener(&st, ty, "full", 1);
        let first = sock(&st, ty);
        first.try_connect(&addr("full")).unwrap();
        fails_with(
            &c,
            c.try_connect(&addr("full")),
            Errno::EAGAIN,
            "the listener's backlog is full",
        );
        c.try_connect(&addr("bound")).unwrap_err();
        assert_eq!(
            c.error_reason(Errno::EAGAIN),
            None,
            "another failure replaced it"
        );
        drop((b, l, full, first, c));
    }
    assert_clean(&st);
}

#[test]
fn the_core_says_why_its_table_refuses() {
    let st = Stack::new();
    let s = sock(&st, SockType::STREAM);
    fails_with(&s, s.listen(1), Errno::EINVAL, "the socket is not bound");
    fails_with(
        &s,
        s.shutdown(Shutdown::Both),
        Errno::ENOTCONN,
        "the socket is not connected",
    );
    s.bind(&addr("s")).unwrap();
    fails_with(
        &s,
        s.bind(&addr("t")),
        Errno::EINVAL,
        "the socket is already bound",
    );
    fails_with(
        &s,
        s.try_accept(),
        Errno::EINVAL,
        "the socket is not listening",
    );
    s.listen(1).unwrap();
    fails_with(
        &s,
        s.try_connect(&addr("s")),
        Errno::EINVAL,
        "a listening socket cannot connect",
    );
    let (c, _srv) = connected(&st, SockType::STREAM, "conn");
    fails_with(
        &c,
        c.try_connect(&addr("s")),
        Errno::EISCONN,
        "the socket is already connected",
    );
    let d = sock(&st, SockType::DGRAM);
    fails_with(
        &d,
        d.listen(1),
        Errno::EOPNOTSUPP,
        "datagram sockets do not listen",
    );
    fails_with(
        &d,
        d.try_accept(),
        Errno::EOPNOTSUPP,
        "datagram sockets do not listen",
    );
    drop((s, c, _srv, d));
    assert_clean(&st);
}

#[test]
fn bind_refusals() {
    let st = Stack::new();
    for ty in TYPES {
        let a = sock(&st, ty);
        a.bind(&addr("taken")).unwrap();
        let b = sock(&st, ty);
        fails_with(
            &b,
            b.bind(&addr("taken")),
            Errno::EADDRINUSE,
            "another socket is bound to that name",
        );
        fails_with(
            &a,
            a.bind(&addr("again")),
            Errno::EINVAL,
            "the socket is already bound",
        );
        drop((a, b));
    }
    assert_clean(&st);
}

#[test]
fn broken_pipes_say_whose_doing() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let (c, s) = connected(&st, ty, "p");
        c.shutdown(Shutdown::Write).unwrap();
        fails_with(
            &c,
            send_now(&c, b"x"),
            Errno::EPIPE,
            "this socket's write side is shut down",
        );
        // Its own shutdown comes first, whatever the peer did since.
        s.shutdown(Shutdown::Read).unwrap();
        fails_with(
            &c,
            send_now(&c, b"x"),
            Errno::EPIPE,
            "this socket's write side is shut down",
        );
        drop((c, s));

        let (c, s) = connected(&st, ty, "p");
        s.shutdown(Shutdown::Read).unwrap();
        fails_with(
            &c,
            send_now(&c, b"x"),
            Errno::EPIPE,
            "the peer has shut its read side",
        );
        drop(s);
        fails_with(&c, send_now(&c, b"x"), Errno::EPIPE, "the peer is gone");
        drop(c);
    }
    assert_clean(&st);
}

#[test]
fn resets_and_record_sizes() {
    let st = Stack::new();
    // The peer closes with what this socket sent it unread.
    let (c, s) = connected(&st, SockType::SEQPACKET, "r");
    send_now(&c, b"unread").unwrap();
    drop(s);
    fails_with(
        &c,
        recv_now(&c, 16),
        Errno::ECONNRESET,
        "the peer closed with unread data",
    );
    let big = vec![0u8; 1 << 20];
    let (c3, _s3) = connected(&st, SockType::SEQPACKET, "r3");
    fails_with(
        &c3,
        send_now(&c3, &big),
        Errno::EMSGSIZE,
        "the record is larger than the send buffer",
    );
    // A listener that closes resets what it never accepted.
    let l = listener(&st, SockType::STREAM, "gone", 2);
    let w = sock(&st, SockType::STREAM);
    w.try_connect(&addr("gone")).unwrap();
    drop(l);
    fails_with(
        &w,
        recv_now(&w, 16),
        Errno::ECONNRESET,
        "the listener closed before accepting the connection",
    );
    drop((c, c3, _s3, w));
    assert_clean(&st);
}

#[test]
fn datagram_refusals() {
    let st = Stack::new();
    let a = sock(&st, SockType::DGRAM);
    fails_with(
        &a,
        send_now(&a, b"x"),
        Errno::ENOTCONN,
        "the socket is not connected and no address was given",
    );
    fails_with(
        &a,
        a.sendmsg(&mut &b"x"[..], Some(&addr("none")), MsgFlags::DONTWAIT),
        Errno::ECONNREFUSED,
        "no socket is bound to that name",
    );
    let b = sock(&st, SockType::DGRAM);
    b.bind(&addr("b")).unwrap();
    let c = sock(&st, SockType::DGRAM);
    c.bind(&addr("c")).unwrap();
    b.connect(&addr("c")).unwrap();
    fails_with(
        &a,
        a.connect(&addr("b")),
        Errno::EPERM,
        "the receiver is connected to another socket",
    );
    a.connect(&addr("c")).unwrap();
    drop(c);
    fails_with(
        &a,
        send_now(&a, b"x"),
        Errno::ECONNREFUSED,
        "the peer has closed",
    );
    let s = sock(&st, SockType::STREAM);
    s.bind(&addr("s")).unwrap();
    fails_with(
        &a,
        a.connect(&addr("s")),
        Errno::EPROTOTYPE,
        "the name is bound to a socket of another type",
    );
    drop((a, b, s));
    assert_clean(&st);
}

#[test]
fn a_failure_without_a_reason_forgets_the_last_one() {
    let st = Stack::new();
    let c = sock(&st, SockType::STREAM);
    c.try_connect(&addr("nobody")).unwrap_err();
    assert_eq!(
        c.error_reason(Errno::ECONNREFUSED),
        Some("no socket is bound to that name")
    );
    assert_eq!(
        c.error_reason(Errno::EINVAL),
        None,
        "only for its own errno"
    );
    // Not a local name: refused before any reason is given.
    let inet: SockAddr = "127.0.0.1:80"
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .into();
    assert_eq!(c.try_connect(&inet), Err(Errno::EINVAL));
    assert_eq!(c.error_reason(Errno::ECONNREFUSED), None);
    assert_eq!(c.error_reason(Errno::EINVAL), None);
    // A success leaves it as it was; a closed socket has none.
    c.try_connect(&addr("nobody")).unwrap_err();
    c.set_nonblocking(true).unwrap();
    assert!(c.error_reason(Errno::ECONNREFUSED).is_some());
    let d = c.clone();
    c.hangup();
    assert_eq!(d.error_reason(Errno::ECONNREFUSED), None);
    drop((c, d));
    assert_clean(&st);
}

#[test]
fn a_family_gives_its_own_reasons() {
    let st = Stack::empty();
    st.register_family(LaterFamily::new()).unwrap();
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    let refused: SockAddr = "10.0.0.1:1".parse::<std::net::SocketAddr>().unwrap().into();
    fails_with(
        &s,
        s.try_connect(&refused),
        Errno::ECONNREFUSED,
        "the host refused the connection",
    );
}

#[test]
fn a_connect_the_family_ends_later_keeps_its_reason() {
    let st = Stack::empty();
    let fam = LaterFamily::new();
    st.register_family(fam.clone()).unwrap();
    let to: SockAddr = "10.0.0.1:80"
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .into();
    // Reported by the next connect call.
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    assert_eq!(s.try_connect(&to), Err(Errno::EINPROGRESS));
    fails_with(
        &s,
        s.try_connect(&to),
        Errno::EALREADY,
        "a connect is already in progress",
    );
    assert_eq!(
        fam.fail(Errno::ECONNREFUSED, "the host reset the connection"),
        1
    );
    fails_with(
        &s,
        s.try_connect(&to),
        Errno::ECONNREFUSED,
        "the host reset the connection",
    );
    // Read back as the kernel face does.
    let k = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    assert_eq!(k.start_connect(&to), Err(Errno::EINPROGRESS));
    fam.fail(Errno::ECONNREFUSED, "the host reset the connection");
    assert_eq!(k.connect_result(), Err(Errno::ECONNREFUSED));
    assert_eq!(
        k.error_reason(Errno::ECONNREFUSED),
        Some("the host reset the connection")
    );
    // An outcome without a reason has none.
    let n = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    assert_eq!(n.try_connect(&to), Err(Errno::EINPROGRESS));
    fam.complete(Err(Errno::ECONNREFUSED));
    assert_eq!(n.try_connect(&to), Err(Errno::ECONNREFUSED));
    assert_eq!(n.error_reason(Errno::ECONNREFUSED), None);
}
