//! The `sock_*` functions of XNU's `kpi_socket.h`, one for one.

use crate::mbuf::Mbuf;
use crate::msg::{RecvMsg, SendMsg};
use crate::park::{block_on, deadline};
use crate::sock::{Kpi, Sock, SockUpcall, install_upcall};
use crate::sockaddr;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use ksock::opt::SockOpt;
use ksock::{
    Chain, ChainSink, Domain, Errno, Events, MsgFlags, OptVal, RecvInfo, RecvSink, Result,
    SOMAXCONN, Shutdown, SockAddr, SockType, Socket, State,
};
use ksock::{Gather, Scatter, SendBuf};

/// `FIONREAD` (Linux number): how many bytes a receive would return now.
pub const FIONREAD: u32 = 0x541B;
/// `FIONBIO` (Linux number): the argument, non-zero or zero, turns nonblocking mode on or off.
pub const FIONBIO: u32 = 0x5421;

/// `SHUT_RD`: no more receiving.
pub const SHUT_RD: i32 = 0;
/// `SHUT_WR`: no more sending; the peer reads end of file.
pub const SHUT_WR: i32 = 1;
/// `SHUT_RDWR`: both.
pub const SHUT_RDWR: i32 = 2;

/// XNU's `MSG_USEUPCALL` for [`sock_accept`]: *not* accepted (`ENOTSUP`).
///
/// SPEC section 5 lets `sock_accept` take `MSG_DONTWAIT` only and says the new socket does
/// not inherit the listener's upcall. Nothing is lost: an upcall is a value here, so a
/// listener's [`SockUpcall`], cloned, is passed as `sock_accept`'s `upcall` to share the
/// function and cookie explicitly.
pub const MSG_USEUPCALL: MsgFlags = MsgFlags::from_bits_retain(0x8000_0000);

/// Flags outside `allowed`: `ENOTSUP` (the number of `EOPNOTSUPP`, as the core says for
/// sends and receives).
fn check_flags(flags: MsgFlags, allowed: MsgFlags) -> Result<()> {
    if allowed.contains(flags) {
        Ok(())
    } else {
        Err(Errno::ENOTSUP)
    }
}

/// One attempt of a poll form that was given `MSG_DONTWAIT` (and so registers nothing).
fn once<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<Result<T>>) -> Result<T> {
    match f(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(Errno::EWOULDBLOCK),
    }
}

fn nonblocking(s: &Socket, flags: MsgFlags) -> bool {
    flags.contains(MsgFlags::DONTWAIT) || s.is_nonblocking()
}

/// Creates a socket (`sock_socket`), with `upcall` if given.
///
/// Unknown domain: `EAFNOSUPPORT`. A type the family does not have: `ESOCKTNOSUPPORT` (a
/// type number past `SOCK_MAX` cannot be made into a [`SockType`]: `EINVAL`). A protocol
/// the family does not know: `EPROTONOSUPPORT`; one it knows for another type:
/// `EPROTOTYPE`, as the family reports it (the local family takes protocol 0 or `PF_LOCAL`
/// with every type, so it never does).
pub fn sock_socket(
    kpi: &Kpi,
    domain: Domain,
    ty: SockType,
    protocol: i32,
    upcall: Option<SockUpcall>,
) -> Result<Sock> {
    let s = kpi.stack().socket(domain, ty, protocol)?;
    if let Some(up) = upcall {
        install_upcall(&s, up, kpi.park())?;
    }
    Ok(Sock::new(s, kpi.park().clone()))
}

/// Accepts a connection (`sock_accept`): the new socket and the full length of its peer's
/// address, which is written to `from` as far as it fits.
///
/// `flags` may hold `MSG_DONTWAIT` only (anything else, [`MSG_USEUPCALL`] included:
/// `ENOTSUP`, checked first). Not a listener: `EINVAL` (datagram sockets: `EOPNOTSUPP`). No
/// connection waiting and `MSG_DONTWAIT` or a nonblocking listener: `EWOULDBLOCK`; otherwise
/// it waits (up to `SO_RCVTIMEO`, then `EWOULDBLOCK`).
///
/// The new socket is nonblocking if the listener is (the call's `MSG_DONTWAIT` does not
/// count) and gets `upcall`, not the listener's. If data, end of file or an error arrived
/// before the upcall was set, the upcall runs once before this returns, so an upcall-driven
/// server misses nothing.
pub fn sock_accept(
    so: &Sock,
    from: Option<&mut [u8]>,
    flags: MsgFlags,
    upcall: Option<SockUpcall>,
) -> Result<(Sock, usize)> {
    check_flags(flags, MsgFlags::DONTWAIT)?;
    let s = so.sock()?;
    let listener_nonblocking = s.is_nonblocking();
    let (new, peer) = if nonblocking(s, flags) {
        s.try_accept()?
    } else {
        let park = &**so.park();
        let until = deadline(park, s.options()?.rcvtimeo());
        block_on(park, until, |cx| s.poll_accept(cx))?
    };
    new.set_nonblocking(listener_nonblocking)?;
    let len = sockaddr::encode(new.domain(), &peer, from.unwrap_or_default());
    if let Some(up) = upcall {
        install_upcall(&new, up, so.park())?;
        let early = new.readiness() & (Events::IN | Events::ERR | Events::HUP | Events::RDHUP);
        if !early.is_empty() {
            new.core().notify(early);
        }
    }
    Ok((Sock::new(new, so.park().clone()), len))
}

/// Binds to a local address (`sock_bind`). Name taken: `EADDRINUSE`; already bound:
/// `EINVAL`; a name of the wrong length: `EINVAL` / `ENAMETOOLONG` (from [`SockAddr`]).
/// [`SockAddr::Unnamed`] is no local name: `EINVAL`. The KPI offers no autobind
/// ([`Socket::autobind`]), as XNU has none: its `unix_bind` refuses an empty `sun_path`.
pub fn sock_bind(so: &Sock, to: &SockAddr) -> Result<()> {
    so.sock()?.bind(to)
}

/// Gives up the reference made by [`sock_socket`] or [`sock_accept`] (`sock_close`).
///
/// The socket closes now unless [`sock_retain`] made other references: then it stays open
/// and fully usable through them (XNU's `soclose` of a retained socket drops only the
/// closer's reference) and closes at the last [`sock_release`]. Closing frees its name,
/// gives its peer end of file (or `ECONNRESET` if it left data unread), resets the
/// connections still waiting on a listener, runs the upcall one last time and removes the
/// socket from the stack's table.
pub fn sock_close(so: Sock) {
    drop(so)
}

/// Connects (`sock_connect`); for datagram sockets, sets the default peer.
///
/// `flags` may hold `MSG_DONTWAIT` only (`ENOTSUP` otherwise). With it, or on a nonblocking
/// socket, a connect that cannot finish at once (the listener's backlog is full) returns
/// `EINPROGRESS` and goes on; the upcall fires when it completes or fails, and
/// [`sock_connectwait`] or `SO_ERROR` (read and cleared) tells which. A connect that
/// finishes at once returns `Ok` and fires the upcall too. Meanwhile another connect is
/// `EALREADY`; once connected, `EISCONN`. Without it the call waits for the outcome (up to
/// `SO_SNDTIMEO`: then `EINPROGRESS`, the connect going on).
///
/// Other errors as the core: `ECONNREFUSED` (no listener by that name), `EPROTOTYPE`
/// (another type), `EINVAL` (on a listener).
pub fn sock_connect(so: &Sock, to: &SockAddr, flags: MsgFlags) -> Result<()> {
    check_flags(flags, MsgFlags::DONTWAIT)?;
    let s = so.sock()?;
    match s.start_connect(to) {
        Ok(()) => {
            s.core().notify(Events::OUT);
            Ok(())
        }
        Err(e) if e == Errno::EINPROGRESS && !nonblocking(s, flags) => {
            let park = &**so.park();
            let until = deadline(park, s.options()?.sndtimeo());
            match block_on(park, until, |cx| s.poll_connect_done(cx)) {
                Err(e) if e == Errno::EWOULDBLOCK => Err(Errno::EINPROGRESS),
                r => r,
            }
        }
        Err(e) => Err(e),
    }
}

/// Waits up to `timeout` for a connect started with `MSG_DONTWAIT` (`sock_connectwait`).
///
/// `Ok` once connected; the connect's error if it failed (read and cleared, like
/// `SO_ERROR`); `EINPROGRESS` if it still goes on when the time is up; `EINVAL` if no
/// connect was started (or its error was already read).
pub fn sock_connectwait(so: &Sock, timeout: Duration) -> Result<()> {
    let s = so.sock()?;
    let park = &**so.park();
    match block_on(park, deadline(park, Some(timeout)), |cx| {
        s.poll_connect_done(cx)
    }) {
        Err(e) if e == Errno::EWOULDBLOCK => Err(Errno::EINPROGRESS),
        Err(e) if e == Errno::ENOTCONN => Err(Errno::EINVAL),
        r => r,
    }
}

/// Writes the peer's address to `name` as far as it fits and returns its full length
/// (`sock_getpeername`). Not connected: `ENOTCONN`.
pub fn sock_getpeername(so: &Sock, name: &mut [u8]) -> Result<usize> {
    let s = so.sock()?;
    let a = s.peer_addr()?;
    Ok(sockaddr::encode(s.domain(), &a, name))
}

/// Writes the local address to `name` as far as it fits and returns its full length
/// (`sock_getsockname`); an unbound socket's address is its family alone (2 bytes).
pub fn sock_getsockname(so: &Sock, name: &mut [u8]) -> Result<usize> {
    let s = so.sock()?;
    let a = s.local_addr()?;
    Ok(sockaddr::encode(s.domain(), &a, name))
}

/// Reads an option (`sock_getsockopt`), with Linux numbers (`SOL_SOCKET` = 1; see
/// [`SockOpt`]). Unknown level or option: `ENOPROTOOPT`. `SO_ERROR` is read and cleared.
pub fn sock_getsockopt(so: &Sock, level: i32, optname: i32) -> Result<OptVal> {
    let s = so.sock()?;
    s.get_option(SockOpt::from_raw(level, optname)?)
        .map_err(unknown_level)
}

/// A family without options at a level says `EOPNOTSUPP` (Linux's word for it); the
/// kernel face, like XNU's `sosetopt`, calls every unknown option `ENOPROTOOPT`.
fn unknown_level(e: Errno) -> Errno {
    if e == Errno::EOPNOTSUPP {
        Errno::ENOPROTOOPT
    } else {
        e
    }
}

/// Sets an option (`sock_setsockopt`). Unknown or read-only: `ENOPROTOOPT`; a value of the
/// wrong kind (an integer for a timeout): `EINVAL`.
pub fn sock_setsockopt(so: &Sock, level: i32, optname: i32, val: OptVal) -> Result<()> {
    let s = so.sock()?;
    s.set_option(SockOpt::from_raw(level, optname)?, val)
        .map_err(unknown_level)
}

/// The domain, type and protocol the socket was made with (`sock_gettype`); known even
/// once it has closed.
pub fn sock_gettype(so: &Sock) -> (Domain, SockType, i32) {
    let i = so.ident();
    (i.domain, i.ty, i32::from(i.protocol))
}

/// `sock_ioctl`: [`FIONBIO`] sets nonblocking mode from `*arg` (non-zero: on);
/// [`FIONREAD`] stores in `*arg` how many bytes are waiting (for a stream or seqpacket
/// socket every unread byte, for datagrams the next record's length; on a listener:
/// `EINVAL`).
/// Another request: `ENOTTY`.
pub fn sock_ioctl(so: &Sock, request: u32, arg: &mut i32) -> Result<()> {
    let s = so.sock()?;
    match request {
        FIONBIO => s.set_nonblocking(*arg != 0),
        FIONREAD => {
            if s.state() == State::Listening {
                return Err(Errno::EINVAL);
            }
            *arg = i32::try_from(s.nread()?).unwrap_or(i32::MAX);
            Ok(())
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// Whether the socket is connected (`sock_isconnected`): connected, possibly shut down in
/// one direction or left by its peer; for datagram sockets, having a default peer.
pub fn sock_isconnected(so: &Sock) -> bool {
    so.sock()
        .is_ok_and(|s| matches!(s.state(), State::Connected | State::Closing))
}

/// Whether calls on the socket never wait (`sock_isnonblocking`); set with [`FIONBIO`].
pub fn sock_isnonblocking(so: &Sock) -> bool {
    so.sock().is_ok_and(|s| s.is_nonblocking())
}

/// Listens (`sock_listen`), or updates a listener's backlog. The backlog is clamped to
/// 1..=[`SOMAXCONN`]; a negative one means [`SOMAXCONN`] (as XNU and Linux). Not bound:
/// `EINVAL`; datagram sockets: `EOPNOTSUPP`.
pub fn sock_listen(so: &Sock, backlog: i32) -> Result<()> {
    let backlog = usize::try_from(backlog).unwrap_or(SOMAXCONN);
    so.sock()?.listen(backlog)
}

/// Receives into `msg.iov` (`sock_receive`); returns the byte count (0 at end of file), or
/// with `MSG_TRUNC` in `flags` a record's full length, as Linux's `recvmsg` does.
///
/// `flags`: `MSG_PEEK`, `MSG_WAITALL` (stream: wait for all of `iov`, or end of file, an
/// error, the timeout), `MSG_DONTWAIT`, `MSG_TRUNC`; others `ENOTSUP`. No buffer in `iov`,
/// or an empty first one: `EINVAL` (as XNU). A blocking stream receive waits for
/// `SO_RCVLOWAT` bytes; if it stops early (timeout, `EINTR`, an error) after some bytes, it
/// returns them, and the error, if any, is kept for the next call.
///
/// Out: `msg.flags` (`MSG_TRUNC` if a record was cut, its rest discarded; `MSG_EOR`),
/// `msg.name` and `msg.namelen` (the sender's address).
pub fn sock_receive(so: &Sock, msg: &mut RecvMsg<'_, '_>, flags: MsgFlags) -> Result<usize> {
    let s = so.sock()?;
    check_flags(flags, MsgFlags::RECV)?;
    if msg.iov.first().is_none_or(|b| b.is_empty()) {
        return Err(Errno::EINVAL);
    }
    let info = recv(so, s, &mut Scatter::new(&mut *msg.iov), flags)?;
    fill_msg(s.domain(), msg, &info);
    Ok(if flags.contains(MsgFlags::TRUNC) {
        info.full_len
    } else {
        info.len
    })
}

/// Receives up to `maxlen` bytes as an mbuf chain (`sock_receivembuf`) that shares the
/// sender's memory and belongs to the caller; its length is the byte count (0 at end of
/// file, or an empty record).
///
/// `maxlen` of 0, or a `msg` with buffers in `iov`: `EINVAL` (as XNU). Flags and waiting as
/// [`sock_receive`]; `msg`, if given, receives the flags and the sender's address.
pub fn sock_receivembuf(
    so: &Sock,
    msg: Option<&mut RecvMsg<'_, '_>>,
    maxlen: usize,
    flags: MsgFlags,
) -> Result<Mbuf> {
    let s = so.sock()?;
    check_flags(flags, MsgFlags::RECV)?;
    if maxlen == 0 || msg.as_ref().is_some_and(|m| !m.iov.is_empty()) {
        return Err(Errno::EINVAL);
    }
    let mut chain = Chain::new();
    let info = recv(so, s, &mut ChainSink::new(&mut chain, maxlen), flags)?;
    if let Some(m) = msg {
        fill_msg(s.domain(), m, &info);
    }
    Ok(Mbuf::from(chain))
}

fn fill_msg(domain: Domain, msg: &mut RecvMsg<'_, '_>, info: &RecvInfo) {
    msg.flags = info.flags;
    msg.namelen = sockaddr::encode_sender(
        domain,
        &info.from,
        msg.name.as_deref_mut().unwrap_or_default(),
    );
}

/// The receive loop shared by [`sock_receive`] and [`sock_receivembuf`].
fn recv(so: &Sock, s: &Socket, dst: &mut dyn RecvSink, flags: MsgFlags) -> Result<RecvInfo> {
    if nonblocking(s, flags) {
        return once(|cx| s.poll_recvmsg(cx, dst, flags | MsgFlags::DONTWAIT));
    }
    let park = &**so.park();
    let opts = s.options()?;
    let until = deadline(park, opts.rcvtimeo());
    let step =
        |dst: &mut dyn RecvSink| block_on(park, until, |cx| s.poll_recvmsg(cx, &mut *dst, flags));
    if s.ty() != SockType::STREAM || flags.contains(MsgFlags::PEEK) {
        return step(dst);
    }
    let room = dst.room();
    let target = if flags.contains(MsgFlags::WAITALL) {
        room
    } else {
        opts.rcvlowat().min(room)
    }
    .max(1);
    let mut total = RecvInfo::default();
    loop {
        match step(&mut *dst) {
            Ok(info) => {
                total.len += info.len;
                total.full_len += info.len;
                total.from = info.from;
                if info.eof || total.len >= target || dst.room() == 0 {
                    total.eof = info.eof && total.len == 0;
                    return Ok(total);
                }
            }
            Err(e) if total.len > 0 => {
                if e != Errno::EWOULDBLOCK && e != Errno::EINTR {
                    s.core().stash_error(e);
                }
                return Ok(total);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends the bytes of `msg.iov` (`sock_send`), to `msg.name` if given (unconnected
/// datagrams); returns the byte count.
///
/// `flags`: `MSG_DONTWAIT`, `MSG_EOR`, `MSG_NOSIGNAL`; others `ENOTSUP`. No buffer in `iov`:
/// `EINVAL` (as XNU). For records (seqpacket, datagram) all of `iov` is one record, sent
/// whole or not at all (larger than the send buffer: `EMSGSIZE`). A stream send that could
/// send only part (nonblocking, or stopped by the timeout or `EINTR` after some bytes)
/// returns that part: success with the partial count.
pub fn sock_send(so: &Sock, msg: &SendMsg<'_>, flags: MsgFlags) -> Result<usize> {
    let s = so.sock()?;
    check_flags(flags, MsgFlags::SEND)?;
    if msg.iov.is_empty() {
        return Err(Errno::EINVAL);
    }
    send(
        so,
        s,
        SendBuf::Copy(&mut Gather::new(msg.iov)),
        msg.name,
        flags,
    )
}

/// Sends an mbuf chain (`sock_sendmbuf`) without copying it, to `to` if given.
///
/// The chain is consumed whatever happens: its slices move into the peer's queue, and
/// whatever was not sent (a partial stream send, or everything on an error) is dropped
/// before this returns. Flags and results as [`sock_send`].
pub fn sock_sendmbuf(
    so: &Sock,
    to: Option<&SockAddr>,
    data: Mbuf,
    flags: MsgFlags,
) -> Result<usize> {
    let mut chain = data.into_chain();
    let s = so.sock()?;
    check_flags(flags, MsgFlags::SEND)?;
    send(so, s, SendBuf::Share(&mut chain), to, flags)
}

/// The send loop shared by [`sock_send`] and [`sock_sendmbuf`].
fn send(
    so: &Sock,
    s: &Socket,
    mut src: SendBuf<'_>,
    to: Option<&SockAddr>,
    flags: MsgFlags,
) -> Result<usize> {
    if nonblocking(s, flags) {
        return once(|cx| s.poll_send(cx, src.reborrow(), to, flags | MsgFlags::DONTWAIT));
    }
    let park = &**so.park();
    let until = deadline(park, s.options()?.sndtimeo());
    let step = |src: &mut SendBuf<'_>| {
        block_on(park, until, |cx| s.poll_send(cx, src.reborrow(), to, flags))
    };
    if s.ty() != SockType::STREAM {
        return step(&mut src);
    }
    let mut sent = 0;
    loop {
        match step(&mut src) {
            Ok(n) => {
                sent += n;
                if src.remaining() == 0 {
                    return Ok(sent);
                }
            }
            Err(_) if sent > 0 => return Ok(sent),
            Err(e) => return Err(e),
        }
    }
}

/// Sets or clears the privileged bit (`sock_setpriv`, XNU `SS_PRIV`).
pub fn sock_setpriv(so: &Sock, on: bool) -> Result<()> {
    so.sock()?.set_priv(on)
}

/// Shuts down a direction (`sock_shutdown`): [`SHUT_RD`], [`SHUT_WR`], [`SHUT_RDWR`].
/// Another `how`: `EINVAL`; not connected: `ENOTCONN`. The peer's upcall fires (it reads end
/// of file after `SHUT_WR`; its sends fail with `EPIPE` after `SHUT_RD`).
pub fn sock_shutdown(so: &Sock, how: i32) -> Result<()> {
    let s = so.sock()?;
    s.shutdown(Shutdown::from_raw(how)?)
}

/// Another reference to the socket (`sock_retain`): it keeps the socket open across
/// [`sock_close`] until it is given back with [`sock_release`] (or dropped).
pub fn sock_retain(so: &Sock) -> Sock {
    so.retain()
}

/// Gives back a reference made by [`sock_retain`] (`sock_release`). The last reference
/// closes the socket, as described at [`sock_close`].
pub fn sock_release(so: Sock) {
    drop(so)
}
