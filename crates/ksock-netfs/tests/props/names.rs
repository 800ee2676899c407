//! Properties of file names with `:flag` suffixes and socket ids, for any name a lookup may
//! be given: shared by the stable property tests (`tests/prop_names.rs`) and the fuzz
//! target `names` (`fuzz/`).

use ksock::{Errno, Stack};
use ksock_netfs::exec::block_on;
use ksock_netfs::{Cred, Handle, NetFs, Node, OpenMode, PathFlags, parse_id, split_flags};
use std::sync::{Arc, OnceLock};

const ME: Cred = Cred::new(1000, 100, 4242);

/// What `split_flags` should say, written out from its documentation: the base is what
/// comes before the first `:`, and every part after it is `n` or `nonblock`.
fn expected_flags(name: &[u8]) -> Result<(&[u8], PathFlags), Errno> {
    let mut parts = name.split(|&b| b == b':');
    let base = parts.next().unwrap_or_default();
    let mut flags = PathFlags::empty();
    for p in parts {
        if p != b"n" && p != b"nonblock" {
            return Err(Errno::EINVAL);
        }
        flags = PathFlags::NONBLOCK;
    }
    Ok((base, flags))
}

/// A name printed back: the base, then `:nonblock` if the flag is set.
fn print(base: &[u8], flags: PathFlags, short: bool) -> Vec<u8> {
    let mut v = base.to_vec();
    if flags.contains(PathFlags::NONBLOCK) {
        v.extend_from_slice(if short { b":n" } else { b":nonblock" });
    }
    v
}

/// A namespace with one socket in it, made once.
pub struct Fixture {
    fs: NetFs,
    /// The socket's directory inode, and its family's.
    dirs: Vec<u64>,
    _h: Arc<Handle>,
}

/// The shared namespace.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let fs = NetFs::new(Stack::new());
        let ino = fs.resolve("/local/stream", &ME).expect("factory").ino;
        let h = block_on(fs.open(ino, OpenMode::RDWR, ME)).expect("a socket");
        let id = String::from_utf8(block_on(h.read(64, false)).expect("id").to_vec()).unwrap();
        let dirs = vec![
            1,
            fs.resolve("/local", &ME).unwrap().ino,
            fs.resolve(&format!("/local/{id}"), &ME).unwrap().ino,
        ];
        Fixture { fs, dirs, _h: h }
    })
}

/// The name a directory listing gives a node, without flags (`table` is looked up by
/// name but not listed).
fn listed_name(fs: &NetFs, parent: u64, node: Node) -> Option<String> {
    if let Node::Table { .. } = node {
        return Some("table".into());
    }
    fs.readdir(parent, 0, &ME)
        .ok()?
        .into_iter()
        .find(|e| e.node == strip(node))
        .map(|e| e.name)
}

/// The node without its path flags (what a listing shows).
fn strip(n: Node) -> Node {
    match n {
        Node::Factory { fam, ty, .. } => Node::Factory {
            fam,
            ty,
            flags: PathFlags::empty(),
        },
        Node::Addrs { fam, .. } => Node::Addrs {
            fam,
            flags: PathFlags::empty(),
        },
        Node::Table { fam, .. } => Node::Table {
            fam,
            flags: PathFlags::empty(),
        },
        Node::File { id, file, .. } => Node::File {
            id,
            file,
            flags: PathFlags::empty(),
        },
        n => n,
    }
}

/// Every property, for one name.
pub fn check_name(name: &[u8]) {
    // split_flags: exactly as documented, and what it gives prints back the same.
    let got = split_flags(name);
    assert_eq!(
        got,
        expected_flags(name),
        "{:?}",
        String::from_utf8_lossy(name)
    );
    if let Ok((base, flags)) = got {
        for short in [false, true] {
            let again = print(base, flags, short);
            assert_eq!(split_flags(&again), Ok((base, flags)));
        }
    }
    // parse_id: canonical decimal only, and it prints back as the name.
    match parse_id(name) {
        Some(id) => {
            assert_ne!(id, 0);
            assert_eq!(id.to_string().as_bytes(), name);
        }
        None => {
            let canonical = core::str::from_utf8(name)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|id| id != 0 && id.to_string().as_bytes() == name);
            assert!(!canonical, "{:?} refused", String::from_utf8_lossy(name));
        }
    }
    // Lookups in every directory: an errno, or a well-formed node whose name, printed
    // back with its flags, looks up to the same node.
    let f = fixture();
    for &dir in &f.dirs {
        match f.fs.lookup(dir, name, &ME) {
            Err(e) => assert!(
                [Errno::ENOENT, Errno::EINVAL, Errno::ENOTDIR].contains(&e),
                "{e:?} for {:?}",
                String::from_utf8_lossy(name)
            ),
            Ok(a) => {
                assert_eq!(Node::from_ino(a.ino), Some(a.node));
                assert_eq!(a.node.flags(), expected_flags(name).unwrap().1);
                let listed = listed_name(&f.fs, dir, a.node).expect("a listed node");
                let base = expected_flags(name).unwrap().0;
                assert_eq!(listed.as_bytes(), base);
                for short in [false, true] {
                    let again = print(base, a.node.flags(), short);
                    assert_eq!(f.fs.lookup(dir, &again, &ME).map(|a| a.node), Ok(a.node));
                }
            }
        }
    }
}
