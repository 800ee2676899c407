//! A real `ksock mount` in a temporary directory, driven from separate processes.
//!
//! In a test binary whose crate name starts with `import_` ([`VIA_IMPORT`]), the same tree
//! is served by a pair instead: `ksock export` on a Unix socket in the temporary directory,
//! and `ksock import` of it at the same place, so that each scenario runs through 9P as
//! well as through the local mount (`tests/scenarios/`, included by both binaries).
//!
//! These tests need root and `/dev/fuse`. Without them they fail, loudly: they never skip.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one step may take before the test gives up (protection against hangs, not
/// a measurement).
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

/// Waits for `child` with the patience above; kills it and panics if it takes longer.
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

/// Waits until process `pid` sits in read(2) (syscall 0 on x86_64, 63 on aarch64).
#[track_caller]
pub fn wait_in_read(pid: u32) {
    wait_in_syscall(pid, "read", ["0", "63"]);
}

/// Waits until process `pid` sits in system call `name`, numbered `nrs` (x86_64, aarch64);
/// fails if the process ends first.
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

/// Waits until `cond` holds, with the patience above.
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn mounted(dir: &Path) -> bool {
    let mi = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let d = dir.to_string_lossy();
    mi.lines()
        .any(|l| l.split_whitespace().nth(4) == Some(d.as_ref()))
}

pub fn ksock() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ksock"))
}

/// Whether this test binary serves its trees with `ksock export` and `ksock import` rather
/// than `ksock mount`: its crate name (the test target's) starts with `import_`.
pub const VIA_IMPORT: bool = matches!(
    env!("CARGO_CRATE_NAME").as_bytes(),
    [b'i', b'm', b'p', b'o', b'r', b't', b'_', ..]
);

/// `local_mount_only! { "why", #[test] fn name() { ... } }` in a scenario file marks a
/// scenario that only a local mount can run (it inspects the `ksock mount` process, or
/// mounts in the test process), with the reason; `local_mount_only! { "why", items: ... }`
/// holds items only such scenarios use. Each binary's wrapper brings in one of the two
/// macros below under that name, and each checks at compile time that it is the one the
/// binary's crate name calls for ([`VIA_IMPORT`]).
///
/// In a local binary (`use common::keep_local_only as local_mount_only;`) everything is
/// compiled as written.
#[allow(unused_macros)]
macro_rules! keep_local_only {
    ($why:literal, $(#[$attr:meta])* fn $name:ident() $body:block) => {
        const _: () = assert!(
            !$crate::common::VIA_IMPORT,
            "an import_ binary takes exclude_local_only as local_mount_only"
        );
        $(#[$attr])*
        fn $name() $body
    };
    ($why:literal, items: $($item:item)*) => {
        $($item)*
    };
}

/// In an `import_` binary (`use common::exclude_local_only as local_mount_only;`) the
/// scenario is not compiled at all (its reason, the macro's first argument, says why in the
/// scenario's file): the binary lists only what it runs. The items are left out too.
#[allow(unused_macros)]
macro_rules! exclude_local_only {
    ($why:literal, $(#[$attr:meta])* fn $name:ident() $body:block) => {
        const _: () = assert!(
            $crate::common::VIA_IMPORT,
            "only an import_ binary takes exclude_local_only as local_mount_only"
        );
    };
    ($why:literal, items: $($item:item)*) => {
        const _: () = assert!(
            $crate::common::VIA_IMPORT,
            "only an import_ binary takes exclude_local_only as local_mount_only"
        );
    };
}

#[allow(unused_imports)]
pub(crate) use {exclude_local_only, keep_local_only};

/// A running tree.
pub struct Net {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    /// `ksock mount`, or (through an import) `ksock import`.
    server: Option<Child>,
    /// Through an import, `ksock export`.
    exporter: Option<Child>,
    /// The standard error of `server`.
    log: PathBuf,
    /// The standard error of `exporter`.
    export_log: PathBuf,
    /// The Unix socket `exporter` serves.
    socket: PathBuf,
    env: Vec<(String, String)>,
}

impl Net {
    /// Mounts a fresh tree (with `--allow-other`, so that other users can be tested).
    #[track_caller]
    pub fn mount() -> Net {
        Net::mount_with(&["--allow-other"])
    }

    #[track_caller]
    pub fn mount_with(args: &[&str]) -> Net {
        Net::mount_with_env(args, &[])
    }

    /// Mounts with `args` and, in the server's environment, `env` (and no `RUST_LOG` but
    /// one given here).
    #[track_caller]
    pub fn mount_with_env(args: &[&str], env: &[(&str, &str)]) -> Net {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the FUSE tests must run as root (they mount a file system)"
        );
        assert!(
            Path::new("/dev/fuse").exists(),
            "/dev/fuse is missing: the FUSE tests cannot run (load the fuse module)"
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        // Other users must be able to reach the mount point.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = tmp.path().join("net");
        let log = tmp.path().join("ksock.log");
        let export_log = tmp.path().join("export.log");
        let socket = tmp.path().join("net.9p");
        let mut net = Net {
            _tmp: tmp,
            root,
            server: None,
            exporter: None,
            log,
            export_log,
            socket,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        net.start(args);
        net
    }

    /// Starts `ksock mount` on this tree's directory (through an import, `ksock export` and
    /// `ksock import`) and waits for the tree to appear.
    #[track_caller]
    fn start(&mut self, args: &[&str]) {
        let server = if VIA_IMPORT {
            let (export_args, import_args) = split_for_import(args);
            self.start_export(&export_args);
            self.spawn("import", &self.log, |c| {
                c.arg(format!("unix:{}", self.socket.display()))
                    .arg(&self.root)
                    .args(&import_args);
            })
        } else {
            self.spawn("mount", &self.log, |c| {
                c.arg(&self.root).args(args);
            })
        };
        self.server = Some(server);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if mounted(&self.root) && self.root.join("local").is_dir() {
                break;
            }
            self.assert_running("before the tree appeared; FUSE is not usable here");
            assert!(
                Instant::now() < deadline,
                "the tree did not appear at {}:\n{}",
                self.root.display(),
                self.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Spawns `ksock SUB`, its arguments added by `args`, with this tree's environment and
    /// its standard error in `log`.
    fn spawn(&self, sub: &str, log: &Path, args: impl FnOnce(&mut Command)) -> Child {
        let mut c = ksock();
        c.arg(sub);
        args(&mut c);
        c.env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).expect("log"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ksock {sub}: {e}"))
    }

    /// Starts `ksock export` on this tree's Unix socket and waits until it serves.
    #[track_caller]
    fn start_export(&mut self, args: &[&str]) {
        let exporter = self.spawn("export", &self.export_log, |c| {
            c.arg("--socket").arg(&self.socket).args(args);
        });
        self.exporter = Some(exporter);
        let deadline = Instant::now() + PATIENCE;
        // Said once it listens.
        while !fs::read_to_string(&self.export_log)
            .unwrap_or_default()
            .contains("ksock: exporting")
        {
            self.assert_running("before it served");
            assert!(
                Instant::now() < deadline,
                "ksock export did not start serving on {}:\n{}",
                self.socket.display(),
                self.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Fails if a process serving the tree has exited.
    #[track_caller]
    fn assert_running(&mut self, when: &str) {
        let exited = |c: Option<&mut Child>| c.and_then(|c| c.try_wait().ok().flatten());
        for (what, st) in [
            ("ksock export", exited(self.exporter.as_mut())),
            (server_name(), exited(self.server.as_mut())),
        ] {
            if let Some(st) = st {
                panic!("{what} exited ({st}) {when}:\n{}", self.log());
            }
        }
    }

    /// Kills the server with SIGKILL (leaving a dead mount) and mounts again on the same
    /// directory. Through an import, both processes are killed (the import first: a dead
    /// mount) and a new pair serves a new stack.
    #[track_caller]
    pub fn kill_and_remount(&mut self) {
        let mut server = self.server.take().expect("a server");
        server.kill().expect("SIGKILL the server");
        server.wait().expect("wait");
        let e = fs::metadata(&self.root).expect_err("a dead mount");
        assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
        if let Some(mut exporter) = self.exporter.take() {
            exporter.kill().expect("SIGKILL ksock export");
            exporter.wait().expect("wait");
        }
        self.start(&["--allow-other"]);
    }

    /// What the server said on standard error; through an import, what `ksock export` said
    /// then what `ksock import` said.
    pub fn log(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        if VIA_IMPORT {
            fs::read_to_string(&self.export_log).unwrap_or_default() + &log
        } else {
            log
        }
    }

    pub fn local(&self) -> PathBuf {
        self.root.join("local")
    }

    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("N", self.local())
            .env("KSOCK", env!("CARGO_BIN_EXE_ksock"))
            .env("ROOT", &self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Starts `sh -c script` with `$N` set to the `local` directory.
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

    /// Starts python3 with the helpers of [`PY_PRELUDE`] and `script`.
    pub fn spawn_py(&self, script: &str) -> Child {
        self.command("python3")
            .args(["-c", &format!("{PY_PRELUDE}\n{script}")])
            .spawn()
            .expect("spawn python3 (is it installed?)")
    }

    #[track_caller]
    pub fn py(&self, script: &str) -> Out {
        wait_out(self.spawn_py(script), script)
    }

    /// The ids of the live sockets, read from the tree.
    pub fn socket_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = fs::read_dir(self.local())
            .expect("list local")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        ids.sort();
        ids
    }

    /// Waits until no socket is left, and checks that `ksock ss` agrees.
    #[track_caller]
    pub fn assert_no_sockets(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ids = self.socket_ids();
            if ids.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "sockets left behind: {ids:?}");
            thread::sleep(Duration::from_millis(10));
        }
        let ss = wait_out(
            ksock()
                .args(["ss", "-a", "--mount"])
                .arg(&self.root)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ksock ss"),
            "ksock ss",
        );
        assert_eq!(
            ss.ok().lines().count(),
            1,
            "ss shows sockets:\n{}",
            ss.stdout
        );
        assert_eq!(
            fs::read_to_string(self.local().join("addrs")).expect("addrs"),
            "",
            "names left bound"
        );
    }

    /// Checks that nothing is left, unmounts with SIGTERM and checks the server ended well
    /// and the directory is no longer a mount.
    #[track_caller]
    pub fn finish(mut self) {
        self.assert_no_sockets();
        self.stop(nix::sys::signal::Signal::SIGTERM);
    }

    /// Stops the server with `sig` (through an import, `ksock import` then `ksock export`)
    /// and checks that it ended well and the directory is no longer a mount.
    #[track_caller]
    pub fn stop(&mut self, sig: nix::sys::signal::Signal) {
        let Some(server) = self.server.take() else {
            return;
        };
        let what = server_name();
        let pid = nix::unistd::Pid::from_raw(server.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap_or_else(|e| panic!("signal {what}: {e}"));
        let out = wait_out(server, &format!("{what} after a stop signal"));
        assert!(
            out.status.success(),
            "{what} ended with {}:\n{}",
            out.status,
            self.log()
        );
        assert!(!mounted(&self.root), "still mounted after {sig}");
        if let Some(exporter) = self.exporter.take() {
            let pid = nix::unistd::Pid::from_raw(exporter.id() as i32);
            nix::sys::signal::kill(pid, sig).expect("signal ksock export");
            let out = wait_out(exporter, "ksock export after a stop signal");
            assert!(
                out.status.success(),
                "ksock export ended with {}:\n{}",
                out.status,
                self.log()
            );
        }
    }
}

/// What mounts the tree: `ksock mount`, or `ksock import`.
fn server_name() -> &'static str {
    if VIA_IMPORT {
        "ksock import"
    } else {
        "ksock mount"
    }
}

/// Ends `child` with SIGTERM, or SIGKILL after ten seconds.
fn end(mut child: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Net {
    fn drop(&mut self) {
        // A failed test: unmount without asserting anything more.
        if let Some(s) = self.server.take() {
            end(s);
            let _ = nix::mount::umount2(&self.root, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(x) = self.exporter.take() {
            end(x);
        }
    }
}

/// Splits `ksock mount` arguments between `ksock export` (the stack's: limits, logging)
/// and `ksock import` (the mount's); panics at one that cannot go through an import.
#[track_caller]
fn split_for_import<'a>(args: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut export, mut import) = (Vec::new(), Vec::new());
    let mut it = args.iter().copied();
    while let Some(a) = it.next() {
        let (side, takes_value) = match a.split_once('=').map_or(a, |(k, _)| k) {
            "--max-sockets-per-user" | "--max-buffered-per-user" => (&mut export, true),
            "-v" | "-vv" | "--verbose" => (&mut export, false),
            "--threads" => (&mut import, true),
            "--allow-other" | "--nonempty" => (&mut import, false),
            _ => panic!(
                "`ksock mount {a}` has no counterpart in `ksock export` or `ksock import`: \
                 a scenario that needs it runs through a local mount only (local_mount_only!)"
            ),
        };
        side.push(a);
        if takes_value && !a.contains('=') {
            side.push(it.next().unwrap_or_else(|| panic!("{a} needs a value")));
        }
    }
    (export, import)
}

/// Python helpers shared by the scripts.
pub const PY_PRELUDE: &str = r#"
import os, sys, errno, select, time, threading
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
"#;

impl Net {
    /// The pid of the `ksock mount` process.
    #[track_caller]
    pub fn server_pid(&self) -> u32 {
        if VIA_IMPORT {
            panic!("two processes serve a tree through an import: see server_pids");
        }
        self.server.as_ref().expect("a server").id()
    }

    /// The pids of the processes that serve the tree: `ksock mount`, or `ksock import` and
    /// `ksock export`.
    pub fn server_pids(&self) -> Vec<u32> {
        self.server
            .iter()
            .chain(self.exporter.iter())
            .map(Child::id)
            .collect()
    }

    /// Like [`Net::spawn_py`], with the script's stdin piped to the test.
    pub fn spawn_py_with_stdin(&self, script: &str) -> Child {
        self.command("python3")
            .args(["-c", &format!("{PY_PRELUDE}\n{script}")])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn python3 (is it installed?)")
    }
}

/// Python helpers for the inet directory, after [`Net::py`]'s prelude: `N` is
/// `/net/inet`; `status`, `port`, `connect` (a TCP connection: ctl fd, id, data fd),
/// `write_all`, and `exchange` (send through `data` while another thread receives until end
/// of file, then shut the write side down; returns (sha256 sent, bytes received, sha256
/// received)).
pub const INET: &str = r#"
import hashlib, json, random, struct, subprocess
N = os.environ["ROOT"] + "/inet"

def status(sid):
    return dict(l.split(" ", 1) for l in text(f"{N}/{sid}/status").splitlines())

def port(addr):
    return int(addr.rsplit(":", 1)[1])

def connect(to):
    c, cid = sock("stream")
    ctl(c, f"connect {to}")
    return c, cid, os.open(f"{N}/{cid}/data", os.O_RDWR)

def write_all(fd, payload):
    view, off = memoryview(payload), 0
    while off < len(view):
        off += os.write(fd, view[off:off + (1 << 16)])
    return off

def exchange(data, ctlfd, payload):
    got = []
    def reader():
        h, n = hashlib.sha256(), 0
        try:
            while True:
                b = os.read(data, 1 << 20)
                if not b:
                    break
                h.update(b)
                n += len(b)
        except OSError as e:
            got.append((e, n))
            return
        got.append((n, h.hexdigest()))
    t = threading.Thread(target=reader)
    t.start()
    try:
        sent = write_all(data, payload)
    finally:
        ctl(ctlfd, "shutdown wr")
        t.join()
    if isinstance(got[0][0], OSError):
        e, n = got[0]
        raise OSError(e.errno, f"{e.strerror}: a read, {n} bytes received, {sent} sent")
    return hashlib.sha256(payload).hexdigest(), got[0][0], got[0][1]
"#;
