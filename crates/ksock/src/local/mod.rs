//! The local family: in-memory `stream`, `seqpacket` and `dgram` sockets with names of 1 to
//! 255 bytes, following Linux AF_UNIX where SPEC section 3 is silent.
//!
//! One namespace serves all three types (so a connect to a name of another type is
//! `EPROTOTYPE`). Each kind of socket has its own [`Protocol`](crate::Protocol)
//! implementation, a template for other families:
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the family (create, socketpair, addresses), the name table, shared helpers |
//! | `stream.rs` | [`StreamSock`]: stream and seqpacket sockets, their states, the unconnected state's operations |
//! | `listener.rs` | [`Backlog`]: the listening state, connections that exist before they are accepted |
//! | `connected.rs` | [`End`](connected::End): the connected state, the data path over a [`Conn`] |
//! | `conn.rs` | [`Conn`]: a connection's two pipes, each bounded by its writer's send buffer |
//! | `dgram.rs` | [`DgramSock`]: datagram sockets |
//! | `dgram_box.rs` | [`DgramBox`]: a datagram socket's receive queue and the count of its own bytes queued elsewhere |
//! | `queue.rs` | byte and record queues, the copy and packing rules |
//!
//! Lock order: socket lock, then the name table, then one backlog, connection or datagram
//! queue (never two of those at once).

mod conn;
mod connected;
mod dgram;
mod dgram_box;
mod listener;
mod queue;
mod stream;
#[cfg(test)]
mod tests;

pub use dgram_box::MAX_DGRAM_QLEN;

use crate::addr::{LocalName, SockAddr};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::family::{Family, OpCtx, SockRef};
use crate::socket::SocketCore;
use crate::stack::StackRef;
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::types::{Cred, Domain, SockType};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use conn::Conn;
use dgram::DgramSock;
use dgram_box::DgramBox;
use listener::Backlog;
use stream::StreamSock;

/// Everything a peer can notice when a socket shuts down or goes away.
const CHANGED: Events = Events::IN
    .union(Events::OUT)
    .union(Events::ERR)
    .union(Events::HUP)
    .union(Events::RDHUP);

/// The local family.
pub struct LocalFamily {
    names: Arc<Names>,
}

impl Default for LocalFamily {
    fn default() -> Self {
        LocalFamily::new()
    }
}

impl LocalFamily {
    /// A family with an empty namespace.
    pub fn new() -> LocalFamily {
        LocalFamily {
            names: Arc::new(Names {
                map: Mutex::new(BTreeMap::new()),
                autobind: AtomicU32::new(0),
            }),
        }
    }

    /// How many names are bound in the namespace (listeners, bound sockets, datagram
    /// receivers), for leak checks.
    pub fn name_count(&self) -> usize {
        self.names.map.lock().len()
    }

    /// A stream or seqpacket socket, unconnected.
    fn stream_sock(
        &self,
        stack: &StackRef,
        ty: SockType,
        protocol: u16,
    ) -> Arc<SocketCore<StreamSock>> {
        let proto = StreamSock::new(self.names.clone());
        SocketCore::new(stack, Domain::LOCAL, ty, protocol, proto)
    }

    /// A datagram socket with its box.
    fn dgram_sock(&self, stack: &StackRef, protocol: u16) -> (SockRef, Arc<DgramBox>) {
        let s = SocketCore::new(
            stack,
            Domain::LOCAL,
            SockType::DGRAM,
            protocol,
            DgramSock::new(self.names.clone()),
        );
        let r: SockRef = s.clone();
        let rx = Arc::new(DgramBox::new(r.clone()));
        s.with_proto(|p| p.set_box(rx.clone()));
        (r, rx)
    }
}

/// The namespace: name -> what is bound there.
struct Names {
    map: Mutex<BTreeMap<LocalName, Entry>>,
    /// The next autobind name to try (Linux's `ordernum`), one counter for the namespace.
    autobind: AtomicU32,
}

/// How many autobind names there are: five hex digits, as Linux's `unix_autobind`.
const AUTOBIND_NAMES: u32 = 1 << 20;

#[derive(Clone)]
struct Entry {
    owner: u64,
    ty: SockType,
    target: Target,
}

#[derive(Clone)]
enum Target {
    Bound,
    Listener(Arc<Backlog>),
    Dgram(Arc<DgramBox>),
}

impl Names {
    /// The entry bound to `name`; none: `ECONNREFUSED`.
    fn lookup(&self, cx: &mut OpCtx<'_>, name: &LocalName) -> Result<Entry> {
        let e = self.map.lock().get(name).cloned();
        e.ok_or_else(|| cx.fail(Errno::ECONNREFUSED, "no socket is bound to that name"))
    }

    /// Binds `name` to the socket of `cx` (`target` is what a connect or send finds
    /// there). Taken: `EADDRINUSE`.
    fn bind(&self, cx: &mut OpCtx<'_>, name: &LocalName, target: Target) -> Result<()> {
        let mut map = self.map.lock();
        if map.contains_key(name) {
            return Err(cx.fail(Errno::EADDRINUSE, "another socket is bound to that name"));
        }
        map.insert(
            name.clone(),
            Entry {
                owner: cx.me().id(),
                ty: cx.me().ty(),
                target,
            },
        );
        Ok(())
    }

    /// Linux's `unix_autobind`: binds the first free name of five lowercase hex digits
    /// (`00000` to `fffff`, which the POSIX face reports as the abstract `"\0xxxxx"`),
    /// trying each once, in order from where the last autobind stopped; all taken:
    /// `ENOSPC`. Each try takes the table's lock on its own, as Linux takes the hash
    /// bucket's, so a full namespace does not hold the lock for a million tries.
    fn autobind(&self, cx: &mut OpCtx<'_>, target: Target) -> Result<LocalName> {
        for _ in 0..AUTOBIND_NAMES {
            let n = self.autobind.fetch_add(1, Ordering::Relaxed) % AUTOBIND_NAMES;
            let name = LocalName::new(&hex5(n))?;
            match self.bind(cx, &name, target.clone()) {
                Err(e) if e == Errno::EADDRINUSE => continue,
                r => return r.map(|()| name),
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Frees `name` if `owner` holds it.
    fn release(&self, name: &LocalName, owner: u64) {
        let mut map = self.map.lock();
        if map.get(name).is_some_and(|e| e.owner == owner) {
            map.remove(name);
        }
    }
}

fn local_name(addr: &SockAddr) -> Result<LocalName> {
    match addr {
        SockAddr::Local(n) => Ok(n.clone()),
        _ => Err(Errno::EINVAL),
    }
}

/// `n`'s low 20 bits as five lowercase hex digits (`format!("{n:05x}")` without allocating).
fn hex5(n: u32) -> [u8; 5] {
    let mut b = [0u8; 5];
    for (i, c) in b.iter_mut().enumerate() {
        *c = b"0123456789abcdef"[((n >> (4 * (4 - i))) & 0xF) as usize];
    }
    b
}

fn addr_of(name: &Option<LocalName>) -> SockAddr {
    name.clone().map_or(SockAddr::Unnamed, SockAddr::Local)
}

fn check_protocol(protocol: i32) -> Result<u16> {
    // 0, or PF_UNIX itself, as Linux accepts; either way the socket's protocol (SO_PROTOCOL)
    // is 0, as on Linux.
    match protocol {
        0 | 1 => Ok(0),
        _ => Err(Errno::EPROTONOSUPPORT),
    }
}

fn check_type(ty: SockType) -> Result<SockType> {
    match ty {
        SockType::STREAM | SockType::SEQPACKET | SockType::DGRAM => Ok(ty),
        // Linux AF_UNIX quietly makes SOCK_RAW a datagram socket.
        SockType::RAW => Ok(SockType::DGRAM),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

impl Family for LocalFamily {
    fn domain(&self) -> Domain {
        Domain::LOCAL
    }

    fn name(&self) -> &'static str {
        "local"
    }

    fn types(&self) -> &'static [SockType] {
        &[SockType::STREAM, SockType::SEQPACKET, SockType::DGRAM]
    }

    fn create(&self, stack: &StackRef, ty: SockType, protocol: i32) -> Result<SockRef> {
        let protocol = check_protocol(protocol)?;
        let ty = check_type(ty)?;
        if ty == SockType::DGRAM {
            return Ok(self.dgram_sock(stack, protocol).0);
        }
        Ok(self.stream_sock(stack, ty, protocol))
    }

    fn socketpair(
        &self,
        stack: &StackRef,
        ty: SockType,
        protocol: i32,
        cred: Option<Cred>,
    ) -> Result<(SockRef, SockRef)> {
        let protocol = check_protocol(protocol)?;
        let ty = check_type(ty)?;
        if ty == SockType::DGRAM {
            let ((ra, ba), (rb, bb)) = (
                self.dgram_sock(stack, protocol),
                self.dgram_sock(stack, protocol),
            );
            ba.q.lock().peer = Some(bb.clone());
            bb.q.lock().peer = Some(ba.clone());
            if let Some(c) = cred {
                ba.q.lock().set_peer_cred(c);
                bb.q.lock().set_peer_cred(c);
            }
            return Ok((ra, rb));
        }
        let (a, b) = (
            self.stream_sock(stack, ty, protocol),
            self.stream_sock(stack, ty, protocol),
        );
        let (ra, rb): (SockRef, SockRef) = (a.clone(), b.clone());
        let conn = Arc::new(Conn::new(
            [ra.clone(), rb.clone()],
            ty.is_record(),
            [None, None],
            [cred, cred],
        ));
        let c2 = conn.clone();
        a.with_proto(|p| p.join(conn, 0));
        b.with_proto(|p| p.join(c2, 1));
        Ok((ra, rb))
    }

    fn parse_addr(&self, text: &[u8]) -> Result<SockAddr> {
        SockAddr::local(text)
    }

    fn listening(&self) -> Vec<SockAddr> {
        let map = self.names.map.lock();
        map.iter()
            .filter(|(_, e)| matches!(&e.target, Target::Listener(b) if !b.q.lock().closed))
            .map(|(k, _)| SockAddr::Local(k.clone()))
            .collect()
    }

    fn bound(&self) -> Vec<SockAddr> {
        self.names
            .map
            .lock()
            .keys()
            .map(|k| SockAddr::Local(k.clone()))
            .collect()
    }
}

#[cfg(test)]
mod size_budget {
    use core::mem::size_of;

    /// An idle connected pair must stay under 512 bytes with its table entries: two socket
    /// objects and a connection (or two datagram boxes), each one heap block. These budgets
    /// keep each block in the allocator size class it fits in today.
    #[test]
    fn idle_pair_objects_stay_small() {
        assert!(size_of::<crate::socket::SocketCore<super::StreamSock>>() <= 80);
        // A datagram socket's protocol state is two pointers (no state enum).
        assert!(size_of::<crate::socket::SocketCore<super::DgramSock>>() <= 72);
        assert!(size_of::<super::conn::Conn>() <= 80);
        assert!(size_of::<super::DgramBox>() <= 72);
        assert!(size_of::<super::stream::StreamState>() <= 16);
    }
}
