//! UDP over the loopback: addresses, connect's filter, truncation, sizes, empty datagrams,
//! shutdown, dual-stack peers.

use super::harness::*;
use super::inet_harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::io::{IoSlice, IoSliceMut};

const ALL: i16 = POLLIN | POLLOUT | POLLRDHUP;

scenario!(udp_sendto_recvfrom_addresses, |t| {
    for d in FAMS {
        let f = fam(d);
        let (r, rp) = t.ibound(d, SOCK_DGRAM, "R");
        let s = t.isock(d, SOCK_DGRAM);
        t.rec(&format!("{f} sender before"), t.iname(s));
        t.want(
            &format!("{f} sendto"),
            t.isendto(s, b"ping", &lo_at(d, rp)),
            Ok(4),
        );
        // The first send bound the sender, on every address.
        let sp = t.iport(s);
        t.want(
            &format!("{f} sender port in range"),
            EPHEMERAL.contains(&sp),
            true,
        );
        t.label(sp, "S");
        t.rec(&format!("{f} sender after"), t.iname(s));
        t.rec(&format!("{f} sender peer"), t.ipeer(s));
        t.want(
            &format!("{f} recvfrom"),
            t.irecvfrom(r, 16),
            Ok((B(b"ping".to_vec()), format!("{}:S", lo_text(d)))),
        );
        t.want(
            &format!("{f} reply"),
            t.isendto(r, b"pong", &lo_at(d, sp)),
            Ok(4),
        );
        t.want(
            &format!("{f} reply from"),
            t.irecvfrom(s, 16),
            Ok((B(b"pong".to_vec()), format!("{}:R", lo_text(d)))),
        );
        // The sender's address cut to the caller's buffer, its length in full.
        t.want(
            &format!("{f} again"),
            t.isendto(s, b"cut", &lo_at(d, rp)),
            Ok(3),
        );
        t.wait(r, POLLIN);
        let mut buf = [0u8; 8];
        let mut a = [0u8; 6];
        let mut alen = 6u32;
        let n = t
            .api
            .recvfrom(r, &mut buf, MSG_DONTWAIT, Some(&mut a), Some(&mut alen));
        t.want(&format!("{f} short address: count"), n, Ok(3));
        t.rec(
            &format!("{f} short address"),
            (
                alen,
                u16::from_ne_bytes([a[0], a[1]]) as i32 == d,
                t.show_port(u16::from_be_bytes([a[2], a[3]])),
            ),
        );
        // recvmsg gives the name too.
        t.want(
            &format!("{f} once more"),
            t.isendto(s, b"msg", &lo_at(d, rp)),
            Ok(3),
        );
        t.wait(r, POLLIN);
        let mut name = [0u8; 64];
        let mut namelen = 64u32;
        let mut flags = -1;
        let mut b = [0u8; 8];
        let r2 = t.api.recvmsg(
            r,
            Some(&mut name),
            &mut namelen,
            &mut [IoSliceMut::new(&mut b)],
            MSG_DONTWAIT,
            &mut flags,
        );
        t.want(&format!("{f} recvmsg"), r2, Ok(3));
        t.rec(
            &format!("{f} recvmsg name and flags"),
            (t.show(&name[..namelen as usize]), flags),
        );
        for fd in [r, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(udp_connect_filters_and_names, |t| {
    for d in FAMS {
        let f = fam(d);
        let (a, ap) = t.ibound(d, SOCK_DGRAM, "A");
        let (b, _) = t.ibound(d, SOCK_DGRAM, "B");
        let r = t.isock(d, SOCK_DGRAM);
        t.want(
            &format!("{f} connect"),
            t.api.connect(r, &lo_at(d, ap)),
            Ok(()),
        );
        let rp = t.iport(r);
        t.label(rp, "R");
        // Connecting an unbound socket binds it, to the address that reaches the peer.
        t.rec(&format!("{f} names"), (t.iname(r), t.ipeer(r)));
        // Only the peer's datagrams come in.
        t.want(
            &format!("{f} from B"),
            t.isendto(b, b"b", &lo_at(d, rp)),
            Ok(1),
        );
        t.want(
            &format!("{f} from A"),
            t.isendto(a, b"a", &lo_at(d, rp)),
            Ok(1),
        );
        t.want(
            &format!("{f} received"),
            t.irecvfrom(r, 8),
            Ok((B(b"a".to_vec()), format!("{}:A", lo_text(d)))),
        );
        t.want(
            &format!("{f} nothing else"),
            t.recv(r, 8),
            Err(Errno::EAGAIN),
        );
        // send needs no address now; sendto another one still goes there.
        t.want(&format!("{f} send"), t.isend(r, b"to a"), Ok(4));
        t.want(&format!("{f} at A"), t.irecv(a, 8), Ok(B(b"to a".to_vec())));
        t.want(
            &format!("{f} sendto B"),
            t.isendto(r, b"to b", &lo_at(d, t.iport(b))),
            Ok(4),
        );
        t.want(
            &format!("{f} at B"),
            t.irecvfrom(b, 8),
            Ok((B(b"to b".to_vec()), format!("{}:R", lo_text(d)))),
        );
        // Connecting again changes the peer (and the filter).
        t.want(
            &format!("{f} connect B"),
            t.api.connect(r, &lo_at(d, t.iport(b))),
            Ok(()),
        );
        t.rec(&format!("{f} peer now"), t.ipeer(r));
        t.want(
            &format!("{f} from A again"),
            t.isendto(a, b"a2", &lo_at(d, rp)),
            Ok(2),
        );
        t.want(
            &format!("{f} from B again"),
            t.isendto(b, b"b2", &lo_at(d, rp)),
            Ok(2),
        );
        t.want(
            &format!("{f} only B's"),
            t.irecv(r, 8),
            Ok(B(b"b2".to_vec())),
        );
        t.want(
            &format!("{f} and nothing"),
            t.recv(r, 8),
            Err(Errno::EAGAIN),
        );
        for fd in [a, b, r] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(udp_queued_before_connect_stays, |t| {
    for d in FAMS {
        let f = fam(d);
        let (r, rp) = t.ibound(d, SOCK_DGRAM, "R");
        let (a, ap) = t.ibound(d, SOCK_DGRAM, "A");
        let (b, _) = t.ibound(d, SOCK_DGRAM, "B");
        t.want(
            &format!("{f} from B"),
            t.isendto(b, b"early", &lo_at(d, rp)),
            Ok(5),
        );
        t.wait(r, POLLIN);
        t.want(
            &format!("{f} connect A"),
            t.api.connect(r, &lo_at(d, ap)),
            Ok(()),
        );
        t.want(
            &format!("{f} what came before"),
            t.recvfrom(r, 8).map(|(x, y)| (x, t.show(&y.0))),
            Ok((B(b"early".to_vec()), format!("{}:B", lo_text(d)))),
        );
        for fd in [r, a, b] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(udp_truncation, |t| {
    for d in FAMS {
        let f = fam(d);
        let (r, rp) = t.ibound(d, SOCK_DGRAM, "R");
        let s = t.isock(d, SOCK_DGRAM);
        for _ in 0..4 {
            t.ok("send", t.isendto(s, b"0123456789", &lo_at(d, rp)));
        }
        t.wait_nread(r, 10);
        t.want(
            &format!("{f} short read"),
            t.recv(r, 4),
            Ok(B(b"0123".to_vec())),
        );
        t.wait(r, POLLIN);
        t.want(
            &format!("{f} MSG_TRUNC: full length"),
            t.api
                .recvfrom(r, &mut [0u8; 4], MSG_TRUNC | MSG_DONTWAIT, None, None),
            Ok(10),
        );
        t.wait(r, POLLIN);
        t.want(
            &format!("{f} peek cut"),
            t.recv_flags(r, 3, MSG_PEEK),
            Ok(B(b"012".to_vec())),
        );
        let mut b = [0u8; 6];
        let mut namelen = 0u32;
        let mut flags = -1;
        let n = t.api.recvmsg(
            r,
            None,
            &mut namelen,
            &mut [IoSliceMut::new(&mut b)],
            MSG_DONTWAIT,
            &mut flags,
        );
        t.want(
            &format!("{f} recvmsg"),
            (n, flags & MSG_TRUNC != 0),
            (Ok(6), true),
        );
        t.wait(r, POLLIN);
        t.want(
            &format!("{f} last whole"),
            t.recv(r, 64),
            Ok(B(b"0123456789".to_vec())),
        );
        t.want(
            &format!("{f} the rest was dropped"),
            t.recv(r, 64),
            Err(Errno::EAGAIN),
        );
        for fd in [r, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(udp_largest_datagram, |t| {
    // The largest UDP payload over IPv4 is 65507 bytes (65535 less the IPv4 and UDP
    // headers); one more is EMSGSIZE, connected or not.
    let (r, rp) = t.ibound(AF_INET, SOCK_DGRAM, "R");
    let s = t.isock(AF_INET, SOCK_DGRAM);
    let big = vec![7u8; 65508];
    t.want(
        "v4 65508",
        t.isendto(s, &big, &lo_at(AF_INET, rp)),
        Err(Errno::EMSGSIZE),
    );
    t.want(
        "v4 65507",
        t.isendto(s, &big[..65507], &lo_at(AF_INET, rp)),
        Ok(65507),
    );
    t.wait(r, POLLIN);
    t.want("v4 FIONREAD", t.nread(r), Ok(65507));
    t.want(
        "v4 arrives whole",
        t.recv(r, 70000).map(|b| b.0.len()),
        Ok(65507),
    );
    t.ok("connect", t.api.connect(s, &lo_at(AF_INET, rp)));
    t.want("v4 connected 65508", t.isend(s, &big), Err(Errno::EMSGSIZE));
    // IPv6: 65535 less the UDP header on Linux, which fragments on its 65536-byte
    // loopback; ksock's loopback carries one IP packet of at most 65535 bytes and never
    // fragments (SPEC section 7: "a datagram larger than the largest the stack can send:
    // EMSGSIZE"), so its limit is 65535 less the IPv6 and UDP headers.
    let (r6, rp6) = t.ibound(AF_INET6, SOCK_DGRAM, "R6");
    let s6 = t.isock(AF_INET6, SOCK_DGRAM);
    let big6 = vec![6u8; 65528];
    t.want(
        "v6 65528",
        t.isendto(s6, &big6, &lo_at(AF_INET6, rp6)),
        Err(Errno::EMSGSIZE),
    );
    t.differs(
        "v6 65488",
        t.isendto(s6, &big6[..65488], &lo_at(AF_INET6, rp6)),
        Ok(65488),
        Err(Errno::EMSGSIZE),
    );
    if t.is_linux() {
        // Drain what only Linux sent.
        t.wait(r6, POLLIN);
        t.ok("recv", t.recv(r6, 70000));
    }
    t.want(
        "v6 65487",
        t.isendto(s6, &big6[..65487], &lo_at(AF_INET6, rp6)),
        Ok(65487),
    );
    t.want(
        "v6 arrives whole",
        t.irecv(r6, 70000).map(|b| b.0.len()),
        Ok(65487),
    );
    for fd in [r, s, r6, s6] {
        t.ok("close", t.api.close(fd));
    }
});

scenario!(udp_destination_required, |t| {
    for d in FAMS {
        let f = fam(d);
        let s = t.isock(d, SOCK_DGRAM);
        t.want(
            &format!("{f} send"),
            t.isend(s, b"x"),
            Err(Errno::EDESTADDRREQ),
        );
        t.want(
            &format!("{f} sendmsg no name"),
            t.api.sendmsg(s, None, &[IoSlice::new(b"x")], SEND),
            Err(Errno::EDESTADDRREQ),
        );
        t.want(
            &format!("{f} port 0"),
            t.isendto(s, b"x", &lo_at(d, 0)),
            Err(Errno::EINVAL),
        );
        t.want(
            &format!("{f} short address"),
            t.isendto(s, b"x", &lo_at(d, 9)[..8]),
            Err(Errno::EINVAL),
        );
        t.rec(&format!("{f} still unbound"), t.iname(s));
        t.want(
            &format!("{f} recv unbound"),
            t.recv(s, 4),
            Err(Errno::EAGAIN),
        );
        t.want(&format!("{f} peer"), t.ipeer(s), Err(Errno::ENOTCONN));
        t.ok("close", t.api.close(s));
    }
});

scenario!(udp_empty_datagrams_and_fionread, |t| {
    for d in FAMS {
        let f = fam(d);
        let (r, rp) = t.ibound(d, SOCK_DGRAM, "R");
        let s = t.isock(d, SOCK_DGRAM);
        t.want(&format!("{f} empty FIONREAD"), t.nread(r), Ok(0));
        t.want(
            &format!("{f} send empty"),
            t.isendto(s, b"", &lo_at(d, rp)),
            Ok(0),
        );
        t.want(
            &format!("{f} send 5"),
            t.isendto(s, b"fives", &lo_at(d, rp)),
            Ok(5),
        );
        t.want(
            &format!("{f} send 2"),
            t.isendto(s, b"ab", &lo_at(d, rp)),
            Ok(2),
        );
        t.label(t.iport(s), "S");
        t.wait(r, POLLIN);
        t.rec(&format!("{f} poll"), t.poll1(r, ALL));
        t.want(&format!("{f} FIONREAD: the first"), t.nread(r), Ok(0));
        t.want(
            &format!("{f} empty one"),
            t.recvfrom(r, 8).map(|(b, a)| (b, t.show(&a.0))),
            Ok((B(vec![]), format!("{}:S", lo_text(d)))),
        );
        t.wait_nread(r, 5);
        t.want(&format!("{f} FIONREAD: next"), t.nread(r), Ok(5));
        t.want(
            &format!("{f} peek"),
            t.recv_flags(r, 8, MSG_PEEK),
            Ok(B(b"fives".to_vec())),
        );
        t.want(&format!("{f} read"), t.recv(r, 8), Ok(B(b"fives".to_vec())));
        t.wait_nread(r, 2);
        t.want(&format!("{f} FIONREAD: last"), t.nread(r), Ok(2));
        t.want(
            &format!("{f} read last"),
            t.recv(r, 8),
            Ok(B(b"ab".to_vec())),
        );
        t.want(&format!("{f} FIONREAD: none"), t.nread(r), Ok(0));
        t.want(
            &format!("{f} MSG_DONTWAIT on a blocking socket"),
            t.api.recvfrom(r, &mut [0u8; 4], MSG_DONTWAIT, None, None),
            Err(Errno::EAGAIN),
        );
        for fd in [r, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(udp_shutdown, |t| {
    for d in FAMS {
        let f = fam(d);
        let u = t.isock(d, SOCK_DGRAM);
        t.rec(&format!("{f} unconnected"), t.api.shutdown(u, SHUT_RDWR));
        let (a, ap) = t.ibound(d, SOCK_DGRAM, "A");
        let c = t.isock(d, SOCK_DGRAM);
        t.ok("connect", t.api.connect(c, &lo_at(d, ap)));
        t.want(&format!("{f} shut WR"), t.api.shutdown(c, SHUT_WR), Ok(()));
        t.want(&format!("{f} send"), t.isend(c, b"x"), Err(Errno::EPIPE));
        t.want(
            &format!("{f} sendto"),
            t.isendto(c, b"x", &lo_at(d, ap)),
            Err(Errno::EPIPE),
        );
        t.rec(&format!("{f} poll WR shut"), t.poll1(c, ALL));
        t.want(&format!("{f} shut RD"), t.api.shutdown(c, SHUT_RD), Ok(()));
        t.rec(&format!("{f} poll both shut"), t.poll1(c, ALL));
        t.timeout(c, SO_RCVTIMEO, SAFETY_MS as i64);
        t.want(
            &format!("{f} blocking recv"),
            t.recv_block(c, 8, 0),
            Ok(B(vec![])),
        );
        for fd in [u, a, c] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(udp_dual_stack_peers, |t| {
    let r = t.isock(AF_INET6, SOCK_DGRAM);
    t.ok("bind", t.api.bind(r, &sa(any(AF_INET6), 0)));
    let rp = t.iport(r);
    t.label(rp, "R");
    // A v4 sender reaches a [::] socket; it sees the sender as a mapped address.
    let s4 = t.isock(AF_INET, SOCK_DGRAM);
    t.want(
        "v4 sendto",
        t.isendto(s4, b"four", &lo_at(AF_INET, rp)),
        Ok(4),
    );
    t.label(t.iport(s4), "S4");
    t.want(
        "v6 receives",
        t.irecvfrom(r, 8),
        Ok((B(b"four".to_vec()), "[::ffff:127.0.0.1]:S4".to_string())),
    );
    t.want(
        "reply to the mapped address",
        t.isendto(r, b"back", &sa(mapped_lo(), t.iport(s4))),
        Ok(4),
    );
    t.want(
        "v4 receives",
        t.irecvfrom(s4, 8),
        Ok((B(b"back".to_vec()), "127.0.0.1:R".to_string())),
    );
    // A v6 sender to a mapped address is an IPv4 sender.
    let s6 = t.isock(AF_INET6, SOCK_DGRAM);
    t.want(
        "v6 sendto mapped",
        t.isendto(s6, b"m", &sa(mapped_lo(), rp)),
        Ok(1),
    );
    t.label(t.iport(s6), "S6");
    t.rec("v6 sender name", t.iname(s6));
    t.rec("from it", t.irecvfrom(r, 8));
    // Connected to a mapped address.
    t.ok("connect", t.api.connect(s6, &sa(mapped_lo(), rp)));
    t.rec("connected names", (t.iname(s6), t.ipeer(s6)));
    // IPV6_V6ONLY has no IPv4.
    let o = t.isock(AF_INET6, SOCK_DGRAM);
    t.ok("V6ONLY", t.setopt(o, IPPROTO_IPV6, IPV6_V6ONLY, 1));
    t.want(
        "V6ONLY sendto mapped",
        t.isendto(o, b"x", &sa(mapped_lo(), rp)),
        Err(Errno::ENETUNREACH),
    );
    t.want(
        "V6ONLY connect mapped",
        t.api.connect(o, &sa(mapped_lo(), rp)),
        Err(Errno::ENETUNREACH),
    );
    t.want(
        "v4 socket given sockaddr_in6",
        t.isendto(s4, b"x", &sa(mapped_lo(), rp)),
        Err(Errno::EAFNOSUPPORT),
    );
    for fd in [r, s4, s6, o] {
        t.ok("close", t.api.close(fd));
    }
});

scenario!(udp_send_to_a_closed_port, |t| {
    for d in FAMS {
        let f = fam(d);
        // A port held by a TCP socket: no UDP socket there.
        let (h, hp) = t.ibound(d, SOCK_STREAM, "H");
        let s = t.isock(d, SOCK_DGRAM);
        t.want(
            &format!("{f} unconnected sendto"),
            t.isendto(s, b"lost", &lo_at(d, hp)),
            Ok(4),
        );
        t.want(
            &format!("{f} unconnected: no error"),
            t.getint(s, SO_ERROR),
            Ok(0),
        );
        t.want(
            &format!("{f} unconnected: recv"),
            t.recv(s, 8),
            Err(Errno::EAGAIN),
        );
        t.ok("close", t.api.close(s));
        let c = t.isock(d, SOCK_DGRAM);
        t.ok("connect", t.api.connect(c, &lo_at(d, hp)));
        t.want(&format!("{f} connected send"), t.isend(c, b"lost"), Ok(4));
        // The ICMP port unreachable that comes back is the connected socket's error,
        // once: before any datagram, and not for sends.
        t.want(
            &format!("{f} connected poll"),
            t.poll_wait(c, 0, SAFETY_MS),
            Ev(POLLERR),
        );
        t.want(
            &format!("{f} connected recv"),
            t.recv(c, 8),
            Err(Errno::ECONNREFUSED),
        );
        t.want(
            &format!("{f} connected SO_ERROR"),
            t.getint(c, SO_ERROR),
            Ok(0),
        );
        t.want(
            &format!("{f} connected send again"),
            t.isend(c, b"lost"),
            Ok(4),
        );
        t.want(
            &format!("{f} comes back again"),
            t.poll_wait(c, 0, SAFETY_MS),
            Ev(POLLERR),
        );
        t.want(
            &format!("{f} SO_ERROR takes it"),
            t.getint(c, SO_ERROR),
            Ok(Errno::ECONNREFUSED.raw()),
        );
        t.want(&format!("{f} then recv"), t.recv(c, 8), Err(Errno::EAGAIN));
        for fd in [c, h] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(udp_connect_unspec_dissolves, |t| {
    for d in FAMS {
        let f = fam(d);
        let (a, ap) = t.ibound(d, SOCK_DGRAM, "A");
        let c = t.isock(d, SOCK_DGRAM);
        t.ok("connect", t.api.connect(c, &lo_at(d, ap)));
        t.label(t.iport(c), "C");
        let unspec = 0u16.to_ne_bytes().to_vec();
        // Not SPEC: the POSIX face's own documented limit ("connect(AF_UNSPEC) cannot
        // dissolve a datagram association: EOPNOTSUPP"), which the inet family would
        // honour (UdpSock::connect forgets its peer for an unnamed address).
        t.differs(
            &format!("{f} AF_UNSPEC"),
            t.api.connect(c, &unspec),
            Ok(()),
            Err(Errno::EOPNOTSUPP),
        );
        t.differs(
            &format!("{f} peer after"),
            t.ipeer(c),
            Err(Errno::ENOTCONN),
            Ok(format!("{}:A", lo_text(d))),
        );
        for fd in [a, c] {
            t.ok("close", t.api.close(fd));
        }
    }
});
