//! Stream data: bytes without boundaries, peeking, WAITALL, end of file, resets, shutdown.

use super::harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::io::{IoSlice, IoSliceMut};
use std::thread;

const S: i32 = SOCK_STREAM;

scenario!(stream_bytes_have_no_boundaries, |t| {
    let (c, s) = t.connected(S, "b");
    t.want("send 1", t.send(c, b"hello "), Ok(6));
    t.want("send 2", t.send(c, b"world"), Ok(5));
    t.want("FIONREAD", t.nread(s), Ok(11));
    t.want("read 3", t.recv(s, 3), Ok(B(b"hel".to_vec())));
    t.want("FIONREAD after", t.nread(s), Ok(8));
    t.want("read rest", t.recv(s, 64), Ok(B(b"lo world".to_vec())));
    t.want("empty", t.recv(s, 64), Err(Errno::EAGAIN));
    t.want("zero-length send", t.send(c, b""), Ok(0));
    t.want("still empty", t.recv(s, 64), Err(Errno::EAGAIN));
    t.want("send", t.send(s, b"back"), Ok(4));
    t.want("zero-length read with data", t.recv(c, 0), Ok(B(vec![])));
    t.want("data still there", t.recv(c, 64), Ok(B(b"back".to_vec())));
    t.want(
        "zero-length read, nothing queued",
        t.recv(c, 0),
        Err(Errno::EAGAIN),
    );
});

scenario!(stream_peek_and_trunc, |t| {
    let (c, s) = t.connected(S, "p");
    t.ok("send", t.send(c, b"abcdef"));
    t.want(
        "peek 4",
        t.recv_flags(s, 4, MSG_PEEK),
        Ok(B(b"abcd".to_vec())),
    );
    t.want(
        "peek again",
        t.recv_flags(s, 10, MSG_PEEK),
        Ok(B(b"abcdef".to_vec())),
    );
    t.want("FIONREAD", t.nread(s), Ok(6));
    // MSG_TRUNC means nothing to a stream: the bytes copied come back.
    let mut buf = [0u8; 2];
    t.rec(
        "recv MSG_TRUNC",
        t.api
            .recvfrom(s, &mut buf, MSG_TRUNC | MSG_DONTWAIT, None, None),
    );
    let mut a = [0u8; 1];
    let mut b = [0u8; 2];
    let mut iov = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    let mut nl = 0u32;
    let mut fl = -1;
    t.rec(
        "recvmsg flags",
        t.api
            .recvmsg(s, None, &mut nl, &mut iov, MSG_DONTWAIT, &mut fl),
    );
    t.rec(
        "recvmsg bytes and flags",
        (B(a.to_vec()), B(b.to_vec()), fl),
    );
    t.want("rest", t.recv(s, 10), Ok(B(b"f".to_vec())));
});

scenario!(stream_gather_and_scatter, |t| {
    let (c, s) = t.connected(S, "g");
    let parts: [&[u8]; 4] = [b"ab", b"", b"cde", b"f"];
    let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    t.want("sendmsg", t.api.sendmsg(c, None, &iov, MSG_DONTWAIT), Ok(6));
    t.want(
        "sendmsg no iovecs",
        t.api.sendmsg(c, None, &[], MSG_DONTWAIT),
        Ok(0),
    );
    let (mut x, mut y, mut z) = ([0u8; 1], [0u8; 0], [0u8; 3]);
    let mut iov = [
        IoSliceMut::new(&mut x),
        IoSliceMut::new(&mut y),
        IoSliceMut::new(&mut z),
    ];
    let mut nl = 0u32;
    let mut fl = -1;
    t.want(
        "recvmsg",
        t.api
            .recvmsg(s, None, &mut nl, &mut iov, MSG_DONTWAIT, &mut fl),
        Ok(4),
    );
    t.want(
        "scattered",
        (B(x.to_vec()), B(z.to_vec()), fl),
        (B(b"a".to_vec()), B(b"bcd".to_vec()), 0),
    );
    t.want("rest", t.recv(s, 8), Ok(B(b"ef".to_vec())));
    // More iovecs than UIO_MAXIOV.
    let many = vec![IoSlice::new(b"x"); 1025];
    t.want(
        "1025 iovecs",
        t.api.sendmsg(c, None, &many, MSG_DONTWAIT),
        Err(Errno::EMSGSIZE),
    );
    let ok = vec![IoSlice::new(b"x"); 1024];
    t.want(
        "1024 iovecs",
        t.api.sendmsg(c, None, &ok, MSG_DONTWAIT),
        Ok(1024),
    );
    t.want("FIONREAD", t.nread(s), Ok(1024));
});

scenario!(stream_waitall, |t| {
    let (c, s) = t.connected(S, "w");
    t.ok("send", t.send(c, b"part"));
    // Nonblocking: WAITALL takes what there is.
    t.want(
        "WAITALL|DONTWAIT",
        t.recv_flags(s, 10, MSG_WAITALL),
        Ok(B(b"part".to_vec())),
    );
    // Blocking: it waits for the whole buffer, across several writes.
    let got = thread::scope(|sc| {
        let h = sc.spawn(|| t.recv_block(s, 9, MSG_WAITALL));
        for piece in [&b"abc"[..], b"def", b"ghijk"] {
            t.ok("send", t.api.sendto(c, piece, 0, None));
        }
        h.join().expect("reader")
    });
    t.want("WAITALL whole", got, Ok(B(b"abcdefghi".to_vec())));
    t.want("left over", t.recv(s, 10), Ok(B(b"jk".to_vec())));
    // WAITALL stops at end of file with what arrived.
    t.ok("send", t.send(c, b"tail"));
    t.ok("shutdown", t.api.shutdown(c, SHUT_WR));
    t.want(
        "WAITALL at EOF",
        t.recv_block(s, 64, MSG_WAITALL),
        Ok(B(b"tail".to_vec())),
    );
    t.want("EOF", t.recv_block(s, 64, MSG_WAITALL), Ok(B(vec![])));
});

scenario!(stream_rcvlowat_and_rcvtimeo, |t| {
    let (c, s) = t.connected(S, "lw");
    t.timeout(s, SO_RCVTIMEO, 30);
    t.want("timed out", t.recv_block(s, 8, 0), Err(Errno::EAGAIN));
    t.ok("lowat", t.setint(s, SO_RCVLOWAT, 4));
    t.ok("send", t.send(c, b"ab"));
    t.rec("poll ignores the low-water mark", t.poll1(s, POLLIN));
    // Fewer than SO_RCVLOWAT bytes: a blocking read waits, then gives what it has.
    t.want(
        "below low-water, then timeout",
        t.recv_block(s, 8, 0),
        Ok(B(b"ab".to_vec())),
    );
    t.ok("send", t.send(c, b"abcdef"));
    t.want(
        "above low-water",
        t.recv_block(s, 8, 0),
        Ok(B(b"abcdef".to_vec())),
    );
});

scenario!(stream_eof_after_close_and_shutdown, |t| {
    let (c, s) = t.connected(S, "e");
    t.ok("send", t.send(c, b"last"));
    t.ok("close", t.api.close(c));
    t.want("data first", t.recv(s, 8), Ok(B(b"last".to_vec())));
    t.want("EOF", t.recv(s, 8), Ok(B(vec![])));
    t.want("EOF again", t.recv(s, 8), Ok(B(vec![])));
    t.want("peek at EOF", t.recv_flags(s, 8, MSG_PEEK), Ok(B(vec![])));
    t.want(
        "WAITALL at EOF",
        t.recv_flags(s, 8, MSG_WAITALL),
        Ok(B(vec![])),
    );
    t.want("blocking read at EOF", t.recv_block(s, 8, 0), Ok(B(vec![])));
    t.want("write to a closed peer", t.send(s, b"x"), Err(Errno::EPIPE));
    t.want("SO_ERROR", t.getint(s, SO_ERROR), Ok(0));
    t.rec("peer name still known", t.peername(s));
});

scenario!(stream_reset_when_closed_with_unread_data, |t| {
    let (c, s) = t.connected(S, "r");
    t.ok("send s->c", t.send(s, b"never read"));
    t.ok("send c->s", t.send(c, b"mine"));
    t.ok("close c with unread data", t.api.close(c));
    t.rec("poll", t.poll1(s, POLLIN | POLLOUT | POLLRDHUP));
    t.want("buffered data first", t.recv(s, 8), Ok(B(b"mine".to_vec())));
    t.want("then the reset", t.recv(s, 8), Err(Errno::ECONNRESET));
    t.want("once", t.recv(s, 8), Ok(B(vec![])));
    t.rec("poll after", t.poll1(s, POLLIN | POLLOUT | POLLRDHUP));
    t.want("write", t.send(s, b"x"), Err(Errno::EPIPE));
});

scenario!(stream_reset_seen_by_so_error_and_write, |t| {
    let (c, s) = t.connected(S, "r2");
    t.ok("send", t.send(s, b"unread"));
    t.ok("close", t.api.close(c));
    t.rec("SO_ERROR", t.getint(s, SO_ERROR));
    t.rec("SO_ERROR again", t.getint(s, SO_ERROR));
    t.rec("read", t.recv(s, 8));
    let (c, s) = t.connected(S, "r3");
    t.ok("send", t.send(s, b"unread"));
    t.ok("close", t.api.close(c));
    // SPEC section 3: writes to a peer that is gone fail with EPIPE.
    t.rec("write first", t.send(s, b"x"));
    t.rec("read after the write", t.recv(s, 8));
});

scenario!(stream_shutdown_write, |t| {
    let (c, s) = t.connected(S, "sw");
    t.ok("send", t.send(c, b"before"));
    t.want("shutdown WR", t.api.shutdown(c, SHUT_WR), Ok(()));
    t.want("own write", t.send(c, b"x"), Err(Errno::EPIPE));
    t.want("peer reads data", t.recv(s, 16), Ok(B(b"before".to_vec())));
    t.want("then EOF", t.recv(s, 16), Ok(B(vec![])));
    t.want("peer can still write", t.send(s, b"reply"), Ok(5));
    t.want("and we read it", t.recv(c, 16), Ok(B(b"reply".to_vec())));
    t.rec("poll c", t.poll1(c, POLLIN | POLLOUT | POLLRDHUP));
    t.rec("poll s", t.poll1(s, POLLIN | POLLOUT | POLLRDHUP));
    t.want("shutdown WR again", t.api.shutdown(c, SHUT_WR), Ok(()));
});

scenario!(stream_shutdown_read, |t| {
    let (c, s) = t.connected(S, "sr");
    t.ok("send", t.send(s, b"queued"));
    t.want("shutdown RD", t.api.shutdown(c, SHUT_RD), Ok(()));
    t.rec("own read", t.recv(c, 16));
    t.rec("own read again", t.recv(c, 16));
    t.rec("peer write", t.send(s, b"x"));
    t.rec("own write", t.send(c, b"y"));
    t.rec("peer reads", t.recv(s, 16));
    t.rec("poll c", t.poll1(c, POLLIN | POLLOUT | POLLRDHUP));
    t.rec("poll s", t.poll1(s, POLLIN | POLLOUT | POLLRDHUP));
});

scenario!(stream_shutdown_both, |t| {
    let (c, s) = t.connected(S, "sb");
    t.want("shutdown RDWR", t.api.shutdown(c, SHUT_RDWR), Ok(()));
    t.rec("poll c", t.poll1(c, POLLIN | POLLOUT | POLLRDHUP));
    t.rec("poll s", t.poll1(s, POLLIN | POLLOUT | POLLRDHUP));
    t.rec("c read", t.recv(c, 4));
    t.rec("c write", t.send(c, b"x"));
    t.rec("s read", t.recv(s, 4));
    t.rec("s write", t.send(s, b"x"));
    t.want("shutdown again", t.api.shutdown(c, SHUT_RD), Ok(()));
    t.want("then close", t.api.close(c), Ok(()));
    t.rec("s read after close", t.recv(s, 4));
});

scenario!(shutdown_bad_how_and_unconnected, |t| {
    for ty in TYPES {
        let n = ty_name(ty);
        let (a, b) = t.pair(ty);
        for how in [-1, 3, 4, i32::MAX] {
            t.want(
                &format!("{n} how {how}"),
                t.api.shutdown(a, how),
                Err(Errno::EINVAL),
            );
        }
        let u = t.sock(ty);
        // SPEC section 3: shutdown on a socket that is not connected is ENOTCONN; Linux
        // returns 0.
        t.differs(
            &format!("{n} unconnected"),
            t.api.shutdown(u, SHUT_RDWR),
            Ok(()),
            Err(Errno::ENOTCONN),
        );
        t.want(
            &format!("{n} bad how wins"),
            t.api.shutdown(u, 7),
            Err(Errno::EINVAL),
        );
        for fd in [a, b, u] {
            t.ok("close", t.api.close(fd));
        }
    }
    let l = t.listener(S, "l", 1);
    t.differs(
        "listener",
        t.api.shutdown(l, SHUT_RD),
        Ok(()),
        Err(Errno::ENOTCONN),
    );
    t.want("bad fd", t.api.shutdown(-1, SHUT_RD), Err(Errno::EBADF));
});

scenario!(stream_send_and_recv_unconnected_or_with_address, |t| {
    let u = t.sock(S);
    t.want("send unconnected", t.send(u, b"x"), Err(Errno::ENOTCONN));
    t.want("recv unconnected", t.recv(u, 4), Err(Errno::EINVAL));
    t.want(
        "sendto unconnected",
        t.sendto(u, b"x", "nobody"),
        Err(Errno::EOPNOTSUPP),
    );
    t.want(
        "sendto junk address",
        t.api.sendto(u, b"x", 0, Some(&[9u8; 7])),
        Err(Errno::EOPNOTSUPP),
    );
    t.want(
        "sendto addrlen 0",
        t.api.sendto(u, b"x", 0, Some(&[])),
        Err(Errno::ENOTCONN),
    );
    t.want(
        "sendto addrlen 129",
        t.api.sendto(u, b"x", 0, Some(&[1u8; 129])),
        Err(Errno::EINVAL),
    );
    let l = t.listener(S, "l", 1);
    t.want("send on a listener", t.send(l, b"x"), Err(Errno::ENOTCONN));
    t.want("recv on a listener", t.recv(l, 4), Err(Errno::EINVAL));
    let (c, s) = t.connected(S, "c");
    t.want(
        "sendto connected",
        t.sendto(c, b"x", "c"),
        Err(Errno::EISCONN),
    );
    t.want(
        "sendmsg with a name",
        t.api
            .sendmsg(c, Some(&t.addr("c")), &[IoSlice::new(b"x")], 0),
        Err(Errno::EISCONN),
    );
    t.want("nothing arrived", t.recv(s, 4), Err(Errno::EAGAIN));
});

scenario!(stream_recvfrom_reports_the_sender, |t| {
    let l = t.listener(S, "srv", 2);
    let named = t.bound(S, "cli");
    t.ok("connect", t.api.connect(named, &t.addr("srv")));
    let s1 = t.ok("accept", t.api.accept4(l, None, None, 0));
    let anon = t.sock(S);
    t.ok("connect", t.api.connect(anon, &t.addr("srv")));
    let s2 = t.ok("accept", t.api.accept4(l, None, None, 0));
    t.ok("send", t.send(named, b"n"));
    t.ok("send", t.send(anon, b"a"));
    t.ok("send", t.send(s1, b"1"));
    t.rec("server from named client", t.recvfrom(s1, 4));
    t.rec("server from unnamed client", t.recvfrom(s2, 4));
    t.rec("client from server", t.recvfrom(named, 4));
    t.ok("shutdown", t.api.shutdown(s2, SHUT_WR));
    t.rec("at EOF", t.recvfrom(anon, 4));
    let (p, q) = t.pair(S);
    t.ok("send", t.send(p, b"p"));
    t.rec("socketpair", t.recvfrom(q, 4));
    // An address buffer with no length: the data is taken, then EFAULT.
    t.ok("send", t.send(p, b"gone"));
    let mut buf = [0u8; 8];
    let mut a = [0u8; 16];
    t.want(
        "no addrlen",
        t.api
            .recvfrom(q, &mut buf, MSG_DONTWAIT, Some(&mut a), None),
        Err(Errno::EFAULT),
    );
    t.want("data was taken", t.recv(q, 8), Err(Errno::EAGAIN));
});

scenario!(stream_fill_nonblocking_then_drain, |t| {
    let (c, s) = t.connected(S, "f");
    t.ok("small sndbuf", t.setint(c, SO_SNDBUF, 4096));
    let sent = t.fill(c, 1000);
    // How much fits depends on each system's accounting; that it stops, and that nothing
    // is lost, does not.
    t.want("filled", sent > 0, true);
    t.want("full", t.send(c, b"x"), Err(Errno::EAGAIN));
    t.want("drained all that was sent", t.drain(s) == sent, true);
    t.want("room again", t.send(c, b"x"), Ok(1));
    // A blocking write larger than the buffer completes while the reader reads.
    let big = vec![7u8; 100_000];
    let got = thread::scope(|sc| {
        let h = sc.spawn(|| t.api.sendto(c, &big, 0, None));
        // The one byte sent above, then the big write.
        let mut n = 0;
        let mut buf = vec![0u8; 8192];
        while n < 100_001 {
            match t.api.recvfrom(s, &mut buf, 0, None, None) {
                Ok(k) if k > 0 => n += k,
                r => panic!("reader: {r:?}"),
            }
        }
        (h.join().expect("writer"), n)
    });
    t.want("blocking write of 100000", got, (Ok(100_000), 100_001));
});
