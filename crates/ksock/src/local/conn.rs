//! Connections (stream and seqpacket) and listener backlogs.

use super::LocalSock;
use super::queue::{RECORD_OVERHEAD, RecordQ, StreamQ};
use crate::addr::{LocalName, SockAddr};
use crate::family::SockRef;
use crate::socket::SocketCore;
use crate::sync::Mutex;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;

/// A connection between two sockets: `pipes[i]` carries the bytes that `ends[i]` reads. One
/// lock covers both directions (the critical sections are a few instructions long, and one
/// lock keeps an idle connection small).
pub(crate) struct Conn {
    pub(crate) ends: [SockRef; 2],
    pub(crate) pipes: Mutex<[Pipe; 2]>,
    /// The local address of each end; absent when both are unnamed.
    names: Option<Box<[Option<LocalName>; 2]>>,
}

impl Conn {
    pub(crate) fn new(ends: [SockRef; 2], records: bool, names: [Option<LocalName>; 2]) -> Conn {
        let names = (names[0].is_some() || names[1].is_some()).then(|| Box::new(names));
        Conn {
            ends,
            pipes: Mutex::new([Pipe::new(records), Pipe::new(records)]),
            names,
        }
    }

    /// The local address of end `side`.
    pub(crate) fn name(&self, side: usize) -> SockAddr {
        match self.names.as_ref().and_then(|n| n[side].clone()) {
            Some(n) => SockAddr::Local(n),
            None => SockAddr::Unnamed,
        }
    }

    /// The name end `side` owns in the namespace, if it bound one.
    pub(crate) fn own_name(&self, side: usize) -> Option<&LocalName> {
        self.names.as_ref().and_then(|n| n[side].as_ref())
    }
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

/// One direction of a connection.
pub(crate) struct Pipe {
    /// The bytes, allocated at the first write.
    q: Option<Box<Data>>,
    records: bool,
    /// The writer sends no more (it shut its write side or closed): end of file after the data.
    pub(crate) wr_shut: bool,
    /// The reader reads no more (it shut its read side or closed): writes fail with `EPIPE`.
    pub(crate) rd_shut: bool,
    /// The reader sees `ECONNRESET` once, after the data (the writer closed with unread data).
    pub(crate) reset: bool,
    /// The writer closed (not merely shut down).
    pub(crate) writer_closed: bool,
}

/// The bytes of a pipe.
pub(crate) enum Data {
    Stream(StreamQ),
    Records(RecordQ),
}

impl Pipe {
    fn new(records: bool) -> Pipe {
        Pipe {
            q: None,
            records,
            wr_shut: false,
            rd_shut: false,
            reset: false,
            writer_closed: false,
        }
    }

    /// The queue, created on first use.
    pub(crate) fn data(&mut self) -> &mut Data {
        let records = self.records;
        self.q.get_or_insert_with(|| {
            Box::new(if records {
                Data::Records(RecordQ::default())
            } else {
                Data::Stream(StreamQ::default())
            })
        })
    }

    /// The queue, if anything was ever written.
    pub(crate) fn data_if_any(&mut self) -> Option<&mut Data> {
        self.q.as_deref_mut()
    }

    /// Bytes charged against the writer's send buffer.
    pub(crate) fn used(&self) -> usize {
        match self.q.as_deref() {
            None => 0,
            Some(Data::Stream(q)) => q.len(),
            Some(Data::Records(q)) => q.charged(),
        }
    }

    /// Whether the writer can make progress with a send buffer of `sndbuf`.
    pub(crate) fn has_room(&self, sndbuf: usize) -> bool {
        if self.records {
            self.used() + RECORD_OVERHEAD <= sndbuf
        } else {
            self.used() < sndbuf
        }
    }

    /// Payload bytes waiting.
    pub(crate) fn bytes(&self) -> usize {
        match self.q.as_deref() {
            None => 0,
            Some(Data::Stream(q)) => q.len(),
            Some(Data::Records(q)) => q.payload(),
        }
    }

    /// Whether a receive would find data (an empty record counts).
    pub(crate) fn has_data(&self) -> bool {
        match self.q.as_deref() {
            None => false,
            Some(Data::Stream(q)) => q.len() > 0,
            Some(Data::Records(q)) => !q.is_empty(),
        }
    }

    /// What `FIONREAD` reports.
    pub(crate) fn nread(&self) -> usize {
        match self.q.as_deref() {
            None => 0,
            Some(Data::Stream(q)) => q.len(),
            Some(Data::Records(q)) => q.front_len(),
        }
    }

    /// Drops the queued bytes and their buffer.
    pub(crate) fn clear(&mut self) {
        self.q = None;
    }
}

/// A listener's queue of connections not yet accepted.
pub(crate) struct Backlog {
    pub(crate) listener: SockRef,
    pub(crate) name: LocalName,
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
    pub(crate) embryo: Arc<SocketCore<LocalSock>>,
}

impl Backlog {
    pub(crate) fn new(listener: SockRef, name: LocalName, max: usize) -> Backlog {
        Backlog {
            listener,
            name,
            q: Mutex::new(BacklogQ {
                pending: VecDeque::new(),
                max,
                closed: false,
            }),
        }
    }
}
