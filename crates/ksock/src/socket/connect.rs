//! Connect: the connect call's forms (poll, nonblocking), the background connect that
//! finishes by itself (the KPI's `MSG_DONTWAIT` connect: [`Socket::start_connect`], retried
//! when the peer has room, [`SocketCore::finish_connect`] when a family's connect ends) and
//! how its outcome is read back ([`Socket::poll_connect_done`], [`Socket::connect_result`]).

use super::poll::ENDS;
use super::{Flags, Locked, Socket, SocketCore};
use crate::addr::SockAddr;
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::{OpCtx, Progress, Protocol};
use crate::state::{Op, State};
use crate::types::SockType;
use alloc::sync::{Arc, Weak};
use alloc::task::Wake;
use core::task::{Context, Poll, Waker};

impl SocketCore {
    /// Ends a connect that was in progress: `Connecting -> Connected` on success; on failure
    /// the error becomes the socket's pending error (`SO_ERROR`) and the socket goes
    /// `Connecting -> Closed`. Families call this when a background connect finishes.
    pub fn finish_connect(self: &Arc<Self>, result: Result<()>) {
        self.end_connect(result, None);
    }

    /// Ends a connect that was in progress with the error `e`, saying why (as
    /// [`OpCtx::fail`] does for an operation): "the host reset the connection". The connect
    /// call that reports `e` keeps the reason ([`Socket::error_reason`]).
    pub fn fail_connect(self: &Arc<Self>, e: Errno, why: &'static str) {
        self.end_connect(Err(e), Some(why));
    }

    pub(crate) fn end_connect(self: &Arc<Self>, result: Result<()>, why: Option<&'static str>) {
        let events = {
            let mut g = self.lock.lock();
            if g.released() || g.st.current() != State::Connecting {
                return;
            }
            g.set_connect_to(None);
            crate::trace::ev!(
                debug,
                "connect finished",
                id = self.id,
                errno = result.err().map(Errno::name),
                why = why
            );
            match result {
                Ok(()) => {
                    let _ = g.st.go(State::Connected);
                    Events::OUT
                }
                Err(e) => {
                    g.set_so_error(e);
                    g.note_failure(e, why);
                    let _ = g.st.go(State::Closed);
                    Events::OUT | Events::ERR | Events::HUP
                }
            }
        };
        self.notify(events);
    }

    /// Tries again to finish a background connect; re-arms itself while the peer has no room.
    fn retry_connect(self: &Arc<Self>) {
        let mut op =
            |l: &mut Locked<dyn Protocol>, cx: &mut OpCtx<'_>| -> Result<Option<Result<()>>> {
                if l.st.current() != State::Connecting {
                    return Ok(None);
                }
                let Some(addr) = l.connect_to().cloned() else {
                    return Ok(None);
                };
                match l.proto.connect(cx, &addr) {
                    Ok(Progress::Done) => Ok(Some(Ok(()))),
                    Ok(Progress::InProgress) => Ok(None),
                    Err(e) if e == Errno::EAGAIN => Err(e),
                    Err(e) => Ok(Some(Err(e))),
                }
            };
        let mut registered = false;
        loop {
            match self.run(&mut op) {
                (Ok(Some(result)), _) => return self.finish_connect(result),
                (Ok(None), _) => return,
                (Err(e), _) if e != Errno::EAGAIN || registered => return,
                (Err(_), wait) => {
                    // Register, then look again: room may have appeared meanwhile.
                    let waker = Waker::from(Arc::new(ConnectRetry(Arc::downgrade(self))));
                    self.register_wait(&waker, Events::ROOM, wait);
                    registered = true;
                }
            }
        }
    }
}

/// Drives a background connect when the peer it waits on has news.
struct ConnectRetry(Weak<SocketCore>);

impl Wake for ConnectRetry {
    fn wake(self: Arc<Self>) {
        if let Some(s) = self.0.upgrade() {
            s.retry_connect();
        }
    }
}

impl Socket {
    /// One connect attempt under the lock. `background`: the KPI's connect that goes on by
    /// itself (`start_connect`); `wait`: the caller waits for the outcome (blocking, async,
    /// a parked file request), so a connect in progress is `EAGAIN` (wait on this socket)
    /// rather than `EALREADY`.
    fn connect_op(
        ty: SockType,
        l: &mut Locked<dyn Protocol>,
        cx: &mut OpCtx<'_>,
        addr: &SockAddr,
        background: bool,
        wait: bool,
    ) -> Result<Progress> {
        if !ty.is_connection() {
            // Datagrams: connect sets (or changes) the default peer.
            return l
                .st
                .apply(Op::ConnectDgram, || l.proto.connect(cx, addr))
                .map_err(|e| cx.refused(Op::ConnectDgram, e));
        }
        // What depends on more than the state: the outcome of a connect this caller (or an
        // earlier nonblocking call) left going on is reported once, and a caller that waits
        // for the outcome waits while it goes on. The rest is the table's.
        let report = l.flags.contains(Flags::CONNECT_REPORT) && !background;
        match l.st.current() {
            State::Connected | State::Closing if report => {
                l.flags.remove(Flags::CONNECT_REPORT);
                return Ok(Progress::Done);
            }
            State::Connecting if wait && !background => {
                // Wait for the outcome (the poll engine registers on this socket, which
                // `finish_connect` notifies), and report it when it comes.
                l.flags.insert(Flags::CONNECT_REPORT);
                return Err(Errno::EAGAIN);
            }
            State::Closed if report => {
                // The connect this caller (or an earlier nonblocking one) left going on
                // failed: its error, once.
                l.flags.remove(Flags::CONNECT_REPORT);
                if let Some(e) = l.take_so_error() {
                    // With the reason the family gave when it ended the connect.
                    if let Some(why) = l.reason(e) {
                        cx.fail(e, why);
                    }
                    return Err(e);
                }
            }
            _ => {}
        }
        // New or Bound: `-> Connecting`; otherwise EINVAL, EALREADY or EISCONN.
        if let Err(e) = l.st.start_op(Op::Connect) {
            if l.st.current() == State::Listening {
                let e = l.proto.listener_connect_errno();
                return Err(cx.fail(e, "a listening socket cannot connect"));
            }
            return Err(cx.refused(Op::Connect, e));
        }
        cx.set_caller_waits(wait && !background);
        match l.proto.connect(cx, addr) {
            Ok(Progress::Done) => {
                let r = l.st.cont(State::Connected).map(|_| Progress::Done);
                l.st.end(r)
            }
            Ok(Progress::InProgress) => {
                l.st.end(Ok(()))?;
                if background {
                    return Ok(Progress::InProgress);
                }
                l.flags.insert(Flags::CONNECT_REPORT);
                if wait {
                    Err(Errno::EAGAIN)
                } else {
                    Ok(Progress::InProgress)
                }
            }
            Err(e) if e == Errno::EAGAIN && background => {
                l.set_connect_to(Some(addr.clone()));
                l.st.end(Ok(Progress::InProgress))
            }
            Err(e) => l.st.end(Err(e)),
        }
    }

    /// Connect, poll form: `Ready(Ok)` once connected. While the listener's backlog is full
    /// this stays `Pending` (the socket keeps its state and may be connected elsewhere).
    /// When the family's connect goes on by itself (a TCP handshake), the socket is
    /// `Connecting` and this stays `Pending` until the family finishes it
    /// ([`SocketCore::finish_connect`]), then gives the outcome: `Ok`, or the connect's error
    /// (`ECONNREFUSED`, `ETIMEDOUT`...). Polling again while connecting waits too (as a
    /// second blocking `connect` does on Linux).
    ///
    /// Datagram sockets: sets the default peer. Errors: `ECONNREFUSED` (no listener of that
    /// name), `EPROTOTYPE` (other type), `EISCONN`, `EINVAL` (on a listener).
    pub fn poll_connect(&self, cx: &mut Context<'_>, addr: &SockAddr) -> Poll<Result<()>> {
        self.poll_connect_inner(Some(cx), addr)
    }

    fn poll_connect_inner(
        &self,
        cx: Option<&mut Context<'_>>,
        addr: &SockAddr,
    ) -> Poll<Result<()>> {
        let wait = cx.is_some();
        self.poll_connect_as(cx, addr, wait)
    }

    /// The first look of a connect whose caller then waits (the blocking connect's fast
    /// path): the outcome if the connect ended at once, `EAGAIN` while it goes on.
    #[cfg(feature = "std")]
    pub(crate) fn connect_then_wait(&self, addr: &SockAddr) -> Result<()> {
        match self.poll_connect_as(None, addr, true) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Errno::EAGAIN),
        }
    }

    fn poll_connect_as(
        &self,
        cx: Option<&mut Context<'_>>,
        addr: &SockAddr,
        wait: bool,
    ) -> Poll<Result<()>> {
        let ty = self.ty();
        match self.core.poll_op(cx, Events::OUT, |l, cx| {
            Self::connect_op(ty, l, cx, addr, false, wait)
        }) {
            Poll::Ready(Ok(Progress::Done)) => {
                crate::trace::ev!(
                    debug,
                    "socket connected",
                    id = self.id(),
                    to = format_args!("{addr}")
                );
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(Progress::InProgress)) => Poll::Ready(Err(Errno::EINPROGRESS)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Connect without waiting: `EAGAIN` if the listener's backlog is full (as Linux AF_UNIX);
    /// `EINPROGRESS` if the family's connect goes on (then `OUT` when it ends, its result in
    /// `SO_ERROR`, and the next connect call reports it once: `Ok` or the error, as Linux);
    /// `EALREADY` while it goes on.
    pub fn try_connect(&self, addr: &SockAddr) -> Result<()> {
        match self.poll_connect_inner(None, addr) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Errno::EAGAIN),
        }
    }

    /// Starts a connect that finishes in the background (the kernel KPI's `MSG_DONTWAIT`
    /// connect): `Ok` if connected at once, `EINPROGRESS` if it goes on. Meanwhile the state
    /// is `Connecting` and another connect is `EALREADY`; when it ends, the socket becomes
    /// `Connected` (readiness `OUT`) or `Closed` with the reason in `SO_ERROR`, and the upcall
    /// fires.
    pub fn start_connect(&self, addr: &SockAddr) -> Result<()> {
        let ty = self.ty();
        match self.run(|l, cx| Self::connect_op(ty, l, cx, addr, true, false))? {
            Progress::Done => Ok(()),
            Progress::InProgress => {
                // For a connect waiting for room this tries once more and arms a waker on
                // what it waits for; for a family's own in-progress connect it does nothing.
                self.core.retry_connect();
                Err(Errno::EINPROGRESS)
            }
        }
    }

    /// Waits for a connect in progress to end, poll form: `Pending` while the socket is
    /// `Connecting`, then [`connect_result`](Self::connect_result). For faces that start a
    /// connect in the background ([`start_connect`](Self::start_connect)) and wait for it
    /// with their own sleeping primitive (the KPI's `Park`).
    pub fn poll_connect_done(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let connecting = || self.state() == State::Connecting;
        if connecting() {
            self.core.register(cx.waker(), Events::OUT | ENDS);
            if connecting() {
                return Poll::Pending;
            }
        }
        Poll::Ready(self.connect_result())
    }

    /// Takes the pending error of a background connect, or `Ok` once connected;
    /// `EINPROGRESS` while it goes on.
    pub fn connect_result(&self) -> Result<()> {
        self.with_locked(|l| {
            if let Some(e) = l.take_so_error() {
                return Err(e);
            }
            match l.st.current() {
                State::Connecting => Err(Errno::EINPROGRESS),
                State::Connected | State::Closing => Ok(()),
                _ => Err(Errno::ENOTCONN),
            }
        })
    }
}
