//! The KPI's handle type, its context and its upcalls.

use crate::park::Park;
use alloc::sync::Arc;
use core::fmt;
use ksock::{Domain, Errno, Events, Result, SockType, Socket, Stack, State};

/// The kernel side of the KPI: the stack its sockets live in and how its threads sleep.
/// Cloning shares both.
#[derive(Clone)]
pub struct Kpi {
    stack: Stack,
    park: Arc<dyn Park>,
}

impl Kpi {
    /// A KPI over `stack` whose blocking calls sleep through `park`.
    pub fn new(stack: Stack, park: Arc<dyn Park>) -> Kpi {
        Kpi { stack, park }
    }

    /// A KPI over `stack` whose blocking calls park std threads.
    #[cfg(feature = "std")]
    pub fn with_threads(stack: Stack) -> Kpi {
        Kpi::new(stack, Arc::new(crate::park::ThreadPark::new()))
    }

    /// The stack.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    pub(crate) fn park(&self) -> &Arc<dyn Park> {
        &self.park
    }
}

impl fmt::Debug for Kpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kpi").field("stack", &self.stack).finish()
    }
}

/// A reference to a socket (XNU `socket_t`).
///
/// [`sock_socket`](crate::sock_socket) and [`sock_accept`](crate::sock_accept) return one,
/// [`sock_retain`](crate::sock_retain) makes another; [`sock_close`](crate::sock_close) and
/// [`sock_release`](crate::sock_release) give one up, and so does dropping it. The socket
/// closes when the last reference is gone.
///
/// The socket an upcall receives is a reference too, valid for the call. When the upcall
/// runs because the socket itself closed, every call on it returns `EBADF`.
pub struct Sock {
    repr: Repr,
    park: Arc<dyn Park>,
}

enum Repr {
    Open(Socket),
    /// What an upcall receives once the socket has closed.
    Closed(Ident),
}

/// What stays known about a socket after it closed.
#[derive(Clone, Copy)]
pub(crate) struct Ident {
    pub(crate) id: u64,
    pub(crate) domain: Domain,
    pub(crate) ty: SockType,
    pub(crate) protocol: u16,
}

impl Ident {
    fn of(s: &Socket) -> Ident {
        Ident {
            id: s.id(),
            domain: s.domain(),
            ty: s.ty(),
            protocol: s.protocol(),
        }
    }
}

impl Sock {
    pub(crate) fn new(s: Socket, park: Arc<dyn Park>) -> Sock {
        Sock {
            repr: Repr::Open(s),
            park,
        }
    }

    /// The core handle, or `EBADF` for a closed socket seen by its last upcall.
    pub(crate) fn sock(&self) -> Result<&Socket> {
        match &self.repr {
            Repr::Open(s) => Ok(s),
            Repr::Closed(_) => Err(Errno::EBADF),
        }
    }

    pub(crate) fn park(&self) -> &Arc<dyn Park> {
        &self.park
    }

    pub(crate) fn ident(&self) -> Ident {
        match &self.repr {
            Repr::Open(s) => Ident::of(s),
            Repr::Closed(i) => *i,
        }
    }

    /// Another reference to the same socket.
    pub(crate) fn retain(&self) -> Sock {
        Sock {
            repr: match &self.repr {
                Repr::Open(s) => Repr::Open(s.clone()),
                Repr::Closed(i) => Repr::Closed(*i),
            },
            park: self.park.clone(),
        }
    }

    /// The socket's id in its stack (unique, never reused while the stack runs).
    pub fn id(&self) -> u64 {
        self.ident().id
    }

    /// Whether both refer to the same socket.
    pub fn same_socket(&self, other: &Sock) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::Open(a), Repr::Open(b)) => a.same_socket(b),
            _ => self.id() == other.id() && self.ident().domain == other.ident().domain,
        }
    }

    /// The core's handle to this socket (for readiness, status or the core's own calls);
    /// `None` for a closed socket seen by its last upcall. A handle cloned from it is one
    /// more reference: the socket stays open while it lives.
    pub fn as_socket(&self) -> Option<&Socket> {
        self.sock().ok()
    }
}

impl fmt::Debug for Sock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Open(s) => write!(f, "Sock({s:?})"),
            Repr::Closed(i) => write!(f, "Sock({} {:?} {} closed)", i.id, i.domain, i.ty),
        }
    }
}

/// XNU's `waitf`: whether the upcall may block.
///
/// ksock runs an upcall on whatever thread changed the socket's readiness, often in the
/// middle of another socket's send or close, so it may never block: this is always
/// [`WaitF::DontWait`]. Use `MSG_DONTWAIT` calls in an upcall.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitF {
    /// Do not block (`M_DONTWAIT`).
    DontWait,
}

type UpcallFn = dyn Fn(&Sock, WaitF) + Send + Sync;

/// An upcall and its cookie (XNU `sock_upcall` and `void *cookie`).
///
/// The function receives the socket, the cookie and [`WaitF`]. It fires when there is data
/// past the receive low-water mark (`SO_RCVLOWAT`), room to write, a connection to accept,
/// when a connect completed or failed, on shutdown (either side), when the peer closed, and
/// exactly once more when the socket itself closes, with a socket on which every call is
/// `EBADF` (news that reaches a socket after it closed is dropped). It runs with no lock
/// held; it must not block; it may run concurrently on several threads, and may be
/// spurious: it says "look", the socket's state says what happened.
///
/// Cloning shares the function and the cookie: passing a clone of a listener's upcall to
/// [`sock_accept`](crate::sock_accept) does what XNU's `MSG_USEUPCALL` did. The cookie is
/// dropped with the last clone (a socket drops its upcall when it closes).
#[derive(Clone)]
pub struct SockUpcall(Arc<UpcallFn>);

impl SockUpcall {
    /// An upcall calling `f(socket, &cookie, waitf)`.
    pub fn new<C, F>(cookie: C, f: F) -> SockUpcall
    where
        C: Send + Sync + 'static,
        F: Fn(&Sock, &C, WaitF) + Send + Sync + 'static,
    {
        SockUpcall(Arc::new(move |so: &Sock, w| f(so, &cookie, w)))
    }
}

impl fmt::Debug for SockUpcall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SockUpcall")
    }
}

/// Makes `up` the upcall of `s`: a core upcall that finds the socket again (without keeping
/// it open), filters data below the low-water mark, and calls `up`.
pub(crate) fn install_upcall(s: &Socket, up: SockUpcall, park: &Arc<dyn Park>) -> Result<()> {
    let weak = s.downgrade();
    let ident = Ident::of(s);
    let park = park.clone();
    let f = up.0;
    s.set_upcall(Some(Arc::new(move |ev: Events| {
        let repr = match weak.upgrade() {
            Some(h) if below_lowat(&h, ev) => return,
            Some(h) => Repr::Open(h),
            // The close itself (the core says NVAL once, when it closes the socket); news
            // about a socket that has closed meanwhile is stale and goes nowhere.
            None if ev.contains(Events::NVAL) => Repr::Closed(ident),
            None => return,
        };
        let so = Sock {
            repr,
            park: park.clone(),
        };
        f(&so, WaitF::DontWait);
    })))
}

/// Whether `ev` is only "some data arrived" on a connected stream that still holds less than
/// its receive low-water mark (with no end of file or error to report either).
fn below_lowat(s: &Socket, ev: Events) -> bool {
    if ev != Events::IN || s.ty() != SockType::STREAM {
        return false;
    }
    let lowat = s.options().map_or(1, |o| o.rcvlowat());
    lowat > 1
        && matches!(s.state(), State::Connected | State::Closing)
        && s.nread().is_ok_and(|n| n < lowat)
        && !s
            .readiness()
            .intersects(Events::RDHUP | Events::HUP | Events::ERR)
}
