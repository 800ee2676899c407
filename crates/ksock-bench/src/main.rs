//! `ksock-bench`: the benchmark suite on its own (the `ksock bench` subcommand runs the same).

use clap::Parser;
use ksock_bench::{CountingAlloc, Options, Report};
use std::path::PathBuf;
use std::process::ExitCode;

// Counts allocations during the memory rows, for the per-pair breakdown.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Benchmarks ksock side by side with Linux (AF_UNIX, FUSE, memcpy) and reports the ratios.
#[derive(Parser)]
#[command(name = "ksock-bench", version)]
struct Cli {
    #[command(flatten)]
    opts: Options,
    /// Print Markdown (for docs/BENCHMARKS.md) instead of the plain table
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    /// Also write the report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Write the throughput plot (SVG) of the sweep to FILE (implies --sweep)
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Do not measure: read a report saved with --save and print it (and --svg it)
    #[arg(long, value_name = "FILE")]
    load: Option<PathBuf>,
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if cli.svg.is_some() {
        cli.opts.sweep = true;
    }
    let report = match &cli.load {
        Some(path) => {
            match std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|t| Report::from_json(&t))
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ksock-bench: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => ksock_bench::run(&cli.opts),
    };
    if cli.markdown {
        print!("{}", report.to_markdown());
    } else {
        println!("{}", report.render(cli.opts.json));
    }
    if let Some(path) = &cli.save
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        eprintln!("ksock-bench: {}: {e}", path.display());
        return ExitCode::from(2);
    }
    if let Some(path) = &cli.svg {
        let Some(svg) = ksock_bench::plot::throughput_svg(&report) else {
            eprintln!("ksock-bench: the report has no sweep rows to plot");
            return ExitCode::from(2);
        };
        if let Err(e) = std::fs::write(path, svg) {
            eprintln!("ksock-bench: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.errors().next().is_some() {
        eprintln!("ksock-bench: some benchmarks failed (see above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
