//! The 9P2000 messages, and their encoding (`intro(5)` of Plan 9): little-endian integers,
//! strings as a 2-byte length and UTF-8, data as a 4-byte count and bytes.
//!
//! [`decode`] takes one whole message (its 4-byte size included) and checks every length
//! against what is there: a message that is short, long, of an unknown type, with a string
//! that is not UTF-8 or holds a NUL, or with more than [`MAXWELEM`] walk names, is an error,
//! never a panic. The data of `Tread`/`Rwrite` and `Twrite`/`Rread` is a slice of the
//! message's own buffer ([`Bytes`]), not a copy.

use bytes::Bytes;
use core::fmt;

/// The version string this implementation speaks.
pub const VERSION: &str = "9P2000";
/// The tag of `Tversion`.
pub const NOTAG: u16 = 0xffff;
/// "No fid" (an attach without authentication).
pub const NOFID: u32 = 0xffff_ffff;
/// At most this many names in one walk.
pub const MAXWELEM: usize = 16;
/// The bytes of a `Tread`/`Twrite`/`Rread` header (size, type, tag, fid, offset, count):
/// a read or write carries at most `msize - IOHDRSZ` bytes.
pub const IOHDRSZ: u32 = 24;

/// Directory bit of a qid's type.
pub const QTDIR: u8 = 0x80;
/// Append-only file.
pub const QTAPPEND: u8 = 0x40;
/// Exclusive-use file.
pub const QTEXCL: u8 = 0x20;
/// Plain file.
pub const QTFILE: u8 = 0;
/// Directory bit of a stat's mode.
pub const DMDIR: u32 = 0x8000_0000;

/// Open for reading.
pub const OREAD: u8 = 0;
/// Open for writing.
pub const OWRITE: u8 = 1;
/// Open for reading and writing.
pub const ORDWR: u8 = 2;
/// Open for execution (read access).
pub const OEXEC: u8 = 3;
/// Truncate on open.
pub const OTRUNC: u8 = 0x10;
/// Remove on clunk.
pub const ORCLOSE: u8 = 0x40;

/// A server's unique name for a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct Qid {
    /// `QTDIR`, `QTFILE`...
    pub ty: u8,
    /// Version (changes when the file does; 0 here).
    pub version: u32,
    /// Unique among the server's files.
    pub path: u64,
}

/// A directory entry, as `stat(5)` has it.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Stat {
    /// Kernel use (0).
    pub ty: u16,
    /// Kernel use (0).
    pub dev: u32,
    /// The qid.
    pub qid: Qid,
    /// Permission bits and `DMDIR`.
    pub mode: u32,
    /// Last access, seconds since 1970.
    pub atime: u32,
    /// Last modification, seconds since 1970.
    pub mtime: u32,
    /// Length in bytes.
    pub length: u64,
    /// File name.
    pub name: String,
    /// Owner.
    pub uid: String,
    /// Group.
    pub gid: String,
    /// Last modifier.
    pub muid: String,
}

impl Stat {
    /// Bytes of its encoding, its own 2-byte size included.
    pub fn encoded_len(&self) -> usize {
        2 + 2
            + 4
            + 13
            + 4
            + 4
            + 4
            + 8
            + 8
            + self.name.len()
            + self.uid.len()
            + self.gid.len()
            + self.muid.len()
    }

    /// Appends its encoding (as in a directory read: `size[2]` then the fields).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put16(out, (self.encoded_len() - 2) as u16);
        put16(out, self.ty);
        put32(out, self.dev);
        put_qid(out, &self.qid);
        put32(out, self.mode);
        put32(out, self.atime);
        put32(out, self.mtime);
        put64(out, self.length);
        put_str(out, &self.name);
        put_str(out, &self.uid);
        put_str(out, &self.gid);
        put_str(out, &self.muid);
    }

    /// Decodes one stat from the front of `buf`, returning it and the bytes it took.
    pub fn decode(buf: &[u8]) -> Result<(Stat, usize), DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let st = r.stat()?;
        Ok((st, r.pos))
    }

    /// Whether every field says "do not change" (a `Twstat` that only asks for a sync).
    pub fn is_dont_touch(&self) -> bool {
        self.ty == u16::MAX
            && self.dev == u32::MAX
            && self.qid.ty == u8::MAX
            && self.qid.version == u32::MAX
            && self.qid.path == u64::MAX
            && self.mode == u32::MAX
            && self.atime == u32::MAX
            && self.mtime == u32::MAX
            && self.length == u64::MAX
            && self.name.is_empty()
            && self.uid.is_empty()
            && self.gid.is_empty()
            && self.muid.is_empty()
    }
}

/// One 9P2000 message (a T-message from a client or an R-message from a server). The
/// fields have the names of Plan 9's `fcall(3)`.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Fcall {
    /// Negotiates the message size and version; starts a session.
    Tversion { msize: u32, version: String },
    /// The server's size and version.
    Rversion { msize: u32, version: String },
    /// Asks for an authentication file.
    Tauth {
        afid: u32,
        uname: String,
        aname: String,
    },
    /// The authentication file.
    Rauth { aqid: Qid },
    /// Attaches `fid` to the root of the tree `aname`.
    Tattach {
        fid: u32,
        afid: u32,
        uname: String,
        aname: String,
    },
    /// The root's qid.
    Rattach { qid: Qid },
    /// A request failed.
    Rerror { ename: String },
    /// Cancels the request with tag `oldtag`.
    Tflush { oldtag: u16 },
    /// The flushed request is answered.
    Rflush,
    /// Walks `fid` through `wnames` to `newfid`.
    Twalk {
        fid: u32,
        newfid: u32,
        wnames: Vec<String>,
    },
    /// The qids of the names walked.
    Rwalk { wqids: Vec<Qid> },
    /// Opens `fid`.
    Topen { fid: u32, mode: u8 },
    /// Opened.
    Ropen { qid: Qid, iounit: u32 },
    /// Creates `name` in the directory `fid`.
    Tcreate {
        fid: u32,
        name: String,
        perm: u32,
        mode: u8,
    },
    /// Created.
    Rcreate { qid: Qid, iounit: u32 },
    /// Reads at most `count` bytes at `offset`.
    Tread { fid: u32, offset: u64, count: u32 },
    /// What was read (empty: end of file).
    Rread { data: Bytes },
    /// Writes `data` at `offset`.
    Twrite { fid: u32, offset: u64, data: Bytes },
    /// How many bytes were written.
    Rwrite { count: u32 },
    /// Forgets `fid`.
    Tclunk { fid: u32 },
    /// Forgotten.
    Rclunk,
    /// Removes the file and forgets `fid`.
    Tremove { fid: u32 },
    /// Removed.
    Rremove,
    /// Asks for the file's stat.
    Tstat { fid: u32 },
    /// The stat.
    Rstat { stat: Stat },
    /// Changes the file's stat.
    Twstat { fid: u32, stat: Stat },
    /// Changed.
    Rwstat,
}

/// Message type numbers.
mod ty {
    pub const TVERSION: u8 = 100;
    pub const RVERSION: u8 = 101;
    pub const TAUTH: u8 = 102;
    pub const RAUTH: u8 = 103;
    pub const TATTACH: u8 = 104;
    pub const RATTACH: u8 = 105;
    pub const RERROR: u8 = 107;
    pub const TFLUSH: u8 = 108;
    pub const RFLUSH: u8 = 109;
    pub const TWALK: u8 = 110;
    pub const RWALK: u8 = 111;
    pub const TOPEN: u8 = 112;
    pub const ROPEN: u8 = 113;
    pub const TCREATE: u8 = 114;
    pub const RCREATE: u8 = 115;
    pub const TREAD: u8 = 116;
    pub const RREAD: u8 = 117;
    pub const TWRITE: u8 = 118;
    pub const RWRITE: u8 = 119;
    pub const TCLUNK: u8 = 120;
    pub const RCLUNK: u8 = 121;
    pub const TREMOVE: u8 = 122;
    pub const RREMOVE: u8 = 123;
    pub const TSTAT: u8 = 124;
    pub const RSTAT: u8 = 125;
    pub const TWSTAT: u8 = 126;
    pub const RWSTAT: u8 = 127;
}

impl Fcall {
    /// The message's type number.
    pub fn type_number(&self) -> u8 {
        use ty::*;
        match self {
            Fcall::Tversion { .. } => TVERSION,
            Fcall::Rversion { .. } => RVERSION,
            Fcall::Tauth { .. } => TAUTH,
            Fcall::Rauth { .. } => RAUTH,
            Fcall::Tattach { .. } => TATTACH,
            Fcall::Rattach { .. } => RATTACH,
            Fcall::Rerror { .. } => RERROR,
            Fcall::Tflush { .. } => TFLUSH,
            Fcall::Rflush => RFLUSH,
            Fcall::Twalk { .. } => TWALK,
            Fcall::Rwalk { .. } => RWALK,
            Fcall::Topen { .. } => TOPEN,
            Fcall::Ropen { .. } => ROPEN,
            Fcall::Tcreate { .. } => TCREATE,
            Fcall::Rcreate { .. } => RCREATE,
            Fcall::Tread { .. } => TREAD,
            Fcall::Rread { .. } => RREAD,
            Fcall::Twrite { .. } => TWRITE,
            Fcall::Rwrite { .. } => RWRITE,
            Fcall::Tclunk { .. } => TCLUNK,
            Fcall::Rclunk => RCLUNK,
            Fcall::Tremove { .. } => TREMOVE,
            Fcall::Rremove => RREMOVE,
            Fcall::Tstat { .. } => TSTAT,
            Fcall::Rstat { .. } => RSTAT,
            Fcall::Twstat { .. } => TWSTAT,
            Fcall::Rwstat => RWSTAT,
        }
    }

    /// A short name for logs ("Twalk").
    pub fn name(&self) -> &'static str {
        match self {
            Fcall::Tversion { .. } => "Tversion",
            Fcall::Rversion { .. } => "Rversion",
            Fcall::Tauth { .. } => "Tauth",
            Fcall::Rauth { .. } => "Rauth",
            Fcall::Tattach { .. } => "Tattach",
            Fcall::Rattach { .. } => "Rattach",
            Fcall::Rerror { .. } => "Rerror",
            Fcall::Tflush { .. } => "Tflush",
            Fcall::Rflush => "Rflush",
            Fcall::Twalk { .. } => "Twalk",
            Fcall::Rwalk { .. } => "Rwalk",
            Fcall::Topen { .. } => "Topen",
            Fcall::Ropen { .. } => "Ropen",
            Fcall::Tcreate { .. } => "Tcreate",
            Fcall::Rcreate { .. } => "Rcreate",
            Fcall::Tread { .. } => "Tread",
            Fcall::Rread { .. } => "Rread",
            Fcall::Twrite { .. } => "Twrite",
            Fcall::Rwrite { .. } => "Rwrite",
            Fcall::Tclunk { .. } => "Tclunk",
            Fcall::Rclunk => "Rclunk",
            Fcall::Tremove { .. } => "Tremove",
            Fcall::Rremove => "Rremove",
            Fcall::Tstat { .. } => "Tstat",
            Fcall::Rstat { .. } => "Rstat",
            Fcall::Twstat { .. } => "Twstat",
            Fcall::Rwstat => "Rwstat",
        }
    }

    /// Appends the whole message (size, type, tag, fields) to `out`.
    pub fn encode(&self, tag: u16, out: &mut Vec<u8>) {
        let start = out.len();
        put32(out, 0);
        out.push(self.type_number());
        put16(out, tag);
        match self {
            Fcall::Tversion { msize, version } | Fcall::Rversion { msize, version } => {
                put32(out, *msize);
                put_str(out, version);
            }
            Fcall::Tauth { afid, uname, aname } => {
                put32(out, *afid);
                put_str(out, uname);
                put_str(out, aname);
            }
            Fcall::Rauth { aqid: qid } | Fcall::Rattach { qid } => put_qid(out, qid),
            Fcall::Tattach {
                fid,
                afid,
                uname,
                aname,
            } => {
                put32(out, *fid);
                put32(out, *afid);
                put_str(out, uname);
                put_str(out, aname);
            }
            Fcall::Rerror { ename } => put_str(out, ename),
            Fcall::Tflush { oldtag } => put16(out, *oldtag),
            Fcall::Rflush | Fcall::Rclunk | Fcall::Rremove | Fcall::Rwstat => {}
            Fcall::Twalk {
                fid,
                newfid,
                wnames,
            } => {
                put32(out, *fid);
                put32(out, *newfid);
                put16(out, wnames.len() as u16);
                for n in wnames {
                    put_str(out, n);
                }
            }
            Fcall::Rwalk { wqids } => {
                put16(out, wqids.len() as u16);
                for q in wqids {
                    put_qid(out, q);
                }
            }
            Fcall::Topen { fid, mode } => {
                put32(out, *fid);
                out.push(*mode);
            }
            Fcall::Ropen { qid, iounit } | Fcall::Rcreate { qid, iounit } => {
                put_qid(out, qid);
                put32(out, *iounit);
            }
            Fcall::Tcreate {
                fid,
                name,
                perm,
                mode,
            } => {
                put32(out, *fid);
                put_str(out, name);
                put32(out, *perm);
                out.push(*mode);
            }
            Fcall::Tread { fid, offset, count } => {
                put32(out, *fid);
                put64(out, *offset);
                put32(out, *count);
            }
            Fcall::Rread { data } => {
                put32(out, data.len() as u32);
                out.extend_from_slice(data);
            }
            Fcall::Twrite { fid, offset, data } => {
                put32(out, *fid);
                put64(out, *offset);
                put32(out, data.len() as u32);
                out.extend_from_slice(data);
            }
            Fcall::Rwrite { count } => put32(out, *count),
            Fcall::Tclunk { fid } | Fcall::Tremove { fid } | Fcall::Tstat { fid } => {
                put32(out, *fid)
            }
            Fcall::Rstat { stat } => {
                put16(out, stat.encoded_len() as u16);
                stat.encode(out);
            }
            Fcall::Twstat { fid, stat } => {
                put32(out, *fid);
                put16(out, stat.encoded_len() as u16);
                stat.encode(out);
            }
        }
        let size = (out.len() - start) as u32;
        out[start..start + 4].copy_from_slice(&size.to_le_bytes());
    }

    /// The whole message as bytes.
    pub fn to_bytes(&self, tag: u16) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(tag, &mut v);
        v
    }
}

/// Why a message could not be decoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// Fewer bytes than the fields need.
    Short,
    /// Bytes left over after the fields, or a size field that disagrees with the message.
    Long,
    /// A size smaller than the 7-byte header.
    BadSize,
    /// A type number that is not a 9P2000 message.
    BadType(u8),
    /// A string that is not UTF-8 or holds a NUL.
    BadString,
    /// A walk of more than [`MAXWELEM`] names (or qids).
    TooManyNames,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short => f.write_str("message shorter than its fields"),
            DecodeError::Long => f.write_str("message longer than its fields"),
            DecodeError::BadSize => f.write_str("message size below the 7-byte header"),
            DecodeError::BadType(t) => write!(f, "unknown message type {t}"),
            DecodeError::BadString => f.write_str("string not UTF-8 or holding a NUL"),
            DecodeError::TooManyNames => write!(f, "walk of more than {MAXWELEM} names"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads the size field at the front of a message: how many bytes the whole message has.
pub fn frame_len(head: [u8; 4]) -> u32 {
    u32::from_le_bytes(head)
}

/// Decodes one whole message (`frame` starts with its size field and is exactly that
/// long): its tag and contents.
pub fn decode(frame: Bytes) -> Result<(u16, Fcall), DecodeError> {
    if frame.len() < 7 {
        return Err(DecodeError::BadSize);
    }
    let size = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    if size < 7 {
        return Err(DecodeError::BadSize);
    }
    if size != frame.len() {
        return Err(if size < frame.len() {
            DecodeError::Long
        } else {
            DecodeError::Short
        });
    }
    let mut r = Reader {
        buf: &frame,
        pos: 4,
    };
    let t = r.u8()?;
    let tag = r.u16()?;
    use ty::*;
    let f = match t {
        TVERSION => Fcall::Tversion {
            msize: r.u32()?,
            version: r.str()?,
        },
        RVERSION => Fcall::Rversion {
            msize: r.u32()?,
            version: r.str()?,
        },
        TAUTH => Fcall::Tauth {
            afid: r.u32()?,
            uname: r.str()?,
            aname: r.str()?,
        },
        RAUTH => Fcall::Rauth { aqid: r.qid()? },
        TATTACH => Fcall::Tattach {
            fid: r.u32()?,
            afid: r.u32()?,
            uname: r.str()?,
            aname: r.str()?,
        },
        RATTACH => Fcall::Rattach { qid: r.qid()? },
        RERROR => Fcall::Rerror { ename: r.str()? },
        TFLUSH => Fcall::Tflush { oldtag: r.u16()? },
        RFLUSH => Fcall::Rflush,
        TWALK => {
            let fid = r.u32()?;
            let newfid = r.u32()?;
            let n = r.u16()? as usize;
            if n > MAXWELEM {
                return Err(DecodeError::TooManyNames);
            }
            let mut wnames = Vec::with_capacity(n);
            for _ in 0..n {
                wnames.push(r.str()?);
            }
            Fcall::Twalk {
                fid,
                newfid,
                wnames,
            }
        }
        RWALK => {
            let n = r.u16()? as usize;
            if n > MAXWELEM {
                return Err(DecodeError::TooManyNames);
            }
            let mut wqids = Vec::with_capacity(n);
            for _ in 0..n {
                wqids.push(r.qid()?);
            }
            Fcall::Rwalk { wqids }
        }
        TOPEN => Fcall::Topen {
            fid: r.u32()?,
            mode: r.u8()?,
        },
        ROPEN => Fcall::Ropen {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        TCREATE => Fcall::Tcreate {
            fid: r.u32()?,
            name: r.str()?,
            perm: r.u32()?,
            mode: r.u8()?,
        },
        RCREATE => Fcall::Rcreate {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        TREAD => Fcall::Tread {
            fid: r.u32()?,
            offset: r.u64()?,
            count: r.u32()?,
        },
        RREAD => {
            let n = r.u32()? as usize;
            let at = r.take(n)?;
            Fcall::Rread {
                data: frame.slice(at..at + n),
            }
        }
        TWRITE => {
            let fid = r.u32()?;
            let offset = r.u64()?;
            let n = r.u32()? as usize;
            let at = r.take(n)?;
            Fcall::Twrite {
                fid,
                offset,
                data: frame.slice(at..at + n),
            }
        }
        RWRITE => Fcall::Rwrite { count: r.u32()? },
        TCLUNK => Fcall::Tclunk { fid: r.u32()? },
        RCLUNK => Fcall::Rclunk,
        TREMOVE => Fcall::Tremove { fid: r.u32()? },
        RREMOVE => Fcall::Rremove,
        TSTAT => Fcall::Tstat { fid: r.u32()? },
        RSTAT => Fcall::Rstat {
            stat: r.sized_stat()?,
        },
        TWSTAT => Fcall::Twstat {
            fid: r.u32()?,
            stat: r.sized_stat()?,
        },
        RWSTAT => Fcall::Rwstat,
        t => return Err(DecodeError::BadType(t)),
    };
    if r.pos != frame.len() {
        return Err(DecodeError::Long);
    }
    Ok((tag, f))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// Skips `n` bytes, returning where they start.
    fn take(&mut self, n: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let end = at.checked_add(n).ok_or(DecodeError::Short)?;
        if end > self.buf.len() {
            return Err(DecodeError::Short);
        }
        self.pos = end;
        Ok(at)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.take(N)?;
        let mut a = [0; N];
        a.copy_from_slice(&self.buf[at..at + N]);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.bytes().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.bytes().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.bytes().map(u64::from_le_bytes)
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.u16()? as usize;
        let at = self.take(n)?;
        let s = core::str::from_utf8(&self.buf[at..at + n]).map_err(|_| DecodeError::BadString)?;
        if s.contains('\0') {
            return Err(DecodeError::BadString);
        }
        Ok(s.to_owned())
    }

    fn qid(&mut self) -> Result<Qid, DecodeError> {
        Ok(Qid {
            ty: self.u8()?,
            version: self.u32()?,
            path: self.u64()?,
        })
    }

    /// A stat with its own size field, which must match its fields exactly.
    fn stat(&mut self) -> Result<Stat, DecodeError> {
        let n = self.u16()? as usize;
        let start = self.pos;
        let end = start.checked_add(n).ok_or(DecodeError::Short)?;
        if end > self.buf.len() {
            return Err(DecodeError::Short);
        }
        let st = Stat {
            ty: self.u16()?,
            dev: self.u32()?,
            qid: self.qid()?,
            mode: self.u32()?,
            atime: self.u32()?,
            mtime: self.u32()?,
            length: self.u64()?,
            name: self.str()?,
            uid: self.str()?,
            gid: self.str()?,
            muid: self.str()?,
        };
        match self.pos.cmp(&end) {
            core::cmp::Ordering::Equal => Ok(st),
            core::cmp::Ordering::Less => Err(DecodeError::Long),
            core::cmp::Ordering::Greater => Err(DecodeError::Short),
        }
    }

    /// `Rstat`/`Twstat` wrap the stat in one more 2-byte count.
    fn sized_stat(&mut self) -> Result<Stat, DecodeError> {
        let n = self.u16()? as usize;
        let start = self.pos;
        let st = self.stat()?;
        if self.pos - start != n {
            return Err(DecodeError::Long);
        }
        Ok(st)
    }
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Strings longer than a 2-byte count are cut (none of ours come near 64 KiB).
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    put16(out, b.len() as u16);
    out.extend_from_slice(b);
}

fn put_qid(out: &mut Vec<u8>, q: &Qid) {
    out.push(q.ty);
    put32(out, q.version);
    put64(out, q.path);
}
