//! Mbuf chains: zero-copy, always consumed by a send (on success and on every error), records
//! atomic, and the chain a receive hands back belongs to the caller.

mod common;

use common::*;
use ksock::{Errno, MsgFlags, OptVal, SockOpt, SockType};
use ksock_kpi::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn a_sent_chain_moves_without_a_copy_and_the_received_one_is_the_callers() {
    for ty in CONN_TYPES {
        let k = kpi();
        let w = Watch::new();
        let (c, s) = pair(&k, ty);
        let first = w.bytes(4096, 1);
        let ptr = first.as_ptr();
        let m: Mbuf = [first, w.bytes(1000, 2)].into_iter().collect();
        assert_eq!(sock_sendmbuf(&c, None, m, MsgFlags::empty()), Ok(5096));
        assert_eq!(w.live(), 2, "{ty}: queued at the peer, not copied");
        let got = sock_receivembuf(&s, None, 10_000, MsgFlags::empty()).unwrap();
        assert_eq!(got.len(), 5096);
        assert_eq!(
            got.segments().next().unwrap().as_ptr(),
            ptr,
            "{ty}: zero copy"
        );
        assert_eq!(got.to_vec()[4095..4097], [1, 2]);
        sock_close(c);
        sock_close(s);
        assert_clean(&k);
        assert_eq!(w.live(), 2, "{ty}: the received chain outlives the sockets");
        drop(got);
        assert_eq!(w.live(), 0);
    }
}

/// Each case makes a socket in a state where a send fails with the expected errno.
#[test]
fn a_chain_is_freed_on_every_error() {
    type Case = (
        &'static str,
        Errno,
        fn(&Kpi) -> (Sock, Vec<Sock>, Option<ksock::SockAddr>),
    );
    let cases: Vec<Case> = vec![
        ("stream not connected", Errno::ENOTCONN, |k| {
            (sock(k, SockType::STREAM), vec![], None)
        }),
        ("seqpacket not connected", Errno::ENOTCONN, |k| {
            (sock(k, SockType::SEQPACKET), vec![], None)
        }),
        ("stream to a closed peer", Errno::EPIPE, |k| {
            let (c, s) = pair(k, SockType::STREAM);
            sock_close(s);
            (c, vec![], None)
        }),
        ("stream after its own SHUT_WR", Errno::EPIPE, |k| {
            let (c, s) = pair(k, SockType::STREAM);
            sock_shutdown(&c, SHUT_WR).unwrap();
            (c, vec![s], None)
        }),
        ("stream with an address", Errno::EISCONN, |k| {
            let (c, s) = pair(k, SockType::STREAM);
            (c, vec![s], Some(addr("elsewhere")))
        }),
        ("record larger than the send buffer", Errno::EMSGSIZE, |k| {
            let (c, s) = pair(k, SockType::SEQPACKET);
            set_int(&c, SockOpt::SndBuf, 1);
            (c, vec![s], None)
        }),
        (
            "record with the peer's buffer full",
            Errno::EWOULDBLOCK,
            |k| {
                let (c, s) = pair(k, SockType::SEQPACKET);
                fill(&c);
                (c, vec![s], None)
            },
        ),
        ("seqpacket reset by the peer", Errno::ECONNRESET, |k| {
            let (c, s) = pair(k, SockType::SEQPACKET);
            send_now(&c, b"never read").unwrap();
            sock_close(s);
            (c, vec![], None)
        }),
        ("datagram to no one", Errno::ECONNREFUSED, |k| {
            (sock(k, SockType::DGRAM), vec![], Some(addr("nobody")))
        }),
        ("datagram without an address", Errno::ENOTCONN, |k| {
            (sock(k, SockType::DGRAM), vec![], None)
        }),
    ];
    for (what, want, make) in cases {
        let k = kpi();
        let w = Watch::new();
        let (so, keep, to) = make(&k);
        let m: Mbuf = [w.bytes(5000, 1), w.bytes(600, 2)].into_iter().collect();
        assert_eq!(
            sock_sendmbuf(&so, to.as_ref(), m, MsgFlags::DONTWAIT),
            Err(want),
            "{what}"
        );
        assert_eq!(w.live(), 0, "{what}: the chain was not freed");
        drop(keep);
        sock_close(so);
        assert_clean(&k);
    }
}

#[test]
fn a_chain_is_freed_when_the_flags_are_refused() {
    let k = kpi();
    let w = Watch::new();
    let (c, s) = pair(&k, SockType::STREAM);
    for bad in [MsgFlags::PEEK, MsgFlags::WAITALL, MSG_USEUPCALL] {
        let m = Mbuf::from(w.bytes(700, 1));
        assert_eq!(sock_sendmbuf(&c, None, m, bad), Err(Errno::ENOTSUP));
        assert_eq!(w.live(), 0, "{bad:?}");
    }
    assert_eq!(
        recv_now(&s, 10),
        Err(Errno::EWOULDBLOCK),
        "nothing was sent"
    );
    drop((c, s));
    assert_clean(&k);
}

#[test]
fn a_chain_is_freed_when_a_blocking_send_times_out() {
    let park = FakePark::new();
    let k = park.kpi();
    let w = Watch::new();
    let (c, s) = pair(&k, SockType::SEQPACKET);
    fill(&c);
    set_time(&c, SockOpt::SndTimeo, Duration::from_secs(1));
    let m = Mbuf::from(w.bytes(800, 1));
    assert_eq!(
        sock_sendmbuf(&c, None, m, MsgFlags::empty()),
        Err(Errno::EWOULDBLOCK)
    );
    assert!(park.parks() >= 1, "the send waited");
    assert_eq!(w.live(), 0);
    drop((c, s));
    assert_clean(&k);
}

#[test]
fn a_chain_is_freed_by_a_send_on_a_closed_socket() {
    // The only `Sock` on which calls fail with EBADF is the one the last upcall receives.
    let k = kpi();
    let w = Watch::new();
    let outcome = Arc::new(AtomicUsize::new(0));
    let up = SockUpcall::new((w.clone(), outcome.clone()), |so, (w, out), _| {
        if sock_isconnected(so) || sock_getsockname(so, &mut []) != Err(Errno::EBADF) {
            return;
        }
        let r = sock_sendmbuf(so, None, Mbuf::from(w.bytes(900, 1)), MsgFlags::DONTWAIT);
        assert_eq!(r, Err(Errno::EBADF));
        assert_eq!(w.live(), 0, "freed before sock_sendmbuf returned");
        out.fetch_add(1, Ordering::SeqCst);
    });
    let so = sock_socket(&k, ksock::Domain::LOCAL, SockType::STREAM, 0, Some(up)).unwrap();
    sock_close(so);
    assert_eq!(
        outcome.load(Ordering::SeqCst),
        1,
        "the last upcall ran once"
    );
    assert_clean(&k);
}

/// A stream send that fits only partly returns the part sent; the rest of the chain is freed
/// at once, whether the send was nonblocking, timed out, or was interrupted.
#[test]
fn a_partial_stream_send_succeeds_and_frees_the_rest() {
    enum How {
        DontWait,
        Timeout,
        Interrupted,
    }
    for how in [How::DontWait, How::Timeout, How::Interrupted] {
        let park = FakePark::new();
        let k = park.kpi();
        let w = Watch::new();
        let (c, s) = pair(&k, SockType::STREAM);
        set_int(&c, SockOpt::SndBuf, 1);
        let OptVal::Int(sndbuf) = sock_getsockopt(&c, SOL_SOCKET, SockOpt::SndBuf.raw()).unwrap()
        else {
            panic!("SO_SNDBUF is an integer")
        };
        let sndbuf = usize::try_from(sndbuf).unwrap();
        let flags = match how {
            How::DontWait => MsgFlags::DONTWAIT,
            How::Timeout => {
                set_time(&c, SockOpt::SndTimeo, Duration::from_millis(5));
                MsgFlags::empty()
            }
            How::Interrupted => {
                park.on_park(|_| Err(EINTR));
                MsgFlags::empty()
            }
        };
        let fits = w.bytes(sndbuf, 1);
        let m: Mbuf = [fits, w.bytes(1000, 2)].into_iter().collect();
        assert_eq!(sock_sendmbuf(&c, None, m, flags), Ok(sndbuf));
        assert_eq!(w.live(), 1, "the part that did not fit was freed");
        let got = sock_receivembuf(&s, None, 100_000, MsgFlags::DONTWAIT).unwrap();
        assert_eq!(got.len(), sndbuf);
        drop(got);
        assert_eq!(w.live(), 0);
        drop((c, s));
        assert_clean(&k);
    }
}

#[test]
fn a_chain_is_one_record_and_a_truncated_record_frees_its_rest() {
    let k = kpi();
    let w = Watch::new();
    let (c, s) = pair(&k, SockType::SEQPACKET);
    let head = w.bytes(600, 1);
    let ptr = head.as_ptr();
    let m: Mbuf = [head, w.bytes(600, 2), w.bytes(600, 3)]
        .into_iter()
        .collect();
    assert_eq!(sock_sendmbuf(&c, None, m, MsgFlags::empty()), Ok(1800));
    send_now(&c, b"next").unwrap();

    let mut msg = RecvMsg::default();
    let got = sock_receivembuf(&s, Some(&mut msg), 600, MsgFlags::empty()).unwrap();
    assert_eq!(got.len(), 600);
    assert!(msg.flags.contains(MsgFlags::TRUNC), "{:?}", msg.flags);
    assert_eq!(got.segments().next().unwrap().as_ptr(), ptr, "zero copy");
    assert_eq!(w.live(), 1, "the discarded rest of the record was freed");
    let (next, f) = recv_now(&s, 100).unwrap();
    assert_eq!(next, b"next", "the next receive starts at the next record");
    assert!(!f.contains(MsgFlags::TRUNC));
    drop(got);
    assert_eq!(w.live(), 0);
    drop((c, s));
    assert_clean(&k);
}

#[test]
fn datagram_chains_carry_the_senders_address() {
    let k = kpi();
    let w = Watch::new();
    let srv = sock(&k, SockType::DGRAM);
    sock_bind(&srv, &addr("srv")).unwrap();
    let cli = sock(&k, SockType::DGRAM);
    sock_bind(&cli, &addr("cli")).unwrap();
    let m: Mbuf = [w.bytes(10, 1), w.bytes(20, 2)].into_iter().collect();
    assert_eq!(
        sock_sendmbuf(&cli, Some(&addr("srv")), m, MsgFlags::empty()),
        Ok(30)
    );
    let mut name = [0u8; 64];
    let mut msg = RecvMsg::default().with_name(&mut name);
    let got = sock_receivembuf(&srv, Some(&mut msg), 100, MsgFlags::empty()).unwrap();
    assert_eq!(got.len(), 30, "one datagram, whole");
    let namelen = msg.namelen;
    assert_eq!(sockaddr::decode(&name[..namelen]), Ok(addr("cli")));
    drop(got);
    assert_eq!(w.live(), 0);
    drop((srv, cli));
    assert_clean(&k);
}
