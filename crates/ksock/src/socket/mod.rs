//! The socket object and the user handle.
//!
//! [`SocketCore`] is the shared object: identity, options, the state machine, readiness and
//! the family's protocol state, all behind one lock. [`Socket`] is a user handle: cloning it
//! is like `dup`, and when the last handle goes the socket is closed (like the last `close` of
//! a file descriptor). Internal references ([`SockRef`]) do not keep a socket open.
//!
//! Every operation has a poll form (`poll_*`, never blocks, registers the caller's waker),
//! and on top of it a blocking form with `SO_RCVTIMEO`/`SO_SNDTIMEO` (feature `std`) and an
//! async form (`*_async`, runtime-agnostic).
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the object and its lock layout ([`SocketCore`], `Locked`, `Extra`, `Flags`, `Lifecycle`), the handles, opening and closing |
//! | `poll.rs` | the poll engine: running an operation under the lock, register-then-recheck, notifications, readiness |
//! | `ops.rs` | the operations: bind, listen, accept, send and receive, shutdown |
//! | `connect.rs` | connect, and the background connect (`start_connect`, `finish_connect`) |
//! | `options.rs` | modes, owner, credentials, account, upcall, addresses, options, status |

mod connect;
mod ops;
mod options;
mod poll;

use crate::account::Account;
use crate::addr::SockAddr;
use crate::errno::{Errno, Result};
use crate::event::{Events, Waiters};
use crate::family::{Deferred, OpCtx, Protocol, SockRef};
use crate::opt::{OptVal, Options, SockOpt};
use crate::stack::StackRef;
use crate::state::{State, StateCell};
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::types::{Cred, Domain, Queues, SockType};
use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use core::fmt;

/// The largest backlog (`net.core.somaxconn`).
pub const SOMAXCONN: usize = 4096;

/// The shared socket object. Families create it with [`SocketCore::new`]; users hold
/// [`Socket`] handles to it.
///
/// It is kept small (an idle connected local pair, table entries included, costs under
/// 512 bytes): what most sockets never use lives in boxes allocated on first use.
pub struct SocketCore<P: ?Sized = dyn Protocol> {
    id: u64,
    stack: StackRef,
    handles: AtomicU32,
    /// Mirrors the waiters' interest mask, so a notification nobody waits for takes no lock.
    mask: AtomicU32,
    domain: Domain,
    protocol: u16,
    ty: SockType,
    lock: Mutex<Locked<P>>,
}

bitflags::bitflags! {
    /// A socket's own modes, and what its connect calls left for the next one.
    #[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
    struct Flags: u8 {
        /// Nonblocking mode (`O_NONBLOCK`, `FIONBIO`): the blocking calls make one attempt.
        const NONBLOCK = 1;
        /// The privileged bit (XNU's `SS_PRIV`).
        const PRIV = 2;
        /// A connect call (not the KPI's background connect) is waiting on this connect, or
        /// left it going on (`EINPROGRESS`): the next connect call reports its outcome, once
        /// (Linux's `SS_CONNECTING` socket whose TCP connection finished: `connect` then
        /// returns 0).
        const CONNECT_REPORT = 4;
    }
}

/// Whether the socket object is still a socket. Not a flag among the modes: once
/// `Released`, every operation is `EBADF`, nothing is notified any more, and it never
/// goes back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lifecycle {
    /// Open: handles work.
    Open,
    /// Closed for good ([`SocketCore::release`]): protocol state released, out of the
    /// table.
    Released,
}

/// What the socket lock protects.
pub(crate) struct Locked<P: ?Sized> {
    st: StateCell,
    life: Lifecycle,
    flags: Flags,
    sndbuf: u32,
    ext: Option<Box<Extra>>,
    proto: P,
}

/// Socket state that few sockets need.
#[derive(Default)]
struct Extra {
    /// Options other than the send buffer, once one was set.
    opts: Option<Options>,
    /// The target of a connect that goes on in the background (see [`Socket::start_connect`]).
    connect_to: Option<SockAddr>,
    /// The pending error (`SO_ERROR`) kept by the socket layer itself.
    so_error: Option<Errno>,
    /// The last failure of an operation and why, when the failing code said
    /// ([`OpCtx::fail`]); a failure without a reason clears it.
    why: Option<(Errno, &'static str)>,
    /// The owner recorded by a face.
    owner: Option<u32>,
    /// The credentials recorded by a face (what a peer's `SO_PEERCRED` reports).
    cred: Option<Cred>,
    /// The account the socket counts against, and charges its queued bytes to.
    account: Option<Arc<Account>>,
    /// Wakers waiting for events, and the upcall.
    waiters: Waiters,
}

impl<P: ?Sized> Locked<P> {
    /// Whether the socket has been closed for good.
    fn released(&self) -> bool {
        self.life == Lifecycle::Released
    }

    fn opts(&self) -> Options {
        let mut o = self.ext.as_ref().and_then(|e| e.opts).unwrap_or_default();
        o.sndbuf = self.sndbuf;
        o
    }

    fn set_opt(&mut self, opt: SockOpt, val: OptVal) -> Result<()> {
        let mut o = self.opts();
        o.set(opt, val)?;
        self.sndbuf = o.sndbuf;
        if opt != SockOpt::SndBuf {
            self.ext.get_or_insert_default().opts = Some(o);
        }
        Ok(())
    }

    fn take_so_error(&mut self) -> Option<Errno> {
        self.ext.as_mut().and_then(|e| e.so_error.take())
    }

    fn so_error(&self) -> Option<Errno> {
        self.ext.as_ref().and_then(|e| e.so_error)
    }

    fn set_so_error(&mut self, e: Errno) {
        self.ext.get_or_insert_default().so_error = Some(e);
    }

    /// Keeps (or, given no reason, forgets) why the last operation failed with `e`. Only
    /// failures get here; a socket whose operations never failed with a reason has no box
    /// for it.
    #[cold]
    fn note_failure(&mut self, e: Errno, why: Option<&'static str>) {
        match why {
            Some(w) => self.ext.get_or_insert_default().why = Some((e, w)),
            None => {
                if let Some(x) = self.ext.as_mut() {
                    x.why = None;
                }
            }
        }
    }

    /// Why the last failure was `e`, if it was and its reason was given.
    fn reason(&self, e: Errno) -> Option<&'static str> {
        let (x, w) = self.ext.as_ref()?.why?;
        (x == e).then_some(w)
    }

    fn owner(&self) -> Option<u32> {
        self.ext.as_ref().and_then(|e| e.owner)
    }

    fn cred(&self) -> Option<Cred> {
        self.ext.as_ref().and_then(|e| e.cred)
    }

    fn account(&self) -> Option<Arc<Account>> {
        self.ext.as_ref().and_then(|e| e.account.clone())
    }

    /// The context an operation on this socket runs with: its committed state, options,
    /// credentials and account (copied out, so the protocol state stays free to borrow),
    /// notifications going to `deferred`.
    pub(crate) fn op_ctx<'a>(&self, me: &'a SockRef, deferred: &'a mut Deferred) -> OpCtx<'a> {
        OpCtx::new(
            me,
            self.st.current(),
            self.opts(),
            self.cred(),
            self.account(),
            deferred,
        )
    }

    fn connect_to(&self) -> Option<&SockAddr> {
        self.ext.as_ref().and_then(|e| e.connect_to.as_ref())
    }

    fn set_connect_to(&mut self, to: Option<SockAddr>) {
        if to.is_some() || self.ext.is_some() {
            self.ext.get_or_insert_default().connect_to = to;
        }
    }
}

impl<P: Protocol> SocketCore<P> {
    /// A new socket object in state `New`, with a fresh id from `stack`, default options and
    /// no handles. Coerce the result to [`SockRef`] to hand it to the core.
    pub fn new(
        stack: &StackRef,
        domain: Domain,
        ty: SockType,
        protocol: u16,
        proto: P,
    ) -> Arc<SocketCore<P>> {
        Arc::new(SocketCore {
            id: stack.alloc_id(),
            domain,
            ty,
            protocol,
            stack: stack.clone(),
            handles: AtomicU32::new(0),
            mask: AtomicU32::new(0),
            lock: Mutex::new(Locked {
                st: StateCell::new(State::New),
                life: Lifecycle::Open,
                flags: Flags::empty(),
                sndbuf: crate::opt::WMEM_DEFAULT,
                ext: None,
                proto,
            }),
        })
    }

    /// As [`new`](Self::new), with `opts` for options: a family whose accepted sockets are
    /// clones of their listener (TCP: Linux's `sk_clone_lock` copies buffers, keep-alive,
    /// linger and timeouts) makes them with the listener's options.
    pub fn new_with_options(
        stack: &StackRef,
        domain: Domain,
        ty: SockType,
        protocol: u16,
        proto: P,
        opts: Options,
    ) -> Arc<SocketCore<P>> {
        let s = Self::new(stack, domain, ty, protocol, proto);
        {
            let mut l = s.lock.lock();
            l.sndbuf = opts.sndbuf;
            if opts != Options::default() {
                l.ext.get_or_insert_default().opts = Some(opts);
            }
        }
        s
    }
}

impl<P: ?Sized> SocketCore<P> {
    /// The socket's id: unique in its stack, never reused while the stack runs.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn id_ref(&self) -> &u64 {
        &self.id
    }

    /// Its domain.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// Its type.
    pub fn ty(&self) -> SockType {
        self.ty
    }

    /// Its protocol number.
    pub fn protocol(&self) -> u16 {
        self.protocol
    }

    /// The stack it belongs to.
    pub fn stack(&self) -> &StackRef {
        &self.stack
    }

    /// Runs `f` on the protocol state under the socket's lock (for families wiring up a
    /// socket they just created).
    pub fn with_proto<R>(&self, f: impl FnOnce(&mut P) -> R) -> R {
        f(&mut self.lock.lock().proto)
    }
}

impl SocketCore {
    /// Closes the socket for good: state `Closed`, protocol resources released, peers told,
    /// waiters woken (they will see `EBADF`), removed from the table. With `only_if_unused`,
    /// does nothing if a handle was taken meanwhile.
    fn release(self: &Arc<Self>, only_if_unused: bool) {
        let mut deferred = Deferred::default();
        {
            let mut g = self.lock.lock();
            if g.released() || (only_if_unused && self.handles.load(Ordering::Acquire) != 0) {
                return;
            }
            g.life = Lifecycle::Released;
            crate::trace::ev!(debug, "socket closed", id = self.id, state = g.st.current());
            g.set_connect_to(None);
            // Nothing is ever left pending across an unlock, but closing must win regardless.
            let _ = g.st.end(Err::<(), _>(Errno::EBADF));
            if g.st.current() != State::Closed {
                let _ = g.st.go(State::Closed);
            }
            let l: &mut Locked<dyn Protocol> = &mut g;
            let mut cx = l.op_ctx(self, &mut deferred);
            l.proto.close(&mut cx);
            if let Some(a) = l.ext.as_mut().and_then(|e| e.account.take()) {
                a.close_socket();
            }
        }
        self.stack.unregister(self.id);
        deferred.run();
        self.notify(Events::HUP | Events::NVAL | Events::ROOM);
        // Nothing may be notified any more; drop the rest (outside the lock: a waker's or an
        // upcall's destructor may take locks).
        let ext = {
            let mut g = self.lock.lock();
            self.mask.store(0, Ordering::Release);
            g.ext.take()
        };
        drop(ext);
    }

    /// Takes a handle if the socket is still open.
    pub(crate) fn acquire(self: &Arc<Self>) -> Option<Socket> {
        let g = self.lock.lock();
        if g.released() {
            return None;
        }
        self.handles.fetch_add(1, Ordering::AcqRel);
        drop(g);
        Some(Socket { core: self.clone() })
    }

    /// Makes the first handle of a socket that just entered the table.
    pub(crate) fn first_handle(self: Arc<Self>) -> Socket {
        self.handles.fetch_add(1, Ordering::AcqRel);
        Socket { core: self }
    }

    /// Moves a socket that a family has just connected to another `New -> Connected`.
    pub(crate) fn become_connected(&self) -> Result<()> {
        let mut g = self.lock.lock();
        g.st.start(State::Connecting)?;
        g.st.cont(State::Connected)?;
        g.st.end(Ok(()))
    }

    /// Snapshot for status displays.
    pub(crate) fn info(self: &Arc<Self>) -> Option<SocketInfo> {
        let g = self.lock.lock();
        if g.released() {
            return None;
        }
        Some(SocketInfo {
            id: self.id,
            domain: self.domain,
            ty: self.ty,
            state: g.st.current(),
            local: g.proto.local_addr(),
            remote: g.proto.peer_addr(),
            queues: g.proto.queues(),
            owner: g.owner(),
            peer_cred: g.proto.peer_cred(),
            details: g.proto.details(),
            nonblocking: g.flags.contains(Flags::NONBLOCK),
        })
    }
}

impl<P: ?Sized> fmt::Debug for SocketCore<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketCore({} {:?} {})", self.id, self.domain, self.ty)
    }
}

/// A snapshot of one socket, for `status` files and `ksock ss`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    /// Its id.
    pub id: u64,
    /// Its domain.
    pub domain: Domain,
    /// Its type.
    pub ty: SockType,
    /// Its state.
    pub state: State,
    /// Its local address.
    pub local: SockAddr,
    /// Its peer's address, if connected.
    pub remote: Option<SockAddr>,
    /// Queue lengths.
    pub queues: Queues,
    /// The owner set with [`Socket::set_owner`].
    pub owner: Option<u32>,
    /// The peer's credentials, recorded when the connection was made.
    pub peer_cred: Option<Cred>,
    /// The socket's own nonblocking flag.
    pub nonblocking: bool,
    /// What its family adds ([`Protocol::details`]): `("tcp_state", "ESTABLISHED")`...
    pub details: alloc::vec::Vec<(&'static str, alloc::string::String)>,
}

/// A user handle to a socket.
///
/// Cloning makes another handle to the same socket (like `dup`); the socket closes when the
/// last handle is dropped or [`close`](Socket::close)d, or at once on
/// [`hangup`](Socket::hangup). After that every call returns `EBADF`.
pub struct Socket {
    core: SockRef,
}

impl Clone for Socket {
    fn clone(&self) -> Self {
        self.core.handles.fetch_add(1, Ordering::AcqRel);
        Socket {
            core: self.core.clone(),
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.core.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.core.release(true);
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Socket({} {:?} {} {})",
            self.id(),
            self.domain(),
            self.ty(),
            self.state()
        )
    }
}

/// A reference that does not keep the socket open (for upcalls that need their socket).
#[derive(Clone)]
pub struct WeakSocket(Weak<SocketCore>);

impl WeakSocket {
    /// A handle, if the socket is still open.
    pub fn upgrade(&self) -> Option<Socket> {
        self.0.upgrade()?.acquire()
    }
}

impl Socket {
    /// The shared object behind this handle.
    pub fn core(&self) -> &SockRef {
        &self.core
    }

    /// The socket's id.
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// Its domain.
    pub fn domain(&self) -> Domain {
        self.core.domain
    }

    /// Its type.
    pub fn ty(&self) -> SockType {
        self.core.ty
    }

    /// Its protocol number.
    pub fn protocol(&self) -> u16 {
        self.core.protocol
    }

    /// Its committed state (`Closed` once closed).
    pub fn state(&self) -> State {
        self.core.lock.lock().st.current()
    }

    /// Whether it has been closed (every call now returns `EBADF`).
    pub fn is_closed(&self) -> bool {
        self.core.lock.lock().released()
    }

    /// A reference that does not keep the socket open.
    pub fn downgrade(&self) -> WeakSocket {
        WeakSocket(Arc::downgrade(&self.core))
    }

    /// Whether both handles refer to the same socket.
    pub fn same_socket(&self, other: &Socket) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }
}
