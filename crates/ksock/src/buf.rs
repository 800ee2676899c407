//! Buffer chains, the analogue of BSD mbuf chains, over [`bytes::Bytes`].
//!
//! A [`Chain`] is a queue of shared byte slices. Sending a chain moves its slices into the
//! receiver's buffer without copying; receiving a chain hands back slices that share the
//! sender's memory. Copying happens only where the caller gives or asks for a plain `&[u8]`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Buf, Bytes};
use core::fmt;
use core::ops::{Deref, DerefMut};

/// A chain of shared byte slices.
#[derive(Clone, Default)]
pub struct Chain {
    segs: VecDeque<Bytes>,
    len: usize,
}

impl Chain {
    /// An empty chain.
    pub const fn new() -> Chain {
        Chain {
            segs: VecDeque::new(),
            len: 0,
        }
    }

    /// Total bytes in the chain.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chain holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a slice without copying (empty slices are not kept).
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.len += b.len();
            self.segs.push_back(b);
        }
    }

    /// Puts a slice at the front without copying.
    pub fn push_front(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.len += b.len();
            self.segs.push_front(b);
        }
    }

    /// Appends a copy of `data`.
    pub fn push_slice(&mut self, data: &[u8]) {
        self.push(Bytes::copy_from_slice(data));
    }

    /// Moves every slice of `other` to the end of this chain.
    pub fn append(&mut self, other: &mut Chain) {
        self.len += other.len;
        self.segs.append(&mut other.segs);
        other.len = 0;
    }

    /// The slices, in order.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &Bytes> + '_ {
        self.segs.iter()
    }

    /// How many slices the chain has.
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    /// Removes and returns the first slice.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let b = self.segs.pop_front()?;
        self.len -= b.len();
        Some(b)
    }

    /// Splits off the first `n` bytes (all of them if `n` is larger) without copying.
    pub fn split_to(&mut self, n: usize) -> Chain {
        let mut out = Chain::new();
        let mut want = n.min(self.len);
        while want > 0 {
            let Some(front) = self.segs.front_mut() else {
                break;
            };
            if front.len() <= want {
                want -= front.len();
                if let Some(b) = self.pop_front() {
                    out.push(b);
                }
            } else {
                let part = front.split_to(want);
                self.len -= want;
                out.push(part);
                want = 0;
            }
        }
        out
    }

    /// Copies bytes from the front of the chain into `dst` without consuming them; returns
    /// how many were copied.
    pub fn peek_into(&self, dst: &mut [u8]) -> usize {
        let mut done = 0;
        for s in &self.segs {
            if done == dst.len() {
                break;
            }
            let n = s.len().min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&s[..n]);
            done += n;
        }
        done
    }

    /// The whole chain as one slice: free when it has one slice, a copy otherwise.
    pub fn into_bytes(mut self) -> Bytes {
        match self.segs.len() {
            0 => Bytes::new(),
            1 => self.segs.pop_front().unwrap_or_default(),
            _ => {
                let mut v = Vec::with_capacity(self.len);
                for s in &self.segs {
                    v.extend_from_slice(s);
                }
                Bytes::from(v)
            }
        }
    }

    /// A copy of the chain's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        for s in &self.segs {
            v.extend_from_slice(s);
        }
        v
    }

    /// Drops every slice.
    pub fn clear(&mut self) {
        self.segs.clear();
        self.len = 0;
    }
}

impl Buf for Chain {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.segs.front().map_or(&[], |b| &b[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len, "advance past the end of a chain");
        while cnt > 0 {
            let Some(front) = self.segs.front_mut() else {
                break;
            };
            if front.len() <= cnt {
                cnt -= front.len();
                self.pop_front();
            } else {
                front.advance(cnt);
                self.len -= cnt;
                cnt = 0;
            }
        }
    }

    /// Zero-copy when the bytes lie in the first slice.
    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        assert!(len <= self.len, "copy_to_bytes past the end of a chain");
        if let Some(front) = self.segs.front_mut()
            && len <= front.len()
        {
            let b = front.split_to(len);
            self.len -= len;
            if front.is_empty() {
                self.segs.pop_front();
            }
            return b;
        }
        self.split_to(len).into_bytes()
    }
}

impl From<Bytes> for Chain {
    fn from(b: Bytes) -> Self {
        let mut c = Chain::new();
        c.push(b);
        c
    }
}

impl From<Vec<u8>> for Chain {
    fn from(v: Vec<u8>) -> Self {
        Chain::from(Bytes::from(v))
    }
}

impl From<&'static [u8]> for Chain {
    fn from(s: &'static [u8]) -> Self {
        Chain::from(Bytes::from_static(s))
    }
}

impl FromIterator<Bytes> for Chain {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Self {
        let mut c = Chain::new();
        c.extend(iter);
        c
    }
}

impl Extend<Bytes> for Chain {
    fn extend<I: IntoIterator<Item = Bytes>>(&mut self, iter: I) {
        for b in iter {
            self.push(b);
        }
    }
}

impl PartialEq<[u8]> for Chain {
    fn eq(&self, other: &[u8]) -> bool {
        if other.len() != self.len {
            return false;
        }
        let mut at = 0;
        for s in &self.segs {
            if other[at..at + s.len()] != s[..] {
                return false;
            }
            at += s.len();
        }
        true
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chain({} bytes in {} slices)", self.len, self.segs.len())
    }
}

/// The bytes a send takes: copied from any buffer, or moved as shared slices out of a chain.
pub enum SendBuf<'a> {
    /// Bytes to copy (a plain buffer, scattered buffers, any [`Buf`]).
    Copy(&'a mut dyn Buf),
    /// A chain whose slices move into the receiver's queue without copying.
    Share(&'a mut Chain),
}

impl SendBuf<'_> {
    /// Bytes left to send.
    pub fn remaining(&self) -> usize {
        match self {
            SendBuf::Copy(b) => b.remaining(),
            SendBuf::Share(c) => c.len(),
        }
    }

    /// A shorter-lived borrow of the same source (to retry an operation).
    pub fn reborrow(&mut self) -> SendBuf<'_> {
        match self {
            SendBuf::Copy(b) => SendBuf::Copy(&mut **b),
            SendBuf::Share(c) => SendBuf::Share(c),
        }
    }
}

/// Where received bytes go: a plain buffer (copied into) or a chain (shared slices).
pub trait RecvSink {
    /// How many more bytes fit.
    fn room(&self) -> usize;

    /// Copies `src` in. The caller keeps `src.len() <= self.room()`.
    fn put_slice(&mut self, src: &[u8]);

    /// Takes `src`, sharing it where the sink can. The caller keeps `src.len() <= self.room()`.
    fn put_bytes(&mut self, src: Bytes) {
        self.put_slice(&src);
    }

    /// Whether [`put_bytes`](Self::put_bytes) keeps the slices (so a sender's buffer cannot
    /// be reused after it).
    fn shares(&self) -> bool {
        false
    }
}

/// A plain buffer as a sink: it shrinks from the front as bytes are written.
impl RecvSink for &mut [u8] {
    fn room(&self) -> usize {
        self.len()
    }

    fn put_slice(&mut self, src: &[u8]) {
        let buf = core::mem::take(self);
        let (head, tail) = buf.split_at_mut(src.len());
        head.copy_from_slice(src);
        *self = tail;
    }
}

/// A chain as a sink, limited to `room` bytes: received slices are shared, not copied.
pub struct ChainSink<'a> {
    chain: &'a mut Chain,
    room: usize,
}

impl<'a> ChainSink<'a> {
    /// A sink that appends at most `max` bytes to `chain`.
    pub fn new(chain: &'a mut Chain, max: usize) -> Self {
        ChainSink { chain, room: max }
    }
}

impl RecvSink for ChainSink<'_> {
    fn room(&self) -> usize {
        self.room
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.room -= src.len();
        self.chain.push_slice(src);
    }

    fn put_bytes(&mut self, src: Bytes) {
        self.room -= src.len();
        self.chain.push(src);
    }

    fn shares(&self) -> bool {
        true
    }
}

/// A gather list (scattered buffers, as in `iovec`s) read front to back as one [`Buf`].
pub struct Gather<'a, T: Deref<Target = [u8]>> {
    iov: &'a [T],
    idx: usize,
    off: usize,
    left: usize,
}

impl<'a, T: Deref<Target = [u8]>> Gather<'a, T> {
    /// The bytes of `iov`, in order (empty buffers are skipped).
    pub fn new(iov: &'a [T]) -> Self {
        let left = iov.iter().map(|s| s.len()).sum();
        let mut g = Gather {
            iov,
            idx: 0,
            off: 0,
            left,
        };
        g.skip_empty();
        g
    }

    fn skip_empty(&mut self) {
        while self.idx < self.iov.len() && self.off == self.iov[self.idx].len() {
            self.idx += 1;
            self.off = 0;
        }
    }
}

impl<T: Deref<Target = [u8]>> Buf for Gather<'_, T> {
    fn remaining(&self) -> usize {
        self.left
    }

    fn chunk(&self) -> &[u8] {
        self.iov.get(self.idx).map_or(&[], |s| &s[self.off..])
    }

    fn advance(&mut self, mut n: usize) {
        assert!(n <= self.left, "advance past the end of a gather list");
        self.left -= n;
        while n > 0 {
            let k = (self.iov[self.idx].len() - self.off).min(n);
            self.off += k;
            n -= k;
            self.skip_empty();
        }
    }
}

/// A scatter list (as in `iovec`s) filled front to back, as a [`RecvSink`].
pub struct Scatter<'a, T: DerefMut<Target = [u8]>> {
    iov: &'a mut [T],
    idx: usize,
    off: usize,
    room: usize,
}

impl<'a, T: DerefMut<Target = [u8]>> Scatter<'a, T> {
    /// A sink that fills `iov` in order.
    pub fn new(iov: &'a mut [T]) -> Self {
        let room = iov.iter().map(|s| s.len()).sum();
        Scatter {
            iov,
            idx: 0,
            off: 0,
            room,
        }
    }
}

impl<T: DerefMut<Target = [u8]>> RecvSink for Scatter<'_, T> {
    fn room(&self) -> usize {
        self.room
    }

    fn put_slice(&mut self, mut src: &[u8]) {
        assert!(
            src.len() <= self.room,
            "more bytes than the scatter list holds"
        );
        self.room -= src.len();
        while !src.is_empty() {
            let dst = &mut self.iov[self.idx][self.off..];
            let k = dst.len().min(src.len());
            dst[..k].copy_from_slice(&src[..k]);
            src = &src[k..];
            self.off += k;
            if self.off == self.iov[self.idx].len() {
                self.idx += 1;
                self.off = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn chain(parts: &[&'static [u8]]) -> Chain {
        parts.iter().map(|p| Bytes::from_static(p)).collect()
    }

    #[test]
    fn len_and_empty_slices() {
        let mut c = chain(&[b"ab", b"", b"cde"]);
        assert_eq!(c.len(), 5);
        assert_eq!(c.segment_count(), 2, "empty slices are not kept");
        c.push(Bytes::new());
        assert_eq!(c.segment_count(), 2);
        assert_eq!(&c, &b"abcde"[..]);
    }

    #[test]
    fn split_to_is_zero_copy_and_exact() {
        let src = Bytes::from(vec![1u8, 2, 3, 4, 5, 6]);
        let ptr = src.as_ptr();
        let mut c = Chain::from(src);
        c.push(Bytes::from_static(b"xyz"));
        let head = c.split_to(4);
        assert_eq!(
            head.segments().next().unwrap().as_ptr(),
            ptr,
            "shares the sender's bytes"
        );
        assert_eq!(&head, &[1u8, 2, 3, 4][..]);
        assert_eq!(&c, &[5u8, 6, b'x', b'y', b'z'][..]);
        let rest = c.split_to(100);
        assert_eq!(rest.len(), 5);
        assert!(c.is_empty());
    }

    #[test]
    fn buf_impl_walks_segments() {
        let mut c = chain(&[b"hello ", b"wor", b"ld"]);
        assert_eq!(c.chunk(), b"hello ");
        c.advance(7);
        assert_eq!(c.chunk(), b"or");
        assert_eq!(c.remaining(), 4);
        let b = c.copy_to_bytes(2);
        assert_eq!(&b[..], b"or");
        assert_eq!(c.copy_to_bytes(2), Bytes::from_static(b"ld"));
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.chunk(), b"");
    }

    #[test]
    fn copy_to_bytes_across_slices_copies_once() {
        let mut c = chain(&[b"ab", b"cd"]);
        assert_eq!(&c.copy_to_bytes(3)[..], b"abc");
        assert_eq!(&c, &b"d"[..]);
    }

    #[test]
    fn peek_and_into_bytes() {
        let c = chain(&[b"ab", b"cd", b"e"]);
        let mut out = [0u8; 4];
        assert_eq!(c.peek_into(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(c.len(), 5, "peek consumes nothing");
        assert_eq!(&c.clone().into_bytes()[..], b"abcde");
        let one = Chain::from(Bytes::from_static(b"x"));
        assert_eq!(&one.into_bytes()[..], b"x");
        assert!(Chain::new().into_bytes().is_empty());
    }

    #[test]
    fn sinks() {
        let mut buf = [0u8; 5];
        let mut s: &mut [u8] = &mut buf;
        s.put_slice(b"ab");
        assert_eq!(s.room(), 3);
        s.put_bytes(Bytes::from_static(b"cde"));
        assert_eq!(s.room(), 0);
        assert_eq!(&buf, b"abcde");

        let mut c = Chain::new();
        let shared = Bytes::from(vec![9u8; 3]);
        let ptr = shared.as_ptr();
        let mut cs = ChainSink::new(&mut c, 10);
        cs.put_bytes(shared);
        cs.put_slice(b"zz");
        assert_eq!(cs.room(), 5);
        assert_eq!(c.segments().next().unwrap().as_ptr(), ptr);
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn gather_walks_buffers_and_skips_empty_ones() {
        let iov: [&[u8]; 5] = [b"", b"ab", b"", b"cde", b""];
        let mut g = Gather::new(&iov);
        assert_eq!(g.remaining(), 5);
        assert_eq!(g.chunk(), b"ab");
        g.advance(1);
        assert_eq!(g.chunk(), b"b");
        g.advance(2);
        assert_eq!(g.chunk(), b"de");
        assert_eq!(&g.copy_to_bytes(2)[..], b"de");
        assert_eq!(g.remaining(), 0);
        assert_eq!(g.chunk(), b"");
        let none: [&[u8]; 0] = [];
        assert_eq!(Gather::new(&none).chunk(), b"");
    }

    #[test]
    fn scatter_fills_buffers_in_order() {
        let (mut a, mut b, mut c) = ([0u8; 2], [0u8; 0], [0u8; 3]);
        let mut iov: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
        let mut s = Scatter::new(&mut iov);
        assert_eq!(s.room(), 5);
        s.put_slice(b"xyz");
        s.put_bytes(Bytes::from_static(b"uv"));
        assert_eq!(s.room(), 0);
        assert_eq!((&a, &c), (b"xy", b"zuv"));
    }

    #[test]
    fn append_moves_everything() {
        let mut a = chain(&[b"a"]);
        let mut b = chain(&[b"bc", b"d"]);
        a.append(&mut b);
        assert!(b.is_empty());
        assert_eq!(&a, &b"abcd"[..]);
    }

    proptest::proptest! {
        /// Splitting and advancing a chain in arbitrary steps yields exactly its bytes.
        #[test]
        fn split_and_advance_preserve_bytes(
            parts in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..40), 0..12),
            steps in proptest::collection::vec(0usize..50, 0..20),
        ) {
            let all: Vec<u8> = parts.concat();
            let mut c: Chain = parts.iter().map(|p| Bytes::from(p.clone())).collect();
            proptest::prop_assert_eq!(c.len(), all.len());
            let mut got = Vec::new();
            for (i, s) in steps.iter().enumerate() {
                if i % 2 == 0 {
                    got.extend_from_slice(&c.split_to(*s).to_vec());
                } else {
                    let n = (*s).min(c.remaining());
                    got.extend_from_slice(&c.copy_to_bytes(n));
                }
            }
            got.extend_from_slice(&c.to_vec());
            proptest::prop_assert_eq!(got, all);
        }
    }
}
