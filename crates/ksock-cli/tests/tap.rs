//! The inet family over a TAP interface, against the Linux TCP/IP stack: each test makes
//! its own network namespace, mounts ksock with `--tap` in the root namespace, moves the
//! TAP device into the namespace and gives it the Linux side's addresses; Linux programs
//! (curl, python3) run inside the namespace, ksock's side is file I/O on the mount. No
//! traffic leaves the namespace.
//!
//! Test `n` uses `10.9.n.0/24` and `fd00:9:n::/64`: ksock is `.2`/`::2`, Linux `.1`/`::1`.
//! These tests need root (network namespaces, `/dev/net/tun`, FUSE); without them they
//! fail, loudly.

mod common;

use common::{INET, Net, Out, read_line, wait_out, wait_until};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Runs `ip args...` and returns what it said.
fn ip(args: &[&str]) -> Out {
    wait_out(
        Command::new("ip")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip (is iproute2 installed?)"),
        &format!("ip {}", args.join(" ")),
    )
}

#[track_caller]
fn ip_ok(args: &[&str]) -> String {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {} failed ({}): {}",
        args.join(" "),
        out.status,
        out.stderr
    );
    out.stdout
}

/// Whether a device `name` exists in the root namespace.
fn link_exists(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).status.success()
}

/// The real python3 (not a version manager's shim), for processes started in the
/// namespace and killed by pid.
fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = wait_out(
            Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn python3 (is it installed?)"),
            "python3",
        );
        out.ok().trim().to_string()
    })
}

/// A network namespace and the name of the TAP device of one test, both removed when it
/// is dropped (the test passed or not).
struct Ns {
    name: String,
    tap: String,
}

impl Ns {
    #[track_caller]
    fn new(n: u8) -> Ns {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the TAP tests must run as root (network namespaces, /dev/net/tun)"
        );
        let pid = std::process::id();
        let ns = Ns {
            name: format!("ksock-tap{n}-{pid}"),
            // At most 15 characters: "kst" + 2 + "-" + a pid of at most 7 digits.
            tap: format!("kst{n}-{pid}"),
        };
        assert!(ns.tap.len() <= 15, "{}", ns.tap);
        let out = ip(&["netns", "add", &ns.name]);
        assert!(
            out.status.success(),
            "ip netns add {} failed ({}): the TAP tests need network namespaces (root, \
             CAP_SYS_ADMIN):\n{}",
            ns.name,
            out.status,
            out.stderr
        );
        ns
    }

    /// `ip -n NS args...`.
    #[track_caller]
    fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", &self.name];
        a.extend_from_slice(args);
        ip_ok(&a)
    }

    /// A command run inside the namespace.
    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        if link_exists(&self.tap) {
            let _ = ip(&["link", "del", "dev", &self.tap]);
        }
    }
}

/// A process of the Linux side, killed when dropped.
struct Peer(Option<Child>);

impl Peer {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running peer")
    }

    #[track_caller]
    fn line(&mut self) -> String {
        read_line(self.child()).trim_end().to_string()
    }

    /// Writes `text` to the peer's stdin.
    fn say(&mut self, text: &str) {
        let stdin = self.child().stdin.as_mut().expect("piped stdin");
        stdin.write_all(text.as_bytes()).expect("write to the peer");
        stdin.flush().expect("flush");
    }

    #[track_caller]
    fn wait(mut self, what: &str) -> Out {
        let mut c = self.0.take().expect("a running peer");
        drop(c.stdin.take());
        wait_out(c, what)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One test's namespace with ksock on its TAP device. The mount is dropped before the
/// namespace (ksock closes the device, which ends it).
struct Lab {
    net: Net,
    ns: Ns,
    n: u8,
}

impl Lab {
    #[track_caller]
    fn new(n: u8) -> Lab {
        Lab::with_args(n, &[])
    }

    /// A lab whose `ksock mount` also gets `extra` arguments.
    #[track_caller]
    fn with_args(n: u8, extra: &[&str]) -> Lab {
        let ns = Ns::new(n);
        let (a4, a6, g4) = (
            format!("10.9.{n}.2/24"),
            format!("fd00:9:{n}::2/64"),
            format!("10.9.{n}.1"),
        );
        let mut args = vec![
            "--tap",
            &ns.tap,
            "--addr",
            &a4,
            "--addr",
            &a6,
            "--gateway",
            &g4,
        ];
        args.extend_from_slice(extra);
        let net = Net::mount_with(&args);
        assert!(link_exists(&ns.tap), "ksock mount made no {}", ns.tap);
        ip_ok(&["link", "set", "dev", &ns.tap, "netns", &ns.name]);
        let tap = ns.tap.clone();
        ns.ip(&["addr", "add", &format!("10.9.{n}.1/24"), "dev", &tap]);
        ns.ip(&[
            "addr",
            "add",
            &format!("fd00:9:{n}::1/64"),
            "dev",
            &tap,
            "nodad",
        ]);
        ns.ip(&["link", "set", "dev", &tap, "up"]);
        ns.ip(&["link", "set", "dev", "lo", "up"]);
        Lab { net, ns, n }
    }

    /// ksock's IPv4 address, Linux's, and the same for IPv6 (without brackets).
    fn k4(&self) -> String {
        format!("10.9.{}.2", self.n)
    }
    fn l4(&self) -> String {
        format!("10.9.{}.1", self.n)
    }
    fn k6(&self) -> String {
        format!("fd00:9:{}::2", self.n)
    }
    fn l6(&self) -> String {
        format!("fd00:9:{}::1", self.n)
    }

    /// Starts python3 running `script` inside the namespace, stdin piped.
    fn linux_py(&self, script: &str) -> Peer {
        Peer(Some(
            self.ns
                .command(python())
                .args(["-u", "-c", script])
                .stdin(Stdio::piped())
                .spawn()
                .expect("spawn python3 in the namespace"),
        ))
    }

    /// Runs python3 on the ksock side: the common prelude, the inet helpers, `script`.
    fn ksock_py(&self, script: &str) -> Child {
        self.net.spawn_py(&format!("{INET}\n{script}"))
    }

    fn ksock_py_with_stdin(&self, script: &str) -> Child {
        self.net.spawn_py_with_stdin(&format!("{INET}\n{script}"))
    }

    /// Checks that no inet socket is left, then unmounts (and the namespace goes).
    #[track_caller]
    fn finish(self) {
        let Lab { net, ns, .. } = self;
        wait_until("every inet socket ends", || {
            fs::read_to_string(net.root.join("inet/table"))
                .map(|t| t.lines().count() == 1)
                .unwrap_or(false)
        });
        assert!(!net.log().contains("panicked"), "{}", net.log());
        net.finish();
        drop(ns);
    }
}

/// The sha256 of `bytes`, in hex.
fn sha256(bytes: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sha256sum");
    let mut stdin = c.stdin.take().expect("stdin");
    let data = bytes.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = wait_out(c, "sha256sum");
    w.join().expect("writer").expect("write to sha256sum");
    out.ok()
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// Pseudo-random bytes (xorshift), the same for the same seed.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Splits an HTTP response into its head (without the blank line) and its body.
fn http(resp: &[u8]) -> (String, &[u8]) {
    let at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {} bytes", resp.len()));
    (
        String::from_utf8_lossy(&resp[..at]).into_owned(),
        &resp[at + 4..],
    )
}

/// The port of `host:port`.
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

const BODY: usize = 3 << 20;

#[test]
fn curl_and_python_in_the_namespace_fetch_from_an_http_server_on_ksock() {
    let lab = Lab::new(11);
    // The server: nothing but file I/O on the mount. One connection at a time, answered
    // with HTTP/1.0 and closed.
    let mut server = lab.ksock_py(&format!(
        r#"
BODY = random.Random("ksock http").randbytes({BODY})
l, lid = sock("stream")
ctl(l, "bind *:8080 && listen")
print(text(f"{{N}}/{{lid}}/local").strip(), hashlib.sha256(BODY).hexdigest(), flush=True)
for _ in range(3):
    lc = os.open(f"{{N}}/{{lid}}/listen", os.O_RDWR)
    aid = os.read(lc, 64).decode()
    d = os.open(f"{{N}}/{{aid}}/data", os.O_RDWR)
    req = b""
    while b"\r\n\r\n" not in req:
        b = os.read(d, 4096)
        if not b:
            break
        req += b
    head = (f"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {{len(BODY)}}\r\n\r\n").encode()
    n = write_all(d, head + BODY)
    here, there = text(f"{{N}}/{{aid}}/local").strip(), text(f"{{N}}/{{aid}}/remote").strip()
    print(here, there, req.split(b"\r\n", 1)[0].decode(), n - len(head), flush=True)
    os.close(d)
    os.close(lc)
"#
    ));
    let first = read_line(&mut server);
    let (laddr, sum) = first.trim_end().split_once(' ').expect("address and sum");
    assert_eq!(laddr, "[::]:8080");
    let tmp = tempfile::tempdir().expect("tempdir");
    let curl = |url: &str, file: &Path| -> Out {
        wait_out(
            lab.ns
                .command("curl")
                .args(["-s", "-g", "-0", "--max-time", "30"])
                .args(["-w", "%{http_code} %{size_download}"])
                .arg(url)
                .arg("-o")
                .arg(file)
                .spawn()
                .expect("spawn curl in the namespace (is curl installed?)"),
            "curl",
        )
    };
    let f4 = tmp.path().join("v4");
    let out = curl(&format!("http://{}:8080/", lab.k4()), &f4);
    assert_eq!(out.ok(), format!("200 {BODY}"));
    assert_eq!(sha256(&fs::read(&f4).unwrap()), sum, "curl over IPv4");
    let f6 = tmp.path().join("v6");
    let out = curl(&format!("http://[{}]:8080/", lab.k6()), &f6);
    assert_eq!(out.ok(), format!("200 {BODY}"));
    assert_eq!(sha256(&fs::read(&f6).unwrap()), sum, "curl over IPv6");
    // Python's socket module as the client.
    let client = lab.linux_py(&format!(
        r#"
import socket, hashlib
c = socket.create_connection(("{}", 8080), timeout=30)
c.sendall(b"GET /py HTTP/1.0\r\nHost: ksock\r\n\r\n")
resp = b""
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    resp += b
head, body = resp.split(b"\r\n\r\n", 1)
print(head.decode().replace("\r\n", "|"))
print(c.getsockname()[1], len(body), hashlib.sha256(body).hexdigest())
"#,
        lab.k4()
    ));
    let out = client.wait("python client");
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        format!("HTTP/1.0 200 OK|Content-Type: application/octet-stream|Content-Length: {BODY}")
    );
    let (pyport, rest) = lines[1].split_once(' ').expect("port");
    assert_eq!(rest, format!("{BODY} {sum}"));
    let out = wait_out(server, "ksock http server");
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let (k4, l4, k6, l6) = (lab.k4(), lab.l4(), lab.k6(), lab.l6());
    let field = |l: &str, i: usize| l.split(' ').nth(i).unwrap_or_default().to_string();
    // Each connection names both ends as they are: IPv4 clients as IPv4.
    assert_eq!(
        lines[0],
        format!(
            "{k4}:8080 {l4}:{} GET / HTTP/1.0 {BODY}",
            port_of(&field(lines[0], 1))
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "[{k6}]:8080 [{l6}]:{} GET / HTTP/1.0 {BODY}",
            port_of(&field(lines[1], 1))
        )
    );
    assert_eq!(
        lines[2],
        format!("{k4}:8080 {l4}:{pyport} GET /py HTTP/1.0 {BODY}")
    );
    lab.finish();
}

#[test]
fn shell_file_io_fetches_from_pythons_http_server_over_ipv4_and_ipv6() {
    let lab = Lab::new(12);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = bytes(12, BODY);
    fs::write(dir.path().join("file"), &file).unwrap();
    let mut server = lab.linux_py(&format!(
        "import runpy, sys\nsys.argv = ['http.server', '8000', '--bind', '::', '--directory', {:?}]\n\
         runpy.run_module('http.server', run_name='__main__')",
        dir.path().to_str().unwrap()
    ));
    let line = server.line();
    assert!(line.starts_with("Serving HTTP on :: port 8000"), "{line}");
    let out = lab.net.sh(&format!(
        r#"set -e
        N=$ROOT/inet
        fetch() {{
            exec 3<>$N/stream
            id=$(cat <&3)
            echo "connect $1" >&3
            exec 4<>$N/$id/data
            printf 'GET /file HTTP/1.0\r\n\r\n' >&4
            cat <&4 >"$2"
            cat $N/$id/remote
            exec 3>&- 4>&-
        }}
        fetch {}:8000 {dir}/got4
        fetch [{}]:8000 {dir}/got6
        "#,
        lab.l4(),
        lab.l6(),
        dir = dir.path().display()
    ));
    assert_eq!(
        out.ok(),
        format!("{}:8000\n[{}]:8000\n", lab.l4(), lab.l6())
    );
    let want = sha256(&file);
    for got in ["got4", "got6"] {
        let resp = fs::read(dir.path().join(got)).unwrap();
        let (head, body) = http(&resp);
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{got}: {head}");
        let length = format!("Content-Length: {BODY}");
        assert!(head.split("\r\n").any(|l| l == length), "{got}: {head}");
        assert_eq!(body.len(), BODY, "{got}");
        assert_eq!(sha256(body), want, "{got}: the file, byte for byte");
    }
    drop(server);
    lab.finish();
}

const ECHO: usize = 10 << 20;

#[test]
fn ten_megabytes_through_a_linux_echo_server() {
    let lab = Lab::new(13);
    let mut echo = lab.linux_py(
        r#"
import socket
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 7007))
s.listen()
print("ready", flush=True)
c, a = s.accept()
n = 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    c.sendall(b)
    n += len(b)
c.shutdown(socket.SHUT_WR)
print(a[0], n)
"#,
    );
    assert_eq!(echo.line(), "ready");
    let client = lab.ksock_py(&format!(
        r#"
c, cid, d = connect("{}:7007")
print(*exchange(d, c, random.Random("echo").randbytes({ECHO})))
"#,
        lab.l4()
    ));
    let out = wait_out(client, "ksock echo client");
    let f: Vec<&str> = out.ok().split_whitespace().collect();
    assert_eq!(f.len(), 3, "{}", out.stdout);
    assert_eq!(f[1], ECHO.to_string(), "bytes echoed");
    assert_eq!(f[2], f[0], "the echo, byte for byte");
    assert_eq!(
        echo.wait("linux echo server").ok(),
        format!("::ffff:{} {ECHO}\n", lab.k4())
    );
    lab.finish();
}

#[test]
fn udp_with_headers_answers_linux_clients_and_reaches_a_linux_echo_server() {
    let lab = Lab::new(14);
    let mut server = lab.ksock_py(
        r#"
s, sid = sock("dgram")
ctl(s, "bind *:5353 && headers on")
print(text(f"{N}/{sid}/local").strip(), flush=True)
d = os.open(f"{N}/{sid}/data", os.O_RDWR)
for _ in range(4):
    r = os.read(d, 65536)
    head, body = r.split(b"\n", 1)
    reply = head + b"\n" + body.upper()
    print(head.decode(), body.decode(), os.write(d, reply) == len(reply), flush=True)
"#,
    );
    assert_eq!(read_line(&mut server), "[::]:5353\n");
    // Four Linux clients, two over each IP version, each its own process.
    let hosts = [lab.k4(), lab.k6(), lab.k4(), lab.k6()];
    let clients: Vec<Peer> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            lab.linux_py(&format!(
                r#"
import socket
fam = socket.AF_INET6 if ":" in "{host}" else socket.AF_INET
c = socket.socket(fam, socket.SOCK_DGRAM)
c.settimeout(30)
c.connect(("{host}", 5353))
c.send(b"hello from client {i}")
data, src = c.recvfrom(65536)
print(c.getsockname()[1], src[0], src[1], data.decode())
"#
            ))
        })
        .collect();
    let mut want = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let out = c.wait("linux udp client");
        let text = out.ok().trim_end().to_string();
        let (port, rest) = text.split_once(' ').expect("port");
        // The answer came from ksock's address and port, and is this client's own.
        assert_eq!(rest, format!("{} 5353 HELLO FROM CLIENT {i}", hosts[i]));
        let from = if i % 2 == 0 {
            format!("{}:{port}", lab.l4())
        } else {
            format!("[{}]:{port}", lab.l6())
        };
        want.push(format!("{from} hello from client {i} True"));
    }
    let out = wait_out(server, "ksock udp server");
    let mut got: Vec<&str> = out.ok().lines().collect();
    got.sort();
    want.sort();
    // Each read began with the address of the client that sent it.
    assert_eq!(got, want);

    // And the other way: ksock's client sockets against a Linux echo server.
    let mut echo = lab.linux_py(
        r#"
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 7009))
print("ready", flush=True)
for _ in range(6):
    data, src = s.recvfrom(65536)
    s.sendto(data, src)
    print(src[0], len(data), flush=True)
"#,
    );
    assert_eq!(echo.line(), "ready");
    let client = lab.ksock_py(&format!(
        r#"
for to in ["{}:7009", "[{}]:7009"]:
    u, uid = sock("dgram")
    ctl(u, f"connect {{to}}")
    d = os.open(f"{{N}}/{{uid}}/data", os.O_RDWR)
    p = select.poll()
    p.register(d, select.POLLIN)
    out = []
    for size in [1, 1000, 1400]:
        msg = random.Random(f"{{to}} {{size}}").randbytes(size)
        os.write(d, msg)
        if not p.poll(30000):
            out.append("no answer")
            break
        out.append(os.read(d, 65536) == msg)
    print(text(f"{{N}}/{{uid}}/remote").strip(), *out)
"#,
        lab.l4(),
        lab.l6()
    ));
    assert_eq!(
        wait_out(client, "ksock udp client").ok(),
        format!(
            "{}:7009 True True True\n[{}]:7009 True True True\n",
            lab.l4(),
            lab.l6()
        )
    );
    let from4 = format!("::ffff:{}", lab.k4());
    let k6 = lab.k6();
    assert_eq!(
        echo.wait("linux udp echo").ok(),
        format!("{from4} 1\n{from4} 1000\n{from4} 1400\n{k6} 1\n{k6} 1000\n{k6} 1400\n")
    );
    lab.finish();
}

#[test]
fn a_closed_linux_port_refuses_tcp_and_udp() {
    let lab = Lab::new(15);
    let out = wait_out(
        lab.ksock_py(&format!(
            r#"
for to in ["{l4}:9", "[{l6}]:9"]:
    c, cid = sock("stream")
    print(errno_of(ctl, c, f"connect {{to}}"), "|", text(f"{{N}}/{{cid}}/err").strip())
    print(status(cid)["state"])
# A connected UDP socket learns of the port unreachable once.
u, uid = sock("dgram")
ctl(u, "connect {l4}:9")
d = os.open(f"{{N}}/{{uid}}/data", os.O_RDWR)
os.write(d, b"anyone?")
print(errno_of(os.read, d, 100), "|", text(f"{{N}}/{{uid}}/err").strip())
"#,
            l4 = lab.l4(),
            l6 = lab.l6()
        )),
        "ksock client",
    );
    let why = "Connection refused (the host refused the connection (nothing listens on that port))";
    assert_eq!(
        out.ok(),
        format!(
            "ECONNREFUSED | ECONNREFUSED: connect \"{}:9\": {why}\n\
             closed\n\
             ECONNREFUSED | ECONNREFUSED: connect \"[{}]:9\": {why}\n\
             closed\n\
             ECONNREFUSED | ECONNREFUSED: read: Connection refused\n",
            lab.l4(),
            lab.l6()
        )
    );
    lab.finish();
}

#[test]
fn a_linux_peer_killed_mid_transfer_resets_the_connection() {
    let lab = Lab::new(16);
    // The server reads one byte of what the client sent (the rest stays unread, and
    // SO_LINGER 0 besides: its close is certain to be a reset), then streams to the client
    // until it is killed.
    let mut server = lab.linux_py(
        r#"
import socket, struct, random, os
s = socket.socket(socket.AF_INET)
s.bind(("0.0.0.0", 7011))
s.listen()
print(os.getpid(), flush=True)
c, a = s.accept()
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.recv(1)
r = random.Random("linux stream")
while True:
    c.sendall(r.randbytes(1 << 16))
"#,
    );
    let pid: i32 = server.line().parse().expect("the server's pid");
    let mut client = lab.ksock_py_with_stdin(&format!(
        r#"
c, cid, d = connect("{}:7011")
os.write(d, b"x" * 4096)
chunks, n, told = [], 0, False
while True:
    try:
        b = os.read(d, 1 << 16)
    except OSError as e:
        res = errno.errorcode[e.errno]
        print(text(f"{{N}}/{{cid}}/err").strip())
        break
    if not b:
        res = "end of file"
        break
    chunks.append(b)
    n += len(b)
    if n >= 1 << 20 and not told:
        print("reading", flush=True)
        told = True
r = random.Random("linux stream")
want = b""
while len(want) < n:
    want += r.randbytes(1 << 16)
print(res, n >= 1 << 20, b"".join(chunks) == want[:n])
print(errno_of(os.write, d, b"more"))
print(text(f"{{N}}/{{cid}}/err").strip())
print(status(cid)["state"], status(cid)["tcp_state"])
"#,
        lab.l4()
    ));
    assert_eq!(read_line(&mut client), "reading\n");
    // Killed while the client reads.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the Linux server");
    let out = wait_out(client, "ksock client");
    assert_eq!(
        out.ok(),
        "ECONNRESET: read: Connection reset by peer (the peer reset the connection)\n\
         ECONNRESET True True\n\
         EPIPE\n\
         EPIPE: write: Broken pipe (the connection is over: reset, or closed both ways)\n\
         closed CLOSE\n"
    );
    let _ = server.wait("killed server");
    lab.finish();
}

const STALL: usize = 4 << 20;

/// Whether process `pid` sits in write(2) (syscall 1 on x86_64, 64 on aarch64) on `fd`.
fn in_write_on(pid: u32, fd: u64) -> bool {
    let s = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let f: Vec<&str> = s.split_whitespace().collect();
    f.len() > 1
        && matches!(f[0], "1" | "64")
        && u64::from_str_radix(f[1].trim_start_matches("0x"), 16).ok() == Some(fd)
}

#[test]
fn a_writer_blocks_while_the_linux_peer_stops_reading_and_loses_nothing() {
    let lab = Lab::new(17);
    let mut server = lab.linux_py(
        r#"
import socket, sys, hashlib
s = socket.socket(socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.bind(("0.0.0.0", 7013))
s.listen()
print("ready", flush=True)
c, a = s.accept()
sys.stdin.readline()
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest(), flush=True)
"#,
    );
    assert_eq!(server.line(), "ready");
    let tmp = tempfile::tempdir().expect("tempdir");
    let progress = tmp.path().join("progress");
    let mut writer = lab.ksock_py(&format!(
        r#"
c, cid, d = connect("{}:7013")
payload = random.Random("stalled writer").randbytes({STALL})
prog = os.open({:?}, os.O_WRONLY | os.O_CREAT)
print(d, flush=True)
off = 0
while off < len(payload):
    off += os.write(d, payload[off:off + (1 << 16)])
    os.pwrite(prog, b"%12d" % off, 0)
ctl(c, "shutdown wr")
print(off, hashlib.sha256(payload).hexdigest())
"#,
        lab.l4(),
        progress.to_str().unwrap()
    ));
    let fd: u64 = read_line(&mut writer).trim().parse().expect("the data fd");
    let pid = writer.id();
    let written = || -> usize {
        fs::read_to_string(&progress)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    // The writer ends up in a write on `data` that does not return: seen twice in a row
    // with no progress in between, short of the whole payload.
    let mut last = None;
    wait_until("the writer blocks in a write on data", || {
        let now = (in_write_on(pid, fd), written());
        let stuck = now.0 && last == Some(now);
        last = Some(now);
        stuck
    });
    let stalled = written();
    assert!(stalled < STALL, "the writer finished ({stalled} bytes)");
    assert!(in_write_on(pid, fd), "the writer left its write");
    assert_eq!(written(), stalled, "progress while the peer did not read");
    // The peer reads again: the rest goes through, and the peer got every byte.
    server.say("go\n");
    let out = wait_out(writer, "ksock writer");
    let (n, sum) = out.ok().trim_end().split_once(' ').expect("count and sum");
    assert_eq!(n, STALL.to_string());
    assert_eq!(
        server.wait("linux reader").ok(),
        format!("{STALL} {sum}\n"),
        "every byte, in order"
    );
    lab.finish();
}

/// Runs `ksock mount DIR args...` where it must fail at once; checks nothing is mounted
/// and no device `tap` was made.
#[track_caller]
fn mount_fails(tap: &str, args: &[&str]) -> Out {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let out = wait_out(
        common::ksock()
            .arg("mount")
            .arg(&dir)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ksock mount"),
        "ksock mount that must fail",
    );
    assert!(!out.status.success(), "ksock mount {args:?} succeeded");
    assert!(!link_exists(tap), "a failed mount left device {tap}");
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(dir.to_str().unwrap()),
        "a failed mount is mounted"
    );
    out
}

#[test]
fn bad_tap_settings_fail_at_once_and_say_why() {
    let ns = Ns::new(18);
    let tap = ns.tap.clone();
    let clap = |flag: &str, value: &str, why: &str| {
        format!(
            "error: invalid value '{value}' for '{flag}': {why}\n\nFor more information, try \
             '--help'.\n"
        )
    };
    for (addr, why) in [
        (
            "10.9.18.2/33",
            "\"10.9.18.2/33\": the prefix length must be 0 to 32",
        ),
        (
            "10.9.18.300/24",
            "\"10.9.18.300/24\" is not an address with a prefix (10.9.0.2/24 or fd00::2/64)",
        ),
        (
            "fd00:9:18::2/129",
            "\"fd00:9:18::2/129\": the prefix length must be 0 to 128",
        ),
        (
            "127.0.0.2/8",
            "\"127.0.0.2/8\": an interface address must be unicast, not the any address or \
             the loopback's",
        ),
    ] {
        let out = mount_fails(&tap, &["--tap", &tap, "--addr", addr]);
        assert_eq!(out.status.code(), Some(2), "{addr}: {}", out.stderr);
        assert_eq!(out.stderr, clap("--addr <ADDR/PREFIX>", addr, why));
    }
    let out = mount_fails(&tap, &["--addr", "10.9.18.2/24"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "error: the following required arguments were not provided:\n  --tap <NAME>\n"
        ),
        "{}",
        out.stderr
    );
    let out = mount_fails(&tap, &["--tap", &tap]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "ksock: --tap {tap} needs at least one --addr (ksock's address on it, e.g. --addr \
             10.9.0.2/24)\n"
        )
    );
    for (gw, args) in [
        ("10.9.99.1", vec!["--addr", "10.9.18.2/24"]),
        // Its own address is not a gateway.
        ("10.9.18.2", vec!["--addr", "10.9.18.2/24"]),
        // No address of its version.
        ("fd00:9:18::1", vec!["--addr", "10.9.18.2/24"]),
    ] {
        let mut a = vec!["--tap", tap.as_str(), "--gateway", gw];
        a.extend(args);
        let out = mount_fails(&tap, &a);
        assert_eq!(out.status.code(), Some(1), "{gw}: {}", out.stderr);
        assert_eq!(
            out.stderr,
            format!("ksock: --gateway {gw}: not on the network of any --addr of its version\n")
        );
    }
}

#[test]
fn a_tap_device_another_mount_holds_is_busy() {
    let ns = Ns::new(19);
    let tap = ns.tap.clone();
    // The first mount holds the device (left in the root namespace).
    let net = Net::mount_with(&["--tap", &tap, "--addr", "10.9.19.2/24"]);
    assert!(link_exists(&tap));
    let out = mount_fails("kst-none", &["--tap", &tap, "--addr", "10.9.19.3/24"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "ksock: cannot start the inet family: the TAP device {tap} is busy: another \
             process has it open (Device or resource busy (os error 16)); stop it, or name \
             another device\n"
        )
    );
    // The first mount goes on, its device with it.
    let out = net.py(&format!(
        "{INET}\n{}",
        r#"
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen")
c, cid, d = connect(text(f"{N}/{lid}/local").strip())
a = os.open(f"{N}/{lid}/accept", os.O_RDWR)
os.write(d, b"still here")
print(os.read(a, 100))
"#
    ));
    assert_eq!(out.ok(), "b'still here'\n");
    assert!(link_exists(&tap));
    net.finish();
    drop(ns);
}

/// A TCP echo of 1 MiB over the loopback, through the mount: what must go on beside the
/// TAP interface, whatever happens to it.
const LOCAL_WORK: &str = r#"
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen")
c, cid, d = connect(text(f"{N}/{lid}/local").strip())
a = os.open(f"{N}/{lid}/accept", os.O_RDWR)
payload = random.Random("loopback").randbytes(1 << 20)
def echo():
    while True:
        b = os.read(a, 1 << 16)
        if not b:
            break
        write_all(a, b)
    os.close(a)
t = threading.Thread(target=echo)
t.start()
sent, n, got = exchange(d, c, payload)
t.join()
print("loopback", n, sent == got)
"#;

/// A `local` seqpacket exchange.
const SEQ_WORK: &str = r#"
L = os.environ["N"]
def lsock():
    fd = os.open(f"{L}/seqpacket", os.O_RDWR)
    return fd, os.read(fd, 64).decode()
s, sid = lsock()
name = "tapwork%d" % os.getpid()
ctl(s, f"bind {name} && listen")
k, kid = lsock()
ctl(k, f"connect {name}")
kd = os.open(f"{L}/{kid}/data", os.O_RDWR)
sa = os.open(f"{L}/{sid}/accept", os.O_RDWR)
os.write(kd, b"over local")
print("seqpacket", os.read(sa, 100))
"#;

#[test]
fn the_interface_taken_down_fails_its_connection_with_enetdown_and_the_mount_serves_the_rest() {
    let lab = Lab::new(20);
    let mut echo = lab.linux_py(
        r#"
import socket, threading
s = socket.socket(socket.AF_INET)
s.bind(("0.0.0.0", 7015))
s.listen()
print("ready", flush=True)
def serve(c):
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        c.sendall(b)
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#,
    );
    assert_eq!(echo.line(), "ready");
    let mut client = lab.ksock_py_with_stdin(&format!(
        r#"
to = "{}:7015"
c, cid, d = connect(to)
os.write(d, b"before")
print(cid, os.read(d, 100).decode(), flush=True)
sys.stdin.readline()
os.write(d, b"while down")
print("written", flush=True)
# The device refuses every retransmission; after a grace of a few seconds the connection
# fails, with a reason.
print(errno_of(os.read, d, 100), status(cid)["state"], status(cid)["tcp_state"])
print(text(f"{{N}}/{{cid}}/err"), end="")
# While the device is down a new connection through it fails at once.
c2, cid2 = sock("stream")
print(errno_of(ctl, c2, f"connect {{to}}"), flush=True)
sys.stdin.readline()
# Up again: connections through it work.
c3, cid3, d3 = connect(to)
os.write(d3, b"after")
print(os.read(d3, 100).decode(), status(cid3)["tcp_state"])
"#,
        lab.l4()
    ));
    let first = read_line(&mut client);
    let (_cid, before) = first.trim_end().split_once(' ').expect("id and echo");
    assert_eq!(before, "before");
    let tap = lab.ns.tap.clone();
    lab.ns.ip(&["link", "set", "dev", &tap, "down"]);
    client
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"\n")
        .unwrap();
    assert_eq!(read_line(&mut client), "written\n");
    // The mount serves the loopback and `local` all the same.
    let out = wait_out(
        lab.net
            .spawn_py(&format!("{INET}\n{LOCAL_WORK}\n{SEQ_WORK}")),
        "loopback and local while the TAP is down",
    );
    assert_eq!(out.ok(), "loopback 1048576 True\nseqpacket b'over local'\n");
    assert_eq!(read_line(&mut client), "ENETDOWN closed CLOSE\n");
    assert_eq!(
        read_line(&mut client),
        "ENETDOWN: read: Network is down (the network interface it goes through is down: its \
         device refuses frames)\n"
    );
    assert_eq!(read_line(&mut client), "ENETDOWN\n");
    lab.ns.ip(&["link", "set", "dev", &tap, "up"]);
    client
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"\n")
        .unwrap();
    let out = wait_out(client, "ksock client");
    assert_eq!(out.ok(), "after ESTABLISHED\n");
    drop(echo);
    lab.finish();
}

/// Linux clients send 100000 bytes to ksock's echo on port 7017 at each of `hosts` and
/// check what comes back: `host True` per host.
fn echo_from_linux(lab: &Lab, hosts: &[String]) -> String {
    let out = lab
        .linux_py(&format!(
            r#"
import socket, random
for host in {hosts:?}:
    c = socket.create_connection((host, 7017), timeout=30)
    msg = random.Random(host).randbytes(100000)
    c.sendall(msg)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        got += b
    print(host, got == msg)
"#
        ))
        .wait("linux echo client");
    out.ok().to_string()
}

#[test]
fn frames_that_are_not_ip_or_are_cut_short_are_dropped_and_the_mount_goes_on() {
    let lab = Lab::new(21);
    // A TCP echo on ksock, used before the bad frames (so that Linux learns ksock's
    // Ethernet address) and after them.
    let mut server = lab.ksock_py(
        r#"
l, lid = sock("stream")
ctl(l, "bind *:7017 && listen")
print("ready", flush=True)
for _ in range(3):
    a = os.open(f"{N}/{lid}/accept", os.O_RDWR)
    while True:
        b = os.read(a, 1 << 16)
        if not b:
            break
        write_all(a, b)
    os.close(a)
"#,
    );
    assert_eq!(read_line(&mut server), "ready\n");
    assert_eq!(
        echo_from_linux(&lab, &[lab.k4()]),
        format!("{} True\n", lab.k4())
    );
    let neigh = lab.ns.ip(&["neigh", "show", &lab.k4(), "dev", &lab.ns.tap]);
    let mac = neigh
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("no lladdr for ksock in {neigh:?}"))
        .to_string();
    let out = lab
        .linux_py(&format!(
            r#"
import socket, struct, random
TAP, KMAC, K4, L4, K6, L6 = "{tap}", "{mac}", "{k4}", "{l4}", "{k6}", "{l6}"
dst = bytes.fromhex(KMAC.replace(":", ""))
src = bytes.fromhex(open(f"/sys/class/net/{{TAP}}/address").read().strip().replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((TAP, 0))
def csum(b):
    if len(b) % 2:
        b += b"\0"
    x = sum(struct.unpack(f"!{{len(b) // 2}}H", b))
    while x >> 16:
        x = (x & 0xffff) + (x >> 16)
    return ~x & 0xffff
def ip4(proto, payload, total=None, ihl=5):
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total or 20 + len(payload), 1, 0, 64,
                    proto, 0, socket.inet_aton(L4), socket.inet_aton(K4))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload
def ip6(nh, payload, plen=None):
    return (struct.pack("!IHBB", 6 << 28, len(payload) if plen is None else plen, nh, 64)
            + socket.inet_pton(socket.AF_INET6, L6) + socket.inet_pton(socket.AF_INET6, K6)
            + payload)
def frame(ethertype, payload, to=dst):
    return to + src + struct.pack("!H", ethertype) + payload
frames = [
    frame(0x88b5, b"not ip at all" * 4),
    frame(0x88b5, b"to everyone" * 5, to=b"\xff" * 6),
    frame(0x0000, b""),
    frame(0x0800, b"\x45\x00\x00"),
    frame(0x0800, ip4(6, b"")[:19]),
    frame(0x0800, ip4(6, b"\x00" * 20, total=1000)),
    frame(0x0800, ip4(6, b"\x1b\x59")),
    frame(0x0800, ip4(17, b"\x00\x35\x1b")),
    frame(0x0800, ip4(6, b"\x00" * 20, ihl=3)),
    frame(0x0800, ip4(6, b"\x00" * 20, ihl=15)),
    frame(0x0800, ip4(1, b"\x03\x03" + b"\x00" * 6 + b"\x45\x00")),
    frame(0x0800, ip4(1, b"\x03\x03")),
    frame(0x86dd, b"\x60\x00\x00\x00\x00\x14"),
    frame(0x86dd, ip6(6, b"\x00" * 8, plen=400)),
    frame(0x86dd, ip6(6, b"\x1b\x59\x00")),
    frame(0x86dd, ip6(17, b"\x00\x35")),
    frame(0x86dd, ip6(58, b"\x01\x04\x00\x00" + b"\x00" * 4 + b"\x60")),
    frame(0x86dd, ip6(0, b"\x3b")),
    frame(0x0806, b"\x00\x01\x08\x00\x06"),
    frame(0x0806, b"\x00\x01\x08\x00\x06\x04\x00\x01" + src + socket.inet_aton(L4)),
    frame(0x8100, b"\x00\x01\x08\x00" + b"\x45"),
]
r = random.Random("frames")
for _ in range(300):
    et = r.choice([0x0800, 0x86dd, 0x0806, 0x88cc])
    body = r.randbytes(r.randrange(0, 120))
    if et == 0x0800 and body:
        body = bytes([0x45]) + body[1:]
    if et == 0x86dd and body:
        body = bytes([0x60]) + body[1:]
    frames.append(frame(et, body))
sent = sum(1 for f in frames if s.send(f) == len(f))
print(sent, len(frames))
"#,
            tap = lab.ns.tap,
            k4 = lab.k4(),
            l4 = lab.l4(),
            k6 = lab.k6(),
            l6 = lab.l6(),
        ))
        .wait("raw frames");
    assert_eq!(out.ok(), "321 321\n");
    // The frames went in order before this connection's: they were all seen, and the
    // mount goes on, over both IP versions.
    assert_eq!(
        echo_from_linux(&lab, &[lab.k4(), lab.k6()]),
        format!("{} True\n{} True\n", lab.k4(), lab.k6())
    );
    wait_out(server, "ksock echo server").ok();
    let out = lab.net.py(&format!("{INET}\n{LOCAL_WORK}\n{SEQ_WORK}"));
    assert_eq!(out.ok(), "loopback 1048576 True\nseqpacket b'over local'\n");
    // They were counted: every frame the device gave, and those that are not IPv4, IPv6
    // or ARP, or are cut short before their Ethernet header ends, as bad.
    let stats = fs::read_to_string(lab.net.root.join("inet/stats")).expect("read inet/stats");
    let count = |k: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {stats}"))
    };
    assert!(count("tap_rx_frames") >= 321, "{stats}");
    assert!(count("frames_bad") >= 1, "{stats}");
    assert!(count("frames_in") >= count("tap_rx_frames"), "{stats}");
    assert_eq!(count("tap_tx_errors"), 0, "{stats}");
    lab.finish();
}

#[test]
fn the_loopback_and_five_tap_addresses_all_hold_beside_the_tap() {
    // smoltcp's interface kept only its first two addresses: beside a TAP with an IPv4
    // and an IPv6 address, 127.0.0.1 and ::1 (and the IPv6 link-local address) were lost,
    // and the loopback refused every bind (EADDRNOTAVAIL).
    let ns = Ns::new(22);
    let tap = ns.tap.clone();
    let addrs = [
        "10.9.22.2/24",
        "fd00:9:22::2/64",
        "10.9.22.3/24",
        "fd00:9:22::3/64",
        "10.9.23.2/24",
    ];
    let mut args = vec!["--tap", tap.as_str()];
    for a in &addrs {
        args.extend(["--addr", a]);
    }
    let mut six = args.clone();
    six.extend(["--addr", "fd00:9:23::2/64"]);
    let out = mount_fails(&tap, &six);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "ksock: cannot start the inet family: the TAP interface {tap} takes at most 5 \
             addresses (6 given)\n"
        )
    );
    let net = Net::mount_with(&args);
    let out = net.py(&format!(
        "{INET}\n{}\n{LOCAL_WORK}",
        r#"
for a in ["127.0.0.1", "[::1]", "10.9.22.2", "[fd00:9:22::2]", "10.9.22.3", "[fd00:9:22::3]",
          "10.9.23.2"]:
    for ty in ["stream", "dgram"]:
        s, sid = sock(ty)
        print(a, ty, errno_of(ctl, s, f"bind {a}:0"), text(f"{N}/{sid}/err").strip())
        ctl(s, "hangup")
"#
    ));
    let mut want = String::new();
    for a in [
        "127.0.0.1",
        "[::1]",
        "10.9.22.2",
        "[fd00:9:22::2]",
        "10.9.22.3",
        "[fd00:9:22::3]",
        "10.9.23.2",
    ] {
        want += &format!("{a} stream OK \n{a} dgram OK \n");
    }
    want += "loopback 1048576 True\n";
    assert_eq!(out.ok(), want);
    net.finish();
    drop(ns);
}

#[test]
fn a_capture_of_the_tap_interface_decodes_as_ethernet_with_good_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("tap.pcap");
    let lab = Lab::with_args(22, &["--pcap", pcap.to_str().unwrap()]);
    let mut echo = lab.linux_py(
        r#"
import socket
s = socket.socket(socket.AF_INET)
s.bind(("0.0.0.0", 7022))
s.listen()
print("ready", flush=True)
c, a = s.accept()
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    c.sendall(b)
c.close()
"#,
    );
    assert_eq!(echo.line(), "ready");
    let out = wait_out(
        lab.ksock_py(&format!(
            r#"
c, cid, d = connect("{}:7022")
os.write(d, b"hello")
print(os.read(d, 100).decode())
ctl(c, "shutdown wr")
print(repr(os.read(d, 100)))
"#,
            lab.l4()
        )),
        "ksock client",
    );
    assert_eq!(out.ok(), "hello\nb''\n");
    let _ = echo.wait("echo server");
    lab.finish();
    let t = Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap()])
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
        ])
        .args(["-T", "fields", "-E", "separator=,"])
        .args(["-e", "eth.type", "-e", "ip.checksum.status"])
        .args([
            "-e",
            "tcp.checksum.status",
            "-e",
            "tcp.flags.str",
            "-e",
            "tcp.len",
        ])
        .args(["-Y", "arp || tcp.port == 7022"])
        .output()
        .expect("tshark is installed (.ci/run installs it)");
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let text = String::from_utf8(t.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    // Ethernet frames: ARP, then IPv4 TCP.
    assert!(rows.iter().any(|r| r[0] == "0x0806"), "no ARP:\n{text}");
    let tcp: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == "0x0800").collect();
    // Every IP header and TCP segment, both ways, has a correct checksum (1: good).
    for r in &tcp {
        assert_eq!((r[1], r[2]), ("1", "1"), "bad checksum:\n{text}");
    }
    let flags = |r: &&Vec<&str>| r[3].replace('\u{b7}', "");
    // The handshake, 5 bytes each way, a FIN each way.
    assert!(tcp.iter().any(|r| flags(r) == "S"), "no SYN:\n{text}");
    assert!(tcp.iter().any(|r| flags(r) == "AS"), "no SYN-ACK:\n{text}");
    assert_eq!(tcp.iter().filter(|r| r[4] == "5").count(), 2, "{text}");
    assert_eq!(
        tcp.iter().filter(|r| flags(r).contains('F')).count(),
        2,
        "{text}"
    );
}

/// A TAP device made beforehand (persistent), deleted when dropped.
struct PersistentTap(String);

impl Drop for PersistentTap {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", "dev", &self.0]);
    }
}

#[test]
fn an_address_someone_on_the_link_already_has_is_refused_at_once() {
    // The Linux end of an existing device has 10.9.23.2 and is up: ksock asking for the
    // same address hears it answer its ARP probe and refuses to start, naming the link
    // and who answered; another address of the network is fine.
    let name = format!("kpa{}", std::process::id() % 100_000);
    ip_ok(&["tuntap", "add", "dev", &name, "mode", "tap"]);
    let tap = PersistentTap(name.clone());
    ip_ok(&["addr", "add", "10.9.23.2/24", "dev", &tap.0]);
    ip_ok(&["link", "set", "dev", &tap.0, "up"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = wait_out(
        common::ksock()
            .arg("mount")
            .arg(tmp.path().join("net"))
            .args(["--tap", &tap.0, "--addr", "10.9.23.2/24"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ksock mount"),
        "ksock mount on a taken address",
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "the address 10.9.23.2 is already used on the link of {name} (by "
        )),
        "{}",
        out.stderr
    );
    // A free address of the same network: the mount comes up (the probe finds nobody).
    let net = Net::mount_with(&["--tap", &tap.0, "--addr", "10.9.23.5/24"]);
    net.finish();
}

#[test]
fn without_cap_net_admin_the_mount_says_what_it_needs() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let name = format!("kcap{}", std::process::id() % 100_000);
    let out = wait_out(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["--inh-caps=-all", "--bounding-set=-all"])
            .arg(env!("CARGO_BIN_EXE_ksock"))
            .arg("mount")
            .arg(&dir)
            .args(["--tap", &name, "--addr", "10.9.24.2/24"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn setpriv (util-linux)"),
        "ksock mount without CAP_NET_ADMIN",
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot open the TAP device {name}: "))
            && out.stderr.contains("it needs CAP_NET_ADMIN"),
        "{}",
        out.stderr
    );
    assert!(!link_exists(&name), "a device was made");
}
