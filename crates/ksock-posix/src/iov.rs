//! Scatter/gather vectors as the core's byte source ([`bytes::Buf`]) and sink
//! ([`RecvSink`]).

use bytes::Buf;
use ksock::RecvSink;
use std::io::{IoSlice, IoSliceMut};

/// The bytes of a gather list, read front to back.
pub(crate) struct IovBuf<'a> {
    iov: &'a [IoSlice<'a>],
    idx: usize,
    off: usize,
    left: usize,
}

impl<'a> IovBuf<'a> {
    pub(crate) fn new(iov: &'a [IoSlice<'a>]) -> Self {
        let left = iov.iter().map(|s| s.len()).sum();
        let mut b = IovBuf {
            iov,
            idx: 0,
            off: 0,
            left,
        };
        b.skip_empty();
        b
    }

    fn skip_empty(&mut self) {
        while self.idx < self.iov.len() && self.off == self.iov[self.idx].len() {
            self.idx += 1;
            self.off = 0;
        }
    }
}

impl Buf for IovBuf<'_> {
    fn remaining(&self) -> usize {
        self.left
    }

    fn chunk(&self) -> &[u8] {
        self.iov.get(self.idx).map_or(&[], |s| &s[self.off..])
    }

    fn advance(&mut self, mut n: usize) {
        assert!(n <= self.left, "advance past the end of the iovecs");
        self.left -= n;
        while n > 0 {
            let k = (self.iov[self.idx].len() - self.off).min(n);
            self.off += k;
            n -= k;
            self.skip_empty();
        }
    }
}

/// A scatter list filled front to back.
pub(crate) struct IovSink<'a, 'b> {
    iov: &'a mut [IoSliceMut<'b>],
    idx: usize,
    off: usize,
    room: usize,
}

impl<'a, 'b> IovSink<'a, 'b> {
    pub(crate) fn new(iov: &'a mut [IoSliceMut<'b>]) -> Self {
        let room = iov.iter().map(|s| s.len()).sum();
        IovSink {
            iov,
            idx: 0,
            off: 0,
            room,
        }
    }
}

impl RecvSink for IovSink<'_, '_> {
    fn room(&self) -> usize {
        self.room
    }

    fn put_slice(&mut self, mut src: &[u8]) {
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

    #[test]
    fn gather_skips_empty_slices() {
        let parts: [&[u8]; 4] = [b"", b"ab", b"", b"cde"];
        let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut b = IovBuf::new(&iov);
        assert_eq!(b.remaining(), 5);
        assert_eq!(b.chunk(), b"ab");
        b.advance(1);
        assert_eq!(b.chunk(), b"b");
        b.advance(2);
        assert_eq!(b.chunk(), b"de");
        assert_eq!(b.copy_to_bytes(2).as_ref(), b"de");
        assert_eq!(b.remaining(), 0);
        assert!(b.chunk().is_empty());
    }

    #[test]
    fn scatter_fills_in_order() {
        let (mut a, mut b, mut c) = ([0u8; 2], [0u8; 0], [0u8; 3]);
        let mut iov = [
            IoSliceMut::new(&mut a),
            IoSliceMut::new(&mut b),
            IoSliceMut::new(&mut c),
        ];
        let mut s = IovSink::new(&mut iov);
        assert_eq!(s.room(), 5);
        s.put_slice(b"x");
        s.put_slice(b"yzw");
        assert_eq!(s.room(), 1);
        assert_eq!((&a, &c), (b"xy", b"zw\0"));
    }
}
