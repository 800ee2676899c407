//! A 9P2000 client: requests multiplexed by tag over one connection, cancelled with
//! `Tflush`.
//!
//! A [`Client`] has two threads. The reader takes the server's messages one at a time and
//! hands each to the callback of the request with its tag; the writer sends the encoded
//! requests in the order they were made, so that making a request never waits for the
//! network (a callback may make the next request of a chain at once). Callbacks run on one
//! of those two threads: they must not block, and must not call the blocking methods
//! ([`Client::call_blocking`] and the conveniences built on it), which refuse with
//! `EDEADLK` there.
//!
//! Tags come from a pool (never [`NOTAG`], which only `Tversion` uses); fids are the
//! client's to allocate ([`Client::alloc_fid`]), and the conveniences free them when the
//! server forgets them. A request is cancelled with [`Call::flush`], by
//! flush(5)'s rules: its tag stays in use until the `Rflush`; if the request's own answer
//! comes first, the callback gets it, else the callback gets `EINTR`.
//!
//! An `Rerror` reaches the callback as `Err(errno)`: the error text of a ksock server is
//! the Linux message of the errno (`"Connection refused"`), mapped back by [`errno_of`].
//! When the connection ends (the server closed it, sent a message that cannot be decoded,
//! or [`Client::close`]), every pending request gets `EIO`, and so does every later one, at
//! once.

use crate::proto::{self, DecodeError, Fcall, IOHDRSZ, MAXWELEM, NOFID, NOTAG, Qid, Stat};
use crate::transport::{self, Addr, Conn};
use bytes::Bytes;
use ksock::Errno;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::{self, ThreadId};
use std::time::Duration;

/// The message size asked for when none is given: 64 KiB.
pub const DEFAULT_MSIZE: u32 = 64 * 1024;

/// The smallest message size accepted from a server: room for a stat and some data.
pub const MIN_MSIZE: u32 = 512;

/// How long [`Client::new`] waits for the server's `Rversion`.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// What a request's callback gets: the server's answer, or the errno of its `Rerror`, or
/// `EINTR` (flushed), or `EIO` (the connection ended).
pub type Reply = Result<Fcall, Errno>;

type Done = Box<dyn FnOnce(Reply) + Send + 'static>;

/// The errno of a 9P error text.
///
/// A ksock server sends the C library's message for an errno (`"No such file or
/// directory"`), `"interrupted"` for `EINTR`; a few other forms are understood: an errno's
/// name with or without a message (`"ECONNREFUSED: Connection refused"`), Plan 9's common
/// texts (`"file does not exist"`, `"permission denied"`), and the protocol errors of a
/// server (`"unknown fid"` is `EBADF`). Anything else is `EIO`.
pub fn errno_of(ename: &str) -> Errno {
    let text = ename.trim();
    if let Some(&e) = messages().get(text) {
        return e;
    }
    // "ENAME" or "ENAME: message".
    let head = text.split(':').next().unwrap_or_default().trim();
    if head.starts_with('E')
        && let Some(e) = Errno::from_name(head)
    {
        return e;
    }
    // "message: details", as some servers add context after the message.
    if let Some((m, _)) = text.split_once(':')
        && let Some(&e) = messages().get(m.trim())
    {
        return e;
    }
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "interrupted" | "flushed" => return Errno::EINTR,
        "file does not exist" | "file not found" | "no such file" => return Errno::ENOENT,
        "permission denied" => return Errno::EACCES,
        "file already exists" => return Errno::EEXIST,
        "not a directory" => return Errno::ENOTDIR,
        "is a directory" => return Errno::EISDIR,
        "authentication not required" => return Errno::EPERM,
        _ => {}
    }
    if lower.contains("fid") && (lower.contains("unknown") || lower.contains("in use")) {
        return Errno::EBADF;
    }
    if lower.contains("too many") {
        return if lower.contains("tag") || lower.contains("request") {
            Errno::EAGAIN
        } else {
            Errno::EMFILE
        };
    }
    Errno::EIO
}

/// The Linux messages of errnos 1 to 133, to the errno (the lowest number for a message
/// that two share).
fn messages() -> &'static HashMap<&'static str, Errno> {
    static TABLE: OnceLock<HashMap<&'static str, Errno>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = HashMap::new();
        for n in 1..=133 {
            let e = Errno::from_raw(n);
            if e.name() != "E?" {
                m.entry(e.message()).or_insert(e);
            }
        }
        m
    })
}

/// A request made with [`Client::call`], to cancel it.
#[derive(Clone)]
pub struct Call {
    inner: Arc<Inner>,
    tag: u16,
    seq: u64,
}

impl Call {
    /// The request's tag.
    pub fn tag(&self) -> u16 {
        self.tag
    }

    /// Cancels the request (`Tflush`), unless it has been answered. Its callback then gets
    /// its own answer, if the server sends it before the `Rflush`, or `EINTR`. Flushing
    /// twice, or after the answer, does nothing.
    pub fn flush(&self) {
        self.inner.flush(self.tag, self.seq);
    }
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").field("tag", &self.tag).finish()
    }
}

enum Pending {
    /// A request: its callback until answered, and whether a flush of it is under way
    /// (then its tag stays in use until the `Rflush`, even once answered).
    Request {
        seq: u64,
        done: Option<Done>,
        flushing: bool,
    },
    /// A `Tflush` of `oldtag`.
    Flush { oldtag: u16 },
}

struct State {
    pending: HashMap<u16, Pending>,
    free_tags: Vec<u16>,
    next_tag: u16,
    seq: u64,
    free_fids: Vec<u32>,
    next_fid: u32,
    fids_out: usize,
    /// Set once the connection has ended.
    dead: Option<Errno>,
}

impl State {
    fn alloc_tag(&mut self) -> Option<u16> {
        if let Some(t) = self.free_tags.pop() {
            return Some(t);
        }
        if self.next_tag == NOTAG {
            return None;
        }
        let t = self.next_tag;
        self.next_tag += 1;
        Some(t)
    }
}

/// What the writer thread does next.
enum Out {
    /// Writes the queued messages.
    Wake,
    /// Runs a callback (one that must not run on the thread that made the request).
    Run(Box<dyn FnOnce() + Send>),
}

/// The messages waiting to be written, in the order their tags were taken, and the socket's
/// writing side. A thread that is not the client's own writes what is queued at once, after
/// its request is registered (no thread switch); the client's own threads (the reader, whose
/// callbacks may send, and the writer) leave it to the writer thread, so that the reader
/// never waits on the socket.
struct Wire {
    queue: Mutex<Vec<Vec<u8>>>,
    writer: Mutex<Option<BufWriter<Box<dyn Write + Send>>>>,
}

struct Inner {
    state: Mutex<State>,
    closed: Condvar,
    wire: Wire,
    tx: Mutex<Option<mpsc::Sender<Out>>>,
    msize: Mutex<u32>,
    closer: Option<Box<dyn Fn() + Send + Sync>>,
    threads: Mutex<Vec<ThreadId>>,
}

impl Inner {
    /// Runs `f` on the writer thread (or, once the client is closed, a thread of its own).
    fn defer(&self, f: Box<dyn FnOnce() + Send>) {
        let f = match &*self.tx.lock() {
            Some(tx) => match tx.send(Out::Run(f)) {
                Ok(()) => return,
                Err(mpsc::SendError(Out::Run(f))) => f,
                Err(_) => return,
            },
            None => f,
        };
        let _ = thread::Builder::new().name("ksock-9p-late".into()).spawn(f);
    }

    /// Queues a message (call under the state lock, so that messages leave in the order
    /// their tags were taken); [`kick`](Self::kick) sends it.
    fn send(&self, msg: Vec<u8>) {
        self.wire.queue.lock().push(msg);
    }

    /// Sends what is queued: here, unless this is one of the client's own threads or the
    /// writer thread is writing, else through the writer thread.
    fn kick(&self) {
        if !self.on_own_thread()
            && let Some(mut w) = self.wire.writer.try_lock()
        {
            if w.is_some() && !self.write_queued(&mut w) {
                w.take();
                drop(w);
                self.die(Errno::EIO);
            }
            return;
        }
        if let Some(tx) = &*self.tx.lock() {
            let _ = tx.send(Out::Wake);
        }
    }

    /// Writes every queued message (with the writer's lock held); false if writing failed.
    fn write_queued(&self, w: &mut Option<BufWriter<Box<dyn Write + Send>>>) -> bool {
        let Some(w) = w.as_mut() else {
            return false;
        };
        loop {
            let msgs = std::mem::take(&mut *self.wire.queue.lock());
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                if let Err(e) = w.write_all(&m) {
                    tracing::debug!(target: "ksock", error = %e, "9P write failed");
                    return false;
                }
            }
        }
        if let Err(e) = w.flush() {
            tracing::debug!(target: "ksock", error = %e, "9P write failed");
            return false;
        }
        true
    }

    fn call(self: &Arc<Self>, f: &Fcall, done: Done) -> Call {
        let mut st = self.state.lock();
        let tag = match st.dead {
            Some(e) => Err(e),
            None => st.alloc_tag().ok_or(Errno::EAGAIN),
        };
        let tag = match tag {
            Ok(t) => t,
            Err(e) => {
                drop(st);
                self.defer(Box::new(move || done(Err(e))));
                return Call {
                    inner: self.clone(),
                    tag: NOTAG,
                    seq: 0,
                };
            }
        };
        st.seq += 1;
        let seq = st.seq;
        st.pending.insert(
            tag,
            Pending::Request {
                seq,
                done: Some(done),
                flushing: false,
            },
        );
        let mut msg = Vec::new();
        f.encode(tag, &mut msg);
        // Queued under the lock, so that messages leave in the order their tags were taken
        // (a flush after its request).
        self.send(msg);
        drop(st);
        self.kick();
        Call {
            inner: self.clone(),
            tag,
            seq,
        }
    }

    fn flush(&self, tag: u16, seq: u64) {
        let mut st = self.state.lock();
        if st.dead.is_some() {
            return;
        }
        match st.pending.get_mut(&tag) {
            Some(Pending::Request {
                seq: s,
                done: Some(_),
                flushing,
            }) if *s == seq && !*flushing => *flushing = true,
            _ => return,
        }
        let Some(ftag) = st.alloc_tag() else {
            // No tag for the flush: the request goes on, as if flushed too late.
            if let Some(Pending::Request { flushing, .. }) = st.pending.get_mut(&tag) {
                *flushing = false;
            }
            return;
        };
        st.pending.insert(ftag, Pending::Flush { oldtag: tag });
        self.send(Fcall::Tflush { oldtag: tag }.to_bytes(ftag));
        drop(st);
        self.kick();
    }

    /// One message from the server.
    fn dispatch(&self, tag: u16, f: Fcall) {
        let mut st = self.state.lock();
        let done = match st.pending.get_mut(&tag) {
            None => {
                tracing::debug!(target: "ksock", tag, msg = f.name(), "9P reply to no request");
                return;
            }
            Some(Pending::Request { done, flushing, .. }) => {
                let d = done.take();
                if !*flushing {
                    st.pending.remove(&tag);
                    if tag != NOTAG {
                        st.free_tags.push(tag);
                    }
                }
                d.map(|d| (d, result(f)))
            }
            Some(Pending::Flush { oldtag }) => {
                let oldtag = *oldtag;
                st.pending.remove(&tag);
                st.free_tags.push(tag);
                match st.pending.remove(&oldtag) {
                    Some(Pending::Request { done, .. }) => {
                        st.free_tags.push(oldtag);
                        done.map(|d| (d, Err(Errno::EINTR)))
                    }
                    Some(other) => {
                        st.pending.insert(oldtag, other);
                        None
                    }
                    None => None,
                }
            }
        };
        drop(st);
        if let Some((d, r)) = done {
            d(r);
        }
    }

    /// Ends the connection: every pending request, and every later one, fails with `e`.
    fn die(&self, e: Errno) {
        let dones: Vec<Done> = {
            let mut st = self.state.lock();
            if st.dead.is_some() {
                return;
            }
            st.dead = Some(e);
            let all: Vec<Done> = st
                .pending
                .drain()
                .filter_map(|(_, p)| match p {
                    Pending::Request { done, .. } => done,
                    Pending::Flush { .. } => None,
                })
                .collect();
            self.closed.notify_all();
            all
        };
        if let Some(c) = &self.closer {
            c();
        }
        for d in dones {
            self.defer(Box::new(move || d(Err(e))));
        }
    }

    fn on_own_thread(&self) -> bool {
        self.threads.lock().contains(&thread::current().id())
    }
}

/// A server's answer as a result: an `Rerror` is its errno.
fn result(f: Fcall) -> Reply {
    match f {
        Fcall::Rerror { ename } => Err(errno_of(&ename)),
        f => Ok(f),
    }
}

fn unexpected(f: &Fcall) -> Errno {
    tracing::debug!(target: "ksock", msg = f.name(), "unexpected 9P reply");
    Errno::EIO
}

/// A connection to a 9P2000 server.
pub struct Client {
    inner: Arc<Inner>,
    msize: u32,
    /// The command behind an `exec:` address, killed when the client is dropped.
    _conn: Mutex<Option<Conn>>,
}

impl Client {
    /// Starts a session on `conn` (`Tversion`, asking for `msize` bytes per message; the
    /// server may give fewer).
    pub fn new(conn: Conn, msize: u32) -> io::Result<Arc<Client>> {
        Self::start(conn, msize, None)
    }

    /// Connects to `addr` and starts a session.
    pub fn connect(addr: &Addr, msize: u32) -> io::Result<Arc<Client>> {
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}"));
        match addr {
            Addr::Unix(p) => Self::from_unix(UnixStream::connect(p).map_err(ctx)?, msize),
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a).map_err(ctx)?;
                s.set_nodelay(true)?;
                let closer = s.try_clone()?;
                let conn = Conn {
                    reader: Box::new(s.try_clone()?),
                    writer: Box::new(s),
                    child: None,
                };
                Self::start(
                    conn,
                    msize,
                    Some(Box::new(move || {
                        let _ = closer.shutdown(Shutdown::Both);
                    })),
                )
            }
            Addr::Exec(_) => Self::new(transport::connect(addr)?, msize),
        }
    }

    /// Starts a session on a connected Unix socket (closing the client shuts it down).
    pub fn from_unix(s: UnixStream, msize: u32) -> io::Result<Arc<Client>> {
        let closer = s.try_clone()?;
        let conn = Conn {
            reader: Box::new(s.try_clone()?),
            writer: Box::new(s),
            child: None,
        };
        Self::start(
            conn,
            msize,
            Some(Box::new(move || {
                let _ = closer.shutdown(Shutdown::Both);
            })),
        )
    }

    fn start(
        mut conn: Conn,
        msize: u32,
        closer: Option<Box<dyn Fn() + Send + Sync>>,
    ) -> io::Result<Arc<Client>> {
        let msize = msize.max(MIN_MSIZE);
        let reader = std::mem::replace(&mut conn.reader, Box::new(io::empty()));
        let writer = std::mem::replace(&mut conn.writer, Box::new(io::sink()));
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                pending: HashMap::new(),
                free_tags: Vec::new(),
                next_tag: 0,
                seq: 0,
                free_fids: Vec::new(),
                next_fid: 0,
                fids_out: 0,
                dead: None,
            }),
            closed: Condvar::new(),
            wire: Wire {
                queue: Mutex::new(Vec::new()),
                writer: Mutex::new(Some(BufWriter::with_capacity(64 * 1024, writer))),
            },
            tx: Mutex::new(Some(tx)),
            msize: Mutex::new(msize),
            closer,
            threads: Mutex::new(Vec::new()),
        });
        let w = {
            let inner = inner.clone();
            thread::Builder::new()
                .name("ksock-9p-write".into())
                .spawn(move || write_loop(&inner, rx))?
        };
        let r = {
            let inner = inner.clone();
            thread::Builder::new()
                .name("ksock-9p-read".into())
                .spawn(move || read_loop(&inner, reader))?
        };
        inner
            .threads
            .lock()
            .extend([w.thread().id(), r.thread().id()]);
        let mut client = Client {
            inner,
            msize,
            _conn: Mutex::new(Some(conn)),
        };
        client.msize = client.version(msize)?;
        Ok(Arc::new(client))
    }

    /// `Tversion` (tag `NOTAG`), before any other request.
    fn version(&self, msize: u32) -> io::Result<u32> {
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut st = self.inner.state.lock();
            st.seq += 1;
            let seq = st.seq;
            st.pending.insert(
                NOTAG,
                Pending::Request {
                    seq,
                    done: Some(Box::new(move |r| {
                        let _ = tx.send(r);
                    })),
                    flushing: false,
                },
            );
            self.inner.send(
                Fcall::Tversion {
                    msize,
                    version: proto::VERSION.into(),
                }
                .to_bytes(NOTAG),
            );
        }
        self.inner.kick();
        let fail = |what: String| {
            self.close();
            io::Error::new(io::ErrorKind::ConnectionRefused, what)
        };
        match rx.recv_timeout(VERSION_TIMEOUT) {
            Ok(Ok(Fcall::Rversion {
                msize: got,
                version,
            })) => {
                if version != proto::VERSION {
                    return Err(fail(format!(
                        "the server speaks {version:?}, not {:?}",
                        proto::VERSION
                    )));
                }
                if got < MIN_MSIZE {
                    return Err(fail(format!(
                        "the server's message size ({got}) is below {MIN_MSIZE} bytes"
                    )));
                }
                let m = got.min(msize);
                *self.inner.msize.lock() = m;
                Ok(m)
            }
            Ok(Ok(other)) => Err(fail(format!(
                "the server answered Tversion with {}",
                other.name()
            ))),
            Ok(Err(e)) if e == Errno::EIO => Err(fail(
                "the connection ended before the server answered Tversion (is it a 9P2000 \
                 server?)"
                    .into(),
            )),
            Ok(Err(e)) => Err(fail(format!("Tversion refused: {e}"))),
            Err(_) => Err(fail(format!(
                "the server did not answer Tversion within {}s",
                VERSION_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The negotiated message size.
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// The most data one `Tread` or `Twrite` carries (`msize - IOHDRSZ`).
    pub fn max_io(&self) -> u32 {
        self.msize - IOHDRSZ
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().dead.is_some()
    }

    /// Waits until the connection ends.
    pub fn wait_closed(&self) {
        let mut st = self.inner.state.lock();
        while st.dead.is_none() {
            self.inner.closed.wait(&mut st);
        }
    }

    /// Ends the connection: pending requests and later ones fail with `EIO`.
    pub fn close(&self) {
        self.inner.die(Errno::EIO);
    }

    /// How many requests wait for their answer (flushes included).
    pub fn pending(&self) -> usize {
        self.inner.state.lock().pending.len()
    }

    /// How many fids are allocated.
    pub fn fids(&self) -> usize {
        self.inner.state.lock().fids_out
    }

    /// A fid no other request uses, until [`free_fid`](Self::free_fid).
    pub fn alloc_fid(&self) -> u32 {
        let mut st = self.inner.state.lock();
        st.fids_out += 1;
        if let Some(f) = st.free_fids.pop() {
            return f;
        }
        let f = st.next_fid;
        // NOFID is never handed out; past it (four billion fids) numbers start again at 0,
        // which only matters if all of those are still held.
        st.next_fid = match st.next_fid.wrapping_add(1) {
            NOFID => 0,
            n => n,
        };
        f
    }

    /// Returns a fid the server no longer knows (clunked, or a walk to it failed).
    pub fn free_fid(&self, fid: u32) {
        let mut st = self.inner.state.lock();
        st.fids_out = st.fids_out.saturating_sub(1);
        st.free_fids.push(fid);
    }

    /// Sends a request; `done` gets its answer (see the module's notes on callbacks).
    pub fn call(&self, f: Fcall, done: impl FnOnce(Reply) + Send + 'static) -> Call {
        self.inner.call(&f, Box::new(done))
    }

    /// Flushes the request with `tag` (as [`Call::flush`], for a tag without its [`Call`];
    /// the request must be the one that has the tag now).
    pub fn flush(&self, tag: u16) {
        let seq = match self.inner.state.lock().pending.get(&tag) {
            Some(Pending::Request { seq, .. }) => *seq,
            _ => return,
        };
        self.inner.flush(tag, seq);
    }

    /// Sends a request and waits for its answer.
    pub fn call_blocking(&self, f: Fcall) -> Reply {
        if self.inner.on_own_thread() {
            return Err(Errno::EDEADLK);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.call(f, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(Errno::EIO))
    }

    /// Sends a request and waits at most `timeout` for its answer; then flushes it and
    /// returns `ETIMEDOUT`, unless its answer came before the `Rflush` (which is returned:
    /// what it did is done).
    pub fn call_timeout(&self, f: Fcall, timeout: Duration) -> Reply {
        if self.inner.on_own_thread() {
            return Err(Errno::EDEADLK);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let call = self.call(f, move |r| {
            let _ = tx.send(r);
        });
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Errno::EIO),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                call.flush();
                match rx.recv() {
                    Ok(Err(e)) if e == Errno::EINTR => Err(Errno::ETIMEDOUT),
                    Ok(r) => r,
                    Err(_) => Err(Errno::EIO),
                }
            }
        }
    }

    /// Attaches a new fid to the root of the tree `aname` (no authentication): the fid and
    /// the root's qid.
    pub fn attach(&self, uname: &str, aname: &str) -> Result<(u32, Qid), Errno> {
        let fid = self.alloc_fid();
        match self.call_blocking(Fcall::Tattach {
            fid,
            afid: NOFID,
            uname: uname.into(),
            aname: aname.into(),
        }) {
            Ok(Fcall::Rattach { qid }) => Ok((fid, qid)),
            r => {
                self.free_fid(fid);
                Err(r.err().unwrap_or(Errno::EIO))
            }
        }
    }

    /// Walks from `fid` through `names` to a new fid: the new fid and the qids of the names.
    /// A name that is not there fails the walk with the server's error (`ENOENT` when the
    /// server stops a walk part of the way, as 9P has it), and no fid is made. More than
    /// [`MAXWELEM`] names take several walks.
    pub fn walk(&self, fid: u32, names: &[&str]) -> Result<(u32, Vec<Qid>), Errno> {
        let newfid = self.alloc_fid();
        let mut from = fid;
        let mut qids = Vec::new();
        let mut chunks: Vec<&[&str]> = names.chunks(MAXWELEM).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for chunk in chunks {
            let r = self.call_blocking(Fcall::Twalk {
                fid: from,
                newfid,
                wnames: chunk.iter().map(|s| s.to_string()).collect(),
            });
            let fail = |e: Errno| {
                if from == newfid {
                    // The first part made the fid: forget it.
                    let _ = self.clunk(newfid);
                } else {
                    self.free_fid(newfid);
                }
                Err(e)
            };
            match r {
                Ok(Fcall::Rwalk { wqids }) if wqids.len() == chunk.len() => qids.extend(wqids),
                Ok(Fcall::Rwalk { .. }) => return fail(Errno::ENOENT),
                Ok(other) => return fail(unexpected(&other)),
                Err(e) => return fail(e),
            }
            from = newfid;
        }
        Ok((newfid, qids))
    }

    /// Opens `fid` (`OREAD`, `OWRITE`, `ORDWR`, with `OTRUNC`...): its qid and iounit.
    pub fn open(&self, fid: u32, mode: u8) -> Result<(Qid, u32), Errno> {
        match self.call_blocking(Fcall::Topen { fid, mode })? {
            Fcall::Ropen { qid, iounit } => Ok((qid, iounit)),
            other => Err(unexpected(&other)),
        }
    }

    /// Reads at most `count` bytes (and at most [`max_io`](Self::max_io)) at `offset`; empty
    /// is end of file.
    pub fn read(&self, fid: u32, offset: u64, count: u32) -> Result<Bytes, Errno> {
        let count = count.min(self.max_io());
        match self.call_blocking(Fcall::Tread { fid, offset, count })? {
            Fcall::Rread { data } => Ok(data),
            other => Err(unexpected(&other)),
        }
    }

    /// Writes `data` at `offset` in one message: at most [`max_io`](Self::max_io) bytes of
    /// it. Returns the count the server took.
    pub fn write(&self, fid: u32, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let n = data.len().min(self.max_io() as usize);
        match self.call_blocking(Fcall::Twrite {
            fid,
            offset,
            data: Bytes::copy_from_slice(&data[..n]),
        })? {
            Fcall::Rwrite { count } => Ok(count),
            other => Err(unexpected(&other)),
        }
    }

    /// Forgets `fid` (the server forgets it even when it answers an error) and frees it.
    pub fn clunk(&self, fid: u32) -> Result<(), Errno> {
        let r = self.call_blocking(Fcall::Tclunk { fid });
        if !matches!(r, Err(e) if e == Errno::EDEADLK) {
            self.free_fid(fid);
        }
        match r? {
            Fcall::Rclunk => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Forgets `fid` without waiting for the answer (the fid is freed when it comes).
    pub fn clunk_async(self: &Arc<Self>, fid: u32) {
        let me = self.clone();
        self.call(Fcall::Tclunk { fid }, move |_| me.free_fid(fid));
    }

    /// The stat of `fid`.
    pub fn stat(&self, fid: u32) -> Result<Stat, Errno> {
        match self.call_blocking(Fcall::Tstat { fid })? {
            Fcall::Rstat { stat } => Ok(stat),
            other => Err(unexpected(&other)),
        }
    }

    /// Reads a whole directory from an open `fid`, from the start.
    pub fn readdir(&self, fid: u32) -> Result<Vec<Stat>, Errno> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let data = self.read(fid, offset, self.max_io())?;
            if data.is_empty() {
                return Ok(out);
            }
            offset += data.len() as u64;
            out.extend(parse_stats(&data).map_err(|_| Errno::EIO)?);
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.inner.die(Errno::EIO);
        // The writer ends when its queue is empty and closed.
        self.inner.tx.lock().take();
    }
}

/// The stats of a directory read, one after another.
pub fn parse_stats(mut data: &[u8]) -> Result<Vec<Stat>, DecodeError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (st, n) = Stat::decode(data)?;
        out.push(st);
        data = &data[n..];
    }
    Ok(out)
}

fn read_loop(inner: &Inner, reader: Box<dyn Read + Send>) {
    let mut r = BufReader::with_capacity(64 * 1024, reader);
    loop {
        let mut head = [0u8; 4];
        if let Err(e) = r.read_exact(&mut head) {
            tracing::debug!(target: "ksock", error = %e, "9P connection ended");
            return inner.die(Errno::EIO);
        }
        let size = proto::frame_len(head);
        let max = *inner.msize.lock();
        if size < 7 || size > max {
            tracing::warn!(
                target: "ksock",
                size,
                msize = max,
                "9P server sent a message of a bad size; connection closed"
            );
            return inner.die(Errno::EIO);
        }
        let mut frame = vec![0u8; size as usize];
        frame[..4].copy_from_slice(&head);
        if r.read_exact(&mut frame[4..]).is_err() {
            return inner.die(Errno::EIO);
        }
        match proto::decode(Bytes::from(frame)) {
            Ok((tag, f)) => inner.dispatch(tag, f),
            Err(e) => {
                tracing::warn!(
                    target: "ksock",
                    error = %e,
                    "9P server sent a message that cannot be decoded; connection closed"
                );
                return inner.die(Errno::EIO);
            }
        }
    }
}

fn write_loop(inner: &Inner, rx: mpsc::Receiver<Out>) {
    while let Ok(out) = rx.recv() {
        match out {
            Out::Wake => {
                let mut w = inner.wire.writer.lock();
                if w.is_some() && !inner.write_queued(&mut w) {
                    // Nothing more is written once the connection is broken.
                    w.take();
                    drop(w);
                    inner.die(Errno::EIO);
                }
            }
            Out::Run(f) => f(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_map_back_to_their_errno() {
        for n in 1..=133 {
            let e = Errno::from_raw(n);
            if e.name() == "E?" {
                continue;
            }
            let back = errno_of(e.message());
            assert_eq!(back.message(), e.message(), "{n}");
        }
        assert_eq!(errno_of("Connection refused"), Errno::ECONNREFUSED);
        assert_eq!(errno_of("Resource temporarily unavailable"), Errno::EAGAIN);
        assert_eq!(errno_of("interrupted"), Errno::EINTR);
        assert_eq!(
            errno_of("ECONNRESET: Connection reset by peer"),
            Errno::ECONNRESET
        );
        assert_eq!(errno_of("EPIPE"), Errno::EPIPE);
        assert_eq!(errno_of("file does not exist"), Errno::ENOENT);
        assert_eq!(errno_of("unknown fid"), Errno::EBADF);
        assert_eq!(errno_of("fid in use"), Errno::EBADF);
        assert_eq!(errno_of("too many fids"), Errno::EMFILE);
        assert_eq!(errno_of("too many outstanding tags"), Errno::EAGAIN);
        assert_eq!(errno_of("something else entirely"), Errno::EIO);
        assert_eq!(errno_of("Evil"), Errno::EIO);
    }

    #[test]
    fn directory_reads_parse_into_stats_and_bad_ones_fail() {
        let a = Stat {
            name: "stream".into(),
            uid: "root".into(),
            gid: "root".into(),
            mode: 0o666,
            ..Stat::default()
        };
        let b = Stat {
            name: "7".into(),
            mode: proto::DMDIR | 0o700,
            ..Stat::default()
        };
        let mut buf = Vec::new();
        a.encode(&mut buf);
        b.encode(&mut buf);
        assert_eq!(parse_stats(&buf).unwrap(), vec![a, b]);
        assert!(parse_stats(&buf[..buf.len() - 1]).is_err());
        assert!(parse_stats(&[]).unwrap().is_empty());
    }
}
