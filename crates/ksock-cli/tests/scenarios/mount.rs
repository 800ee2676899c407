// The scenarios of tests/mount.rs, run through a local mount by that binary and
// through `ksock export` and `ksock import` by tests/import_mount.rs (see common).

use common::{Net, wait_until};
use std::fs;

#[test]
fn shell_seqpacket_server_and_client() {
    let net = Net::mount();
    // The server: a socket, bound and listening, accepts one client and answers it.
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
    let s = common::wait_out(server, "server");
    let lines: Vec<&str> = s.ok().lines().collect();
    assert!(lines[0].starts_with("server "), "{lines:?}");
    assert_eq!(&lines[1..], ["hello", "server saw EOF"]);
    net.finish();
}

#[test]
fn python_seqpacket_server_and_client() {
    let net = Net::mount();
    let out = net.py(r#"
s, sid = sock()
ctl(s, "bind pyserv && listen 4")
c, cid = sock()
ctl(c, "connect pyserv")
cd = os.open(f"{N}/{cid}/data", os.O_RDWR)
os.write(cd, b"ping")
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
print(os.read(a, 100))
os.write(a, b"pong")
print(os.read(cd, 100))
print(text(f"{N}/{cid}/remote"), end="")
print(text(f"{N}/{sid}/local"), end="")
"#);
    assert_eq!(out.ok(), "b'ping'\nb'pong'\npyserv\npyserv\n");
    net.finish();
}

#[test]
fn window_server_pattern() {
    // PatchworkOS's window server: a nonblocking listener polled for IN, accept:nonblock,
    // one record per read; clients in other processes.
    let net = Net::mount();
    let server = net.spawn_py(
        r#"
s, sid = sock()
ctl(s, "bind win && listen")
lst = os.open(f"{N}/{sid}/data:nonblock", os.O_RDWR)
print(sid, flush=True)
p = select.poll()
p.register(lst, select.POLLIN)
conns, got = {}, []
while len(got) < 9:
    for fd, ev in p.poll(60000):
        if fd == lst:
            assert ev & select.POLLIN
            while True:
                try:
                    c = os.open(f"{N}/{sid}/accept:nonblock", os.O_RDWR)
                except BlockingIOError:
                    break
                conns[c] = True
                p.register(c, select.POLLIN)
        else:
            while True:
                try:
                    rec = os.read(fd, 4096)
                except BlockingIOError:
                    break
                if rec == b"":
                    p.unregister(fd)
                    os.close(fd)
                    break
                got.append(rec.decode())
print(sorted(got))
assert errno_of(os.open, f"{N}/{sid}/accept:nonblock", os.O_RDWR) == "EAGAIN"
"#,
    );
    wait_until("the window server listens", || {
        fs::read_to_string(net.local().join("addrs")).unwrap_or_default() == "win\n"
    });
    let clients: Vec<_> = (0..3)
        .map(|i| {
            net.spawn_py(&format!(
                r#"
c, cid = sock()
ctl(c, "connect win")
d = os.open(f"{{N}}/{cid}/data", os.O_RDWR)
for k in range(3):
    os.write(d, b"client{i}-%d" % k)
"#,
                cid = "{cid}",
            ))
        })
        .collect();
    for c in clients {
        common::wait_out(c, "client").ok();
    }
    let out = common::wait_out(server, "window server");
    let mut want: Vec<String> = (0..3)
        .flat_map(|i| (0..3).map(move |k| format!("'client{i}-{k}'")))
        .collect();
    want.sort();
    assert!(
        out.ok().contains(&format!("[{}]", want.join(", "))),
        "{}",
        out.stdout
    );
    net.finish();
}

#[test]
fn plan9_listen() {
    let net = Net::mount();
    let server = net.spawn_sh(
        r#"set -e
        exec 3<>$N/stream
        id=$(cat <&3)
        echo "bind plan9 && listen" >&3
        # Opening listen waits for a call; the handle is the new connection's ctl.
        exec 5<$N/$id/listen
        conn=$(cat <&5)
        test "$conn" != "$id"
        grep '^type ' $N/$conn/status
        cat $N/$conn/data
        "#,
    );
    wait_until("the listener", || {
        fs::read_to_string(net.local().join("addrs")).unwrap_or_default() == "plan9\n"
    });
    net.sh(r#"set -e
        exec 3<>$N/stream
        id=$(cat <&3)
        echo "connect plan9" >&3
        printf 'over the wire' > $N/$id/data
        echo "shutdown wr" >&3
        "#)
        .ok();
    let out = common::wait_out(server, "plan9 server");
    assert_eq!(out.ok(), "type stream\nover the wire");
    net.finish();
}

#[test]
fn blocked_readers_are_woken_by_writers_in_other_processes_and_see_eof() {
    let net = Net::mount();
    let out = net.py(r#"
import subprocess
s, sid = sock()
ctl(s, "bind wake && listen")
c, cid = sock()
ctl(c, "connect wake")
# Plan 9 style: the listen handle is the new connection's ctl.
l = os.open(f"{N}/{sid}/listen", os.O_RDWR)
lid = os.read(l, 64).decode()
ld = os.open(f"{N}/{lid}/data", os.O_RDWR)
# The reader blocks in another process until this one writes.
reader = subprocess.Popen([sys.executable, "-c", f"""
import os
d = os.open('{N}/{cid}/data', os.O_RDWR)
print(os.read(d, 100), flush=True)
print(os.read(d, 100), flush=True)
"""], stdout=subprocess.PIPE)
def wait_in_read(pid):
    # syscall 0 is read on x86_64, 63 on aarch64
    while open(f"/proc/{pid}/syscall").read().split()[0] not in ("0", "63"):
        time.sleep(0.005)
wait_in_read(reader.pid)
os.write(ld, b"wake up")
print(reader.stdout.readline().decode().strip())
# The peer hangs up: the blocked reader sees end of file.
wait_in_read(reader.pid)
ctl(l, "hangup")
print(reader.stdout.readline().decode().strip())
print(reader.wait())
# Its own open data file reads end of file once its socket has ended.
print(errno_of(os.read, ld, 10), os.path.exists(f"{N}/{lid}"))
"#);
    assert_eq!(out.ok(), "b'wake up'\nb''\n0\nOK False\n");
    net.finish();
}

#[test]
fn a_short_read_truncates_a_long_record() {
    let net = Net::mount();
    let out = net.sh(r#"set -e
        exec 3<>$N/seqpacket
        s=$(cat <&3)
        echo "bind trunc && listen" >&3
        exec 5<>$N/seqpacket
        c=$(cat <&5)
        echo "connect trunc" >&5
        exec 6<>$N/$c/data
        printf 'a long record that will not fit' >&6
        printf 'next' >&6
        exec 7<>$N/$s/accept
        dd bs=6 count=1 status=none <&7; echo
        dd bs=100 count=1 status=none <&7; echo
        "#);
    assert_eq!(out.ok(), "a long\nnext\n");
    net.finish();
}

#[test]
fn errors_reach_the_caller_with_their_errno() {
    let net = Net::mount();
    let out = net.py(r#"
a, aid = sock()
b, bid = sock()
ctl(a, "bind taken && listen")
print(errno_of(ctl, b, "bind taken"))
print(text(f"{N}/{bid}/err"), end="")
print(errno_of(ctl, b, "connect nobody"))
print(errno_of(ctl, b, "frob"))
print(text(f"{N}/{bid}/err"), end="")
print(errno_of(ctl, b, "listen 0"))
print(errno_of(ctl, b, "bind"))
print(errno_of(ctl, b, "x" * 4097))
# An empty write(2) never reaches the tree (the kernel answers 0 itself).
print(errno_of(os.write, b, b""))
d = os.open(f"{N}/{bid}/data", os.O_RDWR)
print(errno_of(os.write, d, b"x"))
print(errno_of(os.open, f"{N}/{bid}/data:bogus", os.O_RDWR))
print(errno_of(os.open, f"{N}/{bid}/nosuch", os.O_RDWR))
print(errno_of(os.open, f"{N}/{bid}/status", os.O_WRONLY))
print(errno_of(os.open, f"{N}/addrs", os.O_WRONLY))
print(errno_of(os.open, f"{N}/99999/ctl", os.O_RDWR))
print(errno_of(os.mkdir, f"{N}/newdir"))
print(errno_of(os.unlink, f"{N}/{bid}/ctl"))
# A chain stops at the first failure, which the write returns.
print(errno_of(ctl, b, "bind mine && listen 2 && frob && listen 7"))
print([l for l in text(f"{N}/{bid}/status").splitlines() if l.split()[0] in ("state", "backlog")])
"#);
    assert_eq!(
        out.ok(),
        "EADDRINUSE\n\
         EADDRINUSE: bind \"taken\": Address already in use (another socket is bound to that name)\n\
         ECONNREFUSED\n\
         ENOENT\n\
         ENOENT: unknown command \"frob\"\n\
         EINVAL\nEINVAL\nE2BIG\n\
         OK\n\
         ENOTCONN\n\
         EINVAL\nENOENT\nEACCES\nEACCES\nENOENT\nEPERM\nEPERM\n\
         ENOENT\n\
         ['state listening', 'backlog 2']\n"
    );
    net.finish();
}

#[test]
fn nonblocking_handles_get_eagain() {
    let net = Net::mount();
    let out = net.py(r#"
import fcntl
s, sid = sock()
ctl(s, "bind nb && listen")
print(errno_of(os.open, f"{N}/{sid}/accept:nonblock", os.O_RDWR))
print(errno_of(os.open, f"{N}/{sid}/listen:n", os.O_RDWR))
print(errno_of(os.open, f"{N}/{sid}/accept", os.O_RDWR | os.O_NONBLOCK))
c, cid = sock()
ctl(c, "connect nb")
d = os.open(f"{N}/{cid}/data:n", os.O_RDWR)
print(errno_of(os.read, d, 10))
d2 = os.open(f"{N}/{cid}/data", os.O_RDWR | os.O_NONBLOCK)
print(errno_of(os.read, d2, 10))
# Fill the connection: a nonblocking record write gets EAGAIN, nothing is cut.
n = 0
while errno_of(os.write, d2, b"x" * 60000) == "OK":
    n += 1
print(n > 0, errno_of(os.write, d2, b"x" * 60000))
# fcntl clears O_NONBLOCK: the same open file now waits for room, which a reader in
# another thread makes.
fcntl.fcntl(d2, fcntl.F_SETFL, fcntl.fcntl(d2, fcntl.F_GETFL) & ~os.O_NONBLOCK)
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
def drain():
    for _ in range(n + 1):
        assert len(os.read(a, 65536)) == 60000
t = threading.Thread(target=drain)
t.start()
print(errno_of(os.write, d2, b"y" * 60000))
t.join()
"#);
    assert_eq!(
        out.ok(),
        "EAGAIN\nEAGAIN\nEAGAIN\nEAGAIN\nEAGAIN\nTrue EAGAIN\nOK\n"
    );
    net.finish();
}

#[test]
fn another_user_gets_eacces() {
    let net = Net::mount();
    let out = net.py(r#"
import subprocess
s, sid = sock()
ctl(s, "bind mine && listen")
child = subprocess.run([sys.executable, "-c", f"""
import os, errno
os.setgid(65534); os.setuid(65534)
def e(fn, *a):
    try: fn(*a)
    except OSError as x: return errno.errorcode[x.errno]
    return 'OK'
N = '{N}'
print(e(os.open, N + '/{sid}/ctl', os.O_RDWR))
print(e(os.open, N + '/{sid}/status', os.O_RDONLY))
print(e(os.listdir, N + '/{sid}'))
print(os.stat(N + '/{sid}').st_uid)
print(open(N + '/addrs').read(), end='')
fd = os.open(N + '/stream', os.O_RDWR)
mine = os.read(fd, 64).decode()
print(os.stat(N + '/' + mine).st_uid, oct(os.stat(N + '/' + mine).st_mode & 0o777))
print(e(os.write, fd, b'connect mine'))
"""], capture_output=True, text=True)
print(child.stdout, end="")
print(child.stderr, end="")
"#);
    assert_eq!(
        out.ok(),
        "EACCES\nEACCES\nEACCES\n0\nmine\n65534 0o700\nEPROTOTYPE\n"
    );
    net.finish();
}

#[test]
fn a_client_killed_while_blocked_in_read_wedges_nothing() {
    let net = Net::mount();
    let out = net.py(r#"
import subprocess, signal
s, sid = sock()
ctl(s, "bind victim && listen")
child = subprocess.Popen([sys.executable, "-c", f"""
import os
c = os.open('{N}/seqpacket', os.O_RDWR)
cid = os.read(c, 64).decode()
os.write(c, b'connect victim')
d = os.open('{N}/' + cid + '/data', os.O_RDWR)
print(cid, flush=True)
os.read(d, 100)
"""], stdout=subprocess.PIPE)
cid = child.stdout.readline().decode().strip()
while open(f"/proc/{child.pid}/syscall").read().split()[0] not in ("0", "63"):
    time.sleep(0.005)
child.send_signal(signal.SIGKILL)
print(child.wait())
# Its socket ends with it; the server's end sees end of file.
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
print(os.read(a, 100))
while os.path.exists(f"{N}/{cid}"):
    time.sleep(0.01)
# The mount still answers.
c2, c2id = sock()
ctl(c2, "connect victim")
a2 = os.open(f"{N}/{sid}/accept", os.O_RDWR)
os.write(a2, b"alive")
print(os.read(os.open(f"{N}/{c2id}/data", os.O_RDWR), 100))
"#);
    assert_eq!(out.ok(), "-9\nb''\nb'alive'\n");
    net.finish();
}

#[test]
fn a_caught_signal_interrupts_a_blocked_read() {
    // Through FUSE_INTERRUPT: the read says EINTR and the handler runs (here it raises, so
    // Python does not retry the read).
    let net = Net::mount();
    let out = net.py(r#"
import subprocess, signal
s, sid = sock()
ctl(s, "bind sig && listen")
child = subprocess.Popen([sys.executable, "-c", f"""
import os, signal, sys
class Poked(Exception):
    pass
def poke(*_):
    raise Poked()
signal.signal(signal.SIGUSR1, poke)
c = os.open('{N}/seqpacket', os.O_RDWR)
cid = os.read(c, 64).decode()
os.write(c, b'connect sig')
d = os.open('{N}/' + cid + '/data', os.O_RDWR)
print('ready', flush=True)
try:
    os.read(d, 100)
except Poked:
    print('interrupted by the handler', flush=True)
print(os.read(d, 100).decode(), flush=True)
"""], stdout=subprocess.PIPE)
def wait_in_read(pid):
    while open(f"/proc/{pid}/syscall").read().split()[0] not in ("0", "63"):
        time.sleep(0.005)
# Past its start-up and its ctl reads (reads too), then blocked in the read of data.
child.stdout.readline()
wait_in_read(child.pid)
child.send_signal(signal.SIGUSR1)
print(child.stdout.readline().decode().strip())
wait_in_read(child.pid)
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
os.write(a, b"still connected")
print(child.stdout.readline().decode().strip())
print(child.wait())
"#);
    assert_eq!(out.ok(), "interrupted by the handler\nstill connected\n0\n");
    net.finish();
}

#[test]
fn an_interrupted_stream_write_reports_what_it_sent() {
    let net = Net::mount();
    let out = net.py(r#"
import subprocess, signal
s, sid = sock("stream")
ctl(s, "bind part && listen")
child = subprocess.Popen([sys.executable, "-c", f"""
import os, signal
signal.signal(signal.SIGUSR1, lambda *_: None)
c = os.open('{N}/stream', os.O_RDWR)
cid = os.read(c, 64).decode()
os.write(c, b'connect part')
d = os.open('{N}/' + cid + '/data', os.O_RDWR)
print('ready', flush=True)
print(os.write(d, b'x' * 1000000), flush=True)
"""], stdout=subprocess.PIPE)
# Once it is past its ctl write (a write too), wait until it blocks in write(2) on data
# (1 on x86_64, 64 on aarch64): the buffer is full.
child.stdout.readline()
while open(f"/proc/{child.pid}/syscall").read().split()[0] not in ("1", "64"):
    time.sleep(0.005)
child.send_signal(signal.SIGUSR1)
n = int(child.stdout.readline())
print(0 < n < 1000000, child.wait())
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
got = 0
while True:
    b = os.read(a, 1 << 20)
    if not b:
        break
    got += len(b)
print(got == n)
"#);
    assert_eq!(out.ok(), "True 0\nTrue\n");
    net.finish();
}

#[test]
fn a_thousand_blocked_readers_do_not_stall_the_mount() {
    let net = Net::mount();
    let out = net.py(
        r#"
import subprocess, resource
READERS = 1000
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
s, sid = sock()
ctl(s, "bind many && listen")
c, cid = sock()
ctl(c, "connect many")
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
fds = [os.open(f"{N}/{cid}/data", os.O_RDWR) for _ in range(READERS)]
got = []
lock = threading.Lock()
def reader(fd):
    r = os.read(fd, 100)
    with lock:
        got.append(r)
threads = [threading.Thread(target=reader, args=(fd,)) for fd in fds]
for t in threads:
    t.start()
# Wait until every reader is parked in the file system (and none has returned).
tids = [t.native_id for t in threads]
def blocked(tid):
    return open(f"/proc/{os.getpid()}/task/{tid}/syscall").read().split()[0] in ("0", "63")
while not all(blocked(t) for t in tids):
    time.sleep(0.01)
print(len(got))
# The mount still answers other processes, right away.
out = subprocess.run(["sh", "-c", "ls $N | grep -c . && cat $N/addrs"], capture_output=True, text=True)
print(out.stdout.split())
# A writer wakes the readers, one record each.
for i in range(READERS):
    os.write(a, b"r%d" % i)
for t in threads:
    t.join()
print(len(got), len(set(got)))
"#,
    );
    assert_eq!(out.ok(), "0\n['7', 'many']\n1000 1000\n");
    net.finish();
}

#[test]
fn thousands_of_abandoned_sockets_go_away() {
    let net = Net::mount();
    // Opened and closed by a process that then exits, some bound and listening.
    let out = net.py(r#"
for i in range(3000):
    fd = os.open(f"{N}/seqpacket", os.O_RDWR)
    if i % 10 == 0:
        os.write(fd, b"bind gone%d && listen" % i)
    os.close(fd)
print(len([n for n in os.listdir(N) if n.isdigit()]))
"#);
    assert_eq!(out.ok(), "3000\n");
    // And by many short-lived processes.
    net.sh("for i in $(seq 100); do cat $N/stream > /dev/null; done")
        .ok();
    // And left open by processes that are killed.
    let out = net.py(r#"
import subprocess
kids = [subprocess.Popen([sys.executable, "-c", f"""
import os, time
fds = [os.open('{N}/dgram', os.O_RDWR) for _ in range(50)]
print('ready', flush=True)
time.sleep(600)
"""], stdout=subprocess.PIPE) for _ in range(4)]
for k in kids:
    k.stdout.readline()
for k in kids:
    k.kill()
    k.wait()
print("killed")
"#);
    assert_eq!(out.ok(), "killed\n");
    net.finish();
}

#[test]
fn hundreds_of_concurrent_connections() {
    let net = Net::mount();
    let out = net.py(r#"
CLIENTS, RECORDS = 200, 20
s, sid = sock()
ctl(s, "bind stress && listen 512")
def serve_one(fd):
    while True:
        r = os.read(fd, 4096)
        if not r:
            break
        os.write(fd, r.upper())
    os.close(fd)
def acceptor():
    for _ in range(CLIENTS):
        fd = os.open(f"{N}/{sid}/accept", os.O_RDWR)
        threading.Thread(target=serve_one, args=(fd,)).start()
acc = threading.Thread(target=acceptor)
acc.start()
errors = []
def client(i):
    try:
        c, cid = sock()
        ctl(c, "connect stress")
        d = os.open(f"{N}/{cid}/data", os.O_RDWR)
        for k in range(RECORDS):
            msg = b"client %d record %d" % (i, k)
            os.write(d, msg)
            assert os.read(d, 4096) == msg.upper()
        ctl(c, "hangup")
        os.close(d)
        os.close(c)
    except Exception as e:
        errors.append(repr(e))
cs = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
for t in cs:
    t.start()
for t in cs:
    t.join()
acc.join()
print(errors[:3], len(errors))
"#);
    assert_eq!(out.ok(), "[] 0\n");
    net.finish();
}

#[test]
fn ls_shows_modes_owners_and_sizes() {
    let net = Net::mount();
    let out = net.sh(r#"set -e
        exec 3<>$N/seqpacket
        id=$(cat <&3)
        echo "bind lsme" >&3
        echo $id
        echo --
        ls -l $N | grep -v '^total' | awk '{print $1, $3, $5, $NF}'
        echo --
        ls -l $N/$id | grep -v '^total' | awk '{print $1, $3, $NF}'
        echo --
        stat -c '%s' $N/$id/status $N/$id/local $N/$id/ctl
        wc -c < $N/$id/status
        stat -c '%u %a' $N/$id
        "#);
    // The socket ends with the shell that created it: everything about it is seen from
    // the script.
    let text = out.ok();
    // The id comes from the shell itself: once it exits, its socket ends, so listing the
    // tree afterwards would race the end of the socket.
    let mut parts: Vec<&str> = text.split("--\n").collect();
    let id: u64 = parts
        .remove(0)
        .trim()
        .parse()
        .expect("the shell printed the id");
    assert_eq!(
        parts[0],
        format!(
            "drwx------ root 0 {id}\n-r--r--r-- root 0 addrs\n\
             -rw-rw-rw- root 2147479552 dgram\n-rw-rw-rw- root 2147479552 seqpacket\n\
             -rw-rw-rw- root 2147479552 stream\n"
        )
    );
    assert_eq!(
        parts[1],
        "-rw------- root accept\n-rw------- root ctl\n-rw------- root data\n\
         -r-------- root err\n-rw------- root listen\n-r-------- root local\n\
         -r-------- root remote\n-r-------- root status\n"
    );
    let sizes: Vec<&str> = parts[2].lines().collect();
    assert_eq!(sizes[0], sizes[3].trim(), "status size is its length");
    assert_eq!(sizes[1], "5", "local is 'lsme\\n'");
    // Socket files report a size no write can pass (see ksock-fuse), not their contents.
    assert_eq!(sizes[2], "2147479552", "ctl");
    assert_eq!(
        sizes[4], "0 700",
        "the socket directory is root's, mode 0700"
    );
    net.finish();
}

#[test]
fn ss_lists_live_sockets() {
    let net = Net::mount();
    let holder = net.spawn_py(
        r#"
s, sid = sock()
ctl(s, "bind shown && listen 5")
c, cid = sock()
ctl(c, "connect shown")
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
os.write(d, b"12345")
print(sid, cid, d, flush=True)
time.sleep(600)
"#,
    );
    let mut holder = holder;
    let line = common::read_line(&mut holder);
    let [sid, cid, fd] = line.split_whitespace().collect::<Vec<_>>()[..] else {
        panic!("{line}")
    };
    let ss = |args: &[&str]| -> Vec<Vec<String>> {
        let out = common::wait_out(
            common::ksock()
                .arg("ss")
                .args(args)
                .arg("--mount")
                .arg(&net.root)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
            "ss",
        );
        out.ok()
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    };
    // Every socket, with its owner and id (-e) and its process (-p).
    let lines = ss(&["-a", "-n", "-e", "-p"]);
    assert_eq!(
        lines[0],
        [
            "Netid",
            "State",
            "Recv-Q",
            "Send-Q",
            "Local",
            "Address:Port",
            "Peer",
            "Address:Port",
            "Process"
        ]
    );
    let pid = holder.id();
    // A listener's Recv-Q and Send-Q are its pending connections and its backlog. Its ctl
    // is the factory's handle, which names no socket: no fd.
    assert_eq!(
        lines[1],
        [
            "u_seq".to_string(),
            "LISTEN".into(),
            "1".into(),
            "5".into(),
            "shown".into(),
            "*".into(),
            format!("users:((\"python3\",pid={pid}))"),
            "uid:0".into(),
            format!("sk:{sid}"),
        ]
    );
    assert_eq!(
        lines[2],
        [
            "u_seq".to_string(),
            "ESTAB".into(),
            "0".into(),
            "5".into(),
            "*".into(),
            "shown".into(),
            format!("users:((\"python3\",pid={pid},fd={fd}))"),
            "uid:0".into(),
            format!("sk:{cid}"),
        ]
    );
    assert_eq!(lines.len(), 3);
    // Without -a, as ss: no listener.
    let lines = ss(&[]);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], ["u_seq", "ESTAB", "0", "5", "*", "shown"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    net.finish();
}

#[test]
fn ctrl_c_unmounts_cleanly_even_while_a_reader_waits() {
    let mut net = Net::mount();
    // Files still open: the tree is detached, and the waiting reader gets an error, not a
    // hang.
    let mut reader = net.spawn_py(
        r#"
s, sid = sock()
ctl(s, "bind bye && listen")
c, cid = sock()
ctl(c, "connect bye")
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
print("ready", flush=True)
print(errno_of(os.read, d, 10), flush=True)
"#,
    );
    assert_eq!(common::read_line(&mut reader), "ready\n");
    common::wait_in_read(reader.id());
    net.stop(nix::sys::signal::Signal::SIGINT);
    let out = common::wait_out(reader, "reader");
    let rest = out.ok().trim();
    assert!(rest.starts_with('E'), "the reader got {rest:?}");
}

#[test]
fn a_dead_mount_is_replaced_by_a_new_one() {
    let mut net = Net::mount();
    net.sh("exec 3<>$N/stream; echo 'bind before' >&3").ok();
    net.kill_and_remount();
    // A new stack: nothing from before.
    assert_eq!(fs::read_to_string(net.local().join("addrs")).unwrap(), "");
    assert_eq!(net.sh("cat $N/seqpacket").ok(), "1");
    net.finish();
}
