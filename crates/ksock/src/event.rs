//! Readiness events, waker registration and upcalls.
//!
//! Each socket owns a [`Pollee`]: the wakers waiting for some of its events and its upcall.
//! Code that changes what a socket is ready for calls [`Pollee::notify`] after releasing its
//! locks; waiting code registers first and then checks again ("register, then re-check"), so
//! a change that lands between the check and the registration is never missed.

use crate::sync::Mutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
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
const UPCALL_BIT: u32 = 0x8000_0000;

/// Wakers waiting for a socket's events, and its upcall.
#[derive(Default)]
pub struct Pollee {
    /// The union of all waiting interests, plus [`UPCALL_BIT`]; lets `notify` skip the lock
    /// when nobody listens.
    mask: AtomicU32,
    inner: Mutex<Waiters>,
}

#[derive(Default)]
struct Waiters {
    list: Vec<(Waker, Events)>,
    upcall: Option<Upcall>,
}

impl Waiters {
    fn mask(&self) -> u32 {
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
}

impl Pollee {
    /// A pollee with no waiters and no upcall.
    pub fn new() -> Pollee {
        Pollee::default()
    }

    /// Whether a [`notify`](Self::notify) with `events` would reach anybody.
    ///
    /// Safe to use as a filter when called after the state change that `events` describes
    /// (under the lock that protects that state, or after it): a registration that this
    /// misses re-checks the state after registering and sees the change.
    pub fn wants(&self, events: Events) -> bool {
        let m = self.mask.load(Ordering::Acquire);
        m & events.bits() != 0 || (m & UPCALL_BIT != 0 && events.intersects(Events::READINESS))
    }

    /// Registers `waker` for `interest`. A waker that would wake the same task as one already
    /// registered is merged with it, so polling in a loop does not grow the list.
    pub fn register(&self, waker: &Waker, interest: Events) {
        let mut g = self.inner.lock();
        if let Some(w) = g.list.iter_mut().find(|w| w.0.will_wake(waker)) {
            w.1 |= interest;
        } else {
            g.list.push((waker.clone(), interest));
        }
        self.mask.fetch_or(interest.bits(), Ordering::AcqRel);
    }

    /// Wakes every waiter interested in any of `events` (each is woken once and forgotten),
    /// then calls the upcall with the readiness part of `events`. Call it with no lock held.
    pub fn notify(&self, events: Events) {
        if !self.wants(events) {
            return;
        }
        let (woken, upcall) = {
            let mut g = self.inner.lock();
            let woken: Vec<Waker> = if g.list.iter().all(|w| w.1.intersects(events)) {
                core::mem::take(&mut g.list)
                    .into_iter()
                    .map(|w| w.0)
                    .collect()
            } else {
                g.list
                    .extract_if(.., |w| w.1.intersects(events))
                    .map(|w| w.0)
                    .collect()
            };
            self.mask.store(g.mask(), Ordering::Release);
            let readiness = events & Events::READINESS;
            let upcall = if readiness.is_empty() {
                None
            } else {
                g.upcall.clone()
            };
            (woken, upcall.map(|u| (u, readiness)))
        };
        for w in woken {
            w.wake();
        }
        if let Some((u, ev)) = upcall {
            u(ev);
        }
    }

    /// Sets or clears the upcall.
    pub fn set_upcall(&self, upcall: Option<Upcall>) {
        let mut g = self.inner.lock();
        g.upcall = upcall;
        self.mask.store(g.mask(), Ordering::Release);
    }

    /// Whether an upcall is set.
    pub fn has_upcall(&self) -> bool {
        self.mask.load(Ordering::Acquire) & UPCALL_BIT != 0
    }

    /// Drops every waiter without waking it, and the upcall.
    pub(crate) fn clear(&self) {
        let (list, upcall) = {
            let mut g = self.inner.lock();
            self.mask.store(0, Ordering::Release);
            (core::mem::take(&mut g.list), g.upcall.take())
        };
        // Dropped here, outside the lock: a waker's or upcall's destructor may take locks.
        drop(list);
        drop(upcall);
    }

    /// How many wakers are registered (for tests and statistics).
    pub fn waiter_count(&self) -> usize {
        self.inner.lock().list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::task::Wake;
    use core::sync::atomic::AtomicUsize;

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
    fn notify_wakes_only_matching_waiters_once() {
        let p = Pollee::new();
        let (a, wa) = counter();
        let (b, wb) = counter();
        p.register(&wa, Events::IN);
        p.register(&wb, Events::OUT);
        assert!(p.wants(Events::IN));
        assert!(!p.wants(Events::ERR));
        p.notify(Events::IN);
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 0);
        p.notify(Events::IN);
        assert_eq!(a.0.load(Ordering::SeqCst), 1, "a waiter is woken once");
        assert!(!p.wants(Events::IN));
        p.notify(Events::OUT | Events::HUP);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        assert_eq!(p.waiter_count(), 0);
    }

    #[test]
    fn registering_the_same_waker_merges() {
        let p = Pollee::new();
        let (a, wa) = counter();
        for _ in 0..100 {
            p.register(&wa, Events::IN);
        }
        p.register(&wa, Events::OUT);
        assert_eq!(p.waiter_count(), 1);
        p.notify(Events::OUT);
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn upcall_gets_readiness_but_not_room() {
        let p = Pollee::new();
        let seen = Arc::new(AtomicU32::new(0));
        let s = seen.clone();
        p.set_upcall(Some(Arc::new(move |ev: Events| {
            s.fetch_or(ev.bits(), Ordering::SeqCst);
        })));
        assert!(p.wants(Events::IN));
        assert!(!p.wants(Events::ROOM));
        p.notify(Events::ROOM);
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        p.notify(Events::IN | Events::ROOM);
        assert_eq!(seen.load(Ordering::SeqCst), Events::IN.bits());
        p.set_upcall(None);
        assert!(!p.wants(Events::IN));
    }

    #[test]
    fn clear_forgets_everything() {
        let p = Pollee::new();
        let (a, wa) = counter();
        p.register(&wa, Events::IN);
        p.set_upcall(Some(Arc::new(|_| panic!("upcall after clear"))));
        p.clear();
        p.notify(Events::IN);
        assert_eq!(a.0.load(Ordering::SeqCst), 0);
    }
}
