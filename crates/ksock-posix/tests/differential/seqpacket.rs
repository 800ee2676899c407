//! Seqpacket: records over a connection.

use super::harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::io::{IoSlice, IoSliceMut};

const Q: i32 = SOCK_SEQPACKET;

/// recvmsg into one buffer of `n` bytes: (return, bytes, msg_flags).
fn recvmsg(t: &T<'_>, fd: i32, n: usize, flags: i32) -> Result<(usize, B, i32), Errno> {
    let mut buf = vec![0u8; n];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut nl = 0u32;
    let mut fl = -1;
    let r = t
        .api
        .recvmsg(fd, None, &mut nl, &mut iov, flags | MSG_DONTWAIT, &mut fl)?;
    buf.truncate(r.min(n));
    Ok((r, B(buf), fl))
}

scenario!(seqpacket_keeps_record_boundaries, |t| {
    let (c, s) = t.connected(Q, "b");
    t.want("send 1", t.send(c, b"one"), Ok(3));
    t.want("send empty", t.send(c, b""), Ok(0));
    t.want("send 2", t.send(c, b"three"), Ok(5));
    t.want("FIONREAD", t.nread(s), Ok(8));
    t.want(
        "record 1",
        recvmsg(t, s, 64, 0),
        Ok((3, B(b"one".to_vec()), 0)),
    );
    t.want(
        "peek the empty record",
        recvmsg(t, s, 64, MSG_PEEK),
        Ok((0, B(vec![]), 0)),
    );
    t.want(
        "peek it into nothing",
        recvmsg(t, s, 0, MSG_PEEK),
        Ok((0, B(vec![]), 0)),
    );
    t.want("empty record", recvmsg(t, s, 64, 0), Ok((0, B(vec![]), 0)));
    t.want(
        "record 2",
        recvmsg(t, s, 64, 0),
        Ok((5, B(b"three".to_vec()), 0)),
    );
    t.want("nothing", recvmsg(t, s, 64, 0), Err(Errno::EAGAIN));
    // A gather list is one record.
    let parts = [IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cd")];
    t.want("sendmsg", t.api.sendmsg(c, None, &parts, 0), Ok(4));
    let (mut x, mut y) = ([0u8; 3], [0u8; 3]);
    let mut iov = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
    let mut nl = 0u32;
    let mut fl = -1;
    t.want(
        "scattered record",
        t.api
            .recvmsg(s, None, &mut nl, &mut iov, MSG_DONTWAIT, &mut fl),
        Ok(4),
    );
    t.want(
        "scattered bytes",
        (B(x.to_vec()), B(y.to_vec()), fl),
        (B(b"abc".to_vec()), B(b"d\0\0".to_vec()), 0),
    );
});

scenario!(seqpacket_truncation, |t| {
    let (c, s) = t.connected(Q, "t");
    t.ok("send", t.send(c, b"abcdef"));
    t.ok("send", t.send(c, b"next"));
    t.want(
        "peek truncated",
        recvmsg(t, s, 3, MSG_PEEK),
        Ok((3, B(b"abc".to_vec()), MSG_TRUNC)),
    );
    t.want(
        "peek MSG_TRUNC: full length",
        recvmsg(t, s, 3, MSG_PEEK | MSG_TRUNC),
        Ok((6, B(b"abc".to_vec()), MSG_TRUNC)),
    );
    t.want(
        "read truncated",
        recvmsg(t, s, 2, 0),
        Ok((2, B(b"ab".to_vec()), MSG_TRUNC)),
    );
    t.want(
        "the rest is gone",
        recvmsg(t, s, 64, 0),
        Ok((4, B(b"next".to_vec()), 0)),
    );
    t.ok("send", t.send(c, b"0123456789"));
    let mut buf = [0u8; 4];
    t.want(
        "recv MSG_TRUNC",
        t.api
            .recvfrom(s, &mut buf, MSG_TRUNC | MSG_DONTWAIT, None, None),
        Ok(10),
    );
    t.want("bytes", B(buf.to_vec()), B(b"0123".to_vec()));
    t.ok("send", t.send(c, b"xyz"));
    t.want(
        "zero-length buffer",
        recvmsg(t, s, 0, 0),
        Ok((0, B(vec![]), MSG_TRUNC)),
    );
    t.want("record consumed", t.recv(s, 8), Err(Errno::EAGAIN));
    t.ok("send", t.send(c, b"xyz"));
    t.want(
        "MSG_CMSG_CLOEXEC comes back",
        recvmsg(t, s, 8, MSG_CMSG_CLOEXEC),
        Ok((3, B(b"xyz".to_vec()), MSG_CMSG_CLOEXEC)),
    );
});

scenario!(seqpacket_waitall_gives_one_record, |t| {
    let (c, s) = t.connected(Q, "w");
    t.ok("send", t.send(c, b"ab"));
    t.ok("send", t.send(c, b"cd"));
    t.want(
        "WAITALL",
        t.recv_block(s, 16, MSG_WAITALL),
        Ok(B(b"ab".to_vec())),
    );
    t.want(
        "next",
        t.recv_block(s, 16, MSG_WAITALL),
        Ok(B(b"cd".to_vec())),
    );
});

scenario!(seqpacket_record_larger_than_the_send_buffer, |t| {
    let (c, s) = t.connected(Q, "m");
    t.ok("sndbuf", t.setint(c, SO_SNDBUF, 5000));
    let sndbuf = t.ok("get", t.getint(c, SO_SNDBUF)) as usize;
    t.want("doubled", sndbuf, 10_000);
    t.want(
        "too big",
        t.send(c, &vec![1u8; sndbuf - 31]),
        Err(Errno::EMSGSIZE),
    );
    t.want(
        "largest",
        t.send(c, &vec![2u8; sndbuf - 32]),
        Ok(sndbuf - 32),
    );
    t.want(
        "arrives whole",
        t.recv(s, 20_000).map(|b| b.0.len()),
        Ok(sndbuf - 32),
    );
});

scenario!(seqpacket_peer_close, |t| {
    let (c, s) = t.connected(Q, "pc");
    t.ok("send", t.send(c, b"r1"));
    t.ok("send", t.send(c, b"r2"));
    t.ok("close", t.api.close(c));
    t.rec("poll", t.poll1(s, POLLIN | POLLOUT | POLLRDHUP));
    t.want("record 1", t.recv(s, 8), Ok(B(b"r1".to_vec())));
    t.want("record 2", t.recv(s, 8), Ok(B(b"r2".to_vec())));
    t.want("EOF", t.recv(s, 8), Ok(B(vec![])));
    t.want("EOF, blocking", t.recv_block(s, 8, 0), Ok(B(vec![])));
    t.want("write", t.send(s, b"x"), Err(Errno::EPIPE));
});

scenario!(seqpacket_peer_close_with_unread_data, |t| {
    let (c, s) = t.connected(Q, "pu");
    t.ok("send", t.send(s, b"unread"));
    t.ok("send", t.send(c, b"mine"));
    t.ok("close", t.api.close(c));
    t.rec("poll", t.poll1(s, POLLIN | POLLOUT | POLLRDHUP));
    t.rec("read 1", t.recv(s, 8));
    t.rec("read 2", t.recv(s, 8));
    t.rec("read 3", t.recv(s, 8));
    t.rec("write 1", t.send(s, b"x"));
    t.rec("write 2", t.send(s, b"x"));
    let (c, s) = t.connected(Q, "pu2");
    t.ok("send", t.send(s, b"unread"));
    t.ok("close", t.api.close(c));
    t.rec("write first", t.send(s, b"x"));
    t.rec("then read", t.recv(s, 8));
    t.rec("SO_ERROR", t.getint(s, SO_ERROR));
});

scenario!(seqpacket_shutdown_each_direction, |t| {
    let (c, s) = t.connected(Q, "sd");
    t.ok("send", t.send(c, b"before"));
    t.want("shutdown WR", t.api.shutdown(c, SHUT_WR), Ok(()));
    t.want("own write", t.send(c, b"x"), Err(Errno::EPIPE));
    t.want("peer reads", t.recv(s, 8), Ok(B(b"before".to_vec())));
    t.want("peer EOF", t.recv(s, 8), Ok(B(vec![])));
    t.want("peer writes back", t.send(s, b"ok"), Ok(2));
    t.want("read back", t.recv(c, 8), Ok(B(b"ok".to_vec())));
    t.want("shutdown RD", t.api.shutdown(c, SHUT_RD), Ok(()));
    t.rec("peer write after RD", t.send(s, b"x"));
    t.rec("own read after RD", t.recv(c, 8));
    t.rec("poll c", t.poll1(c, POLLIN | POLLOUT | POLLRDHUP));
    t.rec("poll s", t.poll1(s, POLLIN | POLLOUT | POLLRDHUP));
});

scenario!(seqpacket_addresses_and_unconnected_use, |t| {
    let u = t.sock(Q);
    t.want("send unconnected", t.send(u, b"x"), Err(Errno::ENOTCONN));
    t.want("recv unconnected", t.recv(u, 4), Err(Errno::ENOTCONN));
    t.want(
        "sendto unconnected",
        t.sendto(u, b"x", "nobody"),
        Err(Errno::ENOTCONN),
    );
    let l = t.listener(Q, "l", 1);
    t.want("recv listener", t.recv(l, 4), Err(Errno::ENOTCONN));
    t.want("send listener", t.send(l, b"x"), Err(Errno::ENOTCONN));
    let (c, s) = t.connected(Q, "c");
    // Linux ignores the address of a connected seqpacket send, whatever it holds.
    t.want(
        "sendto another name",
        t.sendto(c, b"one", "elsewhere"),
        Ok(3),
    );
    t.want(
        "sendto junk",
        t.api.sendto(c, b"two", MSG_DONTWAIT, Some(&[9u8; 5])),
        Ok(3),
    );
    t.want(
        "sendto 129 bytes",
        t.api.sendto(c, b"x", MSG_DONTWAIT, Some(&[1u8; 129])),
        Err(Errno::EINVAL),
    );
    t.want("arrived", t.recv(s, 8), Ok(B(b"one".to_vec())));
    t.want("arrived 2", t.recv(s, 8), Ok(B(b"two".to_vec())));
    t.ok("send", t.send(c, b"3"));
    t.rec("recvfrom", t.recvfrom(s, 8));
    t.ok("send", t.send(s, b"4"));
    t.rec("recvfrom client", t.recvfrom(c, 8));
    let mut name = [0u8; 64];
    let mut nl = 64u32;
    let mut buf = [0u8; 8];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut fl = 0;
    t.ok("send", t.send(s, b"5"));
    t.rec(
        "recvmsg name",
        t.api
            .recvmsg(c, Some(&mut name), &mut nl, &mut iov, MSG_DONTWAIT, &mut fl),
    );
    t.rec("recvmsg namelen", (B(name[..nl as usize].to_vec()), fl));
});

scenario!(recvmsg_and_sendmsg_header_checks, |t| {
    let (a, b) = t.pair(SOCK_DGRAM);
    t.ok("send", t.send(a, b"x"));
    let mut buf = [0u8; 4];
    let mut name = [0u8; 16];
    let (mut nl, mut fl) = (u32::MAX, 0);
    let mut iov = [IoSliceMut::new(&mut buf)];
    t.want(
        "negative namelen",
        t.api
            .recvmsg(b, Some(&mut name), &mut nl, &mut iov, MSG_DONTWAIT, &mut fl),
        Err(Errno::EINVAL),
    );
    t.want("nothing taken", t.nread(b), Ok(1));
    let (mut nl, mut fl) = (u32::MAX, 0);
    t.want(
        "negative namelen, no name: ignored",
        t.api
            .recvmsg(b, None, &mut nl, &mut iov, MSG_DONTWAIT, &mut fl),
        Ok(1),
    );
    t.want("namelen untouched", nl, u32::MAX);
    let mut bufs = vec![[0u8; 1]; 1025];
    let mut iov: Vec<IoSliceMut<'_>> = bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
    let (mut nl, mut fl) = (0, 0);
    t.want(
        "1025 iovecs",
        t.api
            .recvmsg(b, None, &mut nl, &mut iov, MSG_DONTWAIT, &mut fl),
        Err(Errno::EMSGSIZE),
    );
    // A name longer than sockaddr_storage is cut to it (sendto would say EINVAL).
    let r = t.bound(SOCK_DGRAM, "r");
    let mut long = t.addr("r");
    long.resize(200, 0);
    t.rec(
        "sendmsg namelen 200",
        t.api
            .sendmsg(a, Some(&long), &[IoSlice::new(b"l")], MSG_DONTWAIT),
    );
    t.rec(
        "sendto addrlen 200",
        t.api.sendto(a, b"l", MSG_DONTWAIT, Some(&long)),
    );
    t.want(
        "sendmsg empty name: none",
        t.api
            .sendmsg(a, Some(&[]), &[IoSlice::new(b"n")], MSG_DONTWAIT),
        Ok(1),
    );
    t.want("it went to the peer", t.recv(b, 4), Ok(B(b"n".to_vec())));
    let _ = r;
});
