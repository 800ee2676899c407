//! Where 9P travels: a Unix socket only its owner may use, TCP, or a pair of pipes.
//!
//! A server's default is a Unix socket in the owner's runtime directory
//! ([`default_socket`]): the directory is made mode 0700 and the socket 0600, and each
//! peer's uid is read with `SO_PEERCRED` and must be the server's own, or the connection is
//! closed before a message is read. TCP is only on request, and only on a loopback address
//! unless the caller allows any host (the protocol has no authentication of its own).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where a client connects, as `ksock import` names it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Addr {
    /// A Unix socket: `unix:PATH`, or any name with a `/` in it.
    Unix(PathBuf),
    /// TCP: `tcp:HOST:PORT`, or `HOST:PORT`.
    Tcp(String),
    /// A command whose standard input and output carry 9P: `exec:COMMAND` (run with
    /// `sh -c`), as in `exec:ssh host ksock export --stdio`.
    Exec(String),
}

impl Addr {
    /// Parses `unix:PATH`, `tcp:HOST:PORT`, `exec:COMMAND`, a path (with a `/`), or
    /// `HOST:PORT`.
    pub fn parse(s: &str) -> Result<Addr, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a path (unix:/run/user/1000/ksock/net.9p)".into());
            }
            return Ok(Addr::Unix(p.into()));
        }
        if let Some(c) = s.strip_prefix("exec:") {
            if c.trim().is_empty() {
                return Err("exec: needs a command (exec:ssh host ksock export --stdio)".into());
            }
            return Ok(Addr::Exec(c.into()));
        }
        let tcp = s.strip_prefix("tcp:").unwrap_or(s);
        if s.contains('/') && !s.starts_with("tcp:") {
            return Ok(Addr::Unix(s.into()));
        }
        match tcp.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Addr::Tcp(tcp.into()))
            }
            _ => Err(format!(
                "{s:?} is not an address: give unix:PATH (or a path), tcp:HOST:PORT (or \
                 HOST:PORT), or exec:COMMAND"
            )),
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Tcp(a) => write!(f, "tcp:{a}"),
            Addr::Exec(c) => write!(f, "exec:{c}"),
        }
    }
}

/// The default socket of a server run by this user: `$XDG_RUNTIME_DIR/ksock/net.9p`, else
/// `/run/user/<uid>/ksock/net.9p` when that runtime directory exists, else for root
/// `/run/ksock/net.9p`, else `/tmp/ksock-<uid>/net.9p`.
pub fn default_socket() -> PathBuf {
    let uid = nix::unistd::getuid().as_raw();
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&d).join("ksock").join("net.9p");
    }
    let run_user = PathBuf::from(format!("/run/user/{uid}"));
    if run_user.is_dir() {
        return run_user.join("ksock").join("net.9p");
    }
    if uid == 0 {
        return PathBuf::from("/run/ksock/net.9p");
    }
    PathBuf::from(format!("/tmp/ksock-{uid}/net.9p"))
}

/// The credentials of a Unix socket's peer (`SO_PEERCRED`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PeerCred {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id.
    pub pid: u32,
}

/// The peer of a connected Unix socket.
pub fn peer_cred(s: &UnixStream) -> io::Result<PeerCred> {
    let c = rustix::net::sockopt::socket_peercred(s)?;
    Ok(PeerCred {
        uid: c.uid.as_raw(),
        gid: c.gid.as_raw(),
        pid: c.pid.as_raw_nonzero().get() as u32,
    })
}

/// Binds the server's Unix socket at `path`: its directory is created mode 0700 if missing
/// (a directory that exists must be this user's and not writable by others), a stale socket
/// left by a dead server is replaced, a live one refused (`EADDRINUSE`), and the socket
/// made mode 0600.
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dir)?;
        let me = nix::unistd::getuid().as_raw();
        if m.uid() != me && m.uid() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to uid {}, not to this user ({me}): choose another --socket",
                    dir.display(),
                    m.uid()
                ),
            ));
        }
    }
    if path.exists() {
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{}: a server is already listening there (stop it, or choose \
                         another --socket)",
                        path.display()
                    ),
                ));
            }
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    let l = UnixListener::bind(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", path.display()),
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Whether a TCP listening address may be used without `--insecure-any-host`: only
/// loopback addresses.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Resolves `HOST:PORT` for listening, refusing non-loopback hosts unless `any_host`.
pub fn tcp_listen_addr(s: &str, any_host: bool) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("--listen {s}: {e} (give HOST:PORT, as 127.0.0.1:5640)"))?
        .collect();
    let a = *addrs
        .first()
        .ok_or_else(|| format!("--listen {s}: no address"))?;
    if !any_host && !is_loopback(&a) {
        return Err(format!(
            "--listen {s}: {} is not a loopback address; 9P has no authentication, so anyone \
             who reaches the port may use these sockets (add --insecure-any-host to listen \
             there anyway)",
            a.ip()
        ));
    }
    Ok(a)
}

/// A client's connection: its two directions, and the command behind an `exec:` address
/// (killed and reaped when the connection is dropped).
pub struct Conn {
    /// Where the server's messages come from.
    pub reader: Box<dyn Read + Send>,
    /// Where the client's messages go.
    pub writer: Box<dyn Write + Send>,
    /// The command at the other end (`exec:`).
    pub child: Option<Child>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Connects to `addr`.
pub fn connect(addr: &Addr) -> io::Result<Conn> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}"));
    match addr {
        Addr::Unix(p) => {
            let s = UnixStream::connect(p).map_err(ctx)?;
            Ok(Conn {
                reader: Box::new(s.try_clone()?),
                writer: Box::new(s),
                child: None,
            })
        }
        Addr::Tcp(a) => {
            let s = TcpStream::connect(a).map_err(ctx)?;
            s.set_nodelay(true)?;
            Ok(Conn {
                reader: Box::new(s.try_clone()?),
                writer: Box::new(s),
                child: None,
            })
        }
        Addr::Exec(cmd) => {
            let mut child = Command::new("sh")
                .args(["-c", cmd])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(ctx)?;
            let (Some(w), Some(r)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(io::Error::other("the command's pipes are missing"));
            };
            Ok(Conn {
                reader: Box::new(r),
                writer: Box::new(w),
                child: Some(child),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_in_every_form_and_bad_ones_say_what_is_expected() {
        assert_eq!(Addr::parse("unix:/a/b").unwrap(), Addr::Unix("/a/b".into()));
        assert_eq!(Addr::parse("/a/b").unwrap(), Addr::Unix("/a/b".into()));
        assert_eq!(Addr::parse("./s").unwrap(), Addr::Unix("./s".into()));
        assert_eq!(
            Addr::parse("tcp:127.0.0.1:564").unwrap(),
            Addr::Tcp("127.0.0.1:564".into())
        );
        assert_eq!(
            Addr::parse("[::1]:564").unwrap(),
            Addr::Tcp("[::1]:564".into())
        );
        assert_eq!(
            Addr::parse("exec:ssh h ksock export --stdio").unwrap(),
            Addr::Exec("ssh h ksock export --stdio".into())
        );
        for bad in ["", "host", "host:", ":5", "h:99999", "unix:", "exec: "] {
            let e = Addr::parse(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn tcp_listening_is_loopback_only_unless_asked() {
        assert!(tcp_listen_addr("127.0.0.1:0", false).is_ok());
        assert!(tcp_listen_addr("[::1]:0", false).is_ok());
        let e = tcp_listen_addr("0.0.0.0:0", false).unwrap_err();
        assert!(e.contains("--insecure-any-host"), "{e}");
        assert!(tcp_listen_addr("0.0.0.0:0", true).is_ok());
    }
}
