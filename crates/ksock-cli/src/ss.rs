//! `ksock ss`: the live sockets of a mounted tree, as a table.

use ksock::Stack;
use ksock_netfs::parse_id;
use ksock_netfs::status::Status;
use std::collections::HashMap;
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
            }
        })
        .collect()
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// A socket's state as `ss` would print it: a TCP socket's TCP state in `ss`'s words
/// (`ESTAB`, `SYN-SENT`, `TIME-WAIT`...), any other socket's state as the core names it.
fn state_text(s: &Status) -> String {
    match s.detail("tcp_state") {
        Some("ESTABLISHED") => "ESTAB".into(),
        Some("CLOSE") => "UNCONN".into(),
        Some(t) => t
            .replace('_', "-")
            .replace("WAIT1", "WAIT-1")
            .replace("WAIT2", "WAIT-2"),
        None => s.state.clone(),
    }
}

/// The table. Like `ss`, a listener shows its pending connections as `Recv-Q` and its
/// backlog as `Send-Q`.
pub fn render(rows: &[Row], names: bool) -> String {
    let header = [
        "ID", "Family", "Type", "State", "Recv-Q", "Send-Q", "Local", "Remote", "Owner",
    ];
    let mut table: Vec<[String; 9]> = vec![header.map(String::from)];
    // A lookup per row would read the user database once per socket.
    let mut names_of: HashMap<u32, String> = HashMap::new();
    for r in rows {
        let s = &r.status;
        let (rq, sq) = if !r.readable {
            ("?".into(), "?".into())
        } else if s.state == "listening" {
            (s.pending.to_string(), s.backlog.to_string())
        } else {
            (s.recvq.to_string(), s.sendq.to_string())
        };
        table.push([
            s.id.to_string(),
            s.family.clone(),
            s.ty.clone(),
            state_text(s),
            rq,
            sq,
            s.local.clone(),
            s.remote.clone(),
            if names {
                names_of
                    .entry(s.owner)
                    .or_insert_with(|| user_name(s.owner))
                    .clone()
            } else {
                s.owner.to_string()
            },
        ]);
    }
    let mut width = [0usize; 9];
    for row in &table {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = width[i] - cell.chars().count();
            // Numbers right-aligned, text left-aligned.
            if matches!(i, 0 | 4 | 5) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
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
                details: Vec::new(),
            },
            readable: true,
        }
    }

    #[test]
    fn table_columns_line_up() {
        let t = render(
            &[row(7, "listening", "dwm"), row(12, "connected", "-")],
            false,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  Family  Type       State      Recv-Q  Send-Q"));
        assert!(lines[1].starts_with(" 7  local   seqpacket  listening       2     128  dwm"));
        assert!(lines[2].starts_with("12  local   seqpacket  connected       5       6  -"));
        assert!(lines[1].ends_with("1000"));
    }

    #[test]
    fn unreadable_rows_show_question_marks() {
        let mut r = row(3, "?", "?");
        r.readable = false;
        let t = render(&[r], false);
        assert!(t.lines().nth(1).unwrap().contains("?       ?"), "{t}");
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
        let t = render(&from_stack(&st), false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[1].contains("listening") && lines[1].contains("dwm"),
            "{t}"
        );
        assert!(
            lines[1].contains("       1      16"),
            "pending and backlog: {t}"
        );
        assert!(
            lines[2].contains("connected") && lines[2].contains("-      dwm"),
            "{t}"
        );
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
