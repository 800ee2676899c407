//! `poll`: readiness of many descriptors, waiting with one waker on all of them.
//!
//! Each pass asks every socket [`Socket::poll_ready`] with the calling thread's waker; a
//! socket that is not ready registers the waker. If no descriptor is ready the thread parks
//! until a socket it registered with notifies, or the timeout ends. There is no busy loop:
//! a pass runs only after a notification (or a spurious unpark).

use crate::consts::*;
use crate::table::{Kind, Table};
use ksock::{Errno, Events, Result, Socket};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// One entry of a `poll` call, laid out as Linux `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollFd {
    /// The descriptor; a negative one is skipped (its `revents` is 0).
    pub fd: i32,
    /// The events of interest (`POLLIN`, `POLLOUT`, ...).
    pub events: i16,
    /// The events that happened, set by `poll`.
    pub revents: i16,
}

impl PollFd {
    /// An entry for `fd` with interest `events`.
    pub fn new(fd: i32, events: i16) -> PollFd {
        PollFd {
            fd,
            events,
            revents: 0,
        }
    }
}

/// What a file that is not a socket reports (Linux `DEFAULT_POLLMASK`).
const DEFAULT_POLLMASK: i16 = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

/// Always reported, asked for or not.
const ALWAYS: i16 = POLLERR | POLLHUP | POLLNVAL;

/// Linux poll bits for core readiness.
pub(crate) fn to_poll_bits(ev: Events) -> i16 {
    let mut r = 0;
    if ev.contains(Events::IN) {
        r |= POLLIN | POLLRDNORM;
    }
    if ev.contains(Events::OUT) {
        r |= POLLOUT | POLLWRNORM | POLLWRBAND;
    }
    if ev.contains(Events::ERR) {
        r |= POLLERR;
    }
    if ev.contains(Events::HUP) {
        r |= POLLHUP;
    }
    if ev.contains(Events::NVAL) {
        r |= POLLNVAL;
    }
    if ev.contains(Events::RDHUP) {
        r |= POLLRDHUP;
    }
    r
}

/// Core interest for Linux poll bits.
fn interest(events: i16) -> Events {
    let mut i = Events::empty();
    if events & (POLLIN | POLLRDNORM) != 0 {
        i |= Events::IN;
    }
    if events & (POLLOUT | POLLWRNORM | POLLWRBAND) != 0 {
        i |= Events::OUT;
    }
    if events & POLLRDHUP != 0 {
        i |= Events::RDHUP;
    }
    i
}

/// A socket's `revents`; with a context, registers its waker if nothing asked for is ready.
fn socket_revents(s: &Socket, events: i16, cx: Option<&mut Context<'_>>) -> i16 {
    let mask = events | ALWAYS;
    match cx {
        None => to_poll_bits(s.readiness()) & mask,
        Some(cx) => match s.poll_ready(cx, interest(events)) {
            Poll::Ready(ev) => to_poll_bits(ev) & mask,
            Poll::Pending => 0,
        },
    }
}

/// One pass over `fds`: sets every `revents` (registering the waker, if given, where nothing
/// is ready) and returns how many entries have events.
fn pass(table: &Table, fds: &mut [PollFd], mut cx: Option<&mut Context<'_>>) -> usize {
    let mut n = 0;
    for p in fds.iter_mut() {
        p.revents = if p.fd < 0 {
            0
        } else {
            match table.get(p.fd) {
                Err(_) => POLLNVAL,
                Ok(e) => match &e.file.kind {
                    Kind::Socket(s) => socket_revents(s, p.events, cx.as_deref_mut()),
                    Kind::Other(_) => DEFAULT_POLLMASK & (p.events | ALWAYS),
                },
            }
        };
        if p.revents != 0 {
            n += 1;
        }
    }
    n
}

pub(crate) fn poll(table: &Table, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize> {
    if fds.len() > table.limit() {
        return Err(Errno::EINVAL);
    }
    let deadline = u64::try_from(timeout_ms)
        .ok()
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    if timeout_ms == 0 {
        // A look without waiting registers nothing.
        return Ok(pass(table, fds, None));
    }
    let r = ksock::block_on(deadline, |cx| match pass(table, fds, Some(cx)) {
        0 => Poll::Pending,
        n => Poll::Ready(Ok(n)),
    });
    match r {
        // The time is up: one last look, as Linux takes.
        Err(e) if e == Errno::EAGAIN => Ok(pass(table, fds, None)),
        r => r,
    }
}
