//! `ksock export`, and `ksock mount --export`: the `/net` tree over 9P2000.

use clap::Args;
use ksock_9p::server::{self, Server};
use ksock_9p::transport;
use ksock_netfs::NetFs;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the export listens.
#[derive(Args, Clone, Debug, Default)]
pub struct Listen {
    /// The Unix socket to serve (default: $XDG_RUNTIME_DIR/ksock/net.9p, or
    /// /run/ksock/net.9p for root). Only this user may connect (checked with SO_PEERCRED).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Also (or, without --socket, only) serve TCP on HOST:PORT; loopback addresses only,
    /// unless --insecure-any-host. Every TCP peer acts as this user: 9P has no
    /// authentication.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Let --listen use an address that is not loopback.
    #[arg(long, requires = "listen")]
    pub insecure_any_host: bool,
    /// Connections served at once; past it a new one gets an error and is closed.
    #[arg(long, value_name = "N", default_value_t = server::MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
}

/// `ksock export`.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub listen: Listen,
    /// Speak 9P on standard input and output instead (`ssh host ksock export --stdio`);
    /// ends when standard input does.
    #[arg(long, conflicts_with_all = ["socket", "listen"])]
    pub stdio: bool,
    /// How many sockets each user may hold (past it, EMFILE).
    #[arg(long, value_name = "N", default_value_t = ksock_netfs::DEFAULT_MAX_SOCKETS_PER_USER,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_sockets_per_user: usize,
    /// How many bytes each user's sockets may hold queued (past it, ENOBUFS); K, M, G
    /// suffixes (default 1G).
    #[arg(long, value_name = "BYTES", value_parser = ksock_cli::parse_size)]
    pub max_buffered_per_user: Option<usize>,
    /// Log to standard error: -v for connections and decisions, -vv for every message.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// A running export.
pub struct Exported {
    /// The server (it serves while it lives).
    pub server: Arc<Server>,
    /// Where it listens: `unix:PATH`, `tcp:ADDR`.
    pub wheres: Vec<String>,
    /// Its Unix socket, removed at the end.
    pub socket: Option<PathBuf>,
}

/// Starts serving `netfs` where `l` says.
pub fn start(netfs: &NetFs, l: &Listen) -> Result<Exported, String> {
    let config = server::Config {
        max_connections: l.max_connections,
        ..server::Config::default()
    };
    let srv = Server::new(netfs.clone(), config).map_err(|e| format!("cannot start 9P: {e}"))?;
    let mut wheres = Vec::new();
    let mut unix_path = None;
    let tcp = match &l.listen {
        Some(a) => {
            let addr = transport::tcp_listen_addr(a, l.insecure_any_host)?;
            let t = std::net::TcpListener::bind(addr)
                .map_err(|e| format!("--listen {a}: cannot listen: {e}"))?;
            let local = t.local_addr().map_err(|e| e.to_string())?;
            Some((t, local))
        }
        None => None,
    };
    if l.socket.is_some() || tcp.is_none() {
        let path = l.socket.clone().unwrap_or_else(transport::default_socket);
        let u = transport::bind_unix(&path).map_err(|e| e.to_string())?;
        srv.listen_unix(u).map_err(|e| e.to_string())?;
        wheres.push(format!("unix:{}", path.display()));
        unix_path = Some(path);
    }
    if let Some((t, local)) = tcp {
        srv.listen_tcp(t).map_err(|e| e.to_string())?;
        wheres.push(format!("tcp:{local}"));
    }
    Ok(Exported {
        server: srv,
        wheres,
        socket: unix_path,
    })
}

/// `ksock export`: serves a fresh stack until a stop signal (or, with --stdio, until
/// standard input ends).
pub fn run(args: ExportArgs, logging: impl FnOnce(u8) -> Result<(), String>) -> Result<(), String> {
    logging(args.verbose)?;
    let signals = crate::block_stop_signals()?;
    let stack = ksock::Stack::new();
    ksock_inet::install_with(&stack, &ksock_inet::Options::default())
        .map_err(|e| format!("cannot start the inet family: {e}"))?;
    let mut config = ksock_netfs::Config {
        root_uid: nix::unistd::getuid().as_raw(),
        root_gid: nix::unistd::getgid().as_raw(),
        max_sockets_per_user: args.max_sockets_per_user,
        ..ksock_netfs::Config::default()
    };
    if let Some(b) = args.max_buffered_per_user {
        config.max_buffered_per_user = b;
    }
    let netfs = NetFs::with_config(stack, config);
    let families: Vec<&str> = netfs.stack().families().iter().map(|f| f.name()).collect();
    if args.stdio {
        // A stop signal ends it, as the end of standard input does.
        std::thread::Builder::new()
            .name("ksock-signals".into())
            .spawn(move || {
                let _ = signals.wait();
                std::process::exit(0);
            })
            .map_err(|e| e.to_string())?;
        let srv = Server::new(netfs.clone(), server::Config::default())
            .map_err(|e| format!("cannot start 9P: {e}"))?;
        srv.serve_here(
            Box::new(std::io::stdin()),
            Box::new(std::io::stdout()),
            server::Peer::me(),
        );
        return Ok(());
    }
    let Exported {
        server: _server,
        wheres,
        socket: unix_path,
    } = start(&netfs, &args.listen)?;
    ksock_cli::say(&format!(
        "ksock: exporting /net ({}) on {}; Ctrl-C to stop",
        families.join(", "),
        wheres.join(" and ")
    ));
    let sig = signals.wait();
    if let Some(p) = unix_path {
        let _ = std::fs::remove_file(p);
    }
    eprintln!(
        "ksock: export stopped ({})",
        sig.map_or("signal".into(), |s| s.as_str().to_string())
    );
    Ok(())
}
