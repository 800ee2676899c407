//! Raw socket addresses: the bytes of Linux's `struct sockaddr_un`, `sockaddr_in` and
//! `sockaddr_in6`, read and written in one place for every face.
//!
//! These are building blocks, not policy: each decoder checks the length its layout needs,
//! as Linux's protocol code does, and each encoder writes into the caller's storage as much
//! as fits and returns the full length, as `move_addr_to_user` reports it, so a caller can
//! tell its storage was too small. What an operation accepts besides (which family numbers,
//! `AF_UNSPEC`, the family alone for autobind) is the face's rule: the POSIX face follows
//! Linux's `bind`/`connect`/`sendto`, the KPI its own documented layout for local names.
//!
//! Layouts (the family is a native-endian `u16`, `sa_family_t`):
//! - `sockaddr_un` (`AF_UNIX`): `sun_path` follows the family; up to 110 bytes in all. An
//!   abstract name is a NUL then the name's bytes; a path is its bytes up to the first NUL.
//! - `sockaddr_in` (`AF_INET`, 16 bytes): port (big-endian), address, 8 zero bytes.
//! - `sockaddr_in6` (`AF_INET6`, 28 bytes): port (big-endian), flow information
//!   (big-endian, `__be32 sin6_flowinfo`), address, scope id (native-endian).

use crate::addr::LocalName;
use crate::errno::{Errno, Result};
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// `AF_UNSPEC`.
pub const AF_UNSPEC: u16 = 0;
/// `AF_UNIX` / `AF_LOCAL`.
pub const AF_UNIX: u16 = 1;
/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// `sizeof(sa_family_t)`, which is also `offsetof(struct sockaddr_un, sun_path)`.
pub const FAMILY_LEN: usize = 2;
/// `sizeof(struct sockaddr_un)`: the family and a 108-byte `sun_path`.
pub const SOCKADDR_UN_LEN: usize = 110;
/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub const SOCKADDR_IN6_LEN: usize = 28;
/// The shortest `sockaddr_in6` Linux takes: RFC 2133's, without `sin6_scope_id`
/// (`SIN6_LEN_RFC2133` in `net/ipv6`).
pub const SIN6_LEN_RFC2133: usize = 24;
/// `sizeof(struct sockaddr_storage)`: the most any address may be.
pub const SOCKADDR_STORAGE_LEN: usize = 128;

/// The family field, if there are bytes enough for one.
pub fn family(bytes: &[u8]) -> Option<u16> {
    bytes
        .first_chunk::<FAMILY_LEN>()
        .map(|f| u16::from_ne_bytes(*f))
}

/// Reads a `sockaddr_un` as Linux's `unix_validate_addr` and `unix_mkname` do: no more
/// than the family, longer than `sockaddr_un`, or a family other than `AF_UNIX`: `EINVAL`.
/// An abstract name is the bytes after its NUL; a path is the bytes up to its first NUL
/// (what follows is ignored, as Linux terminates the path there). Both are ksock names, so
/// the empty abstract name is `EINVAL` (SPEC section 3: names are 1 to 255 bytes).
pub fn decode_un(bytes: &[u8]) -> Result<LocalName> {
    if bytes.len() <= FAMILY_LEN || bytes.len() > SOCKADDR_UN_LEN {
        return Err(Errno::EINVAL);
    }
    if family(bytes) != Some(AF_UNIX) {
        return Err(Errno::EINVAL);
    }
    let path = &bytes[FAMILY_LEN..];
    let name = match path.split_first() {
        Some((0, abstract_name)) => abstract_name,
        _ => {
            let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
            &path[..end]
        }
    };
    LocalName::new(name)
}

/// Reads a `sockaddr_in`: shorter than 16 bytes is `EINVAL` (Linux's `inet_bind` and
/// `inet_stream_connect` check `addr_len < sizeof(struct sockaddr_in)`); longer is fine.
/// The family is not checked: Linux takes `AF_UNSPEC` where it means "any" or "disconnect",
/// which is the caller's call.
pub fn decode_in(bytes: &[u8]) -> Result<SocketAddrV4> {
    let b = bytes
        .first_chunk::<SOCKADDR_IN_LEN>()
        .ok_or(Errno::EINVAL)?;
    let port = u16::from_be_bytes([b[2], b[3]]);
    Ok(SocketAddrV4::new(
        Ipv4Addr::new(b[4], b[5], b[6], b[7]),
        port,
    ))
}

/// Reads a `sockaddr_in6`: shorter than RFC 2133's 24 bytes is `EINVAL` (Linux's
/// `inet6_bind` and `ip6_datagram_connect` check `SIN6_LEN_RFC2133`); from 24 to 27 bytes
/// there is no scope id, which reads as 0. The family is not checked (see [`decode_in`]).
pub fn decode_in6(bytes: &[u8]) -> Result<SocketAddrV6> {
    let b = bytes
        .first_chunk::<SIN6_LEN_RFC2133>()
        .ok_or(Errno::EINVAL)?;
    let port = u16::from_be_bytes([b[2], b[3]]);
    let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&b[8..24]);
    let scope = bytes
        .get(SIN6_LEN_RFC2133..SOCKADDR_IN6_LEN)
        .and_then(|s| s.first_chunk::<4>())
        .map_or(0, |s| u32::from_ne_bytes(*s));
    Ok(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope))
}

/// Writes bytes into a caller's storage, as many as fit, and counts them all: how every
/// encoder here truncates, for a face that adds a layout of its own.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Appends `b`, or the part of it that fits.
    pub fn put(&mut self, b: &[u8]) -> &mut Self {
        if let Some(room) = self.buf.get_mut(self.len..) {
            let n = b.len().min(room.len());
            room[..n].copy_from_slice(&b[..n]);
        }
        self.len = self.len.saturating_add(b.len());
        self
    }

    /// Appends a family field.
    pub fn family(&mut self, family: u16) -> &mut Self {
        self.put(&family.to_ne_bytes())
    }

    /// Everything put so far, including what did not fit.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was put.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Writes the family alone (2 bytes): how Linux reports an unnamed `AF_UNIX` socket.
pub fn encode_family(family: u16, out: &mut [u8]) -> usize {
    Writer::new(out).family(family).len()
}

/// Writes `name` as a `sockaddr_un`: a name starting with `/` as a NUL-terminated path
/// (as Linux reports a path name, `sun_path` plus its NUL), any other as an abstract name
/// (`\0name`, unterminated, as Linux reports those). A name longer than `sun_path` holds
/// (ksock's go to 255 bytes) is written whole, past `sizeof(sockaddr_un)`.
pub fn encode_un(name: &LocalName, out: &mut [u8]) -> usize {
    let n = name.as_bytes();
    let mut w = Writer::new(out);
    w.family(AF_UNIX);
    if n.first() == Some(&b'/') {
        w.put(n).put(&[0]);
    } else {
        w.put(&[0]).put(n);
    }
    w.len()
}

/// Writes a `sockaddr_in` (16 bytes).
pub fn encode_in(a: &SocketAddrV4, out: &mut [u8]) -> usize {
    let mut w = Writer::new(out);
    w.family(AF_INET)
        .put(&a.port().to_be_bytes())
        .put(&a.ip().octets())
        .put(&[0u8; 8]);
    w.len()
}

/// Writes a `sockaddr_in6` (28 bytes).
pub fn encode_in6(a: &SocketAddrV6, out: &mut [u8]) -> usize {
    let mut w = Writer::new(out);
    w.family(AF_INET6)
        .put(&a.port().to_be_bytes())
        .put(&a.flowinfo().to_be_bytes())
        .put(&a.ip().octets())
        .put(&a.scope_id().to_ne_bytes());
    w.len()
}

/// Writes a `sockaddr_in` or a `sockaddr_in6`, by the address's version.
pub fn encode_inet(a: &SocketAddr, out: &mut [u8]) -> usize {
    match a {
        SocketAddr::V4(a) => encode_in(a, out),
        SocketAddr::V6(a) => encode_in6(a, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn encoded(f: impl Fn(&mut [u8]) -> usize) -> Vec<u8> {
        let mut v = vec![0u8; f(&mut [])];
        assert_eq!(f(&mut v), v.len());
        v
    }

    #[test]
    fn layouts() {
        let a: SocketAddrV4 = "127.0.0.1:80".parse().unwrap();
        let v = encoded(|o| encode_in(&a, o));
        assert_eq!(v.len(), SOCKADDR_IN_LEN);
        assert_eq!(&v[..2], &AF_INET.to_ne_bytes());
        assert_eq!(&v[2..8], &[0, 80, 127, 0, 0, 1]);
        assert_eq!(&v[8..], &[0u8; 8]);
        let a6 = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 0x0102_0304, 7);
        let v = encoded(|o| encode_in6(&a6, o));
        assert_eq!(v.len(), SOCKADDR_IN6_LEN);
        assert_eq!(&v[2..8], &[1, 187, 1, 2, 3, 4]);
        assert_eq!(&v[24..], &7u32.to_ne_bytes());
        // RFC 2133's form has no scope id.
        assert_eq!(
            decode_in6(&v[..SIN6_LEN_RFC2133]),
            Ok(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 0x0102_0304, 0))
        );
        let path = LocalName::new(b"/run/x").unwrap();
        assert_eq!(encoded(|o| encode_un(&path, o)), b"\x01\0/run/x\0");
        let abs = LocalName::new(b"dwm").unwrap();
        assert_eq!(encoded(|o| encode_un(&abs, o)), b"\x01\0\0dwm");
        assert_eq!(encode_family(AF_UNIX, &mut [0; 8]), 2);
    }

    #[test]
    fn unix_rules() {
        let ok = |b: &[u8]| decode_un(b).map(|n| n.as_bytes().to_vec());
        assert_eq!(ok(b"\x01\0/run/x\0junk"), Ok(b"/run/x".to_vec()));
        assert_eq!(ok(b"\x01\0/run/x"), Ok(b"/run/x".to_vec()), "no NUL needed");
        assert_eq!(ok(b"\x01\0\0a\0b"), Ok(b"a\0b".to_vec()));
        assert_eq!(
            ok(b"\x01\0\0"),
            Err(Errno::EINVAL),
            "the empty abstract name"
        );
        assert_eq!(ok(b"\x02\0\0dwm"), Err(Errno::EINVAL), "another family");
        let mut long = vec![0u8; SOCKADDR_UN_LEN + 1];
        long[..2].copy_from_slice(&AF_UNIX.to_ne_bytes());
        long[3] = b'a';
        assert_eq!(ok(&long), Err(Errno::EINVAL));
        assert!(ok(&long[..SOCKADDR_UN_LEN]).is_ok());
    }

    #[test]
    fn truncation_copies_what_fits() {
        let a: SocketAddrV4 = "10.1.2.3:8080".parse().unwrap();
        let full = encoded(|o| encode_in(&a, o));
        for n in 0..full.len() {
            let mut buf = vec![0xAAu8; n];
            assert_eq!(encode_in(&a, &mut buf), full.len());
            assert_eq!(buf, full[..n]);
        }
    }

    fn any_v6() -> impl Strategy<Value = SocketAddrV6> {
        (any::<[u8; 16]>(), any::<u16>(), any::<u32>(), any::<u32>())
            .prop_map(|(ip, port, flow, scope)| SocketAddrV6::new(ip.into(), port, flow, scope))
    }

    proptest! {
        #[test]
        fn in_round_trips(ip in any::<[u8; 4]>(), port in any::<u16>()) {
            let a = SocketAddrV4::new(ip.into(), port);
            let v = encoded(|o| encode_in(&a, o));
            prop_assert_eq!(family(&v), Some(AF_INET));
            prop_assert_eq!(decode_in(&v), Ok(a));
            prop_assert_eq!(decode_in(&[&v[..], &[9u8; 5][..]].concat()), Ok(a));
        }

        #[test]
        fn in6_round_trips(a in any_v6()) {
            let v = encoded(|o| encode_in6(&a, o));
            prop_assert_eq!(family(&v), Some(AF_INET6));
            prop_assert_eq!(decode_in6(&v), Ok(a));
            let short = decode_in6(&v[..SIN6_LEN_RFC2133]);
            prop_assert_eq!(short.map(|s| s.scope_id()), Ok(0));
            prop_assert_eq!(short.map(|s| (*s.ip(), s.port(), s.flowinfo())),
                Ok((*a.ip(), a.port(), a.flowinfo())));
        }

        #[test]
        fn un_round_trips(name in proptest::collection::vec(any::<u8>(), 1..=107)) {
            // What sun_path can hold: a path of at most 107 bytes plus its NUL, an abstract
            // name of at most 107 after its NUL. A path stops at its first NUL, so only
            // NUL-free paths come back whole.
            let n = LocalName::new(&name).unwrap();
            let v = encoded(|o| encode_un(&n, o));
            prop_assert_eq!(family(&v), Some(AF_UNIX));
            prop_assume!(name[0] != b'/' || !name.contains(&0));
            prop_assert_eq!(decode_un(&v), Ok(n));
        }

        #[test]
        fn short_is_einval(bytes in proptest::collection::vec(any::<u8>(), 0..SIN6_LEN_RFC2133)) {
            let mut b = bytes;
            if b.len() >= FAMILY_LEN {
                b[..2].copy_from_slice(&AF_UNIX.to_ne_bytes());
            }
            prop_assert_eq!(decode_un(&b[..b.len().min(FAMILY_LEN)]), Err(Errno::EINVAL));
            prop_assert_eq!(decode_in(&b[..b.len().min(SOCKADDR_IN_LEN - 1)]), Err(Errno::EINVAL));
            prop_assert_eq!(decode_in6(&b), Err(Errno::EINVAL));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            room in 0usize..40,
        ) {
            let _ = (decode_un(&bytes), decode_in(&bytes), decode_in6(&bytes), family(&bytes));
            if let Ok(n) = decode_un(&bytes) {
                // What came in goes out as a name Linux would read back the same.
                let v = encoded(|o| encode_un(&n, o));
                prop_assert_eq!(decode_un(&v), Ok(n.clone()));
                let mut small = vec![0u8; room];
                prop_assert_eq!(encode_un(&n, &mut small), v.len());
            }
            if let Ok(a) = decode_in6(&bytes) {
                let mut small = vec![0u8; room];
                prop_assert_eq!(encode_in6(&a, &mut small), SOCKADDR_IN6_LEN);
            }
        }
    }
}
