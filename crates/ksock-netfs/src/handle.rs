//! Open files.

use crate::fs::Inner;
use crate::node::Node;
use bytes::Bytes;
use core::future::{Future, poll_fn};
use core::task::{Context, Poll};
use ksock::{Chain, Errno, Events, MsgFlags, Result, SockAddr, SockType, Socket};

/// The longest address line of a read with headers on (`[v6 address]:port\n`).
const HEADER_MAX: usize = 48;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What an open file does with reads and writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HandleKind {
    /// A `ctl` file, a factory handle or a `listen` handle: reading gives the socket's id
    /// (then end of file), writing runs commands.
    Ctl,
    /// A `data` or `accept` handle: reading receives, writing sends.
    Data,
    /// A read-only text (`addrs`, `local`, `remote`, `status`, `err`), fixed when opened.
    Text,
}

/// An open file of the namespace. Dropping it is closing it: the socket ends when neither
/// its files nor its creator keep it.
pub struct Handle {
    fs: Arc<Inner>,
    node: Node,
    kind: HandleKind,
    sock: Option<Socket>,
    text: Bytes,
    pos: Mutex<usize>,
    nonblock: bool,
}

impl Handle {
    pub(crate) fn new(
        fs: Arc<Inner>,
        node: Node,
        kind: HandleKind,
        sock: Option<Socket>,
        text: Bytes,
        nonblock: bool,
    ) -> Arc<Handle> {
        Arc::new(Handle {
            fs,
            node,
            kind,
            sock,
            text,
            pos: Mutex::new(0),
            nonblock,
        })
    }

    /// The node that was opened (for `accept` and `listen`, that node, though the handle
    /// belongs to the new connection).
    pub fn node(&self) -> Node {
        self.node
    }

    /// What the handle does.
    pub fn kind(&self) -> HandleKind {
        self.kind
    }

    /// The socket the handle belongs to (the new connection, for `accept` and `listen`).
    pub fn socket(&self) -> Option<&Socket> {
        self.sock.as_ref()
    }

    /// The socket's id.
    pub fn id(&self) -> Option<u64> {
        self.sock.as_ref().map(Socket::id)
    }

    /// Whether the handle itself is nonblocking (a `:nonblock` path, or the socket's
    /// `nonblock on` when it was opened).
    pub fn is_nonblocking(&self) -> bool {
        self.nonblock
    }

    /// Whether reads may start anywhere ([`HandleKind::Text`]: a snapshot taken at open, so
    /// it behaves like a regular file for tools that seek or trust the size). Socket files
    /// are streams.
    pub fn seekable(&self) -> bool {
        self.kind == HandleKind::Text
    }

    /// Reads a text handle at `offset` (empty past the end; nothing for other handles).
    pub fn read_at(&self, offset: u64, max: usize) -> Bytes {
        if self.kind != HandleKind::Text {
            return Bytes::new();
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        let end = start + max.min(self.text.len() - start);
        self.text.slice(start..end)
    }

    fn read_text(&self, max: usize) -> Bytes {
        let mut pos = self.pos.lock();
        let start = (*pos).min(self.text.len());
        let end = start + max.min(self.text.len() - start);
        *pos = end;
        self.text.slice(start..end)
    }

    /// Whether the socket's `headers` are on (datagram sockets only).
    fn headers(&self) -> bool {
        match &self.sock {
            Some(s) if s.ty() == SockType::DGRAM => self.fs.headers(s.id()),
            _ => false,
        }
    }

    /// Splits a write with headers on into its destination and its payload: the first line
    /// is `host:port`. Missing or malformed: `EINVAL`.
    fn split_header(&self, sock: &Socket, data: Bytes) -> Result<(Option<SockAddr>, Bytes)> {
        let nl = data.iter().position(|&b| b == b'\n').ok_or(Errno::EINVAL)?;
        let to = self
            .fs
            .parse_addr(sock, &data[..nl])
            .map_err(|_| Errno::EINVAL)?;
        Ok((Some(to), data.slice(nl + 1..)))
    }

    fn data_sock(&self) -> Result<&Socket> {
        self.sock.as_ref().ok_or(Errno::EBADF)
    }

    /// Reads at most `max` bytes: the next record of a record socket (truncated to `max`,
    /// the rest discarded), what a stream has, or the text of a text file. An empty result is
    /// end of file. Waits for data unless the handle or `nonblock` says not to (`EAGAIN`).
    pub fn read(
        self: &Arc<Self>,
        max: usize,
        nonblock: bool,
    ) -> impl Future<Output = Result<Bytes>> + Send + 'static {
        let h = self.clone();
        async move {
            if h.kind != HandleKind::Data {
                return Ok(h.read_text(max));
            }
            let sock = h.data_sock()?;
            let flags = if nonblock || h.nonblock {
                MsgFlags::DONTWAIT
            } else {
                MsgFlags::empty()
            };
            let headers = h.headers();
            // Room for the address line: `[v6 address]:port\n` is at most 48 bytes.
            let want = if headers && max > HEADER_MAX {
                max - HEADER_MAX
            } else {
                max
            };
            match poll_fn(|cx| sock.poll_recv_chain(cx, want, flags)).await {
                Ok((chain, info)) if headers => {
                    let mut out = crate::status::show_addr(&info.from).into_bytes();
                    out.push(b'\n');
                    out.extend_from_slice(&chain.into_bytes());
                    out.truncate(max);
                    Ok(Bytes::from(out))
                }
                Ok((chain, _info)) => Ok(chain.into_bytes()),
                // Its socket ended (`hangup`) while the file was open: end of file, as a
                // pipe whose writer is gone, until the file is closed.
                Err(e) if e == Errno::EBADF && sock.is_closed() => Ok(Bytes::new()),
                Err(e) => {
                    h.fs.record_errno(sock, "read", e);
                    Err(e)
                }
            }
        }
    }

    /// Writes: sends `data` as one record (record sockets) or as bytes (streams: all of it,
    /// unless nonblocking, when the count may be short), or runs ctl commands. Returns the
    /// byte count.
    pub fn write(
        self: &Arc<Self>,
        data: Bytes,
        nonblock: bool,
    ) -> impl Future<Output = Result<usize>> + Send + 'static {
        self.write_counted(data, nonblock, Arc::new(AtomicUsize::new(0)))
    }

    /// [`write`](Self::write), adding to `sent` the bytes of a stream write as they go, so
    /// that a caller who gives up on a long blocking write (dropping the future) can still
    /// report the part that was sent.
    pub fn write_counted(
        self: &Arc<Self>,
        data: Bytes,
        nonblock: bool,
        sent: Arc<AtomicUsize>,
    ) -> impl Future<Output = Result<usize>> + Send + 'static {
        let h = self.clone();
        async move {
            let nonblock = nonblock || h.nonblock;
            match h.kind {
                HandleKind::Text => Err(Errno::EBADF),
                HandleKind::Ctl => {
                    let sock = h.data_sock()?;
                    h.fs.ctl(sock, &data, nonblock).await
                }
                HandleKind::Data => {
                    let sock = h.data_sock()?;
                    let whole = data.len();
                    let (to, data) = if h.headers() {
                        match h.split_header(sock, data) {
                            Ok(v) => v,
                            Err(e) => {
                                h.fs.record(
                                    sock.id(),
                                    format!(
                                        "{}: write: {} (with headers on, a write starts with a \
                                         line naming the destination, host:port)",
                                        e.name(),
                                        e.message()
                                    ),
                                );
                                return Err(e);
                            }
                        }
                    } else {
                        (None, data)
                    };
                    let r = match send(sock, data, to.as_ref(), nonblock, &sent).await {
                        // Its socket ended while the file was open: nobody to send to.
                        Err(e) if e == Errno::EBADF && sock.is_closed() => Err(Errno::EPIPE),
                        // The address line was consumed too (a datagram goes whole).
                        Ok(_) if to.is_some() => Ok(whole),
                        r => r,
                    };
                    if let Err(e) = r {
                        h.fs.record_errno(sock, "write", e);
                    }
                    r
                }
            }
        }
    }

    /// Tries to send `data` at once, copying it straight into the socket (no waiting, no
    /// copy of its own): the count sent (a stream may take part of it), or `EAGAIN` if
    /// nothing could go. `None` for files whose writes are not sends (ctl, text): use
    /// [`write`](Self::write). The file layer tries this first and hands only what must
    /// wait to a [`write`](Self::write) future.
    pub fn try_send(&self, data: &[u8]) -> Option<Result<usize>> {
        if self.kind != HandleKind::Data || self.headers() {
            return None;
        }
        let sock = self.sock.as_ref()?;
        let r = match sock.sendmsg(&mut &data[..], None, MsgFlags::DONTWAIT) {
            Err(e) if e == Errno::EBADF && sock.is_closed() => Err(Errno::EPIPE),
            r => r,
        };
        if let Err(e) = r {
            self.fs.record_errno(sock, "write", e);
        }
        Some(r)
    }

    /// Readiness for `poll`: the socket's events (`IN`, `OUT`, `ERR`, `HUP`, `RDHUP`, `NVAL`
    /// once it has ended), always `IN | OUT` for text files. With a context, registers its
    /// waker when none of `interest` is ready.
    pub fn poll_ready(&self, cx: Option<&mut Context<'_>>, interest: Events) -> Events {
        let Some(sock) = &self.sock else {
            return Events::IN | Events::OUT;
        };
        if self.kind == HandleKind::Text {
            return Events::IN | Events::OUT;
        }
        match cx {
            None => sock.readiness(),
            Some(cx) => match sock.poll_ready(cx, interest) {
                Poll::Ready(ev) => ev,
                Poll::Pending => sock.readiness(),
            },
        }
    }
}

/// Sends `data`: its bytes move into the socket without another copy (the write's bytes
/// were copied once, out of the FUSE request).
async fn send(
    sock: &Socket,
    data: Bytes,
    to: Option<&SockAddr>,
    nonblock: bool,
    count: &AtomicUsize,
) -> Result<usize> {
    let mut data = Chain::from(data);
    let flags = if nonblock {
        MsgFlags::DONTWAIT
    } else {
        MsgFlags::empty()
    };
    let record = sock.ty().is_record();
    let mut sent = 0;
    loop {
        match poll_fn(|cx| sock.poll_send_chain(cx, &mut data, to, flags)).await {
            Ok(n) => {
                sent += n;
                count.fetch_add(n, Ordering::Release);
                if record || data.is_empty() {
                    return Ok(sent);
                }
            }
            Err(_) if sent > 0 => return Ok(sent),
            Err(e) => return Err(e),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(sock) = self.sock.take() {
            let id = sock.id();
            drop(sock);
            self.fs.reap(id);
        }
    }
}

impl core::fmt::Debug for Handle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handle")
            .field("node", &self.node)
            .field("kind", &self.kind)
            .field("socket", &self.id())
            .field("nonblock", &self.nonblock)
            .finish()
    }
}
