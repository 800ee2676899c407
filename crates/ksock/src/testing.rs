//! A family for testing the faces (feature `testing`): its connects go on until the test
//! ends them, the way a TCP handshake does.
//!
//! [`LaterFamily`] serves stream sockets in [`Domain::INET`] under the name `later`
//! (`/net/later/stream` in the file face). A connect to any address returns
//! [`Progress::InProgress`] and the socket waits in `Connecting` until the test calls
//! [`LaterFamily::complete`] with the outcome; the family then finishes it from outside
//! any operation, through [`SocketCore::finish_connect`], as a network family's driver
//! does when the handshake ends. An address of port 1 is refused at once (`ECONNREFUSED`,
//! "the host refused the connection": a reason of the family's own), so errors that come
//! at once and errors that come later can both be driven through every face. A connected
//! socket accepts what it is sent and discards it. It has one protocol option,
//! `TCP_NODELAY` (level `IPPROTO_TCP` = 6, name 1), so that options beyond `SOL_SOCKET`
//! can be driven through the faces too.

use crate::addr::SockAddr;
use crate::buf::{RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::{Accepted, Family, OpCtx, Progress, Protocol, SockRef};
use crate::opt::{OptVal, Options};
use crate::socket::SocketCore;
use crate::stack::StackRef;
use crate::sync::Mutex;
use crate::types::{Domain, MsgFlags, Queues, RecvInfo, Shutdown, SockType};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use bytes::Buf;
use core::net::SocketAddr;

/// The family: see the module documentation.
#[derive(Default)]
pub struct LaterFamily {
    /// Every socket made, by id (typed: the family changes their protocol state).
    socks: Mutex<Vec<(u64, Weak<SocketCore<LaterSock>>)>>,
    /// The ids of the sockets whose connect goes on.
    pending: Arc<Mutex<Vec<u64>>>,
    /// How long a connect may go on before it fails with `ETIMEDOUT` (needs a clock).
    timeout: Arc<Mutex<Option<u64>>>,
    /// When each connect under way gives up, by id.
    deadlines: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl LaterFamily {
    /// A family with no connect under way.
    pub fn new() -> Arc<LaterFamily> {
        Arc::new(LaterFamily::default())
    }

    /// How many connects are under way.
    pub fn in_progress(&self) -> usize {
        self.pending.lock().len()
    }

    /// Makes connects started from now on give up with `ETIMEDOUT` after `ns`
    /// nanoseconds of the stack's clock (a timer, driven through [`Stack::on_timer`]
    /// (crate::Stack::on_timer)), as a TCP connect does after its retries.
    pub fn set_connect_timeout(&self, ns: Option<u64>) {
        *self.timeout.lock() = ns;
    }

    /// Ends every connect under way with `result` (`Ok`, or the error the connect fails
    /// with, such as `ETIMEDOUT`). Returns how many it ended.
    pub fn complete(&self, result: Result<()>) -> usize {
        let ids: Vec<u64> = self.pending.lock().drain(..).collect();
        self.finish(&ids, result, None)
    }

    /// Ends every connect under way with the error `e`, saying why (as a driver that sees
    /// a reset during the handshake: `ECONNREFUSED`, "the host reset the connection").
    /// Returns how many it ended.
    pub fn fail(&self, e: Errno, why: &'static str) -> usize {
        let ids: Vec<u64> = self.pending.lock().drain(..).collect();
        self.finish(&ids, Err(e), Some(why))
    }

    fn finish(&self, ids: &[u64], result: Result<()>, why: Option<&'static str>) -> usize {
        self.deadlines.lock().retain(|(id, _)| !ids.contains(id));
        let socks: Vec<Arc<SocketCore<LaterSock>>> = {
            let mut all = self.socks.lock();
            all.retain(|(_, w)| w.strong_count() > 0);
            all.iter()
                .filter(|(id, _)| ids.contains(id))
                .filter_map(|(_, w)| w.upgrade())
                .collect()
        };
        for s in &socks {
            // The protocol state first, under the socket's lock, then the core's state:
            // both from outside any operation, as a driver does when a handshake ends.
            s.with_protocol(|p, cx| {
                p.connected = result.is_ok();
                cx.notify(cx.me(), Events::OUT);
            });
            let s: SockRef = s.clone();
            match (result, why) {
                (Err(e), Some(why)) => s.fail_connect(e, why),
                _ => s.finish_connect(result),
            }
        }
        socks.len()
    }
}

impl Family for LaterFamily {
    fn on_timer(&self, now: u64) -> Option<u64> {
        let due: Vec<u64> = self
            .deadlines
            .lock()
            .iter()
            .filter(|&&(_, at)| at <= now)
            .map(|&(id, _)| id)
            .collect();
        self.pending.lock().retain(|id| !due.contains(id));
        let why = "no answer before the connect timeout";
        self.finish(&due, Err(Errno::ETIMEDOUT), Some(why));
        self.deadlines.lock().iter().map(|&(_, at)| at).min()
    }

    fn domain(&self) -> Domain {
        Domain::INET
    }

    fn name(&self) -> &'static str {
        "later"
    }

    fn types(&self) -> &'static [SockType] {
        &[SockType::STREAM]
    }

    fn create(&self, stack: &StackRef, ty: SockType, protocol: i32) -> Result<SockRef> {
        if ty != SockType::STREAM {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        if protocol != 0 {
            return Err(Errno::EPROTONOSUPPORT);
        }
        let proto = LaterSock {
            pending: self.pending.clone(),
            timeout: self.timeout.clone(),
            deadlines: self.deadlines.clone(),
            local: None,
            peer: None,
            connected: false,
            nodelay: 0,
        };
        let s = SocketCore::new(stack, Domain::INET, ty, 0, proto);
        self.socks.lock().push((s.id(), Arc::downgrade(&s)));
        Ok(s)
    }

    fn parse_addr(&self, text: &[u8]) -> Result<SockAddr> {
        let text = core::str::from_utf8(text).map_err(|_| Errno::EINVAL)?;
        text.parse::<SocketAddr>()
            .map(SockAddr::Inet)
            .map_err(|_| Errno::EINVAL)
    }

    fn listening(&self) -> Vec<SockAddr> {
        Vec::new()
    }
}

/// One socket of [`LaterFamily`].
pub struct LaterSock {
    pending: Arc<Mutex<Vec<u64>>>,
    timeout: Arc<Mutex<Option<u64>>>,
    deadlines: Arc<Mutex<Vec<(u64, u64)>>>,
    local: Option<SockAddr>,
    peer: Option<SockAddr>,
    connected: bool,
    nodelay: i32,
}

/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: i32 = 6;
/// `TCP_NODELAY`.
pub const TCP_NODELAY: i32 = 1;

impl Protocol for LaterSock {
    fn bind(&mut self, _cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<()> {
        self.local = Some(addr.clone());
        Ok(())
    }

    fn listen(&mut self, _cx: &mut OpCtx<'_>, _backlog: usize) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    fn connect(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        let SockAddr::Inet(a) = addr else {
            return Err(Errno::EAFNOSUPPORT);
        };
        if a.port() == 1 {
            return Err(cx.fail(Errno::ECONNREFUSED, "the host refused the connection"));
        }
        self.peer = Some(addr.clone());
        let stack = cx.me().stack();
        let timeout = *self.timeout.lock();
        if let (Some(t), Some(now)) = (timeout, stack.now()) {
            let at = now.saturating_add(t);
            self.deadlines.lock().push((cx.me().id(), at));
            stack.schedule(at);
        }
        // Last, so that a test that sees the connect under way sees its timer too.
        self.pending.lock().push(cx.me().id());
        Ok(Progress::InProgress)
    }

    fn accept(&mut self, _cx: &mut OpCtx<'_>) -> Result<Accepted> {
        Err(Errno::EINVAL)
    }

    fn send(
        &mut self,
        _cx: &mut OpCtx<'_>,
        src: SendBuf<'_>,
        _to: Option<&SockAddr>,
        _flags: MsgFlags,
    ) -> Result<usize> {
        if !self.connected {
            return Err(Errno::ENOTCONN);
        }
        let n = src.remaining();
        match src {
            SendBuf::Copy(b) => b.advance(n),
            SendBuf::Share(c) => c.advance(n),
        }
        Ok(n)
    }

    fn recv(
        &mut self,
        _cx: &mut OpCtx<'_>,
        _dst: &mut dyn RecvSink,
        _flags: MsgFlags,
    ) -> Result<RecvInfo> {
        if !self.connected {
            return Err(Errno::ENOTCONN);
        }
        Err(Errno::EAGAIN)
    }

    fn shutdown(&mut self, _cx: &mut OpCtx<'_>, _how: Shutdown) -> Result<()> {
        if self.connected {
            Ok(())
        } else {
            Err(Errno::ENOTCONN)
        }
    }

    fn close(&mut self, cx: &mut OpCtx<'_>) {
        let me = cx.me().id();
        self.pending.lock().retain(|&id| id != me);
        self.deadlines.lock().retain(|&(id, _)| id != me);
        self.connected = false;
    }

    fn readiness(&self, _opts: &Options) -> Events {
        if self.connected {
            Events::OUT
        } else {
            Events::empty()
        }
    }

    fn local_addr(&self) -> SockAddr {
        self.local.clone().unwrap_or(SockAddr::Unnamed)
    }

    fn peer_addr(&self) -> Option<SockAddr> {
        self.connected.then(|| self.peer.clone()).flatten()
    }

    fn take_error(&mut self) -> Option<Errno> {
        None
    }

    fn has_error(&self) -> bool {
        false
    }

    fn queues(&self) -> Queues {
        Queues::default()
    }

    fn nread(&self) -> usize {
        0
    }

    fn option_level(&self, level: i32) -> Result<()> {
        if level == IPPROTO_TCP {
            Ok(())
        } else {
            Err(Errno::ENOPROTOOPT)
        }
    }

    fn get_option(&self, level: i32, name: i32) -> Result<OptVal> {
        self.option_level(level)?;
        match name {
            TCP_NODELAY => Ok(OptVal::Int(self.nodelay)),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn set_option(
        &mut self,
        _cx: &mut OpCtx<'_>,
        level: i32,
        name: i32,
        val: OptVal,
    ) -> Result<()> {
        self.option_level(level)?;
        match name {
            TCP_NODELAY => {
                self.nodelay = i32::from(val.int()? != 0);
                Ok(())
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }
}

/// A clock that moves only when the test says (a deterministic harness for protocols with
/// timers): [`advance`](ManualClock::advance) moves it and runs the stack's timers that
/// came due, as a host's timer interrupt would.
#[derive(Default)]
pub struct ManualClock {
    now: core::sync::atomic::AtomicU64,
    next: Mutex<Option<u64>>,
}

impl ManualClock {
    /// A clock at 0, given to `stack`.
    pub fn install(stack: &crate::Stack) -> Arc<ManualClock> {
        let c = Arc::new(ManualClock::default());
        stack.set_clock(c.clone());
        c
    }

    /// The earliest time a timer was asked for, if any.
    pub fn next(&self) -> Option<u64> {
        *self.next.lock()
    }

    /// Moves the clock `ns` nanoseconds on and runs the timers due by then (each at the
    /// time it asked for, in order), as often as they come due.
    pub fn advance(&self, stack: &crate::Stack, ns: u64) {
        use core::sync::atomic::Ordering;
        let end = self.now.load(Ordering::SeqCst).saturating_add(ns);
        loop {
            let due = { *self.next.lock() };
            match due {
                Some(at) if at <= end => {
                    self.now.store(at, Ordering::SeqCst);
                    *self.next.lock() = None;
                    stack.on_timer(at);
                }
                _ => break,
            }
        }
        self.now.store(end, Ordering::SeqCst);
    }
}

impl crate::time::Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(core::sync::atomic::Ordering::SeqCst)
    }

    fn wake_at(&self, at: u64) {
        let mut next = self.next.lock();
        if next.is_none_or(|n| at < n) {
            *next = Some(at);
        }
    }
}
