//! Options of TCP and UDP sockets: defaults, what a set reads back as, the values Linux
//! refuses, options of the wrong protocol, and what an accepted socket inherits.

use super::harness::*;
use super::inet_harness::*;
use ksock_posix::consts::*;

scenario!(inet_tcp_nodelay, |t| {
    for d in FAMS {
        let f = fam(d);
        let s = t.isock(d, SOCK_STREAM);
        t.rec(
            &format!("{f} default"),
            t.getopt(s, IPPROTO_TCP, TCP_NODELAY),
        );
        t.rec(
            &format!("{f} set 1"),
            t.setopt(s, IPPROTO_TCP, TCP_NODELAY, 1),
        );
        t.rec(&format!("{f} read"), t.getopt(s, IPPROTO_TCP, TCP_NODELAY));
        // Any nonzero value is on, and reads back as 1.
        t.rec(
            &format!("{f} set 7"),
            t.setopt(s, IPPROTO_TCP, TCP_NODELAY, 7),
        );
        t.rec(
            &format!("{f} read 7"),
            t.getopt(s, IPPROTO_TCP, TCP_NODELAY),
        );
        t.rec(
            &format!("{f} set 0"),
            t.setopt(s, IPPROTO_TCP, TCP_NODELAY, 0),
        );
        t.rec(
            &format!("{f} read 0"),
            t.getopt(s, IPPROTO_TCP, TCP_NODELAY),
        );
        // Still settable once connected, and data still flows.
        let (c, a) = t.tcp_pair(d);
        t.rec(
            &format!("{f} connected set"),
            t.setopt(c, IPPROTO_TCP, TCP_NODELAY, 1),
        );
        t.rec(
            &format!("{f} connected read"),
            t.getopt(c, IPPROTO_TCP, TCP_NODELAY),
        );
        for i in 0..4u8 {
            t.rec(&format!("{f} small send {i}"), t.isend(c, &[i; 3]));
        }
        t.rec(&format!("{f} all of it"), t.recv_exact(a, 12));
    }
});

scenario!(inet_keepalive_options, |t| {
    for d in FAMS {
        let f = fam(d);
        let s = t.isock(d, SOCK_STREAM);
        t.rec(
            &format!("{f} SO_KEEPALIVE"),
            t.getopt(s, SOL_SOCKET, SO_KEEPALIVE),
        );
        for (n, o) in [
            ("TCP_KEEPIDLE", TCP_KEEPIDLE),
            ("TCP_KEEPINTVL", TCP_KEEPINTVL),
            ("TCP_KEEPCNT", TCP_KEEPCNT),
        ] {
            t.rec(&format!("{f} {n} default"), t.getopt(s, IPPROTO_TCP, o));
            for v in [1, 30, 0, -1] {
                t.rec(&format!("{f} {n} set {v}"), t.setopt(s, IPPROTO_TCP, o, v));
                t.rec(&format!("{f} {n} read {v}"), t.getopt(s, IPPROTO_TCP, o));
            }
        }
        // The upper bounds: 32767 seconds for the times, 127 probes.
        for (n, o, top) in [
            ("TCP_KEEPIDLE", TCP_KEEPIDLE, 32767),
            ("TCP_KEEPINTVL", TCP_KEEPINTVL, 32767),
            ("TCP_KEEPCNT", TCP_KEEPCNT, 127),
        ] {
            t.rec(&format!("{f} {n} top"), t.setopt(s, IPPROTO_TCP, o, top));
            t.rec(
                &format!("{f} {n} past"),
                t.setopt(s, IPPROTO_TCP, o, top + 1),
            );
            t.rec(&format!("{f} {n} kept"), t.getopt(s, IPPROTO_TCP, o));
        }
        t.rec(
            &format!("{f} keepalive on"),
            t.setopt(s, SOL_SOCKET, SO_KEEPALIVE, 1),
        );
        t.rec(
            &format!("{f} keepalive read"),
            t.getopt(s, SOL_SOCKET, SO_KEEPALIVE),
        );
        t.rec(
            &format!("{f} keepalive 5"),
            t.setopt(s, SOL_SOCKET, SO_KEEPALIVE, 5),
        );
        t.rec(
            &format!("{f} keepalive read 5"),
            t.getopt(s, SOL_SOCKET, SO_KEEPALIVE),
        );
    }
});

scenario!(inet_hop_limits, |t| {
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let n = ty_name(ty);
        let s = t.isock(AF_INET, ty);
        t.rec(
            &format!("{n} IP_TTL default"),
            t.getopt(s, IPPROTO_IP, IP_TTL),
        );
        for v in [1, 255, 0, 256, -2, 17, -1] {
            t.rec(
                &format!("{n} IP_TTL set {v}"),
                t.setopt(s, IPPROTO_IP, IP_TTL, v),
            );
            t.rec(
                &format!("{n} IP_TTL read {v}"),
                t.getopt(s, IPPROTO_IP, IP_TTL),
            );
        }
        let s6 = t.isock(AF_INET6, ty);
        t.rec(
            &format!("{n} IPV6_UNICAST_HOPS default"),
            t.getopt(s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS),
        );
        for v in [1, 255, 0, 256, -2, 9, -1] {
            t.rec(
                &format!("{n} IPV6_UNICAST_HOPS set {v}"),
                t.setopt(s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, v),
            );
            t.rec(
                &format!("{n} IPV6_UNICAST_HOPS read {v}"),
                t.getopt(s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS),
            );
        }
        // An IPv6 option on an IPv4 socket.
        t.rec(
            &format!("{n} IPV6_UNICAST_HOPS on v4"),
            t.getopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS),
        );
    }
});

scenario!(inet_identity_options, |t| {
    for d in FAMS {
        let f = fam(d);
        for ty in [SOCK_STREAM, SOCK_DGRAM] {
            let n = ty_name(ty);
            let s = t.isock(d, ty);
            for (o, on) in [
                ("SO_TYPE", SO_TYPE),
                ("SO_PROTOCOL", SO_PROTOCOL),
                ("SO_DOMAIN", SO_DOMAIN),
                ("SO_ACCEPTCONN", SO_ACCEPTCONN),
                ("SO_ERROR", SO_ERROR),
                ("SO_REUSEADDR", SO_REUSEADDR),
            ] {
                t.rec(&format!("{f} {n} {o}"), t.getopt(s, SOL_SOCKET, on));
            }
            // The wrong protocol's level.
            let other = if ty == SOCK_STREAM {
                IPPROTO_UDP
            } else {
                IPPROTO_TCP
            };
            let name = if ty == SOCK_STREAM { 1 } else { TCP_NODELAY };
            t.rec(
                &format!("{f} {n} other level get"),
                t.getopt(s, other, name),
            );
            t.rec(
                &format!("{f} {n} other level set"),
                t.setopt(s, other, name, 1),
            );
            t.rec(
                &format!("{f} {n} unknown level get"),
                t.getopt(s, 1234, name),
            );
            t.rec(
                &format!("{f} {n} unknown level set"),
                t.setopt(s, 1234, name, 1),
            );
        }
        let (l, _) = t.ilistener(d, 4, "L");
        t.rec(
            &format!("{f} listener SO_ACCEPTCONN"),
            t.getopt(l, SOL_SOCKET, SO_ACCEPTCONN),
        );
        // The read-only ones cannot be set.
        t.rec(
            &format!("{f} set SO_TYPE"),
            t.setopt(l, SOL_SOCKET, SO_TYPE, SOCK_DGRAM),
        );
        t.rec(
            &format!("{f} set SO_PROTOCOL"),
            t.setopt(l, SOL_SOCKET, SO_PROTOCOL, 17),
        );
        t.rec(
            &format!("{f} set SO_DOMAIN"),
            t.setopt(l, SOL_SOCKET, SO_DOMAIN, d),
        );
    }
});

scenario!(inet_buffer_sizes, |t| {
    for ty in [SOCK_STREAM, SOCK_DGRAM] {
        let n = ty_name(ty);
        let s = t.isock(AF_INET, ty);
        for (o, on) in [("SO_RCVBUF", SO_RCVBUF), ("SO_SNDBUF", SO_SNDBUF)] {
            // A size set reads back doubled, and at least the minimum. (The maximum is the
            // host's `net.core.rmem_max`/`wmem_max`, so it is not compared.)
            for v in [65536, 4096, 1, 0] {
                t.rec(&format!("{n} {o} set {v}"), t.setopt(s, SOL_SOCKET, on, v));
                t.rec(&format!("{n} {o} read {v}"), t.getopt(s, SOL_SOCKET, on));
            }
        }
    }
    // Sizes set before connecting carry the connection: 256 KiB goes through a 4 KiB
    // receive buffer intact, in order.
    let (l, lp) = t.ilistener(AF_INET, 4, "L");
    t.ok("rcvbuf", t.setopt(l, SOL_SOCKET, SO_RCVBUF, 4096));
    let c = t.isock(AF_INET, SOCK_STREAM);
    t.ok("sndbuf", t.setopt(c, SOL_SOCKET, SO_SNDBUF, 4096));
    t.want("connect", t.api.connect(c, &lo_at(AF_INET, lp)), Ok(()));
    let a = t.iaccept(l);
    t.rec("accepted rcvbuf", t.getopt(a, SOL_SOCKET, SO_RCVBUF));
    let data: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let (tx, rx) = (c, a);
    let got = std::thread::scope(|sc| {
        let w = sc.spawn(|| t.send_all(tx, &data));
        let got = t.recv_exact(rx, data.len());
        let _ = w.join();
        got
    });
    t.want("intact", got == B(data.clone()), true);
});

scenario!(inet_linger_values, |t| {
    for d in FAMS {
        let f = fam(d);
        let s = t.isock(d, SOCK_STREAM);
        t.rec(&format!("{f} default"), t.linger(s));
        // Off with a time: the time is not kept.
        t.rec(&format!("{f} set 0 9"), t.set_linger(s, 0, 9));
        t.rec(&format!("{f} read off"), t.linger(s));
        t.rec(&format!("{f} set 1 5"), t.set_linger(s, 1, 5));
        t.rec(&format!("{f} read"), t.linger(s));
        // Any nonzero l_onoff is on, and reads back as 1.
        t.rec(&format!("{f} set 7 0"), t.set_linger(s, 7, 0));
        t.rec(&format!("{f} read 7 0"), t.linger(s));
        // Short option buffers.
        t.rec(
            &format!("{f} short set"),
            t.api.setsockopt(s, SOL_SOCKET, SO_LINGER, &[1, 0, 0, 0]),
        );
        let mut v = [0u8; 4];
        let mut len = 4u32;
        let r = t
            .api
            .getsockopt(s, SOL_SOCKET, SO_LINGER, Some(&mut v), Some(&mut len));
        t.rec(&format!("{f} short get"), (r, len));
    }
});

scenario!(inet_accepted_inherits, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        t.ok("nodelay", t.setopt(l, IPPROTO_TCP, TCP_NODELAY, 1));
        t.ok("keepalive", t.setopt(l, SOL_SOCKET, SO_KEEPALIVE, 1));
        t.ok("idle", t.setopt(l, IPPROTO_TCP, TCP_KEEPIDLE, 33));
        t.ok("linger", t.set_linger(l, 1, 4));
        t.ok("ttl", {
            if d == AF_INET6 {
                t.setopt(l, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 21)
            } else {
                t.setopt(l, IPPROTO_IP, IP_TTL, 21)
            }
        });
        let c = t.iclient(d, lp);
        let a = t.iaccept(l);
        t.rec(
            &format!("{f} nodelay"),
            t.getopt(a, IPPROTO_TCP, TCP_NODELAY),
        );
        t.rec(
            &format!("{f} keepalive"),
            t.getopt(a, SOL_SOCKET, SO_KEEPALIVE),
        );
        t.rec(&format!("{f} idle"), t.getopt(a, IPPROTO_TCP, TCP_KEEPIDLE));
        t.rec(&format!("{f} linger"), t.linger(a));
        t.rec(
            &format!("{f} ttl"),
            if d == AF_INET6 {
                t.getopt(a, IPPROTO_IPV6, IPV6_UNICAST_HOPS)
            } else {
                t.getopt(a, IPPROTO_IP, IP_TTL)
            },
        );
        // The client's own, untouched.
        t.rec(
            &format!("{f} client nodelay"),
            t.getopt(c, IPPROTO_TCP, TCP_NODELAY),
        );
        t.rec(
            &format!("{f} client keepalive"),
            t.getopt(c, SOL_SOCKET, SO_KEEPALIVE),
        );
        // TCP_MAXSEG reads without failing once connected (its value is the path's).
        t.rec(
            &format!("{f} maxseg readable"),
            t.getopt(a, IPPROTO_TCP, TCP_MAXSEG).map(|v| v > 0),
        );
    }
});
