//! Properties of the kernel face's sockaddr conversions (`ksock_kpi::sockaddr`), for any
//! bytes a kernel caller may hand in and any storage it may give: shared by the stable
//! property tests (`tests/prop_sockaddr.rs`) and the fuzz target `kpi_sockaddr` (`fuzz/`).

use core::net::SocketAddr;
use ksock::{Domain, Errno, SockAddr};
use ksock_kpi::sockaddr::{self, AF_INET, AF_INET6, AF_LOCAL, SOCKADDR_IN_LEN, SOCKADDR_IN6_LEN};

/// Encodes into storage of `room` bytes followed by a guard: nothing is written past
/// `room`, what is written is a prefix of the whole encoding, and the whole length is
/// reported. Returns the whole encoding.
fn encode_checked(domain: Domain, a: &SockAddr, room: usize) -> Vec<u8> {
    let len = sockaddr::encode(domain, a, &mut []);
    let mut full = vec![0u8; len];
    assert_eq!(sockaddr::encode(domain, a, &mut full), len);
    for fill in [0x00u8, 0x5A] {
        let mut buf = vec![fill; room + 8];
        assert_eq!(sockaddr::encode(domain, a, &mut buf[..room]), len);
        let n = room.min(len);
        assert_eq!(&buf[..n], &full[..n], "a prefix of the encoding");
        assert!(
            buf[n..].iter().all(|&b| b == fill),
            "wrote past the address"
        );
    }
    full
}

/// What `decode` should say, from its documentation.
fn expected(bytes: &[u8]) -> Result<SockAddr, Errno> {
    if bytes.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let rest = &bytes[2..];
    match u16::from_ne_bytes([bytes[0], bytes[1]]) {
        AF_LOCAL if rest.is_empty() => Ok(SockAddr::Unnamed),
        AF_LOCAL if rest.len() > 255 => Err(Errno::ENAMETOOLONG),
        AF_LOCAL => SockAddr::local(rest),
        AF_INET if bytes.len() < SOCKADDR_IN_LEN => Err(Errno::EINVAL),
        AF_INET => Ok(SockAddr::Inet(SocketAddr::new(
            [bytes[4], bytes[5], bytes[6], bytes[7]].into(),
            u16::from_be_bytes([bytes[2], bytes[3]]),
        ))),
        AF_INET6 if bytes.len() < SOCKADDR_IN6_LEN => Err(Errno::EINVAL),
        AF_INET6 => {
            let ip: [u8; 16] = bytes[8..24].try_into().unwrap();
            Ok(SockAddr::Inet(SocketAddr::V6(
                core::net::SocketAddrV6::new(
                    ip.into(),
                    u16::from_be_bytes([bytes[2], bytes[3]]),
                    u32::from_be_bytes(bytes[4..8].try_into().unwrap()),
                    u32::from_ne_bytes(bytes[24..28].try_into().unwrap()),
                ),
            )))
        }
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// The domain a decoded address belongs to.
fn domain_of(a: &SockAddr) -> Domain {
    match a {
        SockAddr::Unnamed | SockAddr::Local(_) => Domain::LOCAL,
        SockAddr::Inet(SocketAddr::V4(_)) => Domain::INET,
        SockAddr::Inet(SocketAddr::V6(_)) => Domain::INET6,
    }
}

/// Every property, for one input: the first byte is the caller's storage size, the rest
/// the address bytes.
pub fn check_sockaddr(data: &[u8]) {
    let room = data.first().map_or(0, |&b| b as usize + data.len() % 64);
    let bytes = data.get(1..).unwrap_or_default();
    let got = sockaddr::decode(bytes);
    assert_eq!(got, expected(bytes), "decode({bytes:?})");
    if let Ok(a) = &got {
        // What was read is written back the same, and reads back the same.
        let out = encode_checked(domain_of(a), a, room);
        assert_eq!(sockaddr::decode(&out).as_ref(), Ok(a));
        // The same bytes, but for sin_zero (written as zeros, whatever was read).
        match a {
            SockAddr::Inet(SocketAddr::V4(_)) => {
                assert_eq!(out.len(), SOCKADDR_IN_LEN);
                assert_eq!(out[..8], bytes[..8]);
                assert_eq!(&out[8..], &[0u8; 8], "sin_zero");
            }
            SockAddr::Inet(SocketAddr::V6(_)) => assert_eq!(out[..], bytes[..SOCKADDR_IN6_LEN]),
            _ => assert_eq!(out, bytes),
        }
    }
    // An unnamed socket's address is its family alone, in every domain (only the local
    // one reads back: a bare AF_INET family is too short for a sockaddr_in).
    for d in [Domain::LOCAL, Domain::INET, Domain::INET6] {
        let out = encode_checked(d, &SockAddr::Unnamed, room);
        assert_eq!(out, d.raw().to_ne_bytes());
    }
    assert_eq!(
        sockaddr::decode(&encode_checked(Domain::LOCAL, &SockAddr::Unnamed, room)),
        Ok(SockAddr::Unnamed)
    );
    // A local name made of the bytes (1 to 255 of them) round-trips in any storage.
    if let Ok(a) = SockAddr::local(bytes) {
        let out = encode_checked(Domain::LOCAL, &a, room);
        assert_eq!(out.len(), 2 + bytes.len());
        assert_eq!(sockaddr::decode(&out), Ok(a));
    }
}
