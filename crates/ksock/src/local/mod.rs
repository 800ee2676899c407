//! The local family: in-memory `stream`, `seqpacket` and `dgram` sockets with names of 1 to
//! 255 bytes, following Linux AF_UNIX where SPEC section 3 is silent.
//!
//! One namespace serves all three types (so a connect to a name of another type is
//! `EPROTOTYPE`). A connection is a [`Conn`]: two pipes, each bounded by its writer's send
//! buffer. A listener owns a [`Backlog`] of connections that exist before they are accepted,
//! so a client may write at once. A datagram socket owns a [`DgramBox`]: its receive queue
//! and the count of its own bytes queued elsewhere.
//!
//! Lock order: socket lock, then the name table, then one backlog, pipe or datagram queue
//! (never two of those at once, except the two pipes of one connection in index order).

mod conn;
mod dgram;
mod queue;

pub use dgram::MAX_DGRAM_QLEN;

use crate::addr::{LocalName, SockAddr};
use crate::buf::RecvSink;
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::{Accepted, Family, OpCtx, Progress, Protocol, SockRef};
use crate::opt::Options;
use crate::socket::SocketCore;
use crate::stack::StackRef;
use crate::sync::Mutex;
use crate::types::{Domain, MsgFlags, Queues, RecvInfo, Shutdown, SockType};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::{Buf, Bytes};
use conn::{Backlog, Conn, Data, Pending};
use core::sync::atomic::Ordering;
use dgram::{Datagram, DgramBox};
use queue::{RECORD_OVERHEAD, Rec};

/// Everything a peer can notice when a socket shuts down or goes away.
const CHANGED: Events = Events::IN
    .union(Events::OUT)
    .union(Events::ERR)
    .union(Events::HUP)
    .union(Events::RDHUP);

/// The local family.
pub struct LocalFamily {
    names: Arc<Names>,
}

impl Default for LocalFamily {
    fn default() -> Self {
        LocalFamily::new()
    }
}

impl LocalFamily {
    /// A family with an empty namespace.
    pub fn new() -> LocalFamily {
        LocalFamily {
            names: Arc::new(Names {
                map: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    fn new_sock(
        &self,
        stack: &StackRef,
        ty: SockType,
        protocol: u16,
    ) -> Arc<SocketCore<LocalSock>> {
        let proto = LocalSock {
            names: self.names.clone(),
            ty,
            name: None,
            st: LState::Idle,
        };
        SocketCore::new(stack, Domain::LOCAL, ty, protocol, proto)
    }
}

/// The namespace: name -> what is bound there.
struct Names {
    map: Mutex<BTreeMap<Bytes, Entry>>,
}

#[derive(Clone)]
struct Entry {
    owner: u64,
    ty: SockType,
    target: Target,
}

#[derive(Clone)]
enum Target {
    Bound,
    Listener(Arc<Backlog>),
    Dgram(Arc<DgramBox>),
}

impl Names {
    fn lookup(&self, name: &LocalName) -> Result<Entry> {
        self.map
            .lock()
            .get(name.bytes())
            .cloned()
            .ok_or(Errno::ECONNREFUSED)
    }
}

fn local_name(addr: &SockAddr) -> Result<LocalName> {
    match addr {
        SockAddr::Local(n) => Ok(n.clone()),
        _ => Err(Errno::EINVAL),
    }
}

fn check_protocol(protocol: i32) -> Result<u16> {
    // 0, or PF_UNIX itself, as Linux accepts.
    match protocol {
        0 | 1 => Ok(protocol as u16),
        _ => Err(Errno::EPROTONOSUPPORT),
    }
}

fn check_type(ty: SockType) -> Result<SockType> {
    match ty {
        SockType::STREAM | SockType::SEQPACKET | SockType::DGRAM => Ok(ty),
        // Linux AF_UNIX quietly makes SOCK_RAW a datagram socket.
        SockType::RAW => Ok(SockType::DGRAM),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

impl Family for LocalFamily {
    fn domain(&self) -> Domain {
        Domain::LOCAL
    }

    fn name(&self) -> &'static str {
        "local"
    }

    fn types(&self) -> &'static [SockType] {
        &[SockType::STREAM, SockType::SEQPACKET, SockType::DGRAM]
    }

    fn create(&self, stack: &StackRef, ty: SockType, protocol: i32) -> Result<SockRef> {
        let protocol = check_protocol(protocol)?;
        let ty = check_type(ty)?;
        let s = self.new_sock(stack, ty, protocol);
        let r: SockRef = s.clone();
        if ty == SockType::DGRAM {
            let rx = Arc::new(DgramBox::new(r.clone()));
            s.with_proto(|p| p.st = LState::Dgram { rx, peer: None });
        }
        Ok(r)
    }

    fn socketpair(
        &self,
        stack: &StackRef,
        ty: SockType,
        protocol: i32,
    ) -> Result<(SockRef, SockRef)> {
        let protocol = check_protocol(protocol)?;
        let ty = check_type(ty)?;
        let (a, b) = (
            self.new_sock(stack, ty, protocol),
            self.new_sock(stack, ty, protocol),
        );
        let (ra, rb): (SockRef, SockRef) = (a.clone(), b.clone());
        if ty == SockType::DGRAM {
            let (ba, bb) = (
                Arc::new(DgramBox::new(ra.clone())),
                Arc::new(DgramBox::new(rb.clone())),
            );
            ba.q.lock().peer_id = Some(rb.id());
            bb.q.lock().peer_id = Some(ra.id());
            let pa = DgramPeer {
                addr: SockAddr::Unnamed,
                dst: bb.clone(),
            };
            let pb = DgramPeer {
                addr: SockAddr::Unnamed,
                dst: ba.clone(),
            };
            a.with_proto(|p| {
                p.st = LState::Dgram {
                    rx: ba,
                    peer: Some(pa),
                }
            });
            b.with_proto(|p| {
                p.st = LState::Dgram {
                    rx: bb,
                    peer: Some(pb),
                }
            });
        } else {
            let conn = Arc::new(Conn::new(ra.clone(), rb.clone(), ty.is_record()));
            let c2 = conn.clone();
            a.with_proto(|p| {
                p.st = LState::Connected {
                    conn,
                    side: 0,
                    peer: SockAddr::Unnamed,
                }
            });
            b.with_proto(|p| {
                p.st = LState::Connected {
                    conn: c2,
                    side: 1,
                    peer: SockAddr::Unnamed,
                }
            });
        }
        Ok((ra, rb))
    }

    fn parse_addr(&self, text: &[u8]) -> Result<SockAddr> {
        SockAddr::local(text)
    }

    fn listening(&self) -> Vec<SockAddr> {
        let map = self.names.map.lock();
        map.iter()
            .filter(|(_, e)| matches!(&e.target, Target::Listener(b) if !b.q.lock().closed))
            .filter_map(|(k, _)| LocalName::new(k.clone()).ok().map(SockAddr::Local))
            .collect()
    }

    fn bound(&self) -> Vec<SockAddr> {
        let map = self.names.map.lock();
        map.keys()
            .filter_map(|k| LocalName::new(k.clone()).ok().map(SockAddr::Local))
            .collect()
    }
}

/// The local family's per-socket state.
pub(crate) struct LocalSock {
    names: Arc<Names>,
    ty: SockType,
    name: Option<LocalName>,
    st: LState,
}

enum LState {
    /// Stream or seqpacket, neither listening nor connected.
    Idle,
    Listening(Arc<Backlog>),
    Connected {
        conn: Arc<Conn>,
        side: usize,
        peer: SockAddr,
    },
    Dgram {
        rx: Arc<DgramBox>,
        peer: Option<DgramPeer>,
    },
    Closed,
}

struct DgramPeer {
    addr: SockAddr,
    dst: Arc<DgramBox>,
}

impl LocalSock {
    fn my_addr(&self) -> SockAddr {
        self.name.clone().map_or(SockAddr::Unnamed, SockAddr::Local)
    }

    fn connect_conn(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        let name = local_name(addr)?;
        if !matches!(self.st, LState::Idle) {
            return Err(Errno::EISCONN);
        }
        let entry = self.names.lookup(&name)?;
        if entry.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        let Target::Listener(backlog) = entry.target else {
            return Err(Errno::ECONNREFUSED);
        };
        let me = cx.me();
        let conn = {
            let mut q = backlog.q.lock();
            if q.closed {
                return Err(Errno::ECONNREFUSED);
            }
            if q.pending.len() >= q.max {
                cx.wait_on(&backlog.listener, Events::ROOM);
                return Err(Errno::EAGAIN);
            }
            // The server end exists from now on, so the client may write before the accept;
            // it is named like the listener, as on Linux.
            let embryo = SocketCore::new(
                me.stack(),
                Domain::LOCAL,
                self.ty,
                me.protocol(),
                LocalSock {
                    names: self.names.clone(),
                    ty: self.ty,
                    name: Some(name.clone()),
                    st: LState::Idle,
                },
            );
            let conn = Arc::new(Conn::new(me.clone(), embryo.clone(), self.ty.is_record()));
            q.pending.push_back(Pending {
                conn: conn.clone(),
                embryo,
                peer: self.my_addr(),
            });
            conn
        };
        cx.notify(&backlog.listener, Events::IN);
        self.st = LState::Connected {
            conn,
            side: 0,
            peer: SockAddr::Local(name),
        };
        Ok(Progress::Done)
    }

    fn connect_dgram(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        let name = local_name(addr)?;
        let LState::Dgram { rx, peer } = &mut self.st else {
            return Err(Errno::EINVAL);
        };
        let entry = self.names.lookup(&name)?;
        if entry.ty != SockType::DGRAM {
            return Err(Errno::EPROTOTYPE);
        }
        let Target::Dgram(dst) = entry.target else {
            return Err(Errno::ECONNREFUSED);
        };
        let me = cx.me().id();
        {
            let q = dst.q.lock();
            if q.closed {
                return Err(Errno::ECONNREFUSED);
            }
            if q.peer_id.is_some_and(|p| p != me) {
                return Err(Errno::EPERM);
            }
        }
        rx.q.lock().peer_id = Some(dst.owner.id());
        *peer = Some(DgramPeer {
            addr: SockAddr::Local(name),
            dst,
        });
        // Sends that waited for room at the old peer may now go elsewhere.
        cx.notify(cx.me(), Events::OUT);
        Ok(Progress::Done)
    }

    fn send_stream(
        &mut self,
        cx: &mut OpCtx<'_>,
        src: &mut dyn Buf,
        to: Option<&SockAddr>,
    ) -> Result<usize> {
        let LState::Connected { conn, side, .. } = &self.st else {
            return Err(if to.is_some() {
                Errno::EOPNOTSUPP
            } else {
                Errno::ENOTCONN
            });
        };
        if to.is_some() {
            return Err(Errno::EISCONN);
        }
        let peer = 1 - *side;
        let n = {
            let mut p = conn.pipes[peer].lock();
            if p.wr_shut || p.rd_shut {
                return Err(Errno::EPIPE);
            }
            let want = src.remaining();
            if want == 0 {
                return Ok(0);
            }
            let n = want.min(cx.opts().sndbuf().saturating_sub(p.used()));
            if n == 0 {
                return Err(Errno::EAGAIN);
            }
            if let Data::Stream(q) = &mut p.data {
                q.push(src, n);
            }
            n
        };
        cx.notify(&conn.ends[peer], Events::IN);
        Ok(n)
    }

    fn send_seqpacket(&mut self, cx: &mut OpCtx<'_>, src: &mut dyn Buf) -> Result<usize> {
        let LState::Connected { conn, side, .. } = &self.st else {
            return Err(Errno::ENOTCONN);
        };
        // As on Linux, a pending reset is reported (and cleared) by the next send.
        {
            let mut mine = conn.pipes[*side].lock();
            if mine.reset {
                mine.reset = false;
                return Err(Errno::ECONNRESET);
            }
        }
        let len = src.remaining();
        let sndbuf = cx.opts().sndbuf();
        if len + RECORD_OVERHEAD > sndbuf {
            return Err(Errno::EMSGSIZE);
        }
        let peer = 1 - *side;
        {
            let mut p = conn.pipes[peer].lock();
            if p.wr_shut || p.rd_shut {
                return Err(Errno::EPIPE);
            }
            if p.used() + len + RECORD_OVERHEAD > sndbuf {
                return Err(Errno::EAGAIN);
            }
            if let Data::Records(q) = &mut p.data {
                q.push(Rec::take(src, len));
            }
        }
        cx.notify(&conn.ends[peer], Events::IN);
        Ok(len)
    }

    fn send_dgram(
        &mut self,
        cx: &mut OpCtx<'_>,
        src: &mut dyn Buf,
        to: Option<&SockAddr>,
    ) -> Result<usize> {
        let from = self.my_addr();
        let LState::Dgram { rx, peer } = &mut self.st else {
            return Err(Errno::ENOTCONN);
        };
        let explicit = to.map(local_name).transpose()?;
        if explicit.is_none() && peer.is_none() {
            return Err(Errno::ENOTCONN);
        }
        let len = src.remaining();
        let sndbuf = cx.opts().sndbuf();
        let charge = len + RECORD_OVERHEAD;
        if charge > sndbuf {
            return Err(Errno::EMSGSIZE);
        }
        if rx.q.lock().wr_shut {
            return Err(Errno::EPIPE);
        }
        if rx.wmem.load(Ordering::Acquire) + charge > sndbuf {
            return Err(Errno::EAGAIN);
        }
        let dst = match (&explicit, peer.as_ref()) {
            (Some(name), _) => {
                let e = self.names.lookup(name)?;
                if e.ty != SockType::DGRAM {
                    return Err(Errno::EPROTOTYPE);
                }
                let Target::Dgram(b) = e.target else {
                    return Err(Errno::ECONNREFUSED);
                };
                b
            }
            (None, Some(p)) => p.dst.clone(),
            (None, None) => return Err(Errno::ENOTCONN),
        };
        let me = cx.me().id();
        let to_self = Arc::ptr_eq(&dst, rx);
        {
            let mut q = dst.q.lock();
            if q.closed {
                drop(q);
                if peer.as_ref().is_some_and(|p| Arc::ptr_eq(&p.dst, &dst)) {
                    // The connected peer is gone: forget it, as Linux does.
                    *peer = None;
                    rx.q.lock().peer_id = None;
                    cx.peer_gone(cx.me(), Events::OUT);
                }
                return Err(Errno::ECONNREFUSED);
            }
            if q.peer_id.is_some_and(|p| p != me) && !to_self {
                return Err(Errno::EPERM);
            }
            if q.rd_shut {
                return Err(Errno::EPIPE);
            }
            if !to_self && q.peer_id != Some(me) && q.recs.len() >= MAX_DGRAM_QLEN {
                cx.wait_on(&dst.owner, Events::ROOM);
                return Err(Errno::EAGAIN);
            }
            q.recs.push_back(Datagram {
                data: Rec::take(src, len),
                from,
                sender: rx.clone(),
            });
            q.payload += len;
            rx.wmem.fetch_add(charge, Ordering::AcqRel);
        }
        cx.notify(&dst.owner, Events::IN);
        Ok(len)
    }

    fn recv_conn(
        conn: &Conn,
        side: usize,
        peer_addr: &SockAddr,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        let peek = flags.contains(MsgFlags::PEEK);
        let mut p = conn.pipes[side].lock();
        let got = match &mut p.data {
            Data::Stream(q) if q.len() > 0 => {
                let n = q.pop_into(dst, peek);
                Some((n, n, MsgFlags::empty()))
            }
            Data::Records(q) => q.pop_into(dst, peek).map(|(n, full)| {
                let f = if n < full {
                    MsgFlags::TRUNC | MsgFlags::EOR
                } else {
                    MsgFlags::EOR
                };
                (n, full, f)
            }),
            Data::Stream(_) => None,
        };
        if let Some((len, full_len, out)) = got {
            drop(p);
            if !peek {
                cx.notify(&conn.ends[1 - side], Events::OUT);
            }
            return Ok(RecvInfo {
                len,
                full_len,
                flags: out,
                from: peer_addr.clone(),
                eof: false,
            });
        }
        if p.reset {
            p.reset = false;
            return Err(Errno::ECONNRESET);
        }
        if p.wr_shut || p.rd_shut {
            return Ok(RecvInfo {
                eof: true,
                ..RecvInfo::default()
            });
        }
        Err(Errno::EAGAIN)
    }

    fn recv_dgram(
        rx: &DgramBox,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        let peek = flags.contains(MsgFlags::PEEK);
        let mut q = rx.q.lock();
        let Some(d) = q.recs.front() else {
            if q.rd_shut {
                return Ok(RecvInfo {
                    eof: true,
                    ..RecvInfo::default()
                });
            }
            return Err(Errno::EAGAIN);
        };
        let len = d.data.put_into(dst);
        let full_len = d.data.len();
        let from = d.from.clone();
        if !peek && let Some(d) = q.recs.pop_front() {
            q.payload -= full_len;
            drop(q);
            d.sender.wmem.fetch_sub(d.charge(), Ordering::AcqRel);
            cx.notify(&d.sender.owner, Events::OUT);
            cx.notify(cx.me(), Events::ROOM);
        }
        let f = if len < full_len {
            MsgFlags::TRUNC | MsgFlags::EOR
        } else {
            MsgFlags::EOR
        };
        Ok(RecvInfo {
            len,
            full_len,
            flags: f,
            from,
            eof: false,
        })
    }
}

impl Protocol for LocalSock {
    fn bind(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<()> {
        let name = local_name(addr)?;
        if self.name.is_some() {
            return Err(Errno::EINVAL);
        }
        let target = match &self.st {
            LState::Dgram { rx, .. } => Target::Dgram(rx.clone()),
            _ => Target::Bound,
        };
        {
            let mut map = self.names.map.lock();
            if map.contains_key(name.bytes()) {
                return Err(Errno::EADDRINUSE);
            }
            map.insert(
                name.bytes().clone(),
                Entry {
                    owner: cx.me().id(),
                    ty: self.ty,
                    target,
                },
            );
        }
        self.name = Some(name);
        Ok(())
    }

    fn listen(&mut self, cx: &mut OpCtx<'_>, backlog: usize) -> Result<()> {
        match &self.st {
            LState::Listening(b) => {
                let grew = {
                    let mut q = b.q.lock();
                    let grew = backlog > q.max;
                    q.max = backlog;
                    grew
                };
                if grew {
                    cx.notify(cx.me(), Events::ROOM);
                }
                Ok(())
            }
            LState::Idle => {
                let Some(name) = &self.name else {
                    return Err(Errno::EINVAL);
                };
                let b = Arc::new(Backlog::new(cx.me().clone(), backlog));
                if let Some(e) = self.names.map.lock().get_mut(name.bytes())
                    && e.owner == cx.me().id()
                {
                    e.target = Target::Listener(b.clone());
                }
                self.st = LState::Listening(b);
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn connect(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        if self.ty == SockType::DGRAM {
            self.connect_dgram(cx, addr)
        } else {
            self.connect_conn(cx, addr)
        }
    }

    fn accept(&mut self, cx: &mut OpCtx<'_>) -> Result<Accepted> {
        let LState::Listening(b) = &self.st else {
            return Err(Errno::EINVAL);
        };
        let Some(p) = b.q.lock().pending.pop_front() else {
            return Err(Errno::EAGAIN);
        };
        cx.notify(cx.me(), Events::ROOM);
        let peer_gone = p.conn.pipes[1].lock().writer_closed;
        let peer = p.peer.clone();
        let Pending {
            conn,
            embryo,
            peer: p_peer,
        } = p;
        embryo.with_proto(|s| {
            s.st = LState::Connected {
                conn,
                side: 1,
                peer: p_peer,
            }
        });
        Ok(Accepted {
            sock: embryo,
            peer,
            peer_gone,
        })
    }

    fn send(
        &mut self,
        cx: &mut OpCtx<'_>,
        src: &mut dyn Buf,
        to: Option<&SockAddr>,
        _flags: MsgFlags,
    ) -> Result<usize> {
        match self.ty {
            SockType::STREAM => self.send_stream(cx, src, to),
            SockType::SEQPACKET => self.send_seqpacket(cx, src),
            _ => self.send_dgram(cx, src, to),
        }
    }

    fn recv(
        &mut self,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        match &self.st {
            LState::Connected { conn, side, peer } => {
                Self::recv_conn(conn, *side, peer, cx, dst, flags)
            }
            LState::Dgram { rx, .. } => Self::recv_dgram(rx, cx, dst, flags),
            // Linux: a stream socket that is not connected says EINVAL, seqpacket ENOTCONN.
            _ if self.ty == SockType::STREAM => Err(Errno::EINVAL),
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn shutdown(&mut self, cx: &mut OpCtx<'_>, how: Shutdown) -> Result<()> {
        match &self.st {
            LState::Connected { conn, side, .. } => {
                let peer = 1 - *side;
                if how.read() {
                    conn.pipes[*side].lock().rd_shut = true;
                }
                if how.write() {
                    conn.pipes[peer].lock().wr_shut = true;
                }
                cx.notify(&conn.ends[peer], CHANGED);
                cx.notify(cx.me(), CHANGED);
                Ok(())
            }
            LState::Dgram { rx, .. } => {
                {
                    let mut q = rx.q.lock();
                    q.rd_shut |= how.read();
                    q.wr_shut |= how.write();
                }
                cx.notify(cx.me(), CHANGED);
                Ok(())
            }
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn close(&mut self, cx: &mut OpCtx<'_>) {
        if let Some(name) = self.name.take() {
            let mut map = self.names.map.lock();
            if map
                .get(name.bytes())
                .is_some_and(|e| e.owner == cx.me().id())
            {
                map.remove(name.bytes());
            }
        }
        match core::mem::replace(&mut self.st, LState::Closed) {
            LState::Idle | LState::Closed => {}
            LState::Listening(b) => {
                let pending = {
                    let mut q = b.q.lock();
                    q.closed = true;
                    core::mem::take(&mut q.pending)
                };
                // Connections nobody accepted are reset: their clients read ECONNRESET, then
                // end of file, and their writes fail with EPIPE.
                for p in pending {
                    {
                        let mut c = p.conn.pipes[0].lock();
                        c.wr_shut = true;
                        c.writer_closed = true;
                        c.reset = true;
                    }
                    {
                        let mut s = p.conn.pipes[1].lock();
                        s.rd_shut = true;
                        s.clear();
                    }
                    cx.peer_gone(&p.conn.ends[0], CHANGED);
                }
            }
            LState::Connected { conn, side, .. } => {
                let peer = 1 - side;
                let unread = {
                    let mut p = conn.pipes[side].lock();
                    p.rd_shut = true;
                    let unread = p.has_data();
                    p.clear();
                    unread
                };
                {
                    let mut p = conn.pipes[peer].lock();
                    p.wr_shut = true;
                    p.writer_closed = true;
                    p.reset |= unread;
                }
                cx.peer_gone(&conn.ends[peer], CHANGED);
            }
            LState::Dgram { rx, peer } => {
                let recs = {
                    let mut q = rx.q.lock();
                    q.closed = true;
                    q.peer_id = None;
                    q.payload = 0;
                    core::mem::take(&mut q.recs)
                };
                for d in recs {
                    d.sender.wmem.fetch_sub(d.charge(), Ordering::AcqRel);
                    cx.notify(&d.sender.owner, Events::OUT);
                }
                drop(peer);
            }
        }
    }

    fn readiness(&self, opts: &Options) -> Events {
        let sndbuf = opts.sndbuf();
        match &self.st {
            // Linux: a connection-type socket that is not connected polls as writable and hung up.
            LState::Idle => Events::OUT | Events::HUP,
            LState::Listening(b) => {
                if b.q.lock().pending.is_empty() {
                    Events::empty()
                } else {
                    Events::IN
                }
            }
            LState::Connected { conn, side, .. } => {
                let mut ev = Events::empty();
                let rcv_shut = {
                    let rx = conn.pipes[*side].lock();
                    let shut = rx.wr_shut || rx.rd_shut;
                    if rx.has_data() || shut {
                        ev |= Events::IN;
                    }
                    if rx.reset {
                        ev |= Events::ERR;
                    }
                    shut
                };
                let tx = conn.pipes[1 - *side].lock();
                let snd_shut = tx.wr_shut || tx.rd_shut;
                let room = match tx.data {
                    Data::Stream(_) => tx.used() < sndbuf,
                    Data::Records(_) => tx.used() + RECORD_OVERHEAD <= sndbuf,
                };
                if room || snd_shut {
                    ev |= Events::OUT;
                }
                if rcv_shut {
                    ev |= Events::RDHUP;
                    if snd_shut {
                        ev |= Events::HUP;
                    }
                }
                ev
            }
            LState::Dgram { rx, peer } => {
                let mut ev = Events::empty();
                let (rd, wr) = {
                    let q = rx.q.lock();
                    if !q.recs.is_empty() || q.rd_shut {
                        ev |= Events::IN;
                    }
                    (q.rd_shut, q.wr_shut)
                };
                if rd {
                    ev |= Events::RDHUP;
                }
                if rd && wr {
                    ev |= Events::HUP;
                }
                let mut writable = rx.wmem.load(Ordering::Acquire) + RECORD_OVERHEAD <= sndbuf;
                if let (true, Some(p)) = (writable, peer) {
                    let q = p.dst.q.lock();
                    let me = rx.owner.id();
                    writable = q.closed || q.peer_id == Some(me) || q.recs.len() < MAX_DGRAM_QLEN;
                }
                if writable || wr {
                    ev |= Events::OUT;
                }
                ev
            }
            LState::Closed => Events::HUP,
        }
    }

    fn local_addr(&self) -> SockAddr {
        self.my_addr()
    }

    fn peer_addr(&self) -> Option<SockAddr> {
        match &self.st {
            LState::Connected { peer, .. } => Some(peer.clone()),
            LState::Dgram { peer: Some(p), .. } => Some(p.addr.clone()),
            _ => None,
        }
    }

    fn take_error(&mut self) -> Option<Errno> {
        match &self.st {
            LState::Connected { conn, side, .. } => {
                let mut p = conn.pipes[*side].lock();
                core::mem::take(&mut p.reset).then_some(Errno::ECONNRESET)
            }
            _ => None,
        }
    }

    fn has_error(&self) -> bool {
        match &self.st {
            LState::Connected { conn, side, .. } => conn.pipes[*side].lock().reset,
            _ => false,
        }
    }

    fn queues(&self) -> Queues {
        match &self.st {
            LState::Connected { conn, side, .. } => Queues {
                rx: conn.pipes[*side].lock().bytes(),
                tx: conn.pipes[1 - *side].lock().bytes(),
                ..Queues::default()
            },
            LState::Listening(b) => {
                let q = b.q.lock();
                Queues {
                    pending: q.pending.len(),
                    backlog: q.max,
                    ..Queues::default()
                }
            }
            LState::Dgram { rx, .. } => Queues {
                rx: rx.q.lock().payload,
                tx: rx.wmem.load(Ordering::Acquire),
                ..Queues::default()
            },
            _ => Queues::default(),
        }
    }

    fn nread(&self) -> usize {
        match &self.st {
            LState::Connected { conn, side, .. } => conn.pipes[*side].lock().nread(),
            LState::Dgram { rx, .. } => rx.q.lock().recs.front().map_or(0, |d| d.data.len()),
            _ => 0,
        }
    }
}
