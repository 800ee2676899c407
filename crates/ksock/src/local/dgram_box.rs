//! A datagram socket's shared box: its receive queue, its name, its default peer, and the
//! count of its own bytes queued elsewhere.

use super::queue::{Packer, RECORD_OVERHEAD, Rec};
use crate::account::Charge;
use crate::addr::{LocalName, SockAddr};
use crate::buf::SendBuf;
use crate::family::SockRef;
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::types::Cred;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use bytes::BytesMut;

/// How many records a datagram socket holds from senders it is not connected to
/// (`net.unix.max_dgram_qlen`).
pub const MAX_DGRAM_QLEN: usize = 10;

/// A datagram socket's shared state. Senders reach it through the namespace or as their
/// default peer; its owner through its protocol state.
pub(crate) struct DgramBox {
    pub(crate) owner: SockRef,
    /// Bytes (with per-record overhead) the owner sent that are not yet received.
    pub(crate) wmem: AtomicU32,
    /// The owner's send buffer as of its last send (for waking it when `wmem` drains).
    pub(crate) cap: AtomicU32,
    pub(crate) q: Mutex<DgramQ>,
}

pub(crate) struct DgramQ {
    /// The records, allocated at the first one: an idle socket pays one pointer.
    recs: Option<Box<Recs>>,
    /// Payload bytes queued.
    pub(crate) payload: u32,
    /// The owner closed: sends to it are refused.
    pub(crate) closed: bool,
    /// The owner shut its read side: receives give end of file once empty.
    pub(crate) rd_shut: bool,
    /// The owner shut its write side: its sends fail with `EPIPE`.
    pub(crate) wr_shut: bool,
    /// The owner's default peer.
    pub(crate) peer: Option<Arc<DgramBox>>,
    /// The owner's name.
    pub(crate) name: Option<LocalName>,
}

/// A datagram socket's queued records, and a buffer for its own next large send.
#[derive(Default)]
pub(crate) struct Recs {
    q: VecDeque<Datagram>,
    spare: Option<BytesMut>,
    packer: Packer,
    /// The peer's credentials, for a socket made by `socketpair` (`SO_PEERCRED`).
    peer_cred: Option<Cred>,
}

/// One queued datagram.
pub(crate) struct Datagram {
    pub(crate) data: Rec,
    pub(crate) from: SockAddr,
    pub(crate) sender: Arc<DgramBox>,
    /// The sender's account's charge for it, credited when the record goes.
    pub(crate) _charge: Option<Charge>,
}

impl Datagram {
    pub(crate) fn charge(&self) -> usize {
        self.data.len() + RECORD_OVERHEAD
    }
}

impl DgramQ {
    /// Records the peer's credentials (a pair made by `socketpair`).
    pub(crate) fn set_peer_cred(&mut self, cred: Cred) {
        self.recs.get_or_insert_default().peer_cred = Some(cred);
    }

    pub(crate) fn peer_cred(&self) -> Option<Cred> {
        self.recs.as_ref()?.peer_cred
    }

    pub(crate) fn len(&self) -> usize {
        self.recs.as_ref().map_or(0, |r| r.q.len())
    }

    pub(crate) fn front(&self) -> Option<&Datagram> {
        self.recs.as_ref()?.q.front()
    }

    pub(crate) fn pop(&mut self) -> Option<Datagram> {
        let d = self.recs.as_mut()?.q.pop_front()?;
        self.payload -= d.data.len() as u32;
        Some(d)
    }

    pub(crate) fn push(&mut self, d: Datagram) {
        self.payload += d.data.len() as u32;
        self.recs.get_or_insert_default().q.push_back(d);
    }

    /// Takes `n` bytes of `src` as a record for this queue (small ones packed with the
    /// queue's other small records).
    pub(crate) fn take_rec(&mut self, src: SendBuf<'_>, n: usize) -> Rec {
        self.recs.get_or_insert_default().packer.take(src, n)
    }

    /// Empties the queue, returning what was in it.
    pub(crate) fn drain(&mut self) -> VecDeque<Datagram> {
        self.payload = 0;
        self.recs.take().map(|b| b.q).unwrap_or_default()
    }

    /// A buffer for the owner's next large send.
    pub(crate) fn take_spare(&mut self) -> Option<BytesMut> {
        self.recs.as_mut()?.spare.take()
    }

    /// Keeps a buffer a receiver copied one of the owner's records out of.
    pub(crate) fn give_spare(&mut self, m: BytesMut) {
        if !self.closed {
            self.recs.get_or_insert_default().spare = Some(m);
        }
    }

    /// Whether `sender` (a socket id) is the owner's default peer.
    pub(crate) fn peer_is(&self, sender: u64) -> bool {
        self.peer.as_ref().is_some_and(|p| p.owner.id() == sender)
    }

    /// Whether the owner has a default peer other than `sender`.
    pub(crate) fn peer_is_other_than(&self, sender: u64) -> bool {
        self.peer.as_ref().is_some_and(|p| p.owner.id() != sender)
    }

    pub(crate) fn name_addr(&self) -> SockAddr {
        self.name.clone().map_or(SockAddr::Unnamed, SockAddr::Local)
    }
}

impl DgramBox {
    /// Bytes the owner has queued elsewhere.
    pub(crate) fn wmem(&self) -> usize {
        self.wmem.load(Ordering::Acquire) as usize
    }

    /// Charges a record the owner sent (`sndbuf` is the owner's send buffer).
    pub(crate) fn charge(&self, charge: usize, sndbuf: usize) {
        self.cap
            .store(u32::try_from(sndbuf).unwrap_or(u32::MAX), Ordering::Relaxed);
        self.wmem.fetch_add(charge as u32, Ordering::AcqRel);
    }

    /// Returns a record's charge; true if the owner should be woken (see
    /// [`super::conn::writable`]).
    pub(crate) fn uncharge(&self, charge: usize) -> bool {
        let before = self.wmem.fetch_sub(charge as u32, Ordering::AcqRel) as usize;
        let after = before - charge;
        let cap = self.cap.load(Ordering::Relaxed) as usize;
        after == 0 || (!super::conn::writable(before, cap) && super::conn::writable(after, cap))
    }

    pub(crate) fn new(owner: SockRef) -> DgramBox {
        DgramBox {
            owner,
            wmem: AtomicU32::new(0),
            cap: AtomicU32::new(crate::opt::WMEM_DEFAULT),
            q: Mutex::new(DgramQ {
                recs: None,
                payload: 0,
                closed: false,
                rd_shut: false,
                wr_shut: false,
                peer: None,
                name: None,
            }),
        }
    }
}
