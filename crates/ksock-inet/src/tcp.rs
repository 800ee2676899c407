//! The TCP `Protocol`: a ksock stream socket over smoltcp TCP sockets.
//!
//! The socket's own state (under its lock) is which stage it is in: unconnected (with its
//! binding), listening (its accept queue lives in the interface, keyed by the socket's id),
//! or a connection (a smoltcp socket handle). What the interface learns about a connection
//! (a reset, the peer's FIN, the handshake's end) is kept in its entry under the interface
//! lock, so the interface never needs the socket's lock.

use crate::addr::{from_ep, report, unmap};
use crate::net::{Listener, Net, Owner, Setup};
use crate::ports::{BindError, BindId, Cover, Proto};
use crate::{Shared, opts};
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Buf;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use ksock::account::Charge;
use ksock::family::{Accepted, OpCtx, Progress, Protocol};
use ksock::opt::{OptVal, Options, SockOpt};
use ksock::types::{MsgFlags, Queues, RecvInfo, Shutdown};
use ksock::{
    Domain, Errno, Events, RecvSink, Result, SendBuf, SockAddr, SockRef, SockType, SocketCore,
};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::IpListenEndpoint;

/// Per-socket TCP settings (the `IPPROTO_TCP`, `IPPROTO_IP` and `IPPROTO_IPV6` options).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cfg {
    pub nodelay: bool,
    pub keepidle: u32,
    pub keepintvl: u32,
    pub keepcnt: u32,
    pub hops: opts::Hops,
    pub v6only: bool,
}

impl Default for Cfg {
    fn default() -> Self {
        // Linux's defaults: tcp_keepalive_time 7200 s, _intvl 75 s, _probes 9.
        Cfg {
            nodelay: false,
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            hops: opts::Hops::default(),
            v6only: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Bound {
    pub addr: SocketAddr,
    pub id: BindId,
}

enum St {
    /// Not connected; bound or not.
    Init(Option<Bound>),
    /// Listening (the queue is `Net::listeners[key]`, the key being the socket's id).
    Listening(Bound, u64),
    /// A connection.
    Conn(SocketHandle),
    /// Closed.
    Done,
}

/// A TCP socket.
pub struct TcpSock {
    shared: Arc<Shared>,
    v6: bool,
    cfg: Cfg,
    st: St,
}

/// The cover of a bind address for a socket of `v6` domain.
pub(crate) fn cover_of(ip: IpAddr, v6: bool, v6only: bool) -> Cover {
    if ip.is_unspecified() {
        if v6 && ip.is_ipv6() {
            Cover::Any6 { v6only }
        } else {
            Cover::Any4
        }
    } else {
        Cover::One(ip)
    }
}

/// The address an `AF_INET6` or `AF_INET` socket means by `a`: IPv4-mapped addresses are
/// IPv4 on a dual-stack socket; a socket of one version cannot use the other.
pub(crate) fn normalize(a: &SockAddr, v6: bool, v6only: bool) -> Result<SocketAddr> {
    let SockAddr::Inet(a) = a else {
        return Err(Errno::EAFNOSUPPORT);
    };
    let a = if v6 { unmap(*a) } else { *a };
    match (a.ip(), v6) {
        (IpAddr::V6(_), false) => Err(Errno::EAFNOSUPPORT),
        (IpAddr::V4(_), true) if v6only => Err(Errno::ENETUNREACH),
        _ => Ok(a),
    }
}

/// The address a `bind` of `a` means ([`normalize`]); an IPv4-mapped address on an
/// `IPV6_V6ONLY` socket is `EINVAL` there (Linux's `inet6_bind`), where a connect or send
/// to one is `ENETUNREACH`.
pub(crate) fn normalize_bind(
    cx: &mut OpCtx<'_>,
    a: &SockAddr,
    v6: bool,
    v6only: bool,
) -> Result<SocketAddr> {
    normalize(a, v6, v6only).map_err(|e| {
        if e == Errno::ENETUNREACH {
            cx.fail(
                Errno::EINVAL,
                "an IPV6_V6ONLY socket cannot bind an IPv4-mapped address",
            )
        } else {
            e
        }
    })
}

/// Binds `a` (port 0: an ephemeral port) in the table, with the checks every bind makes.
pub(crate) fn bind_addr(
    net: &mut Net,
    cx: &mut OpCtx<'_>,
    proto: Proto,
    a: SocketAddr,
    v6: bool,
    v6only: bool,
) -> Result<Bound> {
    if !a.ip().is_unspecified() && !net.has_addr(a.ip()) {
        return Err(cx.fail(Errno::EADDRNOTAVAIL, "no interface has that address"));
    }
    // The name keeps neither a flow label nor a scope id (Linux's `inet6_getname`
    // reports 0 for both but on a link-local address bound to a device).
    let a = SocketAddr::new(a.ip(), a.port());
    let cover = cover_of(a.ip(), v6, v6only);
    let reuse = cx.opts().reuseaddr();
    if a.port() == 0 {
        return match net.ports.bind_ephemeral(proto, cover, reuse) {
            Ok((port, id)) => Ok(Bound {
                addr: SocketAddr::new(a.ip(), port),
                id,
            }),
            Err(_) => Err(cx.fail(Errno::EADDRINUSE, "every ephemeral port is in use")),
        };
    }
    if a.port() < 1024 && cx.cred().is_some_and(|c| c.uid != 0) {
        return Err(cx.fail(Errno::EACCES, "ports below 1024 need root"));
    }
    match net.ports.bind(proto, a.port(), cover, reuse) {
        Ok(id) => Ok(Bound { addr: a, id }),
        Err(BindError::InUse | BindError::Exhausted) => Err(cx.fail(
            Errno::EADDRINUSE,
            "another socket holds that port on an overlapping address",
        )),
    }
}

/// The wildcard address of a socket's domain.
pub(crate) fn any(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    }
}

/// Copies as much of `src` as fits into the socket's send buffer.
fn queue(s: &mut tcp::Socket<'_>, src: &mut dyn Buf) -> usize {
    let mut sent = 0;
    while src.has_remaining() && s.can_send() {
        let n = s
            .send(|room| {
                let chunk = src.chunk();
                let n = chunk.len().min(room.len());
                room[..n].copy_from_slice(&chunk[..n]);
                (n, n)
            })
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        src.advance(n);
        sent += n;
    }
    sent
}

impl TcpSock {
    pub(crate) fn new(shared: Arc<Shared>, v6: bool) -> TcpSock {
        TcpSock {
            shared,
            v6,
            cfg: Cfg::default(),
            st: St::Init(None),
        }
    }

    fn setup(&self, o: &Options) -> Setup {
        let keepalive = o
            .keepalive()
            .then(|| Duration::from_secs(u64::from(self.cfg.keepidle)));
        let timeout = keepalive.map(|idle| {
            idle + Duration::from_secs(u64::from(self.cfg.keepintvl) * u64::from(self.cfg.keepcnt))
        });
        Setup {
            rcvbuf: o.rcvbuf(),
            sndbuf: o.sndbuf(),
            nodelay: self.cfg.nodelay,
            keepalive,
            timeout,
            hops: self.cfg.hops,
        }
    }

    /// Applies changed settings to a live connection or a listener.
    fn apply(&self, net: &mut Net, o: &Options, key: u64) {
        let setup = self.setup(o);
        match self.st {
            St::Conn(h) => {
                let s = net.sockets.get_mut::<tcp::Socket>(h);
                s.set_nagle_enabled(!setup.nodelay);
                s.set_keep_alive(setup.keepalive);
                let v4 = matches!(
                    s.remote_endpoint().map(|e| e.addr),
                    Some(smoltcp::wire::IpAddress::Ipv4(_))
                );
                s.set_hop_limit(setup.hops.for_peer(v4));
                if let Some(e) = net.entries.get_mut(&h) {
                    e.timeout = setup.timeout;
                    if !e.connecting {
                        s.set_timeout(setup.timeout);
                    }
                }
            }
            St::Listening(..) => {
                if let Some(l) = net.listeners.get_mut(&key) {
                    l.setup = setup;
                }
            }
            _ => {}
        }
    }

    fn conn_state(&self) -> Option<tcp::State> {
        let St::Conn(h) = self.st else { return None };
        Some(
            self.shared
                .peek(|n| n.sockets.get::<tcp::Socket>(h).state()),
        )
    }
}

impl Protocol for TcpSock {
    fn bind(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<()> {
        let a = normalize_bind(cx, addr, self.v6, self.cfg.v6only)?;
        let (v6, v6only) = (self.v6, self.cfg.v6only);
        let b = self
            .shared
            .with(cx, |net, cx| bind_addr(net, cx, Proto::Tcp, a, v6, v6only))?;
        self.st = St::Init(Some(b));
        Ok(())
    }

    fn autobind(&mut self, cx: &mut OpCtx<'_>) -> Result<()> {
        let (v6, v6only) = (self.v6, self.cfg.v6only);
        let b = self.shared.with(cx, |net, cx| {
            bind_addr(net, cx, Proto::Tcp, any(v6), v6, v6only)
        })?;
        self.st = St::Init(Some(b));
        Ok(())
    }

    fn listen_binds(&self) -> bool {
        true
    }

    fn listener_connect_errno(&self) -> Errno {
        Errno::EISCONN
    }

    fn listen(&mut self, cx: &mut OpCtx<'_>, backlog: usize) -> Result<()> {
        let key = cx.me().id();
        let setup = self.setup(cx.opts());
        let me = cx.me().clone();
        match self.st {
            St::Listening(..) => self.shared.with(cx, |net, _| {
                if let Some(l) = net.listeners.get_mut(&key) {
                    l.backlog = backlog;
                }
                Ok(())
            }),
            St::Init(Some(b)) => {
                let (v6, v6only) = (self.v6, self.cfg.v6only);
                self.shared.with(cx, |net, cx| {
                    net.ports
                        .set_listening(Proto::Tcp, b.addr.port(), b.id, true)
                        .map_err(|_| {
                            cx.fail(Errno::EADDRINUSE, "another socket listens on that port")
                        })?;
                    net.add_listener(
                        key,
                        Listener {
                            sock: Arc::downgrade(&me),
                            port: b.addr.port(),
                            cover: cover_of(b.addr.ip(), v6, v6only),
                            backlog,
                            pending: Vec::new(),
                            ready: VecDeque::new(),
                            setup,
                            overflows: 0,
                            account: cx.account().cloned(),
                        },
                    );
                    Ok(())
                })?;
                self.st = St::Listening(b, key);
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn connect(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        if let St::Conn(_) = self.st {
            // A connect after a failed one on the same socket (Linux allows it once the
            // socket is back in TCP_CLOSE): forget the old connection first.
            self.close_conn(cx, true);
        }
        let mut to = normalize(addr, self.v6, self.cfg.v6only)?;
        if to.port() == 0 {
            return Err(cx.fail(Errno::ECONNREFUSED, "port 0 takes no connections"));
        }
        if to.ip().is_unspecified() {
            // Linux connects to the loopback for the unspecified address.
            to.set_ip(match to.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let me = cx.me().clone();
        let setup = self.setup(cx.opts());
        let (v6, v6only) = (self.v6, self.cfg.v6only);
        let bound = match self.st {
            St::Init(b) => b,
            _ => None,
        };
        let (h, state) = self.shared.with(cx, |net, cx| {
            if !net.reaches(to.ip()) || net.source_for(to).is_none() {
                return Err(cx.fail(Errno::ENETUNREACH, "no interface reaches that address"));
            }
            if net.is_broadcast(to.ip()) {
                // Linux's `tcp_v4_connect` refuses a broadcast route.
                return Err(cx.fail(
                    Errno::ENETUNREACH,
                    "a broadcast address takes no connections",
                ));
            }
            let b = match bound {
                Some(b) => b,
                None => bind_addr(net, cx, Proto::Tcp, any(v6), v6, v6only)?,
            };
            // smoltcp allocates the buffers whole: the user pays for them now.
            let charge = match cx.account() {
                None => None,
                Some(a) => match Charge::take(a, setup.rcvbuf + setup.sndbuf) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        if bound.is_none() {
                            net.ports.release(Proto::Tcp, b.addr.port(), b.id);
                        }
                        return Err(cx.fail(e, NO_ROOM));
                    }
                },
            };
            let mut s = net.tcp_socket(&setup, to.is_ipv4());
            let local = IpListenEndpoint {
                addr: (!b.addr.ip().is_unspecified()).then(|| crate::addr::to_ip(b.addr.ip())),
                port: b.addr.port(),
            };
            if s.connect(net.iface.context(), Net::ep(to), local).is_err() {
                if bound.is_none() {
                    net.ports.release(Proto::Tcp, b.addr.port(), b.id);
                }
                return Err(cx.fail(Errno::ENETUNREACH, "no route to that address"));
            }
            let h = net.add_tcp(
                s,
                Owner::Conn(Arc::downgrade(&me)),
                Some((Proto::Tcp, b.addr.port(), b.id)),
                charge,
            );
            if let Some(e) = net.entries.get_mut(&h) {
                e.connecting = true;
                e.timeout = setup.timeout;
            }
            net.index(h);
            net.drive(cx.deferred());
            let st = net.sockets.get::<tcp::Socket>(h);
            let rst = net
                .entries
                .get(&h)
                .map_or((false, false), |e| (e.rst, e.netdown));
            Ok((h, (st.state(), rst)))
        })?;
        self.st = St::Conn(h);
        // The loopback may have ended the handshake inside this call (the driving above
        // queued its outcome, `Deferred::connect_done`). A caller that does not wait still
        // gets EINPROGRESS, and the outcome right after, as Linux answers every nonblocking
        // TCP connect; one that waits gets it now.
        let waits = cx.caller_waits();
        match state {
            (tcp::State::SynSent, _) => Ok(Progress::InProgress),
            (tcp::State::Closed, rst) if !waits => {
                self.shared.with(cx, |net, cx| {
                    let Some(e) = net.entries.get_mut(&h) else {
                        return;
                    };
                    if core::mem::replace(&mut e.connecting, false) {
                        // Not told by the interface yet: tell it now.
                        e.ended = true;
                        let (err, why) = refusal(rst);
                        cx.deferred().connect_done(&me, Err(err), Some(why));
                    }
                });
                Ok(Progress::InProgress)
            }
            (tcp::State::Closed, rst) => {
                self.close_conn(cx, false);
                self.st = St::Init(None);
                let (err, why) = refusal(rst);
                Err(cx.fail(err, why))
            }
            _ => {
                self.shared.with(cx, |net, cx| {
                    if let Some(e) = net.entries.get_mut(&h)
                        && core::mem::replace(&mut e.connecting, false)
                        && !waits
                    {
                        cx.deferred().connect_done(&me, Ok(()), None);
                    }
                    let timeout = net.entries.get(&h).and_then(|e| e.timeout);
                    net.sockets.get_mut::<tcp::Socket>(h).set_timeout(timeout);
                });
                Ok(if waits {
                    Progress::Done
                } else {
                    Progress::InProgress
                })
            }
        }
    }

    fn accept(&mut self, cx: &mut OpCtx<'_>) -> Result<Accepted> {
        let St::Listening(b, key) = self.st else {
            return Err(Errno::EINVAL);
        };
        let shared = self.shared.clone();
        let (v6, cfg, reuse) = (self.v6, self.cfg, cx.opts().reuseaddr());
        // The accepted socket is a clone of the listener (Linux's `sk_clone_lock`): its
        // options, buffers, keep-alive and linger included.
        let opts = *cx.opts();
        let me = cx.me().clone();
        self.shared.with(cx, |net, cx| {
            let Some(l) = net.listeners.get_mut(&key) else {
                return Err(Errno::EINVAL);
            };
            let Some(h) = l.ready.pop_front() else {
                cx.wait_on(&me, Events::IN);
                return Err(Errno::EAGAIN);
            };
            let (peer, local, gone) = {
                let s = net.sockets.get::<tcp::Socket>(h);
                (
                    s.remote_endpoint().map(from_ep),
                    s.local_endpoint().map(from_ep),
                    !s.may_recv() || s.state() == tcp::State::CloseWait,
                )
            };
            let mut t = TcpSock::new(shared, v6);
            t.cfg = cfg;
            t.st = St::Conn(h);
            let domain = if v6 { Domain::INET6 } else { Domain::INET };
            let sock =
                SocketCore::new_with_options(me.stack(), domain, SockType::STREAM, 6, t, opts);
            let port = local.map_or(b.addr.port(), |a| a.port());
            let cover = Cover::One(local.map_or(b.addr.ip(), |a| a.ip()));
            let id = net.ports.bind_accepted(Proto::Tcp, port, cover, reuse);
            if let Some(e) = net.entries.get_mut(&h) {
                let weak: SockRef = sock.clone();
                e.owner = Owner::Conn(Arc::downgrade(&weak));
                e.bind = Some((Proto::Tcp, port, id));
                e.fin_told = gone;
            }
            let peer = peer.map_or(SockAddr::Unnamed, |p| report(p, v6));
            let sock: SockRef = sock;
            Ok(Accepted {
                sock,
                peer,
                peer_gone: gone,
            })
        })
    }

    fn send(
        &mut self,
        cx: &mut OpCtx<'_>,
        mut src: SendBuf<'_>,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        let _ = to;
        let _ = flags;
        let h = match self.st {
            St::Conn(h) => h,
            _ => return Err(cx.fail(Errno::EPIPE, "the socket is not connected")),
        };
        let me = cx.me().clone();
        let want = src.remaining();
        self.shared.with(cx, |net, cx| {
            if let Some(e) = net.entries.get_mut(&h)
                && let Some(err) = e.error.take()
            {
                return Err(cx.fail(err, ended_why(err)));
            }
            let (ended, wr_shut, connecting) = net
                .entries
                .get(&h)
                .map_or((true, true, false), |e| (e.ended, e.wr_shut, e.connecting));
            let s = net.sockets.get_mut::<tcp::Socket>(h);
            if wr_shut || ended || (!s.may_send() && !connecting) {
                let why = if wr_shut {
                    "the connection is shut for writing"
                } else if ended {
                    "the connection is over: reset, or closed both ways"
                } else {
                    "the connection is closing"
                };
                return Err(cx.fail(Errno::EPIPE, why));
            }
            if connecting || !s.can_send() {
                cx.wait_on(&me, Events::OUT);
                return Err(Errno::EAGAIN);
            }
            let n = match &mut src {
                SendBuf::Copy(b) => queue(s, &mut **b),
                SendBuf::Share(c) => queue(s, &mut **c),
            };
            if n == 0 && want > 0 {
                cx.wait_on(&me, Events::OUT);
                return Err(Errno::EAGAIN);
            }
            net.drive(cx.deferred());
            Ok(n)
        })
    }

    fn recv(
        &mut self,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        let eof = RecvInfo {
            len: 0,
            full_len: 0,
            flags: MsgFlags::empty(),
            from: SockAddr::Unnamed,
            eof: true,
        };
        let h = match self.st {
            St::Conn(h) => h,
            St::Done => return Ok(eof),
            _ => return Err(cx.fail(Errno::ENOTCONN, "the socket is not connected")),
        };
        let me = cx.me().clone();
        self.shared.with(cx, |net, cx| {
            let (rd_shut, connecting) = net
                .entries
                .get(&h)
                .map_or((true, false), |e| (e.rd_shut, e.connecting));
            let s = net.sockets.get_mut::<tcp::Socket>(h);
            let room = dst.room();
            if s.can_recv() && room > 0 {
                let mut n = 0;
                if flags.contains(MsgFlags::PEEK) {
                    let mut tmp = alloc::vec![0u8; room.min(s.recv_queue())];
                    n = s.peek_slice(&mut tmp).unwrap_or(0);
                    dst.put_slice(&tmp[..n]);
                } else {
                    while n < room {
                        let got = s
                            .recv(|data| {
                                let k = data.len().min(room - n);
                                dst.put_slice(&data[..k]);
                                (k, k)
                            })
                            .unwrap_or(0);
                        if got == 0 {
                            break;
                        }
                        n += got;
                    }
                    // The window opened: tell the peer.
                    net.drive(cx.deferred());
                }
                return Ok(RecvInfo {
                    len: n,
                    full_len: n,
                    flags: MsgFlags::empty(),
                    from: SockAddr::Unnamed,
                    eof: false,
                });
            }
            if room == 0 && s.can_recv() {
                return Ok(RecvInfo { eof: false, ..eof });
            }
            if let Some(e) = net.entries.get_mut(&h)
                && let Some(err) = e.error
            {
                // A reset after the peer's FIN (EPIPE) reads as end of file and stays for
                // the next send, as Linux's tcp_recvmsg checks SOCK_DONE before sk_err.
                if err == Errno::EPIPE {
                    return Ok(eof);
                }
                e.error = None;
                return Err(cx.fail(err, ended_why(err)));
            }
            if rd_shut || (!s.may_recv() && !connecting) {
                return Ok(eof);
            }
            if connecting && s.state() == tcp::State::Closed {
                return Ok(eof);
            }
            cx.wait_on(&me, Events::IN);
            Err(Errno::EAGAIN)
        })
    }

    fn shutdown(&mut self, cx: &mut OpCtx<'_>, how: Shutdown) -> Result<()> {
        let St::Conn(h) = self.st else {
            return Err(Errno::ENOTCONN);
        };
        let me = cx.me().clone();
        self.shared.with(cx, |net, cx| {
            let Some(e) = net.entries.get_mut(&h) else {
                return Ok(());
            };
            if matches!(how, Shutdown::Read | Shutdown::Both) {
                e.rd_shut = true;
            }
            if matches!(how, Shutdown::Write | Shutdown::Both) && !e.wr_shut {
                e.wr_shut = true;
                net.sockets.get_mut::<tcp::Socket>(h).close();
            }
            cx.notify(&me, Events::IN | Events::OUT | Events::RDHUP | Events::HUP);
            net.drive(cx.deferred());
            Ok(())
        })
    }

    fn close(&mut self, cx: &mut OpCtx<'_>) {
        match core::mem::replace(&mut self.st, St::Done) {
            St::Init(Some(b)) => self.shared.with(cx, |net, _| {
                net.ports.release(Proto::Tcp, b.addr.port(), b.id);
            }),
            St::Listening(b, key) => self.shared.with(cx, |net, cx| {
                net.remove_listener(key);
                net.ports.release(Proto::Tcp, b.addr.port(), b.id);
                net.drive(cx.deferred());
            }),
            St::Conn(h) => {
                self.st = St::Conn(h);
                let linger0 = cx.opts().linger() == Some(0);
                self.close_conn(cx, linger0);
                self.st = St::Done;
            }
            St::Init(None) | St::Done => {}
        }
    }

    fn readiness(&self, _opts: &Options) -> Events {
        match self.st {
            St::Init(_) => Events::OUT | Events::HUP,
            St::Done => Events::IN | Events::OUT | Events::HUP | Events::RDHUP,
            St::Listening(_, key) => self.shared.peek(|n| {
                n.listeners
                    .get(&key)
                    .filter(|l| !l.ready.is_empty())
                    .map_or(Events::empty(), |_| Events::IN)
            }),
            St::Conn(h) => self.shared.peek(|n| {
                let s = n.sockets.get::<tcp::Socket>(h);
                let Some(e) = n.entries.get(&h) else {
                    return Events::HUP;
                };
                let mut ev = Events::empty();
                if e.connecting {
                    return if s.state() == tcp::State::Closed {
                        Events::OUT | Events::ERR | Events::HUP
                    } else {
                        ev
                    };
                }
                // The peer's FIN arrived (even with data still to read: Linux's
                // RCV_SHUTDOWN), or nothing more can come.
                let fin =
                    peer_fin(s.state()) || (!s.may_recv() && s.state() != tcp::State::SynSent);
                if s.can_recv() || fin || e.rd_shut || e.error.is_some() {
                    ev |= Events::IN;
                }
                if (writable(s) && s.may_send()) || e.wr_shut || e.ended || !s.may_send() {
                    ev |= Events::OUT;
                }
                if fin || e.rd_shut {
                    ev |= Events::RDHUP;
                }
                if e.error.is_some() {
                    ev |= Events::ERR;
                }
                // Both directions shut (Linux's SHUTDOWN_MASK), or over.
                if e.ended || ((fin || e.rd_shut) && e.wr_shut) || s.state() == tcp::State::Closed {
                    ev |= Events::HUP;
                }
                ev
            }),
        }
    }

    fn local_addr(&self) -> SockAddr {
        match self.st {
            St::Init(Some(b)) | St::Listening(b, _) => report(b.addr, self.v6),
            St::Conn(h) => self.shared.peek(|n| {
                n.sockets
                    .get::<tcp::Socket>(h)
                    .local_endpoint()
                    .map(|e| report(from_ep(e), self.v6))
                    .unwrap_or(SockAddr::Unnamed)
            }),
            _ => SockAddr::Unnamed,
        }
    }

    fn peer_addr(&self) -> Option<SockAddr> {
        let St::Conn(h) = self.st else { return None };
        self.shared.peek(|n| {
            let e = n.entries.get(&h)?;
            if e.connecting || e.ended {
                return None;
            }
            n.sockets
                .get::<tcp::Socket>(h)
                .remote_endpoint()
                .map(|e| report(from_ep(e), self.v6))
        })
    }

    fn take_error(&mut self) -> Option<Errno> {
        let St::Conn(h) = self.st else { return None };
        self.shared
            .peek_mut(|n| n.entries.get_mut(&h).and_then(|e| e.error.take()))
    }

    fn has_error(&self) -> bool {
        let St::Conn(h) = self.st else { return false };
        self.shared
            .peek(|n| n.entries.get(&h).is_some_and(|e| e.error.is_some()))
    }

    fn queues(&self) -> Queues {
        match self.st {
            St::Conn(h) => self.shared.peek(|n| {
                let s = n.sockets.get::<tcp::Socket>(h);
                Queues {
                    rx: s.recv_queue(),
                    tx: s.send_queue(),
                    ..Queues::default()
                }
            }),
            St::Listening(_, key) => self.shared.peek(|n| {
                n.listeners.get(&key).map_or(Queues::default(), |l| Queues {
                    pending: l.ready.len() + l.pending.len(),
                    backlog: l.backlog,
                    ..Queues::default()
                })
            }),
            _ => Queues::default(),
        }
    }

    fn option_level(&self, _level: i32) -> Result<()> {
        // Checked by the get or the set: Linux's answer differs between them.
        Ok(())
    }

    fn get_option(&self, level: i32, name: i32) -> Result<OptVal> {
        opts::level(level, opts::IPPROTO_TCP, self.v6, true)?;
        let c = &self.cfg;
        if let Some(v) = c.hops.get(level, name) {
            return Ok(OptVal::Int(v));
        }
        Ok(OptVal::Int(match (level, name) {
            (opts::IPPROTO_TCP, opts::TCP_NODELAY) => c.nodelay as i32,
            (opts::IPPROTO_TCP, opts::TCP_KEEPIDLE) => c.keepidle as i32,
            (opts::IPPROTO_TCP, opts::TCP_KEEPINTVL) => c.keepintvl as i32,
            (opts::IPPROTO_TCP, opts::TCP_KEEPCNT) => c.keepcnt as i32,
            (opts::IPPROTO_TCP, opts::TCP_MAXSEG) => self.mss() as i32,
            (opts::IPPROTO_IPV6, opts::IPV6_V6ONLY) => c.v6only as i32,
            _ => return Err(Errno::ENOPROTOOPT),
        }))
    }

    fn set_option(&mut self, cx: &mut OpCtx<'_>, level: i32, name: i32, val: OptVal) -> Result<()> {
        opts::level(level, opts::IPPROTO_TCP, self.v6, false)?;
        let v = val.int()?;
        let c = &mut self.cfg;
        match (level, name) {
            _ if c.hops.set(level, name, v)? => {}
            (opts::IPPROTO_TCP, opts::TCP_NODELAY) => c.nodelay = v != 0,
            (opts::IPPROTO_TCP, opts::TCP_KEEPIDLE) => c.keepidle = opts::keep_value(v, 32767)?,
            (opts::IPPROTO_TCP, opts::TCP_KEEPINTVL) => c.keepintvl = opts::keep_value(v, 32767)?,
            (opts::IPPROTO_TCP, opts::TCP_KEEPCNT) => c.keepcnt = opts::keep_value(v, 127)?,
            (opts::IPPROTO_TCP, opts::TCP_MAXSEG) => {}
            (opts::IPPROTO_IPV6, opts::IPV6_V6ONLY) => {
                if !matches!(self.st, St::Init(None)) {
                    return Err(Errno::EINVAL);
                }
                c.v6only = v != 0
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        let key = cx.me().id();
        let o = *cx.opts();
        self.shared.with(cx, |net, _| self.apply(net, &o, key));
        Ok(())
    }

    fn options_changed(&mut self, cx: &mut OpCtx<'_>, opt: SockOpt) {
        if matches!(opt, SockOpt::KeepAlive | SockOpt::RcvBuf | SockOpt::SndBuf) {
            let key = cx.me().id();
            let o = *cx.opts();
            self.shared.with(cx, |net, _| self.apply(net, &o, key));
        }
    }

    fn details(&self) -> Vec<(&'static str, String)> {
        let name = match self.st {
            St::Init(_) | St::Done => "CLOSE",
            St::Listening(..) => "LISTEN",
            St::Conn(_) => match self.conn_state() {
                Some(s) => state_name(s),
                None => "CLOSE",
            },
        };
        let mut v = alloc::vec![("tcp_state", name.to_string())];
        if let St::Listening(_, key) = self.st {
            let drops = self
                .shared
                .peek(|n| n.listeners.get(&key).map_or(0, |l| l.overflows));
            v.push(("syn_dropped", drops.to_string()));
        }
        if let St::Conn(h) = self.st {
            // What smoltcp 0.14 lets us see: it keeps its RTT estimate, the peer's window,
            // the congestion window and retransmissions to itself. Timestamps are on when
            // both ends agreed to them (smoltcp drops its generator otherwise).
            let (rcv, snd, mtu, v4, cc, ts, nodelay) = self.shared.peek(|n| {
                let s = n.sockets.get::<tcp::Socket>(h);
                (
                    s.recv_capacity(),
                    s.send_capacity(),
                    n.mtu(),
                    s.remote_endpoint()
                        .is_some_and(|e| matches!(e.addr, smoltcp::wire::IpAddress::Ipv4(_))),
                    s.congestion_control(),
                    s.timestamp_enabled(),
                    !s.nagle_enabled(),
                )
            });
            let on = |b: bool| if b { "on" } else { "off" }.to_string();
            v.push(("rcv_space", rcv.to_string()));
            v.push(("snd_space", snd.to_string()));
            v.push(("mtu", mtu.to_string()));
            // The segment size of this connection's IP version (a dual-stack socket may
            // carry IPv4).
            let mss = mtu.saturating_sub(if v4 { 40 } else { 60 });
            v.push(("mss", mss.to_string()));
            let cc = match cc {
                tcp::CongestionControl::Reno => "reno",
                _ => "none",
            };
            v.push(("congestion", cc.to_string()));
            v.push(("timestamps", on(ts)));
            v.push(("nodelay", on(nodelay)));
        }
        v
    }

    fn nread(&self) -> usize {
        self.queues().rx
    }
}

impl TcpSock {
    fn mss(&self) -> usize {
        let mtu = self.shared.peek(|n| n.mtu());
        mtu.saturating_sub(if self.v6 { 60 } else { 40 })
    }

    /// Ends the connection: a FIN after what is queued, or a reset (`abort`, or unread
    /// data, as Linux's `tcp_close`); the smoltcp socket finishes on its own.
    fn close_conn(&mut self, cx: &mut OpCtx<'_>, abort: bool) {
        let St::Conn(h) = self.st else { return };
        self.shared.with(cx, |net, cx| {
            let unread = net.sockets.get::<tcp::Socket>(h).recv_queue() > 0;
            net.orphan(h, abort || unread);
            net.drive(cx.deferred());
        });
        self.st = St::Init(None);
    }
}

/// Why a connection ended with `err`, for the error its next call reports.
fn ended_why(err: Errno) -> &'static str {
    match err {
        Errno::ECONNRESET => "the peer reset the connection",
        Errno::EPIPE => "the peer reset the connection after closing its side",
        Errno::ETIMEDOUT => {
            "the peer stopped answering (retransmissions or keep-alive probes went unacknowledged)"
        }
        Errno::ENETDOWN => crate::net::NETDOWN,
        _ => "the connection failed",
    }
}

/// Why a socket could not have its buffers (`ENOBUFS`).
pub(crate) const NO_ROOM: &str =
    "the user's buffered-bytes limit leaves no room for this socket's buffers";

/// Whether a connection's send buffer has room enough to call it writable: free space at
/// least half of what is queued (Linux's `sk_stream_is_writeable`, so a writer that filled
/// the buffer wakes when a third of it is free, not at every acknowledgement).
pub(crate) fn writable(s: &tcp::Socket<'_>) -> bool {
    let queued = s.send_queue();
    s.can_send() && s.send_capacity() - queued >= queued / 2
}

/// Whether a connection in `st` has received its peer's FIN.
pub(crate) fn peer_fin(st: tcp::State) -> bool {
    matches!(
        st,
        tcp::State::CloseWait | tcp::State::LastAck | tcp::State::Closing | tcp::State::TimeWait
    )
}

/// Why a connect ended in `Closed`: refused (a reset came back), the link down, or no
/// answer; from (reset seen, link down).
fn refusal((rst, netdown): (bool, bool)) -> (Errno, &'static str) {
    if netdown {
        (Errno::ENETDOWN, crate::net::NETDOWN)
    } else if rst {
        (
            Errno::ECONNREFUSED,
            "the host refused the connection (nothing listens on that port)",
        )
    } else {
        (Errno::ETIMEDOUT, "no answer from the host")
    }
}

/// Linux's names for the TCP states (`/proc/net/tcp`'s `tcp_state_name`): what `status`
/// shows as `tcp_state` (`ksock ss` prints `ss`'s short forms).
pub(crate) fn state_name(s: tcp::State) -> &'static str {
    match s {
        tcp::State::Closed => "CLOSE",
        tcp::State::Listen => "LISTEN",
        tcp::State::SynSent => "SYN_SENT",
        tcp::State::SynReceived => "SYN_RECV",
        tcp::State::Established => "ESTABLISHED",
        tcp::State::FinWait1 => "FIN_WAIT1",
        tcp::State::FinWait2 => "FIN_WAIT2",
        tcp::State::CloseWait => "CLOSE_WAIT",
        tcp::State::Closing => "CLOSING",
        tcp::State::LastAck => "LAST_ACK",
        tcp::State::TimeWait => "TIME_WAIT",
    }
}
