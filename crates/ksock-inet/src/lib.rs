//! The inet family of ksock: TCP and UDP over IPv4 and IPv6 on smoltcp (SPEC section 7).
//!
//! `#![no_std]` + `alloc`: a kernel gives it a link (any `smoltcp::phy::Device`, through
//! [`DeviceLink`]) and the stack a clock ([`ksock::time::Clock`]); the `std` feature adds
//! [`install`], which puts the family with its in-process loopback on a stack and starts a
//! [`ThreadClock`](ksock::time::ThreadClock) if the stack has no clock yet.
//!
//! ```
//! use ksock::{Domain, SockAddr, SockType, Stack};
//! let stack = Stack::new();
//! ksock_inet::install(&stack).unwrap();
//! let l = stack.socket(Domain::INET, SockType::STREAM, 0).unwrap();
//! l.bind(&SockAddr::Inet("127.0.0.1:0".parse().unwrap())).unwrap();
//! l.listen(8).unwrap();
//! let c = stack.socket(Domain::INET, SockType::STREAM, 0).unwrap();
//! c.connect(&l.local_addr().unwrap()).unwrap();
//! let (s, _) = l.accept().unwrap();
//! c.send(b"hi").unwrap();
//! let mut buf = [0u8; 2];
//! assert_eq!(s.recv(&mut buf).unwrap(), 2);
//! ```
//!
//! The parts: `net.rs` (the interface, its driving, the accept queue, readiness; read its
//! documentation for the lock order), `tcp.rs` and `udp.rs` (the two `Protocol`s),
//! `ports.rs` (bind conflicts and ephemeral ports), `addr.rs` (text and conversions),
//! `link.rs` (the loopback and the device adapter), `opts.rs` (option numbers).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod addr;
pub mod capture;
pub mod link;
mod net;
pub mod opts;
pub mod ports;
#[cfg(feature = "std")]
pub mod tap;
mod tcp;
mod udp;

pub use link::{DeviceLink, Link, Loopback};
pub use net::{CONNECT_TIMEOUT, Stats};
/// The smoltcp this family is built on (for its address types and `phy::Device`).
pub use smoltcp;
pub use tcp::TcpSock;
pub use udp::UdpSock;

use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use ksock::family::{Deferred, Family, OpCtx};
use ksock::stack::{StackInner, StackRef};
use ksock::sync::Mutex;
use ksock::{Domain, Errno, Result, SockAddr, SockRef, SockType, SocketCore, Stack};
use net::Net;
use smoltcp::wire::{IpAddress, IpCidr};

/// What every socket of the family shares: the interface.
pub(crate) struct Shared {
    net: Mutex<Net>,
    stack: Weak<StackInner>,
}

impl Shared {
    /// Runs `f` on the interface for operation `cx`, with the time set for this pass;
    /// afterwards asks the host's timer for what smoltcp wants next. Lock order: the
    /// socket's lock (held by the operation), then this one.
    pub(crate) fn with<R>(
        &self,
        cx: &mut OpCtx<'_>,
        f: impl FnOnce(&mut Net, &mut OpCtx<'_>) -> R,
    ) -> R {
        let stack = cx.me().stack().clone();
        let mut n = self.net.lock();
        if let Some(ns) = stack.now() {
            n.now = net::instant(ns);
        }
        let r = f(&mut n, cx);
        n.arm(&stack);
        r
    }

    /// Looks at the interface (no time passes, nothing is driven).
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&Net) -> R) -> R {
        f(&self.net.lock())
    }

    /// Changes bookkeeping on the interface (nothing is driven).
    pub(crate) fn peek_mut<R>(&self, f: impl FnOnce(&mut Net) -> R) -> R {
        f(&mut self.net.lock())
    }

    /// One pass of the interface from outside any operation.
    fn drive(&self, timer: bool) -> Option<u64> {
        let stack = self.stack.upgrade();
        let mut d = Deferred::new();
        let next = {
            let mut n = self.net.lock();
            if let Some(ns) = stack.as_ref().and_then(|s| s.now()) {
                n.now = net::instant(ns);
            }
            if timer {
                n.timer_fired();
            }
            n.drive(&mut d);
            stack.as_ref().and_then(|s| n.arm(s))
        };
        d.run();
        next
    }
}

/// The inet family: see the crate documentation.
pub struct InetFamily {
    shared: Arc<Shared>,
}

/// The loopback's addresses: `127.0.0.1/8` and `::1/128`.
pub fn loopback_addrs() -> [IpCidr; 2] {
    [
        IpCidr::new(IpAddress::Ipv4(Ipv4Addr::LOCALHOST), 8),
        IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128),
    ]
}

impl InetFamily {
    /// The family for `stack` over its own in-process loopback (register it with
    /// [`Stack::register_family`], or use [`install`]).
    pub fn new(stack: &Stack) -> Arc<InetFamily> {
        Self::with_link(stack, Box::new(Loopback::new()), &loopback_addrs())
    }

    /// The family for `stack` over `link` with `addrs` (a kernel's device).
    pub fn with_link(stack: &Stack, link: Box<dyn Link>, addrs: &[IpCidr]) -> Arc<InetFamily> {
        Self::with_link_routes(stack, link, addrs, &[])
    }

    /// [`with_link`](Self::with_link) with default routes through `gateways` (an IPv4
    /// and an IPv6 one at most).
    pub fn with_link_routes(
        stack: &Stack,
        link: Box<dyn Link>,
        addrs: &[IpCidr],
        gateways: &[IpAddress],
    ) -> Arc<InetFamily> {
        let inner = stack.inner();
        let now = net::instant(inner.now().unwrap_or(0));
        // Initial sequence numbers come from this seed: vary it per stack.
        let seed = inner.now().unwrap_or(0) ^ (Arc::as_ptr(inner) as usize as u64).rotate_left(17);
        Arc::new(InetFamily {
            shared: Arc::new(Shared {
                net: Mutex::new(Net::new(link, addrs, gateways, seed, now)),
                stack: Arc::downgrade(inner),
            }),
        })
    }

    /// Runs the interface once now (what the host's timer does; tests stepping the
    /// loopback call it after letting frames through).
    pub fn poll(&self) -> Option<u64> {
        self.shared.drive(false)
    }

    /// Runs `f` on the loopback link, if the family runs over one (to hold, inspect, drop
    /// or release frames in a test).
    pub fn with_loopback<R>(&self, f: impl FnOnce(&mut Loopback) -> R) -> Option<R> {
        let mut n = self.shared.net.lock();
        n.link().loopback().map(f)
    }

    /// How many smoltcp sockets exist (connections, listeners' queues, UDP sockets, and
    /// connections still finishing their close), for leak checks.
    pub fn socket_count(&self) -> usize {
        self.shared.peek(|n| n.socket_count())
    }

    /// How many ended TCP sockets are kept for their buffers, to be reused by the next
    /// connections (a few at most).
    pub fn spare_count(&self) -> usize {
        self.shared.peek(|n| n.spare_count())
    }

    /// Each smoltcp socket's role and TCP state (`conn ESTAB`, `orphan FIN-WAIT-1`...), for
    /// diagnostics and leak reports.
    pub fn sockets(&self) -> Vec<alloc::string::String> {
        self.shared.peek(|n| n.describe())
    }

    /// How many port bindings exist, for leak checks.
    pub fn port_count(&self) -> usize {
        self.shared.peek(|n| n.ports.len())
    }

    /// The interface's counters.
    pub fn stats(&self) -> Stats {
        self.shared.peek(|n| n.stats)
    }
}

impl Family for InetFamily {
    fn domain(&self) -> Domain {
        Domain::INET
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::INET, Domain::INET6]
    }

    fn namespace_domain(&self) -> Domain {
        Domain::INET6
    }

    fn name(&self) -> &'static str {
        "inet"
    }

    fn types(&self) -> &'static [SockType] {
        &[SockType::STREAM, SockType::DGRAM]
    }

    fn create(&self, stack: &StackRef, ty: SockType, protocol: i32) -> Result<SockRef> {
        self.create_in(stack, Domain::INET, ty, protocol)
    }

    fn create_in(
        &self,
        stack: &StackRef,
        domain: Domain,
        ty: SockType,
        protocol: i32,
    ) -> Result<SockRef> {
        let v6 = domain == Domain::INET6;
        match ty {
            SockType::STREAM => {
                if !matches!(protocol, 0 | 6) {
                    return Err(Errno::EPROTONOSUPPORT);
                }
                let s: SockRef =
                    SocketCore::new(stack, domain, ty, 6, TcpSock::new(self.shared.clone(), v6));
                Ok(s)
            }
            SockType::DGRAM => {
                if !matches!(protocol, 0 | 17) {
                    return Err(Errno::EPROTONOSUPPORT);
                }
                let s: SockRef =
                    SocketCore::new(stack, domain, ty, 17, UdpSock::new(self.shared.clone(), v6));
                Ok(s)
            }
            _ => Err(Errno::ESOCKTNOSUPPORT),
        }
    }

    fn parse_addr(&self, text: &[u8]) -> Result<SockAddr> {
        addr::parse(text).map(SockAddr::Inet)
    }

    fn addr_forms(&self) -> Option<&'static str> {
        Some("an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535")
    }

    fn listening(&self) -> Vec<SockAddr> {
        self.shared.peek(|n| {
            n.listeners
                .values()
                .map(|l| {
                    let ip = match l.cover {
                        ports::Cover::One(a) => a,
                        ports::Cover::Any4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        ports::Cover::Any6 { .. } => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    };
                    SockAddr::Inet(SocketAddr::new(ip, l.port))
                })
                .collect()
        })
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.shared.peek(|n| {
            let s = n.stats;
            let mut v = alloc::vec![
                ("frames_in", s.frames_in),
                ("frames_bad", s.frames_bad),
                ("syn_dropped", s.syn_dropped),
                ("udp_dropped", s.udp_dropped),
            ];
            v.extend(n.link_counters());
            v
        })
    }

    fn on_timer(&self, _now: u64) -> Option<u64> {
        self.shared.drive(true)
    }
}

/// Registers the inet family over a fresh loopback on `stack`, and gives the stack a
/// [`ThreadClock`](ksock::time::ThreadClock) if it has no clock (the family's timers need
/// one). Returns the family, for its leak counters and tests.
#[cfg(feature = "std")]
pub fn install(stack: &Stack) -> std::io::Result<Arc<InetFamily>> {
    install_with(stack, &Options::default())
}

/// How [`install_with`] sets the family up.
#[cfg(feature = "std")]
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Write every frame of the interface (the loopback's, and the TAP's if there is one)
    /// to this file in the pcap format (see [`capture`]).
    pub pcap: Option<std::path::PathBuf>,
    /// A TAP interface beside the loopback (see [`tap`]).
    pub tap: Option<tap::TapConfig>,
}

/// [`install`] with `opts`: a capture file (created, or truncated) if one is named.
#[cfg(feature = "std")]
pub fn install_with(stack: &Stack, opts: &Options) -> std::io::Result<Arc<InetFamily>> {
    let mut addrs: Vec<IpCidr> = Vec::new();
    let mut gateways: Vec<IpAddress> = Vec::new();
    // The family, once made, for the TAP reader to run the interface.
    let family: Arc<Mutex<Option<Weak<Shared>>>> = Arc::new(Mutex::new(None));
    let mut link: Box<dyn Link> = match &opts.tap {
        None => Box::new(Loopback::new()),
        Some(cfg) => {
            let mut t = tap::TapLink::open(cfg)?;
            let mac = t.hardware_addr().unwrap_or_default();
            // The TAP's own addresses first: smoltcp picks a source among them in order.
            addrs.extend(cfg.addrs.iter().copied());
            addrs.push(tap::link_local(mac));
            gateways.extend(cfg.gateways.iter().map(|g| addr::to_ip(*g)));
            let cell = family.clone();
            t.start(move || {
                let shared = cell.lock().as_ref().map(Weak::upgrade);
                match shared {
                    // Not made yet: the frame waits.
                    None => true,
                    Some(None) => false,
                    Some(Some(s)) => {
                        s.drive(false);
                        true
                    }
                }
            })?;
            Box::new(t)
        }
    };
    addrs.extend(loopback_addrs());
    if let Some(path) = &opts.pcap {
        let file = capture::PcapFile::create(path).map_err(|e| {
            std::io::Error::new(e.kind(), alloc::format!("{}: {e}", path.display()))
        })?;
        link = Box::new(capture::Capture::new(link, Box::new(file)));
    }
    if stack.inner().now().is_none() {
        ksock::time::ThreadClock::start(stack)?;
    }
    let f = InetFamily::with_link_routes(stack, link, &addrs, &gateways);
    *family.lock() = Some(Arc::downgrade(&f.shared));
    f.poll();
    stack
        .register_family(f.clone())
        .map_err(|e| std::io::Error::from_raw_os_error(e.raw()))?;
    Ok(f)
}
