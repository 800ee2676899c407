//! Properties of the inet family's address text (`ksock_inet::addr::parse`, what a ctl
//! `bind` or `connect` and a datagram header line give it), for any bytes: shared by the
//! stable property tests (`tests/prop_addr.rs`) and the fuzz target `inet_addr` (`fuzz/`).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use ksock::Errno;
use ksock_inet::addr::parse;

/// A port: one or more decimal digits, at most 65535.
fn port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = s.trim_start_matches('0');
    if v.len() > 5 {
        return None;
    }
    v.parse::<u32>()
        .ok()
        .or(v.is_empty().then_some(0))
        .and_then(|p| u16::try_from(p).ok())
}

/// `a.b.c.d`: four decimal numbers up to 255, without leading zeros.
fn dotted(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut o = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if p.len() > 1 && p.starts_with('0') {
            return None;
        }
        o[i] = p.parse::<u8>().ok()?;
    }
    Some(Ipv4Addr::from(o))
}

/// What SPEC section 7 accepts, written out on its own: `a.b.c.d:port`, `[v6]:port`
/// (the address in RFC 4291 text, with an optional `%scope` as RFC 4007 writes it),
/// `localhost:port`, `*:port`; white space around the text is ignored.
fn expected(text: &[u8]) -> Option<SocketAddr> {
    let s = core::str::from_utf8(text).ok()?;
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let (host, p) = s.rsplit_once(':')?;
    let p = port(p)?;
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let (ip, scope) = match inner.split_once('%') {
            Some((ip, scope)) => (ip, Some(scope)),
            None => (inner, None),
        };
        // The address grammar itself is RFC 4291's; std's parser is its reference here.
        let ip: Ipv6Addr = ip.parse().ok()?;
        let scope = match scope {
            None => 0,
            Some(sc) if !sc.is_empty() && sc.bytes().all(|b| b.is_ascii_digit()) => {
                sc.parse::<u32>().ok()?
            }
            Some(_) => return None,
        };
        return Some(SocketAddr::V6(SocketAddrV6::new(ip, p, 0, scope)));
    }
    let ip = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "*" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        h => IpAddr::V4(dotted(h)?),
    };
    Some(SocketAddr::new(ip, p))
}

/// Every property, for one text.
pub fn check_inet_addr(text: &[u8]) {
    let got = parse(text);
    match (&got, expected(text)) {
        (Ok(a), Some(b)) => assert_eq!(*a, b, "{:?}", String::from_utf8_lossy(text)),
        (Err(e), None) => assert_eq!(*e, Errno::EINVAL),
        (got, want) => panic!(
            "{:?}: parsed {got:?}, SPEC says {want:?}",
            String::from_utf8_lossy(text)
        ),
    }
    if let Ok(a) = got {
        // Printed as Rust's SocketAddr prints, it parses back to the same address.
        let shown = a.to_string();
        assert_eq!(parse(shown.as_bytes()), Ok(a), "{shown}");
        assert_eq!(expected(shown.as_bytes()), Some(a), "{shown}");
    }
}
