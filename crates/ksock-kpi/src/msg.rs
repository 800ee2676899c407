//! `struct msghdr` for the KPI: scatter/gather buffers, an address, flags. The buffers go
//! to the core as its [`Gather`](ksock::Gather) and [`Scatter`](ksock::Scatter).

use ksock::{MsgFlags, SockAddr};

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
