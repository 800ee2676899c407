//! TCP over the loopback: connect and accept, data, half-close, resets, refusals.

use super::harness::*;
use super::inet_harness::*;
use ksock::Errno;
use ksock_posix::consts::*;

scenario!(tcp_connect_accept_and_names, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        t.rec(&format!("{f} listener name"), t.iname(l));
        t.rec(&format!("{f} listener peer"), t.ipeer(l));
        let c = t.iclient(d, lp);
        t.label(t.iport(c), "C");
        t.rec(&format!("{f} client name"), t.iname(c));
        t.rec(&format!("{f} client peer"), t.ipeer(c));
        t.wait(l, POLLIN);
        let mut a = [0u8; 128];
        let mut alen = 128u32;
        let s = t.ok("accept", t.api.accept4(l, Some(&mut a), Some(&mut alen), 0));
        t.rec(&format!("{f} accept address"), t.show(&a[..alen as usize]));
        t.rec(&format!("{f} accepted name"), t.iname(s));
        t.rec(&format!("{f} accepted peer"), t.ipeer(s));
        t.want(&format!("{f} send"), t.isend(c, b"hello"), Ok(5));
        t.want(
            &format!("{f} recv"),
            t.irecv(s, 16),
            Ok(B(b"hello".to_vec())),
        );
        t.want(&format!("{f} reply"), t.isend(s, b"back"), Ok(4));
        t.want(
            &format!("{f} reply recv"),
            t.irecv(c, 16),
            Ok(B(b"back".to_vec())),
        );
        for fd in [l, c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_accept_address_truncated, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        let mut cs = Vec::new();
        for _ in 0..3 {
            cs.push(t.iclient(d, lp));
        }
        for (i, c) in cs.iter().enumerate() {
            t.label(t.iport(*c), &format!("C{i}"));
        }
        // A buffer shorter than the address: cut, with the full length reported.
        t.wait(l, POLLIN);
        let mut a = [0u8; 6];
        let mut alen = 6u32;
        let s1 = t.ok("accept", t.api.accept4(l, Some(&mut a), Some(&mut alen), 0));
        t.rec(&format!("{f} short: len"), alen);
        t.rec(&format!("{f} short: family and port"), {
            let fam = u16::from_ne_bytes([a[0], a[1]]) as i32;
            let port = u16::from_be_bytes([a[2], a[3]]);
            (fam == d, t.show_port(port))
        });
        // A zero length: nothing written, the length still reported.
        t.wait(l, POLLIN);
        let mut alen = 0u32;
        let s2 = t.ok("accept", t.api.accept4(l, Some(&mut a), Some(&mut alen), 0));
        t.rec(&format!("{f} zero: len"), alen);
        // No address at all.
        let s3 = t.iaccept(l);
        t.rec(&format!("{f} third peer"), t.ipeer(s3));
        for fd in [l, s1, s2, s3].into_iter().chain(cs) {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_accepted_in_connect_order, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 8, "L");
        let mut cs = Vec::new();
        for i in 0..4 {
            let c = t.iclient(d, lp);
            t.label(t.iport(c), &format!("C{i}"));
            // Each one's handshake finishes before the next starts.
            t.want(
                &format!("{f} C{i} writable"),
                t.wait(c, POLLOUT),
                Ev(POLLOUT),
            );
            cs.push(c);
        }
        let mut ss = Vec::new();
        for i in 0..4 {
            let s = t.iaccept(l);
            t.rec(&format!("{f} accepted #{i}"), t.ipeer(s));
            ss.push(s);
        }
        t.nonblock(l, true);
        t.want(
            &format!("{f} none left"),
            t.api.accept4(l, None, None, 0),
            Err(Errno::EAGAIN),
        );
        for fd in cs.into_iter().chain(ss).chain([l]) {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_data_sent_before_accept_waits, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        let c = t.iclient(d, lp);
        t.want(
            &format!("{f} send before accept"),
            t.isend(c, b"early"),
            Ok(5),
        );
        t.ok("shutdown", t.api.shutdown(c, SHUT_WR));
        let s = t.iaccept(l);
        t.want(
            &format!("{f} FIONREAD"),
            {
                t.wait(s, POLLRDHUP);
                t.nread(s)
            },
            Ok(5),
        );
        t.want(
            &format!("{f} read"),
            t.irecv(s, 16),
            Ok(B(b"early".to_vec())),
        );
        t.want(&format!("{f} then EOF"), t.irecv(s, 16), Ok(B(vec![])));
        for fd in [l, c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_large_transfer_both_ways, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        let data: Vec<u8> = (0..400_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let got = std::thread::scope(|sc| {
            let r = sc.spawn(|| t.recv_exact(s, data.len()));
            t.send_all(c, &data);
            r.join().unwrap()
        });
        t.want(&format!("{f} bytes arrive in order"), got.0 == data, true);
        let back = std::thread::scope(|sc| {
            let r = sc.spawn(|| t.recv_exact(c, data.len()));
            t.send_all(s, &data);
            r.join().unwrap()
        });
        t.want(&format!("{f} and back"), back.0 == data, true);
        t.ok("close", t.api.close(c));
        t.want(&format!("{f} EOF"), t.irecv(s, 16), Ok(B(vec![])));
        t.ok("close", t.api.close(s));
    }
});

scenario!(tcp_refused_blocking, |t| {
    for d in FAMS {
        let f = fam(d);
        // A port held by a socket that does not listen: nothing takes connections there.
        let (holder, hp) = t.ibound(d, SOCK_STREAM, "H");
        let c = t.isock(d, SOCK_STREAM);
        t.timeout(c, SO_SNDTIMEO, SAFETY_MS as i64);
        t.want(
            &format!("{f} connect"),
            t.api.connect(c, &lo_at(d, hp)),
            Err(Errno::ECONNREFUSED),
        );
        t.want(&format!("{f} SO_ERROR after"), t.getint(c, SO_ERROR), Ok(0));
        t.rec(&format!("{f} peer"), t.ipeer(c));
        t.rec(
            &format!("{f} poll"),
            t.poll1(c, POLLIN | POLLOUT | POLLRDHUP),
        );
        t.want(&format!("{f} send"), t.isend(c, b"x"), Err(Errno::EPIPE));
        t.want(&format!("{f} recv"), t.recv(c, 4), Err(Errno::ENOTCONN));
        // Port 0 takes no connections either.
        t.want(
            &format!("{f} to port 0"),
            t.api.connect(c, &lo_at(d, 0)),
            Err(Errno::ECONNREFUSED),
        );
        // The same socket may try again, and get in.
        let (l, lp) = t.ilistener(d, 4, "L");
        t.want(
            &format!("{f} again"),
            t.api.connect(c, &lo_at(d, lp)),
            Ok(()),
        );
        t.rec(&format!("{f} peer now"), t.ipeer(c));
        let s = t.iaccept(l);
        for fd in [holder, c, l, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_refused_nonblocking_reports_in_so_error, |t| {
    for d in FAMS {
        let f = fam(d);
        let (holder, hp) = t.ibound(d, SOCK_STREAM, "H");
        let c = t.isock(d, SOCK_STREAM | SOCK_NONBLOCK);
        let r = t.api.connect(c, &lo_at(d, hp));
        // Linux always answers a nonblocking TCP connect with EINPROGRESS (the reset is
        // handled after the call has looked at the state).
        t.want(&format!("{f} connect"), r, Err(Errno::EINPROGRESS));
        t.rec(&format!("{f} poll"), t.wait(c, POLLOUT));
        t.want(
            &format!("{f} SO_ERROR"),
            t.getint(c, SO_ERROR),
            Ok(Errno::ECONNREFUSED.raw()),
        );
        t.want(&format!("{f} SO_ERROR again"), t.getint(c, SO_ERROR), Ok(0));
        t.rec(
            &format!("{f} poll after SO_ERROR"),
            t.poll1(c, POLLIN | POLLOUT),
        );
        for fd in [holder, c] {
            t.ok("close", t.api.close(fd));
        }
        // Not read through SO_ERROR: the next connect call reports it.
        let (holder, hp) = t.ibound(d, SOCK_STREAM, "H");
        let c = t.isock(d, SOCK_STREAM | SOCK_NONBLOCK);
        t.want(
            &format!("{f} connect 2"),
            t.api.connect(c, &lo_at(d, hp)),
            Err(Errno::EINPROGRESS),
        );
        t.wait(c, POLLOUT);
        t.want(
            &format!("{f} second connect reports"),
            t.api.connect(c, &lo_at(d, hp)),
            Err(Errno::ECONNREFUSED),
        );
        t.want(&format!("{f} SO_ERROR then"), t.getint(c, SO_ERROR), Ok(0));
        for fd in [holder, c] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_nonblocking_connect_completes, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        let c = t.isock(d, SOCK_STREAM | SOCK_NONBLOCK);
        t.want(
            &format!("{f} connect"),
            t.api.connect(c, &lo_at(d, lp)),
            Err(Errno::EINPROGRESS),
        );
        t.want(&format!("{f} writable"), t.wait(c, POLLOUT), Ev(POLLOUT));
        t.want(&format!("{f} SO_ERROR"), t.getint(c, SO_ERROR), Ok(0));
        // The connect after it finished reports success once, then EISCONN.
        t.want(
            &format!("{f} connect 2"),
            t.api.connect(c, &lo_at(d, lp)),
            Ok(()),
        );
        t.want(
            &format!("{f} connect 3"),
            t.api.connect(c, &lo_at(d, lp)),
            Err(Errno::EISCONN),
        );
        t.label(t.iport(c), "C");
        let s = t.iaccept(l);
        t.rec(&format!("{f} accepted peer"), t.ipeer(s));
        t.want(&format!("{f} data"), t.isend(c, b"nb"), Ok(2));
        t.want(
            &format!("{f} arrives"),
            t.irecv(s, 8),
            Ok(B(b"nb".to_vec())),
        );
        for fd in [l, c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_connect_on_connected_and_listening, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        let c = t.iclient(d, lp);
        let s = t.iaccept(l);
        t.want(
            &format!("{f} connected again"),
            t.api.connect(c, &lo_at(d, lp)),
            Err(Errno::EISCONN),
        );
        t.want(
            &format!("{f} accepted socket"),
            t.api.connect(s, &lo_at(d, lp)),
            Err(Errno::EISCONN),
        );
        t.rec(
            &format!("{f} on the listener"),
            t.api.connect(l, &lo_at(d, lp)),
        );
        t.want(
            &format!("{f} bind connected"),
            t.api.bind(c, &lo_at(d, 0)),
            Err(Errno::EINVAL),
        );
        t.want(
            &format!("{f} listen connected"),
            t.api.listen(c, 4),
            Err(Errno::EINVAL),
        );
        for fd in [l, c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_reset_by_close_with_unread_data, |t| {
    for d in FAMS {
        let f = fam(d);
        // The peer reads: ECONNRESET once, then end of file; writes EPIPE.
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} send"), t.isend(c, b"unread"), Ok(6));
        t.wait(s, POLLIN);
        t.ok("close", t.api.close(s));
        t.rec(&format!("{f} poll"), t.wait(c, POLLRDHUP));
        t.want(&format!("{f} recv"), t.recv(c, 8), Err(Errno::ECONNRESET));
        t.want(&format!("{f} recv again"), t.recv(c, 8), Ok(B(vec![])));
        t.want(&format!("{f} send"), t.isend(c, b"x"), Err(Errno::EPIPE));
        t.want(&format!("{f} SO_ERROR"), t.getint(c, SO_ERROR), Ok(0));
        t.rec(&format!("{f} peer"), t.ipeer(c));
        t.rec(
            &format!("{f} poll at the end"),
            t.poll1(c, POLLIN | POLLOUT | POLLRDHUP),
        );
        t.ok("close", t.api.close(c));
        // The peer writes first: ECONNRESET once, then EPIPE.
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} send 2"), t.isend(c, b"unread"), Ok(6));
        t.wait(s, POLLIN);
        t.ok("close", t.api.close(s));
        t.wait(c, POLLRDHUP);
        t.want(
            &format!("{f} write"),
            t.isend(c, b"x"),
            Err(Errno::ECONNRESET),
        );
        t.want(
            &format!("{f} write again"),
            t.isend(c, b"x"),
            Err(Errno::EPIPE),
        );
        t.want(&format!("{f} read"), t.recv(c, 8), Ok(B(vec![])));
        t.ok("close", t.api.close(c));
        // SO_ERROR takes it.
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} send 3"), t.isend(c, b"unread"), Ok(6));
        t.wait(s, POLLIN);
        t.ok("close", t.api.close(s));
        t.wait(c, POLLRDHUP);
        t.want(
            &format!("{f} SO_ERROR 3"),
            t.getint(c, SO_ERROR),
            Ok(Errno::ECONNRESET.raw()),
        );
        t.want(&format!("{f} read 3"), t.recv(c, 8), Ok(B(vec![])));
        t.ok("close", t.api.close(c));
    }
});

scenario!(tcp_linger_zero_resets, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} set linger"), t.set_linger(s, 1, 0), Ok(()));
        t.want(&format!("{f} linger"), t.linger(s), Ok((1, 0)));
        t.ok("close", t.api.close(s));
        t.rec(&format!("{f} poll"), t.wait(c, POLLRDHUP));
        t.want(&format!("{f} recv"), t.recv(c, 8), Err(Errno::ECONNRESET));
        t.want(&format!("{f} send"), t.isend(c, b"x"), Err(Errno::EPIPE));
        t.ok("close", t.api.close(c));
    }
});

scenario!(tcp_half_close, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} send"), t.isend(c, b"last words"), Ok(10));
        t.want(
            &format!("{f} shutdown WR"),
            t.api.shutdown(c, SHUT_WR),
            Ok(()),
        );
        t.want(
            &format!("{f} send after"),
            t.isend(c, b"x"),
            Err(Errno::EPIPE),
        );
        t.rec(&format!("{f} peer poll"), t.wait(s, POLLRDHUP));
        t.want(
            &format!("{f} peer reads"),
            t.irecv(s, 64),
            Ok(B(b"last words".to_vec())),
        );
        t.want(&format!("{f} peer EOF"), t.irecv(s, 64), Ok(B(vec![])));
        t.want(&format!("{f} peer EOF again"), t.recv(s, 64), Ok(B(vec![])));
        t.want(
            &format!("{f} peer writes back"),
            t.isend(s, b"reply"),
            Ok(5),
        );
        t.want(
            &format!("{f} closer reads"),
            t.irecv(c, 64),
            Ok(B(b"reply".to_vec())),
        );
        t.rec(
            &format!("{f} own poll"),
            t.poll1(c, POLLIN | POLLOUT | POLLRDHUP),
        );
        t.want(
            &format!("{f} peer shuts too"),
            t.api.shutdown(s, SHUT_WR),
            Ok(()),
        );
        t.rec(&format!("{f} own poll then"), t.wait(c, POLLRDHUP));
        t.want(&format!("{f} closer EOF"), t.irecv(c, 64), Ok(B(vec![])));
        t.rec(&format!("{f} shutdown again"), t.api.shutdown(c, SHUT_WR));
        t.rec(&format!("{f} names stay"), (t.iname(c), t.ipeer(c)));
        for fd in [c, s] {
            t.ok("close", t.api.close(fd));
        }
    }
});

scenario!(tcp_peer_closed_reads_eof, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.want(&format!("{f} send"), t.isend(s, b"bye"), Ok(3));
        t.ok("close", t.api.close(s));
        t.rec(&format!("{f} poll"), t.wait(c, POLLRDHUP));
        t.want(&format!("{f} data"), t.irecv(c, 8), Ok(B(b"bye".to_vec())));
        t.want(&format!("{f} EOF"), t.irecv(c, 8), Ok(B(vec![])));
        t.want(
            &format!("{f} shutdown WR"),
            t.api.shutdown(c, SHUT_WR),
            Ok(()),
        );
        t.ok("close", t.api.close(c));
    }
});

scenario!(tcp_write_to_closed_peer_is_reset, |t| {
    for d in FAMS {
        let f = fam(d);
        let (c, s) = t.tcp_pair(d);
        t.ok("close", t.api.close(s));
        t.wait(c, POLLRDHUP);
        t.want(&format!("{f} EOF"), t.recv(c, 8), Ok(B(vec![])));
        // The first write is taken; the closed end answers it with a reset.
        t.want(&format!("{f} write"), t.isend(c, b"anyone?"), Ok(7));
        t.rec(&format!("{f} poll"), t.wait(c, POLLERR));
        // A reset in CLOSE-WAIT is EPIPE (Linux's tcp_reset).
        t.want(
            &format!("{f} write again"),
            t.isend(c, b"x"),
            Err(Errno::EPIPE),
        );
        t.want(
            &format!("{f} and again"),
            t.isend(c, b"x"),
            Err(Errno::EPIPE),
        );
        t.want(&format!("{f} read"), t.recv(c, 8), Ok(B(vec![])));
        t.ok("close", t.api.close(c));
    }
});

scenario!(tcp_listener_close_resets_unaccepted, |t| {
    for d in FAMS {
        let f = fam(d);
        let (l, lp) = t.ilistener(d, 4, "L");
        let c1 = t.iclient(d, lp);
        let c2 = t.iclient(d, lp);
        t.want(&format!("{f} c2 sends"), t.isend(c2, b"queued"), Ok(6));
        t.wait(l, POLLIN);
        t.ok("close", t.api.close(l));
        for (n, c) in [("c1", c1), ("c2", c2)] {
            t.rec(&format!("{f} {n} poll"), t.wait(c, POLLRDHUP));
            t.want(
                &format!("{f} {n} recv"),
                t.recv(c, 8),
                Err(Errno::ECONNRESET),
            );
            t.want(&format!("{f} {n} recv again"), t.recv(c, 8), Ok(B(vec![])));
            t.ok("close", t.api.close(c));
        }
    }
});
