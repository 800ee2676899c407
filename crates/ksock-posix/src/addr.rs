//! Raw Linux socket addresses (`struct sockaddr_*` bytes) to and from [`SockAddr`].
//!
//! Local names: an abstract name (`sun_path` starting with a NUL byte) is the ksock name made
//! of the bytes after that NUL, so `"\0dwm"` here is `dwm` in `/net/local/addrs` and in the
//! kernel face. A path name (`sun_path` not starting with NUL) is the ksock name made of the
//! path's bytes up to its first NUL (as Linux reads it). Both forms share the one ksock
//! namespace, so the abstract name `"\0/run/x"` and the path `/run/x` are the same socket.
//! Going out, a name that starts with `/` is written as a path (NUL-terminated, as Linux
//! reports path names), any other name as an abstract name. No file is ever created.
//!
//! The layouts themselves are the core's codec ([`ksock::addr::raw`], shared with the kernel
//! face); this module keeps Linux's rules for each call: which lengths and families `bind`,
//! `connect` and `sendto` take, `AF_UNSPEC`, and the family alone for autobind.

use crate::consts::*;
use ksock::addr::raw;
use ksock::{Domain, Errno, Result, SockAddr};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

/// What an address argument asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// An address of the socket's family.
    Addr(SockAddr),
    /// `AF_UNSPEC` (a datagram `connect` with it means "disconnect").
    Unspec,
    /// `bind` with only the family: the family picks a free name (Linux autobind).
    Autobind,
}

/// The operation an address is decoded for: the families check different things for each.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Use {
    Bind,
    Connect,
    DgramConnect,
    SendTo,
}

/// Linux `move_addr_to_kernel`: an address longer than `sockaddr_storage` is `EINVAL`.
pub(crate) fn check_len(bytes: &[u8]) -> Result<()> {
    if bytes.len() > SOCKADDR_STORAGE_LEN {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// The family field as the `AF_*` constants are typed here.
fn family_of(bytes: &[u8]) -> Option<i32> {
    raw::family(bytes).map(i32::from)
}

/// Decodes an address for a socket of `domain`, with the checks Linux makes for `what`.
pub(crate) fn decode(domain: Domain, bytes: &[u8], what: Use) -> Result<Target> {
    check_len(bytes)?;
    match domain {
        Domain::LOCAL => decode_unix(bytes, what),
        Domain::INET => decode_inet(bytes, what, false),
        Domain::INET6 => decode_inet(bytes, what, true),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

fn decode_unix(b: &[u8], what: Use) -> Result<Target> {
    let family = family_of(b);
    match what {
        // unix_bind: `addr_len == offsetof(struct sockaddr_un, sun_path)` is unix_autobind.
        Use::Bind if b.len() == SUN_PATH_OFFSET && family == Some(AF_UNIX) => {
            return Ok(Target::Autobind);
        }
        // unix_dgram_connect reads the family first, then dissolves on AF_UNSPEC.
        Use::DgramConnect => {
            if b.len() < SUN_PATH_OFFSET {
                return Err(Errno::EINVAL);
            }
            if family == Some(AF_UNSPEC) {
                return Ok(Target::Unspec);
            }
        }
        _ => {}
    }
    // unix_validate_addr, then the name (abstract or path) as unix_mkname reads it.
    raw::decode_un(b).map(|n| Target::Addr(SockAddr::Local(n)))
}

fn decode_inet(b: &[u8], what: Use, v6: bool) -> Result<Target> {
    let family = family_of(b);
    if what != Use::Bind && family == Some(AF_UNSPEC) {
        return Ok(Target::Unspec);
    }
    if v6 {
        // inet6_bind / ip6_datagram_connect: the length first (RFC 2133's 24 bytes will
        // do), then the family.
        let a = raw::decode_in6(b)?;
        if family != Some(AF_INET6) {
            return Err(Errno::EAFNOSUPPORT);
        }
        return Ok(Target::Addr(SockAddr::Inet(SocketAddr::V6(a))));
    }
    let a = raw::decode_in(b)?;
    // Linux lets bind take AF_UNSPEC for the any address, for old programs.
    let unspec_any = what == Use::Bind && family == Some(AF_UNSPEC) && a.ip().is_unspecified();
    if family != Some(AF_INET) && !unspec_any {
        return Err(Errno::EAFNOSUPPORT);
    }
    Ok(Target::Addr(SockAddr::Inet(SocketAddr::V4(a))))
}

/// The bytes `getsockname`/`getpeername`/`accept` give for `addr` on a socket of `domain`
/// (an unnamed local socket is the family alone, as Linux reports it; an unbound inet socket
/// the any address, port 0).
pub(crate) fn encode_name(domain: Domain, addr: &SockAddr) -> Option<Vec<u8>> {
    match addr {
        SockAddr::Unnamed => match domain {
            Domain::LOCAL => Some(to_vec(|o| raw::encode_family(raw::AF_UNIX, o))),
            Domain::INET => encode(&SockAddr::Inet(SocketAddrV4::new(0.into(), 0).into())),
            Domain::INET6 => encode(&SockAddr::Inet(
                SocketAddrV6::new(0u128.into(), 0, 0, 0).into(),
            )),
            _ => None,
        },
        a => encode(a),
    }
}

/// The bytes `recvfrom`/`recvmsg` give for a sender: nothing at all for an unnamed one.
pub(crate) fn encode_from(addr: &SockAddr) -> Vec<u8> {
    encode(addr).unwrap_or_default()
}

/// An encoder's whole output: asks for the length, then writes that much.
fn to_vec(f: impl Fn(&mut [u8]) -> usize) -> Vec<u8> {
    let mut v = vec![0u8; f(&mut [])];
    f(&mut v);
    v
}

/// The raw form of an address; `None` for `Unnamed`. A local name starting with `/` is a
/// NUL-terminated path, any other an abstract name (see the module documentation).
pub fn encode(addr: &SockAddr) -> Option<Vec<u8>> {
    match addr {
        SockAddr::Unnamed => None,
        SockAddr::Local(n) => Some(to_vec(|o| raw::encode_un(n, o))),
        SockAddr::Inet(a) => Some(to_vec(|o| raw::encode_inet(a, o))),
    }
}

/// Builds a `sockaddr_un` for an abstract name (`"\0" + name`), for callers and tests.
pub fn unix_abstract(name: &[u8]) -> Vec<u8> {
    let mut v = (AF_UNIX as u16).to_ne_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(name);
    v
}

/// Builds a `sockaddr_un` for a path name, NUL-terminated as `SUN_LEN` counts it.
pub fn unix_path(path: &[u8]) -> Vec<u8> {
    let mut v = (AF_UNIX as u16).to_ne_bytes().to_vec();
    v.extend_from_slice(path);
    v.push(0);
    v
}

/// Linux `move_addr_to_user`: copies `kaddr` into the caller's buffer, truncated to the
/// caller's length, and reports the untruncated length. No length: `EFAULT`; a negative
/// length: `EINVAL`; a buffer shorter than the length it claims (a fault in C): `EFAULT`.
pub(crate) fn copy_out(kaddr: &[u8], buf: Option<&mut [u8]>, len: Option<&mut u32>) -> Result<()> {
    let Some(ulen) = len else {
        return Err(Errno::EFAULT);
    };
    let klen = kaddr.len();
    let mut n = *ulen as i32;
    if n > 0 && n as usize > klen {
        n = klen as i32;
    }
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    let n = n as usize;
    if n > 0 {
        match buf {
            Some(b) if b.len() >= n => b[..n].copy_from_slice(&kaddr[..n]),
            _ => return Err(Errno::EFAULT),
        }
    }
    *ulen = klen as u32;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Target {
        Target::Addr(SockAddr::local(n).unwrap())
    }

    #[test]
    fn unix_names_follow_linux_checks() {
        let ab = unix_abstract(b"dwm");
        assert_eq!(decode(Domain::LOCAL, &ab, Use::Bind), Ok(name("dwm")));
        assert_eq!(
            decode(Domain::LOCAL, &ab[..2], Use::Bind),
            Ok(Target::Autobind)
        );
        assert_eq!(
            decode(Domain::LOCAL, &ab[..2], Use::Connect),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            decode(Domain::LOCAL, &ab[..1], Use::Bind),
            Err(Errno::EINVAL)
        );
        assert_eq!(decode(Domain::LOCAL, &[], Use::Connect), Err(Errno::EINVAL));
        let mut wrong = ab.clone();
        wrong[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
        assert_eq!(decode(Domain::LOCAL, &wrong, Use::Bind), Err(Errno::EINVAL));
        let long = unix_abstract(&[b'a'; 108]);
        assert_eq!(long.len(), 111);
        assert_eq!(decode(Domain::LOCAL, &long, Use::Bind), Err(Errno::EINVAL));
        assert_eq!(
            decode(Domain::LOCAL, &[0u8; 129], Use::Bind),
            Err(Errno::EINVAL)
        );
        // The empty abstract name: SPEC names are 1 to 255 bytes.
        assert_eq!(
            decode(Domain::LOCAL, &unix_abstract(b""), Use::Bind),
            Err(Errno::EINVAL)
        );
        let p = unix_path(b"/run/x");
        assert_eq!(decode(Domain::LOCAL, &p, Use::Connect), Ok(name("/run/x")));
        let mut p2 = p.clone();
        p2.extend_from_slice(b"junk");
        assert_eq!(decode(Domain::LOCAL, &p2, Use::Connect), Ok(name("/run/x")));
        let mut un = (AF_UNSPEC as u16).to_ne_bytes().to_vec();
        assert_eq!(
            decode(Domain::LOCAL, &un, Use::DgramConnect),
            Ok(Target::Unspec)
        );
        un.pop();
        assert_eq!(
            decode(Domain::LOCAL, &un, Use::DgramConnect),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn names_round_trip() {
        for n in ["dwm", "/run/x", "a\0b"] {
            let a = SockAddr::local(n).unwrap();
            let raw = encode(&a).unwrap();
            assert_eq!(
                decode(Domain::LOCAL, &raw, Use::Connect),
                Ok(Target::Addr(a))
            );
        }
        assert_eq!(
            encode(&SockAddr::local("/p").unwrap()).unwrap().len(),
            2 + 2 + 1
        );
        assert_eq!(
            encode_name(Domain::LOCAL, &SockAddr::Unnamed).unwrap(),
            vec![1, 0]
        );
        assert!(encode_from(&SockAddr::Unnamed).is_empty());
    }

    #[test]
    fn inet_addresses() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let raw = encode(&SockAddr::Inet(a)).unwrap();
        assert_eq!(raw.len(), 16);
        assert_eq!(
            decode(Domain::INET, &raw, Use::Connect),
            Ok(Target::Addr(SockAddr::Inet(a)))
        );
        assert_eq!(
            decode(Domain::INET, &raw[..15], Use::Connect),
            Err(Errno::EINVAL)
        );
        let six: SocketAddr = "[::1]:53".parse().unwrap();
        let raw6 = encode(&SockAddr::Inet(six)).unwrap();
        assert_eq!(raw6.len(), 28);
        assert_eq!(
            decode(Domain::INET6, &raw6, Use::Bind),
            Ok(Target::Addr(SockAddr::Inet(six)))
        );
        assert_eq!(
            decode(Domain::INET, &raw6, Use::Bind),
            Err(Errno::EAFNOSUPPORT)
        );
        let mut any = vec![0u8; 16];
        any[2..4].copy_from_slice(&80u16.to_be_bytes());
        assert!(matches!(
            decode(Domain::INET, &any, Use::Bind),
            Ok(Target::Addr(_))
        ));
        assert_eq!(decode(Domain::INET, &any, Use::Connect), Ok(Target::Unspec));
    }

    #[test]
    fn copy_out_truncates_and_reports_full_length() {
        let k = unix_abstract(b"abcdef");
        let mut buf = [0u8; 5];
        let mut len = 5u32;
        copy_out(&k, Some(&mut buf), Some(&mut len)).unwrap();
        assert_eq!((&buf[..], len), (&k[..5], k.len() as u32));
        let mut len = u32::MAX;
        assert_eq!(
            copy_out(&k, Some(&mut buf), Some(&mut len)),
            Err(Errno::EINVAL)
        );
        assert_eq!(copy_out(&k, Some(&mut buf), None), Err(Errno::EFAULT));
        let mut len = 3u32;
        assert_eq!(copy_out(&k, None, Some(&mut len)), Err(Errno::EFAULT));
        let mut len = 0u32;
        copy_out(&k, None, Some(&mut len)).unwrap();
        assert_eq!(len, k.len() as u32);
        let mut len = 100u32;
        assert_eq!(
            copy_out(&k, Some(&mut buf), Some(&mut len)),
            Err(Errno::EFAULT)
        );
    }
}
