//! Protocol option numbers (Linux's) and their value rules.

use ksock::{Errno, Result};

/// `IPPROTO_IP`.
pub const IPPROTO_IP: i32 = 0;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: i32 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: i32 = 17;
/// `IPPROTO_IPV6`.
pub const IPPROTO_IPV6: i32 = 41;
/// `TCP_NODELAY`.
pub const TCP_NODELAY: i32 = 1;
/// `TCP_MAXSEG` (read; setting it is accepted and ignored).
pub const TCP_MAXSEG: i32 = 2;
/// `TCP_KEEPIDLE`.
pub const TCP_KEEPIDLE: i32 = 4;
/// `TCP_KEEPINTVL`.
pub const TCP_KEEPINTVL: i32 = 5;
/// `TCP_KEEPCNT`.
pub const TCP_KEEPCNT: i32 = 6;
/// `IP_TTL`.
pub const IP_TTL: i32 = 2;
/// `IPV6_UNICAST_HOPS`.
pub const IPV6_UNICAST_HOPS: i32 = 16;
/// `IPV6_V6ONLY`.
pub const IPV6_V6ONLY: i32 = 26;
/// The hop limit when none is set (Linux's `ip_default_ttl`).
pub const DEFAULT_TTL: u8 = 64;

/// Whether a socket of protocol `proto` (`IPPROTO_TCP` or `IPPROTO_UDP`) and `v6` domain
/// has options at `level` (for a `get`, else a set): its protocol's, `IPPROTO_IP`, and
/// `IPPROTO_IPV6` on `AF_INET6` sockets. Any other level is `ENOPROTOOPT`, except for a
/// get on an `AF_INET` socket: `EOPNOTSUPP` (Linux's `ip_getsockopt` and `ip_setsockopt`
/// differ so).
pub(crate) fn level(level: i32, proto: i32, v6: bool, get: bool) -> Result<()> {
    match level {
        IPPROTO_IP => Ok(()),
        l if l == proto => Ok(()),
        IPPROTO_IPV6 if v6 => Ok(()),
        _ if get && !v6 => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::ENOPROTOOPT),
    }
}

/// A socket's hop limits: `IP_TTL` for what it sends over IPv4 (IPv4-mapped peers of an
/// `AF_INET6` socket included) and `IPV6_UNICAST_HOPS` for IPv6, kept apart as Linux keeps
/// them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hops {
    ttl: Option<u8>,
    hops: Option<u8>,
}

impl Hops {
    /// The option `(level, name)` if it is one of these.
    pub(crate) fn get(&self, level: i32, name: i32) -> Option<i32> {
        match (level, name) {
            (IPPROTO_IP, IP_TTL) => Some(i32::from(self.ttl.unwrap_or(DEFAULT_TTL))),
            (IPPROTO_IPV6, IPV6_UNICAST_HOPS) => Some(i32::from(self.hops.unwrap_or(DEFAULT_TTL))),
            _ => None,
        }
    }

    /// Sets `(level, name)` to `v`: `Ok(false)` if it is not one of these; `EINVAL` for a
    /// value out of range (`IP_TTL` 1 to 255, `IPV6_UNICAST_HOPS` 0 to 255; -1 is the
    /// default for both).
    pub(crate) fn set(&mut self, level: i32, name: i32, v: i32) -> Result<bool> {
        let slot = match (level, name) {
            (IPPROTO_IP, IP_TTL) if v == 0 => return Err(Errno::EINVAL),
            (IPPROTO_IP, IP_TTL) => &mut self.ttl,
            (IPPROTO_IPV6, IPV6_UNICAST_HOPS) => &mut self.hops,
            _ => return Ok(false),
        };
        *slot = match v {
            -1 => None,
            0..=255 => Some(v as u8),
            _ => return Err(Errno::EINVAL),
        };
        Ok(true)
    }

    /// The hop limit for a peer (IPv4 or IPv6): what smoltcp is given, which sends no
    /// packet with a hop limit of 0 (an IPv6 hop limit of 0 goes out as 1).
    pub(crate) fn for_peer(&self, v4: bool) -> Option<u8> {
        let h = if v4 { self.ttl } else { self.hops };
        h.map(|h| h.max(1))
    }
}

/// A keep-alive time or count: 1 to `max`, as Linux's `tcp_sock_set_keep*`.
pub(crate) fn keep_value(v: i32, max: i32) -> Result<u32> {
    if (1..=max).contains(&v) {
        Ok(v as u32)
    } else {
        Err(Errno::EINVAL)
    }
}
