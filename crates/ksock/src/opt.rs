//! Socket options (`SOL_SOCKET` level), with Linux numbers and Linux's rules for values.

use crate::errno::{Errno, Result};
use crate::types::Cred;
use core::time::Duration;

/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 1;

/// Default and largest send buffer a caller may ask for (`net.core.wmem_default`/`wmem_max`).
pub const WMEM_DEFAULT: u32 = 212_992;
/// Largest send buffer before doubling (`net.core.wmem_max`).
pub const WMEM_MAX: u32 = 212_992;
/// Default receive buffer (`net.core.rmem_default`).
pub const RMEM_DEFAULT: u32 = 212_992;
/// Largest receive buffer before doubling (`net.core.rmem_max`).
pub const RMEM_MAX: u32 = 212_992;
/// Smallest send buffer (Linux `SOCK_MIN_SNDBUF` on 64-bit).
pub const SOCK_MIN_SNDBUF: u32 = 4608;
/// Smallest receive buffer (Linux `SOCK_MIN_RCVBUF` on 64-bit).
pub const SOCK_MIN_RCVBUF: u32 = 2304;

/// The options the socket layer knows.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SockOpt {
    /// `SO_SNDBUF`: bytes this socket may have queued towards its peer.
    SndBuf,
    /// `SO_RCVBUF`: receive buffer size (kept and reported; the local family bounds queues by
    /// the sender's buffer, as Linux AF_UNIX does).
    RcvBuf,
    /// `SO_RCVTIMEO`: how long a blocking receive or accept waits.
    RcvTimeo,
    /// `SO_SNDTIMEO`: how long a blocking send or connect waits.
    SndTimeo,
    /// `SO_RCVLOWAT`: how many bytes a blocking stream receive waits for.
    RcvLowat,
    /// `SO_ERROR` (read-only): the pending error, read and cleared.
    Error,
    /// `SO_TYPE` (read-only).
    Type,
    /// `SO_ACCEPTCONN` (read-only): 1 on a listener.
    AcceptConn,
    /// `SO_DOMAIN` (read-only).
    Domain,
    /// `SO_PROTOCOL` (read-only).
    Protocol,
    /// `SO_PEERCRED` (read-only): the peer's credentials, recorded when the connection was
    /// made ([`Cred::NONE`] without one).
    PeerCred,
    /// `SO_REUSEADDR`: the address may be bound while another socket holds it (families
    /// with ports apply Linux's rule; the local family keeps and reports it, as Linux).
    ReuseAddr,
    /// `SO_KEEPALIVE`: probe an idle connection (families with connections over a network).
    KeepAlive,
    /// `SO_LINGER` ([`OptVal::Linger`]): with a zero time, closing aborts the connection
    /// with a reset.
    Linger,
    /// An option of a protocol level (`IPPROTO_TCP`, `IPPROTO_IP`, `IPPROTO_IPV6`...):
    /// the core passes it to the socket's family ([`Protocol::get_option`]
    /// (crate::family::Protocol::get_option)), which knows its names and values.
    Proto {
        /// The level (`IPPROTO_TCP` = 6, ...).
        level: i32,
        /// The option's name at that level (`TCP_NODELAY` = 1, ...).
        name: i32,
    },
}

impl SockOpt {
    /// The option for a Linux `(level, optname)` pair: a socket-level one, or
    /// [`SockOpt::Proto`] for any other level (the family decides). Unknown socket-level
    /// names are `ENOPROTOOPT`.
    pub const fn from_raw(level: i32, name: i32) -> Result<SockOpt> {
        if level != SOL_SOCKET {
            return Ok(SockOpt::Proto { level, name });
        }
        Ok(match name {
            3 => SockOpt::Type,
            4 => SockOpt::Error,
            7 => SockOpt::SndBuf,
            8 => SockOpt::RcvBuf,
            18 => SockOpt::RcvLowat,
            20 | 66 => SockOpt::RcvTimeo,
            21 | 67 => SockOpt::SndTimeo,
            30 => SockOpt::AcceptConn,
            38 => SockOpt::Protocol,
            39 => SockOpt::Domain,
            17 => SockOpt::PeerCred,
            2 => SockOpt::ReuseAddr,
            9 => SockOpt::KeepAlive,
            13 => SockOpt::Linger,
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// The Linux `optname` (the `_OLD` numbers for the timeouts).
    pub const fn raw(self) -> i32 {
        match self {
            SockOpt::Type => 3,
            SockOpt::Error => 4,
            SockOpt::SndBuf => 7,
            SockOpt::RcvBuf => 8,
            SockOpt::RcvLowat => 18,
            SockOpt::RcvTimeo => 20,
            SockOpt::SndTimeo => 21,
            SockOpt::AcceptConn => 30,
            SockOpt::Protocol => 38,
            SockOpt::Domain => 39,
            SockOpt::PeerCred => 17,
            SockOpt::ReuseAddr => 2,
            SockOpt::KeepAlive => 9,
            SockOpt::Linger => 13,
            SockOpt::Proto { name, .. } => name,
        }
    }

    /// The Linux level: `SOL_SOCKET`, or a protocol's.
    pub const fn level(self) -> i32 {
        match self {
            SockOpt::Proto { level, .. } => level,
            _ => SOL_SOCKET,
        }
    }

    /// Whether the option can only be read.
    pub const fn read_only(self) -> bool {
        matches!(
            self,
            SockOpt::Error
                | SockOpt::Type
                | SockOpt::AcceptConn
                | SockOpt::Domain
                | SockOpt::Protocol
                | SockOpt::PeerCred
        )
    }

    /// Whether the value is a time (`OptVal::Time`) rather than an integer.
    pub const fn is_time(self) -> bool {
        matches!(self, SockOpt::RcvTimeo | SockOpt::SndTimeo)
    }
}

/// An option value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OptVal {
    /// An integer option.
    Int(i32),
    /// `SO_LINGER`'s `struct linger`: `None` when off, else the time in seconds.
    Linger(Option<u32>),
    /// A timeout: `None` waits forever, `Some(Duration::ZERO)` never waits.
    Time(Option<Duration>),
    /// Credentials (`SO_PEERCRED`).
    Cred(Cred),
}

impl OptVal {
    /// The integer, or `EINVAL` for a time.
    pub fn int(self) -> Result<i32> {
        match self {
            OptVal::Int(v) => Ok(v),
            _ => Err(Errno::EINVAL),
        }
    }
}

const NO_TIMEOUT: u64 = u64::MAX;

/// The settable options of one socket (kept small: they live in every socket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub(crate) sndbuf: u32,
    rcvbuf: u32,
    rcvlowat: u32,
    rcvtimeo_ns: u64,
    sndtimeo_ns: u64,
    /// `SO_LINGER`'s seconds, or [`NO_LINGER`].
    linger: u32,
    /// `SO_REUSEADDR`, `SO_KEEPALIVE`.
    bits: u8,
}

const NO_LINGER: u32 = u32::MAX;
const REUSEADDR: u8 = 1;
const KEEPALIVE: u8 = 2;

impl Default for Options {
    fn default() -> Self {
        Options {
            sndbuf: WMEM_DEFAULT,
            rcvbuf: RMEM_DEFAULT,
            rcvlowat: 1,
            rcvtimeo_ns: NO_TIMEOUT,
            sndtimeo_ns: NO_TIMEOUT,
            linger: NO_LINGER,
            bits: 0,
        }
    }
}

fn to_ns(t: Option<Duration>) -> u64 {
    match t {
        None => NO_TIMEOUT,
        Some(d) => u64::try_from(d.as_nanos())
            .unwrap_or(NO_TIMEOUT - 1)
            .min(NO_TIMEOUT - 1),
    }
}

fn from_ns(ns: u64) -> Option<Duration> {
    (ns != NO_TIMEOUT).then(|| Duration::from_nanos(ns))
}

impl Options {
    /// The send buffer in bytes.
    pub fn sndbuf(&self) -> usize {
        self.sndbuf as usize
    }

    /// The receive buffer in bytes.
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf as usize
    }

    /// The receive low-water mark (at least 1).
    pub fn rcvlowat(&self) -> usize {
        self.rcvlowat as usize
    }

    /// The receive timeout (`None`: forever).
    pub fn rcvtimeo(&self) -> Option<Duration> {
        from_ns(self.rcvtimeo_ns)
    }

    /// The send timeout (`None`: forever).
    pub fn sndtimeo(&self) -> Option<Duration> {
        from_ns(self.sndtimeo_ns)
    }

    /// `SO_REUSEADDR`.
    pub fn reuseaddr(&self) -> bool {
        self.bits & REUSEADDR != 0
    }

    /// `SO_KEEPALIVE`.
    pub fn keepalive(&self) -> bool {
        self.bits & KEEPALIVE != 0
    }

    /// `SO_LINGER`: `None` when off, else the linger time in seconds (0: close resets).
    pub fn linger(&self) -> Option<u32> {
        (self.linger != NO_LINGER).then_some(self.linger)
    }

    /// Sets a settable option with Linux's rules: buffer sizes are capped at the system
    /// maximum, doubled (to leave room for bookkeeping, as Linux does) and raised to the
    /// minimum; a negative low-water mark means "as large as possible", zero means one.
    /// Read-only options are `ENOPROTOOPT`; a value of the wrong kind is `EINVAL`.
    pub fn set(&mut self, opt: SockOpt, val: OptVal) -> Result<()> {
        match opt {
            SockOpt::SndBuf => {
                // Linux compares as unsigned, so a negative value asks for the maximum.
                let v = (val.int()? as u32).min(WMEM_MAX);
                self.sndbuf = (v * 2).max(SOCK_MIN_SNDBUF);
            }
            SockOpt::RcvBuf => {
                let v = (val.int()? as u32).min(RMEM_MAX);
                self.rcvbuf = (v * 2).max(SOCK_MIN_RCVBUF);
            }
            SockOpt::RcvLowat => {
                let v = val.int()?;
                self.rcvlowat = if v < 0 {
                    i32::MAX as u32
                } else {
                    (v as u32).max(1)
                };
            }
            SockOpt::RcvTimeo | SockOpt::SndTimeo => {
                let OptVal::Time(t) = val else {
                    return Err(Errno::EINVAL);
                };
                let ns = to_ns(t);
                if opt == SockOpt::RcvTimeo {
                    self.rcvtimeo_ns = ns;
                } else {
                    self.sndtimeo_ns = ns;
                }
            }
            SockOpt::ReuseAddr | SockOpt::KeepAlive => {
                let bit = if opt == SockOpt::ReuseAddr {
                    REUSEADDR
                } else {
                    KEEPALIVE
                };
                if val.int()? != 0 {
                    self.bits |= bit;
                } else {
                    self.bits &= !bit;
                }
            }
            SockOpt::Linger => {
                let OptVal::Linger(l) = val else {
                    return Err(Errno::EINVAL);
                };
                self.linger = l.map_or(NO_LINGER, |s| s.min(NO_LINGER - 1));
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// Reads a settable option; read-only options are answered by the socket, not here.
    pub fn get(&self, opt: SockOpt) -> Result<OptVal> {
        Ok(match opt {
            SockOpt::SndBuf => OptVal::Int(self.sndbuf as i32),
            SockOpt::RcvBuf => OptVal::Int(self.rcvbuf as i32),
            SockOpt::RcvLowat => OptVal::Int(self.rcvlowat as i32),
            SockOpt::RcvTimeo => OptVal::Time(self.rcvtimeo()),
            SockOpt::SndTimeo => OptVal::Time(self.sndtimeo()),
            SockOpt::ReuseAddr => OptVal::Int(self.reuseaddr() as i32),
            SockOpt::KeepAlive => OptVal::Int(self.keepalive() as i32),
            SockOpt::Linger => OptVal::Linger(self.linger()),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_numbers_round_trip_and_unknown_is_enoprotoopt() {
        for o in [
            SockOpt::SndBuf,
            SockOpt::RcvBuf,
            SockOpt::RcvTimeo,
            SockOpt::SndTimeo,
            SockOpt::RcvLowat,
            SockOpt::Error,
            SockOpt::Type,
            SockOpt::AcceptConn,
            SockOpt::Domain,
            SockOpt::Protocol,
            SockOpt::PeerCred,
        ] {
            assert_eq!(SockOpt::from_raw(SOL_SOCKET, o.raw()), Ok(o));
        }
        assert_eq!(SockOpt::from_raw(SOL_SOCKET, 9999), Err(Errno::ENOPROTOOPT));
        assert_eq!(
            SockOpt::from_raw(6, 7),
            Ok(SockOpt::Proto { level: 6, name: 7 })
        );
        assert_eq!(SockOpt::Proto { level: 6, name: 7 }.level(), 6);
        assert_eq!(SockOpt::Proto { level: 6, name: 7 }.raw(), 7);
        assert_eq!(SockOpt::from_raw(SOL_SOCKET, 66), Ok(SockOpt::RcvTimeo));
    }

    #[test]
    fn buffer_sizes_follow_linux() {
        let mut o = Options::default();
        assert_eq!(o.sndbuf(), 212_992);
        o.set(SockOpt::SndBuf, OptVal::Int(10_000)).unwrap();
        assert_eq!(o.get(SockOpt::SndBuf), Ok(OptVal::Int(20_000)));
        o.set(SockOpt::SndBuf, OptVal::Int(1)).unwrap();
        assert_eq!(o.sndbuf(), SOCK_MIN_SNDBUF as usize);
        o.set(SockOpt::SndBuf, OptVal::Int(i32::MAX)).unwrap();
        assert_eq!(o.sndbuf(), 2 * WMEM_MAX as usize);
        o.set(SockOpt::SndBuf, OptVal::Int(-1)).unwrap();
        assert_eq!(
            o.sndbuf(),
            2 * WMEM_MAX as usize,
            "negative compares as unsigned"
        );
        o.set(SockOpt::RcvBuf, OptVal::Int(0)).unwrap();
        assert_eq!(o.rcvbuf(), SOCK_MIN_RCVBUF as usize);
    }

    #[test]
    fn lowat_and_timeouts() {
        let mut o = Options::default();
        o.set(SockOpt::RcvLowat, OptVal::Int(0)).unwrap();
        assert_eq!(o.rcvlowat(), 1);
        o.set(SockOpt::RcvLowat, OptVal::Int(-5)).unwrap();
        assert_eq!(o.rcvlowat(), i32::MAX as usize);
        assert_eq!(o.rcvtimeo(), None);
        let t = Some(Duration::from_millis(250));
        o.set(SockOpt::RcvTimeo, OptVal::Time(t)).unwrap();
        assert_eq!(o.get(SockOpt::RcvTimeo), Ok(OptVal::Time(t)));
        o.set(SockOpt::SndTimeo, OptVal::Time(Some(Duration::MAX)))
            .unwrap();
        assert!(o.sndtimeo().is_some(), "a huge timeout is still a timeout");
        o.set(SockOpt::SndTimeo, OptVal::Time(None)).unwrap();
        assert_eq!(o.sndtimeo(), None);
    }

    #[test]
    fn wrong_kind_and_read_only() {
        let mut o = Options::default();
        let before = o;
        assert_eq!(
            o.set(SockOpt::SndBuf, OptVal::Time(None)),
            Err(Errno::EINVAL)
        );
        assert_eq!(o.set(SockOpt::RcvTimeo, OptVal::Int(1)), Err(Errno::EINVAL));
        assert_eq!(
            o.set(SockOpt::Type, OptVal::Int(1)),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(
            o.set(SockOpt::Error, OptVal::Int(0)),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(o, before, "failed sets change nothing");
    }
}
