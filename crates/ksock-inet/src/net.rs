//! One interface: smoltcp's `Interface` and `SocketSet`, the link, the port table, the
//! listeners' accept queues and what ksock knows about each smoltcp socket, all under one
//! lock (the interface lock).
//!
//! # Driving
//!
//! [`Net::drive`] runs the interface until nothing moves: each received frame is looked at
//! ([`Net::inspect`]) and then handed to smoltcp alone (`poll_ingress_single`), then
//! `poll_egress` sends what the sockets have; on the loopback what is sent is received in
//! the next round. Socket operations drive the interface themselves, right after they
//! change a smoltcp socket (a send transmits at once, in the sender's thread); the host's
//! timer drives it when smoltcp's `poll_at` comes due (retransmissions, keep-alive) through
//! [`Family::on_timer`](ksock::Family::on_timer).
//!
//! # Readiness
//!
//! smoltcp keeps one waker per direction per socket. Each smoltcp socket gets two wakers of
//! ours, which only record `(handle, IN or OUT)` in a list (a leaf lock); after the
//! interface has run, [`Net::settle`] turns that list into the core's notifications,
//! finished handshakes and resets, collected in a [`Deferred`] that the caller delivers
//! once it holds no lock. So blocking calls, `poll`, async and upcalls work as for any
//! family.
//!
//! # Lock order
//!
//! A ksock socket's lock, then the interface lock, then the wake list. The interface code
//! never takes a socket lock: what it learns for a socket goes into the `Deferred`.
//!
//! # The accept queue
//!
//! smoltcp has no backlog: a SYN that finds no socket in `Listen` is answered with a reset.
//! ksock keeps no socket in `Listen` at all. A SYN for a listener with room gets a fresh
//! smoltcp socket put in `Listen` (with the listener's options) just before smoltcp sees
//! the frame, which is then that socket's; a SYN for a full listener is dropped before
//! smoltcp sees it, so no reset goes out and the client retransmits, as against Linux. The
//! listener's queue holds the connections in the handshake (`pending`) and those
//! established in the order their handshakes finished (`ready`); `accept` takes from
//! `ready`. This is Asterinas's `TcpBacklog` and Fuchsia's `Listener { pending, ready }`,
//! done outside smoltcp by looking at frames first.

use crate::addr::{from_ip, to_ep};
use crate::link::{Link, Port};
use crate::ports::{BindId, Cover, Ports, Proto};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::task::Wake;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::Waker;
use ksock::account::{Account, Charge};
use ksock::errno::Errno;
use ksock::family::Deferred;
use ksock::sync::Mutex;
use ksock::{Events, SockRef, SocketCore};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::DeviceCapabilities;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    HardwareAddress, Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv6DstUnreachable,
    Icmpv6Message, Icmpv6Packet, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Packet, TcpPacket, UdpPacket,
};

/// What a smoltcp socket is to ksock.
pub(crate) enum Owner {
    /// A TCP connection of a ksock socket (connecting or connected).
    Conn(Weak<SocketCore>),
    /// A connection on a listener's queue (its key), not yet accepted.
    Embryo(u64),
    /// A connection whose socket closed, finishing its close handshake.
    Orphan,
    /// A UDP socket of a ksock socket.
    Udp(Weak<SocketCore>),
}

/// What ksock keeps about one smoltcp socket (under the interface lock).
pub(crate) struct Entry {
    pub owner: Owner,
    rx: Waker,
    tx: Waker,
    /// The port binding it holds, released with it.
    pub bind: Option<(Proto, u16, BindId)>,
    /// Its `(local, remote)` pair, while indexed in [`Net::tuples`].
    tuple: Option<(IpEndpoint, IpEndpoint)>,
    /// A connect waits for its handshake.
    pub connecting: bool,
    /// Aborted by its socket: a reset is still to be sent.
    aborting: bool,
    /// A reset arrived for it.
    pub rst: bool,
    /// The connection's error, reported once (`SO_ERROR`, or the next call).
    pub error: Option<Errno>,
    /// The end of the connection was reported to the core (reset or timeout).
    pub ended: bool,
    /// The peer's FIN was reported to the core.
    pub fin_told: bool,
    /// `shutdown(SHUT_RD)`: reads give end of file.
    pub rd_shut: bool,
    /// `shutdown(SHUT_WR)` or close: a FIN was queued.
    pub wr_shut: bool,
    /// The last TCP state seen by [`Net::settle`].
    last: tcp::State,
    /// The timeout once established (smoltcp aborts a connection silent for this long,
    /// so it is set only with keep-alive).
    pub timeout: Option<Duration>,
    /// UDP: the peer a connected socket takes datagrams from.
    pub udp_peer: Option<IpEndpoint>,
    /// UDP: datagrams dropped for a full receive queue.
    pub drops: u64,
    /// Aborted because the link it goes through is down (`ENETDOWN`).
    pub netdown: bool,
    /// Its smoltcp buffers, charged whole to the owner's account (smoltcp allocates them
    /// when the socket is made); credited back when the socket is freed.
    _charge: Option<Charge>,
}

/// A listener's accept queue.
pub(crate) struct Listener {
    pub sock: Weak<SocketCore>,
    pub port: u16,
    pub cover: Cover,
    pub backlog: usize,
    /// In the handshake.
    pub pending: Vec<SocketHandle>,
    /// Established, in the order their handshakes finished.
    pub ready: VecDeque<SocketHandle>,
    /// How connections are set up.
    pub setup: Setup,
    /// SYNs dropped because the queue was full (or the account could not pay for a
    /// connection's buffers).
    pub overflows: u64,
    /// The listener's account: each connection it admits charges its buffers to it.
    pub account: Option<Arc<Account>>,
}

/// How a new smoltcp TCP socket is set up (from the socket's options).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setup {
    pub rcvbuf: usize,
    pub sndbuf: usize,
    pub nodelay: bool,
    pub keepalive: Option<Duration>,
    /// Gives up on a silent peer after this long (keep-alive probes included).
    pub timeout: Option<Duration>,
    pub hops: crate::opts::Hops,
}

/// Why a connection failed with `ENETDOWN`.
pub(crate) const NETDOWN: &str =
    "the network interface it goes through is down: its device refuses frames";

/// How long an unanswered connect or an unacknowledged close goes on.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(127);

/// The TCP timestamp clock (milliseconds), for smoltcp's timestamp generator, which is a
/// plain function.
static TS_MS: AtomicU32 = AtomicU32::new(1);

fn tsval() -> u32 {
    TS_MS.load(Ordering::Relaxed)
}

/// Ended TCP sockets kept for reuse: their buffers (208 KiB each at the default sizes)
/// cost a page fault per page and a `memset` to allocate afresh, which was most of the
/// cost of a connection's set-up. At most this many, so at most a few MiB, belong to nobody.
const SPARE_MAX: usize = 8;

impl Setup {
    /// A new socket for a connection with a peer of IPv4 (`v4`) or IPv6.
    fn socket(&self, v4: bool) -> tcp::Socket<'static> {
        let rx = tcp::SocketBuffer::new(alloc::vec![0u8; self.rcvbuf]);
        let tx = tcp::SocketBuffer::new(alloc::vec![0u8; self.sndbuf]);
        let mut s = tcp::Socket::new(rx, tx);
        self.configure(&mut s, v4);
        s
    }

    /// Sets a socket up for a connection as these settings say (all of them: a reused
    /// socket keeps its last owner's).
    fn configure(&self, s: &mut tcp::Socket<'static>, v4: bool) {
        s.set_nagle_enabled(!self.nodelay);
        // Acknowledge at once: a delayed ACK stalls request/response traffic.
        s.set_ack_delay(None);
        s.set_keep_alive(self.keepalive);
        // Until the handshake ends; then `Setup::timeout` (see `Entry::timeout`).
        s.set_timeout(Some(CONNECT_TIMEOUT));
        s.set_hop_limit(self.hops.for_peer(v4));
        s.set_congestion_control(tcp::CongestionControl::Reno);
        s.set_tsval_generator(Some(tsval));
    }
}

/// The wake list.
#[derive(Default)]
pub(crate) struct Dirty(Mutex<Vec<(SocketHandle, Events)>>);

struct Poke {
    h: SocketHandle,
    ev: Events,
    dirty: Arc<Dirty>,
}

impl Wake for Poke {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.dirty.0.lock().push((self.h, self.ev));
    }
}

/// What [`Net::inspect`] decided for a frame.
enum Verdict {
    Drop,
    /// Hand it to smoltcp; the socket armed in `Listen` for it, if any.
    Pass(Option<SocketHandle>),
}

/// An interface and everything under its lock.
pub(crate) struct Net {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    link: Box<dyn Link>,
    caps: DeviceCapabilities,
    pub entries: BTreeMap<SocketHandle, Entry>,
    /// Connections by `(local, remote)`.
    tuples: BTreeMap<(IpEndpoint, IpEndpoint), SocketHandle>,
    /// Accept queues by listener key (the listening socket's id).
    pub listeners: BTreeMap<u64, Listener>,
    /// Listener keys by port.
    by_port: BTreeMap<u16, Vec<u64>>,
    /// UDP sockets by port, in the order smoltcp tries them.
    udp_ports: BTreeMap<u16, Vec<SocketHandle>>,
    pub ports: Ports,
    dirty: Arc<Dirty>,
    /// Now, for this pass.
    pub now: Instant,
    /// The earliest timer asked of the host, in nanoseconds.
    timer: Option<u64>,
    /// Counters.
    pub stats: Stats,
    /// TCP sockets of ended connections kept for their buffers (see [`Net::tcp_socket`]).
    spare: Vec<tcp::Socket<'static>>,
}

/// Interface counters.
#[derive(Default, Clone, Copy, Debug)]
pub struct Stats {
    /// Frames received.
    pub frames_in: u64,
    /// Received Ethernet frames that carry neither IPv4, IPv6 nor ARP, or are cut short
    /// (dropped before smoltcp sees them).
    pub frames_bad: u64,
    /// SYNs dropped because a listener's queue was full.
    pub syn_dropped: u64,
    /// UDP datagrams dropped for a full receive queue.
    pub udp_dropped: u64,
}

/// Nanoseconds of the stack's clock as smoltcp's time.
pub(crate) fn instant(ns: u64) -> Instant {
    Instant::from_micros(i64::try_from(ns / 1000).unwrap_or(i64::MAX))
}

fn ns_of(t: Instant) -> u64 {
    u64::try_from(t.total_micros())
        .unwrap_or(0)
        .saturating_mul(1000)
}

/// The header fields the interface looks at.
struct Seg {
    proto: IpProtocol,
    src: IpEndpoint,
    dst: IpEndpoint,
    syn: bool,
    ack: bool,
    rst: bool,
    payload: usize,
}

fn parse(frame: &[u8]) -> Option<Seg> {
    let (proto, src, dst, body) = match frame.first()? >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(frame).ok()?;
            (
                p.next_header(),
                IpAddress::Ipv4(p.src_addr()),
                IpAddress::Ipv4(p.dst_addr()),
                p.payload(),
            )
        }
        6 => {
            let p = Ipv6Packet::new_checked(frame).ok()?;
            (
                p.next_header(),
                IpAddress::Ipv6(p.src_addr()),
                IpAddress::Ipv6(p.dst_addr()),
                p.payload(),
            )
        }
        _ => return None,
    };
    match proto {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(body).ok()?;
            Some(Seg {
                proto,
                src: IpEndpoint::new(src, t.src_port()),
                dst: IpEndpoint::new(dst, t.dst_port()),
                syn: t.syn(),
                ack: t.ack(),
                rst: t.rst(),
                payload: t.payload().len(),
            })
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(body).ok()?;
            Some(Seg {
                proto,
                src: IpEndpoint::new(src, u.src_port()),
                dst: IpEndpoint::new(dst, u.dst_port()),
                syn: false,
                ack: false,
                rst: false,
                payload: u.payload().len(),
            })
        }
        _ => None,
    }
}

/// An ICMP "port unreachable" answering a UDP datagram: the datagram's (source,
/// destination), read from the header it quotes.
fn port_unreachable(frame: &[u8]) -> Option<(IpEndpoint, IpEndpoint)> {
    let port = |b: &[u8], at: usize| Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]));
    match frame.first()? >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(frame).ok()?;
            if p.next_header() != IpProtocol::Icmp {
                return None;
            }
            let icmp = Icmpv4Packet::new_checked(p.payload()).ok()?;
            if icmp.msg_type() != Icmpv4Message::DstUnreachable
                || icmp.msg_code() != u8::from(Icmpv4DstUnreachable::PortUnreachable)
            {
                return None;
            }
            // The quoted IPv4 header (its length in words), then the UDP ports.
            let q = icmp.data();
            let ihl = usize::from(q.first()? & 0x0f) * 4;
            if q.get(9) != Some(&u8::from(IpProtocol::Udp)) || ihl < 20 {
                return None;
            }
            let addr = |at: usize| -> Option<IpAddress> {
                let b: [u8; 4] = q.get(at..at + 4)?.try_into().ok()?;
                Some(IpAddress::Ipv4(Ipv4Address::from(b)))
            };
            Some((
                IpEndpoint::new(addr(12)?, port(q, ihl)?),
                IpEndpoint::new(addr(16)?, port(q, ihl + 2)?),
            ))
        }
        6 => {
            let p = Ipv6Packet::new_checked(frame).ok()?;
            if p.next_header() != IpProtocol::Icmpv6 {
                return None;
            }
            let icmp = Icmpv6Packet::new_checked(p.payload()).ok()?;
            if icmp.msg_type() != Icmpv6Message::DstUnreachable
                || icmp.msg_code() != u8::from(Icmpv6DstUnreachable::PortUnreachable)
            {
                return None;
            }
            // The quoted IPv6 header (no extension headers), then the UDP ports.
            let q = icmp.payload();
            if q.get(6) != Some(&u8::from(IpProtocol::Udp)) {
                return None;
            }
            let addr = |at: usize| -> Option<IpAddress> {
                let b: [u8; 16] = q.get(at..at + 16)?.try_into().ok()?;
                Some(IpAddress::Ipv6(Ipv6Address::from(b)))
            };
            Some((
                IpEndpoint::new(addr(8)?, port(q, 40)?),
                IpEndpoint::new(addr(24)?, port(q, 42)?),
            ))
        }
        _ => None,
    }
}

impl Net {
    /// An interface over `link` with `addrs` and default routes through `gateways`.
    pub(crate) fn new(
        mut link: Box<dyn Link>,
        addrs: &[IpCidr],
        gateways: &[IpAddress],
        seed: u64,
        now: Instant,
    ) -> Net {
        let caps = link.capabilities();
        let hw = match (caps.medium, link.hardware_addr()) {
            (smoltcp::phy::Medium::Ethernet, Some(mac)) => {
                HardwareAddress::Ethernet(smoltcp::wire::EthernetAddress(mac))
            }
            _ => HardwareAddress::Ip,
        };
        let mut config = Config::new(hw);
        config.random_seed = seed;
        let mut port = Port {
            staged: None,
            link: &mut *link,
            caps: caps.clone(),
            done: None,
        };
        let mut iface = Interface::new(config, &mut port, now);
        iface.update_ip_addrs(|a| {
            for c in addrs {
                let _ = a.push(*c);
            }
        });
        for g in gateways {
            let _ = match g {
                IpAddress::Ipv4(g) => iface.routes_mut().add_default_ipv4_route(*g).map(drop),
                IpAddress::Ipv6(g) => iface.routes_mut().add_default_ipv6_route(*g).map(drop),
            };
        }
        // The in-process loopback carries only what this interface sent: every address of
        // its loopback networks is the interface's own (Linux's `lo` owns all of
        // 127.0.0.0/8, not just 127.0.0.1), which smoltcp allows only as "any IP".
        if port.link.loopback().is_some() {
            iface.set_any_ip(true);
        }
        Net {
            iface,
            sockets: SocketSet::new(Vec::new()),
            link,
            caps,
            entries: BTreeMap::new(),
            tuples: BTreeMap::new(),
            listeners: BTreeMap::new(),
            by_port: BTreeMap::new(),
            udp_ports: BTreeMap::new(),
            ports: Ports::new(),
            dirty: Arc::new(Dirty::default()),
            now,
            timer: None,
            stats: Stats::default(),
            spare: Vec::new(),
        }
    }

    /// The link's counters.
    pub(crate) fn link_counters(&self) -> Vec<(&'static str, u64)> {
        self.link.counters()
    }

    /// The link, for a test stepping it.
    pub(crate) fn link(&mut self) -> &mut dyn Link {
        &mut *self.link
    }

    /// The largest IP packet the link carries.
    pub(crate) fn mtu(&self) -> usize {
        self.caps.ip_mtu()
    }

    /// Whether `ip` is a broadcast address of the interface's IPv4 networks (or
    /// 255.255.255.255).
    pub(crate) fn is_broadcast(&self, ip: core::net::IpAddr) -> bool {
        let core::net::IpAddr::V4(v4) = ip else {
            return false;
        };
        v4.is_broadcast()
            || self.iface.ip_addrs().iter().any(|c| match c {
                IpCidr::Ipv4(c) => c.prefix_len() < 31 && c.broadcast() == Some(v4),
                _ => false,
            })
    }

    /// Whether `ip` is one of the interface's addresses: one it was given, or any
    /// address of a loopback network it has (`127.0.0.2` with `127.0.0.1/8`, as Linux).
    pub(crate) fn has_addr(&self, ip: core::net::IpAddr) -> bool {
        let loopback = self.iface.any_ip() && ip.is_loopback();
        self.iface.ip_addrs().iter().any(|c| {
            from_ip(c.address()) == ip
                || (loopback
                    && from_ip(c.address()).is_loopback()
                    && c.contains_addr(&crate::addr::to_ip(ip)))
        })
    }

    /// Whether the interface can send to `ip` (it has an address of that version).
    pub(crate) fn reaches(&self, ip: core::net::IpAddr) -> bool {
        let dst = crate::addr::to_ip(ip);
        match dst {
            IpAddress::Ipv4(_) => self.iface.ipv4_addr().is_some(),
            IpAddress::Ipv6(_) => self.iface.ipv6_addr().is_some(),
        }
    }

    fn wakers(&self, h: SocketHandle) -> (Waker, Waker) {
        let rx = Waker::from(Arc::new(Poke {
            h,
            ev: Events::IN,
            dirty: self.dirty.clone(),
        }));
        let tx = Waker::from(Arc::new(Poke {
            h,
            ev: Events::OUT,
            dirty: self.dirty.clone(),
        }));
        (rx, tx)
    }

    fn entry(
        owner: Owner,
        rx: Waker,
        tx: Waker,
        bind: Option<(Proto, u16, BindId)>,
        charge: Option<Charge>,
    ) -> Entry {
        Entry {
            _charge: charge,
            owner,
            rx,
            tx,
            bind,
            tuple: None,
            connecting: false,
            aborting: false,
            netdown: false,
            rst: false,
            error: None,
            ended: false,
            fin_told: false,
            rd_shut: false,
            wr_shut: false,
            last: tcp::State::Closed,
            timeout: None,
            udp_peer: None,
            drops: 0,
        }
    }

    /// Adds a TCP socket with its wakers armed.
    pub(crate) fn add_tcp(
        &mut self,
        s: tcp::Socket<'static>,
        owner: Owner,
        bind: Option<(Proto, u16, BindId)>,
        charge: Option<Charge>,
    ) -> SocketHandle {
        let h = self.sockets.add(s);
        let (rx, tx) = self.wakers(h);
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        s.register_recv_waker(&rx);
        s.register_send_waker(&tx);
        self.entries
            .insert(h, Self::entry(owner, rx, tx, bind, charge));
        h
    }

    /// Adds a UDP socket (bound already) with its wakers armed.
    pub(crate) fn add_udp(
        &mut self,
        s: udp::Socket<'static>,
        owner: Owner,
        bind: (Proto, u16, BindId),
        charge: Option<Charge>,
    ) -> SocketHandle {
        let port = s.endpoint().port;
        let h = self.sockets.add(s);
        let (rx, tx) = self.wakers(h);
        let s = self.sockets.get_mut::<udp::Socket>(h);
        s.register_recv_waker(&rx);
        s.register_send_waker(&tx);
        self.entries
            .insert(h, Self::entry(owner, rx, tx, Some(bind), charge));
        self.udp_ports.entry(port).or_default().push(h);
        h
    }

    /// Indexes a TCP socket by its endpoints (after `connect`, or once a SYN armed it).
    pub(crate) fn index(&mut self, h: SocketHandle) {
        let s = self.sockets.get::<tcp::Socket>(h);
        let (Some(l), Some(r)) = (s.local_endpoint(), s.remote_endpoint()) else {
            return;
        };
        if let Some(e) = self.entries.get_mut(&h) {
            e.tuple = Some((l, r));
        }
        self.tuples.insert((l, r), h);
    }

    /// How many ended TCP sockets are kept for reuse.
    pub(crate) fn spare_count(&self) -> usize {
        self.spare.len()
    }

    /// A TCP socket for a new connection (a connect, or a SYN a listener admits) set up as
    /// `setup` says, for a peer of IPv4 (`v4`) or IPv6: a spare one with buffers of the
    /// right sizes if there is one, else a new one. smoltcp starts every `connect` and
    /// `listen` from a clean state (its `reset` empties the buffers, whose old bytes can
    /// never be read again), so only the settings need applying.
    pub(crate) fn tcp_socket(&mut self, setup: &Setup, v4: bool) -> tcp::Socket<'static> {
        let fits = |s: &tcp::Socket<'static>| {
            s.recv_capacity() == setup.rcvbuf && s.send_capacity() == setup.sndbuf
        };
        match self.spare.iter().rposition(fits) {
            Some(i) => {
                let mut s = self.spare.swap_remove(i);
                setup.configure(&mut s, v4);
                s
            }
            None => setup.socket(v4),
        }
    }

    /// Removes a smoltcp socket and everything about it: its binding, index entries, its
    /// place on a listener's queue.
    pub(crate) fn free(&mut self, h: SocketHandle) {
        let Some(e) = self.entries.remove(&h) else {
            return;
        };
        if let Some((p, port, id)) = e.bind {
            self.ports.release(p, port, id);
        }
        if let Some(t) = e.tuple
            && self.tuples.get(&t) == Some(&h)
        {
            self.tuples.remove(&t);
        }
        if let Owner::Embryo(key) = e.owner
            && let Some(l) = self.listeners.get_mut(&key)
        {
            l.pending.retain(|x| *x != h);
            l.ready.retain(|x| *x != h);
        }
        if let Owner::Udp(_) = e.owner {
            let port = self.sockets.get::<udp::Socket>(h).endpoint().port;
            if let Some(v) = self.udp_ports.get_mut(&port) {
                v.retain(|x| *x != h);
                if v.is_empty() {
                    self.udp_ports.remove(&port);
                }
            }
        }
        if let smoltcp::socket::Socket::Tcp(mut s) = self.sockets.remove(h)
            && matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait)
            && self.spare.len() < SPARE_MAX
        {
            // Its wakers are this handle's, which may soon name another socket.
            s.register_recv_waker(Waker::noop());
            s.register_send_waker(Waker::noop());
            self.spare.push(s);
        }
    }

    /// Adds a listener's queue.
    pub(crate) fn add_listener(&mut self, key: u64, l: Listener) {
        self.by_port.entry(l.port).or_default().push(key);
        self.listeners.insert(key, l);
    }

    /// Removes a listener's queue, resetting every connection it never accepted.
    pub(crate) fn remove_listener(&mut self, key: u64) -> Option<Listener> {
        let l = self.listeners.remove(&key)?;
        if let Some(v) = self.by_port.get_mut(&l.port) {
            v.retain(|k| *k != key);
            if v.is_empty() {
                self.by_port.remove(&l.port);
            }
        }
        for h in l.pending.iter().chain(l.ready.iter()) {
            self.orphan(*h, true);
        }
        Some(l)
    }

    /// Makes a connection's socket an orphan: it finishes its close handshake (or sends
    /// its reset) on its own and is freed when done.
    pub(crate) fn orphan(&mut self, h: SocketHandle, abort: bool) {
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        let closed = s.state() == tcp::State::Closed;
        if closed {
            // Reset, refused or timed out already: nothing to tell the peer.
        } else if abort {
            s.abort();
        } else {
            s.close();
            // A peer that never acknowledges the FIN (or never sends its own) does not
            // keep the socket forever: it is given up after `CONNECT_TIMEOUT` of silence.
            s.set_timeout(Some(CONNECT_TIMEOUT));
        }
        if let Some(e) = self.entries.get_mut(&h) {
            e.owner = Owner::Orphan;
            e.aborting = abort && !closed;
        }
        self.reap(h);
    }

    /// Frees an orphan that has nothing more to send.
    fn reap(&mut self, h: SocketHandle) {
        let aborting = self.entries.get(&h).is_some_and(|e| e.aborting);
        let done = {
            let s = self.sockets.get::<tcp::Socket>(h);
            match s.state() {
                // No TIME-WAIT is kept: a port is free once its connection has closed.
                tcp::State::TimeWait => true,
                // An abort is done once its reset is sent (smoltcp forgets the peer then).
                tcp::State::Closed => !aborting || s.remote_endpoint().is_none(),
                _ => false,
            }
        };
        if done {
            self.free(h);
        }
    }

    /// The link has been down a while: every TCP connection through it that is waiting on
    /// its peer (data or a FIN unacknowledged, a handshake) is aborted, to fail with
    /// `ENETDOWN`. Returns whether any was.
    fn fail_link_down(&mut self) -> bool {
        let mut any = false;
        for (h, e) in self.entries.iter_mut() {
            if e.netdown || e.ended || matches!(e.owner, Owner::Udp(_)) {
                continue;
            }
            let s = self.sockets.get_mut::<tcp::Socket>(*h);
            let Some(r) = s.remote_endpoint() else {
                continue;
            };
            if !self.link.through_device(from_ip(r.addr)) {
                continue;
            }
            let waiting = s.send_queue() > 0
                || !matches!(
                    s.state(),
                    tcp::State::Established | tcp::State::CloseWait | tcp::State::FinWait2
                )
                || e.connecting;
            if waiting && s.state() != tcp::State::Closed {
                s.abort();
                e.netdown = true;
                if matches!(e.owner, Owner::Orphan) {
                    e.aborting = true;
                }
                any = true;
            }
        }
        any
    }

    /// Data for a connection whose socket has closed: nobody will read it, so the
    /// connection is aborted with a reset (RFC 1122, as Linux's `tcp_rcv_state_process`
    /// does for data after `close`) and the data dropped. Returns whether it was.
    fn reset_orphan(&mut self, h: SocketHandle) -> bool {
        let Some(e) = self.entries.get_mut(&h) else {
            return false;
        };
        if !matches!(e.owner, Owner::Orphan) || e.aborting {
            return false;
        }
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        if s.state() == tcp::State::Closed {
            return false;
        }
        s.abort();
        e.aborting = true;
        true
    }

    /// Looks at a received frame before smoltcp does.
    fn inspect(&mut self, frame: &[u8]) -> Verdict {
        let frame = if self.caps.medium == smoltcp::phy::Medium::Ethernet {
            // The IP packet of an Ethernet frame; ARP goes to smoltcp as it is, and
            // anything else (or a frame cut short) is dropped here.
            let Ok(eth) = smoltcp::wire::EthernetFrame::new_checked(frame) else {
                self.stats.frames_bad += 1;
                return Verdict::Drop;
            };
            match eth.ethertype() {
                smoltcp::wire::EthernetProtocol::Ipv4 | smoltcp::wire::EthernetProtocol::Ipv6 => {
                    &frame[smoltcp::wire::EthernetFrame::<&[u8]>::header_len()..]
                }
                smoltcp::wire::EthernetProtocol::Arp => return Verdict::Pass(None),
                _ => {
                    self.stats.frames_bad += 1;
                    return Verdict::Drop;
                }
            }
        } else {
            frame
        };
        let Some(seg) = parse(frame) else {
            if let Some((src, dst)) = port_unreachable(frame) {
                self.udp_refused(src, dst);
            }
            return Verdict::Pass(None);
        };
        match seg.proto {
            IpProtocol::Tcp => self.inspect_tcp(&seg),
            IpProtocol::Udp => self.inspect_udp(&seg),
            _ => Verdict::Pass(None),
        }
    }

    fn inspect_tcp(&mut self, seg: &Seg) -> Verdict {
        let known = self.tuples.get(&(seg.dst, seg.src)).copied();
        if seg.rst {
            if let Some(h) = known
                && let Some(e) = self.entries.get_mut(&h)
            {
                e.rst = true;
            }
            return Verdict::Pass(None);
        }
        if let Some(h) = known
            && seg.payload > 0
            && self.reset_orphan(h)
        {
            return Verdict::Drop;
        }
        if !seg.syn || seg.ack || known.is_some() {
            return Verdict::Pass(None);
        }
        let dst = from_ip(seg.dst.addr);
        let Some(keys) = self.by_port.get(&seg.dst.port) else {
            // Nobody listens: smoltcp answers with a reset.
            return Verdict::Pass(None);
        };
        // The listener on that very address first, then one on every address.
        let pick = keys
            .iter()
            .filter_map(|k| self.listeners.get(k).map(|l| (*k, l)))
            .filter(|(_, l)| l.cover.covers(dst))
            .min_by_key(|(_, l)| !matches!(l.cover, Cover::One(_)))
            .map(|(k, _)| k);
        let Some(key) = pick else {
            return Verdict::Pass(None);
        };
        let Some(l) = self.listeners.get_mut(&key) else {
            return Verdict::Pass(None);
        };
        if l.pending.len() + l.ready.len() >= l.backlog {
            // Full: no reset, the client retries (Linux drops the SYN too).
            l.overflows += 1;
            self.stats.syn_dropped += 1;
            ksock::trace_event!(
                debug,
                "SYN dropped: the listen backlog is full",
                listener = l.sock.upgrade().map_or(0, |s| s.id()),
                port = l.port,
                backlog = l.backlog,
                from = format_args!("{}", seg.src),
            );
            return Verdict::Drop;
        }
        let setup = l.setup;
        // The connection's buffers are the listener's user's to pay for; one that cannot
        // pay is dropped like one that finds the queue full (the client retries).
        let charge = match &l.account {
            None => None,
            Some(a) => match Charge::take(a, setup.rcvbuf + setup.sndbuf) {
                Ok(c) => Some(c),
                Err(_) => {
                    l.overflows += 1;
                    self.stats.syn_dropped += 1;
                    return Verdict::Drop;
                }
            },
        };
        let addr = match l.cover {
            Cover::One(a) => Some(crate::addr::to_ip(a)),
            _ => None,
        };
        let mut s = self.tcp_socket(&setup, matches!(seg.src.addr, IpAddress::Ipv4(_)));
        if s.listen(IpListenEndpoint {
            addr,
            port: seg.dst.port,
        })
        .is_err()
        {
            return Verdict::Pass(None);
        }
        let h = self.add_tcp(s, Owner::Embryo(key), None, charge);
        if let Some(e) = self.entries.get_mut(&h) {
            e.timeout = setup.timeout;
        }
        if let Some(l) = self.listeners.get_mut(&key) {
            l.pending.push(h);
        }
        Verdict::Pass(Some(h))
    }

    /// A datagram from `src` to `dst` was answered "port unreachable": a UDP socket
    /// connected to `dst` gets `ECONNREFUSED`, reported once (Linux's `__udp4_lib_err`;
    /// an unconnected socket ignores it, as Linux's without `IP_RECVERR`).
    fn udp_refused(&mut self, src: IpEndpoint, dst: IpEndpoint) {
        let Some(hs) = self.udp_ports.get(&src.port) else {
            return;
        };
        for h in hs {
            if let Some(e) = self.entries.get_mut(h)
                && e.udp_peer == Some(dst)
            {
                e.error = Some(Errno::ECONNREFUSED);
                self.dirty.0.lock().push((*h, Events::IN | Events::ERR));
            }
        }
    }

    fn inspect_udp(&mut self, seg: &Seg) -> Verdict {
        let Some(hs) = self.udp_ports.get(&seg.dst.port) else {
            return Verdict::Pass(None);
        };
        // The socket smoltcp will give it to: the first bound to that address or to all.
        let target = hs.iter().copied().find(|h| {
            let s = self.sockets.get::<udp::Socket>(*h);
            s.endpoint().addr.is_none_or(|a| a == seg.dst.addr)
        });
        let Some(h) = target else {
            return Verdict::Pass(None);
        };
        let (full, filtered) = {
            let s = self.sockets.get::<udp::Socket>(h);
            let full = s.recv_queue() + seg.payload > s.payload_recv_capacity();
            let filtered = self
                .entries
                .get(&h)
                .and_then(|e| e.udp_peer)
                .is_some_and(|p| p != seg.src);
            (full, filtered)
        };
        if filtered {
            // A connected socket takes datagrams from its peer only.
            return Verdict::Drop;
        }
        if full {
            self.stats.udp_dropped += 1;
            if let Some(e) = self.entries.get_mut(&h) {
                e.drops += 1;
            }
            return Verdict::Drop;
        }
        Verdict::Pass(None)
    }

    /// Runs the interface until nothing moves, then turns what happened into
    /// notifications in `d` (delivered by the caller once it holds no lock).
    pub(crate) fn drive(&mut self, d: &mut Deferred) {
        let now = self.now;
        TS_MS.store(
            u32::try_from(now.total_millis() & 0x7fff_ffff).unwrap_or(1),
            Ordering::Relaxed,
        );
        loop {
            let mut moved = false;
            while let Some(frame) = self.link.recv(now) {
                moved = true;
                self.stats.frames_in += 1;
                let armed = match self.inspect(&frame) {
                    Verdict::Drop => {
                        self.link.recycle(frame);
                        continue;
                    }
                    Verdict::Pass(a) => a,
                };
                let mut port = Port {
                    staged: Some(frame),
                    link: &mut *self.link,
                    caps: self.caps.clone(),
                    done: None,
                };
                self.iface
                    .poll_ingress_single(now, &mut port, &mut self.sockets);
                let left = port.done.take().or(port.staged.take());
                if let Some(b) = left {
                    self.link.recycle(b);
                }
                if let Some(h) = armed {
                    if self.sockets.get::<tcp::Socket>(h).state() == tcp::State::Listen {
                        // smoltcp did not take the SYN (a bad segment): nothing to keep.
                        self.free(h);
                    } else {
                        self.index(h);
                    }
                }
            }
            let mut port = Port {
                staged: None,
                link: &mut *self.link,
                caps: self.caps.clone(),
                done: None,
            };
            if self.iface.poll_egress(now, &mut port, &mut self.sockets) != PollResult::None {
                moved = true;
            }
            if !moved && self.link.down(now) && self.fail_link_down() {
                moved = true;
            }
            if !moved {
                break;
            }
        }
        self.settle(d);
    }

    /// Turns the wake list into notifications, finished handshakes and resets.
    fn settle(&mut self, d: &mut Deferred) {
        let mut woken = core::mem::take(&mut *self.dirty.0.lock());
        if woken.is_empty() {
            return;
        }
        woken.sort_unstable_by_key(|(h, _)| *h);
        let mut i = 0;
        while i < woken.len() {
            let h = woken[i].0;
            let mut ev = Events::empty();
            while i < woken.len() && woken[i].0 == h {
                ev |= woken[i].1;
                i += 1;
            }
            self.settle_one(h, ev, d);
        }
    }

    fn settle_one(&mut self, h: SocketHandle, ev: Events, d: &mut Deferred) {
        let Some(e) = self.entries.get_mut(&h) else {
            return;
        };
        match &e.owner {
            Owner::Udp(w) => {
                let s = self.sockets.get_mut::<udp::Socket>(h);
                s.register_recv_waker(&e.rx);
                s.register_send_waker(&e.tx);
                if let Some(sock) = w.upgrade() {
                    let sr: SockRef = sock;
                    d.notify(&sr, ev);
                }
            }
            Owner::Orphan => {
                let s = self.sockets.get_mut::<tcp::Socket>(h);
                s.register_recv_waker(&e.rx);
                s.register_send_waker(&e.tx);
                self.reap(h);
            }
            Owner::Embryo(key) => {
                let key = *key;
                let st = self.sockets.get::<tcp::Socket>(h).state();
                let s = self.sockets.get_mut::<tcp::Socket>(h);
                s.register_recv_waker(&e.rx);
                s.register_send_waker(&e.tx);
                match st {
                    tcp::State::Listen | tcp::State::SynReceived => {}
                    tcp::State::Closed => {
                        // Reset or given up during the handshake (or after it, unaccepted):
                        // nothing to hand out.
                        self.free(h);
                    }
                    _ => {
                        let Some(l) = self.listeners.get_mut(&key) else {
                            return;
                        };
                        if let Some(at) = l.pending.iter().position(|x| *x == h) {
                            s.set_timeout(e.timeout);
                            l.pending.remove(at);
                            l.ready.push_back(h);
                            if let Some(sock) = l.sock.upgrade() {
                                let sr: SockRef = sock;
                                d.notify(&sr, Events::IN);
                            }
                        }
                    }
                }
            }
            Owner::Conn(w) => {
                let Some(sock) = w.upgrade() else { return };
                let sr: SockRef = sock;
                let s = self.sockets.get_mut::<tcp::Socket>(h);
                s.register_recv_waker(&e.rx);
                s.register_send_waker(&e.tx);
                let st = s.state();
                let last = core::mem::replace(&mut e.last, st);
                if e.connecting {
                    match st {
                        tcp::State::SynSent | tcp::State::Listen => return,
                        tcp::State::Closed => {
                            e.connecting = false;
                            e.ended = true;
                            let (err, why) = if e.netdown {
                                (Errno::ENETDOWN, NETDOWN)
                            } else if e.rst {
                                (
                                    Errno::ECONNREFUSED,
                                    "the host refused the connection (nothing listens on that port)",
                                )
                            } else {
                                (
                                    Errno::ETIMEDOUT,
                                    "no answer from the host before the connect timeout",
                                )
                            };
                            d.connect_done(&sr, Err(err), Some(why));
                            return;
                        }
                        _ => {
                            e.connecting = false;
                            s.set_timeout(e.timeout);
                            d.connect_done(&sr, Ok(()), None);
                        }
                    }
                }
                // The connection is over: reset, timed out, or closed both ways (no
                // TIME-WAIT is kept; Linux's socket is in TCP_CLOSE then too, so it has no
                // peer and cannot be shut down).
                if matches!(st, tcp::State::Closed | tcp::State::TimeWait) && !e.ended {
                    e.ended = true;
                    // Closed both ways: our FIN went out (a close or a shutdown), the
                    // connection sits in TIME-WAIT, or the last state seen was one of the
                    // closing handshake's. On the loopback a passive close can go
                    // CLOSE-WAIT -> LAST-ACK -> CLOSED inside one pass.
                    let normal = e.wr_shut
                        || st == tcp::State::TimeWait
                        || matches!(
                            last,
                            tcp::State::TimeWait | tcp::State::LastAck | tcp::State::Closing
                        );
                    if e.netdown {
                        e.error = Some(Errno::ENETDOWN);
                    } else if e.rst || !normal {
                        e.error = Some(if !e.rst {
                            Errno::ETIMEDOUT
                        } else if last == tcp::State::CloseWait {
                            // Linux's tcp_reset: after the peer's FIN, a reset is EPIPE.
                            Errno::EPIPE
                        } else {
                            Errno::ECONNRESET
                        });
                    }
                    e.fin_told = true;
                    d.reset(&sr, Events::READINESS & !Events::NVAL);
                    return;
                }
                let fin = matches!(
                    st,
                    tcp::State::CloseWait
                        | tcp::State::LastAck
                        | tcp::State::Closing
                        | tcp::State::TimeWait
                );
                if fin && !e.fin_told {
                    e.fin_told = true;
                    d.peer_gone(&sr, ev | Events::IN | Events::RDHUP);
                    return;
                }
                // Room for a writer only once it is worth waking for.
                let ev = if ev.contains(Events::OUT) && s.may_send() && !crate::tcp::writable(s) {
                    ev - Events::OUT
                } else {
                    ev
                };
                if !ev.is_empty() {
                    d.notify(&sr, ev);
                }
            }
        }
    }

    /// Asks the host for a timer call when smoltcp next wants one; returns when that is.
    pub(crate) fn arm(&mut self, stack: &ksock::stack::StackInner) -> Option<u64> {
        let at = self.iface.poll_at(self.now, &self.sockets)?;
        // Never ask for the past: what is due now was done by the pass that just ran.
        let floor = self.now + Duration::from_micros(100);
        let at = ns_of(if at < floor { floor } else { at });
        if self.timer.is_none_or(|t| at < t) {
            self.timer = Some(at);
            stack.schedule(at);
        }
        Some(at)
    }

    /// The host's timer fired.
    pub(crate) fn timer_fired(&mut self) {
        self.timer = None;
    }

    /// The local address a connection to `remote` would use.
    pub(crate) fn source_for(&self, remote: SocketAddr) -> Option<core::net::IpAddr> {
        let dst = crate::addr::to_ip(remote.ip());
        self.iface.get_source_address(&dst).map(from_ip)
    }

    pub(crate) fn describe(&self) -> Vec<alloc::string::String> {
        use alloc::format;
        self.entries
            .iter()
            .map(|(h, e)| {
                let role = match e.owner {
                    Owner::Conn(_) => "conn",
                    Owner::Embryo(_) => "embryo",
                    Owner::Orphan => "orphan",
                    Owner::Udp(_) => "udp",
                };
                match e.owner {
                    Owner::Udp(_) => role.into(),
                    _ => {
                        let s = self.sockets.get::<tcp::Socket>(*h);
                        format!(
                            "{role} {} {:?}->{:?} rst={} aborting={}",
                            crate::tcp::state_name(s.state()),
                            s.local_endpoint(),
                            s.remote_endpoint(),
                            e.rst,
                            e.aborting
                        )
                    }
                }
            })
            .collect()
    }

    /// How many smoltcp sockets exist (for leak checks).
    pub(crate) fn socket_count(&self) -> usize {
        self.entries.len()
    }

    /// `to_ep` for the interface's users.
    pub(crate) fn ep(a: SocketAddr) -> IpEndpoint {
        to_ep(a)
    }
}
