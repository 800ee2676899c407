//! A socket's attributes: its modes (nonblocking, privileged), owner, credentials, account
//! and upcall; its addresses, options and status.

use super::{Flags, Socket, SocketInfo};
use crate::account::Account;
use crate::addr::SockAddr;
use crate::errno::{Errno, Result};
use crate::event::{Events, Upcall};
use crate::opt::{OptVal, Options, SockOpt};
use crate::state::{Op, State};
use crate::types::Cred;
use alloc::sync::Arc;

impl Socket {
    /// The socket's own nonblocking mode (used by the blocking calls and by faces).
    pub fn is_nonblocking(&self) -> bool {
        self.core.lock.lock().flags.contains(Flags::NONBLOCK)
    }

    /// Sets the socket's nonblocking mode.
    pub fn set_nonblocking(&self, on: bool) -> Result<()> {
        self.with_locked(|l| {
            l.flags.set(Flags::NONBLOCK, on);
            Ok(())
        })
    }

    /// Whether the privileged bit (`SS_PRIV`) is set.
    pub fn is_priv(&self) -> bool {
        self.core.lock.lock().flags.contains(Flags::PRIV)
    }

    /// Sets or clears the privileged bit.
    pub fn set_priv(&self, on: bool) -> Result<()> {
        self.with_locked(|l| {
            l.flags.set(Flags::PRIV, on);
            Ok(())
        })
    }

    /// The owner (a uid, for faces that enforce ownership).
    pub fn owner(&self) -> Option<u32> {
        self.core.lock.lock().owner()
    }

    /// Records the credentials of the process acting on this socket. A connection made
    /// afterwards records them for the peer's [`peer_cred`](Socket::peer_cred): the
    /// client's at `connect`, the listener's at `listen`, a pair's creator's at
    /// `socketpair`, as Linux does.
    pub fn set_cred(&self, cred: Cred) -> Result<()> {
        self.with_locked(|l| {
            l.ext.get_or_insert_default().cred = Some(cred);
            Ok(())
        })
    }

    /// The credentials recorded with [`set_cred`](Socket::set_cred).
    pub fn cred(&self) -> Result<Option<Cred>> {
        self.with_locked(|l| Ok(l.cred()))
    }

    /// The peer's credentials (`SO_PEERCRED`): those recorded when the connection was made,
    /// or [`Cred::NONE`] when there are none (not connected, or no face recorded them).
    pub fn peer_cred(&self) -> Result<Cred> {
        self.with_locked(|l| Ok(l.proto.peer_cred().unwrap_or(Cred::NONE)))
    }

    /// Records the owner.
    pub fn set_owner(&self, uid: u32) -> Result<()> {
        self.with_locked(|l| {
            l.ext.get_or_insert_default().owner = Some(uid);
            Ok(())
        })
    }

    /// Attaches the socket to `account`: it counts as one of the account's sockets until it
    /// closes, its queued bytes are charged to it, and sockets accepted from it join it.
    /// At the account's socket limit: `EMFILE`; a socket that has an account already:
    /// `EINVAL`.
    pub fn set_account(&self, account: Arc<Account>) -> Result<()> {
        self.with_locked(|l| {
            let ext = l.ext.get_or_insert_default();
            if ext.account.is_some() {
                return Err(Errno::EINVAL);
            }
            account.open_socket()?;
            ext.account = Some(account);
            Ok(())
        })
    }

    /// The account the socket is attached to.
    pub fn account(&self) -> Option<Arc<Account>> {
        self.core.lock.lock().account()
    }

    /// Sets (or clears) the upcall: called with no lock held on every readiness change, and
    /// once with `HUP | NVAL` when the socket closes. Capture a [`WeakSocket`], not a
    /// [`Socket`], if it needs the socket: a handle inside the upcall would keep it open.
    pub fn set_upcall(&self, upcall: Option<Upcall>) -> Result<()> {
        let mut g = self.core.lock.lock();
        if g.released() {
            return Err(Errno::EBADF);
        }
        self.core.set_upcall_locked(&mut g, upcall);
        Ok(())
    }

    /// The bound address (`Unnamed` if none).
    pub fn local_addr(&self) -> Result<SockAddr> {
        self.with_locked(|l| Ok(l.proto.local_addr()))
    }

    /// The peer's address. Not connected: `ENOTCONN`.
    pub fn peer_addr(&self) -> Result<SockAddr> {
        self.with_locked(|l| l.proto.peer_addr().ok_or(Errno::ENOTCONN))
    }

    /// Reads an option. `SO_ERROR` returns the pending error number (0 if none) and clears it.
    pub fn get_option(&self, opt: SockOpt) -> Result<OptVal> {
        let (domain, ty, protocol) = (self.domain(), self.ty(), self.protocol());
        self.with_locked(|l| {
            Ok(match opt {
                SockOpt::Error => {
                    let e = l.take_so_error().or_else(|| l.proto.take_error());
                    OptVal::Int(e.map_or(0, Errno::raw))
                }
                SockOpt::Type => OptVal::Int(ty.raw() as i32),
                SockOpt::Domain => OptVal::Int(domain.raw() as i32),
                SockOpt::Protocol => OptVal::Int(protocol as i32),
                SockOpt::AcceptConn => OptVal::Int((l.st.current() == State::Listening) as i32),
                SockOpt::PeerCred => OptVal::Cred(l.proto.peer_cred().unwrap_or(Cred::NONE)),
                SockOpt::Proto { level, name } => l.proto.get_option(level, name)?,
                _ => l.opts().get(opt)?,
            })
        })
    }

    /// Sets an option. Read-only options: `ENOPROTOOPT`; a value of the wrong kind: `EINVAL`.
    pub fn set_option(&self, opt: SockOpt, val: OptVal) -> Result<()> {
        if let SockOpt::Proto { level, name } = opt {
            return self.run(|l, cx| l.proto.set_option(cx, level, name, val));
        }
        self.run(|l, cx| {
            l.set_opt(opt, val)?;
            let mut cx = l.op_ctx(cx.me(), cx.deferred());
            l.proto.options_changed(&mut cx, opt);
            Ok(())
        })?;
        if opt == SockOpt::SndBuf {
            // A larger buffer may let a blocked writer go on.
            self.core.notify(Events::OUT);
        }
        Ok(())
    }

    /// Whether the socket's family has options at protocol `level` (see
    /// [`Protocol::option_level`]): faces that must check it before anything else, as Linux
    /// does for `getsockopt` on a socket without protocol options, ask here.
    pub fn option_level(&self, level: i32) -> Result<()> {
        self.with_locked(|l| l.proto.option_level(level))
    }

    /// The options as they stand.
    pub fn options(&self) -> Result<Options> {
        self.with_locked(|l| Ok(l.opts()))
    }

    /// Bytes waiting to be received (`FIONREAD`): all queued bytes of a connection, the
    /// next record of a datagram socket. A listener has none to give: `EINVAL`, as Linux.
    pub fn nread(&self) -> Result<usize> {
        self.with_locked(|l| l.st.apply(Op::Nread, || Ok(l.proto.nread())))
    }

    /// A snapshot for status displays (`EBADF` once closed).
    pub fn info(&self) -> Result<SocketInfo> {
        self.core.info().ok_or(Errno::EBADF)
    }
}
