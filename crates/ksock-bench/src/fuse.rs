//! Through a real FUSE mount: a null file served by fuser in this process (the floor FUSE
//! itself imposes) against AF_UNIX, and the harness the file face's rows reuse.
//!
//! Every row here works on an [`FdPair`]: a descriptor to write to and one to read from.
//! For the null file both are the same file opened twice (writes are dropped, reads return
//! zeros); for AF_UNIX they are the two ends of a socketpair; for the file face they are the
//! `data` files of two connected sockets. [`file_rows`] turns two ways of opening a pair
//! into the standard rows: small-operation cost (write then read 64 B, in lockstep on one
//! thread) and bulk bandwidth (64 KiB writes and reads on two threads).

use crate::row::{Row, Side, Target};
use crate::stats::Unit;
use crate::work::{Fd, lockstep, one_way};
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request, WriteFlags,
};
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// A descriptor to write to and one to read from.
pub struct FdPair {
    /// Written to.
    pub tx: Fd,
    /// Read from.
    pub rx: Fd,
    /// Run when the pair is done (before its descriptors close): for ending what closing
    /// them does not end.
    pub done: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for FdPair {
    fn drop(&mut self) {
        if let Some(f) = self.done.take() {
            f();
        }
    }
}

/// Opens a fresh [`FdPair`] for one sample.
pub type Opener = Arc<dyn Fn() -> Result<FdPair, String> + Send + Sync>;

/// Opens `path` twice, for writing and for reading.
pub fn open_file_pair(path: &Path) -> Result<FdPair, String> {
    let open = |write: bool| -> Result<Fd, String> {
        OpenOptions::new()
            .read(!write)
            .write(write)
            .open(path)
            .map(|f| Fd(OwnedFd::from(f)))
            .map_err(|e| format!("open {}: {e}", path.display()))
    };
    Ok(FdPair {
        tx: open(true)?,
        rx: open(false)?,
        done: None,
    })
}

/// An AF_UNIX stream socketpair as an [`FdPair`].
pub fn unix_opener() -> Opener {
    Arc::new(|| {
        let (tx, rx) = crate::unix::pair(ksock::SockType::STREAM)?;
        Ok(FdPair { tx, rx, done: None })
    })
}

/// The size of a small operation.
pub const SMALL: usize = 64;
/// The size of a bulk write or read.
pub const BULK: usize = 65536;

/// Targets of the two standard rows: (per-operation cost ratio at most, bulk ratio at
/// least).
pub type FileTargets = (Option<f64>, Option<f64>);

/// The standard rows comparing `subject` with `reference` through descriptors:
/// `<prefix>.op64` (nanoseconds per 64 B operation) and `<prefix>.bulk64k` (bandwidth).
pub fn file_rows(
    group: &str,
    prefix: &str,
    subject: (&str, Opener),
    reference: (&str, Opener),
    targets: FileTargets,
) -> Vec<Row> {
    let (sname, sopen) = subject;
    let (rname, ropen) = reference;
    let lock = |open: Opener| {
        move |n: u64| {
            let p = open()?;
            lockstep(&p.tx, &p.rx, SMALL, n)
        }
    };
    let bulk = |open: Opener| {
        move |n: u64| {
            let p = open()?;
            one_way(&p.tx, &p.rx, BULK, n)
        }
    };
    let mut op = Row::new(
        group,
        format!("{prefix}.op64"),
        format!("{sname}: 64 B write or read, cost per operation"),
        Unit::Nanos,
        Side::timed(sname, lock(sopen.clone())),
    )
    .against(Side::timed(rname, lock(ropen.clone())))
    .per_iter(2.0);
    if let Some(t) = targets.0 {
        op = op.target(Target::RatioAtMost(t));
    }
    let mut bw = Row::new(
        group,
        format!("{prefix}.bulk64k"),
        format!("{sname}: bandwidth, 64 KiB writes and reads"),
        Unit::BytesPerSec,
        Side::timed(sname, bulk(sopen)),
    )
    .against(Side::timed(rname, bulk(ropen)))
    .per_iter(BULK as f64)
    .first_iters(4);
    if let Some(t) = targets.1 {
        bw = bw.target(Target::RatioAtLeast(t));
    }
    vec![op, bw]
}

/// How the null file system is served. The defaults are those `ksock-fuse` mounts the file
/// face with (4 worker threads, one `/dev/fuse` descriptor each), so that the floor is the
/// same FUSE.
#[derive(Clone, Copy, Debug)]
pub struct NullFsConfig {
    /// fuser worker threads.
    pub threads: usize,
    /// One `/dev/fuse` descriptor per worker (`FUSE_DEV_IOC_CLONE`).
    pub clone_fd: bool,
}

impl Default for NullFsConfig {
    fn default() -> Self {
        NullFsConfig {
            threads: 4,
            clone_fd: true,
        }
    }
}

const TTL: Duration = Duration::from_secs(3600);
const NULL_INO: INodeNo = INodeNo(2);
/// The file's name under the mount point.
pub const NULL_NAME: &str = "null";

fn attr(ino: INodeNo, kind: FileType, perm: u16) -> FileAttr {
    FileAttr {
        ino,
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

/// A file system with one file, `null`: writes are accepted and dropped, reads return
/// zeros. It is opened like a socket's `data` file (direct I/O, not seekable, a stream), so
/// every read and write is one FUSE request answered at once: the least FUSE can cost.
struct NullFs {
    zeros: Vec<u8>,
}

impl Filesystem for NullFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == INodeNo::ROOT && name == NULL_NAME {
            reply.entry(
                &TTL,
                &attr(NULL_INO, FileType::RegularFile, 0o666),
                Generation(0),
            );
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match ino {
            INodeNo::ROOT => reply.attr(&TTL, &attr(ino, FileType::Directory, 0o755)),
            NULL_INO => reply.attr(&TTL, &attr(ino, FileType::RegularFile, 0o666)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino != NULL_INO {
            return reply.error(Errno::EISDIR);
        }
        reply.opened(
            FileHandle(0),
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NONSEEKABLE | FopenFlags::FOPEN_STREAM,
        );
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let n = (size as usize).min(self.zeros.len());
        reply.data(&self.zeros[..n]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.written(data.len() as u32);
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
}

/// The null file system, mounted; unmounted on drop.
pub struct NullMount {
    dir: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

impl NullMount {
    /// Mounts it on a fresh directory under the temporary directory (needs root and
    /// `/dev/fuse`).
    pub fn new(cfg: NullFsConfig) -> Result<NullMount, String> {
        let dir = std::env::temp_dir().join(format!("ksock-bench-null-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("ksock-bench-null".into()),
            MountOption::NoDev,
            MountOption::NoSuid,
            MountOption::NoExec,
            MountOption::NoAtime,
        ];
        config.n_threads = Some(cfg.threads.max(1));
        config.clone_fd = cfg.clone_fd;
        let fs = NullFs {
            zeros: vec![0u8; 1 << 20],
        };
        let session = match fuser::spawn_mount(fs, &dir, &config) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(format!(
                    "mounting the null FUSE file system on {}: {e}",
                    dir.display()
                ));
            }
        };
        Ok(NullMount {
            dir,
            session: Some(session),
        })
    }

    /// The null file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(NULL_NAME)
    }

    /// Opens the null file twice, for the standard rows.
    pub fn opener(self: &Arc<Self>) -> Opener {
        let m = self.clone();
        Arc::new(move || open_file_pair(&m.file()))
    }
}

impl Drop for NullMount {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Why FUSE rows cannot run here, if they cannot: they need root and `/dev/fuse`.
pub fn unavailable() -> Option<String> {
    if !crate::sys::is_root() {
        return Some("needs root (mounts a FUSE file system)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse is missing".into());
    }
    None
}

/// The `fuse` group: the null FUSE file against AF_UNIX.
pub fn rows() -> Vec<Row> {
    let mount = match NullMount::new(NullFsConfig::default()) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            return vec![Row::failed(
                "fuse",
                "fuse.null",
                "null FUSE file",
                Unit::Nanos,
                e,
            )];
        }
    };
    let mut rows = file_rows(
        "fuse",
        "fuse.null",
        ("null FUSE", mount.opener()),
        ("AF_UNIX", unix_opener()),
        (None, None),
    );
    rows[0].note = Some(format!(
        "a file served by fuser 0.18 in this process ({} worker threads, as ksock-fuse mounts; \
         direct I/O): writes dropped, reads answered with zeros; AF_UNIX: a stream socketpair \
         through read/write",
        NullFsConfig::default().threads
    ));
    rows
}
