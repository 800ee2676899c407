//! Close and reset races: many threads, many rounds. Every thread must finish with a clean
//! errno (no hang, no panic), no byte may be lost or duplicated while both ends live, and the
//! stack must be empty afterwards.

mod common;
use common::*;
use ksock::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

/// Joins all threads, failing the test (instead of hanging) if they do not finish in time.
fn join_all<T: Send + 'static>(handles: Vec<thread::JoinHandle<T>>) -> Vec<T> {
    let (tx, rx) = mpsc::channel();
    let n = handles.len();
    thread::spawn(move || {
        for h in handles {
            let _ = tx.send(h.join());
        }
    });
    (0..n)
        .map(|_| match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(v)) => v,
            Ok(Err(p)) => std::panic::resume_unwind(p),
            Err(_) => panic!("threads did not finish: deadlock or lost wake-up"),
        })
        .collect()
}

fn ends_cleanly(r: Result<usize>) -> bool {
    matches!(r, Err(e) if [Errno::EPIPE, Errno::EBADF, Errno::ECONNRESET].contains(&e))
}

#[test]
fn close_races_with_blocked_readers_and_writers() {
    let st = Stack::new();
    for round in 0..60 {
        let ty = CONN_TYPES[round % 2];
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        a.set_option(SockOpt::SndBuf, OptVal::Int(2048)).unwrap();
        let barrier = Arc::new(Barrier::new(4));
        let mut hs = Vec::new();
        for _ in 0..2 {
            let (a, bar) = (a.clone(), barrier.clone());
            hs.push(thread::spawn(move || {
                bar.wait();
                loop {
                    match a.send(&[1u8; 700]) {
                        Ok(_) => {}
                        r => return ends_cleanly(r),
                    }
                }
            }));
        }
        let (b2, bar) = (b.clone(), barrier.clone());
        hs.push(thread::spawn(move || {
            bar.wait();
            let mut buf = [0u8; 300];
            loop {
                match b2.recv(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    r => return ends_cleanly(r),
                }
            }
        }));
        let (a3, b3, bar) = (a.clone(), b.clone(), barrier.clone());
        hs.push(thread::spawn(move || {
            bar.wait();
            thread::sleep(Duration::from_micros((round as u64 * 37) % 400));
            if round % 3 == 0 {
                b3.hangup()
            } else {
                a3.hangup()
            }
            b3.hangup();
            true
        }));
        drop((a, b));
        assert!(
            join_all(hs).into_iter().all(|ok| ok),
            "round {round}: a thread ended with an unexpected result"
        );
    }
    assert_clean(&st);
}

#[test]
fn listener_close_races_with_connects_and_accepts() {
    let st = Stack::new();
    for round in 0..40 {
        let ty = CONN_TYPES[round % 2];
        let name = format!("race{round}");
        let l = listener(&st, ty, &name, 4);
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::new();
        for _ in 0..6 {
            let (st, name) = (st.clone(), name.clone());
            hs.push(thread::spawn(move || {
                let c = sock(&st, ty);
                match c.connect(&addr(&name)) {
                    Ok(()) => {
                        // Connected: the server end is accepted or reset; either way the
                        // client sees data, end of file or ECONNRESET, never a hang.
                        c.set_option(
                            SockOpt::RcvTimeo,
                            OptVal::Time(Some(Duration::from_secs(20))),
                        )
                        .unwrap();
                        let _ = c.send(b"hi");
                        let mut buf = [0u8; 8];
                        match c.recv(&mut buf) {
                            Ok(_) | Err(Errno::ECONNRESET) => {}
                            Err(e) => panic!("client saw {e:#}"),
                        }
                    }
                    Err(Errno::ECONNREFUSED) => {}
                    Err(e) => panic!("connect gave {e:#}"),
                }
            }));
        }
        let (l2, acc) = (l.clone(), accepted.clone());
        hs.push(thread::spawn(move || {
            loop {
                match l2.accept() {
                    Ok((s, _)) => {
                        acc.fetch_add(1, Ordering::SeqCst);
                        let mut buf = [0u8; 8];
                        let _ = s.recv(&mut buf);
                        let _ = s.send(b"ok");
                    }
                    Err(Errno::EBADF) => return,
                    Err(e) => panic!("accept gave {e:#}"),
                }
            }
        }));
        thread::sleep(Duration::from_micros((round as u64 * 53) % 500));
        l.hangup();
        join_all(hs);
        drop(l);
    }
    assert_clean(&st);
}

#[test]
fn many_writers_records_stay_whole_and_none_are_lost() {
    let st = Stack::new();
    for ty in [SockType::SEQPACKET, SockType::DGRAM] {
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        a.set_option(SockOpt::SndBuf, OptVal::Int(4096)).unwrap();
        const THREADS: usize = 4;
        const EACH: usize = 2000;
        let mut hs = Vec::new();
        for t in 0..THREADS {
            let a = a.clone();
            hs.push(thread::spawn(move || {
                for i in 0..EACH {
                    let len = 1 + (i * 7 + t) % 300;
                    let rec = vec![t as u8; len];
                    assert_eq!(a.send(&rec), Ok(len));
                }
            }));
        }
        let reader = thread::spawn(move || {
            let mut counts = [0usize; THREADS];
            let mut buf = [0u8; 512];
            for _ in 0..THREADS * EACH {
                let n = b.recv(&mut buf).unwrap();
                let t = buf[0] as usize;
                assert!(
                    n >= 1 && buf[..n].iter().all(|&x| x as usize == t),
                    "a record was torn"
                );
                counts[t] += 1;
            }
            counts
        });
        join_all(hs);
        let counts = join_all(vec![reader]).pop().unwrap();
        assert_eq!(counts, [EACH; THREADS], "{ty}");
        drop(a);
    }
    assert_clean(&st);
}

#[test]
fn dgram_senders_block_on_a_full_queue_and_nothing_is_dropped() {
    let st = Stack::new();
    let r = sock(&st, SockType::DGRAM);
    r.bind(&addr("sink")).unwrap();
    let mut hs = Vec::new();
    for t in 0..6u8 {
        let st = st.clone();
        hs.push(thread::spawn(move || {
            let s = sock(&st, SockType::DGRAM);
            for _ in 0..300 {
                s.send_to(&[t], &addr("sink")).unwrap();
            }
        }));
    }
    let mut counts = [0usize; 6];
    let mut buf = [0u8; 4];
    for _ in 0..6 * 300 {
        assert_eq!(r.recv(&mut buf), Ok(1));
        counts[buf[0] as usize] += 1;
    }
    join_all(hs);
    assert_eq!(counts, [300; 6]);
    drop(r);
    assert_clean(&st);
}

#[test]
fn handles_dropped_from_many_threads_close_exactly_once() {
    let st = Stack::new();
    for _ in 0..50 {
        let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        let closes = Arc::new(AtomicUsize::new(0));
        let c = closes.clone();
        a.set_upcall(Some(Arc::new(move |ev: Events| {
            if ev.contains(Events::NVAL) {
                c.fetch_add(1, Ordering::SeqCst);
            }
        })))
        .unwrap();
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let h = a.clone();
                let w = a.downgrade();
                thread::spawn(move || {
                    let again = w.upgrade();
                    drop(h);
                    drop(again);
                })
            })
            .collect();
        drop(a);
        join_all(hs);
        assert_eq!(closes.load(Ordering::SeqCst), 1);
        assert!(recv_now(&b, 1).unwrap().1.eof);
    }
    assert_clean(&st);
}

#[test]
fn accept_races_with_client_close() {
    let st = Stack::new();
    let l = listener(&st, SockType::STREAM, "ac", 64);
    for round in 0..200 {
        let c = sock(&st, SockType::STREAM);
        c.connect(&addr("ac")).unwrap();
        c.send(&[round as u8]).unwrap();
        let t = thread::spawn(move || drop(c));
        let (s, _) = l.accept().unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(
            s.recv(&mut buf),
            Ok(1),
            "the byte survives the client's close"
        );
        assert_eq!(buf[0], round as u8);
        t.join().unwrap();
        assert_eq!(s.recv(&mut buf), Ok(0));
    }
    drop(l);
    assert_clean(&st);
}
