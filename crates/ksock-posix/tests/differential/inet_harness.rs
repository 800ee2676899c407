//! Helpers for the inet scenarios (TCP and UDP over 127.0.0.1 and ::1): `sockaddr_in` and
//! `sockaddr_in6` built by hand (the reference must not lean on the codec under test),
//! addresses shown with their ports named, and waits that make Linux's loopback
//! deterministic.
//!
//! Ports: each side picks its own (Linux runs in the host's namespace, where a fixed port
//! may be taken, so every bind is to port 0). A scenario names the ports it made
//! ([`T::label`]); [`T::show`] prints a named port by its name, another ephemeral port as
//! `eph`, and anything else as `port?N` (which then shows in the diff).
//!
//! Waits: Linux delivers loopback segments from a softirq, almost always before the
//! sending call returns but not always, so whatever a scenario expects to have arrived it
//! waits for with `poll` (up to [`SAFETY_MS`]) first. The ksock loopback delivers inside
//! the sending call.

use super::api::R;
use super::harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::RangeInclusive;

/// Both versions.
pub const FAMS: [i32; 2] = [AF_INET, AF_INET6];

/// Linux's default `ip_local_port_range` (SPEC section 7: ksock's ephemeral range).
pub const EPHEMERAL: RangeInclusive<u16> = 32768..=60999;

// Option numbers the POSIX face's `consts` leave out (Linux's, through libc).
pub const SO_REUSEADDR: i32 = libc::SO_REUSEADDR;
pub const SO_KEEPALIVE: i32 = libc::SO_KEEPALIVE;
pub const SO_LINGER: i32 = libc::SO_LINGER;
pub const IPPROTO_IP: i32 = libc::IPPROTO_IP;
pub const IPPROTO_TCP: i32 = libc::IPPROTO_TCP;
pub const IPPROTO_UDP: i32 = libc::IPPROTO_UDP;
pub const IPPROTO_IPV6: i32 = libc::IPPROTO_IPV6;
pub const TCP_NODELAY: i32 = libc::TCP_NODELAY;
pub const TCP_MAXSEG: i32 = libc::TCP_MAXSEG;
pub const TCP_KEEPIDLE: i32 = libc::TCP_KEEPIDLE;
pub const TCP_KEEPINTVL: i32 = libc::TCP_KEEPINTVL;
pub const TCP_KEEPCNT: i32 = libc::TCP_KEEPCNT;
pub const IP_TTL: i32 = libc::IP_TTL;
pub const IPV6_UNICAST_HOPS: i32 = libc::IPV6_UNICAST_HOPS;
pub const IPV6_V6ONLY: i32 = libc::IPV6_V6ONLY;

/// The flags of every inet send: never wait, never raise `SIGPIPE`.
pub const SEND: i32 = MSG_DONTWAIT | MSG_NOSIGNAL;

pub fn fam(d: i32) -> &'static str {
    if d == AF_INET6 { "v6" } else { "v4" }
}

/// The loopback address of a domain.
pub fn lo(d: i32) -> IpAddr {
    if d == AF_INET6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

/// The loopback address of a domain as [`T::show`] prints it.
pub fn lo_text(d: i32) -> &'static str {
    if d == AF_INET6 { "[::1]" } else { "127.0.0.1" }
}

/// The any address of a domain.
pub fn any(d: i32) -> IpAddr {
    if d == AF_INET6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// `::ffff:127.0.0.1`.
pub fn mapped_lo() -> IpAddr {
    IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped())
}

/// A `struct sockaddr_in`: family (host order), port and address (network order), zeros.
pub fn sin(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut v = vec![0u8; 16];
    v[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
    v[2..4].copy_from_slice(&port.to_be_bytes());
    v[4..8].copy_from_slice(&ip.octets());
    v
}

/// A `struct sockaddr_in6`: family, port, flow info 0, address, scope 0.
pub fn sin6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
    let mut v = vec![0u8; 28];
    v[..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
    v[2..4].copy_from_slice(&port.to_be_bytes());
    v[8..24].copy_from_slice(&ip.octets());
    v
}

/// The `sockaddr` of the version of `ip`.
pub fn sa(ip: IpAddr, port: u16) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => sin(a, port),
        IpAddr::V6(a) => sin6(a, port),
    }
}

/// The loopback of domain `d`, port `port`.
pub fn lo_at(d: i32, port: u16) -> Vec<u8> {
    sa(lo(d), port)
}

/// Reads a `sockaddr_in` or `sockaddr_in6` of exactly its size; `None` for anything else.
pub fn parse(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes([*b.first()?, *b.get(1)?]));
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match (family, b.len()) {
        (AF_INET, 16) => {
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        (AF_INET6, 28) => {
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                o.into(),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

impl T<'_> {
    /// A port as the logs show it.
    pub fn show_port(&self, p: u16) -> String {
        if let Some(n) = self.label_of(p) {
            n
        } else if p == 0 {
            "0".into()
        } else if EPHEMERAL.contains(&p) {
            "eph".into()
        } else {
            format!("port?{p}")
        }
    }

    /// An address as the logs show it: `127.0.0.1:L`, `[::ffff:127.0.0.1]:eph`; any
    /// other layout (a wrong length or family, nonzero padding) shown in full.
    pub fn show(&self, b: &[u8]) -> String {
        if b.is_empty() {
            return "none".into();
        }
        match parse(b) {
            Some(SocketAddr::V4(a)) => {
                let pad = if b[8..16].iter().any(|x| *x != 0) {
                    format!(" padding {:?}", &b[8..16])
                } else {
                    String::new()
                };
                format!("{}:{}{pad}", a.ip(), self.show_port(a.port()))
            }
            Some(SocketAddr::V6(a)) => {
                let mut s = format!("[{}]:{}", a.ip(), self.show_port(a.port()));
                if a.flowinfo() != 0 {
                    s.push_str(&format!(" flow {}", a.flowinfo()));
                }
                if a.scope_id() != 0 {
                    s.push_str(&format!(" scope {}", a.scope_id()));
                }
                s
            }
            None => format!("raw {:?}", B(b.to_vec())),
        }
    }

    /// `getsockname`, shown.
    pub fn iname(&self, fd: i32) -> R<String> {
        self.sockname(fd).map(|b| self.show(&b.0))
    }

    /// `getpeername`, shown.
    pub fn ipeer(&self, fd: i32) -> R<String> {
        self.peername(fd).map(|b| self.show(&b.0))
    }

    /// The port a socket is bound to (it must have a name).
    #[track_caller]
    pub fn iport(&self, fd: i32) -> u16 {
        let b = self.ok("getsockname", self.sockname(fd));
        match parse(&b.0) {
            Some(a) => a.port(),
            None => panic!("not an inet address: {b:?}"),
        }
    }

    #[track_caller]
    pub fn isock(&self, d: i32, ty: i32) -> i32 {
        self.ok("socket", self.api.socket(d, ty, 0))
    }

    /// A socket bound to the loopback of its domain, port 0; its port is named `name`.
    #[track_caller]
    pub fn ibound(&self, d: i32, ty: i32, name: &str) -> (i32, u16) {
        let s = self.isock(d, ty);
        self.ok("bind", self.api.bind(s, &lo_at(d, 0)));
        let p = self.iport(s);
        self.label(p, name);
        (s, p)
    }

    /// A TCP listener on the loopback of `d`, its port named `name`.
    #[track_caller]
    pub fn ilistener(&self, d: i32, backlog: i32, name: &str) -> (i32, u16) {
        let (s, p) = self.ibound(d, SOCK_STREAM, name);
        self.ok("listen", self.api.listen(s, backlog));
        (s, p)
    }

    /// Waits (up to [`SAFETY_MS`]) for any of `events` (or an error or hang-up) on `fd`.
    pub fn wait(&self, fd: i32, events: i16) -> Ev {
        self.poll_wait(fd, events, SAFETY_MS)
    }

    /// Accepts from `l` once a connection is there (waiting up to [`SAFETY_MS`]).
    #[track_caller]
    pub fn iaccept(&self, l: i32) -> i32 {
        let ev = self.wait(l, POLLIN);
        assert!(
            ev.0 & POLLIN != 0,
            "[{}] nothing to accept",
            self.api_side()
        );
        self.ok("accept", self.api.accept4(l, None, None, 0))
    }

    /// A blocking TCP connect from a new socket of `d` to the loopback port `port`, with a
    /// send timeout as a safety net.
    #[track_caller]
    pub fn iclient(&self, d: i32, port: u16) -> i32 {
        let c = self.isock(d, SOCK_STREAM);
        self.timeout(c, SO_SNDTIMEO, SAFETY_MS as i64);
        self.ok("connect", self.api.connect(c, &lo_at(d, port)));
        c
    }

    /// A connected TCP pair of domain `d`, (client, server); the client's port is named
    /// `C`, the server's `S` (the listener it came from is closed).
    #[track_caller]
    pub fn tcp_pair(&self, d: i32) -> (i32, i32) {
        let (l, p) = self.ilistener(d, 8, "S");
        let c = self.iclient(d, p);
        let cp = self.iport(c);
        self.label(cp, "C");
        let s = self.iaccept(l);
        self.ok("close listener", self.api.close(l));
        (c, s)
    }

    /// A send that neither waits nor raises `SIGPIPE`.
    pub fn isend(&self, fd: i32, data: &[u8]) -> R<usize> {
        self.api.sendto(fd, data, SEND, None)
    }

    /// `sendto` an address, without waiting.
    pub fn isendto(&self, fd: i32, data: &[u8], to: &[u8]) -> R<usize> {
        self.api.sendto(fd, data, SEND, Some(to))
    }

    /// Waits for `fd` to be readable (or in error, or hung up), then receives without
    /// waiting.
    pub fn irecv(&self, fd: i32, n: usize) -> R<B> {
        self.irecv_flags(fd, n, 0)
    }

    pub fn irecv_flags(&self, fd: i32, n: usize, flags: i32) -> R<B> {
        self.wait(fd, POLLIN);
        self.recv_flags(fd, n, flags)
    }

    /// Waits for `fd` to be readable, then receives a datagram and its sender, shown.
    pub fn irecvfrom(&self, fd: i32, n: usize) -> R<(B, String)> {
        self.wait(fd, POLLIN);
        self.recvfrom(fd, n).map(|(b, a)| (b, self.show(&a.0)))
    }

    /// Sends all of `data` (waiting for room as needed).
    #[track_caller]
    pub fn send_all(&self, fd: i32, data: &[u8]) {
        let mut off = 0;
        while off < data.len() {
            match self.isend(fd, &data[off..]) {
                Ok(n) => off += n,
                Err(e) if e == Errno::EAGAIN => {
                    let ev = self.wait(fd, POLLOUT);
                    assert!(ev.0 & POLLOUT != 0, "[{}] never writable", self.api_side());
                }
                Err(e) => panic!("[{}] send_all: {e:?}", self.api_side()),
            }
        }
    }

    /// Receives exactly `n` bytes (or up to end of file), waiting for each piece.
    #[track_caller]
    pub fn recv_exact(&self, fd: i32, n: usize) -> B {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match self.irecv(fd, n - got.len()) {
                Ok(b) if b.0.is_empty() => break,
                Ok(b) => got.extend_from_slice(&b.0),
                Err(e) if e == Errno::EAGAIN => {
                    panic!("[{}] recv_exact timed out", self.api_side())
                }
                Err(e) => panic!("[{}] recv_exact: {e:?}", self.api_side()),
            }
        }
        B(got)
    }

    /// Receives until `n` bytes came (waiting for each piece); returns how many came.
    pub fn drain_all(&self, fd: i32, n: usize) -> usize {
        let mut got = 0;
        while got < n {
            match self.irecv(fd, 65536) {
                Ok(b) if b.0.is_empty() => break,
                Ok(b) => got += b.0.len(),
                Err(_) => break,
            }
        }
        got
    }

    /// Waits (up to [`SAFETY_MS`]) until `FIONREAD` says `n` bytes are queued: a second
    /// segment may still be in Linux's softirq when the first one is readable.
    pub fn wait_nread(&self, fd: i32, n: i32) {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(SAFETY_MS as u64);
        while self.nread(fd).is_ok_and(|k| k < n) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// An `int` option of any level.
    pub fn getopt(&self, fd: i32, level: i32, name: i32) -> R<i32> {
        let mut v = [0u8; 4];
        let mut len = 4u32;
        self.api
            .getsockopt(fd, level, name, Some(&mut v), Some(&mut len))?;
        assert_eq!(len, 4, "[{}] option length", self.api_side());
        Ok(i32::from_ne_bytes(v))
    }

    pub fn setopt(&self, fd: i32, level: i32, name: i32, v: i32) -> R<()> {
        self.api.setsockopt(fd, level, name, &v.to_ne_bytes())
    }

    /// `SO_LINGER` as (on, seconds).
    pub fn linger(&self, fd: i32) -> R<(i32, i32)> {
        let mut v = [0u8; 8];
        let mut len = 8u32;
        self.api
            .getsockopt(fd, SOL_SOCKET, SO_LINGER, Some(&mut v), Some(&mut len))?;
        let int = |b: &[u8]| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        Ok((int(&v[..4]), int(&v[4..8])))
    }

    pub fn set_linger(&self, fd: i32, on: i32, secs: i32) -> R<()> {
        let mut v = on.to_ne_bytes().to_vec();
        v.extend_from_slice(&secs.to_ne_bytes());
        self.api.setsockopt(fd, SOL_SOCKET, SO_LINGER, &v)
    }

    /// "linux" or "ksock", for panic messages.
    pub fn api_side(&self) -> &'static str {
        if self.is_linux() { "linux" } else { "ksock" }
    }
}
