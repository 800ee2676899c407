//! `ksock export`: the `/net` tree over 9P2000, driven by clients that share no code with
//! the server.
//!
//! - p9fs (from PyPI; its `py9p` module is a 9P2000 client, and `p9fs` an fsspec file
//!   system on it), installed by `.ci/run` into `target/python`: an independent reading of
//!   the protocol, end to end.
//! - `tests/p9raw.py`, a client made of the Python standard library alone, for what a
//!   library hides: several tags at once, `Tflush` and the order of its replies, malformed
//!   messages, the limits.
//!
//! Each test starts its own `ksock export` on a Unix socket in a temporary directory (or
//! over TCP, or on pipes with `--stdio`). The FUSE and other-user tests need root and
//! `/dev/fuse`; without them, python3 or the library, tests fail, loudly: they never skip.

mod common;

use common::{Net, Out, PATIENCE, read_line, wait_out, wait_until};
use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The raw client, run before each script (`python3 -c`, so that a process of another uid
/// needs no access to this tree).
const P9RAW: &str = include_str!("p9raw.py");

/// What `.ci/run` installs, and where.
const P9FS_PACKAGES: &str = "p9fs==0.0.4 fsspec==2026.9.0";

/// The directory holding p9fs: `$KSOCK_TEST_PYTHONPATH`, or `target/python` of this
/// workspace (where `.ci/run` puts it).
fn p9fs_dir() -> PathBuf {
    let dir = std::env::var_os("KSOCK_TEST_PYTHONPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/python"));
    let have = ["py9p/py9p.py", "p9fs/__init__.py", "fsspec/__init__.py"]
        .iter()
        .all(|f| dir.join(f).is_file());
    assert!(
        have,
        "the Python 9P library p9fs is missing from {}: run .ci/run, or from the workspace \
         root: python3 -m pip install --target target/python {P9FS_PACKAGES}",
        dir.display()
    );
    dir.canonicalize().expect("canonical path")
}

/// python3 running the raw client and then `script`, with `$SOCK` and `$KSOCK` set.
fn python(sock: &Path, script: &str) -> Command {
    let mut c = Command::new("python3");
    c.args(["-u", "-c", &format!("{P9RAW}\n{script}")])
        .env("SOCK", sock)
        .env("KSOCK", env!("CARGO_BIN_EXE_ksock"))
        .env_remove("PYTHONPATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[track_caller]
fn run(mut cmd: Command, what: &str) -> Out {
    wait_out(cmd.spawn().expect("spawn python3 (is it installed?)"), what)
}

/// The first lines of the scripts that use p9fs.
const LIB_PRELUDE: &str = r#"
import socket
P9LIB = os.environ["P9LIB"]
from py9p import py9p
import p9fs
assert py9p.__file__.startswith(P9LIB), f"py9p comes from {py9p.__file__}, not {P9LIB}"

def client(path=SOCK):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return py9p.Client(s, py9p.Credentials("glenda"), ver=py9p.Version.v9P2000, msize=65536)

def lwalk(c, fid, path):
    names = path.split("/")
    r = c._walk(c.ROOT, fid, names)
    assert len(r.wqid) == len(names), (path, r.wqid)
    return r.wqid

def lreadall(c, fid):
    out, off = b"", 0
    while True:
        b = c._read(fid, off, 4096).data
        if not b:
            return out
        out += b
        off += len(b)

def ltext(c, fid, path):
    lwalk(c, fid, path)
    c._open(fid, py9p.OREAD)
    try:
        return lreadall(c, fid).decode()
    finally:
        c._clunk(fid)

def lstatus(c, fid, sid):
    return dict(l.split(" ", 1) for l in ltext(c, fid, f"local/{sid}/status").splitlines())

def lls(c, fid, path):
    lwalk(c, fid, path)
    c._open(fid, py9p.OREAD)
    b = lreadall(c, fid)
    c._clunk(fid)
    m = py9p.Marshal9P()
    m.setBuffer(b)
    m.buf.seek(0)
    st = []
    m.decstat(st, 0)
    return sorted(x.name.decode() for x in st)

def lids(c, fid):
    return [n for n in lls(c, fid, "local") if n.isdigit()]
"#;

/// One `ksock export` process, serving a fresh stack.
struct Export {
    tmp: tempfile::TempDir,
    sock: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    ready: String,
}

impl Export {
    /// `ksock export --socket DIR/run/net.9p args...`, once it says it is ready.
    #[track_caller]
    fn start(args: &[&str]) -> Export {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sock = tmp.path().join("run/net.9p");
        let path = sock.to_str().expect("utf-8 path").to_string();
        let mut all: Vec<&str> = vec!["--socket", &path];
        all.extend_from_slice(args);
        Export::spawn(tmp, sock.clone(), &all, &[])
    }

    #[track_caller]
    fn spawn(
        tmp: tempfile::TempDir,
        sock: PathBuf,
        args: &[&str],
        env: &[(&str, &Path)],
    ) -> Export {
        let log = tmp.path().join("export.log");
        let child = common::ksock()
            .arg("export")
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn ksock export");
        let mut ex = Export {
            tmp,
            sock,
            log,
            child: Some(child),
            ready: String::new(),
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = ex.log();
            // A whole line: the log may be read while the line is being written.
            if let Some(l) = log
                .split_inclusive('\n')
                .find(|l| l.starts_with("ksock: exporting") && l.ends_with('\n'))
            {
                ex.ready = l.trim_end().to_string();
                break;
            }
            if let Some(st) = ex.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("ksock export {args:?} exited ({st}) before it was ready:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "ksock export {args:?} did not say it was ready:\n{log}"
            );
            thread::sleep(Duration::from_millis(5));
        }
        ex
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The raw client and `script`, against this server.
    #[track_caller]
    fn py(&self, script: &str) -> Out {
        run(python(&self.sock, script), script)
    }

    /// The raw client, p9fs's prelude and `script`.
    #[track_caller]
    fn py_lib(&self, script: &str) -> Out {
        let lib = p9fs_dir();
        let mut c = python(&self.sock, &format!("{LIB_PRELUDE}\n{script}"));
        c.env("PYTHONPATH", &lib).env("P9LIB", &lib);
        run(c, script)
    }

    /// Fails if the server has exited.
    #[track_caller]
    fn assert_alive(&mut self) {
        if let Some(st) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!("ksock export exited ({st}):\n{}", self.log());
        }
    }

    /// Stops the server with `sig` and checks that it ends well.
    #[track_caller]
    fn stop(mut self, sig: Signal) {
        self.assert_alive();
        let child = self.child.take().expect("a server");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal ksock export");
        let out = wait_out(child, "ksock export after a stop signal");
        assert!(
            out.status.success(),
            "ksock export ended with {} after {sig}:\n{}",
            out.status,
            self.log()
        );
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a port")
        .local_addr()
        .expect("its address")
        .port()
}

#[test]
fn export_announces_itself_keeps_its_socket_private_and_stops_on_signals() {
    let ex = Export::start(&[]);
    assert_eq!(
        ex.ready,
        format!(
            "ksock: exporting /net (local, inet) on unix:{}; Ctrl-C to stop",
            ex.sock.display()
        )
    );
    let meta = fs::metadata(&ex.sock).expect("the socket");
    assert!(meta.file_type().is_socket(), "{:?}", meta.file_type());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "the socket's mode"
    );
    let dir = fs::metadata(ex.sock.parent().unwrap()).expect("its directory");
    assert_eq!(
        dir.permissions().mode() & 0o777,
        0o700,
        "the directory's mode"
    );
    let out = ex.py(r#"
c = Conn.unix()
c.hello()
print(sorted(c.ls("")))
print(sorted(c.ls("local")))
print(sorted(c.ls("inet")))
"#);
    assert_eq!(
        out.ok(),
        "['inet', 'local']\n\
         ['addrs', 'dgram', 'seqpacket', 'stream']\n\
         ['addrs', 'dgram', 'stream']\n"
    );
    ex.stop(Signal::SIGINT);

    // Without --socket: $XDG_RUNTIME_DIR/ksock/net.9p.
    let tmp = tempfile::tempdir().expect("tempdir");
    let runtime = tmp.path().join("xdg");
    fs::create_dir(&runtime).expect("mkdir");
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).expect("chmod");
    let sock = runtime.join("ksock/net.9p");
    let ex = Export::spawn(tmp, sock.clone(), &[], &[("XDG_RUNTIME_DIR", &runtime)]);
    assert_eq!(
        ex.ready,
        format!(
            "ksock: exporting /net (local, inet) on unix:{}; Ctrl-C to stop",
            sock.display()
        )
    );
    let out = ex.py("c = Conn.unix()\nprint(c.version(8192))\n");
    assert_eq!(out.ok(), "(8192, '9P2000')\n");
    ex.stop(Signal::SIGTERM);
}

#[test]
fn p9fs_client_connects_two_connections_sockets_and_they_end_with_them() {
    let ex = Export::start(&[]);
    let out = ex.py_lib(
        r#"
a, b = client(), client()
print(a.msize, b.msize)
# a: a listener.
lwalk(a, 100, "local/seqpacket")
a._open(100, py9p.ORDWR)
lid = lreadall(a, 100).decode()
print(lid.isdigit(), repr(lreadall(a, 100)))
print(a._write(100, 0, b"bind libname && listen").count)
print(repr(ltext(b, 200, "local/addrs")))
# b: a client of it, on the other connection.
lwalk(b, 101, "local/seqpacket")
b._open(101, py9p.ORDWR)
cid = lreadall(b, 101).decode()
b._write(101, 0, b"connect libname")
lwalk(b, 102, f"local/{cid}/data")
b._open(102, py9p.ORDWR)
lwalk(a, 102, f"local/{lid}/accept")
a._open(102, py9p.ORDWR)
print(b._write(102, 0, b"ping from b").count)
print(a._read(102, 0, 4096).data)
print(a._write(102, 0, b"pong from a").count)
print(b._read(102, 0, 4096).data)
ids = lids(a, 300)
aid = [n for n in ids if n not in (lid, cid)]
print(len(ids), len(aid))
st = lstatus(a, 301, cid)
print(st["state"], st["remote"], st["peer_uid"] == str(os.getuid()))
st = lstatus(b, 302, aid[0])
print(st["state"], st["local"])
st = lstatus(b, 303, lid)
print(st["state"], st["local"])
# Tstat through the library: the name, and the qid the walk gave.
q = lwalk(a, 304, f"local/{lid}/status")
s = a._stat(304).stat[0]
print(s.name, s.qid.path == q[-1].path, bool(s.mode & py9p.DMDIR))
s = a._stat(a.ROOT).stat[0]
print(bool(s.mode & py9p.DMDIR))
a._clunk(304)
# b clunks its files: its socket lives on while its attach fid is open.
b._clunk(102)
b._clunk(101)
print(cid in lids(a, 305))
# b goes: its socket ends, the peer reads end of file.
b._fullclose()
until("the client's socket ends", lambda: cid not in lids(a, 306))
print(repr(a._read(102, 0, 4096).data))
# The accepted connection lives while its file is open; the listener while a is attached.
a._clunk(102)
until("the accepted connection ends", lambda: aid[0] not in lids(a, 307))
a._clunk(100)
print(lids(a, 308) == [lid])
a._fullclose()
c = client()
until("a's listener ends with its connection", lambda: not lids(c, 100))
print(repr(ltext(c, 101, "local/addrs")))
"#,
    );
    assert_eq!(
        out.ok(),
        "65536 65536\n\
         True b''\n\
         22\n\
         'libname\\n'\n\
         11\n\
         b'ping from b'\n\
         11\n\
         b'pong from a'\n\
         3 1\n\
         connected libname True\n\
         connected libname\n\
         listening libname\n\
         b'status' True False\n\
         True\n\
         True\n\
         b''\n\
         True\n\
         ''\n"
    );
    ex.stop(Signal::SIGTERM);
}

#[test]
fn p9fs_file_system_lists_and_reads_the_tree_over_tcp() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut ex = Export::start(&["--listen", &addr]);
    assert!(
        ex.ready.contains(&format!("tcp:{addr}")) && ex.ready.contains("unix:"),
        "{}",
        ex.ready
    );
    let out = ex.py_lib(&format!(
        r#"
from p9fs import P9FileSystem
fs = P9FileSystem(host="127.0.0.1", port={port}, username="glenda", version="9P2000")
print(sorted(fs.ls("local", detail=False)))
print(sorted(fs.ls("inet", detail=False)))
c = fs.client
c._walk(c.ROOT, 5000, ["local", "stream"])
c._open(5000, py9p.ORDWR)
sid = c._read(5000, 0, 64).data.decode()
c._write(5000, 0, b"bind over-tcp && listen 3")
print(fs.info(f"local/{{sid}}")["type"], fs.isfile(f"local/{{sid}}/status"))
print(sorted(n.rsplit("/", 1)[1] for n in fs.ls(f"local/{{sid}}", detail=False)))
st = dict(l.split(" ", 1) for l in fs.cat_file(f"local/{{sid}}/status").decode().splitlines())
print(st["id"] == sid, st["state"], st["local"], st["backlog"])
print(fs.cat_file("local/addrs"))
print(fs.exists("local/nosuch"))
try:
    fs.info("nosuch")
except py9p.RpcError as e:
    print(e.args[0])
# The Unix socket serves the same stack.
u = Conn.unix()
u.hello()
print(repr(u.text("local/addrs")), u.status(sid)["state"])
"#
    ));
    assert_eq!(
        out.ok(),
        "['local/addrs', 'local/dgram', 'local/seqpacket', 'local/stream']\n\
         ['inet/addrs', 'inet/dgram', 'inet/stream']\n\
         directory True\n\
         ['accept', 'ctl', 'data', 'err', 'listen', 'local', 'remote', 'status']\n\
         True listening over-tcp 3\n\
         b'over-tcp\\n'\n\
         False\n\
         b'No such file or directory'\n\
         'over-tcp\\n' listening\n"
    );
    ex.assert_alive();
    ex.stop(Signal::SIGTERM);
}

#[test]
fn version_auth_attach_walk_and_what_is_refused() {
    let ex = Export::start(&[]);
    let out = ex.py(
        r#"
c = Conn.unix()
print(c.version(2 << 20))
print(Conn.unix().version(8192, "XYZ")[1], Conn.unix().version(8192, "9P1999")[1])
print(Conn.unix().version(8192))
print(ename(c.auth, 77))
root, q = c.attach("anyone-at-all")
print(q["type"] == QTDIR)
st = c.stat(root)
print(st["mode"] & DMDIR != 0, st["qid"] == q)
# A second attach is a second root of the same tree.
root2, q2 = c.attach("someone-else")
print(q2 == q)
f, qs = c.walk("local/addrs")
print(len(qs), qs[0]["type"] == QTDIR, qs[1]["type"] == 0)
st = c.stat(f)
print(st["name"], st["qid"] == qs[1], st["mode"] & DMDIR)
# A walk that fails at its first name is an error; later, a short Rwalk that makes no fid.
print(ename(c.twalk, root, c.fid(), ["nosuch"]))
nf = c.fid()
print(len(c.twalk(root, nf, ["local", "nosuch"])), ename(c.stat, nf) != "OK")
# A walk of no names clones; ".." goes up, and stays at the root.
cl = c.fid()
print(c.twalk(f, cl, []) == [], c.stat(cl)["qid"] == qs[1])
print([x["path"] for x in c.twalk(root, c.fid(), ["local", "..", "..", "inet"])][1:3] == [q["path"]] * 2)
print(len(c.twalk(root, c.fid(), [".."] * 16)))
big = Conn.unix()
br = big.hello()
try:
    print("17 names:", ename(big.twalk, br, big.fid(), [".."] * 17) != "OK")
except Closed:
    print("17 names: True")
# Stable qids: the same path on another connection.
d = Conn.unix()
d.hello()
print(d.walk("local/addrs")[1] == qs)
# What is refused: create, remove (which clunks the fid all the same), a wstat that changes
# something; a wstat that changes nothing is accepted.
lf, _ = c.walk("local")
print(ename(c.rpc, Tcreate, struct.pack("<I", lf) + S("newfile") + struct.pack("<IB", 0o644, 1)) != "OK")
rf, _ = c.walk("local/addrs")
print(ename(c.rpc, Tremove, struct.pack("<I", rf)) != "OK", ename(c.stat, rf) != "OK")
print(c.exists("local/addrs"))
wf, _ = c.walk("local/addrs")
print(ename(c.wstat, wf))
print(ename(c.wstat, wf, mode=0o777) != "OK", ename(c.wstat, wf, name="x") != "OK")
# Reading a factory: the id, then end of file; opening it twice makes two sockets.
s1, id1 = c.sock()
s2, id2 = c.sock()
print(id1.isdigit(), id2.isdigit(), id1 != id2, c.read(s1, offset=len(id1)))
# Open modes: an unopened fid cannot be read; an open fid cannot be walked from, opened
# again, or written when opened for reading.
of, _ = c.walk(f"local/{id1}/status")
print(ename(c.read, of) != "OK")
c.topen(of, OREAD)
print(ename(c.twalk, of, c.fid(), []) != "OK")
print(c.readall(of).decode().splitlines()[0] == f"id {id1}")
print(ename(c.topen, of, OREAD) != "OK")
print(ename(c.write, of, b"x") != "OK")
print(ename(c.read, 99999) != "OK", ename(c.clunk, 99999) != "OK")
"#,
    );
    assert_eq!(
        out.ok(),
        "(1048576, '9P2000')\n\
         unknown unknown\n\
         (8192, '9P2000')\n\
         authentication not required\n\
         True\n\
         True True\n\
         True\n\
         2 True True\n\
         addrs True 0\n\
         No such file or directory\n\
         1 True\n\
         True True\n\
         True\n\
         16\n\
         17 names: True\n\
         True\n\
         True\n\
         True True\n\
         True\n\
         OK\n\
         True True\n\
         True True True b''\n\
         True\n\
         True\n\
         True\n\
         True\n\
         True\n\
         True True\n"
    );
    ex.stop(Signal::SIGTERM);
}

#[test]
fn errors_are_answered_with_their_strerror_text() {
    let ex = Export::start(&[]);
    let out = ex.py(
        r#"
c = Conn.unix()
c.hello()
a, aid = c.sock()
b, bid = c.sock()
c.write(a, "bind taken && listen")
print(ename(c.write, b, "bind taken"))
print(c.text(f"local/{bid}/err"), end="")
print(ename(c.write, b, "connect nobody"))
print(ename(c.write, b, "frob"))
print(c.text(f"local/{bid}/err"), end="")
print(ename(c.write, b, "listen 0"))
print(ename(c.write, b, "bind"))
print(ename(c.write, b, "x" * 4097))
# Unlike a FUSE mount, an empty write reaches the tree.
print(ename(c.write, b, b""))
d = c.open(f"local/{bid}/data")
print(ename(c.write, d, b"x"))
print(ename(c.open, f"local/{bid}/data:bogus"))
print(ename(c.open, f"local/{bid}/nosuch"))
print(ename(c.open, f"local/{bid}/status", OWRITE))
print(ename(c.open, "local/addrs", OWRITE))
print(ename(c.open, "local/99999/ctl"))
# Nonblocking handles: the path flag, short and long.
_, (pcf, pcid, pcd), pad = c.pair("nb")
print(ename(c.read, c.open(f"local/{pcid}/data:n")), ename(c.read, c.open(f"local/{pcid}/data:nonblock")))
# A chain stops at the first failure, which the write returns.
print(ename(c.write, b, "bind mine && listen 2 && frob && listen 7"))
print([l for l in c.text(f"local/{bid}/status").splitlines() if l.split()[0] in ("state", "backlog")])
"#,
    );
    assert_eq!(
        out.ok(),
        "Address already in use\n\
         EADDRINUSE: bind \"taken\": Address already in use (another socket is bound to that name)\n\
         Connection refused\n\
         No such file or directory\n\
         ENOENT: unknown command \"frob\"\n\
         Invalid argument\n\
         Invalid argument\n\
         Argument list too long\n\
         Invalid argument\n\
         Transport endpoint is not connected\n\
         Invalid argument\n\
         No such file or directory\n\
         Permission denied\n\
         Permission denied\n\
         No such file or directory\n\
         Resource temporarily unavailable Resource temporarily unavailable\n\
         No such file or directory\n\
         ['state listening', 'backlog 2']\n"
    );
    ex.stop(Signal::SIGTERM);
}

#[test]
fn a_waiting_read_holds_up_no_other_tag() {
    let ex = Export::start(&[]);
    let out = ex.py(r#"
c = Conn.unix()
c.hello()
(lf, lid), (cf, cid, cd), ad = c.pair("tags")
t = c.start(Tread, struct.pack("<IQI", ad, 0, 100))
# Other tags are answered while the read waits: a walk, a stat, a read of another file.
f, _ = c.walk(f"local/{lid}/status")
print(c.stat(f)["name"])
print(c.status(cid)["state"])
print([NAMES[m[0]] for m in c.pending])
# Another connection too.
d = Conn.unix()
d.hello()
print(d.status(lid)["state"])
print(c.write(cd, b"late data"))
print(read_data(c.result(t, Rread)))
# Reads waiting on three sockets are answered as their data comes, in that order.
pairs = [c.pair(f"many{i}") for i in range(3)]
tags = [c.start(Tread, struct.pack("<IQI", p[2], 0, 100)) for p in pairs]
print([NAMES[m[0]] for m in c.pending], c.ids() != [])
order = []
for i in (2, 0, 1):
    c.write(pairs[i][1][2], f"to {i}")
    order.append(read_data(c.result(tags[i], Rread)).decode())
print(order, c.pending)
"#);
    assert_eq!(
        out.ok(),
        "status\n\
         connected\n\
         []\n\
         listening\n\
         9\n\
         b'late data'\n\
         [] True\n\
         ['to 2', 'to 0', 'to 1'] []\n"
    );
    ex.stop(Signal::SIGTERM);
}

#[test]
fn flush_of_a_waiting_read_answers_interrupted_then_rflush_and_loses_nothing() {
    let ex = Export::start(&[]);
    let out = ex.py(r#"
c = Conn.unix()
c.hello()
(lf, lid), (cf, cid, cd), ad = c.pair("flushread")
t = c.start(Tread, struct.pack("<IQI", ad, 0, 100))
c.stat(ad)
print(c.pending)
ft = c.flush(t)
first, second = c.recv(), c.recv()
print(NAMES[first[0]], first[1] == t, gets(first[2], 0)[0] if first[0] == Rerror else first[2])
print(NAMES[second[0]], second[1] == ft, second[2])
# Nothing arrived for the flushed tag after all: a round trip, and only its reply.
c.stat(ad)
print(c.pending)
# The socket works on: later data reaches a later read, none lost to the flushed one.
print(c.write(cd, b"one"), c.write(cd, b"two"))
print(c.read(ad), c.read(ad))
# A stream socket too.
(slf, slid), (scf, scid, scd), sad = c.pair("flushstream", "stream")
t = c.start(Tread, struct.pack("<IQI", sad, 0, 100))
c.stat(sad)
ft = c.flush(t)
print([(NAMES[m[0]], m[1] == t or m[1] == ft) for m in (c.recv(), c.recv())])
c.write(scd, b"stream data")
print(c.read(sad))
# Tflush of a tag that is not waiting (unknown, or answered already): Rflush at once.
print(c.result(c.flush(4242), Rflush))
s = c.start(Tstat, struct.pack("<I", lf))
c.result(s, Rstat)
print(c.result(c.flush(s), Rflush))
"#);
    assert_eq!(
        out.ok(),
        "[]\n\
         Rerror True interrupted\n\
         Rflush True b''\n\
         []\n\
         3 3\n\
         b'one' b'two'\n\
         [('Rerror', True), ('Rflush', True)]\n\
         b'stream data'\n\
         b''\n\
         b''\n"
    );
    ex.stop(Signal::SIGTERM);
}

#[test]
fn flush_of_a_waiting_accept_keeps_the_connection_queued() {
    let ex = Export::start(&[]);
    let out = ex.py(r#"
c = Conn.unix()
c.hello()
lf, lid = c.sock()
c.write(lf, "bind acc && listen")
af, _ = c.walk(f"local/{lid}/accept")
t = c.start(Topen, struct.pack("<IB", af, ORDWR))
c.stat(lf)
print(c.pending)
ft = c.flush(t)
first, second = c.recv(), c.recv()
print(NAMES[first[0]], first[1] == t, gets(first[2], 0)[0] if first[0] == Rerror else first[2])
print(NAMES[second[0]], second[1] == ft)
# A client connects after the flush: its connection waits in the queue.
d = Conn.unix()
d.hello()
cf, cid = d.sock()
d.write(cf, "connect acc")
cd = d.open(f"local/{cid}/data")
print(c.status(lid)["pending"], len(c.ids()))
# The same fid, opened again, gets it.
c.topen(af)
d.write(cd, "hello accept")
print(c.read(af), c.status(lid)["pending"], len(c.ids()))
c.write(af, "hello back")
print(d.read(cd))
"#);
    assert_eq!(
        out.ok(),
        "[]\n\
         Rerror True interrupted\n\
         Rflush True\n\
         1 2\n\
         b'hello accept' 0 3\n\
         b'hello back'\n"
    );
    ex.stop(Signal::SIGTERM);
}

#[test]
fn flush_racing_a_completion_gets_one_answer_before_rflush() {
    let ex = Export::start(&[]);
    let out = ex.py(r#"
c = Conn.unix()
c.hello()
(lf, lid), (cf, cid, cd), ad = c.pair("race")

def settle(want_tag, flush_tag, others):
    """Replies until the Rflush, then a round trip: what came for want_tag, and when."""
    seen, got = [], {}
    while True:
        mt, tag, body = c.recv()
        if tag == want_tag:
            seen.append(("before" if flush_tag not in got else "after", mt, body))
        elif tag == flush_tag:
            assert mt == Rflush, NAMES.get(mt, mt)
            got[flush_tag] = True
        elif tag in others:
            got[tag] = (mt, body)
        else:
            raise AssertionError(f"a reply for tag {tag}")
        if flush_tag in got and all(o in got for o in others):
            break
    s = c.start(Tstat, struct.pack("<I", lf))
    while True:
        mt, tag, body = c.recv()
        if tag == s:
            break
        assert tag == want_tag, f"a reply for tag {tag}"
        seen.append(("after", mt, body))
    return seen, got

# Reads completed by data sent just before or just after the flush on the same connection,
# or at the same moment from another connection.
w = Conn.unix()
w.hello()
wd = w.open(f"local/{cid}/data")
outcomes = {"read": 0, "interrupted": 0}
for i in range(300):
    rec = f"r{i}".encode()
    t, ft = c.tag(), c.tag()
    rd = frame(Tread, t, struct.pack("<IQI", ad, 0, 100))
    fl = frame(Tflush, ft, struct.pack("<H", t))
    if i % 3 == 2:
        c.send_raw(rd)
        c.stat(lf)
        wt = w.tag()
        w.send_raw(frame(Twrite, wt, struct.pack("<IQI", wd, 0, len(rec)) + rec))
        c.send_raw(fl)
        seen, got = settle(t, ft, [])
        w.result(wt, Rwrite)
    else:
        wt = c.tag()
        wr = frame(Twrite, wt, struct.pack("<IQI", cd, 0, len(rec)) + rec)
        c.send_raw(rd + wr + fl if i % 3 == 0 else rd + fl + wr)
        seen, got = settle(t, ft, [wt])
        assert got[wt][0] == Rwrite, got[wt]
    assert len(seen) == 1 and seen[0][0] == "before", (i, seen)
    _, mt, body = seen[0]
    if mt == Rread:
        assert read_data(body) == rec, (i, body)
        outcomes["read"] += 1
    else:
        assert mt == Rerror and gets(body, 0)[0] == "interrupted", (i, NAMES.get(mt), body)
        # The record was not taken by the flushed read.
        assert c.read(ad) == rec, i
        outcomes["interrupted"] += 1
print("reads", sum(outcomes.values()))
print(outcomes, file=sys.stderr)

# Accepts completed by a connection made just before the flush, from another connection.
d = Conn.unix()
d.hello()
acc = {"opened": 0, "interrupted": 0}
CONNECT = b"connect race"
for i in range(100):
    sf, sid = d.sock()
    sd = d.open(f"local/{sid}/data")
    af, _ = c.walk(f"local/{lid}/accept")
    t, ft = c.tag(), c.tag()
    wt = d.tag()
    c.send(Topen, t, struct.pack("<IB", af, ORDWR))
    d.send(Twrite, wt, struct.pack("<IQI", sf, 0, len(CONNECT)) + CONNECT)
    c.send(Tflush, ft, struct.pack("<H", t))
    seen, got = settle(t, ft, [])
    assert len(seen) == 1 and seen[0][0] == "before", (i, seen)
    d.result(wt, Rwrite)
    if seen[0][1] == Ropen:
        acc["opened"] += 1
    else:
        assert gets(seen[0][2], 0)[0] == "interrupted", (i, seen)
        acc["interrupted"] += 1
        # The connection stayed queued: a nonblocking accept gets it now.
        c.clunk(af)
        af = c.open(f"local/{lid}/accept:n")
    # Exactly one connection was accepted: no other is queued.
    assert c.status(lid)["pending"] == "0", (i, c.status(lid))
    nb = ename(c.open, f"local/{lid}/accept:n")
    assert nb == "Resource temporarily unavailable", (i, nb)
    d.write(sd, f"c{i}")
    assert c.read(af) == f"c{i}".encode(), i
    c.clunk(af)
    d.write(sf, "hangup")
    d.clunk(sd)
    d.clunk(sf)
print("accepts", sum(acc.values()))
print(acc, file=sys.stderr)
"#);
    assert_eq!(out.ok(), "reads 300\naccepts 100\n", "{}", out.stderr);
    eprintln!("outcomes: {}", out.stderr);
    ex.stop(Signal::SIGTERM);
}

#[test]
fn zero_length_writes_are_records_and_an_empty_ctl_write_is_einval() {
    let ex = Export::start(&[]);
    let out = ex.py(r#"
c = Conn.unix()
c.hello()
(lf, lid), (cf, cid, cd), ad = c.pair("zero")
print(c.write(cd, b""), c.write(cd, b"x"), c.write(cd, b""))
print(c.status(lid)["state"], c.status(cid)["state"])
# Three records: empty, "x", empty; then "after" shows the last empty one was no end of file.
print(c.read(ad), c.read(ad), c.read(ad))
c.write(cd, b"after")
print(c.read(ad))
aid = [i for i in c.ids() if str(i) not in (lid, cid)][0]
print(ename(c.read, c.open(f"local/{aid}/data:n")))
# And the other way.
print(c.write(ad, b""), c.write(ad, b"back"))
print(c.read(cd), c.read(cd))
# An empty ctl write: through the factory's fid and through ctl.
print(ename(c.write, cf, b""))
ctl = c.open(f"local/{cid}/ctl")
print(ename(c.write, ctl, b""))
print(c.status(cid)["state"])
"#);
    assert_eq!(
        out.ok(),
        "0 1 0\n\
         listening connected\n\
         b'' b'x' b''\n\
         b'after'\n\
         Resource temporarily unavailable\n\
         0 4\n\
         b'' b'back'\n\
         Invalid argument\n\
         Invalid argument\n\
         connected\n"
    );
    ex.stop(Signal::SIGTERM);
}

#[test]
fn a_client_that_disconnects_with_fids_open_ends_its_sockets() {
    let ex = Export::start(&[]);
    let out = ex.py(r#"
x = Conn.unix()
x.hello()
lf, lid = x.sock()
x.write(lf, "bind leaving && listen")
y = Conn.unix()
y.hello()
cf, cid = y.sock()
y.write(cf, "connect leaving")
cd = y.open(f"local/{cid}/data")
ad = x.open(f"local/{lid}/accept")
x.write(ad, "last words")
aid = [i for i in y.ids() if str(i) not in (lid, cid)]
print(len(aid))
# A read of x's waits when it goes, and x goes without a clunk.
t = x.start(Tread, struct.pack("<IQI", ad, 0, 100))
x.stat(lf)
x.close()
print(y.read(cd))
print(y.read(cd))
until("the listener's directory goes", lambda: not y.exists(f"local/{lid}"))
until("the accepted connection's directory goes", lambda: not y.exists(f"local/{aid[0]}"))
print(repr(y.text("local/addrs")), y.ids() == [int(cid)])
nf, nid = y.sock()
print(ename(y.write, nf, "connect leaving"))
"#);
    assert_eq!(
        out.ok(),
        "1\n\
         b'last words'\n\
         b''\n\
         '' True\n\
         Connection refused\n"
    );
    ex.stop(Signal::SIGTERM);
}

#[test]
fn malformed_and_oversized_messages_end_only_their_connection() {
    let mut ex = Export::start(&[]);
    let out = ex.py(
        r#"
watch = Conn.unix()
watch.hello()
made = []

def case(name, make):
    c = Conn.unix()
    root = c.hello(8192)
    made.append(c.sock()[1])
    c.send_raw(make(root))
    c.closed_within()
    print(name, "closed")

def walk_trunc(root):
    body = struct.pack("<IIH", root, 99, 1) + struct.pack("<H", 50) + b"abc"
    return struct.pack("<IBH", 7 + len(body), Twalk, 1) + body

case("size 0", lambda r: struct.pack("<I", 0))
case("size 4", lambda r: struct.pack("<I", 4))
case("size 6", lambda r: struct.pack("<I", 6) + bytes([Tclunk, 1]))
case("size past msize", lambda r: frame(Twrite, 1, struct.pack("<IQI", r, 0, 8193 - 23) + b"x" * (8193 - 23)))
case("size 0xffffffff", lambda r: struct.pack("<IBH", 0xFFFFFFFF, Tread, 1))
case("unknown type 99", lambda r: struct.pack("<IBH", 7, 99, 1))
case("an R-message", lambda r: frame(Rclunk, 1))
case("truncated string", walk_trunc)
case("size short of its fields", lambda r: struct.pack("<IBH", 9, Tclunk, 1) + b"\x01\x00")
case("trailing bytes", lambda r: struct.pack("<IBH", 15, Tclunk, 1) + struct.pack("<I", r) + b"junk")
# The server serves on: the watching connection, and a new one.
print(watch.status(watch.sock()[1])["state"])
n = Conn.unix()
n.hello()
print(repr(n.text("local/addrs")))
# What the closed connections made ended with them.
for sid in made:
    until(f"socket {sid} of a closed connection ends", lambda: not n.exists(f"local/{sid}"))
print("their sockets ended")
"#,
    );
    assert_eq!(
        out.ok(),
        "size 0 closed\n\
         size 4 closed\n\
         size 6 closed\n\
         size past msize closed\n\
         size 0xffffffff closed\n\
         unknown type 99 closed\n\
         an R-message closed\n\
         truncated string closed\n\
         size short of its fields closed\n\
         trailing bytes closed\n\
         new\n\
         ''\n\
         their sockets ended\n"
    );
    ex.assert_alive();
    ex.stop(Signal::SIGTERM);
}

#[test]
fn a_peer_of_another_uid_is_refused_before_any_reply() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test must run as root (it connects as another user)"
    );
    let mut ex = Export::start(&[]);
    // Make the socket reachable by anyone, so that only the server's check refuses.
    for (p, mode) in [
        (ex.tmp.path(), 0o755),
        (ex.sock.parent().unwrap(), 0o755),
        (ex.sock.as_path(), 0o666),
    ] {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let out = ex.py(r#"
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
print(os.getuid(), os.getgid(), os.getgroups())
# Connecting works (the file allows it); the server closes without a word.
c = Conn.unix()
print(repr(c.closed_within()))
c = Conn.unix()
try:
    c.send(Tversion, NOTAG, struct.pack("<I", 8192) + S("9P2000"))
except (BrokenPipeError, ConnectionResetError):
    pass
print(repr(c.closed_within()))
"#);
    assert_eq!(out.ok(), "65534 65534 []\nb''\nb''\n");
    // Its owner is still served.
    let out = ex.py("c = Conn.unix()\nc.hello()\nprint(repr(c.text('local/addrs')))\n");
    assert_eq!(out.ok(), "''\n");
    ex.assert_alive();
    ex.stop(Signal::SIGTERM);
}

#[test]
fn fids_and_outstanding_requests_are_bounded() {
    let ex = Export::start(&[]);
    let out = ex.py(r#"
c = Conn.unix()
root = c.hello()
# 16384 fids: the root and 16383 clones of it (in batches, under the request limit).
fids = list(range(1000, 1000 + 16383))
for i in range(0, len(fids), 1000):
    tags = []
    buf = b""
    for f in fids[i : i + 1000]:
        t = c.tag()
        tags.append(t)
        buf += frame(Twalk, t, Conn.walk_body(root, f, []))
    c.send_raw(buf)
    for t in tags:
        c.result(t, Rwalk)
e = ename(c.twalk, root, 99999, [])
print("fid limit:", e)
c.clunk(fids[0])
print(c.twalk(root, 99999, []))

# 4096 requests in flight: reads waiting on one socket; one more that must wait is refused.
# The other end is on another connection, which is not at its limit.
d = Conn.unix()
d.hello()
lf, lid = d.sock()
d.write(lf, "bind many && listen")
e = Conn.unix()
e.hello()
cf, cid = e.sock()
e.write(cf, "connect many")
cd = e.open(f"local/{cid}/data")
ad = d.open(f"local/{lid}/accept")
tags = [d.tag() for _ in range(4096)]
d.send_raw(b"".join(frame(Tread, t, struct.pack("<IQI", ad, 0, 64)) for t in tags))
print("request limit:", ename(d.read, ad))
# One read answered: one more may wait (and is answered below, not refused now).
e.write(cd, "one")
while True:
    mt, tag, body = d.recv()
    if tag in tags:
        break
print(NAMES[mt], read_data(body))
tags.remove(tag)
t = d.start(Tread, struct.pack("<IQI", ad, 0, 64))
tags.append(t)
# The peer hangs up: every waiting read is answered (end of file).
e.write(cf, "hangup")
left = set(tags)
while left:
    mt, tag, body = d.recv()
    assert tag in left and mt == Rread and read_data(body) == b"", (tag, NAMES.get(mt), body)
    left.remove(tag)
print("answered", len(tags))
"#);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("fid limit: ") && lines[0].contains("16384"),
        "the fid limit's error should name it: {text}"
    );
    assert_eq!(lines[1], "[]");
    assert!(
        lines[2].starts_with("request limit: ") && lines[2].contains("4096"),
        "the request limit's error should name it: {text}"
    );
    assert_eq!(&lines[3..], ["Rread b'one'", "answered 4096"]);
    ex.stop(Signal::SIGTERM);
}

#[test]
fn tcp_serves_loopback_and_any_host_needs_its_flag() {
    // Loopback: served, the same stack as the Unix socket.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let ex = Export::start(&["--listen", &addr]);
    assert!(ex.ready.contains(&format!("tcp:{addr}")), "{}", ex.ready);
    let out = ex.py(&format!(
        r#"
t = Conn.tcp("127.0.0.1", {port})
t.hello()
f, sid = t.sock("stream")
t.write(f, "bind by-tcp && listen")
u = Conn.unix()
u.hello()
print(repr(u.text("local/addrs")), u.status(sid)["state"])
"#
    ));
    assert_eq!(out.ok(), "'by-tcp\\n' listening\n");
    ex.stop(Signal::SIGTERM);

    // Any host: refused without --insecure-any-host, and the message names the flag.
    for host in ["0.0.0.0", "[::]"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sock = tmp.path().join("net.9p");
        let a = format!("{host}:{}", free_port());
        let out = wait_out(
            common::ksock()
                .args(["export", "--listen", &a, "--socket"])
                .arg(&sock)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ksock export"),
            "ksock export --listen on any host",
        );
        assert!(
            !out.status.success() && out.stderr.contains("--insecure-any-host"),
            "--listen {a}: {}\n{}",
            out.status,
            out.stderr
        );
    }
    // With the flag it is served.
    let port = free_port();
    let a = format!("0.0.0.0:{port}");
    let ex = Export::start(&["--listen", &a, "--insecure-any-host"]);
    assert!(ex.ready.contains("tcp:"), "{}", ex.ready);
    let out = ex.py(&format!(
        "t = Conn.tcp('127.0.0.1', {port})\nprint(t.version(8192))\n"
    ));
    assert_eq!(out.ok(), "(8192, '9P2000')\n");
    ex.stop(Signal::SIGTERM);
}

#[test]
fn stdio_speaks_9p_on_its_pipes_and_ends_with_its_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(
        python(
            &tmp.path().join("unused"),
            r#"
import subprocess
p = subprocess.Popen([KSOCK, "export", "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
c = Conn(p.stdout.fileno(), p.stdin.fileno())
print(c.version(65536))
root = c.attach()[0]
print(sorted(c.ls("local")))
f, sid = c.sock("stream")
c.write(f, "bind over-stdio && listen")
print(repr(c.text("local/addrs")), c.status(sid)["state"])
fa, _ = c.walk("local/addrs")
c.topen(fa, OREAD)
print(c.read(fa))
p.stdin.close()
print(p.wait(timeout=PATIENCE), p.stdout.read())
"#,
        ),
        "ksock export --stdio",
    );
    assert_eq!(
        out.ok(),
        "(65536, '9P2000')\n\
         ['addrs', 'dgram', 'seqpacket', 'stream']\n\
         'over-stdio\\n' listening\n\
         b'over-stdio\\n'\n\
         0 b''\n"
    );
}

#[test]
fn mount_with_export_shares_one_namespace() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("run/net.9p");
    let net = Net::mount_with(&[
        "--allow-other",
        "--export",
        "--socket",
        sock.to_str().expect("utf-8 path"),
    ]);
    // A socket made through the mount, held by a process.
    let mut holder = net.spawn_py_with_stdin(
        r#"
s, sid = sock("seqpacket")
ctl(s, "bind fused && listen")
print(sid, os.stat(f"{N}/{sid}/status").st_ino, flush=True)
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
print(os.read(a, 100).decode(), flush=True)
os.write(a, b"from fuse")
sys.stdin.read()
"#,
    );
    let first = read_line(&mut holder);
    let mut it = first.split_whitespace();
    let (sid, ino) = (
        it.next().expect("an id").to_string(),
        it.next().expect("an inode").to_string(),
    );
    let mut cmd = python(
        &sock,
        &format!(
            r#"
N = os.environ["N"]
c = Conn.unix()
c.hello()
f, qs = c.walk("local/{sid}/status")
print(qs[-1]["path"] == {ino})
st = c.status("{sid}")
print(st["state"], st["local"])
print(repr(c.text("local/addrs")))
cf, cid = c.sock()
c.write(cf, "connect fused")
cd = c.open(f"local/{{cid}}/data")
c.write(cd, "from 9p")
print(c.read(cd))
# Made through 9P, seen through the mount.
print(os.path.isdir(f"{{N}}/{{cid}}"), "state connected" in open(f"{{N}}/{{cid}}/status").read())
print(cid, flush=True)
"#
        ),
    );
    cmd.env("N", net.local());
    let out = run(cmd, "9P client of ksock mount --export");
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..lines.len().min(5)],
        [
            "True",
            "listening fused",
            "'fused\\n'",
            "b'from fuse'",
            "True True"
        ],
        "{text}"
    );
    let cid: u64 = lines
        .get(5)
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no id of the 9P socket:\n{text}"));
    assert_eq!(read_line(&mut holder), "from 9p\n");
    // The 9P client went: its socket ends, in the mount too.
    wait_until("the 9P client's socket ends", || {
        !net.socket_ids().contains(&cid)
    });
    drop(holder.stdin.take());
    wait_out(holder, "the holder").ok();
    net.finish();
}
