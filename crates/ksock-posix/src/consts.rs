//! Linux numbers for the POSIX face (the asm-generic values used by x86-64, arm64 and
//! riscv64). The face speaks these numbers on every host, so a caller can pass the values
//! from its C library unchanged on those architectures.

/// `AF_UNSPEC`.
pub const AF_UNSPEC: i32 = 0;
/// `AF_UNIX` / `AF_LOCAL`: the ksock local family.
pub const AF_UNIX: i32 = 1;
/// `AF_INET`.
pub const AF_INET: i32 = 2;
/// `AF_INET6`.
pub const AF_INET6: i32 = 10;
/// One past the largest address family Linux knows (`NPROTO` = `AF_MAX`).
pub const NPROTO: i32 = 46;

/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: i32 = 2;
/// `SOCK_RAW`.
pub const SOCK_RAW: i32 = 3;
/// `SOCK_RDM`.
pub const SOCK_RDM: i32 = 4;
/// `SOCK_SEQPACKET`.
pub const SOCK_SEQPACKET: i32 = 5;
/// The type bits of the `type` argument.
pub const SOCK_TYPE_MASK: i32 = 0xf;
/// One past the largest socket type (`SOCK_PACKET` = 10).
pub const SOCK_MAX: i32 = 11;
/// `SOCK_NONBLOCK` (= `O_NONBLOCK`).
pub const SOCK_NONBLOCK: i32 = 0o4000;
/// `SOCK_CLOEXEC` (= `O_CLOEXEC`).
pub const SOCK_CLOEXEC: i32 = 0o2000000;

/// `MSG_OOB`.
pub const MSG_OOB: i32 = 0x1;
/// `MSG_PEEK`.
pub const MSG_PEEK: i32 = 0x2;
/// `MSG_DONTROUTE`.
pub const MSG_DONTROUTE: i32 = 0x4;
/// `MSG_CTRUNC`.
pub const MSG_CTRUNC: i32 = 0x8;
/// `MSG_TRUNC`.
pub const MSG_TRUNC: i32 = 0x20;
/// `MSG_DONTWAIT`.
pub const MSG_DONTWAIT: i32 = 0x40;
/// `MSG_EOR`.
pub const MSG_EOR: i32 = 0x80;
/// `MSG_WAITALL`.
pub const MSG_WAITALL: i32 = 0x100;
/// `MSG_ERRQUEUE`.
pub const MSG_ERRQUEUE: i32 = 0x2000;
/// `MSG_NOSIGNAL`.
pub const MSG_NOSIGNAL: i32 = 0x4000;
/// `MSG_MORE`.
pub const MSG_MORE: i32 = 0x8000;
/// `MSG_CMSG_CLOEXEC`.
pub const MSG_CMSG_CLOEXEC: i32 = 0x4000_0000;

/// `SHUT_RD`.
pub const SHUT_RD: i32 = 0;
/// `SHUT_WR`.
pub const SHUT_WR: i32 = 1;
/// `SHUT_RDWR`.
pub const SHUT_RDWR: i32 = 2;

/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 1;
/// `SO_TYPE`.
pub const SO_TYPE: i32 = 3;
/// `SO_ERROR`.
pub const SO_ERROR: i32 = 4;
/// `SO_SNDBUF`.
pub const SO_SNDBUF: i32 = 7;
/// `SO_RCVBUF`.
pub const SO_RCVBUF: i32 = 8;
/// `SO_RCVLOWAT`.
pub const SO_RCVLOWAT: i32 = 18;
/// `SO_SNDLOWAT`.
pub const SO_SNDLOWAT: i32 = 19;
/// `SO_RCVTIMEO` (`SO_RCVTIMEO_OLD`; a 64-bit `struct timeval`).
pub const SO_RCVTIMEO: i32 = 20;
/// `SO_SNDTIMEO` (`SO_SNDTIMEO_OLD`).
pub const SO_SNDTIMEO: i32 = 21;
/// `SO_PEERCRED` (a `struct ucred`: pid, uid, gid).
pub const SO_PEERCRED: i32 = 17;
/// `SO_ACCEPTCONN`.
pub const SO_ACCEPTCONN: i32 = 30;
/// `SO_PROTOCOL`.
pub const SO_PROTOCOL: i32 = 38;
/// `SO_DOMAIN`.
pub const SO_DOMAIN: i32 = 39;
/// `SO_RCVTIMEO_NEW` (a `struct __kernel_sock_timeval`, the same layout on 64-bit).
pub const SO_RCVTIMEO_NEW: i32 = 66;
/// `SO_SNDTIMEO_NEW`.
pub const SO_SNDTIMEO_NEW: i32 = 67;

/// `F_DUPFD`.
pub const F_DUPFD: i32 = 0;
/// `F_GETFD`.
pub const F_GETFD: i32 = 1;
/// `F_SETFD`.
pub const F_SETFD: i32 = 2;
/// `F_GETFL`.
pub const F_GETFL: i32 = 3;
/// `F_SETFL`.
pub const F_SETFL: i32 = 4;
/// `F_DUPFD_CLOEXEC`.
pub const F_DUPFD_CLOEXEC: i32 = 1030;
/// `FD_CLOEXEC`.
pub const FD_CLOEXEC: i32 = 1;

/// `O_RDWR` (every socket descriptor is open for reading and writing).
pub const O_RDWR: i32 = 0o2;
/// `O_APPEND`.
pub const O_APPEND: i32 = 0o2000;
/// `O_NONBLOCK`.
pub const O_NONBLOCK: i32 = 0o4000;
/// `O_ASYNC` (`FASYNC`).
pub const O_ASYNC: i32 = 0o20000;
/// `O_DIRECT`.
pub const O_DIRECT: i32 = 0o40000;
/// `O_NOATIME`.
pub const O_NOATIME: i32 = 0o1000000;

/// `FIONREAD` (`SIOCINQ`).
pub const FIONREAD: u64 = 0x541B;
/// `FIONBIO`.
pub const FIONBIO: u64 = 0x5421;

/// `POLLIN`.
pub const POLLIN: i16 = 0x1;
/// `POLLPRI`.
pub const POLLPRI: i16 = 0x2;
/// `POLLOUT`.
pub const POLLOUT: i16 = 0x4;
/// `POLLERR`.
pub const POLLERR: i16 = 0x8;
/// `POLLHUP`.
pub const POLLHUP: i16 = 0x10;
/// `POLLNVAL`.
pub const POLLNVAL: i16 = 0x20;
/// `POLLRDNORM`.
pub const POLLRDNORM: i16 = 0x40;
/// `POLLRDBAND`.
pub const POLLRDBAND: i16 = 0x80;
/// `POLLWRNORM`.
pub const POLLWRNORM: i16 = 0x100;
/// `POLLWRBAND`.
pub const POLLWRBAND: i16 = 0x200;
/// `POLLRDHUP`.
pub const POLLRDHUP: i16 = 0x2000;

/// The largest `listen` backlog (`net.core.somaxconn`).
pub const SOMAXCONN: i32 = 4096;
/// `sizeof(struct sockaddr_storage)`: the longest address a call accepts.
pub const SOCKADDR_STORAGE_LEN: usize = 128;
/// `sizeof(struct sockaddr_un)`.
pub const SOCKADDR_UN_LEN: usize = 110;
/// `offsetof(struct sockaddr_un, sun_path)`.
pub const SUN_PATH_OFFSET: usize = 2;
/// `UIO_MAXIOV`: the most iovecs one `sendmsg`/`recvmsg` takes.
pub const UIO_MAXIOV: usize = 1024;
