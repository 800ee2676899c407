//! Error numbers with Linux numbering and names.
//!
//! Every fallible ksock call returns `Result<_, Errno>`. The numbers are Linux's, so the
//! POSIX face can hand them to C callers unchanged, and `Display` prints the message the C
//! library prints for `strerror`.

use core::fmt;

/// A Linux error number (`EAGAIN` = `EWOULDBLOCK` = 11).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(i32);

/// Shorthand for results of socket calls.
pub type Result<T, E = Errno> = core::result::Result<T, E>;

impl Errno {
    /// `EPERM` (1).
    pub const EPERM: Errno = Errno(1);
    /// `ENOENT` (2).
    pub const ENOENT: Errno = Errno(2);
    /// `ESRCH` (3).
    pub const ESRCH: Errno = Errno(3);
    /// `EINTR` (4).
    pub const EINTR: Errno = Errno(4);
    /// `EIO` (5).
    pub const EIO: Errno = Errno(5);
    /// `ENXIO` (6).
    pub const ENXIO: Errno = Errno(6);
    /// `E2BIG` (7).
    pub const E2BIG: Errno = Errno(7);
    /// `ENOEXEC` (8).
    pub const ENOEXEC: Errno = Errno(8);
    /// `EBADF` (9).
    pub const EBADF: Errno = Errno(9);
    /// `ECHILD` (10).
    pub const ECHILD: Errno = Errno(10);
    /// `EAGAIN` (11).
    pub const EAGAIN: Errno = Errno(11);
    /// `ENOMEM` (12).
    pub const ENOMEM: Errno = Errno(12);
    /// `EACCES` (13).
    pub const EACCES: Errno = Errno(13);
    /// `EFAULT` (14).
    pub const EFAULT: Errno = Errno(14);
    /// `ENOTBLK` (15).
    pub const ENOTBLK: Errno = Errno(15);
    /// `EBUSY` (16).
    pub const EBUSY: Errno = Errno(16);
    /// `EEXIST` (17).
    pub const EEXIST: Errno = Errno(17);
    /// `EXDEV` (18).
    pub const EXDEV: Errno = Errno(18);
    /// `ENODEV` (19).
    pub const ENODEV: Errno = Errno(19);
    /// `ENOTDIR` (20).
    pub const ENOTDIR: Errno = Errno(20);
    /// `EISDIR` (21).
    pub const EISDIR: Errno = Errno(21);
    /// `EINVAL` (22).
    pub const EINVAL: Errno = Errno(22);
    /// `ENFILE` (23).
    pub const ENFILE: Errno = Errno(23);
    /// `EMFILE` (24).
    pub const EMFILE: Errno = Errno(24);
    /// `ENOTTY` (25).
    pub const ENOTTY: Errno = Errno(25);
    /// `ETXTBSY` (26).
    pub const ETXTBSY: Errno = Errno(26);
    /// `EFBIG` (27).
    pub const EFBIG: Errno = Errno(27);
    /// `ENOSPC` (28).
    pub const ENOSPC: Errno = Errno(28);
    /// `ESPIPE` (29).
    pub const ESPIPE: Errno = Errno(29);
    /// `EROFS` (30).
    pub const EROFS: Errno = Errno(30);
    /// `EMLINK` (31).
    pub const EMLINK: Errno = Errno(31);
    /// `EPIPE` (32).
    pub const EPIPE: Errno = Errno(32);
    /// `EDOM` (33).
    pub const EDOM: Errno = Errno(33);
    /// `ERANGE` (34).
    pub const ERANGE: Errno = Errno(34);
    /// `EDEADLK` (35).
    pub const EDEADLK: Errno = Errno(35);
    /// `ENAMETOOLONG` (36).
    pub const ENAMETOOLONG: Errno = Errno(36);
    /// `ENOLCK` (37).
    pub const ENOLCK: Errno = Errno(37);
    /// `ENOSYS` (38).
    pub const ENOSYS: Errno = Errno(38);
    /// `ENOTEMPTY` (39).
    pub const ENOTEMPTY: Errno = Errno(39);
    /// `ELOOP` (40).
    pub const ELOOP: Errno = Errno(40);
    /// `ENOMSG` (42).
    pub const ENOMSG: Errno = Errno(42);
    /// `EIDRM` (43).
    pub const EIDRM: Errno = Errno(43);
    /// `ECHRNG` (44).
    pub const ECHRNG: Errno = Errno(44);
    /// `EL2NSYNC` (45).
    pub const EL2NSYNC: Errno = Errno(45);
    /// `EL3HLT` (46).
    pub const EL3HLT: Errno = Errno(46);
    /// `EL3RST` (47).
    pub const EL3RST: Errno = Errno(47);
    /// `ELNRNG` (48).
    pub const ELNRNG: Errno = Errno(48);
    /// `EUNATCH` (49).
    pub const EUNATCH: Errno = Errno(49);
    /// `ENOCSI` (50).
    pub const ENOCSI: Errno = Errno(50);
    /// `EL2HLT` (51).
    pub const EL2HLT: Errno = Errno(51);
    /// `EBADE` (52).
    pub const EBADE: Errno = Errno(52);
    /// `EBADR` (53).
    pub const EBADR: Errno = Errno(53);
    /// `EXFULL` (54).
    pub const EXFULL: Errno = Errno(54);
    /// `ENOANO` (55).
    pub const ENOANO: Errno = Errno(55);
    /// `EBADRQC` (56).
    pub const EBADRQC: Errno = Errno(56);
    /// `EBADSLT` (57).
    pub const EBADSLT: Errno = Errno(57);
    /// `EBFONT` (59).
    pub const EBFONT: Errno = Errno(59);
    /// `ENOSTR` (60).
    pub const ENOSTR: Errno = Errno(60);
    /// `ENODATA` (61).
    pub const ENODATA: Errno = Errno(61);
    /// `ETIME` (62).
    pub const ETIME: Errno = Errno(62);
    /// `ENOSR` (63).
    pub const ENOSR: Errno = Errno(63);
    /// `ENONET` (64).
    pub const ENONET: Errno = Errno(64);
    /// `ENOPKG` (65).
    pub const ENOPKG: Errno = Errno(65);
    /// `EREMOTE` (66).
    pub const EREMOTE: Errno = Errno(66);
    /// `ENOLINK` (67).
    pub const ENOLINK: Errno = Errno(67);
    /// `EADV` (68).
    pub const EADV: Errno = Errno(68);
    /// `ESRMNT` (69).
    pub const ESRMNT: Errno = Errno(69);
    /// `ECOMM` (70).
    pub const ECOMM: Errno = Errno(70);
    /// `EPROTO` (71).
    pub const EPROTO: Errno = Errno(71);
    /// `EMULTIHOP` (72).
    pub const EMULTIHOP: Errno = Errno(72);
    /// `EDOTDOT` (73).
    pub const EDOTDOT: Errno = Errno(73);
    /// `EBADMSG` (74).
    pub const EBADMSG: Errno = Errno(74);
    /// `EOVERFLOW` (75).
    pub const EOVERFLOW: Errno = Errno(75);
    /// `ENOTUNIQ` (76).
    pub const ENOTUNIQ: Errno = Errno(76);
    /// `EBADFD` (77).
    pub const EBADFD: Errno = Errno(77);
    /// `EREMCHG` (78).
    pub const EREMCHG: Errno = Errno(78);
    /// `ELIBACC` (79).
    pub const ELIBACC: Errno = Errno(79);
    /// `ELIBBAD` (80).
    pub const ELIBBAD: Errno = Errno(80);
    /// `ELIBSCN` (81).
    pub const ELIBSCN: Errno = Errno(81);
    /// `ELIBMAX` (82).
    pub const ELIBMAX: Errno = Errno(82);
    /// `ELIBEXEC` (83).
    pub const ELIBEXEC: Errno = Errno(83);
    /// `EILSEQ` (84).
    pub const EILSEQ: Errno = Errno(84);
    /// `ERESTART` (85).
    pub const ERESTART: Errno = Errno(85);
    /// `ESTRPIPE` (86).
    pub const ESTRPIPE: Errno = Errno(86);
    /// `EUSERS` (87).
    pub const EUSERS: Errno = Errno(87);
    /// `ENOTSOCK` (88).
    pub const ENOTSOCK: Errno = Errno(88);
    /// `EDESTADDRREQ` (89).
    pub const EDESTADDRREQ: Errno = Errno(89);
    /// `EMSGSIZE` (90).
    pub const EMSGSIZE: Errno = Errno(90);
    /// `EPROTOTYPE` (91).
    pub const EPROTOTYPE: Errno = Errno(91);
    /// `ENOPROTOOPT` (92).
    pub const ENOPROTOOPT: Errno = Errno(92);
    /// `EPROTONOSUPPORT` (93).
    pub const EPROTONOSUPPORT: Errno = Errno(93);
    /// `ESOCKTNOSUPPORT` (94).
    pub const ESOCKTNOSUPPORT: Errno = Errno(94);
    /// `EOPNOTSUPP` (95).
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// `EPFNOSUPPORT` (96).
    pub const EPFNOSUPPORT: Errno = Errno(96);
    /// `EAFNOSUPPORT` (97).
    pub const EAFNOSUPPORT: Errno = Errno(97);
    /// `EADDRINUSE` (98).
    pub const EADDRINUSE: Errno = Errno(98);
    /// `EADDRNOTAVAIL` (99).
    pub const EADDRNOTAVAIL: Errno = Errno(99);
    /// `ENETDOWN` (100).
    pub const ENETDOWN: Errno = Errno(100);
    /// `ENETUNREACH` (101).
    pub const ENETUNREACH: Errno = Errno(101);
    /// `ENETRESET` (102).
    pub const ENETRESET: Errno = Errno(102);
    /// `ECONNABORTED` (103).
    pub const ECONNABORTED: Errno = Errno(103);
    /// `ECONNRESET` (104).
    pub const ECONNRESET: Errno = Errno(104);
    /// `ENOBUFS` (105).
    pub const ENOBUFS: Errno = Errno(105);
    /// `EISCONN` (106).
    pub const EISCONN: Errno = Errno(106);
    /// `ENOTCONN` (107).
    pub const ENOTCONN: Errno = Errno(107);
    /// `ESHUTDOWN` (108).
    pub const ESHUTDOWN: Errno = Errno(108);
    /// `ETOOMANYREFS` (109).
    pub const ETOOMANYREFS: Errno = Errno(109);
    /// `ETIMEDOUT` (110).
    pub const ETIMEDOUT: Errno = Errno(110);
    /// `ECONNREFUSED` (111).
    pub const ECONNREFUSED: Errno = Errno(111);
    /// `EHOSTDOWN` (112).
    pub const EHOSTDOWN: Errno = Errno(112);
    /// `EHOSTUNREACH` (113).
    pub const EHOSTUNREACH: Errno = Errno(113);
    /// `EALREADY` (114).
    pub const EALREADY: Errno = Errno(114);
    /// `EINPROGRESS` (115).
    pub const EINPROGRESS: Errno = Errno(115);
    /// `ESTALE` (116).
    pub const ESTALE: Errno = Errno(116);
    /// `EUCLEAN` (117).
    pub const EUCLEAN: Errno = Errno(117);
    /// `ENOTNAM` (118).
    pub const ENOTNAM: Errno = Errno(118);
    /// `ENAVAIL` (119).
    pub const ENAVAIL: Errno = Errno(119);
    /// `EISNAM` (120).
    pub const EISNAM: Errno = Errno(120);
    /// `EREMOTEIO` (121).
    pub const EREMOTEIO: Errno = Errno(121);
    /// `EDQUOT` (122).
    pub const EDQUOT: Errno = Errno(122);
    /// `ENOMEDIUM` (123).
    pub const ENOMEDIUM: Errno = Errno(123);
    /// `EMEDIUMTYPE` (124).
    pub const EMEDIUMTYPE: Errno = Errno(124);
    /// `ECANCELED` (125).
    pub const ECANCELED: Errno = Errno(125);
    /// `ENOKEY` (126).
    pub const ENOKEY: Errno = Errno(126);
    /// `EKEYEXPIRED` (127).
    pub const EKEYEXPIRED: Errno = Errno(127);
    /// `EKEYREVOKED` (128).
    pub const EKEYREVOKED: Errno = Errno(128);
    /// `EKEYREJECTED` (129).
    pub const EKEYREJECTED: Errno = Errno(129);
    /// `EOWNERDEAD` (130).
    pub const EOWNERDEAD: Errno = Errno(130);
    /// `ENOTRECOVERABLE` (131).
    pub const ENOTRECOVERABLE: Errno = Errno(131);
    /// `ERFKILL` (132).
    pub const ERFKILL: Errno = Errno(132);
    /// `EWOULDBLOCK`, the same number as `EAGAIN`.
    pub const EWOULDBLOCK: Errno = Errno(11);
    /// `ENOTSUP`, the same number as `EOPNOTSUPP`.
    pub const ENOTSUP: Errno = Errno(95);

    /// The error with this Linux number (any number is kept, known or not).
    pub const fn from_raw(n: i32) -> Errno {
        Errno(n)
    }

    /// The Linux number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The symbolic name, such as `"ECONNREFUSED"`; `"E?"` for a number Linux does not define.
    pub fn name(self) -> &'static str {
        lookup(self.0).map_or("E?", |e| e.1)
    }

    /// The message the C library gives for this error, such as `"Connection refused"`.
    pub fn message(self) -> &'static str {
        lookup(self.0).map_or("Unknown error", |e| e.2)
    }

    /// Looks an error up by its symbolic name (`"EAGAIN"`, also `"EWOULDBLOCK"`, `"ENOTSUP"`).
    pub fn from_name(name: &str) -> Option<Errno> {
        match name {
            "EWOULDBLOCK" => return Some(Errno::EWOULDBLOCK),
            "ENOTSUP" => return Some(Errno::ENOTSUP),
            "EDEADLOCK" => return Some(Errno::EDEADLK),
            _ => {}
        }
        TABLE.iter().find(|e| e.1 == name).map(|e| Errno(e.0))
    }
}

fn lookup(n: i32) -> Option<&'static (i32, &'static str, &'static str)> {
    // The table is sorted by number; most numbers sit at index n - 1 or just below.
    TABLE
        .binary_search_by_key(&n, |e| e.0)
        .ok()
        .map(|i| &TABLE[i])
}

impl fmt::Display for Errno {
    /// `"Connection refused"`; with `{:#}`, `"ECONNREFUSED: Connection refused"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{}: {}", self.name(), self.message())
        } else {
            f.write_str(self.message())
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl core::error::Error for Errno {}

#[cfg(feature = "std")]
impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// Linux numbers, names and glibc messages, sorted by number.
static TABLE: &[(i32, &str, &str)] = &[
    (1, "EPERM", "Operation not permitted"),
    (2, "ENOENT", "No such file or directory"),
    (3, "ESRCH", "No such process"),
    (4, "EINTR", "Interrupted system call"),
    (5, "EIO", "Input/output error"),
    (6, "ENXIO", "No such device or address"),
    (7, "E2BIG", "Argument list too long"),
    (8, "ENOEXEC", "Exec format error"),
    (9, "EBADF", "Bad file descriptor"),
    (10, "ECHILD", "No child processes"),
    (11, "EAGAIN", "Resource temporarily unavailable"),
    (12, "ENOMEM", "Cannot allocate memory"),
    (13, "EACCES", "Permission denied"),
    (14, "EFAULT", "Bad address"),
    (15, "ENOTBLK", "Block device required"),
    (16, "EBUSY", "Device or resource busy"),
    (17, "EEXIST", "File exists"),
    (18, "EXDEV", "Invalid cross-device link"),
    (19, "ENODEV", "No such device"),
    (20, "ENOTDIR", "Not a directory"),
    (21, "EISDIR", "Is a directory"),
    (22, "EINVAL", "Invalid argument"),
    (23, "ENFILE", "Too many open files in system"),
    (24, "EMFILE", "Too many open files"),
    (25, "ENOTTY", "Inappropriate ioctl for device"),
    (26, "ETXTBSY", "Text file busy"),
    (27, "EFBIG", "File too large"),
    (28, "ENOSPC", "No space left on device"),
    (29, "ESPIPE", "Illegal seek"),
    (30, "EROFS", "Read-only file system"),
    (31, "EMLINK", "Too many links"),
    (32, "EPIPE", "Broken pipe"),
    (33, "EDOM", "Numerical argument out of domain"),
    (34, "ERANGE", "Numerical result out of range"),
    (35, "EDEADLK", "Resource deadlock avoided"),
    (36, "ENAMETOOLONG", "File name too long"),
    (37, "ENOLCK", "No locks available"),
    (38, "ENOSYS", "Function not implemented"),
    (39, "ENOTEMPTY", "Directory not empty"),
    (40, "ELOOP", "Too many levels of symbolic links"),
    (42, "ENOMSG", "No message of desired type"),
    (43, "EIDRM", "Identifier removed"),
    (44, "ECHRNG", "Channel number out of range"),
    (45, "EL2NSYNC", "Level 2 not synchronized"),
    (46, "EL3HLT", "Level 3 halted"),
    (47, "EL3RST", "Level 3 reset"),
    (48, "ELNRNG", "Link number out of range"),
    (49, "EUNATCH", "Protocol driver not attached"),
    (50, "ENOCSI", "No CSI structure available"),
    (51, "EL2HLT", "Level 2 halted"),
    (52, "EBADE", "Invalid exchange"),
    (53, "EBADR", "Invalid request descriptor"),
    (54, "EXFULL", "Exchange full"),
    (55, "ENOANO", "No anode"),
    (56, "EBADRQC", "Invalid request code"),
    (57, "EBADSLT", "Invalid slot"),
    (59, "EBFONT", "Bad font file format"),
    (60, "ENOSTR", "Device not a stream"),
    (61, "ENODATA", "No data available"),
    (62, "ETIME", "Timer expired"),
    (63, "ENOSR", "Out of streams resources"),
    (64, "ENONET", "Machine is not on the network"),
    (65, "ENOPKG", "Package not installed"),
    (66, "EREMOTE", "Object is remote"),
    (67, "ENOLINK", "Link has been severed"),
    (68, "EADV", "Advertise error"),
    (69, "ESRMNT", "Srmount error"),
    (70, "ECOMM", "Communication error on send"),
    (71, "EPROTO", "Protocol error"),
    (72, "EMULTIHOP", "Multihop attempted"),
    (73, "EDOTDOT", "RFS specific error"),
    (74, "EBADMSG", "Bad message"),
    (75, "EOVERFLOW", "Value too large for defined data type"),
    (76, "ENOTUNIQ", "Name not unique on network"),
    (77, "EBADFD", "File descriptor in bad state"),
    (78, "EREMCHG", "Remote address changed"),
    (79, "ELIBACC", "Can not access a needed shared library"),
    (80, "ELIBBAD", "Accessing a corrupted shared library"),
    (81, "ELIBSCN", ".lib section in a.out corrupted"),
    (
        82,
        "ELIBMAX",
        "Attempting to link in too many shared libraries",
    ),
    (83, "ELIBEXEC", "Cannot exec a shared library directly"),
    (
        84,
        "EILSEQ",
        "Invalid or incomplete multibyte or wide character",
    ),
    (
        85,
        "ERESTART",
        "Interrupted system call should be restarted",
    ),
    (86, "ESTRPIPE", "Streams pipe error"),
    (87, "EUSERS", "Too many users"),
    (88, "ENOTSOCK", "Socket operation on non-socket"),
    (89, "EDESTADDRREQ", "Destination address required"),
    (90, "EMSGSIZE", "Message too long"),
    (91, "EPROTOTYPE", "Protocol wrong type for socket"),
    (92, "ENOPROTOOPT", "Protocol not available"),
    (93, "EPROTONOSUPPORT", "Protocol not supported"),
    (94, "ESOCKTNOSUPPORT", "Socket type not supported"),
    (95, "EOPNOTSUPP", "Operation not supported"),
    (96, "EPFNOSUPPORT", "Protocol family not supported"),
    (
        97,
        "EAFNOSUPPORT",
        "Address family not supported by protocol",
    ),
    (98, "EADDRINUSE", "Address already in use"),
    (99, "EADDRNOTAVAIL", "Cannot assign requested address"),
    (100, "ENETDOWN", "Network is down"),
    (101, "ENETUNREACH", "Network is unreachable"),
    (102, "ENETRESET", "Network dropped connection on reset"),
    (103, "ECONNABORTED", "Software caused connection abort"),
    (104, "ECONNRESET", "Connection reset by peer"),
    (105, "ENOBUFS", "No buffer space available"),
    (106, "EISCONN", "Transport endpoint is already connected"),
    (107, "ENOTCONN", "Transport endpoint is not connected"),
    (
        108,
        "ESHUTDOWN",
        "Cannot send after transport endpoint shutdown",
    ),
    (109, "ETOOMANYREFS", "Too many references: cannot splice"),
    (110, "ETIMEDOUT", "Connection timed out"),
    (111, "ECONNREFUSED", "Connection refused"),
    (112, "EHOSTDOWN", "Host is down"),
    (113, "EHOSTUNREACH", "No route to host"),
    (114, "EALREADY", "Operation already in progress"),
    (115, "EINPROGRESS", "Operation now in progress"),
    (116, "ESTALE", "Stale file handle"),
    (117, "EUCLEAN", "Structure needs cleaning"),
    (118, "ENOTNAM", "Not a XENIX named type file"),
    (119, "ENAVAIL", "No XENIX semaphores available"),
    (120, "EISNAM", "Is a named type file"),
    (121, "EREMOTEIO", "Remote I/O error"),
    (122, "EDQUOT", "Disk quota exceeded"),
    (123, "ENOMEDIUM", "No medium found"),
    (124, "EMEDIUMTYPE", "Wrong medium type"),
    (125, "ECANCELED", "Operation canceled"),
    (126, "ENOKEY", "Required key not available"),
    (127, "EKEYEXPIRED", "Key has expired"),
    (128, "EKEYREVOKED", "Key has been revoked"),
    (129, "EKEYREJECTED", "Key was rejected by service"),
    (130, "EOWNERDEAD", "Owner died"),
    (131, "ENOTRECOVERABLE", "State not recoverable"),
    (132, "ERFKILL", "Operation not possible due to RF-kill"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn numbers_names_and_messages_are_linux() {
        assert_eq!(Errno::EAGAIN.raw(), 11);
        assert_eq!(Errno::EWOULDBLOCK, Errno::EAGAIN);
        assert_eq!(Errno::ECONNREFUSED.raw(), 111);
        assert_eq!(Errno::ENAMETOOLONG.raw(), 36);
        assert_eq!(Errno::EOPNOTSUPP, Errno::ENOTSUP);
        assert_eq!(Errno::ECONNRESET.name(), "ECONNRESET");
        assert_eq!(Errno::EPIPE.message(), "Broken pipe");
        assert_eq!(format!("{}", Errno::EINVAL), "Invalid argument");
        assert_eq!(
            format!("{:#}", Errno::EADDRINUSE),
            "EADDRINUSE: Address already in use"
        );
        assert_eq!(format!("{:?}", Errno::ENOENT), "ENOENT(2)");
        assert_eq!(Errno::from_raw(9999).name(), "E?");
    }

    #[test]
    fn table_is_sorted_and_names_round_trip() {
        for w in TABLE.windows(2) {
            assert!(w[0].0 < w[1].0, "table out of order at {}", w[1].0);
        }
        for e in TABLE {
            assert_eq!(Errno::from_name(e.1), Some(Errno(e.0)));
        }
        assert_eq!(Errno::from_name("EWOULDBLOCK"), Some(Errno::EAGAIN));
        assert_eq!(Errno::from_name("ENOPE"), None);
    }
}
