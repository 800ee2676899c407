//! The file face through a real `ksock mount`, against the null FUSE file (the floor FUSE
//! imposes) with the same rows: 64 B operations and 64 KiB bulk, on the `data` files of two
//! connected stream sockets.

use crate::fuse::{FdPair, NullFsConfig, NullMount, Opener, file_rows, unavailable};
use crate::row::Row;
use crate::work::Fd;
use ksock_fuse::{Mount, MountOptions};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The listener name the pairs connect to.
const NAME: &str = "ksock-bench";

/// A `/net` tree mounted on a fresh directory (a `ksock mount`, or an import of one), with
/// one stream listener; unmounted on drop.
pub(crate) struct Tree {
    mount: Option<Box<dyn Unmount>>,
    dir: PathBuf,
    /// The listener's factory handle (it acts as its ctl file).
    listener: Option<File>,
    listener_id: String,
    /// The listener's name.
    name: String,
    pairs: AtomicU64,
}

fn open_rw(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))
}

/// Opens a factory: a new socket, whose id is read from the handle.
fn new_socket(dir: &Path) -> Result<(File, String), String> {
    let mut f = open_rw(&dir.join("local/stream"))?;
    let mut id = String::new();
    f.read_to_string(&mut id)
        .map_err(|e| format!("reading a socket id: {e}"))?;
    Ok((f, id))
}

fn ctl(f: &mut File, cmd: &str) -> Result<(), String> {
    f.write_all(cmd.as_bytes())
        .map_err(|e| format!("ctl {cmd:?}: {e}"))
}

/// What keeps a tree mounted: unmounting it is dropping it.
pub(crate) trait Unmount: Send + Sync {}

impl Unmount for Mount {}

/// A fresh directory for a tree, named after this process and `what`.
pub(crate) fn tree_dir(what: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("ksock-bench-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    Ok(dir)
}

impl Tree {
    fn mount() -> Result<Tree, String> {
        let dir = tree_dir("net")?;
        let netfs = ksock_fuse::host_netfs(ksock::Stack::new());
        let mount = ksock_fuse::mount(netfs, &dir, &MountOptions::default())
            .map_err(|e| format!("ksock mount on {}: {e}", dir.display()))?;
        Tree::at(dir, Box::new(mount), NAME)
    }

    /// The tree mounted at `dir` and kept by `mount`, with a listener bound to `name`.
    pub(crate) fn at(dir: PathBuf, mount: Box<dyn Unmount>, name: &str) -> Result<Tree, String> {
        let mut tree = Tree {
            mount: Some(mount),
            dir,
            listener: None,
            listener_id: String::new(),
            name: name.into(),
            pairs: AtomicU64::new(0),
        };
        let (mut listener, listener_id) = new_socket(&tree.dir)?;
        ctl(&mut listener, &format!("bind {name} && listen 64"))?;
        tree.listener = Some(listener);
        tree.listener_id = listener_id;
        Ok(tree)
    }

    /// The local `ksock mount` the file rows use.
    pub(crate) fn local() -> Result<Tree, String> {
        Tree::mount()
    }

    /// Two connected stream sockets' `data` files: the client's (written to) and the
    /// accepted connection's (read from). The client socket lives as long as this process,
    /// as sockets made through a factory do, so the pair hangs it up when done.
    pub(crate) fn pair(&self) -> Result<FdPair, String> {
        let (mut client, cid) = new_socket(&self.dir)?;
        ctl(&mut client, &format!("connect {}", self.name))?;
        let tx = open_rw(&self.dir.join(format!("local/{cid}/data")))?;
        let rx = open_rw(&self.dir.join(format!("local/{}/accept", self.listener_id)))?;
        self.pairs.fetch_add(1, Ordering::Relaxed);
        Ok(FdPair {
            tx: Fd(OwnedFd::from(tx)),
            rx: Fd(OwnedFd::from(rx)),
            done: Some(Box::new(move || {
                let _ = client.write_all(b"hangup");
            })),
        })
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // Hang the listener up and close its file before unmounting: the mount serves it.
        if let Some(mut l) = self.listener.take() {
            let _ = l.write_all(b"hangup");
        }
        drop(self.mount.take());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The `file` group: `ksock mount` against the null FUSE file (targets: per-operation cost
/// within 1.1x of it, bulk at least 0.9x of it).
pub fn rows() -> Result<Vec<Row>, String> {
    if let Some(why) = unavailable() {
        return Err(why);
    }
    let tree = Arc::new(Tree::mount()?);
    let null = Arc::new(NullMount::new(NullFsConfig::default())?);
    let t = tree.clone();
    let opener: Opener = Arc::new(move || t.pair());
    let mut rows = file_rows(
        "file",
        "file.ksock",
        ("ksock mount", opener),
        ("null FUSE", null.opener()),
        (Some(1.1), Some(0.9)),
    );
    rows[0].note = Some(format!(
        "the data files of two connected stream sockets under a `ksock mount` ({} FUSE worker \
         threads, direct I/O, stream mode) against the null file of the `fuse` group, served \
         the same way",
        MountOptions::default().threads
    ));
    Ok(rows)
}

/// Waits until the stack holds `sockets` sockets and `names` local names: the kernel sends
/// FUSE `RELEASE` after `close` returns, so the last closes land a little later.
fn settle(st: &ksock::Stack, sockets: usize, names: usize) -> Result<(), String> {
    let local = st.family(ksock::Domain::LOCAL).ok_or("no local family")?;
    let start = std::time::Instant::now();
    loop {
        let (s, n) = (st.socket_count(), local.bound().len());
        if s == sockets && n == names {
            return Ok(());
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            return Err(format!(
                "{s} sockets and {n} names a minute after the closes, {sockets} and {names} \
                 expected"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Opens and closes `total` local stream connections through a real `ksock mount`, `wave`
/// at once (fewer if the open-file limit cannot hold two files per connection): the client
/// through a factory handle and `ctl connect`, the server by opening the listener's
/// `accept` file; then the client hangs up and both files close. The socket table and the
/// names are checked back to the listener after each wave, and to empty at the end.
pub fn churn(total: usize, wave: usize) -> Result<crate::churn::Churned, String> {
    if let Some(why) = unavailable() {
        return Err(why);
    }
    let limit = crate::sys::raise_nofile(2 * wave as u64 + 256)?;
    let wave = wave.min((limit.saturating_sub(256) / 2).max(1) as usize);
    let dir = std::env::temp_dir().join(format!("ksock-bench-churn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let st = ksock::Stack::new();
    let netfs = ksock_fuse::host_netfs(st.clone());
    let mount = ksock_fuse::mount(netfs, &dir, &MountOptions::default())
        .map_err(|e| format!("ksock mount on {}: {e}", dir.display()))?;
    let run = || -> Result<crate::churn::Churned, String> {
        let (mut listener, lid) = new_socket(&dir)?;
        ctl(&mut listener, "bind ksock-churn && listen 128")?;
        let accept = dir.join(format!("local/{lid}/accept"));
        let mut held: Vec<(File, File)> = crate::local::pair_vec(wave);
        crate::heap::trim();
        let rss0 = crate::sys::rss_bytes()?;
        let (mut peak, mut rss_per_conn) = (0u64, 0.0);
        let start = std::time::Instant::now();
        let mut done = 0;
        while done < total {
            let n = wave.min(total - done);
            for _ in 0..n {
                let (mut client, _) = new_socket(&dir)?;
                ctl(&mut client, "connect ksock-churn")?;
                held.push((client, open_rw(&accept)?));
            }
            settle(&st, 1 + 2 * n, 1)?;
            let rss = crate::sys::rss_bytes()?.saturating_sub(rss0);
            if done == 0 {
                rss_per_conn = rss as f64 / n as f64;
            }
            peak = peak.max(rss);
            for (mut client, server) in held.drain(..) {
                client
                    .write_all(b"hangup")
                    .map_err(|e| format!("ctl hangup: {e}"))?;
                drop((client, server));
            }
            settle(&st, 1, 1)?;
            done += n;
        }
        let secs = start.elapsed().as_secs_f64();
        ctl(&mut listener, "hangup")?;
        drop(listener);
        settle(&st, 0, 0)?;
        Ok(crate::churn::Churned {
            conns: total,
            wave,
            secs,
            peak_rss_growth: peak,
            rss_per_conn,
            heap_per_conn: None,
        })
    };
    let r = run();
    let _ = mount.unmount();
    let _ = std::fs::remove_dir(&dir);
    r
}
