//! The workloads, written once for any [`Endpoint`]: a ksock socket through the Rust API or
//! a file descriptor through system calls. Both sides of a comparison run the very same
//! loop.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// One end of a connection: blocking send and receive.
pub trait Endpoint: Send + Sync {
    /// Sends from `buf`; returns how much went.
    fn send(&self, buf: &[u8]) -> Result<usize, String>;
    /// Receives into `buf`; returns how much came (0: end of file).
    fn recv(&self, buf: &mut [u8]) -> Result<usize, String>;
    /// Shuts both directions down so that a peer blocked on this connection wakes up with an
    /// error or end of file (after a failure, so that a benchmark never hangs).
    fn hang_up(&self) {}
}

impl Endpoint for ksock::Socket {
    fn send(&self, buf: &[u8]) -> Result<usize, String> {
        ksock::Socket::send(self, buf).map_err(|e| format!("send: {e:#}"))
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, String> {
        ksock::Socket::recv(self, buf).map_err(|e| format!("recv: {e:#}"))
    }

    fn hang_up(&self) {
        let _ = self.shutdown(ksock::Shutdown::Both);
    }
}

/// A file descriptor used with `write(2)` and `read(2)`: a socket, a pipe, a file.
pub struct Fd(pub OwnedFd);

impl Endpoint for Fd {
    fn send(&self, buf: &[u8]) -> Result<usize, String> {
        loop {
            match nix::unistd::write(self.0.as_fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map_err(|e| format!("write: {e}")),
            }
        }
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, String> {
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map_err(|e| format!("read: {e}")),
            }
        }
    }

    fn hang_up(&self) {
        // Not a socket (a file): nothing blocks on it, nothing to do.
        let _ = nix::sys::socket::shutdown(self.0.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    }
}

/// Runs `f`; if it fails, hangs `e` up so that its peer does not wait forever.
fn or_hang_up<E: Endpoint, T>(e: &E, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let r = f();
    if r.is_err() {
        e.hang_up();
    }
    r
}

/// Sends all of `buf` (a stream may take it in parts; a record goes whole).
pub fn send_all<E: Endpoint + ?Sized>(e: &E, mut buf: &[u8]) -> Result<(), String> {
    while !buf.is_empty() {
        let n = e.send(buf)?;
        if n == 0 {
            return Err("send took no bytes".into());
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// Receives exactly `buf.len()` bytes (a record is taken whole in one call).
pub fn recv_exact<E: Endpoint + ?Sized>(e: &E, buf: &mut [u8]) -> Result<(), String> {
    let mut got = 0;
    while got < buf.len() {
        let n = e.recv(&mut buf[got..])?;
        if n == 0 {
            return Err(format!("end of file after {got} of {} bytes", buf.len()));
        }
        got += n;
    }
    Ok(())
}

fn join<T>(h: thread::ScopedJoinHandle<'_, Result<T, String>>) -> Result<T, String> {
    h.join()
        .map_err(|_| "benchmark thread panicked".to_string())?
}

/// One-way transfer: `tx` sends `n` messages of `size` bytes while another thread receives
/// them from `rx` with a buffer of `size` bytes. Returns the time from the start until the
/// last byte arrived.
pub fn one_way<E: Endpoint>(tx: &E, rx: &E, size: usize, n: u64) -> Result<Duration, String> {
    let start = Barrier::new(2);
    thread::scope(|s| {
        let h = s.spawn(|| {
            let mut buf = vec![0u8; size];
            let total = size as u64 * n;
            let mut got = 0u64;
            start.wait();
            or_hang_up(rx, || {
                while got < total {
                    let k = rx.recv(&mut buf)?;
                    if k == 0 {
                        return Err(format!("end of file after {got} of {total} bytes"));
                    }
                    got += k as u64;
                }
                Ok(())
            })
        });
        let buf = vec![0x5au8; size];
        start.wait();
        let t0 = Instant::now();
        let sent = or_hang_up(tx, || {
            for _ in 0..n {
                send_all(tx, &buf)?;
            }
            Ok(())
        });
        let received = join(h);
        let t = t0.elapsed();
        sent.and(received).map(|()| t)
    })
}

/// Ping-pong: `a` sends `size` bytes, `b` (on another thread) receives them and sends them
/// back, `n` times. Returns the total time (divide by `n` for the round trip).
pub fn ping_pong<E: Endpoint>(a: &E, b: &E, size: usize, n: u64) -> Result<Duration, String> {
    let start = Barrier::new(2);
    thread::scope(|s| {
        let h = s.spawn(|| {
            let mut buf = vec![0u8; size];
            start.wait();
            or_hang_up(b, || {
                for _ in 0..n {
                    recv_exact(b, &mut buf)?;
                    send_all(b, &buf)?;
                }
                Ok(())
            })
        });
        let mut buf = vec![0x5au8; size];
        start.wait();
        let t0 = Instant::now();
        let r = or_hang_up(a, || {
            for _ in 0..n {
                send_all(a, &buf)?;
                recv_exact(a, &mut buf)?;
            }
            Ok(())
        });
        let t = t0.elapsed();
        r.and(join(h)).map(|()| t)
    })
}

/// Small operations in lockstep on one thread: write `size` bytes to `tx`, read `size`
/// bytes from `rx`, `n` times (2n operations). Works on anything that gives back what it
/// takes, or gives bytes anyway (a null file).
pub fn lockstep<E: Endpoint>(tx: &E, rx: &E, size: usize, n: u64) -> Result<Duration, String> {
    let out = vec![0x5au8; size];
    let mut inb = vec![0u8; size];
    let t0 = Instant::now();
    for _ in 0..n {
        send_all(tx, &out)?;
        recv_exact(rx, &mut inb)?;
    }
    Ok(t0.elapsed())
}
