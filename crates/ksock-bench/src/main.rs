//! `ksock-bench`: `ksock bench` with allocation accounting (a counting global allocator,
//! which the `ksock` command does not install), for the per-pair memory breakdown.

use clap::Parser;
use ksock_bench::{Cli, CountingAlloc};
use std::process::ExitCode;

// Counts allocations during the memory rows, for the per-pair breakdown.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Benchmarks ksock side by side with Linux (AF_UNIX, FUSE, memcpy) and reports the ratios.
#[derive(Parser)]
#[command(name = "ksock-bench", version)]
struct Args {
    #[command(flatten)]
    cli: Cli,
}

fn main() -> ExitCode {
    ksock_bench::main(&Args::parse().cli)
}
