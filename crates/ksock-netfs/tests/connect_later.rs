//! A connect that the family finishes later (a handshake), through the file face: a ctl
//! `connect` waits for it (parked, no thread), a nonblocking one is `EINPROGRESS`, and the
//! `err` file keeps the outcome of a connect that failed.

use bytes::Bytes;
use ksock::testing::LaterFamily;
use ksock::{Errno, Stack};
use ksock_netfs::exec::{block_on, poll_once};
use ksock_netfs::{Cred, Handle, NetFs, OpenMode};
use std::sync::Arc;
use std::task::Poll;
use std::thread;

const ME: Cred = Cred::new(1000, 100, 4242);

fn setup() -> (NetFs, Arc<LaterFamily>) {
    let st = Stack::empty();
    let fam = LaterFamily::new();
    st.register_family(fam.clone()).unwrap();
    (NetFs::new(st), fam)
}

fn open(fs: &NetFs, path: &str, mode: OpenMode) -> Arc<Handle> {
    let ino = fs.resolve(path, &ME).expect(path).ino;
    block_on(fs.open(ino, mode, ME)).expect(path)
}

/// A factory handle and the socket's directory.
fn socket(fs: &NetFs) -> (Arc<Handle>, String) {
    let h = open(fs, "/later/stream", OpenMode::RDWR);
    let id = block_on(h.read(64, false)).unwrap();
    (h, format!("/later/{}", String::from_utf8_lossy(&id)))
}

fn text(fs: &NetFs, path: &str) -> String {
    let h = open(fs, path, OpenMode::READ);
    String::from_utf8(block_on(h.read(65536, false)).unwrap().to_vec()).unwrap()
}

#[test]
fn a_ctl_connect_waits_for_the_handshake() {
    let (fs, fam) = setup();
    for outcome in [Ok(()), Err(Errno::ETIMEDOUT)] {
        let (h, dir) = socket(&fs);
        let fut = h.write(Bytes::from_static(b"connect 10.0.0.1:80"), false);
        let t = thread::spawn(move || block_on(fut));
        while fam.in_progress() != 1 {
            thread::yield_now();
        }
        assert!(text(&fs, &format!("{dir}/status")).contains("state connecting\n"));
        fam.complete(outcome);
        match outcome {
            Ok(()) => {
                assert_eq!(t.join().unwrap(), Ok(19));
                assert!(text(&fs, &format!("{dir}/status")).contains("state connected\n"));
                assert_eq!(text(&fs, &format!("{dir}/remote")), "10.0.0.1:80\n");
            }
            Err(e) => {
                assert_eq!(t.join().unwrap(), Err(e));
                assert_eq!(
                    text(&fs, &format!("{dir}/err")),
                    "ETIMEDOUT: connect \"10.0.0.1:80\": Connection timed out\n"
                );
            }
        }
    }
}

#[test]
fn a_nonblocking_ctl_connect_is_einprogress_and_the_next_reports_it() {
    let (fs, fam) = setup();
    let (_h, dir) = socket(&fs);
    let nb = open(&fs, &format!("{dir}/ctl:n"), OpenMode::WRITE);
    let connect = || block_on(nb.write(Bytes::from_static(b"connect 10.0.0.1:80"), false));
    assert_eq!(connect(), Err(Errno::EINPROGRESS));
    assert_eq!(connect(), Err(Errno::EALREADY));
    // A blocking write meanwhile waits with the first.
    let h2 = open(&fs, &format!("{dir}/ctl"), OpenMode::WRITE);
    let mut waiting = Box::pin(h2.write(Bytes::from_static(b"connect 10.0.0.1:80"), false));
    assert_eq!(poll_once(waiting.as_mut()), Poll::Pending);
    fam.complete(Ok(()));
    assert_eq!(block_on(waiting), Ok(19));
    assert_eq!(connect(), Err(Errno::EISCONN));
}

#[test]
fn the_err_file_gives_the_familys_reason_not_the_local_familys() {
    let (fs, fam) = setup();
    // Refused at once, in the family's words.
    let (h, dir) = socket(&fs);
    let connect =
        |h: &Arc<Handle>, to: &'static [u8]| block_on(h.write(Bytes::from_static(to), false));
    assert_eq!(connect(&h, b"connect 10.0.0.1:1"), Err(Errno::ECONNREFUSED));
    assert_eq!(
        text(&fs, &format!("{dir}/err")),
        "ECONNREFUSED: connect \"10.0.0.1:1\": Connection refused \
         (the host refused the connection)\n"
    );
    // Refused later, by the family's driver (a reset during the handshake).
    let (h, dir) = socket(&fs);
    let fut = h.write(Bytes::from_static(b"connect 10.0.0.1:80"), false);
    let t = thread::spawn(move || block_on(fut));
    while fam.in_progress() != 1 {
        thread::yield_now();
    }
    fam.fail(Errno::ECONNREFUSED, "the host reset the connection");
    assert_eq!(t.join().unwrap(), Err(Errno::ECONNREFUSED));
    assert_eq!(
        text(&fs, &format!("{dir}/err")),
        "ECONNREFUSED: connect \"10.0.0.1:80\": Connection refused \
         (the host reset the connection)\n"
    );
    // An error the family gives no reason for gets none (not a local-family guess such as
    // "datagram sockets do not listen").
    let (h, dir) = socket(&fs);
    assert_eq!(
        connect(&h, b"bind 10.0.0.2:5 && listen"),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        text(&fs, &format!("{dir}/err")),
        "EOPNOTSUPP: listen 128: Operation not supported\n"
    );
}
