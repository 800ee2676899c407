//! The local family: in-memory `stream`, `seqpacket` and `dgram` sockets with names of 1 to
//! 255 bytes, following Linux AF_UNIX where SPEC section 3 is silent.
//!
//! One namespace serves all three types (so a connect to a name of another type is
//! `EPROTOTYPE`). A connection is a [`Conn`]: two pipes, each bounded by its writer's send
//! buffer. A listener owns a [`Backlog`] of connections that exist before they are accepted,
//! so a client may write at once. A datagram socket owns a [`DgramBox`]: its receive queue
//! and the count of its own bytes queued elsewhere.
//!
//! Lock order: socket lock, then the name table, then one backlog, connection or datagram
//! queue (never two of those at once).

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
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Buf;
use conn::{Backlog, Conn, Data, Pending, rx_tx};
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
            st: LState::Idle(None),
        };
        SocketCore::new(stack, Domain::LOCAL, ty, protocol, proto)
    }
}

/// The namespace: name -> what is bound there.
struct Names {
    map: Mutex<BTreeMap<LocalName, Entry>>,
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
            .get(name)
            .cloned()
            .ok_or(Errno::ECONNREFUSED)
    }

    /// Frees `name` if `owner` holds it.
    fn release(&self, name: &LocalName, owner: u64) {
        let mut map = self.map.lock();
        if map.get(name).is_some_and(|e| e.owner == owner) {
            map.remove(name);
        }
    }
}

fn local_name(addr: &SockAddr) -> Result<LocalName> {
    match addr {
        SockAddr::Local(n) => Ok(n.clone()),
        _ => Err(Errno::EINVAL),
    }
}

fn addr_of(name: &Option<LocalName>) -> SockAddr {
    name.clone().map_or(SockAddr::Unnamed, SockAddr::Local)
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
            s.with_proto(|p| p.st = LState::Dgram(rx));
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
            ba.q.lock().peer = Some(bb.clone());
            bb.q.lock().peer = Some(ba.clone());
            a.with_proto(|p| p.st = LState::Dgram(ba));
            b.with_proto(|p| p.st = LState::Dgram(bb));
        } else {
            let conn = Arc::new(Conn::new(
                [ra.clone(), rb.clone()],
                ty.is_record(),
                [None, None],
            ));
            let c2 = conn.clone();
            a.with_proto(|p| p.st = LState::Connected { conn, side: 0 });
            b.with_proto(|p| p.st = LState::Connected { conn: c2, side: 1 });
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
            .map(|(k, _)| SockAddr::Local(k.clone()))
            .collect()
    }

    fn bound(&self) -> Vec<SockAddr> {
        self.names
            .map
            .lock()
            .keys()
            .map(|k| SockAddr::Local(k.clone()))
            .collect()
    }
}

/// The local family's per-socket state.
pub(crate) struct LocalSock {
    names: Arc<Names>,
    st: LState,
}

enum LState {
    /// Stream or seqpacket, neither listening nor connected, with its bound name.
    Idle(Option<Box<LocalName>>),
    Listening(Arc<Backlog>),
    /// Connected; the names of both ends live in the connection.
    Connected {
        conn: Arc<Conn>,
        side: u8,
    },
    Dgram(Arc<DgramBox>),
    Closed,
}

impl LocalSock {
    fn connect_conn(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        let name = local_name(addr)?;
        let LState::Idle(own) = &self.st else {
            return Err(Errno::EISCONN);
        };
        let me = cx.me();
        let ty = me.ty();
        let entry = self.names.lookup(&name)?;
        if entry.ty != ty {
            return Err(Errno::EPROTOTYPE);
        }
        let Target::Listener(backlog) = entry.target else {
            return Err(Errno::ECONNREFUSED);
        };
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
            let proto = LocalSock {
                names: self.names.clone(),
                st: LState::Idle(None),
            };
            let embryo = SocketCore::new(me.stack(), Domain::LOCAL, ty, me.protocol(), proto);
            let own = own.as_deref().cloned();
            let conn = Arc::new(Conn::new(
                [me.clone(), embryo.clone()],
                ty.is_record(),
                [own, Some(name)],
            ));
            q.pending.push_back(Pending {
                conn: conn.clone(),
                embryo,
            });
            conn
        };
        cx.notify(&backlog.listener, Events::IN);
        self.st = LState::Connected { conn, side: 0 };
        Ok(Progress::Done)
    }

    fn connect_dgram(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        let name = local_name(addr)?;
        let LState::Dgram(rx) = &self.st else {
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
            if q.peer_is_other_than(me) {
                return Err(Errno::EPERM);
            }
        }
        rx.q.lock().peer = Some(dst);
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
        let LState::Connected { conn, side } = &self.st else {
            return Err(if to.is_some() {
                Errno::EOPNOTSUPP
            } else {
                Errno::ENOTCONN
            });
        };
        if to.is_some() {
            return Err(Errno::EISCONN);
        }
        let n = {
            let mut pipes = conn.pipes.lock();
            let (_, tx) = rx_tx(&mut pipes, usize::from(*side));
            if tx.wr_shut || tx.rd_shut {
                return Err(Errno::EPIPE);
            }
            let want = src.remaining();
            if want == 0 {
                return Ok(0);
            }
            let n = want.min(cx.opts().sndbuf().saturating_sub(tx.used()));
            if n == 0 {
                return Err(Errno::EAGAIN);
            }
            if let Data::Stream(q) = tx.data() {
                q.push(src, n);
            }
            n
        };
        cx.notify(&conn.ends[1 - usize::from(*side)], Events::IN);
        Ok(n)
    }

    fn send_seqpacket(&mut self, cx: &mut OpCtx<'_>, src: &mut dyn Buf) -> Result<usize> {
        let LState::Connected { conn, side } = &self.st else {
            return Err(Errno::ENOTCONN);
        };
        let len = src.remaining();
        let sndbuf = cx.opts().sndbuf();
        {
            let mut pipes = conn.pipes.lock();
            let (rx, tx) = rx_tx(&mut pipes, usize::from(*side));
            // As on Linux, a pending reset is reported (and cleared) by the next send.
            if rx.reset {
                rx.reset = false;
                return Err(Errno::ECONNRESET);
            }
            if len + RECORD_OVERHEAD > sndbuf {
                return Err(Errno::EMSGSIZE);
            }
            if tx.wr_shut || tx.rd_shut {
                return Err(Errno::EPIPE);
            }
            if tx.used() + len + RECORD_OVERHEAD > sndbuf {
                return Err(Errno::EAGAIN);
            }
            if let Data::Records(q) = tx.data() {
                q.push(Rec::take(src, len));
            }
        }
        cx.notify(&conn.ends[1 - usize::from(*side)], Events::IN);
        Ok(len)
    }

    fn send_dgram(
        &mut self,
        cx: &mut OpCtx<'_>,
        src: &mut dyn Buf,
        to: Option<&SockAddr>,
    ) -> Result<usize> {
        let LState::Dgram(rx) = &self.st else {
            return Err(Errno::ENOTCONN);
        };
        let explicit = to.map(local_name).transpose()?;
        let (peer, wr_shut, from) = {
            let q = rx.q.lock();
            (q.peer.clone(), q.wr_shut, q.name_addr())
        };
        if explicit.is_none() && peer.is_none() {
            return Err(Errno::ENOTCONN);
        }
        let len = src.remaining();
        let sndbuf = cx.opts().sndbuf();
        let charge = len + RECORD_OVERHEAD;
        if charge > sndbuf {
            return Err(Errno::EMSGSIZE);
        }
        if wr_shut {
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
            (None, Some(p)) => p.clone(),
            (None, None) => return Err(Errno::ENOTCONN),
        };
        let me = cx.me().id();
        let to_self = Arc::ptr_eq(&dst, rx);
        {
            let mut q = dst.q.lock();
            if q.closed {
                drop(q);
                if peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, &dst)) {
                    // The connected peer is gone: forget it, as Linux does.
                    rx.q.lock().peer = None;
                    cx.peer_gone(cx.me(), Events::OUT);
                }
                return Err(Errno::ECONNREFUSED);
            }
            if !to_self && q.peer_is_other_than(me) {
                return Err(Errno::EPERM);
            }
            if q.rd_shut {
                return Err(Errno::EPIPE);
            }
            if !to_self && !q.peer_is(me) && q.len() >= MAX_DGRAM_QLEN {
                cx.wait_on(&dst.owner, Events::ROOM);
                return Err(Errno::EAGAIN);
            }
            q.push(Datagram {
                data: Rec::take(src, len),
                from,
                sender: rx.clone(),
            });
            rx.wmem.fetch_add(charge, Ordering::AcqRel);
        }
        cx.notify(&dst.owner, Events::IN);
        Ok(len)
    }

    fn recv_conn(
        conn: &Conn,
        side: usize,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        let peek = flags.contains(MsgFlags::PEEK);
        let mut pipes = conn.pipes.lock();
        let (rx, _) = rx_tx(&mut pipes, side);
        let got = match rx.data_if_any() {
            Some(Data::Stream(q)) if q.len() > 0 => {
                let n = q.pop_into(dst, peek);
                Some((n, n, MsgFlags::empty()))
            }
            Some(Data::Records(q)) => q.pop_into(dst, peek).map(|(n, full)| {
                let f = if n < full {
                    MsgFlags::TRUNC | MsgFlags::EOR
                } else {
                    MsgFlags::EOR
                };
                (n, full, f)
            }),
            _ => None,
        };
        if let Some((len, full_len, out)) = got {
            drop(pipes);
            if !peek {
                cx.notify(&conn.ends[1 - side], Events::OUT);
            }
            return Ok(RecvInfo {
                len,
                full_len,
                flags: out,
                from: conn.name(1 - side),
                eof: false,
            });
        }
        if rx.reset {
            rx.reset = false;
            return Err(Errno::ECONNRESET);
        }
        if rx.wr_shut || rx.rd_shut {
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
        let Some(d) = q.front() else {
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
        if !peek && let Some(d) = q.pop() {
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
        let target = match &self.st {
            LState::Idle(None) => Target::Bound,
            LState::Dgram(d) if d.q.lock().name.is_none() => Target::Dgram(d.clone()),
            _ => return Err(Errno::EINVAL),
        };
        {
            let mut map = self.names.map.lock();
            if map.contains_key(&name) {
                return Err(Errno::EADDRINUSE);
            }
            map.insert(
                name.clone(),
                Entry {
                    owner: cx.me().id(),
                    ty: cx.me().ty(),
                    target,
                },
            );
        }
        match &mut self.st {
            LState::Dgram(d) => d.q.lock().name = Some(name),
            st => *st = LState::Idle(Some(Box::new(name))),
        }
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
            LState::Idle(Some(name)) => {
                let name: &LocalName = name;
                let b = Arc::new(Backlog::new(cx.me().clone(), name.clone(), backlog));
                if let Some(e) = self.names.map.lock().get_mut(name)
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
        if cx.me().ty() == SockType::DGRAM {
            self.connect_dgram(cx, addr)
        } else {
            self.connect_conn(cx, addr)
        }
    }

    fn accept(&mut self, cx: &mut OpCtx<'_>) -> Result<Accepted> {
        let LState::Listening(b) = &self.st else {
            return Err(Errno::EINVAL);
        };
        let Some(Pending { conn, embryo }) = b.q.lock().pending.pop_front() else {
            return Err(Errno::EAGAIN);
        };
        cx.notify(cx.me(), Events::ROOM);
        let peer_gone = conn.pipes.lock()[1].writer_closed;
        let peer = conn.name(0);
        embryo.with_proto(|s| s.st = LState::Connected { conn, side: 1 });
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
        match cx.me().ty() {
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
            LState::Connected { conn, side } => {
                Self::recv_conn(conn, usize::from(*side), cx, dst, flags)
            }
            LState::Dgram(d) => Self::recv_dgram(d, cx, dst, flags),
            // Linux: a stream socket that is not connected says EINVAL, seqpacket ENOTCONN.
            _ if cx.me().ty() == SockType::STREAM => Err(Errno::EINVAL),
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn shutdown(&mut self, cx: &mut OpCtx<'_>, how: Shutdown) -> Result<()> {
        match &self.st {
            LState::Connected { conn, side } => {
                {
                    let mut pipes = conn.pipes.lock();
                    let (rx, tx) = rx_tx(&mut pipes, usize::from(*side));
                    rx.rd_shut |= how.read();
                    tx.wr_shut |= how.write();
                }
                cx.notify(&conn.ends[1 - usize::from(*side)], CHANGED);
                cx.notify(cx.me(), CHANGED);
                Ok(())
            }
            LState::Dgram(d) => {
                {
                    let mut q = d.q.lock();
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
        let me = cx.me().id();
        match core::mem::replace(&mut self.st, LState::Closed) {
            LState::Closed => {}
            LState::Idle(name) => {
                if let Some(n) = name {
                    self.names.release(&n, me);
                }
            }
            LState::Listening(b) => {
                self.names.release(&b.name, me);
                let pending = {
                    let mut q = b.q.lock();
                    q.closed = true;
                    core::mem::take(&mut q.pending)
                };
                // Connections nobody accepted are reset: their clients read ECONNRESET, then
                // end of file, and their writes fail with EPIPE.
                for p in pending {
                    {
                        let mut pipes = p.conn.pipes.lock();
                        let (client_rx, server_rx) = rx_tx(&mut pipes, 0);
                        client_rx.wr_shut = true;
                        client_rx.writer_closed = true;
                        client_rx.reset = true;
                        server_rx.rd_shut = true;
                        server_rx.clear();
                    }
                    cx.peer_gone(&p.conn.ends[0], CHANGED);
                }
            }
            LState::Connected { conn, side } => {
                let side = usize::from(side);
                if let Some(n) = conn.own_name(side) {
                    self.names.release(n, me);
                }
                {
                    let mut pipes = conn.pipes.lock();
                    let (rx, tx) = rx_tx(&mut pipes, side);
                    rx.rd_shut = true;
                    tx.reset |= rx.has_data();
                    rx.clear();
                    tx.wr_shut = true;
                    tx.writer_closed = true;
                }
                cx.peer_gone(&conn.ends[1 - side], CHANGED);
            }
            LState::Dgram(d) => {
                let (name, recs) = {
                    let mut q = d.q.lock();
                    q.closed = true;
                    q.peer = None;
                    (q.name.clone(), q.drain())
                };
                if let Some(n) = name {
                    self.names.release(&n, me);
                }
                for r in recs {
                    r.sender.wmem.fetch_sub(r.charge(), Ordering::AcqRel);
                    cx.notify(&r.sender.owner, Events::OUT);
                }
            }
        }
    }

    fn readiness(&self, opts: &Options) -> Events {
        let sndbuf = opts.sndbuf();
        match &self.st {
            // Linux: a connection-type socket that is not connected polls as writable and hung up.
            LState::Idle(_) => Events::OUT | Events::HUP,
            LState::Listening(b) => {
                if b.q.lock().pending.is_empty() {
                    Events::empty()
                } else {
                    Events::IN
                }
            }
            LState::Connected { conn, side } => {
                let mut pipes = conn.pipes.lock();
                let (rx, tx) = rx_tx(&mut pipes, usize::from(*side));
                let rcv_shut = rx.wr_shut || rx.rd_shut;
                let snd_shut = tx.wr_shut || tx.rd_shut;
                let mut ev = Events::empty();
                if rx.has_data() || rcv_shut {
                    ev |= Events::IN;
                }
                if rx.reset {
                    ev |= Events::ERR;
                }
                if tx.has_room(sndbuf) || snd_shut {
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
            LState::Dgram(d) => {
                let mut ev = Events::empty();
                let (rd, wr, peer) = {
                    let q = d.q.lock();
                    if q.len() > 0 || q.rd_shut {
                        ev |= Events::IN;
                    }
                    (q.rd_shut, q.wr_shut, q.peer.clone())
                };
                if rd {
                    ev |= Events::RDHUP;
                }
                if rd && wr {
                    ev |= Events::HUP;
                }
                let mut writable = d.wmem.load(Ordering::Acquire) + RECORD_OVERHEAD <= sndbuf;
                if let (true, Some(p)) = (writable, peer) {
                    let q = p.q.lock();
                    let me = d.owner.id();
                    writable = q.closed || q.peer_is(me) || q.len() < MAX_DGRAM_QLEN;
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
        match &self.st {
            LState::Idle(n) => addr_of(&n.as_deref().cloned()),
            LState::Listening(b) => SockAddr::Local(b.name.clone()),
            LState::Connected { conn, side } => conn.name(usize::from(*side)),
            LState::Dgram(d) => d.q.lock().name_addr(),
            LState::Closed => SockAddr::Unnamed,
        }
    }

    fn peer_addr(&self) -> Option<SockAddr> {
        match &self.st {
            LState::Connected { conn, side } => Some(conn.name(1 - usize::from(*side))),
            LState::Dgram(d) => {
                let peer = d.q.lock().peer.clone()?;
                Some(peer.q.lock().name_addr())
            }
            _ => None,
        }
    }

    fn take_error(&mut self) -> Option<Errno> {
        match &self.st {
            LState::Connected { conn, side } => {
                let mut pipes = conn.pipes.lock();
                core::mem::take(&mut pipes[usize::from(*side)].reset).then_some(Errno::ECONNRESET)
            }
            _ => None,
        }
    }

    fn has_error(&self) -> bool {
        match &self.st {
            LState::Connected { conn, side } => conn.pipes.lock()[usize::from(*side)].reset,
            _ => false,
        }
    }

    fn queues(&self) -> Queues {
        match &self.st {
            LState::Connected { conn, side } => {
                let pipes = conn.pipes.lock();
                Queues {
                    rx: pipes[usize::from(*side)].bytes(),
                    tx: pipes[1 - usize::from(*side)].bytes(),
                    ..Queues::default()
                }
            }
            LState::Listening(b) => {
                let q = b.q.lock();
                Queues {
                    pending: q.pending.len(),
                    backlog: q.max,
                    ..Queues::default()
                }
            }
            LState::Dgram(d) => Queues {
                rx: d.q.lock().payload as usize,
                tx: d.wmem.load(Ordering::Acquire),
                ..Queues::default()
            },
            _ => Queues::default(),
        }
    }

    fn nread(&self) -> usize {
        match &self.st {
            LState::Connected { conn, side } => conn.pipes.lock()[usize::from(*side)].nread(),
            LState::Dgram(d) => d.q.lock().front().map_or(0, |r| r.data.len()),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod size_budget {
    use core::mem::size_of;

    /// An idle connected pair must stay under 512 bytes with its table entries: two socket
    /// objects and a connection (or two datagram boxes), each one heap block. These budgets
    /// keep each block in the allocator size class it fits in today.
    #[test]
    fn idle_pair_objects_stay_small() {
        assert!(size_of::<crate::socket::SocketCore<super::LocalSock>>() <= 80);
        assert!(size_of::<super::conn::Conn>() <= 80);
        assert!(size_of::<super::dgram::DgramBox>() <= 72);
        assert!(size_of::<super::LState>() <= 16);
    }
}
