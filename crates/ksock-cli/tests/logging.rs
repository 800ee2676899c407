//! `ksock mount -v` and `RUST_LOG`: the socket layer's decisions on standard error, and
//! nothing at all without them.

mod common;

use common::Net;

/// A listener, a refused connect, and a read that waits for data.
const SCRIPT: &str = r#"
import os, threading, time
N = os.environ["ROOT"] + "/inet"
def sock(t="stream"):
    f = os.open(f"{N}/{t}", os.O_RDWR)
    return f, os.read(f, 32).decode()
l, lid = sock()
os.write(l, b"bind 127.0.0.1:0 && listen 1")
at = open(f"{N}/{lid}/local").read().strip()
r, rid = sock()
try:
    os.write(r, b"connect 127.0.0.1:1")
except OSError as e:
    print("refused", e.errno)
c, cid = sock()
os.write(c, f"connect {at}".encode())
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
got = []
t = threading.Thread(target=lambda: got.append(os.read(d, 10)))
t.start()
def blocked(tid):
    return open(f"/proc/self/task/{tid}/syscall").read().split()[0] in ("0", "17")
while not blocked(t.native_id):
    time.sleep(0.01)
a = os.open(f"{N}/{lid}/accept", os.O_RDWR)
os.write(a, b"hi")
t.join()
print(got[0].decode(), lid, rid, cid)
"#;

fn run(net: &Net) -> (String, String, String) {
    let out = net.py(SCRIPT);
    let text = out.ok().to_string();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("refused 111"));
    let last: Vec<&str> = lines.next().unwrap().split(' ').collect();
    assert_eq!(last[0], "hi");
    (last[1].into(), last[2].into(), last[3].into())
}

#[track_caller]
fn has(log: &str, words: &[&str]) {
    assert!(
        log.lines().any(|l| words.iter().all(|w| l.contains(w))),
        "no line with {words:?} in:\n{log}"
    );
}

#[test]
fn verbose_logs_the_decisions() {
    let net = Net::mount_with(&["-v"]);
    let (lid, rid, cid) = run(&net);
    let log = net.log();
    has(
        &log,
        &["socket created", &format!("id={lid}"), "inet", "stream"],
    );
    has(
        &log,
        &["socket bound", &format!("id={lid}"), "127.0.0.1]:3"],
    );
    has(&log, &["socket listening", &format!("id={lid}")]);
    has(
        &log,
        &[
            "operation failed",
            &format!("id={rid}"),
            "ECONNREFUSED",
            "refused",
        ],
    );
    has(&log, &["socket connected", &format!("id={cid}")]);
    has(
        &log,
        &["request parked", "read", &format!("socket={cid} "), "data"],
    );
    has(&log, &["connection accepted", &format!("listener={lid}")]);
    // Standard error is not a terminal: no colours.
    assert!(!log.contains('\x1b'), "{log}");
    net.finish();
}

#[test]
fn rust_log_selects_and_nothing_is_logged_without_it() {
    let net = Net::mount_with_env(&[], &[("RUST_LOG", "ksock=debug")]);
    run(&net);
    has(&net.log(), &["socket created"]);
    net.finish();
    let quiet = Net::mount_with(&[]);
    run(&quiet);
    let log = quiet.log();
    assert_eq!(log.lines().count(), 1, "only the banner: {log}");
    quiet.finish();
}

#[test]
fn a_syn_dropped_for_a_full_backlog_is_logged() {
    let net = Net::mount_with(&["-v"]);
    // A backlog of 1 that one connection fills: the second client's SYN is dropped (its
    // connect goes on, EINPROGRESS, and the listener counts the drop).
    let out = net.py(r#"
N = os.environ["ROOT"] + "/inet"
def sock(t="stream"):
    f = os.open(f"{N}/{t}", os.O_RDWR)
    return f, os.read(f, 32).decode()
def status(sid):
    return dict(l.split(" ", 1) for l in open(f"{N}/{sid}/status").read().splitlines())
l, lid = sock()
os.write(l, b"bind 127.0.0.1:0 && listen 1")
at = open(f"{N}/{lid}/local").read().strip()
first, _ = sock()
os.write(first, f"connect {at}".encode())
second, sid = sock("stream:nonblock")
try:
    os.write(second, f"connect {at}".encode())
except OSError as e:
    print(errno.errorcode[e.errno], status(sid)["tcp_state"])
print(status(lid)["syn_dropped"] != "0", lid, at.rsplit(":", 1)[1])
"#);
    let text = out.ok();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("EINPROGRESS SYN_SENT"), "{text}");
    let last: Vec<&str> = lines.next().expect("a second line").split(' ').collect();
    let [dropped, lid, port] = last[..] else {
        panic!("{text}")
    };
    assert_eq!(dropped, "True", "{text}");
    has(
        &net.log(),
        &[
            "SYN dropped",
            "backlog is full",
            &format!("listener={lid} "),
            &format!("port={port} "),
            "backlog=1",
            "from=127.0.0.1:",
        ],
    );
    net.finish();
}
