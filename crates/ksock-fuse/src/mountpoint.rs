//! Checks on a mount point before a tree is mounted there, so that a mount never stacks
//! silently on another ksock tree or hides files.

use std::io;
use std::path::{Path, PathBuf};

/// The file system type of a ksock mount in `/proc/self/mountinfo` (FUSE, subtype ksock).
const FSTYPE: &str = "fuse.ksock";

/// Checks that a tree may be mounted at `dir`: an existing directory, not already serving a
/// live ksock tree, and empty unless `nonempty` allows it. (A dead ksock mount, whose server
/// was killed, is cleared before this check: see [`crate::clear_stale_mount`].)
pub(crate) fn check(dir: &Path, nonempty: bool) -> io::Result<()> {
    let err = |kind: io::ErrorKind, what: &str| {
        Err(io::Error::new(
            kind,
            format!("cannot mount at {}: {what}", dir.display()),
        ))
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return err(
                io::ErrorKind::NotFound,
                "No such file or directory (create the directory first)",
            );
        }
        Err(e) => return err(e.kind(), &e.to_string()),
    };
    if !meta.is_dir() {
        return err(io::ErrorKind::NotADirectory, "Not a directory");
    }
    let here = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if ksock_mounted_at(&mountinfo, &here) {
        return err(
            io::ErrorKind::ResourceBusy,
            "a ksock tree is already mounted and served there (stop that `ksock mount`, or \
             `umount` it, first)",
        );
    }
    if !nonempty {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot list {}: {e}", dir.display())))?;
        if entries.count() > 0 {
            return err(
                io::ErrorKind::DirectoryNotEmpty,
                "Directory not empty: the mount would hide its files (use an empty \
                 directory, or allow it with `ksock mount --nonempty`)",
            );
        }
    }
    Ok(())
}

/// The mount points of the ksock trees (`fuse.ksock`) that `mountinfo` (the text of
/// `/proc/self/mountinfo`) lists, in its order.
pub fn ksock_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // id parent major:minor root mount-point options [optional...] - fstype source super
            let mut fields = line.split(' ');
            let point = fields.nth(4).map(unescape);
            let fstype = fields.skip_while(|f| *f != "-").nth(1);
            (fstype == Some(FSTYPE)).then_some(point).flatten()
        })
        .collect()
}

/// Whether `mountinfo` lists a ksock mount at `dir`.
fn ksock_mounted_at(mountinfo: &str, dir: &Path) -> bool {
    ksock_mounts(mountinfo).iter().any(|p| p == dir)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
98 22 0:50 / /tmp/a\\040b/net rw,nosuid,nodev,noexec,noatime shared:60 - fuse.ksock ksock rw,user_id=0,group_id=0
99 22 0:51 / /srv/other rw,relatime - fuse.sshfs host: rw
";

    #[test]
    fn finds_ksock_mounts_by_point_and_type() {
        assert!(ksock_mounted_at(INFO, Path::new("/tmp/a b/net")));
        assert!(!ksock_mounted_at(INFO, Path::new("/tmp/a b")));
        assert!(!ksock_mounted_at(INFO, Path::new("/srv/other")));
        assert!(!ksock_mounted_at(INFO, Path::new("/proc")));
        assert!(!ksock_mounted_at("", Path::new("/")));
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/a\\040b\\134c"), PathBuf::from("/a b\\c"));
        assert_eq!(unescape("/x\\04"), PathBuf::from("/x\\04"));
    }

    #[test]
    fn refuses_files_full_directories_and_missing_ones() {
        let tmp = tempdir();
        let file = tmp.join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = check(&file, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory);
        assert!(e.to_string().ends_with("Not a directory"), "{e}");
        let e = check(&tmp, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::DirectoryNotEmpty, "{e}");
        assert!(e.to_string().contains("--nonempty"), "{e}");
        check(&tmp, true).unwrap();
        let empty = tmp.join("empty");
        std::fs::create_dir(&empty).unwrap();
        check(&empty, false).unwrap();
        let e = check(&tmp.join("missing"), false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("ksock-mountpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        d
    }
}
