//! The `/net` namespace of [`ksock_netfs`] mounted on Linux with FUSE.
//!
//! [`mount`] mounts a tree at a directory and serves it from a few threads:
//!
//! - FUSE workers (fuser's session loop) answer every request. They never block: an
//!   operation that has to wait (reading an empty `data`, writing a full one, opening
//!   `accept` or `listen`, a ctl `connect` on a full backlog) is parked with its reply
//!   (fuser's replies are `Send`) and answered when the core wakes it;
//! - a driver thread polls woken operations and sends their replies;
//! - an exits thread waits (epoll) on a pidfd for each process that created sockets, and
//!   ends its sockets when the whole process has exited (see `exits`).
//!
//! When the caller of a parked request gets a signal (one it catches, a fatal one, a stop),
//! the kernel sends `FUSE_INTERRUPT` and the request is answered with `EINTR` at once: the
//! caller's handler runs (Python's `KeyboardInterrupt`, say), or the kill completes and the
//! process's files are closed as usual. fuser 0.18 answers interrupts `ENOSYS`, after which
//! the kernel would never send another and a killed caller would sleep, unkillable, until
//! its socket had data; the workspace uses fuser patched to hand them to the file system
//! (`vendor/fuser/PATCHES.md`). So nothing wakes on behalf of a parked request: it costs
//! memory, not CPU, until its socket, its caller or the mount does something.
//!
//! Since a FUSE reply cannot be `ERESTARTSYS`, a socket call interrupted by a handler
//! installed with `SA_RESTART`, or by a stop and continue, returns `EINTR` where Linux would
//! restart it.
//!
//! Socket files (`ctl`, `data`, factories, `accept`, `listen`) are opened with
//! `FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_STREAM | FOPEN_PARALLEL_DIRECT_WRITES` and
//! sized past any one write: no page cache, no file position, so a reader and a writer on
//! one open file never serialize on the position lock, and no write to an inode waits for
//! another (see `fs.rs`). Reads for the page cache (no lock owner) fail with `EIO`. The text
//! files (`status`, `local`, `remote`, `err`, `addrs`, `table`) are snapshots taken at open,
//! opened with `FOPEN_DIRECT_IO` only, so that tools which trust `st_size` or seek (`wc -c`,
//! `tail`) work on them (`table` reports size 0, as a `/proc` table does). Attributes and
//! entries are never cached (TTL 0).
//!
//! Mounting needs `/dev/fuse` and the right to call `mount(2)` (root): fuser's own mount
//! code is used, no libfuse and no `fusermount`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod exits;
mod fs;
mod mountpoint;
pub use fs::{MAX_WRITE, SOCKET_FILE_SIZE};
pub use mountpoint::ksock_mounts;
pub mod procs;

use exits::Exits;
use fs::{Files, KsockFs};
use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};
use ksock::{Errno, Stack};
use ksock_netfs::park::Exec;
use ksock_netfs::{Config as NetConfig, NetFs};
use parking_lot::Mutex;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// How to mount.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Let users other than the one mounting use the tree (FUSE's `allow_other`). Needed
    /// for a system-wide `/net` and for other users to get their own sockets.
    pub allow_other: bool,
    /// FUSE worker threads.
    pub threads: usize,
    /// Mount even on a directory that is not empty (its files are hidden while mounted).
    pub nonempty: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            threads: 4,
            nonempty: false,
        }
    }
}

/// A namespace over `stack` whose sockets live as long as their creating process
/// (found through `/proc`), owned (the static part) by the calling user, with the default
/// limits per user.
pub fn host_netfs(stack: Stack) -> NetFs {
    NetFs::with_config(stack, host_config())
}

/// The configuration [`host_netfs`] uses, to adjust (the limits per user, say) before
/// [`NetFs::with_config`].
pub fn host_config() -> NetConfig {
    NetConfig {
        resolver: Some(Box::new(procs::resolve)),
        root_uid: nix::unistd::getuid().as_raw(),
        root_gid: nix::unistd::getgid().as_raw(),
        ..NetConfig::default()
    }
}

/// How an unmount went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unmounted {
    /// Unmounted; the session has ended or is ending.
    Clean,
    /// Files were still open: the tree was detached from the directory (`MNT_DETACH`) and
    /// keeps serving those files until they are closed.
    Detached,
}

/// Unmounts a mount from any thread.
#[derive(Clone)]
pub struct Unmounter {
    dir: PathBuf,
    inner: Arc<Mutex<Option<SessionUnmounter>>>,
}

impl Unmounter {
    /// The unmounter of a session mounted at `dir` (for other file systems mounted with
    /// fuser, such as an import).
    pub fn new(dir: &Path, session: SessionUnmounter) -> Unmounter {
        Unmounter {
            dir: dir.to_path_buf(),
            inner: Arc::new(Mutex::new(Some(session))),
        }
    }

    /// Unmounts; if files are still open, detaches the tree instead.
    pub fn unmount(&self) -> io::Result<Unmounted> {
        let Some(mut u) = self.inner.lock().take() else {
            return Ok(Unmounted::Clean);
        };
        match u.unmount() {
            Ok(()) => Ok(Unmounted::Clean),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH)
                    .map_err(io::Error::from)?;
                Ok(Unmounted::Detached)
            }
            Err(e) => Err(e),
        }
    }
}

/// A mounted tree.
pub struct Mount {
    dir: PathBuf,
    netfs: NetFs,
    exec: Arc<Exec>,
    exits: Arc<Exits>,
    files: Arc<Files>,
    unmounter: Unmounter,
    session: Option<JoinHandle<io::Result<()>>>,
}

impl Mount {
    /// Where it is mounted.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace it serves.
    pub fn netfs(&self) -> &NetFs {
        &self.netfs
    }

    /// How many files are open through the mount.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }

    /// How many requests are parked, waiting for their socket.
    pub fn parked(&self) -> usize {
        self.exec.parked_count()
    }

    /// How many parked requests the kernel has interrupted (`FUSE_INTERRUPT`: their caller
    /// got a signal), so far.
    pub fn interrupts(&self) -> u64 {
        self.exec.interrupts()
    }

    /// How many processes are watched for their exit (those that created sockets and run).
    pub fn watched(&self) -> usize {
        self.exits.len()
    }

    /// A handle that unmounts from another thread (a signal handler thread, say).
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

    /// Unmounts and waits for the session to end. With files still open the tree is
    /// detached and this returns at once, leaving the session to end when they close.
    pub fn unmount(mut self) -> io::Result<Unmounted> {
        let how = self.unmounter.unmount()?;
        // The kernel may let the unmount through while files opened through the tree (by
        // this very process, say) are still open; the session then ends only when they
        // close, so waiting for it here could wait for ever.
        if how == Unmounted::Clean && self.files.len() == 0 {
            self.join()?;
            return Ok(Unmounted::Clean);
        }
        drop(self.session.take());
        Ok(Unmounted::Detached)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.session.is_some()
            && let Ok(Unmounted::Clean) = self.unmounter.unmount()
            && self.files.len() == 0
            && let Some(t) = self.session.take()
        {
            let _ = t.join();
        }
    }
}

/// If `dir` is a dead FUSE mount (its server was killed: every access says `ENOTCONN`),
/// detaches it so that it can be mounted again.
pub fn clear_stale_mount(dir: &Path) {
    if let Err(e) = std::fs::metadata(dir)
        && e.raw_os_error() == Some(libc::ENOTCONN)
    {
        let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Checks that a tree may be mounted at `dir`: an existing directory where no live ksock
/// tree is mounted, empty unless `nonempty` (clear a dead mount first with
/// [`clear_stale_mount`]). [`mount`] does this itself.
pub fn check_mountpoint(dir: &Path, nonempty: bool) -> io::Result<()> {
    mountpoint::check(dir, nonempty)
}

/// Mounts `netfs` at `dir` and serves it from background threads until it is unmounted.
///
/// `dir` must be an existing directory, empty unless [`MountOptions::nonempty`], where no
/// live ksock tree is mounted (a dead one, whose server was killed, is replaced).
pub fn mount(netfs: NetFs, dir: &Path, opts: &MountOptions) -> io::Result<Mount> {
    clear_stale_mount(dir);
    mountpoint::check(dir, opts.nonempty)?;
    raise_fd_limit();
    let exec = Exec::start()?;
    let exits = match Exits::start(netfs.clone()) {
        Ok(x) => x,
        Err(e) => {
            exec.stop();
            return Err(e);
        }
    };
    let files = KsockFs::files();
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("ksock".into()),
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
    let fsys = KsockFs::new(netfs.clone(), files.clone(), exec.clone(), exits.clone());
    let mut session = match Session::new(fsys, dir, &config) {
        Ok(s) => s,
        Err(e) => {
            exec.stop();
            exits.stop();
            let hint = if !Path::new("/dev/fuse").exists() {
                " (/dev/fuse is missing: load the fuse module, or give the container the device)"
            } else if !nix::unistd::geteuid().is_root() {
                " (mounting needs root, or a fusermount3 helper for other users)"
            } else {
                ""
            };
            return Err(io::Error::new(
                e.kind(),
                format!("cannot mount FUSE at {}: {e}{hint}", dir.display()),
            ));
        }
    };
    let unmounter = Unmounter {
        dir: dir.to_path_buf(),
        inner: Arc::new(Mutex::new(Some(session.unmount_callable()))),
    };
    let session = {
        let exec = exec.clone();
        let exits = exits.clone();
        let files = files.clone();
        thread::Builder::new()
            .name("ksock-session".into())
            .spawn(move || {
                // The kernel ends a session by failing the device's reads: `ENODEV` (which
                // fuser takes as the end), or `ECONNABORTED` when the unmount aborts the
                // connection while a request is being read. Both mean the tree is gone.
                let r = match session.run() {
                    Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(()),
                    r => r,
                };
                // The connection is gone: nothing parked can be answered any more.
                exec.cancel_all(Errno::EINTR);
                exits.stop();
                exec.stop();
                files.clear();
                r
            })?
    };
    Ok(Mount {
        dir: dir.to_path_buf(),
        netfs,
        exec,
        exits,
        files,
        unmounter,
        session: Some(session),
    })
}

/// Lets the process hold as many files as it may; [`mount`] calls it. A mount keeps a
/// pidfd open for each process that has sockets, and the default soft limit (1024) is small
/// for a system-wide `/net`. Only the soft limit moves, up to the hard one; nothing in the
/// mount uses `select(2)`.
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
}
