//! The `status` file: one `key value` line per field, written and read back here (the
//! `ksock ss` table reads mounted trees with [`Status::parse`]).
//!
//! ```text
//! id 7
//! family local
//! type seqpacket
//! state connected
//! local dwm
//! remote -
//! recvq 0
//! sendq 12
//! backlog 0
//! pending 0
//! owner 1000
//! nonblock off
//! peer_uid 1000
//! peer_pid 4242
//! pid 4243
//! ```
//!
//! `peer_uid` and `peer_pid` name the process that made the connection from the other end
//! (for an accepted connection: the client that connected; for a client: the listener's
//! creator; as Linux's `SO_PEERCRED`), or are `-` when there is none. `pid` is the process
//! that made the socket through the tree (opened its factory, or the `accept` or `listen`
//! file it came from), `-` when there is none (a socket made otherwise).
//!
//! Addresses are printed as the family prints them (local names with `\xNN` escapes, so a
//! value never contains white space); `-` stands for no address.

use ksock::{SockAddr, SocketInfo};
use std::fmt::Write as _;

/// A socket's status, as its `status` file shows it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Status {
    /// The socket's id.
    pub id: u64,
    /// The family's name (`local`, `inet`).
    pub family: String,
    /// The type's name (`stream`, `seqpacket`, `dgram`).
    pub ty: String,
    /// The state's name (`new`, `bound`, `listening`, ...).
    pub state: String,
    /// The local address, `-` if none.
    pub local: String,
    /// The peer's address, `-` if none.
    pub remote: String,
    /// Bytes waiting to be read.
    pub recvq: usize,
    /// Bytes sent and not yet read by the peer.
    pub sendq: usize,
    /// A listener's backlog.
    pub backlog: usize,
    /// Connections waiting to be accepted.
    pub pending: usize,
    /// The owner's uid.
    pub owner: u32,
    /// The socket's default for newly opened files.
    pub nonblock: bool,
    /// The peer's uid, when the connection recorded one.
    pub peer_uid: Option<u32>,
    /// The peer's process id, when the connection recorded one.
    pub peer_pid: Option<u32>,
    /// The process that made the socket through the tree (opened its factory, or the
    /// `accept` or `listen` file it came from), when known. For display (`ksock ss -p`).
    pub pid: Option<u32>,
    /// What the family adds, in its order (`tcp_state ESTABLISHED`, UDP `drops 0`...).
    pub details: Vec<(String, String)>,
}

fn opt_text(v: Option<u32>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn addr_text(a: Option<&SockAddr>) -> String {
    match a {
        None | Some(SockAddr::Unnamed) => "-".into(),
        Some(a) => show_addr(a),
    }
}

/// An address as the file face prints it: as its family prints it, except that an
/// IPv4-mapped IPv6 address (how a dual-stack socket sees an IPv4 peer) prints as the IPv4
/// address it stands for, so `127.0.0.1:80` reads the same whichever socket saw it.
pub fn show_addr(a: &SockAddr) -> String {
    if let SockAddr::Inet(std::net::SocketAddr::V6(v6)) = a
        && let Some(v4) = v6.ip().to_ipv4_mapped()
    {
        return std::net::SocketAddr::new(v4.into(), v6.port()).to_string();
    }
    a.to_string()
}

impl Status {
    /// The status of a socket from the core's snapshot.
    pub fn from_info(info: &SocketInfo, family: &str) -> Status {
        Status {
            id: info.id,
            family: family.into(),
            ty: info.ty.name().into(),
            state: info.state.name().into(),
            local: addr_text(Some(&info.local)),
            remote: addr_text(info.remote.as_ref()),
            recvq: info.queues.rx,
            sendq: info.queues.tx,
            backlog: info.queues.backlog,
            pending: info.queues.pending,
            owner: info.owner.unwrap_or(0),
            nonblock: info.nonblocking,
            peer_uid: info.peer_cred.map(|c| c.uid),
            peer_pid: info.peer_cred.map(|c| c.pid),
            pid: None,
            details: info
                .details
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        }
    }

    /// A family detail by key.
    pub fn detail(&self, key: &str) -> Option<&str> {
        self.details
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "id {}\nfamily {}\ntype {}\nstate {}\nlocal {}\nremote {}\nrecvq {}\nsendq {}\n\
             backlog {}\npending {}\nowner {}\nnonblock {}\npeer_uid {}\npeer_pid {}\npid {}\n",
            self.id,
            self.family,
            self.ty,
            self.state,
            self.local,
            self.remote,
            self.recvq,
            self.sendq,
            self.backlog,
            self.pending,
            self.owner,
            if self.nonblock { "on" } else { "off" },
            opt_text(self.peer_uid),
            opt_text(self.peer_pid),
            opt_text(self.pid),
        );
        for (k, v) in &self.details {
            let _ = writeln!(s, "{k} {v}");
        }
        s
    }

    /// Reads a status text back. Unknown keys are ignored (so newer files still parse);
    /// a missing `id` or a malformed number is an error naming the line.
    pub fn parse(text: &str) -> Result<Status, String> {
        let mut st = Status::default();
        let mut have_id = false;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let num = |v: &str| {
                v.parse::<usize>()
                    .map_err(|_| format!("status: bad number in line {line:?}"))
            };
            match key {
                "id" => {
                    st.id = value
                        .parse()
                        .map_err(|_| format!("status: bad id in line {line:?}"))?;
                    have_id = true;
                }
                "family" => st.family = value.into(),
                "type" => st.ty = value.into(),
                "state" => st.state = value.into(),
                "local" => st.local = value.into(),
                "remote" => st.remote = value.into(),
                "recvq" => st.recvq = num(value)?,
                "sendq" => st.sendq = num(value)?,
                "backlog" => st.backlog = num(value)?,
                "pending" => st.pending = num(value)?,
                "owner" => {
                    st.owner = value
                        .parse()
                        .map_err(|_| format!("status: bad owner in line {line:?}"))?
                }
                "nonblock" => st.nonblock = value == "on",
                "peer_uid" | "peer_pid" | "pid" => {
                    let v = match value {
                        "-" => None,
                        v => Some(
                            v.parse()
                                .map_err(|_| format!("status: bad {key} in line {line:?}"))?,
                        ),
                    };
                    match key {
                        "peer_uid" => st.peer_uid = v,
                        "peer_pid" => st.peer_pid = v,
                        _ => st.pid = v,
                    }
                }
                "" => {}
                k => st.details.push((k.into(), value.into())),
            }
        }
        if !have_id {
            return Err("status: no id line".into());
        }
        Ok(st)
    }
}

/// The first line of a family's `table` file: the column names.
pub const TABLE_HEADER: &str = "id type state local remote recvq sendq backlog pending owner nonblock peer_uid peer_pid \
     proto_state pid\n";

impl Status {
    /// The socket's line in its family's `table` file: the [`TABLE_HEADER`] columns,
    /// separated by single spaces (addresses are escaped, so no value has white space).
    pub fn table_line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
            self.id,
            self.ty,
            self.state,
            self.local,
            self.remote,
            self.recvq,
            self.sendq,
            self.backlog,
            self.pending,
            self.owner,
            if self.nonblock { "on" } else { "off" },
            opt_text(self.peer_uid),
            opt_text(self.peer_pid),
            self.detail("tcp_state").unwrap_or("-"),
            opt_text(self.pid),
        )
    }

    /// Reads a `table` file back: one status per line after the header, with `family` as
    /// their family. Extra columns at the end are ignored (so newer files still parse); a
    /// short or malformed line is an error naming it.
    pub fn parse_table(text: &str, family: &str) -> Result<Vec<Status>, String> {
        let mut lines = text.lines();
        match lines.next() {
            Some(h) if h.split_whitespace().next() == Some("id") => {}
            _ => return Err("table: no header line".into()),
        }
        let mut out = Vec::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let bad = |what: &str| format!("table: {what} in line {line:?}");
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 11 {
                return Err(bad("too few columns"));
            }
            let num = |v: &str| v.parse::<usize>().map_err(|_| bad("a bad number"));
            out.push(Status {
                id: f[0].parse().map_err(|_| bad("a bad id"))?,
                family: family.into(),
                ty: f[1].into(),
                state: f[2].into(),
                local: f[3].into(),
                remote: f[4].into(),
                recvq: num(f[5])?,
                sendq: num(f[6])?,
                backlog: num(f[7])?,
                pending: num(f[8])?,
                owner: f[9].parse().map_err(|_| bad("a bad owner"))?,
                nonblock: f[10] == "on",
                peer_uid: f.get(11).and_then(|v| v.parse().ok()),
                peer_pid: f.get(12).and_then(|v| v.parse().ok()),
                details: match f.get(13) {
                    Some(v) if *v != "-" => vec![("tcp_state".into(), (*v).into())],
                    _ => Vec::new(),
                },
                pid: f.get(14).and_then(|v| v.parse().ok()),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_parse_round_trip() {
        let s = Status {
            id: 42,
            family: "local".into(),
            ty: "seqpacket".into(),
            state: "connected".into(),
            local: "dwm".into(),
            remote: "-".into(),
            recvq: 3,
            sendq: 5,
            backlog: 0,
            pending: 0,
            owner: 1000,
            nonblock: true,
            peer_uid: Some(1000),
            peer_pid: Some(77),
            pid: Some(78),
            details: Vec::new(),
        };
        let text = s.render();
        assert!(text.starts_with("id 42\nfamily local\n"));
        assert!(text.ends_with("nonblock on\npeer_uid 1000\npeer_pid 77\npid 78\n"));
        assert_eq!(Status::parse(&text), Ok(s.clone()));
        let none = Status {
            peer_uid: None,
            peer_pid: None,
            pid: None,
            ..s.clone()
        };
        let text = none.render();
        assert!(text.ends_with("peer_uid -\npeer_pid -\npid -\n"), "{text}");
        assert_eq!(Status::parse(&text), Ok(none));
        // Family details follow, in their order.
        let tcp = Status {
            details: vec![
                ("tcp_state".into(), "LISTEN".into()),
                ("syn_dropped".into(), "0".into()),
            ],
            ..s
        };
        let text = tcp.render();
        assert!(
            text.ends_with("pid 78\ntcp_state LISTEN\nsyn_dropped 0\n"),
            "{text}"
        );
        assert_eq!(Status::parse(&text), Ok(tcp));
    }

    #[test]
    fn table_lines_round_trip() {
        let s = Status {
            id: 42,
            family: "local".into(),
            ty: "stream".into(),
            state: "listening".into(),
            local: "my\\x20server".into(),
            remote: "-".into(),
            recvq: 0,
            sendq: 0,
            backlog: 128,
            pending: 3,
            owner: 1000,
            nonblock: false,
            peer_uid: Some(7),
            peer_pid: None,
            pid: Some(4242),
            details: Vec::new(),
        };
        let line = s.table_line();
        assert_eq!(
            line,
            "42 stream listening my\\x20server - 0 0 128 3 1000 off 7 - - 4242\n"
        );
        let text = format!("{TABLE_HEADER}{line}");
        assert_eq!(Status::parse_table(&text, "local"), Ok(vec![s.clone()]));
        // The last two columns: a TCP socket's state, and no process.
        let tcp = Status {
            family: "inet".into(),
            pid: None,
            details: vec![("tcp_state".into(), "LISTEN".into())],
            ..s.clone()
        };
        let line = tcp.table_line();
        assert!(line.ends_with(" LISTEN -\n"), "{line}");
        assert_eq!(
            Status::parse_table(&format!("{TABLE_HEADER}{line}"), "inet"),
            Ok(vec![tcp])
        );
        // A table of an older server, without the pid column, still parses.
        let old = "id type state local remote recvq sendq backlog pending owner nonblock peer_uid \
                   peer_pid proto_state\n42 stream listening my\\x20server - 0 0 128 3 1000 off 7 - -\n";
        assert_eq!(
            Status::parse_table(old, "local"),
            Ok(vec![Status { pid: None, ..s }])
        );
        assert_eq!(Status::parse_table(TABLE_HEADER, "local"), Ok(vec![]));
        assert!(Status::parse_table("", "local").is_err());
        let e = Status::parse_table(&format!("{TABLE_HEADER}7 stream\n"), "local").unwrap_err();
        assert!(e.contains("7 stream"), "{e}");
    }

    #[test]
    fn parse_errors_name_the_line() {
        assert!(Status::parse("family local\n").is_err());
        let e = Status::parse("id 1\nrecvq many\n").unwrap_err();
        assert!(e.contains("recvq many"), "{e}");
        assert_eq!(Status::parse("id 9\nfuture thing\n").unwrap().id, 9);
    }

    #[test]
    fn escaped_addresses_have_no_spaces() {
        let a = SockAddr::local(b"my server").unwrap();
        let t = addr_text(Some(&a));
        assert!(!t.contains(' '), "{t}");
        assert_eq!(addr_text(None), "-");
        assert_eq!(addr_text(Some(&SockAddr::Unnamed)), "-");
    }
}
