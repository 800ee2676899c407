// The scenarios of tests/interrupts.rs, run through a local mount by that binary and
// through `ksock export` and `ksock import` by tests/import_interrupts.rs (see common).
// The scenarios only a local mount can run are marked `local_mount_only!`, with the
// reason.

use common::{Net, wait_out};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

local_mount_only! {
    "a tree mounted in the test process, for the local-mount tests below",
    items:
    use common::{Out, PY_PRELUDE, wait_until};
    use ksock_fuse::{Mount, MountOptions, Unmounted};
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Child, Stdio};

    /// A tree mounted by this process, used by others.
    struct Here {
        mount: Option<Mount>,
        root: PathBuf,
        _tmp: tempfile::TempDir,
    }

    impl Here {
        #[track_caller]
        fn mount() -> Here {
            assert!(
                nix::unistd::geteuid().is_root(),
                "the FUSE tests must run as root (they mount a file system)"
            );
            assert!(
                Path::new("/dev/fuse").exists(),
                "/dev/fuse is missing: the FUSE tests cannot run (load the fuse module)"
            );
            let tmp = tempfile::tempdir().expect("tempdir");
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
            let root = tmp.path().join("net");
            fs::create_dir(&root).expect("mount point");
            let netfs = ksock_fuse::host_netfs(ksock::Stack::new());
            let opts = MountOptions {
                allow_other: true,
                threads: 4,
                nonempty: false,
            };
            let mount = ksock_fuse::mount(netfs, &root, &opts).expect("mount");
            Here {
                mount: Some(mount),
                root,
                _tmp: tmp,
            }
        }

        fn m(&self) -> &Mount {
            self.mount.as_ref().expect("mounted")
        }

        fn local(&self) -> PathBuf {
            self.root.join("local")
        }

        fn spawn_py(&self, script: &str) -> Child {
            Command::new("python3")
                .args(["-c", &format!("{PY_PRELUDE}\n{script}")])
                .env("N", self.local())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn python3 (is it installed?)")
        }

        #[track_caller]
        fn py(&self, script: &str) -> Out {
            let mut child = self.spawn_py(script);
            drop(child.stdin.take());
            wait_out(child, script)
        }

        fn socket_ids(&self) -> Vec<u64> {
            let mut ids: Vec<u64> = fs::read_dir(self.local())
                .expect("list local")
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            ids.sort();
            ids
        }

        /// Checks that no socket is left and no process watched, and unmounts.
        #[track_caller]
        fn finish(mut self) {
            wait_until("every socket ends", || self.socket_ids().is_empty());
            wait_until("no process is watched", || self.m().watched() == 0);
            // The kernel releases the files of an exited process asynchronously, possibly after
            // its sockets ended (a pidfd says so at once).
            wait_until("every file is released", || self.m().open_files() == 0);
            let m = self.mount.take().expect("mounted");
            // A file the kernel has not released yet makes the unmount a detach; either way
            // the tree must be gone.
            let how = m.unmount().expect("unmount");
            assert!(matches!(how, Unmounted::Clean | Unmounted::Detached));
            assert!(
                !fs::read_to_string("/proc/self/mountinfo")
                    .expect("mountinfo")
                    .contains(&*self.root.to_string_lossy()),
                "still mounted after {how:?}"
            );
        }
    }

    /// The Python helper that waits until a process (or one of its threads) blocks in a given
    /// system call (x86_64 and aarch64 numbers).
    const PY_WAIT_IN: &str = r#"
CALLS = {"read": ("0", "63"), "write": ("1", "64"), "open": ("257", "56")}
def wait_in(pid, call, tid=None):
    path = f"/proc/{pid}/task/{tid}/syscall" if tid else f"/proc/{pid}/syscall"
    while open(path).read().split()[0] not in CALLS[call]:
        time.sleep(0.002)
"#;
}

local_mount_only! {
    "local mount only: it mounts in the test process (ksock_fuse) and reads that mount's counters",
    #[test]
    fn a_caught_signal_interrupts_a_blocked_read_through_fuse_interrupt() {
        let here = Here::mount();
        let out = here.py(&format!(
            r#"{PY_WAIT_IN}
import subprocess, signal
s, sid = sock()
ctl(s, "bind sig && listen")
child = subprocess.Popen([sys.executable, "-c", f"""
import os, signal
class Poked(Exception):
    pass
def poke(*_):
    raise Poked()
signal.signal(signal.SIGUSR1, poke)
c = os.open('{{N}}/seqpacket', os.O_RDWR)
cid = os.read(c, 64).decode()
os.write(c, b'connect sig')
d = os.open('{{N}}/' + cid + '/data', os.O_RDWR)
print('ready', flush=True)
try:
    os.read(d, 100)
except Poked:
    print('interrupted by the handler', flush=True)
print(os.read(d, 100).decode(), flush=True)
"""], stdout=subprocess.PIPE)
# Its next read is the one on data (Python reads files as it starts).
child.stdout.readline()
wait_in(child.pid, "read")
child.send_signal(signal.SIGUSR1)
print(child.stdout.readline().decode().strip())
wait_in(child.pid, "read")
a = os.open(f"{{N}}/{{sid}}/accept", os.O_RDWR)
os.write(a, b"still connected")
print(child.stdout.readline().decode().strip())
print(child.wait())
"#
        ));
        assert_eq!(out.ok(), "interrupted by the handler\nstill connected\n0\n");
        assert_eq!(here.m().interrupts(), 1, "answered through FUSE_INTERRUPT");
        here.finish();
    }
}

local_mount_only! {
    "local mount only: it mounts in the test process (ksock_fuse) and reads that mount's counters",
    #[test]
    fn kill_9_frees_a_client_blocked_in_read_and_ends_its_socket() {
        let here = Here::mount();
        let mut parent = here.spawn_py(&format!(
            r#"{PY_WAIT_IN}
import subprocess, signal
s, sid = sock()
ctl(s, "bind victim && listen")
child = subprocess.Popen([sys.executable, "-c", f"""
import os
c = os.open('{{N}}/seqpacket', os.O_RDWR)
cid = os.read(c, 64).decode()
os.write(c, b'connect victim')
d = os.open('{{N}}/' + cid + '/data', os.O_RDWR)
print(cid, flush=True)
os.read(d, 100)
"""], stdout=subprocess.PIPE)
cid = child.stdout.readline().decode().strip()
wait_in(child.pid, "read")
# A read the mount has not yet received would just be dropped by the kernel: wait until
# the test has seen it parked.
print("blocked", flush=True)
sys.stdin.readline()
child.send_signal(signal.SIGKILL)
print(child.wait())
# Gone: no process, and (a moment later) no socket; the server's end sees end of file.
print(os.path.exists(f"/proc/{{child.pid}}"))
while os.path.exists(f"{{N}}/{{cid}}"):
    time.sleep(0.005)
a = os.open(f"{{N}}/{{sid}}/accept", os.O_RDWR)
print(os.read(a, 100))
"#
        ));
        assert_eq!(common::read_line(&mut parent), "blocked\n");
        wait_until("the read is parked", || here.m().parked() == 1);
        {
            use std::io::Write;
            let mut stdin = parent.stdin.take().expect("stdin");
            stdin.write_all(b"go\n").expect("tell the killer");
        }
        let out = wait_out(parent, "the killer");
        assert_eq!(out.ok(), "-9\nFalse\nb''\n");
        assert_eq!(here.m().interrupts(), 1, "answered through FUSE_INTERRUPT");
        here.finish();
    }
}

local_mount_only! {
    "local mount only: it mounts in the test process (ksock_fuse) and reads that mount's counters",
    #[test]
    fn a_blocked_accept_and_a_blocked_connect_are_interrupted() {
        let here = Here::mount();
        let out = here.py(&format!(
            r#"{PY_WAIT_IN}
import subprocess, signal
s, sid = sock()
ctl(s, "bind full && listen 1")
# One call waits in the backlog: the next connect must wait for room.
first, _ = sock()
ctl(first, "connect full")
s2, sid2 = sock()
ctl(s2, "bind idle && listen")
child = subprocess.Popen([sys.executable, "-c", f"""
import os, signal, errno
class Poked(Exception):
    pass
def poke(*_):
    raise Poked()
signal.signal(signal.SIGUSR1, poke)
print('accept', flush=True)
try:
    os.open('{{N}}/{{sid2}}/accept', os.O_RDWR)
except Poked:
    print('accept interrupted', flush=True)
c = os.open('{{N}}/seqpacket', os.O_RDWR)
os.read(c, 64)
print('connect', flush=True)
try:
    os.write(c, b'connect full')
except Poked:
    print('connect interrupted', flush=True)
"""], stdout=subprocess.PIPE)
print(child.stdout.readline().decode().strip())
wait_in(child.pid, "open")
child.send_signal(signal.SIGUSR1)
print(child.stdout.readline().decode().strip())
print(child.stdout.readline().decode().strip())
wait_in(child.pid, "write")
child.send_signal(signal.SIGUSR1)
print(child.stdout.readline().decode().strip())
print(child.wait())
"#
        ));
        assert_eq!(
            out.ok(),
            "accept\naccept interrupted\nconnect\nconnect interrupted\n0\n"
        );
        assert_eq!(here.m().interrupts(), 2, "answered through FUSE_INTERRUPT");
        here.finish();
    }
}

local_mount_only! {
    "local mount only: it mounts in the test process (ksock_fuse) and reads that mount's counters",
    #[test]
    fn an_sa_restart_handler_still_gets_eintr_from_a_blocked_read() {
        // Linux restarts a socket's blocked recv after a handler installed with SA_RESTART; a
        // FUSE reply cannot ask for that (ERESTARTSYS is refused), so read(2) returns EINTR.
        // The read is made with ctypes, so that Python's own EINTR retry does not hide it.
        let here = Here::mount();
        let out = here.py(&format!(
            r#"{PY_WAIT_IN}
import subprocess, signal
s, sid = sock()
ctl(s, "bind restart && listen")
child = subprocess.Popen([sys.executable, "-c", f"""
import os, signal, ctypes, errno
ran = []
signal.signal(signal.SIGUSR1, lambda *_: ran.append(1))
signal.siginterrupt(signal.SIGUSR1, False)
libc = ctypes.CDLL(None, use_errno=True)
c = os.open('{{N}}/seqpacket', os.O_RDWR)
cid = os.read(c, 64).decode()
os.write(c, b'connect restart')
d = os.open('{{N}}/' + cid + '/data', os.O_RDWR)
buf = ctypes.create_string_buffer(100)
print('ready', flush=True)
r = libc.read(d, buf, 100)
e = ctypes.get_errno()
print(r, errno.errorcode.get(e, e) if r < 0 else '', flush=True)
print('handler ran', len(ran), flush=True)
"""], stdout=subprocess.PIPE)
child.stdout.readline()
wait_in(child.pid, "read")
child.send_signal(signal.SIGUSR1)
print(child.stdout.readline().decode().strip())
print(child.stdout.readline().decode().strip())
print(child.wait())
"#
        ));
        assert_eq!(out.ok(), "-1 EINTR\nhandler ran 1\n0\n");
        assert_eq!(here.m().interrupts(), 1);
        here.finish();
    }
}

local_mount_only! {
    "local mount only: it mounts in the test process (ksock_fuse) and reads that mount's counters",
    #[test]
    fn an_exited_process_sockets_end_and_it_is_no_longer_watched() {
        let here = Here::mount();
        let mut child = here.spawn_py(
            r#"
ids = []
for ty in ("stream", "seqpacket", "dgram"):
    fd, sid = sock(ty)
    os.close(fd)
    ids.append(sid)
print(" ".join(ids), flush=True)
sys.stdin.read()
"#,
        );
        let ids = common::read_line(&mut child);
        let ids: Vec<u64> = ids
            .split_whitespace()
            .map(|i| i.parse().expect("an id"))
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        // Closed, they live with their creator: one process watched, once.
        assert_eq!(here.socket_ids(), ids);
        assert_eq!(here.m().watched(), 1);
        drop(child.stdin.take());
        wait_out(child, "the creator").ok();
        wait_until("the creator's sockets end", || here.socket_ids().is_empty());
        wait_until("the creator is forgotten", || here.m().watched() == 0);
        here.finish();
    }
}

/// Compiles `src` with gcc into `dir` and returns the program's path.
#[track_caller]
fn gcc(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    fs::write(&c, src).expect("write C source");
    let out = Command::new("gcc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&exe)
        .arg(&c)
        .output()
        .expect("run gcc (is it installed?)");
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// The main thread creates a socket, connects it, closes every file, starts a thread and
/// calls `pthread_exit`. The thread, told to go on stdin, opens the socket's `data` again
/// and echoes one record.
const MAIN_EXITS: &str = r#"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[2048], id[64];

static void *worker(void *arg) {
    char line[16], path[4096], buf[100];
    (void)arg;
    if (read(0, line, sizeof line) <= 0) exit(2);
    snprintf(path, sizeof path, "%s/%s/data", dir, id);
    int d = open(path, O_RDWR);
    if (d < 0) { perror("open data"); exit(3); }
    ssize_t n = read(d, buf, sizeof buf);
    if (n <= 0) { perror("read"); exit(4); }
    if (write(d, buf, n) != n) { perror("write"); exit(5); }
    printf("echoed %.*s\n", (int)n, buf);
    fflush(stdout);
    exit(0);
}

int main(int argc, char **argv) {
    char path[4096], cmd[256];
    pthread_t t;
    if (argc != 3) return 1;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    snprintf(path, sizeof path, "%s/seqpacket", dir);
    int c = open(path, O_RDWR);
    if (c < 0) { perror("open factory"); return 1; }
    ssize_t n = read(c, id, sizeof id - 1);
    if (n <= 0) { perror("read id"); return 1; }
    id[n] = 0;
    snprintf(cmd, sizeof cmd, "connect %s", argv[2]);
    if (write(c, cmd, strlen(cmd)) < 0) { perror("connect"); return 1; }
    close(c);
    printf("%s\n", id);
    fflush(stdout);
    if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
    pthread_exit(NULL);
}
"#;

#[test]
fn a_main_thread_that_calls_pthread_exit_keeps_the_process_sockets() {
    let net = Net::mount();
    let tmp = tempfile::tempdir().expect("tempdir");
    let prog = gcc(tmp.path(), "main_exits", MAIN_EXITS);
    let out = net.py(&format!(
        r#"
import subprocess
s, sid = sock()
ctl(s, "bind pt && listen")
child = subprocess.Popen(["{prog}", N, "pt"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
cid = child.stdout.readline().decode().strip()
# The main thread has exited: the leader is a zombie while the worker runs.
def state(pid):
    return open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[0]
while state(child.pid) != "Z":
    time.sleep(0.005)
print("leader", state(child.pid), len(os.listdir(f"/proc/{{child.pid}}/task")))
# Its socket, closed everywhere, lives on with the process.
time.sleep(1)
print(os.path.exists(f"{{N}}/{{cid}}"))
a = os.open(f"{{N}}/{{sid}}/accept", os.O_RDWR)
os.write(a, b"ping")
child.stdin.write(b"go\n")
child.stdin.flush()
print(os.read(a, 100))
print(child.stdout.readline().decode().strip())
print(child.wait())
# Now the whole process has exited: its socket ends, the server sees end of file.
print(os.read(a, 100))
while os.path.exists(f"{{N}}/{{cid}}"):
    time.sleep(0.005)
"#,
        prog = prog.display()
    ));
    assert_eq!(out.ok(), "leader Z 2\nTrue\nb'ping'\nechoed ping\n0\nb''\n");
    net.finish();
}

/// The context switches of every thread of `pid` so far.
fn switches(pid: u32) -> u64 {
    let mut n = 0;
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).expect("tasks of the mount");
    for t in tasks.flatten() {
        let status = fs::read_to_string(t.path().join("status")).unwrap_or_default();
        n += status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    n
}

#[test]
fn parked_requests_cost_nothing_while_nothing_happens() {
    // Nothing wakes on behalf of parked requests (no thread of the mount runs at all) until
    // a socket, a caller or a process does something.
    const READERS: usize = 200;
    let net = Net::mount();
    let mut child = net.spawn_py_with_stdin(&format!(
        r#"
import threading
s, sid = sock()
ctl(s, "bind quiet && listen")
c, cid = sock()
ctl(c, "connect quiet")
a = os.open(f"{{N}}/{{sid}}/accept", os.O_RDWR)
fds = [os.open(f"{{N}}/{{cid}}/data", os.O_RDWR) for _ in range({READERS})]
threads = [threading.Thread(target=os.read, args=(fd, 100)) for fd in fds]
for t in threads:
    t.start()
tids = [t.native_id for t in threads]
def blocked(tid):
    return open(f"/proc/self/task/{{tid}}/syscall").read().split()[0] in ("0", "63")
while not all(blocked(t) for t in tids):
    time.sleep(0.01)
print("parked", flush=True)
sys.stdin.readline()
for i in range({READERS}):
    os.write(a, b"r")
for t in threads:
    t.join()
print("woken", flush=True)
"#
    ));
    assert_eq!(common::read_line(&mut child), "parked\n");
    // Every process that serves the tree: the mount (through an import, the import and
    // the export).
    let pids = net.server_pids();
    let before: u64 = pids.iter().map(|&p| switches(p)).sum();
    let since = Instant::now();
    while since.elapsed() < Duration::from_secs(1) {
        thread::sleep(Duration::from_millis(100));
    }
    let after: u64 = pids.iter().map(|&p| switches(p)).sum();
    assert_eq!(
        after - before,
        0,
        "the mount's threads ran {} times in 1 s while {READERS} requests were parked",
        after - before
    );
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("tell the readers' process");
    }
    let out = wait_out(child, "the readers");
    assert_eq!(out.ok(), "woken\n");
    net.finish();
}
