//! The descriptor table full (`EMFILE`), Linux against ksock.
//!
//! Linux's limit is the process's `RLIMIT_NOFILE`, so this file is its own test binary
//! with a single test: it lowers the limit for the process and runs its scenarios one
//! after the other, where no other test can take descriptors meanwhile.

// Shared with the differential suite; this binary uses a part of them.
#[allow(dead_code, unused_macros, unused_imports)]
#[path = "differential/api.rs"]
mod api;
#[allow(dead_code, unused_macros, unused_imports)]
#[path = "differential/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "differential/ksock_impl.rs"]
mod ksock_impl;
#[allow(dead_code)]
#[path = "differential/linux.rs"]
mod linux;

use harness::{B, T, run_on};
use ksock::Errno;
use ksock_posix::consts::*;

/// Takes descriptors until the table is full; returns them.
fn fill_table(t: &T<'_>) -> Vec<i32> {
    let mut v = Vec::new();
    loop {
        match t.api.socket(AF_UNIX, SOCK_DGRAM, 0) {
            Ok(fd) => v.push(fd),
            Err(e) if e == Errno::EMFILE => return v,
            Err(e) => panic!("filling the table: {e:?}"),
        }
        assert!(v.len() < 10_000, "the table never filled");
    }
}

fn close_all(t: &T<'_>, fds: Vec<i32>) {
    for fd in fds {
        t.ok("close", t.api.close(fd));
    }
}

fn accept4_with_a_full_table(t: &T<'_>) {
    let l = t.listener(SOCK_STREAM, "l", 4);
    let c = t.sock(SOCK_STREAM);
    t.ok("connect", t.api.connect(c, &t.addr("l")));
    t.ok("send", t.send(c, b"waiting"));
    let o = t.ok("other fd", t.api.other_fd());
    let mut fill = fill_table(t);
    // SPEC section 6: 2. flags before 3. the reservation; 3. the reservation before
    // 4. ENOTSOCK; a full table dequeues nothing.
    t.want(
        "bad flags",
        t.api.accept4(l, None, None, 0x10).map(drop),
        Err(Errno::EINVAL),
    );
    t.want(
        "not a socket",
        t.api.accept4(o, None, None, 0).map(drop),
        Err(Errno::EMFILE),
    );
    t.want(
        "full",
        t.api.accept4(l, None, None, 0).map(drop),
        Err(Errno::EMFILE),
    );
    t.want(
        "bad fd",
        t.api.accept4(-1, None, None, 0).map(drop),
        Err(Errno::EBADF),
    );
    t.want("still waiting", t.poll1(l, POLLIN), harness::Ev(POLLIN));
    t.want("client unaware", t.recv(c, 8), Err(Errno::EAGAIN));
    let last = fill.pop().unwrap_or(-1);
    t.ok("close one", t.api.close(last));
    let s = t.api.accept4(l, None, None, SOCK_NONBLOCK);
    t.want(
        "accepted into the freed slot",
        s.map(|fd| fd == last),
        Ok(true),
    );
    t.want(
        "its data",
        t.recv(s.unwrap_or(-1), 16),
        Ok(B(b"waiting".to_vec())),
    );
    t.want(
        "full again",
        t.api.accept4(l, None, None, SOCK_NONBLOCK).map(drop),
        Err(Errno::EMFILE),
    );
    close_all(t, fill);
}

fn creation_with_a_full_table(t: &T<'_>) {
    let keep = t.sock(SOCK_STREAM);
    let mut fill = fill_table(t);
    let a = t.api;
    t.want(
        "socket",
        a.socket(AF_UNIX, SOCK_STREAM, 0).map(drop),
        Err(Errno::EMFILE),
    );
    // The socket's own checks come first (Linux creates, then installs).
    t.want(
        "socket bad flags",
        a.socket(AF_UNIX, SOCK_STREAM | 0x10, 0).map(drop),
        Err(Errno::EINVAL),
    );
    t.want(
        "socket bad domain",
        a.socket(46, SOCK_STREAM, 0).map(drop),
        Err(Errno::EAFNOSUPPORT),
    );
    t.want(
        "socket bad protocol",
        a.socket(AF_UNIX, SOCK_STREAM, 9).map(drop),
        Err(Errno::EPROTONOSUPPORT),
    );
    // socketpair reserves both descriptors first.
    t.want(
        "socketpair bad flags",
        a.socketpair(AF_UNIX, SOCK_STREAM | 0x10, 0).map(drop),
        Err(Errno::EINVAL),
    );
    t.want(
        "socketpair bad domain",
        a.socketpair(46, SOCK_STREAM, 0).map(drop),
        Err(Errno::EMFILE),
    );
    t.want("dup", a.dup(keep).map(drop), Err(Errno::EMFILE));
    t.want(
        "F_DUPFD",
        a.fcntl(keep, F_DUPFD, 0).map(drop),
        Err(Errno::EMFILE),
    );
    t.want("other file", a.other_fd().map(drop), Err(Errno::EMFILE));
    let last = fill.pop().unwrap_or(-1);
    t.ok("close one", t.api.close(last));
    // One slot: not enough for a pair, and the pair gives it back.
    t.want(
        "socketpair, one slot",
        a.socketpair(AF_UNIX, SOCK_STREAM, 0).map(drop),
        Err(Errno::EMFILE),
    );
    let s = a.socket(AF_UNIX, SOCK_STREAM, 0);
    t.want("the slot is still free", s.map(|fd| fd == last), Ok(true));
    fill.push(s.unwrap_or(-1));
    close_all(t, fill);
}

#[test]
fn descriptor_table_full() {
    // SAFETY: getrlimit/setrlimit with a pointer to a local struct; this binary's only test
    // runs alone, so no other thread is taking descriptors.
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(16) as u64;
    let low = libc::rlimit {
        rlim_cur: (open + 40).min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    type Scenario = fn(&T<'_>);
    let scenarios: [(&str, Scenario); 2] = [
        ("accept4_with_a_full_table", accept4_with_a_full_table),
        ("creation_with_a_full_table", creation_with_a_full_table),
    ];
    for (name, f) in scenarios {
        run_on(
            name,
            &linux::Linux::default(),
            &ksock_impl::Ksock::with_fd_limit(24),
            &f,
        );
    }
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);
}
