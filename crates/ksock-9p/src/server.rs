//! The 9P2000 server: the `/net` namespace of a [`NetFs`] to 9P clients.
//!
//! Each connection has a reader thread and a writer thread. The reader decodes one message
//! at a time and answers at once what never waits (version, attach, walk, stat, clunk,
//! flush); an open, a read or a write runs as a task of the namespace's executor
//! ([`Exec`]), polled once on the reader and, if it must wait (an empty `data`, an `accept`
//! with nobody connecting, a ctl `connect` to a full backlog), parked with its tag: it holds
//! no thread, and the next message is read at once. Whoever completes a request (the
//! reader, the executor's driver, a thread whose send woke it) queues its reply for the
//! connection's writer, so a client that reads its replies slowly holds up only itself
//! (its reader stops taking requests while [`OUT_MAX`] bytes of replies wait, and a read of
//! `data` takes data from its socket only once there is room for its reply, so the data
//! of a client that never reads its replies stays in the sockets, counted against their
//! owners).
//!
//! `Tflush` of a waiting request interrupts its task (it ends with `EINTR` and its future is
//! dropped, which leaves no effect: a flushed accept dequeues nothing), so the request is
//! answered `Rerror "interrupted"`, then the flush `Rflush`. A request that completed first
//! was answered first. Tags are made unique for the executor with a per-server counter, so
//! a tag the client reuses never matches an old interrupt.
//!
//! Each open fid is one open file ([`Handle`]). A socket made by opening a factory through a
//! fid walked from an attach has that attach as its creator ([`ProcId::session`]): it lives
//! while the attach's fid is open or any file of the socket is, as a socket of the local
//! mount lives while its process does. When the connection ends, every fid is clunked and
//! every attach ends.
//!
//! A message that cannot be decoded, is longer than the negotiated `msize`, or reuses a tag
//! still in flight ends that connection (its sockets end as on any disconnect); the server
//! and its other connections go on.

use crate::proto::{
    self, DMDIR, Fcall, IOHDRSZ, NOFID, ORCLOSE, ORDWR, OWRITE, QTDIR, QTFILE, Qid, Stat, VERSION,
};
use bytes::Bytes;
use core::future::{Future, poll_fn};
use core::task::{Context, Poll, Waker};
use ksock::Errno;
use ksock::Events;
use ksock_netfs::park::Exec;
use ksock_netfs::{Access, Attr, Cred, Handle, HandleKind, NetFs, Node, OpenMode, ProcId};
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::UNIX_EPOCH;

/// The largest `msize` the server agrees to (1 MiB); a client asking for more gets this.
pub const MAX_MSIZE: u32 = 1 << 20;
/// The smallest `msize` the server agrees to: room for a header and a directory entry.
pub const MIN_MSIZE: u32 = 256;
/// Fids one connection may hold by default.
pub const MAX_FIDS: usize = 16_384;
/// Requests one connection may have in flight (waiting) by default.
pub const MAX_TAGS: usize = 4_096;
/// Connections the server serves at once by default.
pub const MAX_CONNECTIONS: usize = 256;
/// Bytes of replies that may wait for a connection's writer before its reader stops taking
/// requests.
pub const OUT_MAX: usize = 8 << 20;
/// The error of a flushed request, as `flush(5)` and SPEC name it.
pub const INTERRUPTED: &str = "interrupted";

/// How a server is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The largest `msize` agreed.
    pub max_msize: u32,
    /// Fids per connection; past it a walk or attach gets an error.
    pub max_fids: usize,
    /// Requests in flight per connection; past it a request gets an error.
    pub max_tags: usize,
    /// Connections at once; past it a new connection gets one `Rerror` and is closed.
    pub max_connections: usize,
    /// Bytes of replies that may wait for a connection's writer (see [`OUT_MAX`]).
    pub out_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_msize: MAX_MSIZE,
            max_fids: MAX_FIDS,
            max_tags: MAX_TAGS,
            max_connections: MAX_CONNECTIONS,
            out_max: OUT_MAX,
        }
    }
}

/// Who is at the other end of a connection: the user it acts as, and its process when
/// known (a Unix socket's `SO_PEERCRED`), shown as the creator of its sockets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Peer {
    /// User id the connection acts as.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id (0: unknown).
    pub pid: u32,
}

impl Peer {
    /// This process's own user and group, with no process (TCP, standard input).
    pub fn me() -> Peer {
        Peer {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            pid: 0,
        }
    }
}

/// A 9P server over a namespace. Cloning the `Arc` shares it; it serves any number of
/// connections, each from [`serve`](Server::serve) or a listener.
pub struct Server {
    netfs: NetFs,
    exec: Arc<Exec>,
    config: Config,
    /// Request ids for the executor: never reused.
    next_unique: AtomicU64,
    /// Attach numbers: never reused.
    next_session: AtomicU64,
    connections: AtomicUsize,
    served: AtomicU64,
    names: Mutex<HashMap<u32, String>>,
}

impl Server {
    /// A server for `netfs`, with its own executor thread.
    pub fn new(netfs: NetFs, config: Config) -> io::Result<Arc<Server>> {
        Ok(Arc::new(Server {
            netfs,
            exec: Exec::start()?,
            config,
            next_unique: AtomicU64::new(1),
            next_session: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            names: Mutex::new(HashMap::new()),
        }))
    }

    /// The namespace served.
    pub fn netfs(&self) -> &NetFs {
        &self.netfs
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Requests waiting now, on all connections.
    pub fn parked(&self) -> usize {
        self.exec.parked_count()
    }

    /// Serves one connection from two new threads (a reader and a writer); returns at once.
    /// The returned handle ends when the connection does.
    pub fn serve(
        self: &Arc<Self>,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        peer: Peer,
    ) -> io::Result<JoinHandle<()>> {
        let me = self.clone();
        thread::Builder::new()
            .name("ksock-9p-conn".into())
            .spawn(move || me.serve_here(reader, writer, peer))
    }

    /// Serves one connection, reading on this thread, until it ends (the peer closes it, a
    /// message is malformed, or reading fails). Replies are written from another thread.
    pub fn serve_here(
        self: &Arc<Self>,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        peer: Peer,
    ) {
        let n = self.connections.fetch_add(1, Ordering::AcqRel) + 1;
        let id = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.config.max_connections {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(conn = id, "9P: refused a connection: {n} would be too many");
            let mut w = writer;
            let msg = format!(
                "too many connections (at most {})",
                self.config.max_connections
            );
            let _ = w.write_all(&Fcall::Rerror { ename: msg }.to_bytes(proto::NOTAG));
            let _ = w.flush();
            return;
        }
        tracing::debug!(
            conn = id,
            uid = peer.uid,
            pid = peer.pid,
            "9P: connection opened"
        );
        let conn = Arc::new(Conn {
            id,
            server: self.clone(),
            cred: Cred::new(peer.uid, peer.gid, peer.pid),
            out: Out::new(writer, self.config.out_max),
            state: Mutex::new(State::new()),
        });
        let writer_thread = {
            let conn = conn.clone();
            thread::Builder::new()
                .name("ksock-9p-write".into())
                .spawn(move || conn.out.run())
        };
        let why = match writer_thread {
            Ok(_) => conn.read_loop(reader),
            Err(e) => format!("cannot start its writer: {e}"),
        };
        tracing::debug!(conn = id, "9P: connection closed: {why}");
        conn.end();
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Accepts connections on a Unix socket until it fails, serving each peer whose uid
    /// (`SO_PEERCRED`) is this process's; others are closed before a byte is read.
    pub fn listen_unix(self: &Arc<Self>, l: UnixListener) -> io::Result<JoinHandle<()>> {
        let me = self.clone();
        let my_uid = nix::unistd::getuid().as_raw();
        thread::Builder::new()
            .name("ksock-9p-accept".into())
            .spawn(move || {
                for s in l.incoming() {
                    let s = match s {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!("9P: accept failed: {e}");
                            continue;
                        }
                    };
                    let peer = match crate::transport::peer_cred(&s) {
                        Ok(c) if c.uid == my_uid => Peer {
                            uid: c.uid,
                            gid: c.gid,
                            pid: c.pid,
                        },
                        Ok(c) => {
                            tracing::warn!(
                                "9P: refused a peer of uid {} (pid {}): only uid {my_uid} may \
                                 use this socket",
                                c.uid,
                                c.pid
                            );
                            drop(s);
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!("9P: cannot read a peer's credentials: {e}");
                            continue;
                        }
                    };
                    let r = s.try_clone().map(|r| (r, s));
                    match r {
                        Ok((r, w)) => {
                            if let Err(e) = me.serve(Box::new(r), Box::new(w), peer) {
                                tracing::warn!("9P: cannot serve a connection: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("9P: cannot serve a connection: {e}"),
                    }
                }
            })
    }

    /// Accepts connections on TCP until it fails; every peer acts as this process's user.
    pub fn listen_tcp(self: &Arc<Self>, l: TcpListener) -> io::Result<JoinHandle<()>> {
        let me = self.clone();
        thread::Builder::new()
            .name("ksock-9p-accept".into())
            .spawn(move || {
                for s in l.incoming() {
                    let s = match s {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!("9P: accept failed: {e}");
                            continue;
                        }
                    };
                    let _ = s.set_nodelay(true);
                    match s.try_clone() {
                        Ok(r) => {
                            if let Err(e) = me.serve(Box::new(r), Box::new(s), Peer::me()) {
                                tracing::warn!("9P: cannot serve a connection: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("9P: cannot serve a connection: {e}"),
                    }
                }
            })
    }

    fn unique(&self) -> u64 {
        self.next_unique.fetch_add(1, Ordering::Relaxed)
    }

    /// A user's name for stat (its number when it has none).
    fn user_name(&self, uid: u32) -> String {
        if let Some(n) = self.names.lock().get(&uid) {
            return n.clone();
        }
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name);
        self.names.lock().insert(uid, name.clone());
        name
    }

    /// A group's name for stat (its number when it has none).
    fn group_name(&self, gid: u32) -> String {
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .ok()
            .flatten()
            .map_or_else(|| gid.to_string(), |g| g.name)
    }

    fn stat_of(&self, attr: &Attr, name: &str) -> Stat {
        let secs = attr
            .time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().min(u32::MAX as u64) as u32);
        Stat {
            ty: 0,
            dev: 0,
            qid: qid_of(attr),
            mode: u32::from(attr.perm) | if attr.dir { DMDIR } else { 0 },
            atime: secs,
            mtime: secs,
            length: attr.size,
            name: name.to_owned(),
            uid: self.user_name(attr.uid),
            gid: self.group_name(attr.gid),
            muid: String::new(),
        }
    }
}

fn qid_of(attr: &Attr) -> Qid {
    Qid {
        ty: if attr.dir { QTDIR } else { QTFILE },
        version: 0,
        path: attr.ino,
    }
}

/// The `Rerror` text of an errno: its `strerror` text, and "interrupted" for `EINTR`.
pub fn ename(e: Errno) -> String {
    if e == Errno::EINTR {
        INTERRUPTED.into()
    } else {
        e.message().into()
    }
}

/// The replies waiting to be written on a connection. The connection's reader writes the
/// replies it makes itself, at once, after each request (no thread switch on the common
/// path); replies made elsewhere (a parked request completed by another thread) are written
/// by the connection's writer thread, so that no thread of another connection ever waits
/// on this one's socket. Both write under one lock, taking the frames in order.
struct Out {
    /// Bytes of replies (queued or promised) past which reads wait and the reader stops.
    max: usize,
    q: Mutex<OutQ>,
    ready: Condvar,
    room: Condvar,
    writer: Mutex<Option<Box<dyn Write + Send>>>,
}

struct OutQ {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Bytes promised to reads about to take data from their socket.
    reserved: usize,
    /// Reads waiting for room.
    waiting: Vec<Waker>,
    closed: bool,
}

std::thread_local! {
    /// The connection whose reader runs on this thread (0: none).
    static READER_OF: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// At most this much is written in one system call.
const BATCH: usize = 256 << 10;

impl Out {
    fn new(w: Box<dyn Write + Send>, max: usize) -> Out {
        Out {
            max,
            q: Mutex::new(OutQ {
                frames: VecDeque::new(),
                bytes: 0,
                reserved: 0,
                waiting: Vec::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            writer: Mutex::new(Some(w)),
        }
    }

    /// Queues a frame; `wake` the writer thread for it (else the caller flushes).
    fn push(&self, frame: Vec<u8>, wake: bool) {
        let mut q = self.q.lock();
        if q.closed {
            return;
        }
        q.bytes += frame.len();
        q.frames.push_back(frame);
        drop(q);
        if wake {
            self.ready.notify_one();
        }
    }

    /// Takes the next frames to write, up to [`BATCH`] bytes (nothing once closed).
    fn batch(&self) -> Vec<u8> {
        let mut q = self.q.lock();
        let waiting = core::mem::take(&mut q.waiting);
        let batch = Self::pop(&mut q);
        drop(q);
        // They look again, and wait again if there is still no room.
        for w in waiting {
            w.wake();
        }
        batch
    }

    fn pop(q: &mut OutQ) -> Vec<u8> {
        let mut batch: Vec<u8> = Vec::new();
        while let Some(f) = q.frames.pop_front() {
            q.bytes -= f.len();
            if batch.is_empty() {
                batch = f;
            } else {
                batch.extend_from_slice(&f);
            }
            if batch.len() >= BATCH {
                break;
            }
        }
        batch
    }

    /// Writes what is queued, here, unless the writer thread is writing (it then takes the
    /// rest after its write).
    fn flush_here(&self) {
        let Some(mut w) = self.writer.try_lock() else {
            self.ready.notify_one();
            return;
        };
        loop {
            let batch = self.batch();
            if batch.is_empty() {
                break;
            }
            if !Self::write(&mut w, &batch) {
                drop(w);
                self.close();
                return;
            }
        }
        drop(w);
        self.room.notify_all();
    }

    fn write(w: &mut Option<Box<dyn Write + Send>>, batch: &[u8]) -> bool {
        match w {
            Some(w) => w.write_all(batch).and_then(|()| w.flush()).is_ok(),
            None => false,
        }
    }

    /// Waits while too many reply bytes wait for the writer (the client is not reading).
    fn wait_for_room(&self) {
        let mut q = self.q.lock();
        while !q.closed && q.bytes > self.max {
            self.room.wait(&mut q);
        }
    }

    /// Promises room for a reply of up to `n` bytes, or registers `cx` to be woken when
    /// replies have been written. A read takes data from its socket only once it has room
    /// for the reply, so a client that does not read its replies leaves the data in the
    /// sockets (counted against their owners) rather than in this queue: at most `max`
    /// bytes, plus one reply, wait here.
    fn poll_reserve(&self, n: usize, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.q.lock();
        let used = q.bytes + q.reserved;
        if q.closed || used == 0 || used + n <= self.max {
            q.reserved += n;
            return Poll::Ready(());
        }
        q.waiting.push(cx.waker().clone());
        Poll::Pending
    }

    /// Gives back a promise of [`poll_reserve`](Self::poll_reserve) (its reply is queued,
    /// or there will be none).
    fn unreserve(&self, n: usize) {
        let mut q = self.q.lock();
        q.reserved = q.reserved.saturating_sub(n);
        let waiting = core::mem::take(&mut q.waiting);
        drop(q);
        for w in waiting {
            w.wake();
        }
    }

    fn close(&self) {
        let waiting = {
            let mut q = self.q.lock();
            q.closed = true;
            core::mem::take(&mut q.waiting)
        };
        for w in waiting {
            w.wake();
        }
        self.ready.notify_all();
        self.room.notify_all();
    }

    /// The writer thread: writes the frames others queued, until closed.
    fn run(&self) {
        loop {
            {
                let mut q = self.q.lock();
                while q.frames.is_empty() && !q.closed {
                    self.ready.wait(&mut q);
                }
                if q.frames.is_empty() && q.closed {
                    break;
                }
            }
            let mut w = self.writer.lock();
            let batch = self.batch();
            if batch.is_empty() {
                continue;
            }
            let ok = Self::write(&mut w, &batch);
            drop(w);
            self.room.notify_all();
            if !ok {
                self.close();
                break;
            }
        }
        // The connection's end: the writing side goes too (a socket's peer sees it).
        self.writer.lock().take();
    }
}

/// What an open fid holds.
enum Opened {
    File(Arc<Handle>),
    Dir(DirRead),
}

/// A directory being read: the entries encoded and not yet given, and where the listing
/// resumes.
struct DirRead {
    /// The offset the next read must ask for (9P reads directories in order).
    offset: u64,
    /// Encoded stats not yet returned.
    pending: VecDeque<Vec<u8>>,
    cookie: u64,
    eof: bool,
}

struct Fid {
    ino: u64,
    /// The last name walked ("/" for an attach).
    name: String,
    /// The attach it was walked from.
    session: u64,
    /// Whether it is the attach's own fid (clunking it ends the attach).
    root: bool,
    open: Option<Opened>,
    /// The executor id of an open under way on it (an `accept` waiting, say).
    opening: Option<u64>,
}

/// A request in flight.
struct Pending {
    unique: u64,
    /// Tags of the `Tflush`es waiting for it to be answered.
    flushes: Vec<u16>,
}

struct State {
    msize: u32,
    versioned: bool,
    fids: HashMap<u32, Fid>,
    tags: HashMap<u16, Pending>,
    sessions: HashSet<u64>,
}

impl State {
    fn new() -> State {
        State {
            msize: MAX_MSIZE,
            versioned: false,
            fids: HashMap::new(),
            tags: HashMap::new(),
            sessions: HashSet::new(),
        }
    }
}

struct Conn {
    id: u64,
    server: Arc<Server>,
    cred: Cred,
    out: Out,
    state: Mutex<State>,
}

type Reply = Result<Fcall, Errno>;

/// Why a connection ends.
type End = String;

impl Conn {
    fn send(&self, tag: u16, f: &Fcall) {
        let mut v = Vec::new();
        f.encode(tag, &mut v);
        // The reader writes its own replies after each request; others wake the writer.
        let on_reader = READER_OF.with(|r| r.get()) == self.id;
        self.out.push(v, !on_reader);
    }

    fn reply(&self, tag: u16, r: Reply) {
        match r {
            Ok(f) => self.send(tag, &f),
            Err(e) => self.send(tag, &Fcall::Rerror { ename: ename(e) }),
        }
    }

    fn error(&self, tag: u16, msg: impl Into<String>) {
        self.send(tag, &Fcall::Rerror { ename: msg.into() });
    }

    /// Reads and handles messages until the connection ends; returns why.
    fn read_loop(self: &Arc<Self>, r: Box<dyn Read + Send>) -> End {
        READER_OF.with(|c| c.set(self.id));
        let why = self.read_messages(r);
        READER_OF.with(|c| c.set(0));
        why
    }

    fn read_messages(self: &Arc<Self>, r: Box<dyn Read + Send>) -> End {
        // Buffered: a client that sends several requests at once has them read in one call,
        // and their replies written in one too.
        let mut r = io::BufReader::with_capacity(64 << 10, r);
        loop {
            self.out.wait_for_room();
            let mut head = [0u8; 4];
            if let Err(e) = r.read_exact(&mut head) {
                return if e.kind() == io::ErrorKind::UnexpectedEof {
                    "the peer closed it".into()
                } else {
                    format!("read failed: {e}")
                };
            }
            let size = proto::frame_len(head);
            let limit = {
                let st = self.state.lock();
                if st.versioned {
                    st.msize
                } else {
                    self.server.config.max_msize
                }
            };
            if size < 7 {
                return format!("malformed message: size {size} is below the 7-byte header");
            }
            if size > limit {
                return format!("message of {size} bytes is longer than msize {limit}");
            }
            let mut frame = vec![0u8; size as usize];
            frame[..4].copy_from_slice(&head);
            if let Err(e) = r.read_exact(&mut frame[4..]) {
                return format!("truncated message: {e}");
            }
            let (tag, msg) = match proto::decode(Bytes::from(frame)) {
                Ok(m) => m,
                Err(e) => return format!("malformed message: {e}"),
            };
            let done = self.handle(tag, msg);
            if r.buffer().is_empty() || done.is_err() {
                self.out.flush_here();
            }
            if let Err(why) = done {
                return why;
            }
        }
    }

    /// Handles one message; `Err` ends the connection.
    fn handle(self: &Arc<Self>, tag: u16, msg: Fcall) -> Result<(), End> {
        tracing::trace!(conn = self.id, tag, "9P: {}", msg.name());
        if let Fcall::Tversion { msize, version } = msg {
            self.version(tag, msize, &version);
            return Ok(());
        }
        if !self.state.lock().versioned {
            self.error(tag, "Tversion must come first");
            return Ok(());
        }
        match msg {
            Fcall::Tauth { .. } => self.error(tag, "authentication not required"),
            Fcall::Tattach { fid, afid, .. } => {
                let r = self.attach(fid, afid);
                self.reply(tag, r)
            }
            Fcall::Tflush { oldtag } => self.flush(tag, oldtag),
            Fcall::Twalk {
                fid,
                newfid,
                wnames,
            } => {
                let r = self.walk(fid, newfid, &wnames);
                self.reply(tag, r)
            }
            Fcall::Topen { fid, mode } => return self.open(tag, fid, mode),
            Fcall::Tcreate { .. } => self.reply(tag, Err(Errno::EACCES)),
            Fcall::Tread { fid, offset, count } => return self.read(tag, fid, offset, count),
            Fcall::Twrite { fid, offset, data } => return self.write(tag, fid, offset, data),
            Fcall::Tclunk { fid } => {
                let r = self.clunk(fid).map(|()| Fcall::Rclunk);
                self.reply(tag, r)
            }
            Fcall::Tremove { fid } => {
                // The file is not removed (sockets end by hangup or their last close), but
                // the fid is clunked, as remove(5) says even when the remove fails.
                let r = self.clunk(fid).and(Err(Errno::EACCES));
                self.reply(tag, r)
            }
            Fcall::Tstat { fid } => {
                let r = self.stat(fid);
                self.reply(tag, r)
            }
            Fcall::Twstat { fid, stat } => {
                let r = if !self.state.lock().fids.contains_key(&fid) {
                    Err(Errno::EBADF)
                } else if stat.is_dont_touch() {
                    Ok(Fcall::Rwstat)
                } else {
                    Err(Errno::EPERM)
                };
                self.reply(tag, r)
            }
            other => return Err(format!("{} is not a request", other.name())),
        }
        Ok(())
    }

    fn version(&self, tag: u16, msize: u32, version: &str) {
        // A new session: what was in flight is flushed, every fid clunked.
        self.reset();
        let msize = msize.min(self.server.config.max_msize);
        if msize < MIN_MSIZE {
            self.error(
                tag,
                format!("msize {msize} is too small (at least {MIN_MSIZE})"),
            );
            return;
        }
        let ours = version == VERSION || version.starts_with("9P2000.");
        let mut st = self.state.lock();
        st.msize = msize;
        st.versioned = ours;
        drop(st);
        let version = if ours { VERSION } else { "unknown" };
        self.send(
            tag,
            &Fcall::Rversion {
                msize,
                version: version.into(),
            },
        );
    }

    /// Flushes every request in flight and clunks every fid (a new `Tversion`, or the end).
    fn reset(&self) {
        let (uniques, fids, sessions) = {
            let mut st = self.state.lock();
            let uniques: Vec<u64> = st.tags.values().map(|p| p.unique).collect();
            st.tags.clear();
            let fids: Vec<Fid> = st.fids.drain().map(|(_, f)| f).collect();
            let sessions: Vec<u64> = st.sessions.drain().collect();
            (uniques, fids, sessions)
        };
        for u in uniques {
            self.server.exec.interrupt(u);
        }
        drop(fids);
        for s in sessions {
            self.server.netfs.process_exited(ProcId::session(s));
        }
    }

    /// The connection is gone: nothing more is written; its requests, fids and attaches end.
    fn end(&self) {
        self.out.close();
        self.reset();
    }

    fn attach(&self, fid: u32, afid: u32) -> Reply {
        if afid != NOFID {
            // There is no authentication file to attach with (Tauth is refused).
            return Err(Errno::EINVAL);
        }
        let root = self.server.netfs.getattr(Node::Root.ino())?;
        let mut st = self.state.lock();
        if st.fids.contains_key(&fid) {
            return Err(Errno::EBADF);
        }
        if st.fids.len() >= self.server.config.max_fids {
            return Ok(self.too_many_fids());
        }
        let session = self.server.next_session.fetch_add(1, Ordering::Relaxed);
        st.sessions.insert(session);
        st.fids.insert(
            fid,
            Fid {
                ino: root.ino,
                name: "/".into(),
                session,
                root: true,
                open: None,
                opening: None,
            },
        );
        Ok(Fcall::Rattach { qid: qid_of(&root) })
    }

    /// The answer to a walk or attach past the fid limit.
    fn too_many_fids(&self) -> Fcall {
        Fcall::Rerror {
            ename: format!(
                "too many fids (at most {} on one connection)",
                self.server.config.max_fids
            ),
        }
    }

    fn flush(&self, tag: u16, oldtag: u16) {
        let unique = {
            let mut st = self.state.lock();
            match st.tags.get_mut(&oldtag) {
                Some(p) if oldtag != tag => {
                    p.flushes.push(tag);
                    Some(p.unique)
                }
                _ => {
                    drop(st);
                    self.send(tag, &Fcall::Rflush);
                    None
                }
            }
        };
        if let Some(u) = unique {
            self.server.exec.interrupt(u);
        }
    }

    fn walk(&self, fid: u32, newfid: u32, names: &[String]) -> Reply {
        let (mut ino, session, mut name) = {
            let st = self.state.lock();
            let f = st.fids.get(&fid).ok_or(Errno::EBADF)?;
            if f.open.is_some() || f.opening.is_some() {
                return Err(Errno::EBADF);
            }
            if newfid != fid && st.fids.contains_key(&newfid) {
                return Err(Errno::EBADF);
            }
            if newfid != fid && st.fids.len() >= self.server.config.max_fids {
                return Ok(self.too_many_fids());
            }
            (f.ino, f.session, f.name.clone())
        };
        let fs = &self.server.netfs;
        let mut qids = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            let step = (|| {
                let here = fs.getattr(ino)?;
                if !here.dir {
                    return Err(Errno::ENOTDIR);
                }
                fs.access(ino, Access::EXEC, &self.cred)?;
                match n.as_str() {
                    ".." => fs.getattr(fs.parent(here.node)),
                    "." => Ok(here),
                    _ => fs.lookup(ino, n.as_bytes(), &self.cred),
                }
            })();
            match step {
                Ok(a) => {
                    ino = a.ino;
                    qids.push(qid_of(&a));
                    name = if n == ".." || n == "." {
                        name
                    } else {
                        n.clone()
                    };
                }
                Err(e) if i == 0 => return Err(e),
                Err(_) => return Ok(Fcall::Rwalk { wqids: qids }),
            }
        }
        let mut st = self.state.lock();
        // The fid may have been clunked meanwhile by nobody else (one reader), but keep
        // the rule: a walk that moves an existing fid replaces it.
        if newfid == fid {
            if let Some(f) = st.fids.get_mut(&fid) {
                f.ino = ino;
                f.name = name;
            }
        } else {
            st.fids.insert(
                newfid,
                Fid {
                    ino,
                    name,
                    session,
                    root: false,
                    open: None,
                    opening: None,
                },
            );
        }
        Ok(Fcall::Rwalk { wqids: qids })
    }

    fn stat(&self, fid: u32) -> Reply {
        let (ino, name) = {
            let st = self.state.lock();
            let f = st.fids.get(&fid).ok_or(Errno::EBADF)?;
            (f.ino, f.name.clone())
        };
        let attr = self.server.netfs.getattr(ino)?;
        Ok(Fcall::Rstat {
            stat: self.server.stat_of(&attr, &name),
        })
    }

    fn clunk(&self, fid: u32) -> Result<(), Errno> {
        let f = self.state.lock().fids.remove(&fid).ok_or(Errno::EBADF)?;
        if let Some(u) = f.opening {
            self.server.exec.interrupt(u);
        }
        if f.root {
            self.state.lock().sessions.remove(&f.session);
            self.server.netfs.process_exited(ProcId::session(f.session));
        }
        drop(f);
        Ok(())
    }

    /// Registers a request that may wait; `Err` if the tag is in flight already (the
    /// connection ends) or too many are.
    fn begin(&self, tag: u16) -> Result<Option<u64>, End> {
        let mut st = self.state.lock();
        if st.tags.contains_key(&tag) {
            return Err(format!("tag {tag} reused while its request is in flight"));
        }
        if st.tags.len() >= self.server.config.max_tags {
            drop(st);
            self.error(
                tag,
                format!(
                    "too many requests in flight (at most {} on one connection)",
                    self.server.config.max_tags
                ),
            );
            return Ok(None);
        }
        let unique = self.server.unique();
        st.tags.insert(
            tag,
            Pending {
                unique,
                flushes: Vec::new(),
            },
        );
        Ok(Some(unique))
    }

    /// Answers a request that was in flight, then the flushes waiting for it.
    fn complete(&self, tag: u16, unique: u64, r: Reply) {
        let mut st = self.state.lock();
        let flushes = match st.tags.get(&tag) {
            Some(p) if p.unique == unique => st.tags.remove(&tag).map(|p| p.flushes),
            // Flushed by a new Tversion, or the connection ended: nobody waits for it.
            _ => return,
        };
        self.reply(tag, r);
        for f in flushes.into_iter().flatten() {
            self.send(f, &Fcall::Rflush);
        }
        drop(st);
    }

    fn open(self: &Arc<Self>, tag: u16, fid: u32, mode: u8) -> Result<(), End> {
        let prep = (|| {
            let st = self.state.lock();
            let f = st.fids.get(&fid).ok_or(Errno::EBADF)?;
            if f.open.is_some() || f.opening.is_some() {
                return Err(Errno::EBADF);
            }
            if mode & ORCLOSE != 0 {
                return Err(Errno::EPERM);
            }
            Ok((f.ino, f.session, st.msize))
        })();
        let (ino, session, msize) = match prep {
            Ok(v) => v,
            Err(e) => {
                self.reply(tag, Err(e));
                return Ok(());
            }
        };
        let fs = &self.server.netfs;
        let attr = match fs.getattr(ino) {
            Ok(a) => a,
            Err(e) => {
                self.reply(tag, Err(e));
                return Ok(());
            }
        };
        let iounit = msize - IOHDRSZ;
        let om = match mode & 3 {
            OWRITE => OpenMode::WRITE,
            ORDWR => OpenMode::RDWR,
            // OREAD, and OEXEC (read access).
            _ => OpenMode::READ,
        };
        if attr.dir {
            let r = if om.write {
                Err(Errno::EISDIR)
            } else {
                fs.access(ino, Access::READ, &self.cred).map(|()| {
                    if let Some(f) = self.state.lock().fids.get_mut(&fid) {
                        f.open = Some(Opened::Dir(DirRead {
                            offset: 0,
                            pending: VecDeque::new(),
                            cookie: 0,
                            eof: false,
                        }));
                    }
                    Fcall::Ropen {
                        qid: qid_of(&attr),
                        iounit,
                    }
                })
            };
            self.reply(tag, r);
            return Ok(());
        }
        let Some(unique) = self.begin(tag)? else {
            return Ok(());
        };
        // While it is under way, the fid can be neither opened again nor walked; a clunk
        // interrupts it (a waiting accept then leaves its connection queued).
        if let Some(f) = self.state.lock().fids.get_mut(&fid) {
            f.opening = Some(unique);
        }
        let fut = fs.open_for(ino, om, self.cred, Some(ProcId::session(session)));
        let me = self.clone();
        let qid = qid_of(&attr);
        self.server
            .exec
            .spawn(unique, fut, move |r: ksock::Result<Arc<Handle>>| {
                let mut closed = None;
                let mut st = me.state.lock();
                let live = st.sessions.contains(&session);
                // The fid this open is for (not a later one with the same number).
                let f = st.fids.get_mut(&fid).filter(|f| f.opening == Some(unique));
                let r = match (r, f) {
                    (Ok(h), Some(f)) => {
                        f.opening = None;
                        f.open = Some(Opened::File(h));
                        Ok(Fcall::Ropen { qid, iounit })
                    }
                    (r, Some(f)) => {
                        f.opening = None;
                        r.map(|_| Fcall::Ropen { qid, iounit })
                    }
                    // Clunked as the open completed: the file closes now (below, with the
                    // lock released).
                    (Ok(h), None) => {
                        closed = Some(h);
                        Err(Errno::EBADF)
                    }
                    (Err(e), None) => Err(e),
                };
                drop(st);
                drop(closed);
                if !live {
                    // Its attach ended while the open ran: what it made must not outlive it.
                    me.server.netfs.process_exited(ProcId::session(session));
                }
                me.complete(tag, unique, r);
            });
        Ok(())
    }

    fn read(self: &Arc<Self>, tag: u16, fid: u32, offset: u64, count: u32) -> Result<(), End> {
        let mut st = self.state.lock();
        let msize = st.msize;
        let count = count.min(msize - IOHDRSZ) as usize;
        let Some(f) = st.fids.get_mut(&fid) else {
            drop(st);
            self.reply(tag, Err(Errno::EBADF));
            return Ok(());
        };
        let h = match &mut f.open {
            None => {
                drop(st);
                self.reply(tag, Err(Errno::EBADF));
                return Ok(());
            }
            Some(Opened::Dir(d)) => {
                let ino = f.ino;
                let r = self.read_dir(ino, d, offset, count);
                drop(st);
                self.reply(tag, r);
                return Ok(());
            }
            Some(Opened::File(h)) => h.clone(),
        };
        drop(st);
        if h.seekable() {
            let data = h.read_at(offset, count);
            self.send(tag, &Fcall::Rread { data });
            return Ok(());
        }
        let Some(unique) = self.begin(tag)? else {
            return Ok(());
        };
        let reserved = Arc::new(AtomicBool::new(false));
        let fut = self.gated_read(h, count, reserved.clone());
        let me = self.clone();
        self.server
            .exec
            .spawn(unique, fut, move |r: ksock::Result<Bytes>| {
                me.complete(tag, unique, r.map(|data| Fcall::Rread { data }));
                if reserved.load(Ordering::Acquire) {
                    me.out.unreserve(count);
                }
            });
        Ok(())
    }

    /// A read of `data` that takes data from the socket only once there is room for its
    /// reply ([`Out::poll_reserve`]); `reserved` says whether it holds a promise. Other
    /// files' reads never wait, and a nonblocking handle's read is tried at once.
    fn gated_read(
        self: &Arc<Self>,
        h: Arc<Handle>,
        count: usize,
        reserved: Arc<AtomicBool>,
    ) -> impl Future<Output = ksock::Result<Bytes>> + Send + 'static {
        let me = self.clone();
        async move {
            if h.kind() != HandleKind::Data {
                return h.read(count, false).await;
            }
            let nb = h.is_nonblocking();
            poll_fn(|cx| me.out.poll_reserve(count, cx)).await;
            reserved.store(true, Ordering::Release);
            match h.read(count, true).await {
                Err(Errno::EAGAIN) if !nb => {}
                // Data, end of file, or an error the read meets at once.
                r => return r,
            }
            // Nothing yet: no promise while waiting for the socket to become readable.
            reserved.store(false, Ordering::Release);
            me.out.unreserve(count);
            let readable = Events::IN | Events::ERR | Events::HUP | Events::RDHUP | Events::NVAL;
            poll_fn(|cx| {
                if h.poll_ready(Some(cx), readable).intersects(readable) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            poll_fn(|cx| me.out.poll_reserve(count, cx)).await;
            reserved.store(true, Ordering::Release);
            // Should another reader have taken the data meanwhile, this one waits again,
            // holding its promise (one reply's worth).
            h.read(count, false).await
        }
    }

    fn read_dir(&self, ino: u64, d: &mut DirRead, offset: u64, count: usize) -> Reply {
        if offset == 0 {
            d.offset = 0;
            d.pending.clear();
            d.cookie = 0;
            d.eof = false;
        } else if offset != d.offset {
            return Err(Errno::EINVAL);
        }
        let fs = &self.server.netfs;
        let mut out = Vec::new();
        loop {
            while let Some(e) = d.pending.front() {
                if out.len() + e.len() > count {
                    if out.is_empty() {
                        // Not even one entry fits: the reader's buffer is too small.
                        return Err(Errno::EINVAL);
                    }
                    d.offset += out.len() as u64;
                    return Ok(Fcall::Rread {
                        data: Bytes::from(out),
                    });
                }
                if let Some(e) = d.pending.pop_front() {
                    out.extend_from_slice(&e);
                }
            }
            if d.eof {
                break;
            }
            let entries = fs.readdir_max(ino, d.cookie, &self.cred, 64)?;
            if entries.is_empty() {
                d.eof = true;
                continue;
            }
            for e in entries {
                d.cookie = e.cookie;
                // An entry whose socket ended since the listing began is left out.
                if let Ok(a) = fs.getattr(e.node.ino()) {
                    let mut v = Vec::new();
                    self.server.stat_of(&a, &e.name).encode(&mut v);
                    d.pending.push_back(v);
                }
            }
        }
        d.offset += out.len() as u64;
        Ok(Fcall::Rread {
            data: Bytes::from(out),
        })
    }

    fn write(self: &Arc<Self>, tag: u16, fid: u32, _offset: u64, data: Bytes) -> Result<(), End> {
        let h = {
            let st = self.state.lock();
            match st.fids.get(&fid).map(|f| &f.open) {
                Some(Some(Opened::File(h))) => Ok(h.clone()),
                Some(Some(Opened::Dir(_))) => Err(Errno::EISDIR),
                _ => Err(Errno::EBADF),
            }
        };
        let h = match h {
            Ok(h) => h,
            Err(e) => {
                self.reply(tag, Err(e));
                return Ok(());
            }
        };
        let Some(unique) = self.begin(tag)? else {
            return Ok(());
        };
        let sent = Arc::new(AtomicUsize::new(0));
        let fut = h.write_counted(data, false, sent.clone());
        let me = self.clone();
        self.server
            .exec
            .spawn(unique, fut, move |r: ksock::Result<usize>| {
                let r = match r {
                    // A stream write flushed part way: the part sent is the answer.
                    Err(Errno::EINTR) if sent.load(Ordering::Acquire) > 0 => {
                        Ok(sent.load(Ordering::Acquire))
                    }
                    r => r,
                };
                let r = r.map(|n| Fcall::Rwrite {
                    count: n.min(u32::MAX as usize) as u32,
                });
                me.complete(tag, unique, r);
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enames_are_strerror_texts_and_a_flush_is_interrupted() {
        assert_eq!(ename(Errno::ECONNREFUSED), "Connection refused");
        assert_eq!(ename(Errno::EINTR), "interrupted");
    }
}
