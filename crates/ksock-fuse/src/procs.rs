//! What `/proc` says about the processes that use the mount.
//!
//! FUSE tells the file system which thread made a request. When that request creates a
//! socket, `/proc` says which process (thread group) the thread belongs to, so that the
//! socket lives as long as that process (see `exits`), and when that process started, to
//! tell it from a later one with the same pid. It is read only on that request's path:
//! whether a process has exited, or a request's caller was interrupted, the kernel says
//! (a pidfd, `FUSE_INTERRUPT`).

use ksock_netfs::ProcId;
use std::fs;

fn status(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

fn field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// The state letter and start time (clock ticks since boot) from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything: split at the last one.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the file, starttime field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(22 - 3)?.parse().ok()?;
    Some((state, start))
}

/// The process (thread group) of thread `tid`, with its start time.
pub fn resolve(tid: u32) -> Option<ProcId> {
    let pid: u32 = field(&status(tid)?, "Tgid")?.parse().ok()?;
    let (_, start) = stat(pid)?;
    Some(ProcId { pid, start })
}

/// When the process `pid` started, if there is one (a zombie still is).
pub fn start_of(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether the process still runs (not exited, not a zombie, not a newer process with the
/// same pid). A zombie leader whose other threads still run counts as exited here; the
/// mount itself goes by pidfds, which wait for the whole thread group.
pub fn alive(p: ProcId) -> bool {
    matches!(stat(p.pid), Some((state, start)) if start == p.start && !matches!(state, 'Z' | 'X'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn this_process_resolves_and_lives() {
        let me = std::process::id();
        let p = resolve(me).expect("own process");
        assert_eq!(p.pid, me);
        assert!(alive(p));
        assert!(!alive(ProcId {
            pid: me,
            start: p.start + 1
        }));
        assert_eq!(start_of(me), Some(p.start));
        // A thread resolves to its process.
        let (tid, from_thread) = std::thread::spawn(|| {
            let tid = nix::unistd::gettid().as_raw() as u32;
            (tid, resolve(tid))
        })
        .join()
        .unwrap();
        assert_ne!(tid, me);
        assert_eq!(from_thread, Some(p));
    }

    #[test]
    fn a_child_that_exits_is_not_alive() {
        let mut child = Command::new("sh")
            .args(["-c", "read x"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let p = resolve(child.id()).expect("child");
        assert!(alive(p));
        drop(child.stdin.take());
        child.wait().unwrap();
        assert!(!alive(p));
        assert_ne!(start_of(p.pid), Some(p.start), "reaped");
    }
}
