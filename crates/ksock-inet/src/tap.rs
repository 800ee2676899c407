//! A Linux TAP interface beside the loopback (`std` only).
//!
//! ksock's interface is one smoltcp `Interface` with one socket set. With a TAP device it
//! speaks Ethernet (smoltcp answers ARP and neighbour discovery itself), and its link is a
//! [`TapLink`], which routes each frame smoltcp sends: to the loopback queue if it is for
//! the loopback networks (an IPv4 destination in `127.0.0.0/8`, ARP for one, an IPv6
//! destination `::1`; IPv6 multicast, which neighbour discovery for `::1` uses, goes both
//! ways), else out through the device. Received frames come from the loopback queue first,
//! then from the device, whose frames a reader thread blocked in `read` hands over and
//! then runs the interface: the driver wakes on the device's readiness, never on a timer.
//!
//! The price of one interface: the loopback shares the TAP's MTU while a TAP is set up,
//! and binds only `127.0.0.1` of `127.0.0.0/8`.
//!
//! A device that existed before is probed first (ARP, as RFC 5227): an address someone on
//! its link already answers for is refused. A device that refuses frames (`EIO`: its
//! interface is down) for [`LINK_DOWN_GRACE`] fails the connections waiting on a peer
//! through it with `ENETDOWN`.
//!
//! The device is opened through `tun-rs`, which makes the `TUNSETIFF` ioctl: this module
//! holds only host glue over that crate's safe interface.

use crate::link::Link;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::net::IpAddr;
use ksock::sync::Mutex;
use smoltcp::phy::{ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpPacket, EthernetFrame, EthernetProtocol, IpAddress, IpCidr, Ipv4Packet, Ipv6Packet,
};
use std::format;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

/// How a TAP interface is set up.
#[derive(Clone, Debug)]
pub struct TapConfig {
    /// The device's name (`tap0`); made if it does not exist.
    pub name: String,
    /// ksock's addresses on it, with their prefixes (IPv4 and IPv6).
    pub addrs: Vec<IpCidr>,
    /// Default routes: at most one IPv4 and one IPv6 gateway.
    pub gateways: Vec<IpAddr>,
    /// The Ethernet address ksock uses (a locally administered one if `None`).
    pub mac: Option<[u8; 6]>,
    /// The IP MTU (1500 if `None`).
    pub mtu: Option<u16>,
}

impl TapConfig {
    /// A configuration for device `name` with no addresses yet.
    pub fn new(name: &str) -> TapConfig {
        TapConfig {
            name: name.into(),
            addrs: Vec::new(),
            gateways: Vec::new(),
            mac: None,
            mtu: None,
        }
    }
}

/// The counters of a TAP link.
#[derive(Default, Debug)]
pub struct TapStats {
    /// Frames read from the device.
    pub rx_frames: AtomicU64,
    /// Frames written to the device.
    pub tx_frames: AtomicU64,
    /// Frames the device refused (the interface down, its queue full).
    pub tx_errors: AtomicU64,
    /// Frames kept in the loopback.
    pub looped: AtomicU64,
    /// Frames the device gave while the interface was behind (dropped, as a full ring).
    pub rx_dropped: AtomicU64,
}

/// The most addresses a TAP interface takes: smoltcp's interface holds at most 8 (the
/// `iface-max-addr-count-8` feature), and the IPv6 link-local address and the loopback's
/// two take three of them.
pub const MAX_ADDRS: usize = 5;

/// How long the device may refuse frames before the connections through it fail with
/// `ENETDOWN` (a brief flap costs them nothing; Linux would retransmit for about 15
/// minutes, `tcp_retries2`).
pub const LINK_DOWN_GRACE: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(3);

/// Received frames waiting for the interface, at most this many.
const RX_QUEUE: usize = 1024;

struct Rx {
    frames: Mutex<VecDeque<Vec<u8>>>,
    stats: TapStats,
}

/// The link of an interface with a TAP device and the loopback: see the module
/// documentation.
pub struct TapLink {
    dev: Arc<tun_rs::SyncDevice>,
    rx: Arc<Rx>,
    lo: VecDeque<Vec<u8>>,
    /// The frame `recv` returned last came from `lo`.
    looped: bool,
    /// Since when the device refuses frames (`EIO`: its interface is down).
    down_since: Option<Instant>,
    mac: [u8; 6],
    mtu: usize,
    stop: Arc<tun_rs::InterruptEvent>,
    reader: Option<thread::JoinHandle<()>>,
}

/// Why a TAP device could not be had, in words that say what to do.
fn explain(name: &str, e: io::Error) -> io::Error {
    let what = match e.raw_os_error() {
        // EPERM, EACCES
        Some(1) | Some(13) => format!(
            "cannot open the TAP device {name}: {e}; it needs CAP_NET_ADMIN (run ksock as \
             root, or give the binary the capability: setcap cap_net_admin+ep $(which ksock))"
        ),
        // EBUSY
        Some(16) => format!(
            "the TAP device {name} is busy: another process has it open ({e}); stop it, or \
             name another device"
        ),
        // ENOENT, ENODEV
        Some(2) | Some(19) => format!(
            "cannot open the TAP device {name}: {e}; /dev/net/tun is missing or the tun \
             driver is not loaded (modprobe tun)"
        ),
        _ => format!("cannot open the TAP device {name}: {e}"),
    };
    io::Error::new(e.kind(), what)
}

impl TapLink {
    /// Opens (or makes) the TAP device `cfg.name`. Fails at once, saying why, without
    /// `CAP_NET_ADMIN`, without `/dev/net/tun`, or when another process holds the device.
    pub fn open(cfg: &TapConfig) -> io::Result<TapLink> {
        if !std::path::Path::new("/dev/net/tun").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "cannot open the TAP device {}: /dev/net/tun does not exist (load the \
                     tun driver: modprobe tun; in a container, pass the device in)",
                    cfg.name
                ),
            ));
        }
        if cfg.addrs.len() > MAX_ADDRS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the TAP interface {} takes at most {MAX_ADDRS} addresses ({} given)",
                    cfg.name,
                    cfg.addrs.len()
                ),
            ));
        }
        let mtu = cfg.mtu.unwrap_or(1500);
        let existed = std::path::Path::new("/sys/class/net")
            .join(&cfg.name)
            .exists();
        let dev = tun_rs::DeviceBuilder::new()
            .name(cfg.name.clone())
            .layer(tun_rs::Layer::L2)
            .mtu(mtu)
            .build_sync()
            .map_err(|e| explain(&cfg.name, e))?;
        let mac = cfg.mac.unwrap_or_else(default_mac);
        let stop = tun_rs::InterruptEvent::new().map_err(|e| explain(&cfg.name, e))?;
        // A device made just now has nobody on its other side yet; one that existed may.
        if existed {
            probe(&dev, &stop, &cfg.name, mac, &cfg.addrs)?;
        }
        Ok(TapLink {
            dev: Arc::new(dev),
            rx: Arc::new(Rx {
                frames: Mutex::new(VecDeque::new()),
                stats: TapStats::default(),
            }),
            lo: VecDeque::new(),
            looped: false,
            down_since: None,
            mac,
            mtu: usize::from(mtu),
            stop: Arc::new(stop),
            reader: None,
        })
    }

    /// The link's counters.
    pub fn stats(&self) -> &TapStats {
        &self.rx.stats
    }

    /// Starts the reader thread: it hands each frame the device gives to the interface
    /// and runs `kick` (which runs the interface), until the link is dropped or `kick`
    /// returns `false` (the interface is gone).
    pub(crate) fn start(&mut self, kick: impl Fn() -> bool + Send + 'static) -> io::Result<()> {
        let dev = self.dev.clone();
        let rx: Weak<Rx> = Arc::downgrade(&self.rx);
        let stop = self.stop.clone();
        let len = self.mtu + EthernetFrame::<&[u8]>::header_len() + 64;
        let h = thread::Builder::new()
            .name("ksock-tap".into())
            .spawn(move || {
                let mut buf = alloc::vec![0u8; len];
                loop {
                    let n = match dev.recv_intr(&mut buf, &stop) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                            if stop.is_trigger() {
                                return;
                            }
                            continue;
                        }
                        // The interface is down or gone: wait for it, without spinning.
                        Err(_) => {
                            if stop.is_trigger() {
                                return;
                            }
                            thread::sleep(std::time::Duration::from_millis(50));
                            continue;
                        }
                    };
                    let Some(rx) = rx.upgrade() else { return };
                    rx.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
                    {
                        let mut q = rx.frames.lock();
                        if q.len() >= RX_QUEUE {
                            rx.stats.rx_dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        q.push_back(buf[..n].to_vec());
                    }
                    drop(rx);
                    if !kick() {
                        return;
                    }
                }
            })?;
        self.reader = Some(h);
        Ok(())
    }

    /// Whether a frame smoltcp sends is for the loopback networks: `(loopback, device)`.
    fn route(frame: &[u8]) -> (bool, bool) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return (false, false);
        };
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => match Ipv4Packet::new_checked(eth.payload()) {
                Ok(p) if p.dst_addr().is_loopback() => (true, false),
                Ok(_) => (false, true),
                Err(_) => (false, false),
            },
            EthernetProtocol::Arp => match ArpPacket::new_checked(eth.payload()) {
                Ok(a) if a.target_protocol_addr().first() == Some(&127) => (true, false),
                Ok(_) => (false, true),
                Err(_) => (false, false),
            },
            EthernetProtocol::Ipv6 => match Ipv6Packet::new_checked(eth.payload()) {
                Ok(p) if p.dst_addr().is_loopback() => (true, false),
                // Neighbour discovery (for ::1 too) is multicast.
                Ok(p) if p.dst_addr().is_multicast() => (true, true),
                Ok(_) => (false, true),
                Err(_) => (false, false),
            },
            _ => (false, true),
        }
    }
}

impl Drop for TapLink {
    fn drop(&mut self) {
        let _ = self.stop.trigger();
        if let Some(h) = self.reader.take() {
            // The reader may be the thread dropping the interface (its kick found the
            // family gone): it ends on its own then.
            if h.thread().id() != thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

/// How long [`probe`] listens for an answer.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);

/// Asks the link whether anyone else has one of ksock's IPv4 addresses (ARP probes, as
/// RFC 5227's: sender address 0.0.0.0, for up to [`PROBE_WAIT`]), and fails, naming who,
/// if someone answers. A device whose Linux end is down refuses the probes, which then
/// prove nothing and are skipped.
fn probe(
    dev: &tun_rs::SyncDevice,
    stop: &tun_rs::InterruptEvent,
    name: &str,
    mac: [u8; 6],
    addrs: &[IpCidr],
) -> io::Result<()> {
    use smoltcp::wire::{ArpOperation, ArpRepr, EthernetAddress, EthernetRepr, Ipv4Address};
    let mine = EthernetAddress(mac);
    let v4: Vec<Ipv4Address> = addrs
        .iter()
        .filter_map(|c| match c.address() {
            IpAddress::Ipv4(a) => Some(a),
            _ => None,
        })
        .collect();
    let mut frames = Vec::new();
    for &a in &v4 {
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: mine,
            source_protocol_addr: Ipv4Address::UNSPECIFIED,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: a,
        };
        let eth = EthernetRepr {
            src_addr: mine,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        };
        let mut frame = alloc::vec![0u8; eth.buffer_len() + arp.buffer_len()];
        let mut f = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.emit(&mut f);
        arp.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
        frames.push(frame);
    }
    let start = std::time::Instant::now();
    let mut buf = alloc::vec![0u8; 2048];
    let mut probes = 0;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= PROBE_WAIT {
            break;
        }
        // A probe every quarter of the wait: a device whose carrier just came up may
        // drop the first answers (Linux activates it with a delay).
        if elapsed >= PROBE_WAIT / 4 * probes {
            probes += 1;
            let mut sent = false;
            for f in &frames {
                sent |= dev.send(f).is_ok();
            }
            if !sent {
                return Ok(());
            }
        }
        let left = (PROBE_WAIT / 4 * probes).saturating_sub(start.elapsed());
        let n = match dev.recv_intr_timeout(&mut buf, stop, Some(left)) {
            Ok(n) => n,
            // Time for the next probe, or the end.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            Err(_) => break,
        };
        let Ok(eth) = EthernetFrame::new_checked(&buf[..n]) else {
            continue;
        };
        if eth.ethertype() != EthernetProtocol::Arp {
            continue;
        }
        let Ok(ArpRepr::EthernetIpv4 {
            source_hardware_addr,
            source_protocol_addr,
            ..
        }) = ArpPacket::new_checked(eth.payload()).and_then(|p| ArpRepr::parse(&p))
        else {
            continue;
        };
        if source_hardware_addr != mine && v4.contains(&source_protocol_addr) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "the address {source_protocol_addr} is already used on the link of {name} \
                     (by {source_hardware_addr}): give ksock another --addr, or remove it \
                     from the other side"
                ),
            ));
        }
    }
    Ok(())
}

/// A locally administered, unicast Ethernet address, different per process.
fn default_mac() -> [u8; 6] {
    let pid = std::process::id().to_be_bytes();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        .to_be_bytes();
    [0x02, 0x6b, pid[2] ^ t[1], pid[3], t[2], t[3]]
}

/// The IPv6 link-local address of `mac` (modified EUI-64), which neighbour discovery
/// with the Linux side needs.
pub fn link_local(mac: [u8; 6]) -> IpCidr {
    let a = core::net::Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([mac[0] ^ 0x02, mac[1]]),
        u16::from_be_bytes([mac[2], 0xff]),
        u16::from_be_bytes([0xfe, mac[3]]),
        u16::from_be_bytes([mac[4], mac[5]]),
    );
    IpCidr::new(IpAddress::Ipv6(a), 64)
}

impl Link for TapLink {
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + EthernetFrame::<&[u8]>::header_len();
        // Frames reach Linux: checksums are computed and checked.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }

    fn recv(&mut self, _now: Instant) -> Option<Vec<u8>> {
        if let Some(f) = self.lo.pop_front() {
            self.looped = true;
            return Some(f);
        }
        self.looped = false;
        let f = self.rx.frames.lock().pop_front();
        if f.is_some() {
            self.down_since = None;
        }
        f
    }

    fn down(&self, now: Instant) -> bool {
        self.down_since.is_some_and(|t| now >= t + LINK_DOWN_GRACE)
    }

    fn through_device(&self, ip: IpAddr) -> bool {
        !ip.is_loopback()
            && !matches!(ip, IpAddr::V6(a) if a.to_ipv4_mapped().is_some_and(|v| v.is_loopback()))
    }

    fn looped(&self) -> bool {
        self.looped
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let st = &self.rx.stats;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        alloc::vec![
            ("loopback_frames", n(&st.looped)),
            ("tap_rx_frames", n(&st.rx_frames)),
            ("tap_rx_dropped", n(&st.rx_dropped)),
            ("tap_tx_frames", n(&st.tx_frames)),
            ("tap_tx_errors", n(&st.tx_errors)),
            ("tap_down", u64::from(self.down_since.is_some())),
        ]
    }

    fn send(&mut self, now: Instant, frame: Vec<u8>) {
        let st = &self.rx.stats;
        match Self::route(&frame) {
            (true, false) => {
                st.looped.fetch_add(1, Ordering::Relaxed);
                self.lo.push_back(frame);
            }
            (lo, true) => {
                match self.dev.send(&frame) {
                    Ok(_) => {
                        st.tx_frames.fetch_add(1, Ordering::Relaxed);
                        self.down_since = None;
                    }
                    Err(e) => {
                        st.tx_errors.fetch_add(1, Ordering::Relaxed);
                        // EIO: the interface is down (a full queue is ENOBUFS or EAGAIN).
                        if e.raw_os_error() == Some(5) {
                            self.down_since.get_or_insert(now);
                        }
                    }
                }
                if lo {
                    st.looped.fetch_add(1, Ordering::Relaxed);
                    self.lo.push_back(frame);
                }
            }
            (false, false) => {}
        }
    }

    fn hardware_addr(&self) -> Option<[u8; 6]> {
        Some(self.mac)
    }
}
