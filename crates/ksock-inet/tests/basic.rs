//! The inet family through the core's Rust API on its loopback.

use ksock::{Domain, Errno, SockAddr, SockType, Socket, Stack};
use std::sync::Arc;
use std::thread;

fn stack() -> (Stack, Arc<ksock_inet::InetFamily>) {
    let st = Stack::new();
    let f = ksock_inet::install(&st).unwrap();
    (st, f)
}

fn a(s: &str) -> SockAddr {
    SockAddr::Inet(s.parse().unwrap())
}

fn listener(st: &Stack, d: Domain, at: &str, backlog: usize) -> Socket {
    let l = st.socket(d, SockType::STREAM, 0).unwrap();
    l.bind(&a(at)).unwrap();
    l.listen(backlog).unwrap();
    l
}

#[test]
fn tcp_echo_v4_and_v6() {
    let (st, f) = stack();
    for (d, at) in [(Domain::INET, "127.0.0.1:0"), (Domain::INET6, "[::1]:0")] {
        let l = listener(&st, d, at, 4);
        let to = l.local_addr().unwrap();
        let c = st.socket(d, SockType::STREAM, 0).unwrap();
        c.connect(&to).unwrap();
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
        let msg = vec![7u8; 300_000];
        let m2 = msg.clone();
        let w = thread::spawn(move || {
            let mut off = 0;
            while off < m2.len() {
                off += c.send(&m2[off..]).unwrap();
            }
            c.shutdown(ksock::Shutdown::Write).unwrap();
            c
        });
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = s.recv(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, msg);
        let c = w.join().unwrap();
        drop((s, c, l));
    }
    settle(&f);
}

fn settle(f: &ksock_inet::InetFamily) {
    for _ in 0..200 {
        f.poll();
        if f.socket_count() == 0 && f.port_count() == 0 {
            return;
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "leaked: {} smoltcp sockets, {} ports: {:#?}",
        f.socket_count(),
        f.port_count(),
        f.sockets()
    );
}

#[test]
fn refused_connect_and_nonblocking_connect() {
    let (st, f) = stack();
    let c = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    assert_eq!(c.connect(&a("127.0.0.1:9")), Err(Errno::ECONNREFUSED));
    drop(c);
    let l = listener(&st, Domain::INET, "127.0.0.1:0", 4);
    let c = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    c.set_nonblocking(true).unwrap();
    // The loopback finishes the handshake inside the call; the call says EINPROGRESS all
    // the same (as Linux), and the outcome is there at once.
    assert_eq!(c.connect(&l.local_addr().unwrap()), Err(Errno::EINPROGRESS));
    assert_eq!(c.connect_result(), Ok(()));
    drop((c, l));
    settle(&f);
}

#[test]
fn backlog_admits_n_then_holds_the_rest_without_reset() {
    let (st, f) = stack();
    let n = 8;
    let l = listener(&st, Domain::INET, "127.0.0.1:0", n);
    let to = l.local_addr().unwrap();
    let mut cs = Vec::new();
    for _ in 0..n + 3 {
        let c = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
        c.set_nonblocking(true).unwrap();
        // Every nonblocking connect is EINPROGRESS (as Linux), even when the loopback
        // finished the handshake inside the call.
        assert_eq!(c.connect(&to), Err(Errno::EINPROGRESS));
        let r = c.connect_result();
        cs.push((c, r));
    }
    let done = cs.iter().filter(|(_, r)| r.is_ok()).count();
    assert_eq!(done, n, "{:?}", cs.iter().map(|x| x.1).collect::<Vec<_>>());
    for (_, r) in &cs[n..] {
        assert_eq!(*r, Err(Errno::EINPROGRESS));
    }
    assert_eq!(f.stats().syn_dropped, 3);
    for (c, _) in &cs[..n] {
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap(), "accepted in order");
        drop(s);
    }
    // The rest retransmit their SYN (after smoltcp's first RTO) and get in.
    for _ in 0..3 {
        let (_s, _) = l.accept().unwrap();
    }
    drop((cs, l));
    settle(&f);
}

#[test]
fn udp_exchange_with_addresses() {
    let (st, f) = stack();
    let srv = st.socket(Domain::INET, SockType::DGRAM, 0).unwrap();
    srv.bind(&a("127.0.0.1:0")).unwrap();
    let to = srv.local_addr().unwrap();
    let c = st.socket(Domain::INET, SockType::DGRAM, 0).unwrap();
    c.send_to(b"ping", &to).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = srv.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    // The client was bound on every address by its first send; it sent from the loopback.
    let SockAddr::Inet(mine) = c.local_addr().unwrap() else {
        panic!()
    };
    assert_eq!(from, a(&format!("127.0.0.1:{}", mine.port())));
    srv.send_to(b"pong", &from).unwrap();
    let (n, from2) = c.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], &from2), (&b"pong"[..], &to));
    let big = vec![0u8; 70_000];
    assert_eq!(c.send_to(&big, &from2), Err(Errno::EMSGSIZE));
    drop((srv, c));
    settle(&f);
}
