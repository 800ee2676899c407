// The scenarios of tests/fuse_files.rs, run through a local mount by that binary and
// through `ksock export` and `ksock import` by tests/import_fuse_files.rs (see common).
// The scenarios only a local mount can run are marked `local_mount_only!`, with the
// reason.

use common::{Net, Out, ksock, wait_out};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a step that should finish at once may take before the test calls it stuck.
const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until process `pid` sits in write(2) (syscall 1 on x86_64, 64 on aarch64).
#[track_caller]
fn wait_in_write(pid: u32) {
    common::wait_in_syscall(pid, "write", ["1", "64"]);
}

/// Waits up to [`DEADLINE`] for `child` to end; `None` (still running) after that.
fn ends_within_deadline(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Kills `child` with SIGKILL and waits for it with the patience of `common`.
fn kill_and_reap(mut child: Child) {
    let _ = child.kill();
    let _ = wait_out(child, "a killed helper");
}

#[test]
fn a_connect_parked_through_a_factory_handle_holds_up_no_other_write() {
    let net = Net::mount();
    // A listener whose backlog (1) is full, and another socket, kept by a holder process.
    let mut holder = net.spawn_py(
        r#"
s, sid = sock("stream")
ctl(s, "bind full && listen 1")
c, cid = sock("stream")
ctl(c, "connect full")
o, oid = sock("stream")
print(oid, flush=True)
time.sleep(600)
"#,
    );
    let other = common::read_line(&mut holder).trim().to_string();
    assert!(!other.is_empty(), "the holder did not start");
    // The README's usage: a factory handle as ctl; this connect waits for the backlog.
    let parked = net.spawn_sh(r#"exec 3<>$N/stream; echo "connect full" >&3; echo connected"#);
    wait_in_write(parked.id());
    // Another process, another factory handle of the same type (the same inode), and
    // another socket's ctl: both writes complete while the connect waits.
    let mut writer = net.spawn_sh(&format!(
        r#"set -e
        exec 3<>$N/stream
        echo "bind other && listen" >&3
        echo "bind other2 && listen" > $N/{other}/ctl
        cat $N/addrs
        "#
    ));
    if ends_within_deadline(&mut writer).is_none() {
        kill_and_reap(parked);
        kill_and_reap(holder);
        panic!("a write through another factory handle waited for the parked connect");
    }
    let out = wait_out(writer, "writer");
    let mut names: Vec<String> = out.ok().lines().map(str::to_string).collect();
    names.sort();
    assert_eq!(names, ["full", "other", "other2"]);
    // A second connect parks beside the first, and SIGKILL ends it at once.
    let mut victim = net.spawn_sh(r#"exec 3<>$N/stream; echo "connect full" >&3"#);
    wait_in_write(victim.id());
    victim.kill().expect("SIGKILL");
    let st = ends_within_deadline(&mut victim);
    if st.is_none() {
        kill_and_reap(parked);
        kill_and_reap(holder);
        panic!("a killed writer stayed behind the parked connect");
    }
    assert!(st.is_some_and(|s| !s.success()));
    // The first connect still waits; killing it frees it too.
    let mut parked = parked;
    assert!(parked.try_wait().expect("wait").is_none());
    parked.kill().expect("SIGKILL");
    assert!(
        ends_within_deadline(&mut parked).is_some(),
        "the parked connect survived SIGKILL"
    );
    kill_and_reap(holder);
    net.finish();
}

#[test]
fn a_server_write_blocked_on_one_client_stalls_no_other_client() {
    let net = Net::mount();
    let out = net.py(r#"
import fcntl, subprocess
s, sid = sock("stream")
ctl(s, "bind srv && listen")
c1, c1id = sock("stream")
ctl(c1, "connect srv")
c2, c2id = sock("stream")
ctl(c2, "connect srv")
# Both connections accepted through the listener's one `accept` file: one inode.
a1 = os.open(f"{N}/{sid}/accept", os.O_RDWR)
a2 = os.open(f"{N}/{sid}/accept", os.O_RDWR)
d1 = os.open(f"{N}/{c1id}/data", os.O_RDWR)
d2 = os.open(f"{N}/{c2id}/data", os.O_RDWR)
BIG = 4 << 20
def in_write(tid):
    return open(f"/proc/{os.getpid()}/task/{tid}/syscall").read().split()[0] in ("1", "64")
# Client 1 never reads: the server's write to it fills the buffer and waits.
t1 = threading.Thread(target=lambda: os.write(a1, b"x" * BIG))
t1.start()
while not in_write(t1.native_id):
    time.sleep(0.005)
sent = []
def to_client_2():
    fl = fcntl.fcntl(a2, fcntl.F_GETFL)
    fcntl.fcntl(a2, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    sent.append(os.write(a2, b"nonblocking "))
    fcntl.fcntl(a2, fcntl.F_SETFL, fl)
    sent.append(os.write(a2, b"blocking"))
t2 = threading.Thread(target=to_client_2)
t2.start()
t2.join(10)
print("stalled" if t2.is_alive() else sent, flush=True)
# Another process writing to client 1 waits too, and SIGKILL ends it.
kid = subprocess.Popen([sys.executable, "-c", f"import os; os.write({a1}, b'y' * {BIG})"],
                       pass_fds=(a1,))
while open(f"/proc/{kid.pid}/syscall").read().split()[0] not in ("1", "64"):
    time.sleep(0.005)
kid.kill()
try:
    print(kid.wait(10), flush=True)
except subprocess.TimeoutExpired:
    print("unkillable", flush=True)
# Client 1 reads at last: everything moves.
got = 0
while t1.is_alive() or got < BIG:
    r, _, _ = select.select([d1], [], [], 0.1)
    if r:
        got += len(os.read(d1, 1 << 20))
    if got >= BIG and not t1.is_alive():
        break
t1.join()
t2.join()
kid.wait()
print(got >= BIG)
want = b"nonblocking blocking"
buf = b""
while len(buf) < len(want):
    buf += os.read(d2, 100)
print(buf)
"#);
    assert_eq!(out.ok(), "[12, 8]\n-9\nTrue\nb'nonblocking blocking'\n");
    net.finish();
}

#[test]
fn a_private_mapping_of_data_takes_no_record() {
    let net = Net::mount();
    let out = net.py(r#"
import subprocess, signal
s, sid = sock()
ctl(s, "bind mm && listen")
c, cid = sock()
ctl(c, "connect mm")
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
os.write(a, b"one")
os.write(a, b"two")
r = subprocess.run([sys.executable, "-c", f"""
import os, mmap
fd = os.open('{N}/{cid}/data', os.O_RDONLY)
try:
    # (Python maps no more than st_size says.)
    size = min(4096, os.fstat(fd).st_size)
    m = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
except OSError as e:
    print('refused', e.errno, flush=True)
    raise SystemExit(0)
print('mapped', flush=True)
print('read through the mapping', m[0], flush=True)
"""], capture_output=True, text=True)
faulted = r.returncode == -signal.SIGBUS
print(faulted or r.stdout.startswith("refused"), flush=True)
# A shared mapping is refused outright.
import mmap
fd = os.open(f"{N}/{cid}/data", os.O_RDONLY)
print(errno_of(mmap.mmap, fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ))
# Both records are still there, whole and in order (a nonblocking handle: nothing waits).
d = os.open(f"{N}/{cid}/data:nonblock", os.O_RDONLY)
print([errno_of(lambda: print(os.read(d, 100))) for _ in range(3)])
"#);
    assert_eq!(
        out.ok(),
        "True\nENODEV\nb'one'\nb'two'\n['OK', 'OK', 'EAGAIN']\n"
    );
    net.finish();
}

#[test]
fn an_open_file_of_an_ended_socket_keeps_its_attributes() {
    let net = Net::mount();
    let out = net.py(r#"
c, cid = sock()
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
before = os.fstat(d)
ctl(c, "hangup")
while os.path.exists(f"{N}/{cid}"):
    time.sleep(0.01)
after = os.fstat(d)
print(oct(after.st_mode), after.st_uid, after.st_ino == before.st_ino)
print(repr(os.read(d, 10)), errno_of(os.write, d, b"x"))
print(errno_of(os.stat, f"{N}/{cid}/data"))
os.close(d)
print(errno_of(os.stat, f"{N}/{cid}/data"))
"#);
    assert_eq!(out.ok(), "0o100600 0 True\nb'' EPIPE\nENOENT\nENOENT\n");
    // `cat` of the open handle reads to end of file, not "No such file or directory".
    let out = net.sh(r#"exec 3<>$N/seqpacket
        id=$(cat <&3)
        exec 4<$N/$id/data
        echo hangup >&3
        cat <&4
        echo "cat: $?"
        "#);
    assert_eq!(out.stdout, "cat: 0\n", "{}", out.stderr);
    assert_eq!(out.stderr, "");
    // And a peer that hangs up is end of file for the server's open handle.
    let out = net.py(r#"
s, sid = sock()
ctl(s, "bind eof && listen")
c, cid = sock()
ctl(c, "connect eof")
a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
ctl(c, "hangup")
os.fstat(a)
print(os.read(a, 10))
"#);
    assert_eq!(out.ok(), "b''\n");
    net.finish();
}

fn start_mount(dir: &Path, args: &[&str]) -> Child {
    ksock()
        .arg("mount")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ksock mount")
}

/// Runs `ksock mount dir args...`, which must fail at once; a mount that starts serving
/// instead is stopped (SIGTERM unmounts it) and the test fails.
#[track_caller]
fn mount_must_fail(dir: &Path, args: &[&str]) -> Out {
    let mut child = start_mount(dir, args);
    if ends_within_deadline(&mut child).is_none() {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let out = wait_out(child, "ksock mount after SIGTERM");
        panic!(
            "ksock mount {} {args:?} mounted instead of refusing:\n{}",
            dir.display(),
            out.stderr
        );
    }
    let out = wait_out(child, "ksock mount");
    assert!(
        !out.status.success(),
        "ksock mount succeeded: {}",
        out.stderr
    );
    out
}

#[test]
fn mounting_over_a_live_tree_is_refused() {
    let net = Net::mount();
    let out = mount_must_fail(&net.root, &[]);
    assert!(
        out.stderr.contains("a ksock tree is already mounted"),
        "{}",
        out.stderr
    );
    // The tree mounted first still serves, and nothing is stacked on it.
    assert_eq!(net.sh("cat $N/seqpacket").ok(), "1");
    net.finish();
}

local_mount_only! {
    "what only the local-mount tests below use",
    items:
    use common::wait_until;
    use std::fs;

    /// Fails loudly where mounting cannot be tested.
    #[track_caller]
    fn need_fuse() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the FUSE tests must run as root (they mount a file system)"
        );
        assert!(
            Path::new("/dev/fuse").exists(),
            "/dev/fuse is missing: the FUSE tests cannot run (load the fuse module)"
        );
    }
}

local_mount_only! {
    "local mount only: it checks the refusals of `ksock mount` itself, on a directory of its own",
    #[test]
    fn mounting_on_a_non_empty_directory_needs_nonempty() {
        need_fuse();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("full");
        fs::create_dir(&dir).expect("mkdir");
        fs::write(dir.join("keep"), "kept\n").expect("write");
        let out = mount_must_fail(&dir, &[]);
        assert!(
            out.stderr.contains("Directory not empty") && out.stderr.contains("--nonempty"),
            "{}",
            out.stderr
        );
        assert_eq!(
            fs::read_to_string(dir.join("keep")).expect("kept"),
            "kept\n"
        );
        // Asked for, it mounts over the files, which come back when it ends.
        let server = start_mount(&dir, &["--nonempty"]);
        wait_until("the tree appears over the files", || {
            dir.join("local").is_dir()
        });
        assert!(
            !dir.join("keep").exists(),
            "the mount does not cover the directory"
        );
        kill(Pid::from_raw(server.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let out = wait_out(server, "ksock mount --nonempty");
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(
            fs::read_to_string(dir.join("keep")).expect("kept"),
            "kept\n"
        );
    }
}

local_mount_only! {
    "local mount only: it checks the refusals of `ksock mount` itself, on a directory of its own",
    #[test]
    fn mounting_on_a_file_says_not_a_directory() {
        need_fuse();
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("file");
        fs::write(&file, "data\n").expect("write");
        let out = mount_must_fail(&file, &[]);
        assert!(out.stderr.contains("Not a directory"), "{}", out.stderr);
        assert!(!out.stderr.contains("File exists"), "{}", out.stderr);
        assert_eq!(fs::read_to_string(&file).expect("file"), "data\n");
        // Below a file: the same.
        let out = mount_must_fail(&file.join("sub"), &[]);
        assert!(out.stderr.contains("Not a directory"), "{}", out.stderr);
    }
}
