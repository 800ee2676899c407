//! Small value types shared by every face: domains, socket types, message flags.

use crate::addr::SockAddr;
use crate::errno::{Errno, Result};
use core::fmt;

/// An address family, with Linux numbers (`AF_UNIX` = 1, `AF_INET` = 2, `AF_INET6` = 10).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(u16);

impl Domain {
    /// The in-memory local family (Linux `AF_UNIX` / `AF_LOCAL`).
    pub const LOCAL: Domain = Domain(1);
    /// IPv4 (`AF_INET`).
    pub const INET: Domain = Domain(2);
    /// IPv6 (`AF_INET6`).
    pub const INET6: Domain = Domain(10);

    /// The domain with this number (unknown numbers are kept; creating a socket in one is
    /// `EAFNOSUPPORT`).
    pub const fn from_raw(n: u16) -> Domain {
        Domain(n)
    }

    /// The Linux number.
    pub const fn raw(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Domain::LOCAL => f.write_str("LOCAL"),
            Domain::INET => f.write_str("INET"),
            Domain::INET6 => f.write_str("INET6"),
            Domain(n) => write!(f, "Domain({n})"),
        }
    }
}

/// A socket type, with Linux numbers (`SOCK_STREAM` = 1, `SOCK_DGRAM` = 2, `SOCK_SEQPACKET` = 5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockType(u8);

impl SockType {
    /// Reliable byte stream.
    pub const STREAM: SockType = SockType(1);
    /// Datagrams: records, connectionless.
    pub const DGRAM: SockType = SockType(2);
    /// Raw protocol access.
    pub const RAW: SockType = SockType(3);
    /// Reliably delivered messages.
    pub const RDM: SockType = SockType(4);
    /// Ordered, reliable records over a connection.
    pub const SEQPACKET: SockType = SockType(5);

    /// Type numbers are below this (Linux `SOCK_MAX`: `SOCK_PACKET` = 10 is the last).
    pub const MAX: u8 = 11;

    /// A type from its Linux number: numbers at or past `SOCK_MAX` are `EINVAL`, as in Linux.
    pub const fn from_raw(n: i32) -> Result<SockType> {
        if n < 0 || n >= SockType::MAX as i32 {
            Err(Errno::EINVAL)
        } else {
            Ok(SockType(n as u8))
        }
    }

    /// The Linux number.
    pub const fn raw(self) -> u8 {
        self.0
    }

    /// The name used in `/net` paths: `stream`, `dgram`, `seqpacket` (others: `type<N>`).
    pub const fn name(self) -> &'static str {
        match self.0 {
            1 => "stream",
            2 => "dgram",
            3 => "raw",
            4 => "rdm",
            5 => "seqpacket",
            _ => "unknown",
        }
    }

    /// The type for a `/net` factory name.
    pub fn from_name(name: &str) -> Option<SockType> {
        match name {
            "stream" => Some(SockType::STREAM),
            "dgram" => Some(SockType::DGRAM),
            "seqpacket" => Some(SockType::SEQPACKET),
            "raw" => Some(SockType::RAW),
            "rdm" => Some(SockType::RDM),
            _ => None,
        }
    }

    /// Whether one write is one record (seqpacket and dgram).
    pub const fn is_record(self) -> bool {
        matches!(self.0, 2 | 5)
    }

    /// Whether the type needs a connection (stream and seqpacket).
    pub const fn is_connection(self) -> bool {
        matches!(self.0, 1 | 5)
    }
}

impl fmt::Debug for SockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for SockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

bitflags::bitflags! {
    /// Flags of send and receive calls, with Linux values.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct MsgFlags: u32 {
        /// Receive without consuming.
        const PEEK = 0x2;
        /// In: report a record's full length even when truncated. Out: the record was
        /// truncated.
        const TRUNC = 0x20;
        /// Do not block this call.
        const DONTWAIT = 0x40;
        /// End of record.
        const EOR = 0x80;
        /// Stream receive: wait for the whole buffer (or end of file, an error, a timeout).
        const WAITALL = 0x100;
        /// Do not raise `SIGPIPE` (ksock never raises signals; accepted for compatibility).
        const NOSIGNAL = 0x4000;
    }
}

impl MsgFlags {
    /// Flags a send accepts.
    pub const SEND: MsgFlags = MsgFlags::DONTWAIT
        .union(MsgFlags::EOR)
        .union(MsgFlags::NOSIGNAL);
    /// Flags a receive accepts.
    pub const RECV: MsgFlags = MsgFlags::PEEK
        .union(MsgFlags::TRUNC)
        .union(MsgFlags::DONTWAIT)
        .union(MsgFlags::WAITALL);
}

/// Which directions `shutdown` closes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shutdown {
    /// No more receiving (`SHUT_RD` = 0).
    Read,
    /// No more sending; the peer sees end of file (`SHUT_WR` = 1).
    Write,
    /// Both (`SHUT_RDWR` = 2).
    Both,
}

impl Shutdown {
    /// From the Linux `how` number: anything but 0, 1, 2 is `EINVAL`.
    pub const fn from_raw(how: i32) -> Result<Shutdown> {
        match how {
            0 => Ok(Shutdown::Read),
            1 => Ok(Shutdown::Write),
            2 => Ok(Shutdown::Both),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Whether the read side is shut.
    pub const fn read(self) -> bool {
        matches!(self, Shutdown::Read | Shutdown::Both)
    }

    /// Whether the write side is shut.
    pub const fn write(self) -> bool {
        matches!(self, Shutdown::Write | Shutdown::Both)
    }
}

/// What a receive returned, beside the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RecvInfo {
    /// Bytes placed in the caller's buffer (or chain).
    pub len: usize,
    /// The length of the record (for records; equal to `len` unless truncated). With
    /// [`MsgFlags::TRUNC`] in the call, the POSIX face returns this instead of `len`.
    pub full_len: usize,
    /// Output flags: [`MsgFlags::TRUNC`] if the record did not fit, [`MsgFlags::EOR`] at the
    /// end of a record.
    pub flags: MsgFlags,
    /// The sender's address, for datagrams (`Unnamed` otherwise or if it had none).
    pub from: SockAddr,
    /// True when the result is end of file rather than data (or an empty record).
    pub eof: bool,
}

/// How many bytes and connections a socket has queued, for `status` files and `ksock ss`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queues {
    /// Bytes waiting to be read by this socket.
    pub rx: usize,
    /// Bytes this socket sent that its peer has not read yet.
    pub tx: usize,
    /// For listeners: connections waiting to be accepted.
    pub pending: usize,
    /// For listeners: the backlog.
    pub backlog: usize,
}

/// Credentials of the process a socket acts for, as `SO_PEERCRED` reports them (Linux
/// `struct ucred`). Faces record them: the file face from the FUSE request, the POSIX face
/// from the calling process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cred {
    /// Process id (the thread group's).
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Cred {
    /// What Linux reports for a socket that has no peer credentials: pid 0, uid and gid -1.
    pub const NONE: Cred = Cred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
}
