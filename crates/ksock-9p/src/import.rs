//! `ksock import`: a `/net` tree served over 9P2000 (by `ksock export`) mounted here with
//! FUSE, so that programs use the remote stack's sockets with the same paths and the same
//! rules as under a local `ksock mount`.
//!
//! Every FUSE request becomes one or a few 9P requests through a [`Client`]; none blocks a
//! FUSE worker. A request that waits for the network (all of them, from a lookup's walk to a
//! read of an empty `data`) is answered from the client's callback when its last 9P reply
//! arrives. When the caller of a request gets a signal, the kernel sends `FUSE_INTERRUPT`
//! and the 9P request under way is flushed (`Tflush`): the server answers it
//! `"interrupted"`, or normally if it had completed, and that answer goes to the caller
//! (`EINTR`, or the data). A flushed `accept` takes no connection off the queue. A request
//! interrupted before its 9P request is sent still sends it, flushed at once, so that what
//! needs no wait is done: a signal ends only the wait, as on Linux (a long stream write
//! reports the part that fitted, never `EINTR` for a write that could have gone).
//!
//! - **Inodes.** A file's inode number is its remote qid's path (the server's inode number,
//!   unique and stable; the remote root is inode 1). The mount remembers the names that lead
//!   to each inode the kernel holds, and walks them from the root for each request. Nothing
//!   is cached (attributes and entries have no TTL), as in the local mount.
//! - **Open files.** Each open file is one open fid. Socket files (factories, `ctl`, `data`,
//!   `accept`, `listen`) are opened as the local mount opens them: direct I/O, streams with
//!   no file position, parallel writes; text files (`status`, `local`, `addrs`...) are
//!   snapshots taken at open that may be read at any offset. A nonblocking open
//!   (`O_NONBLOCK`) walks to the name with `:n`. A read or write whose blocking mode differs
//!   from the open's (`fcntl(F_SETFL)` after the open) goes through a second fid on the same
//!   socket file, opened when first needed.
//! - **Opens that make sockets.** Opening a factory creates a socket through a fid walked
//!   from the attach of the opening process (one `Tattach` per local process, found by its
//!   thread group); when that process exits (a pidfd, as in the local mount) its attach is
//!   clunked, which the server takes as the creator's exit: the socket lives while its
//!   creating process runs or any of its files is open. The id is read from the new handle
//!   at once (reads of a factory handle are answered here, from it). An `accept` is opened
//!   on the server as `listen` (whose read gives the new connection's id), then the
//!   connection's `data`, which becomes the open file.
//! - **Owners.** The server sees every request as the user the import runs as. The mount
//!   remembers the local user who created (opened the factory) or accepted each socket made
//!   through it, shows that user as the owner of its directory and files, and refuses every
//!   other user but root (`EACCES`), as the local mount does. Sockets made by others are
//!   shown with the owner the server reports (its user name, mapped to a local uid).
//! - **Readiness.** 9P has none: `poll`/`select` on a socket file are emulated from the
//!   socket's `status` file, read (a walk, an open, a read and a clunk) for each poll
//!   request. The events are those the local mount reports as far as the status shows
//!   them: readable when bytes wait (`recvq`), a listener's connection waits (`pending`),
//!   or end of file or an error can be read (the peer shut down, the connection ended);
//!   writable when connected with room in the send queue (`sendq` against TCP's
//!   `snd_space`, or half the default send buffer), or when a write fails at once;
//!   hang-up (and error, for a socket gone) when it has ended. A pending error that the
//!   status does not show is not reported until the connection's state shows it. A poll
//!   that finds none of its events ready waits: one timer thread for the whole mount reads
//!   the status of each waiting poll again every 15 ms (at most one read under way per
//!   waiting poll, so each costs one status read per period while it waits) and notifies
//!   the kernel when one is ready; an event is seen up to a period late. A wait ends when
//!   it fires, when its file is released, or when the mount ends (a `select` that timed
//!   out leaves its file's wait until then). Text files are always ready.
//! - **What differs.** The kernel splits a write at the mount's `max_write`, here one
//!   message's data (`msize - 24` bytes, at most 1 MiB - 24 from a ksock server), so a
//!   record sent through the mount is at most that long (the local mount's limit is 1 MiB). Zero-length writes never reach a FUSE
//!   file system (the kernel answers them). The server's limits are the
//!   connection's, so the whole mount's: open files (one fid each, two after a change of
//!   blocking mode) and process attaches share its fids (16384 for a ksock server; past it
//!   opens fail with `EMFILE`), and requests waiting at once share its tags (4096; past it
//!   `EAGAIN`). A socket's `status` and its family's `table` are rewritten to show the local
//!   owner and process of the sockets made here (their `peer_uid`/`peer_pid` stay the
//!   server's view: the import's own), while `stat` gives the server's size for them. When
//!   the connection ends, every request fails with `EIO`.

use crate::client::{Call, Client, Reply, parse_stats};
use crate::proto::{DMDIR, Fcall, NOFID, ORDWR, OREAD, OWRITE, Qid, Stat};
use crate::readiness::{self, Polls};
use bytes::Bytes;
use fuser::{
    AccessFlags, BsdFileFlags, Config, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, KernelConfig, LockOwner, MountOption, OpenFlags, PollEvents, PollFlags,
    PollNotifier, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyPoll, ReplyWrite, Request, RequestId, Session, SessionACL, TimeOrNow,
    WriteFlags,
};
use ksock::Errno;
use ksock_fuse::exits::Exits;
use ksock_fuse::{MAX_WRITE, SOCKET_FILE_SIZE, Unmounted, Unmounter, procs};
use ksock_netfs::ProcId;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Attributes and entries are never cached: sizes change, sockets come and go.
const TTL: Duration = Duration::ZERO;

/// The uid and gid shown for a remote user with no local account.
const NOBODY: u32 = 65534;

/// Owner records past which the records of ended sockets are looked for.
const PRUNE_AT: usize = 4096;
/// Interrupts remembered for requests not begun (see [`ImportFs::interrupt`]).
const EARLY_MAX: usize = 1024;

type Cb<T> = Box<dyn FnOnce(Result<T, Errno>) + Send + 'static>;

fn fuse_errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.raw())
}

/// How to mount an imported tree.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Let users other than the one mounting use the tree (FUSE's `allow_other`).
    pub allow_other: bool,
    /// Mount even on a directory that is not empty.
    pub nonempty: bool,
    /// FUSE worker threads.
    pub threads: usize,
    /// The source shown in the mount table (the server's address, say).
    pub source: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            allow_other: false,
            nonempty: false,
            threads: 4,
            source: "ksock-9p".into(),
        }
    }
}

/// What a file of the tree is, by its place and name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A directory.
    Dir,
    /// `/<family>/<type>`: opening it creates a socket.
    Factory,
    /// `<id>/ctl`.
    Ctl,
    /// `<id>/data`.
    Data,
    /// `<id>/accept`.
    Accept,
    /// `<id>/listen`.
    Listen,
    /// A read-only text (`status`, `local`, `remote`, `err`, `addrs`, `table`, `stats`).
    Text,
}

impl Kind {
    fn of(path: &[String], dir: bool) -> Kind {
        if dir {
            return Kind::Dir;
        }
        match path {
            [_, name] => match base(name) {
                "addrs" | "table" | "stats" => Kind::Text,
                n if is_id(n) => Kind::Dir,
                _ => Kind::Factory,
            },
            [_, _, name] => match base(name) {
                "ctl" => Kind::Ctl,
                "data" => Kind::Data,
                "accept" => Kind::Accept,
                "listen" => Kind::Listen,
                _ => Kind::Text,
            },
            [] | [_] => Kind::Dir,
            _ => Kind::Text,
        }
    }

    /// Socket files are streams, sized past any write, as in the local mount.
    fn is_socket_file(self) -> bool {
        !matches!(self, Kind::Dir | Kind::Text)
    }

    /// How the file is opened (the local mount's policy: see `ksock_fuse`).
    fn fopen(self) -> FopenFlags {
        if self.is_socket_file() {
            FopenFlags::FOPEN_DIRECT_IO
                | FopenFlags::FOPEN_NONSEEKABLE
                | FopenFlags::FOPEN_STREAM
                | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES
        } else {
            FopenFlags::FOPEN_DIRECT_IO
        }
    }
}

/// A name without its `:flag` suffixes.
fn base(name: &str) -> &str {
    name.split(':').next().unwrap_or_default()
}

/// Whether a name's flags make it nonblocking (`:n`, `:nonblock`).
fn has_nb(name: &str) -> bool {
    name.split(':').skip(1).any(|f| f == "n" || f == "nonblock")
}

/// The name with `:n` added, unless it is nonblocking already.
fn with_nb(name: &str) -> String {
    if has_nb(name) {
        name.to_owned()
    } else {
        format!("{name}:n")
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The socket a path is in: its family and id.
fn sock_key(path: &[String]) -> Option<(String, u64)> {
    match path {
        [fam, id, ..] if is_id(id) => Some((fam.clone(), id.parse().ok()?)),
        _ => None,
    }
}

/// FUSE's root is inode 1: the remote root's qid path and 1 trade places.
fn ino_of(qid_path: u64, root: u64) -> u64 {
    if qid_path == root {
        1
    } else if qid_path == 1 {
        root
    } else {
        qid_path
    }
}

/// A user who made a socket through the mount, and the process (when known).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Owner {
    uid: u32,
    gid: u32,
    pid: Option<u32>,
}

/// A text changed to show what the mount knows of the sockets made through it.
enum Rewrite {
    /// A socket's `status`: its `owner` and `pid` lines.
    Status(Owner),
    /// A family's `table`: the `owner` and `pid` columns of the sockets listed here.
    Table(HashMap<u64, Owner>),
}

impl Rewrite {
    fn apply(&self, text: &[u8]) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(text) else {
            return text.to_vec();
        };
        let mut out = String::with_capacity(text.len() + 16);
        match self {
            Rewrite::Status(o) => {
                // A listener's peer credentials are its own (as Linux's SO_PEERCRED says):
                // its maker's here, not the import's that the server saw.
                let mut listening = false;
                for line in text.split_inclusive('\n') {
                    let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
                    let nl = if rest.ends_with('\n') { "\n" } else { "" };
                    match (key, o.pid) {
                        ("state", _) => {
                            listening = rest.trim() == "listening";
                            out.push_str(line);
                        }
                        ("owner", _) => out.push_str(&format!("owner {}{nl}", o.uid)),
                        // A family whose listeners have no peer credentials shows `-`.
                        ("peer_uid", _) if listening && rest.trim() != "-" => {
                            out.push_str(&format!("peer_uid {}{nl}", o.uid))
                        }
                        ("peer_pid", Some(pid)) if listening && rest.trim() != "-" => {
                            out.push_str(&format!("peer_pid {pid}{nl}"))
                        }
                        ("pid", Some(pid)) => out.push_str(&format!("pid {pid}{nl}")),
                        _ => out.push_str(line),
                    }
                }
            }
            Rewrite::Table(owners) => {
                let mut lines = text.split_inclusive('\n');
                let Some(header) = lines.next() else {
                    return Vec::new();
                };
                out.push_str(header);
                let cols: Vec<&str> = header.split_whitespace().collect();
                let col = |name: &str| cols.iter().position(|c| *c == name);
                let (Some(id_col), Some(owner_col)) = (col("id"), col("owner")) else {
                    return text.as_bytes().to_vec();
                };
                let pid_col = col("pid");
                let (state_col, puid_col, ppid_col) =
                    (col("state"), col("peer_uid"), col("peer_pid"));
                for line in lines {
                    let mut f: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
                    let o = f
                        .get(id_col)
                        .and_then(|id| id.parse::<u64>().ok())
                        .and_then(|id| owners.get(&id));
                    match o {
                        Some(o) if f.len() == cols.len() => {
                            f[owner_col] = o.uid.to_string();
                            if let (Some(c), Some(pid)) = (pid_col, o.pid) {
                                f[c] = pid.to_string();
                            }
                            let listening = state_col.is_some_and(|c| f[c] == "listening");
                            if listening {
                                if let Some(c) = puid_col.filter(|&c| f[c] != "-") {
                                    f[c] = o.uid.to_string();
                                }
                                if let (Some(c), Some(pid)) =
                                    (ppid_col.filter(|&c| f[c] != "-"), o.pid)
                                {
                                    f[c] = pid.to_string();
                                }
                            }
                            out.push_str(&f.join(" "));
                            out.push('\n');
                        }
                        _ => out.push_str(line),
                    }
                }
            }
        }
        out.into_bytes()
    }
}

/// What the mount knows of an inode the kernel holds.
struct NodeInfo {
    path: Arc<Vec<String>>,
    parent: u64,
    lookups: u64,
    open: usize,
    attr: Option<FileAttr>,
}

/// A FUSE request under way: the 9P request it waits for, to flush on an interrupt.
struct Op {
    unique: u64,
    st: Mutex<OpState>,
}

struct OpState {
    call: Option<Call>,
    interrupted: bool,
}

impl Op {
    fn interrupt(&self) {
        let mut st = self.st.lock();
        st.interrupted = true;
        if let Some(c) = &st.call {
            c.flush();
        }
    }
}

/// A second fid on an open file's socket file, with the other blocking mode.
enum Twin {
    None,
    Opening(Vec<Cb<u32>>),
    Ready(u32),
}

/// An open file.
struct OpenFile {
    ino: u64,
    fid: u32,
    kind: Kind,
    mode: u8,
    /// The fid was opened nonblocking (`:n`).
    nb: bool,
    /// The user's own name says `:n`: every call is nonblocking.
    path_nb: bool,
    /// The id of a socket handle (factory, `listen`), read at open and served here.
    local: Option<Mutex<(Bytes, usize)>>,
    /// The socket file it is (family, id, file), for a twin.
    sock: Option<(String, u64, &'static str)>,
    twin: Mutex<Twin>,
    released: AtomicBool,
}

/// An opened directory: its entries as listed at open.
struct DirSnap {
    ino: u64,
    parent: u64,
    entries: Vec<(u64, FileType, String)>,
}

/// A process's attach while it lives.
enum ProcAttach {
    Pending(Vec<Cb<u32>>),
    Ready,
}

/// The attach a factory open walks from.
struct Attach {
    fid: u32,
    /// Made for this open only (its process is unknown): clunked once the open is done.
    ephemeral: bool,
}

/// Who asks.
#[derive(Clone, Copy)]
struct Who {
    uid: u32,
    gid: u32,
    /// The thread that asks (0 for the kernel itself).
    tid: u32,
    /// Its process, for an open that makes a socket.
    process: Option<ProcId>,
}

impl Who {
    fn of(req: &Request) -> Who {
        Who {
            uid: req.uid(),
            gid: req.gid(),
            tid: req.pid(),
            process: None,
        }
    }

    /// With the asking thread's process, as `/proc` says (read on the FUSE worker, while
    /// the thread waits for the answer).
    fn with_process(mut self) -> Who {
        if self.tid != 0 {
            self.process = procs::resolve(self.tid);
        }
        self
    }

    fn may(&self, owner: u32) -> bool {
        self.uid == 0 || self.uid == owner
    }
}

struct Shared {
    client: Arc<Client>,
    uname: String,
    /// The shared attach: walks for lookups and for opens of existing files.
    root: u32,
    root_path: u64,
    max_io: u32,
    nodes: Mutex<HashMap<u64, NodeInfo>>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<DirSnap>>>,
    next_fh: AtomicU64,
    ops: Mutex<HashMap<u64, Arc<Op>>>,
    /// Interrupts of requests not begun (yet): FUSE reads an interrupt on any worker, so
    /// one may be handled before its request is. Bounded; FUSE never reuses a request id.
    early: Mutex<(HashSet<u64>, VecDeque<u64>)>,
    /// `FUSE_INTERRUPT`s received.
    interrupts: AtomicU64,
    procs: Mutex<HashMap<ProcId, (u32, ProcAttach)>>,
    owners: Mutex<HashMap<(String, u64), Owner>>,
    prune: Mutex<(bool, usize)>,
    users: Mutex<HashMap<String, u32>>,
    groups: Mutex<HashMap<String, u32>>,
    exits: OnceLock<Arc<Exits>>,
    /// Polls waiting for a socket's readiness.
    polls: Polls,
}

impl Shared {
    // ---- requests and their interrupts ----

    fn begin(&self, unique: u64) -> Arc<Op> {
        // The ops lock, then the early list's, as `interrupt` takes them: an interrupt is
        // either remembered before this looks, or finds the op.
        let mut ops = self.ops.lock();
        let interrupted = self.early.lock().0.remove(&unique);
        let op = Arc::new(Op {
            unique,
            st: Mutex::new(OpState {
                call: None,
                interrupted,
            }),
        });
        ops.insert(unique, op.clone());
        op
    }

    fn end(&self, op: &Op) {
        self.ops.lock().remove(&op.unique);
    }

    /// Sends `f` as the step of `op` that an interrupt flushes (or, without an op, as a
    /// step no interrupt stops).
    fn step(&self, op: Option<&Arc<Op>>, f: Fcall, cb: impl FnOnce(Reply) + Send + 'static) {
        let Some(op) = op else {
            self.client.call(f, cb);
            return;
        };
        let mut st = op.st.lock();
        let op2 = op.clone();
        // The lock is held until the call is recorded, so that its answer (which clears
        // it) is seen after.
        let call = self.client.call(f, move |r| {
            op2.st.lock().call = None;
            cb(r)
        });
        // Interrupted already: the request still goes, and is flushed at once. The server
        // does what it can without waiting (a write sends what fits, a read takes what has
        // come) and answers that, or "interrupted": as a signal does to a socket call on
        // Linux, it ends only the wait.
        if st.interrupted {
            call.flush();
        }
        st.call = Some(call);
    }

    // ---- 9P steps ----

    /// Walks from `from` to a new fid. A walk the server stops part of the way (an `Rwalk`
    /// with fewer qids) is walked again to the name that failed, for its error.
    fn walk(
        self: &Arc<Self>,
        op: Option<&Arc<Op>>,
        from: u32,
        names: Vec<String>,
        cb: impl FnOnce(Result<(u32, Vec<Qid>), Errno>) + Send + 'static,
    ) {
        if names.len() > crate::proto::MAXWELEM {
            return cb(Err(Errno::ENAMETOOLONG));
        }
        let newfid = self.client.alloc_fid();
        let n = names.len();
        let s = self.clone();
        let f = Fcall::Twalk {
            fid: from,
            newfid,
            wnames: names.clone(),
        };
        self.step(op, f, move |r| match r {
            Ok(Fcall::Rwalk { wqids }) if wqids.len() == n => cb(Ok((newfid, wqids))),
            Ok(Fcall::Rwalk { wqids }) => {
                s.client.free_fid(newfid);
                s.why_walk_failed(from, names, wqids.len(), Box::new(move |e| cb(Err(e))));
            }
            Ok(_) => {
                s.client.free_fid(newfid);
                cb(Err(Errno::EIO))
            }
            Err(e) => {
                s.client.free_fid(newfid);
                cb(Err(e))
            }
        });
    }

    /// The error of the name at `k`, which a walk through `names` stopped before.
    fn why_walk_failed(
        self: &Arc<Self>,
        from: u32,
        mut names: Vec<String>,
        k: usize,
        cb: Box<dyn FnOnce(Errno) + Send>,
    ) {
        if k == 0 || k >= names.len() {
            return cb(Errno::ENOENT);
        }
        let failed = names.split_off(k);
        let s = self.clone();
        self.walk(None, from, names, move |r| {
            let Ok((p, _)) = r else {
                return cb(Errno::ENOENT);
            };
            let s2 = s.clone();
            s.walk(None, p, vec![failed[0].clone()], move |r| {
                s2.client.clunk_async(p);
                match r {
                    Ok((q, _)) => {
                        s2.client.clunk_async(q);
                        cb(Errno::ENOENT)
                    }
                    Err(e) => cb(e),
                }
            });
        });
    }

    fn stat(
        self: &Arc<Self>,
        op: Option<&Arc<Op>>,
        fid: u32,
        cb: impl FnOnce(Result<Stat, Errno>) + Send + 'static,
    ) {
        self.step(op, Fcall::Tstat { fid }, move |r| match r {
            Ok(Fcall::Rstat { stat }) => cb(Ok(stat)),
            Ok(_) => cb(Err(Errno::EIO)),
            Err(e) => cb(Err(e)),
        });
    }

    /// The stat of the file at `path`.
    fn walk_stat(
        self: &Arc<Self>,
        op: &Arc<Op>,
        path: &[String],
        cb: impl FnOnce(Result<Stat, Errno>) + Send + 'static,
    ) {
        if path.is_empty() {
            return self.stat(Some(op), self.root, cb);
        }
        let s = self.clone();
        let op2 = op.clone();
        self.walk(Some(op), self.root, path.to_vec(), move |r| match r {
            Err(e) => cb(Err(e)),
            Ok((fid, _)) => {
                let s2 = s.clone();
                s.stat(Some(&op2), fid, move |r| {
                    s2.client.clunk_async(fid);
                    cb(r)
                });
            }
        });
    }

    fn open_fid(
        self: &Arc<Self>,
        op: Option<&Arc<Op>>,
        fid: u32,
        mode: u8,
        cb: impl FnOnce(Result<Qid, Errno>) + Send + 'static,
    ) {
        self.step(op, Fcall::Topen { fid, mode }, move |r| match r {
            Ok(Fcall::Ropen { qid, .. }) => cb(Ok(qid)),
            Ok(_) => cb(Err(Errno::EIO)),
            Err(e) => cb(Err(e)),
        });
    }

    /// Walks from `from` through `names` and opens the fid; a failed open clunks it.
    fn walk_open(
        self: &Arc<Self>,
        op: Option<&Arc<Op>>,
        from: u32,
        names: Vec<String>,
        mode: u8,
        cb: impl FnOnce(Result<u32, Errno>) + Send + 'static,
    ) {
        let s = self.clone();
        let op2 = op.cloned();
        self.walk(op, from, names, move |r| match r {
            Err(e) => cb(Err(e)),
            Ok((fid, _)) => {
                let s2 = s.clone();
                s.open_fid(op2.as_ref(), fid, mode, move |r| match r {
                    Ok(_) => cb(Ok(fid)),
                    Err(e) => {
                        s2.client.clunk_async(fid);
                        cb(Err(e))
                    }
                });
            }
        });
    }

    fn read_fid(
        &self,
        op: Option<&Arc<Op>>,
        fid: u32,
        offset: u64,
        count: u32,
        cb: impl FnOnce(Result<Bytes, Errno>) + Send + 'static,
    ) {
        let count = count.min(self.max_io);
        self.step(op, Fcall::Tread { fid, offset, count }, move |r| match r {
            Ok(Fcall::Rread { data }) => cb(Ok(data)),
            Ok(_) => cb(Err(Errno::EIO)),
            Err(e) => cb(Err(e)),
        });
    }

    /// Reads the id of a just opened socket handle (a factory's or `listen`'s).
    fn read_id(&self, fid: u32, cb: impl FnOnce(Result<(u64, Bytes), Errno>) + Send + 'static) {
        self.read_fid(None, fid, 0, 32, move |r| {
            cb(r.and_then(|b| {
                let id = std::str::from_utf8(&b)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .ok_or(Errno::EIO)?;
                Ok((id, b))
            }))
        });
    }

    /// Reads a whole directory from an open fid.
    fn read_dir(
        self: &Arc<Self>,
        op: Arc<Op>,
        fid: u32,
        offset: u64,
        mut acc: Vec<Stat>,
        cb: Cb<Vec<Stat>>,
    ) {
        let s = self.clone();
        let op2 = op.clone();
        self.read_fid(Some(&op), fid, offset, self.max_io, move |r| match r {
            Err(e) => cb(Err(e)),
            Ok(data) if data.is_empty() => cb(Ok(acc)),
            Ok(data) => match parse_stats(&data) {
                Ok(st) => {
                    acc.extend(st);
                    s.read_dir(op2, fid, offset + data.len() as u64, acc, cb)
                }
                Err(_) => cb(Err(Errno::EIO)),
            },
        });
    }

    // ---- attaches ----

    /// The attach a factory open by `who` walks from: its process's (made at its first
    /// factory open, and clunked when it exits), or one for this open alone when the process
    /// is unknown.
    fn attach_for(
        self: &Arc<Self>,
        who: Who,
        cb: impl FnOnce(Result<Attach, Errno>) + Send + 'static,
    ) {
        let tid = who.tid;
        let Some(p) = who.process else {
            let fid = self.client.alloc_fid();
            let s = self.clone();
            self.client.call(self.tattach(fid), move |r| match r {
                Ok(Fcall::Rattach { .. }) => cb(Ok(Attach {
                    fid,
                    ephemeral: true,
                })),
                r => {
                    s.client.free_fid(fid);
                    cb(Err(r.err().unwrap_or(Errno::EIO)))
                }
            });
            return;
        };
        let wrapped: Cb<u32> = Box::new(move |r| {
            cb(r.map(|fid| Attach {
                fid,
                ephemeral: false,
            }))
        });
        let mut procs = self.procs.lock();
        let fid = match procs.get_mut(&p) {
            Some((fid, ProcAttach::Ready)) => {
                let fid = *fid;
                drop(procs);
                return wrapped(Ok(fid));
            }
            Some((_, ProcAttach::Pending(w))) => {
                w.push(wrapped);
                return;
            }
            None => {
                let fid = self.client.alloc_fid();
                procs.insert(p, (fid, ProcAttach::Pending(vec![wrapped])));
                fid
            }
        };
        drop(procs);
        let s = self.clone();
        self.client
            .call(self.tattach(fid), move |r| s.attached(p, fid, r));
        if let Some(x) = self.exits.get() {
            x.watch(tid);
        }
    }

    fn tattach(&self, fid: u32) -> Fcall {
        Fcall::Tattach {
            fid,
            afid: NOFID,
            uname: self.uname.clone(),
            aname: String::new(),
        }
    }

    fn attached(&self, p: ProcId, fid: u32, r: Reply) {
        let r = match r {
            Ok(Fcall::Rattach { .. }) => Ok(fid),
            Ok(_) => Err(Errno::EIO),
            Err(e) => Err(e),
        };
        let waiters = {
            let mut procs = self.procs.lock();
            match procs.get_mut(&p) {
                Some((f, st)) if *f == fid => {
                    let w = match std::mem::replace(st, ProcAttach::Ready) {
                        ProcAttach::Pending(w) => w,
                        ProcAttach::Ready => Vec::new(),
                    };
                    if r.is_err() {
                        procs.remove(&p);
                    }
                    w
                }
                _ => {
                    // The process exited while its attach was made.
                    drop(procs);
                    match r {
                        Ok(_) => self.client_clunk(fid),
                        Err(_) => self.client.free_fid(fid),
                    }
                    return;
                }
            }
        };
        if r.is_err() {
            self.client.free_fid(fid);
        }
        for w in waiters {
            w(r);
        }
    }

    fn client_clunk(&self, fid: u32) {
        let c = self.client.clone();
        self.client
            .call(Fcall::Tclunk { fid }, move |_| c.free_fid(fid));
    }

    /// A process that made sockets has exited: its attach ends, and with it the sockets it
    /// made that no open file keeps.
    fn process_exited(&self, p: ProcId) {
        let gone = self.procs.lock().remove(&p);
        match gone {
            Some((fid, ProcAttach::Ready)) => self.client_clunk(fid),
            // Its attach is clunked when the server answers it (see `attached`).
            Some((_, ProcAttach::Pending(w))) => {
                for w in w {
                    w(Err(Errno::EINTR));
                }
            }
            None => {}
        }
    }

    // ---- owners and attributes ----

    fn owner(&self, path: &[String]) -> Option<Owner> {
        self.owners.lock().get(&sock_key(path)?).copied()
    }

    fn record_owner(self: &Arc<Self>, fam: &str, id: u64, who: Who) {
        let n = {
            let mut o = self.owners.lock();
            o.insert(
                (fam.to_owned(), id),
                Owner {
                    uid: who.uid,
                    gid: who.gid,
                    pid: who.process.map(|p| p.pid),
                },
            );
            o.len()
        };
        let go = {
            let mut p = self.prune.lock();
            if !p.0 && n >= p.1 {
                p.0 = true;
                true
            } else {
                false
            }
        };
        if go {
            let s = self.clone();
            let _ = thread::Builder::new()
                .name("ksock-import-prune".into())
                .spawn(move || s.prune_owners());
        }
    }

    /// Forgets the owners of sockets that have ended: those recorded before a listing of
    /// their family that does not show them (ids are never reused).
    fn prune_owners(&self) {
        let before: Vec<(String, u64)> = self.owners.lock().keys().cloned().collect();
        let mut fams: Vec<String> = before.iter().map(|k| k.0.clone()).collect();
        fams.sort();
        fams.dedup();
        for fam in fams {
            let Ok(live) = self.list_blocking(&fam) else {
                continue;
            };
            let live: std::collections::HashSet<&str> = live.iter().map(|s| s.as_str()).collect();
            let mut o = self.owners.lock();
            for k in before.iter().filter(|k| k.0 == fam) {
                if !live.contains(k.1.to_string().as_str()) {
                    o.remove(k);
                }
            }
        }
        let n = self.owners.lock().len();
        *self.prune.lock() = (false, (2 * n).max(PRUNE_AT));
    }

    /// The names in the directory `name` under the root (from a thread of its own).
    fn list_blocking(&self, name: &str) -> Result<Vec<String>, Errno> {
        let (fid, _) = self.client.walk(self.root, &[name])?;
        let r = self
            .client
            .open(fid, OREAD)
            .and_then(|_| self.client.readdir(fid));
        let _ = self.client.clunk(fid);
        Ok(r?.into_iter().map(|s| s.name).collect())
    }

    fn user_id(&self, name: &str) -> u32 {
        if let Ok(n) = name.parse() {
            return n;
        }
        if let Some(&n) = self.users.lock().get(name) {
            return n;
        }
        let n = nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map_or(NOBODY, |u| u.uid.as_raw());
        self.users.lock().insert(name.to_owned(), n);
        n
    }

    fn group_id(&self, name: &str) -> u32 {
        if let Ok(n) = name.parse() {
            return n;
        }
        if let Some(&n) = self.groups.lock().get(name) {
            return n;
        }
        let n = nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map_or(NOBODY, |g| g.gid.as_raw());
        self.groups.lock().insert(name.to_owned(), n);
        n
    }

    fn attr_of(&self, st: &Stat, path: &[String]) -> FileAttr {
        let dir = st.mode & DMDIR != 0;
        let kind = Kind::of(path, dir);
        let time = UNIX_EPOCH + Duration::from_secs(u64::from(st.mtime));
        let (uid, gid) = match self.owner(path) {
            Some(o) => (o.uid, o.gid),
            None => (self.user_id(&st.uid), self.group_id(&st.gid)),
        };
        FileAttr {
            ino: INodeNo(ino_of(st.qid.path, self.root_path)),
            size: if kind.is_socket_file() {
                SOCKET_FILE_SIZE
            } else {
                st.length
            },
            blocks: 0,
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind: if dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: (st.mode & 0o7777) as u16,
            nlink: if dir { 2 } else { 1 },
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Whether `who` may use what is at `path` (a socket's directory or files: only its
    /// owner and root), with the owner as last seen when the mount made no record of it.
    fn may(&self, who: &Who, path: &[String], seen: Option<u32>) -> bool {
        if sock_key(path).is_none() {
            return true;
        }
        match self.owner(path).map(|o| o.uid).or(seen) {
            Some(owner) => who.may(owner),
            None => true,
        }
    }

    fn path_of(&self, ino: u64) -> Option<(Arc<Vec<String>>, Option<FileAttr>)> {
        self.nodes
            .lock()
            .get(&ino)
            .map(|n| (n.path.clone(), n.attr))
    }

    fn seen(&self, attr: &FileAttr) {
        if let Some(n) = self.nodes.lock().get_mut(&attr.ino.0) {
            n.attr = Some(*attr);
        }
    }

    /// The attributes of the file at `path` (inode `ino`), as FUSE shows them; for an
    /// inode whose socket ended while files of it are open, the last ones seen.
    fn getattr_chain(
        self: &Arc<Self>,
        op: &Arc<Op>,
        ino: u64,
        path: Arc<Vec<String>>,
        cb: impl FnOnce(Result<FileAttr, Errno>) + Send + 'static,
    ) {
        let s = self.clone();
        let p = path.clone();
        self.walk_stat(op, &path, move |r| match r {
            Ok(st) => {
                let mut a = s.attr_of(&st, &p);
                a.ino = INodeNo(ino);
                s.seen(&a);
                cb(Ok(a))
            }
            Err(e) => {
                if e == Errno::ENOENT {
                    if p.len() == 2
                        && let Some(k) = sock_key(&p)
                    {
                        s.owners.lock().remove(&k);
                    }
                    let last = s
                        .nodes
                        .lock()
                        .get(&ino)
                        .filter(|n| n.open > 0)
                        .and_then(|n| n.attr);
                    if let Some(a) = last {
                        return cb(Ok(a));
                    }
                }
                cb(Err(e))
            }
        });
    }

    // ---- open files ----

    fn add_file(&self, f: OpenFile) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.nodes.lock().get_mut(&f.ino) {
            n.open += 1;
        }
        self.files.lock().insert(fh, Arc::new(f));
        fh
    }

    fn release_file(&self, fh: u64) {
        let Some(f) = self.files.lock().remove(&fh) else {
            return;
        };
        {
            let mut nodes = self.nodes.lock();
            if let Some(n) = nodes.get_mut(&f.ino) {
                n.open = n.open.saturating_sub(1);
                if n.open == 0 && n.lookups == 0 {
                    nodes.remove(&f.ino);
                }
            }
        }
        f.released.store(true, Ordering::Release);
        self.polls.forget(fh);
        self.client_clunk(f.fid);
        if let Twin::Ready(t) = std::mem::replace(&mut *f.twin.lock(), Twin::None) {
            self.client_clunk(t);
        }
    }

    /// The fid to use for a call that is nonblocking or not: the open's own, or its twin
    /// (opened on first need).
    fn fid_for(self: &Arc<Self>, f: &Arc<OpenFile>, nb: bool, cb: Cb<u32>) {
        let Some((fam, id, file)) = f.sock.clone().filter(|_| nb != f.nb) else {
            return cb(Ok(f.fid));
        };
        {
            let mut t = f.twin.lock();
            match &mut *t {
                Twin::Ready(fid) => {
                    let fid = *fid;
                    drop(t);
                    return cb(Ok(fid));
                }
                Twin::Opening(w) => return w.push(cb),
                Twin::None => *t = Twin::Opening(vec![cb]),
            }
        }
        let name = if nb {
            format!("{file}:n")
        } else {
            file.to_owned()
        };
        let s = self.clone();
        let f2 = f.clone();
        self.walk_open(
            None,
            self.root,
            vec![fam, id.to_string(), name],
            f.mode,
            move |r| {
                let waiters = {
                    let mut t = f2.twin.lock();
                    let w = match std::mem::replace(&mut *t, Twin::None) {
                        Twin::Opening(w) => w,
                        _ => Vec::new(),
                    };
                    if let Ok(fid) = r {
                        if f2.released.load(Ordering::Acquire) {
                            s.client_clunk(fid);
                        } else {
                            *t = Twin::Ready(fid);
                        }
                    }
                    w
                };
                for w in waiters {
                    w(r);
                }
            },
        );
    }

    /// Opens the file at `path` for `who`.
    fn open_chain(
        self: &Arc<Self>,
        op: Arc<Op>,
        who: Who,
        ino: u64,
        path: Arc<Vec<String>>,
        flags: i32,
        cb: Cb<(u64, FopenFlags)>,
    ) {
        let kind = Kind::of(&path, false);
        let Some(last) = path.last().cloned() else {
            return cb(Err(Errno::EISDIR));
        };
        let mode = match flags & libc::O_ACCMODE {
            libc::O_WRONLY => OWRITE,
            libc::O_RDWR => ORDWR,
            _ => OREAD,
        };
        let path_nb = has_nb(&last);
        let open_nb = flags & libc::O_NONBLOCK != 0 && kind.is_socket_file();
        let nb = path_nb || open_nb;
        let mut names: Vec<String> = path.to_vec();
        if open_nb && let Some(l) = names.last_mut() {
            *l = with_nb(l);
        }
        let fam = path.first().cloned().unwrap_or_default();
        let s = self.clone();
        let file = move |fid: u32,
                         mode: u8,
                         local: Option<Bytes>,
                         sock: Option<(String, u64, &'static str)>| {
            OpenFile {
                ino,
                fid,
                kind,
                mode,
                nb,
                path_nb,
                local: local.map(|b| Mutex::new((b, 0))),
                sock,
                twin: Mutex::new(Twin::None),
                released: AtomicBool::new(false),
            }
        };
        match kind {
            Kind::Dir => cb(Err(Errno::EISDIR)),
            Kind::Factory => {
                let op2 = op.clone();
                self.attach_for(who, move |r| {
                    let att = match r {
                        Ok(a) => a,
                        Err(e) => return cb(Err(e)),
                    };
                    let s2 = s.clone();
                    let done_attach = move |s: &Shared| {
                        if att.ephemeral {
                            s.client_clunk(att.fid);
                        }
                    };
                    s.walk_open(Some(&op2), att.fid, names, ORDWR, move |r| {
                        let fid = match r {
                            Ok(fid) => fid,
                            Err(e) => {
                                done_attach(&s2);
                                return cb(Err(e));
                            }
                        };
                        let s3 = s2.clone();
                        s2.read_id(fid, move |r| {
                            done_attach(&s3);
                            match r {
                                Ok((id, text)) => {
                                    s3.record_owner(&fam, id, who);
                                    let f = file(fid, ORDWR, Some(text), Some((fam, id, "ctl")));
                                    cb(Ok((s3.add_file(f), kind.fopen())))
                                }
                                Err(e) => {
                                    s3.client_clunk(fid);
                                    cb(Err(e))
                                }
                            }
                        });
                    });
                });
            }
            Kind::Listen | Kind::Accept => {
                // Both accept with a `listen` open (whose handle reads the new id); an
                // `accept` then opens the connection's `data`.
                if kind == Kind::Accept
                    && let Some(l) = names.last_mut()
                {
                    *l = l.replacen("accept", "listen", 1);
                }
                self.walk_open(Some(&op), self.root, names, ORDWR, move |r| {
                    let lfid = match r {
                        Ok(fid) => fid,
                        Err(e) => return cb(Err(e)),
                    };
                    // Accepted: from here on the connection is this open's, interrupted or
                    // not.
                    let s2 = s.clone();
                    s.read_id(lfid, move |r| {
                        let (id, text) = match r {
                            Ok(v) => v,
                            Err(e) => {
                                s2.client_clunk(lfid);
                                return cb(Err(e));
                            }
                        };
                        s2.record_owner(&fam, id, who);
                        if kind == Kind::Listen {
                            let f = file(lfid, ORDWR, Some(text), Some((fam, id, "ctl")));
                            return cb(Ok((s2.add_file(f), kind.fopen())));
                        }
                        let data = if nb { "data:n" } else { "data" };
                        let s3 = s2.clone();
                        let names = vec![fam.clone(), id.to_string(), data.to_owned()];
                        s2.walk_open(None, s2.root, names, mode, move |r| {
                            s3.client_clunk(lfid);
                            match r {
                                Ok(dfid) => {
                                    let f = file(dfid, mode, None, Some((fam, id, "data")));
                                    cb(Ok((s3.add_file(f), kind.fopen())))
                                }
                                Err(e) => cb(Err(e)),
                            }
                        });
                    });
                });
            }
            Kind::Ctl | Kind::Data | Kind::Text => {
                let sock = match (kind, sock_key(&path)) {
                    (Kind::Ctl, Some((fam, id))) => Some((fam, id, "ctl")),
                    (Kind::Data, Some((fam, id))) => Some((fam, id, "data")),
                    _ => None,
                };
                let rewrite = self.rewrite_for(&path);
                let op2 = op.clone();
                self.walk_open(Some(&op), self.root, names, mode, move |r| match r {
                    Ok(fid) => match rewrite {
                        None => {
                            let f = file(fid, mode, None, sock);
                            cb(Ok((s.add_file(f), kind.fopen())))
                        }
                        Some(how) => {
                            let s2 = s.clone();
                            s.read_all(
                                op2,
                                fid,
                                Vec::new(),
                                Box::new(move |r| match r {
                                    Ok(text) => {
                                        let text = Bytes::from(how.apply(&text));
                                        let f = file(fid, mode, Some(text), None);
                                        cb(Ok((s2.add_file(f), kind.fopen())))
                                    }
                                    Err(e) => {
                                        s2.client_clunk(fid);
                                        cb(Err(e))
                                    }
                                }),
                            );
                        }
                    },
                    Err(e) => cb(Err(e)),
                });
            }
        }
    }

    /// How the text at `path` must be changed to show the owners and processes of the
    /// sockets made through the mount, as the local mount shows them: a socket's `status`,
    /// a family's `table`.
    fn rewrite_for(&self, path: &[String]) -> Option<Rewrite> {
        match path {
            [_, _, name] if base(name) == "status" => self.owner(path).map(Rewrite::Status),
            [fam, name] if base(name) == "table" => {
                let owners: HashMap<u64, Owner> = self
                    .owners
                    .lock()
                    .iter()
                    .filter(|((f, _), _)| f == fam)
                    .map(|((_, id), o)| (*id, *o))
                    .collect();
                (!owners.is_empty()).then_some(Rewrite::Table(owners))
            }
            _ => None,
        }
    }

    /// The poll events of socket `fam`/`id` now, from its `status` file (see the module's
    /// notes): a walk, an open, one read and a clunk.
    fn sock_events(self: &Arc<Self>, fam: &str, id: u64, cb: impl FnOnce(u32) + Send + 'static) {
        let names = vec![fam.to_owned(), id.to_string(), "status".to_owned()];
        let s = self.clone();
        let max = self.max_io;
        self.walk_open(None, self.root, names, OREAD, move |r| match r {
            Err(Errno::ENOENT) => cb(readiness::GONE),
            Err(_) => cb(readiness::BROKEN),
            Ok(fid) => {
                let s2 = s.clone();
                s.read_fid(None, fid, 0, max, move |r| {
                    s2.client_clunk(fid);
                    cb(match r {
                        Ok(text) => readiness::of_text(&text),
                        Err(Errno::ENOENT) => readiness::GONE,
                        Err(_) => readiness::BROKEN,
                    })
                });
            }
        });
    }

    /// Reads a whole file from an open fid, from the start.
    fn read_all(self: &Arc<Self>, op: Arc<Op>, fid: u32, mut acc: Vec<u8>, cb: Cb<Vec<u8>>) {
        let s = self.clone();
        let op2 = op.clone();
        let offset = acc.len() as u64;
        self.read_fid(Some(&op), fid, offset, self.max_io, move |r| match r {
            Err(e) => cb(Err(e)),
            Ok(data) if data.is_empty() => cb(Ok(acc)),
            Ok(data) => {
                acc.extend_from_slice(&data);
                s.read_all(op2, fid, acc, cb)
            }
        });
    }

    /// Clunks everything the mount holds (its session has ended).
    fn shut(&self) {
        if let Some(x) = self.exits.get() {
            x.stop();
        }
        self.polls.stop();
        let files: Vec<u64> = self.files.lock().keys().copied().collect();
        for fh in files {
            self.release_file(fh);
        }
        let procs: Vec<ProcId> = self.procs.lock().keys().copied().collect();
        for p in procs {
            self.process_exited(p);
        }
        self.dirs.lock().clear();
        let ops: Vec<Arc<Op>> = self.ops.lock().drain().map(|(_, o)| o).collect();
        for o in ops {
            o.interrupt();
        }
        self.client_clunk(self.root);
    }
}

/// The file system the kernel talks to.
struct ImportFs {
    s: Arc<Shared>,
}

/// Makes the callback that ends a request and answers it.
fn finish<T: Send + 'static>(
    s: &Arc<Shared>,
    op: &Arc<Op>,
    f: impl FnOnce(Result<T, Errno>) + Send + 'static,
) -> impl FnOnce(Result<T, Errno>) + Send + 'static {
    let s = s.clone();
    let op = op.clone();
    move |r| {
        s.end(&op);
        f(r)
    }
}

impl Filesystem for ImportFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // One write is one 9P message, so that a record stays whole.
        let _ = config.set_max_write(MAX_WRITE.min(self.s.max_io));
        Ok(())
    }

    /// `FUSE_INTERRUPT`: the 9P request the FUSE request waits for is flushed; its answer
    /// (`EINTR`, or what it had done) is the FUSE request's. An interrupt of a request not
    /// begun yet (another worker read it first) is remembered, and each 9P request it sends
    /// is flushed as it is sent: answering `EAGAIN` for the kernel to send the interrupt
    /// again does not work with a `/dev/fuse` descriptor per worker (the answer would go
    /// on this worker's descriptor, where the kernel does not look for the request).
    fn interrupt(&self, _req: &Request, unique: RequestId) -> Result<(), fuser::Errno> {
        self.s.interrupts.fetch_add(1, Ordering::Relaxed);
        let ops = self.s.ops.lock();
        match ops.get(&unique.0).cloned() {
            Some(op) => {
                drop(ops);
                op.interrupt();
            }
            None => {
                // Under the ops lock, so that a request beginning now sees it.
                let mut early = self.s.early.lock();
                if early.0.insert(unique.0) {
                    early.1.push_back(unique.0);
                    if early.1.len() > EARLY_MAX
                        && let Some(old) = early.1.pop_front()
                    {
                        early.0.remove(&old);
                    }
                }
            }
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let s = &self.s;
        let who = Who::of(req);
        let Some(name) = name.to_str() else {
            return reply.error(fuser::Errno::ENOENT);
        };
        let Some((ppath, pattr)) = s.path_of(parent.0) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        let mut path = ppath.to_vec();
        path.push(name.to_owned());
        // Inside a socket's directory only its owner (and root) may look.
        if path.len() >= 3 && !s.may(&who, &path, pattr.map(|a| a.uid)) {
            return reply.error(fuser::Errno::EACCES);
        }
        let op = s.begin(req.unique().0);
        let path = Arc::new(path);
        let s2 = s.clone();
        let p = path.clone();
        let done = finish(s, &op, move |r: Result<Stat, Errno>| {
            let st = match r {
                Ok(st) => st,
                Err(e) => {
                    if e == Errno::ENOENT
                        && p.len() == 2
                        && let Some(k) = sock_key(&p)
                    {
                        s2.owners.lock().remove(&k);
                    }
                    return reply.error(fuse_errno(e));
                }
            };
            let a = s2.attr_of(&st, &p);
            if p.len() >= 3 && !who.may(a.uid) {
                return reply.error(fuser::Errno::EACCES);
            }
            {
                let mut nodes = s2.nodes.lock();
                let n = nodes.entry(a.ino.0).or_insert_with(|| NodeInfo {
                    path: p.clone(),
                    parent: parent.0,
                    lookups: 0,
                    open: 0,
                    attr: None,
                });
                n.lookups += 1;
                n.attr = Some(a);
            }
            reply.entry(&TTL, &a, Generation(0));
        });
        s.walk_stat(&op, &path, done);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if ino.0 == 1 {
            return;
        }
        let mut nodes = self.s.nodes.lock();
        if let Some(n) = nodes.get_mut(&ino.0) {
            n.lookups = n.lookups.saturating_sub(nlookup);
            if n.lookups == 0 && n.open == 0 {
                nodes.remove(&ino.0);
            }
        }
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let s = &self.s;
        let Some((path, _)) = s.path_of(ino.0) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        let op = s.begin(req.unique().0);
        let done = finish(s, &op, move |r: Result<FileAttr, Errno>| match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(fuse_errno(e)),
        });
        s.getattr_chain(&op, ino.0, path, done);
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // As in the local mount: owners and modes are the tree's; truncating to 0 (`>` in a
        // shell) and touching times change nothing and succeed.
        if mode.is_some() || uid.is_some() || gid.is_some() {
            return reply.error(fuser::Errno::EPERM);
        }
        let s = &self.s;
        let who = Who::of(req);
        let Some((path, _)) = s.path_of(ino.0) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        let op = s.begin(req.unique().0);
        let times = [atime, mtime];
        let done = finish(s, &op, move |r: Result<FileAttr, Errno>| {
            let a = match r {
                Ok(a) => a,
                Err(e) => return reply.error(fuse_errno(e)),
            };
            // As the local mount's access check: a file others may write (a factory, 0666)
            // is anybody's; a socket's files are their owner's (and root's).
            let writable = a.perm & 0o222 != 0 && (a.perm & 0o002 != 0 || who.may(a.uid));
            if times.iter().any(Option::is_some) && !who.may(a.uid) {
                if times
                    .iter()
                    .any(|t| matches!(t, Some(TimeOrNow::SpecificTime(_))))
                {
                    return reply.error(fuser::Errno::EPERM);
                }
                if !writable {
                    return reply.error(fuser::Errno::EACCES);
                }
            }
            if let Some(size) = size {
                if a.kind == FileType::Directory {
                    return reply.error(fuser::Errno::EISDIR);
                }
                if !writable {
                    return reply.error(fuser::Errno::EACCES);
                }
                if size != 0 {
                    return reply.error(fuser::Errno::EINVAL);
                }
            }
            reply.attr(&TTL, &a)
        });
        s.getattr_chain(&op, ino.0, path, done);
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let s = &self.s;
        let who = Who::of(req);
        let Some((path, _)) = s.path_of(ino.0) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        let op = s.begin(req.unique().0);
        let p = path.clone();
        let s2 = s.clone();
        let done = finish(s, &op, move |r: Result<FileAttr, Errno>| {
            let a = match r {
                Ok(a) => a,
                Err(e) => return reply.error(fuse_errno(e)),
            };
            if !s2.may(&who, &p, Some(a.uid)) {
                return reply.error(fuser::Errno::EACCES);
            }
            if mask.contains(AccessFlags::W_OK) && a.perm & 0o222 == 0 {
                return reply.error(fuser::Errno::EACCES);
            }
            if mask.contains(AccessFlags::X_OK) && a.kind != FileType::Directory {
                return reply.error(fuser::Errno::EACCES);
            }
            reply.ok()
        });
        s.getattr_chain(&op, ino.0, path, done);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let s = &self.s;
        let who = Who::of(req);
        let Some((path, attr)) = s.path_of(ino.0) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        if !s.may(&who, &path, attr.map(|a| a.uid)) {
            return reply.error(fuser::Errno::EACCES);
        }
        let who = match Kind::of(&path, false) {
            Kind::Factory | Kind::Accept | Kind::Listen => who.with_process(),
            _ => who,
        };
        let op = s.begin(req.unique().0);
        let done = finish(s, &op, move |r: Result<(u64, FopenFlags), Errno>| match r {
            Ok((fh, fl)) => reply.opened(FileHandle(fh), fl),
            Err(e) => reply.error(fuse_errno(e)),
        });
        s.open_chain(op, who, ino.0, path, flags.0, Box::new(done));
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let s = &self.s;
        let Some(f) = s.files.lock().get(&fh.0).cloned() else {
            return reply.error(fuser::Errno::EBADF);
        };
        if let Some(local) = &f.local {
            // A text as the mount shows it (read at any offset), or a socket handle's id
            // (read once, then end of file).
            let mut l = local.lock();
            let (text, pos) = &mut *l;
            let at = if f.kind == Kind::Text {
                usize::try_from(offset).unwrap_or(usize::MAX)
            } else {
                *pos
            };
            let start = at.min(text.len());
            let end = start + (size as usize).min(text.len() - start);
            *pos = end;
            return reply.data(&text[start..end]);
        }
        let op = s.begin(req.unique().0);
        let done = finish(s, &op, move |r: Result<Bytes, Errno>| match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(fuse_errno(e)),
        });
        if f.kind == Kind::Text {
            return s.read_fid(Some(&op), f.fid, offset, size, done);
        }
        // As in the local mount: a read for the page cache (no lock owner) would take a
        // record from the socket's readers.
        if lock_owner.is_none() {
            return done(Err(Errno::EIO));
        }
        let nb = f.path_nb || flags.0 & libc::O_NONBLOCK != 0;
        let s2 = s.clone();
        s.fid_for(
            &f,
            nb,
            Box::new(move |r| match r {
                Ok(fid) => s2.read_fid(Some(&op), fid, 0, size, done),
                Err(e) => done(Err(e)),
            }),
        );
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let s = &self.s;
        let Some(f) = s.files.lock().get(&fh.0).cloned() else {
            return reply.error(fuser::Errno::EBADF);
        };
        let n = data.len().min(s.max_io as usize);
        let data = Bytes::copy_from_slice(&data[..n]);
        let op = s.begin(req.unique().0);
        let done = finish(s, &op, move |r: Result<u32, Errno>| match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(fuse_errno(e)),
        });
        let nb = f.path_nb || flags.0 & libc::O_NONBLOCK != 0;
        let s2 = s.clone();
        s.fid_for(
            &f,
            nb,
            Box::new(move |r| match r {
                Ok(fid) => {
                    let w = Fcall::Twrite {
                        fid,
                        offset: 0,
                        data,
                    };
                    s2.step(Some(&op), w, move |r| match r {
                        Ok(Fcall::Rwrite { count }) => done(Ok(count)),
                        Ok(_) => done(Err(Errno::EIO)),
                        Err(e) => done(Err(e)),
                    });
                }
                Err(e) => done(Err(e)),
            }),
        );
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.s.release_file(fh.0);
        reply.ok();
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let s = &self.s;
        let who = Who::of(req);
        let Some((path, attr)) = s.path_of(ino.0) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        if !s.may(&who, &path, attr.map(|a| a.uid)) {
            return reply.error(fuser::Errno::EACCES);
        }
        let parent = s.nodes.lock().get(&ino.0).map_or(1, |n| n.parent);
        let op = s.begin(req.unique().0);
        let s2 = s.clone();
        let done = finish(s, &op, move |r: Result<Vec<Stat>, Errno>| {
            let stats = match r {
                Ok(v) => v,
                Err(e) => return reply.error(fuse_errno(e)),
            };
            let entries = stats
                .into_iter()
                .map(|st| {
                    let kind = if st.mode & DMDIR != 0 {
                        FileType::Directory
                    } else {
                        FileType::RegularFile
                    };
                    (ino_of(st.qid.path, s2.root_path), kind, st.name)
                })
                .collect();
            let fh = s2.next_fh.fetch_add(1, Ordering::Relaxed);
            s2.dirs.lock().insert(
                fh,
                Arc::new(DirSnap {
                    ino: ino.0,
                    parent,
                    entries,
                }),
            );
            reply.opened(FileHandle(fh), FopenFlags::empty())
        });
        let s3 = s.clone();
        let op2 = op.clone();
        let from = s.root;
        s.walk_open(
            Some(&op),
            from,
            path.to_vec(),
            OREAD,
            move |r: Result<u32, Errno>| match r {
                Err(e) => done(Err(e)),
                Ok(fid) => {
                    let s4 = s3.clone();
                    s3.read_dir(
                        op2,
                        fid,
                        0,
                        Vec::new(),
                        Box::new(move |r| {
                            s4.client_clunk(fid);
                            done(r)
                        }),
                    );
                }
            },
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(d) = self.s.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(fuser::Errno::EBADF);
        };
        let all = [
            (d.ino, FileType::Directory, "."),
            (d.parent, FileType::Directory, ".."),
        ];
        let rest = d.entries.iter().map(|(i, k, n)| (*i, *k, n.as_str()));
        for (i, (ino, kind, name)) in all.into_iter().chain(rest).enumerate() {
            if (i as u64) < offset {
                continue;
            }
            if reply.add(INodeNo(ino), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.s.dirs.lock().remove(&fh.0);
        reply.ok();
    }

    /// 9P has no readiness: every file is reported readable and writable (see the module's
    /// notes).
    /// Readiness from the socket's `status` (see the module's notes); text files are
    /// always ready. A poll that finds none of its events ready, and may be notified,
    /// waits on the mount's timer.
    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let s = &self.s;
        let Some(f) = s.files.lock().get(&fh.0).cloned() else {
            return reply.error(fuser::Errno::EBADF);
        };
        let requested = events.bits();
        let Some((fam, id, _)) = f.sock.clone().filter(|_| f.kind.is_socket_file()) else {
            let ev = readiness::masked(readiness::ALWAYS, requested);
            return reply.poll(PollEvents::from_bits_retain(ev));
        };
        let notify = flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY);
        let s2 = s.clone();
        let fam2 = fam.clone();
        s.sock_events(&fam, id, move |ev| {
            let ev = readiness::masked(ev, requested);
            if ev == 0 && notify && !f.released.load(Ordering::Acquire) {
                s2.polls.wait(fh.0, &fam2, id, requested, ph);
                // Released meanwhile (after its wait was forgotten): no wait stays.
                if f.released.load(Ordering::Acquire) {
                    s2.polls.forget(fh.0);
                }
            }
            reply.poll(PollEvents::from_bits_retain(ev));
        });
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(fuser::Errno::ENOENT);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(fuser::Errno::EPERM);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(fuser::Errno::EPERM);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(fuser::Errno::EPERM);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(fuser::Errno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(fuser::Errno::EPERM);
    }
}

/// A mounted import.
pub struct Import {
    dir: PathBuf,
    s: Arc<Shared>,
    families: Vec<String>,
    unmounter: Unmounter,
    session: Option<JoinHandle<io::Result<()>>>,
}

impl Import {
    /// Where it is mounted.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The families of the remote tree (its root's directories) when it was mounted.
    pub fn families(&self) -> &[String] {
        &self.families
    }

    /// The client it goes through.
    pub fn client(&self) -> &Arc<Client> {
        &self.s.client
    }

    /// How many files are open through the mount.
    pub fn open_files(&self) -> usize {
        self.s.files.lock().len()
    }

    /// How many local processes have an attach of their own (those that created sockets
    /// and run).
    pub fn attaches(&self) -> usize {
        self.s.procs.lock().len()
    }

    /// How many polls wait for a socket's readiness (re-read on the mount's timer).
    pub fn waiting_polls(&self) -> usize {
        self.s.polls.waiting()
    }

    /// How many FUSE requests are under way.
    pub fn requests(&self) -> usize {
        self.s.ops.lock().len()
    }

    /// How many interrupts (`FUSE_INTERRUPT`: a caller got a signal) the mount has had.
    pub fn interrupts(&self) -> u64 {
        self.s.interrupts.load(Ordering::Relaxed)
    }

    /// A handle that unmounts from another thread.
    pub fn unmounter(&self) -> Unmounter {
        self.unmounter.clone()
    }

    /// Waits until the session ends (the tree was unmounted, here or by `umount`).
    pub fn join(mut self) -> io::Result<()> {
        match self.session.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the FUSE session panicked"))),
            None => Ok(()),
        }
    }

    /// Unmounts and waits for the session to end; with files still open the tree is
    /// detached and this returns at once.
    pub fn unmount(mut self) -> io::Result<Unmounted> {
        let how = self.unmounter.unmount()?;
        if how == Unmounted::Clean && self.open_files() == 0 {
            self.join()?;
            return Ok(Unmounted::Clean);
        }
        drop(self.session.take());
        Ok(Unmounted::Detached)
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        if self.session.is_some()
            && let Ok(Unmounted::Clean) = self.unmounter.unmount()
            && self.open_files() == 0
            && let Some(t) = self.session.take()
        {
            let _ = t.join();
        }
    }
}

fn io_err(what: &str, e: Errno) -> io::Error {
    io::Error::new(
        io::Error::from_raw_os_error(e.raw()).kind(),
        format!("{what}: {e}"),
    )
}

/// Mounts the tree `client` reaches at `dir`, and serves it from background threads until
/// it is unmounted.
///
/// `dir` must be an existing directory, empty unless [`ImportOptions::nonempty`], where no
/// live ksock tree is mounted.
pub fn import(client: Arc<Client>, dir: &Path, opts: &ImportOptions) -> io::Result<Import> {
    ksock_fuse::clear_stale_mount(dir);
    ksock_fuse::check_mountpoint(dir, opts.nonempty)?;
    ksock_fuse::raise_fd_limit();
    let uname = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| nix::unistd::getuid().as_raw().to_string(), |u| u.name);
    let (root, qid) = client
        .attach(&uname, "")
        .map_err(|e| io_err("the server refused the attach", e))?;
    let families = {
        let list = client.walk(root, &[]).and_then(|(fid, _)| {
            let r = client.open(fid, OREAD).and_then(|_| client.readdir(fid));
            let _ = client.clunk(fid);
            r
        });
        match list {
            Ok(l) => l.into_iter().map(|s| s.name).collect(),
            Err(e) => {
                let _ = client.clunk(root);
                return Err(io_err("cannot list the remote tree", e));
            }
        }
    };
    let max_io = client.max_io();
    let s = Arc::new(Shared {
        client: client.clone(),
        uname,
        root,
        root_path: qid.path,
        max_io,
        nodes: Mutex::new(HashMap::new()),
        files: Mutex::new(HashMap::new()),
        dirs: Mutex::new(HashMap::new()),
        next_fh: AtomicU64::new(1),
        ops: Mutex::new(HashMap::new()),
        early: Mutex::new((HashSet::new(), VecDeque::new())),
        interrupts: AtomicU64::new(0),
        procs: Mutex::new(HashMap::new()),
        owners: Mutex::new(HashMap::new()),
        prune: Mutex::new((false, PRUNE_AT)),
        users: Mutex::new(HashMap::new()),
        groups: Mutex::new(HashMap::new()),
        exits: OnceLock::new(),
        polls: Polls::default(),
    });
    let weak = Arc::downgrade(&s);
    s.polls.set_check(move |fh, fam, id| {
        if let Some(s) = weak.upgrade() {
            let s2 = s.clone();
            s.sock_events(fam, id, move |ev| s2.polls.checked(fh, ev));
        }
    });
    s.nodes.lock().insert(
        1,
        NodeInfo {
            path: Arc::new(Vec::new()),
            parent: 1,
            lookups: 1,
            open: 0,
            attr: None,
        },
    );
    let weak = Arc::downgrade(&s);
    let exits = Exits::with_handler(move |p| {
        if let Some(s) = weak.upgrade() {
            s.process_exited(p);
        }
    });
    let exits = match exits {
        Ok(x) => x,
        Err(e) => {
            s.shut();
            return Err(e);
        }
    };
    let _ = s.exits.set(exits);
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(opts.source.clone()),
        MountOption::CUSTOM("subtype=ksock".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoExec,
        MountOption::NoAtime,
    ];
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.threads.max(1));
    config.clone_fd = true;
    let mut session = match Session::new(ImportFs { s: s.clone() }, dir, &config) {
        Ok(x) => x,
        Err(e) => {
            s.shut();
            let hint = if !Path::new("/dev/fuse").exists() {
                " (/dev/fuse is missing: load the fuse module, or give the container the device)"
            } else if !nix::unistd::geteuid().is_root() {
                " (mounting needs root)"
            } else {
                ""
            };
            return Err(io::Error::new(
                e.kind(),
                format!("cannot mount FUSE at {}: {e}{hint}", dir.display()),
            ));
        }
    };
    let unmounter = Unmounter::new(dir, session.unmount_callable());
    let session = {
        let s = s.clone();
        thread::Builder::new()
            .name("ksock-import".into())
            .spawn(move || {
                let r = match session.run() {
                    Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(()),
                    r => r,
                };
                s.shut();
                r
            })?
    };
    Ok(Import {
        dir: dir.to_path_buf(),
        s,
        families,
        unmounter,
        session: Some(session),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn files_are_known_by_place_and_name() {
        assert_eq!(Kind::of(&p(&[]), true), Kind::Dir);
        assert_eq!(Kind::of(&p(&["local"]), true), Kind::Dir);
        assert_eq!(Kind::of(&p(&["local", "stream"]), false), Kind::Factory);
        assert_eq!(
            Kind::of(&p(&["local", "seqpacket:n"]), false),
            Kind::Factory
        );
        assert_eq!(Kind::of(&p(&["local", "addrs"]), false), Kind::Text);
        assert_eq!(Kind::of(&p(&["inet", "table"]), false), Kind::Text);
        assert_eq!(Kind::of(&p(&["inet", "stats"]), false), Kind::Text);
        assert_eq!(Kind::of(&p(&["local", "5"]), true), Kind::Dir);
        assert_eq!(Kind::of(&p(&["local", "5", "ctl"]), false), Kind::Ctl);
        assert_eq!(Kind::of(&p(&["local", "5", "data:n"]), false), Kind::Data);
        assert_eq!(Kind::of(&p(&["local", "5", "accept"]), false), Kind::Accept);
        assert_eq!(Kind::of(&p(&["local", "5", "listen"]), false), Kind::Listen);
        for t in ["status", "local", "remote", "err"] {
            assert_eq!(Kind::of(&p(&["local", "5", t]), false), Kind::Text, "{t}");
        }
        assert!(Kind::Data.fopen().contains(FopenFlags::FOPEN_NONSEEKABLE));
        assert!(Kind::Factory.fopen().contains(FopenFlags::FOPEN_STREAM));
        assert_eq!(Kind::Text.fopen(), FopenFlags::FOPEN_DIRECT_IO);
    }

    #[test]
    fn nonblocking_names_and_socket_keys() {
        assert!(has_nb("data:n") && has_nb("data:nonblock") && has_nb("x:a:n"));
        assert!(!has_nb("data") && !has_nb("n") && !has_nb("data:nb"));
        assert_eq!(with_nb("data"), "data:n");
        assert_eq!(with_nb("data:nonblock"), "data:nonblock");
        assert_eq!(base("accept:n"), "accept");
        assert_eq!(
            sock_key(&p(&["local", "12", "ctl"])),
            Some(("local".into(), 12))
        );
        assert_eq!(sock_key(&p(&["local", "12"])), Some(("local".into(), 12)));
        assert_eq!(sock_key(&p(&["local", "stream"])), None);
        assert_eq!(sock_key(&p(&["local"])), None);
    }

    #[test]
    fn status_and_table_show_the_owners_and_processes_recorded_here() {
        let o = Owner {
            uid: 1000,
            gid: 1000,
            pid: Some(77),
        };
        let status = "id 5\nstate listening\nowner 0\nnonblock off\npid 4242\nmss 3\n";
        let got = Rewrite::Status(o).apply(status.as_bytes());
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "id 5\nstate listening\nowner 1000\nnonblock off\npid 77\nmss 3\n"
        );
        let no_pid = Owner { pid: None, ..o };
        let got = Rewrite::Status(no_pid).apply(b"owner 0\npid 4242");
        assert_eq!(&got[..], b"owner 1000\npid 4242");
        let table = "id type owner pid\n5 stream 0 4242\n6 stream 0 4242\nbad\n";
        let got = Rewrite::Table([(6, o)].into_iter().collect()).apply(table.as_bytes());
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "id type owner pid\n5 stream 0 4242\n6 stream 1000 77\nbad\n"
        );
        // Not a table it knows: left alone.
        let got = Rewrite::Table([(6, o)].into_iter().collect()).apply(b"a b\n6 0\n");
        assert_eq!(&got[..], b"a b\n6 0\n");
    }

    #[test]
    fn the_remote_root_is_inode_one_and_no_two_inodes_meet() {
        assert_eq!(ino_of(77, 77), 1);
        assert_eq!(ino_of(1, 77), 77);
        assert_eq!(ino_of(5, 77), 5);
        assert_eq!(ino_of(1, 1), 1);
        assert_eq!(ino_of(9, 1), 9);
    }
}
