//! The byte and record queues of the local family.
//!
//! Bytes are kept as shared [`Bytes`] slices, so a chain sent in is received as slices of
//! the same memory. Small writes from plain buffers are packed into one growing tail buffer
//! instead of one allocation each.

use crate::buf::{Chain, RecvSink};
use alloc::collections::VecDeque;
use bytes::{Buf, Bytes, BytesMut};

/// What each record costs in the sender's buffer beyond its bytes (Linux reserves 32 bytes
/// per datagram the same way: a record of `sndbuf - 32` bytes is the largest that fits).
pub(crate) const RECORD_OVERHEAD: usize = 32;

/// Pieces smaller than this are copied into the tail buffer rather than kept as slices.
const PACK_BELOW: usize = 512;
/// The size of a fresh tail buffer.
const TAIL_CHUNK: usize = 4096;

/// A byte stream.
#[derive(Default)]
pub(crate) struct StreamQ {
    segs: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

impl StreamQ {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Moves `n` bytes from `src` in (the caller checked `n <= src.remaining()`).
    pub(crate) fn push(&mut self, src: &mut dyn Buf, n: usize) {
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
            } else {
                self.seal_tail();
                self.segs.push_back(src.copy_to_bytes(k));
            }
            left -= k;
            self.len += k;
        }
    }

    /// Turns the packed tail into a slice of its own, keeping order.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.segs.push_back(self.tail.split().freeze());
        }
    }

    /// Moves up to `sink.room()` bytes out (or copies them, with `peek`); returns the count.
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
        while done < want {
            let k;
            if let Some(front) = self.segs.front_mut() {
                k = front.len().min(want - done);
                if k == front.len() {
                    if let Some(b) = self.segs.pop_front() {
                        sink.put_bytes(b);
                    }
                } else {
                    sink.put_bytes(front.split_to(k));
                }
            } else {
                k = self.tail.len().min(want - done);
                sink.put_bytes(self.tail.split_to(k).freeze());
            }
            done += k;
        }
        self.len -= done;
        if self.len == 0 {
            // Let the next small write reuse the tail's space instead of a new buffer.
            self.tail.clear();
        }
        done
    }
}

/// One record: most are a single slice.
pub(crate) enum Rec {
    One(Bytes),
    Many(Chain),
}

impl Rec {
    /// Takes `n` bytes from `src` as one record.
    pub(crate) fn take(src: &mut dyn Buf, n: usize) -> Rec {
        if src.chunk().len() >= n {
            return Rec::One(src.copy_to_bytes(n));
        }
        let mut c = Chain::new();
        let mut left = n;
        while left > 0 {
            let k = src.chunk().len().min(left);
            c.push(src.copy_to_bytes(k));
            left -= k;
        }
        Rec::Many(c)
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Rec::One(b) => b.len(),
            Rec::Many(c) => c.len(),
        }
    }

    /// Puts as much as fits into `sink`; returns the count.
    pub(crate) fn put_into(&self, sink: &mut dyn RecvSink) -> usize {
        let want = sink.room().min(self.len());
        match self {
            Rec::One(b) => sink.put_bytes(b.slice(..want)),
            Rec::Many(c) => {
                let mut done = 0;
                for s in c.segments() {
                    if done == want {
                        break;
                    }
                    let k = s.len().min(want - done);
                    sink.put_bytes(s.slice(..k));
                    done += k;
                }
            }
        }
        want
    }
}

/// A queue of records.
#[derive(Default)]
pub(crate) struct RecordQ {
    recs: VecDeque<Rec>,
    /// Bytes charged to the sender: payload plus [`RECORD_OVERHEAD`] per record.
    charged: usize,
    payload: usize,
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

    /// Receives the first record into `sink`: returns (bytes placed, record length), or
    /// `None` if empty. Without `peek` the record is removed, truncated or not.
    pub(crate) fn pop_into(
        &mut self,
        sink: &mut dyn RecvSink,
        peek: bool,
    ) -> Option<(usize, usize)> {
        let r = self.recs.front()?;
        let full = r.len();
        let n = r.put_into(sink);
        if !peek {
            self.recs.pop_front();
            self.charged -= full + RECORD_OVERHEAD;
            self.payload -= full;
        }
        Some((n, full))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            q.push(&mut &[i, i][..], 2);
        }
        let big = vec![7u8; 1000];
        q.push(&mut &big[..], 1000);
        q.push(&mut &b"end"[..], 3);
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
        q.push(&mut c, 4096);
        let mut out = Chain::new();
        let n = q.pop_into(&mut crate::buf::ChainSink::new(&mut out, 100), false);
        assert_eq!(n, 100);
        assert_eq!(out.segments().next().unwrap().as_ptr(), ptr);
        assert_eq!(q.len(), 3996);
    }

    #[test]
    fn peek_copies_without_consuming() {
        let mut q = StreamQ::default();
        q.push(&mut &b"abc"[..], 3);
        let big = vec![b'x'; 600];
        q.push(&mut &big[..], 600);
        q.push(&mut &b"yz"[..], 2);
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
        q.push(Rec::take(&mut &b"hello"[..], 5));
        q.push(Rec::take(&mut &b""[..], 0));
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
    fn multi_slice_record_stays_whole() {
        let mut src: Chain = [Bytes::from_static(b"ab"), Bytes::from_static(b"cd")]
            .into_iter()
            .collect();
        let r = Rec::take(&mut src, 4);
        assert_eq!(r.len(), 4);
        let mut out = [0u8; 3];
        let mut s: &mut [u8] = &mut out;
        assert_eq!(r.put_into(&mut s), 3);
        assert_eq!(&out, b"abc");
    }
}
