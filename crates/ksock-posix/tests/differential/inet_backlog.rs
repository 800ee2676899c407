//! TCP listen backlogs: a listener nobody accepts from, connects beyond its backlog
//! (dropped SYNs: no reset, the client retries), `EALREADY`, accept's own rules.

use super::harness::*;
use super::inet_harness::*;
use ksock::Errno;
use ksock_posix::consts::*;

const ALL: i16 = POLLIN | POLLOUT | POLLRDHUP;

/// How many connections a listener of `backlog` admits before anyone accepts: Linux one
/// more than its backlog (`sk_acceptq_is_full` is `>`), SPEC section 7 the backlog.
fn admitted(t: &T<'_>, backlog: usize) -> usize {
    if t.is_linux() { backlog + 1 } else { backlog }
}

/// Connects `n` nonblocking clients that the listener at `port` admits, each one's
/// handshake over before the next starts; returns them. Checks without logging: `n`
/// differs between the sides.
#[track_caller]
fn fill(t: &T<'_>, d: i32, l: i32, port: u16, n: usize) -> Vec<i32> {
    let mut v = Vec::new();
    for i in 0..n {
        let c = t.isock(d, SOCK_STREAM | SOCK_NONBLOCK);
        let side = t.api_side();
        assert_eq!(
            t.api.connect(c, &lo_at(d, port)),
            Err(Errno::EINPROGRESS),
            "[{side}] fill {i}"
        );
        assert_eq!(
            t.wait(c, POLLOUT),
            Ev(POLLOUT),
            "[{side}] fill {i} connected"
        );
        t.label(t.iport(c), &format!("C{i}"));
        v.push(c);
    }
    t.linux_acceptq(l, n);
    v
}

impl T<'_> {
    /// Linux only: waits until `n` connections are on the listener's accept queue (its
    /// softirq finishes the server's side of a handshake after the client's), so that a
    /// SYN sent next meets a full queue. The ksock loopback has finished by then.
    pub fn linux_acceptq(&self, l: i32, n: usize) {
        if !self.is_linux() {
            return;
        }
        let until = std::time::Instant::now() + std::time::Duration::from_millis(SAFETY_MS as u64);
        loop {
            let mut info = [0u8; std::mem::size_of::<libc::tcp_info>()];
            let mut len = info.len() as u32;
            self.ok(
                "TCP_INFO",
                self.api.getsockopt(
                    l,
                    IPPROTO_TCP,
                    libc::TCP_INFO,
                    Some(&mut info),
                    Some(&mut len),
                ),
            );
            // struct tcp_info: 8 bytes of u8 fields, then rto, ato, snd_mss, rcv_mss and
            // unacked, which is the accept queue's length on a listener.
            let unacked = u32::from_ne_bytes([info[24], info[25], info[26], info[27]]);
            if unacked as usize >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "the accept queue never filled"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

scenario!(tcp_backlog_full_drops_without_reset, |t| {
    for d in FAMS {
        let f = fam(d);
        let backlog = 2;
        let (l, lp) = t.ilistener(d, backlog as i32, "L");
        let n = admitted(t, backlog);
        // SPEC section 7: the backlog counts the connections waiting; Linux lets one more
        // wait.
        t.differs(&format!("{f} admitted"), n, 3, 2);
        let done = fill(t, d, l, lp, n);
        t.rec(&format!("{f} listener full"), t.poll1(l, ALL));
        // Beyond the backlog: the SYN is dropped, nothing comes back, the client waits
        // (and retries).
        let mut waiting = Vec::new();
        for i in 0..2 {
            let c = t.isock(d, SOCK_STREAM | SOCK_NONBLOCK);
            t.want(
                &format!("{f} extra {i}: connect"),
                t.api.connect(c, &lo_at(d, lp)),
                Err(Errno::EINPROGRESS),
            );
            t.want(&format!("{f} extra {i}: poll"), t.poll1(c, ALL), Ev(0));
            t.want(
                &format!("{f} extra {i}: again"),
                t.api.connect(c, &lo_at(d, lp)),
                Err(Errno::EALREADY),
            );
            t.want(
                &format!("{f} extra {i}: SO_ERROR"),
                t.getint(c, SO_ERROR),
                Ok(0),
            );
            t.want(
                &format!("{f} extra {i}: peer"),
                t.ipeer(c),
                Err(Errno::ENOTCONN),
            );
            t.rec(&format!("{f} extra {i}: name"), t.iname(c));
            waiting.push(c);
        }
        // The admitted ones are accepted in the order their handshakes finished.
        let mut peers = Vec::new();
        for _ in 0..n {
            let s = t.iaccept(l);
            peers.push(t.ok("getpeername", t.ipeer(s)));
            t.ok("close", t.api.close(s));
        }
        let order = |k: usize| (0..k).map(|i| format!("{}:C{i}", lo_text(d))).collect();
        t.differs(&format!("{f} accepted"), peers, order(3), order(2));
        // Room again: the waiting clients' retransmitted SYNs get in.
        for i in 0..waiting.len() {
            let s = t.iaccept(l);
            t.rec(&format!("{f} late accept {i}"), s >= 0);
            t.ok("close", t.api.close(s));
        }
        for (i, c) in waiting.iter().enumerate() {
            t.want(
                &format!("{f} late {i}: connected"),
                t.wait(*c, POLLOUT),
                Ev(POLLOUT),
            );
            t.want(
                &format!("{f} late {i}: SO_ERROR"),
                t.getint(*c, SO_ERROR),
                Ok(0),
            );
            t.want(
                &format!("{f} late {i}: connect reports"),
                t.api.connect(*c, &lo_at(d, lp)),
                Ok(()),
            );
            t.want(
                &format!("{f} late {i}: then"),
                t.api.connect(*c, &lo_at(d, lp)),
                Err(Errno::EISCONN),
            );
        }
        for fd in done.into_iter().chain(waiting).chain([l]) {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_backlog_full_blocking_connect_times_out, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 1, "L");
        let n = admitted(t, 1);
        let done = fill(t, d, l, lp, n);
        let c = t.isock(d, SOCK_STREAM);
        t.timeout(c, SO_SNDTIMEO, 100);
        // The handshake goes on after the timeout (as on Linux).
        t.want(
            &format!("{f} blocking connect"),
            t.api.connect(c, &lo_at(d, lp)),
            Err(Errno::EINPROGRESS),
        );
        t.rec(&format!("{f} poll"), t.poll1(c, ALL));
        t.rec(
            &format!("{f} blocking connect again"),
            t.api.connect(c, &lo_at(d, lp)),
        );
        t.nonblock(c, true);
        t.want(
            &format!("{f} nonblocking connect again"),
            t.api.connect(c, &lo_at(d, lp)),
            Err(Errno::EALREADY),
        );
        // Closing a client whose handshake goes on sends nothing.
        t.ok("close", t.api.close(c));
        for _ in 0..n {
            let s = t.iaccept(l);
            t.ok("close", t.api.close(s));
        }
        t.nonblock(l, true);
        t.want(
            &format!("{f} nothing more"),
            t.api.accept4(l, None, None, 0),
            Err(Errno::EAGAIN),
        );
        for fd in done.into_iter().chain([l]) {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_backlog_zero_admits_one, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 0, "L");
        // listen(0): Linux's rule (backlog + 1) and SPEC's (at least one) agree on one.
        let done = fill(t, d, l, lp, 1);
        let c = t.isock(d, SOCK_STREAM | SOCK_NONBLOCK);
        t.want(
            &format!("{f} second"),
            t.api.connect(c, &lo_at(d, lp)),
            Err(Errno::EINPROGRESS),
        );
        t.want(&format!("{f} second waits"), t.poll1(c, ALL), Ev(0));
        let s = t.iaccept(l);
        t.rec(&format!("{f} accepted"), t.ipeer(s));
        for fd in done.into_iter().chain([c, s, l]) {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_listen_again_grows_the_backlog, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 1, "L");
        let mut all = fill(t, d, l, lp, admitted(t, 1));
        t.want(&format!("{f} listen again"), t.api.listen(l, 3), Ok(()));
        let more = admitted(t, 3) - admitted(t, 1);
        t.rec(&format!("{f} more admitted"), more);
        for i in 0..more {
            let c = t.isock(d, SOCK_STREAM | SOCK_NONBLOCK);
            t.want(
                &format!("{f} more {i}"),
                t.api.connect(c, &lo_at(d, lp)),
                Err(Errno::EINPROGRESS),
            );
            t.want(&format!("{f} more {i} in"), t.wait(c, POLLOUT), Ev(POLLOUT));
            all.push(c);
        }
        for _ in 0..all.len() {
            let s = t.iaccept(l);
            t.ok("close", t.api.close(s));
        }
        for fd in all.into_iter().chain([l]) {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_accept_rules, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        t.nonblock(l, true);
        t.want(
            &format!("{f} empty"),
            t.api.accept4(l, None, None, 0),
            Err(Errno::EAGAIN),
        );
        t.want(
            &format!("{f} bad flags"),
            t.api.accept4(l, None, None, 0x40),
            Err(Errno::EINVAL),
        );
        let c = t.iclient(d, lp);
        t.wait(l, POLLIN);
        let s = t.ok(
            "accept4",
            t.api.accept4(l, None, None, SOCK_NONBLOCK | SOCK_CLOEXEC),
        );
        t.rec(
            &format!("{f} accepted flags"),
            (
                t.api.fcntl(s, F_GETFL, 0).map(|v| v & O_NONBLOCK != 0),
                t.api.fcntl(s, F_GETFD, 0),
            ),
        );
        t.want(
            &format!("{f} accepted nonblocking"),
            t.recv(s, 4),
            Err(Errno::EAGAIN),
        );
        let u = t.isock(d, SOCK_STREAM);
        t.want(
            &format!("{f} not listening"),
            t.api.accept4(u, None, None, 0),
            Err(Errno::EINVAL),
        );
        t.want(
            &format!("{f} connected"),
            t.api.accept4(c, None, None, 0),
            Err(Errno::EINVAL),
        );
        let g = t.isock(d, SOCK_DGRAM);
        t.want(
            &format!("{f} datagram"),
            t.api.accept4(g, None, None, 0),
            Err(Errno::EOPNOTSUPP),
        );
        t.want(
            &format!("{f} datagram listen"),
            t.api.listen(g, 1),
            Err(Errno::EOPNOTSUPP),
        );
        for fd in [l, c, s, u, g] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_listen_unbound_autobinds, |t| {
    for d in FAMS {
        let f = fam(d);
        let l = t.isock(d, SOCK_STREAM);
        t.want(&format!("{f} listen"), t.api.listen(l, 4), Ok(()));
        let p = t.iport(l);
        t.label(p, "L");
        // An ephemeral port on every address.
        t.rec(&format!("{f} name"), t.iname(l));
        t.want(&format!("{f} in range"), EPHEMERAL.contains(&p), true);
        t.want(
            &format!("{f} SO_ACCEPTCONN"),
            t.getint(l, SO_ACCEPTCONN),
            Ok(1),
        );
        let c = t.iclient(d, p);
        let s = t.iaccept(l);
        t.rec(&format!("{f} accepted name"), t.iname(s));
        t.want(
            &format!("{f} bind after"),
            t.api.bind(l, &lo_at(d, 0)),
            Err(Errno::EINVAL),
        );
        for fd in [l, c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});
