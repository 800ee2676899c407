// The scenarios of tests/ss.rs, run through a local mount by that binary and
// through `ksock export` and `ksock import` by tests/import_ss.rs (see common).

use common::{Net, Out, read_line, wait_out};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};

/// Makes one socket of every kind and state `ss` tells apart, prints `{name: id}` (and the
/// descriptor of `tc`'s data file) as JSON, then holds them until its stdin closes.
const HOLDER: &str = r#"
import json
R = os.environ["ROOT"]
def mk(path, flags=os.O_RDWR):
    fd = os.open(f"{R}/{path}", flags)
    return fd, os.read(fd, 64).decode()
def status(fam, sid):
    return dict(l.split(" ", 1) for l in open(f"{R}/{fam}/{sid}/status").read().splitlines())
def wait_tcp(sid, want):
    # The states below follow segments on the loopback: wait for them (a minute at most;
    # protection against a hang, not a measurement).
    deadline = time.monotonic() + 60
    while status("inet", sid)["tcp_state"] != want:
        assert time.monotonic() < deadline, f"{sid} never reached {want}"
        time.sleep(0.005)
ids = {}
fds = {}
def accept(lid):
    f = os.open(f"{R}/inet/{lid}/listen", os.O_RDWR)
    fds[f] = True
    return os.read(f, 64).decode()
tl, ids["tl"] = mk("inet/stream")
os.write(tl, b"bind 127.0.0.1:0 && listen 4")
at = open(f"{R}/inet/{ids['tl']}/local").read().strip()
tc, ids["tc"] = mk("inet/stream")
os.write(tc, f"connect {at}".encode())
td = os.open(f"{R}/inet/{ids['tc']}/data", os.O_RDWR)
os.write(td, b"hello")
ids["ta"] = accept(ids["tl"])
tn, ids["tn"] = mk("inet/stream")
# A listener whose backlog one connection fills: the next connect stays in SYN-SENT.
tf, ids["tf"] = mk("inet/stream")
os.write(tf, b"bind 127.0.0.1:0 && listen 1")
fat = open(f"{R}/inet/{ids['tf']}/local").read().strip()
tf1, ids["tf1"] = mk("inet/stream")
os.write(tf1, f"connect {fat}".encode())
tf2, ids["tf2"] = mk("inet/stream:nonblock")
try:
    os.write(tf2, f"connect {fat}".encode())
except BlockingIOError:
    pass
# Half closed: FIN-WAIT-2 at the end that shut down, CLOSE-WAIT at the other.
twc, ids["twc"] = mk("inet/stream")
os.write(twc, f"connect {at}".encode())
ids["twa"] = accept(ids["tl"])
os.write(twc, b"shutdown wr")
wait_tcp(ids["twc"], "FIN_WAIT2")
wait_tcp(ids["twa"], "CLOSE_WAIT")
ub, ids["ub"] = mk("inet/dgram")
os.write(ub, b"bind 127.0.0.1:0")
uat = open(f"{R}/inet/{ids['ub']}/local").read().strip()
uc, ids["uc"] = mk("inet/dgram")
os.write(uc, f"connect {uat}".encode())
xl, ids["xl"] = mk("local/seqpacket")
os.write(xl, b"bind ssx && listen")
xc, ids["xc"] = mk("local/seqpacket")
os.write(xc, b"connect ssx")
xs, ids["xs"] = mk("local/stream")
xd, ids["xd"] = mk("local/dgram")
os.write(xd, b"bind ssd")
print(json.dumps({"ids": ids, "td": td, "port": at.rsplit(":", 1)[1]}), flush=True)
sys.stdin.read()
"#;

struct Held {
    holder: Child,
    /// Socket name (as in [`HOLDER`]) to id.
    ids: BTreeMap<String, String>,
    /// The descriptor of `tc`'s data file in the holder.
    td: String,
    /// `tl`'s port.
    port: String,
}

impl Held {
    fn start(net: &Net) -> Held {
        let mut holder = net.spawn_py_with_stdin(HOLDER);
        let line = read_line(&mut holder);
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("holder said {line:?}: {e}"));
        let ids = v["ids"]
            .as_object()
            .expect("ids")
            .iter()
            .map(|(k, id)| (k.clone(), id.as_str().expect("an id").to_string()))
            .collect();
        Held {
            td: v["td"].to_string(),
            port: v["port"].as_str().expect("port").to_string(),
            ids,
            holder,
        }
    }

    fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }

    /// The names of the sockets of an `ss -e` output (by their `sk:ID`).
    fn names(&self, out: &str) -> BTreeSet<String> {
        let by_id: BTreeMap<&str, &str> = self
            .ids
            .iter()
            .map(|(k, v)| (v.as_str(), k.as_str()))
            .collect();
        out.lines()
            .skip(1)
            .filter(|l| !l.starts_with('\t'))
            .map(|l| {
                let sk = l
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("sk:"))
                    .unwrap_or_else(|| panic!("no sk: in {l:?}"));
                by_id.get(sk).map_or(sk.to_string(), |n| n.to_string())
            })
            .collect()
    }

    fn finish(self, net: Net) {
        let mut holder = self.holder;
        drop(holder.stdin.take());
        wait_out(holder, "holder").ok();
        common::wait_until("the holder's sockets end", || {
            ss(&net, &["-a"]).ok().lines().count() == 1
        });
        net.finish();
    }
}

/// Runs `ksock ss ARGS --mount ROOT`.
fn ss(net: &Net, args: &[&str]) -> Out {
    wait_out(
        common::ksock()
            .arg("ss")
            .args(args)
            .arg("--mount")
            .arg(&net.root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ksock ss"),
        "ksock ss",
    )
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn options_and_state_filters_list_what_ss_would() {
    let net = Net::mount();
    let held = Held::start(&net);
    let names = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push("-e");
        held.names(ss(&net, &a).ok())
    };
    // Every socket, each with ss's netid and state words.
    let all = ss(&net, &["-a", "-e"]);
    let mut words = BTreeMap::new();
    for l in all.ok().lines().skip(1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        let sk = w.last().and_then(|s| s.strip_prefix("sk:")).expect("sk:");
        let name = held
            .ids
            .iter()
            .find(|(_, v)| v.as_str() == sk)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("an unknown socket: {l}"));
        words.insert(name, format!("{} {}", w[0], w[1]));
    }
    let want: BTreeMap<String, String> = [
        ("tl", "tcp LISTEN"),
        ("tc", "tcp ESTAB"),
        ("ta", "tcp ESTAB"),
        ("tn", "tcp UNCONN"),
        ("tf", "tcp LISTEN"),
        ("tf1", "tcp ESTAB"),
        ("tf2", "tcp SYN-SENT"),
        ("twc", "tcp FIN-WAIT-2"),
        ("twa", "tcp CLOSE-WAIT"),
        ("ub", "udp UNCONN"),
        ("uc", "udp ESTAB"),
        ("xl", "u_seq LISTEN"),
        ("xc", "u_seq ESTAB"),
        ("xs", "u_str UNCONN"),
        ("xd", "u_dgr UNCONN"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    assert_eq!(words, want, "{}", all.stdout);
    // Without -l or -a, as ss: no listeners, no unconnected TCP or UDP.
    assert_eq!(
        names(&[]),
        set(&["tc", "ta", "tf1", "tf2", "twc", "twa", "uc", "xc", "xd"])
    );
    assert_eq!(
        names(&["-l"]),
        set(&["tl", "tn", "tf", "ub", "xl", "xs", "xd"])
    );
    assert_eq!(
        names(&["-t"]),
        set(&["tc", "ta", "tf1", "tf2", "twc", "twa"])
    );
    assert_eq!(
        names(&["-ta"]),
        set(&["tl", "tc", "ta", "tn", "tf", "tf1", "tf2", "twc", "twa"])
    );
    assert_eq!(names(&["-tl"]), set(&["tl", "tn", "tf"]));
    assert_eq!(names(&["-u"]), set(&["uc"]));
    assert_eq!(names(&["-ua"]), set(&["ub", "uc"]));
    assert_eq!(names(&["-x"]), set(&["xc", "xd"]));
    assert_eq!(names(&["-xa"]), set(&["xl", "xc", "xs", "xd"]));
    assert_eq!(names(&["-xl"]), set(&["xl", "xs", "xd"]));
    assert_eq!(
        names(&["-t", "-u"]),
        set(&["tc", "ta", "tf1", "tf2", "twc", "twa", "uc"])
    );
    assert_eq!(names(&["-n", "-x"]), set(&["xc", "xd"]));
    // State filters, with ss's names and groups.
    assert_eq!(
        names(&["state", "established"]),
        set(&["tc", "ta", "tf1", "uc", "xc"])
    );
    assert_eq!(names(&["state", "listening"]), set(&["tl", "tf", "xl"]));
    assert_eq!(names(&["state", "syn-sent"]), set(&["tf2"]));
    assert_eq!(names(&["state", "fin-wait-2"]), set(&["twc"]));
    assert_eq!(names(&["state", "close-wait"]), set(&["twa"]));
    assert_eq!(names(&["state", "closed"]), set(&["tn", "ub", "xs", "xd"]));
    assert_eq!(
        names(&["-t", "state", "connected"]),
        set(&["tc", "ta", "tf1", "tf2", "twc", "twa"])
    );
    assert_eq!(
        names(&["-t", "state", "synchronized"]),
        set(&["tc", "ta", "tf1", "twc", "twa"])
    );
    assert_eq!(
        names(&["-t", "state", "established", "state", "syn-sent"]),
        set(&["tc", "ta", "tf1", "tf2"])
    );
    assert_eq!(
        names(&["-x", "exclude", "listening"]),
        set(&["xc", "xs", "xd"])
    );
    assert_eq!(names(&["-u", "state", "all"]), set(&["ub", "uc"]));
    // The columns: Netid only when more than one kind is listed, State unless one state
    // is (ss's rule).
    let head = |args: &[&str]| -> String {
        let out = ss(&net, args);
        let first = out.ok().lines().next().unwrap_or("");
        first.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let full = "Netid State Recv-Q Send-Q Local Address:Port";
    assert!(head(&["-a"]).starts_with(full), "{}", head(&["-a"]));
    assert!(head(&["-x"]).starts_with(full));
    assert!(head(&["-t"]).starts_with("State Recv-Q Send-Q Local"));
    assert!(head(&["-u"]).starts_with("Recv-Q Send-Q Local"));
    assert!(head(&["state", "listening"]).starts_with("Netid Recv-Q Send-Q"));
    // Queues and addresses: the accepted connection holds the 5 unread bytes; a listener
    // shows its pending connections and backlog, and no peer as the any address.
    let t = ss(&net, &["-ta", "-e"]);
    let row = |name: &str| -> Vec<String> {
        let sk = format!("sk:{}", held.id(name));
        t.stdout
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == sk))
            .unwrap_or_else(|| panic!("no {name} in {}", t.stdout))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let l = format!("127.0.0.1:{}", held.port);
    assert_eq!(row("tl")[..5], ["LISTEN", "0", "4", &l, "0.0.0.0:*"]);
    assert_eq!(row("ta")[..4], ["ESTAB", "5", "0", &l]);
    assert_eq!(row("tf")[..3], ["LISTEN", "1", "1"]);
    assert_eq!(row("tn")[..5], ["UNCONN", "0", "0", "*:*", "*:*"]);
    held.finish(net);
}

#[test]
fn usage_errors_exit_with_status_2_and_say_why() {
    let net = Net::mount();
    for (args, says) in [
        (&["state", "bogus"][..], "wrong state name: bogus"),
        (&["state", "listen"][..], "wrong state name: listen"),
        (&["state"][..], "needs a state name"),
        (&["dport", "=", ":80"][..], "not supported"),
        (&["-Q"][..], "unexpected argument '-Q'"),
    ] {
        let out = ss(&net, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    net.finish();
}

#[test]
fn extended_and_info_show_owner_id_tcp_details_and_a_listeners_queue() {
    let net = Net::mount();
    let held = Held::start(&net);
    let out = ss(&net, &["-a", "-e", "-i"]);
    let text = out.ok();
    // Each socket's row, and the line -i puts under it ("" when there is none).
    let info = |name: &str| -> (String, String) {
        let sk = format!("sk:{}", held.id(name));
        let mut lines = text.lines();
        let row = lines
            .find(|l| l.split_whitespace().any(|w| w == sk))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        let next = lines.next().filter(|l| l.starts_with("\t ")).unwrap_or("");
        (row.to_string(), next.to_string())
    };
    for name in held.ids.keys() {
        let (row, _) = info(name);
        assert!(
            row.ends_with(&format!(" uid:0 sk:{}", held.id(name))),
            "{row}"
        );
    }
    // An established TCP connection over the loopback (MTU 65535, IPv4: MSS 65495).
    let (_, tc) = info("tc");
    let words: Vec<&str> = tc.split_whitespace().collect();
    assert_eq!(
        words[..4],
        ["ts", "reno", "mss:65495", "pmtu:65535"],
        "{tc}"
    );
    for key in ["rcv_space:", "snd_space:"] {
        let n = words
            .iter()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {tc}"));
        assert!(n.parse::<u64>().is_ok_and(|n| n > 0), "{tc}");
    }
    // A listener: backlog, pending connections, SYNs dropped for a full queue.
    let (_, tf) = info("tf");
    let (head, dropped) = tf
        .rsplit_once("syn_dropped:")
        .unwrap_or_else(|| panic!("{tf}"));
    assert_eq!(head, "\t backlog:1 pending:1 ");
    assert!(dropped.parse::<u64>().is_ok_and(|n| n >= 1), "{tf}");
    assert_eq!(info("tl").1, "\t backlog:4 pending:0 syn_dropped:0");
    assert_eq!(info("xl").1, "\t backlog:128 pending:1");
    assert_eq!(info("ub").1, "\t drops:0");
    // A connection still connecting has no details yet; a local one has none.
    assert_eq!(info("xc").1, "");
    // Without -i, no such lines.
    assert!(!ss(&net, &["-a"]).ok().contains('\t'));
    held.finish(net);
}

#[test]
fn processes_are_named_from_proc() {
    let net = Net::mount();
    // A Python socket, a shell's, and another user's.
    let mut holder = net.spawn_py_with_stdin(
        r#"
import subprocess
R = os.environ["ROOT"]
def mk(path):
    fd = os.open(f"{R}/{path}", os.O_RDWR)
    return fd, os.read(fd, 64).decode()
p, pid_ = mk("inet/stream")
os.write(p, b"bind 127.0.0.1:0 && listen")
at = open(f"{R}/inet/{pid_}/local").read().strip()
c, cid = mk("inet/stream")
os.write(c, f"connect {at}".encode())
d = os.open(f"{R}/inet/{cid}/data", os.O_RDWR)
sh = subprocess.Popen(["sh", "-c", 'exec 3<>"$ROOT/local/stream"; read id <&3; echo "$id"; read x'],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
shid = sh.stdout.readline().strip()
nobody = subprocess.Popen([sys.executable, "-c", """
import os, sys
os.setgid(65534); os.setuid(65534)
fd = os.open(os.environ["ROOT"] + "/local/seqpacket", os.O_RDWR)
print(os.read(fd, 64).decode(), flush=True)
sys.stdin.read()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
nid = nobody.stdout.readline().strip()
print(cid, d, shid, sh.pid, nid, nobody.pid, flush=True)
sys.stdin.read()
sh.stdin.close(); sh.wait()
nobody.stdin.close(); nobody.wait()
"#,
    );
    let line = read_line(&mut holder);
    let [cid, d, shid, shpid, nid, npid] = line.split_whitespace().collect::<Vec<_>>()[..] else {
        panic!("{line}")
    };
    let pid = holder.id();
    let out = ss(&net, &["-a", "-p", "-e"]);
    let text = out.ok();
    let row = |id: &str| -> String {
        let sk = format!("sk:{id}");
        text.lines()
            .find(|l| l.split_whitespace().any(|w| w == sk))
            .unwrap_or_else(|| panic!("no socket {id} in {text}"))
            .to_string()
    };
    // The client's data file is the holder's descriptor d; a factory's handle (the
    // others' ctl) names no socket, so no fd.
    assert!(
        row(cid).ends_with(&format!(
            " users:((\"python3\",pid={pid},fd={d})) uid:0 sk:{cid}"
        )),
        "{text}"
    );
    assert!(
        row(shid).ends_with(&format!(" users:((\"sh\",pid={shpid})) uid:0 sk:{shid}")),
        "{text}"
    );
    assert!(
        row(nid).ends_with(&format!(
            " users:((\"python3\",pid={npid})) uid:65534 sk:{nid}"
        )),
        "{text}"
    );
    // -tp: the Python TCP connection, its process and no -e fields.
    let t = ss(&net, &["-tp"]);
    let lines: Vec<&str> = t.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{}", t.stdout);
    assert!(
        lines[1].ends_with(&format!(" users:((\"python3\",pid={pid},fd={d}))")),
        "{}",
        t.stdout
    );
    drop(holder.stdin.take());
    wait_out(holder, "holder").ok();
    common::wait_until("the sockets end", || {
        ss(&net, &["-a"]).ok().lines().count() == 1
    });
    net.finish();
}

#[test]
fn a_socket_whose_maker_has_exited_shows_no_process() {
    let net = Net::mount();
    let mut maker = net.spawn_py_with_stdin(
        r#"
fd = os.open(f"{N}/seqpacket", os.O_RDWR)
sid = os.read(fd, 64).decode()
os.write(fd, b"bind orphaned")
child = os.fork()
if child == 0:
    # Holds the socket's ctl (inherited) until the test closes its stdin.
    sys.stdin.read()
    os._exit(0)
print(sid, flush=True)
os._exit(0)
"#,
    );
    let sid = read_line(&mut maker).trim().to_string();
    // The maker has exited (and is reaped); its child keeps the socket alive.
    let stdin = maker.stdin.take();
    let pid = maker.id();
    maker.wait().expect("wait for the maker");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let out = ss(&net, &["-a", "-p", "-e"]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let w: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        w,
        [
            "u_seq",
            "UNCONN",
            "0",
            "0",
            "orphaned",
            "*",
            "uid:0",
            &format!("sk:{sid}")
        ],
        "{text}"
    );
    drop(stdin);
    net.finish();
}

#[test]
fn json_is_one_array_python_reads() {
    let net = Net::mount();
    let held = Held::start(&net);
    let ids = serde_json::to_string(&held.ids).expect("ids as JSON");
    let out = net.py(&format!(
        "import json, subprocess\nIDS = json.loads({ids:?})\n{}",
        r#"
R = os.environ["ROOT"]
def ss(*args):
    r = subprocess.run([os.environ["KSOCK"], "ss", *args, "--mount", R], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)
rows = ss("-a", "--json")
print(type(rows).__name__, len(rows))
by = {str(r["id"]): r for r in rows}
for name, sid in IDS.items():
    r = by[sid]
    print(name, r["netid"], r["state"], r["family"], r["type"], r["ksock_state"], r["uid"],
          r["process"], r["pid"] is not None, sorted(r["details"]))
tc, ta, tl = by[IDS["tc"]], by[IDS["ta"]], by[IDS["tl"]]
print(tc["local"] == ta["peer"], tc["send_q"], tc["recv_q"], tc["details"]["mss"],
      type(tc["details"]["rcv_space"]).__name__, tc["fds"])
print(ta["recv_q"], tl["peer"])
# The filters apply: -t state established, as a list.
print(sorted(r["id"] for r in ss("-t", "--json", "state", "established")) ==
      sorted(int(IDS[n]) for n in ["tc", "ta", "tf1"]))
print(ss("-u", "--json", "state", "syn-sent"))
"#
    ));
    let text = out.ok();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("list 15"), "{text}");
    let tcp_conn = "['congestion', 'mss', 'mtu', 'nodelay', 'rcv_space', 'snd_space', \
                    'tcp_state', 'timestamps']";
    let want: BTreeMap<&str, String> = [
        (
            "tl",
            "tcp LISTEN inet stream listening 0 python3 True ['syn_dropped', 'tcp_state']"
                .to_string(),
        ),
        (
            "tc",
            format!("tcp ESTAB inet stream connected 0 python3 True {tcp_conn}"),
        ),
        (
            "ta",
            format!("tcp ESTAB inet stream connected 0 python3 True {tcp_conn}"),
        ),
        (
            "tn",
            "tcp UNCONN inet stream new 0 python3 True ['tcp_state']".to_string(),
        ),
        (
            "tf",
            "tcp LISTEN inet stream listening 0 python3 True ['syn_dropped', 'tcp_state']"
                .to_string(),
        ),
        (
            "tf1",
            format!("tcp ESTAB inet stream connected 0 python3 True {tcp_conn}"),
        ),
        (
            "tf2",
            format!("tcp SYN-SENT inet stream connecting 0 python3 True {tcp_conn}"),
        ),
        (
            "twc",
            format!("tcp FIN-WAIT-2 inet stream closing 0 python3 True {tcp_conn}"),
        ),
        (
            "twa",
            format!("tcp CLOSE-WAIT inet stream closing 0 python3 True {tcp_conn}"),
        ),
        (
            "ub",
            "udp UNCONN inet dgram bound 0 python3 True ['drops']".to_string(),
        ),
        (
            "uc",
            "udp ESTAB inet dgram connected 0 python3 True ['drops']".to_string(),
        ),
        (
            "xl",
            "u_seq LISTEN local seqpacket listening 0 python3 True []".to_string(),
        ),
        (
            "xc",
            "u_seq ESTAB local seqpacket connected 0 python3 True []".to_string(),
        ),
        (
            "xs",
            "u_str UNCONN local stream new 0 python3 True []".to_string(),
        ),
        (
            "xd",
            "u_dgr UNCONN local dgram bound 0 python3 True []".to_string(),
        ),
    ]
    .into();
    let got: BTreeMap<&str, String> = lines
        .by_ref()
        .take(15)
        .map(|l| {
            let (name, rest) = l.split_once(' ').expect("name rest");
            (name, rest.to_string())
        })
        .collect();
    assert_eq!(got, want, "{text}");
    assert_eq!(
        lines.next(),
        Some(format!("True 0 0 65495 int [{}]", held.td).as_str()),
        "{text}"
    );
    assert_eq!(lines.next(), Some("5 None"), "{text}");
    assert_eq!(lines.next(), Some("True"), "{text}");
    assert_eq!(lines.next(), Some("[]"), "{text}");
    held.finish(net);
}
