// The scenarios of tests/limits.rs, run through a local mount by that binary and
// through `ksock export` and `ksock import` by tests/import_limits.rs (see common).

use common::{Net, wait_until};

/// A mount with limits small enough to reach in a test.
fn small() -> Net {
    Net::mount_with(&[
        "--allow-other",
        "--max-sockets-per-user",
        "50",
        "--max-buffered-per-user",
        "1M",
    ])
}

#[test]
fn sockets_past_the_limit_get_emfile_and_come_back_when_they_end() {
    let net = small();
    let out = net.py(r#"
fds = [sock("stream")[0] for _ in range(50)]
print(errno_of(os.open, f"{N}/dgram", os.O_RDWR))
print(len([n for n in os.listdir(N) if n.isdigit()]))
# Sockets end at once on hangup: the count frees.
for fd in fds[:10]:
    ctl(fd, "hangup")
    os.close(fd)
more = [sock("seqpacket")[0] for _ in range(10)]
print(errno_of(os.open, f"{N}/seqpacket", os.O_RDWR))
"#);
    assert_eq!(out.ok(), "EMFILE\n50\nEMFILE\n");
    // They also end with their creator: a new process gets the whole count again.
    wait_until("the creator's sockets end", || net.socket_ids().is_empty());
    let out = net.py(r#"
fds = [sock("dgram")[0] for _ in range(50)]
print(errno_of(os.open, f"{N}/stream", os.O_RDWR))
"#);
    assert_eq!(out.ok(), "EMFILE\n");
    net.finish();
}

#[test]
fn a_writer_past_the_buffered_limit_gets_enobufs_and_nothing_is_lost() {
    let net = small();
    let out = net.py(r#"
s, sid = sock("stream")
ctl(s, "bind big && listen 64")
# Connections nobody accepts yet: each holds up to its send buffer (208 KiB), so it takes
# several to reach the 1 MiB limit.
datas, written, why = [], [], None
for i in range(10):
    c, cid = sock("stream")
    ctl(c, "connect big")
    d = os.open(f"{N}/{cid}/data", os.O_RDWR | os.O_NONBLOCK)
    datas.append((d, cid))
    written.append(0)
    while True:
        try:
            written[i] += os.write(d, bytes([65 + i]) * 65536)
        except OSError as e:
            why = errno.errorcode[e.errno]
            break
    if why == "ENOBUFS":
        break
print(why, sum(written), len(written) > 1)
print(text(f"{N}/{datas[-1][1]}/err"), end="")
# Everything written is read back, in order, byte for byte.
ok, accepted = True, []
for i, (d, cid) in enumerate(datas):
    a = os.open(f"{N}/{sid}/accept", os.O_RDWR)
    accepted.append(a)
    got = b""
    while len(got) < written[i]:
        got += os.read(a, 1 << 20)
    ok = ok and got == bytes([65 + i]) * written[i]
print(ok)
# All read: the writer may write again.
print(os.write(datas[0][0], b"again"))
"#);
    assert_eq!(
        out.ok(),
        "ENOBUFS 1048576 True\n\
         ENOBUFS: write: No buffer space available (too many bytes buffered for uid 0 \
         (limit 1048576))\nTrue\n5\n"
    );
    net.finish();
}

local_mount_only! {
    "through an import the serving stack sees every request as the import's own user (SPEC section 8: the connection acts as the uid it was checked as), so per-user limits and privileged ports are that user's",
#[test]
fn another_uid_has_limits_of_its_own() {
    let net = small();
    let out = net.py(r#"
import subprocess
mine = [sock("stream")[0] for _ in range(50)]
print(errno_of(os.open, f"{N}/stream", os.O_RDWR))
child = subprocess.run([sys.executable, "-c", f"""
import os, errno
os.setgid(65534); os.setuid(65534)
fds = [os.open('{N}/stream', os.O_RDWR) for _ in range(50)]
try:
    os.open('{N}/stream', os.O_RDWR)
    print('OK')
except OSError as x:
    print(errno.errorcode[x.errno])
"""], capture_output=True, text=True)
print(child.stdout, end="")
print(child.stderr, end="")
"#);
    assert_eq!(out.ok(), "EMFILE\nEMFILE\n");
    net.finish();
}
}

#[test]
fn the_table_file_lists_every_socket_in_one_read() {
    let net = Net::mount();
    let out = net.py(r#"
import subprocess
s, sid = sock()
ctl(s, "bind tabled && listen 7")
fds = [sock("dgram")[0] for _ in range(300)]
fd = os.open(f"{N}/table", os.O_RDONLY)
first = os.read(fd, 1 << 20).decode()
rest = os.read(fd, 1 << 20)
lines = first.splitlines()
print(lines[0])
listed = sorted(int(l.split()[0]) for l in lines[1:])
dirs = sorted(int(n) for n in os.listdir(N) if n.isdigit())
print(len(listed), listed == dirs, rest == b"")
row = [l for l in lines[1:] if l.split()[0] == sid][0].split()
print(row[1:11])
# A listener's peer credentials are its own, as Linux's SO_PEERCRED says; no TCP state;
# and this process made it.
print(row[11:13] == ["0", str(os.getpid())], row[13], row[14:] == [str(os.getpid())])
# Everybody may read it (it shows no data), as /proc/net/unix.
child = subprocess.run([sys.executable, "-c", f"""
import os
os.setgid(65534); os.setuid(65534)
print(len(open('{N}/table').read().splitlines()))
"""], capture_output=True, text=True)
print(child.stdout, end="")
print(child.stderr, end="")
"#);
    assert_eq!(
        out.ok(),
        "id type state local remote recvq sendq backlog pending owner nonblock peer_uid peer_pid \
         proto_state pid\n\
         301 True True\n\
         ['seqpacket', 'listening', 'tabled', '-', '0', '0', '7', '0', '0', 'off']\n\
         True - True\n\
         302\n"
    );
    net.finish();
}

#[test]
fn ls_of_a_family_lists_each_of_thousands_of_sockets_once() {
    let net = Net::mount();
    let mut holder = net.spawn_py(
        r#"
for i in range(4000):
    os.close(os.open(f"{N}/stream" if i % 2 else f"{N}/seqpacket", os.O_RDWR))
print("ready", flush=True)
time.sleep(600)
"#,
    );
    assert_eq!(common::read_line(&mut holder), "ready\n");
    let out = net.sh(r#"set -e
        ls $N > /tmp/ls.$$
        grep -c '^[0-9]' /tmp/ls.$$
        sort /tmp/ls.$$ | uniq -d | wc -l
        grep -v '^[0-9]' /tmp/ls.$$ | tr '\n' ' '
        echo
        # The same sockets as the table file has.
        grep '^[0-9]' /tmp/ls.$$ | sort > /tmp/ls-ids.$$
        tail -n +2 $N/table | cut -d' ' -f1 | sort > /tmp/table-ids.$$
        cmp /tmp/ls-ids.$$ /tmp/table-ids.$$ && echo same
        $KSOCK ss -a --mount $ROOT | wc -l
        rm /tmp/ls.$$ /tmp/ls-ids.$$ /tmp/table-ids.$$
        "#);
    assert_eq!(
        out.ok().split_whitespace().collect::<Vec<_>>(),
        [
            "4000",
            "0",
            "addrs",
            "dgram",
            "seqpacket",
            "stream",
            "same",
            "4001"
        ]
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    net.finish();
}

/// Runs `script` in a private mount namespace in which the only ksock tree is this test's
/// (other trees, such as other tests' or a system `/net`, are detached there, not here).
const ONLY_THIS_TREE: &str = r#"
grep ' - fuse.ksock ' /proc/self/mountinfo | awk '{print $5}' | while read m; do
    [ "$m" = "$ROOT" ] || umount -l "$m" || true
done
"#;

#[test]
fn ss_finds_a_tree_mounted_away_from_net_by_itself() {
    let net = Net::mount();
    let mut holder = net.spawn_py(
        r#"
s, sid = sock()
ctl(s, "bind found && listen")
print(sid, flush=True)
time.sleep(600)
"#,
    );
    let sid = common::read_line(&mut holder).trim().to_string();
    let script = format!(
        "set -e\n{ONLY_THIS_TREE}\n$KSOCK ss -l -e\necho --\numount -l \"$ROOT\"\n\
         $KSOCK ss 2>&1 || echo \"exit $?\"\n"
    );
    let out = net.sh(&format!(
        "exec unshare --mount --propagation private sh -c '{}'",
        script.replace('\'', r"'\''")
    ));
    let text = out.ok();
    let (found, none) = text.split_once("--\n").expect("both parts");
    let rows: Vec<Vec<&str>> = found
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{found}");
    assert_eq!(
        rows[1],
        [
            "u_seq",
            "LISTEN",
            "0",
            "128",
            "found",
            "*",
            "uid:0",
            &format!("sk:{sid}")
        ]
    );
    assert!(
        none.contains("no ksock tree is mounted") && none.contains("ksock mount"),
        "{none}"
    );
    assert!(none.trim_end().ends_with("exit 1"), "{none}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    net.finish();
}
