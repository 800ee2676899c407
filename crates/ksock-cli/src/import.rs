//! `ksock import ADDR DIR`: mount a tree served by `ksock export` (9P2000) at DIR.

use clap::Args;
use ksock_9p::client::Client;
use ksock_9p::import::{self, ImportOptions};
use ksock_9p::transport::Addr;
use ksock_fuse::Unmounted;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `ksock import`'s options.
#[derive(Args)]
pub struct ImportArgs {
    /// The server: unix:PATH (or a path with a /), tcp:HOST:PORT (or HOST:PORT), or
    /// exec:COMMAND (9P on the command's standard input and output, as in
    /// `exec:ssh host ksock export --stdio`).
    #[arg(value_name = "ADDR")]
    addr: String,
    /// Where to mount (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The largest 9P message, with an optional K or M suffix; the server may give less
    /// (a ksock server gives at most 1M). One write to a socket file goes in one message,
    /// so a record sent through the mount can be at most this, less 24 bytes.
    #[arg(long, value_name = "BYTES", default_value = "1M", value_parser = ksock_cli::parse_size)]
    msize: usize,
    /// Let other users use the tree (each gets their own sockets; FUSE's allow_other).
    #[arg(long)]
    allow_other: bool,
    /// Mount even on a directory that is not empty (its files are hidden while mounted).
    #[arg(long)]
    nonempty: bool,
    /// FUSE worker threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Log to standard error: -v is `RUST_LOG=ksock=debug`, -vv `ksock=trace`.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Runs `ksock import` in the foreground until Ctrl-C, SIGTERM or SIGHUP (which unmount),
/// an unmount from elsewhere, or the end of the connection (which unmounts too).
pub fn run(args: ImportArgs) -> Result<(), String> {
    crate::logging(args.verbose)?;
    let addr = Addr::parse(&args.addr)?;
    let msize = u32::try_from(args.msize).unwrap_or(u32::MAX);
    ksock_fuse::clear_stale_mount(&args.dir);
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
    // Blocked before any thread starts, so that only the waiter below sees them.
    let signals = crate::block_stop_signals()?;
    let client = Client::connect(&addr, msize).map_err(|e| e.to_string())?;
    let opts = ImportOptions {
        allow_other: args.allow_other,
        nonempty: args.nonempty,
        threads: args.threads as usize,
        source: addr.to_string(),
    };
    let m = import::import(client.clone(), &args.dir, &opts).map_err(|e| e.to_string())?;
    ksock_cli::say(&format!(
        "ksock: importing {addr} at {} ({}); Ctrl-C to unmount",
        args.dir.display(),
        m.families().join(", ")
    ));
    let stopping = Arc::new(AtomicBool::new(false));
    let unmount = {
        let unmounter = m.unmounter();
        let dir = args.dir.clone();
        move |why: &str, detached_status: i32| match unmounter.unmount() {
            Ok(Unmounted::Clean) => eprintln!("ksock: {} unmounted ({why})", dir.display()),
            Ok(Unmounted::Detached) => {
                eprintln!(
                    "ksock: {} detached ({why}): files were still open under it, and now fail",
                    dir.display()
                );
                std::process::exit(detached_status);
            }
            Err(e) => {
                eprintln!("ksock: cannot unmount {}: {e}", dir.display());
                std::process::exit(1);
            }
        }
    };
    {
        let unmount = unmount.clone();
        let stopping = stopping.clone();
        std::thread::Builder::new()
            .name("ksock-signals".into())
            .spawn(move || {
                let sig = signals.wait();
                stopping.store(true, Ordering::SeqCst);
                let why = sig.map_or("signal".into(), |s| s.as_str().to_string());
                unmount(&why, 0);
            })
            .map_err(|e| e.to_string())?;
    }
    let lost = Arc::new(AtomicBool::new(false));
    {
        let lost = lost.clone();
        let stopping = stopping.clone();
        let addr = addr.clone();
        std::thread::Builder::new()
            .name("ksock-conn".into())
            .spawn(move || {
                client.wait_closed();
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                lost.store(true, Ordering::SeqCst);
                unmount(&format!("the connection to {addr} ended"), 1);
            })
            .map_err(|e| e.to_string())?;
    }
    m.join().map_err(|e| format!("FUSE session: {e}"))?;
    if lost.load(Ordering::SeqCst) {
        // Said when unmounting; the status says it too.
        std::process::exit(1);
    }
    Ok(())
}
