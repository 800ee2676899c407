//! Connections (stream and seqpacket) and listener backlogs.

use super::LocalSock;
use super::queue::{RecordQ, StreamQ};
use crate::addr::SockAddr;
use crate::family::SockRef;
use crate::socket::SocketCore;
use crate::sync::Mutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;

/// A connection between two sockets. `pipes[i]` carries the bytes that `ends[i]` reads.
pub(crate) struct Conn {
    pub(crate) ends: [SockRef; 2],
    pub(crate) pipes: [Mutex<Pipe>; 2],
}

impl Conn {
    pub(crate) fn new(a: SockRef, b: SockRef, records: bool) -> Conn {
        Conn {
            ends: [a, b],
            pipes: [
                Mutex::new(Pipe::new(records)),
                Mutex::new(Pipe::new(records)),
            ],
        }
    }
}

/// One direction of a connection.
pub(crate) struct Pipe {
    pub(crate) data: Data,
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
            data: if records {
                Data::Records(RecordQ::default())
            } else {
                Data::Stream(StreamQ::default())
            },
            wr_shut: false,
            rd_shut: false,
            reset: false,
            writer_closed: false,
        }
    }

    /// Bytes charged against the writer's send buffer.
    pub(crate) fn used(&self) -> usize {
        match &self.data {
            Data::Stream(q) => q.len(),
            Data::Records(q) => q.charged(),
        }
    }

    /// Payload bytes waiting.
    pub(crate) fn bytes(&self) -> usize {
        match &self.data {
            Data::Stream(q) => q.len(),
            Data::Records(q) => q.payload(),
        }
    }

    /// Whether a receive would find data (an empty record counts).
    pub(crate) fn has_data(&self) -> bool {
        match &self.data {
            Data::Stream(q) => q.len() > 0,
            Data::Records(q) => !q.is_empty(),
        }
    }

    /// What `FIONREAD` reports.
    pub(crate) fn nread(&self) -> usize {
        match &self.data {
            Data::Stream(q) => q.len(),
            Data::Records(q) => q.front_len(),
        }
    }

    pub(crate) fn clear(&mut self) {
        match &mut self.data {
            Data::Stream(q) => q.clear(),
            Data::Records(q) => q.clear(),
        }
    }
}

/// A listener's queue of connections not yet accepted.
pub(crate) struct Backlog {
    pub(crate) listener: SockRef,
    pub(crate) q: Mutex<BacklogQ>,
}

pub(crate) struct BacklogQ {
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) max: usize,
    pub(crate) closed: bool,
}

/// A connection waiting for `accept`: the client already owns its end; the server end is
/// an object nobody else knows yet.
pub(crate) struct Pending {
    pub(crate) conn: Arc<Conn>,
    pub(crate) embryo: Arc<SocketCore<LocalSock>>,
    pub(crate) peer: SockAddr,
}

impl Backlog {
    pub(crate) fn new(listener: SockRef, max: usize) -> Backlog {
        Backlog {
            listener,
            q: Mutex::new(BacklogQ {
                pending: VecDeque::new(),
                max,
                closed: false,
            }),
        }
    }
}
