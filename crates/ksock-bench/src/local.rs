//! Rows for the local family: ksock through the Rust API against Linux AF_UNIX through
//! system calls, for stream, seqpacket and dgram; and the memory an idle connected pair
//! costs on each.

use crate::Settings;
use crate::heap;
use crate::row::{Measured, Row, Side, Target};
use crate::stats::Unit;
use crate::sys;
use crate::unix;
use crate::work::{one_way, ping_pong};
use ksock::{Domain, SockAddr, SockType, Socket, Stack};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// The three local types with their names.
pub const TYPES: [(SockType, &str); 3] = [
    (SockType::STREAM, "stream"),
    (SockType::SEQPACKET, "seqpacket"),
    (SockType::DGRAM, "dgram"),
];

fn kerr(what: &str) -> impl Fn(ksock::Errno) -> String + '_ {
    move |e| format!("{what}: {e:#}")
}

fn ksock_pair(st: &Stack, ty: SockType) -> Result<(Socket, Socket), String> {
    st.socketpair(Domain::LOCAL, ty, 0)
        .map_err(kerr("socketpair"))
}

/// A one-way transfer row (message rate or bandwidth) for `ty` with `size`-byte messages.
pub fn one_way_row(group: &str, id: String, title: String, ty: SockType, size: usize) -> Row {
    let st = Stack::new();
    let bytes = size >= 4096;
    Row::new(
        group,
        id,
        title,
        if bytes {
            Unit::BytesPerSec
        } else {
            Unit::OpsPerSec
        },
        Side::timed("ksock", move |n| {
            let (a, b) = ksock_pair(&st, ty)?;
            one_way(&a, &b, size, n)
        }),
    )
    .against(Side::timed("AF_UNIX", move |n| {
        let (a, b) = unix::pair(ty)?;
        one_way(&a, &b, size, n)
    }))
    .per_iter(if bytes { size as f64 } else { 1.0 })
}

/// A throughput row in bytes per second at any size (for the sweep).
pub fn throughput_row(group: &str, id: String, title: String, ty: SockType, size: usize) -> Row {
    let mut r = one_way_row(group, id, title, ty, size);
    r.unit = Unit::BytesPerSec;
    r.per_iter = size as f64;
    r
}

fn connect_row(ty: SockType, name: &str) -> Row {
    let id = format!("local.{name}.connect");
    let title = format!("{name}: connect+accept+close");
    let unit = Unit::OpsPerSec;
    let setup = || -> Result<(Stack, Socket, SockAddr), String> {
        let st = Stack::new();
        let addr = SockAddr::local("ksock-bench-accept").map_err(kerr("address"))?;
        let l = st.socket(Domain::LOCAL, ty, 0).map_err(kerr("socket"))?;
        l.bind(&addr).map_err(kerr("bind"))?;
        l.listen(ksock::SOMAXCONN).map_err(kerr("listen"))?;
        Ok((st, l, addr))
    };
    let (st, l, addr) = match setup() {
        Ok(x) => x,
        Err(e) => return Row::failed("local", &id, &title, unit, e),
    };
    let reference = match unix::Listener::new(ty, name) {
        Ok(x) => x,
        Err(e) => return Row::failed("local", &id, &title, unit, e),
    };
    Row::new(
        "local",
        id,
        title,
        unit,
        Side::timed("ksock", move |n| {
            let t0 = Instant::now();
            for _ in 0..n {
                let c = st.socket(Domain::LOCAL, ty, 0).map_err(kerr("socket"))?;
                c.connect(&addr).map_err(kerr("connect"))?;
                let (s, _) = l.accept().map_err(kerr("accept"))?;
                drop(s);
                drop(c);
            }
            Ok(t0.elapsed())
        }),
    )
    .against(Side::timed("AF_UNIX", move |n| {
        let t0 = Instant::now();
        for _ in 0..n {
            reference.connect_accept()?;
        }
        Ok(t0.elapsed())
    }))
    .target(Target::RatioAtLeast(3.0))
    .note("one thread: socket, connect to a listener (AF_UNIX: abstract name), accept, close both")
}

/// The `local` group.
pub fn rows(_s: &Settings) -> Vec<Row> {
    let mut out = Vec::new();
    for (ty, name) in TYPES {
        out.push(
            one_way_row(
                "local",
                format!("local.{name}.msg64"),
                format!("{name}: one-way messages, 64 B"),
                ty,
                64,
            )
            .target(Target::RatioAtLeast(3.0)),
        );
        out.push(
            one_way_row(
                "local",
                format!("local.{name}.bulk64k"),
                format!("{name}: bandwidth, 64 KiB writes"),
                ty,
                65536,
            )
            .target(Target::RatioAtLeast(1.5)),
        );
        let st = Stack::new();
        out.push(
            Row::new(
                "local",
                format!("local.{name}.rtt64"),
                format!("{name}: ping-pong round trip, 64 B"),
                Unit::Nanos,
                Side::timed("ksock", move |n| {
                    let (a, b) = ksock_pair(&st, ty)?;
                    ping_pong(&a, &b, 64, n)
                }),
            )
            .against(Side::timed("AF_UNIX", move |n| {
                let (a, b) = unix::pair(ty)?;
                ping_pong(&a, &b, 64, n)
            }))
            .target(Target::RatioAtMost(0.5)),
        );
        if ty != SockType::DGRAM {
            out.push(connect_row(ty, name));
        }
    }
    if let Some(r) = out.first_mut() {
        r.note = Some(
            "message and bandwidth rows: a sender and a receiver thread, blocking calls, \
             the receiver's buffer as large as one message; ping-pong: two threads"
                .into(),
        );
    }
    out
}

/// A vector of `n` pairs whose memory is already touched, so that filling it adds nothing
/// to the resident set.
pub(crate) fn pair_vec<T>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    for slot in v.spare_capacity_mut() {
        *slot = MaybeUninit::zeroed();
    }
    v
}

fn ksock_memory(ty: SockType, n: usize) -> Result<Measured, String> {
    heap::trim();
    let st = Stack::new();
    let mut pairs: Vec<(Socket, Socket)> = pair_vec(n);
    let rss0 = sys::rss_bytes()?;
    let heap0 = heap::heap_in_use();
    let (made, trace) = heap::trace(|| {
        for _ in 0..n {
            pairs.push(ksock_pair(&st, ty)?);
        }
        Ok::<(), String>(())
    });
    made?;
    let rss1 = sys::rss_bytes()?;
    let heap1 = heap::heap_in_use();
    let m = heap::per_item("pair", n, (rss0, rss1), (heap0, heap1), trace.as_ref());
    if st.socket_count() != 2 * n {
        return Err(format!(
            "{} sockets open, {} expected",
            st.socket_count(),
            2 * n
        ));
    }
    drop(pairs);
    drop(st);
    heap::trim();
    Ok(m)
}

/// Holds `n` AF_UNIX pairs open on helper threads, each with a file descriptor table of
/// its own (`unshare(CLONE_FILES)`), so that the open-file limit applies per thread and
/// 100 000 pairs fit even where the hard limit cannot be raised. Measures the slab growth
/// while they are held.
fn unix_memory(ty: SockType, n: usize) -> Result<Measured, String> {
    use std::sync::mpsc;
    let limit = sys::raise_nofile(2 * n as u64 + 256)?;
    let per_thread = (limit.saturating_sub(256) / 2).max(1) as usize;
    let threads = n.div_ceil(per_thread);
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    let mut ctls = Vec::new();
    let mut handles = Vec::new();
    for i in 0..threads {
        let share = per_thread.min(n - i * per_thread);
        let (ctl_tx, ctl_rx) = mpsc::channel::<()>();
        let done = done_tx.clone();
        ctls.push(ctl_tx);
        handles.push(std::thread::spawn(move || {
            let ready = nix::sched::unshare(nix::sched::CloneFlags::CLONE_FILES)
                .map_err(|e| format!("unshare(CLONE_FILES): {e}"));
            let ok = ready.is_ok();
            let _ = done.send(ready);
            if !ok || ctl_rx.recv().is_err() {
                return;
            }
            let mut pairs: Vec<(crate::work::Fd, crate::work::Fd)> = pair_vec(share);
            let made = (|| {
                for _ in 0..share {
                    pairs.push(unix::pair(ty)?);
                }
                Ok(())
            })();
            let _ = done.send(made);
            // Hold them until told to stop (the sender is dropped).
            let _ = ctl_rx.recv();
            drop(pairs);
        }));
    }
    drop(done_tx);
    let collect = |what: &str| -> Result<(), String> {
        for _ in 0..threads {
            done_rx
                .recv()
                .map_err(|_| format!("a pair-holding thread ended while {what}"))??;
        }
        Ok(())
    };
    let run = || -> Result<Measured, String> {
        collect("getting ready")?;
        let caches0 = sys::slabinfo();
        let slab0 = sys::slab_bytes()?;
        for c in &ctls {
            let _ = c.send(());
        }
        collect("making pairs")?;
        let slab1 = sys::slab_bytes()?;
        let caches1 = sys::slabinfo();
        let mut m = Measured {
            value: (slab1 as f64 - slab0 as f64) / n as f64,
            extras: Vec::new(),
            detail: None,
        };
        if let (Some(a), Some(b)) = (caches0, caches1) {
            let growth = sys::slab_growth(&a, &b);
            let total: i64 = growth.iter().map(|g| g.1).sum();
            m.extras.push((
                "slab objects per pair (/proc/slabinfo)".into(),
                Unit::Bytes,
                total as f64 / n as f64,
            ));
            let top: Vec<String> = growth
                .iter()
                .filter(|g| g.1 as f64 / n as f64 >= 8.0)
                .map(|(name, b)| format!("{name} {:.0} B", *b as f64 / n as f64))
                .collect();
            m.detail = Some(format!("slab caches grown per pair: {}", top.join(", ")));
        }
        Ok(m)
    };
    let r = run();
    drop(ctls);
    for h in handles {
        let _ = h.join();
    }
    // Closed sockets are freed after an RCU grace period: let that pass before the next
    // sample measures again.
    std::thread::sleep(Duration::from_millis(50));
    r
}

/// The `memory` group: an idle connected pair on ksock (growth of this process's resident
/// set) and on Linux (growth of the kernel's slab memory).
pub fn memory_rows(s: &Settings) -> Vec<Row> {
    let n = s.pairs;
    TYPES
        .iter()
        .map(|&(ty, name)| {
            Row::new(
                "memory",
                format!("memory.{name}.pair"),
                format!("{name}: memory per idle connected pair"),
                Unit::Bytes,
                Side::value("ksock", move || ksock_memory(ty, n)),
            )
            .against(Side::value("AF_UNIX", move || unix_memory(ty, n)))
            .target(Target::Below(512.0))
            .note(if ty == SockType::STREAM {
                format!(
                    "{n} socketpairs held at once; ksock: growth of the process's resident set \
                     (RSS); AF_UNIX: growth of the Slab line of /proc/meminfo (file \
                     descriptor tables not included)"
                )
            } else {
                format!("{n} socketpairs held at once")
            })
        })
        .collect()
}
