//! Socket addresses: local names now, inet addresses beside them; [`raw`] reads and writes
//! their C layouts (`sockaddr_un`, `sockaddr_in`, `sockaddr_in6`) for the faces.

pub mod raw;

use crate::errno::{Errno, Result};
use alloc::sync::Arc;
use core::fmt;
use core::net::SocketAddr;

/// The longest local name, in bytes.
pub const LOCAL_NAME_MAX: usize = 255;

/// An address of any family.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum SockAddr {
    /// No address: an unbound socket, or a peer that never bound.
    #[default]
    Unnamed,
    /// A name in the local family's namespace.
    Local(LocalName),
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
}

impl SockAddr {
    /// A local name from bytes (1 to 255 of them).
    pub fn local(name: impl AsRef<[u8]>) -> Result<SockAddr> {
        LocalName::new(name.as_ref()).map(SockAddr::Local)
    }

    /// Whether this is [`SockAddr::Unnamed`].
    pub fn is_unnamed(&self) -> bool {
        matches!(self, SockAddr::Unnamed)
    }

    /// The local name, if this is one.
    pub fn as_local(&self) -> Option<&LocalName> {
        match self {
            SockAddr::Local(n) => Some(n),
            _ => None,
        }
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(a: SocketAddr) -> Self {
        SockAddr::Inet(a)
    }
}

impl From<LocalName> for SockAddr {
    fn from(n: LocalName) -> Self {
        SockAddr::Local(n)
    }
}

impl fmt::Display for SockAddr {
    /// Local names print with non-printable bytes, white space, quotes and backslashes escaped
    /// as `\xNN`, and the name `&&` (the ctl separator) as `\x26\x26`, so the text can go
    /// back through the ctl grammar; unnamed prints as nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::Unnamed => Ok(()),
            SockAddr::Local(n) => fmt::Display::fmt(n, f),
            SockAddr::Inet(a) => fmt::Display::fmt(a, f),
        }
    }
}

impl fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::Unnamed => f.write_str("Unnamed"),
            SockAddr::Local(n) => write!(f, "Local({n})"),
            SockAddr::Inet(a) => write!(f, "Inet({a})"),
        }
    }
}

/// A local-family name: 1 to 255 arbitrary bytes. Cloning shares the bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalName(Arc<[u8]>);

impl LocalName {
    /// Checks the length: empty is `EINVAL`, longer than 255 bytes is `ENAMETOOLONG` (a name
    /// is never silently truncated).
    pub fn new(name: &[u8]) -> Result<LocalName> {
        match name.len() {
            0 => Err(Errno::EINVAL),
            n if n > LOCAL_NAME_MAX => Err(Errno::ENAMETOOLONG),
            _ => Ok(LocalName(Arc::from(name))),
        }
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl core::borrow::Borrow<[u8]> for LocalName {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for LocalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A bare `&&` is the ctl grammar's separator: the name made of it is escaped.
        if &*self.0 == b"&&" {
            return f.write_str("\\x26\\x26");
        }
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '\'') {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        write!(f, "\\x{byte:02x}")?;
                    }
                } else {
                    fmt::Write::write_char(f, c)?;
                }
            }
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for LocalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    #[test]
    fn local_name_lengths() {
        assert_eq!(SockAddr::local(b"").unwrap_err(), Errno::EINVAL);
        assert!(SockAddr::local([b'a'; 255]).is_ok());
        assert_eq!(
            SockAddr::local(vec![b'a'; 256]).unwrap_err(),
            Errno::ENAMETOOLONG
        );
        assert_eq!(
            SockAddr::local([0u8])
                .unwrap()
                .as_local()
                .unwrap()
                .as_bytes(),
            &[0]
        );
    }

    #[test]
    fn display_escapes_what_the_ctl_grammar_would_split() {
        let a = SockAddr::local(b"dwm").unwrap();
        assert_eq!(format!("{a}"), "dwm");
        let a = SockAddr::local(b"a b\\\"\x01\xff\xc3\xa9").unwrap();
        assert_eq!(format!("{a}"), "a\\x20b\\x5c\\x22\\x01\\xff\u{e9}");
        assert_eq!(format!("{}", SockAddr::Unnamed), "");
        let a = SockAddr::local(b"&&").unwrap();
        assert_eq!(format!("{a}"), "\\x26\\x26", "the ctl separator");
        let a = SockAddr::local(b"a&&").unwrap();
        assert_eq!(format!("{a}"), "a&&");
        let inet: SockAddr = "[::1]:80".parse::<SocketAddr>().unwrap().into();
        assert_eq!(format!("{inet}"), "[::1]:80");
    }
}
