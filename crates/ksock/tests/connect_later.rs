//! Connects that a family finishes later (a handshake), through the core's blocking,
//! nonblocking, poll and async forms: the socket waits in `Connecting` until the family
//! says how it ended.

use futures::executor::block_on;
use ksock::testing::LaterFamily;
use ksock::*;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

fn stack() -> (Stack, Arc<LaterFamily>) {
    let st = Stack::empty();
    let fam = LaterFamily::new();
    st.register_family(fam.clone()).unwrap();
    (st, fam)
}

fn addr(port: u16) -> SockAddr {
    SockAddr::Inet(([10, 0, 0, 1], port).into())
}

/// Waits (without a timed sleep) until `n` connects are under way.
fn until_in_progress(fam: &LaterFamily, n: usize) {
    while fam.in_progress() != n {
        thread::yield_now();
    }
}

#[test]
fn a_blocking_connect_waits_for_the_family_and_returns_its_outcome() {
    let (st, fam) = stack();
    for outcome in [Ok(()), Err(Errno::ETIMEDOUT), Err(Errno::ECONNREFUSED)] {
        let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
        let t = {
            let s = s.clone();
            thread::spawn(move || s.connect(&addr(80)))
        };
        until_in_progress(&fam, 1);
        assert_eq!(s.state(), State::Connecting);
        assert_eq!(fam.complete(outcome), 1);
        assert_eq!(t.join().unwrap(), outcome);
        let want = if outcome.is_ok() {
            State::Connected
        } else {
            State::Closed
        };
        assert_eq!(s.state(), want);
        if outcome.is_ok() {
            assert_eq!(s.connect(&addr(80)), Err(Errno::EISCONN));
            assert_eq!(s.peer_addr(), Ok(addr(80)));
        } else {
            // The error was reported by the connect: nothing is left in SO_ERROR.
            assert_eq!(s.get_option(SockOpt::Error), Ok(OptVal::Int(0)));
        }
    }
    assert_eq!(st.socket_count(), 0);
}

#[test]
fn a_nonblocking_connect_is_einprogress_then_out_and_so_error() {
    let (st, fam) = stack();
    for outcome in [Ok(()), Err(Errno::ETIMEDOUT)] {
        let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
        s.set_nonblocking(true).unwrap();
        assert_eq!(s.connect(&addr(80)), Err(Errno::EINPROGRESS));
        assert_eq!(s.state(), State::Connecting);
        assert_eq!(s.connect(&addr(80)), Err(Errno::EALREADY));
        assert!(!s.readiness().contains(Events::OUT));
        fam.complete(outcome);
        match outcome {
            Ok(()) => {
                assert!(s.readiness().contains(Events::OUT));
                assert_eq!(s.get_option(SockOpt::Error), Ok(OptVal::Int(0)));
                // The next connect reports the outcome once, as on Linux; then EISCONN.
                assert_eq!(s.connect(&addr(80)), Ok(()));
                assert_eq!(s.connect(&addr(80)), Err(Errno::EISCONN));
            }
            Err(e) => {
                assert!(s.readiness().contains(Events::ERR | Events::HUP));
                assert_eq!(s.get_option(SockOpt::Error), Ok(OptVal::Int(e.raw())));
                assert_eq!(s.get_option(SockOpt::Error), Ok(OptVal::Int(0)));
                assert_eq!(s.state(), State::Closed);
            }
        }
    }
    // The nonblocking connect that failed: its error reported by the next connect instead.
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    s.set_nonblocking(true).unwrap();
    assert_eq!(s.connect(&addr(80)), Err(Errno::EINPROGRESS));
    fam.complete(Err(Errno::ENETUNREACH));
    assert_eq!(s.connect(&addr(80)), Err(Errno::ENETUNREACH));
    assert_eq!(st.socket_count(), 1);
    drop(s);
    assert_eq!(st.socket_count(), 0);
}

#[test]
fn an_immediate_refusal_is_returned_at_once_and_leaves_the_socket_as_it_was() {
    let (st, fam) = stack();
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    assert_eq!(s.connect(&addr(1)), Err(Errno::ECONNREFUSED));
    assert_eq!(s.state(), State::New);
    assert_eq!(fam.in_progress(), 0);
}

#[test]
fn a_blocking_connect_past_its_send_timeout_is_einprogress_and_goes_on() {
    let (st, fam) = stack();
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    s.set_option(
        SockOpt::SndTimeo,
        OptVal::Time(Some(Duration::from_millis(10))),
    )
    .unwrap();
    assert_eq!(s.connect(&addr(80)), Err(Errno::EINPROGRESS));
    assert_eq!(s.state(), State::Connecting);
    fam.complete(Ok(()));
    assert_eq!(s.connect(&addr(80)), Ok(()));
    assert_eq!(s.state(), State::Connected);
}

#[test]
fn a_second_blocking_connect_waits_for_the_first() {
    let (st, fam) = stack();
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    s.set_nonblocking(true).unwrap();
    assert_eq!(s.connect(&addr(80)), Err(Errno::EINPROGRESS));
    s.set_nonblocking(false).unwrap();
    let t = {
        let s = s.clone();
        thread::spawn(move || s.connect(&addr(80)))
    };
    // The waiting thread registers, then the family finishes.
    while s.core().waiter_count() == 0 {
        thread::yield_now();
    }
    fam.complete(Ok(()));
    assert_eq!(t.join().unwrap(), Ok(()));
}

#[test]
fn an_async_connect_resolves_when_the_family_finishes() {
    let (st, fam) = stack();
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    let t = {
        let s = s.clone();
        thread::spawn(move || block_on(s.connect_async(&addr(443))))
    };
    until_in_progress(&fam, 1);
    fam.complete(Err(Errno::ECONNRESET));
    assert_eq!(t.join().unwrap(), Err(Errno::ECONNRESET));
}

#[test]
fn closing_a_connecting_socket_ends_the_connect() {
    let (st, fam) = stack();
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    assert_eq!(s.try_connect(&addr(80)), Err(Errno::EINPROGRESS));
    assert_eq!(fam.in_progress(), 1);
    drop(s);
    assert_eq!(fam.in_progress(), 0);
    assert_eq!(fam.complete(Ok(())), 0);
    assert_eq!(st.socket_count(), 0);
}

#[test]
fn the_upcall_fires_when_the_family_finishes() {
    let (st, fam) = stack();
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    let fired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = fired.clone();
    s.set_upcall(Some(Arc::new(move |ev: Events| {
        if ev.contains(Events::OUT) {
            f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    })))
    .unwrap();
    assert_eq!(s.try_connect(&addr(80)), Err(Errno::EINPROGRESS));
    let before = fired.load(std::sync::atomic::Ordering::SeqCst);
    fam.complete(Ok(()));
    assert!(fired.load(std::sync::atomic::Ordering::SeqCst) > before);
}

#[test]
fn options_beyond_sol_socket_go_to_the_family() {
    use ksock::testing::{IPPROTO_TCP, TCP_NODELAY};
    let (st, _fam) = stack();
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    let nodelay = SockOpt::from_raw(IPPROTO_TCP, TCP_NODELAY).unwrap();
    assert_eq!(s.get_option(nodelay), Ok(OptVal::Int(0)));
    s.set_option(nodelay, OptVal::Int(5)).unwrap();
    assert_eq!(s.get_option(nodelay), Ok(OptVal::Int(1)));
    assert_eq!(
        s.get_option(SockOpt::from_raw(IPPROTO_TCP, 999).unwrap()),
        Err(Errno::ENOPROTOOPT)
    );
    assert_eq!(
        s.get_option(SockOpt::from_raw(41, 26).unwrap()),
        Err(Errno::ENOPROTOOPT),
        "a level the family does not have"
    );
    // The local family has no protocol options at all: EOPNOTSUPP, as Linux AF_UNIX.
    let local = Stack::new();
    let u = local.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    assert_eq!(u.get_option(nodelay), Err(Errno::EOPNOTSUPP));
    assert_eq!(
        u.set_option(nodelay, OptVal::Int(1)),
        Err(Errno::EOPNOTSUPP)
    );
}

#[test]
fn a_connect_gives_up_when_the_familys_timer_comes_due_on_a_manual_clock() {
    use ksock::testing::ManualClock;
    const SEC: u64 = 1_000_000_000;
    let (st, fam) = stack();
    let clock = ManualClock::install(&st);
    fam.set_connect_timeout(Some(3 * SEC));
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    assert_eq!(s.try_connect(&addr(80)), Err(Errno::EINPROGRESS));
    assert_eq!(
        clock.next(),
        Some(3 * SEC),
        "the family asked for its timer"
    );
    clock.advance(&st, 2 * SEC);
    assert_eq!(s.state(), State::Connecting);
    clock.advance(&st, SEC);
    assert_eq!(s.state(), State::Closed);
    assert_eq!(
        s.get_option(SockOpt::Error),
        Ok(OptVal::Int(Errno::ETIMEDOUT.raw()))
    );
    assert_eq!(fam.in_progress(), 0);
    assert_eq!(clock.next(), None, "nothing left to time");
    drop(s);

    // A blocking connect, woken by the timer from the test's thread.
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    let t = {
        let s = s.clone();
        thread::spawn(move || s.connect(&addr(80)))
    };
    until_in_progress(&fam, 1);
    clock.advance(&st, 3 * SEC);
    assert_eq!(t.join().unwrap(), Err(Errno::ETIMEDOUT));
    assert_eq!(
        s.error_reason(Errno::ETIMEDOUT),
        Some("no answer before the connect timeout"),
        "the family's reason travels with the outcome"
    );
    drop(s);

    // A socket closed while connecting takes its timer with it.
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    assert_eq!(s.try_connect(&addr(80)), Err(Errno::EINPROGRESS));
    drop(s);
    assert_eq!(st.on_timer(u64::MAX), None);
    assert_eq!(st.socket_count(), 0);
}

#[test]
fn the_thread_clock_fires_the_familys_timer() {
    let (st, fam) = stack();
    ksock::time::ThreadClock::start(&st).unwrap();
    fam.set_connect_timeout(Some(20_000_000));
    let s = st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    // Blocks until the clock's thread runs the timer (no time is asserted).
    assert_eq!(s.connect(&addr(80)), Err(Errno::ETIMEDOUT));
    assert_eq!(fam.in_progress(), 0);
}
