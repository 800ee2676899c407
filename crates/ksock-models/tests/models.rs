//! The models: each runs core code on several threads and checks what must hold in every
//! interleaving (see the crate's docs for running them under shuttle's scheduler).

use ksock::local::{LocalFamily, MAX_DGRAM_QLEN};
use ksock::{
    Domain, Errno, Events, MsgFlags, OptVal, Shutdown, SockAddr, SockOpt, SockType, Socket, Stack,
};
use ksock_models::{Counter, check, check_pct, cx, thread};
use std::sync::Arc;
use std::task::Poll;

/// Schedules per model: a second or two each under shuttle in a debug build.
const SCHEDULES: usize = 1000;

// What breaking the code under each model on purpose showed (each change made alone, the
// model run under shuttle, the change undone):
// - `a_waiting_receive_is_never_missed`: `poll_op` (socket/poll.rs) without its re-check
//   after registering: "the send did not wake the waiting receive".
// - `the_interest_mask_keeps_every_waiter`: `notify` storing an empty mask after waking
//   some waiters: "the waiter for the peer's shutdown was not woken".
// - `connect_accept_and_close_race_without_leaks`: a closing listener (local/listener.rs)
//   not marking its queue closed: a client connected after the close read EAGAIN, never
//   ECONNRESET.
// - `a_waiting_writer_is_woken_at_half_the_buffer`: `writable` (local/conn.rs) at a
//   quarter instead of half: "the writer was not woken".
// - `the_datagram_queue_limit_holds_and_wakes_senders`: the receive (local/dgram.rs) not
//   notifying `ROOM`: "a waiting sender was not woken" (9 queued); found by the PCT
//   scheduler, not the random one.
// - `the_last_handle_closes_the_socket_once`: the handle count decremented by a load and
//   a store instead of `fetch_sub` (socket/mod.rs, `Drop for Socket`): two closes read the
//   same count, and one underflowed it.

fn local(name: &str) -> SockAddr {
    SockAddr::local(name.as_bytes()).unwrap()
}

/// A stack with the local family, kept at hand for its name count.
fn stack() -> (Stack, Arc<LocalFamily>) {
    let st = Stack::empty();
    let fam = Arc::new(LocalFamily::new());
    st.register_family(fam.clone()).unwrap();
    (st, fam)
}

fn nonblocking(s: Socket) -> Socket {
    s.set_nonblocking(true).unwrap();
    s
}

/// Register, then re-check: a receive that finds nothing registers its waker and looks
/// again, so a send landing anywhere around it either is seen or wakes it.
#[test]
fn a_waiting_receive_is_never_missed() {
    check(SCHEDULES, || {
        let (st, _) = stack();
        let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        let sender = thread::spawn(move || {
            assert_eq!(b.send(b"x"), Ok(1));
            b
        });
        let (woken, w) = Counter::new();
        let mut buf = [0u8; 4];
        let r = a.poll_recvmsg(&mut cx(&w), &mut &mut buf[..], MsgFlags::empty());
        let _b = sender.join().unwrap();
        match r {
            Poll::Ready(Ok(info)) => assert_eq!((info.len, buf[0]), (1, b'x')),
            Poll::Pending => {
                assert_eq!(
                    woken.woken(),
                    1,
                    "the send did not wake the waiting receive"
                );
                let a = nonblocking(a);
                assert_eq!(a.recv(&mut buf), Ok(1));
            }
            r => panic!("{r:?}"),
        }
    });
}

/// The interest mask: two waiters with different interests on one socket. Waking one (its
/// events came) must leave the other's interest in the mask, so that the notification it
/// waits for still reaches it.
#[test]
fn the_interest_mask_keeps_every_waiter() {
    check(SCHEDULES, || {
        let (st, _) = stack();
        let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        let a = Arc::new(a);
        let a1 = a.clone();
        let reader = thread::spawn(move || {
            let (woken, w) = Counter::new();
            let mut buf = [0u8; 4];
            let r = a1.poll_recvmsg(&mut cx(&w), &mut &mut buf[..], MsgFlags::empty());
            (r.is_ready(), woken)
        });
        let a2 = a.clone();
        let hup_waiter = thread::spawn(move || {
            let (woken, w) = Counter::new();
            let r = a2.poll_ready(&mut cx(&w), Events::RDHUP);
            (r.is_ready(), woken)
        });
        assert_eq!(b.send(b"x"), Ok(1));
        b.shutdown(Shutdown::Write).unwrap();
        for (what, t) in [("data", reader), ("the peer's shutdown", hup_waiter)] {
            let (ready, woken) = t.join().unwrap();
            assert!(
                ready || woken.woken() > 0,
                "the waiter for {what} was not woken"
            );
        }
    });
}

/// The backlog: two clients connect (nonblocking) while an acceptor takes connections and
/// the listener is closed. Every client is refused, told the backlog is full, accepted,
/// or reset; none is left connected to nobody, and once everything is closed nothing is
/// left (sockets or names).
#[test]
fn connect_accept_and_close_race_without_leaks() {
    check(SCHEDULES, || {
        let (st, fam) = stack();
        let l = nonblocking(st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap());
        l.bind(&local("srv")).unwrap();
        l.listen(1).unwrap();
        let l = Arc::new(l);
        let clients: Vec<_> = (0..2)
            .map(|_| {
                let st = st.clone();
                thread::spawn(move || {
                    let c = nonblocking(st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap());
                    let r = c.connect(&local("srv"));
                    (c, r)
                })
            })
            .collect();
        let la = l.clone();
        let acceptor = thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..2 {
                match la.try_accept() {
                    Ok((s, _)) => got.push(s),
                    Err(Errno::EAGAIN | Errno::EINVAL | Errno::EBADF) => thread::yield_now(),
                    Err(e) => panic!("accept: {e:?}"),
                }
            }
            got
        });
        let lc = l.clone();
        let closer = thread::spawn(move || lc.hangup());
        let accepted = acceptor.join().unwrap();
        closer.join().unwrap();
        let clients: Vec<_> = clients.into_iter().map(|t| t.join().unwrap()).collect();

        for s in &accepted {
            assert_eq!(s.send(b"hi"), Ok(2));
        }
        let (mut served, mut reset) = (0, 0);
        for (c, r) in &clients {
            match r {
                Ok(()) => {
                    let mut buf = [0u8; 4];
                    match c.recv(&mut buf) {
                        Ok(2) => served += 1,
                        Err(Errno::ECONNRESET) => reset += 1,
                        other => panic!("a connected client read {other:?}"),
                    }
                }
                Err(Errno::EAGAIN | Errno::ECONNREFUSED) => {}
                Err(e) => panic!("connect: {e:?}"),
            }
        }
        assert_eq!(
            served,
            accepted.len(),
            "accepted connections and served clients"
        );
        let connected = clients.iter().filter(|(_, r)| r.is_ok()).count();
        assert_eq!(served + reset, connected);
        drop((accepted, clients, l));
        assert_eq!(st.socket_count(), 0, "sockets left");
        assert_eq!(fam.name_count(), 0, "names left");
    });
}

/// A pipe's writer that waits for room is woken once the reader has drained the queue to
/// half the send buffer, even if the reader stops there (Linux wakes at a quarter).
#[test]
fn a_waiting_writer_is_woken_at_half_the_buffer() {
    check(SCHEDULES, || {
        let (st, _) = stack();
        let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        let a = nonblocking(a);
        let b = nonblocking(b);
        // The smallest send buffer (4608 bytes), filled.
        a.set_option(SockOpt::SndBuf, OptVal::Int(1)).unwrap();
        let mut queued = 0;
        while let Ok(n) = a.send(&[7u8; 1024]) {
            queued += n;
        }
        assert_eq!(queued, 4608);
        let reader = thread::spawn(move || {
            // Down to 1536 bytes queued: below half, not empty.
            let mut buf = [0u8; 1024];
            for _ in 0..3 {
                assert_eq!(b.recv(&mut buf), Ok(1024));
            }
            b
        });
        let (woken, w) = Counter::new();
        let r = a.poll_sendmsg(&mut cx(&w), &mut &[1u8; 64][..], None, MsgFlags::empty());
        let _b = reader.join().unwrap();
        match r {
            Poll::Ready(Ok(64)) => {}
            Poll::Pending => assert!(woken.woken() > 0, "the writer was not woken"),
            r => panic!("{r:?}"),
        }
    });
}

/// A datagram receiver holds at most `MAX_DGRAM_QLEN` records from senders it is not
/// connected to: with its queue full, two senders try once more while the owner reads one.
/// The limit holds, nothing is lost, and a sender told to wait is woken by the read that
/// makes room (a sender only waits after its re-check saw the queue full).
#[test]
fn the_datagram_queue_limit_holds_and_wakes_senders() {
    check_pct(SCHEDULES, 3, || {
        let (st, fam) = stack();
        let r = nonblocking(st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap());
        r.bind(&local("rx")).unwrap();
        let filler = nonblocking(st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap());
        for _ in 0..MAX_DGRAM_QLEN {
            assert_eq!(filler.send_to(b"f", &local("rx")), Ok(1));
        }
        assert_eq!(filler.send_to(b"f", &local("rx")), Err(Errno::EAGAIN));
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let s = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
                thread::spawn(move || {
                    let (woken, w) = Counter::new();
                    let mut one = &b"d"[..];
                    let r = s.poll_sendmsg(
                        &mut cx(&w),
                        &mut one,
                        Some(&local("rx")),
                        MsgFlags::empty(),
                    );
                    match r {
                        Poll::Ready(Ok(1)) => (s, 1, false, woken),
                        Poll::Pending => (s, 0, true, woken),
                        other => panic!("send: {other:?}"),
                    }
                })
            })
            .collect();
        let mut buf = [0u8; 4];
        assert_eq!(r.recv(&mut buf), Ok(1));
        let senders: Vec<_> = senders.into_iter().map(|t| t.join().unwrap()).collect();
        let mut left = 0;
        while r.recv(&mut buf).is_ok() {
            left += 1;
        }
        let sent: usize = MAX_DGRAM_QLEN + senders.iter().map(|s| s.1).sum::<usize>();
        assert_eq!(sent, 1 + left, "datagrams lost or made up");
        assert!(
            left <= MAX_DGRAM_QLEN,
            "{left} queued, the limit is {MAX_DGRAM_QLEN}"
        );
        // The read made room once: a sender that waited and was not woken must have seen
        // the other take it (the queue is full again).
        for (_, _, waiting, woken) in &senders {
            if *waiting && woken.woken() == 0 {
                assert_eq!(left, MAX_DGRAM_QLEN, "a waiting sender was not woken");
            }
        }
        drop((senders, r, filler));
        assert_eq!(st.socket_count(), 0);
        assert_eq!(fam.name_count(), 0);
    });
}

/// Handle counts: a socket with two handles, closed on two threads while a third takes a
/// new handle from the table, closes exactly once, when the last handle goes; every handle
/// works until it is closed.
#[test]
fn the_last_handle_closes_the_socket_once() {
    check(SCHEDULES, || {
        let (st, _) = stack();
        let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        let id = a.id();
        let a2 = a.clone();
        let t1 = thread::spawn(move || drop(a));
        let t2 = thread::spawn(move || {
            assert_eq!(
                a2.send(b"x"),
                Ok(1),
                "a handle stopped working before its close"
            );
            drop(a2);
        });
        let st3 = st.clone();
        let t3 = thread::spawn(move || {
            // Only while another handle is open.
            st3.get(id)
                .map(|h| h.send(b"y").expect("a handle taken from the table"))
        });
        t1.join().unwrap();
        t2.join().unwrap();
        let extra = t3.join().unwrap();
        assert_eq!(
            st.socket_count(),
            1,
            "the socket did not close at its last handle"
        );
        let b = nonblocking(b);
        let mut buf = [0u8; 4];
        let n = b.recv(&mut buf).unwrap();
        let mut got = buf[..n].to_vec();
        if let Ok(k) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..k]);
        }
        assert_eq!(got.len(), 1 + extra.map_or(0, |_| 1), "{got:?}");
        assert_eq!(b.recv(&mut buf), Ok(0), "end of file after the last close");
    });
}
