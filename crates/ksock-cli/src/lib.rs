//! The library behind the `ksock` command: the `ss` table, read from a mounted tree or
//! from a stack running in the same process, and the parsing of its size options.

#![forbid(unsafe_code)]

pub mod ss;

/// Writes one line to standard error in one `write(2)`, so that a reader of a log that is
/// being written (a test waiting for "ready") never sees half of it.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Parses a byte count with an optional binary suffix: `4096`, `64K`, `64M`, `1G`, `2T`
/// (case-insensitive; `KiB`, `MB` and the like are read the same way, as powers of 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (a number, then K, M, G or T)"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use K, M, G or T)"
            ));
        }
    };
    let bytes = n
        .checked_mul(1u64 << shift)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err("the size must be at least 1 byte".into());
    }
    Ok(bytes)
}

/// Parses an interface address with its prefix: `10.9.0.2/24`, `fd00::2/64` (a bare
/// address is a host route: `/32` or `/128`).
pub fn parse_cidr(text: &str) -> Result<(std::net::IpAddr, u8), String> {
    let t = text.trim();
    let (ip, len) = match t.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (t, None),
    };
    let ip: std::net::IpAddr = ip.parse().map_err(|_| {
        format!("{text:?} is not an address with a prefix (10.9.0.2/24 or fd00::2/64)")
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
        },
    };
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(format!(
            "{text:?}: an interface address must be unicast, not the any address or the \
             loopback's"
        ));
    }
    Ok((ip, len))
}

/// Checks a TAP interface's settings and makes its configuration: at least one address;
/// at most one gateway per IP version, each on the network of an address of its version.
pub fn tap_config(
    name: &str,
    addrs: &[(std::net::IpAddr, u8)],
    gateways: &[std::net::IpAddr],
) -> Result<ksock_inet::tap::TapConfig, String> {
    use ksock_inet::smoltcp::wire::IpCidr;
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
        return Err(format!(
            "--tap {name:?}: a device name is 1 to 15 characters, without '/' or spaces"
        ));
    }
    if addrs.is_empty() {
        return Err(format!(
            "--tap {name} needs at least one --addr (ksock's address on it, e.g. --addr \
             10.9.0.2/24)"
        ));
    }
    let mut cfg = ksock_inet::tap::TapConfig::new(name);
    for &(ip, len) in addrs {
        cfg.addrs
            .push(IpCidr::new(ksock_inet::addr::to_ip(ip), len));
    }
    for (i, g) in gateways.iter().enumerate() {
        if gateways[..i].iter().any(|o| o.is_ipv4() == g.is_ipv4()) {
            return Err(format!(
                "--gateway {g}: one gateway per IP version (IPv4 and IPv6)"
            ));
        }
        let on_net = cfg.addrs.iter().any(|c| {
            let g = ksock_inet::addr::to_ip(*g);
            c.address() != g && c.contains_addr(&g)
        });
        if !on_net {
            return Err(format!(
                "--gateway {g}: not on the network of any --addr of its version"
            ));
        }
    }
    cfg.gateways = gateways.to_vec();
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::{parse_cidr, parse_size, tap_config};
    use std::net::IpAddr;

    #[test]
    fn tap_addresses_and_gateways() {
        let v4: IpAddr = "10.9.0.2".parse().unwrap();
        assert_eq!(parse_cidr("10.9.0.2/24"), Ok((v4, 24)));
        assert_eq!(parse_cidr("10.9.0.2"), Ok((v4, 32)));
        assert_eq!(
            parse_cidr("fd00:9::2/64"),
            Ok(("fd00:9::2".parse().unwrap(), 64))
        );
        for bad in [
            "10.9.0.2/33",
            "10.9.0/24",
            "fd00::2/129",
            "x/8",
            "0.0.0.0/0",
            "127.0.0.5/8",
            "10.9.0.2/-1",
            "",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        let addrs = [(v4, 24), ("fd00:9::2".parse().unwrap(), 64)];
        let gw4: IpAddr = "10.9.0.1".parse().unwrap();
        let gw6: IpAddr = "fd00:9::1".parse().unwrap();
        let cfg = tap_config("tap0", &addrs, &[gw4, gw6]).unwrap();
        assert_eq!((cfg.addrs.len(), cfg.gateways.len()), (2, 2));
        let err = |r: Result<_, String>| r.map(drop).unwrap_err();
        assert!(err(tap_config("tap0", &[], &[])).contains("needs at least one --addr"));
        assert!(
            err(tap_config("tap0", &addrs, &["10.8.0.1".parse().unwrap()]))
                .contains("not on the network")
        );
        assert!(err(tap_config("tap0", &addrs, &[v4])).contains("not on the network"));
        assert!(
            err(tap_config(
                "tap0",
                &addrs,
                &[gw4, "10.9.0.3".parse().unwrap()]
            ))
            .contains("one gateway per IP version")
        );
        assert!(err(tap_config("a/b", &addrs, &[])).contains("device name"));
        assert!(err(tap_config("sixteen-chars-xx", &addrs, &[])).contains("device name"));
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert!(parse_size("").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
