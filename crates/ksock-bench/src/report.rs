//! The report: every row's samples and summaries, the machine, and how to print them (a
//! text table, Markdown, JSON).

use crate::row::Target;
use crate::stats::{Summary, Unit, format_ratio};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

/// What the machine looked like during the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Total memory in bytes.
    pub memory: u64,
    /// The 1-minute load average when the run started.
    pub load_start: f64,
    /// The 1-minute load average when it ended.
    pub load_end: f64,
}

/// A secondary value of one side, summarised over the runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    /// What it is.
    pub name: String,
    /// Its unit.
    pub unit: Unit,
    /// Median and range.
    pub summary: Summary,
}

/// One side's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideResult {
    /// `ksock`, `AF_UNIX`, ...
    pub name: String,
    /// Every sample, in the order taken.
    pub samples: Vec<f64>,
    /// Their summary (`None` if the row failed).
    pub summary: Option<Summary>,
    /// Iterations per sample, for timed sides.
    pub iters: Option<u64>,
    /// Secondary values.
    pub extras: Vec<Extra>,
    /// A breakdown from the last run.
    pub detail: Option<String>,
}

impl SideResult {
    pub(crate) fn named(name: &str) -> SideResult {
        SideResult {
            name: name.into(),
            samples: Vec::new(),
            summary: None,
            iters: None,
            extras: Vec::new(),
            detail: None,
        }
    }
}

/// Whether a target was met, and by how much it was missed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Met.
    pub met: bool,
    /// 1 when met; otherwise how far off, as a factor over 1 (1.25: 25% short).
    pub miss_factor: f64,
}

/// One row's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowResult {
    /// Its group.
    pub group: String,
    /// Its stable id.
    pub id: String,
    /// Its description.
    pub title: String,
    /// The unit of its values.
    pub unit: Unit,
    /// ksock.
    pub subject: SideResult,
    /// The reference, if the row compares.
    pub reference: Option<SideResult>,
    /// ksock / reference, over paired samples.
    pub ratio: Option<Summary>,
    /// The target.
    pub target: Option<Target>,
    /// The verdict on the target.
    pub verdict: Option<Verdict>,
    /// A remark.
    pub note: Option<String>,
    /// Why the row has no result.
    pub error: Option<String>,
}

/// A group of rows as the report shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Its name (`local`, `memory`, ...).
    pub name: String,
    /// What it compares.
    pub title: String,
    /// Why it was not run, if it was not.
    pub skipped: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// Samples per side.
    pub runs: usize,
    /// Target time of one timed sample, in milliseconds.
    pub sample_ms: f64,
    /// Whether this was a `--quick` run (numbers are rough).
    pub quick: bool,
    /// The groups, in order.
    pub groups: Vec<GroupInfo>,
    /// The rows, in order.
    pub rows: Vec<RowResult>,
}

impl Report {
    /// Parses a report printed with [`to_json`](Self::to_json).
    pub fn from_json(s: &str) -> Result<Report, String> {
        serde_json::from_str(s).map_err(|e| format!("not a ksock bench report: {e}"))
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Every field is plain data with string keys: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The rows that failed.
    pub fn errors(&self) -> impl Iterator<Item = &RowResult> {
        self.rows.iter().filter(|r| r.error.is_some())
    }

    /// The rows whose target was missed.
    pub fn misses(&self) -> impl Iterator<Item = &RowResult> {
        self.rows
            .iter()
            .filter(|r| r.verdict.is_some_and(|v| !v.met))
    }

    /// A row by id.
    pub fn row(&self, id: &str) -> Option<&RowResult> {
        self.rows.iter().find(|r| r.id == id)
    }

    fn header(&self) -> String {
        let m = &self.machine;
        format!(
            "ksock bench: {} runs per side, interleaved; {} ms per timed sample{}\n\
             machine: {} ({} CPUs), Linux {}, {:.1} GiB; load average {:.2} at start, {:.2} at end\n\
             each cell: median [min-max]; ratio = ksock / reference, per pair of runs taken back to back\n\
             (noisy: the paired ratios spread over more than 2x, the load changed during the row)",
            self.runs,
            self.sample_ms,
            if self.quick {
                " (quick: rough numbers)"
            } else {
                ""
            },
            m.cpu,
            m.cpus,
            m.kernel,
            m.memory as f64 / (1u64 << 30) as f64,
            m.load_start,
            m.load_end,
        )
    }

    /// The report as a Markdown table (for `docs/BENCHMARKS.md`).
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "```text\n{}\n```\n", self.header());
        for g in &self.groups {
            let _ = writeln!(s, "**{}**: {}\n", g.name, g.title);
            if let Some(why) = &g.skipped {
                let _ = writeln!(s, "skipped: {why}\n");
                continue;
            }
            let _ = writeln!(
                s,
                "| benchmark | ksock | reference | ratio | target |\n|---|---|---|---|---|"
            );
            for r in self.rows.iter().filter(|r| r.group == g.name) {
                let c = cells(r);
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    c[0], c[1], c[2], c[3], c[4]
                );
            }
            s.push('\n');
            notes(&mut s, self.rows.iter().filter(|r| r.group == g.name), "- ");
            s.push('\n');
        }
        s
    }
}

fn side_cell(unit: Unit, s: &SideResult, with_name: bool) -> String {
    let v = s
        .summary
        .as_ref()
        .map_or_else(|| "-".to_string(), |x| unit.format_range(x));
    if with_name {
        format!("{}: {v}", s.name)
    } else {
        v
    }
}

/// Whether the paired ratios of a row spread over more than a factor of 2: the machine's
/// load changed during the row, and its median deserves less trust.
pub fn noisy(ratio: &Summary) -> bool {
    ratio.min > 0.0 && ratio.max / ratio.min > 2.0
}

/// benchmark, ksock, reference, ratio, target.
fn cells(r: &RowResult) -> [String; 5] {
    let subject = side_cell(r.unit, &r.subject, r.subject.name != "ksock");
    let reference = r
        .reference
        .as_ref()
        .map_or_else(|| "-".to_string(), |x| side_cell(r.unit, x, true));
    let ratio = r.ratio.map_or_else(
        || "-".to_string(),
        |x| {
            format!(
                "{} [{}-{}]{}",
                format_ratio(x.median),
                format_ratio(x.min),
                format_ratio(x.max),
                if noisy(&x) { " noisy" } else { "" }
            )
        },
    );
    let target = match (&r.error, r.target, r.verdict) {
        (Some(_), _, _) => "ERROR".to_string(),
        (None, Some(t), Some(v)) if v.met => format!("{} met", t.describe(r.unit)),
        (None, Some(t), Some(v)) => format!(
            "{} MISSED by {:.0}%",
            t.describe(r.unit),
            (v.miss_factor - 1.0) * 100.0
        ),
        (None, Some(t), None) => t.describe(r.unit),
        (None, None, _) => String::new(),
    };
    [r.title.clone(), subject, reference, ratio, target]
}

fn notes<'a>(s: &mut String, rows: impl Iterator<Item = &'a RowResult>, bullet: &str) {
    for r in rows {
        if let Some(e) = &r.error {
            let _ = writeln!(s, "{bullet}{}: error: {e}", r.id);
        }
        for side in std::iter::once(&r.subject).chain(r.reference.as_ref()) {
            for x in &side.extras {
                let _ = writeln!(
                    s,
                    "{bullet}{} ({}): {} {}",
                    r.id,
                    side.name,
                    x.name,
                    x.unit.format_range(&x.summary)
                );
            }
            if let Some(d) = &side.detail {
                let _ = writeln!(s, "{bullet}{} ({}): {d}", r.id, side.name);
            }
        }
        if let Some(n) = &r.note {
            let _ = writeln!(s, "{bullet}{}: {n}", r.id);
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.header())?;
        for g in &self.groups {
            writeln!(f, "\n== {}: {}", g.name, g.title)?;
            if let Some(why) = &g.skipped {
                writeln!(f, "   skipped: {why}")?;
                continue;
            }
            let rows: Vec<[String; 5]> = self
                .rows
                .iter()
                .filter(|r| r.group == g.name)
                .map(cells)
                .collect();
            let head = [
                "benchmark".to_string(),
                "ksock".into(),
                "reference".into(),
                "ratio".into(),
                "target".into(),
            ];
            let mut w = [0usize; 5];
            for r in std::iter::once(&head).chain(&rows) {
                for (i, c) in r.iter().enumerate() {
                    w[i] = w[i].max(c.chars().count());
                }
            }
            for r in std::iter::once(&head).chain(&rows) {
                let mut line = String::new();
                for (i, c) in r.iter().enumerate() {
                    let pad = w[i] - c.chars().count();
                    line.push_str(c);
                    if i + 1 < r.len() {
                        line.push_str(&" ".repeat(pad + 2));
                    }
                }
                writeln!(f, "{}", line.trim_end())?;
            }
            let mut n = String::new();
            notes(
                &mut n,
                self.rows.iter().filter(|r| r.group == g.name),
                "  * ",
            );
            f.write_str(&n)?;
        }
        let missed: Vec<&str> = self.misses().map(|r| r.id.as_str()).collect();
        let failed: Vec<&str> = self.errors().map(|r| r.id.as_str()).collect();
        writeln!(
            f,
            "\ntargets: {} met, {} missed{}{}",
            self.rows
                .iter()
                .filter(|r| r.verdict.is_some_and(|v| v.met))
                .count(),
            missed.len(),
            if missed.is_empty() {
                String::new()
            } else {
                format!(" ({})", missed.join(", "))
            },
            if failed.is_empty() {
                String::new()
            } else {
                format!("; {} rows FAILED ({})", failed.len(), failed.join(", "))
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        let side = |name: &str, v: &[f64]| SideResult {
            name: name.into(),
            samples: v.to_vec(),
            summary: Summary::of(v),
            iters: Some(1000),
            extras: vec![],
            detail: None,
        };
        Report {
            machine: Machine {
                cpu: "Test CPU".into(),
                cpus: 2,
                kernel: "6.1".into(),
                memory: 1 << 30,
                load_start: 0.5,
                load_end: 1.5,
            },
            runs: 3,
            sample_ms: 100.0,
            quick: false,
            groups: vec![
                GroupInfo {
                    name: "local".into(),
                    title: "ksock vs AF_UNIX".into(),
                    skipped: None,
                },
                GroupInfo {
                    name: "fuse".into(),
                    title: "null FUSE".into(),
                    skipped: Some("not root".into()),
                },
            ],
            rows: vec![
                RowResult {
                    group: "local".into(),
                    id: "local.stream.msg64".into(),
                    title: "stream one-way 64 B".into(),
                    unit: Unit::OpsPerSec,
                    subject: side("ksock", &[3e6, 4e6, 5e6]),
                    reference: Some(side("AF_UNIX", &[1e6, 1e6, 2e6])),
                    ratio: Summary::of(&[3.0, 4.0, 2.5]),
                    target: Some(Target::RatioAtLeast(3.0)),
                    verdict: Some(Verdict {
                        met: true,
                        miss_factor: 1.0,
                    }),
                    note: Some("two threads".into()),
                    error: None,
                },
                RowResult {
                    group: "local".into(),
                    id: "local.stream.rtt64".into(),
                    title: "stream ping-pong 64 B".into(),
                    unit: Unit::Nanos,
                    subject: side("ksock", &[]),
                    reference: Some(side("AF_UNIX", &[])),
                    ratio: None,
                    target: Some(Target::RatioAtMost(0.5)),
                    verdict: None,
                    note: None,
                    error: Some("ksock: EPIPE".into()),
                },
            ],
        }
    }

    #[test]
    fn json_round_trips() {
        let r = sample_report();
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["rows"][0]["ratio"]["median"], 3.0);
        assert_eq!(v["rows"][0]["target"]["kind"], "ratio_at_least");
        assert_eq!(v["rows"][0]["unit"], "ops_per_sec");
    }

    #[test]
    fn json_that_is_not_a_report_is_refused() {
        let e = Report::from_json("{\"rows\": 3}").unwrap_err();
        assert!(e.starts_with("not a ksock bench report"), "{e}");
    }

    #[test]
    fn table_shows_medians_ranges_ratios_and_failures() {
        let text = sample_report().to_string();
        assert!(text.contains("4.000 M/s [3.000-5.000]"), "{text}");
        assert!(text.contains("AF_UNIX: 1.000 M/s [1.000-2.000]"), "{text}");
        assert!(text.contains("3.00x [2.50x-4.00x]"), "{text}");
        assert!(text.contains(">=3.00x met"), "{text}");
        assert!(
            text.contains("local.stream.rtt64: error: ksock: EPIPE"),
            "{text}"
        );
        assert!(text.contains("skipped: not root"), "{text}");
        assert!(
            text.contains("1 rows FAILED (local.stream.rtt64)"),
            "{text}"
        );
        let md = sample_report().to_markdown();
        assert!(
            md.contains("| stream one-way 64 B | 4.000 M/s [3.000-5.000] |"),
            "{md}"
        );
    }

    #[test]
    fn misses_are_listed_with_their_shortfall() {
        let mut r = sample_report();
        r.rows[0].verdict = Some(Verdict {
            met: false,
            miss_factor: 1.25,
        });
        let text = r.to_string();
        assert!(text.contains(">=3.00x MISSED by 25%"), "{text}");
        assert_eq!(r.misses().count(), 1);
        r.rows[0].ratio = Summary::of(&[1.0, 2.5, 3.0]);
        assert!(r.to_string().contains("2.50x [1.00x-3.00x] noisy"));
        assert_eq!(r.errors().count(), 1);
        assert!(r.row("local.stream.msg64").is_some());
    }
}
