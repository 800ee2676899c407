//! Runs a scenario on Linux and on ksock and compares what each saw.
//!
//! A scenario talks to [`T`]: every observation goes through [`T::rec`] (or [`T::want`],
//! which also checks a value the scenario expects), and the two logs must be equal line
//! for line. Where ksock differs from Linux on purpose (SPEC says so), the scenario uses
//! [`T::differs`], which checks each side against its own expected value and logs the same
//! line for both.

use super::api::{Api, PollFd, R};
use super::ksock_impl::Ksock;
use super::linux::Linux;
use ksock::Errno;
use ksock_posix::consts::*;
use std::fmt::{self, Debug};
use std::sync::Mutex;

/// Bytes, shown as a byte string.
#[derive(Clone, PartialEq, Eq)]
pub struct B(pub Vec<u8>);

impl Debug for B {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl PartialEq<&[u8]> for B {
    fn eq(&self, o: &&[u8]) -> bool {
        self.0 == *o
    }
}

/// Poll events, shown by name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ev(pub i16);

impl Debug for Ev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (POLLIN, "IN"),
            (POLLPRI, "PRI"),
            (POLLOUT, "OUT"),
            (POLLERR, "ERR"),
            (POLLHUP, "HUP"),
            (POLLNVAL, "NVAL"),
            (POLLRDNORM, "RDNORM"),
            (POLLRDBAND, "RDBAND"),
            (POLLWRNORM, "WRNORM"),
            (POLLWRBAND, "WRBAND"),
            (POLLRDHUP, "RDHUP"),
        ];
        let mut first = true;
        let mut left = self.0;
        for (bit, n) in names {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
                left &= !bit;
            }
        }
        if left != 0 || first {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{left:#x}")?;
        }
        Ok(())
    }
}

pub fn ty_name(ty: i32) -> &'static str {
    match ty & SOCK_TYPE_MASK {
        SOCK_STREAM => "stream",
        SOCK_DGRAM => "dgram",
        SOCK_SEQPACKET => "seqpacket",
        _ => "other",
    }
}

pub const TYPES: [i32; 3] = [SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM];
pub const CONN_TYPES: [i32; 2] = [SOCK_STREAM, SOCK_SEQPACKET];

/// A generous bound on waits that should end at once, so a bug shows as a failure, not a hang.
pub const SAFETY_MS: i32 = 10_000;

/// What a scenario sees.
pub struct T<'a> {
    pub api: &'a dyn Api,
    prefix: String,
    log: Mutex<Vec<String>>,
    /// What the logs call a port (inet scenarios: each side picks its own ports).
    labels: Mutex<Vec<(u16, String)>>,
}

impl<'a> T<'a> {
    fn new(api: &'a dyn Api, scenario: &str) -> Self {
        T {
            api,
            prefix: format!("ksock-posix-{}-{scenario}-", std::process::id()),
            log: Mutex::new(Vec::new()),
            labels: Mutex::new(Vec::new()),
        }
    }

    /// Names `port` in the logs (`127.0.0.1:L` rather than a number that differs between
    /// the two sides).
    pub fn label(&self, port: u16, name: &str) {
        let mut l = self.labels.lock().unwrap();
        l.retain(|(p, _)| *p != port);
        l.push((port, name.to_string()));
    }

    /// The name `port` was given, if any.
    pub fn label_of(&self, port: u16) -> Option<String> {
        let l = self.labels.lock().unwrap();
        l.iter().find(|(p, _)| *p == port).map(|(_, n)| n.clone())
    }

    fn side(&self) -> &'static str {
        if self.api.is_linux() {
            "linux"
        } else {
            "ksock"
        }
    }

    pub fn is_linux(&self) -> bool {
        self.api.is_linux()
    }

    /// Logs an observation.
    pub fn rec<V: Debug>(&self, what: &str, v: V) {
        if std::env::var_os("KSOCK_DIFF_TRACE").is_some() {
            eprintln!("[{}] {what} = {v:?}", self.side());
        }
        self.log.lock().unwrap().push(format!("{what} = {v:?}"));
    }

    /// Logs an observation and checks it against what the scenario expects.
    #[track_caller]
    pub fn want<V: Debug + PartialEq>(&self, what: &str, v: V, expected: V) {
        assert_eq!(v, expected, "[{}] {what}", self.side());
        self.rec(what, v)
    }

    /// A deliberate difference: Linux gives `linux`, ksock gives `spec` (SPEC says so; `why`
    /// says where). Both sides log the same line.
    #[track_caller]
    pub fn differs<V: Debug + PartialEq>(&self, what: &str, v: V, linux: V, spec: V) {
        let exp = if self.is_linux() { &linux } else { &spec };
        assert_eq!(&v, exp, "[{}] {what} (a known difference)", self.side());
        self.log
            .lock()
            .unwrap()
            .push(format!("{what} = linux {linux:?} / ksock {spec:?}"));
    }

    /// The scenario's own spelling of a name, unique to this run.
    pub fn name(&self, n: &str) -> Vec<u8> {
        let mut v = self.prefix.clone().into_bytes();
        v.extend_from_slice(n.as_bytes());
        v
    }

    /// An abstract `sockaddr_un` for `n`.
    pub fn addr(&self, n: &str) -> Vec<u8> {
        ksock_posix::unix_abstract(&self.name(n))
    }

    // ----- setup helpers: these must work, so they panic on failure -----

    #[track_caller]
    pub fn ok<V>(&self, what: &str, r: R<V>) -> V {
        match r {
            Ok(v) => v,
            Err(e) => panic!("[{}] {what}: {e:?}", self.side()),
        }
    }

    #[track_caller]
    pub fn sock(&self, ty: i32) -> i32 {
        self.ok("socket", self.api.socket(AF_UNIX, ty, 0))
    }

    #[track_caller]
    pub fn pair(&self, ty: i32) -> (i32, i32) {
        let [a, b] = self.ok("socketpair", self.api.socketpair(AF_UNIX, ty, 0));
        (a, b)
    }

    #[track_caller]
    pub fn bound(&self, ty: i32, n: &str) -> i32 {
        let s = self.sock(ty);
        self.ok("bind", self.api.bind(s, &self.addr(n)));
        s
    }

    #[track_caller]
    pub fn listener(&self, ty: i32, n: &str, backlog: i32) -> i32 {
        let s = self.bound(ty, n);
        self.ok("listen", self.api.listen(s, backlog));
        s
    }

    /// A (client, server) pair made through a listener called `n`, which is then closed.
    #[track_caller]
    pub fn connected(&self, ty: i32, n: &str) -> (i32, i32) {
        let l = self.listener(ty, n, 8);
        let c = self.sock(ty);
        self.ok("connect", self.api.connect(c, &self.addr(n)));
        let s = self.ok("accept", self.api.accept4(l, None, None, 0));
        self.ok("close listener", self.api.close(l));
        (c, s)
    }

    /// A connected pair of `ty`: a socketpair for datagrams, through a listener otherwise.
    #[track_caller]
    pub fn conn(&self, ty: i32, n: &str) -> (i32, i32) {
        if ty == SOCK_DGRAM {
            self.pair(ty)
        } else {
            self.connected(ty, n)
        }
    }

    // ----- common calls, nonblocking -----

    pub fn send(&self, fd: i32, data: &[u8]) -> R<usize> {
        self.api.sendto(fd, data, MSG_DONTWAIT, None)
    }

    pub fn sendto(&self, fd: i32, data: &[u8], to: &str) -> R<usize> {
        self.api
            .sendto(fd, data, MSG_DONTWAIT, Some(&self.addr(to)))
    }

    pub fn recv_flags(&self, fd: i32, n: usize, flags: i32) -> R<B> {
        let mut buf = vec![0u8; n];
        let k = self
            .api
            .recvfrom(fd, &mut buf, flags | MSG_DONTWAIT, None, None)?;
        buf.truncate(k.min(n));
        Ok(B(buf))
    }

    pub fn recv(&self, fd: i32, n: usize) -> R<B> {
        self.recv_flags(fd, n, 0)
    }

    /// A blocking receive (the caller makes sure it does not wait for long).
    pub fn recv_block(&self, fd: i32, n: usize, flags: i32) -> R<B> {
        let mut buf = vec![0u8; n];
        let k = self.api.recvfrom(fd, &mut buf, flags, None, None)?;
        buf.truncate(k.min(n));
        Ok(B(buf))
    }

    /// Data and the sender's address.
    pub fn recvfrom(&self, fd: i32, n: usize) -> R<(B, B)> {
        let mut buf = vec![0u8; n];
        let mut a = [0u8; 128];
        let mut alen = 128u32;
        let k = self
            .api
            .recvfrom(fd, &mut buf, MSG_DONTWAIT, Some(&mut a), Some(&mut alen))?;
        buf.truncate(k.min(n));
        Ok((B(buf), B(a[..alen as usize].to_vec())))
    }

    pub fn sockname(&self, fd: i32) -> R<B> {
        let mut a = [0u8; 128];
        let mut len = 128u32;
        self.api.getsockname(fd, Some(&mut a), Some(&mut len))?;
        Ok(B(a[..len as usize].to_vec()))
    }

    pub fn peername(&self, fd: i32) -> R<B> {
        let mut a = [0u8; 128];
        let mut len = 128u32;
        self.api.getpeername(fd, Some(&mut a), Some(&mut len))?;
        Ok(B(a[..len as usize].to_vec()))
    }

    pub fn getint(&self, fd: i32, opt: i32) -> R<i32> {
        let mut v = [0u8; 4];
        let mut len = 4u32;
        self.api
            .getsockopt(fd, SOL_SOCKET, opt, Some(&mut v), Some(&mut len))?;
        assert_eq!(len, 4);
        Ok(i32::from_ne_bytes(v))
    }

    pub fn setint(&self, fd: i32, opt: i32, v: i32) -> R<()> {
        self.api.setsockopt(fd, SOL_SOCKET, opt, &v.to_ne_bytes())
    }

    pub fn timeval(sec: i64, usec: i64) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&sec.to_ne_bytes());
        v[8..].copy_from_slice(&usec.to_ne_bytes());
        v
    }

    /// Sets `SO_RCVTIMEO` or `SO_SNDTIMEO` to `ms`.
    #[track_caller]
    pub fn timeout(&self, fd: i32, opt: i32, ms: i64) {
        let tv = Self::timeval(ms / 1000, (ms % 1000) * 1000);
        self.ok("set timeout", self.api.setsockopt(fd, SOL_SOCKET, opt, &tv));
    }

    pub fn nread(&self, fd: i32) -> R<i32> {
        let mut n = -1;
        self.api.ioctl(fd, FIONREAD, &mut n)?;
        Ok(n)
    }

    pub fn nonblock(&self, fd: i32, on: bool) {
        let mut v = on as i32;
        self.ok("FIONBIO", self.api.ioctl(fd, FIONBIO, &mut v));
    }

    /// The events of one descriptor, looking once.
    pub fn poll1(&self, fd: i32, events: i16) -> Ev {
        self.poll_wait(fd, events, 0)
    }

    pub fn poll_wait(&self, fd: i32, events: i16, ms: i32) -> Ev {
        let mut p = [PollFd::new(fd, events)];
        let n = self.ok("poll", self.api.poll(&mut p, ms));
        assert_eq!(n, (p[0].revents != 0) as usize, "poll's count");
        Ev(p[0].revents)
    }

    /// Sends `chunk`-byte writes without waiting until `EAGAIN`; returns the bytes sent.
    pub fn fill(&self, fd: i32, chunk: usize) -> usize {
        let data = vec![0x5au8; chunk];
        let mut total = 0;
        loop {
            match self.send(fd, &data) {
                Ok(n) => total += n,
                Err(e) if e == Errno::EAGAIN => return total,
                Err(e) => panic!("[{}] fill: {e:?}", self.side()),
            }
        }
    }

    /// Receives without waiting until `EAGAIN` or end of file; returns the bytes received.
    pub fn drain(&self, fd: i32) -> usize {
        let mut total = 0;
        loop {
            match self.recv(fd, 65536) {
                Ok(b) if b.0.is_empty() => return total,
                Ok(b) => total += b.0.len(),
                Err(_) => return total,
            }
        }
    }

    /// Connects nonblocking clients to `n` until `EAGAIN`; returns them.
    pub fn fill_backlog(&self, ty: i32, n: &str) -> Vec<i32> {
        let mut v = Vec::new();
        loop {
            let c = self.sock(ty | SOCK_NONBLOCK);
            match self.api.connect(c, &self.addr(n)) {
                Ok(()) => v.push(c),
                Err(e) if e == Errno::EAGAIN => {
                    self.ok("close", self.api.close(c));
                    return v;
                }
                Err(e) => panic!("[{}] fill_backlog: {e:?}", self.side()),
            }
            assert!(v.len() < 100, "backlog never filled");
        }
    }

    fn into_log(self) -> Vec<String> {
        self.log.into_inner().unwrap()
    }
}

/// Closes the Linux descriptors even if the scenario panics.
struct Cleanup<'a>(&'a dyn Api);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.0.is_linux() {
            self.0.finish();
        }
    }
}

fn run_one(api: &dyn Api, name: &str, f: &dyn Fn(&T<'_>)) -> Vec<String> {
    let _cleanup = Cleanup(api);
    let t = T::new(api, name);
    f(&t);
    api.finish();
    t.into_log()
}

/// Runs `f` on both sides and compares the logs.
pub fn run_on(name: &str, linux: &dyn Api, ksock: &dyn Api, f: &dyn Fn(&T<'_>)) {
    let a = run_one(linux, name, f);
    let b = run_one(ksock, name, f);
    if a != b {
        let mut report = format!("{name}: Linux and ksock differ\n");
        let n = a.len().max(b.len());
        for i in 0..n {
            let l = a.get(i).map_or("<none>", String::as_str);
            let k = b.get(i).map_or("<none>", String::as_str);
            let mark = if l == k { "  " } else { "!!" };
            report.push_str(&format!("{mark} linux: {l}\n{mark} ksock: {k}\n"));
        }
        panic!("{report}");
    }
    assert!(!a.is_empty(), "{name}: the scenario observed nothing");
    if std::env::var_os("KSOCK_DIFF_LOG").is_some() {
        eprintln!(
            "== {name}: {} observations, equal\n{}",
            a.len(),
            a.join("\n")
        );
    }
}

pub fn run(name: &str, f: impl Fn(&T<'_>)) {
    run_on(name, &Linux::default(), &Ksock::new(), &f);
}

macro_rules! scenario {
    ($(#[$m:meta])* $name:ident, |$t:ident| $body:block) => {
        $(#[$m])*
        #[test]
        fn $name() {
            $crate::harness::run(stringify!($name), |$t: &$crate::harness::T<'_>| $body)
        }
    };
}
pub(crate) use scenario;
