//! Blocking calls (feature `std`): the poll core plus a parked thread.
//!
//! A blocking call polls; on `Pending` it spins briefly (a peer on another core often
//! answers within microseconds, far sooner than a park and unpark round trip), then parks
//! until woken or until `SO_RCVTIMEO`/`SO_SNDTIMEO` runs out (`EAGAIN`, or the partial count
//! if some bytes already moved). The socket's nonblocking flag and `MSG_DONTWAIT` make every
//! call a single attempt.

use crate::addr::SockAddr;
use crate::buf::{Chain, ChainSink, RecvSink, SendBuf};
use crate::errno::{Errno, Result};
use crate::event::Events;
use crate::opt::Options;
use crate::socket::Socket;
use crate::types::{MsgFlags, RecvInfo, SockType};
use bytes::Buf;
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use std::sync::Arc;
use std::task::Wake;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

std::thread_local! {
    static SPIN: SpinBudget = const {
        SpinBudget {
            ns: Cell::new(SpinBudget::START_NS),
            waits: Cell::new(1),
        }
    };
    static PARKER: (Arc<ThreadWaker>, Waker) = {
        let tw = Arc::new(ThreadWaker { thread: thread::current(), woken: AtomicBool::new(false) });
        let w = Waker::from(tw.clone());
        (tw, w)
    };
}

/// The longest a blocked call spins before it parks. A peer on another core usually
/// answers well within this, and a park/unpark round trip costs about as much again (tens of
/// microseconds on a virtual machine).
const SPIN_MAX: Duration = Duration::from_micros(50);

/// How long a thread spins now: it doubles after a spin that saw the wake-up (to at least
/// twice what that spin took), halves after one that did not, down to a floor (so on a
/// loaded machine, where the peer is not running while we spin, threads soon park almost at
/// once), like glibc's adaptive mutexes. Every [`PROBE_EVERY`](Self::PROBE_EVERY)th wait
/// spins the longest, so that a thread whose budget fell while its peer could not run finds
/// out when it can again.
struct SpinBudget {
    ns: Cell<u32>,
    waits: Cell<u32>,
}

impl SpinBudget {
    const START_NS: u32 = 4_000;
    const MIN_NS: u32 = 250;
    const PROBE_EVERY: u32 = 32;

    /// How long to spin this time, and whether it is a probe.
    fn next(&self) -> (Duration, bool) {
        let w = self.waits.get();
        self.waits.set(w.wrapping_add(1));
        if w.is_multiple_of(Self::PROBE_EVERY) {
            (SPIN_MAX, true)
        } else {
            (Duration::from_nanos(u64::from(self.ns.get())), false)
        }
    }

    /// Adapts the budget to how a spin ended: `caught` after how long, or not at all.
    fn record(&self, caught: Option<Duration>, probe: bool) {
        let b = self.ns.get();
        let max = SPIN_MAX.as_nanos() as u32;
        self.ns.set(match caught {
            Some(t) => {
                let t = u32::try_from(t.as_nanos()).unwrap_or(max);
                b.saturating_mul(2)
                    .max(t.saturating_mul(2))
                    .clamp(Self::MIN_NS, max)
            }
            None if probe => b,
            None => (b / 2).max(Self::MIN_NS),
        });
    }
}

/// Whether spinning can help: only with another core to run the peer. Asked once, since the
/// standard library answers by reading cgroup files.
fn may_spin() -> bool {
    static CORES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// When a wait that started now with `timeout` must end.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Polls `f` until it is ready, parking the calling thread between polls (after an
/// adaptive spin); `EAGAIN` once `until` has passed. The waker `f` gets wakes this thread:
/// faces use this to wait on several sockets at once (`poll(2)`).
pub fn block_on<T>(
    until: Option<Instant>,
    mut f: impl FnMut(&mut Context<'_>) -> Poll<Result<T>>,
) -> Result<T> {
    PARKER.with(|(tw, waker)| {
        let mut cx = Context::from_waker(waker);
        let spin = may_spin();
        loop {
            tw.woken.store(false, Ordering::Relaxed);
            if let Poll::Ready(r) = f(&mut cx) {
                return r;
            }
            if spin {
                let (budget, probe) = SPIN.with(SpinBudget::next);
                let start = Instant::now();
                let mut caught = None;
                'spin: while start.elapsed() < budget {
                    for _ in 0..64 {
                        if tw.woken.load(Ordering::Acquire) {
                            caught = Some(start.elapsed());
                            break 'spin;
                        }
                        core::hint::spin_loop();
                    }
                }
                SPIN.with(|s| s.record(caught, probe));
            }
            while !tw.woken.load(Ordering::Acquire) {
                match until {
                    None => thread::park(),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return Err(Errno::EAGAIN);
                        }
                        thread::park_timeout(d - now);
                    }
                }
            }
        }
    })
}

/// The deadline of one blocking call: unset until the call first has to wait.
struct Wait {
    timeout: fn(&Options) -> Option<Duration>,
    until: Option<Option<Instant>>,
}

impl Wait {
    fn new(timeout: fn(&Options) -> Option<Duration>) -> Wait {
        Wait {
            timeout,
            until: None,
        }
    }
}

impl Socket {
    /// Runs `op` once without waiting; if it would block and neither the socket's
    /// nonblocking flag nor `MSG_DONTWAIT` forbids it, waits polling it again, until the
    /// call's deadline (set at its first wait from the timeout `w` picks, and kept across
    /// the waits of one call). The fast path takes no extra lock.
    fn wait_for<T>(
        &self,
        flags: MsgFlags,
        w: &mut Wait,
        mut op: impl FnMut(Option<&mut Context<'_>>) -> Poll<Result<T>>,
    ) -> Result<T> {
        match op(None) {
            Poll::Ready(Err(e)) if e == Errno::EAGAIN => {}
            Poll::Ready(r) => return r,
            Poll::Pending => {}
        }
        if flags.contains(MsgFlags::DONTWAIT) || self.is_nonblocking() {
            return Err(Errno::EAGAIN);
        }
        let until = match w.until {
            Some(u) => u,
            None => {
                let u = deadline((w.timeout)(&self.options()?));
                w.until = Some(u);
                u
            }
        };
        block_on(until, |cx| op(Some(cx)))
    }

    /// Connects, waiting (up to `SO_SNDTIMEO`) while the listener's backlog is full or the
    /// family's connect goes on (a handshake), and returns its outcome. A connect still
    /// going on when the time is up is `EINPROGRESS` (it goes on, as on Linux), or
    /// `EALREADY` if an earlier call started it; a full backlog still full is `EAGAIN`. A
    /// nonblocking socket does not wait: `EAGAIN`, `EINPROGRESS` or `EALREADY` (see
    /// [`try_connect`](Self::try_connect)).
    pub fn connect(&self, addr: &SockAddr) -> Result<()> {
        if self.is_nonblocking() {
            return self.try_connect(addr);
        }
        let already = self.state() == crate::State::Connecting;
        let r = self.wait_for(
            MsgFlags::empty(),
            &mut Wait::new(Options::sndtimeo),
            |cx| match cx {
                Some(cx) => self.poll_connect(cx, addr),
                // A connect under way (this one's or another's) is waited for below.
                None => Poll::Ready(self.connect_then_wait(addr)),
            },
        );
        match r {
            Err(e) if e == Errno::EAGAIN && self.state() == crate::State::Connecting => {
                Err(if already {
                    Errno::EALREADY
                } else {
                    Errno::EINPROGRESS
                })
            }
            r => r,
        }
    }

    /// Accepts a connection, waiting (up to `SO_RCVTIMEO`) for one; a nonblocking socket
    /// gets `EAGAIN` instead.
    pub fn accept(&self) -> Result<(Socket, SockAddr)> {
        self.wait_for(
            MsgFlags::empty(),
            &mut Wait::new(Options::rcvtimeo),
            |cx| match cx {
                Some(cx) => self.poll_accept(cx),
                None => Poll::Ready(self.try_accept()),
            },
        )
    }

    /// Sends from `src`. A blocking stream send sends everything (or stops at an error or
    /// the timeout, returning what went if anything did); records go whole or not at all.
    pub fn sendmsg(
        &self,
        src: &mut dyn Buf,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        self.send_blocking(SendBuf::Copy(src), to, flags)
    }

    fn send_blocking(
        &self,
        mut src: SendBuf<'_>,
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        let stream = self.ty() == SockType::STREAM;
        let mut w = Wait::new(Options::sndtimeo);
        let mut sent = 0;
        loop {
            let r = self.wait_for(flags, &mut w, |cx| {
                self.poll_send_inner(cx, src.reborrow(), to, flags)
            });
            match r {
                Ok(n) => {
                    sent += n;
                    if !stream || src.remaining() == 0 {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `data` to the peer.
    pub fn send(&self, data: &[u8]) -> Result<usize> {
        self.sendmsg(&mut &data[..], None, MsgFlags::empty())
    }

    /// Sends `data` to `to` (unconnected datagrams).
    pub fn send_to(&self, data: &[u8], to: &SockAddr) -> Result<usize> {
        self.sendmsg(&mut &data[..], Some(to), MsgFlags::empty())
    }

    /// Sends a chain without copying it; the chain is consumed whatever happens (bytes a
    /// partial stream send left over are dropped with it, as XNU's `sock_sendmbuf` frees the
    /// mbufs whatever the result).
    pub fn send_chain(&self, mut chain: Chain, flags: MsgFlags) -> Result<usize> {
        self.send_blocking(SendBuf::Share(&mut chain), None, flags)
    }

    /// Receives into `dst`. A blocking stream receive waits until `SO_RCVLOWAT` bytes (all
    /// of `dst` with [`MsgFlags::WAITALL`]) arrived, or end of file, an error or the timeout
    /// (returning what arrived if anything did; an error met after some bytes is reported by
    /// the next call).
    pub fn recvmsg(&self, dst: &mut dyn RecvSink, flags: MsgFlags) -> Result<RecvInfo> {
        let mut w = Wait::new(Options::rcvtimeo);
        let mut once = |dst: &mut dyn RecvSink| {
            self.wait_for(flags, &mut w, |cx| {
                self.poll_recv_inner(cx, &mut *dst, flags)
            })
        };
        let first = once(&mut *dst)?;
        if self.ty() != SockType::STREAM || flags.contains(MsgFlags::PEEK) || first.eof {
            return Ok(first);
        }
        let room = dst.room() + first.len;
        let target = if flags.contains(MsgFlags::WAITALL) {
            room
        } else {
            let lowat = self.options().map_or(1, |o| o.rcvlowat());
            if lowat <= 1 {
                return Ok(first);
            }
            lowat.min(room)
        };
        let mut total = first;
        while total.len < target && dst.room() > 0 {
            match once(&mut *dst) {
                Ok(info) if info.eof => break,
                Ok(info) => {
                    total.len += info.len;
                    total.full_len += info.len;
                }
                Err(e) => {
                    if e != Errno::EAGAIN {
                        self.core().stash_error(e);
                    }
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Receives into `buf`; returns the byte count (0 at end of file).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        let mut s: &mut [u8] = buf;
        self.recvmsg(&mut s, MsgFlags::empty()).map(|i| i.len)
    }

    /// Receives into `buf`; returns the byte count and the sender's address.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SockAddr)> {
        let mut s: &mut [u8] = buf;
        self.recvmsg(&mut s, MsgFlags::empty())
            .map(|i| (i.len, i.from))
    }

    /// Receives up to `max` bytes as a chain sharing the sender's bytes.
    pub fn recv_chain(&self, max: usize, flags: MsgFlags) -> Result<(Chain, RecvInfo)> {
        let mut chain = Chain::new();
        let info = self.recvmsg(&mut ChainSink::new(&mut chain, max), flags)?;
        Ok((chain, info))
    }

    /// Waits until any of `interest` (or `ERR`, `HUP`, `NVAL`) is ready, or `timeout` passes
    /// (then returns the empty set).
    pub fn wait(&self, interest: Events, timeout: Option<Duration>) -> Events {
        match block_on(deadline(timeout), |cx| {
            self.poll_ready(cx, interest).map(Ok)
        }) {
            Ok(ev) => ev,
            Err(_) => Events::empty(),
        }
    }
}

impl std::io::Read for &Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.recv(buf)?)
    }
}

impl std::io::Write for &Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(self.send(buf)?)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self).read(buf)
    }
}

impl std::io::Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
