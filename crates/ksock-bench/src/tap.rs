//! Rows for the TAP interface (`--only tap`, as root): ksock's inet family talking to the
//! Linux stack in a network namespace through a TAP device, against Linux talking to Linux
//! over a veth pair between two namespaces. Every row sets its namespaces and devices up
//! and takes them down again (a [`Lab`] undoes what it made when dropped).

use crate::row::{Row, Side, Target};
use crate::stats::Unit;
use crate::work::{Endpoint, Fd, one_way, ping_pong};
use ksock::opt::{OptVal, SockOpt};
use ksock::{Domain, SockAddr, SockType, Socket, Stack};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::Command;
use std::sync::Arc;
use std::thread;

const GROUP: &str = "tap";

/// `IPPROTO_TCP`, `TCP_NODELAY`.
const NODELAY: SockOpt = SockOpt::Proto { level: 6, name: 1 };

/// Runs `ip ARGS`, failing with its standard error.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e} (is iproute2 installed?)", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`: sockets it makes belong
/// to that namespace and can be used from any thread afterwards.
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T, String> + Send) -> Result<T, String> {
    let path = format!("/var/run/netns/{ns}");
    thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns({path}): {e}"))?;
            f()
        })
        .join()
        .map_err(|_| "namespace thread panicked".to_string())?
    })
}

/// The namespaces and devices of the TAP rows: namespace `b` holds the Linux end of
/// ksock's TAP device and of a veth pair whose other end is in namespace `a`.
struct Lab {
    a: String,
    b: String,
    tap: String,
    stack: Stack,
    _family: Arc<ksock_inet::InetFamily>,
}

impl Lab {
    fn new(tag: &str) -> Result<Lab, String> {
        let pid = std::process::id();
        let a = format!("ksb-{tag}-{pid}-a");
        let b = format!("ksb-{tag}-{pid}-b");
        let tap = format!("ksbt{}{}", &tag[..1], pid % 100_000);
        ip(&["netns", "add", &a])?;
        let lab_ns = Ns(vec![a.clone()]);
        ip(&["netns", "add", &b])?;
        let mut lab_ns = lab_ns;
        lab_ns.0.push(b.clone());
        // Linux to Linux: a veth pair between the two namespaces.
        ip(&[
            "link", "add", "ksbva", "netns", &a, "type", "veth", "peer", "name", "ksbvb", "netns",
            &b,
        ])?;
        ip(&["-n", &a, "addr", "add", "10.78.0.1/24", "dev", "ksbva"])?;
        ip(&["-n", &b, "addr", "add", "10.78.0.2/24", "dev", "ksbvb"])?;
        for (ns, dev) in [(&a, "ksbva"), (&b, "ksbvb"), (&a, "lo"), (&b, "lo")] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        // ksock to Linux: ksock's TAP device, its Linux end moved into `b`.
        let stack = Stack::new();
        let mut cfg = ksock_inet::tap::TapConfig::new(&tap);
        cfg.addrs.push(ksock_inet::smoltcp::wire::IpCidr::new(
            ksock_inet::smoltcp::wire::IpAddress::v4(10, 77, 0, 2),
            24,
        ));
        let family = ksock_inet::install_with(
            &stack,
            &ksock_inet::Options {
                pcap: None,
                tap: Some(cfg),
            },
        )
        .map_err(|e| e.to_string())?;
        ip(&["link", "set", &tap, "netns", &b])?;
        ip(&["-n", &b, "addr", "add", "10.77.0.1/24", "dev", &tap])?;
        ip(&["-n", &b, "link", "set", &tap, "up"])?;
        std::mem::forget(lab_ns);
        Ok(Lab {
            a,
            b,
            tap,
            stack,
            _family: family,
        })
    }

    /// A listener of namespace `b` on `at`.
    fn listener(&self, at: &str) -> Result<(TcpListener, SocketAddr), String> {
        let at: SocketAddr = at.parse().map_err(|e| format!("{at}: {e}"))?;
        in_ns(&self.b, || {
            let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
            let got = l.local_addr().map_err(|e| e.to_string())?;
            Ok((l, got))
        })
    }

    /// A ksock connection to `l` (in `b`) through the TAP device: (ksock end, Linux end).
    fn ksock_pair(&self, l: &TcpListener, at: SocketAddr, nodelay: bool) -> Result<(E, E), String> {
        let c = self
            .stack
            .socket(Domain::INET, SockType::STREAM, 0)
            .map_err(|e| format!("socket: {e:#}"))?;
        if nodelay {
            c.set_option(NODELAY, OptVal::Int(1))
                .map_err(|e| format!("TCP_NODELAY: {e:#}"))?;
        }
        c.connect(&SockAddr::Inet(at))
            .map_err(|e| format!("connect {at}: {e:#}"))?;
        let (s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        s.set_nodelay(nodelay).map_err(|e| e.to_string())?;
        Ok((E::K(c), E::L(Fd(OwnedFd::from(s)))))
    }

    /// A Linux connection from namespace `a` to `l` (in `b`) over the veth pair.
    fn linux_pair(&self, l: &TcpListener, at: SocketAddr, nodelay: bool) -> Result<(E, E), String> {
        let c = in_ns(&self.a, || {
            TcpStream::connect(at).map_err(|e| format!("connect {at}: {e}"))
        })?;
        let (s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        c.set_nodelay(nodelay).map_err(|e| e.to_string())?;
        s.set_nodelay(nodelay).map_err(|e| e.to_string())?;
        Ok((E::L(Fd(OwnedFd::from(c))), E::L(Fd(OwnedFd::from(s)))))
    }
}

/// Namespaces to delete if setting a lab up fails half way.
struct Ns(Vec<String>);

impl Drop for Ns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair and the TAP's Linux end with them.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
        let _ = ip(&["link", "del", &self.tap]);
    }
}

/// Either end of a connection: a ksock socket or a Linux one.
enum E {
    K(Socket),
    L(Fd),
}

impl Endpoint for E {
    fn send(&self, buf: &[u8]) -> Result<usize, String> {
        match self {
            E::K(s) => s.send(buf).map_err(|e| format!("send: {e:#}")),
            E::L(f) => f.send(buf),
        }
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, String> {
        match self {
            E::K(s) => s.recv(buf).map_err(|e| format!("recv: {e:#}")),
            E::L(f) => f.recv(buf),
        }
    }

    fn hang_up(&self) {
        match self {
            E::K(s) => {
                let _ = s.shutdown(ksock::Shutdown::Both);
            }
            E::L(f) => f.hang_up(),
        }
    }
}

/// Why the TAP rows cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (network namespaces and a TAP device)".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

/// The TAP rows.
pub fn rows() -> Result<Vec<Row>, String> {
    Ok(vec![bulk_row()?, rtt_row()?])
}

fn bulk_row() -> Result<Row, String> {
    let size = 65536;
    let lab = Arc::new(Lab::new("bw")?);
    let (lt, at_t) = lab.listener("10.77.0.1:0")?;
    let (lv, at_v) = lab.listener("10.78.0.2:0")?;
    let l2 = lab.clone();
    Ok(Row::new(
        GROUP,
        "tap.tcp.bulk64k",
        "TCP over a TAP device: bandwidth, 64 KiB writes, ksock to Linux",
        Unit::BytesPerSec,
        Side::timed("ksock", move |n| {
            let (c, s) = lab.ksock_pair(&lt, at_t, false)?;
            one_way(&c, &s, size, n)
        }),
    )
    .against(Side::timed("Linux over veth", move |n| {
        let (c, s) = l2.linux_pair(&lv, at_v, false)?;
        one_way(&c, &s, size, n)
    }))
    .per_iter(size as f64)
    .target(Target::RatioAtLeast(0.5))
    .note(
        "a writer and a reader thread, blocking calls, a fresh connection per sample; ksock \
         (root namespace, smoltcp over the TAP device, MTU 1500) writes, a Linux socket in \
         another namespace reads; the reference: Linux to Linux over a veth pair (MTU 1500) \
         between two namespaces",
    ))
}

fn rtt_row() -> Result<Row, String> {
    let lab = Arc::new(Lab::new("rt")?);
    let (lt, at_t) = lab.listener("10.77.0.1:0")?;
    let (lv, at_v) = lab.listener("10.78.0.2:0")?;
    let l2 = lab.clone();
    Ok(Row::new(
        GROUP,
        "tap.tcp.rtt64",
        "TCP over a TAP device: ping-pong round trip, 64 B, ksock and Linux",
        Unit::Nanos,
        Side::timed("ksock", move |n| {
            let (c, s) = lab.ksock_pair(&lt, at_t, true)?;
            ping_pong(&c, &s, 64, n)
        }),
    )
    .against(Side::timed("Linux over veth", move |n| {
        let (c, s) = l2.linux_pair(&lv, at_v, true)?;
        ping_pong(&c, &s, 64, n)
    }))
    .target(Target::RatioAtMost(2.0))
    .note("two threads, blocking calls, TCP_NODELAY on all four sockets"))
}
