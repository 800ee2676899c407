//! `ksock import` for real: the crate's server and a FUSE import of it in this process,
//! used by sh and python3 as they would use a local `ksock mount`.

mod import_support;

use import_support::{Imported, read_line, wait_in_syscall, wait_out, wait_until};
use std::fs;

#[test]
fn shell_seqpacket_server_and_client() {
    let net = Imported::new();
    let server = net.spawn_sh(
        r#"set -e
        exec 3<>$N/seqpacket
        id=$(cat <&3)
        echo "bind dwm && listen" >&3
        echo "server $id"
        exec 4<>$N/$id/accept
        head -n1 <&4
        echo "hi there" >&4
        # Wait for the client to hang up: end of file.
        cat <&4
        echo "server saw EOF"
        "#,
    );
    wait_until("the server listens", || {
        fs::read_to_string(net.local().join("addrs")).unwrap_or_default() == "dwm\n"
    });
    let client = net.sh(r#"set -e
        exec 3<>$N/seqpacket
        id=$(cat <&3)
        echo "connect dwm" >&3
        exec 4<>$N/$id/data
        echo hello >&4
        head -n1 <&4
        cat $N/$id/status
        echo hangup >&3
        "#);
    let out = client.ok();
    assert!(out.starts_with("hi there\n"), "{out}");
    assert!(
        out.contains("state connected\n") && out.contains("remote dwm\n"),
        "{out}"
    );
    let s = wait_out(server, "server");
    let lines: Vec<&str> = s.ok().lines().collect();
    assert!(lines[0].starts_with("server "), "{lines:?}");
    assert_eq!(&lines[1..], ["hello", "server saw EOF"]);
    net.assert_all_gone();
    net.finish();
}

#[test]
fn python_records_texts_and_errors_as_in_the_local_mount() {
    let net = Imported::new();
    let out = net.py(r#"
s, sid = sock()
ctl(s, "bind pyserv && listen 4")
c, cid = sock()
ctl(c, "connect pyserv")
cd = os.open(f"{N}/{cid}/data", os.O_RDWR)
os.write(cd, b"ping")
os.write(cd, b"x" * 100000)
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
print(os.read(a, 100))
print(len(os.read(a, 200000)), "bytes in one record")
os.write(a, b"pong")
print(os.read(cd, 100))
print(text(f"{N}/{cid}/remote"), end="")
print(text(f"{N}/{sid}/local"), end="")
st = text(f"{N}/{sid}/status")
print([l for l in st.splitlines() if l.startswith("state")])
# A text file is a snapshot that may be read at any offset.
f = os.open(f"{N}/{sid}/status", os.O_RDONLY)
print(os.pread(f, 5, 3) == st[3:8].encode())
# Errors are the local mount's.
u, uid_ = sock("stream")
print(errno_of(ctl, u, "connect nowhere"))
print(errno_of(ctl, u, "frobnicate"))
print(errno_of(ctl, u, "listen 0"))
print(errno_of(os.open, f"{N}/{uid_}/data:bogus", os.O_RDWR))
print(errno_of(os.open, f"{N}/nosuch", os.O_RDWR))
print(errno_of(os.open, f"{N}/{uid_}/status", os.O_WRONLY))
print(errno_of(os.mkdir, f"{N}/x"))
"#);
    assert_eq!(
        out.ok(),
        "b'ping'\n100000 bytes in one record\nb'pong'\npyserv\npyserv\n\
         ['state listening']\nTrue\n\
         ECONNREFUSED\nENOENT\nEINVAL\nEINVAL\nENOENT\nEACCES\nEPERM\n"
    );
    net.assert_all_gone();
    net.finish();
}

#[test]
fn nonblocking_opens_paths_and_fcntl_as_in_the_local_mount() {
    let net = Imported::new();
    let out = net.py(r#"
import threading
s, sid = sock()
ctl(s, "bind nb && listen")
print(errno_of(os.open, f"{N}/{sid}/accept:n", os.O_RDWR))
print(errno_of(os.open, f"{N}/{sid}/accept", os.O_RDWR | os.O_NONBLOCK))
c, cid = sock()
ctl(c, "connect nb")
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
d = os.open(f"{N}/{cid}/data:n", os.O_RDWR)
print(errno_of(os.read, d, 10))
e = os.open(f"{N}/{cid}/data", os.O_RDWR | os.O_NONBLOCK)
print(errno_of(os.read, e, 10))
# O_NONBLOCK set after a blocking open, then cleared.
fl = fcntl.fcntl(a, fcntl.F_GETFL)
fcntl.fcntl(a, fcntl.F_SETFL, fl | os.O_NONBLOCK)
print(errno_of(os.read, a, 10))
os.write(d, b"now")
fcntl.fcntl(a, fcntl.F_SETFL, fl)
print(os.read(a, 10))
# O_NONBLOCK cleared after a nonblocking open: the read waits for the data.
fcntl.fcntl(e, fcntl.F_SETFL, fcntl.fcntl(e, fcntl.F_GETFL) & ~os.O_NONBLOCK)
threading.Timer(0.2, os.write, (a, b"back")).start()
print(os.read(e, 10))
"#);
    assert_eq!(
        out.ok(),
        "EAGAIN\nEAGAIN\nEAGAIN\nEAGAIN\nEAGAIN\nb'now'\nb'back'\n"
    );
    net.assert_all_gone();
    net.finish();
}

#[test]
fn a_blocked_read_interrupted_by_a_signal_returns_and_loses_nothing() {
    let net = Imported::new();
    let mut p = net.spawn_py_with_stdin(
        r#"
s, sid = sock("stream")
ctl(s, "bind intr && listen")
c, cid = sock("stream")
ctl(c, "connect intr")
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
print("ready", flush=True)
try:
    os.read(a, 10)
    print("read returned")
except Alarm:
    print("interrupted")
os.write(d, b"after")
print(os.read(a, 10))
"#,
    );
    assert_eq!(read_line(&mut p), "ready\n");
    wait_in_syscall(p.id(), "read", ["0", "63"]);
    wait_until("the read waits in the server", || net.server.parked() == 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.id() as i32),
        nix::sys::signal::Signal::SIGALRM,
    )
    .expect("signal");
    let out = wait_out(p, "reader");
    assert_eq!(out.ok(), "interrupted\nb'after'\n");
    net.assert_all_gone();
    net.finish();
}

/// A signal that lands before a write's 9P request is sent ends no write that could go:
/// the request still goes, flushed at once, and the part that fits is sent and reported, as
/// write(2) on a Linux socket does. (Failing it with `EINTR` instead makes Python, which
/// restarts an interrupted write, wait forever on a full socket.) The write here must first
/// open a second fid (its file's blocking mode changed after the open), and the server's
/// `Ropen` for it is held back until the signal has reached the mount.
#[test]
fn a_signal_before_a_write_is_sent_fails_no_write_that_could_go() {
    let hold = Imported::hold(113); // Ropen
    let net = Imported::held(hold.clone());
    let mut p = net.spawn_py_with_stdin(
        r#"
signal.signal(signal.SIGUSR1, lambda *_: None)
s, sid = sock("stream")
ctl(s, "bind early && listen")
c, cid = sock("stream")
ctl(c, "connect early")
d = os.open(f"{N}/{cid}/data", os.O_RDWR | os.O_NONBLOCK)
fcntl.fcntl(d, fcntl.F_SETFL, 0)
print("ready", flush=True)
sys.stdin.readline()
n = os.write(d, b"x" * 1000000)
print(0 < n < 1000000, flush=True)
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
got = 0
while got < n:
    got += len(os.read(a, 1 << 20))
fcntl.fcntl(a, fcntl.F_SETFL, os.O_NONBLOCK)
print(got == n, errno_of(os.read, a, 1))
"#,
    );
    assert_eq!(read_line(&mut p), "ready\n");
    hold.set(true);
    let stdin = p.stdin.as_mut().expect("piped stdin");
    std::io::Write::write_all(stdin, b"go\n").expect("go");
    wait_in_syscall(p.id(), "write", ["1", "64"]);
    wait_until("the second fid's Ropen is held", || {
        hold.held.load(std::sync::atomic::Ordering::Acquire) > 0
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.id() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .expect("signal");
    wait_until("the interrupt reaches the mount", || {
        net.m().interrupts() > 0
    });
    hold.set(false);
    let out = wait_out(p, "writer");
    assert_eq!(out.ok(), "True\nTrue EAGAIN\n");
    net.assert_all_gone();
    net.finish();
}

#[test]
fn an_interrupted_accept_leaves_the_connection_queued() {
    let net = Imported::new();
    let mut p = net.spawn_py_with_stdin(
        r#"
s, sid = sock("stream")
ctl(s, "bind queued && listen")
print("ready", flush=True)
try:
    os.open(f"{N}/{sid}/accept", os.O_RDWR)
    print("accepted")
except Alarm:
    print("interrupted")
c, cid = sock("stream")
ctl(c, "connect queued")
a = os.open(f"{N}/{sid}/accept:n", os.O_RDWR)
print(errno_of(os.open, f"{N}/{sid}/accept:n", os.O_RDWR))
st = text(f"{N}/{sid}/status")
print([l for l in st.splitlines() if l.startswith("pending")])
"#,
    );
    assert_eq!(read_line(&mut p), "ready\n");
    wait_until("the accept waits in the server", || {
        net.server.parked() == 1
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.id() as i32),
        nix::sys::signal::Signal::SIGALRM,
    )
    .expect("signal");
    let out = wait_out(p, "acceptor");
    assert_eq!(out.ok(), "interrupted\nEAGAIN\n['pending 0']\n");
    net.assert_all_gone();
    net.finish();
}

#[test]
fn a_socket_lives_while_its_creator_runs_or_a_file_of_it_is_open() {
    let net = Imported::new();
    // Made and left by a process that exits: the socket ends with it.
    let out = net.sh(r#"exec 3<>$N/dgram; cat <&3"#);
    let id: u64 = out.ok().trim().parse().expect("an id");
    wait_until("the socket ends with its creator", || {
        !net.socket_ids().contains(&id)
    });
    wait_until("its attach ends", || net.m().attaches() == 0);
    // A closed socket lives while its creator runs.
    let mut p = net.spawn_py_with_stdin(
        r#"
s, sid = sock("dgram")
os.close(s)
print(sid, flush=True)
sys.stdin.read()
"#,
    );
    let id: u64 = read_line(&mut p).trim().parse().expect("an id");
    assert!(net.socket_ids().contains(&id), "its creator runs");
    assert!(net.local().join(id.to_string()).is_dir());
    assert_eq!(net.m().attaches(), 1);
    drop(p.stdin.take());
    wait_out(p, "creator").ok();
    wait_until("it ends with its creator", || {
        !net.socket_ids().contains(&id)
    });
    assert!(!net.local().join(id.to_string()).exists());
    // A file of it, inherited by a child that outlives the creator, keeps it.
    let mut p = net.spawn_sh(
        r#"exec 3<>$N/stream
        id=$(cat <&3)
        echo $id
        (exec sleep 3600 </dev/null >/dev/null 2>&1) &
        echo $!
        "#,
    );
    let id: u64 = read_line(&mut p).trim().parse().expect("an id");
    let child: i32 = read_line(&mut p).trim().parse().expect("a pid");
    wait_out(p, "creator").ok();
    wait_until("the creator's attach ends", || net.m().attaches() == 0);
    assert!(net.socket_ids().contains(&id), "the child's file keeps it");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    wait_until("it ends with its last file", || {
        !net.socket_ids().contains(&id)
    });
    net.assert_all_gone();
    net.finish();
}

#[test]
fn another_user_gets_eacces_on_a_socket_that_is_not_theirs() {
    let net = Imported::new();
    let mut p = net.spawn_py_with_stdin(
        r#"
s, sid = sock("stream")
print(sid, flush=True)
sys.stdin.read()
"#,
    );
    let id = read_line(&mut p).trim().to_owned();
    let out = net.py_as(
        1000,
        &format!(
            r#"
st = os.stat(f"{{N}}/{id}")
print(oct(st.st_mode & 0o777), st.st_uid)
print(errno_of(os.listdir, f"{{N}}/{id}"))
print(errno_of(os.open, f"{{N}}/{id}/status", os.O_RDONLY))
print(errno_of(os.open, f"{{N}}/{id}/ctl", os.O_WRONLY))
print(os.access(f"{{N}}/{id}", os.R_OK))
fd, mine = sock("dgram")
for f in ["", "/ctl", "/status"]:
    st = os.stat(f"{{N}}/{{mine}}{{f}}")
    print(st.st_uid, st.st_gid, oct(st.st_mode & 0o777))
print(len(os.listdir(f"{{N}}/{{mine}}")), os.access(f"{{N}}/{{mine}}/ctl", os.W_OK))
st = dict(l.split(" ", 1) for l in text(f"{{N}}/{{mine}}/status").splitlines())
print(st["owner"], st["pid"] == str(os.getpid()))
tab = [r.split() for r in text(f"{{N}}/table").splitlines()]
row = [r for r in tab[1:] if r[0] == mine][0]
print(row[tab[0].index("owner")], row[tab[0].index("pid")] == str(os.getpid()))
"#
        ),
    );
    assert_eq!(
        out.ok(),
        "0o700 0\nEACCES\nEACCES\nEACCES\nFalse\n\
         1000 1000 0o700\n1000 1000 0o600\n1000 1000 0o400\n8 True\n\
         1000 True\n1000 True\n"
    );
    // Root may look at anybody's.
    let out = net.py(&format!("print(len(os.listdir(f\"{{N}}/{id}\")))"));
    assert_eq!(out.ok(), "8\n");
    drop(p.stdin.take());
    wait_out(p, "owner").ok();
    net.assert_all_gone();
    net.finish();
}

#[test]
fn the_end_of_the_connection_fails_requests_with_eio_and_never_hangs() {
    let mut net = Imported::new();
    let mut p = net.spawn_py_with_stdin(
        r#"
s, sid = sock("stream")
ctl(s, "bind lost && listen")
c, cid = sock("stream")
ctl(c, "connect lost")
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
print("ready", flush=True)
print(errno_of(os.read, a, 10), flush=True)
print(errno_of(os.open, f"{N}/stream", os.O_RDWR))
print(errno_of(os.stat, f"{N}/{sid}"))
"#,
    );
    assert_eq!(read_line(&mut p), "ready\n");
    wait_until("the read waits in the server", || net.server.parked() == 1);
    net.m().client().close();
    let out = wait_out(p, "reader");
    assert_eq!(out.ok(), "EIO\nEIO\nEIO\n");
    wait_until("the server ends the connection", || {
        net.server.connections() == 0
    });
    if let Some(m) = net.import.take() {
        m.unmount().expect("unmount");
    }
}

#[test]
fn many_waiting_requests_hold_up_no_worker_and_no_other_request() {
    let net = Imported::new();
    // Far more blocked reads and accepts than FUSE workers (4): each waits in the server,
    // none in a worker, so lookups, opens and writes go on meanwhile.
    let out = net.py(r#"
import threading
s, sid = sock()
ctl(s, "bind many && listen 64")
pairs = []
for i in range(24):
    c, cid = sock()
    ctl(c, "connect many")
    a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
    pairs.append((os.open(f"{N}/{cid}/data", os.O_RDWR), a))
got = []
def reader(fd):
    got.append(os.read(fd, 100))
threads = [threading.Thread(target=reader, args=(a,)) for _, a in pairs]
# And accepts that wait for connections not made yet.
accepted = []
def acceptor():
    accepted.append(os.open(f"{N}/{sid}/accept", os.O_RDWR))
threads += [threading.Thread(target=acceptor) for _ in range(8)]
for t in threads:
    t.start()
def waiting():
    n = 0
    for t in os.listdir("/proc/self/task"):
        try:
            nr = open(f"/proc/self/task/{t}/syscall").read().split()[0]
        except OSError:
            continue
        n += nr in ("0", "63", "257", "56")  # read, openat (x86_64, aarch64)
    return n
while waiting() < 32:
    time.sleep(0.01)
print(sorted(os.listdir(f"{N}/{sid}"))[:2], text(f"{N}/{sid}/local"), end="")
for i, (d, _) in enumerate(pairs):
    os.write(d, b"record %d" % i)
for i in range(8):
    c, _ = sock()
    ctl(c, "connect many")
for t in threads:
    t.join()
print(len(got), len(set(got)), len(accepted))
"#);
    assert_eq!(out.ok(), "['accept', 'ctl'] many\n24 24 8\n");
    net.assert_all_gone();
    net.finish();
}

#[test]
fn a_process_killed_while_it_waits_leaves_nothing_behind() {
    let net = Imported::new();
    let mut p = net.spawn_py_with_stdin(
        r#"
s, sid = sock("stream")
ctl(s, "bind killed && listen")
c, cid = sock("stream")
ctl(c, "connect killed")
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
print("ready", flush=True)
os.read(a, 10)
"#,
    );
    assert_eq!(read_line(&mut p), "ready\n");
    wait_until("the read waits in the server", || net.server.parked() == 1);
    p.kill().expect("kill");
    let out = wait_out(p, "killed reader");
    assert!(!out.status.success());
    net.assert_all_gone();
    net.finish();
}

#[test]
fn poll_and_select_wait_for_readiness_as_in_the_local_mount() {
    let net = Imported::new();
    let out = net.py(r#"
import select, threading
s, sid = sock("stream")
ctl(s, "bind pw && listen")
# Not connected: writable and hung up, as Linux (and the local mount) says.
c, cid = sock("stream")
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
p = select.poll()
p.register(d, select.POLLOUT)
def evs(t):
    return [ev for _, ev in p.poll(t)]
print(evs(0))
ctl(c, "connect pw")
print(evs(0))
# An accepted connection's data handle with nothing to read; then with data.
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
print(select.select([a], [], [], 0.2)[0])
threading.Timer(0.2, os.write, (d, b"late")).start()
print(select.select([a], [], [], 10)[0] == [a], os.read(a, 10))
print(select.select([a], [], [], 0)[0])
# A send queue past half the buffer: not writable until the peer reads.
os.write(d, b"x" * 150000)
print(evs(0), evs(100))
def drain():
    n = 0
    while n < 150000:
        n += len(os.read(a, 200000))
threading.Timer(0.2, drain).start()
print(evs(10000) == [select.POLLOUT])
"#);
    assert_eq!(out.ok(), "[20]\n[4]\n[]\nTrue b'late'\n[]\n[] []\nTrue\n");
    assert_eq!(net.m().waiting_polls(), 0, "a released file's wait ends");
    net.finish();
}
