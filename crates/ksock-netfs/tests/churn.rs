//! Scale and churn through the file face (in process, no FUSE): local stream connections
//! opened and closed in waves, as a program does through `/net` (open the factory, write
//! `connect` to it, open the listener's `accept` file; then `hangup` and close). After each
//! wave the socket table, the names and the namespace's records are back to the listener's,
//! and to nothing at the end. The full count through a real mount is the `churn.file` row of
//! `ksock bench` (`--only churn`, run by hand).

use bytes::Bytes;
use ksock::{Domain, Stack};
use ksock_netfs::exec::block_on;
use ksock_netfs::{Cred, Handle, NetFs, OpenMode, ProcId};
use std::sync::Arc;

const ME: Cred = Cred::new(1000, 100, 4242);

fn open(fs: &NetFs, path: &str) -> Arc<Handle> {
    let ino = fs.resolve(path, &ME).expect(path).ino;
    block_on(fs.open(ino, OpenMode::RDWR, ME)).expect(path)
}

fn write(h: &Arc<Handle>, s: &str) {
    let n = block_on(h.write(Bytes::copy_from_slice(s.as_bytes()), false)).expect(s);
    assert_eq!(n, s.len());
}

/// A new socket: its factory handle (which acts as its ctl file).
fn socket(fs: &NetFs) -> (Arc<Handle>, String) {
    let h = open(fs, "/local/stream");
    let id = String::from_utf8(block_on(h.read(64, false)).unwrap().to_vec()).unwrap();
    (h, id)
}

fn expect_tables(fs: &NetFs, sockets: usize, names: usize) {
    let st = fs.stack();
    assert_eq!(st.socket_count(), sockets, "sockets");
    assert_eq!(
        st.family(Domain::LOCAL).unwrap().bound().len(),
        names,
        "names"
    );
}

#[test]
fn file_face_connections_in_waves_leave_nothing() {
    const TOTAL: usize = 50_000;
    const WAVE: usize = 10_000;
    let fs = NetFs::new(Stack::new());
    let (l, lid) = socket(&fs);
    write(&l, "bind churn && listen 16");
    let accept = format!("/local/{lid}/accept");
    let mut held = Vec::with_capacity(WAVE);
    for _ in 0..TOTAL / WAVE {
        for _ in 0..WAVE {
            let (c, _) = socket(&fs);
            write(&c, "connect churn");
            held.push((c, open(&fs, &accept)));
        }
        expect_tables(&fs, 1 + 2 * WAVE, 1);
        for (c, a) in held.drain(..) {
            write(&c, "hangup");
            drop((c, a));
        }
        expect_tables(&fs, 1, 1);
    }
    write(&l, "hangup");
    drop(l);
    expect_tables(&fs, 0, 0);
    fs.process_exited(ProcId {
        pid: ME.pid,
        start: 0,
    });
    assert_eq!(fs.tracked(), 0, "namespace records left");
}
