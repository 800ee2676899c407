//! Model-based properties: random operation sequences against a connection buffer and an
//! accept queue, compared with a plain model of what must happen.

mod common;
use common::*;
use ksock::*;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum PipeOp {
    Send(usize),
    Recv(usize),
    Peek(usize),
    SendChain(Vec<usize>),
}

fn pipe_op() -> impl Strategy<Value = PipeOp> {
    prop_oneof![
        (0usize..3000).prop_map(PipeOp::Send),
        (0usize..3000).prop_map(PipeOp::Recv),
        (1usize..100).prop_map(PipeOp::Peek),
        proptest::collection::vec(1usize..700, 1..4).prop_map(PipeOp::SendChain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Seqpacket: records come out whole, in order, truncated exactly when the buffer is short;
    /// a record that does not fit is refused whole with EAGAIN.
    #[test]
    fn seqpacket_pipe_matches_model(ops in proptest::collection::vec(pipe_op(), 1..80)) {
        let st = Stack::new();
        let (a, b) = st.socketpair(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
        a.set_option(SockOpt::SndBuf, OptVal::Int(4096)).unwrap();
        let cap = a.options().unwrap().sndbuf();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut used = 0usize;
        let mut seq = 0u8;
        for op in ops {
            match op {
                PipeOp::Send(n) => {
                    let rec: Vec<u8> = (0..n).map(|i| seq.wrapping_add(i as u8)).collect();
                    seq = seq.wrapping_add(1);
                    let r = send_now(&a, &rec);
                    if n + 32 > cap {
                        prop_assert_eq!(r, Err(Errno::EMSGSIZE));
                    } else if used + n + 32 > cap {
                        prop_assert_eq!(r, Err(Errno::EAGAIN));
                    } else {
                        prop_assert_eq!(r, Ok(n));
                        used += n + 32;
                        model.push_back(rec);
                    }
                }
                PipeOp::SendChain(parts) => {
                    let mut chain = Chain::new();
                    let mut rec = Vec::new();
                    for p in &parts {
                        let piece: Vec<u8> = (0..*p).map(|i| seq.wrapping_mul(3).wrapping_add(i as u8)).collect();
                        rec.extend_from_slice(&piece);
                        chain.push(bytes::Bytes::from(piece));
                    }
                    seq = seq.wrapping_add(1);
                    let n = rec.len();
                    let r = a.send_chain(chain, MsgFlags::DONTWAIT);
                    if n + 32 > cap {
                        prop_assert_eq!(r, Err(Errno::EMSGSIZE));
                    } else if used + n + 32 > cap {
                        prop_assert_eq!(r, Err(Errno::EAGAIN));
                    } else {
                        prop_assert_eq!(r, Ok(n));
                        used += n + 32;
                        model.push_back(rec);
                    }
                }
                PipeOp::Recv(n) | PipeOp::Peek(n) => {
                    let peek = matches!(op, PipeOp::Peek(_));
                    let mut buf = vec![0u8; n];
                    let mut sink: &mut [u8] = &mut buf;
                    let flags = if peek { MsgFlags::PEEK | MsgFlags::DONTWAIT } else { MsgFlags::DONTWAIT };
                    let r = b.recvmsg(&mut sink, flags);
                    match model.front() {
                        None => prop_assert_eq!(r.unwrap_err(), Errno::EAGAIN),
                        Some(rec) => {
                            let info = r.unwrap();
                            let k = n.min(rec.len());
                            prop_assert_eq!(info.len, k);
                            prop_assert_eq!(info.full_len, rec.len());
                            prop_assert_eq!(info.flags.contains(MsgFlags::TRUNC), k < rec.len());
                            prop_assert_eq!(&buf[..k], &rec[..k]);
                            if !peek {
                                used -= rec.len() + 32;
                                model.pop_front();
                            }
                        }
                    }
                }
            }
            let q = b.info().unwrap().queues;
            prop_assert_eq!(q.rx, model.iter().map(Vec::len).sum::<usize>());
        }
        drop((a, b));
        assert_clean(&st);
    }

    /// Stream: the bytes out are exactly the bytes in, whatever the write and read sizes;
    /// writes fit partly up to the buffer.
    #[test]
    fn stream_pipe_matches_model(ops in proptest::collection::vec(pipe_op(), 1..80)) {
        let st = Stack::new();
        let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        a.set_option(SockOpt::SndBuf, OptVal::Int(2304)).unwrap();
        let cap = a.options().unwrap().sndbuf();
        let mut model: VecDeque<u8> = VecDeque::new();
        let mut seq = 0u8;
        for op in ops {
            match op {
                PipeOp::Send(n) => {
                    let data: Vec<u8> = (0..n).map(|_| { seq = seq.wrapping_add(1); seq }).collect();
                    let room = cap - model.len();
                    let r = send_now(&a, &data);
                    if n == 0 {
                        prop_assert_eq!(r, Ok(0));
                    } else if room == 0 {
                        prop_assert_eq!(r, Err(Errno::EAGAIN));
                    } else {
                        let k = n.min(room);
                        prop_assert_eq!(r, Ok(k));
                        model.extend(&data[..k]);
                    }
                }
                PipeOp::SendChain(parts) => {
                    let mut chain = Chain::new();
                    let mut all = Vec::new();
                    for p in parts {
                        let piece: Vec<u8> = (0..p).map(|_| { seq = seq.wrapping_add(1); seq }).collect();
                        all.extend_from_slice(&piece);
                        chain.push(bytes::Bytes::from(piece));
                    }
                    let room = cap - model.len();
                    let r = a.send_chain(chain, MsgFlags::DONTWAIT);
                    if room == 0 {
                        prop_assert_eq!(r, Err(Errno::EAGAIN));
                    } else {
                        let k = all.len().min(room);
                        prop_assert_eq!(r, Ok(k));
                        model.extend(&all[..k]);
                    }
                }
                PipeOp::Recv(n) | PipeOp::Peek(n) => {
                    let peek = matches!(op, PipeOp::Peek(_));
                    let mut buf = vec![0u8; n];
                    let mut sink: &mut [u8] = &mut buf;
                    let flags = if peek { MsgFlags::PEEK | MsgFlags::DONTWAIT } else { MsgFlags::DONTWAIT };
                    let r = b.recvmsg(&mut sink, flags);
                    if model.is_empty() {
                        prop_assert_eq!(r.unwrap_err(), Errno::EAGAIN);
                    } else {
                        let k = n.min(model.len());
                        prop_assert_eq!(r.unwrap().len, k);
                        let want: Vec<u8> = if peek {
                            model.iter().take(k).copied().collect()
                        } else {
                            model.drain(..k).collect()
                        };
                        prop_assert_eq!(&buf[..k], &want[..]);
                    }
                }
            }
            prop_assert_eq!(b.nread().unwrap(), model.len());
            // Writable (and a blocked writer woken) once the queue is at most half full.
            prop_assert_eq!(a.readiness().contains(Events::OUT), model.len() <= cap / 2);
        }
        drop((a, b));
        assert_clean(&st);
    }
}

#[derive(Debug, Clone)]
enum QOp {
    Connect,
    Accept,
    CloseClient(usize),
    Relisten(usize),
}

fn q_op() -> impl Strategy<Value = QOp> {
    prop_oneof![
        3 => Just(QOp::Connect),
        2 => Just(QOp::Accept),
        1 => (0usize..16).prop_map(QOp::CloseClient),
        1 => (1usize..6).prop_map(QOp::Relisten),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The accept queue: holds at most `backlog` connections, hands them out oldest first,
    /// hands out connections whose client already closed, and resets what is left at close.
    #[test]
    fn accept_queue_matches_model(backlog in 1usize..5, ops in proptest::collection::vec(q_op(), 1..60)) {
        let st = Stack::new();
        let l = listener(&st, SockType::SEQPACKET, "q", backlog);
        let mut max = backlog;
        let mut clients: Vec<Option<Socket>> = Vec::new();
        let mut pending: VecDeque<(usize, bool)> = VecDeque::new(); // (client index, closed)
        let mut accepted = Vec::new();
        for op in ops {
            match op {
                QOp::Connect => {
                    let c = sock(&st, SockType::SEQPACKET);
                    let r = c.try_connect(&addr("q"));
                    if pending.len() >= max {
                        prop_assert_eq!(r, Err(Errno::EAGAIN));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        let i = clients.len();
                        c.send(&i.to_le_bytes()).unwrap();
                        pending.push_back((i, false));
                        clients.push(Some(c));
                    }
                }
                QOp::Accept => {
                    let r = l.try_accept();
                    match pending.pop_front() {
                        None => prop_assert_eq!(r.unwrap_err(), Errno::EAGAIN),
                        Some((i, closed)) => {
                            let (s, _) = r.unwrap();
                            let (got, _) = recv_now(&s, 16).unwrap();
                            prop_assert_eq!(got, i.to_le_bytes().to_vec(), "oldest first");
                            prop_assert_eq!(s.state() == State::Closing, closed);
                            accepted.push(s);
                        }
                    }
                }
                QOp::CloseClient(k) => {
                    if let Some(slot) = clients.get_mut(k)
                        && slot.take().is_some() {
                            for p in pending.iter_mut() {
                                if p.0 == k { p.1 = true; }
                            }
                        }
                }
                QOp::Relisten(n) => {
                    l.listen(n).unwrap();
                    max = n;
                }
            }
            prop_assert_eq!(l.info().unwrap().queues.pending, pending.len());
            prop_assert_eq!(l.readiness().contains(Events::IN), !pending.is_empty());
        }
        drop(l);
        for (i, closed) in pending {
            if !closed {
                let c = clients[i].as_ref().unwrap();
                prop_assert_eq!(recv_now(c, 16).unwrap_err(), Errno::ECONNRESET);
            }
        }
        drop((clients, accepted));
        assert_clean(&st);
    }
}
