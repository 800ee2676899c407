//! What the KPI's own paths cost: an mbuf chain moved versus bytes copied, and a send that
//! fires an upcall versus one that does not.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ksock::{Domain, MsgFlags, SockAddr, SockType, Stack};
use ksock_kpi::*;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn pair(k: &Kpi, ty: SockType, upcall: Option<SockUpcall>) -> (Sock, Sock) {
    let name = SockAddr::local("bench").unwrap();
    let l = sock_socket(k, Domain::LOCAL, ty, 0, None).unwrap();
    sock_bind(&l, &name).unwrap();
    sock_listen(&l, 1).unwrap();
    let c = sock_socket(k, Domain::LOCAL, ty, 0, None).unwrap();
    sock_connect(&c, &name, MsgFlags::empty()).unwrap();
    let (s, _) = sock_accept(&l, None, MsgFlags::empty(), upcall).unwrap();
    (c, s)
}

fn bulk(c: &mut Criterion) {
    const LEN: usize = 64 * 1024;
    let k = Kpi::with_threads(Stack::new());
    let (tx, rx) = pair(&k, SockType::STREAM, None);
    let block = Bytes::from(vec![7u8; LEN]);
    let mut buf = vec![0u8; LEN];
    let mut g = c.benchmark_group("kpi_stream_64KiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("sendmbuf_receivembuf", |b| {
        b.iter(|| {
            let n = sock_sendmbuf(&tx, None, Mbuf::from(block.clone()), MsgFlags::DONTWAIT);
            let m = sock_receivembuf(&rx, None, LEN, MsgFlags::DONTWAIT).unwrap();
            black_box((n, m.len()))
        })
    });
    g.bench_function("send_receive_copy", |b| {
        b.iter(|| {
            let n = sock_send(&tx, &SendMsg::new(&[&block[..]]), MsgFlags::DONTWAIT);
            let mut iov = [&mut buf[..]];
            let r = sock_receive(&rx, &mut RecvMsg::new(&mut iov), MsgFlags::DONTWAIT);
            black_box((n, r))
        })
    });
    g.finish();
}

fn upcalls(c: &mut Criterion) {
    let mut g = c.benchmark_group("kpi_seqpacket_64B");
    let msg = [1u8; 64];
    for with in [false, true] {
        let k = Kpi::with_threads(Stack::new());
        let hits = Arc::new(AtomicUsize::new(0));
        let up = with.then(|| {
            SockUpcall::new(hits.clone(), |_, h: &Arc<AtomicUsize>, _| {
                h.fetch_add(1, Ordering::Relaxed);
            })
        });
        let (tx, rx) = pair(&k, SockType::SEQPACKET, up);
        let name = if with { "with_upcall" } else { "no_upcall" };
        g.bench_function(name, |b| {
            b.iter(|| {
                sock_send(&tx, &SendMsg::new(&[&msg]), MsgFlags::DONTWAIT).unwrap();
                let m = sock_receivembuf(&rx, None, 64, MsgFlags::DONTWAIT).unwrap();
                black_box(m.len())
            })
        });
        assert_eq!(hits.load(Ordering::Relaxed) > 0, with);
    }
    g.finish();
}

criterion_group!(benches, bulk, upcalls);
criterion_main!(benches);
