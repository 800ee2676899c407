//! The server through a raw connection: limits, the end of a connection, and a new session.

use bytes::Bytes;
use ksock_9p::proto::{self, Fcall, NOFID, NOTAG, ORDWR, OREAD};
use ksock_9p::server::{Config, Peer, Server};
use ksock_netfs::NetFs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Raw {
    s: UnixStream,
}

impl Raw {
    fn send(&mut self, tag: u16, f: Fcall) {
        self.s.write_all(&f.to_bytes(tag)).expect("send");
    }

    fn recv(&mut self) -> (u16, Fcall) {
        let mut head = [0u8; 4];
        self.s.read_exact(&mut head).expect("a reply");
        let n = proto::frame_len(head) as usize;
        let mut v = vec![0u8; n];
        v[..4].copy_from_slice(&head);
        self.s.read_exact(&mut v[4..]).expect("the rest of a reply");
        proto::decode(Bytes::from(v)).expect("a well-formed reply")
    }

    #[track_caller]
    fn call(&mut self, tag: u16, f: Fcall) -> Fcall {
        self.send(tag, f);
        let (t, r) = self.recv();
        assert_eq!(t, tag);
        r
    }

    /// Whether the server has closed the connection (reads end of file).
    fn closed(&mut self) -> bool {
        self.s
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut b = [0u8; 1];
        // Closed with bytes unread, the connection is reset rather than ended.
        match self.s.read(&mut b) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }
}

fn start(config: Config) -> (Arc<Server>, NetFs) {
    let stack = ksock::Stack::new();
    let netfs = NetFs::new(stack);
    (Server::new(netfs.clone(), config).expect("server"), netfs)
}

fn connect(srv: &Arc<Server>) -> Raw {
    let (a, b) = UnixStream::pair().expect("pair");
    let r = b.try_clone().expect("clone");
    srv.serve(Box::new(r), Box::new(b), Peer::me())
        .expect("serve");
    // A reply that never comes fails the test instead of hanging it.
    a.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let mut raw = Raw { s: a };
    let r = raw.call(
        NOTAG,
        Fcall::Tversion {
            msize: 8192,
            version: "9P2000".into(),
        },
    );
    assert_eq!(
        r,
        Fcall::Rversion {
            msize: 8192,
            version: "9P2000".into()
        }
    );
    let r = raw.call(
        1,
        Fcall::Tattach {
            fid: 0,
            afid: NOFID,
            uname: "x".into(),
            aname: String::new(),
        },
    );
    assert!(matches!(r, Fcall::Rattach { .. }), "{r:?}");
    raw
}

fn walk(raw: &mut Raw, fid: u32, newfid: u32, path: &[&str]) -> Fcall {
    raw.call(
        2,
        Fcall::Twalk {
            fid,
            newfid,
            wnames: path.iter().map(|s| s.to_string()).collect(),
        },
    )
}

/// Opens a new seqpacket socket on `fid`; returns its id.
fn socket(raw: &mut Raw, fid: u32) -> u64 {
    assert!(matches!(
        walk(raw, 0, fid, &["local", "seqpacket"]),
        Fcall::Rwalk { .. }
    ));
    assert!(matches!(
        raw.call(3, Fcall::Topen { fid, mode: ORDWR }),
        Fcall::Ropen { .. }
    ));
    match raw.call(
        4,
        Fcall::Tread {
            fid,
            offset: 0,
            count: 64,
        },
    ) {
        Fcall::Rread { data } => std::str::from_utf8(&data).unwrap().parse().unwrap(),
        r => panic!("{r:?}"),
    }
}

#[track_caller]
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_disconnect_ends_the_sockets_and_the_waits_of_that_connection_only() {
    let (srv, netfs) = start(Config::default());
    let mut keep = connect(&srv);
    let kept = socket(&mut keep, 1);
    let mut gone = connect(&srv);
    let id = socket(&mut gone, 1);
    let w = format!("bind gone{id} && listen");
    assert!(matches!(
        gone.call(
            5,
            Fcall::Twrite {
                fid: 1,
                offset: 0,
                data: Bytes::from(w)
            }
        ),
        Fcall::Rwrite { .. }
    ));
    // A blocked accept on the connection that goes away.
    let sid = id.to_string();
    walk(&mut gone, 0, 2, &["local", &sid, "accept"]);
    gone.send(
        6,
        Fcall::Topen {
            fid: 2,
            mode: ORDWR,
        },
    );
    wait_until("the accept waits", || srv.parked() == 1);
    assert_eq!(netfs.tracked(), 2);
    drop(gone);
    wait_until("the connection's socket ends", || netfs.tracked() == 1);
    wait_until("its accept is no longer parked", || srv.parked() == 0);
    assert!(netfs.stack().get(id).is_none());
    assert!(netfs.stack().get(kept).is_some());
    // The other connection goes on.
    assert!(matches!(
        keep.call(7, Fcall::Tstat { fid: 1 }),
        Fcall::Rstat { .. }
    ));
    wait_until("one connection is left", || srv.connections() == 1);
}

#[test]
fn clunking_the_attach_ends_the_sockets_it_made_once_their_files_close() {
    let (srv, netfs) = start(Config::default());
    let mut c = connect(&srv);
    socket(&mut c, 1);
    assert_eq!(c.call(5, Fcall::Tclunk { fid: 1 }), Fcall::Rclunk);
    // The attach still holds it, as a living process holds its sockets.
    assert_eq!(netfs.tracked(), 1);
    // A second attach on the same connection makes a socket of its own.
    assert!(matches!(
        c.call(
            6,
            Fcall::Tattach {
                fid: 10,
                afid: NOFID,
                uname: String::new(),
                aname: String::new()
            }
        ),
        Fcall::Rattach { .. }
    ));
    assert!(matches!(
        walk(&mut c, 10, 11, &["local", "stream"]),
        Fcall::Rwalk { .. }
    ));
    assert!(matches!(
        c.call(
            7,
            Fcall::Topen {
                fid: 11,
                mode: OREAD
            }
        ),
        Fcall::Ropen { .. }
    ));
    assert_eq!(netfs.tracked(), 2);
    // Ending the second attach while its file is open: the socket lives on with the file.
    assert_eq!(c.call(8, Fcall::Tclunk { fid: 10 }), Fcall::Rclunk);
    assert_eq!(netfs.tracked(), 2);
    assert_eq!(c.call(9, Fcall::Tclunk { fid: 11 }), Fcall::Rclunk);
    assert_eq!(netfs.tracked(), 1);
    // And the first attach's, with no file open: at once.
    assert_eq!(c.call(10, Fcall::Tclunk { fid: 0 }), Fcall::Rclunk);
    assert_eq!(netfs.tracked(), 0);
}

#[test]
fn fids_and_requests_in_flight_are_bounded_with_an_error_naming_the_limit() {
    let (srv, _netfs) = start(Config {
        max_fids: 4,
        max_tags: 2,
        ..Config::default()
    });
    let mut c = connect(&srv);
    for fid in 1..4 {
        assert!(matches!(walk(&mut c, 0, fid, &[]), Fcall::Rwalk { .. }));
    }
    match walk(&mut c, 0, 9, &[]) {
        Fcall::Rerror { ename } => assert!(ename.contains("at most 4"), "{ename}"),
        r => panic!("a fifth fid: {r:?}"),
    }
    assert_eq!(c.call(5, Fcall::Tclunk { fid: 3 }), Fcall::Rclunk);
    // Two accepts that wait fill the tags; a third request is refused.
    let id = socket(&mut c, 3);
    assert!(matches!(
        c.call(
            5,
            Fcall::Twrite {
                fid: 3,
                offset: 0,
                data: Bytes::from_static(b"bind lim && listen")
            }
        ),
        Fcall::Rwrite { count: 18 }
    ));
    for (fid, tag) in [(1u32, 20u16), (2, 21)] {
        let s = id.to_string();
        assert_eq!(c.call(6, Fcall::Tclunk { fid }), Fcall::Rclunk);
        assert!(matches!(
            walk(&mut c, 0, fid, &["local", &s, "accept"]),
            Fcall::Rwalk { .. }
        ));
        c.send(tag, Fcall::Topen { fid, mode: ORDWR });
    }
    wait_until("two accepts wait", || srv.parked() == 2);
    match c.call(
        22,
        Fcall::Tread {
            fid: 3,
            offset: 0,
            count: 10,
        },
    ) {
        Fcall::Rerror { ename } => assert!(ename.contains("at most 2"), "{ename}"),
        r => panic!("a third request in flight: {r:?}"),
    }
    // A new Tversion flushes both and starts over.
    let r = c.call(
        NOTAG,
        Fcall::Tversion {
            msize: 1 << 30,
            version: "9P2000".into(),
        },
    );
    assert_eq!(
        r,
        Fcall::Rversion {
            msize: 1 << 20,
            version: "9P2000".into()
        }
    );
    wait_until("the reads are gone", || srv.parked() == 0);
    // Every fid went with the old session.
    assert!(matches!(
        c.call(8, Fcall::Tstat { fid: 0 }),
        Fcall::Rerror { .. }
    ));
}

#[test]
fn a_malformed_message_or_a_reused_tag_ends_only_that_connection() {
    let (srv, _netfs) = start(Config::default());
    let mut good = connect(&srv);
    for bad in [
        // An unknown type.
        vec![7, 0, 0, 0, 99, 1, 0],
        // Bigger than the msize (8192).
        {
            let mut v = vec![0u8; 9000];
            v[..4].copy_from_slice(&9000u32.to_le_bytes());
            v[4] = 118;
            v
        },
        // A size below the header.
        vec![3, 0, 0, 0],
        // A string longer than the message.
        {
            let mut v = Fcall::Rerror { ename: "x".into() }.to_bytes(1);
            v[4] = 100;
            v[7..9].copy_from_slice(&500u16.to_le_bytes());
            v
        },
    ] {
        let mut c = connect(&srv);
        c.s.write_all(&bad).unwrap();
        let head = &bad[..bad.len().min(12)];
        assert!(c.closed(), "the server kept a connection after {head:?}...");
    }
    // A tag reused while its request waits.
    let mut c = connect(&srv);
    let id = socket(&mut c, 1).to_string();
    c.call(
        3,
        Fcall::Twrite {
            fid: 1,
            offset: 0,
            data: Bytes::from_static(b"bind reuse && listen"),
        },
    );
    for fid in [2, 3] {
        walk(&mut c, 0, fid, &["local", &id, "accept"]);
        c.send(40, Fcall::Topen { fid, mode: ORDWR });
    }
    assert!(c.closed());
    assert!(matches!(
        good.call(9, Fcall::Tstat { fid: 0 }),
        Fcall::Rstat { .. }
    ));
}

#[test]
fn connections_past_the_limit_get_an_error_and_are_closed() {
    let (srv, _netfs) = start(Config {
        max_connections: 1,
        ..Config::default()
    });
    let _first = connect(&srv);
    let (a, b) = UnixStream::pair().unwrap();
    let r = b.try_clone().unwrap();
    srv.serve(Box::new(r), Box::new(b), Peer::me()).unwrap();
    let mut raw = Raw { s: a };
    match raw.recv() {
        (_, Fcall::Rerror { ename }) => assert!(ename.contains("at most 1"), "{ename}"),
        r => panic!("{r:?}"),
    }
    assert!(raw.closed());
}

#[test]
fn a_fid_being_opened_is_neither_opened_again_nor_walked_and_a_clunk_interrupts_the_open() {
    let (srv, _netfs) = start(Config::default());
    let mut c = connect(&srv);
    let id = socket(&mut c, 1).to_string();
    assert!(matches!(
        c.call(
            5,
            Fcall::Twrite {
                fid: 1,
                offset: 0,
                data: Bytes::from_static(b"bind opening && listen"),
            }
        ),
        Fcall::Rwrite { .. }
    ));
    walk(&mut c, 0, 2, &["local", &id, "accept"]);
    c.send(
        30,
        Fcall::Topen {
            fid: 2,
            mode: ORDWR,
        },
    );
    wait_until("the accept waits", || srv.parked() == 1);
    // Opened again, or walked from, while the first open waits: refused.
    assert!(matches!(
        c.call(
            31,
            Fcall::Topen {
                fid: 2,
                mode: ORDWR
            }
        ),
        Fcall::Rerror { .. }
    ));
    assert!(matches!(walk(&mut c, 2, 3, &[]), Fcall::Rerror { .. }));
    // Clunked: the waiting open is answered "interrupted", and the clunk.
    c.send(32, Fcall::Tclunk { fid: 2 });
    let mut got = vec![c.recv(), c.recv()];
    got.sort_by_key(|(t, _)| *t);
    assert_eq!(
        got,
        vec![
            (
                30,
                Fcall::Rerror {
                    ename: "interrupted".into()
                }
            ),
            (32, Fcall::Rclunk)
        ]
    );
    // A client connects; the connection is queued, and the next accept takes it.
    let _client = {
        let cid = socket(&mut c, 4).to_string();
        let r = c.call(
            6,
            Fcall::Twrite {
                fid: 4,
                offset: 0,
                data: Bytes::from_static(b"connect opening"),
            },
        );
        assert!(matches!(r, Fcall::Rwrite { .. }), "{r:?}");
        cid
    };
    walk(&mut c, 0, 2, &["local", &id, "accept:n"]);
    let r = c.call(
        7,
        Fcall::Topen {
            fid: 2,
            mode: ORDWR,
        },
    );
    assert!(matches!(r, Fcall::Ropen { .. }), "{r:?}");
}

/// A client that sends reads and never reads their replies: once the replies waiting for it
/// fill the connection's room, the reads that wait take nothing more from their sockets.
#[test]
fn a_client_that_reads_no_replies_leaves_the_data_in_the_sockets() {
    const N: usize = 300;
    const SIZE: usize = 8000;
    let (srv, netfs) = start(Config {
        out_max: 64 << 10,
        ..Config::default()
    });
    let mut c = connect(&srv);
    let stack = netfs.stack().clone();
    let mut writers = Vec::new();
    for i in 0..N {
        let (w, r) = stack
            .socketpair(ksock::Domain::LOCAL, ksock::SockType::SEQPACKET, 0)
            .expect("a pair");
        let fid = 10 + i as u32;
        let id = r.id().to_string();
        assert!(matches!(
            walk(&mut c, 0, fid, &["local", &id, "data"]),
            Fcall::Rwalk { .. }
        ));
        assert!(matches!(
            c.call(3, Fcall::Topen { fid, mode: OREAD }),
            Fcall::Ropen { .. }
        ));
        c.send(
            100 + i as u16,
            Fcall::Tread {
                fid,
                offset: 0,
                count: SIZE as u32,
            },
        );
        writers.push((w, r));
    }
    wait_until("every read waits", || srv.parked() == N);
    for (w, _) in &writers {
        assert_eq!(w.send(&[7u8; SIZE]).expect("send"), SIZE);
    }
    // The replies the socket pair and the room hold go out; the rest stay unread.
    wait_until("the reads that had room are answered", || srv.parked() < N);
    std::thread::sleep(Duration::from_millis(200));
    let still = writers
        .iter()
        .filter(|(_, r)| r.nread().unwrap_or(0) == SIZE)
        .count();
    assert!(
        still >= N / 3,
        "only {still} of {N} sockets still hold their record: the replies were taken anyway"
    );
    // Reading the replies lets every read complete, with every record whole.
    let mut tags = std::collections::HashSet::new();
    while tags.len() < N {
        match c.recv() {
            (t, Fcall::Rread { data }) => {
                assert_eq!(data.len(), SIZE);
                assert!(tags.insert(t), "tag {t} answered twice");
            }
            (t, f) => panic!("tag {t}: {f:?}"),
        }
    }
    assert!(writers.iter().all(|(_, r)| r.nread().unwrap_or(1) == 0));
}
