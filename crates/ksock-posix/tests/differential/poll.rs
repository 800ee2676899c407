//! poll: the events of each state, many descriptors, waking, odd entries.

use super::api::PollFd;
use super::harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::thread;

/// Everything a caller may ask for.
const ALL: i16 =
    POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLRDHUP;

scenario!(poll_connection_states, |t| {
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let u = t.sock(ty);
        t.rec(&format!("{n} new"), t.poll1(u, ALL));
        let b = t.bound(ty, &format!("{n}-b"));
        t.rec(&format!("{n} bound"), t.poll1(b, ALL));
        let l = t.listener(ty, n, 4);
        t.rec(&format!("{n} listening, empty"), t.poll1(l, ALL));
        let c = t.sock(ty);
        t.ok("connect", t.api.connect(c, &t.addr(n)));
        t.rec(&format!("{n} listening, one waiting"), t.poll1(l, ALL));
        t.rec(&format!("{n} client before accept"), t.poll1(c, ALL));
        let s = t.ok("accept", t.api.accept4(l, None, None, 0));
        t.rec(&format!("{n} connected, idle"), t.poll1(s, ALL));
        t.ok("send", t.send(c, b"data"));
        t.rec(&format!("{n} data waiting"), t.poll1(s, ALL));
        t.rec(&format!("{n} only POLLOUT asked"), t.poll1(s, POLLOUT));
        t.rec(&format!("{n} nothing asked"), t.poll1(s, 0));
        t.ok("drain", t.recv(s, 8));
        t.ok("shutdown", t.api.shutdown(c, SHUT_WR));
        t.rec(&format!("{n} peer shut WR"), t.poll1(s, ALL));
        t.rec(&format!("{n} shut WR, own view"), t.poll1(c, ALL));
        t.ok("shutdown", t.api.shutdown(s, SHUT_WR));
        t.rec(&format!("{n} both WR shut: s"), t.poll1(s, ALL));
        t.rec(&format!("{n} both WR shut: c"), t.poll1(c, ALL));
        t.ok("close", t.api.close(c));
        t.rec(&format!("{n} peer closed"), t.poll1(s, ALL));
        t.rec(&format!("{n} peer closed, nothing asked"), t.poll1(s, 0));
        for fd in [u, b, l, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(poll_shutdown_read_and_reset, |t| {
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let (c, s) = t.connected(ty, n);
        t.ok("shutdown RD", t.api.shutdown(c, SHUT_RD));
        t.rec(&format!("{n} own RD shut"), t.poll1(c, ALL));
        t.rec(&format!("{n} peer's RD shut"), t.poll1(s, ALL));
        let (c2, s2) = t.connected(ty, &format!("{n}2"));
        t.ok("send", t.send(c2, b"unread"));
        t.ok("close", t.api.close(s2));
        t.rec(&format!("{n} reset pending"), t.poll1(c2, ALL));
        t.rec(&format!("{n} SO_ERROR"), t.getint(c2, SO_ERROR));
        t.rec(&format!("{n} after SO_ERROR"), t.poll1(c2, ALL));
        for fd in [c, s, c2] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(poll_dgram_states, |t| {
    let u = t.sock(SOCK_DGRAM);
    t.rec("new", t.poll1(u, ALL));
    let r = t.bound(SOCK_DGRAM, "r");
    t.rec("bound", t.poll1(r, ALL));
    t.ok("send", t.sendto(u, b"x", "r"));
    t.rec("data", t.poll1(r, ALL));
    t.ok("connect", t.api.connect(u, &t.addr("r")));
    t.rec("connected sender", t.poll1(u, ALL));
    // A connected sender whose receiver's queue is full (and who is not the receiver's
    // peer) is not writable.
    while t.send(u, b"f").is_ok() {}
    t.rec("receiver full: sender", t.poll1(u, ALL));
    t.rec("receiver full: receiver", t.poll1(r, ALL));
    let other = t.sock(SOCK_DGRAM);
    t.rec("an unconnected sender is writable", t.poll1(other, ALL));
    t.ok("recv", t.recv(r, 4));
    t.rec("room again: sender", t.poll1(u, ALL));
    t.ok("shutdown", t.api.shutdown(u, SHUT_RD));
    t.rec("RD shut", t.poll1(u, ALL));
    t.ok("shutdown", t.api.shutdown(u, SHUT_WR));
    t.rec("RDWR shut", t.poll1(u, ALL));
    let (a, b) = t.pair(SOCK_DGRAM);
    t.ok("close", t.api.close(a));
    t.rec("socketpair peer closed", t.poll1(b, ALL));
});

scenario!(poll_odd_entries, |t| {
    let (a, b) = t.pair(SOCK_STREAM);
    // The other file first: opened after the close it could take the closed number.
    let o = t.ok("other fd", t.api.other_fd());
    let closed = t.sock(SOCK_STREAM);
    t.ok("close", t.api.close(closed));
    t.ok("send", t.send(b, b"x"));
    let mut fds = [
        PollFd::new(a, POLLIN),
        PollFd::new(-1, POLLIN),
        PollFd::new(closed, POLLIN),
        PollFd::new(a, POLLOUT),
        PollFd::new(-5, 0),
        PollFd::new(o, POLLIN | POLLOUT),
        PollFd::new(b, POLLIN),
    ];
    t.want("count", t.api.poll(&mut fds, 0), Ok(4));
    let ev: Vec<Ev> = fds.iter().map(|p| Ev(p.revents)).collect();
    t.rec("revents", ev);
    let mut none: [PollFd; 0] = [];
    t.want("no entries, no wait", t.api.poll(&mut none, 0), Ok(0));
    t.want("no entries, short wait", t.api.poll(&mut none, 10), Ok(0));
    let mut idle = [PollFd::new(b, POLLIN)];
    t.want("nothing ready, timeout", t.api.poll(&mut idle, 20), Ok(0));
    t.want("revents cleared", idle[0].revents, 0);
});

scenario!(poll_many_descriptors, |t| {
    let mut pairs = Vec::new();
    for _ in 0..40 {
        pairs.push(t.pair(SOCK_SEQPACKET));
    }
    for (i, (a, _)) in pairs.iter().enumerate() {
        if i % 7 == 3 {
            t.ok("send", t.send(*a, &[i as u8]));
        }
    }
    let mut fds: Vec<PollFd> = pairs.iter().map(|(_, b)| PollFd::new(*b, POLLIN)).collect();
    let n = t.api.poll(&mut fds, SAFETY_MS);
    t.want("ready", n, Ok(6));
    let which: Vec<usize> = fds
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .map(|(i, _)| i)
        .collect();
    t.want("which", which, vec![3, 10, 17, 24, 31, 38]);
});

scenario!(poll_wakes_on_each_kind_of_event, |t| {
    // Data.
    let (a, b) = t.pair(SOCK_STREAM);
    let woke = thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut p = [PollFd::new(b, POLLIN), PollFd::new(a, POLLIN)];
            let n = t.api.poll(&mut p, SAFETY_MS);
            (n, Ev(p[0].revents), Ev(p[1].revents))
        });
        t.ok("send", t.api.sendto(a, b"wake", 0, None));
        h.join().expect("poller")
    });
    t.rec("data", woke);
    // A connection to accept.
    let l = t.listener(SOCK_SEQPACKET, "l", 2);
    let woke = thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut p = [PollFd::new(l, POLLIN)];
            (t.api.poll(&mut p, SAFETY_MS), Ev(p[0].revents))
        });
        let c = t.sock(SOCK_SEQPACKET);
        t.ok("connect", t.api.connect(c, &t.addr("l")));
        h.join().expect("poller")
    });
    t.rec("connection", woke);
    // Room to write.
    let (c, s) = t.connected(SOCK_STREAM, "room");
    t.ok("sndbuf", t.setint(c, SO_SNDBUF, 4096));
    t.fill(c, 512);
    t.want("full: not writable", t.poll1(c, POLLOUT), Ev(0));
    let woke = thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut p = [PollFd::new(c, POLLOUT)];
            (t.api.poll(&mut p, SAFETY_MS), Ev(p[0].revents))
        });
        t.drain(s);
        h.join().expect("poller")
    });
    t.rec("room", woke);
    // The peer going away.
    let (x, y) = t.pair(SOCK_SEQPACKET);
    let woke = thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut p = [PollFd::new(y, POLLRDHUP)];
            (t.api.poll(&mut p, SAFETY_MS), Ev(p[0].revents))
        });
        t.ok("close", t.api.close(x));
        h.join().expect("poller")
    });
    t.rec("hang-up", woke);
});

scenario!(poll_out_while_the_peer_drains, |t| {
    let (c, s) = t.connected(SOCK_STREAM, "q");
    t.ok("sndbuf", t.setint(c, SO_SNDBUF, 4096));
    let sent = t.fill(c, 256);
    t.want("full", t.poll1(c, POLLOUT), Ev(0));
    // Read back a little over half of it.
    let mut got = 0;
    while got < sent / 2 + 256 {
        got += t.ok("recv", t.recv(s, 256)).0.len();
    }
    // Linux says POLLOUT only once at most a quarter of the send buffer is in use; ksock
    // whenever a write would make progress ("Differences from Linux" in the crate docs).
    t.differs("half drained", t.poll1(c, POLLOUT), Ev(0), Ev(POLLOUT));
    t.drain(s);
    t.want(
        "all drained",
        t.poll1(c, POLLOUT | POLLWRNORM),
        Ev(POLLOUT | POLLWRNORM),
    );
});

scenario!(poll_bad_arguments, |t| {
    let (a, _b) = t.pair(SOCK_STREAM);
    // More entries than the descriptor limit.
    let mut many = vec![PollFd::new(a, POLLIN); 1 << 20];
    t.want(
        "too many entries",
        t.api.poll(&mut many, 0).map(drop),
        Err(Errno::EINVAL),
    );
});
