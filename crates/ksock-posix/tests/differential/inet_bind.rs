//! Binding: ephemeral ports, conflicts and SO_REUSEADDR, addresses no interface has,
//! address layouts, dual-stack and IPV6_V6ONLY, IPv4-mapped names.

use super::harness::*;
use super::inet_harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const TYPES: [i32; 2] = [SOCK_STREAM, SOCK_DGRAM];

fn tyn(ty: i32) -> &'static str {
    if ty == SOCK_STREAM { "tcp" } else { "udp" }
}

scenario!(bind_port_zero_is_ephemeral, |t| {
    for d in FAMS {
        for ty in TYPES {
            let n = format!("{} {}", fam(d), tyn(ty));
            let mut ports = Vec::new();
            for (what, ip) in [("loopback", lo(d)), ("any", any(d))] {
                for _ in 0..3 {
                    let s = t.isock(d, ty);
                    t.want(
                        &format!("{n} bind {what}"),
                        t.api.bind(s, &sa(ip, 0)),
                        Ok(()),
                    );
                    t.rec(&format!("{n} {what} name"), t.iname(s));
                    ports.push((s, t.iport(s)));
                }
            }
            let mut distinct: Vec<u16> = ports.iter().map(|p| p.1).collect();
            distinct.sort_unstable();
            distinct.dedup();
            t.want(&format!("{n} distinct ports"), distinct.len(), ports.len());
            for (s, _) in ports {
                t.ok("close", t.api.close(s));
            }
        }
    }
});

scenario!(bind_conflicts, |t| {
    for d in FAMS {
        for ty in TYPES {
            let n = format!("{} {}", fam(d), tyn(ty));
            let (h, p) = t.ibound(d, ty, "P");
            let s = t.isock(d, ty);
            t.want(
                &format!("{n} same address"),
                t.api.bind(s, &lo_at(d, p)),
                Err(Errno::EADDRINUSE),
            );
            t.want(
                &format!("{n} any address"),
                t.api.bind(s, &sa(any(d), p)),
                Err(Errno::EADDRINUSE),
            );
            t.rec(&format!("{n} after the failures"), t.iname(s));
            // The other version's loopback is another address.
            let other = if d == AF_INET { AF_INET6 } else { AF_INET };
            let o = t.isock(other, ty);
            t.want(
                &format!("{n} other version's loopback"),
                t.api.bind(o, &lo_at(other, p)),
                Ok(()),
            );
            // The other protocol's port of that number is another port.
            let oty = if ty == SOCK_STREAM {
                SOCK_DGRAM
            } else {
                SOCK_STREAM
            };
            let q = t.isock(d, oty);
            t.want(
                &format!("{n} other protocol"),
                t.api.bind(q, &lo_at(d, p)),
                Ok(()),
            );
            // Closed, the port is free at once (nothing was connected).
            t.ok("close", t.api.close(h));
            t.want(&format!("{n} freed"), t.api.bind(s, &lo_at(d, p)), Ok(()));
            t.want(
                &format!("{n} bound twice"),
                t.api.bind(s, &lo_at(d, 0)),
                Err(Errno::EINVAL),
            );
            for fd in [s, o, q] {
                t.ok("close", t.api.close(fd));
            }
        }
    }
});

scenario!(bind_any_and_dual_stack_conflicts, |t| {
    for ty in TYPES {
        let n = tyn(ty);
        // [::]:p (dual-stack) holds 127.0.0.1:p too.
        let (h, p) = t.ibound(AF_INET, ty, "P");
        let s = t.isock(AF_INET6, ty);
        t.want(
            &format!("{n} [::] over 127.0.0.1"),
            t.api.bind(s, &sin6(Ipv6Addr::UNSPECIFIED, p)),
            Err(Errno::EADDRINUSE),
        );
        t.want(
            &format!("{n} mapped over 127.0.0.1"),
            t.api.bind(s, &sa(mapped_lo(), p)),
            Err(Errno::EADDRINUSE),
        );
        // IPV6_V6ONLY: [::]:p leaves IPv4 alone.
        t.want(
            &format!("{n} V6ONLY"),
            t.setopt(s, IPPROTO_IPV6, IPV6_V6ONLY, 1),
            Ok(()),
        );
        t.want(
            &format!("{n} [::] V6ONLY over 127.0.0.1"),
            t.api.bind(s, &sin6(Ipv6Addr::UNSPECIFIED, p)),
            Ok(()),
        );
        t.want(
            &format!("{n} V6ONLY after bind"),
            t.setopt(s, IPPROTO_IPV6, IPV6_V6ONLY, 0),
            Err(Errno::EINVAL),
        );
        t.want(
            &format!("{n} V6ONLY reads"),
            t.getopt(s, IPPROTO_IPV6, IPV6_V6ONLY),
            Ok(1),
        );
        // 0.0.0.0:p over 127.0.0.1:p.
        let a = t.isock(AF_INET, ty);
        t.want(
            &format!("{n} 0.0.0.0 over 127.0.0.1"),
            t.api.bind(a, &sin(Ipv4Addr::UNSPECIFIED, p)),
            Err(Errno::EADDRINUSE),
        );
        for fd in [h, s, a] {
            t.ok("close", t.api.close(fd));
        }
        // The other way: 127.0.0.1:p under a dual-stack [::]:p.
        let w = t.isock(AF_INET6, ty);
        t.ok("bind", t.api.bind(w, &sin6(Ipv6Addr::UNSPECIFIED, 0)));
        let p = t.iport(w);
        t.label(p, "W");
        let v = t.isock(AF_INET, ty);
        t.want(
            &format!("{n} 127.0.0.1 under [::]"),
            t.api.bind(v, &sin(Ipv4Addr::LOCALHOST, p)),
            Err(Errno::EADDRINUSE),
        );
        let v6 = t.isock(AF_INET6, ty);
        t.want(
            &format!("{n} ::1 under [::]"),
            t.api.bind(v6, &sin6(Ipv6Addr::LOCALHOST, p)),
            Err(Errno::EADDRINUSE),
        );
        for fd in [w, v, v6] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(bind_reuseaddr_tcp, |t| {
    for d in FAMS {
        let f = fam(d);
        let set = |fd| t.ok("SO_REUSEADDR", t.setint(fd, SO_REUSEADDR, 1));
        // Both set, the holder not listening: allowed.
        let (h, p) = {
            let s = t.isock(d, SOCK_STREAM);
            set(s);
            t.ok("bind", t.api.bind(s, &lo_at(d, 0)));
            let p = t.iport(s);
            t.label(p, "P");
            (s, p)
        };
        let s2 = t.isock(d, SOCK_STREAM);
        t.want(
            &format!("{f} only the holder set"),
            t.api.bind(s2, &lo_at(d, p)),
            Err(Errno::EADDRINUSE),
        );
        set(s2);
        t.want(
            &format!("{f} both set"),
            t.api.bind(s2, &lo_at(d, p)),
            Ok(()),
        );
        // One of them may listen; the other may not then.
        t.want(&format!("{f} holder listens"), t.api.listen(h, 4), Ok(()));
        t.want(
            &format!("{f} second listens"),
            t.api.listen(s2, 4),
            Err(Errno::EADDRINUSE),
        );
        // A listening holder refuses even SO_REUSEADDR binds.
        let s3 = t.isock(d, SOCK_STREAM);
        set(s3);
        t.want(
            &format!("{f} over a listener"),
            t.api.bind(s3, &lo_at(d, p)),
            Err(Errno::EADDRINUSE),
        );
        // Only the newcomer set: refused.
        let (h2, p2) = t.ibound(d, SOCK_STREAM, "Q");
        let s4 = t.isock(d, SOCK_STREAM);
        set(s4);
        t.want(
            &format!("{f} only the newcomer set"),
            t.api.bind(s4, &lo_at(d, p2)),
            Err(Errno::EADDRINUSE),
        );
        t.want(
            &format!("{f} reads back"),
            t.getint(s4, SO_REUSEADDR),
            Ok(1),
        );
        t.want(&format!("{f} default"), t.getint(h2, SO_REUSEADDR), Ok(0));
        for fd in [h, s2, s3, h2, s4] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(bind_reuseaddr_udp, |t| {
    for d in FAMS {
        let f = fam(d);
        let a = t.isock(d, SOCK_DGRAM);
        t.ok("SO_REUSEADDR", t.setint(a, SO_REUSEADDR, 1));
        t.ok("bind", t.api.bind(a, &lo_at(d, 0)));
        let p = t.iport(a);
        t.label(p, "P");
        let b = t.isock(d, SOCK_DGRAM);
        t.want(
            &format!("{f} without"),
            t.api.bind(b, &lo_at(d, p)),
            Err(Errno::EADDRINUSE),
        );
        t.ok("SO_REUSEADDR", t.setint(b, SO_REUSEADDR, 1));
        t.want(
            &format!("{f} both set"),
            t.api.bind(b, &lo_at(d, p)),
            Ok(()),
        );
        t.rec(&format!("{f} names"), (t.iname(a), t.iname(b)));
        for fd in [a, b] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(bind_restart_while_connections_live, |t| {
    for d in FAMS {
        let f = fam(d);
        for reuse in [false, true] {
            let n = format!("{f} reuse {reuse}");
            let l = t.isock(d, SOCK_STREAM);
            if reuse {
                t.ok("SO_REUSEADDR", t.setint(l, SO_REUSEADDR, 1));
            }
            t.ok("bind", t.api.bind(l, &lo_at(d, 0)));
            t.ok("listen", t.api.listen(l, 4));
            let p = t.iport(l);
            t.label(p, "L");
            let c = t.iclient(d, p);
            let s = t.iaccept(l);
            t.ok("close", t.api.close(l));
            // The accepted connection holds the port (and the listener's SO_REUSEADDR).
            let l2 = t.isock(d, SOCK_STREAM);
            if reuse {
                t.ok("SO_REUSEADDR", t.setint(l2, SO_REUSEADDR, 1));
            }
            let r = t.api.bind(l2, &lo_at(d, p));
            t.want(
                &format!("{n} rebind"),
                r,
                if reuse {
                    Ok(())
                } else {
                    Err(Errno::EADDRINUSE)
                },
            );
            if r.is_ok() {
                t.want(&format!("{n} listen again"), t.api.listen(l2, 4), Ok(()));
                let c2 = t.iclient(d, p);
                let s2 = t.iaccept(l2);
                t.rec(&format!("{n} new connection"), t.iname(s2));
                for fd in [c2, s2] {
                    t.ok("close", t.api.close(fd));
                }
            }
            for fd in [l2, c, s] {
                t.ok("close", t.api.close(fd));
            }
        }
    }
});

scenario!(bind_address_not_available, |t| {
    for ty in TYPES {
        let n = tyn(ty);
        let s = t.isock(AF_INET, ty);
        t.want(
            &format!("{n} 10.1.2.3"),
            t.api.bind(s, &sin(Ipv4Addr::new(10, 1, 2, 3), 0)),
            Err(Errno::EADDRNOTAVAIL),
        );
        let s6 = t.isock(AF_INET6, ty);
        t.want(
            &format!("{n} 2001:db8::1"),
            t.api.bind(s6, &sin6("2001:db8::1".parse().unwrap(), 0)),
            Err(Errno::EADDRNOTAVAIL),
        );
        t.want(
            &format!("{n} ::ffff:10.1.2.3"),
            t.api.bind(
                s6,
                &sa(IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()), 0),
            ),
            Err(Errno::EADDRNOTAVAIL),
        );
        t.rec(&format!("{n} still unbound"), (t.iname(s), t.iname(s6)));
        t.want(
            &format!("{n} then binds"),
            t.api.bind(s, &lo_at(AF_INET, 0)),
            Ok(()),
        );
        for fd in [s, s6] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(bind_address_layouts, |t| {
    for ty in TYPES {
        let n = tyn(ty);
        let s = t.isock(AF_INET, ty);
        let good = sin(Ipv4Addr::LOCALHOST, 0);
        t.want(
            &format!("{n} v4 short"),
            t.api.bind(s, &good[..15]),
            Err(Errno::EINVAL),
        );
        t.want(
            &format!("{n} v4 empty"),
            t.api.bind(s, &[]),
            Err(Errno::EINVAL),
        );
        t.want(
            &format!("{n} v4 given sockaddr_in6"),
            t.api.bind(s, &sin6(Ipv6Addr::LOCALHOST, 0)),
            Err(Errno::EAFNOSUPPORT),
        );
        let mut unspec = good.clone();
        unspec[..2].copy_from_slice(&0u16.to_ne_bytes());
        t.want(
            &format!("{n} v4 AF_UNSPEC 127.0.0.1"),
            t.api.bind(s, &unspec),
            Err(Errno::EAFNOSUPPORT),
        );
        // Old programs bind AF_UNSPEC with the any address (Linux allows it).
        let any_unspec = vec![0u8; 16];
        t.want(
            &format!("{n} v4 AF_UNSPEC any"),
            t.api.bind(s, &any_unspec),
            Ok(()),
        );
        t.rec(&format!("{n} v4 name"), t.iname(s));
        let mut long = sin(Ipv4Addr::LOCALHOST, 0);
        long.extend_from_slice(&[0; 8]);
        let s2 = t.isock(AF_INET, ty);
        t.want(&format!("{n} v4 longer"), t.api.bind(s2, &long), Ok(()));
        let s6 = t.isock(AF_INET6, ty);
        t.want(
            &format!("{n} v6 given sockaddr_in"),
            t.api.bind(s6, &good),
            Err(Errno::EINVAL),
        );
        let mut wrongfam = sin6(Ipv6Addr::LOCALHOST, 0);
        wrongfam[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
        t.want(
            &format!("{n} v6 wrong family"),
            t.api.bind(s6, &wrongfam),
            Err(Errno::EAFNOSUPPORT),
        );
        // RFC 2133's sockaddr_in6 has no scope id: 24 bytes will do.
        let short6 = sin6(Ipv6Addr::LOCALHOST, 0);
        t.want(
            &format!("{n} v6 23 bytes"),
            t.api.bind(s6, &short6[..23]),
            Err(Errno::EINVAL),
        );
        t.want(
            &format!("{n} v6 24 bytes"),
            t.api.bind(s6, &short6[..24]),
            Ok(()),
        );
        t.rec(&format!("{n} v6 name"), t.iname(s6));
        for fd in [s, s2, s6] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(bind_mapped_and_v6only, |t| {
    for ty in TYPES {
        let n = tyn(ty);
        // A dual-stack socket binds IPv4 as a mapped address and names itself so.
        let s = t.isock(AF_INET6, ty);
        t.want(
            &format!("{n} mapped"),
            t.api.bind(s, &sa(mapped_lo(), 0)),
            Ok(()),
        );
        t.label(t.iport(s), "M");
        t.rec(&format!("{n} mapped name"), t.iname(s));
        // An IPV6_V6ONLY socket cannot.
        let o = t.isock(AF_INET6, ty);
        t.ok("V6ONLY", t.setopt(o, IPPROTO_IPV6, IPV6_V6ONLY, 1));
        t.want(
            &format!("{n} V6ONLY mapped"),
            t.api.bind(o, &sa(mapped_lo(), 0)),
            Err(Errno::EINVAL),
        );
        t.want(
            &format!("{n} V6ONLY on AF_INET"),
            t.setopt(t.isock(AF_INET, ty), IPPROTO_IPV6, IPV6_V6ONLY, 1),
            Err(Errno::ENOPROTOOPT),
        );
        for fd in [s, o] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(bind_dual_stack_listener_takes_v4, |t| {
    let l = t.isock(AF_INET6, SOCK_STREAM);
    t.ok("bind", t.api.bind(l, &sin6(Ipv6Addr::UNSPECIFIED, 0)));
    t.ok("listen", t.api.listen(l, 4));
    let p = t.iport(l);
    t.label(p, "L");
    t.rec("listener", t.iname(l));
    let c4 = t.iclient(AF_INET, p);
    t.label(t.iport(c4), "C4");
    t.rec("v4 client", (t.iname(c4), t.ipeer(c4)));
    let mut a = [0u8; 128];
    let mut alen = 128u32;
    t.wait(l, POLLIN);
    let s4 = t.ok("accept", t.api.accept4(l, Some(&mut a), Some(&mut alen), 0));
    t.rec("accept address", t.show(&a[..alen as usize]));
    t.rec("v4 accepted", (t.iname(s4), t.ipeer(s4)));
    let c6 = t.iclient(AF_INET6, p);
    t.label(t.iport(c6), "C6");
    let s6 = t.iaccept(l);
    t.rec("v6 accepted", (t.iname(s6), t.ipeer(s6)));
    t.want("v4 data", t.isend(c4, b"four"), Ok(4));
    t.want("v4 data arrives", t.irecv(s4, 8), Ok(B(b"four".to_vec())));
    for fd in [l, c4, s4, c6, s6] {
        t.ok("close", t.api.close(fd));
    }
});

scenario!(bind_v6only_listener_leaves_v4, |t| {
    let l = t.isock(AF_INET6, SOCK_STREAM);
    t.ok("V6ONLY", t.setopt(l, IPPROTO_IPV6, IPV6_V6ONLY, 1));
    t.ok("bind", t.api.bind(l, &sin6(Ipv6Addr::UNSPECIFIED, 0)));
    t.ok("listen", t.api.listen(l, 4));
    let p = t.iport(l);
    t.label(p, "L");
    // IPv4's port p is free: a v4 socket takes it (and does not listen).
    let h = t.isock(AF_INET, SOCK_STREAM);
    t.want(
        "v4 bind of the port",
        t.api.bind(h, &sin(Ipv4Addr::LOCALHOST, p)),
        Ok(()),
    );
    let c = t.isock(AF_INET, SOCK_STREAM);
    t.want(
        "v4 connect",
        t.api.connect(c, &sin(Ipv4Addr::LOCALHOST, p)),
        Err(Errno::ECONNREFUSED),
    );
    let c6 = t.isock(AF_INET6, SOCK_STREAM);
    t.want(
        "mapped connect",
        t.api.connect(c6, &sa(mapped_lo(), p)),
        Err(Errno::ECONNREFUSED),
    );
    let c7 = t.iclient(AF_INET6, p);
    let s7 = t.iaccept(l);
    t.rec("v6 accepted", t.ipeer(s7).map(|s| s.starts_with("[::1]:")));
    for fd in [l, h, c, c6, c7, s7] {
        t.ok("close", t.api.close(fd));
    }
});

scenario!(connect_v6_socket_to_v4_mapped, |t| {
    let (l, lp) = t.ilistener(AF_INET, 4, "L");
    let c = t.isock(AF_INET6, SOCK_STREAM);
    t.timeout(c, SO_SNDTIMEO, SAFETY_MS as i64);
    t.want("connect", t.api.connect(c, &sa(mapped_lo(), lp)), Ok(()));
    t.label(t.iport(c), "C");
    t.rec("client names", (t.iname(c), t.ipeer(c)));
    let s = t.iaccept(l);
    t.rec("server names", (t.iname(s), t.ipeer(s)));
    // An IPV6_V6ONLY socket has no IPv4.
    let o = t.isock(AF_INET6, SOCK_STREAM);
    t.ok("V6ONLY", t.setopt(o, IPPROTO_IPV6, IPV6_V6ONLY, 1));
    t.want(
        "V6ONLY connect",
        t.api.connect(o, &sa(mapped_lo(), lp)),
        Err(Errno::ENETUNREACH),
    );
    // An AF_INET socket takes no sockaddr_in6, an AF_INET6 one no sockaddr_in.
    let v4 = t.isock(AF_INET, SOCK_STREAM);
    t.want(
        "v4 given sockaddr_in6",
        t.api.connect(v4, &sa(mapped_lo(), lp)),
        Err(Errno::EAFNOSUPPORT),
    );
    t.want(
        "v6 given sockaddr_in",
        t.api.connect(o, &lo_at(AF_INET, lp)),
        Err(Errno::EINVAL),
    );
    for fd in [l, c, s, o, v4] {
        t.ok("close", t.api.close(fd));
    }
});

scenario!(connect_autobinds_and_any_means_loopback, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        // An unbound client gets an ephemeral port on the address that reaches the peer.
        let c = t.iclient(d, lp);
        let cp = t.iport(c);
        t.want(
            &format!("{f} client port in range"),
            EPHEMERAL.contains(&cp),
            true,
        );
        t.label(cp, "C");
        t.rec(&format!("{f} client name"), t.iname(c));
        // The any address as a destination is the loopback.
        let a = t.isock(d, SOCK_STREAM);
        t.timeout(a, SO_SNDTIMEO, SAFETY_MS as i64);
        t.want(
            &format!("{f} to any"),
            t.api.connect(a, &sa(any(d), lp)),
            Ok(()),
        );
        t.rec(&format!("{f} peer of that"), t.ipeer(a));
        // A bound client keeps its port.
        let (b, _) = t.ibound(d, SOCK_STREAM, "B");
        t.timeout(b, SO_SNDTIMEO, SAFETY_MS as i64);
        t.want(
            &format!("{f} bound client"),
            t.api.connect(b, &lo_at(d, lp)),
            Ok(()),
        );
        t.rec(&format!("{f} bound client name"), t.iname(b));
        let mut peers = Vec::new();
        for _ in 0..3 {
            let s = t.iaccept(l);
            peers.push(t.ok("peer", t.ipeer(s)));
            t.ok("close", t.api.close(s));
        }
        t.rec(&format!("{f} accepted"), peers);
        for fd in [l, c, a, b] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(bind_anywhere_in_127_8, |t| {
    // The loopback owns all of 127.0.0.0/8 (SPEC section 7: 127.0.0.1/8), not only
    // 127.0.0.1.
    let two = Ipv4Addr::new(127, 0, 0, 2);
    let l = t.isock(AF_INET, SOCK_STREAM);
    t.want("bind 127.0.0.2", t.api.bind(l, &sin(two, 0)), Ok(()));
    t.want("listen", t.api.listen(l, 4), Ok(()));
    let p = t.iport(l);
    t.label(p, "L");
    t.rec("name", t.iname(l));
    let c = t.isock(AF_INET, SOCK_STREAM);
    t.timeout(c, SO_SNDTIMEO, SAFETY_MS as i64);
    t.want("connect 127.0.0.2", t.api.connect(c, &sin(two, p)), Ok(()));
    t.label(t.iport(c), "C");
    t.rec("client", (t.iname(c), t.ipeer(c)));
    // A client bound to another loopback address sends from it.
    let b = t.isock(AF_INET, SOCK_STREAM);
    t.want(
        "bind 127.9.8.7",
        t.api.bind(b, &sin(Ipv4Addr::new(127, 9, 8, 7), 0)),
        Ok(()),
    );
    t.label(t.iport(b), "B");
    t.timeout(b, SO_SNDTIMEO, SAFETY_MS as i64);
    t.want("connect from it", t.api.connect(b, &sin(two, p)), Ok(()));
    let s1 = t.iaccept(l);
    let s2 = t.iaccept(l);
    t.rec("accepted", (t.ipeer(s1), t.ipeer(s2), t.iname(s2)));
    t.want("data", t.isend(b, b"127"), Ok(3));
    t.want("arrives", t.irecv(s2, 8), Ok(B(b"127".to_vec())));
    let u = t.isock(AF_INET, SOCK_DGRAM);
    t.want(
        "udp bind 127.1.1.1",
        t.api.bind(u, &sin(Ipv4Addr::new(127, 1, 1, 1), 0)),
        Ok(()),
    );
    t.label(t.iport(u), "U");
    let v = t.isock(AF_INET, SOCK_DGRAM);
    t.want(
        "udp sendto it",
        t.isendto(v, b"dg", &sin(Ipv4Addr::new(127, 1, 1, 1), t.iport(u))),
        Ok(2),
    );
    t.rec("udp from", t.irecvfrom(u, 8));
    for fd in [l, c, b, s1, s2, u, v] {
        t.ok("close", t.api.close(fd));
    }
});
