//! Addresses: the text forms of the ctl files (SPEC section 7) and the conversions between
//! the core's `SocketAddr` and smoltcp's endpoints.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use ksock::{Errno, Result, SockAddr};
use smoltcp::wire::{IpAddress, IpEndpoint};

/// Parses `a.b.c.d:port`, `[v6]:port`, `localhost:port` (IPv4 loopback) or `*:port`
/// (every address of both versions: `[::]:port`, dual-stack). A malformed address or a
/// port above 65535: `EINVAL`.
pub fn parse(text: &[u8]) -> Result<SocketAddr> {
    let text = core::str::from_utf8(text).map_err(|_| Errno::EINVAL)?;
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = text.rsplit_once(':').ok_or(Errno::EINVAL)?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Errno::EINVAL);
    }
    let port: u16 = port.parse().map_err(|_| Errno::EINVAL)?;
    let ip = match host {
        "*" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return Err(Errno::EINVAL),
    };
    Ok(SocketAddr::new(ip, port))
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it stands for;
/// anything else unchanged.
pub fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        _ => a,
    }
}

/// How a socket of `v6` domain reports `a`: an `AF_INET6` socket sees IPv4 peers as
/// mapped addresses, as Linux does.
pub fn report(a: SocketAddr, v6: bool) -> SockAddr {
    match (a, v6) {
        (SocketAddr::V4(v4), true) => SockAddr::Inet(SocketAddr::V6(SocketAddrV6::new(
            v4.ip().to_ipv6_mapped(),
            v4.port(),
            0,
            0,
        ))),
        _ => SockAddr::Inet(a),
    }
}

/// smoltcp's form of an address.
pub fn to_ip(a: IpAddr) -> IpAddress {
    match a {
        IpAddr::V4(v) => IpAddress::Ipv4(v),
        IpAddr::V6(v) => IpAddress::Ipv6(v),
    }
}

/// The core's form of smoltcp's address.
pub fn from_ip(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(v) => IpAddr::V4(v),
        IpAddress::Ipv6(v) => IpAddr::V6(v),
    }
}

/// smoltcp's endpoint for `a`.
pub fn to_ep(a: SocketAddr) -> IpEndpoint {
    IpEndpoint::new(to_ip(a.ip()), a.port())
}

/// The core's form of smoltcp's endpoint.
pub fn from_ep(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(from_ip(e.addr), e.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<SocketAddr> {
        parse(s.as_bytes())
    }

    #[test]
    fn text_forms() {
        assert_eq!(p("127.0.0.1:80").unwrap().to_string(), "127.0.0.1:80");
        assert_eq!(p("[::1]:8080").unwrap().to_string(), "[::1]:8080");
        assert_eq!(p("localhost:7").unwrap().to_string(), "127.0.0.1:7");
        assert_eq!(p("*:9").unwrap().to_string(), "[::]:9");
        assert_eq!(p(" 10.0.0.1:1\n").unwrap().to_string(), "10.0.0.1:1");
        for bad in [
            "",
            "1.2.3.4",
            "1.2.3.4:",
            "1.2.3.4:65536",
            "1.2.3.4:-1",
            "::1:80",
            "[::1]",
            "host:80",
            "*:x",
            "1.2.3.256:1",
            "*:99999999999999999999",
        ] {
            assert_eq!(p(bad), Err(Errno::EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn mapped_addresses() {
        let m: SocketAddr = "[::ffff:127.0.0.1]:5".parse().unwrap();
        assert_eq!(unmap(m).to_string(), "127.0.0.1:5");
        let a: SocketAddr = "127.0.0.1:5".parse().unwrap();
        assert_eq!(report(a, true).to_string(), "[::ffff:127.0.0.1]:5");
        assert_eq!(report(a, false).to_string(), "127.0.0.1:5");
    }
}
