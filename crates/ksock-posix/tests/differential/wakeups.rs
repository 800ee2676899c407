//! Blocked calls ended by what the other side does.

use super::harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::thread;

/// Runs `blocked` on a thread, waits until it is parked (ksock: its socket has a waiter;
/// Linux: the thread sleeps in the kernel), then runs `then` and returns what `blocked` got.
fn while_blocked<R: Send>(t: &T<'_>, blocked: impl FnOnce() -> R + Send, then: impl FnOnce()) -> R {
    thread::scope(|sc| {
        let h = sc.spawn(blocked);
        settle(t, &h);
        then();
        h.join().expect("blocked thread")
    })
}

/// Gives the blocked thread time to block. Nothing is asserted about time: if the thread
/// had not blocked yet, it finds the event already there, and the result is the same.
fn settle<R>(_t: &T<'_>, h: &thread::ScopedJoinHandle<'_, R>) {
    for _ in 0..20 {
        if h.is_finished() {
            return;
        }
        thread::sleep(std::time::Duration::from_millis(1));
    }
}

scenario!(blocked_reader_sees_end_of_file_or_reset, |t| {
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let (c, s) = t.connected(ty, n);
        t.timeout(s, SO_RCVTIMEO, SAFETY_MS as i64);
        let got = while_blocked(
            t,
            || t.recv_block(s, 8, 0),
            || t.ok("close", t.api.close(c)),
        );
        t.want(&format!("{n} EOF"), got, Ok(B(vec![])));
        let (c, s) = t.connected(ty, &format!("{n}2"));
        t.timeout(s, SO_RCVTIMEO, SAFETY_MS as i64);
        t.ok("send", t.send(s, b"unread"));
        let got = while_blocked(
            t,
            || t.recv_block(s, 8, 0),
            || t.ok("close", t.api.close(c)),
        );
        t.rec(&format!("{n} peer closed with unread data"), got);
        let (c, s) = t.connected(ty, &format!("{n}3"));
        t.timeout(s, SO_RCVTIMEO, SAFETY_MS as i64);
        let got = while_blocked(
            t,
            || t.recv_block(s, 8, 0),
            || t.ok("shutdown", t.api.shutdown(c, SHUT_WR)),
        );
        t.want(&format!("{n} peer shut WR"), got, Ok(B(vec![])));
        let got = while_blocked(
            t,
            || t.recv_block(c, 8, 0),
            || t.ok("shutdown", t.api.shutdown(c, SHUT_RD)),
        );
        t.rec(&format!("{n} own RD shut while blocked"), got);
    }
});

scenario!(blocked_writer_sees_epipe, |t| {
    // (Not the peer closing: the writer is blocked because the peer has unread data, and
    // then Linux answers ECONNRESET or EPIPE depending on whether the writer had gone to
    // sleep yet.)
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let (c, s) = t.connected(ty, n);
        t.ok("sndbuf", t.setint(c, SO_SNDBUF, 4096));
        t.fill(c, 512);
        t.timeout(c, SO_SNDTIMEO, SAFETY_MS as i64);
        let got = while_blocked(
            t,
            || t.api.sendto(c, &[1u8; 512], 0, None),
            || t.ok("shutdown", t.api.shutdown(s, SHUT_RD)),
        );
        t.want(&format!("{n} peer shut RD"), got, Err(Errno::EPIPE));
        let (c, _s) = t.connected(ty, &format!("{n}2"));
        t.ok("sndbuf", t.setint(c, SO_SNDBUF, 4096));
        t.fill(c, 512);
        t.timeout(c, SO_SNDTIMEO, SAFETY_MS as i64);
        let got = while_blocked(
            t,
            || t.api.sendto(c, &[1u8; 512], 0, None),
            || t.ok("shutdown", t.api.shutdown(c, SHUT_WR)),
        );
        t.want(
            &format!("{n} own WR shut meanwhile"),
            got,
            Err(Errno::EPIPE),
        );
    }
});

scenario!(blocked_connect_sees_the_listener_close, |t| {
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let l = t.listener(ty, n, 1);
        let waiting = t.fill_backlog(ty, n);
        let c = t.sock(ty);
        t.timeout(c, SO_SNDTIMEO, SAFETY_MS as i64);
        let got = while_blocked(
            t,
            || t.api.connect(c, &t.addr(n)),
            || t.ok("close", t.api.close(l)),
        );
        t.want(
            &format!("{n} listener closed"),
            got,
            Err(Errno::ECONNREFUSED),
        );
        t.want(
            &format!("{n} unconnected"),
            t.peername(c),
            Err(Errno::ENOTCONN),
        );
        let reads: Vec<_> = waiting.iter().map(|&fd| t.recv(fd, 4)).collect();
        t.want(
            &format!("{n} every waiting client is reset"),
            reads.iter().all(|r| *r == Err(Errno::ECONNRESET)),
            true,
        );
    }
});

scenario!(blocked_datagram_sender_sees_the_receiver_close, |t| {
    let r = t.bound(SOCK_DGRAM, "r");
    let s = t.sock(SOCK_DGRAM);
    while t.sendto(s, b"f", "r").is_ok() {}
    t.timeout(s, SO_SNDTIMEO, SAFETY_MS as i64);
    let got = while_blocked(
        t,
        || t.api.sendto(s, b"x", 0, Some(&t.addr("r"))),
        || t.ok("close", t.api.close(r)),
    );
    t.want("receiver closed", got, Err(Errno::ECONNREFUSED));
    // Connected to it: the same, and the peer is forgotten.
    let r = t.bound(SOCK_DGRAM, "r2");
    let s = t.sock(SOCK_DGRAM);
    t.ok("connect", t.api.connect(s, &t.addr("r2")));
    while t.send(s, b"f").is_ok() {}
    t.timeout(s, SO_SNDTIMEO, SAFETY_MS as i64);
    let got = while_blocked(
        t,
        || t.api.sendto(s, b"x", 0, None),
        || t.ok("close", t.api.close(r)),
    );
    t.want("connected receiver closed", got, Err(Errno::ECONNREFUSED));
    t.want("peer forgotten", t.send(s, b"x"), Err(Errno::ENOTCONN));
});

scenario!(blocked_accept_and_reader_time_out_without_events, |t| {
    let l = t.listener(SOCK_STREAM, "l", 1);
    t.timeout(l, SO_RCVTIMEO, 20);
    t.want(
        "accept",
        t.api.accept4(l, None, None, 0).map(drop),
        Err(Errno::EAGAIN),
    );
    let (c, s) = t.connected(SOCK_SEQPACKET, "q");
    t.timeout(s, SO_RCVTIMEO, 20);
    t.want("recv", t.recv_block(s, 4, 0), Err(Errno::EAGAIN));
    // A partial record never exists; a stream reader with WAITALL returns what came.
    let (a, b) = t.pair(SOCK_STREAM);
    t.timeout(b, SO_RCVTIMEO, 20);
    t.ok("send", t.send(a, b"abc"));
    t.want(
        "WAITALL times out with a part",
        t.recv_block(b, 8, MSG_WAITALL),
        Ok(B(b"abc".to_vec())),
    );
    let _ = c;
});
