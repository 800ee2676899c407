//! References and closing: `sock_retain` across `sock_close`, and close and reset races on
//! many threads. After each test no socket, name or chain is left.

mod common;

use common::*;
use ksock::{Domain, Errno, MsgFlags, SockType};
use ksock_kpi::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

fn bound(k: &Kpi) -> Vec<ksock::SockAddr> {
    k.stack().family(Domain::LOCAL).unwrap().bound()
}

#[test]
fn a_retained_listener_survives_sock_close() {
    let k = kpi();
    let (up, seen) = counting();
    let l = sock_socket(&k, Domain::LOCAL, SockType::SEQPACKET, 0, Some(up)).unwrap();
    sock_bind(&l, &addr("keep")).unwrap();
    sock_listen(&l, 4).unwrap();
    let r = sock_retain(&l);
    assert!(r.same_socket(&l));
    sock_close(l);

    assert_eq!(bound(&k), vec![addr("keep")], "the name stays bound");
    let c = sock(&k, SockType::SEQPACKET);
    sock_connect(&c, &addr("keep"), MsgFlags::empty()).unwrap();
    assert!(seen.calls() >= 1, "its upcall still fires");
    let (a, _) = sock_accept(&r, None, MsgFlags::DONTWAIT, None).unwrap();
    send_now(&c, b"through the retained listener").unwrap();
    assert_eq!(
        recv_now(&a, 64).unwrap().0,
        b"through the retained listener"
    );
    assert_eq!(seen.closed(), 0);

    sock_release(r);
    assert_eq!(seen.closed(), 1, "the close upcall came at the release");
    assert!(bound(&k).is_empty(), "the name is free at the last release");
    let late = sock(&k, SockType::SEQPACKET);
    assert_eq!(
        sock_connect(&late, &addr("keep"), MsgFlags::DONTWAIT),
        Err(Errno::ECONNREFUSED)
    );
    drop((c, a, late));
    assert_clean(&k);
}

#[test]
fn a_retained_connection_survives_sock_close_until_the_last_release() {
    let k = kpi();
    let (c, s) = pair(&k, SockType::STREAM);
    let r1 = sock_retain(&s);
    let r2 = sock_retain(&r1);
    sock_close(s);
    assert_eq!(k.stack().socket_count(), 2);
    send_now(&c, b"to r1").unwrap();
    assert_eq!(
        recv_now(&r2, 64).unwrap().0,
        b"to r1",
        "one socket, two references"
    );
    assert_eq!(
        recv_now(&c, 8).unwrap_err(),
        Errno::EWOULDBLOCK,
        "the peer sees no end of file"
    );
    send_now(&r1, b"back").unwrap();
    assert_eq!(recv_now(&c, 64).unwrap().0, b"back");
    sock_release(r1);
    assert!(sock_isconnected(&r2));
    send_now(&c, b"left unread").unwrap();
    sock_release(r2);
    assert_eq!(
        recv_now(&c, 8).unwrap_err(),
        Errno::ECONNRESET,
        "closed with data unread"
    );
    assert_eq!(recv_now(&c, 8).unwrap().0, b"", "then end of file");
    assert_eq!(send_now(&c, b"x"), Err(Errno::EPIPE));
    drop(c);
    assert_clean(&k);
}

#[test]
fn dropping_the_last_reference_closes_like_sock_close() {
    let k = kpi();
    let (c, s) = pair(&k, SockType::SEQPACKET);
    drop(s);
    assert_eq!(recv_now(&c, 8).unwrap().0, b"");
    drop(c);
    assert_clean(&k);
}

/// A small deterministic generator for the threads' choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[track_caller]
fn allowed(r: &Result<impl Sized, Errno>, ok: &[Errno]) {
    if let Err(e) = r {
        assert!(ok.contains(e), "unexpected {e:#}");
    }
}

/// Threads share a socket through retained references and use it while each releases its
/// reference at a point of its own; its peer keeps sending chains. Whatever the order, the
/// socket closes once, at the last release, and nothing is left.
#[test]
fn retained_references_released_while_in_use_on_many_threads() {
    const THREADS: usize = 4;
    for (round, ty) in (0..40).zip([SockType::STREAM, SockType::SEQPACKET].iter().cycle()) {
        let k = kpi();
        let w = Watch::new();
        let (up, seen) = counting();
        let l = listener(&k, *ty, "shared", 4);
        let c = sock(&k, *ty);
        sock_connect(&c, &addr("shared"), MsgFlags::empty()).unwrap();
        let (s, _) = sock_accept(&l, None, MsgFlags::empty(), Some(up)).unwrap();
        sock_close(l);
        let refs: Vec<Sock> = (0..THREADS).map(|_| sock_retain(&s)).collect();
        let go = Arc::new(Barrier::new(THREADS + 2));
        thread::scope(|sc| {
            for (t, r) in refs.into_iter().enumerate() {
                let go = go.clone();
                sc.spawn(move || {
                    let mut rng = Rng(0x9E37_79B9 ^ (round * 31 + t as u64 + 1));
                    go.wait();
                    for _ in 0..rng.below(60) {
                        if rng.below(2) == 0 {
                            let got = sock_receivembuf(&r, None, 700, MsgFlags::DONTWAIT);
                            allowed(&got, &[Errno::EWOULDBLOCK]);
                        } else {
                            allowed(&send_now(&r, b"pong"), &[Errno::EWOULDBLOCK]);
                        }
                    }
                    sock_release(r);
                });
            }
            let (go2, w2) = (go.clone(), w.clone());
            let c = &c;
            sc.spawn(move || {
                go2.wait();
                for i in 0..100u8 {
                    let m = Mbuf::from(w2.bytes(600, i));
                    let r = sock_sendmbuf(c, None, m, MsgFlags::DONTWAIT);
                    allowed(&r, &[Errno::EWOULDBLOCK, Errno::EPIPE, Errno::ECONNRESET]);
                    let got = sock_receivembuf(c, None, 64, MsgFlags::DONTWAIT);
                    allowed(&got, &[Errno::EWOULDBLOCK, Errno::ECONNRESET]);
                }
            });
            go.wait();
            sock_close(s);
        });
        assert_eq!(seen.closed(), 1, "round {round}: the close upcall ran once");
        assert_eq!(
            k.stack().socket_count(),
            1,
            "round {round}: only the client is left"
        );
        drop(c);
        assert_clean(&k);
        assert_eq!(w.live(), 0, "round {round}: a chain outlived the sockets");
    }
}

/// Pairs are reset (closed with data unread) while other threads read, write and shut them
/// down: every call returns data, end of file or an error the SPEC allows, and everything
/// is freed in the end.
#[test]
fn reset_races_on_many_threads() {
    const PAIRS: usize = 8;
    for ty in [SockType::STREAM, SockType::SEQPACKET] {
        let k = kpi();
        let w = Watch::new();
        let pairs: Vec<(Sock, Sock)> = (0..PAIRS)
            .map(|i| {
                let l = listener(&k, ty, &format!("reset{i}"), 1);
                let c = sock(&k, ty);
                sock_connect(&c, &addr(&format!("reset{i}")), MsgFlags::empty()).unwrap();
                let s = sock_accept(&l, None, MsgFlags::empty(), None).unwrap().0;
                (c, s)
            })
            .collect();
        let eofs = AtomicUsize::new(0);
        let go = Barrier::new(3 * PAIRS);
        thread::scope(|sc| {
            for (i, (c, s)) in pairs.into_iter().enumerate() {
                let (go, w, eofs) = (&go, &w, &eofs);
                let s2 = sock_retain(&s);
                // The closer: fills its peer's side, then closes with data unread.
                sc.spawn(move || {
                    let _ =
                        sock_sendmbuf(&s, None, Mbuf::from(w.bytes(900, 1)), MsgFlags::DONTWAIT);
                    go.wait();
                    sock_close(s);
                    sock_release(s2);
                });
                // The reader: drains until end of file.
                let c2 = sock_retain(&c);
                sc.spawn(move || {
                    go.wait();
                    loop {
                        match sock_receivembuf(&c2, None, 512, MsgFlags::empty()) {
                            // No empty record is ever sent: empty is end of file.
                            Ok(m) if m.is_empty() => break,
                            Ok(_) => {}
                            Err(e) => {
                                assert_eq!(e, Errno::ECONNRESET, "pair {i}");
                            }
                        }
                    }
                    eofs.fetch_add(1, Ordering::SeqCst);
                });
                // The writer: sends until the peer is gone.
                sc.spawn(move || {
                    go.wait();
                    for n in 0..1000u32 {
                        let m = Mbuf::from(w.bytes(700, n as u8));
                        match sock_sendmbuf(&c, None, m, MsgFlags::DONTWAIT) {
                            Ok(_) => {}
                            Err(e) if e == Errno::EWOULDBLOCK => thread::yield_now(),
                            Err(e) => {
                                assert!(
                                    e == Errno::EPIPE || e == Errno::ECONNRESET,
                                    "pair {i}: {e:#}"
                                );
                                break;
                            }
                        }
                    }
                    if i % 2 == 0 {
                        allowed(&sock_shutdown(&c, SHUT_RDWR), &[Errno::ENOTCONN]);
                    }
                });
            }
        });
        assert_eq!(
            eofs.load(Ordering::SeqCst),
            PAIRS,
            "{ty}: every reader saw the end"
        );
        assert_clean(&k);
        assert_eq!(w.live(), 0, "{ty}: a chain outlived the sockets");
    }
}

/// Clients connect (in the background when the backlog is full) while an acceptor takes
/// connections and the listener is closed under them: each client ends up connected or
/// refused, never stuck connecting, and nothing is left.
#[test]
fn a_listener_closed_under_connecting_clients() {
    const CLIENTS: usize = 8;
    for round in 0..20 {
        let k = kpi();
        let l = listener(&k, SockType::STREAM, "closing", 2);
        let go = Barrier::new(CLIENTS + 2);
        let (connected, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
        thread::scope(|sc| {
            for _ in 0..CLIENTS {
                let (k, go, connected, refused) = (&k, &go, &connected, &refused);
                sc.spawn(move || {
                    let (up, seen) = counting();
                    let c = sock_socket(k, Domain::LOCAL, SockType::STREAM, 0, Some(up)).unwrap();
                    go.wait();
                    match sock_connect(&c, &addr("closing"), MsgFlags::DONTWAIT) {
                        Ok(()) => {
                            connected.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) if e == Errno::EINPROGRESS => {
                            // The outcome comes later; the upcall says when.
                            while sock_connectwait(&c, std::time::Duration::from_secs(30))
                                == Err(Errno::EINPROGRESS)
                            {}
                            // The upcall runs on the thread that settled the connect,
                            // after the state changed: it may still be on its way.
                            let t0 = std::time::Instant::now();
                            while seen.calls() == 0 && t0.elapsed().as_secs() < 10 {
                                thread::yield_now();
                            }
                            assert!(seen.calls() >= 1, "the outcome fired the upcall");
                            if sock_isconnected(&c) {
                                connected.fetch_add(1, Ordering::SeqCst);
                            } else {
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => {
                            assert_eq!(e, Errno::ECONNREFUSED);
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
            // The acceptor's reference and the listener's own are given up at moments
            // that race with the clients: the last one closes the listener.
            let (go, r) = (&go, sock_retain(&l));
            sc.spawn(move || {
                go.wait();
                for _ in 0..round % 5 {
                    if let Ok((a, _)) = sock_accept(&r, None, MsgFlags::DONTWAIT, None) {
                        drop(a);
                    }
                    thread::yield_now();
                }
                sock_release(r);
            });
            go.wait();
            for _ in 0..round % 3 {
                thread::yield_now();
            }
            sock_close(l);
        });
        assert_eq!(
            connected.load(Ordering::SeqCst) + refused.load(Ordering::SeqCst),
            CLIENTS
        );
        assert_clean(&k);
    }
}
