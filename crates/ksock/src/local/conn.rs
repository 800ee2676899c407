//! Connections (stream and seqpacket): two pipes under one lock.

use super::queue::{RecordQ, StreamQ};
use crate::account::Account;
use crate::addr::{LocalName, SockAddr};
use crate::family::SockRef;
use crate::sync::Mutex;
use crate::types::Cred;
use alloc::boxed::Box;
use alloc::sync::Arc;
use bytes::BytesMut;

/// A connection between two sockets: `pipes[i]` carries the bytes that `ends[i]` reads. One
/// lock covers both directions (the critical sections are a few instructions long, and one
/// lock keeps an idle connection small).
pub(crate) struct Conn {
    pub(crate) ends: [SockRef; 2],
    pub(crate) pipes: Mutex<[Pipe; 2]>,
    /// The local address and credentials of each end; absent when there are none.
    extra: Option<Box<ConnExtra>>,
}

/// What few connections carry: names, and the credentials each end was made with.
struct ConnExtra {
    names: [Option<LocalName>; 2],
    creds: [Option<Cred>; 2],
}

impl Conn {
    /// A connection whose end `i` is named `names[i]` and was made by `creds[i]` (the
    /// client's credentials at `connect`, the listener's at `listen`, as Linux records
    /// them for `SO_PEERCRED`).
    pub(crate) fn new(
        ends: [SockRef; 2],
        records: bool,
        names: [Option<LocalName>; 2],
        creds: [Option<Cred>; 2],
    ) -> Conn {
        let any = names.iter().any(Option::is_some) || creds.iter().any(Option::is_some);
        Conn {
            ends,
            pipes: Mutex::new([Pipe::new(records), Pipe::new(records)]),
            extra: any.then(|| Box::new(ConnExtra { names, creds })),
        }
    }

    /// The local address of end `side`.
    pub(crate) fn name(&self, side: usize) -> SockAddr {
        match self.own_name(side) {
            Some(n) => SockAddr::Local(n.clone()),
            None => SockAddr::Unnamed,
        }
    }

    /// The name end `side` owns in the namespace, if it bound one.
    pub(crate) fn own_name(&self, side: usize) -> Option<&LocalName> {
        self.extra.as_ref().and_then(|x| x.names[side].as_ref())
    }

    /// The credentials end `side` was made with, if its face recorded them.
    pub(crate) fn cred(&self, side: usize) -> Option<Cred> {
        self.extra.as_ref().and_then(|x| x.creds[side])
    }
}

/// Whether a queue holding `used` bytes of a `cap`-byte send buffer polls as writable.
///
/// A send succeeds whenever it fits, but a blocked writer is woken (and `OUT` reported) only
/// once the queue has drained to half the buffer, or emptied (so that a record larger than
/// half the buffer is not stranded). Waking a writer for every record read would make a
/// fast writer and its reader take turns, one wake-up per record; Linux AF_UNIX uses the same
/// hysteresis (at a quarter).
pub(crate) fn writable(used: usize, cap: usize) -> bool {
    used <= cap / 2
}

/// Splits a connection's pipes into (the one `side` reads, the one `side` writes).
pub(crate) fn rx_tx(p: &mut [Pipe; 2], side: usize) -> (&mut Pipe, &mut Pipe) {
    let (a, b) = p.split_at_mut(1);
    if side == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    }
}

bitflags::bitflags! {
    /// The state of one direction of a connection.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) struct PipeFlags: u8 {
        /// The writer sends no more (it shut its write side or closed): end of file after
        /// the data.
        const WR_SHUT = 1;
        /// The reader reads no more (it shut its read side or closed): writes fail with
        /// `EPIPE`.
        const RD_SHUT = 2;
        /// The reader sees `ECONNRESET` once, after the data (the writer closed with unread
        /// data, or the connection was never accepted).
        const RESET = 4;
        /// The writer closed (not merely shut down).
        const WRITER_CLOSED = 8;
        /// One write is one record (seqpacket).
        const RECORDS = 16;
        /// The reset is a listener's that closed before accepting the connection.
        const UNACCEPTED = 32;
    }
}

/// One direction of a connection.
pub(crate) struct Pipe {
    /// The bytes, allocated at the first write.
    q: Option<Box<Queued>>,
    /// The writer's send buffer as of its last send (the reader uses it to decide when a
    /// blocked writer has room enough to be woken).
    cap: u32,
    flags: PipeFlags,
}

/// The bytes of a pipe.
pub(crate) enum Data {
    Stream(StreamQ),
    Records(RecordQ),
}

impl Data {
    /// Bytes charged against the writer's send buffer (and its account).
    fn used(&self) -> usize {
        match self {
            Data::Stream(q) => q.len(),
            Data::Records(q) => q.charged(),
        }
    }
}

/// A pipe's bytes and the account they are charged to: while `acct` is set, it carries
/// exactly `data.used()` bytes for this pipe, and gets them back when the queue goes.
pub(crate) struct Queued {
    data: Data,
    acct: Option<Arc<Account>>,
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(a) = &self.acct {
            a.credit(self.data.used());
        }
    }
}

impl Pipe {
    fn new(records: bool) -> Pipe {
        let flags = if records {
            PipeFlags::RECORDS
        } else {
            PipeFlags::empty()
        };
        Pipe {
            q: None,
            cap: crate::opt::WMEM_DEFAULT,
            flags,
        }
    }

    /// Whether `f` is set.
    pub(crate) fn is(&self, f: PipeFlags) -> bool {
        self.flags.intersects(f)
    }

    /// Sets `f`.
    pub(crate) fn set(&mut self, f: PipeFlags) {
        self.flags |= f;
    }

    /// Clears `f`, saying whether it was set.
    pub(crate) fn take(&mut self, f: PipeFlags) -> bool {
        let was = self.flags.contains(f);
        self.flags.remove(f);
        was
    }

    /// Whether this direction is shut (by either end).
    pub(crate) fn shut(&self) -> bool {
        self.is(PipeFlags::WR_SHUT | PipeFlags::RD_SHUT)
    }

    /// Records the writer's send buffer (on every send).
    pub(crate) fn set_cap(&mut self, sndbuf: usize) {
        self.cap = u32::try_from(sndbuf).unwrap_or(u32::MAX);
    }

    /// Whether a reader that brought the queue from `before` to the current level must wake
    /// the writer: see [`writable`].
    pub(crate) fn drained_enough(&self, before: usize) -> bool {
        let cap = self.cap as usize;
        let after = self.used();
        (after == 0 && before > 0) || (!writable(before, cap) && writable(after, cap))
    }

    fn queued(&mut self) -> &mut Queued {
        let records = self.is(PipeFlags::RECORDS);
        self.q.get_or_insert_with(|| {
            Box::new(Queued {
                data: if records {
                    Data::Records(RecordQ::default())
                } else {
                    Data::Stream(StreamQ::default())
                },
                acct: None,
            })
        })
    }

    /// The queue, created on first use.
    pub(crate) fn data(&mut self) -> &mut Data {
        &mut self.queued().data
    }

    /// The queue, if anything was ever written.
    pub(crate) fn data_if_any(&mut self) -> Option<&mut Data> {
        self.q.as_deref_mut().map(|q| &mut q.data)
    }

    /// Makes `acct` the account of this pipe's bytes (the writer's): it takes over what is
    /// queued already (from an account the writer had before, or from none).
    pub(crate) fn bind_account(&mut self, acct: &Arc<Account>) {
        let q = self.queued();
        if q.acct.as_ref().is_some_and(|a| Arc::ptr_eq(a, acct)) {
            return;
        }
        let used = q.data.used();
        if let Some(old) = q.acct.take() {
            old.credit(used);
        }
        acct.force_charge(used);
        q.acct = Some(acct.clone());
    }

    /// Credits the account with what a reader took since the queue held `before` bytes.
    pub(crate) fn credit_read(&mut self, before: usize) {
        if let Some(q) = self.q.as_deref()
            && let Some(a) = &q.acct
        {
            a.credit(before.saturating_sub(q.data.used()));
        }
    }

    /// The stream queue (`None` for a record pipe, which a stream socket never has).
    pub(crate) fn stream(&mut self) -> Option<&mut StreamQ> {
        match self.data() {
            Data::Stream(q) => Some(q),
            Data::Records(_) => None,
        }
    }

    /// The record queue (`None` for a stream pipe).
    pub(crate) fn records(&mut self) -> Option<&mut RecordQ> {
        match self.data() {
            Data::Records(q) => Some(q),
            Data::Stream(_) => None,
        }
    }

    /// A buffer to copy the next large write into.
    pub(crate) fn take_spare(&mut self) -> Option<BytesMut> {
        match &mut self.q.as_deref_mut()?.data {
            Data::Stream(q) => q.take_spare(),
            Data::Records(q) => q.take_spare(),
        }
    }

    /// Keeps a buffer the reader is done with, for the writer's next large write.
    pub(crate) fn give_spare(&mut self, m: BytesMut) {
        match self.q.as_deref_mut().map(|q| &mut q.data) {
            Some(Data::Stream(q)) => q.give_spare(m),
            Some(Data::Records(q)) => q.give_spare(m),
            None => {}
        }
    }

    /// Bytes charged against the writer's send buffer.
    pub(crate) fn used(&self) -> usize {
        self.q.as_deref().map_or(0, |q| q.data.used())
    }

    /// Whether the writer polls as writable with a send buffer of `sndbuf`.
    pub(crate) fn writable(&self, sndbuf: usize) -> bool {
        writable(self.used(), sndbuf)
    }

    /// Payload bytes waiting.
    pub(crate) fn bytes(&self) -> usize {
        match self.q.as_deref().map(|q| &q.data) {
            None => 0,
            Some(Data::Stream(q)) => q.len(),
            Some(Data::Records(q)) => q.payload(),
        }
    }

    /// Whether a receive would find data (an empty record counts).
    pub(crate) fn has_data(&self) -> bool {
        match self.q.as_deref().map(|q| &q.data) {
            None => false,
            Some(Data::Stream(q)) => q.len() > 0,
            Some(Data::Records(q)) => !q.is_empty(),
        }
    }

    /// What `FIONREAD` reports: every byte waiting, records or not (Linux sums the queue
    /// of stream and seqpacket sockets alike).
    pub(crate) fn nread(&self) -> usize {
        self.bytes()
    }

    /// Drops the queued bytes and their buffer (crediting their account).
    pub(crate) fn clear(&mut self) {
        self.q = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::SendBuf;

    fn pipe_with(records: bool, bytes: usize) -> Pipe {
        let mut p = Pipe::new(records);
        let data = alloc::vec![0u8; bytes];
        match p.data() {
            Data::Stream(q) => q.push(SendBuf::Copy(&mut &data[..]), bytes),
            Data::Records(q) => q.push(super::super::queue::Rec::take(
                SendBuf::Copy(&mut &data[..]),
                bytes,
                None,
            )),
        }
        p
    }

    #[test]
    fn writable_at_half_the_buffer() {
        assert!(writable(0, 1000));
        assert!(writable(500, 1000));
        assert!(!writable(501, 1000));
        assert!(!writable(1000, 1000));
    }

    #[test]
    fn drained_enough_at_the_half_crossing_or_when_empty() {
        let mut p = pipe_with(false, 0);
        p.set_cap(1000);
        p.stream()
            .unwrap()
            .push(SendBuf::Copy(&mut &[1u8; 900][..]), 900);
        let mut sink = [0u8; 300];
        let before = p.used();
        let _ = p.stream().unwrap().pop_into(&mut &mut sink[..], false);
        assert_eq!(p.used(), 600);
        assert!(!p.drained_enough(before), "900 -> 600 is still above half");
        let before = p.used();
        let _ = p.stream().unwrap().pop_into(&mut &mut sink[..], false);
        assert!(p.drained_enough(before), "600 -> 300 crosses half");
        let before = p.used();
        let mut small = [0u8; 100];
        let _ = p.stream().unwrap().pop_into(&mut &mut small[..], false);
        assert!(!p.drained_enough(before), "300 -> 200 was writable already");
        let before = p.used();
        let mut rest = [0u8; 200];
        let _ = p.stream().unwrap().pop_into(&mut &mut rest[..], false);
        assert!(p.drained_enough(before), "emptied");
        assert!(!p.drained_enough(0), "nothing was read");
    }

    #[test]
    fn records_charge_overhead_and_stream_does_not() {
        assert_eq!(pipe_with(false, 100).used(), 100);
        assert_eq!(pipe_with(true, 100).used(), 100 + RECORD_OVERHEAD_FOR_TESTS);
        assert_eq!(
            pipe_with(true, 0).used(),
            RECORD_OVERHEAD_FOR_TESTS,
            "an empty record costs"
        );
        assert!(pipe_with(true, 0).has_data(), "an empty record is data");
        assert!(!pipe_with(false, 0).has_data());
        assert_eq!(
            Pipe::new(true).used(),
            0,
            "nothing allocated before the first write"
        );
    }

    const RECORD_OVERHEAD_FOR_TESTS: usize = super::super::queue::RECORD_OVERHEAD;

    #[test]
    fn flags_and_halves() {
        let mut pipes = [Pipe::new(false), Pipe::new(false)];
        {
            let (rx, tx) = rx_tx(&mut pipes, 1);
            rx.set(PipeFlags::RD_SHUT);
            tx.set(PipeFlags::RESET);
        }
        assert!(pipes[1].is(PipeFlags::RD_SHUT) && pipes[1].shut());
        assert!(pipes[0].is(PipeFlags::RESET) && !pipes[0].shut());
        assert!(pipes[0].take(PipeFlags::RESET));
        assert!(!pipes[0].take(PipeFlags::RESET), "taken once");
        assert!(!Pipe::new(false).is(PipeFlags::RECORDS) && Pipe::new(true).is(PipeFlags::RECORDS));
    }
}
