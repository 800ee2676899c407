//! `ksock`: serve the `/net` tree, list its sockets.

#![forbid(unsafe_code)]

use ksock_cli::ss;

mod export;
mod import;

use clap::{Args, Parser, Subcommand};
use ksock_fuse::{MountOptions, Unmounted};
use nix::sys::signal::{SigSet, Signal};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ksock",
    version,
    about = "ksock: sockets you can drive with cat and echo"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Mount the /net tree and serve it in the foreground (Ctrl-C or SIGTERM unmounts).
    Mount(MountArgs),
    /// Serve a /net tree over 9P2000 (Plan 9's exportfs), on a Unix socket only this user
    /// may use, TCP on loopback, or standard input and output.
    Export(export::ExportArgs),
    /// Mount a tree served over 9P2000 (`ksock export`) at DIR, in the foreground
    /// (Ctrl-C or SIGTERM unmounts).
    Import(import::ImportArgs),
    /// List the live sockets of a mounted tree.
    Ss(SsArgs),
    /// Benchmark ksock side by side with Linux (AF_UNIX, FUSE, memcpy) and report ratios
    /// (as root for the FUSE and file-face rows; see docs/BENCHMARKS.md).
    Bench(ksock_bench::Cli),
}

#[derive(Args)]
struct MountArgs {
    /// Where to mount (created if missing).
    #[arg(default_value = "/net")]
    dir: PathBuf,
    /// Let other users use the tree (each gets their own sockets; FUSE's allow_other).
    #[arg(long)]
    allow_other: bool,
    /// FUSE worker threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Mount even on a directory that is not empty (its files are hidden while mounted).
    #[arg(long)]
    nonempty: bool,
    /// Sockets each user may hold (created or accepted); past it opens fail with EMFILE.
    #[arg(long, value_name = "N", default_value_t = ksock_netfs::DEFAULT_MAX_SOCKETS_PER_USER,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_sockets_per_user: usize,
    /// Bytes each user's sockets may have queued and unread, with an optional K, M, G or T
    /// suffix (binary: 64M is 64 MiB); past it writes fail with ENOBUFS [default: 1G].
    #[arg(long, value_name = "BYTES", value_parser = ksock_cli::parse_size)]
    max_buffered_per_user: Option<usize>,
    /// Log the socket layer's decisions to standard error (sockets made, bound, connected,
    /// reset, closed; requests parked and interrupted): `-v` is `RUST_LOG=ksock=debug`,
    /// `-vv` `ksock=trace`. `RUST_LOG` (an env-filter) takes precedence when set.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Write every frame of the inet interfaces to FILE in the pcap format (read it with
    /// `tshark -r FILE`, Wireshark or `tcpdump -r`).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Give the inet family a Linux TAP interface NAME beside its loopback (made if missing;
    /// needs CAP_NET_ADMIN). The Linux side of NAME gets its own address, for example
    /// `ip addr add 10.9.0.1/24 dev NAME && ip link set NAME up`.
    #[arg(long, value_name = "NAME")]
    tap: Option<String>,
    /// ksock's address on the TAP interface, with its prefix (repeatable; IPv4 and IPv6):
    /// `--addr 10.9.0.2/24 --addr fd00:9::2/64`.
    #[arg(long = "addr", value_name = "ADDR/PREFIX", value_parser = ksock_cli::parse_cidr,
          requires = "tap")]
    addrs: Vec<(std::net::IpAddr, u8)>,
    /// The default gateway through the TAP interface (one per IP version).
    #[arg(long = "gateway", value_name = "ADDR", requires = "tap")]
    gateways: Vec<std::net::IpAddr>,
    /// Also serve the same tree over 9P2000 (as `ksock export` does): on the Unix socket of
    /// --socket (default $XDG_RUNTIME_DIR/ksock/net.9p, or /run/ksock/net.9p for root)
    /// and/or TCP with --listen.
    #[arg(long)]
    export: bool,
    #[command(flatten)]
    export_on: export::Listen,
}

/// Sends `tracing` events to standard error when `RUST_LOG` or `-v` asks for them;
/// otherwise installs nothing (every event then costs one check).
fn logging(verbose: u8) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG={v:?}: {e}"))?
        }
        _ => match verbose {
            0 => return Ok(()),
            1 => EnvFilter::new("ksock=debug"),
            _ => EnvFilter::new("ksock=trace"),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))
}

/// `ksock ss`'s options, as iproute2's `ss` has them.
#[derive(Args)]
#[command(
    after_help = "FILTER: `state NAME` (repeatable) and `exclude NAME`, with ss's \
names: established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, \
close-wait, last-ack, listening, closing, and the groups all, connected, synchronized, \
bucket, big. Example: ksock ss -t state established"
)]
struct SsArgs {
    /// The mounted tree to read [default: /net if a ksock tree is mounted there, else the
    /// one ksock tree in the mount table].
    #[arg(long = "mount", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// TCP sockets (inet stream).
    #[arg(short, long)]
    tcp: bool,
    /// UDP sockets (inet dgram).
    #[arg(short, long)]
    udp: bool,
    /// Local-family sockets (stream, seqpacket, dgram).
    #[arg(short = 'x', long)]
    unix: bool,
    /// Only listening (and unconnected) sockets.
    #[arg(short, long)]
    listening: bool,
    /// Every socket, listening or not (without -l or -a, listeners are left out, as ss
    /// does).
    #[arg(short, long)]
    all: bool,
    /// Numeric addresses and ports (ksock never resolves names; accepted for ss's users).
    #[arg(short, long)]
    numeric: bool,
    /// The process that made each socket: users:(("name",pid=N,fd=N)).
    #[arg(short, long)]
    processes: bool,
    /// The owner's uid and the socket's id: uid:N sk:ID (its directory /net/FAMILY/ID).
    #[arg(short, long)]
    extended: bool,
    /// What the family tells of each socket: TCP's mss, pmtu, rcv_space...; a listener's
    /// backlog, pending connections and dropped SYNs; UDP's drops.
    #[arg(short, long)]
    info: bool,
    /// One JSON array of objects, with every field (for scripts).
    #[arg(long)]
    json: bool,
    /// A state filter, as ss's: `state established`, `exclude listening`...
    #[arg(value_name = "FILTER")]
    filter: Vec<String>,
}

fn mount(args: MountArgs) -> Result<(), String> {
    logging(args.verbose)?;
    ksock_fuse::clear_stale_mount(&args.dir);
    // A missing directory is created; anything else that is not a directory is refused
    // (the mount itself refuses a live ksock tree and, without --nonempty, hidden files).
    match std::fs::metadata(&args.dir) {
        Ok(m) if !m.is_dir() => {
            return Err(format!(
                "cannot mount at {}: Not a directory",
                args.dir.display()
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(&args.dir)
            .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?,
        Err(e) => return Err(format!("cannot mount at {}: {e}", args.dir.display())),
    }
    if !args.export && (args.export_on.socket.is_some() || args.export_on.listen.is_some()) {
        return Err("--socket and --listen say where --export serves: add --export".into());
    }
    let signals = block_stop_signals()?;
    let stack = ksock::Stack::new();
    let tap = match &args.tap {
        Some(name) => Some(ksock_cli::tap_config(name, &args.addrs, &args.gateways)?),
        None => None,
    };
    let inet = ksock_inet::Options {
        pcap: args.pcap.clone(),
        tap,
    };
    ksock_inet::install_with(&stack, &inet)
        .map_err(|e| format!("cannot start the inet family: {e}"))?;
    let mut config = ksock_fuse::host_config();
    config.max_sockets_per_user = args.max_sockets_per_user;
    if let Some(b) = args.max_buffered_per_user {
        config.max_buffered_per_user = b;
    }
    let netfs = ksock_netfs::NetFs::with_config(stack, config);
    let opts = MountOptions {
        allow_other: args.allow_other,
        threads: args.threads as usize,
        nonempty: args.nonempty,
    };
    let m = ksock_fuse::mount(netfs, &args.dir, &opts).map_err(|e| e.to_string())?;
    // The export serves the very namespace the mount does.
    let export = if args.export {
        Some(export::start(m.netfs(), &args.export_on)?)
    } else {
        None
    };
    let families: Vec<&str> = m
        .netfs()
        .stack()
        .families()
        .iter()
        .map(|f| f.name())
        .collect();
    // With a TAP device, say where inet reaches and as what.
    let tap = match (&args.tap, args.addrs.is_empty()) {
        (Some(name), false) => {
            let addrs: Vec<String> = args
                .addrs
                .iter()
                .map(|(ip, p)| format!("{ip}/{p}"))
                .collect();
            format!(" on {name} as {}", addrs.join(", "))
        }
        _ => String::new(),
    };
    let exported = match &export {
        Some(x) => format!(", exported on {}", x.wheres.join(" and ")),
        None => String::new(),
    };
    ksock_cli::say(&format!(
        "ksock: serving {} ({}{tap}{exported}); Ctrl-C to unmount",
        args.dir.display(),
        families.join(", ")
    ));
    let export_socket = export.as_ref().and_then(|x| x.socket.clone());
    let unmounter = m.unmounter();
    let dir = args.dir.clone();
    std::thread::Builder::new()
        .name("ksock-signals".into())
        .spawn(move || {
            let sig = signals.wait();
            if let Some(p) = &export_socket {
                let _ = std::fs::remove_file(p);
            }
            match unmounter.unmount() {
                Ok(Unmounted::Clean) => {
                    eprintln!(
                        "ksock: {} unmounted ({})",
                        dir.display(),
                        sig.map_or("signal".into(), |s| s.as_str().to_string())
                    );
                }
                Ok(Unmounted::Detached) => {
                    eprintln!(
                        "ksock: files were still open under {}: detached it; open files now fail",
                        dir.display()
                    );
                    std::process::exit(0);
                }
                Err(e) => {
                    eprintln!("ksock: cannot unmount {}: {e}", dir.display());
                    std::process::exit(1);
                }
            }
        })
        .map_err(|e| e.to_string())?;
    m.join().map_err(|e| format!("FUSE session: {e}"))
}

/// The tree `ksock ss` reads: the one named, else `/net` if a ksock tree is mounted there,
/// else the ksock tree of the mount table (the first, said so, if there are several).
/// Blocks the stop signals (INT, TERM, HUP) before any thread starts, so that only the
/// caller's waiter sees them (threads inherit the mask).
pub(crate) fn block_stop_signals() -> Result<SigSet, String> {
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    Ok(signals)
}

fn ss_dir(named: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(d) = named {
        return Ok(d);
    }
    let mounts = ss::mounts().map_err(|e| format!("cannot read the mount table: {e}"))?;
    let net = PathBuf::from("/net");
    if mounts.contains(&net) {
        return Ok(net);
    }
    match mounts.as_slice() {
        [] => Err(
            "no ksock tree is mounted (mount one with `ksock mount [DIR]`, /net by \
                   default, or name a tree with --mount DIR)"
                .into(),
        ),
        [one] => Ok(one.clone()),
        [first, ..] => {
            let all: Vec<String> = mounts.iter().map(|m| m.display().to_string()).collect();
            eprintln!(
                "ksock: {} ksock trees are mounted ({}); listing {} (choose one with --mount)",
                mounts.len(),
                all.join(", "),
                first.display()
            );
            Ok(first.clone())
        }
    }
}

fn ss(args: SsArgs) -> Result<(), String> {
    let states = match ss::parse_filter(&args.filter) {
        Ok(s) => s,
        // A usage error: clap's message and exit status (2).
        Err(e) => clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n")).exit(),
    };
    let _ = args.numeric;
    let opts = ss::Options {
        tcp: args.tcp,
        udp: args.udp,
        unix: args.unix,
        listening: args.listening,
        all: args.all,
        processes: args.processes,
        extended: args.extended,
        info: args.info,
        states,
    };
    let dir = ss_dir(args.dir)?;
    let mut rows = opts.select(ss::collect(&dir).map_err(|e| e.to_string())?);
    if args.info || args.json {
        ss::attach_details(&mut rows, &dir);
    }
    if args.processes || args.json {
        ss::attach_processes(&mut rows, Some(&dir));
    }
    if args.json {
        print!("{}", ss::render_json(&rows));
    } else {
        print!("{}", ss::render(&rows, &opts));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Mount(a) => mount(a),
        Cmd::Export(a) => export::run(a, logging),
        Cmd::Import(a) => import::run(a),
        Cmd::Ss(a) => ss(a),
        Cmd::Bench(a) => return ksock_bench::main(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ksock: {e}");
            ExitCode::FAILURE
        }
    }
}
