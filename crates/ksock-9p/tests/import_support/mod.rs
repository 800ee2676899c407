//! A tree served by the crate's 9P server and imported (FUSE) in this process, driven by
//! other processes (sh, python3). Needs root and `/dev/fuse`; without them the tests fail,
//! loudly: they never skip.

#![allow(dead_code)]

use ksock_9p::client::Client;
use ksock_9p::import::{Import, ImportOptions};
use ksock_9p::server::{Config, Peer, Server};
use ksock_netfs::NetFs;
use std::fs;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one step may take before a test gives up (protection against hangs, not a
/// measurement).
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(
            self.status.success(),
            "failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }
}

/// Waits for `child`; kills it and panics past the patience above.
#[track_caller]
pub fn wait_out(mut child: Child, what: &str) -> Out {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {PATIENCE:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Out {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Reads one line of the child's output (leaving the rest for [`wait_out`]).
#[track_caller]
pub fn read_line(child: &mut Child) -> String {
    let out = child.stdout.as_mut().expect("piped stdout");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).expect("read child output") == 1 {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Waits until `cond` holds, with the patience above.
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until process `pid` sits in system call `nrs` (x86_64, aarch64 numbers).
#[track_caller]
pub fn wait_in_syscall(pid: u32, name: &str, nrs: [&str; 2]) {
    wait_until(&format!("the process blocks in {name}"), || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        assert!(
            !matches!(state, None | Some("Z" | "X")),
            "process {pid} ended instead of blocking in {name}"
        );
        fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|s| {
            s.split_whitespace()
                .next()
                .is_some_and(|n| nrs.contains(&n))
        })
    });
}

/// Helpers for python3 scripts: `N` is the imported `local` directory.
pub const PY_PRELUDE: &str = r#"
import os, sys, errno, fcntl, signal, time
N = os.environ["N"]

def sock(ty="seqpacket", flags=os.O_RDWR):
    """Opens a factory: the handle (the socket's ctl) and the socket's id."""
    fd = os.open(f"{N}/{ty}", flags)
    sid = b""
    while True:
        b = os.read(fd, 64)
        if not b:
            break
        sid += b
    return fd, sid.decode()

def ctl(fd, text):
    return os.write(fd, text.encode())

def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return errno.errorcode[e.errno]
    return "OK"

def text(path):
    with open(path) as f:
        return f.read()

class Alarm(Exception):
    pass

def alarm(*_):
    raise Alarm()

signal.signal(signal.SIGALRM, alarm)
"#;

/// Replies of one 9P type held back on their way to the import while `on`, to open a
/// window between two steps of a request (a test's signal lands there).
pub struct Hold {
    /// The `R` message type held (`Ropen` is 113).
    pub ty: u8,
    on: Mutex<bool>,
    changed: Condvar,
    /// How many replies have been held so far.
    pub held: AtomicUsize,
}

impl Hold {
    pub fn set(&self, on: bool) {
        *self.on.lock().expect("hold") = on;
        self.changed.notify_all();
    }

    fn wait(&self) {
        let mut on = self.on.lock().expect("hold");
        if *on {
            self.held.fetch_add(1, Ordering::AcqRel);
        }
        let deadline = Instant::now() + PATIENCE;
        while *on && Instant::now() < deadline {
            on = self
                .changed
                .wait_timeout(on, Duration::from_millis(50))
                .expect("hold")
                .0;
        }
    }
}

/// Forwards the server's messages to the import, holding those of `hold.ty` while it is on.
fn relay(mut from: UnixStream, mut to: UnixStream, hold: Arc<Hold>) {
    loop {
        let mut head = [0u8; 5];
        if from.read_exact(&mut head).is_err() {
            break;
        }
        let size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let mut msg = head.to_vec();
        msg.resize(size.max(5), 0);
        if from.read_exact(&mut msg[5..]).is_err() {
            break;
        }
        if head[4] == hold.ty {
            hold.wait();
        }
        if to.write_all(&msg).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

/// A served tree and its import.
pub struct Imported {
    pub server: Arc<Server>,
    pub import: Option<Import>,
    pub root: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Imported {
    /// Serves a fresh stack (the local family) and imports it at a new directory, with
    /// `allow_other` so that other users can be tested.
    #[track_caller]
    pub fn new() -> Imported {
        Self::with(None)
    }

    /// [`new`](Self::new), with the server's replies relayed through `hold`.
    #[track_caller]
    pub fn held(hold: Arc<Hold>) -> Imported {
        Self::with(Some(hold))
    }

    /// A [`Hold`] of replies of type `ty`, off.
    pub fn hold(ty: u8) -> Arc<Hold> {
        Arc::new(Hold {
            ty,
            on: Mutex::new(false),
            changed: Condvar::new(),
            held: AtomicUsize::new(0),
        })
    }

    #[track_caller]
    fn with(hold: Option<Arc<Hold>>) -> Imported {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the import tests must run as root (they mount a file system)"
        );
        assert!(
            Path::new("/dev/fuse").exists(),
            "/dev/fuse is missing: the import tests cannot run (load the fuse module)"
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        // Other users must be able to reach the mount point.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = tmp.path().join("net");
        fs::create_dir(&root).expect("mount point");
        let config = ksock_netfs::Config {
            root_uid: nix::unistd::getuid().as_raw(),
            root_gid: nix::unistd::getgid().as_raw(),
            ..ksock_netfs::Config::default()
        };
        let netfs = NetFs::with_config(ksock::Stack::new(), config);
        let server = Server::new(netfs, Config::default()).expect("server");
        let (a, b) = UnixStream::pair().expect("socket pair");
        let (b_in, b_out) = match hold {
            None => (b.try_clone().expect("clone"), b),
            Some(hold) => {
                // The import's requests go straight on; the server's replies through the hold.
                // a (the import) <-> b (relay) ... c (relay) <-> d (the server)
                let (c, d) = UnixStream::pair().expect("socket pair");
                let mut b_rd = b.try_clone().expect("clone");
                let mut c_wr = c.try_clone().expect("clone");
                thread::spawn(move || {
                    let _ = std::io::copy(&mut b_rd, &mut c_wr);
                    let _ = c_wr.shutdown(Shutdown::Write);
                });
                thread::spawn(move || relay(c, b, hold));
                (d.try_clone().expect("clone"), d)
            }
        };
        server
            .serve(Box::new(b_in), Box::new(b_out), Peer::me())
            .expect("serve");
        let client = Client::from_unix(a, 1 << 20).expect("9P session");
        let opts = ImportOptions {
            allow_other: true,
            ..ImportOptions::default()
        };
        let import = ksock_9p::import::import(client, &root, &opts).expect("import");
        assert_eq!(import.families(), ["local"]);
        Imported {
            server,
            import: Some(import),
            root,
            _tmp: tmp,
        }
    }

    pub fn m(&self) -> &Import {
        self.import.as_ref().expect("mounted")
    }

    pub fn netfs(&self) -> &NetFs {
        self.server.netfs()
    }

    pub fn local(&self) -> PathBuf {
        self.root.join("local")
    }

    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("N", self.local())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    pub fn spawn_sh(&self, script: &str) -> Child {
        self.command("sh")
            .args(["-c", script])
            .spawn()
            .expect("spawn sh")
    }

    #[track_caller]
    pub fn sh(&self, script: &str) -> Out {
        wait_out(self.spawn_sh(script), script)
    }

    pub fn spawn_py(&self, script: &str) -> Child {
        self.command("python3")
            .args(["-c", &format!("{PY_PRELUDE}\n{script}")])
            .spawn()
            .expect("spawn python3 (is it installed?)")
    }

    /// Like [`spawn_py`](Self::spawn_py), with the script's stdin piped to the test.
    pub fn spawn_py_with_stdin(&self, script: &str) -> Child {
        self.command("python3")
            .args(["-c", &format!("{PY_PRELUDE}\n{script}")])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn python3 (is it installed?)")
    }

    #[track_caller]
    pub fn py(&self, script: &str) -> Out {
        wait_out(self.spawn_py(script), script)
    }

    /// Runs a python3 script as user `uid` (and group `uid`), with the helpers: the
    /// system's python3, which any user may run (a shim in root's home may not be).
    #[track_caller]
    pub fn py_as(&self, uid: u32, script: &str) -> Out {
        let id = uid.to_string();
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let child = self
            .command("setpriv")
            .args([
                "--reuid",
                &id,
                "--regid",
                &id,
                "--clear-groups",
                python,
                "-c",
            ])
            .arg(format!("{PY_PRELUDE}\n{script}"))
            .spawn()
            .expect("spawn setpriv (util-linux)");
        wait_out(child, script)
    }

    /// The ids of the live sockets, as the served namespace has them.
    pub fn socket_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .netfs()
            .stack()
            .sockets()
            .iter()
            .map(|s| s.id)
            .collect();
        ids.sort();
        ids
    }

    /// Waits until the stack has no socket, and the mount no request, file or attach.
    #[track_caller]
    pub fn assert_all_gone(&self) {
        wait_until("every socket ends", || self.socket_ids().is_empty());
        wait_until("every file closes", || self.m().open_files() == 0);
        wait_until("every process attach ends", || self.m().attaches() == 0);
        wait_until("no request is left", || self.m().requests() == 0);
        assert_eq!(self.server.parked(), 0, "no 9P request waits");
    }

    /// Unmounts, checking that it is clean.
    #[track_caller]
    pub fn finish(mut self) {
        if let Some(m) = self.import.take() {
            let how = m.unmount().expect("unmount");
            assert_eq!(how, ksock_fuse::Unmounted::Clean);
        }
    }
}
