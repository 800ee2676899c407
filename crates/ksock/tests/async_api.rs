//! The async API on a plain executor: a server and clients as tasks.

mod common;
use common::*;
use futures::executor::{LocalPool, block_on};
use futures::task::LocalSpawnExt;
use ksock::*;

#[test]
fn seqpacket_echo_server_and_clients_as_tasks() {
    let st = Stack::new();
    let l = listener(&st, SockType::SEQPACKET, "echo", 8);
    let mut pool = LocalPool::new();
    let sp = pool.spawner();
    let l2 = l.clone();
    sp.spawn_local(async move {
        for _ in 0..5 {
            let (c, _) = l2.accept_async().await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                let n = c.recv_async(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                c.send_async(&buf[..n]).await.unwrap();
            }
        }
    })
    .unwrap();
    let results = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    for i in 0..5u8 {
        let st = st.clone();
        let r = results.clone();
        sp.spawn_local(async move {
            let c = sock(&st, SockType::SEQPACKET);
            c.connect_async(&addr("echo")).await.unwrap();
            c.send_async(&[i; 3]).await.unwrap();
            let mut buf = [0u8; 8];
            let n = c.recv_async(&mut buf).await.unwrap();
            r.borrow_mut().push(buf[..n].to_vec());
            c.shutdown(Shutdown::Write).unwrap();
        })
        .unwrap();
    }
    pool.run();
    let mut got = results.borrow().clone();
    got.sort();
    assert_eq!(got, (0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
    drop(l);
    assert_clean(&st);
}

#[test]
fn async_stream_send_completes_across_a_small_buffer() {
    let st = Stack::new();
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    a.set_option(SockOpt::SndBuf, OptVal::Int(0)).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let mut pool = LocalPool::new();
    let d2 = data.clone();
    pool.spawner()
        .spawn_local(async move {
            assert_eq!(a.send_async(&d2).await, Ok(d2.len()));
        })
        .unwrap();
    let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let g = got.clone();
    pool.spawner()
        .spawn_local(async move {
            let mut buf = [0u8; 777];
            loop {
                let n = b.recv_async(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                g.borrow_mut().extend_from_slice(&buf[..n]);
            }
        })
        .unwrap();
    pool.run();
    assert_eq!(*got.borrow(), data);
    assert_clean(&st);
}

#[test]
fn chains_travel_without_copying_async() {
    let st = Stack::new();
    let (a, b) = st
        .socketpair(Domain::LOCAL, SockType::SEQPACKET, 0)
        .unwrap();
    let payload = bytes::Bytes::from(vec![5u8; 4096]);
    let ptr = payload.as_ptr();
    block_on(async {
        let chain: Chain = [payload.clone(), bytes::Bytes::from_static(b"tail")]
            .into_iter()
            .collect();
        assert_eq!(a.send_chain_async(chain, MsgFlags::empty()).await, Ok(4100));
        let (got, info) = b.recv_chain_async(10_000, MsgFlags::empty()).await.unwrap();
        assert_eq!(info.len, 4100);
        assert_eq!(
            got.segments().next().unwrap().as_ptr(),
            ptr,
            "the receiver shares the sender's bytes"
        );
        assert_eq!(got.segment_count(), 2, "one record, both slices");
        assert_eq!(b.ready(Events::OUT).await, Events::OUT);
    });
    drop((a, b));
    assert_clean(&st);
}
