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

use crate::account::Account;
use crate::addr::SockAddr;
use crate::buf::{Chain, ChainSink, RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::{Events, Upcall, Waiters, deliver, mask_wants};
use crate::family::{Accepted, Deferred, OpCtx, Progress, Protocol, SockRef};
use crate::opt::{OptVal, Options, SockOpt};
use crate::stack::StackRef;
use crate::state::{State, StateCell};
use crate::sync::Mutex;
use crate::types::{Cred, Domain, MsgFlags, Queues, RecvInfo, Shutdown, SockType};
use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::task::Wake;
use bytes::Buf;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::{Context, Poll, Waker};

/// The largest backlog (`net.core.somaxconn`).
pub const SOMAXCONN: usize = 4096;

const F_NONBLOCK: u8 = 1;
const F_PRIV: u8 = 2;
const F_RELEASED: u8 = 4;
/// A connect call (not the KPI's background connect) is waiting on this connect, or left it
/// going on (`EINPROGRESS`): the next connect call reports its outcome, once (Linux's
/// `SS_CONNECTING` socket whose TCP connection finished: `connect` then returns 0).
const F_CONNECT_REPORT: u8 = 8;

/// Events that end any wait: an error, a hang-up, or the socket being closed.
const ENDS: Events = Events::ERR.union(Events::HUP).union(Events::NVAL);

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

/// What the socket lock protects.
pub(crate) struct Locked<P: ?Sized> {
    st: StateCell,
    flags: u8,
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

    fn owner(&self) -> Option<u32> {
        self.ext.as_ref().and_then(|e| e.owner)
    }

    fn cred(&self) -> Option<Cred> {
        self.ext.as_ref().and_then(|e| e.cred)
    }

    fn account(&self) -> Option<Arc<Account>> {
        self.ext.as_ref().and_then(|e| e.account.clone())
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
                flags: 0,
                sndbuf: crate::opt::WMEM_DEFAULT,
                ext: None,
                proto,
            }),
        })
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
        if g.flags & F_RELEASED != 0 {
            return;
        }
        let w = &mut g.ext.get_or_insert_default().waiters;
        w.add(waker, interest);
        self.mask.store(w.mask(), Ordering::Release);
    }

    fn set_upcall_locked(&self, g: &mut Locked<P>, upcall: Option<Upcall>) {
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
    /// Runs one protocol operation under the lock and delivers its notifications after.
    /// Returns the result and, for `EAGAIN`, what to wait on.
    fn run<T>(
        self: &Arc<Self>,
        op: &mut impl FnMut(&mut Locked<dyn Protocol>, &mut OpCtx<'_>) -> Result<T>,
    ) -> (Result<T>, Option<(SockRef, Events)>) {
        let mut deferred = Deferred::default();
        let out = {
            let mut g = self.lock.lock();
            if g.flags & F_RELEASED != 0 {
                return (Err(Errno::EBADF), None);
            }
            let l: &mut Locked<dyn Protocol> = &mut g;
            let mut cx = OpCtx::new(
                self,
                l.st.current(),
                l.opts(),
                l.cred(),
                l.account(),
                &mut deferred,
            );
            let r = op(l, &mut cx);
            (r, cx.take_wait())
        };
        deferred.run();
        out
    }

    /// Register-then-recheck around [`run`](Self::run). Without a context this is a single
    /// nonblocking attempt.
    fn poll_op<T>(
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

    fn register_wait(
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
        if g.flags & F_RELEASED == 0 && g.so_error().is_none() {
            g.set_so_error(e);
        }
    }

    /// Called (through [`OpCtx::peer_gone`]) when the peer of a connected socket went away.
    pub(crate) fn peer_went_away(self: &Arc<Self>) {
        let mut g = self.lock.lock();
        if g.flags & F_RELEASED == 0 && g.st.current() == State::Connected {
            let _ = g.st.go(State::Closing);
        }
    }

    /// Ends a connect that was in progress: `Connecting -> Connected` on success; on failure
    /// the error becomes the socket's pending error (`SO_ERROR`) and the socket goes
    /// `Connecting -> Closed`. Families call this when a background connect finishes.
    pub fn finish_connect(self: &Arc<Self>, result: Result<()>) {
        let events = {
            let mut g = self.lock.lock();
            if g.flags & F_RELEASED != 0 || g.st.current() != State::Connecting {
                return;
            }
            g.set_connect_to(None);
            match result {
                Ok(()) => {
                    let _ = g.st.go(State::Connected);
                    Events::OUT
                }
                Err(e) => {
                    g.set_so_error(e);
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

    /// Closes the socket for good: state `Closed`, protocol resources released, peers told,
    /// waiters woken (they will see `EBADF`), removed from the table. With `only_if_unused`,
    /// does nothing if a handle was taken meanwhile.
    fn release(self: &Arc<Self>, only_if_unused: bool) {
        let mut deferred = Deferred::default();
        {
            let mut g = self.lock.lock();
            if g.flags & F_RELEASED != 0
                || (only_if_unused && self.handles.load(Ordering::Acquire) != 0)
            {
                return;
            }
            g.flags |= F_RELEASED;
            g.set_connect_to(None);
            // Nothing is ever left pending across an unlock, but closing must win regardless.
            let _ = g.st.end(Err::<(), _>(Errno::EBADF));
            if g.st.current() != State::Closed {
                let _ = g.st.go(State::Closed);
            }
            let l: &mut Locked<dyn Protocol> = &mut g;
            let mut cx = OpCtx::new(
                self,
                l.st.current(),
                l.opts(),
                l.cred(),
                l.account(),
                &mut deferred,
            );
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
        if g.flags & F_RELEASED != 0 {
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
        if g.flags & F_RELEASED != 0 {
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
            nonblocking: g.flags & F_NONBLOCK != 0,
        })
    }
}

impl<P: ?Sized> fmt::Debug for SocketCore<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketCore({} {:?} {})", self.id, self.domain, self.ty)
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
            if g.flags & F_RELEASED != 0 {
                return None;
            }
            let (state, opts, cred, account) = (g.st.current(), g.opts(), g.cred(), g.account());
            let mut cx = OpCtx::new(&me, state, opts, cred, account, &mut deferred);
            f(&mut g.proto, &mut cx)
        };
        deferred.run();
        Some(r)
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

/// The context to register with, unless `MSG_DONTWAIT` makes the call a single attempt.
fn unless_dontwait<'a, 'b>(
    cx: &'a mut Context<'b>,
    flags: MsgFlags,
) -> Option<&'a mut Context<'b>> {
    (!flags.contains(MsgFlags::DONTWAIT)).then_some(cx)
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
        self.core.lock.lock().flags & F_RELEASED != 0
    }

    /// A reference that does not keep the socket open.
    pub fn downgrade(&self) -> WeakSocket {
        WeakSocket(Arc::downgrade(&self.core))
    }

    /// Whether both handles refer to the same socket.
    pub fn same_socket(&self, other: &Socket) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }

    fn with_locked<T>(&self, f: impl FnOnce(&mut Locked<dyn Protocol>) -> Result<T>) -> Result<T> {
        let mut g = self.core.lock.lock();
        if g.flags & F_RELEASED != 0 {
            return Err(Errno::EBADF);
        }
        f(&mut g)
    }

    fn run<T>(
        &self,
        mut op: impl FnMut(&mut Locked<dyn Protocol>, &mut OpCtx<'_>) -> Result<T>,
    ) -> Result<T> {
        self.core.run(&mut op).0
    }

    // ----- flags, owner, upcall -----

    /// The socket's own nonblocking mode (used by the blocking calls and by faces).
    pub fn is_nonblocking(&self) -> bool {
        self.core.lock.lock().flags & F_NONBLOCK != 0
    }

    /// Sets the socket's nonblocking mode.
    pub fn set_nonblocking(&self, on: bool) -> Result<()> {
        self.with_locked(|l| {
            if on {
                l.flags |= F_NONBLOCK
            } else {
                l.flags &= !F_NONBLOCK
            }
            Ok(())
        })
    }

    /// Whether the privileged bit (`SS_PRIV`) is set.
    pub fn is_priv(&self) -> bool {
        self.core.lock.lock().flags & F_PRIV != 0
    }

    /// Sets or clears the privileged bit.
    pub fn set_priv(&self, on: bool) -> Result<()> {
        self.with_locked(|l| {
            if on {
                l.flags |= F_PRIV
            } else {
                l.flags &= !F_PRIV
            }
            Ok(())
        })
    }

    /// The owner (a uid, for faces that enforce ownership).
    pub fn owner(&self) -> Option<u32> {
        self.core.lock.lock().owner()
    }

    /// Records the credentials of the process acting on this socket. A connection made
    /// afterwards records them for the peer's [`peer_cred`](Socket::peer_cred): the
    /// client's at `connect`, the listener's at `listen`, a pair's creator's at
    /// `socketpair`, as Linux does.
    pub fn set_cred(&self, cred: Cred) -> Result<()> {
        self.with_locked(|l| {
            l.ext.get_or_insert_default().cred = Some(cred);
            Ok(())
        })
    }

    /// The credentials recorded with [`set_cred`](Socket::set_cred).
    pub fn cred(&self) -> Result<Option<Cred>> {
        self.with_locked(|l| Ok(l.cred()))
    }

    /// The peer's credentials (`SO_PEERCRED`): those recorded when the connection was made,
    /// or [`Cred::NONE`] when there are none (not connected, or no face recorded them).
    pub fn peer_cred(&self) -> Result<Cred> {
        self.with_locked(|l| Ok(l.proto.peer_cred().unwrap_or(Cred::NONE)))
    }

    /// Records the owner.
    pub fn set_owner(&self, uid: u32) -> Result<()> {
        self.with_locked(|l| {
            l.ext.get_or_insert_default().owner = Some(uid);
            Ok(())
        })
    }

    /// Attaches the socket to `account`: it counts as one of the account's sockets until it
    /// closes, its queued bytes are charged to it, and sockets accepted from it join it.
    /// At the account's socket limit: `EMFILE`; a socket that has an account already:
    /// `EINVAL`.
    pub fn set_account(&self, account: Arc<Account>) -> Result<()> {
        self.with_locked(|l| {
            let ext = l.ext.get_or_insert_default();
            if ext.account.is_some() {
                return Err(Errno::EINVAL);
            }
            account.open_socket()?;
            ext.account = Some(account);
            Ok(())
        })
    }

    /// The account the socket is attached to.
    pub fn account(&self) -> Option<Arc<Account>> {
        self.core.lock.lock().account()
    }

    /// Sets (or clears) the upcall: called with no lock held on every readiness change, and
    /// once with `HUP | NVAL` when the socket closes. Capture a [`WeakSocket`], not a
    /// [`Socket`], if it needs the socket: a handle inside the upcall would keep it open.
    pub fn set_upcall(&self, upcall: Option<Upcall>) -> Result<()> {
        let mut g = self.core.lock.lock();
        if g.flags & F_RELEASED != 0 {
            return Err(Errno::EBADF);
        }
        self.core.set_upcall_locked(&mut g, upcall);
        Ok(())
    }

    // ----- setup -----

    /// Binds to a local address (`New -> Bound`). Already bound: `EINVAL`.
    pub fn bind(&self, addr: &SockAddr) -> Result<()> {
        self.run(|l, cx| {
            l.st.start(State::Bound)?;
            let r = l.proto.bind(cx, addr);
            l.st.end(r)
        })
    }

    /// Listens with room for `backlog` waiting connections (clamped to 1..=[`SOMAXCONN`]),
    /// or updates the backlog of a listener. Datagram sockets: `EOPNOTSUPP`; not bound:
    /// `EINVAL`.
    pub fn listen(&self, backlog: usize) -> Result<()> {
        let ty = self.ty();
        let backlog = backlog.clamp(1, SOMAXCONN);
        self.run(|l, cx| {
            if !ty.is_connection() {
                return Err(Errno::EOPNOTSUPP);
            }
            if l.st.current() == State::Listening {
                return l.proto.listen(cx, backlog);
            }
            l.st.start(State::Listening)?;
            let r = l.proto.listen(cx, backlog);
            l.st.end(r)
        })
    }

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
        let cur = l.st.current();
        if !ty.is_connection() {
            // Datagrams: connect sets (or changes) the default peer.
            return match cur {
                State::New => {
                    l.st.start(State::Connecting)?;
                    let r = l
                        .proto
                        .connect(cx, addr)
                        .and_then(|p| l.st.cont(State::Connected).map(|_| p));
                    l.st.end(r)
                }
                State::Bound => {
                    l.st.start(State::Connected)?;
                    let r = l.proto.connect(cx, addr);
                    l.st.end(r)
                }
                State::Connected | State::Closing => l.proto.connect(cx, addr),
                _ => Err(Errno::EINVAL),
            };
        }
        let report = l.flags & F_CONNECT_REPORT != 0 && !background;
        match cur {
            State::Listening => return Err(Errno::EINVAL),
            State::Connected | State::Closing if report => {
                l.flags &= !F_CONNECT_REPORT;
                return Ok(Progress::Done);
            }
            State::Connected | State::Closing => return Err(Errno::EISCONN),
            State::Connecting if wait && !background => {
                // Wait for the outcome (the poll engine registers on this socket, which
                // `finish_connect` notifies), and report it when it comes.
                l.flags |= F_CONNECT_REPORT;
                return Err(Errno::EAGAIN);
            }
            State::Connecting => return Err(Errno::EALREADY),
            State::Closed if report => {
                // The connect this caller (or an earlier nonblocking one) left going on
                // failed: its error, once.
                l.flags &= !F_CONNECT_REPORT;
                if let Some(e) = l.take_so_error() {
                    return Err(e);
                }
            }
            _ => {}
        }
        l.st.start(State::Connecting)?;
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
                l.flags |= F_CONNECT_REPORT;
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
        let ty = self.ty();
        let wait = cx.is_some();
        match self.core.poll_op(cx, Events::OUT, |l, cx| {
            Self::connect_op(ty, l, cx, addr, false, wait)
        }) {
            Poll::Ready(Ok(Progress::Done)) => Poll::Ready(Ok(())),
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

    // ----- accept -----

    fn finish_accept(
        &self,
        a: Accepted,
        account: Option<Arc<Account>>,
    ) -> Result<(Socket, SockAddr)> {
        if let Err(e) = a.sock.become_connected() {
            if let Some(acct) = account {
                acct.close_socket();
            }
            return Err(e);
        }
        if let Some(acct) = account {
            // Counted already, by the accept.
            a.sock.lock.lock().ext.get_or_insert_default().account = Some(acct);
        }
        if a.peer_gone {
            a.sock.peer_went_away();
        }
        self.core.stack.register(&a.sock);
        Ok((a.sock.first_handle(), a.peer))
    }

    /// Accept, poll form: the oldest pending connection and its peer's address. Not a
    /// listener: `EINVAL`; datagram sockets: `EOPNOTSUPP`.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<(Socket, SockAddr)>> {
        self.poll_accept_inner(Some(cx))
    }

    fn poll_accept_inner(&self, cx: Option<&mut Context<'_>>) -> Poll<Result<(Socket, SockAddr)>> {
        let ty = self.ty();
        let r = self.core.poll_op(cx, Events::IN, |l, cx| {
            if !ty.is_connection() {
                return Err(Errno::EOPNOTSUPP);
            }
            if l.st.current() != State::Listening {
                return Err(Errno::EINVAL);
            }
            // The new socket joins the listener's account: count it first, so that at the
            // limit nothing is dequeued (as accept4 reserves its descriptor first).
            let account = cx.account().cloned();
            if let Some(acct) = &account {
                acct.open_socket()?;
            }
            match l.proto.accept(cx) {
                Ok(a) => Ok((a, account)),
                Err(e) => {
                    if let Some(acct) = &account {
                        acct.close_socket();
                    }
                    Err(e)
                }
            }
        });
        match r {
            Poll::Ready(Ok((a, account))) => Poll::Ready(self.finish_accept(a, account)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Accept without waiting: `EAGAIN` if no connection is pending.
    pub fn try_accept(&self) -> Result<(Socket, SockAddr)> {
        match self.poll_accept_inner(None) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Errno::EAGAIN),
        }
    }

    // ----- data -----

    /// Send, poll form: copies from `src` (advancing it past what was sent) to the peer, or
    /// to `to` for unconnected datagrams. Records go whole or not at all; a stream send that
    /// fits partly returns the part sent. `Ready(Err(EAGAIN))` only with
    /// [`MsgFlags::DONTWAIT`].
    pub fn poll_sendmsg(
        &self,
        cx: &mut Context<'_>,
        src: &mut dyn Buf,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Poll<Result<usize>> {
        self.poll_send(cx, SendBuf::Copy(src), to, flags)
    }

    /// Send, poll form, from either kind of source: [`SendBuf::Copy`] as
    /// [`poll_sendmsg`](Self::poll_sendmsg), [`SendBuf::Share`] as
    /// [`poll_send_chain`](Self::poll_send_chain).
    pub fn poll_send(
        &self,
        cx: &mut Context<'_>,
        src: SendBuf<'_>,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Poll<Result<usize>> {
        self.poll_send_inner(unless_dontwait(cx, flags), src, to, flags)
    }

    pub(crate) fn poll_send_inner(
        &self,
        cx: Option<&mut Context<'_>>,
        mut src: SendBuf<'_>,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Poll<Result<usize>> {
        self.core.poll_op(cx, Events::OUT, |l, cx| {
            if !MsgFlags::SEND.contains(flags) {
                return Err(Errno::EOPNOTSUPP);
            }
            l.proto.send(cx, src.reborrow(), to, flags)
        })
    }

    /// Receive, poll form: into `dst`. A record larger than `dst` is truncated (the rest is
    /// discarded unless [`MsgFlags::PEEK`]) and the result says [`MsgFlags::TRUNC`].
    /// `Ready(Err(EAGAIN))` only with [`MsgFlags::DONTWAIT`].
    pub fn poll_recvmsg(
        &self,
        cx: &mut Context<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Poll<Result<RecvInfo>> {
        self.poll_recv_inner(unless_dontwait(cx, flags), dst, flags)
    }

    pub(crate) fn poll_recv_inner(
        &self,
        cx: Option<&mut Context<'_>>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Poll<Result<RecvInfo>> {
        self.core.poll_op(cx, Events::IN, |l, cx| {
            if !MsgFlags::RECV.contains(flags) {
                return Err(Errno::EOPNOTSUPP);
            }
            let r = l.proto.recv(cx, &mut *dst, flags);
            let drained = match &r {
                Err(e) => *e == Errno::EAGAIN,
                Ok(info) => info.eof,
            };
            if drained && let Some(e) = l.take_so_error() {
                return Err(e);
            }
            r
        })
    }

    /// Sends from a chain without copying: its slices move into the receiver's queue
    /// (advancing the chain past what was sent).
    pub fn poll_send_chain(
        &self,
        cx: &mut Context<'_>,
        chain: &mut Chain,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Poll<Result<usize>> {
        self.poll_send(cx, SendBuf::Share(chain), to, flags)
    }

    /// Receives up to `max` bytes as a chain that shares the sender's bytes.
    pub fn poll_recv_chain(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        flags: MsgFlags,
    ) -> Poll<Result<(Chain, RecvInfo)>> {
        let mut chain = Chain::new();
        let r = self.poll_recvmsg(cx, &mut ChainSink::new(&mut chain, max), flags);
        r.map(|r| r.map(|info| (chain, info)))
    }

    // ----- readiness -----

    /// Current readiness: `IN`, `OUT`, `HUP`, `RDHUP`, `ERR`; `NVAL` once closed.
    pub fn readiness(&self) -> Events {
        let g = self.core.lock.lock();
        if g.flags & F_RELEASED != 0 {
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

    // ----- shutdown, close -----

    /// Shuts down one or both directions (`Connected -> Closing`). Not connected: `ENOTCONN`.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.run(|l, cx| match l.st.current() {
            State::Connected => {
                l.st.start(State::Closing)?;
                let r = l.proto.shutdown(cx, how);
                l.st.end(r)
            }
            State::Closing => l.proto.shutdown(cx, how),
            _ => Err(Errno::ENOTCONN),
        })
    }

    /// Drops this handle; the socket closes if it was the last one.
    pub fn close(self) {
        drop(self)
    }

    /// Closes the socket now, whatever other handles exist (they will see `EBADF`).
    pub fn hangup(&self) {
        self.core.release(false);
    }

    // ----- addresses, options, status -----

    /// The bound address (`Unnamed` if none).
    pub fn local_addr(&self) -> Result<SockAddr> {
        self.with_locked(|l| Ok(l.proto.local_addr()))
    }

    /// The peer's address. Not connected: `ENOTCONN`.
    pub fn peer_addr(&self) -> Result<SockAddr> {
        self.with_locked(|l| l.proto.peer_addr().ok_or(Errno::ENOTCONN))
    }

    /// Reads an option. `SO_ERROR` returns the pending error number (0 if none) and clears it.
    pub fn get_option(&self, opt: SockOpt) -> Result<OptVal> {
        let (domain, ty, protocol) = (self.domain(), self.ty(), self.protocol());
        self.with_locked(|l| {
            Ok(match opt {
                SockOpt::Error => {
                    let e = l.take_so_error().or_else(|| l.proto.take_error());
                    OptVal::Int(e.map_or(0, Errno::raw))
                }
                SockOpt::Type => OptVal::Int(ty.raw() as i32),
                SockOpt::Domain => OptVal::Int(domain.raw() as i32),
                SockOpt::Protocol => OptVal::Int(protocol as i32),
                SockOpt::AcceptConn => OptVal::Int((l.st.current() == State::Listening) as i32),
                SockOpt::PeerCred => OptVal::Cred(l.proto.peer_cred().unwrap_or(Cred::NONE)),
                SockOpt::Proto { level, name } => l.proto.get_option(level, name)?,
                _ => l.opts().get(opt)?,
            })
        })
    }

    /// Sets an option. Read-only options: `ENOPROTOOPT`; a value of the wrong kind: `EINVAL`.
    pub fn set_option(&self, opt: SockOpt, val: OptVal) -> Result<()> {
        if let SockOpt::Proto { level, name } = opt {
            return self.run(|l, cx| l.proto.set_option(cx, level, name, val));
        }
        self.with_locked(|l| l.set_opt(opt, val))?;
        if opt == SockOpt::SndBuf {
            // A larger buffer may let a blocked writer go on.
            self.core.notify(Events::OUT);
        }
        Ok(())
    }

    /// Whether the socket's family has options at protocol `level` (see
    /// [`Protocol::option_level`]): faces that must check it before anything else, as Linux
    /// does for `getsockopt` on a socket without protocol options, ask here.
    pub fn option_level(&self, level: i32) -> Result<()> {
        self.with_locked(|l| l.proto.option_level(level))
    }

    /// The options as they stand.
    pub fn options(&self) -> Result<Options> {
        self.with_locked(|l| Ok(l.opts()))
    }

    /// Bytes waiting to be received (`FIONREAD`): all queued bytes of a connection, the
    /// next record of a datagram socket. A listener has none to give: `EINVAL`, as Linux.
    pub fn nread(&self) -> Result<usize> {
        self.with_locked(|l| {
            if l.st.current() == State::Listening {
                return Err(Errno::EINVAL);
            }
            Ok(l.proto.nread())
        })
    }

    /// A snapshot for status displays (`EBADF` once closed).
    pub fn info(&self) -> Result<SocketInfo> {
        self.core.info().ok_or(Errno::EBADF)
    }
}
