//! Helpers shared by the KPI tests.
#![allow(dead_code)]

use bytes::Bytes;
use ksock::{Domain, Errno, MsgFlags, Result, SockAddr, SockType, Stack};
use ksock_kpi::*;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

/// A KPI whose blocking calls park threads: the crate's `ThreadPark`, or, in a build
/// without the `std` feature (the core then has spin locks, as in a kernel), a parker
/// supplied from outside as a kernel would.
pub fn kpi() -> Kpi {
    #[cfg(feature = "std")]
    return Kpi::with_threads(Stack::new());
    #[cfg(not(feature = "std"))]
    return Kpi::new(Stack::new(), Arc::new(outside::Threads::default()));
}

#[cfg(not(feature = "std"))]
mod outside {
    use ksock::Result;
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    use std::thread::{self, Thread};
    use std::time::{Duration, Instant};

    pub struct Threads {
        origin: Instant,
    }

    impl Default for Threads {
        fn default() -> Self {
            Threads {
                origin: Instant::now(),
            }
        }
    }

    struct Unpark(Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    impl ksock_kpi::Park for Threads {
        fn waker(&self) -> Waker {
            Waker::from(Arc::new(Unpark(thread::current())))
        }

        fn park(&self, timeout: Option<Duration>) -> Result<()> {
            match timeout {
                Some(t) => thread::park_timeout(t),
                None => thread::park(),
            }
            Ok(())
        }

        fn now(&self) -> Duration {
            self.origin.elapsed()
        }
    }
}

pub fn addr(n: &str) -> SockAddr {
    SockAddr::local(n).unwrap()
}

pub fn sock(k: &Kpi, ty: SockType) -> Sock {
    sock_socket(k, Domain::LOCAL, ty, 0, None).unwrap()
}

pub fn listener(k: &Kpi, ty: SockType, name: &str, backlog: i32) -> Sock {
    let l = sock(k, ty);
    sock_bind(&l, &addr(name)).unwrap();
    sock_listen(&l, backlog).unwrap();
    l
}

/// A connected (client, server) pair; the listener is closed afterwards.
pub fn pair(k: &Kpi, ty: SockType) -> (Sock, Sock) {
    let l = listener(k, ty, "pair-listener", 4);
    let c = sock(k, ty);
    sock_connect(&c, &addr("pair-listener"), MsgFlags::empty()).unwrap();
    let (s, _) = sock_accept(&l, None, MsgFlags::empty(), None).unwrap();
    sock_close(l);
    (c, s)
}

/// Asserts that nothing is left: no open socket, no bound name.
#[track_caller]
pub fn assert_clean(k: &Kpi) {
    let st = k.stack();
    assert_eq!(
        st.socket_count(),
        0,
        "sockets left open: {:?}",
        st.sockets()
    );
    let names = st.family(Domain::LOCAL).unwrap().bound();
    assert!(names.is_empty(), "names left bound: {names:?}");
}

pub fn send_now(so: &Sock, data: &[u8]) -> Result<usize> {
    sock_send(so, &SendMsg::new(&[data]), MsgFlags::DONTWAIT)
}

/// A nonblocking receive of up to `len` bytes: the bytes and the out flags.
pub fn recv_now(so: &Sock, len: usize) -> Result<(Vec<u8>, MsgFlags)> {
    let mut buf = vec![0u8; len];
    let mut iov = [&mut buf[..]];
    let mut msg = RecvMsg::new(&mut iov);
    let n = sock_receive(so, &mut msg, MsgFlags::DONTWAIT)?;
    let flags = msg.flags;
    buf.truncate(n);
    Ok((buf, flags))
}

/// Fills `so`'s path to its peer with nonblocking sends; returns the bytes sent.
pub fn fill(so: &Sock) -> usize {
    let chunk = [7u8; 1024];
    let mut total = 0;
    loop {
        match send_now(so, &chunk) {
            Ok(n) => total += n,
            Err(e) => {
                assert_eq!(e, Errno::EWOULDBLOCK);
                return total;
            }
        }
    }
}

/// Sets an integer `SOL_SOCKET` option.
pub fn set_int(so: &Sock, opt: ksock::SockOpt, v: i32) {
    sock_setsockopt(so, SOL_SOCKET, opt.raw(), ksock::OptVal::Int(v)).unwrap();
}

/// Sets a timeout option.
pub fn set_time(so: &Sock, opt: ksock::SockOpt, t: Duration) {
    sock_setsockopt(so, SOL_SOCKET, opt.raw(), ksock::OptVal::Time(Some(t))).unwrap();
}

// ----- byte stores whose freeing can be watched -----

/// Counts the live backing stores of the `Bytes` it made.
#[derive(Clone, Default)]
pub struct Watch {
    live: Arc<AtomicUsize>,
}

struct Store {
    data: Vec<u8>,
    live: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Store {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Watch {
    pub fn new() -> Watch {
        Watch::default()
    }

    /// `n` bytes of `fill` in a store of their own.
    pub fn bytes(&self, n: usize, fill: u8) -> Bytes {
        self.live.fetch_add(1, Ordering::SeqCst);
        Bytes::from_owner(Store {
            data: vec![fill; n],
            live: self.live.clone(),
        })
    }

    /// How many of its stores are still alive.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

// ----- upcalls that count -----

/// What a counting upcall saw.
#[derive(Default)]
pub struct Seen {
    /// Every call.
    pub calls: AtomicUsize,
    /// Calls on a socket that had already closed (every call `EBADF`).
    pub closed: AtomicUsize,
    /// The largest `FIONREAD` seen in a call.
    pub max_nread: AtomicUsize,
}

impl Seen {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn max_nread(&self) -> usize {
        self.max_nread.load(Ordering::SeqCst)
    }
}

/// An upcall that counts its calls and looks at the socket (which it could not do if a
/// lock were held: the core's locks are not reentrant).
pub fn counting() -> (SockUpcall, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let up = SockUpcall::new(seen.clone(), |so: &Sock, seen: &Arc<Seen>, w: WaitF| {
        assert_eq!(w, WaitF::DontWait);
        seen.calls.fetch_add(1, Ordering::SeqCst);
        let mut name = [0u8; 8];
        if sock_getsockname(so, &mut name) == Err(Errno::EBADF) {
            seen.closed.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let mut n = 0;
        if sock_ioctl(so, FIONREAD, &mut n).is_ok() {
            seen.max_nread
                .fetch_max(usize::try_from(n).unwrap(), Ordering::SeqCst);
        }
    });
    (up, seen)
}

// ----- a parker with a fake clock -----

type Hook = Box<dyn FnMut(u32) -> Result<()> + Send>;

/// A [`Park`] that never sleeps: each park moves its clock past the timeout at once and runs
/// a hook (which may act on sockets, or say `EINTR`). Blocking calls with a timeout thus end
/// deterministically; a park with no timeout and no hook panics instead of hanging.
pub struct FakePark {
    now_ns: AtomicU64,
    parks: AtomicUsize,
    hook: Mutex<Option<Hook>>,
    forever_ok: AtomicBool,
}

impl FakePark {
    pub fn new() -> Arc<FakePark> {
        Arc::new(FakePark {
            now_ns: AtomicU64::new(0),
            parks: AtomicUsize::new(0),
            hook: Mutex::new(None),
            forever_ok: AtomicBool::new(false),
        })
    }

    /// Runs `f(n)` at the n-th park (from 1); its error is what the park returns.
    pub fn on_park(&self, f: impl FnMut(u32) -> Result<()> + Send + 'static) {
        *self.hook.lock().unwrap() = Some(Box::new(f));
        self.forever_ok.store(true, Ordering::SeqCst);
    }

    /// How many times a call parked.
    pub fn parks(&self) -> usize {
        self.parks.load(Ordering::SeqCst)
    }

    pub fn kpi(self: &Arc<Self>) -> Kpi {
        Kpi::new(Stack::new(), self.clone())
    }
}

impl Park for FakePark {
    fn waker(&self) -> Waker {
        Waker::noop().clone()
    }

    fn park(&self, timeout: Option<Duration>) -> Result<()> {
        let n = self.parks.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(n < 100_000, "a call parked {n} times without finishing");
        assert!(
            timeout.is_some() || self.forever_ok.load(Ordering::SeqCst),
            "a call would sleep forever"
        );
        let step = timeout.map_or(1, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        self.now_ns.fetch_add(step, Ordering::SeqCst);
        let mut hook = self.hook.lock().unwrap();
        match hook.as_mut() {
            Some(f) => f(u32::try_from(n).unwrap()),
            None => Ok(()),
        }
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_ns.load(Ordering::SeqCst))
    }
}

pub const CONN_TYPES: [SockType; 2] = [SockType::STREAM, SockType::SEQPACKET];
pub const TYPES: [SockType; 3] = [SockType::STREAM, SockType::SEQPACKET, SockType::DGRAM];

/// `EINTR`, for parks that are interrupted.
pub const EINTR: Errno = Errno::EINTR;
