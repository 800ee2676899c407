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

/// Whether a socket of `v6` domain has options at `level` (`IPPROTO_IPV6` only on
/// `AF_INET6` sockets, as Linux): `ENOPROTOOPT` otherwise.
pub(crate) fn level(level: i32, v6: bool) -> Result<()> {
    match level {
        IPPROTO_IP | IPPROTO_TCP | IPPROTO_UDP => Ok(()),
        IPPROTO_IPV6 if v6 => Ok(()),
        _ => Err(Errno::ENOPROTOOPT),
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

/// A TTL or hop limit: 1 to 255, or -1 for the default.
pub(crate) fn ttl_value(v: i32) -> Result<Option<u8>> {
    match v {
        -1 => Ok(None),
        1..=255 => Ok(Some(v as u8)),
        _ => Err(Errno::EINVAL),
    }
}
