//! The 9P client against the crate's own server, in this process, over a Unix socket pair.

use ksock::Errno;
use ksock_9p::client::{Client, DEFAULT_MSIZE, Reply};
use ksock_9p::proto::{Fcall, ORDWR};
use ksock_9p::server::{Config, Peer, Server};
use ksock_netfs::NetFs;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Setup {
    server: Arc<Server>,
    client: Arc<Client>,
    root: u32,
}

fn setup() -> Setup {
    let server = Server::new(NetFs::new(ksock::Stack::new()), Config::default()).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    server
        .serve(Box::new(b.try_clone().unwrap()), Box::new(b), Peer::me())
        .unwrap();
    let client = Client::from_unix(a, DEFAULT_MSIZE).unwrap();
    let (root, _) = client.attach("test", "").unwrap();
    Setup {
        server,
        client,
        root,
    }
}

impl Setup {
    /// Opens the file at `path` (walked from `from`).
    fn open(&self, from: u32, path: &[&str]) -> Result<u32, Errno> {
        let (fid, _) = self.client.walk(from, path)?;
        match self.client.open(fid, ORDWR) {
            Ok(_) => Ok(fid),
            Err(e) => {
                let _ = self.client.clunk(fid);
                Err(e)
            }
        }
    }

    /// A socket from `factory`: its ctl fid and id.
    fn socket(&self, from: u32, factory: &str) -> (u32, String) {
        let fid = self.open(from, &["local", factory]).unwrap();
        let id = self.client.read(fid, 0, 32).unwrap();
        (fid, String::from_utf8(id.to_vec()).unwrap())
    }

    fn ctl(&self, fid: u32, cmd: &str) -> Result<u32, Errno> {
        self.client.write(fid, 0, cmd.as_bytes())
    }

    fn exists(&self, path: &[&str]) -> bool {
        match self.client.walk(self.root, path) {
            Ok((fid, _)) => {
                self.client.clunk(fid).unwrap();
                true
            }
            Err(e) => {
                assert_eq!(e, Errno::ENOENT);
                false
            }
        }
    }
}

fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn seqpacket_bind_listen_connect_accept_and_records_through_the_client() {
    let t = setup();
    let (srv, sid) = t.socket(t.root, "seqpacket");
    assert_eq!(t.ctl(srv, "bind dwm && listen").unwrap(), 18);
    let (cli, cid) = t.socket(t.root, "seqpacket");
    assert_ne!(sid, cid);
    t.ctl(cli, "connect dwm").unwrap();
    let acc = t.open(t.root, &["local", &sid, "accept"]).unwrap();
    let data = t.open(t.root, &["local", &cid, "data"]).unwrap();
    assert_eq!(t.client.write(data, 0, b"one record").unwrap(), 10);
    assert_eq!(t.client.write(data, 0, b"two").unwrap(), 3);
    assert_eq!(&t.client.read(acc, 0, 100).unwrap()[..], b"one record");
    assert_eq!(&t.client.read(acc, 0, 100).unwrap()[..], b"two");
    let (dir, _) = t.client.walk(t.root, &["local", &sid]).unwrap();
    t.client.open(dir, 0).unwrap();
    let names: Vec<String> = t
        .client
        .readdir(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        [
            "ctl", "data", "accept", "listen", "local", "remote", "status", "err"
        ]
    );
    for f in [srv, cli, acc, data, dir] {
        t.client.clunk(f).unwrap();
    }
    assert_eq!(t.client.fids(), 1, "only the attach");
}

#[test]
fn errors_come_back_as_their_errnos() {
    let t = setup();
    let (s, id) = t.socket(t.root, "stream");
    assert_eq!(t.ctl(s, "connect nowhere"), Err(Errno::ECONNREFUSED));
    assert_eq!(t.ctl(s, "frobnicate"), Err(Errno::ENOENT));
    assert_eq!(t.ctl(s, "listen 0"), Err(Errno::EINVAL));
    assert_eq!(t.client.walk(t.root, &["nosuch"]), Err(Errno::ENOENT));
    assert_eq!(
        t.client.walk(t.root, &["local", &id, "data:zz"]),
        Err(Errno::ENOENT),
        "a walk stopped part of the way says only that"
    );
    let (sock, _) = t.client.walk(t.root, &["local", &id]).unwrap();
    assert_eq!(t.client.walk(sock, &["data:zz"]), Err(Errno::EINVAL));
    let nb = t.open(t.root, &["local", &id, "data:n"]).unwrap();
    assert_eq!(
        t.client.read(nb, 0, 10),
        Err(Errno::EINVAL),
        "as an AF_UNIX stream"
    );
}

#[test]
fn a_blocked_read_that_times_out_is_flushed_and_loses_nothing() {
    let t = setup();
    let (srv, sid) = t.socket(t.root, "stream");
    t.ctl(srv, "bind tmo && listen").unwrap();
    let (cli, cid) = t.socket(t.root, "stream");
    t.ctl(cli, "connect tmo").unwrap();
    let acc = t.open(t.root, &["local", &sid, "accept"]).unwrap();
    let data = t.open(t.root, &["local", &cid, "data"]).unwrap();
    let read = Fcall::Tread {
        fid: acc,
        offset: 0,
        count: 100,
    };
    assert_eq!(
        t.client
            .call_timeout(read.clone(), Duration::from_millis(100)),
        Err(Errno::ETIMEDOUT)
    );
    assert_eq!(t.server.parked(), 0, "the server let the read go");
    t.client.write(data, 0, b"after").unwrap();
    assert_eq!(
        t.client.call_timeout(read, Duration::from_secs(60)),
        Ok(Fcall::Rread {
            data: bytes::Bytes::from_static(b"after")
        })
    );
}

#[test]
fn a_flushed_accept_takes_no_connection() {
    let t = setup();
    let (srv, sid) = t.socket(t.root, "stream");
    t.ctl(srv, "bind flushed && listen").unwrap();
    let (acc, _) = t.client.walk(t.root, &["local", &sid, "accept"]).unwrap();
    let (tx, rx) = mpsc::channel::<Reply>();
    let call = t.client.call(
        Fcall::Topen {
            fid: acc,
            mode: ORDWR,
        },
        move |r| {
            let _ = tx.send(r);
        },
    );
    until("the accept waits", || t.server.parked() == 1);
    call.flush();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        Err(Errno::EINTR)
    );
    let (cli, _) = t.socket(t.root, "stream");
    t.ctl(cli, "connect flushed").unwrap();
    // The connection waits in the queue for the next accept.
    let again = t.open(t.root, &["local", &sid, "accept:n"]).unwrap();
    t.client.clunk(again).unwrap();
    let none = t.open(t.root, &["local", &sid, "accept:n"]);
    assert_eq!(none, Err(Errno::EAGAIN));
}

#[test]
fn a_socket_lives_while_its_attach_or_a_file_of_it_is_open() {
    let t = setup();
    let (a, _) = t.client.attach("creator", "").unwrap();
    let (f, id) = t.socket(a, "dgram");
    t.client.clunk(f).unwrap();
    assert!(t.exists(&["local", &id]), "its attach keeps it");
    let (g, kept) = t.socket(a, "dgram");
    t.client.clunk(a).unwrap();
    assert!(!t.exists(&["local", &id]), "it ended with its attach");
    assert!(t.exists(&["local", &kept]), "an open file keeps it");
    t.client.clunk(g).unwrap();
    assert!(!t.exists(&["local", &kept]));
}

#[test]
fn closing_the_client_ends_its_connection_and_what_it_made() {
    let t = setup();
    let (_f, _) = t.socket(t.root, "stream");
    let netfs = t.server.netfs().clone();
    assert_eq!(netfs.stack().sockets().len(), 1);
    t.client.close();
    assert_eq!(t.client.stat(t.root), Err(Errno::EIO));
    until("the server ends the connection", || {
        t.server.connections() == 0
    });
    until("its sockets end", || netfs.stack().sockets().is_empty());
}
