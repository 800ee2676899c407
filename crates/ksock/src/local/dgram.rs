//! Datagram receive queues.

use super::queue::{RECORD_OVERHEAD, Rec};
use crate::addr::SockAddr;
use crate::family::SockRef;
use crate::sync::Mutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::AtomicUsize;

/// How many records a datagram socket holds from senders it is not connected to
/// (`net.unix.max_dgram_qlen`).
pub const MAX_DGRAM_QLEN: usize = 10;

/// A datagram socket's receive queue, plus the count of bytes it has sent that still sit in
/// other queues (its share of its own send buffer).
pub(crate) struct DgramBox {
    pub(crate) owner: SockRef,
    pub(crate) q: Mutex<DgramQ>,
    /// Bytes (with per-record overhead) this socket sent that are not yet received.
    pub(crate) wmem: AtomicUsize,
}

pub(crate) struct DgramQ {
    pub(crate) recs: VecDeque<Datagram>,
    pub(crate) payload: usize,
    /// The owner closed: sends to it are refused.
    pub(crate) closed: bool,
    /// The owner shut its read side: receives give end of file once empty.
    pub(crate) rd_shut: bool,
    /// The owner shut its write side: its sends fail with `EPIPE`.
    pub(crate) wr_shut: bool,
    /// The id of the socket the owner is connected to.
    pub(crate) peer_id: Option<u64>,
}

/// One queued datagram.
pub(crate) struct Datagram {
    pub(crate) data: Rec,
    pub(crate) from: SockAddr,
    pub(crate) sender: Arc<DgramBox>,
}

impl Datagram {
    pub(crate) fn charge(&self) -> usize {
        self.data.len() + RECORD_OVERHEAD
    }
}

impl DgramBox {
    pub(crate) fn new(owner: SockRef) -> DgramBox {
        DgramBox {
            owner,
            q: Mutex::new(DgramQ {
                recs: VecDeque::new(),
                payload: 0,
                closed: false,
                rd_shut: false,
                wr_shut: false,
                peer_id: None,
            }),
            wmem: AtomicUsize::new(0),
        }
    }
}
