//! The poll engine: every operation runs once under the socket's lock ([`SocketCore::run`]),
//! with its notifications collected and delivered after the lock is released; on `EAGAIN`
//! the caller's waker is registered and the operation runs once more
//! ([`SocketCore::poll_op`]: register, then re-check), so a change between the two is never
//! missed. Blocking calls, async futures, upcalls and the KPI's sleeping calls are all built
//! on it.

use super::{Locked, Socket, SocketCore};
use crate::errno::{Errno, Result};
use crate::event::{Events, Upcall, deliver, mask_wants};
use crate::family::{Deferred, OpCtx, Protocol, SockRef};
use crate::state::State;
use crate::sync::atomic::Ordering;
use alloc::sync::Arc;
use core::task::{Context, Poll, Waker};

/// Events that end any wait: an error, a hang-up, or the socket being closed.
pub(super) const ENDS: Events = Events::ERR.union(Events::HUP).union(Events::NVAL);

impl<P: ?Sized> SocketCore<P> {
    /// Whether a [`notify`](Self::notify) with `events` would reach anybody.
    ///
    /// Safe to use as a filter when called after the state change that `events` describes
    /// (under the lock that protects that state, or after it): a registration that this
    /// misses re-checks the state after registering and sees the change.
    pub fn wants(&self, events: Events) -> bool {
        mask_wants(self.mask.load(Ordering::Acquire), events)
    }

    /// Wakes every waiter interested in any of `events` (each is woken once and forgotten),
    /// then calls the upcall with the readiness part of `events`. Call it with no lock held.
    pub fn notify(&self, events: Events) {
        if !self.wants(events) {
            return;
        }
        let (woken, upcall) = {
            let mut g = self.lock.lock();
            let Some(e) = g.ext.as_mut() else { return };
            let w = &mut e.waiters;
            let r = w.take(events);
            self.mask.store(w.mask(), Ordering::Release);
            r
        };
        deliver(woken, upcall);
    }

    /// Registers `waker` for `interest` (merged with a registration of the same task). On a
    /// closed socket this does nothing: nothing will be notified there any more, and the
    /// caller's re-check sees the close.
    pub fn register(&self, waker: &Waker, interest: Events) {
        let mut g = self.lock.lock();
        if g.released() {
            return;
        }
        let w = &mut g.ext.get_or_insert_default().waiters;
        w.add(waker, interest);
        self.mask.store(w.mask(), Ordering::Release);
    }

    pub(super) fn set_upcall_locked(&self, g: &mut Locked<P>, upcall: Option<Upcall>) {
        if upcall.is_none() && g.ext.is_none() {
            return;
        }
        let w = &mut g.ext.get_or_insert_default().waiters;
        w.set_upcall(upcall);
        self.mask.store(w.mask(), Ordering::Release);
    }

    /// How many wakers are registered (for tests and statistics).
    pub fn waiter_count(&self) -> usize {
        self.lock.lock().ext.as_ref().map_or(0, |e| e.waiters.len())
    }
}

impl SocketCore {
    /// Runs one protocol operation under the lock and delivers its notifications after.
    /// Returns the result and, for `EAGAIN`, what to wait on.
    pub(super) fn run<T>(
        self: &Arc<Self>,
        op: &mut impl FnMut(&mut Locked<dyn Protocol>, &mut OpCtx<'_>) -> Result<T>,
    ) -> (Result<T>, Option<(SockRef, Events)>) {
        let mut deferred = Deferred::default();
        let out = {
            let mut g = self.lock.lock();
            if g.released() {
                return (Err(Errno::EBADF), None);
            }
            let l: &mut Locked<dyn Protocol> = &mut g;
            let mut cx = l.op_ctx(self, &mut deferred);
            let r = op(l, &mut cx);
            if let Err(e) = &r {
                l.note_failure(*e, cx.reason_for(*e));
                if *e != Errno::EAGAIN {
                    crate::trace::ev!(
                        debug,
                        "operation failed",
                        id = self.id,
                        state = l.st.current(),
                        errno = e.name(),
                        why = cx.reason_for(*e)
                    );
                }
            }
            (r, cx.take_wait())
        };
        deferred.run();
        out
    }

    /// Register-then-recheck around [`run`](Self::run). Without a context this is a single
    /// nonblocking attempt.
    pub(super) fn poll_op<T>(
        self: &Arc<Self>,
        cx: Option<&mut Context<'_>>,
        interest: Events,
        mut op: impl FnMut(&mut Locked<dyn Protocol>, &mut OpCtx<'_>) -> Result<T>,
    ) -> Poll<Result<T>> {
        let (r, wait) = self.run(&mut op);
        let Some(cx) = cx else { return Poll::Ready(r) };
        if !matches!(r, Err(e) if e == Errno::EAGAIN) {
            return Poll::Ready(r);
        }
        self.register_wait(cx.waker(), interest, wait);
        match self.run(&mut op).0 {
            Err(e) if e == Errno::EAGAIN => Poll::Pending,
            r => Poll::Ready(r),
        }
    }

    pub(super) fn register_wait(
        self: &Arc<Self>,
        waker: &Waker,
        interest: Events,
        wait: Option<(SockRef, Events)>,
    ) {
        match wait {
            Some((other, ev)) if !Arc::ptr_eq(&other, self) => {
                other.register(waker, ev | ENDS);
                self.register(waker, Events::NVAL);
            }
            Some((_, ev)) => self.register(waker, ev | ENDS),
            None => self.register(waker, interest | ENDS),
        }
    }

    /// Keeps an error met after a blocking receive already returned bytes, for the next call
    /// (as `SO_ERROR`; a pending error is not overwritten). Faces that build their own
    /// blocking loops on the poll forms use it the same way.
    pub fn stash_error(&self, e: Errno) {
        let mut g = self.lock.lock();
        if !g.released() && g.so_error().is_none() {
            g.set_so_error(e);
        }
    }

    /// Called (through [`OpCtx::peer_gone`]) when the peer of a connected socket went away.
    pub(crate) fn peer_went_away(self: &Arc<Self>) {
        let mut g = self.lock.lock();
        if !g.released() && g.st.current() == State::Connected {
            let _ = g.st.go(State::Closing);
        }
    }
}

impl SocketCore {
    /// Called (through [`Deferred::reset`](crate::family::Deferred::reset)) when a
    /// connection was reset: `Connected` or `Closing` moves to `Closed`.
    pub(crate) fn was_reset(self: &Arc<Self>) {
        let mut g = self.lock.lock();
        if !g.released() && matches!(g.st.current(), State::Connected | State::Closing) {
            let _ = g.st.go(State::Closed);
            crate::trace::ev!(debug, "connection reset", id = self.id);
        }
    }
}

impl<P: Protocol> SocketCore<P> {
    /// Changes the socket from outside any operation: runs `f` on the protocol state under
    /// the socket's lock, with an [`OpCtx`] whose notifications (`notify`, `peer_gone`) are
    /// delivered once the lock is released. For a family's driver that sees a FIN, a reset
    /// or a finished handshake. `None` once the socket is closed.
    ///
    /// Lock order: like every operation, this takes the socket's lock and then whatever
    /// the family takes inside `f`; call it with no other socket's lock held.
    pub fn with_protocol<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut P, &mut OpCtx<'_>) -> R,
    ) -> Option<R> {
        let me: SockRef = self.clone();
        let mut deferred = Deferred::default();
        let r = {
            let mut g = self.lock.lock();
            if g.released() {
                return None;
            }
            let mut cx = g.op_ctx(&me, &mut deferred);
            f(&mut g.proto, &mut cx)
        };
        deferred.run();
        Some(r)
    }
}

impl Socket {
    pub(super) fn with_locked<T>(
        &self,
        f: impl FnOnce(&mut Locked<dyn Protocol>) -> Result<T>,
    ) -> Result<T> {
        let mut g = self.core.lock.lock();
        if g.released() {
            return Err(Errno::EBADF);
        }
        f(&mut g)
    }

    pub(super) fn run<T>(
        &self,
        mut op: impl FnMut(&mut Locked<dyn Protocol>, &mut OpCtx<'_>) -> Result<T>,
    ) -> Result<T> {
        self.core.run(&mut op).0
    }

    /// Why the socket's last failed operation failed, if it failed with `e` and the code
    /// that refused it said why ([`OpCtx::fail`]): "no socket is bound to that name", "the
    /// host refused the connection". For faces that explain an error they just got from
    /// this socket (the file face's `err` file); a failure without a reason forgets the
    /// last one, and an operation of another handle may have failed meanwhile.
    pub fn error_reason(&self, e: Errno) -> Option<&'static str> {
        let g = self.core.lock.lock();
        g.reason(e)
    }

    /// Current readiness: `IN`, `OUT`, `HUP`, `RDHUP`, `ERR`; `NVAL` once closed.
    pub fn readiness(&self) -> Events {
        let g = self.core.lock.lock();
        if g.released() {
            return Events::NVAL;
        }
        let mut ev = g.proto.readiness(&g.opts());
        if g.so_error().is_some() {
            ev |= Events::ERR;
        }
        if g.st.current() == State::Closed {
            // A connect that failed, or a connection reset: nothing more will come either
            // way (Linux reports `POLLHUP` for a socket in `TCP_CLOSE`).
            ev |= Events::HUP;
        }
        ev
    }

    /// Readiness, poll form: `Ready` with the current events once any of `interest` (or
    /// `ERR`, `HUP`, `NVAL`) is set; otherwise registers the waker.
    pub fn poll_ready(&self, cx: &mut Context<'_>, interest: Events) -> Poll<Events> {
        let want = interest | ENDS;
        let ev = self.readiness();
        if ev.intersects(want) {
            return Poll::Ready(ev);
        }
        self.core.register(cx.waker(), want);
        let ev = self.readiness();
        if ev.intersects(want) {
            Poll::Ready(ev)
        } else {
            Poll::Pending
        }
    }
}
