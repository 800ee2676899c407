#![cfg(feature = "std")]
//! A connect that the family finishes later (a handshake), through the kernel face:
//! `sock_connect` waits for it, `MSG_DONTWAIT` gives `EINPROGRESS` and the upcall, and
//! `sock_connectwait` tells the outcome.

mod common;

use common::*;
use ksock::testing::LaterFamily;
use ksock::{Domain, Errno, MsgFlags, SockAddr, SockType, Stack};
use ksock_kpi::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

fn setup() -> (Kpi, Arc<LaterFamily>) {
    let st = Stack::empty();
    let fam = LaterFamily::new();
    st.register_family(fam.clone()).unwrap();
    (Kpi::with_threads(st), fam)
}

fn sin(port: u16) -> SockAddr {
    SockAddr::Inet(([10, 0, 0, 1], port).into())
}

#[test]
fn sock_connect_waits_for_the_handshake() {
    let (k, fam) = setup();
    for outcome in [Ok(()), Err(Errno::ETIMEDOUT)] {
        let c = sock_socket(&k, Domain::INET, SockType::STREAM, 0, None).unwrap();
        let c = Arc::new(c);
        let t = {
            let c = c.clone();
            thread::spawn(move || sock_connect(&c, &sin(80), MsgFlags::empty()))
        };
        while fam.in_progress() != 1 {
            thread::yield_now();
        }
        fam.complete(outcome);
        assert_eq!(t.join().unwrap(), outcome);
        assert_eq!(sock_isconnected(&c), outcome.is_ok());
    }
}

#[test]
fn a_dontwait_connect_fires_the_upcall_and_connectwait_tells_the_outcome() {
    let (k, fam) = setup();
    for outcome in [Ok(()), Err(Errno::ECONNREFUSED)] {
        let (up, seen) = counting();
        let c = sock_socket(&k, Domain::INET, SockType::STREAM, 0, Some(up)).unwrap();
        assert_eq!(
            sock_connect(&c, &sin(80), MsgFlags::DONTWAIT),
            Err(Errno::EINPROGRESS)
        );
        assert_eq!(
            sock_connect(&c, &sin(80), MsgFlags::DONTWAIT),
            Err(Errno::EALREADY)
        );
        assert_eq!(
            sock_connectwait(&c, Duration::from_millis(1)),
            Err(Errno::EINPROGRESS)
        );
        let before = seen.calls.load(Ordering::SeqCst);
        fam.complete(outcome);
        assert!(
            seen.calls.load(Ordering::SeqCst) > before,
            "the upcall fired"
        );
        assert_eq!(sock_connectwait(&c, Duration::from_secs(5)), outcome);
        if outcome.is_ok() {
            assert_eq!(
                sock_connect(&c, &sin(80), MsgFlags::DONTWAIT),
                Err(Errno::EISCONN)
            );
        } else {
            // Read once: nothing more to tell.
            assert_eq!(
                sock_connectwait(&c, Duration::from_millis(1)),
                Err(Errno::EINVAL)
            );
        }
    }
}
