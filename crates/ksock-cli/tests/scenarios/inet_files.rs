// The scenarios of tests/inet_files.rs, run through a local mount by that binary and
// through `ksock export` and `ksock import` by tests/import_inet_files.rs (see common).

use common::{INET, Net, PATIENCE, read_line, wait_out};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A Python script over the inet directory: the helpers above, then `script`.
fn py(script: &str) -> String {
    format!("{INET}\n{script}")
}

fn inet(net: &Net) -> PathBuf {
    net.root.join("inet")
}

/// The rows of the inet `table` (its header checked and left out), split into columns.
fn table_rows(net: &Net) -> Vec<Vec<String>> {
    let text = fs::read_to_string(inet(net).join("table")).expect("read the inet table");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "id type state local remote recvq sendq backlog pending owner nonblock peer_uid \
             peer_pid proto_state pid"
        ),
        "{text}"
    );
    lines
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// Waits until the inet table lists no socket and nothing listens (the processes that
/// held sockets have exited, which the mount learns through their pidfds).
#[track_caller]
fn wait_inet_empty(net: &Net) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = table_rows(net);
        let addrs = fs::read_to_string(inet(net).join("addrs")).expect("read addrs");
        if rows.is_empty() && addrs.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "inet sockets left behind after {PATIENCE:?}: {rows:?}, listening: {addrs:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Checks that every inet socket has ended, then what [`Net::finish`] checks.
#[track_caller]
fn finish(net: Net) {
    wait_inet_empty(&net);
    net.finish();
}

/// The port of `host:port`.
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

/// Whether `port` is one of Linux's default ephemeral ports, which port 0 picks from.
fn ephemeral(port: u16) -> bool {
    (32768..=60999).contains(&port)
}

/// Closes a holder's stdin (it exits then) and waits for it.
#[track_caller]
fn release(mut holder: Child, what: &str) -> String {
    drop(holder.stdin.take());
    wait_out(holder, what).ok().to_string()
}

#[test]
fn a_tcp_echo_between_two_shells_with_nothing_but_file_io() {
    let net = Net::mount();
    // The README's server: an echo with dd, reading the port it was given from `local`.
    let mut server = net.spawn_sh(
        r#"set -e
        N=$ROOT/inet
        exec 3<>$N/stream
        id=$(cat <&3)
        echo "bind 127.0.0.1:0 && listen" >&3
        cat $N/$id/local
        exec 4<>$N/$id/accept
        dd bs=64k status=none <&4 >&4
        echo "server saw end of file"
        "#,
    );
    let local = read_line(&mut server);
    let local = local.trim_end();
    let port = port_of(local);
    assert_eq!(local, format!("127.0.0.1:{port}"));
    assert!(ephemeral(port), "port 0 picked {port}");
    let client = net.sh(&format!(
        r#"set -e
        N=$ROOT/inet
        exec 3<>$N/stream
        id=$(cat <&3)
        echo "connect 127.0.0.1:{port}" >&3
        cat $N/$id/remote
        exec 4<>$N/$id/data
        echo "hello over tcp" >&4
        head -c 15 <&4
        # FIN: the server's dd reads end of file, and the server's exit closes its end.
        echo "shutdown wr" >&3
        cat <&4
        echo "client saw end of file"
        "#
    ));
    assert_eq!(
        client.ok(),
        format!("127.0.0.1:{port}\nhello over tcp\nclient saw end of file\n")
    );
    assert_eq!(
        wait_out(server, "echo server").ok(),
        "server saw end of file\n"
    );
    finish(net);
}

/// One end of a transfer as a script printed it: `here there sent_sha got_len got_sha`.
#[derive(Debug)]
struct End {
    here: String,
    there: String,
    sent: String,
    got_len: usize,
    got: String,
}

fn ends(out: &str) -> Vec<End> {
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "{l:?}");
            End {
                here: f[0].into(),
                there: f[1].into(),
                sent: f[2].into(),
                got_len: f[3].parse().expect("a count"),
                got: f[4].into(),
            }
        })
        .collect()
}

const SIZE: usize = 4 << 20;

/// A server listening on `listen` exchanges 4 MiB each way, at once, with one client per
/// address of `connect` (`{port}` stands for the listener's port), each in its own
/// process. Checks every byte (sha256) and returns the listener's address and the server's
/// and clients' ends, in the order of `connect`.
#[track_caller]
fn transfer(net: &Net, listen: &str, connect: &[&str]) -> (String, Vec<(End, End)>) {
    let mut server = net.spawn_py(&py(&format!(
        r#"
SIZE = {SIZE}
l, lid = sock("stream")
ctl(l, "bind {listen} && listen")
print(text(f"{{N}}/{{lid}}/local").strip(), flush=True)
for _ in range({clients}):
    # Plan 9's listen: the handle is the connection's ctl, which can shut it down.
    lc = os.open(f"{{N}}/{{lid}}/listen", os.O_RDWR)
    aid = os.read(lc, 64).decode()
    d = os.open(f"{{N}}/{{aid}}/data", os.O_RDWR)
    here, there = text(f"{{N}}/{{aid}}/local").strip(), text(f"{{N}}/{{aid}}/remote").strip()
    sent, n, got = exchange(d, lc, random.Random("server " + there).randbytes(SIZE))
    print(here, there, sent, n, got, flush=True)
    os.close(d)
    os.close(lc)
"#,
        clients = connect.len()
    )));
    let laddr = read_line(&mut server).trim_end().to_string();
    let lport = port_of(&laddr);
    let clients: Vec<Child> = connect
        .iter()
        .map(|c| {
            let to = c.replace("{port}", &lport.to_string());
            net.spawn_py(&py(&format!(
                r#"
SIZE = {SIZE}
c, cid = sock("stream")
ctl(c, "connect {to}")
d = os.open(f"{{N}}/{{cid}}/data", os.O_RDWR)
here, there = text(f"{{N}}/{{cid}}/local").strip(), text(f"{{N}}/{{cid}}/remote").strip()
sent, n, got = exchange(d, c, random.Random("client " + here).randbytes(SIZE))
print(here, there, sent, n, got)
"#
            )))
        })
        .collect();
    let clients: Vec<End> = clients
        .into_iter()
        .map(|c| {
            let mut e = ends(wait_out(c, "transfer client").ok());
            assert_eq!(e.len(), 1);
            e.remove(0)
        })
        .collect();
    let mut servers = ends(wait_out(server, "transfer server").ok());
    assert_eq!(servers.len(), connect.len());
    let mut pairs = Vec::new();
    for c in clients {
        // The server's end of this client's connection, whichever order they came in.
        let at = servers
            .iter()
            .position(|s| s.there == c.here)
            .unwrap_or_else(|| panic!("no server end for {c:?} in {servers:?}"));
        let s = servers.remove(at);
        assert_eq!(
            s.here, c.there,
            "the two ends agree on the server's address"
        );
        assert_eq!((c.got_len, s.got_len), (SIZE, SIZE), "{c:?} {s:?}");
        assert_eq!(s.got, c.sent, "what the client sent, byte for byte");
        assert_eq!(c.got, s.sent, "what the server sent, byte for byte");
        assert_ne!(c.sent, s.sent, "the two directions carry different bytes");
        pairs.push((s, c));
    }
    (laddr, pairs)
}

#[test]
fn four_megabytes_each_way_over_ipv4() {
    let net = Net::mount();
    let (laddr, pairs) = transfer(&net, "127.0.0.1:0", &["127.0.0.1:{port}"]);
    let lport = port_of(&laddr);
    assert_eq!(laddr, format!("127.0.0.1:{lport}"));
    let (s, c) = &pairs[0];
    assert_eq!(c.there, format!("127.0.0.1:{lport}"));
    assert_eq!(c.here, format!("127.0.0.1:{}", port_of(&c.here)));
    assert!(ephemeral(port_of(&c.here)), "{c:?}");
    assert_eq!(s.here, laddr);
    finish(net);
}

#[test]
fn four_megabytes_each_way_over_ipv6() {
    let net = Net::mount();
    let (laddr, pairs) = transfer(&net, "[::1]:0", &["[::1]:{port}"]);
    let lport = port_of(&laddr);
    assert_eq!(laddr, format!("[::1]:{lport}"));
    let (s, c) = &pairs[0];
    assert_eq!(c.there, laddr);
    assert_eq!(c.here, format!("[::1]:{}", port_of(&c.here)));
    assert_eq!(s.here, laddr);
    finish(net);
}

#[test]
fn a_wildcard_listener_takes_ipv4_and_ipv6_clients() {
    let net = Net::mount();
    let (laddr, pairs) = transfer(&net, "*:0", &["127.0.0.1:{port}", "[::1]:{port}"]);
    let lport = port_of(&laddr);
    // Every address of both versions.
    assert_eq!(laddr, format!("[::]:{lport}"));
    let (s4, c4) = &pairs[0];
    // The IPv4 client's connection reads as IPv4 at both ends, not `[::ffff:...]`.
    assert_eq!(s4.here, format!("127.0.0.1:{lport}"));
    assert_eq!(c4.here, format!("127.0.0.1:{}", port_of(&c4.here)));
    let (s6, c6) = &pairs[1];
    assert_eq!(s6.here, format!("[::1]:{lport}"));
    assert_eq!(c6.here, format!("[::1]:{}", port_of(&c6.here)));
    finish(net);
}

#[test]
fn shutting_down_after_the_peer_did_still_reads_the_data_then_end_of_file() {
    // The passive close: the client's FIN comes first (the server's end is in CLOSE_WAIT);
    // the server's own `shutdown wr` then ends the connection normally (LAST_ACK, then
    // CLOSED once its FIN is acknowledged). The server still reads what was sent, then end
    // of file: nothing timed out. This is the order the transfers above may close in.
    // Closed both ways, the connection is over (Linux's socket is in TCP_CLOSE: no peer
    // name, shutdown is ENOTCONN), so both ends read `closed`.
    let net = Net::mount();
    let out = net.py(&py(r#"
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen")
c, cid = sock("stream")
ctl(c, "connect " + text(f"{N}/{lid}/local").strip())
cd = os.open(f"{N}/{cid}/data", os.O_RDWR)
a = os.open(f"{N}/{lid}/listen", os.O_RDWR)
aid = os.read(a, 64).decode()
ad = os.open(f"{N}/{aid}/data", os.O_RDWR)
os.write(cd, b"data")
ctl(c, "shutdown wr")
print(status(aid)["tcp_state"])
ctl(a, "shutdown wr")
def read(fd):
    try:
        return repr(os.read(fd, 100))
    except OSError as e:
        return errno.errorcode[e.errno]
print(read(ad), read(ad), read(cd))
print(status(aid)["state"], status(cid)["state"], repr(text(f"{N}/{aid}/err")))
"#));
    assert_eq!(out.ok(), "CLOSE_WAIT\nb'data' b'' b''\nclosed closed ''\n");
    finish(net);
}

#[test]
fn one_udp_file_with_headers_answers_three_clients() {
    let net = Net::mount();
    let mut server = net.spawn_py(&py(r#"
s, sid = sock("dgram")
ctl(s, "bind 127.0.0.1:0 && headers on")
print(text(f"{N}/{sid}/local").strip(), flush=True)
d = os.open(f"{N}/{sid}/data", os.O_RDWR)
for _ in range(3):
    r = os.read(d, 65536)
    head, body = r.split(b"\n", 1)
    reply = head + b"\n" + body.upper()
    # The count written is the whole write, address line included.
    print(head.decode(), body.decode(), os.write(d, reply) == len(reply), flush=True)
"#));
    let saddr = read_line(&mut server).trim_end().to_string();
    assert_eq!(saddr, format!("127.0.0.1:{}", port_of(&saddr)));
    let clients: Vec<Child> = (0..3)
        .map(|i| {
            net.spawn_py(&py(&format!(
                r#"
c, cid = sock("dgram")
ctl(c, "connect {saddr}")
d = os.open(f"{{N}}/{{cid}}/data", os.O_RDWR)
os.write(d, b"hello from client {i}")
print(port(text(f"{{N}}/{{cid}}/local").strip()), os.read(d, 65536).decode())
"#
            )))
        })
        .collect();
    let mut from_clients = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let out = wait_out(c, "udp client").ok().to_string();
        let (port, reply) = out.trim_end().split_once(' ').expect("port and reply");
        // The answer that came back is this client's own message.
        assert_eq!(reply, format!("HELLO FROM CLIENT {i}"));
        from_clients.push(format!("127.0.0.1:{port} hello from client {i} True"));
    }
    let out = wait_out(server, "udp server");
    let mut got: Vec<&str> = out.ok().lines().collect();
    got.sort();
    from_clients.sort();
    // Each read started with the address of the client that sent it.
    assert_eq!(got, from_clients);
    finish(net);
}

#[test]
fn a_datagram_write_without_a_good_address_line_is_einval() {
    let net = Net::mount();
    let out = net.py(&py(r#"
s, sid = sock("dgram")
ctl(s, "bind 127.0.0.1:0 && headers on")
d = os.open(f"{N}/{sid}/data", os.O_RDWR)
c, cid = sock("dgram")
ctl(c, "bind 127.0.0.1:0 && connect " + text(f"{N}/{sid}/local").strip())
caddr = text(f"{N}/{cid}/local").strip()
cd = os.open(f"{N}/{cid}/data:nonblock", os.O_RDWR)
for bad in [b"no address line", b"127.0.0.1\nno port", b"127.0.0.1:65536\nport too big",
            b"somewhere:53\nno such form", b"\nempty"]:
    print(errno_of(os.write, d, bad))
print(text(f"{N}/{sid}/err"), end="")
# Nothing went out.
print(errno_of(os.read, cd, 100))
# A good line: the whole write is counted.
msg = caddr.encode() + b"\nat last"
print(os.write(d, msg) == len(msg), os.read(cd, 100))
# With headers off again, a read is the bare datagram and a write needs a peer.
os.write(cd, b"bare")
ctl(s, "headers off")
print(os.read(d, 100), errno_of(os.write, d, msg))
print(text(f"{N}/{sid}/err"), end="")
# Headers are for datagram sockets.
t, tid = sock("stream")
print(errno_of(ctl, t, "headers on"))
print(text(f"{N}/{tid}/err"), end="")
"#));
    let why = "(with headers on, a write starts with a line naming the destination, host:port)";
    assert_eq!(
        out.ok(),
        format!(
            "EINVAL\nEINVAL\nEINVAL\nEINVAL\nEINVAL\n\
             EINVAL: write: Invalid argument {why}\n\
             EAGAIN\n\
             True b'at last'\n\
             b'bare' EDESTADDRREQ\n\
             EDESTADDRREQ: write: Destination address required (no destination: the socket \
             is not connected)\n\
             EINVAL\n\
             EINVAL: headers on: Invalid argument (headers are for datagram sockets)\n"
        )
    );
    finish(net);
}

#[test]
fn printf_answers_a_datagram_in_one_write() {
    // `printf` in sh writes its whole output at once: the address line and the payload
    // make one datagram, and the write must return the whole count, or sh writes the
    // rest again as a datagram of its own (whose first line is no address: EINVAL).
    let net = Net::mount();
    let out = net.sh(r#"set -e
        N=$ROOT/inet
        exec 5<>$N/dgram; u=$(cat <&5)
        echo "bind 127.0.0.1:0 && headers on" >&5
        exec 6<>$N/$u/data
        exec 7<>$N/dgram; c=$(cat <&7)
        echo "connect $(cat $N/$u/local)" >&7
        exec 8<>$N/$c/data
        echo ping >&8
        msg=$(dd bs=64k count=1 status=none <&6)
        from=$(printf '%s\n' "$msg" | head -n 1)
        printf '%s\npong\n' "$from" >&6
        echo "printf wrote it all"
        dd bs=64k count=1 status=none <&8
        # The README's way, through dd: one write(2) too.
        printf '%s\npong again\n' "$from" | dd bs=64k iflag=fullblock status=none >&6
        dd bs=64k count=1 status=none <&8
        # And nothing else came.
        if dd bs=64k count=1 status=none <$N/$c/data:nonblock 2>/dev/null; then
            echo "an extra datagram"
        else
            echo "nothing more"
        fi
        cat $N/$u/err
        echo "port ${from##*:} is $(sed 's/.*://' $N/$c/local)"
        "#);
    let text = out.ok();
    let (head, ports) = text.rsplit_once("port ").expect("the ports line");
    assert_eq!(
        head,
        "printf wrote it all\npong\npong again\nnothing more\n"
    );
    let (a, b) = ports.trim_end().split_once(" is ").expect("two ports");
    assert_eq!(a, b, "the address line named the client");
    finish(net);
}

#[test]
fn refused_operations_say_why() {
    let net = Net::mount();
    let out = net.py(&py(r#"
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen")
laddr = text(f"{N}/{lid}/local").strip()
lport = str(port(laddr))
# Bound and not listening: a connect to it is refused with a reset.
idle, iid = sock("stream")
ctl(idle, "bind 127.0.0.1:0")
iaddr = text(f"{N}/{iid}/local").strip()
iport = str(port(iaddr))
u, uid = sock("dgram")
ctl(u, "bind 127.0.0.1:0")
uport = str(port(text(f"{N}/{uid}/local").strip()))
def attempt(ty, cmd, then=None):
    fd, sid = sock(ty)
    e = errno_of(ctl, fd, cmd)
    err = text(f"{N}/{sid}/err").strip()
    for p, name in [(lport, "L"), (iport, "I"), (uport, "U")]:
        err = err.replace(p, name)
    print(e, "|", err)
    if then:
        print(" then", errno_of(ctl, fd, then))
attempt("stream", f"connect {iaddr}", then=f"connect {laddr}")
attempt("stream", f"connect [::1]:{lport}")
attempt("stream", f"connect 127.0.0.1:0")
attempt("stream", f"bind {laddr}")
attempt("stream", f"bind *:{lport}")
attempt("dgram", f"bind 127.0.0.1:{uport}")
attempt("stream", "bind 10.1.2.3:80")
attempt("dgram", "bind [2001:db8::1]:80")
for bad in ["127.0.0.1:65536", "127.0.0.1", "127.0.0.1:", "127.0.0.1:-1", "[::1]",
            "::1:80", "1.2.3.256:80", "example.com:80", "*:http"]:
    attempt("stream", f"bind {bad}")
attempt("stream", "connect 127.0.0.1:65536")
attempt("dgram", "connect [::1]:99999")
"#));
    assert_eq!(
        out.ok(),
        "ECONNREFUSED | ECONNREFUSED: connect \"127.0.0.1:I\": Connection refused (the host \
         refused the connection (nothing listens on that port))\n \
         then OK\n\
         ECONNREFUSED | ECONNREFUSED: connect \"[::1]:L\": Connection refused (the host refused \
         the connection (nothing listens on that port))\n\
         ECONNREFUSED | ECONNREFUSED: connect \"127.0.0.1:0\": Connection refused (port 0 takes \
         no connections)\n\
         EADDRINUSE | EADDRINUSE: bind \"127.0.0.1:L\": Address already in use (another socket \
         holds that port on an overlapping address)\n\
         EADDRINUSE | EADDRINUSE: bind \"*:L\": Address already in use (another socket holds \
         that port on an overlapping address)\n\
         EADDRINUSE | EADDRINUSE: bind \"127.0.0.1:U\": Address already in use (another socket \
         holds that port on an overlapping address)\n\
         EADDRNOTAVAIL | EADDRNOTAVAIL: bind \"10.1.2.3:80\": Cannot assign requested address \
         (no interface has that address)\n\
         EADDRNOTAVAIL | EADDRNOTAVAIL: bind \"[2001:db8::1]:80\": Cannot assign requested \
         address (no interface has that address)\n\
         EINVAL | EINVAL: bind \"127.0.0.1:65536\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: bind \"127.0.0.1\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: bind \"127.0.0.1:\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: bind \"127.0.0.1:-1\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: bind \"[::1]\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: bind \"::1:80\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: bind \"1.2.3.256:80\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: bind \"example.com:80\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: bind \"*:http\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: connect \"127.0.0.1:65536\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n\
         EINVAL | EINVAL: connect \"[::1]:99999\": Invalid argument (an address is a.b.c.d:port, [v6]:port, localhost:port or *:port, port 0 to 65535)\n"
    );
    finish(net);
}

local_mount_only! {
    "through an import the serving stack sees every request as the import's own user (SPEC section 8: the connection acts as the uid it was checked as), so per-user limits and privileged ports are that user's",
#[test]
fn ports_below_1024_need_root() {
    let net = Net::mount();
    let out = net.py(&py(r#"
child = subprocess.run([sys.executable, "-c", f"""
import os, errno
os.setgid(65534); os.setuid(65534)
N = '{N}'
def e(fn, *a):
    try: fn(*a)
    except OSError as x: return errno.errorcode[x.errno]
    return 'OK'
def attempt(ty, cmd):
    fd = os.open(N + '/' + ty, os.O_RDWR)
    sid = os.read(fd, 64).decode()
    r = e(os.write, fd, cmd.encode())
    print(r, '|', open(N + '/' + sid + '/err').read().strip())
attempt('stream', 'bind 127.0.0.1:80')
attempt('stream', 'bind [::1]:1023')
attempt('dgram', 'bind *:53')
attempt('stream', 'bind 127.0.0.1:1024')
attempt('dgram', 'bind 127.0.0.1:0')
"""], capture_output=True, text=True)
print(child.stdout, end="")
print(child.stderr, end="")
# Root may.
for ty, cmd in [("stream", "bind 127.0.0.1:80 && listen"), ("stream", "bind [::1]:1023"),
                ("dgram", "bind *:53")]:
    fd, sid = sock(ty)
    print(errno_of(ctl, fd, cmd), text(f"{N}/{sid}/local").strip())
print(text(f"{N}/addrs"), end="")
"#));
    assert_eq!(
        out.ok(),
        "EACCES | EACCES: bind \"127.0.0.1:80\": Permission denied (ports below 1024 need root)\n\
         EACCES | EACCES: bind \"[::1]:1023\": Permission denied (ports below 1024 need root)\n\
         EACCES | EACCES: bind \"*:53\": Permission denied (ports below 1024 need root)\n\
         OK | \n\
         OK | \n\
         OK 127.0.0.1:80\n\
         OK [::1]:1023\n\
         OK [::]:53\n\
         127.0.0.1:80\n"
    );
    finish(net);
}
}

/// Reads the rows of `ksock ss -a -e --mount ROOT`, split into columns.
fn ss_rows(net: &Net) -> Vec<Vec<String>> {
    let out = wait_out(
        common::ksock()
            .args(["ss", "-a", "-e", "--mount"])
            .arg(&net.root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ksock ss"),
        "ksock ss",
    );
    out.ok()
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn status_table_ss_and_addrs_show_tcp_states_and_plain_ipv4_addresses() {
    let net = Net::mount();
    // A listener, a client connected to it with 5 bytes the server has not read, the
    // connection accepted, and a bound UDP socket, held until the test lets go.
    let mut holder = net.spawn_py_with_stdin(&py(r#"
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen 5")
laddr = text(f"{N}/{lid}/local").strip()
c, cid = sock("stream")
ctl(c, f"connect {laddr}")
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
os.write(d, b"12345")
a = os.open(f"{N}/{lid}/listen", os.O_RDWR)
aid = os.read(a, 64).decode()
u, uid = sock("dgram")
ctl(u, "bind 127.0.0.1:0")
print(lid, cid, aid, uid, flush=True)
sys.stdin.read()
"#));
    let ids = read_line(&mut holder);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let [lid, cid, aid, uid] = ids[..] else {
        panic!("ids: {ids:?}")
    };
    let dir = inet(&net);
    let read = |id: &str, f: &str| fs::read_to_string(dir.join(id).join(f)).expect(f);
    let laddr = read(lid, "local");
    let lport = port_of(laddr.trim_end());
    let caddr = read(cid, "local");
    let cport = port_of(caddr.trim_end());
    let uaddr = read(uid, "local");
    let uport = port_of(uaddr.trim_end());
    // Plain IPv4 at both ends, though every inet socket of the tree is dual-stack.
    assert_eq!(laddr, format!("127.0.0.1:{lport}\n"));
    assert_eq!(read(lid, "remote"), "");
    assert_eq!(caddr, format!("127.0.0.1:{cport}\n"));
    assert_eq!(read(cid, "remote"), format!("127.0.0.1:{lport}\n"));
    assert_eq!(read(aid, "local"), format!("127.0.0.1:{lport}\n"));
    assert_eq!(read(aid, "remote"), format!("127.0.0.1:{cport}\n"));
    assert_eq!(uaddr, format!("127.0.0.1:{uport}\n"));
    assert_eq!(
        fs::read_to_string(dir.join("addrs")).unwrap(),
        format!("127.0.0.1:{lport}\n")
    );
    let status = |id: &str| -> Vec<(String, String)> {
        read(id, "status")
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(' ').expect("key value");
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let get = |st: &[(String, String)], k: &str| -> String {
        st.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {st:?}"))
    };
    let cst = status(cid);
    assert_eq!(get(&cst, "state"), "connected");
    assert_eq!(get(&cst, "tcp_state"), "ESTABLISHED");
    assert_eq!(get(&cst, "local"), format!("127.0.0.1:{cport}"));
    assert_eq!(get(&cst, "remote"), format!("127.0.0.1:{lport}"));
    let ast = status(aid);
    assert_eq!(get(&ast, "tcp_state"), "ESTABLISHED");
    assert_eq!(get(&ast, "recvq"), "5");
    let lst = status(lid);
    assert_eq!(get(&lst, "state"), "listening");
    assert_eq!(get(&lst, "tcp_state"), "LISTEN");
    assert_eq!(get(&lst, "backlog"), "5");
    assert_eq!(get(&lst, "syn_dropped"), "0");
    let ust = status(uid);
    assert_eq!(get(&ust, "drops"), "0");
    assert!(!ust.iter().any(|(k, _)| k == "tcp_state"), "{ust:?}");
    // The table's last columns are each socket's proto_state and the process that made it
    // (the holder, which also accepted the connection).
    let rows = table_rows(&net);
    let hp = holder.id().to_string();
    let want = |id: &str, rest: &[&str]| -> Vec<String> {
        std::iter::once(id)
            .chain(rest.iter().copied())
            .map(String::from)
            .collect()
    };
    let (l, c, p) = (
        format!("127.0.0.1:{lport}"),
        format!("127.0.0.1:{cport}"),
        format!("127.0.0.1:{uport}"),
    );
    assert_eq!(
        rows,
        [
            want(
                lid,
                &[
                    "stream",
                    "listening",
                    &l,
                    "-",
                    "0",
                    "0",
                    "5",
                    "0",
                    "0",
                    "off",
                    "-",
                    "-",
                    "LISTEN",
                    &hp
                ]
            ),
            want(
                cid,
                &[
                    "stream",
                    "connected",
                    &c,
                    &l,
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    "off",
                    "-",
                    "-",
                    "ESTABLISHED",
                    &hp
                ]
            ),
            want(
                aid,
                &[
                    "stream",
                    "connected",
                    &l,
                    &c,
                    "5",
                    "0",
                    "0",
                    "0",
                    "0",
                    "off",
                    "-",
                    "-",
                    "ESTABLISHED",
                    &hp
                ]
            ),
            want(
                uid,
                &[
                    "dgram", "bound", &p, "-", "0", "0", "0", "0", "0", "off", "-", "-", "-", &hp
                ]
            ),
        ]
    );
    // ksock ss in ss's words: a listener's Recv-Q and Send-Q are its pending connections
    // and its backlog; no peer is the any address; -e adds the owner and the id.
    let ss = ss_rows(&net);
    let ext = |id: &str, rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
        v.extend(["uid:0".to_string(), format!("sk:{id}")]);
        v
    };
    assert_eq!(
        ss,
        [
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
            .map(String::from)
            .to_vec(),
            ext(lid, &["tcp", "LISTEN", "0", "5", &l, "0.0.0.0:*"]),
            ext(cid, &["tcp", "ESTAB", "0", "0", &c, &l]),
            ext(aid, &["tcp", "ESTAB", "5", "0", &l, &c]),
            ext(uid, &["udp", "UNCONN", "0", "0", &p, "0.0.0.0:*"]),
        ]
    );
    assert_eq!(release(holder, "holder"), "");
    finish(net);
}

#[test]
fn a_full_backlog_holds_a_connect_back_without_a_reset() {
    let net = Net::mount();
    let out = net.py(&py(r#"
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen 2")
laddr = text(f"{N}/{lid}/local").strip()
clients = []
for i in range(3):
    c, cid = sock("stream:nonblock")
    r = errno_of(ctl, c, f"connect {laddr}")
    st = status(cid)
    print(i, r, st["state"], st["tcp_state"])
    clients.append((c, cid))
c3, cid3 = clients[2]
print(text(f"{N}/{cid3}/err").replace(laddr, "L"), end="")
print(errno_of(ctl, c3, f"connect {laddr}"))
st = status(lid)
# Its SYN was dropped, not answered with a reset.
print(st["backlog"], st["pending"], int(st["syn_dropped"]) >= 1)
d3 = os.open(f"{N}/{cid3}/data", os.O_RDWR)
p = select.poll()
p.register(d3, select.POLLOUT)
print(p.poll(0))
# Accepting makes room; the third's SYN comes again and its connect completes: OUT, and
# nothing else (no error, no hang-up).
accepted = [os.open(f"{N}/{lid}/listen", os.O_RDWR) for _ in range(2)]
print([ev for _, ev in p.poll(60000)] == [select.POLLOUT])
st = status(cid3)
print(st["state"], st["tcp_state"])
accepted.append(os.open(f"{N}/{lid}/listen", os.O_RDWR))
# Accepted in the order they connected, and every connection carries data both ways.
for (c, cid), a in zip(clients, accepted):
    aid = os.read(a, 64).decode()
    print(text(f"{N}/{aid}/remote") == text(f"{N}/{cid}/local"), end=" ")
    cd = os.open(f"{N}/{cid}/data", os.O_RDWR)
    ad = os.open(f"{N}/{aid}/data", os.O_RDWR)
    os.write(cd, b"up " + cid.encode())
    os.write(ad, b"down " + aid.encode())
    print(os.read(ad, 100) == b"up " + cid.encode(), os.read(cd, 100) == b"down " + aid.encode(),
          status(cid)["tcp_state"], status(aid)["tcp_state"])
print(status(lid)["pending"])
"#));
    assert_eq!(
        out.ok(),
        "0 EINPROGRESS connected ESTABLISHED\n\
         1 EINPROGRESS connected ESTABLISHED\n\
         2 EINPROGRESS connecting SYN_SENT\n\
         EINPROGRESS: connect \"L\": Operation now in progress\n\
         EALREADY\n\
         2 2 True\n\
         []\n\
         True\n\
         connected ESTABLISHED\n\
         True True True ESTABLISHED ESTABLISHED\n\
         True True True ESTABLISHED ESTABLISHED\n\
         True True True ESTABLISHED ESTABLISHED\n\
         0\n"
    );
    // The family's counters saw the dropped SYN too (`/net/inet/stats`, `name value`).
    let stats = fs::read_to_string(inet(&net).join("stats")).expect("read inet/stats");
    let syn: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("syn_dropped ")?.parse().ok())
        .unwrap_or_else(|| panic!("no syn_dropped in {stats}"));
    assert!(syn >= 1, "{stats}");
    assert!(stats.contains("\nframes_bad 0\n"), "{stats}");
    assert!(stats.contains("\nloopback_frames "), "{stats}");
    finish(net);
}

#[test]
fn sockets_end_with_their_files_and_processes_and_free_their_ports() {
    let net = Net::mount();
    // Sockets in many states, left to the process's exit: a connection used and shut down
    // one way, one with data its server never read (its close is a reset), one never
    // accepted, a connect waiting for room in a full backlog, one hung up, UDP sockets
    // with a datagram nobody read.
    let out = net.py(&py(r#"
tcp, udp = [], []
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen 4")
laddr = text(f"{N}/{lid}/local").strip()
tcp.append(port(laddr))
def client(to, flags=""):
    c, cid = sock("stream" + flags)
    r = errno_of(ctl, c, f"connect {to}")
    tcp.append(port(text(f"{N}/{cid}/local").strip()))
    return r, c, os.open(f"{N}/{cid}/data", os.O_RDWR)
_, c1, d1 = client(laddr)
a1 = os.open(f"{N}/{lid}/accept", os.O_RDWR)
os.write(d1, b"ping")
print(os.read(a1, 10), end=" ")
os.write(a1, b"pong")
print(os.read(d1, 10), end=" ")
ctl(c1, "shutdown wr")
print(os.read(a1, 10), end=" ")
_, c2, d2 = client(laddr)
a2 = os.open(f"{N}/{lid}/accept", os.O_RDWR)
os.write(d2, b"never read")
client(laddr)
f, fid = sock("stream")
ctl(f, "bind [::1]:0 && listen 1")
faddr = text(f"{N}/{fid}/local").strip()
tcp.append(port(faddr))
print(client(faddr)[0], client(faddr, ":nonblock")[0], end=" ")
h, hid = sock("stream")
ctl(h, "bind 127.0.0.1:0")
tcp.append(port(text(f"{N}/{hid}/local").strip()))
ctl(h, "hangup")
u1, u1id = sock("dgram")
ctl(u1, "bind 127.0.0.1:0")
u1addr = text(f"{N}/{u1id}/local").strip()
u2, u2id = sock("dgram")
ctl(u2, f"connect {u1addr}")
os.write(os.open(f"{N}/{u2id}/data", os.O_RDWR), b"unread")
udp += [port(u1addr), port(text(f"{N}/{u2id}/local").strip())]
print(len([n for n in os.listdir(N) if n.isdigit()]))
print(json.dumps({"tcp": tcp, "udp": udp}))
"#));
    let text = out.ok();
    let (first, ports) = text.split_once('\n').expect("two lines");
    // A listener, 3 clients and the 2 connections accepted (the third has no directory
    // until it is), a second listener with a client connected and one connecting, two UDP
    // sockets.
    assert_eq!(first, "b'ping' b'pong' b'' OK EINPROGRESS 11");
    // Everything ended with the process.
    wait_inet_empty(&net);
    // And nothing of them holds a port: each can be bound again, on every address.
    let out = net.py(&py(&format!(
        r#"
ports = json.loads('{}')
held = []
for ty in ("tcp", "udp"):
    for p in sorted(set(ports[ty])):
        fd, sid = sock("stream" if ty == "tcp" else "dgram")
        r = errno_of(ctl, fd, f"bind *:{{p}}")
        if r != "OK":
            print(ty, p, r, text(f"{{N}}/{{sid}}/err").strip())
        held.append(fd)
for fd in held:
    ctl(fd, "hangup")
# The same four-tuple as the first connection again: nothing is left of the old one.
l, lid = sock("stream")
ctl(l, f"bind 127.0.0.1:{{ports['tcp'][0]}} && listen")
c, cid = sock("stream")
print(errno_of(ctl, c, f"bind 127.0.0.1:{{ports['tcp'][1]}} && connect 127.0.0.1:{{ports['tcp'][0]}}"))
a = os.open(f"{{N}}/{{lid}}/accept", os.O_RDWR)
os.write(os.open(f"{{N}}/{{cid}}/data", os.O_RDWR), b"again")
print(os.read(a, 10), len(ports["tcp"]), len(ports["udp"]))
"#,
        ports.trim_end()
    )));
    assert_eq!(out.ok(), "OK\nb'again' 8 2\n");
    finish(net);
}

#[test]
fn a_socket_whose_files_are_closed_ends_while_its_creator_lives() {
    // A socket lives while its creator lives or a file of it is open: a listener's
    // accepted connection lives only while its files are open, and a socket whose creator
    // hung it up ends at once, both while their processes go on.
    let net = Net::mount();
    let mut holder = net.spawn_py_with_stdin(&py(r#"
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen")
laddr = text(f"{N}/{lid}/local").strip()
c, cid = sock("stream")
ctl(c, f"connect {laddr}")
a = os.open(f"{N}/{lid}/listen", os.O_RDWR)
aid = os.read(a, 64).decode()
print(lid, cid, aid, flush=True)
sys.stdin.readline()
# The accepted connection's only file closes; the client sees end of file.
os.close(a)
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
print(os.read(d, 10), flush=True)
sys.stdin.readline()
ctl(c, "hangup")
ctl(l, "hangup")
print(os.path.exists(f"{N}/{cid}"), os.path.exists(f"{N}/{lid}"), flush=True)
sys.stdin.read()
"#));
    let ids_line = read_line(&mut holder);
    let ids: Vec<&str> = ids_line.split_whitespace().collect();
    let ids_of = |rows: Vec<Vec<String>>| -> Vec<String> {
        rows.into_iter().map(|r| r[0].clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids_of(table_rows(&net)), ids);
    let mut stdin = holder.stdin.take().expect("stdin");
    stdin.write_all(b"\n").unwrap();
    assert_eq!(read_line(&mut holder), "b''\n");
    common::wait_until("the accepted connection ends", || {
        ids_of(table_rows(&net)) == ids[..2]
    });
    assert!(!inet(&net).join(ids[2]).exists());
    stdin.write_all(b"\n").unwrap();
    assert_eq!(read_line(&mut holder), "False False\n");
    // The process still runs, and none of its sockets is left.
    assert_eq!(table_rows(&net), Vec::<Vec<String>>::new());
    assert_eq!(fs::read_to_string(inet(&net).join("addrs")).unwrap(), "");
    drop(stdin);
    assert_eq!(wait_out(holder, "holder").ok(), "");
    finish(net);
}

#[test]
fn tcp_and_udp_buffers_count_against_the_users_buffered_bytes() {
    // smoltcp allocates a connection's buffers whole, so each end charges both (208 KiB
    // each at the default sizes) to its user when it is set up. 2 MiB holds two connections
    // with both ends; the third connect is ENOBUFS, and so is a UDP bind (its two buffers
    // cost as much); closing one connection frees room.
    let net = Net::mount_with(&["--max-buffered-per-user", "2M"]);
    let out = net.py(&py(r#"
l, lid = sock("stream")
ctl(l, "bind 127.0.0.1:0 && listen 8")
laddr = text(f"{N}/{lid}/local").strip()
held = []
for i in range(2):
    c, cid = sock("stream")
    ctl(c, f"connect {laddr}")
    a = os.open(f"{N}/{lid}/listen", os.O_RDWR)
    held.append((c, cid, a))
c3, cid3 = sock("stream")
print(errno_of(ctl, c3, f"connect {laddr}"))
print(text(f"{N}/{cid3}/err").replace(laddr, "L"), end="")
u, uid = sock("dgram")
print(errno_of(ctl, u, "bind 127.0.0.1:0"))
# One connection closed: both its ends' buffers come back, and the third connect goes.
c, cid, a = held.pop()
os.close(a)
ctl(c, "hangup")
for _ in range(500):
    r = errno_of(ctl, c3, f"connect {laddr}")
    if r != "ENOBUFS":
        break
    time.sleep(0.01)
print(r, status(cid3)["tcp_state"])
"#));
    assert_eq!(
        out.ok(),
        "ENOBUFS\n\
         ENOBUFS: connect \"L\": No buffer space available (the user's buffered-bytes limit \
         leaves no room for this socket's buffers)\n\
         ENOBUFS\n\
         OK ESTABLISHED\n"
    );
    finish(net);
}
