//! Rows for the inet family: ksock TCP and UDP (smoltcp 0.14 over the in-process loopback,
//! through the Rust API) against Linux TCP and UDP over 127.0.0.1 (system calls); ksock's
//! own layer against raw smoltcp in one thread; and the memory an idle TCP connection
//! costs on each.

use crate::Settings;
use crate::heap;
use crate::local;
use crate::row::{Measured, Row, Side, Target};
use crate::smol::{OneThread, RawPair, bulk_one_thread};
use crate::stats::Unit;
use crate::sys;
use crate::work::{Endpoint, Fd, one_way, ping_pong};
use ksock::opt::{OptVal, SockOpt};
use ksock::{Domain, Errno, MsgFlags, SockAddr, SockType, Socket, Stack};
use ksock_inet::InetFamily;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const GROUP: &str = "inet";

/// `IPPROTO_TCP`, `TCP_NODELAY`.
const NODELAY: SockOpt = SockOpt::Proto { level: 6, name: 1 };

fn kerr(what: &str) -> impl Fn(Errno) -> String + '_ {
    move |e| format!("{what}: {e:#}")
}

fn ioerr(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A stack with the inet family on its loopback (and a timer thread).
pub struct InetStack {
    /// The stack.
    pub stack: Stack,
    /// The family, for its counters.
    pub family: Arc<InetFamily>,
}

impl InetStack {
    /// A fresh stack with `ksock_inet::install`.
    pub fn new() -> Result<InetStack, String> {
        let stack = Stack::new();
        let family = ksock_inet::install(&stack).map_err(ioerr("ksock_inet::install"))?;
        Ok(InetStack { stack, family })
    }

    /// A TCP listener on `127.0.0.1`, an ephemeral port.
    pub fn listener(&self) -> Result<(Socket, SockAddr), String> {
        let l = self
            .stack
            .socket(Domain::INET, SockType::STREAM, 0)
            .map_err(kerr("socket"))?;
        l.bind(&SockAddr::Inet(loopback())).map_err(kerr("bind"))?;
        l.listen(ksock::SOMAXCONN).map_err(kerr("listen"))?;
        let at = l.local_addr().map_err(kerr("getsockname"))?;
        Ok((l, at))
    }

    /// Connects to `at` and accepts from `l`: (client, server).
    pub fn tcp_pair(
        &self,
        l: &Socket,
        at: &SockAddr,
        nodelay: bool,
    ) -> Result<(Socket, Socket), String> {
        let c = self
            .stack
            .socket(Domain::INET, SockType::STREAM, 0)
            .map_err(kerr("socket"))?;
        if nodelay {
            c.set_option(NODELAY, OptVal::Int(1))
                .map_err(kerr("TCP_NODELAY"))?;
        }
        c.connect(at).map_err(kerr("connect"))?;
        let (s, _) = l.accept().map_err(kerr("accept"))?;
        if nodelay {
            s.set_option(NODELAY, OptVal::Int(1))
                .map_err(kerr("TCP_NODELAY"))?;
        }
        Ok((c, s))
    }

    /// Two UDP sockets on `127.0.0.1`, each connected to the other.
    pub fn udp_pair(&self) -> Result<(Socket, Socket), String> {
        let mk = || -> Result<Socket, String> {
            let s = self
                .stack
                .socket(Domain::INET, SockType::DGRAM, 0)
                .map_err(kerr("socket"))?;
            s.bind(&SockAddr::Inet(loopback())).map_err(kerr("bind"))?;
            Ok(s)
        };
        let (a, b) = (mk()?, mk()?);
        a.connect(&b.local_addr().map_err(kerr("getsockname"))?)
            .map_err(kerr("connect"))?;
        b.connect(&a.local_addr().map_err(kerr("getsockname"))?)
            .map_err(kerr("connect"))?;
        Ok((a, b))
    }

    /// Polls the interface until every smoltcp socket is gone (connections finishing their
    /// close), or fails after a while.
    pub fn settle(&self) -> Result<(), String> {
        for _ in 0..500 {
            self.family.poll();
            if self.family.socket_count() == 0 {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(2));
        }
        Err(format!(
            "{} smoltcp sockets left over: {:?}",
            self.family.socket_count(),
            self.family.sockets().iter().take(4).collect::<Vec<_>>()
        ))
    }
}

/// The Linux side: a TCP listener on 127.0.0.1.
fn linux_listener() -> Result<(TcpListener, SocketAddr), String> {
    let l = TcpListener::bind(loopback()).map_err(ioerr("bind(127.0.0.1:0)"))?;
    let at = l.local_addr().map_err(ioerr("getsockname"))?;
    Ok((l, at))
}

/// Connects to `at` and accepts from `l`: (client, server).
fn linux_tcp_pair(
    l: &TcpListener,
    at: SocketAddr,
    nodelay: bool,
) -> Result<(TcpStream, TcpStream), String> {
    let c = TcpStream::connect(at).map_err(ioerr("connect"))?;
    let (s, _) = l.accept().map_err(ioerr("accept"))?;
    if nodelay {
        c.set_nodelay(true).map_err(ioerr("TCP_NODELAY"))?;
        s.set_nodelay(true).map_err(ioerr("TCP_NODELAY"))?;
    }
    Ok((c, s))
}

fn fds(c: TcpStream, s: TcpStream) -> (Fd, Fd) {
    (Fd(OwnedFd::from(c)), Fd(OwnedFd::from(s)))
}

fn linux_udp_pair() -> Result<(Fd, Fd), String> {
    let a = UdpSocket::bind(loopback()).map_err(ioerr("bind"))?;
    let b = UdpSocket::bind(loopback()).map_err(ioerr("bind"))?;
    a.connect(b.local_addr().map_err(ioerr("getsockname"))?)
        .map_err(ioerr("connect"))?;
    b.connect(a.local_addr().map_err(ioerr("getsockname"))?)
        .map_err(ioerr("connect"))?;
    Ok((Fd(OwnedFd::from(a)), Fd(OwnedFd::from(b))))
}

fn failed(id: &str, title: &str, unit: Unit, e: String) -> Row {
    Row::failed(GROUP, id, title, unit, e)
}

/// TCP bandwidth: a writer thread sends 64 KiB writes, a reader thread reads them.
fn bulk_row() -> Row {
    let (id, title) = ("inet.tcp.bulk64k", "TCP: bandwidth, 64 KiB writes");
    let size = 65536;
    let ks = match InetStack::new().and_then(|k| k.listener().map(|l| (k, l))) {
        Ok(x) => x,
        Err(e) => return failed(id, title, Unit::BytesPerSec, e),
    };
    let lx = match linux_listener() {
        Ok(x) => x,
        Err(e) => return failed(id, title, Unit::BytesPerSec, e),
    };
    Row::new(
        GROUP,
        id,
        title,
        Unit::BytesPerSec,
        Side::timed("ksock", move |n| {
            let (k, (l, at)) = &ks;
            let (c, s) = k.tcp_pair(l, at, false)?;
            one_way(&c, &s, size, n)
        }),
    )
    .against(Side::timed("Linux TCP", move |n| {
        let (c, s) = linux_tcp_pair(&lx.0, lx.1, false)?;
        let (c, s) = fds(c, s);
        one_way(&c, &s, size, n)
    }))
    .per_iter(size as f64)
    .target(Target::RatioAtLeast(1.0))
    .note(
        "a writer and a reader thread, blocking calls, a fresh connection per sample; ksock: \
         212 992-byte buffers each way (SO_SNDBUF/SO_RCVBUF defaults), loopback MTU 65535; \
         Linux: its defaults (buffer autotuning, lo MTU 65536)",
    )
}

/// TCP request/response: 64 B there and back between two threads, TCP_NODELAY on both.
fn rtt_row() -> Row {
    let (id, title) = ("inet.tcp.rtt64", "TCP: ping-pong round trip, 64 B");
    let ks = match InetStack::new().and_then(|k| k.listener().map(|l| (k, l))) {
        Ok(x) => x,
        Err(e) => return failed(id, title, Unit::Nanos, e),
    };
    let lx = match linux_listener() {
        Ok(x) => x,
        Err(e) => return failed(id, title, Unit::Nanos, e),
    };
    Row::new(
        GROUP,
        id,
        title,
        Unit::Nanos,
        Side::timed("ksock", move |n| {
            let (k, (l, at)) = &ks;
            let (c, s) = k.tcp_pair(l, at, true)?;
            ping_pong(&c, &s, 64, n)
        }),
    )
    .against(Side::timed("Linux TCP", move |n| {
        let (c, s) = linux_tcp_pair(&lx.0, lx.1, true)?;
        let (c, s) = fds(c, s);
        ping_pong(&c, &s, 64, n)
    }))
    .target(Target::RatioAtMost(0.5))
    .note("two threads, blocking calls, TCP_NODELAY on all four sockets")
}

/// connect + accept + close in one thread.
fn connect_row() -> Row {
    let (id, title) = ("inet.tcp.connect", "TCP: connect+accept+close");
    let ks = match InetStack::new().and_then(|k| k.listener().map(|l| (k, l))) {
        Ok(x) => x,
        Err(e) => return failed(id, title, Unit::OpsPerSec, e),
    };
    let lx = match linux_listener() {
        Ok(x) => x,
        Err(e) => return failed(id, title, Unit::OpsPerSec, e),
    };
    Row::new(
        GROUP,
        id,
        title,
        Unit::OpsPerSec,
        Side::timed("ksock", move |n| {
            let (k, (l, at)) = &ks;
            let t0 = Instant::now();
            for _ in 0..n {
                let (c, s) = k.tcp_pair(l, at, false)?;
                drop(s);
                drop(c);
            }
            let t = t0.elapsed();
            if k.family.socket_count() != 0 {
                return Err(format!(
                    "{} smoltcp sockets left after closing: {:?}",
                    k.family.socket_count(),
                    k.family.sockets().iter().take(4).collect::<Vec<_>>()
                ));
            }
            Ok(t)
        }),
    )
    .against(Side::timed("Linux TCP", move |n| {
        let t0 = Instant::now();
        for _ in 0..n {
            let (c, s) = linux_tcp_pair(&lx.0, lx.1, false)?;
            drop(s);
            drop(c);
        }
        Ok(t0.elapsed())
    }))
    .target(Target::RatioAtLeast(2.0))
    .note(
        "one thread: socket, connect to a listener on 127.0.0.1, accept, close the accepted \
         socket then the client (a FIN each way); Linux keeps the server end in TIME-WAIT, \
         ksock keeps no TIME-WAIT",
    )
}

/// Datagrams, each 64 B, from a sender thread to a receiver thread for `dur`: the rate at
/// which they are received. The sender then repeats an end marker until the receiver has
/// it (a full queue may drop it), and the receiver's time runs until it arrives, so the
/// rate counts what the receiver drained after the sender stopped.
pub fn udp_rate<E: Endpoint>(tx: &E, rx: &E, dur: Duration) -> Result<Measured, String> {
    const END: u8 = 0xee;
    // The end markers of an earlier sample on the same pair may still be queued (the
    // sender repeats its marker until the receiver has one): each sample's carry its own
    // number, and the receiver skips the others.
    static SAMPLE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    let nonce = SAMPLE.fetch_add(1, Ordering::Relaxed);
    let start = Barrier::new(2);
    let done = AtomicBool::new(false);
    thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut buf = [0u8; 64];
            start.wait();
            let t0 = Instant::now();
            let mut got = 0u64;
            let r = (|| -> Result<(), String> {
                loop {
                    let k = rx.recv(&mut buf)?;
                    if k == 0 {
                        return Err("empty datagram".to_string());
                    }
                    if buf[0] == END {
                        if buf[1] == nonce {
                            return Ok(());
                        }
                        continue;
                    }
                    got += 1;
                }
            })();
            done.store(true, Ordering::Release);
            r.map(|()| (got, t0.elapsed()))
        });
        let msg = [0x5au8; 64];
        let mut end = [END; 64];
        end[1] = nonce;
        start.wait();
        let t0 = Instant::now();
        let mut sent = 0u64;
        let r = (|| -> Result<Duration, String> {
            // At least one batch, however late this thread got a CPU: a sample never
            // measures nothing.
            loop {
                for _ in 0..64 {
                    tx.send(&msg)?;
                }
                sent += 64;
                if t0.elapsed() >= dur {
                    break;
                }
            }
            let t = t0.elapsed();
            while !done.load(Ordering::Acquire) {
                tx.send(&end)?;
                thread::sleep(Duration::from_micros(20));
            }
            Ok(t)
        })();
        if r.is_err() {
            // Unblock the receiver: one more marker, then hang up.
            let _ = tx.send(&end);
            rx.hang_up();
        }
        let received = h
            .join()
            .map_err(|_| "benchmark thread panicked".to_string())?;
        let send_time = r?;
        let (got, t) = received?;
        let rate = got as f64 / t.as_secs_f64().max(1e-9);
        let lost = 1.0 - got as f64 / sent.max(1) as f64;
        Ok(Measured {
            value: rate,
            extras: vec![(
                "datagrams sent per second".into(),
                Unit::OpsPerSec,
                sent as f64 / send_time.as_secs_f64().max(1e-9),
            )],
            detail: Some(format!(
                "{got} of {sent} datagrams received ({:.1}% dropped for a full receive queue)",
                lost * 100.0
            )),
        })
    })
}

fn udp_row(s: &Settings) -> Row {
    let (id, title) = ("inet.udp.msg64", "UDP: one-way datagrams, 64 B, received");
    let ks = match InetStack::new() {
        Ok(x) => x,
        Err(e) => return failed(id, title, Unit::OpsPerSec, e),
    };
    let dur = s.sample_time;
    // The first sample of each side is preceded by a short one, a warm-up.
    let mut kwarm = false;
    let mut lwarm = false;
    Row::new(
        GROUP,
        id,
        title,
        Unit::OpsPerSec,
        Side::value("ksock", move || {
            let (a, b) = ks.udp_pair()?;
            if !std::mem::replace(&mut kwarm, true) {
                udp_rate(&a, &b, dur / 4)?;
            }
            udp_rate(&a, &b, dur)
        }),
    )
    .against(Side::value("Linux UDP", move || {
        let (a, b) = linux_udp_pair()?;
        if !std::mem::replace(&mut lwarm, true) {
            udp_rate(&a, &b, dur / 4)?;
        }
        udp_rate(&a, &b, dur)
    }))
    .note(
        "a sender and a receiver thread, blocking calls, connected sockets; the rate of \
         datagrams received (a full receive queue drops the rest, on both sides)",
    )
    .target(Target::RatioAtLeast(2.0))
}

/// A ksock TCP connection used from one thread with `MSG_DONTWAIT`.
struct KsockOneThread {
    tx: Socket,
    rx: Socket,
}

impl OneThread for KsockOneThread {
    fn try_send(&mut self, buf: &[u8]) -> Result<usize, String> {
        match self.tx.sendmsg(&mut &buf[..], None, MsgFlags::DONTWAIT) {
            Ok(n) => Ok(n),
            Err(e) if e == Errno::EAGAIN => Ok(0),
            Err(e) => Err(format!("send: {e:#}")),
        }
    }

    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        let mut s: &mut [u8] = buf;
        match self.rx.recvmsg(&mut s, MsgFlags::DONTWAIT) {
            Ok(i) if i.eof => Err("end of file".into()),
            Ok(i) => Ok(i.len),
            Err(e) if e == Errno::EAGAIN => Ok(0),
            Err(e) => Err(format!("recv: {e:#}")),
        }
    }
}

/// ksock's own cost: the same one-thread transfer through ksock sockets and through raw
/// smoltcp sockets set up alike, with 64 KiB writes (`bulk`) or 64 B writes (the cost of
/// one small send and its receive).
fn layer_row(bulk: bool) -> Row {
    let (id, title, unit, size) = if bulk {
        (
            "inet.layer.bulk64k",
            "TCP, one thread: 64 KiB writes, ksock vs raw smoltcp",
            Unit::BytesPerSec,
            65536,
        )
    } else {
        (
            "inet.layer.msg64",
            "TCP, one thread: 64 B write+read, ksock vs raw smoltcp",
            Unit::Nanos,
            64,
        )
    };
    // Small writes go at once (Nagle would too here: each is acknowledged before the next).
    let nodelay = !bulk;
    let ks = match InetStack::new().and_then(|k| k.listener().map(|l| (k, l))) {
        Ok(x) => x,
        Err(e) => return failed(id, title, unit, e),
    };
    let row = Row::new(
        GROUP,
        id,
        title,
        unit,
        Side::timed("ksock", move |n| {
            let (k, (l, at)) = &ks;
            let (tx, rx) = k.tcp_pair(l, at, nodelay)?;
            bulk_one_thread(&mut KsockOneThread { tx, rx }, size, n)
        }),
    )
    .against(Side::timed("raw smoltcp", move |n| {
        let mut p = RawPair::connect(nodelay)?;
        bulk_one_thread(&mut p, size, n)
    }));
    if !bulk {
        // At least 0.9x raw smoltcp's rate is at most 1/0.9 of its cost per message.
        return row.target(Target::RatioAtMost(1.0 / 0.9)).note(
            "as inet.layer.bulk64k with 64 B writes and TCP_NODELAY: the cost of one small \
             send and the receive that takes it, in one thread",
        );
    }
    row.per_iter(size as f64)
        .target(Target::RatioAtLeast(0.9))
        .note(
            "one thread alternates a nonblocking send of what is left of a 64 KiB write and a \
         nonblocking receive into 64 KiB; ksock: two ksock sockets with MSG_DONTWAIT; raw \
         smoltcp 0.14: one Interface over smoltcp::phy::Loopback, two tcp::Sockets set up as \
         ksock-inet sets up its connections (212 992-byte buffers, Nagle on, no delayed ACK, \
         Reno, timestamps), the interface run until idle after every send and every receive \
         that moved bytes, as ksock-inet runs it",
        )
}

/// Holds `n` idle ksock TCP connections (both ends) and measures what they cost.
fn ksock_memory(n: usize) -> Result<Measured, String> {
    heap::trim();
    let k = InetStack::new()?;
    let (l, at) = k.listener()?;
    // Warm the interface's tables with one connection first.
    drop(k.tcp_pair(&l, &at, false)?);
    k.settle()?;
    let mut conns: Vec<(Socket, Socket)> = local::pair_vec(n);
    let rss0 = sys::rss_bytes()?;
    let heap0 = heap::heap_in_use();
    let (made, trace) = heap::trace(|| {
        for _ in 0..n {
            conns.push(k.tcp_pair(&l, &at, false)?);
        }
        Ok::<(), String>(())
    });
    made?;
    let rss1 = sys::rss_bytes()?;
    let heap1 = heap::heap_in_use();
    if k.family.socket_count() != 2 * n {
        return Err(format!(
            "{} smoltcp sockets for {n} connections",
            k.family.socket_count()
        ));
    }
    let m = heap::per_item(
        "connection",
        n,
        (rss0, rss1),
        (heap0, heap1),
        trace.as_ref(),
    );
    drop(conns);
    drop(l);
    k.settle()?;
    drop(k);
    heap::trim();
    Ok(m)
}

/// The `TCP: ... mem N` field of `/proc/net/sockstat`: pages charged to TCP buffers.
pub fn parse_sockstat_tcp_mem(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == "mem" {
            return it.next()?.parse().ok();
        }
    }
    None
}

fn sockstat_tcp_pages() -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/net/sockstat")
        .map_err(|e| format!("reading /proc/net/sockstat: {e}"))?;
    parse_sockstat_tcp_mem(&text).ok_or_else(|| "/proc/net/sockstat has no TCP mem".into())
}

/// Holds `n` idle Linux TCP connections over 127.0.0.1 (both ends) and measures the
/// kernel's slab growth and the pages `/proc/net/sockstat` charges to TCP.
fn linux_memory(n: usize) -> Result<Measured, String> {
    let limit = sys::raise_nofile(2 * n as u64 + 256)?;
    if limit < 2 * n as u64 + 64 {
        return Err(format!(
            "{n} connections need {} descriptors; the limit is {limit}",
            2 * n + 64
        ));
    }
    let (l, at) = linux_listener()?;
    drop(linux_tcp_pair(&l, at, false)?);
    let mut conns: Vec<(TcpStream, TcpStream)> = Vec::with_capacity(n);
    let caches0 = sys::slabinfo();
    let slab0 = sys::slab_bytes()?;
    let pages0 = sockstat_tcp_pages()?;
    let made = (|| {
        for _ in 0..n {
            conns.push(linux_tcp_pair(&l, at, false)?);
        }
        Ok::<(), String>(())
    })();
    let slab1 = sys::slab_bytes()?;
    let pages1 = sockstat_tcp_pages()?;
    let caches1 = sys::slabinfo();
    // Reset rather than close, so that no TIME-WAIT sockets linger into the next sample.
    for (c, _) in &conns {
        let _ = nix::sys::socket::setsockopt(
            c,
            nix::sys::socket::sockopt::Linger,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        );
    }
    drop(conns);
    // Closed sockets are freed after an RCU grace period.
    thread::sleep(Duration::from_millis(50));
    made?;
    let page = sys::page_size() as f64;
    let buffers = (pages1 as f64 - pages0 as f64) * page / n as f64;
    let slab = (slab1 as f64 - slab0 as f64) / n as f64;
    let mut m = Measured {
        value: slab + buffers.max(0.0),
        extras: vec![
            (
                "slab growth per connection (/proc/meminfo Slab)".into(),
                Unit::Bytes,
                slab,
            ),
            (
                "TCP buffer pages per connection (/proc/net/sockstat TCP mem)".into(),
                Unit::Bytes,
                buffers,
            ),
        ],
        detail: None,
    };
    if let (Some(a), Some(b)) = (caches0, caches1) {
        let growth = sys::slab_growth(&a, &b);
        let top: Vec<String> = growth
            .iter()
            .filter(|g| g.1 as f64 / n as f64 >= 32.0)
            .map(|(name, b)| format!("{name} {:.0} B", *b as f64 / n as f64))
            .collect();
        m.detail = Some(format!(
            "slab caches grown per connection: {}",
            top.join(", ")
        ));
    }
    Ok(m)
}

fn memory_row(s: &Settings) -> Row {
    let n = s.conns;
    Row::new(
        GROUP,
        "inet.tcp.memory",
        "TCP: memory per idle connection (both ends)",
        Unit::Bytes,
        Side::value("ksock", move || ksock_memory(n)),
    )
    .against(Side::value("Linux TCP", move || linux_memory(n)))
    .note(format!(
        "{n} connections over 127.0.0.1 held at once, each counted with both its ends; \
         ksock: growth of the process's resident set (RSS); Linux: growth of the Slab line \
         of /proc/meminfo plus the TCP mem pages of /proc/net/sockstat (file descriptor \
         tables not included)"
    ))
}

/// The `inet` group.
pub fn rows(s: &Settings) -> Vec<Row> {
    vec![
        bulk_row(),
        rtt_row(),
        connect_row(),
        udp_row(s),
        layer_row(true),
        layer_row(false),
        memory_row(s),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Sampling, run_row};
    use crate::stats::Summary;

    #[test]
    fn every_row_runs_once_and_moves_its_bytes() {
        // Not a timing test: each side runs once, briefly; a probe fails if its bytes do
        // not all arrive (or its connections do not all close).
        let s = Settings {
            runs: 1,
            sample_time: Duration::from_millis(2),
            pairs: 1,
            conns: 20,
            quick: true,
        };
        let sampling = Sampling {
            runs: 1,
            sample_time: s.sample_time,
            only_subject: None,
        };
        let rows = rows(&s);
        assert_eq!(rows.len(), 7);
        for row in rows {
            let id = row.id.clone();
            let r = run_row(row, &sampling);
            assert_eq!(r.error, None, "{id}");
            // Memory growth over 20 connections may round to nothing; rates may not.
            let ok = |x: Summary| x.median.is_finite() && (r.unit == Unit::Bytes || x.median > 0.0);
            assert!(r.subject.summary.is_some_and(ok), "{id}: {:?}", r.subject);
            let reference = r.reference.as_ref().and_then(|x| x.summary);
            assert!(reference.is_some_and(ok), "{id}");
        }
    }

    #[test]
    fn sockstat_tcp_mem() {
        let text = "sockets: used 15\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 40\n\
                    UDP: inuse 0 mem 0\n";
        assert_eq!(parse_sockstat_tcp_mem(text), Some(40));
        assert_eq!(parse_sockstat_tcp_mem("UDP: inuse 0 mem 3\n"), None);
        assert_eq!(parse_sockstat_tcp_mem("TCP: inuse 1 mem\n"), None);
    }
}
