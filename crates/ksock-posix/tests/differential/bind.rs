//! bind, getsockname, names: lengths, families, the namespace.

use super::harness::*;
use ksock::Errno;
use ksock_posix::consts::*;

scenario!(bind_abstract_and_read_the_name_back, |t| {
    for ty in TYPES {
        let n = ty_name(ty);
        let s = t.sock(ty);
        t.want(&format!("{n} bind"), t.api.bind(s, &t.addr(n)), Ok(()));
        t.want(&format!("{n} name"), t.sockname(s), Ok(B(t.addr(n))));
        // A buffer too small: truncated, and the full length reported.
        let mut small = [0u8; 5];
        let mut len = 5u32;
        t.rec(
            &format!("{n} short getsockname"),
            t.api.getsockname(s, Some(&mut small), Some(&mut len)),
        );
        t.rec(&format!("{n} short bytes"), (B(small.to_vec()), len));
        // A zero length copies nothing, and a null buffer is fine with it.
        let mut len = 0u32;
        t.rec(
            &format!("{n} zero-length getsockname"),
            t.api.getsockname(s, None, Some(&mut len)),
        );
        t.want(&format!("{n} full length"), len as usize, t.addr(n).len());
        t.ok("close", t.api.close(s));
    }
});

scenario!(bind_errors, |t| {
    for ty in TYPES {
        let n = ty_name(ty);
        let s = t.bound(ty, n);
        let s2 = t.sock(ty);
        t.want(
            &format!("{n} name taken"),
            t.api.bind(s2, &t.addr(n)),
            Err(Errno::EADDRINUSE),
        );
        t.want(
            &format!("{n} already bound"),
            t.api.bind(s, &t.addr("other")),
            Err(Errno::EINVAL),
        );
        let mut wrong = t.addr("x");
        wrong[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
        t.rec(&format!("{n} AF_INET family"), t.api.bind(s2, &wrong));
        wrong[..2].copy_from_slice(&(AF_UNSPEC as u16).to_ne_bytes());
        t.rec(&format!("{n} AF_UNSPEC family"), t.api.bind(s2, &wrong));
        t.rec(&format!("{n} addrlen 0"), t.api.bind(s2, &[]));
        t.rec(&format!("{n} addrlen 1"), t.api.bind(s2, &[1]));
        let mut long = ksock_posix::unix_abstract(&[b'z'; 108]);
        t.rec(&format!("{n} addrlen 111"), t.api.bind(s2, &long));
        long.resize(129, b'z');
        t.rec(&format!("{n} addrlen 129"), t.api.bind(s2, &long));
        t.rec(&format!("{n} still unnamed"), t.sockname(s2));
        t.ok("close", t.api.close(s));
        t.ok("close", t.api.close(s2));
    }
});

scenario!(bind_longest_abstract_name_and_odd_bytes, |t| {
    // 107 bytes after the NUL fill sun_path; names may hold NULs and any byte.
    let mut name = t.name("");
    name.resize(107, b'L');
    let long = ksock_posix::unix_abstract(&name);
    assert_eq!(long.len(), SOCKADDR_UN_LEN);
    let s = t.sock(SOCK_STREAM);
    t.want("bind 107", t.api.bind(s, &long), Ok(()));
    t.want("name 107", t.sockname(s), Ok(B(long.clone())));
    t.want("listen", t.api.listen(s, 1), Ok(()));
    let c = t.sock(SOCK_STREAM);
    t.want("connect 107", t.api.connect(c, &long), Ok(()));
    t.want("peer 107", t.peername(c), Ok(B(long.clone())));
    let mut odd = t.name("");
    odd.extend_from_slice(b"\0\xff\n \x01end\0");
    let odd = ksock_posix::unix_abstract(&odd);
    let d = t.sock(SOCK_DGRAM);
    t.want("bind odd", t.api.bind(d, &odd), Ok(()));
    t.want("name odd", t.sockname(d), Ok(B(odd.clone())));
    let d2 = t.sock(SOCK_DGRAM);
    t.want("sendto odd", t.api.sendto(d2, b"o", 0, Some(&odd)), Ok(1));
    t.want("recv odd", t.recv(d, 4), Ok(B(b"o".to_vec())));
    // The same bytes without the trailing NUL are another name.
    let shorter = &odd[..odd.len() - 1];
    t.want(
        "sendto shorter",
        t.api.sendto(d2, b"o", 0, Some(shorter)),
        Err(Errno::ECONNREFUSED),
    );
});

scenario!(bind_name_is_free_once_its_socket_closes, |t| {
    for ty in TYPES {
        let n = ty_name(ty);
        let s = t.bound(ty, n);
        t.ok("close", t.api.close(s));
        let s = t.sock(ty);
        t.want(&format!("{n} rebind"), t.api.bind(s, &t.addr(n)), Ok(()));
        t.ok("close", t.api.close(s));
    }
    // A listener's name goes with the listener, not with its accepted connections.
    let (c, s) = t.connected(SOCK_STREAM, "l");
    let again = t.sock(SOCK_STREAM);
    t.want(
        "rebind with a connection alive",
        t.api.bind(again, &t.addr("l")),
        Ok(()),
    );
    t.want("accepted keeps the name", t.sockname(s), Ok(B(t.addr("l"))));
    t.want("client's peer", t.peername(c), Ok(B(t.addr("l"))));
});

scenario!(bind_autobind_with_the_family_alone, |t| {
    for ty in TYPES {
        let n = ty_name(ty);
        let s = t.sock(ty);
        let fam = (AF_UNIX as u16).to_ne_bytes();
        t.want(&format!("{n} autobind"), t.api.bind(s, &fam), Ok(()));
        // The name is five hex digits after a NUL; which ones is up to the system.
        let name = t.ok("getsockname", t.sockname(s)).0;
        t.want(&format!("{n} name length"), name.len(), 8);
        t.want(&format!("{n} abstract"), name[2], 0);
        t.want(
            &format!("{n} hex digits"),
            name[3..].iter().all(u8::is_ascii_hexdigit),
            true,
        );
        t.want(
            &format!("{n} again is a no-op"),
            t.api.bind(s, &fam),
            Ok(()),
        );
        t.want(
            &format!("{n} name kept"),
            t.sockname(s).map(|b| b.0 == name),
            Ok(true),
        );
        t.want(
            &format!("{n} a named socket still refuses a name"),
            t.api.bind(s, &t.addr("later")),
            Err(Errno::EINVAL),
        );
        if ty == SOCK_DGRAM {
            let c = t.sock(ty);
            t.want(
                "send to the autobound name",
                t.api.sendto(c, b"a", 0, Some(&name)),
                Ok(1),
            );
            t.want("got it", t.recv(s, 4), Ok(B(b"a".to_vec())));
        }
        t.ok("close", t.api.close(s));
    }
});

scenario!(bind_same_name_two_types, |t| {
    let s = t.bound(SOCK_STREAM, "shared");
    let d = t.sock(SOCK_DGRAM);
    // SPEC section 3: one namespace for all three types. Linux keeps one per type.
    t.differs(
        "dgram bind to a stream's name",
        t.api.bind(d, &t.addr("shared")),
        Ok(()),
        Err(Errno::EADDRINUSE),
    );
    t.ok("close", t.api.close(s));
});

scenario!(bind_empty_abstract_name, |t| {
    let s = t.sock(SOCK_DGRAM);
    // SPEC section 3: names are 1 to 255 bytes, empty is EINVAL. Linux takes "\0" alone.
    t.differs(
        "bind \"\\0\"",
        t.api.bind(s, &ksock_posix::unix_abstract(b"")),
        Ok(()),
        Err(Errno::EINVAL),
    );
});

scenario!(bind_on_a_connected_socket, |t| {
    for ty in TYPES {
        let (a, b) = t.pair(ty);
        // SPEC section 2: Connected -> Bound is not in the state table. Linux binds.
        t.differs(
            &format!("{} bind on a socketpair end", ty_name(ty)),
            t.api.bind(a, &t.addr(ty_name(ty))),
            Ok(()),
            Err(Errno::EINVAL),
        );
        t.ok("close", t.api.close(a));
        t.ok("close", t.api.close(b));
    }
    // An accepted socket already has the listener's name: EINVAL on both.
    let (c, s) = t.connected(SOCK_SEQPACKET, "l");
    t.want(
        "bind accepted",
        t.api.bind(s, &t.addr("x")),
        Err(Errno::EINVAL),
    );
    let _ = c;
});

scenario!(getsockname_and_getpeername_bad_buffers, |t| {
    let (c, s) = t.connected(SOCK_STREAM, "gn");
    let a = t.api;
    t.want(
        "getsockname no addrlen",
        a.getsockname(s, None, None),
        Err(Errno::EFAULT),
    );
    let mut buf = [0u8; 16];
    t.want(
        "getsockname buffer, no addrlen",
        a.getsockname(s, Some(&mut buf), None),
        Err(Errno::EFAULT),
    );
    let mut len = u32::MAX;
    t.want(
        "getsockname negative addrlen",
        a.getsockname(s, Some(&mut buf), Some(&mut len)),
        Err(Errno::EINVAL),
    );
    let mut len = 8u32;
    t.want(
        "getsockname null buffer",
        a.getsockname(s, None, Some(&mut len)),
        Err(Errno::EFAULT),
    );
    let mut len = 8u32;
    t.want(
        "getpeername null buffer",
        a.getpeername(c, None, Some(&mut len)),
        Err(Errno::EFAULT),
    );
    let mut len = 3u32;
    t.rec(
        "getpeername short",
        a.getpeername(c, Some(&mut buf), Some(&mut len)),
    );
    t.rec("getpeername short bytes", (B(buf[..3].to_vec()), len));
    let u = t.sock(SOCK_STREAM);
    t.want(
        "getpeername unconnected",
        t.peername(u),
        Err(Errno::ENOTCONN),
    );
    let mut len = 8u32;
    t.want(
        "ENOTCONN before EFAULT",
        a.getpeername(u, None, Some(&mut len)),
        Err(Errno::ENOTCONN),
    );
    let l = t.listener(SOCK_STREAM, "gl", 1);
    t.want("getpeername listener", t.peername(l), Err(Errno::ENOTCONN));
    t.want(
        "server's peer (unbound client)",
        t.peername(s),
        Ok(B(vec![1, 0])),
    );
});
