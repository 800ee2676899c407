//! TCP data: MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT, FIONREAD, gather and scatter, full
//! buffers, shutdown of each side, calls on unconnected sockets.

use super::harness::*;
use super::inet_harness::*;
use ksock::Errno;
use ksock_posix::consts::*;
use std::io::{IoSlice, IoSliceMut};

const ALL: i16 = POLLIN | POLLOUT | POLLRDHUP;

scenario!(tcp_msg_peek, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} send"), t.isend(c, b"peekaboo"), Ok(8));
        t.want(
            &format!("{f} peek"),
            t.irecv_flags(s, 4, MSG_PEEK),
            Ok(B(b"peek".to_vec())),
        );
        t.want(
            &format!("{f} peek all"),
            t.recv_flags(s, 64, MSG_PEEK),
            Ok(B(b"peekaboo".to_vec())),
        );
        t.want(&format!("{f} FIONREAD"), t.nread(s), Ok(8));
        t.want(&format!("{f} read"), t.recv(s, 5), Ok(B(b"peeka".to_vec())));
        t.want(
            &format!("{f} peek rest"),
            t.recv_flags(s, 64, MSG_PEEK),
            Ok(B(b"boo".to_vec())),
        );
        t.want(
            &format!("{f} read rest"),
            t.recv(s, 64),
            Ok(B(b"boo".to_vec())),
        );
        t.want(
            &format!("{f} peek empty"),
            t.recv_flags(s, 64, MSG_PEEK),
            Err(Errno::EAGAIN),
        );
        t.ok("shutdown", t.api.shutdown(c, SHUT_WR));
        t.wait(s, POLLRDHUP);
        t.want(
            &format!("{f} peek at EOF"),
            t.recv_flags(s, 64, MSG_PEEK),
            Ok(B(vec![])),
        );
        for fd in [c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_msg_waitall, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.timeout(s, SO_RCVTIMEO, SAFETY_MS as i64);
        t.want(&format!("{f} send 1"), t.isend(c, b"abc"), Ok(3));
        t.want(&format!("{f} send 2"), t.isend(c, b"defg"), Ok(4));
        t.wait(s, POLLIN);
        // Waits for the whole count; the second piece comes from another thread.
        let got = std::thread::scope(|sc| {
            let r = sc.spawn(|| t.recv_block(s, 10, MSG_WAITALL));
            t.wait(s, POLLIN);
            t.send_all(c, b"hij");
            r.join().unwrap()
        });
        t.want(&format!("{f} waitall"), got, Ok(B(b"abcdefghij".to_vec())));
        // With MSG_DONTWAIT: what is there.
        t.want(&format!("{f} send 3"), t.isend(c, b"xy"), Ok(2));
        t.wait(s, POLLIN);
        t.want(
            &format!("{f} waitall nonblocking"),
            t.recv_flags(s, 10, MSG_WAITALL),
            Ok(B(b"xy".to_vec())),
        );
        // End of file ends the wait with what came.
        t.want(&format!("{f} send 4"), t.isend(c, b"end"), Ok(3));
        t.ok("shutdown", t.api.shutdown(c, SHUT_WR));
        t.wait(s, POLLRDHUP);
        t.want(
            &format!("{f} waitall at EOF"),
            t.recv_block(s, 10, MSG_WAITALL),
            Ok(B(b"end".to_vec())),
        );
        t.want(
            &format!("{f} then"),
            t.recv_block(s, 10, MSG_WAITALL),
            Ok(B(vec![])),
        );
        for fd in [c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_msg_dontwait_on_blocking_socket, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.want(
            &format!("{f} recv"),
            t.api.recvfrom(s, &mut [0u8; 8], MSG_DONTWAIT, None, None),
            Err(Errno::EAGAIN),
        );
        t.rec(
            &format!("{f} still blocking"),
            t.api.fcntl(s, F_GETFL, 0).map(|v| v & O_NONBLOCK),
        );
        // Fill the connection with nonblocking sends; the amount depends on buffer
        // sizes, which differ (not compared).
        let sent = t.fill(c, 65536);
        t.rec(&format!("{f} filled"), sent > 0);
        t.want(&format!("{f} full"), t.isend(c, b"x"), Err(Errno::EAGAIN));
        t.rec(&format!("{f} full: poll"), t.poll1(c, POLLOUT));
        let got = t.drain_all(s, sent);
        t.want(&format!("{f} drained all"), got == sent, true);
        t.want(&format!("{f} room again"), t.wait(c, POLLOUT), Ev(POLLOUT));
        for fd in [c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_fionread, |t| {
    for d in FAMS {
        let f = fam(d);
        let u = t.isock(d, SOCK_STREAM);
        t.rec(&format!("{f} unconnected"), t.nread(u));
        let (l, _) = t.ilistener(d, 1, "L");
        t.want(&format!("{f} listener"), t.nread(l), Err(Errno::EINVAL));
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} empty"), t.nread(s), Ok(0));
        t.want(&format!("{f} send"), t.isend(c, b"0123456789"), Ok(10));
        t.wait(s, POLLIN);
        t.want(&format!("{f} queued"), t.nread(s), Ok(10));
        t.want(&format!("{f} part"), t.recv(s, 4), Ok(B(b"0123".to_vec())));
        t.want(&format!("{f} left"), t.nread(s), Ok(6));
        t.want(&format!("{f} more"), t.isend(c, b"ab"), Ok(2));
        t.wait_nread(s, 8);
        t.want(&format!("{f} both"), t.nread(s), Ok(8));
        t.ok("close", t.api.close(c));
        t.wait(s, POLLRDHUP);
        t.want(&format!("{f} after the peer closed"), t.nread(s), Ok(8));
        t.want(
            &format!("{f} read"),
            t.recv(s, 64),
            Ok(B(b"456789ab".to_vec())),
        );
        t.want(&format!("{f} at EOF"), t.nread(s), Ok(0));
        for fd in [u, l, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_gather_scatter_and_no_address, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        let iov = [
            IoSlice::new(b"one "),
            IoSlice::new(b""),
            IoSlice::new(b"two"),
        ];
        t.want(
            &format!("{f} sendmsg"),
            t.api.sendmsg(c, None, &iov, SEND),
            Ok(7),
        );
        t.wait_nread(s, 7);
        let mut a = [0u8; 3];
        let mut b = [0u8; 8];
        let mut name = [0xaau8; 32];
        let mut namelen = 32u32;
        let mut mflags = -1;
        let r = {
            let mut v = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
            t.api.recvmsg(
                s,
                Some(&mut name),
                &mut namelen,
                &mut v,
                MSG_DONTWAIT,
                &mut mflags,
            )
        };
        t.want(&format!("{f} recvmsg"), r, Ok(7));
        t.want(
            &format!("{f} scattered"),
            (B(a.to_vec()), B(b[..4].to_vec())),
            (B(b"one".to_vec()), B(b" two".to_vec())),
        );
        // A stream has no sender address: none is written.
        t.want(&format!("{f} name length"), namelen, 0);
        t.want(&format!("{f} msg_flags"), mflags, 0);
        t.want(&format!("{f} send"), t.isend(s, b"r"), Ok(1));
        t.wait(c, POLLIN);
        t.rec(
            &format!("{f} recvfrom address"),
            t.recvfrom(c, 8).map(|(b, a)| (b, t.show(&a.0))),
        );
        // An address on a connected stream's send is ignored (Linux's tcp_sendmsg).
        let (o, op) = t.ibound(d, SOCK_STREAM, "O");
        t.rec(
            &format!("{f} sendto another address"),
            t.isendto(c, b"to", &lo_at(d, op)),
        );
        for fd in [c, s, o] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_calls_on_unconnected_sockets, |t| {
    for d in FAMS {
        let f = fam(d);
        let u = t.isock(d, SOCK_STREAM);
        let (l, lp) = t.ilistener(d, 1, "L");
        for (n, fd) in [("new", u), ("listener", l)] {
            t.want(
                &format!("{f} {n} send"),
                t.isend(fd, b"x"),
                Err(Errno::EPIPE),
            );
            t.rec(
                &format!("{f} {n} sendto"),
                t.isendto(fd, b"x", &lo_at(d, lp)),
            );
            t.want(
                &format!("{f} {n} recv"),
                t.recv(fd, 4),
                Err(Errno::ENOTCONN),
            );
            t.want(&format!("{f} {n} peer"), t.ipeer(fd), Err(Errno::ENOTCONN));
            let r = t.api.shutdown(fd, SHUT_WR);
            if n == "new" {
                t.want(&format!("{f} {n} shutdown WR"), r, Err(Errno::ENOTCONN));
            } else {
                // SPEC section 2's operation table: shutdown needs a connection, a
                // listener too (as for AF_UNIX); Linux's inet_shutdown does nothing for
                // SHUT_WR on a listener and returns 0.
                t.differs(
                    &format!("{f} {n} shutdown WR"),
                    r,
                    Ok(()),
                    Err(Errno::ENOTCONN),
                );
            }
            t.rec(&format!("{f} {n} poll"), t.poll1(fd, ALL));
        }
        t.want(
            &format!("{f} shutdown bad how"),
            t.api.shutdown(u, 7),
            Err(Errno::EINVAL),
        );
        for fd in [u, l] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_shutdown_read, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} send"), t.isend(s, b"early"), Ok(5));
        t.wait(c, POLLIN);
        t.want(
            &format!("{f} shutdown RD"),
            t.api.shutdown(c, SHUT_RD),
            Ok(()),
        );
        // What arrived before is still there.
        t.want(
            &format!("{f} read queued"),
            t.recv(c, 64),
            Ok(B(b"early".to_vec())),
        );
        t.want(&format!("{f} then EOF"), t.recv(c, 64), Ok(B(vec![])));
        t.rec(&format!("{f} poll"), t.poll1(c, ALL));
        // The peer is not told; the connection still carries the other way.
        t.rec(&format!("{f} peer poll"), t.poll1(s, ALL));
        t.want(&format!("{f} write"), t.isend(c, b"up"), Ok(2));
        t.want(
            &format!("{f} peer reads"),
            t.irecv(s, 8),
            Ok(B(b"up".to_vec())),
        );
        for fd in [c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_shutdown_both, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.want(
            &format!("{f} shutdown RDWR"),
            t.api.shutdown(c, SHUT_RDWR),
            Ok(()),
        );
        t.want(&format!("{f} send"), t.isend(c, b"x"), Err(Errno::EPIPE));
        t.want(&format!("{f} recv"), t.recv(c, 4), Ok(B(vec![])));
        t.rec(&format!("{f} own poll"), t.poll1(c, ALL));
        t.rec(&format!("{f} peer poll"), t.wait(s, POLLRDHUP));
        t.want(&format!("{f} peer EOF"), t.recv(s, 4), Ok(B(vec![])));
        t.rec(&format!("{f} names"), (t.iname(c), t.ipeer(c)));
        for fd in [c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_dup_keeps_the_connection, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        let c2 = t.ok("dup", t.api.dup(c));
        t.ok("close", t.api.close(c));
        t.want(&format!("{f} through the dup"), t.isend(c2, b"dup"), Ok(3));
        t.want(
            &format!("{f} arrives"),
            t.irecv(s, 8),
            Ok(B(b"dup".to_vec())),
        );
        t.rec(&format!("{f} peer still connected"), t.poll1(s, ALL));
        t.ok("close", t.api.close(c2));
        t.want(
            &format!("{f} last close: EOF"),
            t.irecv(s, 8),
            Ok(B(vec![])),
        );
        t.ok("close", t.api.close(s));
    }
});
