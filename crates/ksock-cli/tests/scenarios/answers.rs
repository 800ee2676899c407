// The scenarios of tests/answers.rs, run through a local mount by that binary and
// through `ksock export` and `ksock import` by tests/import_answers.rs (see common).

use common::Net;

#[test]
fn a_ctl_command_that_would_block_records_its_reason() {
    let net = Net::mount();
    let out = net.py(r#"
l, lid = sock("stream")
ctl(l, "bind full && listen 1")
a, aid = sock("stream")
ctl(a, "connect full")
b, bid = sock("stream", os.O_RDWR | os.O_NONBLOCK)
print(errno_of(ctl, b, "connect full"))
print(text(f"{N}/{bid}/err"), end="")
"#);
    assert_eq!(
        out.ok(),
        "EAGAIN\nEAGAIN: connect \"full\": Resource temporarily unavailable \
         (the listener's backlog is full)\n"
    );
    net.finish();
}

#[test]
fn a_write_after_ones_own_shutdown_blames_oneself() {
    let net = Net::mount();
    let out = net.py(r#"
l, lid = sock("stream")
ctl(l, "bind sh && listen")
c, cid = sock("stream")
ctl(c, "connect sh")
srv = os.open(f"{N}/{lid}/accept", os.O_RDWR)
ctl(c, "shutdown wr")
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
print(errno_of(os.write, d, b"late"))
print(text(f"{N}/{cid}/err"), end="")
# A peer that is gone is the peer's doing.
c2, c2id = sock("stream")
ctl(c2, "connect sh")
srv2 = os.open(f"{N}/{lid}/accept", os.O_RDWR)
os.close(srv2)
d2 = os.open(f"{N}/{c2id}/data", os.O_RDWR)
print(errno_of(os.write, d2, b"to nobody"))
print(text(f"{N}/{c2id}/err"), end="")
"#);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "EPIPE");
    assert_eq!(
        lines[1],
        "EPIPE: write: Broken pipe (this socket's write side is shut down)"
    );
    assert_eq!(lines[2], "EPIPE");
    assert_eq!(lines[3], "EPIPE: write: Broken pipe (the peer is gone)");
    net.finish();
}

#[test]
fn bind_failures_say_which_of_their_reasons() {
    let net = Net::mount();
    let out = net.py(r#"
s, sid = sock()
print(errno_of(ctl, s, 'bind ""'))
print(text(f"{N}/{sid}/err"), end="")
ctl(s, "bind once")
print(errno_of(ctl, s, "bind twice"))
print(text(f"{N}/{sid}/err"), end="")
"#);
    assert_eq!(
        out.ok(),
        "EINVAL\nEINVAL: bind \"\": Invalid argument (the address is empty)\n\
         EINVAL\nEINVAL: bind \"twice\": Invalid argument (the socket is already bound)\n"
    );
    net.finish();
}

#[test]
fn a_long_ctl_write_names_the_limit_not_its_size() {
    let net = Net::mount();
    let out = net.py(r#"
s, sid = sock()
print(errno_of(ctl, s, "bind " + "x" * 5000))
print(text(f"{N}/{sid}/err"), end="")
"#);
    assert_eq!(
        out.ok(),
        "E2BIG\nE2BIG: ctl: a write is longer than the 4096-byte limit\n"
    );
    net.finish();
}

#[test]
fn making_names_is_refused_with_eperm() {
    let net = Net::mount();
    let out = net.py(r#"
import stat
print(errno_of(os.mknod, f"{N}/node", stat.S_IFREG | 0o600))
print(errno_of(os.mkfifo, f"{N}/fifo"))
print(errno_of(os.mkdir, f"{N}/dir"))
s, sid = sock()
print(errno_of(os.mknod, f"{N}/{sid}/node", stat.S_IFREG | 0o600))
print(errno_of(os.unlink, f"{N}/{sid}/data"))
print(errno_of(os.rename, f"{N}/{sid}/data", f"{N}/{sid}/data2"))
"#);
    assert_eq!(out.ok(), "EPERM\nEPERM\nEPERM\nEPERM\nEPERM\nEPERM\n");
    net.finish();
}

#[test]
fn only_the_owner_touches_a_sockets_times() {
    let net = Net::mount();
    let out = net.py(r#"
import subprocess
s, sid = sock()
# The owner may, with a chosen time or now.
print(errno_of(os.utime, f"{N}/{sid}", (1, 1)))
print(errno_of(os.utime, f"{N}/{sid}/data", None))
child = subprocess.run([sys.executable, "-c", f"""
import os, errno
os.setgid(65534); os.setuid(65534)
def e(fn, *a):
    try: fn(*a)
    except OSError as x: return errno.errorcode[x.errno]
    return 'OK'
N = '{N}'
print(e(os.utime, N + '/{sid}', (1, 1)))
print(e(os.utime, N + '/{sid}', None))
print(e(os.utime, N + '/stream', (1, 1)))
print(e(os.utime, N + '/stream', None))
"""], capture_output=True, text=True)
print(child.stdout, end="")
print(child.stderr, end="")
"#);
    // Another user: a chosen time is EPERM, now needs write permission (none on a socket's
    // directory: EACCES; a factory is world-writable, so touching it is allowed).
    assert_eq!(out.ok(), "OK\nOK\nEPERM\nEACCES\nEPERM\nOK\n");
    net.finish();
}

#[test]
fn nonblock_on_does_not_show_in_f_getfl() {
    // FUSE cannot change a file's open flags: a handle made nonblocking by the socket's
    // `nonblock on` behaves nonblocking (EAGAIN) while F_GETFL shows only the caller's own
    // flags. Documented in the README's differences.
    let net = Net::mount();
    let out = net.py(r#"
import fcntl
s, sid = sock()
ctl(s, "nonblock on")
d = os.open(f"{N}/{sid}/data", os.O_RDWR)
print(bool(fcntl.fcntl(d, fcntl.F_GETFL) & os.O_NONBLOCK))
print(errno_of(os.read, d, 10))
"#);
    assert_eq!(out.ok(), "False\nENOTCONN\n");
    let out = net.py(r#"
import fcntl
a, aid = sock()
b, bid = sock()
ctl(a, "bind nb && listen")
ctl(b, "connect nb")
ctl(b, "nonblock on")
d = os.open(f"{N}/{bid}/data", os.O_RDWR)
print(bool(fcntl.fcntl(d, fcntl.F_GETFL) & os.O_NONBLOCK))
print(errno_of(os.read, d, 10))
"#);
    assert_eq!(out.ok(), "False\nEAGAIN\n");
    net.finish();
}

local_mount_only! {
    "through an import the serving stack records the 9P connection's credentials for a connect, so an accepted connection's peer_uid and peer_pid name the import process, not the local one that connected",
#[test]
fn an_accepted_connection_names_the_connecting_process() {
    let net = Net::mount();
    let out = net.py(r#"
import subprocess
l, lid = sock("stream")
ctl(l, "bind creds && listen")
child = subprocess.Popen([sys.executable, "-c", f"""
import os
os.setgid(65534); os.setuid(65534)
N = '{N}'
fd = os.open(N + '/stream', os.O_RDWR)
cid = os.read(fd, 64).decode()
os.write(fd, b'connect creds')
print(os.getpid(), cid, flush=True)
os.read(os.open(N + '/' + cid + '/data', os.O_RDWR), 10)
"""], stdout=subprocess.PIPE, text=True)
pid, cid = child.stdout.readline().split()
a = os.open(f"{N}/{lid}/listen", os.O_RDWR)
aid = os.read(a, 64).decode()
st = dict(l.split(" ", 1) for l in text(f"{N}/{aid}/status").splitlines())
print(st["peer_uid"], st["peer_pid"] == pid)
# The client sees the listener's creator (this process) as its peer.
st = dict(l.split(" ", 1) for l in text(f"{N}/{lid}/status").splitlines())
print(st["peer_uid"], st["peer_pid"] == str(os.getpid()))
os.write(os.open(f"{N}/{aid}/data", os.O_RDWR), b"bye")
child.wait()
# An unconnected socket has no peer.
s, sid = sock()
st = dict(l.split(" ", 1) for l in text(f"{N}/{sid}/status").splitlines())
print(st["peer_uid"], st["peer_pid"])
"#);
    assert_eq!(out.ok(), "65534 True\n0 True\n- -\n");
    net.finish();
}
}

#[test]
fn a_zero_length_write_sends_nothing_and_loses_nothing() {
    // The kernel answers a zero-length write itself: no zero-length record reaches the
    // socket, and nothing around it is lost or reordered.
    let net = Net::mount();
    let out = net.py(r#"
a, aid = sock()
b, bid = sock()
ctl(a, "bind z && listen")
ctl(b, "connect z")
srv = os.open(f"{N}/{aid}/accept", os.O_RDWR)
d = os.open(f"{N}/{bid}/data", os.O_RDWR)
print(os.write(d, b"one"), os.write(d, b""), os.write(d, b"two"))
print(os.read(srv, 100), os.read(srv, 100))
print(select.select([srv], [], [], 0.2)[0])
# An empty ctl write returns 0, runs nothing, and records no error.
print(os.write(b, b""), repr(text(f"{N}/{bid}/err")))
"#);
    assert_eq!(out.ok(), "3 0 3\nb'one' b'two'\n[]\n0 ''\n");
    net.finish();
}
