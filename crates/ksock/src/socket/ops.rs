//! The socket operations on a user handle: setup (bind, listen), accept, data (send and
//! receive in their copy and chain forms), shutdown and close.

use super::{SOMAXCONN, Socket};
use crate::account::Account;
use crate::addr::SockAddr;
use crate::buf::{Chain, ChainSink, RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::Accepted;
use crate::state::Op;
use crate::types::{MsgFlags, RecvInfo, Shutdown};
use alloc::sync::Arc;
use bytes::Buf;
use core::task::{Context, Poll};

impl Socket {
    /// Binds to a local address (`New -> Bound`). Already bound: `EINVAL`.
    pub fn bind(&self, addr: &SockAddr) -> Result<()> {
        let r = self.run(|l, cx| {
            l.st.apply(Op::Bind, || l.proto.bind(cx, addr))
                .map_err(|e| cx.refused(Op::Bind, e))
        });
        if r.is_ok() {
            crate::trace::ev!(
                debug,
                "socket bound",
                id = self.id(),
                addr = format_args!("{}", self.local_addr().unwrap_or_else(|_| addr.clone()))
            );
        }
        r
    }

    /// Binds to any free address the family picks (`New -> Bound`): Linux's autobind, which
    /// the POSIX face's `bind` with the family alone is. The local family takes the next
    /// free name of five hex digits (`unix_autobind`; all taken: `ENOSPC`); an inet family
    /// would take an ephemeral port (`inet_autobind`). A socket that has an address keeps
    /// it and the call succeeds, as both of Linux's autobinds return early then; otherwise
    /// the state decides as for [`bind`](Socket::bind). ([`SockAddr::Unnamed`] is no
    /// address to `bind`: the local family refuses it with `EINVAL`.)
    pub fn autobind(&self) -> Result<()> {
        self.run(|l, cx| {
            if !l.proto.local_addr().is_unnamed() {
                return Ok(());
            }
            l.st.apply(Op::Bind, || l.proto.autobind(cx))
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
                return Err(cx.fail(Errno::EOPNOTSUPP, "datagram sockets do not listen"));
            }
            if l.st.current() == crate::state::State::New && l.proto.listen_binds() {
                // TCP's `inet_autobind` for a listener that was never bound.
                l.st.apply(Op::Bind, || l.proto.autobind(cx))?;
            }
            l.st.apply(Op::Listen, || l.proto.listen(cx, backlog))
                .map_err(|e| cx.refused(Op::Listen, e))
        })?;
        crate::trace::ev!(debug, "socket listening", id = self.id(), backlog = backlog);
        Ok(())
    }

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
        crate::trace::ev!(
            debug,
            "connection accepted",
            id = a.sock.id(),
            listener = self.id(),
            peer = format_args!("{}", a.peer)
        );
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
                return Err(cx.fail(Errno::EOPNOTSUPP, "datagram sockets do not listen"));
            }
            l.st.apply(Op::Accept, || {
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
            })
            .map_err(|e| cx.refused(Op::Accept, e))
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

    /// Shuts down one or both directions (`Connected -> Closing`). Not connected: `ENOTCONN`.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.run(|l, cx| {
            l.st.apply(Op::Shutdown, || l.proto.shutdown(cx, how))
                .map_err(|e| cx.refused(Op::Shutdown, e))
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
}

/// The context to register with, unless `MSG_DONTWAIT` makes the call a single attempt.
fn unless_dontwait<'a, 'b>(
    cx: &'a mut Context<'b>,
    flags: MsgFlags,
) -> Option<&'a mut Context<'b>> {
    (!flags.contains(MsgFlags::DONTWAIT)).then_some(cx)
}
