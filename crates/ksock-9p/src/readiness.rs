//! `poll` through the import: readiness computed from a socket's `status` file, and the
//! polls that wait for it (9P has no readiness of its own; see [`crate::import`]).
//!
//! A waiting poll is re-checked by one timer thread for the whole mount, every
//! [`POLL_PERIOD`]: one status read at a time per waiting poll; the kernel is notified when
//! one of its events is ready, and the wait ends then, or when its file is released, or
//! when the mount ends.

use fuser::PollNotifier;
use ksock_netfs::status::Status;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

/// How often a waiting poll reads its socket's status again.
pub(crate) const POLL_PERIOD: Duration = Duration::from_millis(15);

const IN: u32 = (libc::POLLIN | libc::POLLRDNORM) as u32;
const OUT: u32 = (libc::POLLOUT | libc::POLLWRNORM) as u32;
const ERR: u32 = libc::POLLERR as u32;
const HUP: u32 = libc::POLLHUP as u32;
const RDHUP: u32 = libc::POLLRDHUP as u32;

/// What a text file (or a socket file whose status cannot be understood) reports.
pub(crate) const ALWAYS: u32 = IN | OUT;

/// A socket that is gone (its status cannot be found): as the local mount reports a socket
/// that has ended under an open file.
pub(crate) const GONE: u32 = IN | ERR | HUP;

/// The connection ended (every request fails): ready for everything, so that the next
/// call meets the error.
pub(crate) const BROKEN: u32 = IN | OUT | ERR | HUP;

/// The events of `ev` the poller asked for (errors and hang-ups are always reported).
pub(crate) fn masked(ev: u32, requested: u32) -> u32 {
    ev & (requested | ERR | HUP)
}

/// Whether a send now would find room: TCP's test where the status shows its send buffer
/// (`snd_space`), otherwise the local family's (at most half the default send buffer
/// queued).
fn room(st: &Status) -> bool {
    match st.detail("snd_space").and_then(|v| v.parse::<usize>().ok()) {
        Some(space) => space > st.sendq && space - st.sendq >= st.sendq / 2,
        None => st.sendq <= ksock::opt::WMEM_DEFAULT as usize / 2,
    }
}

/// The poll events of a socket, from its status (as `Socket::readiness` computes them,
/// where the status tells enough).
pub(crate) fn of_status(st: &Status) -> u32 {
    let data = if st.recvq > 0 { IN } else { 0 };
    let send = if room(st) { OUT } else { 0 };
    if st.ty == "dgram" {
        return match st.state.as_str() {
            "closed" => IN | OUT | HUP,
            _ => data | OUT,
        };
    }
    match (st.state.as_str(), st.detail("tcp_state")) {
        ("listening", _) => {
            if st.pending > 0 {
                IN
            } else {
                0
            }
        }
        // A connection-type socket that is not connected: writable and hung up (Linux).
        ("new" | "bound", _) => OUT | HUP,
        ("connecting", _) => 0,
        ("closed", _) => IN | OUT | HUP | RDHUP,
        ("connected" | "closing", Some(tcp)) => match tcp {
            "ESTABLISHED" => data | send,
            // This end shut its writing: a write fails at once.
            "FIN_WAIT1" | "FIN_WAIT2" => data | OUT,
            // The peer's FIN arrived: end of file is readable.
            "CLOSE_WAIT" => IN | RDHUP | send,
            // Both directions are shut.
            "LAST_ACK" | "CLOSING" | "TIME_WAIT" => IN | OUT | RDHUP | HUP,
            "CLOSE" => IN | OUT | HUP | RDHUP,
            // Not yet established.
            _ => 0,
        },
        ("connected", None) => data | send,
        // One direction or both shut, or the peer went away: a read gives what is left or
        // end of file, a write fails at once.
        ("closing", None) => IN | OUT | RDHUP,
        _ => ALWAYS,
    }
}

/// The poll events of a socket from its status file's text.
pub(crate) fn of_text(text: &[u8]) -> u32 {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| Status::parse(t).ok())
        .map_or(ALWAYS, |st| of_status(&st))
}

/// Starts a status read for the wait of open file `fh` (on socket `family`/`id`); its
/// result goes to [`Polls::checked`].
type Check = Box<dyn Fn(u64, &str, u64) + Send + Sync>;

struct Wait {
    family: String,
    id: u64,
    /// The events asked for, with errors and hang-ups.
    want: u32,
    ph: PollNotifier,
    /// A status read is under way.
    reading: bool,
}

#[derive(Default)]
struct Table {
    waits: HashMap<u64, Wait>,
    timer: bool,
    stopped: bool,
}

#[derive(Default)]
struct Inner {
    table: Mutex<Table>,
    wake: Condvar,
    check: OnceLock<Check>,
}

/// The polls waiting for readiness, by open file.
#[derive(Default)]
pub(crate) struct Polls {
    inner: Arc<Inner>,
}

impl Polls {
    /// Sets how a waiting poll's status is read (once, before any wait).
    pub(crate) fn set_check(&self, check: impl Fn(u64, &str, u64) + Send + Sync + 'static) {
        let _ = self.inner.check.set(Box::new(check));
    }

    /// Makes the poll of open file `fh` wait for one of `requested` (or an error or a
    /// hang-up); a wait it already had is replaced (the kernel keeps one notifier per file).
    pub(crate) fn wait(&self, fh: u64, family: &str, id: u64, requested: u32, ph: PollNotifier) {
        let mut t = self.inner.table.lock();
        if t.stopped {
            drop(t);
            let _ = ph.notify();
            return;
        }
        let want = requested | ERR | HUP;
        match t.waits.get_mut(&fh) {
            Some(w) => {
                w.want = want;
                w.ph = ph;
            }
            None => {
                t.waits.insert(
                    fh,
                    Wait {
                        family: family.to_owned(),
                        id,
                        want,
                        ph,
                        reading: false,
                    },
                );
            }
        }
        if !t.timer {
            let inner = self.inner.clone();
            let started = thread::Builder::new()
                .name("ksock-import-poll".into())
                .spawn(move || run(&inner));
            match started {
                Ok(_) => t.timer = true,
                Err(e) => {
                    // No timer: the poll is woken at once, and polls again.
                    tracing::warn!("cannot start the poll timer: {e}");
                    let w = t.waits.remove(&fh);
                    drop(t);
                    if let Some(w) = w {
                        let _ = w.ph.notify();
                    }
                    return;
                }
            }
        }
        self.inner.wake.notify_one();
    }

    /// The result of a waiting poll's status read: the kernel is notified (and the wait
    /// ends) when one of its events is ready.
    pub(crate) fn checked(&self, fh: u64, ev: u32) {
        let ph = {
            let mut t = self.inner.table.lock();
            let Some(w) = t.waits.get_mut(&fh) else {
                return;
            };
            w.reading = false;
            if ev & w.want == 0 {
                return;
            }
            t.waits.remove(&fh).map(|w| w.ph)
        };
        if let Some(ph) = ph {
            let _ = ph.notify();
        }
    }

    /// The file was released: its wait ends.
    pub(crate) fn forget(&self, fh: u64) {
        let w = self.inner.table.lock().waits.remove(&fh);
        drop(w);
    }

    /// The mount ended: every wait ends, and the timer.
    pub(crate) fn stop(&self) {
        let waits = {
            let mut t = self.inner.table.lock();
            t.stopped = true;
            std::mem::take(&mut t.waits)
        };
        self.inner.wake.notify_all();
        drop(waits);
    }

    /// How many polls wait.
    pub(crate) fn waiting(&self) -> usize {
        self.inner.table.lock().waits.len()
    }
}

/// The timer: every period, a status read for each waiting poll that has none under way.
fn run(inner: &Inner) {
    let mut t = inner.table.lock();
    loop {
        if t.stopped {
            t.timer = false;
            return;
        }
        if t.waits.is_empty() {
            inner.wake.wait(&mut t);
            continue;
        }
        inner.wake.wait_for(&mut t, POLL_PERIOD);
        if t.stopped {
            continue;
        }
        let due: Vec<(u64, String, u64)> = t
            .waits
            .iter_mut()
            .filter(|(_, w)| !w.reading)
            .map(|(fh, w)| {
                w.reading = true;
                (*fh, w.family.clone(), w.id)
            })
            .collect();
        if due.is_empty() {
            continue;
        }
        MutexGuard::unlocked(&mut t, || {
            if let Some(check) = inner.check.get() {
                for (fh, family, id) in &due {
                    check(*fh, family, *id);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(text: &str) -> u32 {
        of_text(format!("id 3\nfamily x\n{text}").as_bytes())
    }

    #[test]
    fn readiness_follows_the_status() {
        let conn = "type stream\nstate connected\nrecvq 0\nsendq 0\n";
        assert_eq!(st(conn), OUT);
        assert_eq!(st(&conn.replace("recvq 0", "recvq 5")), IN | OUT);
        assert_eq!(st(&conn.replace("sendq 0", "sendq 200000")), 0);
        assert_eq!(st("type stream\nstate listening\npending 0\n"), 0);
        assert_eq!(st("type stream\nstate listening\npending 1\n"), IN);
        assert_eq!(st("type stream\nstate new\n"), OUT | HUP);
        assert_eq!(st("type dgram\nstate bound\nrecvq 0\n"), OUT);
        let tcp = "type stream\nstate connecting\ntcp_state SYN_SENT\n";
        assert_eq!(st(tcp), 0);
        let est = "type stream\nstate connected\nrecvq 0\nsendq 0\ntcp_state ESTABLISHED\n\
                   snd_space 65536\n";
        assert_eq!(st(est), OUT);
        assert_eq!(
            st(&est.replace("ESTABLISHED", "CLOSE_WAIT")),
            IN | OUT | RDHUP
        );
        assert_eq!(st("type stream\nstate closed\n") & HUP, HUP);
        assert_eq!(of_text(b"not a status"), ALWAYS);
        assert_eq!(masked(IN | OUT, OUT), OUT);
        assert_eq!(masked(GONE, OUT), ERR | HUP);
    }
}
