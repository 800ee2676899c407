//! The FUSE file system: each FUSE operation mapped onto the namespace.

use crate::exits::Exits;
use bytes::Bytes;
use fuser::{
    AccessFlags, BsdFileFlags, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, KernelConfig, LockOwner, OpenAccMode, OpenFlags, PollEvents, PollFlags, PollNotifier,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyPoll, ReplyWrite, Request, RequestId, TimeOrNow, WriteFlags,
};
use ksock::{Errno, Events};
use ksock_netfs::park::Exec;
use ksock_netfs::{Access, Attr, Cred, Handle, NetFs, Node, OpenMode, SockFile};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, SystemTime};

/// Attributes and entries are never cached: sizes change, sockets come and go.
const TTL: Duration = Duration::ZERO;

/// The largest write the kernel sends in one request (records up to this size stay whole).
pub const MAX_WRITE: u32 = 1 << 20;

/// The size every socket file (factory, `ctl`, `data`, `accept`, `listen`) reports.
///
/// The kernel takes the inode's lock exclusively for a direct write it thinks extends the
/// file (`fuse_io_past_eof`: position + count > size), and a stream file's writes are all at
/// position 0. One `write(2)` moves at most `MAX_RW_COUNT` bytes (`INT_MAX & PAGE_MASK`:
/// `2^31 - 4096` with 4 KiB pages, less with larger ones), so a size of exactly that is one
/// no write can pass; it also still fits a 32-bit `off_t`, so `stat` works for programs
/// built without large-file support.
pub const SOCKET_FILE_SIZE: u64 = (i32::MAX as u64) & !4095;

/// How a file is opened: socket files are streams (no file position, so reads and writes
/// on one open file never serialize on the position lock) whose direct writes may run in
/// parallel (so one write waiting for its socket holds up no other write to the same inode:
/// a factory, an `accept` file shared by every connection it accepted); text snapshots
/// (`status`, `local`, ...) are seekable, so that tools that trust `st_size` or seek work on
/// them.
fn fopen(h: &Handle) -> FopenFlags {
    if h.seekable() {
        FopenFlags::FOPEN_DIRECT_IO
    } else {
        FopenFlags::FOPEN_DIRECT_IO
            | FopenFlags::FOPEN_NONSEEKABLE
            | FopenFlags::FOPEN_STREAM
            | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES
    }
}

/// Whether a node is a socket file: opened as a stream, sized [`SOCKET_FILE_SIZE`].
fn is_socket_file(node: Node) -> bool {
    match node {
        Node::Factory { .. } => true,
        Node::File { file, .. } => matches!(
            file,
            SockFile::Ctl | SockFile::Data | SockFile::Accept | SockFile::Listen
        ),
        _ => false,
    }
}

fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.raw())
}

fn cred(req: &Request) -> Cred {
    Cred::new(req.uid(), req.gid(), req.pid())
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: if is_socket_file(a.node) {
            SOCKET_FILE_SIZE
        } else {
            a.size
        },
        blocks: 0,
        atime: a.time,
        mtime: a.time,
        ctime: a.time,
        crtime: a.time,
        kind: if a.dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// The attributes of a file opened on `ino` whose socket ended before they could be read:
/// the opener's, as the namespace gives a socket's files to their owner.
fn opener_attr(ino: u64, who: &Cred) -> Attr {
    let node = Node::from_ino(ino).unwrap_or(Node::Root);
    Attr {
        node,
        ino,
        dir: false,
        perm: 0o600,
        uid: who.uid,
        gid: who.gid,
        size: 0,
        nlink: 1,
        time: SystemTime::now(),
    }
}

/// Poll bits in, readiness interest out.
fn interest(ev: PollEvents) -> Events {
    let bits = ev.bits();
    let mut out = Events::ERR | Events::HUP;
    if bits & (libc::POLLIN | libc::POLLRDNORM) as u32 != 0 {
        out |= Events::IN;
    }
    if bits & (libc::POLLOUT | libc::POLLWRNORM) as u32 != 0 {
        out |= Events::OUT;
    }
    if bits & libc::POLLRDHUP as u32 != 0 {
        out |= Events::RDHUP;
    }
    out
}

/// Readiness in, poll bits out. A socket that has ended reads as an error and a hang-up
/// (its reads and writes fail with `EBADF`).
fn revents(ev: Events) -> PollEvents {
    let mut bits = 0u32;
    if ev.contains(Events::IN) {
        bits |= (libc::POLLIN | libc::POLLRDNORM) as u32;
    }
    if ev.contains(Events::OUT) {
        bits |= (libc::POLLOUT | libc::POLLWRNORM) as u32;
    }
    if ev.contains(Events::ERR) {
        bits |= libc::POLLERR as u32;
    }
    if ev.contains(Events::HUP) {
        bits |= libc::POLLHUP as u32;
    }
    if ev.contains(Events::RDHUP) {
        bits |= libc::POLLRDHUP as u32;
    }
    if ev.contains(Events::NVAL) {
        bits |= (libc::POLLIN | libc::POLLERR | libc::POLLHUP) as u32;
    }
    PollEvents::from_bits_retain(bits)
}

/// Sends the kernel a poll notification when the socket changes.
struct PollWake {
    ph: Mutex<Option<PollNotifier>>,
}

impl Wake for PollWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let ph = self.ph.lock().take();
        if let Some(ph) = ph {
            // The file may be gone from the kernel's side: nothing to tell then.
            let _ = ph.notify();
        }
    }
}

struct OpenFile {
    handle: Arc<Handle>,
    poll: Arc<PollWake>,
    ino: u64,
}

/// What is known of an inode while files opened on it are open.
struct Opened {
    /// How many of them.
    count: usize,
    /// Its attributes when last seen: answered after its socket has ended, since an open
    /// file's attributes stay valid until it is closed (`fstat` on it must not fail).
    attr: Attr,
}

/// The open files, by FUSE file handle, in shards so that no single lock sits on every
/// read and write; and the inodes they were opened on.
pub(crate) struct Files {
    shards: Vec<RwLock<HashMap<u64, Arc<OpenFile>>>>,
    inodes: Vec<Mutex<HashMap<u64, Opened>>>,
    next: AtomicU64,
}

const SHARDS: u64 = 64;

impl Files {
    fn new() -> Files {
        Files {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            inodes: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next: AtomicU64::new(1),
        }
    }

    fn shard(&self, fh: u64) -> &RwLock<HashMap<u64, Arc<OpenFile>>> {
        &self.shards[(fh % SHARDS) as usize]
    }

    fn inode_shard(&self, ino: u64) -> &Mutex<HashMap<u64, Opened>> {
        // Inode numbers keep the socket id in their high bits.
        &self.inodes[((ino ^ ino >> 16) % SHARDS) as usize]
    }

    /// Records a file opened on the inode of `attr`.
    fn insert(&self, handle: Arc<Handle>, attr: Attr) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        let ino = attr.ino;
        self.inode_shard(ino)
            .lock()
            .entry(ino)
            .and_modify(|o| {
                o.count += 1;
                o.attr = attr;
            })
            .or_insert(Opened { count: 1, attr });
        let f = Arc::new(OpenFile {
            handle,
            poll: Arc::new(PollWake {
                ph: Mutex::new(None),
            }),
            ino,
        });
        self.shard(fh).write().insert(fh, f);
        fh
    }

    fn get(&self, fh: u64) -> Option<Arc<OpenFile>> {
        self.shard(fh).read().get(&fh).cloned()
    }

    fn remove(&self, fh: u64) -> Option<Arc<OpenFile>> {
        let f = self.shard(fh).write().remove(&fh)?;
        let mut inodes = self.inode_shard(f.ino).lock();
        if let Some(o) = inodes.get_mut(&f.ino) {
            o.count -= 1;
            if o.count == 0 {
                inodes.remove(&f.ino);
            }
        }
        drop(inodes);
        Some(f)
    }

    /// Keeps the attributes of an inode with open files up to date.
    fn seen(&self, attr: &Attr) {
        if let Some(o) = self.inode_shard(attr.ino).lock().get_mut(&attr.ino) {
            o.attr = *attr;
        }
    }

    /// The last attributes of an inode that still has open files.
    fn last_attr(&self, ino: u64) -> Option<Attr> {
        self.inode_shard(ino).lock().get(&ino).map(|o| o.attr)
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Drops every open file (when the mount ends).
    pub(crate) fn clear(&self) {
        for s in &self.shards {
            let all: Vec<_> = s.write().drain().collect();
            drop(all);
        }
        for s in &self.inodes {
            s.lock().clear();
        }
    }
}

/// The mounted namespace.
pub(crate) struct KsockFs {
    fs: NetFs,
    files: Arc<Files>,
    exec: Arc<Exec>,
    exits: Arc<Exits>,
}

/// Socket directories asked of the namespace per `readdir` reply (a 4 KiB reply holds
/// about 130 of them; the rest are asked again from the last offset given).
const READDIR_BATCH: usize = 512;

impl KsockFs {
    pub(crate) fn new(fs: NetFs, files: Arc<Files>, exec: Arc<Exec>, exits: Arc<Exits>) -> KsockFs {
        KsockFs {
            fs,
            files,
            exec,
            exits,
        }
    }

    pub(crate) fn files() -> Arc<Files> {
        Arc::new(Files::new())
    }
}

impl Filesystem for KsockFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // A record larger than one write request would be split: allow large ones.
        let _ = config.set_max_write(MAX_WRITE);
        Ok(())
    }

    /// `FUSE_INTERRUPT`: the caller of request `unique` got a signal (one it catches, or a
    /// fatal one, or a stop). A parked request is answered with `EINTR`, and the kernel
    /// returns that to the caller, which runs its handler or dies (`request_wait_answer` in
    /// `fs/fuse/dev.c`). Linux's own sockets return `-ERESTARTSYS` there, restarting the call
    /// after an `SA_RESTART` handler or a stop; a FUSE reply cannot (errors at or below -512
    /// are refused by `fuse_dev_do_write`), so the caller sees `EINTR` (README, "differences").
    /// Requests that never wait are answered before any interrupt matters.
    fn interrupt(&self, _req: &Request, unique: RequestId) -> Result<(), fuser::Errno> {
        self.exec.interrupt(unique.0);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.fs.lookup(parent.0, name.as_bytes(), &cred(req)) {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        // `fstat` on an open file comes without its file handle (the kernel passes none), so
        // an inode whose socket has ended answers from its open files, while it has any.
        match self.fs.getattr(ino.0) {
            Ok(a) => {
                self.files.seen(&a);
                reply.attr(&TTL, &file_attr(&a))
            }
            Err(e) => match self.files.last_attr(ino.0) {
                Some(a) if e == Errno::ENOENT => reply.attr(&TTL, &file_attr(&a)),
                _ => reply.error(errno(e)),
            },
        }
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
        // Owners and modes are the namespace's; truncating to 0 (`>` in a shell) and touching
        // times change nothing and succeed.
        if mode.is_some() || uid.is_some() || gid.is_some() {
            return reply.error(fuser::Errno::EPERM);
        }
        let a = match self.fs.getattr(ino.0) {
            Ok(a) => a,
            Err(e) => return reply.error(errno(e)),
        };
        // Times, as utimensat(2) checks them: only the owner (or root) may set them to a
        // chosen value (`EPERM`); setting them to now also needs write permission
        // (`EACCES`), which no other user has on a socket's directory or files.
        let times = [atime, mtime];
        if times.iter().any(Option::is_some) && req.uid() != 0 && req.uid() != a.uid {
            if times
                .iter()
                .any(|t| matches!(t, Some(TimeOrNow::SpecificTime(_))))
            {
                return reply.error(fuser::Errno::EPERM);
            }
            if let Err(e) = self.fs.access(ino.0, Access::WRITE, &cred(req)) {
                return reply.error(errno(e));
            }
        }
        if let Some(size) = size {
            if a.dir {
                return reply.error(fuser::Errno::EISDIR);
            }
            if let Err(e) = self.fs.access(ino.0, Access::WRITE, &cred(req)) {
                return reply.error(errno(e));
            }
            if size != 0 {
                return reply.error(fuser::Errno::EINVAL);
            }
        }
        reply.attr(&TTL, &file_attr(&a));
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let want = Access::from_bits_truncate(mask.bits() as u32);
        match self.fs.access(ino.0, want, &cred(req)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let (read, write) = match flags.acc_mode() {
            OpenAccMode::O_RDONLY => (true, false),
            OpenAccMode::O_WRONLY => (false, true),
            OpenAccMode::O_RDWR => (true, true),
        };
        let mode = OpenMode {
            read,
            write,
            nonblock: flags.0 & libc::O_NONBLOCK != 0,
        };
        let files = self.files.clone();
        let fs = self.fs.clone();
        let who = cred(req);
        // A factory creates a socket that lives as long as the opening process: watch that
        // process for its exit, while the opening thread still waits for this answer.
        let creator = (matches!(Node::from_ino(ino.0), Some(Node::Factory { .. }))
            && req.pid() != 0)
            .then(|| (self.exits.clone(), req.pid()));
        let unique = req.unique().0;
        let parked = self
            .exec
            .spawn(unique, self.fs.open(ino.0, mode, who), move |r| match r {
                Ok(h) => {
                    if let Some((exits, tid)) = creator {
                        exits.watch(tid);
                    }
                    let flags = fopen(&h);
                    // The inode's attributes as the file is opened (an `accept` file whose
                    // listener has already gone keeps the node's own).
                    let attr = fs
                        .getattr(ino.0)
                        .unwrap_or_else(|_| opener_attr(ino.0, &who));
                    reply.opened(FileHandle(files.insert(h, attr)), flags)
                }
                Err(e) => reply.error(errno(e)),
            });
        if parked {
            waits(
                unique,
                "open",
                ino.0,
                None,
                "a connection to accept, or a connect to end",
            );
        }
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
        let Some(f) = self.files.get(fh.0) else {
            return reply.error(fuser::Errno::EBADF);
        };
        if f.handle.seekable() {
            return reply.data(&f.handle.read_at(offset, size as usize));
        }
        // A read(2) of a direct-I/O file names its lock owner (the caller's file table); a
        // read for the page cache (a fault in a private mapping, readahead, splice) names
        // none. Socket files have no pages to fill: such a read would take a record away
        // from the readers, so it fails and takes nothing (the faulting process gets SIGBUS).
        if lock_owner.is_none() {
            return reply.error(fuser::Errno::EIO);
        }
        let nonblock = flags.0 & libc::O_NONBLOCK != 0;
        let unique = req.unique().0;
        let parked =
            self.exec.spawn(
                unique,
                f.handle.read(size as usize, nonblock),
                move |r| match r {
                    Ok(b) => reply.data(&b),
                    Err(e) => reply.error(errno(e)),
                },
            );
        if parked {
            waits(unique, "read", _ino.0, f.handle.id(), "data (IN)");
        }
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
        let Some(f) = self.files.get(fh.0) else {
            return reply.error(fuser::Errno::EBADF);
        };
        let nonblock = flags.0 & libc::O_NONBLOCK != 0 || f.handle.is_nonblocking();
        // First try to send at once, straight from the request; only what must wait is
        // copied out of it, for the parked write.
        let done = match f.handle.try_send(data) {
            None => 0,
            Some(Ok(n)) if n == data.len() || nonblock => return reply.written(n as u32),
            Some(Ok(n)) => n,
            Some(Err(e)) if e == Errno::EAGAIN && !nonblock => 0,
            Some(Err(e)) => return reply.error(errno(e)),
        };
        // A long stream write that is interrupted reports what it sent, as write(2) does.
        let sent = Arc::new(AtomicUsize::new(done));
        let fut = f.handle.write_counted(
            Bytes::copy_from_slice(&data[done..]),
            nonblock,
            sent.clone(),
        );
        let unique = req.unique().0;
        let parked = self.exec.spawn(unique, fut, move |r| match r {
            Ok(n) => reply.written((done + n) as u32),
            Err(e) => match sent.load(Ordering::Acquire) {
                0 => reply.error(errno(e)),
                n => reply.written(n as u32),
            },
        });
        if parked {
            let what = if f.handle.kind() == ksock_netfs::HandleKind::Ctl {
                "a ctl command (a connect to end, or room in a backlog)"
            } else {
                "room to send (OUT)"
            };
            waits(unique, "write", _ino.0, f.handle.id(), what);
        }
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
        if let Some(f) = self.files.remove(fh.0) {
            f.poll.ph.lock().take();
            drop(f);
        }
        reply.ok();
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.access(ino.0, Access::READ, &cred(req)) {
            Ok(()) if Node::from_ino(ino.0).is_some_and(Node::is_dir) => {
                reply.opened(FileHandle(0), FopenFlags::empty())
            }
            Ok(()) => reply.error(fuser::Errno::ENOTDIR),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(node) = Node::from_ino(ino.0) else {
            return reply.error(fuser::Errno::ENOENT);
        };
        // One reply holds a few hundred entries: ask for no more than that, so that a
        // listing taken in many replies costs each reply the same (linear overall).
        let entries = match self
            .fs
            .readdir_max(ino.0, offset, &cred(req), READDIR_BATCH)
        {
            Ok(e) => e,
            Err(e) => return reply.error(errno(e)),
        };
        if offset < 1 && reply.add(ino, 1, FileType::Directory, ".") {
            return reply.ok();
        }
        if offset < 2 && reply.add(INodeNo(self.fs.parent(node)), 2, FileType::Directory, "..") {
            return reply.ok();
        }
        for e in entries {
            let kind = if e.dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            if reply.add(INodeNo(e.node.ino()), e.cookie, kind, &e.name) {
                break;
            }
        }
        reply.ok();
    }

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
        let Some(f) = self.files.get(fh.0) else {
            return reply.error(fuser::Errno::EBADF);
        };
        let want = interest(events);
        let ev = if flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
            *f.poll.ph.lock() = Some(ph);
            let waker = Waker::from(f.poll.clone());
            let mut cx = Context::from_waker(&waker);
            f.handle.poll_ready(Some(&mut cx), want)
        } else {
            f.handle.poll_ready(None, want)
        };
        reply.poll(revents(ev));
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
        // Only existing names can be opened; sockets are made by opening a factory.
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
        // Files are made by opening factories, never by name: refused like every other
        // operation that would make or remove a name.
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

/// Says that a request waits, and for what (at `debug`, target `ksock`).
fn waits(request: u64, op: &str, ino: u64, socket: Option<u64>, what: &str) {
    tracing::debug!(
        target: "ksock",
        request,
        op,
        ino,
        socket,
        waits_for = what,
        "request parked"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_bits_map_both_ways() {
        let i = interest(PollEvents::POLLIN | PollEvents::POLLOUT);
        assert!(i.contains(Events::IN | Events::OUT | Events::ERR | Events::HUP));
        assert!(!i.contains(Events::RDHUP));
        let i = interest(PollEvents::from_bits_retain(libc::POLLRDHUP as u32));
        assert!(i.contains(Events::RDHUP) && !i.contains(Events::IN));
        let r = revents(Events::IN | Events::HUP);
        assert!(r.contains(PollEvents::POLLIN | PollEvents::POLLRDNORM | PollEvents::POLLHUP));
        assert!(!r.contains(PollEvents::POLLOUT));
        let r = revents(Events::NVAL);
        assert!(r.contains(PollEvents::POLLERR | PollEvents::POLLHUP | PollEvents::POLLIN));
        assert!(!r.contains(PollEvents::POLLNVAL), "the file itself is open");
    }

    #[test]
    fn socket_files_are_direct_nonseekable_streams() {
        use ksock_netfs::exec::block_on;
        let fs = NetFs::new(ksock::Stack::new());
        let ino = fs.resolve("/local/stream", &Cred::ROOT).unwrap().ino;
        let h = block_on(fs.open(ino, OpenMode::RDWR, Cred::ROOT)).unwrap();
        let f = fopen(&h);
        assert!(f.contains(FopenFlags::FOPEN_DIRECT_IO));
        assert!(f.contains(FopenFlags::FOPEN_NONSEEKABLE));
        assert!(f.contains(FopenFlags::FOPEN_STREAM));
        assert!(f.contains(FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES));
        let st = fs
            .resolve(&format!("/local/{}/status", h.id().unwrap()), &Cred::ROOT)
            .unwrap()
            .ino;
        let t = block_on(fs.open(st, OpenMode::READ, Cred::ROOT)).unwrap();
        assert_eq!(fopen(&t), FopenFlags::FOPEN_DIRECT_IO);
        assert_eq!(&t.read_at(0, 3)[..], b"id ");
        assert_eq!(&t.read_at(1, 2)[..], b"d ");
        assert!(t.read_at(1 << 40, 10).is_empty());
    }

    #[test]
    fn socket_files_are_sized_past_any_write_and_texts_by_their_length() {
        // MAX_RW_COUNT with 4 KiB pages (INT_MAX & PAGE_MASK) is the most one write moves.
        assert_eq!(SOCKET_FILE_SIZE, 0x7fff_f000);
        assert!(SOCKET_FILE_SIZE <= i32::MAX as u64, "fits a 32-bit off_t");
        let fs = NetFs::new(ksock::Stack::new());
        let size = |path: &str| file_attr(&fs.resolve(path, &Cred::ROOT).unwrap()).size;
        for f in ["/local/stream", "/local/seqpacket", "/local/dgram"] {
            assert_eq!(size(f), SOCKET_FILE_SIZE, "{f}");
        }
        let ino = fs.resolve("/local/stream", &Cred::ROOT).unwrap().ino;
        let h = ksock_netfs::exec::block_on(fs.open(ino, OpenMode::RDWR, Cred::ROOT)).unwrap();
        let id = h.id().unwrap();
        for f in ["ctl", "data", "accept", "listen", "data:n"] {
            assert_eq!(size(&format!("/local/{id}/{f}")), SOCKET_FILE_SIZE, "{f}");
        }
        for f in ["local", "remote", "err"] {
            assert_eq!(size(&format!("/local/{id}/{f}")), 0, "{f}");
        }
        assert!(size(&format!("/local/{id}/status")) > 0);
        assert_eq!(size("/local/addrs"), 0);
        assert_eq!(size("/local"), 0);
    }

    #[test]
    fn an_inode_keeps_its_attributes_while_files_are_open_on_it() {
        use ksock_netfs::exec::block_on;
        let fs = NetFs::new(ksock::Stack::new());
        let files = Files::new();
        let ino = fs.resolve("/local/seqpacket", &Cred::ROOT).unwrap().ino;
        let ctl = block_on(fs.open(ino, OpenMode::RDWR, Cred::ROOT)).unwrap();
        let data = fs
            .resolve(&format!("/local/{}/data", ctl.id().unwrap()), &Cred::ROOT)
            .unwrap();
        let h = block_on(fs.open(data.ino, OpenMode::RDWR, Cred::ROOT)).unwrap();
        let a = files.insert(h.clone(), data);
        let b = files.insert(h, data);
        assert_eq!(files.last_attr(data.ino), Some(data));
        files.remove(a);
        assert_eq!(files.last_attr(data.ino), Some(data));
        files.remove(b);
        assert_eq!(files.last_attr(data.ino), None);
        assert!(files.remove(b).is_none());
    }
}
