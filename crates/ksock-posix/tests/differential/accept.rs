//! accept and accept4: SPEC section 6's order, flags, addresses, unwinding.

use super::harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::thread;

scenario!(accept4_rejects_bad_flags_before_any_effect, |t| {
    let l = t.listener(SOCK_STREAM, "l", 4);
    let c = t.sock(SOCK_STREAM);
    t.ok("connect", t.api.connect(c, &t.addr("l")));
    t.ok("send", t.send(c, b"kept"));
    for flags in [
        1,
        MSG_DONTWAIT,
        O_APPEND,
        SOCK_NONBLOCK | 0x10,
        -1,
        i32::MIN,
    ] {
        let mut a = [0u8; 16];
        let mut len = 16u32;
        t.want(
            &format!("flags {flags:#x}"),
            t.api.accept4(l, Some(&mut a), Some(&mut len), flags),
            Err(Errno::EINVAL),
        );
        t.want("addrlen untouched", len, 16);
    }
    // Nothing was dequeued: the connection is still waiting, with its data.
    t.rec("listener readable", t.poll1(l, POLLIN));
    let s = t.ok("accept", t.api.accept4(l, None, None, 0));
    t.want("data", t.recv(s, 8), Ok(B(b"kept".to_vec())));
});

scenario!(accept4_checks_in_spec_order, |t| {
    let o = t.ok("other fd", t.api.other_fd());
    // 1. EBADF before 2. EINVAL.
    t.want(
        "bad fd, bad flags",
        t.api.accept4(-1, None, None, 0x10).map(drop),
        Err(Errno::EBADF),
    );
    t.want(
        "bad fd",
        t.api.accept4(0x3fff_0001, None, None, 0).map(drop),
        Err(Errno::EBADF),
    );
    // 2. EINVAL before 4. ENOTSOCK.
    t.want(
        "not a socket, bad flags",
        t.api.accept4(o, None, None, 0x10).map(drop),
        Err(Errno::EINVAL),
    );
    t.want(
        "not a socket",
        t.api.accept4(o, None, None, 0).map(drop),
        Err(Errno::ENOTSOCK),
    );
    // 6. The protocol's own refusals.
    let u = t.sock(SOCK_STREAM);
    t.want(
        "unbound",
        t.api.accept4(u, None, None, 0).map(drop),
        Err(Errno::EINVAL),
    );
    let b = t.bound(SOCK_SEQPACKET, "b");
    t.want(
        "bound, not listening",
        t.api.accept4(b, None, None, 0).map(drop),
        Err(Errno::EINVAL),
    );
    let (p, _q) = t.pair(SOCK_STREAM);
    t.want(
        "connected",
        t.api.accept4(p, None, None, 0).map(drop),
        Err(Errno::EINVAL),
    );
    let d = t.bound(SOCK_DGRAM, "d");
    t.want(
        "dgram",
        t.api.accept4(d, None, None, 0).map(drop),
        Err(Errno::EOPNOTSUPP),
    );
    let l = t.listener(SOCK_STREAM | SOCK_NONBLOCK, "l", 1);
    t.want(
        "empty, nonblocking",
        t.api.accept4(l, None, None, 0).map(drop),
        Err(Errno::EAGAIN),
    );
});

scenario!(accept4_modes_come_only_from_flags, |t| {
    for lflags in [0, SOCK_NONBLOCK] {
        let name = format!("l{lflags}");
        let l = t.ok("socket", t.api.socket(AF_UNIX, SOCK_STREAM | lflags, 0));
        t.ok("bind", t.api.bind(l, &t.addr(&name)));
        t.ok("listen", t.api.listen(l, 8));
        for flags in [0, SOCK_NONBLOCK, SOCK_CLOEXEC, SOCK_NONBLOCK | SOCK_CLOEXEC] {
            let c = t.sock(SOCK_STREAM);
            t.ok("connect", t.api.connect(c, &t.addr(&name)));
            let s = t.ok("accept4", t.api.accept4(l, None, None, flags));
            let what = format!("listener {lflags:#x} flags {flags:#x}");
            t.rec(&format!("{what} F_GETFL"), t.api.fcntl(s, F_GETFL, 0));
            t.rec(&format!("{what} F_GETFD"), t.api.fcntl(s, F_GETFD, 0));
            if flags & SOCK_NONBLOCK != 0 {
                t.want(
                    &format!("{what} recv"),
                    t.recv_block(s, 4, 0),
                    Err(Errno::EAGAIN),
                );
            }
            t.ok("close", t.api.close(c));
            t.ok("close", t.api.close(s));
        }
        t.ok("close", t.api.close(l));
    }
});

scenario!(accept_blocks_until_a_connection_or_timeout, |t| {
    let l = t.listener(SOCK_SEQPACKET, "l", 4);
    t.timeout(l, SO_RCVTIMEO, 30);
    t.want(
        "SO_RCVTIMEO",
        t.api.accept4(l, None, None, 0).map(drop),
        Err(Errno::EAGAIN),
    );
    t.timeout(l, SO_RCVTIMEO, SAFETY_MS as i64);
    let (acc, conn) = thread::scope(|sc| {
        let h = sc.spawn(|| t.api.accept4(l, None, None, 0));
        let c = t.sock(SOCK_SEQPACKET);
        let r = t.api.connect(c, &t.addr("l"));
        t.ok("send", t.send(c, b"hi"));
        (h.join().expect("accept thread"), r)
    });
    t.want("connect", conn, Ok(()));
    t.want("blocked accept", acc.is_ok(), true);
    t.want("data", t.recv(acc.unwrap_or(-1), 4), Ok(B(b"hi".to_vec())));
});

scenario!(accept_reports_the_peer_name, |t| {
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let l = t.listener(ty, n, 8);
        // A named client, a buffer that fits.
        let c = t.bound(ty, &format!("{n}-c"));
        t.ok("connect", t.api.connect(c, &t.addr(n)));
        let mut a = [0u8; 128];
        let mut len = 128u32;
        let s = t.api.accept4(l, Some(&mut a), Some(&mut len), 0);
        t.want(
            &format!("{n} named"),
            B(a[..len as usize].to_vec()),
            B(t.addr(&format!("{n}-c"))),
        );
        // Truncated: the full length comes back.
        let c2 = t.bound(ty, &format!("{n}-c2"));
        t.ok("connect", t.api.connect(c2, &t.addr(n)));
        let mut a = [0u8; 6];
        let mut len = 6u32;
        let s2 = t.api.accept4(l, Some(&mut a), Some(&mut len), 0);
        t.rec(&format!("{n} truncated"), (B(a.to_vec()), len));
        // Unnamed client: the family alone.
        let c3 = t.sock(ty);
        t.ok("connect", t.api.connect(c3, &t.addr(n)));
        let mut a = [0u8; 128];
        let mut len = 128u32;
        let s3 = t.api.accept4(l, Some(&mut a), Some(&mut len), 0);
        t.want(
            &format!("{n} unnamed"),
            B(a[..len as usize].to_vec()),
            B(vec![1, 0]),
        );
        // Length 0: nothing copied, the length reported.
        let c4 = t.sock(ty);
        t.ok("connect", t.api.connect(c4, &t.addr(n)));
        let mut len = 0u32;
        let s4 = t.api.accept4(l, None, Some(&mut len), 0);
        t.rec(&format!("{n} no buffer, addrlen 0"), (s4.is_ok(), len));
        // No address wanted: addrlen is not looked at.
        let c5 = t.sock(ty);
        t.ok("connect", t.api.connect(c5, &t.addr(n)));
        let mut len = 77u32;
        let s5 = t.api.accept4(l, None, Some(&mut len), 0);
        t.rec(&format!("{n} null addr"), (s5.is_ok(), len));
        for fd in [s, s2, s3, s4, s5] {
            t.ok("close", t.api.close(fd.unwrap_or(-1)));
        }
    }
});

scenario!(accept_failing_after_the_dequeue_drops_the_connection, |t| {
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let l = t.listener(ty | SOCK_NONBLOCK, n, 8);
        // A negative addrlen and a missing addrlen fail after the connection was taken off
        // the queue (Linux's move_addr_to_user): the new socket is closed, no descriptor
        // stays reserved.
        let c1 = t.sock(ty);
        t.ok("connect", t.api.connect(c1, &t.addr(n)));
        let mut a = [0u8; 16];
        let mut len = u32::MAX;
        t.want(
            &format!("{n} negative addrlen"),
            t.api.accept4(l, Some(&mut a), Some(&mut len), 0).map(drop),
            Err(Errno::EINVAL),
        );
        t.rec(&format!("{n} client sees"), t.recv(c1, 8));
        t.rec(&format!("{n} client write"), t.send(c1, b"x"));
        let c2 = t.sock(ty);
        t.ok("connect", t.api.connect(c2, &t.addr(n)));
        t.ok("send", t.send(c2, b"lost"));
        t.want(
            &format!("{n} no addrlen"),
            t.api.accept4(l, Some(&mut a), None, 0).map(drop),
            Err(Errno::EFAULT),
        );
        t.rec(&format!("{n} client 2 sees"), t.recv(c2, 8));
        t.want(
            &format!("{n} queue empty"),
            t.api.accept4(l, None, None, 0).map(drop),
            Err(Errno::EAGAIN),
        );
        // The descriptor numbers were given back: a new socket takes the lowest.
        let d = t.sock(ty);
        t.rec(&format!("{n} next fd works"), t.api.fcntl(d, F_GETFD, 0));
        for fd in [l, c1, c2, d] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(accept_hands_out_a_connection_whose_client_left, |t| {
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let l = t.listener(ty, n, 4);
        let c = t.sock(ty);
        t.ok("connect", t.api.connect(c, &t.addr(n)));
        t.ok("send", t.send(c, b"bye"));
        t.ok("close", t.api.close(c));
        let s = t.api.accept4(l, None, None, 0);
        t.want(&format!("{n} accepted"), s.is_ok(), true);
        let s = s.unwrap_or(-1);
        t.rec(
            &format!("{n} poll"),
            t.poll1(s, POLLIN | POLLOUT | POLLRDHUP),
        );
        t.want(&format!("{n} data"), t.recv(s, 8), Ok(B(b"bye".to_vec())));
        t.rec(&format!("{n} then"), t.recv(s, 8));
        t.rec(&format!("{n} write"), t.send(s, b"x"));
        t.rec(&format!("{n} peer name"), t.peername(s));
        t.ok("close", t.api.close(s));
        t.ok("close", t.api.close(l));
    }
});

scenario!(accept_takes_the_oldest_first, |t| {
    let l = t.listener(SOCK_SEQPACKET, "l", 8);
    let mut cs = Vec::new();
    for i in 0..5u8 {
        let c = t.sock(SOCK_SEQPACKET);
        t.ok("connect", t.api.connect(c, &t.addr("l")));
        t.ok("send", t.send(c, &[b'0' + i]));
        cs.push(c);
    }
    for i in 0..5u8 {
        let s = t.ok("accept", t.api.accept4(l, None, None, 0));
        t.want(&format!("#{i}"), t.recv(s, 4), Ok(B(vec![b'0' + i])));
        t.ok("close", t.api.close(s));
    }
});

scenario!(close_listener_resets_waiting_connections, |t| {
    for ty in CONN_TYPES {
        let n = ty_name(ty);
        let l = t.listener(ty, n, 4);
        let c = t.sock(ty);
        t.ok("connect", t.api.connect(c, &t.addr(n)));
        let c2 = t.sock(ty);
        t.ok("connect", t.api.connect(c2, &t.addr(n)));
        t.ok("send", t.send(c2, b"unread"));
        t.ok("close listener", t.api.close(l));
        for (k, fd) in [c, c2].into_iter().enumerate() {
            t.rec(
                &format!("{n} client {k} poll"),
                t.poll1(fd, POLLIN | POLLOUT | POLLRDHUP),
            );
            t.rec(&format!("{n} client {k} SO_ERROR"), t.getint(fd, SO_ERROR));
            t.rec(&format!("{n} client {k} read"), t.recv(fd, 8));
            t.rec(&format!("{n} client {k} read again"), t.recv(fd, 8));
            t.rec(&format!("{n} client {k} write"), t.send(fd, b"x"));
            t.rec(&format!("{n} client {k} peer"), t.peername(fd));
        }
        t.want(
            &format!("{n} name free"),
            t.api.connect(t.sock(ty), &t.addr(n)),
            Err(Errno::ECONNREFUSED),
        );
    }
});
