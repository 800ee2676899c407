//! `ksock mount --pcap FILE`: every frame of the inet loopback in a pcap file that `tshark`
//! (an independent reader) decodes as the TCP and UDP that went by.

mod common;

use common::Net;
use std::process::Command;

/// A TCP exchange (handshake, 5 bytes from the server, a FIN each way), a refused
/// connect, and a UDP datagram; prints the ports involved.
const SCRIPT: &str = r#"
import os
N = os.environ["ROOT"] + "/inet"
def sock(t="stream"):
    f = os.open(f"{N}/{t}", os.O_RDWR)
    return f, os.read(f, 32).decode()
l, lid = sock()
os.write(l, b"bind 127.0.0.1:0 && listen 1")
port = open(f"{N}/{lid}/local").read().strip().rsplit(":", 1)[1]
c, cid = sock()
os.write(c, f"connect 127.0.0.1:{port}".encode())
d = os.open(f"{N}/{cid}/data", os.O_RDWR)
a = os.open(f"{N}/{lid}/accept", os.O_RDWR)
os.write(a, b"hello")
assert os.read(d, 10) == b"hello"
os.write(c, b"shutdown wr")
assert os.read(a, 10) == b""
os.close(a)
assert os.read(d, 10) == b""
r, _ = sock()
try:
    os.write(r, b"connect 127.0.0.1:1")
except OSError as e:
    assert e.errno == 111, e
u, uid = sock("dgram")
os.write(u, b"bind 127.0.0.1:0")
os.write(u, f"connect 127.0.0.1:{port}".encode())
os.write(os.open(f"{N}/{uid}/data", os.O_RDWR), b"datagram")
print(port)
"#;

#[test]
fn tshark_reads_the_capture_as_tcp_and_udp() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("lo.pcap");
    let net = Net::mount_with(&["--pcap", pcap.to_str().unwrap()]);
    let out = net.py(SCRIPT);
    let port = out.ok().trim().to_string();
    // The capture is flushed after each burst of frames; stop the server to be sure.
    net.finish();
    let t = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-T",
            "fields",
            "-E",
            "separator=,",
        ])
        .args(["-e", "ip.proto", "-e", "tcp.srcport", "-e", "tcp.dstport"])
        .args([
            "-e",
            "tcp.flags.str",
            "-e",
            "tcp.len",
            "-e",
            "udp.dstport",
            "-e",
            "udp.length",
        ])
        .output()
        .expect("tshark is installed (.ci/run installs it)");
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let text = String::from_utf8(t.stdout).unwrap();
    // One line per frame: protocol, ports, flags (as tshark orders them: "AS", "AF"...),
    // payload length.
    let frames: Vec<String> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let flags: String = f[3].chars().filter(|c| c.is_ascii_alphabetic()).collect();
            match f[0] {
                "6" => format!("tcp {}>{} {flags} {}", f[1], f[2], f[4]),
                "17" => format!("udp >{} {}", f[5], f[6]),
                p => format!("proto {p}"),
            }
        })
        .collect();
    let srv = |flags: &str, len: u32| format!("tcp {port}>C {flags} {len}");
    let cli = |flags: &str, len: u32| format!("tcp C>{port} {flags} {len}");
    // The client's port is ephemeral: name it C.
    let named: Vec<String> = frames
        .iter()
        .map(|f| {
            let mut parts: Vec<String> = f.split(' ').map(String::from).collect();
            if parts[0] == "tcp" {
                let (a, b) = parts[1].split_once('>').unwrap();
                let c = |p: &str| {
                    if p == port || p == "1" {
                        p.to_string()
                    } else {
                        "C".into()
                    }
                };
                parts[1] = format!("{}>{}", c(a), c(b));
            }
            parts.join(" ")
        })
        .collect();
    let want = [
        cli("S", 0),
        srv("AS", 0),
        cli("A", 0),
        srv("AP", 5),
        cli("A", 0),
        cli("AF", 0),
        srv("A", 0),
        srv("AF", 0),
        cli("A", 0),
        "tcp C>1 S 0".to_string(),
        "tcp 1>C AR 0".to_string(),
        format!("udp >{port} 16"),
        // Nobody has that UDP port: the loopback answers with ICMP port unreachable.
        "proto 1".to_string(),
    ];
    assert_eq!(named, want, "frames:\n{text}");
}
