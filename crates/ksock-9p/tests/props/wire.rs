//! Properties of the 9P server's wire, shared by the stable property tests
//! (`tests/props.rs`) and the fuzz target (`fuzz/fuzz_targets/ninep.rs`).
//!
//! - [`check_decode`]: any bytes decode to a message or an error, never a panic, and a
//!   message that decodes encodes back to the same bytes.
//! - [`check_session`]: any sequence of requests, well formed or not, in any order, leaves
//!   the server whole: the connection ends when the client hangs up (or at once, on a
//!   malformed message), and afterwards nothing it made is left: no socket, no waiting
//!   request, no connection.

#![allow(dead_code)]

use bytes::Bytes;
use ksock_9p::proto::{self, Fcall, NOFID, NOTAG, Stat};
use ksock_9p::server::{Config, Peer, Server};
use ksock_netfs::NetFs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Any bytes: a message or an error; a message re-encodes to the same bytes.
pub fn check_decode(data: &[u8]) {
    if let Ok((tag, f)) = proto::decode(Bytes::copy_from_slice(data)) {
        assert_eq!(
            f.to_bytes(tag),
            data,
            "{f:?} does not re-encode to its bytes"
        );
    }
}

const NAMES: &[&str] = &[
    "local",
    "inet",
    "stream",
    "seqpacket",
    "dgram",
    "addrs",
    "table",
    "stats",
    "ctl",
    "data",
    "accept",
    "listen",
    "status",
    "local",
    "remote",
    "err",
    "..",
    "1",
    "2",
    "3",
    "data:n",
    "accept:n",
    "nope",
];

const CTL: &[&str] = &[
    "bind a && listen",
    "bind b && listen 1",
    "connect a",
    "connect b",
    "connect 127.0.0.1:7",
    "bind 127.0.0.1:7 && listen",
    "shutdown wr",
    "hangup",
    "nonblock on",
    "",
    "bogus",
];

/// Turns bytes into requests: each op byte picks a message, the following bytes its fields
/// (small fids and tags, names from the tree, ctl commands), and some ops are raw bytes.
fn program(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut it = data.iter().copied();
    let mut next = move || it.next();
    while let Some(op) = next() {
        let a = next().unwrap_or(0);
        let b = next().unwrap_or(0);
        let tag = u16::from(a % 8);
        let fid = u32::from(a % 6);
        let newfid = u32::from(b % 6);
        if op % 16 == 13 {
            // A socket, as a client makes one: walk to a factory, open it.
            let (fam, ty) = [
                ("local", "stream"),
                ("local", "seqpacket"),
                ("local", "dgram"),
                ("inet", "stream"),
                ("inet", "dgram"),
            ][b as usize % 5];
            out.push(
                Fcall::Twalk {
                    fid: 0,
                    newfid,
                    wnames: vec![fam.into(), ty.into()],
                }
                .to_bytes(tag),
            );
            out.push(
                Fcall::Topen {
                    fid: newfid,
                    mode: 2,
                }
                .to_bytes(tag),
            );
            continue;
        }
        let f = match op % 16 {
            0 => Fcall::Tversion {
                msize: 256 + u32::from(b) * 64,
                version: if b % 5 == 0 { "9P2000.u" } else { "9P2000" }.into(),
            },
            1 => Fcall::Tattach {
                fid,
                afid: NOFID,
                uname: String::new(),
                aname: String::new(),
            },
            2 | 3 => {
                let n = (b % 4) as usize;
                let wnames = (0..n)
                    .map(|_| NAMES[next().unwrap_or(0) as usize % NAMES.len()].to_string())
                    .collect();
                Fcall::Twalk {
                    fid,
                    newfid,
                    wnames,
                }
            }
            4 => Fcall::Topen { fid, mode: b % 3 },
            5 => Fcall::Tread {
                fid,
                offset: u64::from(b % 3) * 100,
                count: u32::from(b) * 4,
            },
            6 => Fcall::Twrite {
                fid,
                offset: 0,
                data: Bytes::from_static(CTL[b as usize % CTL.len()].as_bytes()),
            },
            7 => Fcall::Twrite {
                fid,
                offset: 0,
                data: Bytes::from(vec![b'x'; usize::from(b) * 3]),
            },
            8 => Fcall::Tclunk { fid },
            9 => Fcall::Tflush {
                oldtag: u16::from(b % 8),
            },
            10 => Fcall::Tstat { fid },
            11 => Fcall::Twstat {
                fid,
                stat: Stat::default(),
            },
            12 => Fcall::Tremove { fid },
            14 => {
                // A socket's own file, by the id the first sockets get.
                let file = NAMES[8 + usize::from(b) % 8];
                Fcall::Twalk {
                    fid: 0,
                    newfid,
                    wnames: vec!["local".into(), (1 + a % 3).to_string(), file.into()],
                }
            }
            _ => {
                // Raw bytes, as they come: most end the connection.
                let n = (b % 12) as usize;
                let mut v = vec![a, b];
                v.extend((0..n).map(|_| next().unwrap_or(0)));
                out.push(v);
                continue;
            }
        };
        out.push(f.to_bytes(if op % 16 == 0 { NOTAG } else { tag }));
    }
    out
}

/// Runs the requests `data` describes on a fresh server, hangs up, and checks that the
/// server is left with nothing of the connection's.
pub fn check_session(data: &[u8]) {
    let netfs = NetFs::new(ksock::Stack::new());
    let srv = Server::new(netfs.clone(), Config::default()).expect("a server");
    let (client, theirs) = UnixStream::pair().expect("a socket pair");
    let r = theirs.try_clone().expect("clone");
    let conn = srv
        .serve(Box::new(r), Box::new(theirs), Peer::me())
        .expect("serve");
    // Replies are read and dropped, so that the server never waits on this client.
    let mut rx = client.try_clone().expect("clone");
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while matches!(rx.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut tx = &client;
    let mut first = Fcall::Tversion {
        msize: 8192,
        version: "9P2000".into(),
    }
    .to_bytes(NOTAG);
    Fcall::Tattach {
        fid: 0,
        afid: NOFID,
        uname: String::new(),
        aname: String::new(),
    }
    .encode(1, &mut first);
    let _ = tx.write_all(&first);
    for m in program(data) {
        if tx.write_all(&m).is_err() {
            break;
        }
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    conn.join().expect("the connection's thread does not panic");
    let _ = drain.join();
    // What ends, ends within moments of the hang-up (a task being polled at that instant
    // is cancelled as its poll returns).
    let deadline = Instant::now() + Duration::from_secs(2);
    while netfs.tracked() != 0 || srv.parked() != 0 || srv.connections() != 0 {
        assert!(
            Instant::now() < deadline,
            "left behind: {} sockets, {} waiting requests, {} connections",
            netfs.tracked(),
            srv.parked(),
            srv.connections()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(netfs.stack().ids_after(|_| true, 0, 8).is_empty());
    drop(Arc::clone(&srv));
}
