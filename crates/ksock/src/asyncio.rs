//! Async calls: futures over the poll core, for any executor (no runtime is assumed).
//!
//! They wait as long as it takes: the socket's nonblocking flag and the `SO_*TIMEO` timeouts
//! belong to the blocking calls; use the executor's timers for deadlines. `MSG_DONTWAIT`
//! still makes a call a single attempt.

use crate::addr::SockAddr;
use crate::buf::{Chain, ChainSink, RecvSink};
use crate::errno::Result;
use crate::event::Events;
use crate::socket::Socket;
use crate::types::{MsgFlags, RecvInfo, SockType};
use bytes::Buf;
use core::future::poll_fn;

impl Socket {
    /// Connects, waiting while the listener's backlog is full.
    pub async fn connect_async(&self, addr: &SockAddr) -> Result<()> {
        poll_fn(|cx| self.poll_connect(cx, addr)).await
    }

    /// Accepts the next connection.
    pub async fn accept_async(&self) -> Result<(Socket, SockAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Sends from `src`: all of it for a stream (unless an error comes first), one record
    /// otherwise.
    pub async fn sendmsg_async<B: Buf>(
        &self,
        src: &mut B,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        let mut sent = 0;
        loop {
            match poll_fn(|cx| self.poll_sendmsg(cx, &mut *src, to, flags)).await {
                Ok(n) => {
                    sent += n;
                    if self.ty() != SockType::STREAM || !src.has_remaining() {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `data` to the peer.
    pub async fn send_async(&self, data: &[u8]) -> Result<usize> {
        self.sendmsg_async(&mut &data[..], None, MsgFlags::empty())
            .await
    }

    /// Sends a chain without copying; the chain is consumed whatever happens.
    pub async fn send_chain_async(&self, mut chain: Chain, flags: MsgFlags) -> Result<usize> {
        let mut sent = 0;
        loop {
            match poll_fn(|cx| self.poll_send_chain(cx, &mut chain, None, flags)).await {
                Ok(n) => {
                    sent += n;
                    if self.ty() != SockType::STREAM || chain.is_empty() {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives once into `dst` (whatever is there, at least one byte, a record, or end of
    /// file).
    pub async fn recvmsg_async<S: RecvSink>(
        &self,
        dst: &mut S,
        flags: MsgFlags,
    ) -> Result<RecvInfo> {
        poll_fn(|cx| self.poll_recvmsg(cx, &mut *dst, flags)).await
    }

    /// Receives into `buf`; returns the byte count (0 at end of file).
    pub async fn recv_async(&self, buf: &mut [u8]) -> Result<usize> {
        let mut s: &mut [u8] = buf;
        self.recvmsg_async(&mut s, MsgFlags::empty())
            .await
            .map(|i| i.len)
    }

    /// Receives up to `max` bytes as a chain sharing the sender's bytes.
    pub async fn recv_chain_async(&self, max: usize, flags: MsgFlags) -> Result<(Chain, RecvInfo)> {
        let mut chain = Chain::new();
        let info = self
            .recvmsg_async(&mut ChainSink::new(&mut chain, max), flags)
            .await?;
        Ok((chain, info))
    }

    /// Waits until any of `interest` (or `ERR`, `HUP`, `NVAL`) is ready.
    pub async fn ready(&self, interest: Events) -> Events {
        poll_fn(|cx| self.poll_ready(cx, interest)).await
    }
}
