//! Micro-benchmarks of the core, one thread, no waiting: `cargo bench -p ksock`.
//!
//! Side-by-side comparisons with Linux live in `ksock-bench` (`ksock bench`); these time the
//! core's own paths: a send and a receive of 64 bytes per type, the zero-copy chain path,
//! connect+accept, readiness, and the state machine.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use ksock::state::{State, StateCell};
use ksock::{Chain, Domain, Events, MsgFlags, SockAddr, SockType, Stack};
use std::task::{Context, Waker};

const TYPES: [(SockType, &str); 3] = [
    (SockType::STREAM, "stream"),
    (SockType::SEQPACKET, "seqpacket"),
    (SockType::DGRAM, "dgram"),
];

/// One send of 64 bytes and the receive that takes them back, on a connected pair.
fn send_recv(c: &mut Criterion) {
    let mut g = c.benchmark_group("send_recv_64");
    g.throughput(Throughput::Elements(1));
    for (ty, name) in TYPES {
        let st = Stack::new();
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).expect("socketpair");
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        g.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                a.send(black_box(&msg)).expect("send");
                let n = b.recv(black_box(&mut buf)).expect("recv");
                assert_eq!(n, 64);
            })
        });
    }
    g.finish();
}

/// The same with `MSG_DONTWAIT` through the poll form (no blocking layer).
fn send_recv_dontwait(c: &mut Criterion) {
    let mut g = c.benchmark_group("send_recv_64_dontwait");
    g.throughput(Throughput::Elements(1));
    let mut cx = Context::from_waker(Waker::noop());
    for (ty, name) in TYPES {
        let st = Stack::new();
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).expect("socketpair");
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        g.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                let mut src: &[u8] = &msg;
                let sent = a.poll_sendmsg(&mut cx, &mut src, None, MsgFlags::DONTWAIT);
                assert!(matches!(sent, std::task::Poll::Ready(Ok(64))));
                let mut dst: &mut [u8] = &mut buf;
                let got = b.poll_recvmsg(&mut cx, &mut dst, MsgFlags::DONTWAIT);
                assert!(matches!(got, std::task::Poll::Ready(Ok(ref i)) if i.len == 64));
            })
        });
    }
    g.finish();
}

/// Chains: the sender's bytes are shared, never copied (64 B and 64 KiB).
fn chains(c: &mut Criterion) {
    let mut g = c.benchmark_group("chain_send_recv");
    for size in [64usize, 65536] {
        let st = Stack::new();
        let (a, b) = st
            .socketpair(Domain::LOCAL, SockType::STREAM, 0)
            .expect("socketpair");
        let payload = Bytes::from(vec![7u8; size]);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("stream", size), |bench| {
            bench.iter(|| {
                a.send_chain(Chain::from(payload.clone()), MsgFlags::empty())
                    .expect("send_chain");
                let (chain, info) = b.recv_chain(size, MsgFlags::empty()).expect("recv_chain");
                assert_eq!(info.len, size);
                black_box(chain);
            })
        });
    }
    g.finish();
}

/// A whole connection: socket, connect, accept, close both.
fn connect_accept(c: &mut Criterion) {
    let mut g = c.benchmark_group("connect_accept");
    g.throughput(Throughput::Elements(1));
    for (ty, name) in &TYPES[..2] {
        let st = Stack::new();
        let addr = SockAddr::local("bench").expect("address");
        let l = st.socket(Domain::LOCAL, *ty, 0).expect("socket");
        l.bind(&addr).expect("bind");
        l.listen(ksock::SOMAXCONN).expect("listen");
        g.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                let c = st.socket(Domain::LOCAL, *ty, 0).expect("socket");
                c.connect(&addr).expect("connect");
                let (s, _) = l.accept().expect("accept");
                drop(s);
                drop(c);
            })
        });
    }
    g.finish();
}

/// Readiness of a connected socket, directly and through the poll form.
fn readiness(c: &mut Criterion) {
    let mut g = c.benchmark_group("readiness");
    let st = Stack::new();
    let (a, _b) = st
        .socketpair(Domain::LOCAL, SockType::STREAM, 0)
        .expect("socketpair");
    g.bench_function("readiness", |bench| bench.iter(|| black_box(a.readiness())));
    let mut cx = Context::from_waker(Waker::noop());
    g.bench_function("poll_ready_out", |bench| {
        bench.iter(|| black_box(a.poll_ready(&mut cx, Events::OUT)))
    });
    g.finish();
}

/// The state machine: the table itself, and a socket's life through it.
fn states(c: &mut Criterion) {
    let mut g = c.benchmark_group("state");
    g.bench_function("cell_new_connecting_connected_closing_closed", |bench| {
        bench.iter(|| {
            let mut s = StateCell::new(black_box(State::New));
            s.start(State::Connecting).expect("start");
            s.cont(State::Connected).expect("cont");
            s.end(Ok(())).expect("end");
            s.go(State::Closing).expect("closing");
            s.go(State::Closed).expect("closed");
            black_box(s)
        })
    });
    let st = Stack::new();
    let addr = SockAddr::local("life").expect("address");
    g.bench_function("socket_bind_listen_close", |bench| {
        bench.iter(|| {
            let s = st
                .socket(Domain::LOCAL, SockType::STREAM, 0)
                .expect("socket");
            s.bind(&addr).expect("bind");
            s.listen(16).expect("listen");
            drop(s);
        })
    });
    for (ty, name) in TYPES {
        g.bench_function(BenchmarkId::new("socketpair_close", name), |bench| {
            bench.iter(|| drop(st.socketpair(Domain::LOCAL, ty, 0).expect("socketpair")))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    send_recv,
    send_recv_dontwait,
    chains,
    connect_accept,
    readiness,
    states
);
criterion_main!(benches);
