//! Links: where an interface's frames come from and go to.
//!
//! The interface looks at every received frame before smoltcp does (the listen backlog and
//! the reset bookkeeping need it, see `net.rs`), so it takes frames from a [`Link`] one at a
//! time as owned buffers rather than through smoltcp's borrowed tokens. [`Loopback`] is the
//! in-process loopback every stack has, with a mode in which a test steps it frame by
//! frame; [`DeviceLink`] adapts any `smoltcp::phy::Device` a kernel supplies.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A source and sink of IP frames (medium `Ip`: no link-layer header).
pub trait Link: Send {
    /// What the link can carry (its MTU, checksum offloads).
    fn capabilities(&self) -> DeviceCapabilities;

    /// Takes the next received frame, if one is waiting.
    fn recv(&mut self, now: Instant) -> Option<Vec<u8>>;

    /// Sends a frame.
    fn send(&mut self, now: Instant, frame: Vec<u8>);

    /// A buffer of `len` bytes for a frame to send (its contents are overwritten).
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        alloc::vec![0; len]
    }

    /// Gives back the buffer of a received frame once it has been processed.
    fn recycle(&mut self, frame: Vec<u8>) {
        drop(frame);
    }

    /// The link's counters, as (name, value), for the family's `stats`.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Whether the frame [`recv`](Link::recv) last returned is one this link was given to
    /// send (looped back): a capture has recorded it already.
    fn looped(&self) -> bool {
        false
    }

    /// Whether the link has been down (its device refusing frames) long enough that
    /// connections through it should fail (`ENETDOWN`) rather than retransmit forever.
    fn down(&self, now: Instant) -> bool {
        let _ = now;
        false
    }

    /// Whether `ip` is reached through the part of the link that [`down`](Link::down)
    /// speaks of (for a TAP link: anything but the loopback networks).
    fn through_device(&self, ip: core::net::IpAddr) -> bool {
        let _ = ip;
        true
    }

    /// The link's Ethernet address, for a link of medium `Ethernet`.
    fn hardware_addr(&self) -> Option<[u8; 6]> {
        None
    }

    /// The link as the in-process loopback, if it is one (for tests that step it).
    fn loopback(&mut self) -> Option<&mut Loopback> {
        None
    }
}

/// Largest IP packet on the loopback (as Linux `lo`, whose MTU is 65536).
pub const LOOPBACK_MTU: usize = 65535;

/// The in-process loopback: every frame sent is received again, in order.
///
/// Held mode ([`hold`](Loopback::hold)) is the deterministic harness for protocol tests:
/// frames sent while held wait in a queue the test can read ([`held`](Loopback::held)),
/// drop ([`drop_held`](Loopback::drop_held)) or let through ([`release`](Loopback::release));
/// with a manual clock nothing moves unless the test says so.
#[derive(Debug)]
pub struct Loopback {
    ready: VecDeque<Vec<u8>>,
    held: VecDeque<Vec<u8>>,
    holding: bool,
    spare: Vec<Vec<u8>>,
    sent: u64,
}

/// Spare frame buffers kept for reuse.
const SPARE: usize = 16;

impl Default for Loopback {
    fn default() -> Self {
        Loopback::new()
    }
}

impl Loopback {
    /// A loopback that delivers every frame at once.
    pub fn new() -> Loopback {
        Loopback {
            ready: VecDeque::new(),
            held: VecDeque::new(),
            holding: false,
            spare: Vec::new(),
            sent: 0,
        }
    }

    /// Holds frames sent from now on (`true`), or delivers them at once again (`false`;
    /// frames already held stay held until released).
    pub fn hold(&mut self, on: bool) {
        self.holding = on;
    }

    /// The frames held, oldest first.
    pub fn held(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.held.iter().map(|f| f.as_slice())
    }

    /// How many frames are held.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Lets the `n` oldest held frames through (they are received on the next poll).
    pub fn release(&mut self, n: usize) -> usize {
        let n = n.min(self.held.len());
        self.ready.extend(self.held.drain(..n));
        n
    }

    /// Drops the held frame at `index` (0: the oldest), as a lossy link would.
    pub fn drop_held(&mut self, index: usize) -> bool {
        self.held.remove(index).is_some()
    }

    /// Frames sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

impl Link for Loopback {
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = LOOPBACK_MTU;
        // Frames never leave the process: nothing can corrupt them (Linux `lo` does not
        // check them either).
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }

    fn recv(&mut self, _now: Instant) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    fn send(&mut self, _now: Instant, frame: Vec<u8>) {
        self.sent += 1;
        if self.holding {
            self.held.push_back(frame);
        } else {
            self.ready.push_back(frame);
        }
    }

    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        // Reused buffers keep their length, so this rarely writes anything.
        b.resize(len, 0);
        b
    }

    fn recycle(&mut self, frame: Vec<u8>) {
        if self.spare.len() < SPARE {
            self.spare.push(frame);
        }
    }

    fn looped(&self) -> bool {
        true
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        alloc::vec![("loopback_frames", self.sent)]
    }

    fn loopback(&mut self) -> Option<&mut Loopback> {
        Some(self)
    }
}

/// Any `smoltcp::phy::Device` (of medium `Ip`) as a [`Link`]: a kernel's own network
/// device. Each received frame is copied once out of the device's token, so the interface
/// can look at it before smoltcp does.
pub struct DeviceLink<D> {
    dev: D,
}

impl<D> DeviceLink<D> {
    /// Wraps `dev`.
    pub fn new(dev: D) -> DeviceLink<D> {
        DeviceLink { dev }
    }

    /// The device.
    pub fn device(&mut self) -> &mut D {
        &mut self.dev
    }
}

impl<D: Device + Send> Link for DeviceLink<D> {
    fn capabilities(&self) -> DeviceCapabilities {
        self.dev.capabilities()
    }

    fn recv(&mut self, now: Instant) -> Option<Vec<u8>> {
        let (rx, _tx) = self.dev.receive(now)?;
        Some(phy::RxToken::consume(rx, |b: &[u8]| b.to_vec()))
    }

    fn send(&mut self, now: Instant, frame: Vec<u8>) {
        // A device with no room drops the frame, as a full transmit ring does.
        if let Some(tx) = self.dev.transmit(now) {
            phy::TxToken::consume(tx, frame.len(), |b: &mut [u8]| b.copy_from_slice(&frame));
        }
    }
}

/// The view of a link that smoltcp polls: at most one staged received frame (looked at
/// already), and transmission straight to the link.
pub(crate) struct Port<'a> {
    pub(crate) staged: Option<Vec<u8>>,
    pub(crate) link: &'a mut dyn Link,
    pub(crate) caps: DeviceCapabilities,
    /// The buffer of the frame smoltcp last consumed, to give back to the link.
    pub(crate) done: Option<Vec<u8>>,
}

pub(crate) struct PortRx<'b> {
    frame: Vec<u8>,
    done: &'b mut Option<Vec<u8>>,
}

pub(crate) struct PortTx<'b> {
    link: &'b mut dyn Link,
    now: Instant,
}

impl phy::RxToken for PortRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.frame);
        *self.done = Some(self.frame);
        r
    }
}

impl phy::TxToken for PortTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = self.link.buffer(len);
        let r = f(&mut b);
        self.link.send(self.now, b);
        r
    }
}

impl Device for Port<'_> {
    type RxToken<'b>
        = PortRx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = PortTx<'b>
    where
        Self: 'b;

    fn receive(&mut self, now: Instant) -> Option<(PortRx<'_>, PortTx<'_>)> {
        let frame = self.staged.take()?;
        Some((
            PortRx {
                frame,
                done: &mut self.done,
            },
            PortTx {
                link: &mut *self.link,
                now,
            },
        ))
    }

    fn transmit(&mut self, now: Instant) -> Option<PortTx<'_>> {
        Some(PortTx {
            link: &mut *self.link,
            now,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.caps.clone()
    }
}
