//! Raw smoltcp, without ksock: two TCP sockets on one `Interface` over
//! `smoltcp::phy::Loopback`, set up as `ksock-inet` sets up its connections, and driven in
//! one thread the way `ksock-inet` drives its interface. The floor the inet family builds
//! on, for the `inet.tcp.layer` row.
//!
//! [`OneThread`] is the interface both sides of that row implement (this pair and a pair of
//! ksock sockets used with `MSG_DONTWAIT`), and [`bulk_one_thread`] the loop, written once.

use smoltcp::iface::{Config, Interface, PollIngressSingleResult, PollResult, SocketHandle};
use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The buffer size `ksock-inet` gives each direction of a connection by default (the
/// socket's `SO_SNDBUF` and `SO_RCVBUF`, Linux's `wmem_default` and `rmem_default`).
pub const KSOCK_BUFFER: usize = 212_992;

/// Nonblocking ends of one connection, used from one thread.
pub trait OneThread {
    /// Queues what fits of `buf` on the sending end; 0 if nothing fits now.
    fn try_send(&mut self, buf: &[u8]) -> Result<usize, String>;
    /// Takes what has arrived on the receiving end, up to `buf.len()`; 0 if nothing has.
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, String>;
}

/// Moves `n` writes of `size` bytes from the sending end to the receiving end in one
/// thread: a nonblocking send of what is left of the current write, then a nonblocking
/// receive, in turn, until every byte has arrived. Returns the time it took.
pub fn bulk_one_thread<T: OneThread + ?Sized>(
    t: &mut T,
    size: usize,
    n: u64,
) -> Result<Duration, String> {
    let out = vec![0x5au8; size];
    let mut inb = vec![0u8; size];
    let total = size as u64 * n;
    let (mut sent, mut got) = (0u64, 0u64);
    let mut idle = 0u32;
    let t0 = std::time::Instant::now();
    while got < total {
        let mut moved = 0;
        if sent < total {
            let at = (sent % size as u64) as usize;
            let k = t.try_send(&out[at..])?;
            sent += k as u64;
            moved += k;
        }
        let k = t.try_recv(&mut inb)?;
        got += k as u64;
        moved += k;
        if moved == 0 {
            idle += 1;
            if idle > 1_000_000 {
                return Err(format!(
                    "stalled after {got} of {total} bytes ({sent} sent)"
                ));
            }
        } else {
            idle = 0;
        }
    }
    Ok(t0.elapsed())
}

/// The TCP timestamp clock of the raw pair (smoltcp's generator is a plain function).
static TS_MS: AtomicU32 = AtomicU32::new(1);

fn tsval() -> u32 {
    TS_MS.load(Ordering::Relaxed)
}

/// A TCP socket set up as `ksock-inet`'s `Setup::socket` sets up a connection with the
/// default options: 212 992-byte buffers each way, Nagle's algorithm unless `nodelay`,
/// acknowledgements at once, Reno, timestamps.
pub fn ksock_like_socket(nodelay: bool) -> tcp::Socket<'static> {
    let rx = tcp::SocketBuffer::new(vec![0u8; KSOCK_BUFFER]);
    let tx = tcp::SocketBuffer::new(vec![0u8; KSOCK_BUFFER]);
    let mut s = tcp::Socket::new(rx, tx);
    s.set_nagle_enabled(!nodelay);
    s.set_ack_delay(None);
    s.set_keep_alive(None);
    s.set_timeout(None);
    s.set_congestion_control(tcp::CongestionControl::Reno);
    s.set_tsval_generator(Some(tsval));
    s
}

/// A connected pair of raw smoltcp TCP sockets on one interface over a loopback device.
pub struct RawPair {
    iface: Interface,
    sockets: SocketSet<'static>,
    dev: Loopback,
    client: SocketHandle,
    server: SocketHandle,
    origin: std::time::Instant,
}

impl RawPair {
    /// Sets up the interface (`127.0.0.1/8`) and connects a client to a server on it.
    pub fn connect(nodelay: bool) -> Result<RawPair, String> {
        let origin = std::time::Instant::now();
        let mut dev = Loopback::new(Medium::Ip);
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = 0x6b73_6f63_6b21;
        let mut iface = Interface::new(config, &mut dev, Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Address::LOCALHOST), 8));
        });
        let mut sockets = SocketSet::new(Vec::<SocketStorage<'static>>::new());
        let mut server = ksock_like_socket(nodelay);
        server
            .listen(40_000)
            .map_err(|e| format!("smoltcp listen: {e}"))?;
        let server = sockets.add(server);
        let client = sockets.add(ksock_like_socket(nodelay));
        let mut p = RawPair {
            iface,
            sockets,
            dev,
            client,
            server,
            origin,
        };
        let to = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::LOCALHOST), 40_000);
        let cx = p.iface.context();
        p.sockets
            .get_mut::<tcp::Socket>(client)
            .connect(cx, to, 50_000)
            .map_err(|e| format!("smoltcp connect: {e}"))?;
        p.drive();
        let states = (
            p.sockets.get::<tcp::Socket>(client).state(),
            p.sockets.get::<tcp::Socket>(server).state(),
        );
        if states != (tcp::State::Established, tcp::State::Established) {
            return Err(format!("smoltcp handshake did not finish: {states:?}"));
        }
        Ok(p)
    }

    fn now(&self) -> Instant {
        let us = self.origin.elapsed().as_micros();
        Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
    }

    /// Runs the interface until nothing moves, as `ksock-inet`'s `Net::drive` does: every
    /// received frame through `poll_ingress_single`, then `poll_egress`, again until a round
    /// neither received nor sent anything.
    pub fn drive(&mut self) {
        let now = self.now();
        TS_MS.store(
            u32::try_from(now.total_millis() & 0x7fff_ffff).unwrap_or(1),
            Ordering::Relaxed,
        );
        loop {
            let mut moved = false;
            while self
                .iface
                .poll_ingress_single(now, &mut self.dev, &mut self.sockets)
                != PollIngressSingleResult::None
            {
                moved = true;
            }
            if self
                .iface
                .poll_egress(now, &mut self.dev, &mut self.sockets)
                != PollResult::None
            {
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }
}

impl OneThread for RawPair {
    fn try_send(&mut self, buf: &[u8]) -> Result<usize, String> {
        let s = self.sockets.get_mut::<tcp::Socket>(self.client);
        if !s.can_send() {
            return Ok(0);
        }
        let n = s
            .send_slice(buf)
            .map_err(|e| format!("smoltcp send: {e}"))?;
        if n > 0 {
            self.drive();
        }
        Ok(n)
    }

    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        let s = self.sockets.get_mut::<tcp::Socket>(self.server);
        if !s.can_recv() {
            return Ok(0);
        }
        // Two slices at most: the ring buffer may wrap.
        let mut n = 0;
        while n < buf.len() {
            let k = s
                .recv_slice(&mut buf[n..])
                .map_err(|e| format!("smoltcp recv: {e}"))?;
            if k == 0 {
                break;
            }
            n += k;
        }
        if n > 0 {
            // The window opened: tell the peer.
            self.drive();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_pair_moves_every_byte() {
        let mut p = RawPair::connect(false).unwrap();
        bulk_one_thread(&mut p, 65536, 20).unwrap();
        let mut p = RawPair::connect(true).unwrap();
        bulk_one_thread(&mut p, 1000, 50).unwrap();
    }
}
