//! The UDP `Protocol`: a ksock datagram socket over a smoltcp UDP socket, made when the
//! socket is bound (explicitly, or by its first `connect` or `sendto`).

use crate::Shared;
use crate::addr::{from_ep, report, to_ep};
use crate::net::{Net, Owner};
use crate::opts;
use crate::ports::Proto;
use crate::tcp::{Bound, any, bind_addr, normalize, normalize_bind};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Buf;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use ksock::account::Charge;
use ksock::family::{Accepted, OpCtx, Progress, Protocol};
use ksock::opt::{OptVal, Options};
use ksock::types::{MsgFlags, Queues, RecvInfo, Shutdown};
use ksock::{Errno, Events, RecvSink, Result, SendBuf, SockAddr};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::IpListenEndpoint;

/// Why a datagram to a broadcast address is refused (`EACCES`, as Linux without
/// `SO_BROADCAST`, which ksock does not have).
const NO_BROADCAST: &str =
    "sending to a broadcast address needs SO_BROADCAST, which ksock does not offer";

/// Datagrams a socket's queues hold at most, whatever their size.
const MAX_DATAGRAMS: usize = 512;

/// A UDP socket.
pub struct UdpSock {
    shared: Arc<Shared>,
    v6: bool,
    v6only: bool,
    hops: opts::Hops,
    bound: Option<(Bound, SocketHandle)>,
    peer: Option<SocketAddr>,
    /// The source address a connect picked for a socket bound to the any address: its
    /// name from then on (Linux sets `inet_saddr` on connect).
    src: Option<IpAddr>,
    rd_shut: bool,
    wr_shut: bool,
}

impl UdpSock {
    pub(crate) fn new(shared: Arc<Shared>, v6: bool) -> UdpSock {
        UdpSock {
            shared,
            v6,
            v6only: false,
            hops: opts::Hops::default(),
            bound: None,
            peer: None,
            src: None,
            rd_shut: false,
            wr_shut: false,
        }
    }

    /// The largest payload one datagram can carry to `to` (no fragmentation).
    fn max_payload(net: &Net, to: &SocketAddr) -> usize {
        let ip = if to.is_ipv4() { 20 } else { 40 };
        net.mtu().saturating_sub(ip + 8)
    }

    fn do_bind(&mut self, net: &mut Net, cx: &mut OpCtx<'_>, a: SocketAddr) -> Result<()> {
        let b = bind_addr(net, cx, Proto::Udp, a, self.v6, self.v6only)?;
        let o = cx.opts();
        let rx = o.rcvbuf().max(64 * 1024 + 1024);
        let tx = o.sndbuf().max(64 * 1024 + 1024);
        // smoltcp allocates the buffers whole: the user pays for them now.
        let charge = match cx.account() {
            None => None,
            Some(a) => match Charge::take(a, rx + tx) {
                Ok(c) => Some(c),
                Err(e) => {
                    net.ports.release(Proto::Udp, b.addr.port(), b.id);
                    return Err(cx.fail(e, crate::tcp::NO_ROOM));
                }
            },
        };
        let mut s = udp::Socket::new(
            udp::PacketBuffer::new(
                alloc::vec![udp::PacketMetadata::EMPTY; MAX_DATAGRAMS],
                alloc::vec![0u8; rx],
            ),
            udp::PacketBuffer::new(
                alloc::vec![udp::PacketMetadata::EMPTY; MAX_DATAGRAMS],
                alloc::vec![0u8; tx],
            ),
        );
        let ep = IpListenEndpoint {
            addr: (!b.addr.ip().is_unspecified()).then(|| crate::addr::to_ip(b.addr.ip())),
            port: b.addr.port(),
        };
        if s.bind(ep).is_err() {
            net.ports.release(Proto::Udp, b.addr.port(), b.id);
            return Err(Errno::EINVAL);
        }
        let me = Arc::downgrade(cx.me());
        let h = net.add_udp(s, Owner::Udp(me), (Proto::Udp, b.addr.port(), b.id), charge);
        if let Some(e) = net.entries.get_mut(&h) {
            e.udp_peer = self.peer.map(to_ep);
        }
        self.bound = Some((b, h));
        Ok(())
    }

    fn ensure_bound(&mut self, net: &mut Net, cx: &mut OpCtx<'_>) -> Result<SocketHandle> {
        if let Some((_, h)) = self.bound {
            return Ok(h);
        }
        self.do_bind(net, cx, any(self.v6))?;
        self.bound.map(|(_, h)| h).ok_or(Errno::EINVAL)
    }
}

fn loopback_for(a: SocketAddr) -> SocketAddr {
    if !a.ip().is_unspecified() {
        return a;
    }
    let ip = match a.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, a.port())
}

impl Protocol for UdpSock {
    fn bind(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<()> {
        let a = normalize_bind(cx, addr, self.v6, self.v6only)?;
        let shared = self.shared.clone();
        shared.with(cx, |net, cx| self.do_bind(net, cx, a))
    }

    fn autobind(&mut self, cx: &mut OpCtx<'_>) -> Result<()> {
        let shared = self.shared.clone();
        shared.with(cx, |net, cx| self.ensure_bound(net, cx).map(|_| ()))
    }

    fn listen(&mut self, _cx: &mut OpCtx<'_>, _backlog: usize) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    fn connect(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        if matches!(addr, SockAddr::Unnamed) {
            // AF_UNSPEC: forget the peer (and the source address it chose).
            self.peer = None;
            self.src = None;
            if let Some((_, h)) = self.bound {
                self.shared.with(cx, |net, _| {
                    if let Some(e) = net.entries.get_mut(&h) {
                        e.udp_peer = None;
                    }
                });
            }
            return Ok(Progress::Done);
        }
        let to = loopback_for(normalize(addr, self.v6, self.v6only)?);
        let shared = self.shared.clone();
        shared
            .with(cx, |net, cx| {
                if !net.reaches(to.ip()) {
                    return Err(cx.fail(Errno::ENETUNREACH, "no interface reaches that address"));
                }
                if net.is_broadcast(to.ip()) {
                    return Err(cx.fail(Errno::EACCES, NO_BROADCAST));
                }
                let h = self.ensure_bound(net, cx)?;
                if let Some(e) = net.entries.get_mut(&h) {
                    e.udp_peer = Some(to_ep(to));
                    // A new peer: an error about the old one is stale.
                    e.error = None;
                }
                let any = self
                    .bound
                    .is_some_and(|(b, _)| b.addr.ip().is_unspecified());
                Ok(if any { net.source_for(to) } else { None })
            })
            .map(|src| self.src = src)?;
        self.peer = Some(to);
        Ok(Progress::Done)
    }

    fn accept(&mut self, _cx: &mut OpCtx<'_>) -> Result<Accepted> {
        Err(Errno::EOPNOTSUPP)
    }

    fn send(
        &mut self,
        cx: &mut OpCtx<'_>,
        mut src: SendBuf<'_>,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        let _ = flags;
        // Linux's inet_send_prepare binds an unbound socket before the send is looked at,
        // so even a send that fails leaves it with a port.
        let shared = self.shared.clone();
        shared.with(cx, |net, cx| self.ensure_bound(net, cx))?;
        if self.wr_shut {
            return Err(cx.fail(Errno::EPIPE, "the socket is shut for writing"));
        }
        let dst = match to {
            Some(a) if !matches!(a, SockAddr::Unnamed) => {
                loopback_for(normalize(a, self.v6, self.v6only)?)
            }
            _ => self.peer.ok_or_else(|| {
                cx.fail(
                    Errno::EDESTADDRREQ,
                    "no destination: the socket is not connected",
                )
            })?,
        };
        if dst.port() == 0 {
            return Err(Errno::EINVAL);
        }
        let len = src.remaining();
        let me = cx.me().clone();
        let shared = self.shared.clone();
        shared.with(cx, |net, cx| {
            if !net.reaches(dst.ip()) {
                return Err(cx.fail(Errno::ENETUNREACH, "no interface reaches that address"));
            }
            if net.is_broadcast(dst.ip()) {
                return Err(cx.fail(Errno::EACCES, NO_BROADCAST));
            }
            if len > Self::max_payload(net, &dst) {
                return Err(cx.fail(
                    Errno::EMSGSIZE,
                    "the datagram is larger than the link carries",
                ));
            }
            let h = self.ensure_bound(net, cx)?;
            let s = net.sockets.get_mut::<udp::Socket>(h);
            // smoltcp keeps one hop limit per socket: the destination's version picks it
            // (the datagram leaves in this pass of the interface).
            s.set_hop_limit(self.hops.for_peer(dst.is_ipv4()));
            let meta = udp::UdpMetadata::from(to_ep(dst));
            match s.send(len, meta) {
                Ok(buf) => {
                    let mut at = 0;
                    let copy = |b: &mut dyn Buf, out: &mut [u8], at: &mut usize| {
                        while b.has_remaining() && *at < out.len() {
                            let c = b.chunk();
                            let n = c.len().min(out.len() - *at);
                            out[*at..*at + n].copy_from_slice(&c[..n]);
                            b.advance(n);
                            *at += n;
                        }
                    };
                    match &mut src {
                        SendBuf::Copy(b) => copy(&mut **b, buf, &mut at),
                        SendBuf::Share(c) => copy(&mut **c, buf, &mut at),
                    }
                }
                Err(_) => {
                    cx.wait_on(&me, Events::OUT);
                    return Err(Errno::EAGAIN);
                }
            }
            net.drive(cx.deferred());
            Ok(len)
        })
    }

    fn recv(
        &mut self,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        let me = cx.me().clone();
        let Some((_, h)) = self.bound else {
            if self.rd_shut {
                return Ok(RecvInfo {
                    len: 0,
                    full_len: 0,
                    flags: MsgFlags::empty(),
                    from: SockAddr::Unnamed,
                    eof: true,
                });
            }
            // Nothing can arrive before a bind, but a bind may come (Linux waits too).
            cx.wait_on(&me, Events::IN);
            return Err(Errno::EAGAIN);
        };
        let v6 = self.v6;
        let rd_shut = self.rd_shut;
        self.shared.with(cx, |net, cx| {
            // A pending error comes before any datagram, once (as Linux's
            // __skb_try_recv_datagram).
            if let Some(err) = net.entries.get_mut(&h).and_then(|e| e.error.take()) {
                return Err(err);
            }
            let s = net.sockets.get_mut::<udp::Socket>(h);
            let got = if flags.contains(MsgFlags::PEEK) {
                s.peek().map(|(d, m)| (d, *m))
            } else {
                s.recv()
            };
            match got {
                Ok((data, meta)) => {
                    let n = data.len().min(dst.room());
                    dst.put_slice(&data[..n]);
                    let full = data.len();
                    Ok(RecvInfo {
                        len: n,
                        full_len: full,
                        flags: if n < full {
                            MsgFlags::TRUNC
                        } else {
                            MsgFlags::empty()
                        },
                        from: report(from_ep(meta.endpoint), v6),
                        eof: false,
                    })
                }
                Err(_) if rd_shut => Ok(RecvInfo {
                    len: 0,
                    full_len: 0,
                    flags: MsgFlags::empty(),
                    from: SockAddr::Unnamed,
                    eof: true,
                }),
                Err(_) => {
                    cx.wait_on(&me, Events::IN);
                    Err(Errno::EAGAIN)
                }
            }
        })
    }

    fn shutdown(&mut self, cx: &mut OpCtx<'_>, how: Shutdown) -> Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.rd_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.wr_shut = true;
        }
        let me = cx.me().clone();
        cx.notify(&me, Events::IN | Events::OUT | Events::RDHUP | Events::HUP);
        Ok(())
    }

    fn close(&mut self, cx: &mut OpCtx<'_>) {
        if let Some((_, h)) = self.bound.take() {
            self.shared.with(cx, |net, _| net.free(h));
        }
    }

    fn readiness(&self, _opts: &Options) -> Events {
        let mut ev = Events::empty();
        if self.rd_shut {
            ev |= Events::IN | Events::RDHUP;
        }
        if self.rd_shut && self.wr_shut {
            ev |= Events::HUP;
        }
        let Some((_, h)) = self.bound else {
            return ev | Events::OUT;
        };
        self.shared.peek(|n| {
            let s = n.sockets.get::<udp::Socket>(h);
            if s.can_recv() {
                ev |= Events::IN;
            }
            if n.entries.get(&h).is_some_and(|e| e.error.is_some()) {
                ev |= Events::IN | Events::ERR;
            }
            if s.can_send() {
                ev |= Events::OUT;
            }
            ev
        })
    }

    fn local_addr(&self) -> SockAddr {
        match self.bound {
            Some((b, _)) => {
                let ip = self.src.unwrap_or(b.addr.ip());
                report(SocketAddr::new(ip, b.addr.port()), self.v6)
            }
            None => SockAddr::Unnamed,
        }
    }

    fn peer_addr(&self) -> Option<SockAddr> {
        self.peer.map(|p| report(p, self.v6))
    }

    fn take_error(&mut self) -> Option<Errno> {
        let (_, h) = self.bound?;
        self.shared
            .peek_mut(|n| n.entries.get_mut(&h).and_then(|e| e.error.take()))
    }

    fn has_error(&self) -> bool {
        let Some((_, h)) = self.bound else {
            return false;
        };
        self.shared
            .peek(|n| n.entries.get(&h).is_some_and(|e| e.error.is_some()))
    }

    fn queues(&self) -> Queues {
        let Some((_, h)) = self.bound else {
            return Queues::default();
        };
        self.shared.peek(|n| {
            let s = n.sockets.get::<udp::Socket>(h);
            Queues {
                rx: s.recv_queue(),
                tx: s.send_queue(),
                ..Queues::default()
            }
        })
    }

    fn option_level(&self, _level: i32) -> Result<()> {
        // Checked by the get or the set: Linux's answer differs between them.
        Ok(())
    }

    fn get_option(&self, level: i32, name: i32) -> Result<OptVal> {
        opts::level(level, opts::IPPROTO_UDP, self.v6, true)?;
        if let Some(v) = self.hops.get(level, name) {
            return Ok(OptVal::Int(v));
        }
        Ok(OptVal::Int(match (level, name) {
            (opts::IPPROTO_IPV6, opts::IPV6_V6ONLY) => self.v6only as i32,
            _ => return Err(Errno::ENOPROTOOPT),
        }))
    }

    fn set_option(
        &mut self,
        _cx: &mut OpCtx<'_>,
        level: i32,
        name: i32,
        val: OptVal,
    ) -> Result<()> {
        opts::level(level, opts::IPPROTO_UDP, self.v6, false)?;
        let v = val.int()?;
        match (level, name) {
            // Applied at each send, for the destination's version.
            _ if self.hops.set(level, name, v)? => {}
            (opts::IPPROTO_IPV6, opts::IPV6_V6ONLY) => {
                if self.bound.is_some() {
                    return Err(Errno::EINVAL);
                }
                self.v6only = v != 0;
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn details(&self) -> Vec<(&'static str, String)> {
        let drops = match self.bound {
            Some((_, h)) => self
                .shared
                .peek(|n| n.entries.get(&h).map_or(0, |e| e.drops)),
            None => 0,
        };
        alloc::vec![("drops", drops.to_string())]
    }

    fn nread(&self) -> usize {
        let Some((_, h)) = self.bound else { return 0 };
        self.shared.peek_mut(|n| {
            let s = n.sockets.get_mut::<udp::Socket>(h);
            s.peek().map_or(0, |(d, _)| d.len())
        })
    }
}
