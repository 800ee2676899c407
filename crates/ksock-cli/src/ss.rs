//! `ksock ss`: the live sockets of a mounted tree (or of a stack running in this process),
//! in the columns and words of iproute2's `ss`: which sockets ([`Options`]: `-t`, `-u`,
//! `-x`, `-l`, `-a`, a state filter), and what is shown of each (`-p`, `-e`, `-i`,
//! `--json`).

use ksock::Stack;
use ksock_netfs::parse_id;
use ksock_netfs::status::Status;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One row: a socket's status, or what can be seen of a socket the caller may not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The status (for unreadable sockets: id, family and owner only, the rest `?`).
    pub status: Status,
    /// Whether the status file could be read.
    pub readable: bool,
    /// The process that made the socket, when asked for ([`attach_processes`]) and still
    /// running.
    pub process: Option<Process>,
}

/// The process that made a socket, as `ss -p` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Its command name (`/proc/PID/comm`).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Its descriptors open on the socket's own files (`data`, `ctl`...), as far as
    /// `/proc/PID/fd` shows them: a factory's handle names the factory, not the socket, and
    /// is not counted.
    pub fds: Vec<u32>,
}

/// Reads every socket of the tree mounted at `root`, in family then id order.
pub fn collect(root: &Path) -> io::Result<Vec<Row>> {
    let mut families: Vec<_> = fs::read_dir(root)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot list {}: {e} (is the tree mounted?)", root.display()),
            )
        })?
        .filter_map(Result::ok)
        // A family directory has an `addrs` file.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.path().join("addrs").is_file())
        .collect();
    if families.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is not a ksock tree (no family directories)",
                root.display()
            ),
        ));
    }
    families.sort_by_key(|e| e.file_name());
    let mut rows = Vec::new();
    for fam in families {
        let family = fam.file_name().to_string_lossy().into_owned();
        // One read of the family's table gives every socket; a tree without one (an older
        // server) is read a socket at a time.
        match fs::read_to_string(fam.path().join("table")) {
            Ok(text) => {
                let all = Status::parse_table(&text, &family).map_err(|e| {
                    io::Error::other(format!("{}: {e}", fam.path().join("table").display()))
                })?;
                rows.extend(all.into_iter().map(|status| Row {
                    status,
                    readable: true,
                    process: None,
                }));
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", fam.path().join("table").display()),
                ));
            }
        }
        let Ok(entries) = fs::read_dir(fam.path()) else {
            continue;
        };
        let mut ids: Vec<(u64, std::path::PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((parse_id(e.file_name().as_encoded_bytes())?, e.path())))
            .collect();
        ids.sort();
        for (id, dir) in ids {
            match fs::read_to_string(dir.join("status")) {
                Ok(text) => {
                    let status = Status::parse(&text)
                        .map_err(|e| io::Error::other(format!("{}: {e}", dir.display())))?;
                    rows.push(Row {
                        status,
                        readable: true,
                        process: None,
                    });
                }
                // Ended while we looked.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    let Ok(meta) = fs::metadata(&dir) else {
                        continue;
                    };
                    let q = String::from("?");
                    rows.push(Row {
                        status: Status {
                            id,
                            family: family.clone(),
                            ty: q.clone(),
                            state: q.clone(),
                            local: q.clone(),
                            remote: q,
                            owner: meta.uid(),
                            ..Status::default()
                        },
                        readable: false,
                        process: None,
                    });
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
            }
        }
    }
    Ok(rows)
}

/// The ksock trees mounted in this process's mount namespace, in mount order: the mount
/// points of file systems of type `fuse.ksock` in `/proc/self/mountinfo`.
pub fn mounts() -> io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

/// The mount points of `fuse.ksock` file systems in a `mountinfo` text.
pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    ksock_fuse::ksock_mounts(text)
}

/// The sockets of a stack running in this process, as rows (the same table a mounted tree
/// gives, for code that embeds ksock).
pub fn from_stack(stack: &Stack) -> Vec<Row> {
    stack
        .sockets()
        .iter()
        .map(|info| {
            let family = stack.family(info.domain).map_or("?", |f| f.name());
            Row {
                status: Status::from_info(info, family),
                readable: true,
                process: None,
            }
        })
        .collect()
}

/// Replaces each readable row's family details with those of its `status` file (a
/// family's `table` carries only the TCP state; `-i` and `--json` show the rest). A socket
/// that ended meanwhile keeps what the table said.
pub fn attach_details(rows: &mut [Row], root: &Path) {
    for r in rows.iter_mut().filter(|r| r.readable) {
        let path = root
            .join(&r.status.family)
            .join(r.status.id.to_string())
            .join("status");
        if let Ok(st) = fs::read_to_string(&path).map(|t| Status::parse(&t))
            && let Ok(st) = st
        {
            r.status.details = st.details;
        }
    }
}

/// Fills in each row's [`Process`]: the name of the process that made the socket
/// (`/proc/PID/comm`) and, for a mounted tree at `root`, its descriptors on the socket's
/// files. A process that has ended is left out.
pub fn attach_processes(rows: &mut [Row], root: Option<&Path>) {
    // Per process: its name and where each of its descriptors points.
    type Seen = Option<(String, Vec<(u32, PathBuf)>)>;
    let mut seen: HashMap<u32, Seen> = HashMap::new();
    for r in rows.iter_mut() {
        let Some(pid) = r.status.pid else { continue };
        let known = seen.entry(pid).or_insert_with(|| {
            let name = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let fds = fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter_map(|e| {
                            let fd = e.file_name().to_str()?.parse().ok()?;
                            Some((fd, fs::read_link(e.path()).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some((name.trim_end_matches('\n').to_string(), fds))
        });
        let Some((name, fds)) = known else { continue };
        let mine: Vec<u32> = match root {
            Some(root) => {
                let dir = root.join(&r.status.family).join(r.status.id.to_string());
                let mut v: Vec<u32> = fds
                    .iter()
                    .filter(|(_, target)| {
                        // `accept` and `listen` handles are the connections they accepted,
                        // not the listener whose directory they are in.
                        let name = target.file_name().map(|f| f.to_string_lossy());
                        let base = name.as_deref().map(|n| n.split(':').next().unwrap_or(n));
                        target.parent() == Some(dir.as_path())
                            && !matches!(base, Some("accept" | "listen"))
                    })
                    .map(|(fd, _)| *fd)
                    .collect();
                v.sort_unstable();
                v
            }
            None => Vec::new(),
        };
        r.process = Some(Process {
            name: name.clone(),
            pid,
            fds: mine,
        });
    }
}

/// A socket state in `ss`'s words (Linux's TCP states; `UNCONN` is its `CLOSE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SsState {
    /// `ESTAB`
    Estab,
    /// `SYN-SENT`
    SynSent,
    /// `SYN-RECV`
    SynRecv,
    /// `FIN-WAIT-1`
    FinWait1,
    /// `FIN-WAIT-2`
    FinWait2,
    /// `TIME-WAIT`
    TimeWait,
    /// `UNCONN` (`closed` in a filter)
    Unconn,
    /// `CLOSE-WAIT`
    CloseWait,
    /// `LAST-ACK`
    LastAck,
    /// `LISTEN`
    Listen,
    /// `CLOSING`
    Closing,
}

impl SsState {
    /// Every state, in Linux's order.
    pub const ALL: [SsState; 11] = [
        SsState::Estab,
        SsState::SynSent,
        SsState::SynRecv,
        SsState::FinWait1,
        SsState::FinWait2,
        SsState::TimeWait,
        SsState::Unconn,
        SsState::CloseWait,
        SsState::LastAck,
        SsState::Listen,
        SsState::Closing,
    ];

    /// The word of the State column.
    pub fn word(self) -> &'static str {
        match self {
            SsState::Estab => "ESTAB",
            SsState::SynSent => "SYN-SENT",
            SsState::SynRecv => "SYN-RECV",
            SsState::FinWait1 => "FIN-WAIT-1",
            SsState::FinWait2 => "FIN-WAIT-2",
            SsState::TimeWait => "TIME-WAIT",
            SsState::Unconn => "UNCONN",
            SsState::CloseWait => "CLOSE-WAIT",
            SsState::LastAck => "LAST-ACK",
            SsState::Listen => "LISTEN",
            SsState::Closing => "CLOSING",
        }
    }

    /// The name a filter uses (`ss state NAME`).
    pub fn filter_name(self) -> &'static str {
        match self {
            SsState::Estab => "established",
            SsState::SynSent => "syn-sent",
            SsState::SynRecv => "syn-recv",
            SsState::FinWait1 => "fin-wait-1",
            SsState::FinWait2 => "fin-wait-2",
            SsState::TimeWait => "time-wait",
            SsState::Unconn => "closed",
            SsState::CloseWait => "close-wait",
            SsState::LastAck => "last-ack",
            SsState::Listen => "listening",
            SsState::Closing => "closing",
        }
    }

    /// A socket's state: a TCP socket's from its TCP state, any other's from the core's.
    pub fn of(s: &Status) -> Option<SsState> {
        Some(match s.detail("tcp_state") {
            Some("ESTABLISHED") => SsState::Estab,
            Some("SYN_SENT") => SsState::SynSent,
            Some("SYN_RECV") => SsState::SynRecv,
            Some("FIN_WAIT1") => SsState::FinWait1,
            Some("FIN_WAIT2") => SsState::FinWait2,
            Some("TIME_WAIT") => SsState::TimeWait,
            Some("CLOSE") => SsState::Unconn,
            Some("CLOSE_WAIT") => SsState::CloseWait,
            Some("LAST_ACK") => SsState::LastAck,
            Some("LISTEN") => SsState::Listen,
            Some("CLOSING") => SsState::Closing,
            _ => match s.state.as_str() {
                "listening" => SsState::Listen,
                "connecting" => SsState::SynSent,
                "connected" => SsState::Estab,
                "closing" => SsState::Closing,
                "new" | "bound" | "closed" => SsState::Unconn,
                _ => return None,
            },
        })
    }

    fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A set of [`SsState`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StateSet(u16);

impl StateSet {
    /// Every state.
    pub const ALL: StateSet = StateSet((1 << SsState::ALL.len()) - 1);

    /// The set of these states.
    pub fn of(states: &[SsState]) -> StateSet {
        StateSet(states.iter().fold(0, |m, s| m | s.bit()))
    }

    /// Whether `s` is in the set.
    pub fn has(self, s: SsState) -> bool {
        self.0 & s.bit() != 0
    }

    fn without(self, other: StateSet) -> StateSet {
        StateSet(self.0 & !other.0)
    }

    fn single(self) -> bool {
        self.0.count_ones() == 1
    }

    /// `ss`'s `connected`: every state but listening and closed.
    pub const fn connected() -> StateSet {
        StateSet(Self::ALL.0 & !(1 << SsState::Listen as u8) & !(1 << SsState::Unconn as u8))
    }

    /// What `ss` lists of a stream socket by default: connected, less `TIME-WAIT` and
    /// `SYN-RECV`.
    const fn conn() -> StateSet {
        StateSet(
            Self::connected().0 & !(1 << SsState::TimeWait as u8) & !(1 << SsState::SynRecv as u8),
        )
    }

    /// A filter's state name or group (`established`, `listening`, `time-wait`...;
    /// `all`, `connected`, `synchronized`, `bucket`, `big`), as `ss` names them.
    pub fn named(name: &str) -> Option<StateSet> {
        let n = name.to_ascii_lowercase();
        let bucket = StateSet::of(&[SsState::SynRecv, SsState::TimeWait]);
        Some(match n.as_str() {
            "all" => StateSet::ALL,
            "connected" => StateSet::connected(),
            "synchronized" => StateSet::connected().without(StateSet::of(&[SsState::SynSent])),
            "bucket" => bucket,
            "big" => StateSet::ALL.without(bucket),
            "unconnected" => StateSet::of(&[SsState::Unconn]),
            _ => StateSet::of(&[*SsState::ALL.iter().find(|s| s.filter_name() == n)?]),
        })
    }
}

/// Parses a state filter: words `state NAME` (repeatable; the states add up) and
/// `exclude NAME` (taken away), as `ss` reads them. No words: `None`.
pub fn parse_filter<S: AsRef<str>>(words: &[S]) -> Result<Option<StateSet>, String> {
    if words.is_empty() {
        return Ok(None);
    }
    let mut with: Option<StateSet> = None;
    let mut without = StateSet::default();
    let mut it = words.iter().map(AsRef::as_ref);
    while let Some(w) = it.next() {
        let exclude = match w {
            "state" => false,
            "exclude" | "excl" => true,
            other => {
                return Err(format!(
                    "{other:?}: a filter is `state NAME` or `exclude NAME` (address and port \
                     filters are not supported)"
                ));
            }
        };
        let Some(name) = it.next() else {
            return Err(format!("`{w}` needs a state name"));
        };
        let Some(set) = StateSet::named(name) else {
            let names: Vec<&str> = SsState::ALL.iter().map(|s| s.filter_name()).collect();
            return Err(format!(
                "wrong state name: {name} (one of {}, or a group: all, connected, \
                 synchronized, bucket, big)",
                names.join(", ")
            ));
        };
        if exclude {
            without = StateSet(without.0 | set.0);
        } else {
            with = Some(StateSet(with.unwrap_or_default().0 | set.0));
        }
    }
    Ok(Some(with.unwrap_or(StateSet::ALL).without(without)))
}

/// The `Netid` of a socket: `tcp`, `udp`, `u_str`, `u_seq`, `u_dgr` (a family ksock has
/// and `ss` does not: its name).
pub fn netid(s: &Status) -> &str {
    match (s.family.as_str(), s.ty.as_str()) {
        ("inet", "stream") => "tcp",
        ("inet", "dgram") => "udp",
        ("local", "stream") => "u_str",
        ("local", "seqpacket") => "u_seq",
        ("local", "dgram") => "u_dgr",
        (f, _) => f,
    }
}

/// Which sockets `ksock ss` lists and what it shows of them (its command-line options).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-t`: TCP sockets.
    pub tcp: bool,
    /// `-u`: UDP sockets.
    pub udp: bool,
    /// `-x`: local-family sockets.
    pub unix: bool,
    /// `-l`: listening (and unconnected) sockets only.
    pub listening: bool,
    /// `-a`: every socket.
    pub all: bool,
    /// `-p`: the process that made each socket.
    pub processes: bool,
    /// `-e`: the owner's uid and the socket's id.
    pub extended: bool,
    /// `-i`: what the family tells of the socket (TCP's details, a listener's queue).
    pub info: bool,
    /// A state filter (`state established`); it takes the place of `-l` and `-a`.
    pub states: Option<StateSet>,
}

impl Options {
    /// Every netid these options select (all without `-t`, `-u` or `-x`).
    fn netids(&self) -> Vec<&'static str> {
        let none = !(self.tcp || self.udp || self.unix);
        let mut v = Vec::new();
        if none || self.tcp {
            v.push("tcp");
        }
        if none || self.udp {
            v.push("udp");
        }
        if none || self.unix {
            v.extend(["u_str", "u_seq", "u_dgr"]);
        }
        v
    }

    /// The states listed of sockets of `netid`: the filter's, else `-a`'s (all), `-l`'s
    /// (listening and unconnected), else `ss`'s default (no listeners: connected stream
    /// sockets, less TIME-WAIT and SYN-RECV; connected UDP sockets; every local datagram
    /// socket).
    pub fn states_of(&self, netid: &str) -> StateSet {
        if let Some(s) = self.states {
            return s;
        }
        if self.all {
            return StateSet::ALL;
        }
        if self.listening {
            return StateSet::of(&[SsState::Listen, SsState::Unconn]);
        }
        match netid {
            "udp" => StateSet::of(&[SsState::Estab]),
            "u_dgr" => StateSet::of(&[SsState::Estab, SsState::Unconn]),
            _ => StateSet::conn(),
        }
    }

    /// Whether a socket is listed.
    pub fn selects(&self, r: &Row) -> bool {
        let id = netid(&r.status);
        let kind = match id {
            "tcp" | "udp" => self.netids().contains(&id),
            _ if r.status.family == "local" => self.netids().contains(&"u_str"),
            // A family `ss` has no option for: listed when no family is chosen.
            _ => !(self.tcp || self.udp || self.unix),
        };
        kind && match SsState::of(&r.status) {
            Some(st) if r.readable => self.states_of(id).has(st),
            // What cannot be read is listed when everything is.
            _ => self.states_of(id) == StateSet::ALL,
        }
    }

    /// Keeps the rows these options list.
    pub fn select(&self, rows: Vec<Row>) -> Vec<Row> {
        rows.into_iter().filter(|r| self.selects(r)).collect()
    }

    /// `ss` has a Netid column when more than one kind of socket is listed.
    fn netid_column(&self) -> bool {
        self.netids().len() > 1
    }

    /// ... and a State column unless one state only is.
    fn state_column(&self) -> bool {
        let all = self
            .netids()
            .iter()
            .fold(0, |m, id| m | self.states_of(id).0);
        !StateSet(all).single()
    }
}

/// An address split for the `Address:Port` columns: inet's `host:port` at its last colon;
/// a local name (or `*`, none) whole.
fn split_addr(s: &Status, a: &str, peer: bool) -> (String, Option<String>) {
    if s.family != "inet" {
        return (if a == "-" { "*".into() } else { a.into() }, None);
    }
    if a == "?" {
        return ("?".into(), None);
    }
    if a == "-" {
        // No address (no peer: a listener, an unconnected socket): for a peer, the any
        // address of the local address's version, as `ss` shows it.
        let host = match s.local.as_str() {
            l if peer && l.starts_with('[') => "[::]",
            "-" | "?" => "*",
            _ if peer => "0.0.0.0",
            _ => "*",
        };
        return (host.into(), Some("*".into()));
    }
    match a.rsplit_once(':') {
        Some((h, p)) => (h.into(), Some(p.into())),
        None => (a.into(), None),
    }
}

/// `Recv-Q` and `Send-Q`: like `ss`, a listener's pending connections and its backlog.
fn queues(r: &Row) -> (String, String) {
    let s = &r.status;
    if !r.readable {
        ("?".into(), "?".into())
    } else if s.state == "listening" {
        (s.pending.to_string(), s.backlog.to_string())
    } else {
        (s.recvq.to_string(), s.sendq.to_string())
    }
}

/// `ss -p`'s `users:(("name",pid=N,fd=N))`, one entry per descriptor.
fn users(p: &Process) -> String {
    let entries: Vec<String> = if p.fds.is_empty() {
        vec![format!("(\"{}\",pid={})", p.name, p.pid)]
    } else {
        p.fds
            .iter()
            .map(|fd| format!("(\"{}\",pid={},fd={fd})", p.name, p.pid))
            .collect()
    };
    format!("users:({})", entries.join(","))
}

/// `-i`'s words for a socket: TCP's details in `ss`'s names where it has one, a listener's
/// queue, UDP's drops. Empty when the family tells nothing.
pub fn info_words(s: &Status) -> Vec<String> {
    let mut w = Vec::new();
    let d = |k: &str| s.detail(k);
    if s.state == "listening" {
        w.push(format!("backlog:{}", s.backlog));
        w.push(format!("pending:{}", s.pending));
        if let Some(v) = d("syn_dropped") {
            w.push(format!("syn_dropped:{v}"));
        }
        return w;
    }
    if d("timestamps") == Some("on") {
        w.push("ts".into());
    }
    if let Some(v) = d("congestion").filter(|v| *v != "none") {
        w.push(v.into());
    }
    for (key, word) in [
        ("mss", "mss"),
        ("mtu", "pmtu"),
        ("rcv_space", "rcv_space"),
        ("snd_space", "snd_space"),
        ("drops", "drops"),
    ] {
        if let Some(v) = d(key) {
            w.push(format!("{word}:{v}"));
        }
    }
    if d("nodelay") == Some("on") {
        w.push("nodelay".into());
    }
    w
}

/// The table, as `ss` prints it with these options: `Netid` (when more than one kind is
/// listed), `State` (unless one state is), `Recv-Q`, `Send-Q`, `Local Address:Port`,
/// `Peer Address:Port` and `Process` (`-p`'s `users:(...)`, then `-e`'s `uid:N sk:ID`);
/// `-i` adds a line under a socket, started by a tab.
pub fn render(rows: &[Row], opts: &Options) -> String {
    struct Line {
        cells: Vec<String>,
        local: (String, Option<String>),
        peer: (String, Option<String>),
        process: String,
        info: Vec<String>,
    }
    let netid_col = opts.netid_column();
    let state_col = opts.state_column();
    let mut lead_head = Vec::new();
    if netid_col {
        lead_head.push("Netid".to_string());
    }
    if state_col {
        lead_head.push("State".to_string());
    }
    lead_head.extend(["Recv-Q".to_string(), "Send-Q".to_string()]);
    let mut lines = Vec::new();
    for r in rows {
        let s = &r.status;
        let mut cells = Vec::new();
        if netid_col {
            cells.push(netid(s).to_string());
        }
        if state_col {
            cells.push(match SsState::of(s) {
                Some(st) if r.readable => st.word().to_string(),
                _ => "?".into(),
            });
        }
        let (rq, sq) = queues(r);
        cells.extend([rq, sq]);
        let mut process = Vec::new();
        if opts.processes
            && let Some(p) = &r.process
        {
            process.push(users(p));
        }
        if opts.extended {
            process.push(format!("uid:{} sk:{}", s.owner, s.id));
        }
        lines.push(Line {
            cells,
            local: split_addr(s, &s.local, false),
            peer: split_addr(s, &s.remote, true),
            process: process.join(" "),
            info: if opts.info && r.readable {
                info_words(s)
            } else {
                Vec::new()
            },
        });
    }
    let w = |f: &dyn Fn(&Line) -> usize, head: usize| lines.iter().map(f).fold(head, usize::max);
    let lead: Vec<usize> = (0..lead_head.len())
        .map(|i| w(&|l| l.cells[i].chars().count(), lead_head[i].len()))
        .collect();
    let port_len = |p: &Option<String>| p.as_ref().map_or(0, |p| p.chars().count());
    let lhost = w(&|l| l.local.0.chars().count(), "Local Address".len());
    let lport = w(&|l| port_len(&l.local.1), "Port".len());
    let phost = w(&|l| l.peer.0.chars().count(), "Peer Address".len());
    let pport = w(&|l| port_len(&l.peer.1), "Port".len());
    let addr = |out: &mut String, (h, p): &(String, Option<String>), hw: usize, pw: usize| {
        let _ = write!(out, "{h:>hw$}");
        match p {
            Some(p) => {
                let _ = write!(out, ":{p:<pw$}");
            }
            None => {
                let _ = write!(out, " {:pw$}", "");
            }
        }
    };
    let mut out = String::new();
    let mut line = String::new();
    for (h, width) in lead_head.iter().zip(&lead) {
        let _ = write!(line, "{h:<width$} ");
    }
    addr(
        &mut line,
        &("Local Address".into(), Some("Port".into())),
        lhost,
        lport,
    );
    line.push(' ');
    addr(
        &mut line,
        &("Peer Address".into(), Some("Port".into())),
        phost,
        pport,
    );
    line.push_str(" Process");
    out.push_str(line.trim_end());
    out.push('\n');
    for l in &lines {
        line.clear();
        for (c, width) in l.cells.iter().zip(&lead) {
            let _ = write!(line, "{c:<width$} ");
        }
        addr(&mut line, &l.local, lhost, lport);
        line.push(' ');
        addr(&mut line, &l.peer, phost, pport);
        line.push(' ');
        line.push_str(&l.process);
        out.push_str(line.trim_end());
        out.push('\n');
        if !l.info.is_empty() {
            let _ = writeln!(out, "\t {}", l.info.join(" "));
        }
    }
    out
}

/// The rows as one JSON array of objects, for scripts: `ss`'s columns (`netid`, `state`,
/// `recv_q`, `send_q`, `local`, `peer`) and everything ksock knows of the socket (`id`,
/// `family`, `type`, `ksock_state`, `uid`, `pid`, `process` and `fds` when the process is
/// known, `peer_uid`, `peer_pid`, `nonblock`, `backlog`, `pending`, and the family's
/// `details`, numbers as numbers).
pub fn render_json(rows: &[Row]) -> String {
    use serde_json::{Map, Value, json};
    let addr = |a: &str| {
        if a == "-" {
            Value::Null
        } else {
            Value::from(a)
        }
    };
    let all: Vec<Value> = rows
        .iter()
        .map(|r| {
            let s = &r.status;
            let (rq, sq) = if r.readable {
                if s.state == "listening" {
                    (json!(s.pending), json!(s.backlog))
                } else {
                    (json!(s.recvq), json!(s.sendq))
                }
            } else {
                (Value::Null, Value::Null)
            };
            let details: Map<String, Value> = s
                .details
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .parse::<u64>()
                        .map_or_else(|_| Value::from(v.as_str()), Value::from);
                    (k.clone(), v)
                })
                .collect();
            json!({
                "netid": netid(s),
                "state": SsState::of(s).filter(|_| r.readable).map(SsState::word),
                "recv_q": rq,
                "send_q": sq,
                "local": addr(&s.local),
                "peer": addr(&s.remote),
                "id": s.id,
                "family": s.family,
                "type": s.ty,
                "ksock_state": s.state,
                "uid": s.owner,
                "pid": s.pid,
                "process": r.process.as_ref().map(|p| p.name.clone()),
                "fds": r.process.as_ref().map(|p| p.fds.clone()),
                "peer_uid": s.peer_uid,
                "peer_pid": s.peer_pid,
                "nonblock": s.nonblock,
                "backlog": s.backlog,
                "pending": s.pending,
                "details": details,
            })
        })
        .collect();
    let mut text = Value::Array(all).to_string();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, state: &str, local: &str) -> Row {
        Row {
            status: Status {
                id,
                family: "local".into(),
                ty: "seqpacket".into(),
                state: state.into(),
                local: local.into(),
                remote: "-".into(),
                recvq: 5,
                sendq: 6,
                backlog: 128,
                pending: 2,
                owner: 1000,
                nonblock: false,
                peer_uid: None,
                peer_pid: None,
                pid: Some(4242),
                details: Vec::new(),
            },
            readable: true,
            process: None,
        }
    }

    fn tcp(id: u64, state: &str, tcp_state: &str, local: &str, remote: &str) -> Row {
        let mut r = row(id, state, local);
        r.status.family = "inet".into();
        r.status.ty = "stream".into();
        r.status.remote = remote.into();
        r.status.details = vec![("tcp_state".into(), tcp_state.into())];
        r
    }

    fn all() -> Options {
        Options {
            all: true,
            ..Options::default()
        }
    }

    #[test]
    fn table_columns_line_up_as_ss_prints_them() {
        let rows = [
            tcp(3, "listening", "LISTEN", "127.0.0.1:80", "-"),
            tcp(
                4,
                "connected",
                "ESTABLISHED",
                "127.0.0.1:80",
                "127.0.0.1:40000",
            ),
            row(7, "listening", "dwm"),
            row(12, "connected", "-"),
        ];
        let t = render(&rows, &all());
        assert_eq!(
            t,
            "\
Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port  Process
tcp   LISTEN 2      128        127.0.0.1:80        0.0.0.0:*
tcp   ESTAB  5      6          127.0.0.1:80      127.0.0.1:40000
u_seq LISTEN 2      128              dwm                 *
u_seq ESTAB  5      6                  *                 *
"
        );
        // One kind of socket: no Netid column; one state: no State column.
        let only_tcp = Options { tcp: true, ..all() };
        let t = render(&rows[..2], &only_tcp);
        assert!(t.starts_with("State  Recv-Q Send-Q Local"), "{t}");
        let established = Options {
            tcp: true,
            states: parse_filter(&["state", "established"]).unwrap(),
            ..Options::default()
        };
        let t = render(&rows[1..2], &established);
        assert!(t.starts_with("Recv-Q Send-Q Local"), "{t}");
        assert!(t.lines().nth(1).unwrap().starts_with("5      6 "), "{t}");
    }

    #[test]
    fn processes_owners_and_details_go_where_ss_puts_them() {
        let mut l = tcp(3, "listening", "LISTEN", "[::]:80", "-");
        l.status.details.push(("syn_dropped".into(), "4".into()));
        l.process = Some(Process {
            name: "python3".into(),
            pid: 4242,
            fds: vec![],
        });
        let mut c = tcp(4, "connected", "ESTABLISHED", "[::1]:80", "[::1]:5000");
        c.status.details.extend(
            [
                ("rcv_space", "65536"),
                ("mtu", "65535"),
                ("mss", "65475"),
                ("congestion", "reno"),
                ("timestamps", "on"),
                ("nodelay", "on"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        c.process = Some(Process {
            name: "python3".into(),
            pid: 4242,
            fds: vec![5, 7],
        });
        let opts = Options {
            tcp: true,
            processes: true,
            extended: true,
            info: true,
            ..all()
        };
        let t = render(&[l, c], &opts);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(
            lines[1].starts_with("LISTEN 2      128             [::]:80           [::]:*    "),
            "{t}"
        );
        assert!(
            lines[1].ends_with(" users:((\"python3\",pid=4242)) uid:1000 sk:3"),
            "{t}"
        );
        assert_eq!(lines[2], "\t backlog:128 pending:2 syn_dropped:4");
        assert!(
            lines[3].ends_with(
                " users:((\"python3\",pid=4242,fd=5),(\"python3\",pid=4242,fd=7)) uid:1000 sk:4"
            ),
            "{t}"
        );
        assert_eq!(
            lines[4],
            "\t ts reno mss:65475 pmtu:65535 rcv_space:65536 nodelay"
        );
        // Without -p, -e and -i, none of it.
        let plain = render(
            &[tcp(4, "connected", "ESTABLISHED", "[::1]:80", "[::1]:5000")],
            &all(),
        );
        assert_eq!(plain.lines().count(), 2, "{plain}");
        assert!(
            plain.lines().nth(1).unwrap().ends_with("[::1]:5000"),
            "{plain}"
        );
    }

    #[test]
    fn unreadable_rows_show_question_marks_and_only_with_all() {
        let mut r = row(3, "?", "?");
        r.readable = false;
        r.status.ty = "?".into();
        let t = render(std::slice::from_ref(&r), &all());
        assert!(t.lines().nth(1).unwrap().contains("?     ?      ?"), "{t}");
        assert_eq!(all().select(vec![r.clone()]).len(), 1);
        assert!(Options::default().select(vec![r]).is_empty());
    }

    #[test]
    fn options_select_kinds_and_states_as_ss_does() {
        let rows = vec![
            tcp(1, "listening", "LISTEN", "127.0.0.1:80", "-"),
            tcp(2, "connected", "ESTABLISHED", "127.0.0.1:80", "127.0.0.1:5"),
            tcp(3, "closing", "TIME_WAIT", "127.0.0.1:6", "127.0.0.1:80"),
            tcp(4, "bound", "CLOSE", "127.0.0.1:7", "-"),
            tcp(5, "connecting", "SYN_SENT", "127.0.0.1:8", "127.0.0.1:9"),
            {
                let mut u = row(6, "bound", "127.0.0.1:53");
                u.status.family = "inet".into();
                u.status.ty = "dgram".into();
                u
            },
            {
                let mut u = row(7, "connected", "127.0.0.1:54");
                u.status.family = "inet".into();
                u.status.ty = "dgram".into();
                u
            },
            row(8, "listening", "dwm"),
            row(9, "connected", "-"),
            {
                let mut d = row(10, "bound", "log");
                d.status.ty = "dgram".into();
                d
            },
        ];
        let ids = |o: Options| -> Vec<u64> {
            o.select(rows.clone()).iter().map(|r| r.status.id).collect()
        };
        let with = |f: &dyn Fn(&mut Options)| {
            let mut o = Options::default();
            f(&mut o);
            ids(o)
        };
        // Default: no listeners, no TIME-WAIT, no unconnected TCP or UDP.
        assert_eq!(with(&|_| {}), [2, 5, 7, 9, 10]);
        assert_eq!(with(&|o| o.all = true), (1..=10).collect::<Vec<_>>());
        assert_eq!(with(&|o| o.listening = true), [1, 4, 6, 8, 10]);
        assert_eq!(with(&|o| o.tcp = true), [2, 5]);
        assert_eq!(with(&|o| (o.tcp, o.all) = (true, true)), [1, 2, 3, 4, 5]);
        assert_eq!(with(&|o| (o.udp, o.all) = (true, true)), [6, 7]);
        assert_eq!(with(&|o| o.udp = true), [7]);
        assert_eq!(with(&|o| (o.unix, o.listening) = (true, true)), [8, 10]);
        assert_eq!(with(&|o| (o.tcp, o.udp) = (true, true)), [2, 5, 7]);
        let state = |words: &[&str]| with(&|o| o.states = parse_filter(words).unwrap());
        assert_eq!(state(&["state", "established"]), [2, 7, 9]);
        assert_eq!(state(&["state", "listening"]), [1, 8]);
        assert_eq!(state(&["state", "time-wait"]), [3]);
        assert_eq!(state(&["state", "syn-sent", "state", "time-wait"]), [3, 5]);
        assert_eq!(state(&["state", "connected"]), [2, 3, 5, 7, 9]);
        assert_eq!(state(&["state", "synchronized"]), [2, 3, 7, 9]);
        assert_eq!(state(&["state", "closed"]), [4, 6, 10]);
        assert_eq!(state(&["state", "unconnected"]), [4, 6, 10]);
        assert_eq!(state(&["state", "all"]), (1..=10).collect::<Vec<_>>());
        assert_eq!(state(&["exclude", "listening"]), [2, 3, 4, 5, 6, 7, 9, 10]);
        assert_eq!(state(&["state", "bucket"]), [3]);
        assert_eq!(state(&["state", "big"]), [1, 2, 4, 5, 6, 7, 8, 9, 10]);
        // A state filter takes the place of -l and -a.
        assert_eq!(
            with(&|o| (o.all, o.states) = (true, parse_filter(&["state", "listening"]).unwrap())),
            [1, 8]
        );
    }

    #[test]
    fn filters_are_ss_words_and_errors_say_what_is_allowed() {
        assert_eq!(parse_filter::<&str>(&[]), Ok(None));
        assert_eq!(
            parse_filter(&["state", "ESTABLISHED"]),
            Ok(Some(StateSet::of(&[SsState::Estab])))
        );
        let e = parse_filter(&["state", "bogus"]).unwrap_err();
        assert!(e.starts_with("wrong state name: bogus"), "{e}");
        assert!(e.contains("time-wait") && e.contains("connected"), "{e}");
        assert!(
            parse_filter(&["state"])
                .unwrap_err()
                .contains("needs a state name")
        );
        let e = parse_filter(&["dport", "=", ":80"]).unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        for s in SsState::ALL {
            assert_eq!(StateSet::named(s.filter_name()), Some(StateSet::of(&[s])));
        }
    }

    #[test]
    fn json_is_one_array_with_every_field() {
        let mut c = tcp(4, "connected", "ESTABLISHED", "127.0.0.1:80", "127.0.0.1:5");
        c.status.details.push(("rcv_space".into(), "65536".into()));
        c.process = Some(Process {
            name: "python3".into(),
            pid: 4242,
            fds: vec![5],
        });
        let l = row(7, "listening", "dwm");
        let v: serde_json::Value = serde_json::from_str(&render_json(&[c, l])).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["netid"], "tcp");
        assert_eq!(a[0]["state"], "ESTAB");
        assert_eq!(a[0]["local"], "127.0.0.1:80");
        assert_eq!(a[0]["peer"], "127.0.0.1:5");
        assert_eq!(a[0]["recv_q"], 5);
        assert_eq!(a[0]["process"], "python3");
        assert_eq!(a[0]["pid"], 4242);
        assert_eq!(a[0]["fds"], serde_json::json!([5]));
        assert_eq!(a[0]["details"]["tcp_state"], "ESTABLISHED");
        assert_eq!(a[0]["details"]["rcv_space"], 65536);
        assert_eq!(a[1]["netid"], "u_seq");
        assert_eq!(a[1]["state"], "LISTEN");
        assert_eq!(a[1]["peer"], serde_json::Value::Null);
        assert_eq!(a[1]["recv_q"], 2);
        assert_eq!(a[1]["send_q"], 128);
        assert_eq!(a[1]["process"], serde_json::Value::Null);
        assert_eq!(render_json(&[]), "[]\n");
    }

    #[test]
    fn a_running_stack_gives_the_same_table() {
        use ksock::{Domain, SockAddr, SockType};
        let st = Stack::new();
        let l = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
        l.bind(&SockAddr::local("dwm").unwrap()).unwrap();
        l.listen(16).unwrap();
        let c = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
        c.connect(&SockAddr::local("dwm").unwrap()).unwrap();
        c.send(b"12345").unwrap();
        let t = render(&all().select(from_stack(&st)), &all());
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert_eq!(lines[1], ["u_seq", "LISTEN", "1", "16", "dwm", "*"], "{t}");
        assert_eq!(lines[2], ["u_seq", "ESTAB", "0", "5", "*", "dwm"], "{t}");
        // By default, as ss, the listener is left out.
        let t = render(
            &Options::default().select(from_stack(&st)),
            &Options::default(),
        );
        assert_eq!(t.lines().count(), 2, "{t}");
        drop((l, c));
        assert!(from_stack(&st).is_empty());
    }

    #[test]
    fn ksock_mounts_are_found_in_mountinfo() {
        let text = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
98 29 0:52 / /tmp/a\\040b/net rw,nosuid,nodev - fuse.ksock ksock rw,user_id=0
99 29 0:53 / /mnt/other rw - fuse.sshfs host: rw
100 29 0:54 / /net rw,nosuid shared:7 - fuse.ksock ksock rw,user_id=0
";
        assert_eq!(
            parse_mountinfo(text),
            [PathBuf::from("/tmp/a b/net"), PathBuf::from("/net")]
        );
        assert!(parse_mountinfo("").is_empty());
    }

    #[test]
    fn an_unmounted_directory_is_a_clear_error() {
        let e = collect(Path::new("/nonexistent/ksock")).unwrap_err();
        assert!(e.to_string().contains("is the tree mounted?"), "{e}");
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("123")).unwrap();
        let e = collect(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("is not a ksock tree"), "{e}");
    }
}
