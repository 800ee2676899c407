//! The connected state of a stream or seqpacket socket: one end of a [`Conn`].
//!
//! [`End`] is a view of the socket's protocol state while it is connected (the connection
//! and which side of it this socket is), made on the fly so the state itself stays two
//! words. Its operations are the data path: they take only the connection's lock.

use super::CHANGED;
use super::Names;
use super::conn::{Conn, Data, Pipe, PipeFlags, rx_tx};
use super::queue::{COPY_OUTSIDE, RECORD_OVERHEAD, Rec, copy_in, deliver_all};
use crate::addr::SockAddr;
use crate::buf::{Chain, RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::OpCtx;
use crate::opt::Options;
use crate::types::{Cred, MsgFlags, Queues, RecvInfo, Shutdown};
use alloc::sync::Arc;

/// Why a record does not fit (`EMSGSIZE`).
pub(super) const TOO_LARGE: &str = "the record is larger than the send buffer";

/// The `EPIPE` of a write into `tx`, the pipe this end writes (`rx` is the one it reads),
/// with its reason: this end shut its write side, or the peer closed or shut its read side.
#[cold]
fn broken_pipe(cx: &mut OpCtx<'_>, rx: &Pipe, tx: &Pipe) -> Errno {
    let why = if tx.is(PipeFlags::WR_SHUT) {
        "this socket's write side is shut down"
    } else if rx.is(PipeFlags::WRITER_CLOSED) {
        "the peer is gone"
    } else {
        "the peer has shut its read side"
    };
    cx.fail(Errno::EPIPE, why)
}

/// The `ECONNRESET` of the reset just taken from `rx`, with its reason.
#[cold]
fn reset(cx: &mut OpCtx<'_>, rx: &Pipe) -> Errno {
    let why = if rx.is(PipeFlags::UNACCEPTED) {
        "the listener closed before accepting the connection"
    } else {
        "the peer closed with unread data"
    };
    cx.fail(Errno::ECONNRESET, why)
}

/// One end of a connection: `conn.ends[side]` is this socket, `conn.pipes[side]` what it
/// reads.
pub(super) struct End<'a> {
    conn: &'a Arc<Conn>,
    side: usize,
}

impl<'a> End<'a> {
    #[inline]
    pub(super) fn new(conn: &'a Arc<Conn>, side: u8) -> End<'a> {
        End {
            conn,
            side: usize::from(side),
        }
    }

    /// A stream send: the part that fits in the send buffer (at least one byte, or
    /// `EAGAIN`).
    #[inline]
    pub(super) fn send_stream(
        &self,
        cx: &mut OpCtx<'_>,
        src: SendBuf<'_>,
        to: Option<&SockAddr>,
    ) -> Result<usize> {
        if to.is_some() {
            return Err(cx.fail(Errno::EISCONN, "the socket is already connected"));
        }
        let (conn, side) = (self.conn, self.side);
        let n = {
            let mut pipes = conn.pipes.lock();
            let (rx, tx) = rx_tx(&mut pipes, side);
            if tx.shut() {
                return Err(broken_pipe(cx, rx, tx));
            }
            let want = src.remaining();
            if want == 0 {
                return Ok(0);
            }
            let sndbuf = cx.opts().sndbuf();
            tx.set_cap(sndbuf);
            let n = want.min(sndbuf.saturating_sub(tx.used()));
            if n == 0 {
                return Err(Errno::EAGAIN);
            }
            let acct = cx.account();
            let n = match acct {
                None => n,
                Some(a) => {
                    let k = a.charge_upto(n);
                    if k == 0 {
                        return Err(Errno::ENOBUFS);
                    }
                    tx.bind_account(a);
                    k
                }
            };
            match src {
                SendBuf::Copy(b) if n >= COPY_OUTSIDE => {
                    // Copy without the lock, so the reader can drain meanwhile; room only
                    // grows until then (this socket is the pipe's only writer).
                    let spare = tx.take_spare();
                    drop(pipes);
                    let bytes = copy_in(b, n, spare);
                    let mut pipes = conn.pipes.lock();
                    let (rx, tx) = rx_tx(&mut pipes, side);
                    if tx.shut() {
                        if let Some(a) = acct {
                            a.credit(n);
                        }
                        return Err(broken_pipe(cx, rx, tx));
                    }
                    if let Some(a) = acct {
                        // The queue may have been replaced meanwhile (this send is
                        // charged already).
                        tx.bind_account(a);
                    }
                    tx.stream().ok_or(Errno::EINVAL)?.push_bytes(bytes);
                }
                src => tx.stream().ok_or(Errno::EINVAL)?.push(src, n),
            }
            n
        };
        cx.notify(&conn.ends[1 - side], Events::IN);
        Ok(n)
    }

    /// A seqpacket send: the whole record, or nothing.
    #[inline]
    pub(super) fn send_seqpacket(&self, cx: &mut OpCtx<'_>, src: SendBuf<'_>) -> Result<usize> {
        let (conn, side) = (self.conn, self.side);
        let len = src.remaining();
        let sndbuf = cx.opts().sndbuf();
        {
            let mut pipes = conn.pipes.lock();
            let (rx, tx) = rx_tx(&mut pipes, side);
            // As on Linux, a pending reset is reported (and cleared) by the next send.
            if rx.take(PipeFlags::RESET) {
                return Err(reset(cx, rx));
            }
            if len + RECORD_OVERHEAD > sndbuf {
                return Err(cx.fail(Errno::EMSGSIZE, TOO_LARGE));
            }
            if tx.shut() {
                return Err(broken_pipe(cx, rx, tx));
            }
            tx.set_cap(sndbuf);
            if tx.used() + len + RECORD_OVERHEAD > sndbuf {
                return Err(Errno::EAGAIN);
            }
            let acct = cx.account();
            if let Some(a) = acct {
                a.charge_all(len + RECORD_OVERHEAD)?;
                tx.bind_account(a);
            }
            match src {
                SendBuf::Copy(b) if len >= COPY_OUTSIDE => {
                    let spare = tx.take_spare();
                    drop(pipes);
                    let rec = Rec::take(SendBuf::Copy(b), len, spare);
                    let mut pipes = conn.pipes.lock();
                    let (rx, tx) = rx_tx(&mut pipes, side);
                    if tx.shut() {
                        if let Some(a) = acct {
                            a.credit(len + RECORD_OVERHEAD);
                        }
                        return Err(broken_pipe(cx, rx, tx));
                    }
                    if let Some(a) = acct {
                        // The queue may have been replaced meanwhile (this send is
                        // charged already).
                        tx.bind_account(a);
                    }
                    tx.records().ok_or(Errno::EINVAL)?.push(rec);
                }
                src => tx.records().ok_or(Errno::EINVAL)?.push_from(src, len),
            }
        }
        cx.notify(&conn.ends[1 - side], Events::IN);
        Ok(len)
    }

    /// Receives bytes (stream) or one record (seqpacket).
    #[inline]
    pub(super) fn recv(
        &self,
        cx: &mut OpCtx<'_>,
        dst: &mut dyn RecvSink,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        /// What was taken from the queue: copied already, or to copy outside the lock.
        enum Got {
            Copied(usize, usize),
            Segs(Chain),
            Rec(Rec),
        }
        let (conn, side) = (self.conn, self.side);
        let peek = flags.contains(MsgFlags::PEEK);
        let (got, records, wake_writer) = {
            let mut pipes = conn.pipes.lock();
            let (rx, _) = rx_tx(&mut pipes, side);
            // A seqpacket socket reports a reset before its queued records (Linux checks
            // the socket error first for records); a stream after its bytes (SPEC 3).
            if rx.is(PipeFlags::RECORDS) && rx.take(PipeFlags::RESET) {
                return Err(reset(cx, rx));
            }
            let before = rx.used();
            let room = dst.room();
            let got = match rx.data_if_any() {
                Some(Data::Stream(q)) if q.len() > 0 => {
                    let n = room.min(q.len());
                    if n < COPY_OUTSIDE && !dst.shares() {
                        let k = q.pop_into(dst, peek);
                        Some((Got::Copied(k, k), false))
                    } else {
                        Some((Got::Segs(q.pop_segs(n, peek)), false))
                    }
                }
                Some(Data::Records(q)) if !q.is_empty() => {
                    if q.front_len() < COPY_OUTSIDE && !dst.shares() {
                        q.pop_into(dst, peek)
                            .map(|(k, full)| (Got::Copied(k, full), true))
                    } else {
                        q.pop(peek).map(|r| (Got::Rec(r), true))
                    }
                }
                _ => None,
            };
            let Some((got, records)) = got else {
                if rx.take(PipeFlags::RESET) {
                    return Err(reset(cx, rx));
                }
                if rx.shut() {
                    return Ok(RecvInfo {
                        eof: true,
                        ..RecvInfo::default()
                    });
                }
                return Err(Errno::EAGAIN);
            };
            if !peek {
                rx.credit_read(before);
            }
            (got, records, !peek && rx.drained_enough(before))
        };
        let (len, full_len, spare) = match got {
            Got::Copied(k, full) => (k, full, None),
            Got::Segs(c) => {
                let n = c.len();
                (n, n, deliver_all(c, dst))
            }
            Got::Rec(r) => {
                let full = r.len();
                let (k, spare) = r.deliver(dst);
                (k, full, spare)
            }
        };
        if let Some(m) = spare {
            rx_tx(&mut conn.pipes.lock(), side).0.give_spare(m);
        }
        if wake_writer {
            cx.notify(&conn.ends[1 - side], Events::OUT);
        }
        let out = match (records, len < full_len) {
            (false, _) => MsgFlags::empty(),
            (true, false) => MsgFlags::EOR,
            (true, true) => MsgFlags::EOR | MsgFlags::TRUNC,
        };
        Ok(RecvInfo {
            len,
            full_len,
            flags: out,
            from: conn.name(1 - side),
            eof: false,
        })
    }

    pub(super) fn shutdown(&self, cx: &mut OpCtx<'_>, how: Shutdown) {
        {
            let mut pipes = self.conn.pipes.lock();
            let (rx, tx) = rx_tx(&mut pipes, self.side);
            if how.read() {
                rx.set(PipeFlags::RD_SHUT);
            }
            if how.write() {
                tx.set(PipeFlags::WR_SHUT);
            }
        }
        cx.notify(&self.conn.ends[1 - self.side], CHANGED);
        cx.notify(cx.me(), CHANGED);
    }

    /// Leaves the connection: frees this end's name; unread data becomes a reset for the
    /// peer (SPEC 3), which is told once the lock is released.
    pub(super) fn close(&self, cx: &mut OpCtx<'_>, names: &Names) {
        if let Some(n) = self.conn.own_name(self.side) {
            names.release(n, cx.me().id());
        }
        {
            let mut pipes = self.conn.pipes.lock();
            let (rx, tx) = rx_tx(&mut pipes, self.side);
            rx.set(PipeFlags::RD_SHUT);
            if rx.has_data() {
                tx.set(PipeFlags::RESET);
            }
            rx.clear();
            tx.set(PipeFlags::WR_SHUT | PipeFlags::WRITER_CLOSED);
        }
        cx.peer_gone(&self.conn.ends[1 - self.side], CHANGED);
    }

    pub(super) fn readiness(&self, opts: &Options) -> Events {
        let mut pipes = self.conn.pipes.lock();
        let (rx, tx) = rx_tx(&mut pipes, self.side);
        let rcv_shut = rx.shut();
        let snd_shut = tx.shut();
        let mut ev = Events::empty();
        if rx.has_data() || rcv_shut {
            ev |= Events::IN;
        }
        if rx.is(PipeFlags::RESET) {
            ev |= Events::ERR;
        }
        if tx.writable(opts.sndbuf()) || snd_shut {
            ev |= Events::OUT;
        }
        if rcv_shut {
            ev |= Events::RDHUP;
            if snd_shut {
                ev |= Events::HUP;
            }
        }
        ev
    }

    pub(super) fn local_addr(&self) -> SockAddr {
        self.conn.name(self.side)
    }

    pub(super) fn peer_addr(&self) -> SockAddr {
        self.conn.name(1 - self.side)
    }

    pub(super) fn take_error(&self) -> Option<Errno> {
        self.conn.pipes.lock()[self.side]
            .take(PipeFlags::RESET)
            .then_some(Errno::ECONNRESET)
    }

    pub(super) fn has_error(&self) -> bool {
        self.conn.pipes.lock()[self.side].is(PipeFlags::RESET)
    }

    pub(super) fn queues(&self) -> Queues {
        let pipes = self.conn.pipes.lock();
        Queues {
            rx: pipes[self.side].bytes(),
            tx: pipes[1 - self.side].bytes(),
            ..Queues::default()
        }
    }

    pub(super) fn peer_cred(&self) -> Option<Cred> {
        self.conn.cred(1 - self.side)
    }

    pub(super) fn nread(&self) -> usize {
        self.conn.pipes.lock()[self.side].nread()
    }
}
