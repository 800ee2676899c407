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

use crate::account::Charge;
use crate::addr::{LocalName, SockAddr};
use crate::buf::{Chain, RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::{Accepted, Family, OpCtx, Progress, Protocol, SockRef};
use crate::opt::Options;
use crate::socket::SocketCore;
use crate::stack::StackRef;
use crate::sync::Mutex;
use crate::types::{Cred, Domain, MsgFlags, Queues, RecvInfo, Shutdown, SockType};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use conn::{Backlog, Conn, Data, Pending, PipeFlags, rx_tx};
use dgram::{Datagram, DgramBox, DgramQ};
use queue::{COPY_OUTSIDE, RECORD_OVERHEAD, Rec, copy_in, deliver_all};

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
    // 0, or PF_UNIX itself, as Linux accepts; either way the socket's protocol (SO_PROTOCOL)
    // is 0, as on Linux.
    match protocol {
        0 | 1 => Ok(0),
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
        cred: Option<Cred>,
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
            if let Some(c) = cred {
                ba.q.lock().set_peer_cred(c);
                bb.q.lock().set_peer_cred(c);
            }
            a.with_proto(|p| p.st = LState::Dgram(ba));
            b.with_proto(|p| p.st = LState::Dgram(bb));
        } else {
            let conn = Arc::new(Conn::new(
                [ra.clone(), rb.clone()],
                ty.is_record(),
                [None, None],
                [cred, cred],
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
                [cx.cred(), backlog.cred],
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
        src: SendBuf<'_>,
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
        let side = usize::from(*side);
        let n = {
            let mut pipes = conn.pipes.lock();
            let (_, tx) = rx_tx(&mut pipes, side);
            if tx.shut() {
                return Err(Errno::EPIPE);
            }
            let want = src.remaining();
            if want == 0 {
                return Ok(0);
            }
            let sndbuf = cx.opts().sndbuf();
            tx.set_cap(sndbuf);
            let n = want.min(sndbuf.saturating_sub(tx.used()));
            if n == 0 {
                return Err(Errno::EAGAIN);
            }
            let acct = cx.account();
            let n = match acct {
                None => n,
                Some(a) => {
                    let k = a.charge_upto(n);
                    if k == 0 {
                        return Err(Errno::ENOBUFS);
                    }
                    tx.bind_account(a);
                    k
                }
            };
            match src {
                SendBuf::Copy(b) if n >= COPY_OUTSIDE => {
                    // Copy without the lock, so the reader can drain meanwhile; room only
                    // grows until then (this socket is the pipe's only writer).
                    let spare = tx.take_spare();
                    drop(pipes);
                    let bytes = copy_in(b, n, spare);
                    let mut pipes = conn.pipes.lock();
                    let (_, tx) = rx_tx(&mut pipes, side);
                    if tx.shut() {
                        if let Some(a) = acct {
                            a.credit(n);
                        }
                        return Err(Errno::EPIPE);
                    }
                    if let Some(a) = acct {
                        // The queue may have been replaced meanwhile (this send is
                        // charged already).
                        tx.bind_account(a);
                    }
                    tx.stream().ok_or(Errno::EINVAL)?.push_bytes(bytes);
                }
                src => tx.stream().ok_or(Errno::EINVAL)?.push(src, n),
            }
            n
        };
        cx.notify(&conn.ends[1 - side], Events::IN);
        Ok(n)
    }

    fn send_seqpacket(&mut self, cx: &mut OpCtx<'_>, src: SendBuf<'_>) -> Result<usize> {
        let LState::Connected { conn, side } = &self.st else {
            return Err(Errno::ENOTCONN);
        };
        let side = usize::from(*side);
        let len = src.remaining();
        let sndbuf = cx.opts().sndbuf();
        {
            let mut pipes = conn.pipes.lock();
            let (rx, tx) = rx_tx(&mut pipes, side);
            // As on Linux, a pending reset is reported (and cleared) by the next send.
            if rx.take(PipeFlags::RESET) {
                return Err(Errno::ECONNRESET);
            }
            if len + RECORD_OVERHEAD > sndbuf {
                return Err(Errno::EMSGSIZE);
            }
            if tx.shut() {
                return Err(Errno::EPIPE);
            }
            tx.set_cap(sndbuf);
            if tx.used() + len + RECORD_OVERHEAD > sndbuf {
                return Err(Errno::EAGAIN);
            }
            let acct = cx.account();
            if let Some(a) = acct {
                a.charge_all(len + RECORD_OVERHEAD)?;
                tx.bind_account(a);
            }
            match src {
                SendBuf::Copy(b) if len >= COPY_OUTSIDE => {
                    let spare = tx.take_spare();
                    drop(pipes);
                    let rec = Rec::take(SendBuf::Copy(b), len, spare);
                    let mut pipes = conn.pipes.lock();
                    let (_, tx) = rx_tx(&mut pipes, side);
                    if tx.shut() {
                        if let Some(a) = acct {
                            a.credit(len + RECORD_OVERHEAD);
                        }
                        return Err(Errno::EPIPE);
                    }
                    if let Some(a) = acct {
                        // The queue may have been replaced meanwhile (this send is
                        // charged already).
                        tx.bind_account(a);
                    }
                    tx.records().ok_or(Errno::EINVAL)?.push(rec);
                }
                src => tx.records().ok_or(Errno::EINVAL)?.push_from(src, len),
            }
        }
        cx.notify(&conn.ends[1 - side], Events::IN);
        Ok(len)
    }

    fn send_dgram(
        &mut self,
        cx: &mut OpCtx<'_>,
        src: SendBuf<'_>,
        to: Option<&SockAddr>,
    ) -> Result<usize> {
        let LState::Dgram(rx) = &self.st else {
            return Err(Errno::ENOTCONN);
        };
        let explicit = to.map(local_name).transpose()?;
        let len = src.remaining();
        let large = matches!(src, SendBuf::Copy(_)) && len >= COPY_OUTSIDE;
        let (peer, wr_shut, from, spare) = {
            let mut q = rx.q.lock();
            let spare = if large { q.take_spare() } else { None };
            (q.peer.clone(), q.wr_shut, q.name_addr(), spare)
        };
        if explicit.is_none() && peer.is_none() {
            return Err(Errno::ENOTCONN);
        }
        let sndbuf = cx.opts().sndbuf();
        let charge = len + RECORD_OVERHEAD;
        if charge > sndbuf {
            return Err(Errno::EMSGSIZE);
        }
        if wr_shut {
            return Err(Errno::EPIPE);
        }
        if rx.wmem() + charge > sndbuf {
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
        // Whether the receiver takes this record now; `Closed` means it is gone.
        let admit = |q: &DgramQ| -> core::result::Result<(), Option<Errno>> {
            if q.closed {
                return Err(None);
            }
            // A socket connected elsewhere takes nothing from others, itself included (as
            // Linux's unix_may_send).
            if q.peer_is_other_than(me) {
                return Err(Some(Errno::EPERM));
            }
            if q.rd_shut {
                return Err(Some(Errno::EPIPE));
            }
            if !to_self && !q.peer_is(me) && q.len() >= MAX_DGRAM_QLEN {
                return Err(Some(Errno::EAGAIN));
            }
            Ok(())
        };
        let refused = |cx: &mut OpCtx<'_>, why: Option<Errno>| -> Errno {
            match why {
                Some(e) => {
                    if e == Errno::EAGAIN {
                        cx.wait_on(&dst.owner, Events::ROOM);
                    }
                    e
                }
                None => {
                    if peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, &dst)) {
                        // The connected peer is gone: forget it, as Linux does.
                        rx.q.lock().peer = None;
                        cx.peer_gone(cx.me(), Events::OUT);
                    }
                    Errno::ECONNREFUSED
                }
            }
        };
        // A large record is checked first and copied outside the receiver's lock.
        let mut src = Some(src);
        let copied = if large {
            if let Err(why) = admit(&dst.q.lock()) {
                return Err(refused(cx, why));
            }
            src.take().map(|s| Rec::take(s, len, spare))
        } else {
            None
        };
        {
            let mut q = dst.q.lock();
            if let Err(why) = admit(&q) {
                drop(q);
                return Err(refused(cx, why));
            }
            let held = match cx.account() {
                None => None,
                Some(a) => Some(Charge::take(a, charge)?),
            };
            let data = match (copied, src) {
                (Some(rec), _) => rec,
                (None, Some(src)) => q.take_rec(src, len),
                (None, None) => return Err(Errno::EINVAL),
            };
            q.push(Datagram {
                data,
                from,
                sender: rx.clone(),
                _charge: held,
            });
            rx.charge(charge, sndbuf);
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
        /// What was taken from the queue: copied already, or to copy outside the lock.
        enum Got {
            Copied(usize, usize),
            Segs(Chain),
            Rec(Rec),
        }
        let peek = flags.contains(MsgFlags::PEEK);
        let (got, records, wake_writer) = {
            let mut pipes = conn.pipes.lock();
            let (rx, _) = rx_tx(&mut pipes, side);
            // A seqpacket socket reports a reset before its queued records (Linux checks
            // the socket error first for records); a stream after its bytes (SPEC 3).
            if rx.is(PipeFlags::RECORDS) && rx.take(PipeFlags::RESET) {
                return Err(Errno::ECONNRESET);
            }
            let before = rx.used();
            let room = dst.room();
            let got = match rx.data_if_any() {
                Some(Data::Stream(q)) if q.len() > 0 => {
                    let n = room.min(q.len());
                    if n < COPY_OUTSIDE && !dst.shares() {
                        let k = q.pop_into(dst, peek);
                        Some((Got::Copied(k, k), false))
                    } else {
                        Some((Got::Segs(q.pop_segs(n, peek)), false))
                    }
                }
                Some(Data::Records(q)) if !q.is_empty() => {
                    if q.front_len() < COPY_OUTSIDE && !dst.shares() {
                        q.pop_into(dst, peek)
                            .map(|(k, full)| (Got::Copied(k, full), true))
                    } else {
                        q.pop(peek).map(|r| (Got::Rec(r), true))
                    }
                }
                _ => None,
            };
            let Some((got, records)) = got else {
                if rx.take(PipeFlags::RESET) {
                    return Err(Errno::ECONNRESET);
                }
                if rx.shut() {
                    return Ok(RecvInfo {
                        eof: true,
                        ..RecvInfo::default()
                    });
                }
                return Err(Errno::EAGAIN);
            };
            if !peek {
                rx.credit_read(before);
            }
            (got, records, !peek && rx.drained_enough(before))
        };
        let (len, full_len, spare) = match got {
            Got::Copied(k, full) => (k, full, None),
            Got::Segs(c) => {
                let n = c.len();
                (n, n, deliver_all(c, dst))
            }
            Got::Rec(r) => {
                let full = r.len();
                let (k, spare) = r.deliver(dst);
                (k, full, spare)
            }
        };
        if let Some(m) = spare {
            rx_tx(&mut conn.pipes.lock(), side).0.give_spare(m);
        }
        if wake_writer {
            cx.notify(&conn.ends[1 - side], Events::OUT);
        }
        let out = match (records, len < full_len) {
            (false, _) => MsgFlags::empty(),
            (true, false) => MsgFlags::EOR,
            (true, true) => MsgFlags::EOR | MsgFlags::TRUNC,
        };
        Ok(RecvInfo {
            len,
            full_len,
            flags: out,
            from: conn.name(1 - side),
            eof: false,
        })
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
        let full_len = d.data.len();
        let from = d.from.clone();
        let len;
        if peek {
            if full_len < COPY_OUTSIDE {
                len = d.data.put_into(dst);
            } else {
                let data = d.data.clone();
                drop(q);
                len = data.put_into(dst);
            }
        } else if let Some(d) = q.pop() {
            drop(q);
            let charge = d.charge();
            let (k, spare) = d.data.deliver(dst);
            len = k;
            if let Some(m) = spare {
                d.sender.q.lock().give_spare(m);
            }
            if d.sender.uncharge(charge) {
                cx.notify(&d.sender.owner, Events::OUT);
            }
            cx.notify(cx.me(), Events::ROOM);
        } else {
            return Err(Errno::EAGAIN);
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
                let b = Arc::new(Backlog::new(
                    cx.me().clone(),
                    name.clone(),
                    backlog,
                    cx.cred(),
                ));
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
        let peer_gone = conn.pipes.lock()[1].is(PipeFlags::WRITER_CLOSED);
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
        src: SendBuf<'_>,
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
                    if how.read() {
                        rx.set(PipeFlags::RD_SHUT);
                    }
                    if how.write() {
                        tx.set(PipeFlags::WR_SHUT);
                    }
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
                        client_rx
                            .set(PipeFlags::WR_SHUT | PipeFlags::WRITER_CLOSED | PipeFlags::RESET);
                        server_rx.set(PipeFlags::RD_SHUT);
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
                    rx.set(PipeFlags::RD_SHUT);
                    if rx.has_data() {
                        tx.set(PipeFlags::RESET);
                    }
                    rx.clear();
                    tx.set(PipeFlags::WR_SHUT | PipeFlags::WRITER_CLOSED);
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
                    if r.sender.uncharge(r.charge()) {
                        cx.notify(&r.sender.owner, Events::OUT);
                    }
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
                let rcv_shut = rx.shut();
                let snd_shut = tx.shut();
                let mut ev = Events::empty();
                if rx.has_data() || rcv_shut {
                    ev |= Events::IN;
                }
                if rx.is(PipeFlags::RESET) {
                    ev |= Events::ERR;
                }
                if tx.writable(sndbuf) || snd_shut {
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
                let mut writable = conn::writable(d.wmem(), sndbuf);
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
                pipes[usize::from(*side)]
                    .take(PipeFlags::RESET)
                    .then_some(Errno::ECONNRESET)
            }
            _ => None,
        }
    }

    fn has_error(&self) -> bool {
        match &self.st {
            LState::Connected { conn, side } => {
                conn.pipes.lock()[usize::from(*side)].is(PipeFlags::RESET)
            }
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
                tx: d.wmem(),
                ..Queues::default()
            },
            _ => Queues::default(),
        }
    }

    fn peer_cred(&self) -> Option<Cred> {
        match &self.st {
            LState::Connected { conn, side } => conn.cred(1 - usize::from(*side)),
            // Linux gives a listener its own credentials (`init_peercred` at `listen`).
            LState::Listening(b) => b.cred,
            LState::Dgram(d) => d.q.lock().peer_cred(),
            _ => None,
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

#[cfg(test)]
mod backlog_tests {
    use crate::{Domain, Errno, SockAddr, SockType, Stack};

    fn setup(backlog: usize) -> (Stack, crate::Socket) {
        let st = Stack::new();
        let l = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        l.bind(&SockAddr::local("b").unwrap()).unwrap();
        l.listen(backlog).unwrap();
        (st, l)
    }

    #[test]
    fn holds_exactly_backlog_connections_oldest_first() {
        let (st, l) = setup(3);
        let clients: alloc::vec::Vec<_> = (0..3)
            .map(|i| {
                let c = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
                c.bind(&SockAddr::local(alloc::format!("c{i}")).unwrap())
                    .unwrap();
                c.try_connect(&SockAddr::local("b").unwrap()).unwrap();
                c
            })
            .collect();
        let extra = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        assert_eq!(
            extra.try_connect(&SockAddr::local("b").unwrap()),
            Err(Errno::EAGAIN)
        );
        for i in 0..3 {
            let (_, peer) = l.try_accept().unwrap();
            assert_eq!(peer, SockAddr::local(alloc::format!("c{i}")).unwrap());
        }
        assert_eq!(l.try_accept().unwrap_err(), Errno::EAGAIN);
        extra.try_connect(&SockAddr::local("b").unwrap()).unwrap();
        drop((clients, extra, l));
    }

    #[test]
    fn closing_the_listener_resets_the_queue_and_frees_the_name() {
        let (st, l) = setup(2);
        let c = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        c.try_connect(&SockAddr::local("b").unwrap()).unwrap();
        assert_eq!(l.info().unwrap().queues.pending, 1);
        drop(l);
        assert!(st.family(Domain::LOCAL).unwrap().bound().is_empty());
        assert!(st.family(Domain::LOCAL).unwrap().listening().is_empty());
        let mut buf = [0u8; 4];
        assert_eq!(c.recv(&mut buf), Err(Errno::ECONNRESET));
        drop(c);
        assert_eq!(st.socket_count(), 0);
    }
}

#[cfg(test)]
mod account_tests {
    use crate::{Account, Domain, Errno, MsgFlags, SockAddr, SockType, Stack};
    use alloc::vec;

    const OVERHEAD: usize = super::queue::RECORD_OVERHEAD;

    #[test]
    fn stream_bytes_are_charged_until_read_and_a_write_fits_partly() {
        let st = Stack::new();
        let acct = Account::new(10, 10_000);
        let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        a.set_account(acct.clone()).unwrap();
        assert_eq!(acct.sockets(), 1);
        assert_eq!(
            a.send(&[1u8; 6000]),
            Ok(6000),
            "large: copied outside the lock"
        );
        assert_eq!(a.send(&[2u8; 6000]), Ok(4000), "the part that fits");
        assert_eq!(acct.bytes(), 10_000);
        assert_eq!(
            a.sendmsg(&mut &[3u8; 10][..], None, MsgFlags::DONTWAIT),
            Err(Errno::ENOBUFS)
        );
        let mut buf = vec![0u8; 7000];
        assert_eq!(b.recv(&mut buf), Ok(7000));
        assert_eq!(acct.bytes(), 3000);
        assert_eq!(a.send(&[4u8; 100]), Ok(100), "small: packed");
        assert_eq!(acct.bytes(), 3100);
        // Closing with unread data drops it: every byte comes back.
        drop(b);
        assert_eq!(acct.bytes(), 0);
        drop(a);
        assert_eq!((acct.sockets(), acct.bytes()), (0, 0));
    }

    #[test]
    fn records_go_whole_or_fail_with_enobufs() {
        let st = Stack::new();
        let acct = Account::new(10, 2 * (100 + OVERHEAD) + 50);
        for ty in [SockType::SEQPACKET, SockType::DGRAM] {
            let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
            a.set_account(acct.clone()).unwrap();
            assert_eq!(a.send(&[1u8; 100]), Ok(100));
            assert_eq!(a.send(&[2u8; 100]), Ok(100));
            assert_eq!(acct.bytes(), 2 * (100 + OVERHEAD));
            assert_eq!(a.send(&[3u8; 100]), Err(Errno::ENOBUFS), "{ty:?}");
            let mut buf = [0u8; 10];
            assert_eq!(b.recv(&mut buf), Ok(10), "truncated: the rest is dropped");
            assert_eq!(acct.bytes(), 100 + OVERHEAD, "{ty:?}");
            assert_eq!(a.send(&[4u8; 5000]), Err(Errno::ENOBUFS), "{ty:?}");
            drop(b);
            assert_eq!(acct.bytes(), 0, "{ty:?}: dropped with the receiver");
            drop(a);
        }
        assert_eq!((acct.sockets(), acct.bytes()), (0, 0));
    }

    #[test]
    fn bytes_queued_to_a_connection_never_accepted_come_back_on_reset() {
        let st = Stack::new();
        let server = Account::new(10, 1 << 20);
        let client = Account::new(10, 1 << 20);
        let l = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        l.set_account(server.clone()).unwrap();
        l.bind(&SockAddr::local("acct").unwrap()).unwrap();
        l.listen(4).unwrap();
        let mut cs = vec![];
        for _ in 0..3 {
            let c = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
            c.set_account(client.clone()).unwrap();
            c.connect(&SockAddr::local("acct").unwrap()).unwrap();
            assert_eq!(c.send(&[7u8; 9000]), Ok(9000));
            cs.push(c);
        }
        assert_eq!(client.bytes(), 27_000);
        assert_eq!(server.sockets(), 1, "not accepted: not counted");
        // One is accepted; it joins the listener's account.
        let (conn, _) = l.accept().unwrap();
        assert_eq!(server.sockets(), 2);
        assert_eq!(conn.send(b"hello"), Ok(5));
        assert_eq!(server.bytes(), 5);
        drop(conn);
        assert_eq!(
            client.bytes(),
            18_000,
            "the accepted one's unread bytes dropped"
        );
        drop(l);
        assert_eq!(client.bytes(), 0, "the rest reset with the listener");
        assert_eq!(server.sockets(), 0);
        let mut buf = [0u8; 8];
        assert_eq!(
            cs[0].recv(&mut buf),
            Ok(5),
            "what the server sent is still there"
        );
        assert_eq!(server.bytes(), 0);
        drop(cs);
        assert_eq!((client.sockets(), client.bytes()), (0, 0));
        assert_eq!(st.socket_count(), 0);
    }

    #[test]
    fn accept_at_the_socket_limit_is_emfile_and_dequeues_nothing() {
        let st = Stack::new();
        let acct = Account::new(2, 1 << 20);
        let l = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
        l.set_account(acct.clone()).unwrap();
        l.bind(&SockAddr::local("lim").unwrap()).unwrap();
        l.listen(4).unwrap();
        let c1 = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
        c1.connect(&SockAddr::local("lim").unwrap()).unwrap();
        let c2 = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
        c2.connect(&SockAddr::local("lim").unwrap()).unwrap();
        c2.send(b"second").unwrap();
        let (a1, _) = l.try_accept().unwrap();
        assert_eq!(l.try_accept().unwrap_err(), Errno::EMFILE);
        assert_eq!(l.info().unwrap().queues.pending, 1, "still queued");
        let other = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
        assert_eq!(other.set_account(acct.clone()), Err(Errno::EMFILE));
        drop(a1);
        let (a2, _) = l.try_accept().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(a2.recv(&mut buf), Ok(6));
        assert_eq!(a2.set_account(Account::new(9, 9)), Err(Errno::EINVAL));
        drop((a2, l, c1, c2, other));
        assert_eq!((acct.sockets(), acct.bytes()), (0, 0));
    }

    #[test]
    fn datagrams_to_a_closing_receiver_are_credited() {
        let st = Stack::new();
        let acct = Account::new(10, 1 << 20);
        let rx = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
        rx.bind(&SockAddr::local("dg").unwrap()).unwrap();
        let tx = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
        tx.set_account(acct.clone()).unwrap();
        let to = SockAddr::local("dg").unwrap();
        for n in [10usize, 5000] {
            assert_eq!(tx.send_to(&vec![1u8; n], &to), Ok(n));
        }
        assert_eq!(acct.bytes(), 5010 + 2 * OVERHEAD);
        drop(rx);
        assert_eq!(acct.bytes(), 0);
        drop(tx);
        assert_eq!(acct.sockets(), 0);
    }
}
