#![cfg(feature = "std")]
//! The kernel face over the inet family: TCP with zero-copy mbuf chains and upcalls, UDP
//! with the sender's address, and Linux's `sockaddr_in` / `sockaddr_in6` layouts.

mod common;

use bytes::Bytes;
use common::*;
use ksock::{Domain, Errno, MsgFlags, SockAddr, SockType, Stack};
use ksock_kpi::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn kpi_inet() -> Kpi {
    let st = Stack::new();
    ksock_inet::install(&st).unwrap();
    Kpi::with_threads(st)
}

fn a(s: &str) -> SockAddr {
    SockAddr::Inet(s.parse().unwrap())
}

#[test]
fn tcp_with_mbufs_and_an_upcall() {
    let k = kpi_inet();
    for (d, at) in [(Domain::INET, "127.0.0.1:0"), (Domain::INET6, "[::1]:0")] {
        let l = sock_socket(&k, d, SockType::STREAM, 0, None).unwrap();
        sock_bind(&l, &a(at)).unwrap();
        sock_listen(&l, 4).unwrap();
        let mut name = [0u8; 28];
        let n = sock_getsockname(&l, &mut name).unwrap();
        let to = if d == Domain::INET {
            SockAddr::Inet(ksock::addr::raw::decode_in(&name[..n]).unwrap().into())
        } else {
            SockAddr::Inet(ksock::addr::raw::decode_in6(&name[..n]).unwrap().into())
        };
        if d == Domain::INET {
            assert_eq!(n, 16);
            assert_eq!(u16::from_ne_bytes([name[0], name[1]]), 2, "sin_family");
            assert_eq!(&name[4..8], &[127, 0, 0, 1], "sin_addr");
        } else {
            assert_eq!(n, 28);
            assert_eq!(u16::from_ne_bytes([name[0], name[1]]), 10, "sin6_family");
        }
        let c = sock_socket(&k, d, SockType::STREAM, 0, None).unwrap();
        sock_connect(&c, &to, MsgFlags::empty()).unwrap();
        let (up, seen) = counting();
        let (s, _) = sock_accept(&l, None, MsgFlags::empty(), Some(up)).unwrap();
        let data = Bytes::from(vec![5u8; 100_000]);
        let sent = sock_sendmbuf(&c, None, Mbuf::from(data.clone()), MsgFlags::empty()).unwrap();
        assert!(sent > 0);
        let mut got = Vec::new();
        let until = Instant::now() + Duration::from_secs(10);
        while got.len() < sent && Instant::now() < until {
            let m = sock_receivembuf(&s, None, 1 << 20, MsgFlags::empty()).unwrap();
            got.extend_from_slice(&m.into_chain().into_bytes());
        }
        assert_eq!(got, data[..sent]);
        assert!(
            seen.calls.load(Ordering::SeqCst) > 0,
            "the upcall ran on data"
        );
        drop((s, c, l));
    }
}

#[test]
fn udp_gives_the_senders_address_and_refused_connects_say_so() {
    let k = kpi_inet();
    let srv = sock_socket(&k, Domain::INET, SockType::DGRAM, 0, None).unwrap();
    sock_bind(&srv, &a("127.0.0.1:0")).unwrap();
    let mut name = [0u8; 16];
    let n = sock_getsockname(&srv, &mut name).unwrap();
    let to = SockAddr::Inet(ksock::addr::raw::decode_in(&name[..n]).unwrap().into());
    let c = sock_socket(&k, Domain::INET, SockType::DGRAM, 0, None).unwrap();
    sock_sendmbuf(
        &c,
        Some(&to),
        Mbuf::from(Bytes::from_static(b"hey")),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut from = [0u8; 16];
    let mut msg = RecvMsg::new(&mut []);
    msg.name = Some(&mut from);
    let m = sock_receivembuf(&srv, Some(&mut msg), 100, MsgFlags::empty()).unwrap();
    assert_eq!(&m.into_chain().into_bytes()[..], b"hey");
    assert_eq!(msg.namelen, 16);
    assert_eq!(&from[4..8], &[127, 0, 0, 1]);
    let t = sock_socket(&k, Domain::INET, SockType::STREAM, 0, None).unwrap();
    assert_eq!(
        sock_connect(&t, &a("127.0.0.1:9"), MsgFlags::empty()),
        Err(Errno::ECONNREFUSED)
    );
}
