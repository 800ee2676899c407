//! Where upcalls fire: data past the low-water mark, room to write, a connection to accept,
//! connect completed or failed, shutdown, the peer's close, the socket's own close. Each
//! upcall here looks at its socket through `sock_*` calls, which would deadlock if a lock
//! were held during the call.

mod common;

use common::*;
use ksock::{Domain, Errno, MsgFlags, OptVal, SockOpt, SockType};
use ksock_kpi::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

fn with_upcall(k: &Kpi, ty: SockType) -> (Sock, Arc<Seen>) {
    let (up, seen) = counting();
    (
        sock_socket(k, Domain::LOCAL, ty, 0, Some(up)).unwrap(),
        seen,
    )
}

/// A connected pair whose server end has a counting upcall.
fn pair_with_upcall(k: &Kpi, ty: SockType) -> (Sock, Sock, Arc<Seen>) {
    let l = listener(k, ty, "up-listener", 4);
    let c = sock(k, ty);
    sock_connect(&c, &addr("up-listener"), MsgFlags::empty()).unwrap();
    let (up, seen) = counting();
    let (s, _) = sock_accept(&l, None, MsgFlags::empty(), Some(up)).unwrap();
    sock_close(l);
    (c, s, seen)
}

#[test]
fn data_fires_the_receivers_upcall() {
    for ty in CONN_TYPES {
        let k = kpi();
        let (c, s, seen) = pair_with_upcall(&k, ty);
        assert_eq!(seen.calls(), 0, "{ty}: nothing happened yet");
        send_now(&c, b"hello").unwrap();
        assert!(seen.calls() >= 1, "{ty}");
        assert_eq!(
            seen.max_nread(),
            5,
            "{ty}: the upcall saw the bytes waiting"
        );
        drop((c, s));
        assert_clean(&k);
    }
}

#[test]
fn data_below_the_low_water_mark_does_not_fire() {
    let k = kpi();
    let (c, s, seen) = pair_with_upcall(&k, SockType::STREAM);
    set_int(&s, SockOpt::RcvLowat, 10);
    send_now(&c, b"abc").unwrap();
    send_now(&c, b"defg").unwrap();
    assert_eq!(seen.calls(), 0, "7 bytes are below a low-water mark of 10");
    send_now(&c, b"hij").unwrap();
    assert_eq!(seen.calls(), 1, "10 bytes reach it");
    assert_eq!(seen.max_nread(), 10);
    assert_eq!(recv_now(&s, 100).unwrap().0.len(), 10);
    send_now(&c, b"k").unwrap();
    assert_eq!(seen.calls(), 1);
    sock_shutdown(&c, SHUT_WR).unwrap();
    assert!(seen.calls() >= 2, "end of file is news whatever the mark");
    drop((c, s));
    assert_clean(&k);
}

#[test]
fn room_to_write_fires_the_senders_upcall() {
    for ty in CONN_TYPES {
        let k = kpi();
        let l = listener(&k, ty, "room", 4);
        let (c, seen) = with_upcall(&k, ty);
        sock_connect(&c, &addr("room"), MsgFlags::empty()).unwrap();
        let (s, _) = sock_accept(&l, None, MsgFlags::empty(), None).unwrap();
        fill(&c);
        let before = seen.calls();
        // The writer hears of room once its queue has drained to half the buffer (not at
        // every read, which would wake a fast writer once per record).
        let mut reads = 0;
        while seen.calls() == before {
            let (got, _) = recv_now(&s, 4096).unwrap();
            assert!(!got.is_empty(), "{ty}: drained without the upcall firing");
            reads += 1;
        }
        assert!(reads > 1, "{ty}: one read of a full queue is not yet room");
        drop((c, s, l));
        assert_clean(&k);
    }
}

#[test]
fn connections_to_accept_fire_the_listeners_upcall_from_many_threads() {
    const N: usize = 8;
    let k = kpi();
    let (l, seen) = with_upcall(&k, SockType::SEQPACKET);
    sock_bind(&l, &addr("many")).unwrap();
    sock_listen(&l, N as i32).unwrap();
    let go = Arc::new(Barrier::new(N));
    let clients: Vec<Sock> = thread::scope(|sc| {
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let (k, go) = (&k, go.clone());
                sc.spawn(move || {
                    let c = sock(k, SockType::SEQPACKET);
                    go.wait();
                    sock_connect(&c, &addr("many"), MsgFlags::DONTWAIT).unwrap();
                    c
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(seen.calls() >= N, "one upcall per connection at least");
    let mut accepted = Vec::new();
    for _ in 0..N {
        accepted.push(sock_accept(&l, None, MsgFlags::DONTWAIT, None).unwrap().0);
    }
    assert_eq!(
        sock_accept(&l, None, MsgFlags::DONTWAIT, None).unwrap_err(),
        Errno::EWOULDBLOCK
    );
    drop((clients, accepted, l));
    assert_clean(&k);
}

/// A listener with a backlog of one, already holding a connection, and a second client with
/// a counting upcall whose nonblocking connect is therefore in progress.
fn connect_in_progress(k: &Kpi) -> (Sock, Sock, Sock, Arc<Seen>) {
    let l = listener(k, SockType::STREAM, "busy", 1);
    let first = sock(k, SockType::STREAM);
    sock_connect(&first, &addr("busy"), MsgFlags::empty()).unwrap();
    let (c, seen) = with_upcall(k, SockType::STREAM);
    assert_eq!(
        sock_connect(&c, &addr("busy"), MsgFlags::DONTWAIT),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(
        sock_connect(&c, &addr("busy"), MsgFlags::DONTWAIT),
        Err(Errno::EALREADY)
    );
    assert!(!sock_isconnected(&c));
    (l, first, c, seen)
}

#[test]
fn a_connect_that_completes_fires_the_upcall() {
    let k = kpi();
    let (l, first, c, seen) = connect_in_progress(&k);
    let before = seen.calls();
    let (a1, _) = sock_accept(&l, None, MsgFlags::DONTWAIT, None).unwrap();
    assert!(
        seen.calls() > before,
        "the connect completed when room appeared"
    );
    assert!(sock_isconnected(&c));
    assert_eq!(sock_connectwait(&c, Duration::ZERO), Ok(()));
    assert_eq!(
        sock_connect(&c, &addr("busy"), MsgFlags::DONTWAIT),
        Err(Errno::EISCONN)
    );
    let (a2, _) = sock_accept(&l, None, MsgFlags::DONTWAIT, None).unwrap();
    send_now(&c, b"late").unwrap();
    assert_eq!(recv_now(&a2, 10).unwrap().0, b"late");
    drop((l, first, c, a1, a2));
    assert_clean(&k);
}

#[test]
fn a_connect_that_fails_fires_the_upcall_and_reports_once() {
    for read_with in ["SO_ERROR", "sock_connectwait"] {
        let k = kpi();
        let (l, first, c, seen) = connect_in_progress(&k);
        let before = seen.calls();
        sock_close(l);
        assert!(seen.calls() > before, "{read_with}: the connect failed");
        assert!(!sock_isconnected(&c));
        match read_with {
            "SO_ERROR" => {
                let err = sock_getsockopt(&c, SOL_SOCKET, SockOpt::Error.raw()).unwrap();
                assert_eq!(err, OptVal::Int(Errno::ECONNREFUSED.raw()));
                let again = sock_getsockopt(&c, SOL_SOCKET, SockOpt::Error.raw()).unwrap();
                assert_eq!(again, OptVal::Int(0), "read and cleared");
            }
            _ => {
                assert_eq!(
                    sock_connectwait(&c, Duration::ZERO),
                    Err(Errno::ECONNREFUSED)
                );
                assert_eq!(sock_connectwait(&c, Duration::ZERO), Err(Errno::EINVAL));
            }
        }
        drop((first, c));
        assert_clean(&k);
    }
}

#[test]
fn an_immediate_connect_fires_the_upcall_too() {
    let k = kpi();
    let l = listener(&k, SockType::STREAM, "now", 4);
    let (c, seen) = with_upcall(&k, SockType::STREAM);
    assert_eq!(sock_connect(&c, &addr("now"), MsgFlags::DONTWAIT), Ok(()));
    assert!(seen.calls() >= 1);
    drop((c, l));
    assert_clean(&k);
}

#[test]
fn shutdown_fires_the_peers_upcall_and_it_reads_end_of_file() {
    for (how, peer_reads_eof) in [(SHUT_WR, true), (SHUT_RD, false), (SHUT_RDWR, true)] {
        let k = kpi();
        let l = listener(&k, SockType::STREAM, "shut", 4);
        let eofs = Arc::new(AtomicUsize::new(0));
        let up = SockUpcall::new(eofs.clone(), |so, eofs, _| {
            let mut b = [0u8; 8];
            let mut iov = [&mut b[..]];
            let mut m = RecvMsg::new(&mut iov);
            if sock_receive(so, &mut m, MsgFlags::DONTWAIT) == Ok(0) {
                eofs.fetch_add(1, Ordering::SeqCst);
            }
        });
        let c = sock_socket(&k, Domain::LOCAL, SockType::STREAM, 0, Some(up)).unwrap();
        sock_connect(&c, &addr("shut"), MsgFlags::empty()).unwrap();
        let (s, _) = sock_accept(&l, None, MsgFlags::empty(), None).unwrap();
        assert_eq!(eofs.load(Ordering::SeqCst), 0);
        sock_shutdown(&s, how).unwrap();
        assert_eq!(
            eofs.load(Ordering::SeqCst) >= 1,
            peer_reads_eof,
            "shutdown {how}"
        );
        if how == SHUT_RD {
            assert_eq!(send_now(&c, b"x"), Err(Errno::EPIPE));
        }
        drop((c, s, l));
        assert_clean(&k);
    }
}

#[test]
fn the_peers_close_fires_the_upcall() {
    for ty in CONN_TYPES {
        let k = kpi();
        let (c, s, seen) = pair_with_upcall(&k, ty);
        sock_close(c);
        assert!(seen.calls() >= 1, "{ty}");
        assert_eq!(seen.closed(), 0, "{ty}: the socket itself is still open");
        assert_eq!(recv_now(&s, 10).unwrap().0, b"", "{ty}: end of file");
        drop(s);
        assert_eq!(seen.closed(), 1, "{ty}: its own close fired once more");
        assert_clean(&k);
    }
}

#[test]
fn the_last_upcall_sees_a_closed_socket() {
    let k = kpi();
    let got = Arc::new(Mutex::new(Vec::new()));
    let up = SockUpcall::new(got.clone(), |so, got, _| {
        let mut arg = 1;
        got.lock().unwrap().push((
            sock_getsockname(so, &mut []),
            sock_ioctl(so, FIONBIO, &mut arg),
            sock_gettype(so),
            sock_isconnected(so),
            sock_isnonblocking(so),
            so.as_socket().is_some(),
        ));
    });
    let so = sock_socket(&k, Domain::LOCAL, SockType::SEQPACKET, 0, Some(up)).unwrap();
    let id = so.id();
    sock_close(so);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1, "exactly one upcall: the close");
    let (name, ioctl, ty, connected, nonblocking, handle) = got[0];
    assert_eq!(name, Err(Errno::EBADF));
    assert_eq!(ioctl, Err(Errno::EBADF));
    assert_eq!(ty, (Domain::LOCAL, SockType::SEQPACKET, 0));
    assert!(!connected && !nonblocking && !handle);
    assert!(k.stack().get(id).is_none());
    assert_clean(&k);
}

#[test]
fn accept_does_not_pass_the_listeners_upcall_on() {
    let k = kpi();
    let (l, lseen) = with_upcall(&k, SockType::STREAM);
    sock_bind(&l, &addr("parent")).unwrap();
    sock_listen(&l, 4).unwrap();
    let c = sock(&k, SockType::STREAM);
    sock_connect(&c, &addr("parent"), MsgFlags::empty()).unwrap();
    let (s, _) = sock_accept(&l, None, MsgFlags::empty(), None).unwrap();
    let before = lseen.calls();
    send_now(&c, b"for the child").unwrap();
    sock_shutdown(&c, SHUT_WR).unwrap();
    assert_eq!(lseen.calls(), before, "the child has no upcall");
    drop((c, s));
    assert_eq!(lseen.calls(), before);
    drop(l);
    assert_clean(&k);
}

#[test]
fn accept_with_data_already_waiting_runs_the_new_upcall_at_once() {
    let k = kpi();
    let l = listener(&k, SockType::SEQPACKET, "early", 4);
    let c = sock(&k, SockType::SEQPACKET);
    sock_connect(&c, &addr("early"), MsgFlags::empty()).unwrap();
    send_now(&c, b"before accept").unwrap();
    let (up, seen) = counting();
    let (s, _) = sock_accept(&l, None, MsgFlags::empty(), Some(up)).unwrap();
    assert_eq!(seen.calls(), 1, "the record that came first is signalled");
    assert_eq!(seen.max_nread(), 13);
    // Without waiting data, accepting runs no upcall.
    let c2 = sock(&k, SockType::SEQPACKET);
    sock_connect(&c2, &addr("early"), MsgFlags::empty()).unwrap();
    let (up2, seen2) = counting();
    let (s2, _) = sock_accept(&l, None, MsgFlags::empty(), Some(up2)).unwrap();
    assert_eq!(seen2.calls(), 0);
    drop((c, s, c2, s2, l));
    assert_clean(&k);
}

/// Several threads send to one socket whose upcall drains it with nonblocking receives:
/// upcalls run concurrently, and once every sender is done, every byte has been received by
/// an upcall (none was missed).
#[test]
fn an_upcall_driven_reader_misses_nothing_with_many_senders() {
    const SENDERS: usize = 4;
    const MSGS: usize = 300;
    let k = kpi();
    let received = Arc::new(AtomicUsize::new(0));
    let concurrent = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let up = SockUpcall::new(
        (received.clone(), concurrent.clone()),
        |so, (received, conc), _| {
            let now = conc.0.fetch_add(1, Ordering::SeqCst) + 1;
            conc.1.fetch_max(now, Ordering::SeqCst);
            loop {
                match sock_receivembuf(so, None, 1 << 16, MsgFlags::DONTWAIT) {
                    Ok(m) if m.is_empty() => break,
                    Ok(m) => {
                        received.fetch_add(m.len(), Ordering::SeqCst);
                    }
                    Err(_) => break,
                }
            }
            conc.0.fetch_sub(1, Ordering::SeqCst);
        },
    );
    let srv = sock_socket(&k, Domain::LOCAL, SockType::DGRAM, 0, Some(up)).unwrap();
    sock_bind(&srv, &addr("sink")).unwrap();
    let go = Arc::new(Barrier::new(SENDERS));
    thread::scope(|sc| {
        for t in 0..SENDERS {
            let (k, go) = (&k, go.clone());
            sc.spawn(move || {
                let c = sock(k, SockType::DGRAM);
                sock_connect(&c, &addr("sink"), MsgFlags::empty()).unwrap();
                go.wait();
                let data = [t as u8; 100];
                for _ in 0..MSGS {
                    let iov = [&data[..40], &data[40..]];
                    let msg = SendMsg::new(&iov);
                    assert_eq!(sock_send(&c, &msg, MsgFlags::empty()), Ok(100));
                }
            });
        }
    });
    assert_eq!(received.load(Ordering::SeqCst), SENDERS * MSGS * 100);
    assert_eq!(
        concurrent.0.load(Ordering::SeqCst),
        0,
        "every upcall returned"
    );
    drop(srv);
    assert_clean(&k);
}
