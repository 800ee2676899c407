//! Socket addresses as bytes, for the calls that fill a caller's `struct sockaddr` storage
//! (`sock_accept`'s `from`, `sock_getsockname`, `sock_getpeername`, a receive's `name`).
//!
//! The layout is Linux's, like every number in ksock: a native-endian `u16` family, then
//! - local (`AF_LOCAL` = 1): the name's bytes (1 to 255, no terminating NUL; the length is
//!   the total length minus 2). An unnamed socket is the family alone (2 bytes).
//! - `AF_INET` (2): `sockaddr_in`, 16 bytes (port and address in network order).
//! - `AF_INET6` (10): `sockaddr_in6`, 28 bytes.
//!
//! The `sockaddr_in` and `sockaddr_in6` layouts and the truncating writer are the core's
//! ([`ksock::addr::raw`], shared with the POSIX face); the local layout is the KPI's own.
//!
//! Like XNU, the KPI copies as much as fits in the caller's storage; like Linux, it reports
//! the untruncated length, so a caller can tell that its storage was too small.

use ksock::addr::raw::{self, Writer};
use ksock::{Domain, Errno, Result, SockAddr};

/// `AF_LOCAL` / `AF_UNIX`.
pub const AF_LOCAL: u16 = raw::AF_UNIX;
/// `AF_INET`.
pub const AF_INET: u16 = raw::AF_INET;
/// `AF_INET6`.
pub const AF_INET6: u16 = raw::AF_INET6;

/// Length of a `sockaddr_in`.
pub const SOCKADDR_IN_LEN: usize = raw::SOCKADDR_IN_LEN;
/// Length of a `sockaddr_in6`.
pub const SOCKADDR_IN6_LEN: usize = raw::SOCKADDR_IN6_LEN;

/// Writes `addr`, the address of a socket in `domain`, into `out`, truncated to its length;
/// returns the full length. [`SockAddr::Unnamed`] is the family alone.
pub fn encode(domain: Domain, addr: &SockAddr, out: &mut [u8]) -> usize {
    match addr {
        SockAddr::Unnamed => raw::encode_family(domain.raw(), out),
        // The KPI's own layout for local names: the bytes, not a `sun_path`.
        SockAddr::Local(n) => Writer::new(out).family(AF_LOCAL).put(n.as_bytes()).len(),
        SockAddr::Inet(a) => raw::encode_inet(a, out),
    }
}

/// Like [`encode`], but an unnamed address is nothing at all (length 0): what a receive
/// reports for a sender without a name, as Linux does.
pub(crate) fn encode_sender(domain: Domain, addr: &SockAddr, out: &mut [u8]) -> usize {
    if addr.is_unnamed() {
        0
    } else {
        encode(domain, addr, out)
    }
}

/// Reads an address written by [`encode`]. Shorter than its family needs: `EINVAL`; a local
/// name longer than 255 bytes: `ENAMETOOLONG`; an unknown family: `EAFNOSUPPORT`. A
/// `sockaddr_in6` is the whole 28 bytes, the length [`encode`] writes (the shorter RFC 2133
/// form Linux also takes is not this layout).
pub fn decode(bytes: &[u8]) -> Result<SockAddr> {
    let family = raw::family(bytes).ok_or(Errno::EINVAL)?;
    let rest = bytes.get(raw::FAMILY_LEN..).unwrap_or_default();
    match family {
        AF_LOCAL if rest.is_empty() => Ok(SockAddr::Unnamed),
        AF_LOCAL => SockAddr::local(rest),
        AF_INET => Ok(SockAddr::Inet(raw::decode_in(bytes)?.into())),
        AF_INET6 if bytes.len() < SOCKADDR_IN6_LEN => Err(Errno::EINVAL),
        AF_INET6 => Ok(SockAddr::Inet(raw::decode_in6(bytes)?.into())),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(domain: Domain, a: SockAddr, len: usize) {
        let mut buf = [0u8; 300];
        assert_eq!(encode(domain, &a, &mut buf), len);
        assert_eq!(decode(&buf[..len]).unwrap(), a);
    }

    #[test]
    fn layouts_round_trip() {
        round_trip(Domain::LOCAL, SockAddr::local("echo").unwrap(), 6);
        round_trip(Domain::LOCAL, SockAddr::local([7u8; 255]).unwrap(), 257);
        round_trip(Domain::LOCAL, SockAddr::Unnamed, 2);
        round_trip(
            Domain::INET,
            SockAddr::Inet("10.1.2.3:8080".parse().unwrap()),
            SOCKADDR_IN_LEN,
        );
        round_trip(
            Domain::INET6,
            SockAddr::Inet("[fe80::1%3]:443".parse().unwrap()),
            SOCKADDR_IN6_LEN,
        );
    }

    #[test]
    fn inet_bytes_are_network_order() {
        let mut buf = [0u8; 16];
        encode(
            Domain::INET,
            &SockAddr::Inet("127.0.0.1:80".parse().unwrap()),
            &mut buf,
        );
        assert_eq!(&buf[2..8], &[0, 80, 127, 0, 0, 1]);
        assert_eq!(&buf[8..], &[0u8; 8]);
    }

    #[test]
    fn truncation_copies_what_fits_and_reports_the_full_length() {
        let a = SockAddr::local("abcdef").unwrap();
        let mut small = [0xAAu8; 5];
        assert_eq!(encode(Domain::LOCAL, &a, &mut small), 8);
        assert_eq!(&small[2..], b"abc");
        assert_eq!(&small[..2], &AF_LOCAL.to_ne_bytes());
        assert_eq!(encode(Domain::LOCAL, &a, &mut []), 8);
        let mut one = [0xAAu8; 1];
        assert_eq!(encode(Domain::LOCAL, &a, &mut one), 8);
        assert_eq!(one[0], AF_LOCAL.to_ne_bytes()[0]);
    }

    #[test]
    fn bad_bytes() {
        assert_eq!(decode(&[]), Err(Errno::EINVAL));
        assert_eq!(decode(&[1]), Err(Errno::EINVAL));
        assert_eq!(decode(&99u16.to_ne_bytes()), Err(Errno::EAFNOSUPPORT));
        let mut v = AF_INET.to_ne_bytes().to_vec();
        v.extend_from_slice(&[0; 10]);
        assert_eq!(decode(&v), Err(Errno::EINVAL), "a short sockaddr_in");
        let mut long = AF_LOCAL.to_ne_bytes().to_vec();
        long.extend_from_slice(&[b'x'; 256]);
        assert_eq!(decode(&long), Err(Errno::ENAMETOOLONG));
    }

    #[test]
    fn a_nameless_sender_is_length_zero() {
        let mut buf = [0u8; 8];
        assert_eq!(
            encode_sender(Domain::LOCAL, &SockAddr::Unnamed, &mut buf),
            0
        );
        assert_eq!(
            encode_sender(Domain::LOCAL, &SockAddr::local("a").unwrap(), &mut buf),
            3
        );
    }
}
