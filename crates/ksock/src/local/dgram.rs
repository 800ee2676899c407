//! Datagram sockets: the connectionless [`Protocol`] of the local family.
//!
//! A datagram socket owns a [`DgramBox`] (`dgram_box.rs`): senders reach it through the
//! namespace, or as their default peer. `connect` only sets that default peer; a receiver
//! takes at most [`MAX_DGRAM_QLEN`] records from senders it is not connected to, and each
//! sender is bounded by its own send buffer until its records are read (SPEC 3).

use super::connected::TOO_LARGE;
use super::dgram_box::{Datagram, DgramBox, DgramQ, MAX_DGRAM_QLEN};
use super::queue::{COPY_OUTSIDE, RECORD_OVERHEAD, Rec};
use super::{CHANGED, Names, Target, conn, local_name};
use crate::account::Charge;
use crate::addr::SockAddr;
use crate::buf::{RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::{Accepted, OpCtx, Progress, Protocol};
use crate::opt::Options;
use crate::types::{Cred, MsgFlags, Queues, RecvInfo, Shutdown, SockType};
use alloc::sync::Arc;

/// Why a send has nowhere to go (`ENOTCONN`).
const NO_PEER: &str = "the socket is not connected and no address was given";
/// Why a receiver refuses (`EPERM`): it takes records from its peer only.
const CONNECTED_ELSEWHERE: &str = "the receiver is connected to another socket";
/// Why a send or connect is refused (`ECONNREFUSED`): the named socket is gone.
const CLOSED: &str = "the socket bound to that name has closed";

/// A datagram socket's protocol state.
pub(crate) struct DgramSock {
    names: Arc<Names>,
    /// Its box: set right after the socket object is made (the box names its owner), taken
    /// at close (which ends the cycle between the two).
    rx: Option<Arc<DgramBox>>,
}

impl DgramSock {
    /// A socket whose box is not set yet.
    pub(super) fn new(names: Arc<Names>) -> DgramSock {
        DgramSock { names, rx: None }
    }

    /// Gives the socket its box.
    pub(super) fn set_box(&mut self, rx: Arc<DgramBox>) {
        self.rx = Some(rx);
    }

    /// Looks up a datagram socket by name: no such name `ECONNREFUSED`, another type
    /// `EPROTOTYPE`.
    fn lookup(&self, cx: &mut OpCtx<'_>, name: &crate::addr::LocalName) -> Result<Arc<DgramBox>> {
        let e = self.names.lookup(cx, name)?;
        if e.ty != SockType::DGRAM {
            let why = "the name is bound to a socket of another type";
            return Err(cx.fail(Errno::EPROTOTYPE, why));
        }
        match e.target {
            Target::Dgram(b) => Ok(b),
            _ => Err(cx.fail(Errno::ECONNREFUSED, "no socket is bound to that name")),
        }
    }
}

impl Protocol for DgramSock {
    fn bind(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<()> {
        let name = local_name(addr)?;
        let Some(d) = self.rx.as_ref().filter(|d| d.q.lock().name.is_none()) else {
            return Err(cx.fail(Errno::EINVAL, "the socket is already bound"));
        };
        self.names.bind(cx, &name, Target::Dgram(d.clone()))?;
        d.q.lock().name = Some(name);
        Ok(())
    }

    /// Linux's `unix_autobind`: the next free name (`Names::autobind`).
    fn autobind(&mut self, cx: &mut OpCtx<'_>) -> Result<()> {
        let Some(d) = self.rx.as_ref().filter(|d| d.q.lock().name.is_none()) else {
            return Err(Errno::EINVAL);
        };
        let name = self.names.autobind(cx, Target::Dgram(d.clone()))?;
        d.q.lock().name = Some(name);
        Ok(())
    }

    /// Datagram sockets do not listen (the core refuses it first: `EOPNOTSUPP`).
    fn listen(&mut self, _cx: &mut OpCtx<'_>, _backlog: usize) -> Result<()> {
        Err(Errno::EINVAL)
    }

    fn connect(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        let name = local_name(addr)?;
        let Some(rx) = &self.rx else {
            return Err(Errno::EINVAL);
        };
        let dst = self.lookup(cx, &name)?;
        let me = cx.me().id();
        {
            let q = dst.q.lock();
            if q.closed {
                return Err(cx.fail(Errno::ECONNREFUSED, CLOSED));
            }
            if q.peer_is_other_than(me) {
                return Err(cx.fail(Errno::EPERM, CONNECTED_ELSEWHERE));
            }
        }
        rx.q.lock().peer = Some(dst);
        // Sends that waited for room at the old peer may now go elsewhere.
        cx.notify(cx.me(), Events::OUT);
        Ok(Progress::Done)
    }

    /// Datagram sockets accept nothing (the core refuses it first: `EOPNOTSUPP`).
    fn accept(&mut self, _cx: &mut OpCtx<'_>) -> Result<Accepted> {
        Err(Errno::EINVAL)
    }

    fn send(
        &mut self,
        cx: &mut OpCtx<'_>,
        src: SendBuf<'_>,
        to: Option<&SockAddr>,
        _flags: MsgFlags,
    ) -> Result<usize> {
        let Some(rx) = &self.rx else {
            return Err(cx.fail(Errno::ENOTCONN, NO_PEER));
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
            return Err(cx.fail(Errno::ENOTCONN, NO_PEER));
        }
        let sndbuf = cx.opts().sndbuf();
        let charge = len + RECORD_OVERHEAD;
        if charge > sndbuf {
            return Err(cx.fail(Errno::EMSGSIZE, TOO_LARGE));
        }
        if wr_shut {
            return Err(cx.fail(Errno::EPIPE, "this socket's write side is shut down"));
        }
        if rx.wmem() + charge > sndbuf {
            return Err(cx.fail(Errno::EAGAIN, "the send buffer is full"));
        }
        let dst = match (&explicit, peer.as_ref()) {
            (Some(name), _) => self.lookup(cx, name)?,
            (None, Some(p)) => p.clone(),
            (None, None) => return Err(cx.fail(Errno::ENOTCONN, NO_PEER)),
        };
        let me = cx.me().id();
        let to_self = Arc::ptr_eq(&dst, rx);
        // Whether the receiver takes this record now; `Closed` means it is gone.
        type Refusal = Option<(Errno, &'static str)>;
        let admit = |q: &DgramQ| -> core::result::Result<(), Refusal> {
            if q.closed {
                return Err(None);
            }
            // A socket connected elsewhere takes nothing from others, itself included (as
            // Linux's unix_may_send).
            if q.peer_is_other_than(me) {
                return Err(Some((Errno::EPERM, CONNECTED_ELSEWHERE)));
            }
            if q.rd_shut {
                let why = "the receiver has shut its read side";
                return Err(Some((Errno::EPIPE, why)));
            }
            if !to_self && !q.peer_is(me) && q.len() >= MAX_DGRAM_QLEN {
                return Err(Some((Errno::EAGAIN, "the receiver's queue is full")));
            }
            Ok(())
        };
        let refused = |cx: &mut OpCtx<'_>, why: Refusal| -> Errno {
            match why {
                Some((e, why)) => {
                    if e == Errno::EAGAIN {
                        cx.wait_on(&dst.owner, Events::ROOM);
                    }
                    cx.fail(e, why)
                }
                None => {
                    if peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, &dst)) {
                        // The connected peer is gone: forget it, as Linux does.
                        rx.q.lock().peer = None;
                        cx.peer_gone(cx.me(), Events::OUT);
                        return cx.fail(Errno::ECONNREFUSED, "the peer has closed");
                    }
                    cx.fail(Errno::ECONNREFUSED, CLOSED)
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

    fn recv(
        &mut self,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        let Some(rx) = &self.rx else {
            return Err(Errno::ENOTCONN);
        };
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

    fn shutdown(&mut self, cx: &mut OpCtx<'_>, how: Shutdown) -> Result<()> {
        let Some(d) = &self.rx else {
            return Err(Errno::ENOTCONN);
        };
        {
            let mut q = d.q.lock();
            q.rd_shut |= how.read();
            q.wr_shut |= how.write();
        }
        cx.notify(cx.me(), CHANGED);
        Ok(())
    }

    fn close(&mut self, cx: &mut OpCtx<'_>) {
        let Some(d) = self.rx.take() else { return };
        let (name, recs) = {
            let mut q = d.q.lock();
            q.closed = true;
            q.peer = None;
            (q.name.clone(), q.drain())
        };
        if let Some(n) = name {
            self.names.release(&n, cx.me().id());
        }
        for r in recs {
            if r.sender.uncharge(r.charge()) {
                cx.notify(&r.sender.owner, Events::OUT);
            }
        }
    }

    fn readiness(&self, opts: &Options) -> Events {
        let Some(d) = &self.rx else {
            return Events::HUP;
        };
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
        let mut writable = conn::writable(d.wmem(), opts.sndbuf());
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

    fn local_addr(&self) -> SockAddr {
        self.rx
            .as_ref()
            .map_or(SockAddr::Unnamed, |d| d.q.lock().name_addr())
    }

    fn peer_addr(&self) -> Option<SockAddr> {
        let peer = self.rx.as_ref()?.q.lock().peer.clone()?;
        Some(peer.q.lock().name_addr())
    }

    fn take_error(&mut self) -> Option<Errno> {
        None
    }

    fn has_error(&self) -> bool {
        false
    }

    fn queues(&self) -> Queues {
        let Some(d) = &self.rx else {
            return Queues::default();
        };
        Queues {
            rx: d.q.lock().payload as usize,
            tx: d.wmem(),
            ..Queues::default()
        }
    }

    fn peer_cred(&self) -> Option<Cred> {
        self.rx.as_ref()?.q.lock().peer_cred()
    }

    fn nread(&self) -> usize {
        self.rx
            .as_ref()
            .and_then(|d| d.q.lock().front().map(|r| r.data.len()))
            .unwrap_or(0)
    }
}
