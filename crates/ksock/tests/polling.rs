//! The poll API driven by hand: every would-block registers the waker, and every change that
//! ends the wait wakes it. Also readiness in each state, and upcalls.

mod common;
use common::*;
use ksock::*;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::{Context, Poll};

#[test]
fn recv_registers_and_send_wakes() {
    let st = Stack::new();
    for ty in TYPES {
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        let (count, waker) = count_waker();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 8];
        let mut sink: &mut [u8] = &mut buf;
        assert!(
            b.poll_recvmsg(&mut cx, &mut sink, MsgFlags::empty())
                .is_pending()
        );
        assert_eq!(count.count(), 0);
        a.send(b"hi").unwrap();
        assert_eq!(count.count(), 1, "{ty}: the send woke the reader");
        a.send(b"again").unwrap();
        assert_eq!(count.count(), 1, "woken once per registration");
        let mut sink: &mut [u8] = &mut buf;
        match b.poll_recvmsg(&mut cx, &mut sink, MsgFlags::empty()) {
            Poll::Ready(Ok(i)) => assert_eq!(i.len, if ty == SockType::STREAM { 7 } else { 2 }),
            other => panic!("{other:?}"),
        }
        drop((a, b));
    }
    assert_clean(&st);
}

#[test]
fn polling_in_a_loop_does_not_grow_the_waiter_list() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    let (_count, waker) = count_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..1000 {
        let mut sink: &mut [u8] = &mut [0u8; 4];
        assert!(
            b.poll_recvmsg(&mut cx, &mut sink, MsgFlags::empty())
                .is_pending()
        );
        assert!(b.poll_ready(&mut cx, Events::IN).is_pending());
    }
    assert_eq!(b.core().waiter_count(), 1);
    drop((a, b));
    assert_clean(&st);
}

#[test]
fn full_writer_is_woken_when_half_drained_not_per_record() {
    let st = Stack::new();
    for ty in TYPES {
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        a.set_option(SockOpt::SndBuf, OptVal::Int(0)).unwrap();
        let rec = vec![1u8; 500];
        let mut queued = 0;
        while send_now(&a, &rec).is_ok() {
            queued += 1;
        }
        assert!(queued >= 4, "{ty}: {queued}");
        let (count, waker) = count_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(
            a.poll_sendmsg(&mut cx, &mut &rec[..], None, MsgFlags::empty())
                .is_pending()
        );
        assert!(!a.readiness().contains(Events::OUT));
        recv_now(&b, 500).unwrap();
        assert_eq!(
            count.count(),
            0,
            "{ty}: one record read is not yet a reason to wake"
        );
        let mut reads = 1;
        while count.count() == 0 {
            recv_now(&b, 500).unwrap();
            reads += 1;
            assert!(reads <= queued, "{ty}: drained without waking the writer");
        }
        assert_eq!(count.count(), 1);
        assert!(
            a.readiness().contains(Events::OUT),
            "{ty}: woken when writable again"
        );
        assert!(reads < queued, "{ty}: woken before the queue emptied");
        drop((a, b));
    }
    assert_clean(&st);
}

#[test]
fn writer_of_a_large_record_is_woken_when_the_queue_empties() {
    let st = Stack::new();
    let (a, b) = st
        .socketpair(Domain::LOCAL, SockType::SEQPACKET, 0)
        .unwrap();
    a.set_option(SockOpt::SndBuf, OptVal::Int(4096)).unwrap();
    let cap = a.options().unwrap().sndbuf();
    let small = vec![0u8; 1000];
    for _ in 0..4 {
        send_now(&a, &small).unwrap();
    }
    let big = vec![1u8; cap * 3 / 4];
    let (count, waker) = count_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(
        a.poll_sendmsg(&mut cx, &mut &big[..], None, MsgFlags::empty())
            .is_pending()
    );
    let mut woken_at = Vec::new();
    for i in 0..4 {
        recv_now(&b, 1000).unwrap();
        if count.count() > woken_at.len() {
            woken_at.push(i);
            // Woken at half: the big record still does not fit; wait again.
            if a.poll_sendmsg(&mut cx, &mut &big[..], None, MsgFlags::empty())
                .is_ready()
            {
                break;
            }
        }
    }
    assert_eq!(
        woken_at,
        vec![0, 3],
        "woken at half, then when the queue empties"
    );
    assert_eq!(
        b.nread().unwrap(),
        big.len(),
        "the retried send went through"
    );
    drop((a, b));
    assert_clean(&st);
}

#[test]
fn accept_and_connect_wakeups() {
    let st = Stack::new();
    let l = listener(&st, SockType::SEQPACKET, "w", 1);
    let (acount, awaker) = count_waker();
    assert!(
        l.poll_accept(&mut Context::from_waker(&awaker))
            .is_pending()
    );
    let c1 = sock(&st, SockType::SEQPACKET);
    c1.connect(&addr("w")).unwrap();
    assert_eq!(acount.count(), 1, "a pending connection wakes the acceptor");
    assert!(l.readiness().contains(Events::IN));
    let c2 = sock(&st, SockType::SEQPACKET);
    let (ccount, cwaker) = count_waker();
    assert!(
        c2.poll_connect(&mut Context::from_waker(&cwaker), &addr("w"))
            .is_pending()
    );
    assert_eq!(c2.state(), State::New, "a waiting connect keeps the state");
    let (s1, _) = l.try_accept().unwrap();
    assert_eq!(ccount.count(), 1, "accept made room and woke the connector");
    assert_eq!(
        c2.poll_connect(&mut Context::from_waker(&cwaker), &addr("w")),
        Poll::Ready(Ok(()))
    );
    drop((l, c1, c2, s1));
    assert_clean(&st);
}

#[test]
fn dgram_sender_waits_on_receiver_queue() {
    let st = Stack::new();
    let r = sock(&st, SockType::DGRAM);
    r.bind(&addr("q")).unwrap();
    let s = sock(&st, SockType::DGRAM);
    for _ in 0..local::MAX_DGRAM_QLEN {
        s.send_to(b"m", &addr("q")).unwrap();
    }
    let (count, waker) = count_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(
        s.poll_sendmsg(&mut cx, &mut &b"m"[..], Some(&addr("q")), MsgFlags::empty())
            .is_pending()
    );
    recv_now(&r, 4).unwrap();
    assert_eq!(count.count(), 1, "a receive made room in the queue");
    drop(r);
    drop(s);
    assert_clean(&st);
}

#[test]
fn close_wakes_every_waiter() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    let (count, waker) = count_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(b.poll_ready(&mut cx, Events::IN).is_pending());
    drop(a);
    assert_eq!(count.count(), 1, "the peer's close wakes");
    let (count, waker) = count_waker();
    let mut cx = Context::from_waker(&waker);
    let l = listener(&st, SockType::STREAM, "c", 1);
    assert!(l.poll_accept(&mut cx).is_pending());
    l.hangup();
    assert_eq!(count.count(), 1, "hangup wakes its own waiters");
    drop((b, l));
    assert_clean(&st);
}

#[test]
fn readiness_in_each_state_matches_linux() {
    let st = Stack::new();
    for ty in CONN_TYPES {
        let s = sock(&st, ty);
        assert_eq!(s.readiness(), Events::OUT | Events::HUP, "{ty} new");
        s.bind(&addr("r")).unwrap();
        assert_eq!(s.readiness(), Events::OUT | Events::HUP, "{ty} bound");
        s.listen(2).unwrap();
        assert_eq!(s.readiness(), Events::empty(), "{ty} listening");
        let c = sock(&st, ty);
        c.connect(&addr("r")).unwrap();
        assert_eq!(
            s.readiness(),
            Events::IN,
            "{ty} listener with a pending connection"
        );
        assert_eq!(c.readiness(), Events::OUT, "{ty} connected client");
        c.send(b"x").unwrap();
        let (a, _) = s.accept().unwrap();
        assert_eq!(
            a.readiness(),
            Events::IN | Events::OUT,
            "{ty} accepted with data"
        );
        c.shutdown(Shutdown::Write).unwrap();
        assert_eq!(a.readiness(), Events::IN | Events::OUT | Events::RDHUP);
        drop(c);
        assert_eq!(
            a.readiness(),
            Events::IN | Events::OUT | Events::RDHUP | Events::HUP
        );
        drop((s, a));
    }
    let d = sock(&st, SockType::DGRAM);
    assert_eq!(d.readiness(), Events::OUT);
    drop(d);
    assert_clean(&st);
}

#[test]
fn upcalls_fire_on_changes_without_locks_held() {
    let st = Stack::new();
    let (a, b) = st
        .socketpair(Domain::LOCAL, SockType::SEQPACKET, 0)
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let weak = b.downgrade();
    let s2 = seen.clone();
    b.set_upcall(Some(Arc::new(move |ev: Events| {
        // Calling back into the socket from the upcall must not deadlock: no lock is held.
        let ready = weak.upgrade().map(|s| s.readiness());
        s2.lock().unwrap().push((ev, ready));
    })))
    .unwrap();
    a.send(b"1").unwrap();
    {
        let v = seen.lock().unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].0.contains(Events::IN));
        assert!(v[0].1.unwrap().contains(Events::IN));
    }
    recv_now(&b, 4).unwrap();
    drop(a);
    {
        let v = seen.lock().unwrap();
        assert!(
            v.iter().any(|(ev, _)| ev.contains(Events::HUP)),
            "peer close: {v:?}"
        );
    }
    let before = seen.lock().unwrap().len();
    drop(b);
    let v = seen.lock().unwrap();
    assert!(v.len() > before, "close fires the upcall");
    assert!(v.last().unwrap().0.contains(Events::NVAL));
    drop(v);
    assert_clean(&st);
}

#[test]
fn background_connect_fires_upcall_on_completion_and_failure() {
    let st = Stack::new();
    let l = listener(&st, SockType::STREAM, "bg", 1);
    let c1 = sock(&st, SockType::STREAM);
    c1.connect(&addr("bg")).unwrap();
    let c2 = sock(&st, SockType::STREAM);
    let fired = Arc::new(Mutex::new(Vec::new()));
    let f = fired.clone();
    c2.set_upcall(Some(Arc::new(move |ev: Events| f.lock().unwrap().push(ev))))
        .unwrap();
    assert_eq!(c2.start_connect(&addr("bg")), Err(Errno::EINPROGRESS));
    assert_eq!(c2.connect_result(), Err(Errno::EINPROGRESS));
    assert!(fired.lock().unwrap().is_empty());
    let _s1 = l.try_accept().unwrap();
    assert_eq!(c2.state(), State::Connected);
    assert!(
        fired
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains(Events::OUT))
    );

    let c3 = sock(&st, SockType::STREAM);
    assert_eq!(c3.start_connect(&addr("bg")), Err(Errno::EINPROGRESS));
    drop(l);
    assert_eq!(c3.state(), State::Closed, "a failed connect ends in Closed");
    assert!(c3.readiness().contains(Events::ERR));
    assert_eq!(c3.connect_result(), Err(Errno::ECONNREFUSED));
    assert_eq!(
        c3.get_option(SockOpt::Error),
        Ok(OptVal::Int(0)),
        "read and cleared"
    );
    assert_eq!(
        c3.connect(&addr("bg")),
        Err(Errno::EINVAL),
        "no way out of Closed"
    );
    drop((c1, c2, c3, _s1));
    assert_clean(&st);
}
