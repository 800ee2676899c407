//! Nodes of the tree, their inode numbers, and file names with `:flag` suffixes.
//!
//! Every node is computed from its inode number and back, so the namespace keeps no inode
//! table: socket ids are never reused while a stack runs, hence neither are inode numbers.
//!
//! ```text
//! bits  0..4   kind (1 = root, so the root is inode 1 as FUSE wants)
//! bits  4..8   path flags (:nonblock)
//! bits  8..16  family index (family directories, factories, addrs, table)
//! bits 16..24  socket type (factories)
//! bits 16..64  socket id (socket directories and their files)
//! ```

use ksock::{Errno, Result, SockType};

bitflags::bitflags! {
    /// Flags given as `:flag` suffixes of a file name.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct PathFlags: u8 {
        /// `:nonblock` or `:n`: calls on this open file never wait (`EAGAIN` instead).
        const NONBLOCK = 1;
    }
}

/// The files of a socket directory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SockFile {
    /// Commands in; reading gives the id.
    Ctl,
    /// Read receives, write sends.
    Data,
    /// Opening it accepts a connection; the open file is the connection's `data`.
    Accept,
    /// Opening it accepts a connection; the open file is the connection's `ctl` (Plan 9).
    Listen,
    /// The local address.
    Local,
    /// The peer's address.
    Remote,
    /// Key-value lines describing the socket.
    Status,
    /// The last error, as `ENAME: what happened`.
    Err,
}

impl SockFile {
    /// Every file, in directory order.
    pub const ALL: [SockFile; 8] = [
        SockFile::Ctl,
        SockFile::Data,
        SockFile::Accept,
        SockFile::Listen,
        SockFile::Local,
        SockFile::Remote,
        SockFile::Status,
        SockFile::Err,
    ];

    /// The file's name.
    pub const fn name(self) -> &'static str {
        match self {
            SockFile::Ctl => "ctl",
            SockFile::Data => "data",
            SockFile::Accept => "accept",
            SockFile::Listen => "listen",
            SockFile::Local => "local",
            SockFile::Remote => "remote",
            SockFile::Status => "status",
            SockFile::Err => "err",
        }
    }

    /// The file called `name`.
    pub fn from_name(name: &[u8]) -> Option<SockFile> {
        SockFile::ALL
            .into_iter()
            .find(|f| f.name().as_bytes() == name)
    }

    /// Whether the file can be written (the others are read-only text).
    pub const fn writable(self) -> bool {
        matches!(
            self,
            SockFile::Ctl | SockFile::Data | SockFile::Accept | SockFile::Listen
        )
    }

    const fn kind(self) -> u64 {
        match self {
            SockFile::Ctl => 6,
            SockFile::Data => 7,
            SockFile::Accept => 8,
            SockFile::Listen => 9,
            SockFile::Local => 10,
            SockFile::Remote => 11,
            SockFile::Status => 12,
            SockFile::Err => 13,
        }
    }

    fn from_kind(k: u64) -> Option<SockFile> {
        SockFile::ALL.into_iter().find(|f| f.kind() == k)
    }
}

/// A node of the tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Node {
    /// The mount's root: one directory per family.
    Root,
    /// `/<family>`: factories, `addrs`, one directory per socket.
    Family {
        /// The family's index in the stack's registration order.
        fam: u8,
    },
    /// `/<family>/<type>`: opening it creates a socket.
    Factory {
        /// The family's index.
        fam: u8,
        /// The type of the sockets it creates.
        ty: SockType,
        /// Path flags.
        flags: PathFlags,
    },
    /// `/<family>/addrs`: listening addresses, one per line.
    Addrs {
        /// The family's index.
        fam: u8,
        /// Path flags (accepted, without effect).
        flags: PathFlags,
    },
    /// `/<family>/table`: every socket of the family, one line each.
    Table {
        /// The family's index.
        fam: u8,
        /// Path flags (accepted, without effect).
        flags: PathFlags,
    },
    /// `/<family>/stats`: the family's counters, one `name value` per line.
    Stats {
        /// The family's index.
        fam: u8,
        /// Path flags (accepted, without effect).
        flags: PathFlags,
    },
    /// `/<family>/<id>`: a socket's directory.
    SockDir {
        /// The socket's id.
        id: u64,
    },
    /// `/<family>/<id>/<file>`.
    File {
        /// The socket's id.
        id: u64,
        /// Which file.
        file: SockFile,
        /// Path flags.
        flags: PathFlags,
    },
}

const K_ROOT: u64 = 1;
const K_FAMILY: u64 = 2;
const K_FACTORY: u64 = 3;
const K_ADDRS: u64 = 4;
const K_SOCKDIR: u64 = 5;
const K_TABLE: u64 = 14;
const K_STATS: u64 = 15;

/// The largest socket id an inode number can carry.
pub const MAX_ID: u64 = (1 << 48) - 1;

impl Node {
    /// The inode number (never 0; the root is 1).
    pub fn ino(self) -> u64 {
        match self {
            Node::Root => K_ROOT,
            Node::Family { fam } => K_FAMILY | (fam as u64) << 8,
            Node::Factory { fam, ty, flags } => {
                K_FACTORY | (flags.bits() as u64) << 4 | (fam as u64) << 8 | (ty.raw() as u64) << 16
            }
            Node::Addrs { fam, flags } => K_ADDRS | (flags.bits() as u64) << 4 | (fam as u64) << 8,
            Node::Table { fam, flags } => K_TABLE | (flags.bits() as u64) << 4 | (fam as u64) << 8,
            Node::Stats { fam, flags } => K_STATS | (flags.bits() as u64) << 4 | (fam as u64) << 8,
            Node::SockDir { id } => K_SOCKDIR | id << 16,
            Node::File { id, file, flags } => file.kind() | (flags.bits() as u64) << 4 | id << 16,
        }
    }

    /// The node with this inode number, if it is well formed (whether it exists is another
    /// matter).
    pub fn from_ino(ino: u64) -> Option<Node> {
        let kind = ino & 0xf;
        let flags = PathFlags::from_bits((ino >> 4 & 0xf) as u8)?;
        let fam = (ino >> 8 & 0xff) as u8;
        let high = ino >> 16;
        let node = match kind {
            K_ROOT => Node::Root,
            K_FAMILY => Node::Family { fam },
            K_FACTORY => Node::Factory {
                fam,
                ty: SockType::from_raw((high & 0xff) as i32).ok()?,
                flags,
            },
            K_ADDRS => Node::Addrs { fam, flags },
            K_TABLE => Node::Table { fam, flags },
            K_STATS => Node::Stats { fam, flags },
            K_SOCKDIR => Node::SockDir { id: high },
            k => Node::File {
                id: high,
                file: SockFile::from_kind(k)?,
                flags,
            },
        };
        // Reject numbers with bits the encoding does not produce.
        (node.ino() == ino).then_some(node)
    }

    /// Whether the node is a directory.
    pub fn is_dir(self) -> bool {
        matches!(
            self,
            Node::Root | Node::Family { .. } | Node::SockDir { .. }
        )
    }

    /// The socket this node belongs to, if any.
    pub fn socket_id(self) -> Option<u64> {
        match self {
            Node::SockDir { id } | Node::File { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The node's path flags.
    pub fn flags(self) -> PathFlags {
        match self {
            Node::Factory { flags, .. }
            | Node::Addrs { flags, .. }
            | Node::Table { flags, .. }
            | Node::Stats { flags, .. }
            | Node::File { flags, .. } => flags,
            _ => PathFlags::empty(),
        }
    }
}

/// Splits `name` into its base and its `:flag` suffixes: `data:nonblock`, `accept:n`,
/// `data:n:nonblock`. An unknown or empty flag is `EINVAL`.
pub fn split_flags(name: &[u8]) -> Result<(&[u8], PathFlags)> {
    let mut parts = name.split(|&b| b == b':');
    let base = parts.next().unwrap_or_default();
    let mut flags = PathFlags::empty();
    for f in parts {
        flags |= match f {
            b"nonblock" | b"n" => PathFlags::NONBLOCK,
            _ => return Err(Errno::EINVAL),
        };
    }
    Ok((base, flags))
}

/// Parses a socket id as written in a directory name: decimal, no sign, no leading zeros.
pub fn parse_id(name: &[u8]) -> Option<u64> {
    if name.is_empty()
        || name.len() > 20
        || (name[0] == b'0')
        || !name.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    core::str::from_utf8(name).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flags_parse() {
        assert_eq!(
            split_flags(b"data").unwrap(),
            (&b"data"[..], PathFlags::empty())
        );
        assert_eq!(
            split_flags(b"data:nonblock").unwrap(),
            (&b"data"[..], PathFlags::NONBLOCK)
        );
        assert_eq!(
            split_flags(b"accept:n").unwrap(),
            (&b"accept"[..], PathFlags::NONBLOCK)
        );
        assert_eq!(
            split_flags(b"data:n:nonblock").unwrap(),
            (&b"data"[..], PathFlags::NONBLOCK)
        );
        assert_eq!(split_flags(b"data:bogus").unwrap_err(), Errno::EINVAL);
        assert_eq!(split_flags(b"data:").unwrap_err(), Errno::EINVAL);
        assert_eq!(split_flags(b"data::n").unwrap_err(), Errno::EINVAL);
        assert_eq!(split_flags(b"data:N").unwrap_err(), Errno::EINVAL);
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id(b"1"), Some(1));
        assert_eq!(parse_id(b"1234"), Some(1234));
        assert_eq!(parse_id(b"0"), None);
        assert_eq!(parse_id(b"01"), None);
        assert_eq!(parse_id(b"+1"), None);
        assert_eq!(parse_id(b""), None);
        assert_eq!(parse_id(b"99999999999999999999999"), None);
        assert_eq!(parse_id(b"1a"), None);
    }

    #[test]
    fn root_is_one_and_zero_is_nothing() {
        assert_eq!(Node::Root.ino(), 1);
        assert_eq!(Node::from_ino(0), None);
        assert_eq!(Node::from_ino(1), Some(Node::Root));
        assert_eq!(
            Node::from_ino(0x1_0000_0001),
            None,
            "stray bits are refused"
        );
    }

    fn any_node() -> impl Strategy<Value = Node> {
        let flags = prop_oneof![Just(PathFlags::empty()), Just(PathFlags::NONBLOCK)];
        let file = proptest::sample::select(SockFile::ALL.to_vec());
        let ty =
            proptest::sample::select(vec![SockType::STREAM, SockType::DGRAM, SockType::SEQPACKET]);
        prop_oneof![
            Just(Node::Root),
            any::<u8>().prop_map(|fam| Node::Family { fam }),
            (any::<u8>(), ty, flags.clone()).prop_map(|(fam, ty, flags)| Node::Factory {
                fam,
                ty,
                flags
            }),
            (any::<u8>(), flags.clone()).prop_map(|(fam, flags)| Node::Addrs { fam, flags }),
            (any::<u8>(), flags.clone()).prop_map(|(fam, flags)| Node::Table { fam, flags }),
            (any::<u8>(), flags.clone()).prop_map(|(fam, flags)| Node::Stats { fam, flags }),
            (1..=MAX_ID).prop_map(|id| Node::SockDir { id }),
            (1..=MAX_ID, file, flags).prop_map(|(id, file, flags)| Node::File { id, file, flags }),
        ]
    }

    proptest! {
        #[test]
        fn ino_round_trips(n in any_node()) {
            let ino = n.ino();
            prop_assert_ne!(ino, 0);
            prop_assert_eq!(Node::from_ino(ino), Some(n));
        }

        #[test]
        fn from_ino_never_panics_and_is_canonical(ino in any::<u64>()) {
            if let Some(n) = Node::from_ino(ino) {
                prop_assert_eq!(n.ino(), ino);
            }
        }
    }
}
