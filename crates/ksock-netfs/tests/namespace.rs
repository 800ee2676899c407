//! The namespace driven in-process, without FUSE: every rule of the file face that does not
//! need a kernel.

use bytes::Bytes;
use ksock::{Errno, Events, Stack};
use ksock_netfs::exec::{block_on, poll_once};
use ksock_netfs::{Access, Cred, Handle, HandleKind, NetFs, Node, OpenMode, ProcId, SockFile};
use std::sync::Arc;
use std::thread;

const ME: Cred = Cred::new(1000, 100, 4242);
const OTHER: Cred = Cred::new(1001, 101, 4343);

struct Net {
    fs: NetFs,
}

impl Net {
    fn new() -> Net {
        Net {
            fs: NetFs::new(Stack::new()),
        }
    }

    fn open_as(&self, path: &str, mode: OpenMode, cred: Cred) -> Result<Arc<Handle>, Errno> {
        let ino = self.fs.resolve(path, &cred)?.ino;
        block_on(self.fs.open(ino, mode, cred))
    }

    fn open(&self, path: &str, mode: OpenMode) -> Result<Arc<Handle>, Errno> {
        self.open_as(path, mode, ME)
    }

    /// Opens a factory and returns the handle and the socket's directory.
    fn socket(&self, ty: &str) -> (Arc<Handle>, String) {
        let h = self
            .open(&format!("/local/{ty}"), OpenMode::RDWR)
            .expect("factory");
        let id = String::from_utf8(read(&h, 64).unwrap()).unwrap();
        (h, format!("/local/{id}"))
    }

    fn text(&self, path: &str) -> String {
        let h = self.open(path, OpenMode::READ).expect(path);
        String::from_utf8(read(&h, 65536).unwrap()).unwrap()
    }

    /// Ends this test's creator process (as the mount does when it exits), then checks
    /// that nothing is left.
    fn creator_exits_then_nothing_is_left(&self) {
        self.fs.process_exited(ProcId {
            pid: ME.pid,
            start: 0,
        });
        self.assert_empty();
    }

    /// Checks that nothing is left: no socket, no name, no record.
    fn assert_empty(&self) {
        let st = self.fs.stack();
        assert_eq!(st.socket_count(), 0, "sockets left: {:?}", st.sockets());
        assert!(st.family(ksock::Domain::LOCAL).unwrap().bound().is_empty());
        assert_eq!(self.fs.tracked(), 0, "namespace records left");
    }
}

fn write(h: &Arc<Handle>, s: &str) -> Result<usize, Errno> {
    block_on(h.write(Bytes::copy_from_slice(s.as_bytes()), false))
}

fn write_nb(h: &Arc<Handle>, s: &[u8]) -> Result<usize, Errno> {
    block_on(h.write(Bytes::copy_from_slice(s), true))
}

fn read(h: &Arc<Handle>, n: usize) -> Result<Vec<u8>, Errno> {
    block_on(h.read(n, false)).map(|b| b.to_vec())
}

fn read_nb(h: &Arc<Handle>, n: usize) -> Result<Vec<u8>, Errno> {
    block_on(h.read(n, true)).map(|b| b.to_vec())
}

/// A listening seqpacket server at `name`, and a connected client: (server ctl, client
/// handle, server dir, client dir).
fn pair(net: &Net, name: &str) -> (Arc<Handle>, Arc<Handle>, String, String) {
    let (srv, sdir) = net.socket("seqpacket");
    write(&srv, &format!("bind {name} && listen")).unwrap();
    let (cli, cdir) = net.socket("seqpacket");
    write(&cli, &format!("connect {name}")).unwrap();
    (srv, cli, sdir, cdir)
}

#[test]
fn tree_lists_families_factories_and_sockets() {
    let net = Net::new();
    let root = net.fs.readdir(Node::Root.ino(), 0, &ME).unwrap();
    let names: Vec<_> = root.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["local"]);
    let local = root[0].node.ino();
    let list = |fs: &NetFs| -> Vec<String> {
        fs.readdir(local, 0, &ME)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(list(&net.fs), ["stream", "seqpacket", "dgram", "addrs"]);
    let (h, dir) = net.socket("seqpacket");
    let id = h.id().unwrap();
    assert_eq!(list(&net.fs).last().unwrap(), &id.to_string());
    let files: Vec<_> = net
        .fs
        .readdir(net.fs.resolve(&dir, &ME).unwrap().ino, 0, &ME)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        files,
        [
            "ctl", "data", "accept", "listen", "local", "remote", "status", "err"
        ]
    );
    // Listing resumes after a cookie, even across a socket that went away.
    let all = net.fs.readdir(local, 0, &ME).unwrap();
    let after_addrs = net.fs.readdir(local, all[3].cookie, &ME).unwrap();
    assert_eq!(after_addrs.len(), 1);
    assert_eq!(after_addrs[0].name, id.to_string());
    assert!(
        net.fs
            .readdir(local, all[4].cookie, &ME)
            .unwrap()
            .is_empty()
    );
    drop(h);
    net.fs.process_exited(ProcId {
        pid: ME.pid,
        start: 0,
    });
    assert_eq!(list(&net.fs).len(), 4, "the directory disappears");
    net.assert_empty();
}

#[test]
fn lookups_and_flags() {
    let net = Net::new();
    let (h, dir) = net.socket("stream");
    // `..` of a socket's directory is its family's directory; of a family's, the root.
    let sockdir = net.fs.resolve(&dir, &ME).unwrap();
    let family = net.fs.resolve("/local", &ME).unwrap();
    let root = net.fs.resolve("/", &ME).unwrap();
    assert_eq!(net.fs.parent(sockdir.node), family.ino);
    assert_eq!(net.fs.parent(family.node), root.ino);
    for (path, want) in [
        ("/nosuch", Errno::ENOENT),
        ("/local/nosuch", Errno::ENOENT),
        ("/local/raw", Errno::ENOENT),
        ("/local/999", Errno::ENOENT),
        ("/local/0", Errno::ENOENT),
        ("/local:n", Errno::EINVAL),
        ("/local/seqpacket:bogus", Errno::EINVAL),
        ("/local/stream/x", Errno::ENOTDIR),
    ] {
        assert_eq!(net.fs.resolve(path, &ME).unwrap_err(), want, "{path}");
    }
    for (file, want) in [
        ("data:bogus", Errno::EINVAL),
        ("data:", Errno::EINVAL),
        ("nosuch", Errno::ENOENT),
        ("nosuch:n", Errno::ENOENT),
    ] {
        let p = format!("{dir}/{file}");
        assert_eq!(net.fs.resolve(&p, &ME).unwrap_err(), want, "{p}");
    }
    assert_eq!(
        net.fs.resolve(&format!("{dir}:n"), &ME).unwrap_err(),
        Errno::EINVAL
    );
    for file in [
        "data:nonblock",
        "data:n",
        "accept:n:nonblock",
        "ctl:n",
        "status:n",
    ] {
        let a = net.fs.resolve(&format!("{dir}/{file}"), &ME).unwrap();
        assert!(matches!(a.node, Node::File { flags, .. } if !flags.is_empty()));
    }
    assert!(matches!(
        net.fs.resolve("/local/seqpacket:n", &ME).unwrap().node,
        Node::Factory { .. }
    ));
    drop(h);
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn attributes_look_like_files() {
    let net = Net::new();
    let root = net.fs.getattr(1).unwrap();
    assert!(root.dir);
    assert_eq!(root.perm, 0o555);
    let f = net.fs.resolve("/local/seqpacket", &ME).unwrap();
    assert_eq!((f.dir, f.perm, f.uid), (false, 0o666, 0));
    let a = net.fs.resolve("/local/addrs", &ME).unwrap();
    assert_eq!(a.perm, 0o444);
    let (h, dir) = net.socket("seqpacket");
    let d = net.fs.resolve(&dir, &ME).unwrap();
    assert_eq!((d.dir, d.perm, d.uid, d.gid), (true, 0o700, 1000, 100));
    let id = h.id().unwrap().to_string();
    let ctl = net.fs.resolve(&format!("{dir}/ctl"), &ME).unwrap();
    assert_eq!((ctl.perm, ctl.size), (0o600, id.len() as u64));
    let st = net.fs.resolve(&format!("{dir}/status"), &ME).unwrap();
    assert_eq!(st.perm, 0o400);
    assert_eq!(st.size as usize, net.text(&format!("{dir}/status")).len());
    assert_eq!(
        net.fs.resolve(&format!("{dir}/local"), &ME).unwrap().size,
        0,
        "unbound"
    );
    write(&h, "bind \"a b\"").unwrap();
    assert_eq!(net.text(&format!("{dir}/local")), "a\\x20b\n");
    assert_eq!(
        net.fs.resolve(&format!("{dir}/local"), &ME).unwrap().size,
        7
    );
    drop(h);
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn factory_handle_is_a_clone() {
    let net = Net::new();
    let f = net.open("/local/seqpacket", OpenMode::RDWR).unwrap();
    assert_eq!(f.kind(), HandleKind::Ctl);
    let id = f.id().unwrap();
    // Read in small pieces: the id, then end of file, no newline.
    let mut got = Vec::new();
    loop {
        let b = read(&f, 1).unwrap();
        if b.is_empty() {
            break;
        }
        got.extend(b);
    }
    assert_eq!(got, id.to_string().as_bytes());
    assert!(read(&f, 10).unwrap().is_empty(), "again: end of file");
    // Writing to it is writing to ctl.
    assert_eq!(write(&f, "bind clone && listen 3").unwrap(), 22);
    let status = net.text(&format!("/local/{id}/status"));
    assert!(status.contains("state listening\n"), "{status}");
    assert!(status.contains("backlog 3\n"), "{status}");
    assert_eq!(net.text("/local/addrs"), "clone\n");
    // Closing the handle does not end the socket: its creator lives.
    drop(f);
    assert!(net.fs.stack().get(id).is_some());
    assert_eq!(
        net.fs.creators(),
        vec![ProcId {
            pid: 4242,
            start: 0
        }]
    );
    net.fs.process_exited(ProcId {
        pid: 4242,
        start: 0,
    });
    assert!(
        net.fs.stack().get(id).is_none(),
        "creator gone, no file open"
    );
    net.assert_empty();
}

#[test]
fn a_socket_lives_while_its_creator_lives_or_a_file_is_open() {
    let net = Net::new();
    let creator = ProcId {
        pid: ME.pid,
        start: 0,
    };
    // Creator gone while a file is open: lives until that file closes.
    let (f, dir) = net.socket("stream");
    let id = f.id().unwrap();
    let data = net.open(&format!("{dir}/data"), OpenMode::RDWR).unwrap();
    drop(f);
    net.fs.process_exited(creator);
    assert!(net.fs.stack().get(id).is_some());
    drop(data);
    assert!(net.fs.stack().get(id).is_none());
    // A socket made without a process lives only while its files are open.
    let ino = net.fs.resolve("/local/stream", &Cred::ROOT).unwrap().ino;
    let h = block_on(net.fs.open(ino, OpenMode::READ, Cred::ROOT)).unwrap();
    let id = h.id().unwrap();
    drop(h);
    assert!(net.fs.stack().get(id).is_none());
    // Another process's exit does not matter.
    let (f, _) = net.socket("stream");
    let id = f.id().unwrap();
    drop(f);
    net.fs.process_exited(ProcId { pid: 1, start: 0 });
    net.fs.process_exited(ProcId {
        pid: ME.pid,
        start: 99,
    });
    assert!(net.fs.stack().get(id).is_some());
    net.fs.process_exited(creator);
    net.assert_empty();
}

#[test]
fn hangup_ends_the_socket_at_once_and_the_peer_sees_eof() {
    let net = Net::new();
    let (srv, cli, sdir, cdir) = pair(&net, "hup");
    let conn = net.open(&format!("{sdir}/accept"), OpenMode::RDWR).unwrap();
    let cdata = net.open(&format!("{cdir}/data"), OpenMode::RDWR).unwrap();
    assert_eq!(
        block_on(cdata.write(Bytes::from_static(b"last"), false)),
        Ok(4)
    );
    let ctl = net.open(&format!("{cdir}/ctl"), OpenMode::WRITE).unwrap();
    assert_eq!(write(&ctl, "hangup").unwrap(), 6);
    // Its directory is gone; its open data file reads end of file and cannot send (EPIPE),
    // its ctl says EBADF; the peer reads what was sent, then end of file.
    assert_eq!(net.fs.resolve(&cdir, &ME).unwrap_err(), Errno::ENOENT);
    assert_eq!(read(&cdata, 10).unwrap(), b"");
    assert_eq!(write_nb(&cdata, b"more").unwrap_err(), Errno::EPIPE);
    assert_eq!(write(&ctl, "hangup").unwrap_err(), Errno::EBADF);
    assert_eq!(read(&conn, 10).unwrap(), b"last");
    assert_eq!(read(&conn, 10).unwrap(), b"", "end of file");
    drop((cli, cdata, ctl, conn, srv));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn accept_gives_data_listen_gives_ctl() {
    let net = Net::new();
    let (srv, cli, sdir, cdir) = pair(&net, "acc");
    let cdata = net.open(&format!("{cdir}/data"), OpenMode::RDWR).unwrap();
    write(&cdata, "one").unwrap();
    // accept: the handle reads the connection's data.
    let a = net.open(&format!("{sdir}/accept"), OpenMode::RDWR).unwrap();
    assert_eq!(a.kind(), HandleKind::Data);
    assert_eq!(read(&a, 100).unwrap(), b"one");
    let aid = a.id().unwrap();
    assert_ne!(aid, srv.id().unwrap());
    let st = net.text(&format!("/local/{aid}/status"));
    assert!(
        st.contains("state connected\n") && st.contains("owner 1000\n"),
        "{st}"
    );
    // listen: the handle is the new connection's ctl; reading gives its id.
    let (cli2, _) = net.socket("seqpacket");
    write(&cli2, "connect acc").unwrap();
    let l = net.open(&format!("{sdir}/listen"), OpenMode::RDWR).unwrap();
    assert_eq!(l.kind(), HandleKind::Ctl);
    let lid = String::from_utf8(read(&l, 100).unwrap()).unwrap();
    assert_eq!(lid, l.id().unwrap().to_string());
    let ldata = net
        .open(&format!("/local/{lid}/data"), OpenMode::RDWR)
        .unwrap();
    write(&ldata, "hi").unwrap();
    let c2data = net
        .open(
            &format!("/local/{}/data", cli2.id().unwrap()),
            OpenMode::RDWR,
        )
        .unwrap();
    assert_eq!(read(&c2data, 10).unwrap(), b"hi");
    // An accepted connection lives while any of its files is open.
    drop(l);
    assert!(net.fs.stack().get(lid.parse().unwrap()).is_some());
    drop(ldata);
    assert!(net.fs.stack().get(lid.parse().unwrap()).is_none());
    assert_eq!(read(&c2data, 10).unwrap(), b"", "peer ended: EOF");
    drop((a, cdata, c2data, cli, cli2, srv));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn blocking_operations_wait_without_a_thread_and_wake() {
    let net = Net::new();
    let (srv, cli, sdir, cdir) = pair(&net, "wake");
    let conn = net.open(&format!("{sdir}/accept"), OpenMode::RDWR).unwrap();
    let cdata = net.open(&format!("{cdir}/data"), OpenMode::RDWR).unwrap();
    // A read with nothing to read is pending, not blocking.
    assert!(poll_once(conn.read(10, false)).is_pending());
    // Blocked in another thread, woken by a write here.
    let c2 = conn.clone();
    let t = thread::spawn(move || block_on(c2.read(10, false)));
    write(&cdata, "ping").unwrap();
    assert_eq!(t.join().unwrap().unwrap(), &b"ping"[..]);
    // Accept on an empty queue is pending; a connect wakes it.
    let ino = net.fs.resolve(&format!("{sdir}/accept"), &ME).unwrap().ino;
    assert!(poll_once(net.fs.open(ino, OpenMode::RDWR, ME)).is_pending());
    let fs = net.fs.clone();
    let t = thread::spawn(move || block_on(fs.open(ino, OpenMode::RDWR, ME)));
    let (c3, _) = net.socket("seqpacket");
    write(&c3, "connect wake").unwrap();
    let accepted = t.join().unwrap().unwrap();
    assert_eq!(accepted.kind(), HandleKind::Data);
    drop((srv, cli, conn, cdata, c3, accepted));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn nonblocking_handles_get_eagain() {
    let net = Net::new();
    let (srv, cli, sdir, cdir) = pair(&net, "nb");
    // accept:nonblock with a connection pending works, then EAGAIN.
    let a = net
        .open(&format!("{sdir}/accept:nonblock"), OpenMode::RDWR)
        .unwrap();
    assert!(a.is_nonblocking());
    assert_eq!(
        net.open(&format!("{sdir}/accept:n"), OpenMode::RDWR)
            .unwrap_err(),
        Errno::EAGAIN
    );
    assert_eq!(
        net.open(&format!("{sdir}/listen"), OpenMode::RDWR.nonblocking())
            .unwrap_err(),
        Errno::EAGAIN,
        "O_NONBLOCK on open"
    );
    assert_eq!(read(&a, 10).unwrap_err(), Errno::EAGAIN, "handle flag");
    let cdata = net.open(&format!("{cdir}/data"), OpenMode::RDWR).unwrap();
    assert_eq!(read_nb(&cdata, 10).unwrap_err(), Errno::EAGAIN, "call flag");
    // Fill the pipe: a nonblocking record write gets EAGAIN.
    let big = vec![7u8; 65536];
    let mut n = 0;
    loop {
        match write_nb(&cdata, &big) {
            Ok(k) => {
                assert_eq!(k, big.len(), "records go whole");
                n += 1;
            }
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                break;
            }
        }
        assert!(n < 100, "never full");
    }
    // The socket's own default: nonblock on applies to files opened later.
    let sctl = net.open(&format!("{sdir}/ctl"), OpenMode::WRITE).unwrap();
    write(&sctl, "nonblock on").unwrap();
    assert!(
        net.text(&format!("{sdir}/status"))
            .contains("nonblock on\n")
    );
    let d = net.open(&format!("{sdir}/accept"), OpenMode::RDWR);
    assert_eq!(d.unwrap_err(), Errno::EAGAIN);
    write(&sctl, "nonblock off").unwrap();
    assert!(
        poll_once(net.fs.open(
            net.fs.resolve(&format!("{sdir}/accept"), &ME).unwrap().ino,
            OpenMode::RDWR,
            ME
        ))
        .is_pending()
    );
    drop((srv, cli, a, cdata, sctl));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn records_are_truncated_by_short_reads() {
    let net = Net::new();
    let (srv, cli, sdir, cdir) = pair(&net, "trunc");
    let cdata = net.open(&format!("{cdir}/data"), OpenMode::RDWR).unwrap();
    let conn = net.open(&format!("{sdir}/accept"), OpenMode::RDWR).unwrap();
    write(&cdata, "a long record").unwrap();
    write(&cdata, "next").unwrap();
    assert_eq!(read(&conn, 6).unwrap(), b"a long");
    assert_eq!(read(&conn, 100).unwrap(), b"next", "the rest was discarded");
    drop((srv, cli, cdata, conn));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn ctl_errors_and_the_err_file() {
    let net = Net::new();
    let (a, adir) = net.socket("seqpacket");
    let (b, bdir) = net.socket("seqpacket");
    let err = |dir: &str| net.text(&format!("{dir}/err"));
    assert_eq!(err(&adir), "", "no error yet");
    assert_eq!(write(&a, "frob").unwrap_err(), Errno::ENOENT);
    assert_eq!(err(&adir), "ENOENT: unknown command \"frob\"\n");
    assert_eq!(write(&a, "bind").unwrap_err(), Errno::EINVAL);
    assert!(err(&adir).starts_with("EINVAL: bind: wrong number of arguments"));
    assert_eq!(write(&a, "").unwrap_err(), Errno::EINVAL);
    assert_eq!(write(&a, "\n").unwrap_err(), Errno::EINVAL);
    assert_eq!(write(&a, "bind \"x").unwrap_err(), Errno::EINVAL);
    assert_eq!(write(&a, &"x".repeat(4097)).unwrap_err(), Errno::E2BIG);
    assert_eq!(write(&a, "listen 0").unwrap_err(), Errno::EINVAL);
    assert_eq!(write(&a, "shutdown sideways").unwrap_err(), Errno::EINVAL);
    assert_eq!(
        write(&a, "connect nobody").unwrap_err(),
        Errno::ECONNREFUSED
    );
    assert!(
        err(&adir).starts_with("ECONNREFUSED: connect \"nobody\": Connection refused"),
        "{}",
        err(&adir)
    );
    assert_eq!(write(&a, "listen").unwrap_err(), Errno::EINVAL, "not bound");
    assert_eq!(write(&a, "shutdown rd").unwrap_err(), Errno::ENOTCONN);
    // A chain stops at the first failure; earlier commands keep their effect.
    assert_eq!(
        write(&a, "bind taken && listen && frob && listen 9").unwrap_err(),
        Errno::ENOENT
    );
    let st = net.text(&format!("{adir}/status"));
    assert!(
        st.contains("state listening\n") && st.contains("backlog 128\n"),
        "{st}"
    );
    // A syntax error anywhere runs nothing.
    assert_eq!(
        write(&b, "bind other && listen \"").unwrap_err(),
        Errno::EINVAL
    );
    assert!(net.text(&format!("{bdir}/status")).contains("state new\n"));
    assert_eq!(write(&b, "bind taken").unwrap_err(), Errno::EADDRINUSE);
    assert!(err(&bdir).starts_with("EADDRINUSE: bind \"taken\""));
    // Writing a read-only file: EACCES at open; writing a text handle: EBADF.
    assert_eq!(
        net.open(&format!("{adir}/status"), OpenMode::WRITE)
            .unwrap_err(),
        Errno::EACCES
    );
    assert_eq!(
        net.open("/local/addrs", OpenMode::RDWR).unwrap_err(),
        Errno::EACCES
    );
    let st = net.open(&format!("{adir}/status"), OpenMode::READ).unwrap();
    assert_eq!(write(&st, "x").unwrap_err(), Errno::EBADF);
    // Opening a directory as a file.
    let dino = net.fs.resolve(&adir, &ME).unwrap().ino;
    assert_eq!(
        block_on(net.fs.open(dino, OpenMode::READ, ME)).unwrap_err(),
        Errno::EISDIR
    );
    drop((a, b, st));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn other_users_get_eacces() {
    let net = Net::new();
    let (h, dir) = net.socket("seqpacket");
    let dino = net.fs.resolve(&dir, &ME).unwrap().ino;
    // The directory can be seen (like /proc), not entered.
    assert!(net.fs.resolve(&dir, &OTHER).is_ok());
    for file in ["ctl", "data", "status", "err", "accept:n"] {
        assert_eq!(
            net.fs
                .resolve(&format!("{dir}/{file}"), &OTHER)
                .unwrap_err(),
            Errno::EACCES,
            "{file}"
        );
    }
    assert_eq!(net.fs.readdir(dino, 0, &OTHER).unwrap_err(), Errno::EACCES);
    assert_eq!(
        net.fs.access(dino, Access::READ, &OTHER).unwrap_err(),
        Errno::EACCES
    );
    let ctl = Node::File {
        id: h.id().unwrap(),
        file: SockFile::Ctl,
        flags: Default::default(),
    };
    assert_eq!(
        block_on(net.fs.open(ctl.ino(), OpenMode::RDWR, OTHER)).unwrap_err(),
        Errno::EACCES
    );
    // Root may; factories and addrs are everybody's.
    assert!(
        net.fs
            .resolve(&format!("{dir}/status"), &Cred::ROOT)
            .is_ok()
    );
    let (h2, dir2) = {
        let f = net.open_as("/local/dgram", OpenMode::RDWR, OTHER).unwrap();
        let id = f.id().unwrap();
        (f, format!("/local/{id}"))
    };
    assert_eq!(net.fs.resolve(&dir2, &OTHER).unwrap().uid, 1001);
    assert!(net.open_as("/local/addrs", OpenMode::READ, OTHER).is_ok());
    assert_eq!(
        net.fs
            .access(
                net.fs.resolve("/local/addrs", &OTHER).unwrap().ino,
                Access::WRITE,
                &OTHER
            )
            .unwrap_err(),
        Errno::EACCES
    );
    drop((h, h2));
    net.fs.process_exited(ProcId {
        pid: ME.pid,
        start: 0,
    });
    net.fs.process_exited(ProcId {
        pid: OTHER.pid,
        start: 0,
    });
    net.assert_empty();
}

#[test]
fn poll_readiness_of_handles() {
    let net = Net::new();
    let (srv, cli, sdir, cdir) = pair(&net, "poll");
    let (srv2, _) = net.socket("seqpacket");
    write(&srv2, "bind poll2 && listen").unwrap();
    // A listener's data handle polls IN when a connection waits (the window-server way).
    let ldata = net
        .open(
            &format!("/local/{}/data:n", srv2.id().unwrap()),
            OpenMode::RDWR,
        )
        .unwrap();
    assert!(!ldata.poll_ready(None, Events::IN).contains(Events::IN));
    let (c, _) = net.socket("seqpacket");
    write(&c, "connect poll2").unwrap();
    assert!(ldata.poll_ready(None, Events::IN).contains(Events::IN));
    // A connection's data: OUT at once, IN once a record arrives.
    let conn = net.open(&format!("{sdir}/accept"), OpenMode::RDWR).unwrap();
    let ev = conn.poll_ready(None, Events::IN | Events::OUT);
    assert!(ev.contains(Events::OUT) && !ev.contains(Events::IN));
    let cdata = net.open(&format!("{cdir}/data"), OpenMode::RDWR).unwrap();
    write(&cdata, "x").unwrap();
    assert!(conn.poll_ready(None, Events::IN).contains(Events::IN));
    let st = net.open(&format!("{sdir}/status"), OpenMode::READ).unwrap();
    assert_eq!(st.poll_ready(None, Events::IN), Events::IN | Events::OUT);
    drop((srv, srv2, cli, ldata, c, conn, cdata, st));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn streams_and_datagrams_through_data() {
    let net = Net::new();
    let (srv, sdir) = net.socket("stream");
    write(&srv, "bind st && listen 1").unwrap();
    let (cli, cdir) = net.socket("stream");
    write(&cli, "connect st").unwrap();
    let cdata = net.open(&format!("{cdir}/data"), OpenMode::RDWR).unwrap();
    let conn = net.open(&format!("{sdir}/accept"), OpenMode::RDWR).unwrap();
    // A blocking stream write larger than the buffer completes as the reader drains.
    let big = Bytes::from(vec![1u8; 600_000]);
    let w = {
        let cdata = cdata.clone();
        thread::spawn(move || block_on(cdata.write(big, false)))
    };
    let mut got = 0;
    while got < 600_000 {
        got += read(&conn, 65536).unwrap().len();
    }
    assert_eq!(w.join().unwrap().unwrap(), 600_000);
    // shutdown wr gives the peer end of file.
    let cctl = net.open(&format!("{cdir}/ctl"), OpenMode::WRITE).unwrap();
    write(&cctl, "shutdown wr").unwrap();
    assert_eq!(read(&conn, 10).unwrap(), b"");
    // dgram: unconnected write is ENOTCONN; connect sets the peer.
    let (d1, d1dir) = net.socket("dgram");
    let (d2, d2dir) = net.socket("dgram");
    write(&d1, "bind dg1").unwrap();
    let d2data = net.open(&format!("{d2dir}/data"), OpenMode::RDWR).unwrap();
    assert_eq!(write(&d2data, "x").unwrap_err(), Errno::ENOTCONN);
    write(&d2, "connect dg1").unwrap();
    write(&d2data, "datagram").unwrap();
    let d1data = net.open(&format!("{d1dir}/data"), OpenMode::RDWR).unwrap();
    assert_eq!(read(&d1data, 100).unwrap(), b"datagram");
    assert_eq!(write(&d1, "listen").unwrap_err(), Errno::EOPNOTSUPP);
    drop((srv, cli, cdata, conn, cctl, d1, d2, d2data, d1data));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn a_blocking_connect_waits_for_room_in_the_backlog() {
    let net = Net::new();
    let (srv, sdir) = net.socket("seqpacket");
    write(&srv, "bind full && listen 1").unwrap();
    let (c1, _) = net.socket("seqpacket");
    write(&c1, "connect full").unwrap();
    let (c2, c2dir) = net.socket("seqpacket");
    let nb = net
        .open(&format!("{c2dir}/ctl:n"), OpenMode::WRITE)
        .unwrap();
    assert_eq!(write(&nb, "connect full").unwrap_err(), Errno::EAGAIN);
    let fut = c2.write(Bytes::from_static(b"connect full"), false);
    let t = thread::spawn(move || block_on(fut));
    let a = net.open(&format!("{sdir}/accept"), OpenMode::RDWR).unwrap();
    assert_eq!(t.join().unwrap(), Ok(12));
    assert!(
        net.text(&format!("{c2dir}/status"))
            .contains("state connected\n")
    );
    drop((srv, c1, c2, nb, a));
    net.creator_exits_then_nothing_is_left();
}

#[test]
fn many_sockets_opened_and_abandoned_are_gone() {
    let net = Net::new();
    for i in 0..2000u32 {
        let cred = Cred::new(1000, 100, 10_000 + i % 7);
        let h = net
            .open_as("/local/seqpacket", OpenMode::READ, cred)
            .unwrap();
        if i % 3 == 0 {
            write(&h, &format!("bind n{i} && listen")).unwrap();
        }
    }
    assert_eq!(net.fs.stack().socket_count(), 2000);
    let mut creators = net.fs.creators();
    creators.sort_by_key(|p| p.pid);
    assert_eq!(creators.len(), 7);
    for p in creators {
        net.fs.process_exited(p);
    }
    net.assert_empty();
}

#[test]
fn the_err_file_says_which_refusal_and_whose_broken_pipe() {
    let net = Net::new();
    let err = |dir: &str| net.text(&format!("{dir}/err"));
    let (c, cdir) = net.socket("stream");
    let refused = |why: &str, name: &str| {
        format!("ECONNREFUSED: connect \"{name}\": Connection refused ({why})\n")
    };
    assert_eq!(write(&c, "connect nobody"), Err(Errno::ECONNREFUSED));
    assert_eq!(
        err(&cdir),
        refused("no socket is bound to that name", "nobody")
    );
    let (b, _) = net.socket("stream");
    write(&b, "bind quiet").unwrap();
    assert_eq!(write(&c, "connect quiet"), Err(Errno::ECONNREFUSED));
    assert_eq!(
        err(&cdir),
        refused("the name is bound but not listening", "quiet")
    );
    // A listener that has closed: its name is free at once (SPEC 3), so a connect finds
    // no socket there.
    let (l, _) = net.socket("stream");
    write(&l, "bind gone && listen").unwrap();
    write(&l, "hangup").unwrap();
    assert_eq!(write(&c, "connect gone"), Err(Errno::ECONNREFUSED));
    assert_eq!(
        err(&cdir),
        refused("no socket is bound to that name", "gone")
    );

    // EPIPE: this socket's own shutdown, the peer's, the peer gone.
    let (srv, cli, sdir, cdir) = pair(&net, "pipes");
    let cdata = net.open(&format!("{cdir}/data"), OpenMode::RDWR).unwrap();
    let conn = net.open(&format!("{sdir}/accept"), OpenMode::RDWR).unwrap();
    write(&cli, "shutdown wr").unwrap();
    assert_eq!(write(&cdata, "late"), Err(Errno::EPIPE));
    assert_eq!(
        err(&cdir),
        "EPIPE: write: Broken pipe (this socket's write side is shut down)\n"
    );
    drop((cli, cdata, conn));
    let (srv2, cli2, sdir2, cdir2) = pair(&net, "pipes2");
    let cdata = net.open(&format!("{cdir2}/data"), OpenMode::RDWR).unwrap();
    let conn = net
        .open(&format!("{sdir2}/listen"), OpenMode::RDWR)
        .unwrap();
    write(&conn, "shutdown rd").unwrap();
    assert_eq!(write(&cdata, "unread"), Err(Errno::EPIPE));
    assert_eq!(
        err(&cdir2),
        "EPIPE: write: Broken pipe (the peer has shut its read side)\n"
    );
    drop(conn);
    assert_eq!(write(&cdata, "to nobody"), Err(Errno::EPIPE));
    assert_eq!(
        err(&cdir2),
        "EPIPE: write: Broken pipe (the peer is gone)\n"
    );
    // A face's own failure keeps the face's words (and no stale reason of the socket's).
    assert_eq!(write(&cli2, "bind \"\""), Err(Errno::EINVAL));
    assert_eq!(
        err(&cdir2),
        "EINVAL: bind \"\": Invalid argument (the address is empty)\n"
    );
    drop((srv, srv2, cli2, cdata, c, b, l));
    net.creator_exits_then_nothing_is_left();
}
