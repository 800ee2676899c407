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

/// A `ksock mount` on a fresh directory, with one stream listener; unmounted on drop.
struct Tree {
    mount: Option<Mount>,
    dir: PathBuf,
    /// The listener's factory handle (it acts as its ctl file).
    listener: Option<File>,
    listener_id: String,
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

impl Tree {
    fn mount() -> Result<Tree, String> {
        let dir = std::env::temp_dir().join(format!("ksock-bench-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let netfs = ksock_fuse::host_netfs(ksock::Stack::new());
        let mount = ksock_fuse::mount(netfs, &dir, &MountOptions::default())
            .map_err(|e| format!("ksock mount on {}: {e}", dir.display()))?;
        let (mut listener, listener_id) = new_socket(&dir)?;
        ctl(&mut listener, &format!("bind {NAME} && listen 64"))?;
        Ok(Tree {
            mount: Some(mount),
            dir,
            listener: Some(listener),
            listener_id,
            pairs: AtomicU64::new(0),
        })
    }

    /// Two connected stream sockets' `data` files: the client's (written to) and the
    /// accepted connection's (read from). The client socket lives as long as this process,
    /// as sockets made through a factory do, so the pair hangs it up when done.
    fn pair(&self) -> Result<FdPair, String> {
        let (mut client, cid) = new_socket(&self.dir)?;
        ctl(&mut client, &format!("connect {NAME}"))?;
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
        if let Some(m) = self.mount.take() {
            let _ = m.unmount();
        }
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
