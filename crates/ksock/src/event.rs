//! Readiness events, waker registration and upcalls.
//!
//! Each socket keeps [`Waiters`]: the wakers waiting for some of its events and its upcall.
//! Code that changes what a socket is ready for notifies it after releasing its locks
//! ([`SocketCore::notify`](crate::SocketCore::notify)); waiting code registers first and then
//! checks again ("register, then re-check"), so a change that lands between the check and
//! the registration is never missed.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::task::Waker;

bitflags::bitflags! {
    /// Readiness, with the bit values of Linux `poll(2)`.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct Events: u32 {
        /// Data to read, a connection to accept, or end of file.
        const IN = 0x001;
        /// Room to write (or a write would fail at once).
        const OUT = 0x004;
        /// An error is pending (`SO_ERROR`).
        const ERR = 0x008;
        /// Both directions are shut.
        const HUP = 0x010;
        /// The handle does not refer to an open socket (it was closed).
        const NVAL = 0x020;
        /// The peer shut its write side (or this side shut its read side).
        const RDHUP = 0x2000;
        /// Not a readiness event: space appeared in a listener's backlog or in a datagram
        /// receiver's queue. Families use it to wake senders that wait on another socket;
        /// it is never reported by readiness or upcalls.
        const ROOM = 0x1000_0000;
    }
}

impl Events {
    /// The events that describe readiness (everything but the internal [`Events::ROOM`]).
    pub const READINESS: Events = Events::IN
        .union(Events::OUT)
        .union(Events::ERR)
        .union(Events::HUP)
        .union(Events::NVAL)
        .union(Events::RDHUP);
}

/// A callback fired on every readiness change of a socket, with the events that changed.
///
/// It runs with no lock held, must not block, may run concurrently on several threads and
/// may be spurious.
pub type Upcall = Arc<dyn Fn(Events) + Send + Sync>;

/// Marks "an upcall is set" in the interest mask.
pub(crate) const UPCALL_BIT: u32 = 0x8000_0000;

/// Whether a notification of `events` reaches anybody, given an interest mask (the union of
/// the waiting interests, plus [`UPCALL_BIT`]).
pub(crate) fn mask_wants(mask: u32, events: Events) -> bool {
    mask & events.bits() != 0 || (mask & UPCALL_BIT != 0 && events.intersects(Events::READINESS))
}

/// The wakers waiting for a socket's events, and its upcall: plain data kept under the
/// socket's lock (and allocated only when the first waiter or upcall arrives). The socket
/// mirrors [`Waiters::mask`] in an atomic so that a notification nobody waits for costs one
/// load.
#[derive(Default)]
pub struct Waiters {
    list: Vec<(Waker, Events)>,
    upcall: Option<Upcall>,
}

impl Waiters {
    /// The interest mask: the union of the waiting interests, plus [`UPCALL_BIT`].
    pub(crate) fn mask(&self) -> u32 {
        let m = self
            .list
            .iter()
            .fold(Events::empty(), |m, w| m | w.1)
            .bits();
        if self.upcall.is_some() {
            m | UPCALL_BIT
        } else {
            m
        }
    }

    /// Adds `waker` for `interest`. A waker that would wake the same task as one already
    /// registered is merged with it, so polling in a loop does not grow the list.
    pub(crate) fn add(&mut self, waker: &Waker, interest: Events) {
        if let Some(w) = self.list.iter_mut().find(|w| w.0.will_wake(waker)) {
            w.1 |= interest;
        } else {
            self.list.push((waker.clone(), interest));
        }
    }

    /// Removes and returns the wakers interested in any of `events`, and the upcall to call
    /// (with the readiness part of `events`) if there is any readiness in them. Wake them and
    /// call it after releasing the lock.
    pub(crate) fn take(&mut self, events: Events) -> (Vec<Waker>, Option<(Upcall, Events)>) {
        let woken: Vec<Waker> = if self.list.iter().all(|w| w.1.intersects(events)) {
            core::mem::take(&mut self.list)
                .into_iter()
                .map(|w| w.0)
                .collect()
        } else {
            self.list
                .extract_if(.., |w| w.1.intersects(events))
                .map(|w| w.0)
                .collect()
        };
        let readiness = events & Events::READINESS;
        let upcall = if readiness.is_empty() {
            None
        } else {
            self.upcall.clone()
        };
        (woken, upcall.map(|u| (u, readiness)))
    }

    /// Sets or clears the upcall.
    pub(crate) fn set_upcall(&mut self, upcall: Option<Upcall>) {
        self.upcall = upcall;
    }

    /// How many wakers wait.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

/// Wakes `woken`, then calls the upcall: what [`Waiters::take`] returned, outside the lock.
pub(crate) fn deliver(woken: Vec<Waker>, upcall: Option<(Upcall, Events)>) {
    for w in woken {
        w.wake();
    }
    if let Some((u, ev)) = upcall {
        u(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::task::Wake;
    use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn take_removes_only_matching_waiters() {
        let mut w = Waiters::default();
        let (a, wa) = counter();
        let (b, wb) = counter();
        w.add(&wa, Events::IN);
        w.add(&wb, Events::OUT);
        assert!(mask_wants(w.mask(), Events::IN));
        assert!(!mask_wants(w.mask(), Events::ERR));
        let (woken, up) = w.take(Events::IN);
        assert!(up.is_none());
        deliver(woken, up);
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 0);
        assert_eq!(w.len(), 1);
        let (woken, _) = w.take(Events::IN);
        assert!(woken.is_empty(), "a waiter is woken once");
        deliver(w.take(Events::OUT | Events::HUP).0, None);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        assert_eq!(w.len(), 0);
        assert_eq!(w.mask(), 0);
    }

    #[test]
    // `Waker::will_wake` is best-effort: under Miri a clone's vtable has another address,
    // so the clones do not compare equal there and each registers anew (until the next
    // notification takes them all).
    #[cfg_attr(miri, ignore = "will_wake is false for clones under Miri")]
    fn adding_the_same_waker_merges() {
        let mut w = Waiters::default();
        let (a, wa) = counter();
        for _ in 0..100 {
            w.add(&wa, Events::IN);
        }
        w.add(&wa, Events::OUT);
        assert_eq!(w.len(), 1);
        deliver(w.take(Events::OUT).0, None);
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn upcall_gets_readiness_but_not_room() {
        let mut w = Waiters::default();
        let seen = Arc::new(AtomicU32::new(0));
        let s = seen.clone();
        w.set_upcall(Some(Arc::new(move |ev: Events| {
            s.fetch_or(ev.bits(), Ordering::SeqCst);
        })));
        assert!(mask_wants(w.mask(), Events::IN));
        assert!(!mask_wants(w.mask(), Events::ROOM));
        let (woken, up) = w.take(Events::ROOM);
        assert!(up.is_none());
        deliver(woken, up);
        let (woken, up) = w.take(Events::IN | Events::ROOM);
        deliver(woken, up);
        assert_eq!(seen.load(Ordering::SeqCst), Events::IN.bits());
        w.set_upcall(None);
        assert!(!mask_wants(w.mask(), Events::IN));
    }
}
