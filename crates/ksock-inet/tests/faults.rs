//! Bad input and faults: a clear errno each time, no stuck interface, and nothing leaked
//! (the interface's sockets and the port table are empty after each scenario).

use ksock::{Domain, Errno, OptVal, SockAddr, SockOpt, SockType, Socket, Stack};
use ksock_inet::InetFamily;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn stack() -> (Stack, Arc<InetFamily>) {
    let st = Stack::new();
    let f = ksock_inet::install(&st).unwrap();
    (st, f)
}

fn a(s: &str) -> SockAddr {
    SockAddr::Inet(s.parse().unwrap())
}

fn tcp(st: &Stack) -> Socket {
    st.socket(Domain::INET, SockType::STREAM, 0).unwrap()
}

fn listener(st: &Stack, backlog: usize) -> Socket {
    let l = tcp(st);
    l.bind(&a("127.0.0.1:0")).unwrap();
    l.listen(backlog).unwrap();
    l
}

/// Waits (briefly: closing handshakes on the loopback end within the call that starts
/// them, or at the next timer tick) for the interface to hold nothing.
fn assert_empty(f: &InetFamily) {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        f.poll();
        if f.socket_count() == 0 && f.port_count() == 0 {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "leaked {} smoltcp sockets and {} ports: {:#?}",
        f.socket_count(),
        f.port_count(),
        f.sockets()
    );
}

#[test]
fn malformed_and_unusable_addresses() {
    let (st, f) = stack();
    let fam = st.family_by_name("inet").unwrap();
    for bad in ["1.2.3.4", "1.2.3.4:65536", "[::1]", "nohost:80", ""] {
        assert_eq!(
            fam.parse_addr(bad.as_bytes()),
            Err(Errno::EINVAL),
            "{bad:?}"
        );
    }
    let s = tcp(&st);
    assert_eq!(s.bind(&a("10.1.2.3:80")), Err(Errno::EADDRNOTAVAIL));
    assert_eq!(
        s.bind(&a("[::1]:80")),
        Err(Errno::EAFNOSUPPORT),
        "v6 on AF_INET"
    );
    assert_eq!(
        s.bind(&SockAddr::local("x").unwrap()),
        Err(Errno::EAFNOSUPPORT)
    );
    let u = st.socket(Domain::INET, SockType::DGRAM, 0).unwrap();
    assert_eq!(u.send(b"x"), Err(Errno::EDESTADDRREQ));
    assert_eq!(
        st.socket(Domain::INET, SockType::STREAM, 17).map(drop),
        Err(Errno::EPROTONOSUPPORT)
    );
    assert_eq!(
        st.socket(Domain::INET, SockType::SEQPACKET, 0).map(drop),
        Err(Errno::ESOCKTNOSUPPORT)
    );
    drop((s, u));
    assert_empty(&f);
}

#[test]
fn a_port_in_use_and_reuseaddr() {
    let (st, f) = stack();
    let l = listener(&st, 4);
    let at = l.local_addr().unwrap();
    let s = tcp(&st);
    assert_eq!(s.bind(&at), Err(Errno::EADDRINUSE));
    let r = tcp(&st);
    r.set_option(SockOpt::ReuseAddr, OptVal::Int(1)).unwrap();
    assert_eq!(r.bind(&at), Err(Errno::EADDRINUSE), "the holder listens");
    drop((l, s, r));
    assert_empty(&f);
}

#[test]
fn connecting_to_nothing_and_a_listener_closed_with_a_full_queue() {
    let (st, f) = stack();
    let c = tcp(&st);
    assert_eq!(c.connect(&a("127.0.0.1:1")), Err(Errno::ECONNREFUSED));
    assert_eq!(c.connect(&a("127.0.0.1:0")), Err(Errno::ECONNREFUSED));
    drop(c);
    let l = listener(&st, 3);
    let to = l.local_addr().unwrap();
    let cs: Vec<Socket> = (0..3)
        .map(|_| {
            let c = tcp(&st);
            c.connect(&to).unwrap();
            c
        })
        .collect();
    drop(l);
    let mut buf = [0u8; 4];
    for c in &cs {
        assert_eq!(
            c.recv(&mut buf),
            Err(Errno::ECONNRESET),
            "never accepted: reset"
        );
        assert_eq!(c.send(b"x"), Err(Errno::EPIPE));
    }
    drop(cs);
    assert_empty(&f);
}

#[test]
fn a_peer_reset_mid_transfer() {
    let (st, f) = stack();
    let l = listener(&st, 1);
    let c = tcp(&st);
    c.connect(&l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    // The server has unread data when it closes: a reset, as Linux.
    c.send(&[1u8; 1000]).unwrap();
    s.set_option(SockOpt::Linger, OptVal::Linger(None)).unwrap();
    drop(s);
    let big = vec![0u8; 1 << 20];
    let mut saw = None;
    for _ in 0..4 {
        if let Err(e) = c.send(&big) {
            saw = Some(e);
            break;
        }
    }
    assert_eq!(saw, Some(Errno::ECONNRESET));
    assert_eq!(c.send(b"x"), Err(Errno::EPIPE));
    let mut buf = [0u8; 4];
    assert_eq!(
        c.recv(&mut buf),
        Ok(0),
        "after the reset was reported: end of file"
    );
    drop((c, l));
    assert_empty(&f);
}

#[test]
fn so_linger_zero_resets_the_peer() {
    let (st, f) = stack();
    let l = listener(&st, 1);
    let c = tcp(&st);
    c.connect(&l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_option(SockOpt::Linger, OptVal::Linger(Some(0)))
        .unwrap();
    drop(c);
    let mut buf = [0u8; 4];
    assert_eq!(s.recv(&mut buf), Err(Errno::ECONNRESET));
    drop((s, l));
    assert_empty(&f);
}

#[test]
fn thousands_of_connections_opened_and_dropped() {
    let (st, f) = stack();
    let l = listener(&st, 128);
    let to = l.local_addr().unwrap();
    for round in 0..50 {
        let mut pairs = Vec::new();
        for _ in 0..100 {
            let c = tcp(&st);
            c.connect(&to).unwrap();
            let (s, _) = l.accept().unwrap();
            pairs.push((c, s));
        }
        // Half close cleanly, half with unread data (resets), in both orders.
        for (i, (c, s)) in pairs.into_iter().enumerate() {
            if i % 2 == 0 {
                c.send(b"unread").unwrap();
            }
            if (i + round) % 3 == 0 {
                drop(s);
                drop(c);
            } else {
                drop(c);
                drop(s);
            }
        }
    }
    drop(l);
    assert_empty(&f);
    assert_eq!(st.socket_count(), 0);
}

#[test]
fn listen_binds_an_unbound_socket_and_accept_does_not() {
    let (st, f) = stack();
    let s = tcp(&st);
    assert_eq!(s.try_accept().map(drop), Err(Errno::EINVAL));
    assert_eq!(
        s.local_addr(),
        Ok(SockAddr::Unnamed),
        "accept bound nothing"
    );
    s.listen(1).unwrap();
    let SockAddr::Inet(at) = s.local_addr().unwrap() else {
        panic!("no address")
    };
    assert!((32768..=60999).contains(&at.port()), "{at}");
    drop(s);
    assert_empty(&f);
}

#[test]
fn a_passive_close_inside_one_pass_is_end_of_file_not_a_timeout() {
    let (st, f) = stack();
    let l = listener(&st, 1);
    let c = tcp(&st);
    c.connect(&l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.send(b"data").unwrap();
    c.shutdown(ksock::Shutdown::Write).unwrap();
    // CLOSE-WAIT -> LAST-ACK -> CLOSED, all within this call on the loopback.
    s.shutdown(ksock::Shutdown::Write).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(&mut buf), Ok(4));
    assert_eq!(s.recv(&mut buf), Ok(0), "end of file, not ETIMEDOUT");
    assert_eq!(c.recv(&mut buf), Ok(0));
    assert_eq!(s.get_option(SockOpt::Error), Ok(OptVal::Int(0)));
    drop((c, s, l));
    assert_empty(&f);
}

/// What one default connection's smoltcp buffers cost its account.
fn conn_cost(st: &Stack) -> usize {
    let s = tcp(st);
    let rcv = s.get_option(SockOpt::RcvBuf).unwrap();
    let snd = s.get_option(SockOpt::SndBuf).unwrap();
    match (rcv, snd) {
        (OptVal::Int(r), OptVal::Int(w)) => r as usize + w as usize,
        other => panic!("buffer sizes {other:?}"),
    }
}

#[test]
fn buffers_are_charged_to_the_account_and_come_back() {
    let (st, f) = stack();
    let cost = conn_cost(&st);
    // Room for the listener's side of two connections and the clients' side of two.
    let acct = ksock::Account::new(100, 4 * cost);
    // The account a listener has when it starts listening pays for what it admits.
    let l = tcp(&st);
    l.set_account(acct.clone()).unwrap();
    l.bind(&a("127.0.0.1:0")).unwrap();
    l.listen(8).unwrap();
    let to = l.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let c = tcp(&st);
        c.set_account(acct.clone()).unwrap();
        c.connect(&to).unwrap();
        let (srv, _) = l.accept().unwrap();
        held.push((c, srv));
    }
    assert_eq!(acct.bytes(), 4 * cost, "four connection ends charged whole");
    // The client cannot pay for a third connection: ENOBUFS, and why.
    let c = tcp(&st);
    c.set_account(acct.clone()).unwrap();
    assert_eq!(c.connect(&to), Err(Errno::ENOBUFS));
    let why = c.error_reason(Errno::ENOBUFS).unwrap_or_default();
    assert!(why.contains("limit"), "{why:?}");
    // A UDP socket's buffers are charged at bind.
    let u = st.socket(Domain::INET, SockType::DGRAM, 0).unwrap();
    u.set_account(acct.clone()).unwrap();
    assert_eq!(u.bind(&a("127.0.0.1:0")), Err(Errno::ENOBUFS));
    drop((c, u));
    // One connection closed: its bytes come back, a new one fits.
    drop(held.pop());
    let until = Instant::now() + Duration::from_secs(5);
    while acct.bytes() > 2 * cost && Instant::now() < until {
        f.poll();
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(acct.bytes(), 2 * cost);
    let c = tcp(&st);
    c.set_account(acct.clone()).unwrap();
    c.connect(&to).unwrap();
    let (srv, _) = l.accept().unwrap();
    c.send(b"fits").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(srv.recv(&mut buf).unwrap(), 4);
    drop((c, srv, held, l));
    assert_empty(&f);
    assert_eq!(acct.bytes(), 0, "every charge credited back");
}

#[test]
fn a_listener_whose_account_cannot_pay_drops_the_syn_without_a_reset() {
    let (st, f) = stack();
    let cost = conn_cost(&st);
    let poor = ksock::Account::new(100, cost - 1);
    let l = tcp(&st);
    l.set_account(poor.clone()).unwrap();
    l.bind(&a("127.0.0.1:0")).unwrap();
    l.listen(8).unwrap();
    let to = l.local_addr().unwrap();
    let c = tcp(&st);
    c.set_nonblocking(true).unwrap();
    assert_eq!(c.connect(&to), Err(Errno::EINPROGRESS));
    f.poll();
    // Not refused: the client is still trying, the listener counted the drop.
    assert_eq!(c.connect(&to), Err(Errno::EALREADY));
    assert_eq!(l.try_accept().map(drop), Err(Errno::EAGAIN));
    let details = l.info().unwrap().details;
    assert!(
        details.iter().any(|(k, v)| *k == "syn_dropped" && v != "0"),
        "{details:?}"
    );
    assert_eq!(poor.bytes(), 0);
    drop((c, l));
    assert_empty(&f);
}

#[test]
fn ended_connections_lend_their_buffers_to_new_ones_and_nothing_old_shows() {
    let (st, f) = stack();
    let l = listener(&st, 8);
    let to = l.local_addr().unwrap();
    // Ten connections end, the first five with unread data (a reset) and the rest
    // cleanly; a few of their sockets are kept, never more than a few.
    for i in 0..10 {
        let c = tcp(&st);
        c.connect(&to).unwrap();
        let (srv, _) = l.accept().unwrap();
        c.send(&[0xAB; 50_000]).unwrap();
        if i >= 5 {
            let mut buf = vec![0u8; 50_000];
            let mut got = 0;
            while got < buf.len() {
                got += srv.recv(&mut buf[got..]).unwrap();
            }
        }
        drop((c, srv));
    }
    // Every connection has ended (the listener itself has no smoltcp socket).
    let until = Instant::now() + Duration::from_secs(5);
    while f.socket_count() > 0 && Instant::now() < until {
        f.poll();
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(f.socket_count(), 0, "{:#?}", f.sockets());
    let kept = f.spare_count();
    assert!((1..=8).contains(&kept), "{kept} spare sockets");
    // New connections on reused buffers start empty: nothing of the old bytes shows.
    for _ in 0..4 {
        let c = tcp(&st);
        c.connect(&to).unwrap();
        let (srv, _) = l.accept().unwrap();
        assert_eq!(srv.nread().unwrap(), 0);
        assert_eq!(c.info().unwrap().queues.tx, 0);
        srv.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(srv.recv(&mut buf), Err(Errno::EAGAIN));
        c.send(b"fresh").unwrap();
        srv.set_nonblocking(false).unwrap();
        assert_eq!(srv.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"fresh");
        srv.send(b"back").unwrap();
        assert_eq!(c.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"back");
    }
    assert!(f.spare_count() <= 8);
    drop(l);
    assert_empty(&f);
}

#[test]
fn a_full_writer_is_writable_again_only_once_a_third_of_its_buffer_is_free() {
    use ksock::Events;
    let (st, f) = stack();
    let l = listener(&st, 8);
    let c = tcp(&st);
    c.connect(&l.local_addr().unwrap()).unwrap();
    let (srv, _) = l.accept().unwrap();
    c.set_nonblocking(true).unwrap();
    // Fill the peer's receive buffer and the writer's send buffer.
    let chunk = [7u8; 16 * 1024];
    let mut sent = 0;
    loop {
        match c.send(&chunk) {
            Ok(n) => sent += n,
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("send: {e}"),
        }
    }
    let sndbuf = match c.get_option(SockOpt::SndBuf).unwrap() {
        OptVal::Int(n) => n as usize,
        other => panic!("{other:?}"),
    };
    assert!(!c.readiness().contains(Events::OUT), "full: not writable");
    // Reading a little frees a little of the writer's buffer: still not writable (Linux
    // wakes a writer once free space is half of what is queued).
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0;
    while read < 16 * 1024 {
        read += srv.recv(&mut buf[..16 * 1024 - read]).unwrap();
    }
    for _ in 0..20 {
        f.poll();
    }
    assert!(
        !c.readiness().contains(Events::OUT),
        "{read} of {sent} bytes read, send buffer {sndbuf}: woken too early"
    );
    // Reading the rest makes it writable.
    let until = Instant::now() + Duration::from_secs(5);
    while !c.readiness().contains(Events::OUT) {
        assert!(Instant::now() < until, "never writable again");
        match srv.recv(&mut buf) {
            Ok(n) => read += n,
            Err(e) => panic!("recv: {e}"),
        }
        f.poll();
    }
    assert!(read < sent, "writable before everything was read");
    drop((c, srv, l));
    assert_empty(&f);
}
