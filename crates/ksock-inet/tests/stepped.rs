//! The deterministic harness: a manual clock and a loopback the test steps frame by frame.
//! Nothing here depends on threads or the wall clock: every frame is seen, let through or
//! dropped by the test, and time moves only when the test advances it.

use ksock::testing::ManualClock;
use ksock::{Domain, Errno, Events, SockAddr, SockOpt, SockType, Socket, Stack, State};
use ksock_inet::InetFamily;
use smoltcp::wire::{Ipv4Packet, TcpPacket};
use std::sync::Arc;

const MS: u64 = 1_000_000;

struct Net {
    st: Stack,
    clock: Arc<ManualClock>,
    inet: Arc<InetFamily>,
}

fn net() -> Net {
    let st = Stack::new();
    let clock = ManualClock::install(&st);
    let inet = InetFamily::new(&st);
    st.register_family(inet.clone()).unwrap();
    inet.with_loopback(|lo| lo.hold(true)).unwrap();
    Net { st, clock, inet }
}

/// The TCP flags of each held frame, oldest first (`S`, `SA`, `A`, `PA`, `FA`, `R`...),
/// with the payload length when there is one.
fn held(n: &Net) -> Vec<String> {
    n.inet
        .with_loopback(|lo| {
            lo.held()
                .map(|f| {
                    let ip = Ipv4Packet::new_checked(f).unwrap();
                    let t = TcpPacket::new_checked(ip.payload()).unwrap();
                    let mut s = String::new();
                    for (on, c) in [
                        (t.fin(), 'F'),
                        (t.syn(), 'S'),
                        (t.rst(), 'R'),
                        (t.psh(), 'P'),
                        (t.ack(), 'A'),
                    ] {
                        if on {
                            s.push(c);
                        }
                    }
                    if !t.payload().is_empty() {
                        s.push_str(&format!("+{}", t.payload().len()));
                    }
                    s
                })
                .collect()
        })
        .unwrap()
}

/// Lets every held frame through and runs the interface once.
fn step(n: &Net) {
    n.inet.with_loopback(|lo| lo.release(usize::MAX)).unwrap();
    n.inet.poll();
}

fn drop_all(n: &Net) -> usize {
    n.inet
        .with_loopback(|lo| {
            let k = lo.held_count();
            for _ in 0..k {
                lo.drop_held(0);
            }
            k
        })
        .unwrap()
}

fn a(s: &str) -> SockAddr {
    SockAddr::Inet(s.parse().unwrap())
}

fn listener(n: &Net) -> Socket {
    let l = n.st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    l.bind(&a("127.0.0.1:0")).unwrap();
    l.listen(4).unwrap();
    l
}

fn client(n: &Net) -> Socket {
    let c = n.st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    c.set_nonblocking(true).unwrap();
    c
}

#[test]
fn a_handshake_frame_by_frame() {
    let n = net();
    let l = listener(&n);
    let c = client(&n);
    assert_eq!(c.connect(&l.local_addr().unwrap()), Err(Errno::EINPROGRESS));
    assert_eq!(c.state(), State::Connecting);
    assert_eq!(held(&n), ["S"]);
    step(&n);
    assert_eq!(held(&n), ["SA"]);
    assert_eq!(
        l.try_accept().map(drop),
        Err(Errno::EAGAIN),
        "not established yet"
    );
    step(&n);
    // The client got the SYN-ACK: it is connected and its ACK is on the wire.
    assert_eq!(c.state(), State::Connected);
    assert!(c.readiness().contains(Events::OUT));
    assert_eq!(c.connect(&l.local_addr().unwrap()), Ok(()), "reported once");
    assert_eq!(held(&n), ["A"]);
    step(&n);
    let (s, _) = l.try_accept().unwrap();
    c.send(b"hello").unwrap();
    assert_eq!(held(&n), ["PA+5"]);
    step(&n);
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(&mut buf).unwrap(), 5);
    assert_eq!(held(&n), ["A"], "the ACK of the data (no delayed ACK)");
    step(&n);
    drop(c);
    assert_eq!(held(&n), ["FA"]);
    step(&n);
    assert_eq!(held(&n), ["A"]);
    step(&n);
    assert_eq!(s.recv(&mut buf).unwrap(), 0, "end of file after the FIN");
    drop(s);
    assert_eq!(held(&n), ["FA"]);
    step(&n);
    assert_eq!(held(&n), ["A"]);
    step(&n);
    drop(l);
    assert_eq!(n.inet.socket_count(), 0, "{:?}", n.inet.sockets());
    assert_eq!(n.inet.port_count(), 0);
}

#[test]
fn a_lost_syn_is_sent_again_when_its_timer_comes_due() {
    let n = net();
    let l = listener(&n);
    let c = client(&n);
    assert_eq!(c.connect(&l.local_addr().unwrap()), Err(Errno::EINPROGRESS));
    assert_eq!(drop_all(&n), 1);
    // Nothing moves without time.
    n.inet.poll();
    assert!(held(&n).is_empty());
    let due = n.clock.next().expect("a retransmission timer");
    n.clock.advance(&n.st, due);
    assert_eq!(held(&n), ["S"], "the SYN again, after {} ms", due / MS);
    step(&n);
    step(&n);
    assert_eq!(c.state(), State::Connected);
}

#[test]
fn an_unanswered_connect_times_out_after_the_documented_time() {
    let n = net();
    let c = client(&n);
    // Nobody answers: every frame is lost.
    assert_eq!(c.connect(&a("127.0.0.1:4000")), Err(Errno::EINPROGRESS));
    let limit = ksock_inet::CONNECT_TIMEOUT.total_millis() * MS;
    let mut t = 0;
    while c.state() == State::Connecting && t <= limit + 10_000 * MS {
        drop_all(&n);
        let step_ns = n
            .clock
            .next()
            .map_or(1000 * MS, |at| at.saturating_sub(t).max(1));
        n.clock.advance(&n.st, step_ns);
        t += step_ns;
    }
    assert_eq!(c.state(), State::Closed);
    assert!(t >= limit, "gave up after {} ms", t / MS);
    assert_eq!(
        c.get_option(SockOpt::Error),
        Ok(ksock::OptVal::Int(Errno::ETIMEDOUT.raw()))
    );
    drop(c);
    drop_all(&n);
    n.inet.poll();
    assert_eq!(n.inet.socket_count(), 0, "{:?}", n.inet.sockets());
}

#[test]
fn a_lost_data_segment_is_retransmitted_and_nothing_is_lost() {
    let n = net();
    let l = listener(&n);
    let c = client(&n);
    let _ = c.connect(&l.local_addr().unwrap());
    for _ in 0..3 {
        step(&n);
    }
    let (s, _) = l.try_accept().unwrap();
    c.send(b"one").unwrap();
    assert_eq!(drop_all(&n), 1, "the data segment, lost");
    let due = n.clock.next().expect("a retransmission timer");
    n.clock.advance(&n.st, due);
    assert_eq!(held(&n), ["PA+3"]);
    step(&n);
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"one");
}

#[test]
fn a_full_backlog_drops_the_syn_without_a_reset() {
    let n = net();
    let l = n.st.socket(Domain::INET, SockType::STREAM, 0).unwrap();
    l.bind(&a("127.0.0.1:0")).unwrap();
    l.listen(1).unwrap();
    let to = l.local_addr().unwrap();
    let c1 = client(&n);
    let _ = c1.connect(&to);
    for _ in 0..3 {
        step(&n);
    }
    assert_eq!(c1.state(), State::Connected);
    let c2 = client(&n);
    assert_eq!(c2.connect(&to), Err(Errno::EINPROGRESS));
    assert_eq!(held(&n), ["S"]);
    step(&n);
    assert!(
        held(&n).is_empty(),
        "no SYN-ACK and no reset: {:?}",
        held(&n)
    );
    assert_eq!(n.inet.stats().syn_dropped, 1);
    // Room again: the retransmitted SYN gets in.
    let _first = l.try_accept().unwrap();
    let due = n.clock.next().expect("the client's retransmission timer");
    n.clock.advance(&n.st, due);
    assert_eq!(held(&n), ["S"]);
    step(&n);
    step(&n);
    assert_eq!(c2.state(), State::Connected);
}

#[test]
fn a_syn_to_a_closed_port_is_reset_and_the_connect_refused() {
    let n = net();
    let c = client(&n);
    assert_eq!(c.connect(&a("127.0.0.1:4001")), Err(Errno::EINPROGRESS));
    step(&n);
    assert_eq!(held(&n), ["RA"]);
    step(&n);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.connect(&a("127.0.0.1:4001")), Err(Errno::ECONNREFUSED));
}
