//! The namespace: lookups, attributes, listings, permission checks, opens, and the rules for
//! how long a socket lives.

use crate::ctl::{self, Command, CtlError};
use crate::handle::{Handle, HandleKind};
use crate::node::{Node, PathFlags, SockFile, parse_id, split_flags};
use crate::status::{Status, TABLE_HEADER};
use bytes::Bytes;
use core::future::{Future, poll_fn};
use ksock::{Account, Errno, Family, Result, SockAddr, SockType, Socket, Stack};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

/// Who makes a call: the user and group ids, and the calling process (thread) id, 0 if
/// unknown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cred {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process or thread id as the host reports it (0: none).
    pub pid: u32,
}

impl Cred {
    /// The superuser, with no process.
    pub const ROOT: Cred = Cred {
        uid: 0,
        gid: 0,
        pid: 0,
    };

    /// A user, with a process id.
    pub const fn new(uid: u32, gid: u32, pid: u32) -> Cred {
        Cred { uid, gid, pid }
    }
}

/// A process, told apart from a later one with the same pid by its start time; or a
/// transport's session standing for one ([`ProcId::session`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ProcId {
    /// Its process id (thread group id); 0 for a session.
    pub pid: u32,
    /// When it started, in whatever unit the host uses (0 when unknown); a session's number.
    pub start: u64,
}

impl ProcId {
    /// A creator that is not a local process: a transport's session (a 9P attach), known by
    /// a number the transport never reuses. It has pid 0, which no process has.
    pub const fn session(n: u64) -> ProcId {
        ProcId { pid: 0, start: n }
    }

    /// Whether this is a [`session`](Self::session).
    pub const fn is_session(self) -> bool {
        self.pid == 0
    }
}

/// Maps the `pid` of a [`Cred`] to the process that should keep a new socket alive.
pub type Resolver = Box<dyn Fn(u32) -> Option<ProcId> + Send + Sync>;

bitflags::bitflags! {
    /// Access wanted, with the bits of `access(2)`.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct Access: u32 {
        /// `R_OK`.
        const READ = 4;
        /// `W_OK`.
        const WRITE = 2;
        /// `X_OK`.
        const EXEC = 1;
    }
}

/// How many sockets one user may hold by default: far more than any one program needs,
/// and a bound on what a runaway or hostile user can take (an idle socket costs the server
/// about 0.5 KiB, at most 1.4 KiB with its records, so this is 130 to 370 MiB).
pub const DEFAULT_MAX_SOCKETS_PER_USER: usize = 262_144;

/// How many bytes one user's sockets may have queued and unread by default (1 GiB): some
/// 5 000 full 212 992-byte send buffers.
pub const DEFAULT_MAX_BUFFERED_PER_USER: usize = 1 << 30;

/// How a namespace is set up.
pub struct Config {
    /// Maps the `pid` of the [`Cred`] that opens a factory to the process whose life keeps
    /// the new socket alive (see [`NetFs::process_exited`]); `None` if the socket should live
    /// only while its files are open. By default the pid itself, with start time 0.
    pub resolver: Option<Resolver>,
    /// Owner of the static part of the tree (the root, families, factories, `addrs`).
    pub root_uid: u32,
    /// Group of the static part of the tree.
    pub root_gid: u32,
    /// How many sockets each uid may hold (created or accepted through the tree); past it,
    /// opening a factory, `accept` or `listen` fails with `EMFILE`.
    pub max_sockets_per_user: usize,
    /// How many bytes each uid's sockets may have queued and not yet read (records count
    /// with their 32-byte overhead); past it, a write fails with `ENOBUFS` (a stream write
    /// that fits partly writes the part).
    pub max_buffered_per_user: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resolver: None,
            root_uid: 0,
            root_gid: 0,
            max_sockets_per_user: DEFAULT_MAX_SOCKETS_PER_USER,
            max_buffered_per_user: DEFAULT_MAX_BUFFERED_PER_USER,
        }
    }
}

/// How a file is opened.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct OpenMode {
    /// For reading.
    pub read: bool,
    /// For writing.
    pub write: bool,
    /// With `O_NONBLOCK` (an `accept` or `listen` open returns `EAGAIN` instead of waiting).
    pub nonblock: bool,
}

impl OpenMode {
    /// Read-only.
    pub const READ: OpenMode = OpenMode {
        read: true,
        write: false,
        nonblock: false,
    };
    /// Write-only.
    pub const WRITE: OpenMode = OpenMode {
        read: false,
        write: true,
        nonblock: false,
    };
    /// Read-write.
    pub const RDWR: OpenMode = OpenMode {
        read: true,
        write: true,
        nonblock: false,
    };

    /// The same mode with `O_NONBLOCK`.
    pub const fn nonblocking(self) -> OpenMode {
        OpenMode {
            nonblock: true,
            ..self
        }
    }
}

/// The attributes of a node, as `stat` shows them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Attr {
    /// The node.
    pub node: Node,
    /// Its inode number.
    pub ino: u64,
    /// Whether it is a directory.
    pub dir: bool,
    /// Permission bits (`0o700` and the like).
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes: the length of text files, the unread bytes of `data`.
    pub size: u64,
    /// Link count.
    pub nlink: u32,
    /// Creation time of the socket (or of the namespace).
    pub time: SystemTime,
}

/// One entry of a directory listing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DirEntry {
    /// The name.
    pub name: String,
    /// The node.
    pub node: Node,
    /// Whether it is a directory.
    pub dir: bool,
    /// Where the listing resumes after this entry (pass it as `after`).
    pub cookie: u64,
}

/// Listing cookies: static entries count from here, sockets from `COOKIE_SOCKETS + id`.
const COOKIE_FIRST: u64 = 3;
const COOKIE_SOCKETS: u64 = 1 << 56;

/// What the namespace keeps per socket it created or accepted.
struct Meta {
    gid: u32,
    created: SystemTime,
    /// The creator's handle: keeps the socket open while its creator lives.
    pin: Option<Socket>,
    creator: Option<ProcId>,
    /// For display only (`status`, `table`): the process that opened the factory (the
    /// creator's thread group), or the `accept` or `listen` file this connection came
    /// from; `None` when the request named no process. Nothing is pinned by it.
    pid: Option<u32>,
    err: Option<String>,
    /// `headers on` (datagram sockets): `data` reads and writes carry an address line.
    headers: bool,
}

pub(crate) struct Inner {
    stack: Stack,
    metas: Mutex<HashMap<u64, Meta>>,
    resolver: Resolver,
    started: SystemTime,
    root_uid: u32,
    root_gid: u32,
    /// Each uid's account: its sockets and their queued bytes, with the limits.
    accounts: Mutex<HashMap<u32, Arc<Account>>>,
    max_sockets: usize,
    max_buffered: usize,
}

/// The `/net` namespace over a stack. Cloning shares it.
///
/// Nodes are addressed by inode number ([`Node::ino`]); the tree's root is inode 1.
/// Operations that may wait (opening `accept` or `listen`, reading and writing `data`,
/// a ctl `connect`) are futures: they never block a thread, and are woken through the
/// core's wakers. Any executor drives them; the FUSE face parks each one with its reply.
#[derive(Clone)]
pub struct NetFs {
    inner: Arc<Inner>,
}

impl NetFs {
    /// A namespace over `stack`, where a creator's process is just its pid.
    pub fn new(stack: Stack) -> NetFs {
        NetFs::with_config(stack, Config::default())
    }

    /// A namespace configured by `config`.
    pub fn with_config(stack: Stack, config: Config) -> NetFs {
        let resolver = config
            .resolver
            .unwrap_or_else(|| Box::new(|pid| (pid != 0).then_some(ProcId { pid, start: 0 })));
        NetFs {
            inner: Arc::new(Inner {
                stack,
                metas: Mutex::new(HashMap::new()),
                resolver,
                started: SystemTime::now(),
                root_uid: config.root_uid,
                root_gid: config.root_gid,
                accounts: Mutex::new(HashMap::new()),
                max_sockets: config.max_sockets_per_user,
                max_buffered: config.max_buffered_per_user,
            }),
        }
    }

    /// The stack.
    pub fn stack(&self) -> &Stack {
        &self.inner.stack
    }

    /// Looks `name` up in the directory `parent`.
    pub fn lookup(&self, parent: u64, name: &[u8], cred: &Cred) -> Result<Attr> {
        let node = self.inner.lookup(parent, name, cred)?;
        self.inner.getattr(node)
    }

    /// The attributes of a node (`ENOENT` once its socket is gone).
    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        let node = Node::from_ino(ino).ok_or(Errno::ENOENT)?;
        self.inner.getattr(node)
    }

    /// The inode of a directory's parent (for `..`): a socket's directory is in its
    /// family's, a family's in the root; the root (and a socket already gone) says the root.
    pub fn parent(&self, dir: Node) -> u64 {
        match dir {
            Node::SockDir { id } => self
                .inner
                .sock(id)
                .and_then(|s| self.inner.family_of(&s))
                .map_or(Node::Root.ino(), |(fam, _)| Node::Family { fam }.ino()),
            _ => Node::Root.ino(),
        }
    }

    /// Resolves a path relative to the root (`"local/7/data:n"`, leading `/` optional).
    pub fn resolve(&self, path: &str, cred: &Cred) -> Result<Attr> {
        let mut attr = self.getattr(Node::Root.ino())?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            attr = self.lookup(attr.ino, part.as_bytes(), cred)?;
        }
        Ok(attr)
    }

    /// Checks access as `access(2)` would.
    pub fn access(&self, ino: u64, want: Access, cred: &Cred) -> Result<()> {
        let node = Node::from_ino(ino).ok_or(Errno::ENOENT)?;
        self.inner.check(node, want, cred)
    }

    /// Lists a directory, starting after the entry whose cookie is `after` (0: from the
    /// start). `.` and `..` are not included.
    pub fn readdir(&self, ino: u64, after: u64, cred: &Cred) -> Result<Vec<DirEntry>> {
        self.readdir_max(ino, after, cred, usize::MAX)
    }

    /// [`readdir`](Self::readdir), giving at most `max` socket directories (the fixed
    /// entries always come whole): the cost of a call is `max`, not the number of sockets,
    /// so that a listing taken in pieces is linear overall.
    pub fn readdir_max(
        &self,
        ino: u64,
        after: u64,
        cred: &Cred,
        max: usize,
    ) -> Result<Vec<DirEntry>> {
        let node = Node::from_ino(ino).ok_or(Errno::ENOENT)?;
        self.inner.readdir(node, after, cred, max)
    }

    /// What `uid` holds now: its sockets, and the bytes they have queued and not yet read
    /// (both zero for a uid that never made a socket).
    pub fn usage(&self, uid: u32) -> (usize, usize) {
        self.inner
            .accounts
            .lock()
            .get(&uid)
            .map_or((0, 0), |a| (a.sockets(), a.bytes()))
    }

    /// The limits each uid has: sockets, and queued bytes.
    pub fn limits(&self) -> (usize, usize) {
        (self.inner.max_sockets, self.inner.max_buffered)
    }

    /// Opens a node. Opening a factory creates a socket; opening `accept` or `listen` waits
    /// for a connection (or is `EAGAIN` when nonblocking).
    pub fn open(
        &self,
        ino: u64,
        mode: OpenMode,
        cred: Cred,
    ) -> impl Future<Output = Result<Arc<Handle>>> + Send + 'static {
        let inner = self.inner.clone();
        async move { inner.open(ino, mode, cred, None).await }
    }

    /// [`open`](Self::open) on behalf of `creator` rather than the process the
    /// configuration's resolver finds for `cred.pid`: a socket a factory open creates lives
    /// while `creator` does (until [`process_exited`](Self::process_exited) with it) or any
    /// of its files is open. A transport whose client is not a local process names it here
    /// (a 9P attach: [`ProcId::session`]); `None` makes a socket that lives only while its
    /// files are open.
    pub fn open_for(
        &self,
        ino: u64,
        mode: OpenMode,
        cred: Cred,
        creator: Option<ProcId>,
    ) -> impl Future<Output = Result<Arc<Handle>>> + Send + 'static {
        let inner = self.inner.clone();
        async move { inner.open(ino, mode, cred, Some(creator)).await }
    }

    /// The processes (and sessions) currently keeping sockets alive.
    pub fn creators(&self) -> Vec<ProcId> {
        let metas = self.inner.metas.lock();
        let set: HashSet<ProcId> = metas
            .values()
            .filter(|m| m.pin.is_some())
            .filter_map(|m| m.creator)
            .collect();
        set.into_iter().collect()
    }

    /// Tells the namespace that a process has ended: the sockets it created live on only
    /// while some file of theirs is open.
    pub fn process_exited(&self, p: ProcId) {
        let pins: Vec<(u64, Socket)> = {
            let mut metas = self.inner.metas.lock();
            metas
                .iter_mut()
                .filter(|(_, m)| m.creator == Some(p))
                .filter_map(|(id, m)| m.pin.take().map(|s| (*id, s)))
                .collect()
        };
        for (id, sock) in pins {
            drop(sock);
            self.inner.reap(id);
        }
    }

    /// How many sockets the namespace keeps records for (for leak checks).
    pub fn tracked(&self) -> usize {
        self.inner.metas.lock().len()
    }
}

fn perm_of(node: Node) -> u16 {
    match node {
        Node::Root | Node::Family { .. } => 0o555,
        Node::Factory { .. } => 0o666,
        Node::Addrs { .. } | Node::Table { .. } | Node::Stats { .. } => 0o444,
        Node::SockDir { .. } => 0o700,
        Node::File { file, .. } if file.writable() => 0o600,
        Node::File { .. } => 0o400,
    }
}

/// The credentials a socket records for its peers: the requester's uid and gid, and the
/// process (thread group) it belongs to, which FUSE gives only as a thread id.
fn core_cred(cred: &Cred, process: Option<ProcId>) -> ksock::Cred {
    ksock::Cred {
        pid: process
            .filter(|p| !p.is_session())
            .map_or(cred.pid, |p| p.pid),
        uid: cred.uid,
        gid: cred.gid,
    }
}

/// The process shown as a socket's maker: the requester's thread group when known, else
/// the id the request carried; none for a request without a process.
fn display_pid(cred: &Cred, process: Option<ProcId>) -> Option<u32> {
    (cred.pid != 0).then(|| core_cred(cred, process).pid)
}

/// Who refused a ctl command: the socket (its reason is its own) or the face (a bad
/// address, a socket already gone).
#[derive(Clone, Copy)]
enum By {
    Socket,
    Face,
}

/// A one-line explanation for the failures the face makes itself (the socket's own
/// failures carry their reason: [`Socket::error_reason`]).
fn hint(sock: &Socket, op: &str, e: Errno) -> Option<&'static str> {
    Some(match (op, e) {
        // A data file whose socket ended while it was open.
        ("write", Errno::EPIPE) if sock.is_closed() => "the socket has ended",
        _ => return None,
    })
}

impl Inner {
    fn family(&self, fam: u8) -> Option<Arc<dyn Family>> {
        self.stack.families().into_iter().nth(fam as usize)
    }

    fn family_of(&self, sock: &Socket) -> Option<(u8, Arc<dyn Family>)> {
        self.stack
            .families()
            .into_iter()
            .enumerate()
            .find(|(_, f)| f.serves(sock.domain()))
            .map(|(i, f)| (i as u8, f))
    }

    fn sock(&self, id: u64) -> Option<Socket> {
        self.stack.get(id)
    }

    fn owner(sock: &Socket) -> u32 {
        sock.owner().unwrap_or(0)
    }

    /// Forgets the record of a socket that has ended.
    pub(crate) fn reap(&self, id: u64) {
        if self.stack.get(id).is_none() {
            let gone = self.metas.lock().remove(&id);
            drop(gone);
        }
    }

    /// Forgets a socket's record now (after `hangup`).
    fn forget(&self, id: u64) {
        let gone = self.metas.lock().remove(&id);
        drop(gone);
    }

    /// Whether a socket's `data` reads and writes carry address lines (`headers on`).
    pub(crate) fn headers(&self, id: u64) -> bool {
        self.metas.lock().get(&id).is_some_and(|m| m.headers)
    }

    /// Parses an address in the text form of `sock`'s family.
    pub(crate) fn parse_addr(&self, sock: &Socket, text: &[u8]) -> Result<SockAddr> {
        let (_, fam) = self.family_of(sock).ok_or(Errno::EAFNOSUPPORT)?;
        fam.parse_addr(text)
    }

    /// Records the last error of a socket for its `err` file.
    pub(crate) fn record(&self, id: u64, text: String) {
        if let Some(m) = self.metas.lock().get_mut(&id) {
            m.err = Some(text);
        }
    }

    /// Records `e`, met by `op` on `sock` (`EAGAIN` is not an error worth keeping), with
    /// the reason the socket's family or the core gave for it, else the face's own.
    pub(crate) fn record_errno(&self, sock: &Socket, op: &str, e: Errno) {
        if e == Errno::EAGAIN || e == Errno::EINTR {
            return;
        }
        let hint = match sock.error_reason(e) {
            Some(why) => Some(why.to_string()),
            None => self
                .limit_hint(sock, e)
                .or_else(|| hint(sock, op, e).map(str::to_string)),
        };
        let text = match hint {
            Some(h) => format!("{}: {op}: {} ({h})", e.name(), e.message()),
            None => format!("{}: {op}: {}", e.name(), e.message()),
        };
        self.record(sock.id(), text);
    }

    /// `uid`'s account, made on first use.
    fn account(&self, uid: u32) -> Arc<Account> {
        self.accounts
            .lock()
            .entry(uid)
            .or_insert_with(|| Account::new(self.max_sockets, self.max_buffered))
            .clone()
    }

    /// Which limit of its account `sock` met, if `e` is what a limit gives.
    fn limit_hint(&self, sock: &Socket, e: Errno) -> Option<String> {
        if e != Errno::EMFILE && e != Errno::ENOBUFS {
            return None;
        }
        let acct = sock.account()?;
        let uid = self
            .accounts
            .lock()
            .iter()
            .find(|(_, a)| Arc::ptr_eq(a, &acct))
            .map(|(uid, _)| *uid)?;
        Some(if e == Errno::EMFILE {
            format!(
                "too many sockets for uid {uid} (limit {})",
                acct.max_sockets()
            )
        } else {
            format!(
                "too many bytes buffered for uid {uid} (limit {})",
                acct.max_bytes()
            )
        })
    }

    fn check_owner(&self, sock: &Socket, cred: &Cred) -> Result<()> {
        if cred.uid == 0 || cred.uid == Self::owner(sock) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    fn check(&self, node: Node, want: Access, cred: &Cred) -> Result<()> {
        if let Some(id) = node.socket_id() {
            let sock = self.sock(id).ok_or(Errno::ENOENT)?;
            self.check_owner(&sock, cred)?;
        }
        let writable = match node {
            Node::Root
            | Node::Family { .. }
            | Node::Addrs { .. }
            | Node::Table { .. }
            | Node::Stats { .. } => false,
            Node::Factory { .. } | Node::SockDir { .. } => true,
            Node::File { file, .. } => file.writable(),
        };
        if want.contains(Access::WRITE) && !writable {
            return Err(Errno::EACCES);
        }
        if want.contains(Access::EXEC) && !node.is_dir() {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    fn lookup(&self, parent: u64, name: &[u8], cred: &Cred) -> Result<Node> {
        let parent = Node::from_ino(parent).ok_or(Errno::ENOENT)?;
        let base = name.split(|&b| b == b':').next().unwrap_or_default();
        match parent {
            Node::Root => {
                let (fam, _) = self
                    .stack
                    .families()
                    .into_iter()
                    .enumerate()
                    .find(|(_, f)| f.name().as_bytes() == base)
                    .ok_or(Errno::ENOENT)?;
                if base.len() != name.len() {
                    return Err(Errno::EINVAL);
                }
                Ok(Node::Family { fam: fam as u8 })
            }
            Node::Family { fam } => {
                let family = self.family(fam).ok_or(Errno::ENOENT)?;
                if base == b"addrs" {
                    let (_, flags) = split_flags(name)?;
                    return Ok(Node::Addrs { fam, flags });
                }
                if base == b"table" {
                    let (_, flags) = split_flags(name)?;
                    return Ok(Node::Table { fam, flags });
                }
                if base == b"stats" {
                    let (_, flags) = split_flags(name)?;
                    return Ok(Node::Stats { fam, flags });
                }
                if let Some(ty) = core::str::from_utf8(base)
                    .ok()
                    .and_then(ksock::SockType::from_name)
                    .filter(|t| family.types().contains(t))
                {
                    let (_, flags) = split_flags(name)?;
                    return Ok(Node::Factory { fam, ty, flags });
                }
                let id = parse_id(base).ok_or(Errno::ENOENT)?;
                let sock = self.sock(id).ok_or(Errno::ENOENT)?;
                if !family.serves(sock.domain()) {
                    return Err(Errno::ENOENT);
                }
                if base.len() != name.len() {
                    return Err(Errno::EINVAL);
                }
                Ok(Node::SockDir { id })
            }
            Node::SockDir { id } => {
                let sock = self.sock(id).ok_or(Errno::ENOENT)?;
                self.check_owner(&sock, cred)?;
                let file = SockFile::from_name(base).ok_or(Errno::ENOENT)?;
                let (_, flags) = split_flags(name)?;
                Ok(Node::File { id, file, flags })
            }
            Node::Factory { .. }
            | Node::Addrs { .. }
            | Node::Table { .. }
            | Node::Stats { .. }
            | Node::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn addrs_text(&self, fam: u8) -> Result<Bytes> {
        let family = self.family(fam).ok_or(Errno::ENOENT)?;
        let mut s = String::new();
        for a in family.listening() {
            s.push_str(&crate::status::show_addr(&a));
            s.push('\n');
        }
        Ok(Bytes::from(s))
    }

    /// The `stats` file of a family: its counters, `name value` per line.
    fn stats_text(&self, fam: u8) -> Result<Bytes> {
        let family = self.family(fam).ok_or(Errno::ENOENT)?;
        let mut s = String::new();
        for (k, v) in family.counters() {
            s.push_str(k);
            s.push(' ');
            s.push_str(&v.to_string());
            s.push('\n');
        }
        Ok(Bytes::from(s))
    }

    /// The `table` file of a family: a header, then one line per live socket (everybody's,
    /// as `/proc/net/unix`: it shows no data).
    fn table_text(&self, fam: u8) -> Result<Bytes> {
        let family = self.family(fam).ok_or(Errno::ENOENT)?;
        let infos: Vec<_> = self
            .stack
            .sockets()
            .into_iter()
            .filter(|i| family.serves(i.domain))
            .collect();
        let mut s = String::with_capacity(TABLE_HEADER.len() + infos.len() * 64);
        s.push_str(TABLE_HEADER);
        let metas = self.metas.lock();
        for info in &infos {
            let mut st = Status::from_info(info, family.name());
            st.pid = metas.get(&info.id).and_then(|m| m.pid);
            s.push_str(&st.table_line());
        }
        Ok(Bytes::from(s))
    }

    /// The text of a read-only socket file, or of `ctl` (the id).
    fn file_text(&self, sock: &Socket, file: SockFile) -> Result<Bytes> {
        let line = |a: SockAddr| {
            if a.is_unnamed() {
                Bytes::new()
            } else {
                Bytes::from(format!("{}\n", crate::status::show_addr(&a)))
            }
        };
        Ok(match file {
            SockFile::Ctl => Bytes::from(sock.id().to_string()),
            SockFile::Local => line(sock.local_addr()?),
            SockFile::Remote => sock.peer_addr().map(line).unwrap_or_default(),
            SockFile::Status => {
                let info = sock.info()?;
                let fam = self.family_of(sock).map(|f| f.1.name()).unwrap_or("?");
                let mut st = Status::from_info(&info, fam);
                st.pid = self.metas.lock().get(&sock.id()).and_then(|m| m.pid);
                Bytes::from(st.render())
            }
            SockFile::Err => {
                let metas = self.metas.lock();
                match metas.get(&sock.id()).and_then(|m| m.err.as_ref()) {
                    Some(e) => Bytes::from(format!("{e}\n")),
                    None => Bytes::new(),
                }
            }
            SockFile::Data | SockFile::Accept | SockFile::Listen => Bytes::new(),
        })
    }

    fn getattr(&self, node: Node) -> Result<Attr> {
        let mut attr = Attr {
            node,
            ino: node.ino(),
            dir: node.is_dir(),
            perm: perm_of(node),
            uid: self.root_uid,
            gid: self.root_gid,
            size: 0,
            nlink: if node.is_dir() { 2 } else { 1 },
            time: self.started,
        };
        match node {
            Node::Root => {
                attr.nlink = 2 + self.stack.families().len() as u32;
            }
            Node::Family { fam } | Node::Factory { fam, .. } => {
                self.family(fam).ok_or(Errno::ENOENT)?;
            }
            Node::Addrs { fam, .. } => attr.size = self.addrs_text(fam)?.len() as u64,
            // Like a /proc table, it has no size until read (computing it would cost a pass
            // over every socket on each stat).
            Node::Table { fam, .. } => {
                self.family(fam).ok_or(Errno::ENOENT)?;
            }
            Node::Stats { fam, .. } => attr.size = self.stats_text(fam)?.len() as u64,
            Node::SockDir { id } | Node::File { id, .. } => {
                let sock = self.sock(id).ok_or(Errno::ENOENT)?;
                attr.uid = Self::owner(&sock);
                if let Some(m) = self.metas.lock().get(&id) {
                    attr.gid = m.gid;
                    attr.time = m.created;
                } else {
                    attr.gid = 0;
                }
                if let Node::File { file, .. } = node {
                    attr.size = match file {
                        SockFile::Data => sock.nread().unwrap_or(0) as u64,
                        SockFile::Accept | SockFile::Listen => 0,
                        f => self.file_text(&sock, f)?.len() as u64,
                    };
                }
            }
        }
        Ok(attr)
    }

    fn readdir(&self, node: Node, after: u64, cred: &Cred, max: usize) -> Result<Vec<DirEntry>> {
        self.check(node, Access::READ, cred)?;
        let mut out = Vec::new();
        let mut push_static = |i: usize, name: &str, node: Node| {
            let cookie = COOKIE_FIRST + i as u64;
            if cookie > after {
                out.push(DirEntry {
                    name: name.into(),
                    node,
                    dir: node.is_dir(),
                    cookie,
                });
            }
        };
        match node {
            Node::Root => {
                for (i, f) in self.stack.families().iter().enumerate() {
                    push_static(i, f.name(), Node::Family { fam: i as u8 });
                }
            }
            Node::Family { fam } => {
                let family = self.family(fam).ok_or(Errno::ENOENT)?;
                let types = family.types();
                for (i, ty) in types.iter().enumerate() {
                    let n = Node::Factory {
                        fam,
                        ty: *ty,
                        flags: PathFlags::empty(),
                    };
                    push_static(i, ty.name(), n);
                }
                push_static(
                    types.len(),
                    "addrs",
                    Node::Addrs {
                        fam,
                        flags: PathFlags::empty(),
                    },
                );
                // `table` is looked up by name but not listed (as /proc lists no thread
                // ids): the family's listing stays factories, `addrs`, then sockets.
                // Resume after the last id given: no rescan of what came before.
                let after_id = after.saturating_sub(COOKIE_SOCKETS);
                for id in self.stack.ids_after(|d| family.serves(d), after_id, max) {
                    out.push(DirEntry {
                        name: id.to_string(),
                        node: Node::SockDir { id },
                        dir: true,
                        cookie: COOKIE_SOCKETS + id,
                    });
                }
            }
            Node::SockDir { id } => {
                for (i, f) in SockFile::ALL.iter().enumerate() {
                    let n = Node::File {
                        id,
                        file: *f,
                        flags: PathFlags::empty(),
                    };
                    push_static(i, f.name(), n);
                }
            }
            _ => return Err(Errno::ENOTDIR),
        }
        Ok(out)
    }

    /// `creator`: `None` to ask the resolver, `Some(c)` to use `c`.
    async fn open(
        self: Arc<Self>,
        ino: u64,
        mode: OpenMode,
        cred: Cred,
        creator: Option<Option<ProcId>>,
    ) -> Result<Arc<Handle>> {
        let node = Node::from_ino(ino).ok_or(Errno::ENOENT)?;
        let path_nb = node.flags().contains(PathFlags::NONBLOCK);
        match node {
            Node::Root | Node::Family { .. } | Node::SockDir { .. } => Err(Errno::EISDIR),
            Node::Factory { fam, ty, .. } => {
                let family = self.family(fam).ok_or(Errno::ENOENT)?;
                let sock = self.stack.socket(family.namespace_domain(), ty, 0)?;
                // Past the uid's limit the new socket ends here (EMFILE).
                sock.set_account(self.account(cred.uid))?;
                sock.set_owner(cred.uid)?;
                let creator = match creator {
                    Some(c) => c,
                    None if cred.pid != 0 => (self.resolver)(cred.pid),
                    None => None,
                };
                sock.set_cred(core_cred(&cred, creator))?;
                self.metas.lock().insert(
                    sock.id(),
                    Meta {
                        gid: cred.gid,
                        created: SystemTime::now(),
                        pin: creator.map(|_| sock.clone()),
                        creator,
                        pid: display_pid(&cred, creator),
                        err: None,
                        headers: false,
                    },
                );
                let text = Bytes::from(sock.id().to_string());
                Ok(Handle::new(
                    self.clone(),
                    node,
                    HandleKind::Ctl,
                    Some(sock),
                    text,
                    path_nb,
                ))
            }
            Node::Addrs { fam, .. } | Node::Table { fam, .. } | Node::Stats { fam, .. } => {
                if mode.write {
                    return Err(Errno::EACCES);
                }
                let text = match node {
                    Node::Table { .. } => self.table_text(fam)?,
                    Node::Stats { .. } => self.stats_text(fam)?,
                    _ => self.addrs_text(fam)?,
                };
                Ok(Handle::new(
                    self.clone(),
                    node,
                    HandleKind::Text,
                    None,
                    text,
                    path_nb,
                ))
            }
            Node::File { id, file, .. } => {
                let sock = self.sock(id).ok_or(Errno::ENOENT)?;
                self.check_owner(&sock, &cred)?;
                if mode.write && !file.writable() {
                    return Err(Errno::EACCES);
                }
                let nb = path_nb || sock.is_nonblocking();
                match file {
                    SockFile::Ctl => {
                        let text = self.file_text(&sock, file)?;
                        Ok(Handle::new(
                            self.clone(),
                            node,
                            HandleKind::Ctl,
                            Some(sock),
                            text,
                            nb,
                        ))
                    }
                    SockFile::Data => Ok(Handle::new(
                        self.clone(),
                        node,
                        HandleKind::Data,
                        Some(sock),
                        Bytes::new(),
                        nb,
                    )),
                    SockFile::Accept | SockFile::Listen => {
                        let r = if nb || mode.nonblock {
                            sock.try_accept()
                        } else {
                            poll_fn(|cx| sock.poll_accept(cx)).await
                        };
                        // The connection joins the listener's account (the core does it);
                        // past that uid's socket limit, EMFILE and nothing is dequeued.
                        let (conn, _peer) = r.inspect_err(|e| {
                            self.record_errno(&sock, "accept", *e);
                        })?;
                        conn.set_owner(cred.uid)?;
                        let acceptor = (cred.pid != 0).then(|| (self.resolver)(cred.pid));
                        let acceptor = acceptor.flatten();
                        conn.set_cred(core_cred(&cred, acceptor))?;
                        self.metas.lock().insert(
                            conn.id(),
                            Meta {
                                gid: cred.gid,
                                created: SystemTime::now(),
                                pin: None,
                                creator: None,
                                pid: display_pid(&cred, acceptor),
                                err: None,
                                headers: false,
                            },
                        );
                        let (kind, text) = if file == SockFile::Listen {
                            (HandleKind::Ctl, Bytes::from(conn.id().to_string()))
                        } else {
                            (HandleKind::Data, Bytes::new())
                        };
                        Ok(Handle::new(self.clone(), node, kind, Some(conn), text, nb))
                    }
                    SockFile::Local | SockFile::Remote | SockFile::Status | SockFile::Err => {
                        let text = self.file_text(&sock, file)?;
                        Ok(Handle::new(
                            self.clone(),
                            node,
                            HandleKind::Text,
                            Some(sock),
                            text,
                            nb,
                        ))
                    }
                }
            }
        }
    }

    /// Runs a ctl write on `sock`.
    pub(crate) async fn ctl(&self, sock: &Socket, data: &[u8], nonblock: bool) -> Result<usize> {
        let id = sock.id();
        let fail = |e: CtlError| {
            self.record(id, e.to_string());
            Err(e.errno)
        };
        let cmds = match ctl::split(data) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        for words in cmds {
            let cmd = match ctl::command(&words) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            if let Err((e, by)) = self.run(sock, &cmd, nonblock).await {
                let h = match (by, &cmd) {
                    // The socket's own failure: in its family's (or the core's) words.
                    (By::Socket, _) => sock.error_reason(e),
                    (By::Face, Command::Bind(a) | Command::Connect(a))
                        if e == Errno::EINVAL && a.is_empty() =>
                    {
                        Some("the address is empty")
                    }
                    (By::Face, Command::Bind(_) | Command::Connect(_)) if e == Errno::EINVAL => {
                        self.family_of(sock).and_then(|(_, f)| f.addr_forms())
                    }
                    (By::Face, Command::Headers(_)) if e == Errno::EINVAL => {
                        Some("headers are for datagram sockets")
                    }
                    (By::Face, _) => None,
                };
                let what = match h {
                    Some(h) => format!("{}: {} ({h})", cmd.describe(), e.message()),
                    None => format!("{}: {}", cmd.describe(), e.message()),
                };
                // A ctl command that would block is a failure of that write, worth keeping
                // (unlike a read's EAGAIN); an interrupted one is not.
                if e != Errno::EINTR {
                    self.record(id, format!("{}: {what}", e.name()));
                }
                return Err(e);
            }
        }
        Ok(data.len())
    }

    /// Runs one ctl command; a failure says whether the socket or the face refused it.
    async fn run(
        &self,
        sock: &Socket,
        cmd: &Command,
        nonblock: bool,
    ) -> core::result::Result<(), (Errno, By)> {
        let parse = |a: &[u8]| -> core::result::Result<SockAddr, (Errno, By)> {
            let (_, fam) = self
                .family_of(sock)
                .ok_or((Errno::EAFNOSUPPORT, By::Face))?;
            fam.parse_addr(a).map_err(|e| (e, By::Face))
        };
        let on_sock = |e| (e, By::Socket);
        match cmd {
            Command::Bind(a) => sock.bind(&parse(a)?).map_err(on_sock),
            Command::Listen(n) => sock.listen(*n).map_err(on_sock),
            Command::Connect(a) => {
                let addr = parse(a)?;
                if nonblock {
                    sock.try_connect(&addr)
                } else {
                    poll_fn(|cx| sock.poll_connect(cx, &addr)).await
                }
                .map_err(on_sock)
            }
            Command::Shutdown(how) => sock.shutdown(*how).map_err(on_sock),
            Command::Hangup => {
                if sock.is_closed() {
                    return Err((Errno::EBADF, By::Face));
                }
                sock.hangup();
                self.forget(sock.id());
                Ok(())
            }
            Command::Nonblock(on) => sock.set_nonblocking(*on).map_err(on_sock),
            Command::Headers(on) => {
                if sock.ty() != SockType::DGRAM {
                    return Err((Errno::EINVAL, By::Face));
                }
                match self.metas.lock().get_mut(&sock.id()) {
                    Some(m) => m.headers = *on,
                    None => return Err((Errno::EBADF, By::Face)),
                }
                Ok(())
            }
        }
    }
}
