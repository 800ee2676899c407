//! The listening state of a stream or seqpacket socket: its [`Backlog`] of connections not
//! yet accepted.
//!
//! A connection and its server end (the "embryo", a socket object nobody else knows yet)
//! exist from the client's connect on, so the client may write before the accept (SPEC 3);
//! `accept` joins the embryo to its connection and hands it out. A closing listener resets
//! what it never accepted.

use super::conn::{Conn, PipeFlags, rx_tx};
use super::stream::StreamSock;
use super::{CHANGED, Names, Target};
use crate::addr::{LocalName, SockAddr};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::{Accepted, OpCtx, SockRef};
use crate::socket::SocketCore;
use crate::sync::Mutex;
use crate::types::{Cred, Domain, Queues};
use alloc::collections::VecDeque;
use alloc::sync::Arc;

/// A listener's queue of connections not yet accepted.
pub(crate) struct Backlog {
    pub(crate) listener: SockRef,
    pub(crate) name: LocalName,
    /// The listener's credentials at `listen`: what its clients see as their peer's.
    pub(crate) cred: Option<Cred>,
    pub(crate) q: Mutex<BacklogQ>,
}

pub(crate) struct BacklogQ {
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) max: usize,
    pub(crate) closed: bool,
}

/// A connection waiting for `accept`: the client already owns its end; the server end is
/// an object nobody else knows yet (it joins the connection when accepted, so until then
/// nothing refers back from it).
pub(crate) struct Pending {
    pub(crate) conn: Arc<Conn>,
    pub(crate) embryo: Arc<SocketCore<StreamSock>>,
}

impl Backlog {
    pub(crate) fn new(
        listener: SockRef,
        name: LocalName,
        max: usize,
        cred: Option<Cred>,
    ) -> Backlog {
        Backlog {
            listener,
            name,
            cred,
            q: Mutex::new(BacklogQ {
                pending: VecDeque::new(),
                max,
                closed: false,
            }),
        }
    }

    /// Starts listening on `name` (the socket's bound name): the name now leads connects
    /// to this backlog. The listener's credentials are recorded for its clients, as
    /// Linux's `init_peercred` at `listen`.
    pub(super) fn open(
        cx: &mut OpCtx<'_>,
        names: &Names,
        name: &LocalName,
        backlog: usize,
    ) -> Arc<Backlog> {
        let b = Arc::new(Backlog::new(
            cx.me().clone(),
            name.clone(),
            backlog,
            cx.cred(),
        ));
        if let Some(e) = names.map.lock().get_mut(name)
            && e.owner == cx.me().id()
        {
            e.target = Target::Listener(b.clone());
        }
        b
    }

    /// `listen` again on a listener: updates the backlog; a larger one may let waiting
    /// connects in.
    pub(super) fn set_max(&self, cx: &mut OpCtx<'_>, backlog: usize) {
        let grew = {
            let mut q = self.q.lock();
            let grew = backlog > q.max;
            q.max = backlog;
            grew
        };
        if grew {
            cx.notify(cx.me(), Events::ROOM);
        }
    }

    /// A client's connect: queues a new connection whose client end is `cx.me()` (named
    /// `own`) and whose server end is a fresh embryo, named like the listener (as on
    /// Linux). Closed listener: `ECONNREFUSED`; full: `EAGAIN`, waiting on the listener.
    pub(super) fn enqueue(
        &self,
        cx: &mut OpCtx<'_>,
        names: &Arc<Names>,
        own: Option<LocalName>,
    ) -> Result<Arc<Conn>> {
        let me = cx.me();
        let ty = me.ty();
        let conn = {
            let mut q = self.q.lock();
            if q.closed {
                return Err(cx.fail(Errno::ECONNREFUSED, "the listener has closed"));
            }
            if q.pending.len() >= q.max {
                cx.wait_on(&self.listener, Events::ROOM);
                return Err(cx.fail(Errno::EAGAIN, "the listener's backlog is full"));
            }
            let proto = StreamSock::new(names.clone());
            let embryo = SocketCore::new(me.stack(), Domain::LOCAL, ty, me.protocol(), proto);
            let conn = Arc::new(Conn::new(
                [me.clone(), embryo.clone()],
                ty.is_record(),
                [own, Some(self.name.clone())],
                [cx.cred(), self.cred],
            ));
            q.pending.push_back(Pending {
                conn: conn.clone(),
                embryo,
            });
            conn
        };
        cx.notify(&self.listener, Events::IN);
        Ok(conn)
    }

    /// Takes the oldest pending connection; its embryo joins it as side 1.
    pub(super) fn accept(&self, cx: &mut OpCtx<'_>) -> Result<Accepted> {
        let Some(Pending { conn, embryo }) = self.q.lock().pending.pop_front() else {
            return Err(Errno::EAGAIN);
        };
        cx.notify(cx.me(), Events::ROOM);
        let peer_gone = conn.pipes.lock()[1].is(PipeFlags::WRITER_CLOSED);
        let peer = conn.name(0);
        embryo.with_proto(|s| s.join(conn, 1));
        Ok(Accepted {
            sock: embryo,
            peer,
            peer_gone,
        })
    }

    /// Closes the listener: frees its name and resets every connection nobody accepted.
    pub(super) fn close(&self, cx: &mut OpCtx<'_>, names: &Names) {
        names.release(&self.name, cx.me().id());
        let pending = {
            let mut q = self.q.lock();
            q.closed = true;
            core::mem::take(&mut q.pending)
        };
        // Connections nobody accepted are reset: their clients read ECONNRESET, then
        // end of file, and their writes fail with EPIPE.
        for p in pending {
            {
                let mut pipes = p.conn.pipes.lock();
                let (client_rx, server_rx) = rx_tx(&mut pipes, 0);
                client_rx.set(
                    PipeFlags::WR_SHUT
                        | PipeFlags::WRITER_CLOSED
                        | PipeFlags::RESET
                        | PipeFlags::UNACCEPTED,
                );
                server_rx.set(PipeFlags::RD_SHUT);
                server_rx.clear();
            }
            cx.peer_gone(&p.conn.ends[0], CHANGED);
        }
    }

    /// `IN` while a connection waits.
    pub(super) fn readiness(&self) -> Events {
        if self.q.lock().pending.is_empty() {
            Events::empty()
        } else {
            Events::IN
        }
    }

    pub(super) fn local_addr(&self) -> SockAddr {
        SockAddr::Local(self.name.clone())
    }

    pub(super) fn queues(&self) -> Queues {
        let q = self.q.lock();
        Queues {
            pending: q.pending.len(),
            backlog: q.max,
            ..Queues::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Domain, Errno, SockAddr, SockType, Stack};

    fn setup(backlog: usize) -> (Stack, crate::Socket) {
        let st = Stack::new();
        let l = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        l.bind(&SockAddr::local("b").unwrap()).unwrap();
        l.listen(backlog).unwrap();
        (st, l)
    }

    #[test]
    fn holds_exactly_backlog_connections_oldest_first() {
        let (st, l) = setup(3);
        let clients: alloc::vec::Vec<_> = (0..3)
            .map(|i| {
                let c = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
                c.bind(&SockAddr::local(alloc::format!("c{i}")).unwrap())
                    .unwrap();
                c.try_connect(&SockAddr::local("b").unwrap()).unwrap();
                c
            })
            .collect();
        let extra = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        assert_eq!(
            extra.try_connect(&SockAddr::local("b").unwrap()),
            Err(Errno::EAGAIN)
        );
        for i in 0..3 {
            let (_, peer) = l.try_accept().unwrap();
            assert_eq!(peer, SockAddr::local(alloc::format!("c{i}")).unwrap());
        }
        assert_eq!(l.try_accept().unwrap_err(), Errno::EAGAIN);
        extra.try_connect(&SockAddr::local("b").unwrap()).unwrap();
        drop((clients, extra, l));
    }

    #[test]
    fn closing_the_listener_resets_the_queue_and_frees_the_name() {
        let (st, l) = setup(2);
        let c = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        c.try_connect(&SockAddr::local("b").unwrap()).unwrap();
        assert_eq!(l.info().unwrap().queues.pending, 1);
        drop(l);
        assert!(st.family(Domain::LOCAL).unwrap().bound().is_empty());
        assert!(st.family(Domain::LOCAL).unwrap().listening().is_empty());
        let mut buf = [0u8; 4];
        assert_eq!(c.recv(&mut buf), Err(Errno::ECONNRESET));
        drop(c);
        assert_eq!(st.socket_count(), 0);
    }
}
