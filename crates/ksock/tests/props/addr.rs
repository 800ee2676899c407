//! Properties of the raw sockaddr codec (`ksock::addr::raw`), for any bytes a caller may
//! pass and any storage it may give: shared by the stable property tests
//! (`tests/prop_addr.rs`) and the fuzz target `raw_addr` (`fuzz/`).

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use ksock::addr::LocalName;
use ksock::addr::raw::{self, *};
use ksock::{Errno, SockAddr};

/// Runs an encoder into storage of `room` bytes that goes on past them (a guard), and checks
/// it wrote nothing past `room`, wrote a prefix of the whole encoding, and reported the whole
/// length. Returns the whole encoding.
fn encode_checked(room: usize, f: impl Fn(&mut [u8]) -> usize) -> Vec<u8> {
    let full_len = f(&mut []);
    let mut full = vec![0u8; full_len];
    assert_eq!(
        f(&mut full),
        full_len,
        "the length does not depend on the room"
    );
    for fill in [0x00u8, 0xA5] {
        let mut buf = vec![fill; room + 8];
        let (storage, guard) = buf.split_at_mut(room);
        assert_eq!(f(storage), full_len, "the full length, whatever the room");
        assert!(guard.iter().all(|&b| b == fill), "wrote past the storage");
        let n = room.min(full_len);
        assert_eq!(&buf[..n], &full[..n], "a prefix of the encoding");
        assert!(
            buf[n..room].iter().all(|&b| b == fill),
            "wrote past the address"
        );
    }
    full
}

/// A `u16`, `u32`, ... from the front of `data` (zeros past its end).
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

/// What `decode_un` should give, from its documentation (Linux's `unix_mkname`).
fn expected_un(bytes: &[u8]) -> Result<Vec<u8>, Errno> {
    if bytes.len() <= FAMILY_LEN || bytes.len() > SOCKADDR_UN_LEN {
        return Err(Errno::EINVAL);
    }
    if u16::from_ne_bytes([bytes[0], bytes[1]]) != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &bytes[2..];
    let name = if path[0] == 0 {
        &path[1..]
    } else {
        path.split(|&b| b == 0).next().unwrap_or_default()
    };
    if name.is_empty() {
        return Err(Errno::EINVAL);
    }
    Ok(name.to_vec())
}

/// Every property, for one input: the bytes are decoded as each layout, and, read as
/// values, encoded into storage of a size they choose.
pub fn check_raw(data: &[u8]) {
    let room = data
        .first()
        .map_or(0, |&b| b as usize % (SOCKADDR_STORAGE_LEN + 16));
    let bytes = data.get(1..).unwrap_or_default();

    // Decoding arbitrary bytes: Ok, or EINVAL, never anything else.
    assert_eq!(
        raw::family(bytes),
        bytes.get(..2).map(|f| u16::from_ne_bytes([f[0], f[1]]))
    );
    let un = decode_un(bytes);
    assert_eq!(
        un.clone().map(|n| n.as_bytes().to_vec()),
        expected_un(bytes),
        "decode_un({bytes:?})"
    );
    if let Ok(n) = &un {
        // What came in goes out in the form Linux reports, which reads back the same
        // (a path is cut at its first NUL, so only NUL-free paths come back whole).
        let out = encode_checked(room, |o| encode_un(n, o));
        if out.len() <= SOCKADDR_UN_LEN && !(n.as_bytes()[0] == b'/' && n.as_bytes().contains(&0)) {
            assert_eq!(decode_un(&out).as_ref(), Ok(n));
        }
    }
    match decode_in(bytes) {
        Ok(a) => {
            assert!(bytes.len() >= SOCKADDR_IN_LEN);
            assert_eq!(a.port(), u16::from_be_bytes([bytes[2], bytes[3]]));
            assert_eq!(a.ip().octets(), bytes[4..8]);
            let out = encode_checked(room, |o| encode_in(&a, o));
            assert_eq!(out.len(), SOCKADDR_IN_LEN);
            assert_eq!(decode_in(&out), Ok(a));
            assert_eq!(&out[2..8], &bytes[2..8]);
        }
        Err(e) => {
            assert_eq!(e, Errno::EINVAL);
            assert!(bytes.len() < SOCKADDR_IN_LEN);
        }
    }
    match decode_in6(bytes) {
        Ok(a) => {
            assert!(bytes.len() >= SIN6_LEN_RFC2133);
            let out = encode_checked(room, |o| encode_in6(&a, o));
            assert_eq!(out.len(), SOCKADDR_IN6_LEN);
            assert_eq!(decode_in6(&out), Ok(a));
            assert_eq!(&out[2..24], &bytes[2..24]);
            if bytes.len() >= SOCKADDR_IN6_LEN {
                assert_eq!(&out[24..28], &bytes[24..28]);
            } else {
                assert_eq!(a.scope_id(), 0, "RFC 2133's form has no scope id");
            }
        }
        Err(e) => {
            assert_eq!(e, Errno::EINVAL);
            assert!(bytes.len() < SIN6_LEN_RFC2133);
        }
    }

    // Values read from the bytes: decode(encode(x)) == x, whatever the storage.
    let mut rest = bytes;
    let fam = u16::from_ne_bytes(take::<2>(&mut rest));
    assert_eq!(
        encode_checked(room, |o| encode_family(fam, o)),
        fam.to_ne_bytes()
    );
    let v4 = SocketAddrV4::new(
        Ipv4Addr::from(take::<4>(&mut rest)),
        u16::from_be_bytes(take::<2>(&mut rest)),
    );
    let out = encode_checked(room, |o| encode_in(&v4, o));
    assert_eq!(raw::family(&out), Some(AF_INET));
    assert_eq!(decode_in(&out), Ok(v4));
    let v6 = SocketAddrV6::new(
        Ipv6Addr::from(take::<16>(&mut rest)),
        u16::from_be_bytes(take::<2>(&mut rest)),
        u32::from_be_bytes(take::<4>(&mut rest)),
        u32::from_ne_bytes(take::<4>(&mut rest)),
    );
    let out = encode_checked(room, |o| encode_in6(&v6, o));
    assert_eq!(raw::family(&out), Some(AF_INET6));
    assert_eq!(decode_in6(&out), Ok(v6));
    for a in [SocketAddr::V4(v4), SocketAddr::V6(v6)] {
        let out = encode_checked(room, |o| encode_inet(&a, o));
        let back = match a {
            SocketAddr::V4(_) => decode_in(&out).map(SocketAddr::V4),
            SocketAddr::V6(_) => decode_in6(&out).map(SocketAddr::V6),
        };
        assert_eq!(back, Ok(a));
    }
    // A name from the bytes (1 to 255 of them): abstract unless it starts with `/`.
    match LocalName::new(bytes) {
        Ok(n) => {
            let out = encode_checked(room, |o| encode_un(&n, o));
            let path = bytes[0] == b'/';
            assert_eq!(out.len(), FAMILY_LEN + bytes.len() + 1);
            if path {
                assert_eq!(&out[2..], [bytes, &[0]].concat());
            } else {
                assert_eq!(&out[2..], [&[0], bytes].concat());
            }
            let back = decode_un(&out);
            if out.len() > SOCKADDR_UN_LEN {
                assert_eq!(back, Err(Errno::EINVAL), "longer than sockaddr_un");
            } else if !(path && bytes.contains(&0)) {
                assert_eq!(back, Ok(n.clone()));
            }
            assert_eq!(SockAddr::local(bytes), Ok(SockAddr::Local(n)));
        }
        Err(e) => assert_eq!(
            e,
            if bytes.is_empty() {
                Errno::EINVAL
            } else {
                Errno::ENAMETOOLONG
            }
        ),
    }
}
