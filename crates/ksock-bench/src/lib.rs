//! Benchmarks of ksock side by side with its natural alternative on Linux, in one run,
//! reported as ratios (these machines are noisy: only ratios of interleaved samples mean
//! much).
//!
//! ```no_run
//! let opts = ksock_bench::Options { quick: true, ..Default::default() };
//! let report = ksock_bench::run(&opts);
//! println!("{}", report.render(opts.json));
//! ```
//!
//! The suite is a list of [`Group`]s; each builds [`Row`]s, each row measures a ksock side
//! and a reference side. New families and faces join as groups ([`Suite::add`]); the file
//! face's rows reuse [`fuse::file_rows`] with an [`fuse::Opener`] for its `data` files.

#![warn(missing_docs)]

pub mod churn;
pub mod file;
pub mod fuse;
pub mod heap;
pub mod inet;
pub mod local;
pub mod memcpy;
pub mod ninep;
pub mod plot;
pub mod report;
pub mod row;
pub mod smol;
pub mod stats;
pub mod sys;
pub mod tap;
pub mod unix;
pub mod work;

pub use heap::CountingAlloc;
pub use report::Report;
pub use row::{Measured, Row, Side, Target};
pub use stats::{Summary, Unit};

use row::{Sampling, run_row};
use std::io::Write as _;
use std::time::Duration;

/// What to run and how (also the flags of `ksock bench`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Options {
    /// Finish in a few seconds: 3 short samples per side and 10 000 pairs for memory
    /// (rough numbers; enough to see that every benchmark still works)
    #[arg(long)]
    pub quick: bool,
    /// Print the report as JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Samples per side [default: 7, or 3 with --quick]
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,
    /// Target duration of one timed sample in milliseconds [default: 200, or 10 with --quick]
    #[arg(long, value_name = "MS")]
    pub sample_ms: Option<u64>,
    /// Connected pairs held at once by the memory rows [default: 100000, or 10000 with --quick]
    #[arg(long, value_name = "N")]
    pub pairs: Option<usize>,
    /// Idle TCP connections held at once by the inet memory row [default: 2000, or 200 with
    /// --quick]
    #[arg(long, value_name = "N")]
    pub conns: Option<usize>,
    /// Run only rows whose id starts with PREFIX (repeatable), e.g. `--only local.stream
    /// --only memory`
    #[arg(long, value_name = "PREFIX")]
    pub only: Vec<String>,
    /// Also run the message-size sweep (throughput against message size, for the plot)
    #[arg(long)]
    pub sweep: bool,
    /// No progress lines on standard error
    #[arg(long)]
    pub quiet: bool,
    /// Measure only one side of each row, for profiling one of them
    #[arg(long, value_enum, value_name = "SIDE")]
    pub side: Option<OnlySide>,
}

/// The side `--side` keeps.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnlySide {
    /// ksock (the subject).
    Ksock,
    /// The reference (AF_UNIX, ...).
    Reference,
}

/// The options with every default filled in, as groups see them.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Samples per side.
    pub runs: usize,
    /// Target duration of one timed sample.
    pub sample_time: Duration,
    /// Pairs for the memory rows.
    pub pairs: usize,
    /// Idle TCP connections for the inet memory row.
    pub conns: usize,
    /// A quick run.
    pub quick: bool,
}

impl Options {
    /// Fills in the defaults.
    pub fn settings(&self) -> Settings {
        let q = self.quick;
        Settings {
            runs: self.runs.unwrap_or(if q { 3 } else { 7 }).max(1),
            sample_time: Duration::from_millis(
                self.sample_ms.unwrap_or(if q { 10 } else { 200 }).max(1),
            ),
            pairs: self
                .pairs
                .unwrap_or(if q { 10_000 } else { 100_000 })
                .max(1),
            conns: self.conns.unwrap_or(if q { 200 } else { 2000 }).max(1),
            quick: q,
        }
    }

    /// Whether a row with this id is selected.
    pub fn selects(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| id.starts_with(p.as_str()))
    }

    /// Whether any row of group `name` may be selected.
    pub fn selects_group(&self, name: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|p| {
                name.starts_with(p.as_str())
                    || p.strip_prefix(name)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            })
    }
}

/// Builds a group's rows; `Err` says why the group cannot run here (it is reported as
/// skipped, with that reason).
pub type Build = Box<dyn Fn(&Settings) -> Result<Vec<Row>, String>>;

/// A group of rows: one family or face against its reference.
pub struct Group {
    /// Its name, the first part of its rows' ids.
    pub name: String,
    /// What it compares, for the report.
    pub title: String,
    /// Whether it runs without being asked for (the sweep is opt-in).
    pub default_on: bool,
    /// Builds the rows.
    pub build: Build,
}

impl Group {
    /// A group that runs by default.
    pub fn new(
        name: impl Into<String>,
        title: impl Into<String>,
        build: impl Fn(&Settings) -> Result<Vec<Row>, String> + 'static,
    ) -> Group {
        Group {
            name: name.into(),
            title: title.into(),
            default_on: true,
            build: Box::new(build),
        }
    }
}

/// The suite: groups in the order they run.
pub struct Suite {
    groups: Vec<Group>,
}

impl Suite {
    /// The standard groups: `memory` first (it measures resident memory, best done before
    /// anything else has grown the heap), `local`, `memcpy`, `fuse`, the `file` slot,
    /// `inet`, then the opt-in `churn` and `sweep`.
    pub fn standard() -> Suite {
        let mut s = Suite { groups: Vec::new() };
        s.add(Group::new(
            "memory",
            "memory per idle connected pair: ksock (process RSS) vs AF_UNIX (kernel slab)",
            |o| Ok(local::memory_rows(o)),
        ));
        s.add(Group::new(
            "local",
            "ksock local family (Rust API) vs Linux AF_UNIX socketpair (system calls)",
            |o| Ok(local::rows(o)),
        ));
        s.add(Group::new(
            "memcpy",
            "memcpy on this machine: the limit for bulk transfer (each side copies every byte once)",
            |_| Ok(memcpy::rows()),
        ));
        s.add(Group::new(
            "fuse",
            "a null file served by fuser 0.18 in-process vs AF_UNIX: the floor FUSE imposes",
            |_| match fuse::unavailable() {
                Some(why) => Err(why),
                None => Ok(fuse::rows()),
            },
        ));
        s.add(Group::new(
            "file",
            "the /net file face through a real `ksock mount` vs the null FUSE file and AF_UNIX",
            |_| file::rows(),
        ));
        s.add(Group::new(
            "9p",
            "the file face over 9P2000: `ksock import` of an in-process `ksock export`, and the Rust 9P client, vs the local `ksock mount`",
            |_| ninep::rows(),
        ));
        s.add(Group::new(
            "inet",
            "ksock inet family (TCP and UDP on smoltcp over its loopback, Rust API) vs Linux TCP and UDP over 127.0.0.1 (system calls)",
            |o| Ok(inet::rows(o)),
        ));
        let mut tap = Group::new(
            "tap",
            "ksock inet family to the Linux stack over a TAP device vs Linux to Linux over a veth pair (network namespaces; as root; opt-in: --only tap)",
            |_| match tap::unavailable() {
                Some(why) => Err(why),
                None => tap::rows(),
            },
        );
        tap.default_on = false;
        s.add(tap);
        let mut churn = Group::new(
            "churn",
            "scale and churn: local connections opened and closed in waves, the tables back to empty after each (run by hand: --only churn --runs 1)",
            |o| {
                Ok(if o.quick {
                    churn::rows(100_000, 10_000, 10_000, 1_000)
                } else {
                    churn::rows(1_000_000, 100_000, 100_000, 100_000)
                })
            },
        );
        churn.default_on = false;
        s.add(churn);
        let mut sweep = Group::new(
            "sweep",
            "one-way throughput against message size, ksock vs AF_UNIX (for the plot)",
            |_| Ok(sweep_rows()),
        );
        sweep.default_on = false;
        s.add(sweep);
        s
    }

    /// Adds a group at the end.
    pub fn add(&mut self, g: Group) {
        self.groups.push(g);
    }

    /// Replaces the group of the same name (or adds it at the end).
    pub fn replace(&mut self, g: Group) {
        match self.groups.iter_mut().find(|x| x.name == g.name) {
            Some(slot) => *slot = g,
            None => self.groups.push(g),
        }
    }

    /// The groups' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }

    /// Runs the selected rows and returns the report.
    pub fn run(self, opts: &Options) -> Report {
        let s = opts.settings();
        let sampling = Sampling {
            runs: s.runs,
            sample_time: s.sample_time,
            only_subject: opts.side.map(|x| x == OnlySide::Ksock),
        };
        let mut report = Report {
            machine: sys::machine(),
            runs: s.runs,
            sample_ms: s.sample_time.as_secs_f64() * 1e3,
            quick: s.quick,
            groups: Vec::new(),
            rows: Vec::new(),
        };
        for g in self.groups {
            let wanted = opts.selects_group(&g.name)
                && (g.default_on || opts.sweep && g.name == "sweep" || !opts.only.is_empty());
            if !wanted {
                continue;
            }
            let rows = match (g.build)(&s) {
                Ok(rows) => rows,
                Err(why) => {
                    if !opts.quiet {
                        eprintln!("{}: skipped: {why}", g.name);
                    }
                    report.groups.push(report::GroupInfo {
                        name: g.name,
                        title: g.title,
                        skipped: Some(why),
                    });
                    continue;
                }
            };
            let rows: Vec<Row> = rows.into_iter().filter(|r| opts.selects(&r.id)).collect();
            if rows.is_empty() {
                continue;
            }
            report.groups.push(report::GroupInfo {
                name: g.name,
                title: g.title,
                skipped: None,
            });
            for row in rows {
                if !opts.quiet {
                    eprint!("{} ... ", row.id);
                    let _ = std::io::stderr().flush();
                }
                let r = run_row(row, &sampling);
                if !opts.quiet {
                    match (&r.error, &r.ratio, &r.subject.summary) {
                        (Some(e), _, _) => eprintln!("ERROR: {e}"),
                        (None, Some(x), _) => eprintln!("{}", stats::format_ratio(x.median)),
                        (None, None, Some(x)) => eprintln!("{}", r.unit.format(x.median)),
                        (None, None, None) => eprintln!("no result"),
                    }
                }
                report.rows.push(r);
            }
        }
        report.machine.load_end = sys::loadavg();
        report
    }
}

/// The sweep: one-way throughput of stream and seqpacket at message sizes from 16 B to
/// 64 KiB, ksock vs AF_UNIX.
pub fn sweep_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (ty, name) in [
        (ksock::SockType::STREAM, "stream"),
        (ksock::SockType::SEQPACKET, "seqpacket"),
    ] {
        for shift in (4..=16).step_by(2) {
            let size = 1usize << shift;
            rows.push(local::throughput_row(
                "sweep",
                format!("sweep.{name}.{size}"),
                format!("{name}: one-way throughput, {size} B messages"),
                ty,
                size,
            ));
        }
    }
    rows
}

/// Runs the standard suite.
pub fn run(opts: &Options) -> Report {
    Suite::standard().run(opts)
}

/// The command line of `ksock bench`: what to run, and what to do with the report.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Cli {
    /// What to run and how.
    #[command(flatten)]
    pub opts: Options,
    /// Print Markdown (for docs/BENCHMARKS.md) instead of the plain table
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Also write the report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub save: Option<std::path::PathBuf>,
    /// Write the throughput plot (SVG) of the sweep to FILE (implies --sweep)
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
    /// Do not measure: read a report saved with --save and print it (and --svg it)
    #[arg(long, value_name = "FILE")]
    pub load: Option<std::path::PathBuf>,
}

/// Runs `ksock bench`: measures (or loads) a report, prints it, saves or plots it. Fails
/// if a benchmark could not run (missed targets are reported, not failures).
pub fn main(cli: &Cli) -> std::process::ExitCode {
    use std::process::ExitCode;
    let mut opts = cli.opts.clone();
    if cli.svg.is_some() {
        opts.sweep = true;
    }
    let report = match &cli.load {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|t| Report::from_json(&t))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("ksock bench: {e}");
                return ExitCode::from(2);
            }
        },
        None => run(&opts),
    };
    if cli.markdown {
        print!("{}", report.to_markdown());
    } else {
        println!("{}", report.render(opts.json));
    }
    if let Some(path) = &cli.save
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        eprintln!("ksock bench: {}: {e}", path.display());
        return ExitCode::from(2);
    }
    if let Some(path) = &cli.svg {
        let Some(svg) = plot::throughput_svg(&report) else {
            eprintln!("ksock bench: the report has no sweep rows to plot");
            return ExitCode::from(2);
        };
        if let Err(e) = std::fs::write(path, svg) {
            eprintln!("ksock bench: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.errors().next().is_some() {
        eprintln!("ksock bench: some benchmarks failed (see above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

impl Report {
    /// The table, or JSON if `json`.
    pub fn render(&self, json: bool) -> String {
        if json {
            self.to_json()
        } else {
            self.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: Options,
    }

    #[test]
    fn flags_parse_and_defaults_fill_in() {
        let c = Cli::try_parse_from([
            "x",
            "--quick",
            "--json",
            "--only",
            "local.stream",
            "--only",
            "memory",
            "--runs",
            "5",
        ])
        .unwrap();
        assert!(c.opts.quick && c.opts.json);
        let s = c.opts.settings();
        assert_eq!((s.runs, s.pairs), (5, 10_000));
        assert_eq!(s.sample_time, Duration::from_millis(10));
        let full = Options::default().settings();
        assert_eq!((full.runs, full.pairs), (7, 100_000));
        assert!(Cli::try_parse_from(["x", "--runs", "many"]).is_err());
    }

    #[test]
    fn only_selects_by_prefix() {
        let o = Options {
            only: vec!["local.stream".into(), "memory".into()],
            ..Default::default()
        };
        assert!(o.selects("local.stream.msg64"));
        assert!(o.selects("memory.dgram.pair"));
        assert!(!o.selects("local.dgram.msg64"));
        assert!(o.selects_group("local"));
        assert!(o.selects_group("memory"));
        assert!(!o.selects_group("fuse"));
        assert!(
            !o.selects_group("loc"),
            "a group is not chosen by a longer name's prefix"
        );
        let all = Options::default();
        assert!(all.selects("anything") && all.selects_group("fuse"));
    }

    #[test]
    fn suite_groups_can_be_replaced_and_added() {
        let mut s = Suite::standard();
        assert_eq!(
            s.names(),
            [
                "memory", "local", "memcpy", "fuse", "file", "9p", "inet", "tap", "churn", "sweep"
            ]
        );
        s.replace(Group::new("file", "the file face", |_| Ok(vec![])));
        s.add(Group::new("extra", "one more", |_| Ok(vec![])));
        assert_eq!(
            s.names(),
            [
                "memory", "local", "memcpy", "fuse", "file", "9p", "inet", "tap", "churn", "sweep",
                "extra"
            ]
        );
    }
}
