//! What `/proc` says about the processes that use the mount.
//!
//! FUSE tells the file system which thread made a request. Two questions need `/proc`:
//! which process created a socket (so that the socket lives as long as that process), and
//! whether the thread behind a parked request is being killed (fuser does not implement
//! `FUSE_INTERRUPT`, so the kernel waits, unkillable, until the request is answered).

use ksock_netfs::ProcId;
use std::fs;

/// `SIGKILL` in the pending-signal masks of `/proc/<pid>/status` (bit `9 - 1`).
const SIGKILL_BIT: u64 = 1 << 8;

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

/// Whether the process still runs (not exited, not a zombie, not a newer process with the
/// same pid).
pub fn alive(p: ProcId) -> bool {
    matches!(stat(p.pid), Some((state, start)) if start == p.start && !matches!(state, 'Z' | 'X'))
}

/// Whether the request of thread `tid` should be given up, as the kernel would have asked
/// with `FUSE_INTERRUPT`: the thread is gone, it is being killed (`SIGKILL` pending: also
/// the case for any signal whose default action kills), or a signal it catches and does not
/// block is pending (its handler can run once the request is answered with `EINTR`).
pub fn interrupted(tid: u32) -> bool {
    let Some(st) = status(tid) else {
        return true;
    };
    if matches!(
        field(&st, "State").and_then(|s| s.chars().next()),
        Some('Z' | 'X')
    ) {
        return true;
    }
    let mask = |k: &str| {
        field(&st, k)
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .unwrap_or(0)
    };
    let pending = mask("SigPnd") | mask("ShdPnd");
    pending & SIGKILL_BIT != 0 || pending & mask("SigCgt") & !mask("SigBlk") != 0
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
        assert!(!interrupted(me));
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
        assert!(interrupted(child.id()));
    }
}
