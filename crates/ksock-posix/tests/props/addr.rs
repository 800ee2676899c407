//! Properties of the POSIX face's sockaddr handling (`bind`, `connect`, `sendto` taking raw
//! bytes; `getsockname`, `getpeername`, `recvfrom` filling a caller's buffer), for any bytes
//! and any buffer a program may pass: shared by the stable property tests
//! (`tests/prop_addr.rs`) and the fuzz target `posix_addr` (`fuzz/`).
//!
//! Each input runs on a fresh stack with the local and inet families (a manual clock, no
//! threads) and ends with every socket closed and nothing left.

use ksock::addr::raw;
use ksock::testing::ManualClock;
use ksock::{Errno, Stack};
use ksock_inet::InetFamily;
use ksock_posix::consts::*;
use ksock_posix::{Fd, Posix};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The input, read front to back (zeros once it runs out).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
}

/// What `bind` on a fresh socket of `domain` must do with `bytes`, from Linux's rules as
/// the face documents them: the bound address as `getsockname` reports it (`None` for an
/// autobind or an ephemeral port, checked apart), or the errno.
fn expected_bind(domain: i32, bytes: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    if bytes.len() > SOCKADDR_STORAGE_LEN {
        return Err(Errno::EINVAL);
    }
    let fam = raw::family(bytes).map(i32::from);
    match domain {
        AF_UNIX => {
            if bytes.len() == 2 && fam == Some(AF_UNIX) {
                return Ok(None);
            }
            let n = raw::decode_un(bytes)?;
            Ok(Some(encoded(|o| raw::encode_un(&n, o))))
        }
        AF_INET => {
            let a = raw::decode_in(bytes)?;
            let unspec_any = fam == Some(AF_UNSPEC) && a.ip().is_unspecified();
            if fam != Some(AF_INET) && !unspec_any {
                return Err(Errno::EAFNOSUPPORT);
            }
            // The loopback owns all of 127.0.0.0/8 (as Linux's `lo`).
            if !a.ip().is_unspecified() && !a.ip().is_loopback() {
                return Err(Errno::EADDRNOTAVAIL);
            }
            Ok((a.port() != 0).then(|| encoded(|o| raw::encode_in(&a, o))))
        }
        _ => {
            let a = raw::decode_in6(bytes)?;
            if fam != Some(AF_INET6) {
                return Err(Errno::EAFNOSUPPORT);
            }
            // A mapped address is the IPv4 address (the socket is dual-stack).
            let ip = a
                .ip()
                .to_ipv4_mapped()
                .map_or(IpAddr::V6(*a.ip()), IpAddr::V4);
            if !ip.is_unspecified() && !ip.is_loopback() {
                return Err(Errno::EADDRNOTAVAIL);
            }
            // Reported without flow information or scope.
            let shown = std::net::SocketAddrV6::new(*a.ip(), a.port(), 0, 0);
            Ok((a.port() != 0).then(|| encoded(|o| raw::encode_in6(&shown, o))))
        }
    }
}

/// A `sockaddr_in6` as Linux reports a bound name: without the flow information and the
/// scope id it was bound with (for an address that is not link-local). ksock reports them
/// back as given (see `tests/prop_addr.rs`, `bound_ipv6_names_drop_flow_and_scope`), so the
/// other properties compare names through this.
pub fn linux_v6(name: &[u8]) -> Vec<u8> {
    let mut v = name.to_vec();
    if raw::family(name) == Some(raw::AF_INET6) && v.len() == raw::SOCKADDR_IN6_LEN {
        v[4..8].fill(0);
        v[24..28].fill(0);
    }
    v
}

fn encoded(f: impl Fn(&mut [u8]) -> usize) -> Vec<u8> {
    let mut v = vec![0u8; f(&mut [])];
    f(&mut v);
    v
}

/// How a caller passes an address buffer: the buffer's size and the length it claims.
#[derive(Clone, Copy, Debug)]
struct Out {
    room: usize,
    claim: Option<u32>,
    buf: bool,
}

impl Out {
    fn of(inp: &mut Input<'_>) -> Out {
        let room = inp.byte() as usize % 136;
        let how = inp.byte();
        let claim = match how % 8 {
            0 => None,
            1 => Some(u32::MAX - (how as u32 >> 3)),
            2 => Some(room as u32 + 1 + (how as u32 >> 3)),
            3 => Some(0),
            _ => Some(room as u32),
        };
        Out {
            room,
            claim,
            buf: how % 16 != 15,
        }
    }
}

/// Calls an address-returning call with `out` and checks Linux's `move_addr_to_user` rules
/// against the address it should give: the buffer holds a prefix, nothing is written past
/// what fits, and the untruncated length comes back. `optional`: a null buffer means no
/// address is wanted (`accept`, `recvfrom`), and the length is left alone.
fn check_out(
    out: Out,
    want: &[u8],
    optional: bool,
    call: impl FnOnce(Option<&mut [u8]>, Option<&mut u32>) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let fill = 0xC3u8;
    let mut buf = vec![fill; out.room + 8];
    let mut len = out.claim;
    let r = call(out.buf.then_some(&mut buf[..out.room]), len.as_mut());
    let n = out.claim.map_or(0, |c| (c as usize).min(want.len()));
    if optional && !out.buf {
        assert_eq!(r, Ok(()), "no address wanted");
        assert_eq!(len, out.claim, "the length is left alone");
        return r;
    }
    let expect = match out.claim {
        None => Err(Errno::EFAULT),
        Some(c) if (c as i32) < 0 => Err(Errno::EINVAL),
        Some(_) if n > 0 && (!out.buf || out.room < n) => Err(Errno::EFAULT),
        Some(_) => Ok(()),
    };
    assert_eq!(r, expect, "{out:?} for {want:?}");
    if r.is_ok() {
        assert_eq!(len, Some(want.len() as u32), "the untruncated length");
        assert_eq!(&buf[..n], &want[..n], "a prefix of the address");
        assert!(
            buf[n..].iter().all(|&b| b == fill),
            "wrote past the address"
        );
    } else {
        assert!(buf.iter().all(|&b| b == fill), "wrote on failure");
    }
    r
}

/// The address a call gives, read whole.
fn name_of(call: impl FnOnce(Option<&mut [u8]>, Option<&mut u32>) -> Result<(), Errno>) -> Vec<u8> {
    let mut buf = [0u8; SOCKADDR_STORAGE_LEN];
    let mut len = buf.len() as u32;
    call(Some(&mut buf), Some(&mut len)).expect("the address");
    buf[..len as usize].to_vec()
}

/// Errnos a call taking an address may give besides the decoder's.
const CALL_ERRNOS: [Errno; 16] = [
    Errno::ENOTCONN,
    Errno::EDESTADDRREQ,
    Errno::EINVAL,
    Errno::EAFNOSUPPORT,
    Errno::EADDRNOTAVAIL,
    Errno::EADDRINUSE,
    Errno::ECONNREFUSED,
    Errno::EINPROGRESS,
    Errno::EAGAIN,
    Errno::EPROTOTYPE,
    Errno::EOPNOTSUPP,
    Errno::ENETUNREACH,
    Errno::EHOSTUNREACH,
    Errno::EISCONN,
    Errno::EMSGSIZE,
    Errno::EACCES,
];

/// The loopback's broadcast address (`127.0.0.0/8`).
const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);

/// A fresh stack with both families, and a POSIX face over it.
struct World {
    st: Stack,
    clock: std::sync::Arc<ManualClock>,
    inet: std::sync::Arc<InetFamily>,
    px: Posix,
}

impl World {
    fn new() -> World {
        let st = Stack::new();
        let clock = ManualClock::install(&st);
        let inet = InetFamily::new(&st);
        st.register_family(inet.clone()).expect("inet");
        let px = Posix::new(st.clone());
        World {
            st,
            clock,
            inet,
            px,
        }
    }

    fn socket(&self, domain: i32, ty: i32) -> Fd {
        self.px
            .socket(domain, ty | SOCK_NONBLOCK, 0)
            .expect("a socket")
    }

    /// Closes everything, lets the inet family finish, and checks nothing is left.
    fn finish(self) {
        self.px.close_all();
        for _ in 0..64 {
            if self.inet.socket_count() == 0 {
                break;
            }
            let step = self.clock.next().unwrap_or(1_000_000_000).max(1);
            self.clock.advance(&self.st, step);
        }
        assert_eq!(self.st.socket_count(), 0, "sockets left");
        assert_eq!(
            self.inet.socket_count(),
            0,
            "smoltcp sockets left: {:?}",
            self.inet.sockets()
        );
        assert_eq!(self.inet.port_count(), 0, "ports left");
    }
}

/// Every property, for one input: a selector byte (domain, type, call), two bytes for each
/// output buffer, then the address bytes.
pub fn check_posix(data: &[u8]) {
    let mut inp = Input(data);
    let sel = inp.byte();
    let (domain, types): (i32, &[i32]) = match sel % 3 {
        0 => (AF_UNIX, &[SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET]),
        1 => (AF_INET, &[SOCK_STREAM, SOCK_DGRAM]),
        _ => (AF_INET6, &[SOCK_STREAM, SOCK_DGRAM]),
    };
    let ty = types[(sel / 3) as usize % types.len()];
    let outs = [Out::of(&mut inp), Out::of(&mut inp), Out::of(&mut inp)];
    let bytes = inp.0;
    let w = World::new();
    let px = &w.px;

    // bind: exactly Linux's rules; what it bound is what getsockname reports, in any buffer.
    let s = w.socket(domain, ty);
    let r = px.bind(s, bytes);
    let want = expected_bind(domain, bytes);
    assert_eq!(
        r,
        want.as_ref().map(|_| ()).map_err(|e| *e),
        "bind {bytes:?}"
    );
    // connect and sendto on other sockets: the decoder's errno, or what the call does
    // (after the bind, so that their ephemeral ports cannot take the one it names).
    let c = w.socket(domain, ty);
    let r = px.connect(c, bytes);
    if let Err(e) = r {
        assert!(CALL_ERRNOS.contains(&e), "connect: {e:?}");
    }
    if ty == SOCK_DGRAM {
        let t = w.socket(domain, ty);
        if let Err(e) = px.sendto(t, b"x", 0, Some(bytes)) {
            assert!(CALL_ERRNOS.contains(&e), "sendto: {e:?}");
        }
    }

    let Ok(want) = want else {
        w.finish();
        return;
    };
    let name = name_of(|b, l| px.getsockname(s, b, l));
    match &want {
        Some(w) => assert_eq!(&linux_v6(&name), w),
        None if domain == AF_UNIX => {
            // Autobind: an abstract name of five hex digits.
            assert_eq!(name.len(), 2 + 1 + 5);
            assert!(name[3..].iter().all(u8::is_ascii_hexdigit), "{name:?}");
        }
        None => {
            let port = u16::from_be_bytes([name[2], name[3]]);
            assert!((32768..=60999).contains(&port), "ephemeral port {port}");
        }
    }
    let _ = check_out(outs[0], &name, false, |b, l| px.getsockname(s, b, l));

    // The local family's names are bytes, not Linux's two namespaces
    // (`ksock::addr::raw::encode_un`): one starting with `/` is reported as a path, which
    // ends at its first NUL, any other as an abstract name, one byte longer. So an
    // abstract name like a path with a NUL in it, or a 108-byte path not starting with
    // `/`, is reported in a form that does not read back.
    if domain == AF_UNIX && want.is_some() && raw::decode_un(&name) != raw::decode_un(bytes) {
        let path_with_nul = name[2] == b'/' && name[2..name.len() - 1].contains(&0);
        assert!(
            path_with_nul || name.len() > raw::SOCKADDR_UN_LEN,
            "{name:?}"
        );
        w.finish();
        return;
    }

    // The reported name is the bound address: a second bind of it is refused as in use
    // (a datagram socket and a stream socket share the local namespace, not inet ports).
    let s2 = w.socket(domain, ty);
    assert_eq!(px.bind(s2, &name), Err(Errno::EADDRINUSE), "{name:?}");

    // Reaching it: a connection or a datagram, from a socket whose peer address is then
    // that name, in any buffer.
    let reachable = match domain {
        AF_UNIX => true,
        // The broadcast address is bound but not reached: see `tests/prop_addr.rs`,
        // `connect_to_the_loopback_broadcast_is_enetunreach`.
        AF_INET => name[4] == 127 && name[4..8] != LOOPBACK_BROADCAST.octets(),
        _ => {
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&name[8..24]).unwrap());
            ip == Ipv6Addr::LOCALHOST
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() && v4 != LOOPBACK_BROADCAST)
        }
    };
    if !reachable {
        w.finish();
        return;
    }
    let c2 = w.socket(domain, ty);
    if ty == SOCK_DGRAM {
        // (What the sendto above sent may have come here: it goes first.)
        let mut junk = [0u8; 4];
        while px.recv(s, &mut junk, 0).is_ok() {}
        assert_eq!(px.connect(c2, &name), Ok(()));
        assert_eq!(px.send(c2, b"ping", 0), Ok(4));
        // The sender's name; an unnamed sender is no address at all (length 0).
        let mut from = name_of(|b, l| px.getsockname(c2, b, l));
        if from == (AF_UNIX as u16).to_ne_bytes() {
            from.clear();
        }
        let mut got = [0u8; 8];
        let mut seen = None;
        let r = check_out(outs[1], &from, true, |b, l| {
            let n = px.recvfrom(s, &mut got, 0, b, l);
            seen = Some(n);
            n.map(drop)
        });
        if r.is_ok() {
            assert_eq!(seen, Some(Ok(4)));
            assert_eq!(&got[..4], b"ping");
        }
    } else {
        assert_eq!(px.listen(s, 4), Ok(()));
        match px.connect(c2, &name) {
            Ok(()) => {}
            Err(Errno::EINPROGRESS) => {
                w.clock.advance(&w.st, 1_000_000);
            }
            Err(e) => panic!("connect to a listener: {e:?}"),
        }
        let _ = check_out(outs[1], &linux_v6(&name), false, |b, l| {
            px.getpeername(c2, b, l)
        });
        let mine = name_of(|b, l| px.getsockname(c2, b, l));
        let _ = check_out(outs[2], &mine, true, |b, l| px.accept(s, b, l).map(drop));
    }
    w.finish();
}
