//! The byte and record queues of the local family.
//!
//! Bytes are kept as shared [`Bytes`] slices, so a chain sent in is received as slices of
//! the same memory. Small writes from plain buffers are packed into one growing tail buffer
//! instead of one allocation each. Large copies happen outside the connection's lock (the
//! queue only moves slices), and the buffer of a large write that a reader copied out is
//! handed back for the writer's next large write, so bulk transfers reuse warm memory.

use crate::buf::{Chain, RecvSink, SendBuf};
use alloc::collections::VecDeque;
use bytes::{Buf, Bytes, BytesMut};

/// What each record costs in the sender's buffer beyond its bytes (Linux reserves 32 bytes
/// per datagram the same way: a record of `sndbuf - 32` bytes is the largest that fits).
pub(crate) const RECORD_OVERHEAD: usize = 32;

/// Copies at least this large are done outside the connection's lock.
pub(crate) const COPY_OUTSIDE: usize = 4096;
/// Buffers up to this size are kept for reuse.
const MAX_SPARE: usize = 1 << 20;

/// Pieces smaller than this are copied into the tail buffer rather than kept as slices.
const PACK_BELOW: usize = 512;
/// The size of a fresh tail buffer.
const TAIL_CHUNK: usize = 4096;

/// Copies `n` bytes of `src` into `spare` (if it is large enough) or a new buffer.
pub(crate) fn copy_in(src: &mut dyn Buf, n: usize, spare: Option<BytesMut>) -> Bytes {
    let mut m = match spare {
        Some(mut m) => {
            m.clear();
            m.reserve(n);
            m
        }
        None => BytesMut::with_capacity(n),
    };
    let mut left = n;
    while left > 0 {
        let c = src.chunk();
        let k = c.len().min(left);
        m.extend_from_slice(&c[..k]);
        src.advance(k);
        left -= k;
    }
    m.freeze()
}

/// Puts `b` into `sink`: shared if the sink keeps slices, copied otherwise. A large buffer
/// that was copied out and is referenced nowhere else comes back for reuse.
pub(crate) fn deliver(b: Bytes, sink: &mut dyn RecvSink) -> Option<BytesMut> {
    if sink.shares() {
        sink.put_bytes(b);
        return None;
    }
    sink.put_slice(&b);
    if b.len() < COPY_OUTSIDE {
        return None;
    }
    b.try_into_mut().ok().filter(|m| m.capacity() <= MAX_SPARE)
}

/// Delivers slices in order; returns a buffer fit for reuse, if any.
pub(crate) fn deliver_all(segs: Chain, sink: &mut dyn RecvSink) -> Option<BytesMut> {
    let mut spare = None;
    let mut segs = segs;
    while let Some(b) = segs.pop_front() {
        if let Some(m) = deliver(b, sink) {
            spare = Some(m);
        }
    }
    spare
}

/// A byte stream.
#[derive(Default)]
pub(crate) struct StreamQ {
    segs: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
    spare: Option<BytesMut>,
}

impl StreamQ {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Takes the sends, small or shared (large copies go through [`push_bytes`]).
    pub(crate) fn push(&mut self, src: SendBuf<'_>, n: usize) {
        match src {
            SendBuf::Copy(b) => self.push_packed(b, n),
            SendBuf::Share(c) => {
                let mut left = n;
                while left > 0 {
                    let k = c.chunk().len().min(left);
                    self.push_bytes(c.copy_to_bytes(k));
                    left -= k;
                }
            }
        }
    }

    /// Copies `n` bytes from `src` in, packing small pieces into the tail buffer.
    fn push_packed(&mut self, src: &mut dyn Buf, n: usize) {
        let mut left = n;
        while left > 0 {
            let k = src.chunk().len().min(left);
            if k < PACK_BELOW {
                if self.tail.capacity() - self.tail.len() < k {
                    self.seal_tail();
                    self.tail = BytesMut::with_capacity(TAIL_CHUNK.max(k));
                }
                self.tail.extend_from_slice(&src.chunk()[..k]);
                src.advance(k);
                self.len += k;
            } else {
                self.push_bytes(copy_in(src, k, None));
            }
            left -= k;
        }
    }

    /// Appends a slice without copying.
    pub(crate) fn push_bytes(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        self.seal_tail();
        self.len += b.len();
        self.segs.push_back(b);
    }

    /// Turns the packed tail into a slice of its own, keeping order.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.segs.push_back(self.tail.split().freeze());
        }
    }

    /// A buffer to copy the next large write into.
    pub(crate) fn take_spare(&mut self) -> Option<BytesMut> {
        self.spare.take()
    }

    /// Keeps a buffer a reader is done with, for the next large write.
    pub(crate) fn give_spare(&mut self, m: BytesMut) {
        self.spare = Some(m);
    }

    /// Copies up to `sink.room()` bytes out under the lock (for small reads); returns the count.
    pub(crate) fn pop_into(&mut self, sink: &mut dyn RecvSink, peek: bool) -> usize {
        let want = sink.room().min(self.len);
        let mut done = 0;
        if peek {
            for s in self
                .segs
                .iter()
                .map(|b| &b[..])
                .chain(core::iter::once(&self.tail[..]))
            {
                if done == want {
                    break;
                }
                let k = s.len().min(want - done);
                sink.put_slice(&s[..k]);
                done += k;
            }
            return done;
        }
        // Straight from the queue into the sink: no chain to build for a small read.
        while done < want {
            let need = want - done;
            let k = if let Some(front) = self.segs.front_mut() {
                let k = front.len().min(need);
                sink.put_slice(&front[..k]);
                if k == front.len() {
                    self.segs.pop_front();
                } else {
                    front.advance(k);
                }
                k
            } else {
                let k = self.tail.len().min(need);
                sink.put_slice(&self.tail[..k]);
                self.tail.advance(k);
                k
            };
            done += k;
        }
        self.len -= done;
        if self.len == 0 {
            // Let the next small write reuse the tail's space instead of a new buffer (all
            // of it, if no slice of it is still out there).
            self.tail.clear();
            let _ = self.tail.try_reclaim(TAIL_CHUNK);
        }
        done
    }

    /// Moves up to `max` bytes out as slices (clones them, with `peek`), for copying outside
    /// the lock.
    pub(crate) fn pop_segs(&mut self, max: usize, peek: bool) -> Chain {
        let want = max.min(self.len);
        let mut out = Chain::new();
        if peek {
            self.seal_tail();
            for s in &self.segs {
                if out.len() == want {
                    break;
                }
                out.push(s.slice(..s.len().min(want - out.len())));
            }
            return out;
        }
        while out.len() < want {
            let need = want - out.len();
            if let Some(front) = self.segs.front_mut() {
                if front.len() <= need {
                    if let Some(b) = self.segs.pop_front() {
                        out.push(b);
                    }
                } else {
                    out.push(front.split_to(need));
                }
            } else {
                let k = self.tail.len().min(need);
                out.push(self.tail.split_to(k).freeze());
            }
        }
        self.len -= want;
        if self.len == 0 {
            // Let the next small write reuse the tail's space instead of a new buffer.
            self.tail.clear();
        }
        out
    }
}

/// One record: most are a single slice.
#[derive(Clone)]
pub(crate) enum Rec {
    One(Bytes),
    Many(Chain),
}

impl Rec {
    /// Takes `n` bytes from `src` as one record (copying a plain buffer, sharing a chain's
    /// slices); `spare` is a buffer to copy into, if one is at hand.
    pub(crate) fn take(src: SendBuf<'_>, n: usize, spare: Option<BytesMut>) -> Rec {
        match src {
            SendBuf::Copy(b) => Rec::One(copy_in(b, n, spare)),
            SendBuf::Share(c) if c.chunk().len() >= n => Rec::One(c.copy_to_bytes(n)),
            SendBuf::Share(c) => Rec::Many(c.split_to(n)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Rec::One(b) => b.len(),
            Rec::Many(c) => c.len(),
        }
    }

    /// Puts as much as fits into `sink` (the rest of the record is dropped); returns the
    /// count and a buffer fit for reuse, if any.
    pub(crate) fn deliver(self, sink: &mut dyn RecvSink) -> (usize, Option<BytesMut>) {
        let want = sink.room().min(self.len());
        match self {
            Rec::One(b) if want == b.len() => (want, deliver(b, sink)),
            Rec::One(b) => {
                sink.put_slice(&b[..want]);
                (want, None)
            }
            Rec::Many(mut c) => (want, deliver_all(c.split_to(want), sink)),
        }
    }

    /// Copies as much as fits into `sink` without consuming; returns the count.
    pub(crate) fn put_into(&self, sink: &mut dyn RecvSink) -> usize {
        let want = sink.room().min(self.len());
        match self {
            Rec::One(b) => sink.put_slice(&b[..want]),
            Rec::Many(c) => {
                let mut done = 0;
                for s in c.segments() {
                    if done == want {
                        break;
                    }
                    let k = s.len().min(want - done);
                    sink.put_slice(&s[..k]);
                    done += k;
                }
            }
        }
        want
    }
}

/// Copies small records from plain buffers into a tail buffer that they share, so that a
/// small record costs no allocation of its own (as [`StreamQ`] packs small writes).
#[derive(Default)]
pub(crate) struct Packer {
    tail: BytesMut,
}

impl Packer {
    /// Takes `n` bytes of `src` as one record: packed if small and copied, as
    /// [`Rec::take`] does otherwise.
    pub(crate) fn take(&mut self, src: SendBuf<'_>, n: usize) -> Rec {
        let b = match src {
            SendBuf::Copy(b) if n > 0 && n < PACK_BELOW => b,
            src => return Rec::take(src, n, None),
        };
        if self.tail.capacity() - self.tail.len() < n {
            self.tail = BytesMut::with_capacity(TAIL_CHUNK);
        }
        let mut left = n;
        while left > 0 {
            let c = b.chunk();
            let k = c.len().min(left);
            self.tail.extend_from_slice(&c[..k]);
            b.advance(k);
            left -= k;
        }
        Rec::One(self.tail.split().freeze())
    }
}

/// A queue of records.
#[derive(Default)]
pub(crate) struct RecordQ {
    recs: VecDeque<Rec>,
    /// Bytes charged to the sender: payload plus [`RECORD_OVERHEAD`] per record.
    charged: usize,
    payload: usize,
    spare: Option<BytesMut>,
    packer: Packer,
}

impl RecordQ {
    pub(crate) fn charged(&self) -> usize {
        self.charged
    }

    pub(crate) fn payload(&self) -> usize {
        self.payload
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    pub(crate) fn front_len(&self) -> usize {
        self.recs.front().map_or(0, Rec::len)
    }

    pub(crate) fn push(&mut self, r: Rec) {
        self.charged += r.len() + RECORD_OVERHEAD;
        self.payload += r.len();
        self.recs.push_back(r);
    }

    /// Takes `n` bytes of `src` as one record (small ones packed) and queues it.
    pub(crate) fn push_from(&mut self, src: SendBuf<'_>, n: usize) {
        let r = self.packer.take(src, n);
        self.push(r);
    }

    /// Takes the first record out (or a copy of it, with `peek`).
    pub(crate) fn pop(&mut self, peek: bool) -> Option<Rec> {
        if peek {
            return self.recs.front().cloned();
        }
        let r = self.recs.pop_front()?;
        self.charged -= r.len() + RECORD_OVERHEAD;
        self.payload -= r.len();
        Some(r)
    }

    /// Receives the first record into `sink` under the lock (for small records): returns
    /// (bytes placed, record length), or `None` if empty.
    pub(crate) fn pop_into(
        &mut self,
        sink: &mut dyn RecvSink,
        peek: bool,
    ) -> Option<(usize, usize)> {
        let full = self.recs.front()?.len();
        let r = self.pop(peek)?;
        Some((r.put_into(sink), full))
    }

    /// A buffer to copy the next large record into.
    pub(crate) fn take_spare(&mut self) -> Option<BytesMut> {
        self.spare.take()
    }

    /// Keeps a buffer a reader is done with.
    pub(crate) fn give_spare(&mut self, m: BytesMut) {
        self.spare = Some(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::ChainSink;
    use alloc::vec;
    use alloc::vec::Vec;

    fn drain(q: &mut StreamQ, max: usize) -> Vec<u8> {
        let mut out = vec![0u8; max];
        let mut s: &mut [u8] = &mut out;
        let n = q.pop_into(&mut s, false);
        out.truncate(n);
        out
    }

    #[test]
    fn small_writes_pack_and_keep_order() {
        let mut q = StreamQ::default();
        for i in 0..100u8 {
            q.push(SendBuf::Copy(&mut &[i, i][..]), 2);
        }
        let big = vec![7u8; 1000];
        q.push(SendBuf::Copy(&mut &big[..]), 1000);
        q.push(SendBuf::Copy(&mut &b"end"[..]), 3);
        assert_eq!(q.len(), 1203);
        assert!(
            q.segs.len() <= 3,
            "small writes are packed: {} slices",
            q.segs.len()
        );
        let got = drain(&mut q, 5000);
        let mut want = Vec::new();
        for i in 0..100u8 {
            want.extend_from_slice(&[i, i]);
        }
        want.extend_from_slice(&big);
        want.extend_from_slice(b"end");
        assert_eq!(got, want);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn large_bytes_are_shared_not_copied() {
        let mut q = StreamQ::default();
        let b = Bytes::from(vec![1u8; 4096]);
        let ptr = b.as_ptr();
        let mut c = Chain::from(b);
        q.push(SendBuf::Share(&mut c), 4096);
        let out = q.pop_segs(100, false);
        assert_eq!(out.len(), 100);
        assert_eq!(out.segments().next().unwrap().as_ptr(), ptr);
        assert_eq!(q.len(), 3996);
        let mut rest = Chain::new();
        let mut sink = ChainSink::new(&mut rest, 10_000);
        assert!(
            deliver_all(q.pop_segs(10_000, false), &mut sink).is_none(),
            "shared, not recycled"
        );
        assert_eq!(rest.len(), 3996);
    }

    #[test]
    fn large_copied_buffers_are_recycled_once_read() {
        let mut q = StreamQ::default();
        let data = vec![5u8; 8192];
        let bytes = copy_in(&mut &data[..], 8192, q.take_spare());
        let ptr = bytes.as_ptr();
        q.push_bytes(bytes);
        let mut out = vec![0u8; 8192];
        let mut sink: &mut [u8] = &mut out;
        let spare = deliver_all(q.pop_segs(8192, false), &mut sink)
            .expect("a copied-out buffer is reusable");
        assert_eq!(out, data);
        q.give_spare(spare);
        let again = copy_in(&mut &data[..4096], 4096, q.take_spare());
        assert_eq!(
            again.as_ptr(),
            ptr,
            "the next large write reuses the buffer"
        );
    }

    #[test]
    fn peek_copies_without_consuming() {
        let mut q = StreamQ::default();
        q.push(SendBuf::Copy(&mut &b"abc"[..]), 3);
        let big = vec![b'x'; 600];
        q.push(SendBuf::Copy(&mut &big[..]), 600);
        q.push(SendBuf::Copy(&mut &b"yz"[..]), 2);
        let mut out = vec![0u8; 700];
        let mut s: &mut [u8] = &mut out;
        assert_eq!(q.pop_into(&mut s, true), 605);
        assert_eq!(&out[..3], b"abc");
        assert_eq!(&out[603..605], b"yz");
        assert_eq!(q.len(), 605);
        assert_eq!(drain(&mut q, 4), b"abcx");
    }

    #[test]
    fn records_truncate_and_charge_overhead() {
        let mut q = RecordQ::default();
        q.push(Rec::take(SendBuf::Copy(&mut &b"hello"[..]), 5, None));
        q.push(Rec::take(SendBuf::Copy(&mut &b""[..]), 0, None));
        assert_eq!(q.charged(), 5 + 2 * RECORD_OVERHEAD);
        let mut buf = [0u8; 2];
        let mut s: &mut [u8] = &mut buf;
        assert_eq!(q.pop_into(&mut s, true), Some((2, 5)));
        let mut s: &mut [u8] = &mut buf;
        assert_eq!(q.pop_into(&mut s, false), Some((2, 5)));
        assert_eq!(&buf, b"he");
        let mut s: &mut [u8] = &mut buf;
        assert_eq!(
            q.pop_into(&mut s, false),
            Some((0, 0)),
            "zero-length record"
        );
        assert!(q.is_empty());
        assert_eq!(q.charged(), 0);
        let mut s: &mut [u8] = &mut buf;
        assert_eq!(q.pop_into(&mut s, false), None);
    }

    #[test]
    fn small_records_share_a_tail_buffer_and_stay_apart() {
        let mut q = RecordQ::default();
        for i in 0..100u8 {
            q.push_from(SendBuf::Copy(&mut &[i; 40][..]), 40);
        }
        let big = vec![9u8; 600];
        q.push_from(SendBuf::Copy(&mut &big[..]), 600);
        q.push_from(SendBuf::Copy(&mut &b""[..]), 0);
        assert_eq!(q.payload(), 100 * 40 + 600);
        assert_eq!(q.charged(), 100 * 40 + 600 + 102 * RECORD_OVERHEAD);
        let mut buf = [0u8; 1000];
        for i in 0..100u8 {
            let mut s: &mut [u8] = &mut buf;
            assert_eq!(q.pop_into(&mut s, false), Some((40, 40)));
            assert!(buf[..40].iter().all(|&b| b == i), "record {i}");
        }
        let mut s: &mut [u8] = &mut buf;
        assert_eq!(q.pop_into(&mut s, false), Some((600, 600)));
        assert_eq!(&buf[..600], &big[..]);
        let mut s: &mut [u8] = &mut buf;
        assert_eq!(q.pop_into(&mut s, false), Some((0, 0)));
        assert!(q.is_empty());
    }

    #[test]
    fn packed_records_share_one_allocation_but_chains_are_not_copied() {
        let mut p = Packer::default();
        let mut scattered: Chain = [Bytes::from_static(b"ab"), Bytes::from_static(b"cd")]
            .into_iter()
            .collect();
        let a = p.take(SendBuf::Copy(&mut &[1u8; 64][..]), 64);
        let b = p.take(SendBuf::Copy(&mut scattered), 4);
        let (Rec::One(a), Rec::One(b)) = (a, b) else {
            panic!("one slice each");
        };
        assert_eq!(
            a.as_ptr().wrapping_add(64),
            b.as_ptr(),
            "adjacent in one buffer"
        );
        assert_eq!((&a[..], &b[..]), (&[1u8; 64][..], &b"abcd"[..]));
        let shared = Bytes::from(vec![3u8; 64]);
        let mut c = Chain::from(shared.clone());
        let Rec::One(s) = p.take(SendBuf::Share(&mut c), 64) else {
            panic!("one slice");
        };
        assert_eq!(s.as_ptr(), shared.as_ptr(), "a chain's bytes are shared");
    }

    #[test]
    fn multi_slice_record_stays_whole() {
        let mut src: Chain = [Bytes::from_static(b"ab"), Bytes::from_static(b"cd")]
            .into_iter()
            .collect();
        let r = Rec::take(SendBuf::Share(&mut src), 4, None);
        assert_eq!(r.len(), 4);
        let mut out = [0u8; 3];
        let mut s: &mut [u8] = &mut out;
        assert_eq!(r.put_into(&mut s), 3);
        assert_eq!(&out, b"abc");
    }
}
