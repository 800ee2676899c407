//! The differential suite: every scenario runs on Linux (AF_UNIX with abstract names, so
//! no files; TCP and UDP over 127.0.0.1 and ::1) and on the ksock POSIX face (its inet
//! family on its own in-process loopback), and the two must see the same return values,
//! errno values, bytes, record boundaries, truncation flags, addresses and poll events. Where ksock
//! deliberately differs (SPEC says so), the scenario checks each side against its own
//! expected value and says why.

mod api;
mod harness;
mod inet_harness;
mod ksock_impl;
mod linux;

mod accept;
mod bind;
mod connect;
mod create;
mod dgram;
mod fdops;
mod inet_backlog;
mod inet_bind;
mod inet_data;
mod inet_opts;
mod inet_tcp;
mod inet_udp;
mod opts;
mod poll;
mod seqpacket;
mod stream;
mod wakeups;

#[test]
fn pollfd_is_laid_out_as_linux() {
    assert_eq!(
        std::mem::size_of::<api::PollFd>(),
        std::mem::size_of::<libc::pollfd>()
    );
    assert_eq!(
        std::mem::align_of::<api::PollFd>(),
        std::mem::align_of::<libc::pollfd>()
    );
}

#[test]
fn constants_are_linux() {
    use ksock_posix::consts::*;
    let pairs: &[(i64, i64)] = &[
        (AF_UNIX as i64, libc::AF_UNIX as i64),
        (AF_INET6 as i64, libc::AF_INET6 as i64),
        (SOCK_SEQPACKET as i64, libc::SOCK_SEQPACKET as i64),
        (SOCK_NONBLOCK as i64, libc::SOCK_NONBLOCK as i64),
        (SOCK_CLOEXEC as i64, libc::SOCK_CLOEXEC as i64),
        (MSG_PEEK as i64, libc::MSG_PEEK as i64),
        (MSG_TRUNC as i64, libc::MSG_TRUNC as i64),
        (MSG_DONTWAIT as i64, libc::MSG_DONTWAIT as i64),
        (MSG_WAITALL as i64, libc::MSG_WAITALL as i64),
        (MSG_EOR as i64, libc::MSG_EOR as i64),
        (MSG_NOSIGNAL as i64, libc::MSG_NOSIGNAL as i64),
        (MSG_CMSG_CLOEXEC as i64, libc::MSG_CMSG_CLOEXEC as i64),
        (MSG_ERRQUEUE as i64, libc::MSG_ERRQUEUE as i64),
        (SO_RCVTIMEO as i64, libc::SO_RCVTIMEO as i64),
        (SO_SNDTIMEO as i64, libc::SO_SNDTIMEO as i64),
        (SO_ACCEPTCONN as i64, libc::SO_ACCEPTCONN as i64),
        (SO_PROTOCOL as i64, libc::SO_PROTOCOL as i64),
        (SO_DOMAIN as i64, libc::SO_DOMAIN as i64),
        (SO_SNDLOWAT as i64, libc::SO_SNDLOWAT as i64),
        (F_DUPFD_CLOEXEC as i64, libc::F_DUPFD_CLOEXEC as i64),
        (O_NONBLOCK as i64, libc::O_NONBLOCK as i64),
        (O_APPEND as i64, libc::O_APPEND as i64),
        (O_ASYNC as i64, libc::O_ASYNC as i64),
        (O_DIRECT as i64, libc::O_DIRECT as i64),
        (O_NOATIME as i64, libc::O_NOATIME as i64),
        (FIONREAD as i64, libc::FIONREAD as i64),
        (FIONBIO as i64, libc::FIONBIO as i64),
        (POLLRDHUP as i64, libc::POLLRDHUP as i64),
        (POLLWRBAND as i64, libc::POLLWRBAND as i64),
    ];
    for (i, (a, b)) in pairs.iter().enumerate() {
        assert_eq!(a, b, "constant #{i}");
    }
}
