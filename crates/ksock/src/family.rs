//! The family / protocol abstraction: what a family (local, inet, ...) provides to the core.
//!
//! The core owns everything every family shares: the state machine, options, the
//! nonblocking flag, waker registration, upcalls, blocking and async wrappers, the socket
//! table. A family provides a [`Family`] (creation, addresses) and, per socket, a
//! [`Protocol`] object that lives inline in the socket under the socket's lock. Protocol
//! operations never block: they finish, fail, or return `EAGAIN` after saying what to wait for
//! ([`OpCtx::wait_on`]); the core turns that into polling, blocking and async calls.

use crate::account::Account;
use crate::addr::SockAddr;
use crate::buf::{RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::opt::{OptVal, Options};
use crate::socket::SocketCore;
use crate::stack::StackRef;
use crate::state::{Op, Rule, State, refusal, rule};
use crate::types::{Cred, Domain, MsgFlags, Queues, RecvInfo, Shutdown, SockType};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A shared reference to a socket object (not a user handle: holding one does not keep the
/// socket open).
pub type SockRef = Arc<SocketCore>;

/// An address family.
pub trait Family: Send + Sync + 'static {
    /// Its domain number: the one it is known by (the first of [`domains`](Family::domains)).
    fn domain(&self) -> Domain;

    /// Every domain it serves, when there are several: an inet family serves `AF_INET` and
    /// `AF_INET6` with one set of sockets, ports and interfaces, as Linux's `inet` and
    /// `inet6` share TCP's and UDP's tables (and Plan 9's `/net/tcp` serves both). Empty,
    /// the default, means [`domain`](Family::domain) alone, so a family of one domain says
    /// nothing more. The stack finds a family by these ([`Stack::family`](crate::Stack::family))
    /// and refuses to register two that share one. Ask through [`serves`](Family::serves).
    fn domains(&self) -> &[Domain] {
        &[]
    }

    /// Whether it serves `domain` (see [`domains`](Family::domains)).
    fn serves(&self, domain: Domain) -> bool {
        match self.domains() {
            [] => self.domain() == domain,
            all => all.contains(&domain),
        }
    }

    /// The domain the file face makes its sockets in: [`domain`](Family::domain) by
    /// default; an inet family gives `AF_INET6` without `IPV6_V6ONLY`, which serves both
    /// versions (as Plan 9's `/net/tcp` does), so a ctl `bind *:80` or `connect [::1]:7`
    /// works on any socket of the family.
    fn namespace_domain(&self) -> Domain {
        self.domain()
    }

    /// Its name in `/net` (`local`, `inet`).
    fn name(&self) -> &'static str;

    /// The types it supports, in the order `/net/<family>/` lists its factories.
    fn types(&self) -> &'static [SockType];

    /// Creates a socket object of `ty` (unsupported types: `ESOCKTNOSUPPORT`; bad protocol:
    /// `EPROTONOSUPPORT`). Build it with [`SocketCore::new`].
    fn create(&self, stack: &StackRef, ty: SockType, protocol: i32) -> Result<SockRef>;

    /// Creates a socket of `ty` in `domain`, one of those it serves: what the stack calls.
    /// The default is [`create`](Family::create), which is all a family of one domain
    /// needs; a family of several overrides this to make the socket in the domain asked
    /// for (its [`SocketCore::new`] takes the domain, which `Socket::domain` then reports).
    fn create_in(
        &self,
        stack: &StackRef,
        domain: Domain,
        ty: SockType,
        protocol: i32,
    ) -> Result<SockRef> {
        let _ = domain;
        self.create(stack, ty, protocol)
    }

    /// Creates two sockets connected to each other (`EOPNOTSUPP` if the family has no pairs),
    /// both made with `cred`.
    fn socketpair(
        &self,
        stack: &StackRef,
        ty: SockType,
        protocol: i32,
        cred: Option<Cred>,
    ) -> Result<(SockRef, SockRef)> {
        let _ = (stack, ty, protocol, cred);
        Err(Errno::EOPNOTSUPP)
    }

    /// Parses the text form of an address (as written to a `ctl` file).
    fn parse_addr(&self, text: &[u8]) -> Result<SockAddr>;

    /// What a text address looks like, for the message of a malformed one ("an address is
    /// a.b.c.d:port, ..."); `None` (the default) says nothing.
    fn addr_forms(&self) -> Option<&'static str> {
        None
    }

    /// The addresses of its listening sockets (the `/net/<family>/addrs` file).
    fn listening(&self) -> Vec<SockAddr>;

    /// The family's own counters, as (name, value) (the `/net/<family>/stats` file): what
    /// it dropped and why, what its devices did. None by default.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Runs the family's timers that are due at `now` (nanoseconds on the stack's clock,
    /// see [`crate::time`]) and returns when it next wants to run (`None`: no timer set).
    /// The host calls it through [`Stack::on_timer`](crate::Stack::on_timer); a family
    /// asks for a call with [`StackInner::schedule`](crate::stack::StackInner::schedule).
    fn on_timer(&self, now: u64) -> Option<u64> {
        let _ = now;
        None
    }

    /// Every address bound in its namespace (for diagnostics and leak checks).
    fn bound(&self) -> Vec<SockAddr> {
        Vec::new()
    }
}

/// How far a connect got.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Progress {
    /// Connected (or, for datagrams, the peer is set).
    Done,
    /// Under way; the family calls [`SocketCore::finish_connect`] when it ends.
    InProgress,
}

/// A connection taken off a listener's queue.
pub struct Accepted {
    /// The new socket object (state `New`; the core moves it to `Connected`).
    pub sock: SockRef,
    /// The peer's address.
    pub peer: SockAddr,
    /// The peer has already closed (the connection is handed out all the same; reading it
    /// gives the buffered data, then end of file).
    pub peer_gone: bool,
}

/// Per-socket protocol state and operations. Called with the socket's lock held; must not
/// block, wake wakers or call upcalls directly (use [`OpCtx::notify`]).
///
/// Returning `Err(EAGAIN)` means "nothing done, try again when woken"; say what to wait for
/// with [`OpCtx::wait_on`], or the core waits on this socket for the operation's usual event.
pub trait Protocol: Send + 'static {
    /// Binds to `addr` (the core has checked the state: `New -> Bound` is under way).
    fn bind(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<()>;

    /// Binds to any free address of the family's choosing, as [`bind`](Protocol::bind)
    /// does otherwise (`New -> Bound` is under way): Linux's autobind, a free name for the
    /// local family (`unix_autobind`), an ephemeral port for inet (`inet_autobind`). Every
    /// face asks for it through [`Socket::autobind`](crate::Socket::autobind), so how a
    /// free address is found is the family's alone. The default, for a family that cannot
    /// pick one: `EOPNOTSUPP`.
    fn autobind(&mut self, cx: &mut OpCtx<'_>) -> Result<()> {
        let _ = cx;
        Err(Errno::EOPNOTSUPP)
    }

    /// Whether `listen` on a socket that was never bound binds it first
    /// ([`autobind`](Protocol::autobind)), as Linux TCP does; `false` (the default) leaves
    /// it to the operation table (`EINVAL`, as Linux AF_UNIX).
    fn listen_binds(&self) -> bool {
        false
    }

    /// What `connect` on a listening socket fails with: `EINVAL` (the default, the
    /// operation table's, as Linux AF_UNIX), or `EISCONN` for a family that counts a
    /// listener as connected, as Linux TCP does (`__inet_stream_connect`).
    fn listener_connect_errno(&self) -> Errno {
        Errno::EINVAL
    }

    /// Starts listening, or updates the backlog of a listener.
    fn listen(&mut self, cx: &mut OpCtx<'_>, backlog: usize) -> Result<()>;

    /// Connects (connection types) or sets the default peer (datagrams).
    fn connect(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress>;

    /// Takes the oldest pending connection.
    fn accept(&mut self, cx: &mut OpCtx<'_>) -> Result<Accepted>;

    /// Sends from `src` (consuming what was sent); returns the byte count. A
    /// [`SendBuf::Share`] source's slices are kept as they are (zero-copy); a
    /// [`SendBuf::Copy`] source is copied, preferably outside any lock shared with the peer.
    fn send(
        &mut self,
        cx: &mut OpCtx<'_>,
        src: SendBuf<'_>,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize>;

    /// Receives into `dst`.
    fn recv(
        &mut self,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo>;

    /// Shuts down one or both directions.
    fn shutdown(&mut self, cx: &mut OpCtx<'_>, how: Shutdown) -> Result<()>;

    /// Releases everything: names, queues, connections. Peers are told through `cx`.
    fn close(&mut self, cx: &mut OpCtx<'_>);

    /// Current readiness (without `NVAL`; the core adds `ERR` for its own pending error).
    fn readiness(&self, opts: &Options) -> Events;

    /// The bound address (`Unnamed` if none).
    fn local_addr(&self) -> SockAddr;

    /// The peer's address, or `None` when not connected.
    fn peer_addr(&self) -> Option<SockAddr>;

    /// Takes the pending error, if any (`SO_ERROR`).
    fn take_error(&mut self) -> Option<Errno>;

    /// Whether an error is pending, without taking it.
    fn has_error(&self) -> bool;

    /// Queue lengths for status displays.
    fn queues(&self) -> Queues;

    /// Whether the family has options at protocol `level` (`IPPROTO_TCP`, ...): `Ok` for
    /// its levels, `ENOPROTOOPT` for other levels, and `EOPNOTSUPP` (the default) when it
    /// has no protocol options at all (Linux AF_UNIX, whose `getsockopt` at another level
    /// fails before looking at the arguments).
    fn option_level(&self, level: i32) -> Result<()> {
        let _ = level;
        Err(Errno::EOPNOTSUPP)
    }

    /// Reads option `name` of protocol `level` (`TCP_NODELAY`, `IPV6_V6ONLY`...). The
    /// default has none: the error of [`option_level`](Protocol::option_level), or
    /// `ENOPROTOOPT`.
    fn get_option(&self, level: i32, name: i32) -> Result<OptVal> {
        let _ = name;
        self.option_level(level)?;
        Err(Errno::ENOPROTOOPT)
    }

    /// Sets option `name` of protocol `level`; as [`get_option`](Protocol::get_option).
    fn set_option(&mut self, cx: &mut OpCtx<'_>, level: i32, name: i32, val: OptVal) -> Result<()> {
        let _ = (cx, name, val);
        self.option_level(level)?;
        Err(Errno::ENOPROTOOPT)
    }

    /// A socket-level option changed (`SO_KEEPALIVE`, `SO_RCVBUF`...; `cx.opts()` has the new
    /// values): a family that applies options to live protocol state (a TCP connection's
    /// keep-alive) does it here. Nothing by default.
    fn options_changed(&mut self, cx: &mut OpCtx<'_>, opt: crate::opt::SockOpt) {
        let _ = (cx, opt);
    }

    /// The peer's credentials as recorded when the connection was made (`SO_PEERCRED`), if
    /// the family keeps them and the face recorded any.
    fn peer_cred(&self) -> Option<Cred> {
        None
    }

    /// Family-specific lines for status displays (`tcp_state ESTABLISHED`, counters), as
    /// `(key, value)` pairs with no white space in the key. None by default.
    fn details(&self) -> Vec<(&'static str, alloc::string::String)> {
        Vec::new()
    }

    /// Bytes waiting to be received (`FIONREAD`): all buffered bytes of a connection (stream
    /// or records), the length of the next datagram.
    fn nread(&self) -> usize;
}

/// What a protocol operation may touch besides its own state.
pub struct OpCtx<'a> {
    me: &'a SockRef,
    state: State,
    opts: Options,
    cred: Option<Cred>,
    account: Option<Arc<Account>>,
    wait: Option<(SockRef, Events)>,
    why: Option<(Errno, &'static str)>,
    waits: bool,
    deferred: &'a mut Deferred,
}

impl<'a> OpCtx<'a> {
    pub(crate) fn new(
        me: &'a SockRef,
        state: State,
        opts: Options,
        cred: Option<Cred>,
        account: Option<Arc<Account>>,
        deferred: &'a mut Deferred,
    ) -> Self {
        OpCtx {
            me,
            state,
            opts,
            cred,
            account,
            wait: None,
            why: None,
            waits: false,
            deferred,
        }
    }

    /// Whether the caller of this `connect` waits for its outcome (a blocking or async
    /// connect, a parked file request). A family whose connect ends inside the call may
    /// still return [`Progress::InProgress`] to a caller that does not wait (a nonblocking
    /// or background connect), and end it with [`Deferred::connect_done`], as Linux answers
    /// every nonblocking TCP connect with `EINPROGRESS`. False outside `connect`.
    pub fn caller_waits(&self) -> bool {
        self.waits
    }

    pub(crate) fn set_caller_waits(&mut self, on: bool) {
        self.waits = on;
    }

    /// The socket being operated on.
    pub fn me(&self) -> &'a SockRef {
        self.me
    }

    /// Its committed state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Its options.
    pub fn opts(&self) -> &Options {
        &self.opts
    }

    /// The credentials its face recorded (see [`Socket::set_cred`](crate::Socket::set_cred)).
    pub fn cred(&self) -> Option<Cred> {
        self.cred
    }

    /// The account the socket charges its queued bytes to, if it has one.
    pub fn account(&self) -> Option<&Arc<Account>> {
        self.account.as_ref()
    }

    /// Says that the `EAGAIN` being returned ends when `sock` notifies any of `events`.
    pub fn wait_on(&mut self, sock: &SockRef, events: Events) {
        self.wait = Some((sock.clone(), events));
    }

    pub(crate) fn take_wait(&mut self) -> Option<(SockRef, Events)> {
        self.wait.take()
    }

    /// Says why the operation fails with `e`, and returns `e`: `return
    /// Err(cx.fail(Errno::ECONNREFUSED, "no socket is bound to that name"))`. The core keeps
    /// the reason on the socket if the operation does fail with `e`
    /// ([`Socket::error_reason`](crate::Socket::error_reason)), so the faces explain the
    /// error in the family's own words. Costs nothing until the operation fails; the last
    /// reason given wins.
    #[cold]
    pub fn fail(&mut self, e: Errno, why: &'static str) -> Errno {
        self.why = Some((e, why));
        e
    }

    /// Gives the reason [`OPS`](crate::state::OPS) refuses `op` in this state, if `e` is
    /// that refusal; returns `e`.
    #[cold]
    pub(crate) fn refused(&mut self, op: Op, e: Errno) -> Errno {
        if rule(op, self.state) == Rule::Refuse(e)
            && let Some(w) = refusal(op, self.state)
        {
            self.fail(e, w);
        }
        e
    }

    /// The reason given for `e` by [`fail`](Self::fail), if the last one given was for `e`.
    pub(crate) fn reason_for(&self, e: Errno) -> Option<&'static str> {
        self.why.filter(|(x, _)| *x == e).map(|(_, w)| w)
    }

    /// Notifies `sock` of `events` once the socket's lock is released. Cheap when nobody
    /// listens on `sock`.
    pub fn notify(&mut self, sock: &SockRef, events: Events) {
        self.deferred.notify(sock, events);
    }

    /// Tells `sock` that its peer went away: once the lock is released its state moves
    /// `Connected -> Closing` and it is notified of `events`.
    pub fn peer_gone(&mut self, sock: &SockRef, events: Events) {
        self.deferred.peer_gone(sock, events);
    }

    /// The notifications this operation delivers once its lock is released, for the rest
    /// of what [`Deferred`] can carry (a connect ended, a connection reset).
    pub fn deferred(&mut self) -> &mut Deferred {
        self.deferred
    }
}

/// Notifications collected under a lock and delivered after it is released.
///
/// Operations get one through their [`OpCtx`]; a family's driver working outside any
/// operation (an interface poll that finishes handshakes and delivers resets) makes its
/// own, fills it while it holds its locks and calls [`run`](Deferred::run) once it holds
/// none.
#[derive(Default)]
pub struct Deferred {
    first: Option<Note>,
    more: Vec<Note>,
}

struct Note {
    sock: SockRef,
    events: Events,
    kind: NoteKind,
}

#[derive(Clone, Copy)]
enum NoteKind {
    Notify,
    PeerGone,
    Reset,
    ConnectDone(Option<Errno>, Option<&'static str>),
}

impl Deferred {
    /// Nothing to deliver yet.
    pub fn new() -> Deferred {
        Deferred::default()
    }

    /// Whether nothing is to be delivered.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn push(&mut self, sock: SockRef, events: Events, kind: NoteKind) {
        let n = Note { sock, events, kind };
        if self.first.is_none() {
            self.first = Some(n);
        } else {
            self.more.push(n);
        }
    }

    /// Notifies `sock` of `events` (as [`OpCtx::notify`]).
    pub fn notify(&mut self, sock: &SockRef, events: Events) {
        if sock.wants(events) {
            self.push(sock.clone(), events, NoteKind::Notify);
        }
    }

    /// Tells `sock` its peer went away (as [`OpCtx::peer_gone`]).
    pub fn peer_gone(&mut self, sock: &SockRef, events: Events) {
        self.push(sock.clone(), events, NoteKind::PeerGone);
    }

    /// Ends `sock`'s connect in progress once the locks are released, as
    /// [`SocketCore::finish_connect`] (`why`: as [`SocketCore::fail_connect`]). For a
    /// family that learns a handshake's outcome while it holds another socket's lock or
    /// its own interface lock.
    pub fn connect_done(&mut self, sock: &SockRef, result: Result<()>, why: Option<&'static str>) {
        self.push(
            sock.clone(),
            Events::empty(),
            NoteKind::ConnectDone(result.err(), why),
        );
    }

    /// Tells `sock` its connection was reset: `Connected` or `Closing` moves to `Closed`
    /// (the family reports the error itself, through [`Protocol::take_error`]), and it is
    /// notified of `events`.
    pub fn reset(&mut self, sock: &SockRef, events: Events) {
        self.push(sock.clone(), events, NoteKind::Reset);
    }

    /// Delivers everything. Call with no lock held.
    pub fn run(&mut self) {
        // `more` holds notes only when `first` does.
        let Some(first) = self.first.take() else {
            return;
        };
        for n in core::iter::once(first).chain(self.more.drain(..)) {
            match n.kind {
                NoteKind::Notify => {}
                NoteKind::PeerGone => n.sock.peer_went_away(),
                NoteKind::Reset => n.sock.was_reset(),
                NoteKind::ConnectDone(e, why) => {
                    n.sock.end_connect(e.map_or(Ok(()), Err), why);
                    continue;
                }
            }
            n.sock.notify(n.events);
        }
    }
}
