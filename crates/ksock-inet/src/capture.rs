//! Packet capture: every frame of an interface written in the pcap format, for Wireshark,
//! `tshark -r` and `tcpdump -r`.
//!
//! [`Capture`] wraps any [`Link`] and records each frame as it goes by: frames sent always,
//! frames received too on a link to the outside (a TAP device), but not on the loopback,
//! where every frame sent is received again (as `tcpdump -i lo` shows each packet once).
//! The format is libpcap's (`LINKTYPE_RAW`: IP packets with no link-layer header), written
//! here rather than with smoltcp's `PcapWriter`: that one wraps a `phy::Device` (ksock's
//! interface reads a `Link`), and its `std::io::Write` sink panics when a write fails, which
//! a full disk must never do to a network interface. A sink that fails stops the capture
//! (the frames still flow) and says so through [`Capture::failed`].

use crate::link::{Link, Loopback};
use alloc::boxed::Box;
use alloc::vec::Vec;
use smoltcp::phy::DeviceCapabilities;
use smoltcp::time::Instant;

/// Where a capture goes.
pub trait CaptureSink: Send {
    /// Writes `bytes`; `false` if the sink failed (the capture stops).
    fn write(&mut self, bytes: &[u8]) -> bool;

    /// Pushes buffered records out (after each burst of frames); `false` if it failed.
    fn flush(&mut self) -> bool {
        true
    }

    /// The timestamp (seconds, microseconds) of a frame seen at `now` on the stack's clock.
    /// The default is that clock itself; a host sink may use the wall clock instead.
    fn stamp(&mut self, now: Instant) -> (u32, u32) {
        (now.secs() as u32, now.micros() as u32)
    }
}

/// The longest part of a frame kept (libpcap's and Wireshark's default snapshot length).
pub const SNAPLEN: u32 = 262_144;

/// `LINKTYPE_ETHERNET`: each record is an Ethernet frame.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// `LINKTYPE_RAW`: each record is an IPv4 or IPv6 packet.
pub const LINKTYPE_RAW: u32 = 101;

/// The pcap file header for `linktype`.
pub fn file_header(linktype: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone, sigfigs: 0.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&linktype.to_le_bytes());
    h
}

/// The record header of a frame of `len` bytes stamped `(secs, micros)`.
pub fn record_header(secs: u32, micros: u32, len: usize) -> [u8; 16] {
    let orig = u32::try_from(len).unwrap_or(u32::MAX);
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&secs.to_le_bytes());
    h[4..8].copy_from_slice(&micros.to_le_bytes());
    h[8..12].copy_from_slice(&orig.min(SNAPLEN).to_le_bytes());
    h[12..16].copy_from_slice(&orig.to_le_bytes());
    h
}

/// A link whose frames are captured.
pub struct Capture {
    inner: Box<dyn Link>,
    sink: Box<dyn CaptureSink>,
    /// The pcap link type: the link's medium.
    linktype: u32,
    started: bool,
    failed: bool,
    frames: u64,
    dirty: bool,
}

impl Capture {
    /// Captures what goes through `inner` into `sink`: frames sent, and received ones but
    /// those the link looped back (recorded when sent).
    pub fn new(inner: Box<dyn Link>, sink: Box<dyn CaptureSink>) -> Capture {
        let linktype = match inner.capabilities().medium {
            smoltcp::phy::Medium::Ethernet => LINKTYPE_ETHERNET,
            _ => LINKTYPE_RAW,
        };
        Capture {
            inner,
            sink,
            linktype,
            started: false,
            failed: false,
            frames: 0,
            dirty: false,
        }
    }

    /// Frames recorded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Whether the sink failed (nothing has been recorded since).
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn record(&mut self, now: Instant, frame: &[u8]) {
        if self.failed {
            return;
        }
        if !self.started {
            self.started = true;
            if !self.sink.write(&file_header(self.linktype)) {
                self.failed = true;
                return;
            }
        }
        let (s, us) = self.sink.stamp(now);
        let keep = frame.len().min(SNAPLEN as usize);
        let ok =
            self.sink.write(&record_header(s, us, frame.len())) && self.sink.write(&frame[..keep]);
        if ok {
            self.frames += 1;
            self.dirty = true;
        } else {
            self.failed = true;
        }
    }

    fn flush(&mut self) {
        if self.dirty && !self.failed {
            self.dirty = false;
            if !self.sink.flush() {
                self.failed = true;
            }
        }
    }
}

impl Link for Capture {
    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }

    fn recv(&mut self, now: Instant) -> Option<Vec<u8>> {
        match self.inner.recv(now) {
            Some(f) => {
                if !self.inner.looped() {
                    self.record(now, &f);
                }
                Some(f)
            }
            None => {
                // The interface has taken every frame there is: a burst ends here.
                self.flush();
                None
            }
        }
    }

    fn send(&mut self, now: Instant, frame: Vec<u8>) {
        self.record(now, &frame);
        self.inner.send(now, frame);
    }

    fn buffer(&mut self, len: usize) -> Vec<u8> {
        self.inner.buffer(len)
    }

    fn recycle(&mut self, frame: Vec<u8>) {
        self.inner.recycle(frame);
    }

    fn loopback(&mut self) -> Option<&mut Loopback> {
        self.inner.loopback()
    }

    fn looped(&self) -> bool {
        self.inner.looped()
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut v = self.inner.counters();
        v.push(("captured_frames", self.frames));
        v
    }

    fn hardware_addr(&self) -> Option<[u8; 6]> {
        self.inner.hardware_addr()
    }

    fn down(&self, now: Instant) -> bool {
        self.inner.down(now)
    }

    fn through_device(&self, ip: core::net::IpAddr) -> bool {
        self.inner.through_device(ip)
    }
}

/// A capture file on the host: buffered, stamped with the wall clock.
#[cfg(feature = "std")]
pub struct PcapFile {
    out: std::io::BufWriter<std::fs::File>,
}

#[cfg(feature = "std")]
impl PcapFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: &std::path::Path) -> std::io::Result<PcapFile> {
        Ok(PcapFile {
            out: std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?),
        })
    }
}

#[cfg(feature = "std")]
impl CaptureSink for PcapFile {
    fn write(&mut self, bytes: &[u8]) -> bool {
        std::io::Write::write_all(&mut self.out, bytes).is_ok()
    }

    fn flush(&mut self) -> bool {
        std::io::Write::flush(&mut self.out).is_ok()
    }

    fn stamp(&mut self, _now: Instant) -> (u32, u32) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_secs() as u32, t.subsec_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use ksock::sync::Mutex;

    #[derive(Clone, Default)]
    struct Mem(Arc<Mutex<(Vec<u8>, bool)>>);

    impl CaptureSink for Mem {
        fn write(&mut self, b: &[u8]) -> bool {
            let mut g = self.0.lock();
            if g.1 {
                return false;
            }
            g.0.extend_from_slice(b);
            true
        }
    }

    #[test]
    fn records_what_the_loopback_sends_once_and_stops_on_a_failing_sink() {
        let mem = Mem::default();
        let mut c = Capture::new(Box::new(Loopback::new()), Box::new(mem.clone()));
        let t = Instant::from_micros(1_500_000);
        c.send(t, alloc::vec![0x45; 20]);
        assert_eq!(c.recv(t).map(|f| f.len()), Some(20));
        assert_eq!(c.recv(t), None);
        assert_eq!(c.frames(), 1, "sent and received again: recorded once");
        {
            let g = mem.0.lock();
            let b = &g.0;
            assert_eq!(b.len(), 24 + 16 + 20);
            assert_eq!(&b[0..4], &0xa1b2_c3d4u32.to_le_bytes());
            assert_eq!(&b[20..24], &101u32.to_le_bytes());
            assert_eq!(&b[24..28], &1u32.to_le_bytes(), "seconds");
            assert_eq!(&b[28..32], &500_000u32.to_le_bytes(), "microseconds");
            assert_eq!(&b[32..36], &20u32.to_le_bytes());
        }
        mem.0.lock().1 = true;
        c.send(t, alloc::vec![0x45; 20]);
        assert!(c.failed());
        assert_eq!(c.recv(t).map(|f| f.len()), Some(20), "frames still flow");
        assert_eq!(c.frames(), 1);
    }
}
