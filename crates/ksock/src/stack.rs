//! The stack: the registered families and the table of live sockets.

use crate::errno::{Errno, Result};
use crate::family::{Family, SockRef};
use crate::socket::{Socket, SocketInfo};
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::time::Clock;
use crate::types::{Cred, Domain, SockType};
use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::cmp::Ordering as CmpOrdering;
use core::fmt;

/// A shared reference to a stack's state, as families and sockets hold it.
pub type StackRef = Arc<StackInner>;

/// The state behind a [`Stack`].
pub struct StackInner {
    next_id: AtomicU64,
    /// Open sockets, ordered and looked up by id (the id is not stored twice).
    table: Mutex<BTreeSet<ById>>,
    families: Mutex<Vec<Arc<dyn Family>>>,
    /// The host's clock and timer, for families with timers (see [`crate::time`]).
    clock: Mutex<Option<Arc<dyn Clock>>>,
}

/// A table entry: a socket, compared by its id.
struct ById(SockRef);

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}

impl Eq for ById {}

impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for ById {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.0.id().cmp(&other.0.id())
    }
}

impl Borrow<u64> for ById {
    fn borrow(&self) -> &u64 {
        self.0.id_ref()
    }
}

impl StackInner {
    /// A fresh socket id (ids start at 1 and are never reused while the stack runs).
    pub fn alloc_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Now on the host's clock (nanoseconds), or `None` when the host gave the stack no
    /// clock (families then keep no timers).
    pub fn now(&self) -> Option<u64> {
        let clock = self.clock.lock().clone();
        clock.map(|c| c.now())
    }

    /// Asks the host to call [`Stack::on_timer`] at `at` (nanoseconds on its clock) or
    /// soon after. Without a clock, nothing happens.
    pub fn schedule(&self, at: u64) {
        let clock = self.clock.lock().clone();
        if let Some(c) = clock {
            c.wake_at(at);
        }
    }

    pub(crate) fn register(&self, s: &SockRef) {
        self.table.lock().insert(ById(s.clone()));
    }

    pub(crate) fn unregister(&self, id: u64) {
        let gone = self.table.lock().take(&id);
        // The last reference may go here; drop it outside the table lock.
        drop(gone);
    }
}

/// A socket stack: families plus the socket table. Cloning shares the stack.
#[derive(Clone)]
pub struct Stack {
    inner: StackRef,
}

impl Default for Stack {
    fn default() -> Self {
        Stack::new()
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("sockets", &self.socket_count())
            .finish()
    }
}

impl Stack {
    /// A stack with the local family registered.
    pub fn new() -> Stack {
        let s = Stack::empty();
        // A fresh stack has no families, so this cannot clash.
        let _ = s.register_family(Arc::new(crate::local::LocalFamily::new()));
        s
    }

    /// A stack with no families.
    pub fn empty() -> Stack {
        Stack {
            inner: Arc::new(StackInner {
                next_id: AtomicU64::new(1),
                table: Mutex::new(BTreeSet::new()),
                families: Mutex::new(Vec::new()),
                clock: Mutex::new(None),
            }),
        }
    }

    /// The stack behind a shared reference.
    #[cfg(feature = "std")]
    pub(crate) fn from_inner(inner: StackRef) -> Stack {
        Stack { inner }
    }

    /// Gives the stack the host's clock and timer (see [`crate::time`]).
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *self.inner.clock.lock() = Some(clock);
    }

    /// Runs every family's timers that are due at `now` (nanoseconds on the stack's clock)
    /// and returns the earliest time one wants to run next, which is also passed to the
    /// clock. The host calls this when its timer fires.
    pub fn on_timer(&self, now: u64) -> Option<u64> {
        let fams = self.families();
        let next = fams.iter().filter_map(|f| f.on_timer(now)).min();
        if let Some(at) = next {
            self.inner.schedule(at);
        }
        next
    }

    /// The shared state, as families see it.
    pub fn inner(&self) -> &StackRef {
        &self.inner
    }

    /// Adds a family. A family for one of its domains ([`Family::domains`]) or with its
    /// name already: `EEXIST`.
    pub fn register_family(&self, family: Arc<dyn Family>) -> Result<()> {
        let one = [family.domain()];
        let domains = match family.domains() {
            [] => &one[..],
            all => all,
        };
        let mut fams = self.inner.families.lock();
        if fams
            .iter()
            .any(|f| f.name() == family.name() || domains.iter().any(|&d| f.serves(d)))
        {
            return Err(Errno::EEXIST);
        }
        fams.push(family);
        Ok(())
    }

    /// The family that serves `domain` (a family may serve several: [`Family::domains`]).
    pub fn family(&self, domain: Domain) -> Option<Arc<dyn Family>> {
        self.inner
            .families
            .lock()
            .iter()
            .find(|f| f.serves(domain))
            .cloned()
    }

    /// The family called `name` (`local`, `inet`).
    pub fn family_by_name(&self, name: &str) -> Option<Arc<dyn Family>> {
        self.inner
            .families
            .lock()
            .iter()
            .find(|f| f.name() == name)
            .cloned()
    }

    /// Every family, in registration order.
    pub fn families(&self) -> Vec<Arc<dyn Family>> {
        self.inner.families.lock().clone()
    }

    /// Creates a socket. Unknown domain: `EAFNOSUPPORT`; type the family lacks:
    /// `ESOCKTNOSUPPORT`; bad protocol: `EPROTONOSUPPORT`.
    pub fn socket(&self, domain: Domain, ty: SockType, protocol: i32) -> Result<Socket> {
        let fam = self.family(domain).ok_or(Errno::EAFNOSUPPORT)?;
        let s = fam.create_in(&self.inner, domain, ty, protocol)?;
        self.inner.register(&s);
        crate::trace::ev!(
            debug,
            "socket created",
            id = s.id(),
            family = fam.name(),
            ty = ty.name()
        );
        Ok(s.first_handle())
    }

    /// Creates two sockets connected to each other, unnamed.
    pub fn socketpair(
        &self,
        domain: Domain,
        ty: SockType,
        protocol: i32,
    ) -> Result<(Socket, Socket)> {
        self.socketpair_as(domain, ty, protocol, None)
    }

    /// [`socketpair`](Stack::socketpair) made by a process with `cred`: both sockets record
    /// it, and each reports it as its peer's (`SO_PEERCRED`), as on Linux.
    pub fn socketpair_as(
        &self,
        domain: Domain,
        ty: SockType,
        protocol: i32,
        cred: Option<Cred>,
    ) -> Result<(Socket, Socket)> {
        let fam = self.family(domain).ok_or(Errno::EAFNOSUPPORT)?;
        let (a, b) = fam.socketpair(&self.inner, ty, protocol, cred)?;
        a.become_connected()?;
        b.become_connected()?;
        self.inner.register(&a);
        self.inner.register(&b);
        let (a, b) = (a.first_handle(), b.first_handle());
        if let Some(c) = cred {
            a.set_cred(c)?;
            b.set_cred(c)?;
        }
        Ok((a, b))
    }

    /// A new handle to the open socket with this id.
    pub fn get(&self, id: u64) -> Option<Socket> {
        let s = self.inner.table.lock().get(&id).map(|e| e.0.clone())?;
        s.acquire()
    }

    /// The ids of the open sockets, in increasing order.
    pub fn ids(&self) -> Vec<u64> {
        self.inner.table.lock().iter().map(|e| e.0.id()).collect()
    }

    /// Up to `max` ids of open sockets whose domain `of` accepts (a family's: see
    /// [`Family::serves`]) greater than `after`, in increasing order (a listing resumes from
    /// the last id it gave, without rescanning).
    pub fn ids_after(&self, of: impl Fn(Domain) -> bool, after: u64, max: usize) -> Vec<u64> {
        use core::ops::Bound;
        self.inner
            .table
            .lock()
            .range::<u64, _>((Bound::Excluded(after), Bound::Unbounded))
            .filter(|e| of(e.0.domain()))
            .take(max)
            .map(|e| e.0.id())
            .collect()
    }

    /// How many sockets are open.
    pub fn socket_count(&self) -> usize {
        self.inner.table.lock().len()
    }

    /// A snapshot of every open socket, in id order.
    pub fn sockets(&self) -> Vec<SocketInfo> {
        let all: Vec<SockRef> = self
            .inner
            .table
            .lock()
            .iter()
            .map(|e| e.0.clone())
            .collect();
        all.iter().filter_map(|s| s.info()).collect()
    }
}
