//! Stream and seqpacket sockets: the connection-oriented [`Protocol`] of the local family.
//!
//! A socket object's protocol type is fixed when it is made, so the states a connection
//! socket goes through are one enum, [`StreamState`], and each state's operations live with
//! it: unconnected (here), listening ([`Backlog`], `listener.rs`) and connected ([`End`],
//! `connected.rs`). The two types differ only in their data path (bytes or records), which
//! the connected state chooses by the socket's type.

use super::conn::Conn;
use super::connected::End;
use super::listener::Backlog;
use super::{Names, Target, addr_of, local_name};
use crate::addr::{LocalName, SockAddr};
use crate::buf::{RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::{Accepted, OpCtx, Progress, Protocol};
use crate::opt::Options;
use crate::types::{Cred, MsgFlags, Queues, RecvInfo, Shutdown, SockType};
use alloc::boxed::Box;
use alloc::sync::Arc;

/// Why a send, receive or shutdown of an unconnected socket fails.
const NOT_CONNECTED: &str = "the socket is not connected";

/// A stream or seqpacket socket's protocol state.
pub(crate) struct StreamSock {
    names: Arc<Names>,
    pub(super) st: StreamState,
}

/// Where a connection socket is. The core's [`State`](crate::State) says which operations
/// are allowed; this holds what each state owns.
pub(crate) enum StreamState {
    /// Neither listening nor connected, with its bound name.
    Init(Option<Box<LocalName>>),
    /// Listening: its backlog (the name lives there).
    Listening(Arc<Backlog>),
    /// Connected; the names of both ends live in the connection.
    Connected { conn: Arc<Conn>, side: u8 },
    /// Closed: everything released.
    Closed,
}

impl StreamSock {
    /// An unconnected, unbound socket.
    pub(super) fn new(names: Arc<Names>) -> StreamSock {
        StreamSock {
            names,
            st: StreamState::Init(None),
        }
    }

    /// Makes the socket side `side` of `conn` (a pair, or an accepted embryo).
    pub(super) fn join(&mut self, conn: Arc<Conn>, side: u8) {
        self.st = StreamState::Connected { conn, side };
    }

    /// The connected end, if connected.
    #[inline]
    fn end(&self) -> Option<End<'_>> {
        match &self.st {
            StreamState::Connected { conn, side } => Some(End::new(conn, *side)),
            _ => None,
        }
    }
}

impl Protocol for StreamSock {
    fn bind(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<()> {
        let name = local_name(addr)?;
        let StreamState::Init(None) = &self.st else {
            return Err(cx.fail(Errno::EINVAL, "the socket is already bound"));
        };
        self.names.bind(cx, &name, Target::Bound)?;
        self.st = StreamState::Init(Some(Box::new(name)));
        Ok(())
    }

    /// Linux's `unix_autobind`: the next free name (`Names::autobind`).
    fn autobind(&mut self, cx: &mut OpCtx<'_>) -> Result<()> {
        let StreamState::Init(None) = &self.st else {
            return Err(Errno::EINVAL);
        };
        let name = self.names.autobind(cx, Target::Bound)?;
        self.st = StreamState::Init(Some(Box::new(name)));
        Ok(())
    }

    fn listen(&mut self, cx: &mut OpCtx<'_>, backlog: usize) -> Result<()> {
        match &self.st {
            StreamState::Listening(b) => {
                b.set_max(cx, backlog);
                Ok(())
            }
            StreamState::Init(Some(name)) => {
                let b = Backlog::open(cx, &self.names, name, backlog);
                self.st = StreamState::Listening(b);
                Ok(())
            }
            _ => Err(cx.fail(Errno::EINVAL, "the socket is not bound")),
        }
    }

    fn connect(&mut self, cx: &mut OpCtx<'_>, addr: &SockAddr) -> Result<Progress> {
        let name = local_name(addr)?;
        let StreamState::Init(own) = &self.st else {
            return Err(cx.fail(Errno::EISCONN, "the socket is already connected"));
        };
        let entry = self.names.lookup(cx, &name)?;
        if entry.ty != cx.me().ty() {
            let why = match entry.target {
                Target::Listener(_) => "the listener is of another type",
                _ => "the name is bound to a socket of another type",
            };
            return Err(cx.fail(Errno::EPROTOTYPE, why));
        }
        let Target::Listener(backlog) = entry.target else {
            return Err(cx.fail(Errno::ECONNREFUSED, "the name is bound but not listening"));
        };
        let conn = backlog.enqueue(cx, &self.names, own.as_deref().cloned())?;
        self.join(conn, 0);
        Ok(Progress::Done)
    }

    fn accept(&mut self, cx: &mut OpCtx<'_>) -> Result<Accepted> {
        let StreamState::Listening(b) = &self.st else {
            return Err(cx.fail(Errno::EINVAL, "the socket is not listening"));
        };
        b.accept(cx)
    }

    fn send(
        &mut self,
        cx: &mut OpCtx<'_>,
        src: SendBuf<'_>,
        to: Option<&SockAddr>,
        _flags: MsgFlags,
    ) -> Result<usize> {
        let stream = cx.me().ty() == SockType::STREAM;
        match self.end() {
            Some(end) if stream => end.send_stream(cx, src, to),
            Some(end) => end.send_seqpacket(cx, src),
            None if stream && to.is_some() => Err(cx.fail(
                Errno::EOPNOTSUPP,
                "a stream socket cannot send to an address",
            )),
            None => Err(cx.fail(Errno::ENOTCONN, NOT_CONNECTED)),
        }
    }

    fn recv(
        &mut self,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        match self.end() {
            Some(end) => end.recv(cx, dst, flags),
            // Linux: a stream socket that is not connected says EINVAL, seqpacket ENOTCONN.
            None if cx.me().ty() == SockType::STREAM => Err(cx.fail(Errno::EINVAL, NOT_CONNECTED)),
            None => Err(cx.fail(Errno::ENOTCONN, NOT_CONNECTED)),
        }
    }

    fn shutdown(&mut self, cx: &mut OpCtx<'_>, how: Shutdown) -> Result<()> {
        let Some(end) = self.end() else {
            return Err(cx.fail(Errno::ENOTCONN, NOT_CONNECTED));
        };
        end.shutdown(cx, how);
        Ok(())
    }

    fn close(&mut self, cx: &mut OpCtx<'_>) {
        match core::mem::replace(&mut self.st, StreamState::Closed) {
            StreamState::Closed => {}
            StreamState::Init(name) => {
                if let Some(n) = name {
                    self.names.release(&n, cx.me().id());
                }
            }
            StreamState::Listening(b) => b.close(cx, &self.names),
            StreamState::Connected { conn, side } => End::new(&conn, side).close(cx, &self.names),
        }
    }

    fn readiness(&self, opts: &Options) -> Events {
        match &self.st {
            // Linux: a connection-type socket that is not connected polls as writable and
            // hung up.
            StreamState::Init(_) => Events::OUT | Events::HUP,
            StreamState::Listening(b) => b.readiness(),
            StreamState::Connected { conn, side } => End::new(conn, *side).readiness(opts),
            StreamState::Closed => Events::HUP,
        }
    }

    fn local_addr(&self) -> SockAddr {
        match &self.st {
            StreamState::Init(n) => addr_of(&n.as_deref().cloned()),
            StreamState::Listening(b) => b.local_addr(),
            StreamState::Connected { conn, side } => End::new(conn, *side).local_addr(),
            StreamState::Closed => SockAddr::Unnamed,
        }
    }

    fn peer_addr(&self) -> Option<SockAddr> {
        Some(self.end()?.peer_addr())
    }

    fn take_error(&mut self) -> Option<Errno> {
        self.end()?.take_error()
    }

    fn has_error(&self) -> bool {
        self.end().is_some_and(|e| e.has_error())
    }

    fn queues(&self) -> Queues {
        match &self.st {
            StreamState::Connected { conn, side } => End::new(conn, *side).queues(),
            StreamState::Listening(b) => b.queues(),
            _ => Queues::default(),
        }
    }

    fn peer_cred(&self) -> Option<Cred> {
        match &self.st {
            StreamState::Connected { conn, side } => End::new(conn, *side).peer_cred(),
            // Linux gives a listener its own credentials (`init_peercred` at `listen`).
            StreamState::Listening(b) => b.cred,
            _ => None,
        }
    }

    fn nread(&self) -> usize {
        self.end().map_or(0, |e| e.nread())
    }
}
