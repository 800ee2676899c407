//! Properties of the inet family's ingress, for any frames a peer may send: shared by the
//! stable property tests (`tests/prop_ingress.rs`) and the fuzz target `ingress` (`fuzz/`).
//!
//! A stack on a manual clock and a held loopback (as `tests/stepped.rs`) gets a listener on
//! `127.0.0.1`, one on `[::1]`, an established connection and a UDP socket; then the input,
//! read as a program, injects frames (raw bytes, TCP segments on the connection or to the
//! listeners, UDP datagrams, IPv6 segments, real frames replayed with a byte changed),
//! moves data through the connection and moves time. Every frame the stack sends is seen
//! on its way, so the harness knows each side's sequence numbers.
//!
//! Properties: nothing panics; the stack never answers in an endless exchange; once every
//! socket is closed and time has passed, no smoltcp socket and no port is left; and unless
//! an injected frame could legitimately have changed the connection (a reset, SYN, FIN or
//! data inside the receiver's window, or an acknowledgement of bytes in flight, each with
//! an acceptable acknowledgement number: what a peer that knows the sequence numbers could
//! send), the connection still carries data both ways, every byte in order, none lost.

use ksock::testing::ManualClock;
use ksock::time::Clock;
use ksock::{Domain, Errno, SockAddr, SockType, Socket, Stack, State};
use ksock_inet::{InetFamily, Link};
use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

const MS: u64 = 1_000_000;

/// The program, read front to back (zeros once it runs out).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b.to_vec()
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// A TCP segment's fields, before it is laid out.
struct Seg {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
}

/// Lays out an IP packet (v4 or v6 by the addresses) around a TCP or UDP header and body.
/// Checksums are left 0: the loopback does not check them (as Linux `lo`).
fn ip_frame(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let len = (20 + l4.len()) as u16;
            let mut f = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
            f[2..4].copy_from_slice(&len.to_be_bytes());
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
            f.extend_from_slice(l4);
            f
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            let mut f = vec![0x60, 0, 0, 0];
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&v6(s).octets());
            f.extend_from_slice(&v6(d).octets());
            f.extend_from_slice(l4);
            f
        }
    }
}

fn tcp_frame(s: &Seg) -> Vec<u8> {
    let mut opts = s.options.clone();
    opts.truncate(40);
    while !opts.len().is_multiple_of(4) {
        opts.push(0);
    }
    let mut t = Vec::with_capacity(20 + opts.len() + s.payload.len());
    t.extend_from_slice(&s.src.port().to_be_bytes());
    t.extend_from_slice(&s.dst.port().to_be_bytes());
    t.extend_from_slice(&s.seq.to_be_bytes());
    t.extend_from_slice(&s.ack.to_be_bytes());
    t.push((((20 + opts.len()) / 4) as u8) << 4);
    t.push(s.flags);
    t.extend_from_slice(&s.window.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(&opts);
    t.extend_from_slice(&s.payload);
    ip_frame(s.src.ip(), s.dst.ip(), 6, &t)
}

fn udp_frame(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    ip_frame(src.ip(), dst.ip(), 17, &u)
}

/// A TCP segment as read off the wire.
struct Wire {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    fin: bool,
    rst: bool,
    len: u32,
}

fn read_tcp(frame: &[u8]) -> Option<Wire> {
    let (src, dst, body) = match frame.first()? >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(frame).ok()?;
            if p.next_header() != IpProtocol::Tcp {
                return None;
            }
            (
                IpAddr::V4(p.src_addr()),
                IpAddr::V4(p.dst_addr()),
                p.payload(),
            )
        }
        6 => {
            let p = Ipv6Packet::new_checked(frame).ok()?;
            if p.next_header() != IpProtocol::Tcp {
                return None;
            }
            (
                IpAddr::V6(p.src_addr()),
                IpAddr::V6(p.dst_addr()),
                p.payload(),
            )
        }
        _ => return None,
    };
    let t = TcpPacket::new_checked(body).ok()?;
    Some(Wire {
        src: SocketAddr::new(src, t.src_port()),
        dst: SocketAddr::new(dst, t.dst_port()),
        seq: t.seq_number().0 as u32,
        ack: t.ack().then(|| t.ack_number().0 as u32),
        syn: t.syn(),
        fin: t.fin(),
        rst: t.rst(),
        len: t.payload().len() as u32,
    })
}

/// `a` after `b` in sequence space.
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// What the harness knows of one direction of the connection, from the frames the stack
/// sent: how far the sender has sent (`nxt`, `SND.NXT`) and how far the receiver has
/// acknowledged (`acked`, the receiver's `RCV.NXT` and the sender's `SND.UNA`).
#[derive(Clone, Copy, Default, Debug)]
struct Dir {
    nxt: u32,
    acked: u32,
}

struct Net {
    st: Stack,
    clock: Arc<ManualClock>,
    inet: Arc<InetFamily>,
    /// The client's and the server's endpoints.
    c_ep: SocketAddr,
    s_ep: SocketAddr,
    /// Client to server (0) and server to client (1).
    dirs: [Dir; 2],
    /// Whether each side's SYN has been seen (and so its numbers are known).
    known: [bool; 2],
    /// Recent frames the stack sent, to replay.
    recent: Vec<Vec<u8>>,
    /// Whether an injected frame could have changed the connection.
    disturbed: bool,
}

impl Net {
    /// The direction of a segment on the connection, if it is on it.
    fn dir_of(&self, w: &Wire) -> Option<usize> {
        if w.src == self.c_ep && w.dst == self.s_ep {
            Some(0)
        } else if w.src == self.s_ep && w.dst == self.c_ep {
            Some(1)
        } else {
            None
        }
    }

    /// A frame the stack sent.
    fn saw(&mut self, frame: &[u8]) {
        if self.recent.len() == 8 {
            self.recent.remove(0);
        }
        self.recent.push(frame.to_vec());
        let Some(w) = read_tcp(frame) else { return };
        let Some(d) = self.dir_of(&w) else { return };
        if w.syn && !self.known[d] {
            // The side's first sequence number: nothing of it is acknowledged yet.
            self.known[d] = true;
            self.dirs[d] = Dir {
                nxt: w.seq,
                acked: w.seq,
            };
        }
        let end = w.seq.wrapping_add(w.len + w.syn as u32 + w.fin as u32);
        if after(end, self.dirs[d].nxt) {
            self.dirs[d].nxt = end;
        }
        if let Some(a) = w.ack
            && after(a, self.dirs[1 - d].acked)
        {
            self.dirs[1 - d].acked = a;
        }
    }

    /// Whether an injected frame could change the connection: see the module docs.
    fn disturbs(&self, frame: &[u8]) -> bool {
        let Some(w) = read_tcp(frame) else {
            return false;
        };
        let Some(d) = self.dir_of(&w) else {
            return false;
        };
        // The receiver's window starts at what it acknowledged; no window is wider than 2^30.
        let off = w.seq.wrapping_sub(self.dirs[d].acked) as i32 as i64;
        let seg_len = (w.len + w.syn as u32 + w.fin as u32).max(1) as i64;
        let in_window = off < 1 << 30 && off + seg_len > 0;
        if w.rst {
            return in_window;
        }
        // Anything else needs an acceptable acknowledgement (smoltcp drops the segment
        // otherwise): between what the receiver's own data has had acknowledged and what
        // it has sent.
        let Some(ack) = w.ack else { return false };
        let back = self.dirs[1 - d];
        let una = back.acked.wrapping_sub(1);
        let acceptable = !after(una, ack) && !after(ack, back.nxt.wrapping_add(1));
        if !acceptable {
            return false;
        }
        let control = w.syn || w.fin || w.len > 0;
        let acks_in_flight = after(ack, back.acked);
        (control && in_window) || acks_in_flight
    }

    /// Lets every held frame through, watching them, until the stack is quiet.
    fn drain(&mut self) {
        for _ in 0..500 {
            let frames: Vec<Vec<u8>> = self
                .inet
                .with_loopback(|lo| lo.held().map(<[u8]>::to_vec).collect())
                .unwrap();
            if frames.is_empty() {
                return;
            }
            for f in &frames {
                self.saw(f);
            }
            self.inet
                .with_loopback(|lo| lo.release(frames.len()))
                .unwrap();
            self.inet.poll();
        }
        panic!("the stack never went quiet: {:?}", self.inet.sockets());
    }

    /// Injects one frame as if it came from the wire.
    fn inject(&mut self, frame: Vec<u8>) {
        self.drain();
        if self.disturbs(&frame) {
            self.disturbed = true;
        }
        self.inet
            .with_loopback(|lo| {
                Link::send(lo, smoltcp::time::Instant::from_millis(0), frame);
                lo.release(1)
            })
            .unwrap();
        self.inet.poll();
        self.drain();
    }

    /// Lets `ns` pass, stopping at each timer that comes due on the way so that the frames
    /// it sends go through before the next one.
    fn advance(&mut self, ns: u64) {
        let end = self.clock.now().saturating_add(ns);
        loop {
            let now = self.clock.now();
            let to = match self.clock.next() {
                Some(at) if at <= end => at.max(now + 1),
                _ => end,
            };
            self.clock.advance(&self.st, to - now);
            self.drain();
            if to >= end {
                return;
            }
        }
    }
}

fn inet(s: &str) -> SockAddr {
    SockAddr::Inet(s.parse().unwrap())
}

fn addr_of(s: &Socket) -> SocketAddr {
    match s.local_addr().unwrap() {
        SockAddr::Inet(a) => a,
        a => panic!("{a:?}"),
    }
}

/// One direction of the connection's data: what was written and what was read.
#[derive(Default)]
struct Stream {
    sent: Vec<u8>,
    read: Vec<u8>,
}

fn pattern(at: usize, n: usize) -> Vec<u8> {
    (at..at + n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn write(s: &Socket, st: &mut Stream, n: usize) {
    let data = pattern(st.sent.len(), n);
    match s.send(&data) {
        Ok(k) => st.sent.extend_from_slice(&data[..k]),
        Err(e) => assert!(
            [
                Errno::EAGAIN,
                Errno::EPIPE,
                Errno::ECONNRESET,
                Errno::ENOTCONN,
                Errno::ETIMEDOUT
            ]
            .contains(&e),
            "send: {e:?}"
        ),
    }
}

fn read(s: &Socket, st: &mut Stream, n: usize, strict: bool) {
    let mut buf = vec![0u8; n.max(1)];
    match s.recv(&mut buf) {
        Ok(k) => st.read.extend_from_slice(&buf[..k]),
        Err(e) => assert!(
            [
                Errno::EAGAIN,
                Errno::ECONNRESET,
                Errno::ENOTCONN,
                Errno::ETIMEDOUT
            ]
            .contains(&e),
            "recv: {e:?}"
        ),
    }
    if strict {
        assert!(
            st.sent.starts_with(&st.read),
            "bytes read that were not written (or out of order)"
        );
    }
}

/// Every property, for one program. Returns whether the connection's data was checked (no
/// injected frame could have changed it).
pub fn check_ingress(data: &[u8]) -> bool {
    let st = Stack::new();
    let clock = ManualClock::install(&st);
    let family = InetFamily::new(&st);
    st.register_family(family.clone()).unwrap();
    family.with_loopback(|lo| lo.hold(true)).unwrap();
    let sock = |d: Domain, t: SockType| {
        let s = st.socket(d, t, 0).unwrap();
        s.set_nonblocking(true).unwrap();
        s
    };
    let l = sock(Domain::INET, SockType::STREAM);
    l.bind(&inet("127.0.0.1:0")).unwrap();
    l.listen(4).unwrap();
    let l6 = sock(Domain::INET6, SockType::STREAM);
    l6.bind(&inet("[::1]:0")).unwrap();
    l6.listen(2).unwrap();
    let u = sock(Domain::INET, SockType::DGRAM);
    u.bind(&inet("127.0.0.1:0")).unwrap();
    // A connected UDP socket, whose peer has nothing bound (an ICMP error may say so).
    let uc = sock(Domain::INET, SockType::DGRAM);
    uc.connect(&inet("127.0.0.1:9")).unwrap();
    let c = sock(Domain::INET, SockType::STREAM);
    assert_eq!(c.connect(&l.local_addr().unwrap()), Err(Errno::EINPROGRESS));
    let mut n = Net {
        st: st.clone(),
        clock,
        inet: family.clone(),
        c_ep: addr_of(&c),
        s_ep: addr_of(&l),
        dirs: [Dir::default(); 2],
        known: [false; 2],
        recent: Vec::new(),
        disturbed: false,
    };
    // The handshake, watched: the SYN and the SYN-ACK give each side's first numbers.
    n.drain();
    let s = l.try_accept().expect("the connection").0;
    s.set_nonblocking(true).unwrap();
    assert_eq!(c.state(), State::Connected);
    let (l_ep, l6_ep, u_ep, uc_ep) = (addr_of(&l), addr_of(&l6), addr_of(&u), addr_of(&uc));
    let uc_peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut up = Stream::default();
    let mut down = Stream::default();
    let mut accepted = Vec::new();

    let mut inp = Input(data);
    let mut steps = 0;
    while !inp.done() && steps < 64 {
        steps += 1;
        let op = inp.byte();
        match op % 12 {
            // An ICMP error quoting a datagram or a segment one of the sockets sent.
            0 if op >= 0x80 => {
                let kind = inp.byte();
                let (from, to, proto) = match kind % 3 {
                    0 => (uc_ep, uc_peer, 17),
                    1 => (n.c_ep, n.s_ep, 6),
                    _ => (u_ep, SocketAddr::new(u_ep.ip(), inp.u16()), 17),
                };
                let code = inp.byte();
                let seq = n.dirs[0].acked.wrapping_add(u32::from(inp.byte()));
                let mut l4 = Vec::new();
                l4.extend_from_slice(&from.port().to_be_bytes());
                l4.extend_from_slice(&to.port().to_be_bytes());
                l4.extend_from_slice(&seq.to_be_bytes());
                let v6 = op & 0x10 != 0;
                let mapped = |a: SocketAddr| match a.ip() {
                    IpAddr::V4(ip) if v6 => IpAddr::V6(ip.to_ipv6_mapped()),
                    ip => ip,
                };
                // The quoted packet: its IP header and the first 8 bytes after it.
                let mut quoted = ip_frame(mapped(from), mapped(to), proto, &l4);
                quoted.truncate(if v6 { 48 } else { 28 });
                let (ty, code, icmp_proto) = match (v6, code & 0x80 != 0) {
                    (false, false) => (3, code % 16, 1),
                    (true, false) => (1, code % 8, 58),
                    (false, true) => (code >> 3 & 0x0f, code & 7, 1),
                    (true, true) => (code >> 3 & 0x0f, code & 7, 58),
                };
                let mut icmp = vec![ty, code, 0, 0, 0, 0, 0, 0];
                icmp.extend_from_slice(&quoted);
                n.inject(ip_frame(mapped(to), mapped(from), icmp_proto, &icmp));
            }
            // Raw bytes (an IP packet of any protocol, or not one).
            0 => {
                let len = inp.byte() as usize;
                n.inject(inp.bytes(len));
            }
            // A segment on the connection, either way, near the numbers each side uses.
            1 | 2 => {
                let d = (op >> 4) as usize & 1;
                let (src, dst) = if d == 0 {
                    (n.c_ep, n.s_ep)
                } else {
                    (n.s_ep, n.c_ep)
                };
                let flags = inp.byte();
                let near = |base: u32, delta: u16, wild: bool| {
                    if wild {
                        base ^ (delta as u32) << 16
                    } else {
                        base.wrapping_add(delta as i16 as i32 as u32)
                    }
                };
                let (sd, ad) = (inp.u16(), inp.u16());
                let seq = near(n.dirs[d].acked, sd, op & 0x40 != 0);
                let ack = near(n.dirs[1 - d].nxt, ad, op & 0x80 != 0);
                let window = inp.u16();
                let olen = inp.byte() as usize % 44;
                let options = inp.bytes(olen);
                let plen = inp.byte() as usize;
                let payload = inp.bytes(plen);
                n.inject(tcp_frame(&Seg {
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    window,
                    options,
                    payload,
                }));
            }
            // A segment to a listener (or next to it), from a loopback address.
            3 => {
                let to = if op & 0x10 != 0 { l6_ep } else { l_ep };
                let port = inp.u16();
                let src = match to {
                    SocketAddr::V4(_) => SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + inp.byte() % 3)),
                        port,
                    ),
                    SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
                };
                let dst = if op & 0x20 != 0 {
                    SocketAddr::new(to.ip(), to.port().wrapping_add(1))
                } else {
                    to
                };
                let flags = inp.byte();
                let (seq, ack, window) = (inp.u32(), inp.u32(), inp.u16());
                let olen = inp.byte() as usize % 44;
                let options = inp.bytes(olen);
                let plen = inp.byte() as usize % 64;
                let payload = inp.bytes(plen);
                n.inject(tcp_frame(&Seg {
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    window,
                    options,
                    payload,
                }));
            }
            // A datagram to the UDP socket (or another port).
            4 => {
                let port = inp.u16();
                let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
                let dst = if op & 0x10 != 0 {
                    SocketAddr::new(u_ep.ip(), inp.u16())
                } else {
                    u_ep
                };
                let plen = inp.byte() as usize;
                let payload = inp.bytes(plen);
                n.inject(udp_frame(src, dst, &payload));
            }
            // A real frame again, with one byte changed.
            5 => {
                let (i, at, x) = (inp.byte(), inp.u16(), inp.byte());
                if !n.recent.is_empty() {
                    let mut f = n.recent[i as usize % n.recent.len()].clone();
                    if !f.is_empty() && op & 0x10 != 0 {
                        let at = at as usize % f.len();
                        f[at] ^= x;
                    }
                    n.inject(f);
                }
            }
            // Data through the connection.
            6 => write(&c, &mut up, inp.byte() as usize * 4),
            7 => write(&s, &mut down, inp.byte() as usize * 4),
            8 => {
                let k = inp.byte() as usize * 4;
                read(&s, &mut up, k, !n.disturbed);
                read(&c, &mut down, k, !n.disturbed);
            }
            // Time.
            9 => n.advance(inp.byte() as u64 * 50 * MS),
            // Whatever the listeners have, and the UDP socket.
            10 => {
                for lst in [&l, &l6] {
                    while let Ok((a, _)) = lst.try_accept() {
                        a.set_nonblocking(true).unwrap();
                        let mut buf = [0u8; 64];
                        let _ = a.recv(&mut buf);
                        accepted.push(a);
                    }
                }
                let mut buf = [0u8; 512];
                while let Ok((k, from)) = u.recv_from(&mut buf) {
                    assert!(k <= 255);
                    assert!(matches!(from, SockAddr::Inet(_)));
                }
                // The connected socket's peer has nothing bound: its error, if an ICMP
                // error said so, or nothing.
                match uc.recv(&mut buf) {
                    Err(Errno::EAGAIN | Errno::ECONNREFUSED) => {}
                    r => panic!("the connected UDP socket: {r:?}"),
                }
                if op & 0x10 != 0 {
                    accepted.clear();
                }
            }
            // A write and a read on the connection at once.
            _ => {
                write(&c, &mut up, 8);
                n.drain();
                read(&s, &mut up, 64, !n.disturbed);
            }
        }
        n.drain();
    }

    // Unless something could have changed it, the connection carries data both ways, in
    // order and whole, once time lets zero windows and retransmissions run their course.
    if !n.disturbed {
        assert_eq!(c.state(), State::Connected, "{:?}", family.sockets());
        assert_eq!(s.state(), State::Connected, "{:?}", family.sockets());
        write(&c, &mut up, 100);
        write(&s, &mut down, 100);
        for _ in 0..200 {
            read(&s, &mut up, 4096, true);
            read(&c, &mut down, 4096, true);
            if up.read.len() == up.sent.len() && down.read.len() == down.sent.len() {
                break;
            }
            // Whatever did not fit goes now.
            if up.sent.len() < 100 {
                write(&c, &mut up, 100);
            }
            n.advance(200 * MS);
        }
        assert_eq!(up.read, up.sent, "client to server: {:?}", family.sockets());
        assert_eq!(
            down.read,
            down.sent,
            "server to client: {:?}",
            family.sockets()
        );
    }

    // Closed, and once time has passed, nothing is left.
    drop((c, s, l, l6, u, uc, accepted));
    n.drain();
    for _ in 0..400 {
        if family.socket_count() == 0 {
            break;
        }
        n.advance(1000 * MS);
    }
    assert_eq!(family.socket_count(), 0, "left: {:?}", family.sockets());
    assert_eq!(family.port_count(), 0, "ports left");
    assert_eq!(st.socket_count(), 0, "sockets left");
    !n.disturbed
}
