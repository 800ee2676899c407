//! The 9P client against a scripted server on the other end of a Unix socket pair: each
//! test reads the client's messages and answers them as it chooses (in another order, with
//! errors, with a flush's rules), and checks what the client's callers see.

use bytes::Bytes;
use ksock::Errno;
use ksock_9p::client::{Client, DEFAULT_MSIZE, Reply};
use ksock_9p::proto::{self, DMDIR, Fcall, NOTAG, QTDIR, Qid, Stat};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// The server's end.
struct Fake {
    s: UnixStream,
}

impl Fake {
    fn recv(&mut self) -> (u16, Fcall) {
        let mut head = [0u8; 4];
        self.s
            .read_exact(&mut head)
            .expect("a message from the client");
        let n = u32::from_le_bytes(head) as usize;
        let mut frame = vec![0u8; n];
        frame[..4].copy_from_slice(&head);
        self.s.read_exact(&mut frame[4..]).expect("the rest of it");
        proto::decode(Bytes::from(frame)).expect("a well-formed message")
    }

    fn send(&mut self, tag: u16, f: Fcall) {
        self.s.write_all(&f.to_bytes(tag)).expect("send");
    }

    /// Answers the client's Tversion with `msize` and `version`; returns the msize asked.
    fn version(&mut self, msize: u32, version: &str) -> u32 {
        let (tag, f) = self.recv();
        assert_eq!(tag, NOTAG);
        let Fcall::Tversion {
            msize: asked,
            version: v,
        } = f
        else {
            panic!("expected Tversion, got {f:?}");
        };
        assert_eq!(v, "9P2000");
        self.send(
            NOTAG,
            Fcall::Rversion {
                msize,
                version: version.into(),
            },
        );
        asked
    }
}

/// A client and the scripted server's end, the session started.
fn pair() -> (Arc<Client>, Fake) {
    pair_with(DEFAULT_MSIZE, DEFAULT_MSIZE)
}

fn pair_with(ask: u32, give: u32) -> (Arc<Client>, Fake) {
    let (a, b) = UnixStream::pair().unwrap();
    let mut fake = Fake { s: b };
    let t = std::thread::spawn(move || {
        let asked = fake.version(give, "9P2000");
        (fake, asked)
    });
    let client = Client::from_unix(a, ask).expect("session");
    let (fake, asked) = t.join().unwrap();
    assert_eq!(asked, ask);
    (client, fake)
}

/// Makes a request whose answer arrives on the returned channel.
fn call(c: &Client, f: Fcall) -> (ksock_9p::client::Call, mpsc::Receiver<Reply>) {
    let (tx, rx) = mpsc::channel();
    let call = c.call(f, move |r| {
        let _ = tx.send(r);
    });
    (call, rx)
}

fn got(rx: &mpsc::Receiver<Reply>) -> Reply {
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the callback ran")
}

fn qid(path: u64) -> Qid {
    Qid {
        ty: 0,
        version: 0,
        path,
    }
}

#[test]
fn the_message_size_is_the_smaller_of_both_and_a_wrong_version_is_refused() {
    let (c, _fake) = pair_with(1 << 20, 8192);
    assert_eq!(c.msize(), 8192);
    assert_eq!(c.max_io(), 8192 - proto::IOHDRSZ);
    let (c, _fake) = pair_with(4096, 65536);
    assert_eq!(c.msize(), 4096);

    for (give, version, what) in [
        (8192, "9P2000.L", "9P2000.L"),
        (8192, "unknown", "unknown"),
        (100, "9P2000", "below"),
    ] {
        let (a, b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut fake = Fake { s: b };
            fake.version(give, version);
            fake
        });
        let e = Client::from_unix(a, 8192).err().expect("refused");
        assert!(e.to_string().contains(what), "{e}");
        drop(t.join().unwrap());
    }

    // A server that closes instead of answering.
    let (a, b) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let mut fake = Fake { s: b };
        let _ = fake.recv();
    });
    let e = Client::from_unix(a, 8192).err().expect("refused");
    assert!(e.to_string().contains("Tversion"), "{e}");
    t.join().unwrap();
}

#[test]
fn answers_reach_their_own_callers_whatever_their_order() {
    let (c, mut fake) = pair();
    let (_a, ra) = call(&c, Fcall::Tstat { fid: 1 });
    let (_b, rb) = call(
        &c,
        Fcall::Tread {
            fid: 2,
            offset: 0,
            count: 10,
        },
    );
    let (ta, fa) = fake.recv();
    let (tb, fb) = fake.recv();
    assert!(matches!(fa, Fcall::Tstat { fid: 1 }));
    assert!(matches!(fb, Fcall::Tread { fid: 2, .. }));
    assert_ne!(ta, tb);
    assert_ne!(ta, NOTAG);
    // The second is answered first, and with an error.
    fake.send(
        tb,
        Fcall::Rerror {
            ename: "Connection refused".into(),
        },
    );
    assert_eq!(got(&rb), Err(Errno::ECONNREFUSED));
    assert!(ra.try_recv().is_err(), "the first is still waiting");
    let stat = Stat {
        name: "x".into(),
        qid: qid(9),
        ..Stat::default()
    };
    fake.send(ta, Fcall::Rstat { stat: stat.clone() });
    assert_eq!(got(&ra), Ok(Fcall::Rstat { stat }));
    assert_eq!(c.pending(), 0);
}

#[test]
fn a_flushed_request_keeps_its_tag_until_the_rflush_and_gets_eintr() {
    let (c, mut fake) = pair();
    let (read, rx) = call(
        &c,
        Fcall::Tread {
            fid: 3,
            offset: 0,
            count: 100,
        },
    );
    let (t, _) = fake.recv();
    assert_eq!(read.tag(), t);
    read.flush();
    read.flush(); // A second flush of the same request sends nothing more.
    let (ft, f) = fake.recv();
    assert_eq!(f, Fcall::Tflush { oldtag: t });
    assert_ne!(ft, t);
    // While the flush is under way, neither tag goes to another request.
    let mut others = Vec::new();
    for fid in 10..40 {
        others.push(call(&c, Fcall::Tclunk { fid }));
    }
    for _ in 10..40 {
        let (tag, f) = fake.recv();
        assert!(
            matches!(f, Fcall::Tclunk { .. }),
            "{f:?}: the second flush sent nothing"
        );
        assert!(tag != t && tag != ft, "tag {tag} reused while in flight");
        fake.send(tag, Fcall::Rclunk);
    }
    for (_, rx) in &others {
        assert_eq!(got(rx), Ok(Fcall::Rclunk));
    }
    assert!(rx.try_recv().is_err(), "no answer before the server's");
    // flush(5): the request answered "interrupted", then the flush.
    fake.send(
        t,
        Fcall::Rerror {
            ename: "interrupted".into(),
        },
    );
    fake.send(ft, Fcall::Rflush);
    assert_eq!(got(&rx), Err(Errno::EINTR));
    // Both tags are free again.
    let done = call(&c, Fcall::Tclunk { fid: 1 }).1;
    let (tag, _) = fake.recv();
    fake.send(tag, Fcall::Rclunk);
    assert_eq!(got(&done), Ok(Fcall::Rclunk));
    assert_eq!(c.pending(), 0);
}

#[test]
fn an_answer_that_comes_before_the_rflush_is_the_callers() {
    let (c, mut fake) = pair();
    let (read, rx) = call(
        &c,
        Fcall::Tread {
            fid: 3,
            offset: 0,
            count: 100,
        },
    );
    let (t, _) = fake.recv();
    read.flush();
    let (ft, _) = fake.recv();
    fake.send(
        t,
        Fcall::Rread {
            data: Bytes::from_static(b"late data"),
        },
    );
    assert_eq!(
        got(&rx),
        Ok(Fcall::Rread {
            data: Bytes::from_static(b"late data")
        })
    );
    assert_eq!(
        c.pending(),
        2,
        "the flush is in flight, and the answered request's tag is held until its Rflush"
    );
    fake.send(ft, Fcall::Rflush);
    // A flush after the answer sends nothing.
    read.flush();
    let (tag, f) = {
        let done = call(&c, Fcall::Tclunk { fid: 1 }).1;
        let m = fake.recv();
        fake.send(m.0, Fcall::Rclunk);
        assert_eq!(got(&done), Ok(Fcall::Rclunk));
        m
    };
    assert!(matches!(f, Fcall::Tclunk { fid: 1 }), "{tag} {f:?}");
    assert_eq!(c.pending(), 0);
}

#[test]
fn a_flush_answered_by_rflush_alone_gives_eintr() {
    let (c, mut fake) = pair();
    let (read, rx) = call(&c, Fcall::Topen { fid: 4, mode: 0 });
    let (_, _) = fake.recv();
    c.flush(read.tag());
    let (ft, f) = fake.recv();
    assert!(matches!(f, Fcall::Tflush { .. }));
    fake.send(ft, Fcall::Rflush);
    assert_eq!(got(&rx), Err(Errno::EINTR));
    assert_eq!(c.pending(), 0);
}

#[test]
fn the_end_of_the_connection_fails_every_pending_and_later_request_with_eio() {
    let (c, mut fake) = pair();
    let waiting: Vec<_> = (0..5)
        .map(|fid| {
            call(
                &c,
                Fcall::Tread {
                    fid,
                    offset: 0,
                    count: 1,
                },
            )
        })
        .collect();
    for _ in 0..5 {
        fake.recv();
    }
    drop(fake);
    for (_, rx) in &waiting {
        assert_eq!(got(rx), Err(Errno::EIO));
    }
    c.wait_closed();
    assert!(c.is_closed());
    let (_, rx) = call(&c, Fcall::Tstat { fid: 0 });
    assert_eq!(got(&rx), Err(Errno::EIO));
    assert_eq!(c.stat(0), Err(Errno::EIO));
}

#[test]
fn a_message_that_cannot_be_decoded_or_is_too_long_ends_the_connection() {
    for bad in [
        // An unknown type.
        vec![7, 0, 0, 0, 99, 0, 0],
        // Longer than the message size.
        (1u32 << 30).to_le_bytes().to_vec(),
        // Shorter than a header.
        vec![3, 0, 0, 0],
    ] {
        let (c, mut fake) = pair();
        let (_, rx) = call(&c, Fcall::Tstat { fid: 0 });
        fake.recv();
        fake.s.write_all(&bad).unwrap();
        assert_eq!(got(&rx), Err(Errno::EIO), "{bad:?}");
        c.wait_closed();
    }
}

#[test]
fn a_call_that_times_out_is_flushed() {
    let (c, mut fake) = pair();
    let server = std::thread::spawn(move || {
        let (t, f) = fake.recv();
        assert!(matches!(f, Fcall::Tread { .. }));
        let (ft, f) = fake.recv();
        assert_eq!(f, Fcall::Tflush { oldtag: t });
        fake.send(
            t,
            Fcall::Rerror {
                ename: "interrupted".into(),
            },
        );
        fake.send(ft, Fcall::Rflush);
        // The next one is answered in time.
        let (t, _) = fake.recv();
        fake.send(
            t,
            Fcall::Rread {
                data: Bytes::from_static(b"ok"),
            },
        );
        fake
    });
    let read = Fcall::Tread {
        fid: 1,
        offset: 0,
        count: 2,
    };
    assert_eq!(
        c.call_timeout(read.clone(), Duration::from_millis(50)),
        Err(Errno::ETIMEDOUT)
    );
    assert_eq!(
        c.call_timeout(read, Duration::from_secs(60)),
        Ok(Fcall::Rread {
            data: Bytes::from_static(b"ok")
        })
    );
    let _fake = server.join().unwrap();
    assert_eq!(c.pending(), 0);
}

#[test]
fn blocking_calls_from_a_callback_are_refused_not_deadlocked() {
    let (c, mut fake) = pair();
    let (tx, rx) = mpsc::channel();
    let c2 = c.clone();
    c.call(Fcall::Tclunk { fid: 0 }, move |_| {
        let _ = tx.send(c2.stat(0));
    });
    let (t, _) = fake.recv();
    fake.send(t, Fcall::Rclunk);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        Err(Errno::EDEADLK)
    );
}

#[test]
fn the_conveniences_walk_open_read_write_stat_list_and_free_their_fids() {
    let (c, mut fake) = pair();
    let entries = vec![
        Stat {
            name: "stream".into(),
            mode: 0o666,
            qid: qid(0x21),
            uid: "root".into(),
            gid: "root".into(),
            ..Stat::default()
        },
        Stat {
            name: "7".into(),
            mode: DMDIR | 0o700,
            qid: Qid {
                ty: QTDIR,
                version: 0,
                path: 0x70003,
            },
            ..Stat::default()
        },
    ];
    let listing = entries.clone();
    let server = std::thread::spawn(move || {
        let mut dir_reads = 0;
        let mut dir_fid = None;
        loop {
            let (t, f) = fake.recv();
            let answer = match f {
                Fcall::Tattach { fid, afid, .. } => {
                    assert_eq!(afid, proto::NOFID);
                    assert_eq!(fid, 0);
                    Fcall::Rattach {
                        qid: Qid {
                            ty: QTDIR,
                            version: 0,
                            path: 1,
                        },
                    }
                }
                Fcall::Twalk { wnames, .. } if wnames == ["local", "nothing"] => Fcall::Rwalk {
                    wqids: vec![qid(2)],
                },
                Fcall::Twalk { wnames, .. } if wnames == ["nothing"] => Fcall::Rerror {
                    ename: "No such file or directory".into(),
                },
                Fcall::Twalk { wnames, newfid, .. } => {
                    if wnames == ["local"] {
                        dir_fid = Some(newfid);
                    }
                    Fcall::Rwalk {
                        wqids: (0..wnames.len() as u64).map(qid).collect(),
                    }
                }
                Fcall::Topen { .. } => Fcall::Ropen {
                    qid: qid(2),
                    iounit: 0,
                },
                Fcall::Tread { fid, offset, .. } if Some(fid) == dir_fid => {
                    dir_reads += 1;
                    let mut data = Vec::new();
                    // One entry per read, as a server whose reply has room for one.
                    if let Some(e) = listing.get(dir_reads - 1) {
                        assert!(offset > 0 || dir_reads == 1);
                        e.encode(&mut data);
                    }
                    Fcall::Rread {
                        data: Bytes::from(data),
                    }
                }
                Fcall::Tread { count, .. } => Fcall::Rread {
                    data: Bytes::from(vec![b'x'; count as usize]),
                },
                Fcall::Twrite { data, .. } => Fcall::Rwrite {
                    count: data.len() as u32,
                },
                Fcall::Tstat { .. } => Fcall::Rstat {
                    stat: listing[0].clone(),
                },
                Fcall::Tclunk { fid: 99 } => return fake,
                Fcall::Tclunk { .. } => Fcall::Rclunk,
                other => panic!("unexpected {other:?}"),
            };
            fake.send(t, answer);
        }
    });
    let (root, rq) = c.attach("me", "").unwrap();
    assert_eq!(rq.path, 1);
    assert_eq!(c.fids(), 1);
    // A walk stopped part of the way is ENOENT, and makes no fid.
    assert_eq!(c.walk(root, &["local", "nothing"]), Err(Errno::ENOENT));
    assert_eq!(c.walk(root, &["nothing"]), Err(Errno::ENOENT));
    assert_eq!(c.fids(), 1);
    let (f, qids) = c.walk(root, &["local"]).unwrap();
    assert_eq!(qids.len(), 1);
    // A walk of many names takes several messages.
    let many: Vec<&str> = std::iter::repeat_n("a", 20).collect();
    let (g, qids) = c.walk(root, &many).unwrap();
    assert_eq!(qids.len(), 20);
    c.clunk(g).unwrap();
    assert_eq!(c.fids(), 2);
    let (_q, _iounit) = c.open(f, proto::OREAD).unwrap();
    assert_eq!(f, 1, "fids are handed out from 0, and freed ones come back");
    assert_eq!(c.readdir(f).unwrap(), entries);
    assert_eq!(c.stat(f).unwrap(), entries[0]);
    let (h, _) = c.walk(root, &["local", "x"]).unwrap();
    let max = c.max_io() as usize;
    assert_eq!(
        c.read(h, 0, u32::MAX).unwrap().len(),
        max,
        "reads are capped"
    );
    assert_eq!(c.write(h, 0, &vec![0; max + 10]).unwrap() as usize, max);
    assert_eq!(
        c.write(h, 0, b"").unwrap(),
        0,
        "a zero-length write is sent"
    );
    c.clunk(h).unwrap();
    c.clunk(f).unwrap();
    assert_eq!(c.fids(), 1);
    // Done: the script ends at a clunk of fid 99, unanswered.
    c.call(Fcall::Tclunk { fid: 99 }, |_| {});
    let _fake = server.join().unwrap();
}
