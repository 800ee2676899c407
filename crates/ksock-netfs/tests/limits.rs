//! Limits per user, the `table` file and listings in pieces, driven in-process.

use bytes::Bytes;
use ksock::{Errno, Stack};
use ksock_netfs::exec::block_on;
use ksock_netfs::status::Status;
use ksock_netfs::{Config, Cred, Handle, NetFs, OpenMode, ProcId};
use std::collections::HashSet;
use std::sync::Arc;

const ME: Cred = Cred::new(1000, 100, 4242);
const OTHER: Cred = Cred::new(1001, 101, 4343);

fn net(max_sockets: usize, max_buffered: usize) -> NetFs {
    NetFs::with_config(
        Stack::new(),
        Config {
            max_sockets_per_user: max_sockets,
            max_buffered_per_user: max_buffered,
            ..Config::default()
        },
    )
}

fn open(fs: &NetFs, path: &str, mode: OpenMode, cred: Cred) -> Result<Arc<Handle>, Errno> {
    let ino = fs.resolve(path, &cred)?.ino;
    block_on(fs.open(ino, mode, cred))
}

fn read_all(h: &Arc<Handle>) -> String {
    let mut s = Vec::new();
    loop {
        let b = block_on(h.read(1 << 16, true)).expect("read");
        if b.is_empty() {
            break;
        }
        s.extend_from_slice(&b);
    }
    String::from_utf8(s).expect("utf-8")
}

fn sock(fs: &NetFs, ty: &str, cred: Cred) -> Result<(Arc<Handle>, u64), Errno> {
    let h = open(fs, &format!("/local/{ty}"), OpenMode::RDWR, cred)?;
    let id = h.id().expect("a socket");
    Ok((h, id))
}

fn ctl(h: &Arc<Handle>, text: &str) -> Result<usize, Errno> {
    block_on(h.write(Bytes::copy_from_slice(text.as_bytes()), true))
}

fn exits(fs: &NetFs, cred: Cred) {
    fs.process_exited(ProcId {
        pid: cred.pid,
        start: 0,
    });
}

#[test]
fn sockets_past_the_limit_are_emfile_and_the_count_comes_back() {
    let fs = net(4, 1 << 20);
    let mut hs: Vec<_> = (0..4).map(|_| sock(&fs, "stream", ME).unwrap()).collect();
    assert_eq!(sock(&fs, "dgram", ME).unwrap_err(), Errno::EMFILE);
    assert_eq!(fs.usage(ME.uid), (4, 0));
    assert_eq!(fs.stack().socket_count(), 4, "the refused socket is gone");
    // Another user has a count of their own.
    let theirs = sock(&fs, "stream", OTHER).unwrap();
    assert_eq!(fs.usage(OTHER.uid), (1, 0));
    // One ends (hangup): one may be made again.
    ctl(&hs[0].0, "hangup").unwrap();
    hs.remove(0);
    assert_eq!(fs.usage(ME.uid).0, 3);
    hs.push(sock(&fs, "seqpacket", ME).unwrap());
    assert_eq!(sock(&fs, "seqpacket", ME).unwrap_err(), Errno::EMFILE);
    drop(hs);
    exits(&fs, ME);
    drop(theirs);
    exits(&fs, OTHER);
    assert_eq!(fs.usage(ME.uid), (0, 0));
    assert_eq!(fs.usage(OTHER.uid), (0, 0));
    assert_eq!(fs.stack().socket_count(), 0);
    assert_eq!(fs.tracked(), 0);
}

#[test]
fn accepting_past_the_limit_is_emfile_with_a_message_and_dequeues_nothing() {
    let fs = net(3, 1 << 20);
    let (l, lid) = sock(&fs, "seqpacket", ME).unwrap();
    ctl(&l, "bind lim && listen").unwrap();
    let (c1, _) = sock(&fs, "seqpacket", OTHER).unwrap();
    ctl(&c1, "connect lim").unwrap();
    let (c2, c2id) = sock(&fs, "seqpacket", OTHER).unwrap();
    ctl(&c2, "connect lim").unwrap();
    let d2 = open(&fs, &format!("/local/{c2id}/data"), OpenMode::RDWR, OTHER).unwrap();
    block_on(d2.write(Bytes::from_static(b"kept"), true)).unwrap();
    let _spare = sock(&fs, "dgram", ME).unwrap();
    let accept = format!("/local/{lid}/accept:n");
    let a1 = open(&fs, &accept, OpenMode::RDWR, ME).unwrap();
    assert_eq!(fs.usage(ME.uid).0, 3);
    assert_eq!(
        open(&fs, &accept, OpenMode::RDWR, ME).unwrap_err(),
        Errno::EMFILE
    );
    let err = read_all(&open(&fs, &format!("/local/{lid}/err"), OpenMode::READ, ME).unwrap());
    assert!(
        err.starts_with("EMFILE: accept: ")
            && err.contains("too many sockets for uid 1000 (limit 3)"),
        "{err}"
    );
    drop(a1);
    let a2 = open(&fs, &accept, OpenMode::RDWR, ME).unwrap();
    assert_eq!(
        &block_on(a2.read(64, true)).unwrap()[..],
        b"kept",
        "nothing was lost"
    );
    drop((a2, l, c1, c2, d2, _spare));
    exits(&fs, ME);
    exits(&fs, OTHER);
    assert_eq!(fs.usage(ME.uid), (0, 0));
    assert_eq!(fs.usage(OTHER.uid), (0, 0));
}

#[test]
fn writes_past_the_buffered_limit_are_enobufs_and_every_byte_comes_back() {
    let fs = net(100, 1000);
    let (l, lid) = sock(&fs, "stream", ME).unwrap();
    ctl(&l, "bind buf && listen").unwrap();
    let (c, cid) = sock(&fs, "stream", OTHER).unwrap();
    ctl(&c, "connect buf").unwrap();
    let d = open(&fs, &format!("/local/{cid}/data"), OpenMode::RDWR, OTHER).unwrap();
    let w = |n: usize, byte: u8| block_on(d.write(Bytes::from(vec![byte; n]), false));
    assert_eq!(w(600, 1), Ok(600));
    assert_eq!(w(600, 2), Ok(400), "the part that fits");
    assert_eq!(w(10, 3), Err(Errno::ENOBUFS), "even a blocking write");
    assert_eq!(fs.usage(OTHER.uid), (1, 1000));
    let err = read_all(&open(&fs, &format!("/local/{cid}/err"), OpenMode::READ, OTHER).unwrap());
    assert!(
        err.contains("ENOBUFS: write: ")
            && err.contains("too many bytes buffered for uid 1001 (limit 1000)"),
        "{err}"
    );
    // Not yet accepted: reading it all back frees it all.
    let a = open(&fs, &format!("/local/{lid}/accept"), OpenMode::RDWR, ME).unwrap();
    let mut got = Vec::new();
    while got.len() < 1000 {
        got.extend_from_slice(&block_on(a.read(300, false)).unwrap());
    }
    assert_eq!(got, [vec![1u8; 600], vec![2u8; 400]].concat());
    assert_eq!(fs.usage(OTHER.uid), (1, 0));
    // Queued again, then dropped by the reader's close: credited too.
    assert_eq!(w(700, 4), Ok(700));
    drop(a);
    assert_eq!(fs.usage(OTHER.uid).1, 0);
    assert_eq!(
        fs.usage(ME.uid),
        (1, 0),
        "the accepted one is gone, the listener is not"
    );
    drop((l, c, d));
    exits(&fs, ME);
    exits(&fs, OTHER);
    assert_eq!(fs.usage(ME.uid), (0, 0));
    assert_eq!(fs.usage(OTHER.uid), (0, 0));
}

#[test]
fn the_table_lists_every_socket_of_the_family_to_everybody() {
    let fs = net(1000, 1 << 20);
    let (l, lid) = sock(&fs, "seqpacket", ME).unwrap();
    ctl(&l, "bind tab && listen 5").unwrap();
    let (c, cid) = sock(&fs, "seqpacket", OTHER).unwrap();
    ctl(&c, "connect tab").unwrap();
    let d = open(&fs, &format!("/local/{cid}/data"), OpenMode::RDWR, OTHER).unwrap();
    block_on(d.write(Bytes::from_static(b"12345"), true)).unwrap();
    let others: Vec<_> = (0..200).map(|_| sock(&fs, "dgram", ME).unwrap()).collect();
    let t = open(&fs, "/local/table", OpenMode::READ, OTHER).unwrap();
    assert_eq!(
        open(&fs, "/local/table", OpenMode::RDWR, ME).unwrap_err(),
        Errno::EACCES
    );
    let rows = Status::parse_table(&read_all(&t), "local").unwrap();
    assert_eq!(rows.len(), 202);
    let by_id = |id: u64| rows.iter().find(|r| r.id == id).expect("listed").clone();
    let lrow = by_id(lid);
    assert_eq!(
        (
            lrow.state.as_str(),
            lrow.local.as_str(),
            lrow.pending,
            lrow.backlog,
            lrow.owner
        ),
        ("listening", "tab", 1, 5, ME.uid)
    );
    let crow = by_id(cid);
    assert_eq!(
        (
            crow.state.as_str(),
            crow.remote.as_str(),
            crow.sendq,
            crow.owner
        ),
        ("connected", "tab", 5, OTHER.uid)
    );
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "in id order");
    drop((l, c, d, others, t));
    exits(&fs, ME);
    exits(&fs, OTHER);
    let t = open(&fs, "/local/table", OpenMode::READ, ME).unwrap();
    assert_eq!(read_all(&t), ksock_netfs::status::TABLE_HEADER);
}

#[test]
fn the_table_and_status_name_the_process_that_made_each_socket() {
    let fs = net(1000, 1 << 20);
    let (l, lid) = sock(&fs, "stream", ME).unwrap();
    ctl(&l, "bind made && listen").unwrap();
    let (c, cid) = sock(&fs, "stream", OTHER).unwrap();
    ctl(&c, "connect made").unwrap();
    // Accepted by another process of the listener's user: that process made it.
    let acceptor = Cred::new(ME.uid, ME.gid, 5151);
    let a = open(
        &fs,
        &format!("/local/{lid}/listen"),
        OpenMode::RDWR,
        acceptor,
    )
    .unwrap();
    let aid = a.id().expect("a socket");
    // A request that names no process.
    let (n, nid) = sock(&fs, "dgram", Cred::new(ME.uid, ME.gid, 0)).unwrap();
    let t = open(&fs, "/local/table", OpenMode::READ, OTHER).unwrap();
    let text = read_all(&t);
    assert!(
        text.starts_with(
            "id type state local remote recvq sendq backlog pending owner nonblock peer_uid \
             peer_pid proto_state pid\n"
        ),
        "{text}"
    );
    let rows = Status::parse_table(&text, "local").unwrap();
    let pid_of = |id: u64| rows.iter().find(|r| r.id == id).expect("listed").pid;
    assert_eq!(pid_of(lid), Some(ME.pid));
    assert_eq!(pid_of(cid), Some(OTHER.pid));
    assert_eq!(pid_of(aid), Some(5151));
    assert_eq!(pid_of(nid), None);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{nid} ")))
        .unwrap();
    assert!(line.ends_with(" - -"), "{line}");
    // The status file says the same.
    let st = |id: u64, cred: Cred| {
        let h = open(&fs, &format!("/local/{id}/status"), OpenMode::READ, cred).unwrap();
        Status::parse(&read_all(&h)).unwrap()
    };
    assert_eq!(st(lid, ME).pid, Some(ME.pid));
    assert_eq!(st(aid, ME).pid, Some(5151));
    assert_eq!(st(cid, OTHER).pid, Some(OTHER.pid));
    assert_eq!(st(nid, ME).pid, None);
    drop((l, c, a, n, t));
    exits(&fs, ME);
    exits(&fs, OTHER);
    assert_eq!(fs.tracked(), 0);
}

#[test]
fn a_listing_in_pieces_gives_each_socket_once() {
    let fs = net(10_000, 1 << 20);
    let mut hs = Vec::new();
    for i in 0..3000 {
        let (h, _) = sock(&fs, if i % 2 == 0 { "stream" } else { "dgram" }, ME).unwrap();
        hs.push(h);
    }
    let local = fs.resolve("/local", &ME).unwrap().ino;
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = fs.readdir_max(local, after, &ME, 100).unwrap();
        let Some(last) = page.last() else { break };
        after = last.cookie;
        seen.extend(page.into_iter().map(|e| e.name));
        // Sockets ending meanwhile do not disturb the listing.
        if (1000..1100).contains(&seen.len()) && hs.len() == 3000 {
            for h in hs.drain(2000..) {
                ctl(&h, "hangup").unwrap();
            }
        }
    }
    let names: HashSet<&String> = seen.iter().collect();
    assert_eq!(names.len(), seen.len(), "no name twice");
    for fixed in ["stream", "seqpacket", "dgram", "addrs"] {
        assert!(names.contains(&fixed.to_string()), "{fixed}");
    }
    let ids = seen.iter().filter(|n| n.parse::<u64>().is_ok()).count();
    assert_eq!(ids, 2000);
    let all = fs.readdir(local, 0, &ME).unwrap();
    assert_eq!(all.len(), 4 + 2000, "the whole listing in one call");
    drop(hs);
    exits(&fs, ME);
    assert_eq!(fs.usage(ME.uid), (0, 0));
}
