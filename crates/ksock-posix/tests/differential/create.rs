//! socket, socketpair: arguments, flags, what a new socket reports.

use super::harness::*;
use ksock::Errno;
use ksock_posix::consts::*;

scenario!(socket_rejects_bad_arguments, |t| {
    let a = t.api;
    for d in [-1, 46, 255, 0x10001] {
        t.want(
            &format!("socket(domain {d})"),
            a.socket(d, SOCK_STREAM, 0).map(drop),
            Err(Errno::EAFNOSUPPORT),
        );
    }
    for ty in [0, SOCK_RDM, 6, 10, 11, 15] {
        t.rec(
            &format!("socket(type {ty})"),
            a.socket(AF_UNIX, ty, 0).map(drop),
        );
    }
    for flag in [0x10, 0x100, 0x1000, 0x10000, O_APPEND, 0x4000_0000, -16] {
        t.want(
            &format!("socket(type flag {flag:#x})"),
            a.socket(AF_UNIX, SOCK_STREAM | flag, 0).map(drop),
            Err(Errno::EINVAL),
        );
    }
    for p in [-1, 2, 6, 17, 256] {
        t.want(
            &format!("socket(protocol {p})"),
            a.socket(AF_UNIX, SOCK_DGRAM, p).map(drop),
            Err(Errno::EPROTONOSUPPORT),
        );
    }
    t.rec(
        "protocol checked before type",
        a.socket(AF_UNIX, SOCK_RDM, 5).map(drop),
    );
});

scenario!(socket_types_report_themselves, |t| {
    for ty in [SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM, SOCK_RAW] {
        for proto in [0, AF_UNIX] {
            let s = t.ok("socket", t.api.socket(AF_UNIX, ty, proto));
            let n = format!("type {ty} proto {proto}");
            t.rec(&format!("{n} SO_TYPE"), t.getint(s, SO_TYPE));
            t.rec(&format!("{n} SO_DOMAIN"), t.getint(s, SO_DOMAIN));
            t.rec(&format!("{n} SO_PROTOCOL"), t.getint(s, SO_PROTOCOL));
            t.rec(&format!("{n} SO_ACCEPTCONN"), t.getint(s, SO_ACCEPTCONN));
            t.rec(&format!("{n} SO_ERROR"), t.getint(s, SO_ERROR));
            t.rec(&format!("{n} name"), t.sockname(s));
            t.rec(&format!("{n} peer"), t.peername(s));
            t.ok("close", t.api.close(s));
        }
    }
});

scenario!(socket_type_flags_set_the_descriptor_modes, |t| {
    for flags in [0, SOCK_NONBLOCK, SOCK_CLOEXEC, SOCK_NONBLOCK | SOCK_CLOEXEC] {
        for ty in TYPES {
            let s = t.ok("socket", t.api.socket(AF_UNIX, ty | flags, 0));
            let n = format!("{} flags {flags:#x}", ty_name(ty));
            t.rec(&format!("{n} F_GETFL"), t.api.fcntl(s, F_GETFL, 0));
            t.rec(&format!("{n} F_GETFD"), t.api.fcntl(s, F_GETFD, 0));
            t.ok("close", t.api.close(s));
        }
    }
});

scenario!(socketpair_each_type_talks_both_ways, |t| {
    for ty in TYPES {
        let n = ty_name(ty);
        let (a, b) = t.pair(ty);
        t.want(&format!("{n} a->b"), t.send(a, b"ping"), Ok(4));
        t.want(&format!("{n} b<-a"), t.recv(b, 16), Ok(B(b"ping".to_vec())));
        t.want(&format!("{n} b->a"), t.send(b, b"pong!"), Ok(5));
        t.rec(&format!("{n} a<-b from"), t.recvfrom(a, 16));
        t.rec(&format!("{n} name"), t.sockname(a));
        t.rec(&format!("{n} peer"), t.peername(a));
        t.rec(&format!("{n} empty"), t.recv(a, 16));
        t.rec(&format!("{n} SO_TYPE"), t.getint(b, SO_TYPE));
        t.ok("close", t.api.close(a));
        t.rec(&format!("{n} after peer close"), t.recv(b, 16));
        t.rec(&format!("{n} send after peer close"), t.send(b, b"x"));
        t.ok("close", t.api.close(b));
    }
});

scenario!(socketpair_rejects_bad_arguments, |t| {
    let a = t.api;
    t.rec(
        "bad type flag",
        a.socketpair(AF_UNIX, SOCK_STREAM | 0x100, 0).map(drop),
    );
    t.rec(
        "bad protocol",
        a.socketpair(AF_UNIX, SOCK_STREAM, 7).map(drop),
    );
    t.rec("type 0", a.socketpair(AF_UNIX, 0, 0).map(drop));
    t.rec("type rdm", a.socketpair(AF_UNIX, SOCK_RDM, 0).map(drop));
    t.rec("type 12", a.socketpair(AF_UNIX, 12, 0).map(drop));
    t.rec("domain 46", a.socketpair(46, SOCK_STREAM, 0).map(drop));
    t.rec("domain -1", a.socketpair(-1, SOCK_STREAM, 0).map(drop));
    let [x, y] = t.ok(
        "socketpair flags",
        a.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
    );
    for s in [x, y] {
        t.rec("pair F_GETFL", a.fcntl(s, F_GETFL, 0));
        t.rec("pair F_GETFD", a.fcntl(s, F_GETFD, 0));
        t.rec("pair nonblocking recv", t.recv_block(s, 4, 0));
    }
});
