//! The file face over 9P2000 (`ksock-9p`), against the local `ksock mount`, in the same run:
//!
//! - `9p.import`: a `ksock import` mount of a `ksock export` served by this process over a
//!   Unix socket, with the file rows of the `file` group (64 B operations in lockstep,
//!   64 KiB bulk on two threads) on the `data` files of two connected stream sockets;
//! - `9p.client`: the same operations through ksock's Rust 9P client over a Unix socket
//!   (one `Twrite` or `Tread` per operation, no FUSE on the path).
//!
//! Both are compared with the local mount: what the extra hop costs.

use crate::file::{Tree, Unmount, tree_dir};
use crate::fuse::{Opener, file_rows, unavailable};
use crate::row::{Row, Side};
use crate::stats::Unit;
use crate::work::{Endpoint, lockstep, one_way};
use ksock_9p::client::Client;
use ksock_9p::import::{Import, ImportOptions};
use ksock_9p::proto::ORDWR;
use ksock_9p::server::{Config, Server};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// 64 B operations and 64 KiB bulk, as in the file rows.
const SMALL: usize = 64;
const BULK: usize = 64 << 10;

/// A `ksock export` in this process: a fresh stack's tree on a Unix socket.
struct Export {
    _server: Arc<Server>,
    socket: PathBuf,
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Export {
    fn start() -> Result<Export, String> {
        let dir = tree_dir("9p")?;
        let socket = dir.join("net.9p");
        let netfs = ksock_netfs::NetFs::new(ksock::Stack::new());
        let server = Server::new(netfs, Config::default()).map_err(|e| format!("9P: {e}"))?;
        let l = ksock_9p::transport::bind_unix(&socket).map_err(|e| e.to_string())?;
        server.listen_unix(l).map_err(|e| e.to_string())?;
        Ok(Export {
            _server: server,
            socket,
        })
    }

    fn client(&self) -> Result<Arc<Client>, String> {
        let s = UnixStream::connect(&self.socket)
            .map_err(|e| format!("connect {}: {e}", self.socket.display()))?;
        Client::from_unix(s, 1 << 20).map_err(|e| format!("9P version: {e}"))
    }
}

impl Unmount for Import {}

/// One open fid of a socket file, used as an endpoint.
struct P9File {
    client: Arc<Client>,
    fid: u32,
}

impl Endpoint for P9File {
    fn send(&self, buf: &[u8]) -> Result<usize, String> {
        let n = buf.len().min(self.client.max_io() as usize);
        self.client
            .write(self.fid, 0, &buf[..n])
            .map(|n| n as usize)
            .map_err(|e| format!("Twrite: {e}"))
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, String> {
        let n = buf.len().min(self.client.max_io() as usize) as u32;
        let data = self
            .client
            .read(self.fid, 0, n)
            .map_err(|e| format!("Tread: {e}"))?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
}

impl Drop for P9File {
    fn drop(&mut self) {
        let _ = self.client.clunk(self.fid);
    }
}

/// Pairs of connected stream sockets made through the Rust client: the client end's
/// `data` fid (written to) and the accepted connection's (read from).
struct ClientTree {
    client: Arc<Client>,
    root: u32,
    listener: P9File,
    listener_id: String,
    pairs: AtomicU64,
}

impl ClientTree {
    fn new(client: Arc<Client>) -> Result<ClientTree, String> {
        let (root, _) = client.attach("", "").map_err(|e| format!("Tattach: {e}"))?;
        let (listener, listener_id) = Self::socket(&client, root)?;
        listener
            .send(b"bind ksock-bench-9p && listen 64")
            .map_err(|e| format!("listen: {e}"))?;
        Ok(ClientTree {
            client,
            root,
            listener,
            listener_id,
            pairs: AtomicU64::new(0),
        })
    }

    fn open(client: &Arc<Client>, root: u32, path: &[&str]) -> Result<P9File, String> {
        let (fid, _) = client
            .walk(root, path)
            .map_err(|e| format!("Twalk {}: {e}", path.join("/")))?;
        let f = P9File {
            client: client.clone(),
            fid,
        };
        client
            .open(fid, ORDWR)
            .map_err(|e| format!("Topen {}: {e}", path.join("/")))?;
        Ok(f)
    }

    fn socket(client: &Arc<Client>, root: u32) -> Result<(P9File, String), String> {
        let f = Self::open(client, root, &["local", "stream"])?;
        let mut id = [0u8; 32];
        let n = f.recv(&mut id)?;
        Ok((f, String::from_utf8_lossy(&id[..n]).into_owned()))
    }

    fn pair(&self) -> Result<(P9File, P9File, P9File), String> {
        let (ctl, id) = Self::socket(&self.client, self.root)?;
        ctl.send(b"connect ksock-bench-9p")?;
        let tx = Self::open(&self.client, self.root, &["local", &id, "data"])?;
        let rx = Self::open(
            &self.client,
            self.root,
            &["local", &self.listener_id, "accept"],
        )?;
        self.pairs.fetch_add(1, Ordering::Relaxed);
        Ok((ctl, tx, rx))
    }
}

impl Drop for ClientTree {
    fn drop(&mut self) {
        let _ = self.listener.send(b"hangup");
        let _ = self.client.clunk(self.root);
    }
}

/// The `9p` group.
pub fn rows() -> Result<Vec<Row>, String> {
    if let Some(why) = unavailable() {
        return Err(why);
    }
    let local = Arc::new(Tree::local()?);
    let export = Export::start()?;
    let dir = tree_dir("import")?;
    let import = ksock_9p::import::import(export.client()?, &dir, &ImportOptions::default())
        .map_err(|e| format!("ksock import on {}: {e}", dir.display()))?;
    let imported = Arc::new(Tree::at(dir, Box::new(import), "ksock-bench-import")?);
    let opener = |t: &Arc<Tree>| -> Opener {
        let t = t.clone();
        Arc::new(move || t.pair())
    };
    let mut rows = file_rows(
        "9p",
        "9p.import",
        ("ksock import", opener(&imported)),
        ("ksock mount", opener(&local)),
        (None, None),
    );
    rows[0].note = Some(
        "a `ksock import` FUSE mount of a `ksock export` in this process (9P2000 over a Unix \
         socket, msize 1 MiB) against the local `ksock mount`, with the rows of the `file` \
         group"
            .into(),
    );
    let ct = Arc::new(ClientTree::new(export.client()?)?);
    let lock_local = {
        let t = local.clone();
        move |n: u64| {
            let p = t.pair()?;
            lockstep(&p.tx, &p.rx, SMALL, n)
        }
    };
    let bulk_local = {
        let t = local.clone();
        move |n: u64| {
            let p = t.pair()?;
            one_way(&p.tx, &p.rx, BULK, n)
        }
    };
    // The export serves as long as the rows that use it.
    let export = Arc::new(export);
    let lock_client = {
        let t = ct.clone();
        let _serving = export.clone();
        move |n: u64| {
            let _ = &_serving;
            let (ctl, tx, rx) = t.pair()?;
            let r = lockstep(&tx, &rx, SMALL, n);
            let _ = ctl.send(b"hangup");
            r
        }
    };
    let bulk_client = {
        let t = ct.clone();
        move |n: u64| {
            let (ctl, tx, rx) = t.pair()?;
            let r = one_way(&tx, &rx, BULK, n);
            let _ = ctl.send(b"hangup");
            r
        }
    };
    let mut op = Row::new(
        "9p",
        "9p.client.op64",
        "Rust 9P client: 64 B write or read, cost per operation",
        Unit::Nanos,
        Side::timed("9P client", lock_client),
    )
    .against(Side::timed("ksock mount", lock_local))
    .per_iter(2.0);
    op.note = Some(
        "ksock's Rust 9P client over a Unix socket to the same in-process export (one Twrite \
         or Tread per operation, no FUSE on the path) against the local `ksock mount`"
            .into(),
    );
    let bw = Row::new(
        "9p",
        "9p.client.bulk64k",
        "Rust 9P client: bandwidth, 64 KiB writes and reads",
        Unit::BytesPerSec,
        Side::timed("9P client", bulk_client),
    )
    .against(Side::timed("ksock mount", bulk_local))
    .per_iter(BULK as f64)
    .first_iters(4);
    rows.push(op);
    rows.push(bw);
    Ok(rows)
}
