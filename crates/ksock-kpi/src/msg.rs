//! `struct msghdr` for the KPI: scatter/gather buffers, an address, flags.

use bytes::Buf;
use ksock::{MsgFlags, RecvSink, SockAddr};

/// What [`sock_send`](crate::sock_send) sends: like a `const struct msghdr`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendMsg<'a> {
    /// The destination (`msg_name`): for datagram sockets that are not connected; `None`
    /// sends to the connected peer.
    pub name: Option<&'a SockAddr>,
    /// The data, gathered from these slices in order (`msg_iov`). For records (seqpacket,
    /// datagram) all of them together are one record.
    pub iov: &'a [&'a [u8]],
}

impl<'a> SendMsg<'a> {
    /// A message of these slices to the connected peer.
    pub fn new(iov: &'a [&'a [u8]]) -> Self {
        SendMsg { name: None, iov }
    }

    /// The same message to `to`.
    pub fn to(self, to: &'a SockAddr) -> Self {
        SendMsg {
            name: Some(to),
            ..self
        }
    }
}

/// Where [`sock_receive`](crate::sock_receive) puts what it receives: like a
/// `struct msghdr`. [`sock_receivembuf`](crate::sock_receivembuf) uses only `name`,
/// `namelen` and `flags` (its `iov` must be empty).
#[derive(Debug, Default)]
pub struct RecvMsg<'a, 'b> {
    /// Storage for the sender's address (`msg_name`), filled as far as it fits (see
    /// [`sockaddr`](crate::sockaddr) for the layout).
    pub name: Option<&'a mut [u8]>,
    /// Out: the sender's address's full length (0 when the sender has no name), which may
    /// exceed `name`'s length: then the address was truncated.
    pub namelen: usize,
    /// The buffers, filled in order (`msg_iov`).
    pub iov: &'a mut [&'b mut [u8]],
    /// Out (`msg_flags`): [`MsgFlags::TRUNC`] if a record did not fit and its rest was
    /// discarded, [`MsgFlags::EOR`] at the end of a record.
    pub flags: MsgFlags,
}

impl<'a, 'b> RecvMsg<'a, 'b> {
    /// A message that receives into `iov`.
    pub fn new(iov: &'a mut [&'b mut [u8]]) -> Self {
        RecvMsg {
            iov,
            ..RecvMsg::default()
        }
    }

    /// The same, with storage for the sender's address.
    pub fn with_name(self, name: &'a mut [u8]) -> Self {
        RecvMsg {
            name: Some(name),
            ..self
        }
    }
}

/// Gather: the iovecs of a [`SendMsg`] as one [`Buf`].
pub(crate) struct IovBuf<'a> {
    iov: &'a [&'a [u8]],
    /// The current slice (never an exhausted one while bytes remain).
    idx: usize,
    /// How far into it.
    off: usize,
    left: usize,
}

impl<'a> IovBuf<'a> {
    pub(crate) fn new(iov: &'a [&'a [u8]]) -> Self {
        let mut b = IovBuf {
            iov,
            idx: 0,
            off: 0,
            left: iov.iter().map(|s| s.len()).sum(),
        };
        b.skip_empty();
        b
    }

    fn skip_empty(&mut self) {
        while self.iov.get(self.idx).is_some_and(|s| self.off == s.len()) {
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

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.left, "advance past the end of the iovecs");
        self.left -= cnt;
        while cnt > 0 {
            let here = self.iov[self.idx].len() - self.off;
            let k = here.min(cnt);
            self.off += k;
            cnt -= k;
            self.skip_empty();
        }
    }
}

/// Scatter: the iovecs of a [`RecvMsg`] as one [`RecvSink`].
pub(crate) struct IovSink<'s, 'b> {
    iov: &'s mut [&'b mut [u8]],
    idx: usize,
    off: usize,
    room: usize,
}

impl<'s, 'b> IovSink<'s, 'b> {
    pub(crate) fn new(iov: &'s mut [&'b mut [u8]]) -> Self {
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
        assert!(src.len() <= self.room, "more bytes than the iovecs hold");
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
    fn gather_walks_slices_and_skips_empty_ones() {
        let iov: [&[u8]; 5] = [b"", b"ab", b"", b"cde", b""];
        let mut b = IovBuf::new(&iov);
        assert_eq!(b.remaining(), 5);
        assert_eq!(b.chunk(), b"ab");
        b.advance(1);
        assert_eq!(b.chunk(), b"b");
        b.advance(2);
        assert_eq!(b.chunk(), b"de");
        assert_eq!(b.copy_to_bytes(2).as_ref(), b"de");
        assert_eq!(b.remaining(), 0);
        assert_eq!(b.chunk(), b"");
        let none: [&[u8]; 2] = [b"", b""];
        assert_eq!(IovBuf::new(&none).chunk(), b"");
    }

    #[test]
    fn scatter_fills_slices_in_order() {
        let (mut a, mut b, mut c) = ([0u8; 2], [0u8; 0], [0u8; 4]);
        let mut iov: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
        let mut s = IovSink::new(&mut iov);
        assert_eq!(s.room(), 6);
        s.put_slice(b"x");
        s.put_slice(b"yzw");
        assert_eq!(s.room(), 2);
        s.put_slice(b"");
        s.put_slice(b"uv");
        assert_eq!(s.room(), 0);
        assert_eq!(&a, b"xy");
        assert_eq!(&c, b"zwuv");
    }
}
