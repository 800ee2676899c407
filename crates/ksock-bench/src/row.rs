//! Rows: one measurement taken on ksock and on its reference in the same run.
//!
//! A [`Row`] has a subject side (ksock) and usually a reference side (Linux). Each side is a
//! [`Probe`]: either timed (`run(n)` does `n` iterations and returns how long they took; the
//! harness picks `n` so a sample lasts about the sample time) or a direct value (memory).
//! [`run_row`] calibrates both sides, then takes samples alternately, reversing the order
//! every round (S R, R S, S R, ...), so that background load lands on both sides alike.

use crate::report::{Extra, RowResult, SideResult, Verdict};
use crate::stats::{Summary, Unit, format_ratio, paired_ratios};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One measurement with optional secondary numbers (for example a breakdown).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// The value in the row's unit.
    pub value: f64,
    /// Secondary values: name, unit, value. Summarised over the runs like the main value.
    pub extras: Vec<(String, Unit, f64)>,
    /// A free-form breakdown; the report keeps the last run's.
    pub detail: Option<String>,
}

/// `run(n)` performs `n` iterations and returns the time they took.
pub type TimedFn = Box<dyn FnMut(u64) -> Result<Duration, String>>;

/// Measures the row's value directly.
pub type ValueFn = Box<dyn FnMut() -> Result<Measured, String>>;

/// How one side of a row is measured.
pub enum Probe {
    /// A timed loop; the row's unit and `per_iter` turn iterations and time into a value.
    Timed(TimedFn),
    /// A direct measurement (memory, for example).
    Value(ValueFn),
}

/// One side of a row: what is measured and how.
pub struct Side {
    /// Shown in the table: `ksock`, `AF_UNIX`, `null FUSE`.
    pub name: String,
    /// The measurement.
    pub probe: Probe,
}

impl Side {
    /// A timed side.
    pub fn timed(
        name: impl Into<String>,
        run: impl FnMut(u64) -> Result<Duration, String> + 'static,
    ) -> Side {
        Side {
            name: name.into(),
            probe: Probe::Timed(Box::new(run)),
        }
    }

    /// A side measured directly.
    pub fn value(
        name: impl Into<String>,
        measure: impl FnMut() -> Result<Measured, String> + 'static,
    ) -> Side {
        Side {
            name: name.into(),
            probe: Probe::Value(Box::new(measure)),
        }
    }
}

/// What the ratio (or the subject's own value) must reach.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Target {
    /// ksock / reference at least this.
    RatioAtLeast(f64),
    /// ksock / reference at most this.
    RatioAtMost(f64),
    /// The subject's median below this, in the row's unit.
    Below(f64),
}

impl Target {
    /// How the target is printed: `>=3x`, `<=0.5x`, `<512 B`.
    pub fn describe(&self, unit: Unit) -> String {
        match *self {
            Target::RatioAtLeast(r) => format!(">={}", format_ratio(r)),
            Target::RatioAtMost(r) => format!("<={}", format_ratio(r)),
            Target::Below(v) => format!("<{}", unit.format(v)),
        }
    }

    /// Judges a result: met or not, and by how much it is missed (a factor over 1 for a
    /// miss, e.g. 1.25 when the value would have to improve by 25%).
    pub fn judge(&self, ratio: Option<f64>, subject: Option<f64>) -> Option<Verdict> {
        let (met, factor) = match *self {
            Target::RatioAtLeast(t) => {
                let r = ratio?;
                (r >= t, t / r)
            }
            Target::RatioAtMost(t) => {
                let r = ratio?;
                (r <= t, r / t)
            }
            Target::Below(t) => {
                let v = subject?;
                (v < t, v / t)
            }
        };
        Some(Verdict {
            met,
            miss_factor: if met { 1.0 } else { factor },
        })
    }
}

/// A benchmark row, ready to run.
pub struct Row {
    /// The group it belongs to (`local`, `memory`, `memcpy`, `fuse`, `file`, `sweep`).
    pub group: String,
    /// A stable id for machines and `--only`: `local.stream.msg64`.
    pub id: String,
    /// The description shown in the table.
    pub title: String,
    /// The unit of the value.
    pub unit: Unit,
    /// For timed rows: operations (for op/s and ns) or bytes (for B/s) per iteration.
    pub per_iter: f64,
    /// The ksock side.
    pub subject: Side,
    /// The reference side, if the row compares.
    pub reference: Option<Side>,
    /// The target, if any.
    pub target: Option<Target>,
    /// A remark printed under the table.
    pub note: Option<String>,
    /// Iterations of the first calibration run (keep it short for slow operations).
    pub first_iters: u64,
}

impl Row {
    /// A row with one side and the given unit; add the rest with the builder methods.
    pub fn new(
        group: impl Into<String>,
        id: impl Into<String>,
        title: impl Into<String>,
        unit: Unit,
        subject: Side,
    ) -> Row {
        Row {
            group: group.into(),
            id: id.into(),
            title: title.into(),
            unit,
            per_iter: 1.0,
            subject,
            reference: None,
            target: None,
            note: None,
            first_iters: 16,
        }
    }

    /// Sets the reference side.
    pub fn against(mut self, reference: Side) -> Row {
        self.reference = Some(reference);
        self
    }

    /// Sets the target.
    pub fn target(mut self, t: Target) -> Row {
        self.target = Some(t);
        self
    }

    /// Sets the operations or bytes per iteration.
    pub fn per_iter(mut self, k: f64) -> Row {
        self.per_iter = k;
        self
    }

    /// Sets the note.
    pub fn note(mut self, n: impl Into<String>) -> Row {
        self.note = Some(n.into());
        self
    }

    /// Sets the iterations of the first calibration run.
    pub fn first_iters(mut self, n: u64) -> Row {
        self.first_iters = n.max(1);
        self
    }

    /// A row that could not be built (for example, its facility is missing): reported as an
    /// error, so that a broken benchmark is never silently absent.
    pub fn failed(group: &str, id: &str, title: &str, unit: Unit, err: String) -> Row {
        Row::new(
            group,
            id,
            title,
            unit,
            Side::value("ksock", move || Err(err.clone())),
        )
    }
}

/// How samples are taken.
#[derive(Clone, Copy, Debug)]
pub struct Sampling {
    /// Samples per side.
    pub runs: usize,
    /// The time one timed sample should take.
    pub sample_time: Duration,
    /// Measure only one side (for profiling): `Some(true)` ksock, `Some(false)` the
    /// reference.
    pub only_subject: Option<bool>,
}

/// Converts a timed sample to the row's value.
pub fn timed_value(unit: Unit, per_iter: f64, n: u64, t: Duration) -> f64 {
    let secs = t.as_secs_f64().max(1e-9);
    let work = n as f64 * per_iter;
    match unit {
        Unit::Nanos => secs * 1e9 / work,
        _ => work / secs,
    }
}

/// Picks an iteration count so that `run(n)` lasts about `target`, starting from `first`.
/// The calibration runs double as warm-up. Returns the count, or the probe's error.
pub fn calibrate(
    run: &mut dyn FnMut(u64) -> Result<Duration, String>,
    first: u64,
    target: Duration,
) -> Result<u64, String> {
    let mut n = first.max(1);
    for _ in 0..12 {
        let t = run(n)?;
        if t >= target / 2 {
            break;
        }
        let next = if t < target / 50 {
            n.saturating_mul(8)
        } else {
            let k = target.as_secs_f64() / t.as_secs_f64().max(1e-9);
            ((n as f64) * k).ceil() as u64
        };
        if next <= n {
            break;
        }
        n = next;
        if t >= target / 50 {
            // One run at the estimated count warms up at full length, then stop.
            run(n)?;
            break;
        }
    }
    Ok(n)
}

enum Prepared {
    Timed(TimedFn, u64),
    Value(ValueFn),
}

struct Running {
    name: String,
    probe: Prepared,
    samples: Vec<f64>,
    extras: Vec<(String, Unit, Vec<f64>)>,
    detail: Option<String>,
}

impl Running {
    fn sample(&mut self, unit: Unit, per_iter: f64) -> Result<(), String> {
        match &mut self.probe {
            Prepared::Timed(f, n) => {
                let t = f(*n)?;
                self.samples.push(timed_value(unit, per_iter, *n, t));
            }
            Prepared::Value(f) => {
                let m = f()?;
                self.samples.push(m.value);
                if m.detail.is_some() {
                    self.detail = m.detail;
                }
                for (name, u, v) in m.extras {
                    match self.extras.iter_mut().find(|e| e.0 == name) {
                        Some(e) => e.2.push(v),
                        None => self.extras.push((name, u, vec![v])),
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> SideResult {
        let iters = match self.probe {
            Prepared::Timed(_, n) => Some(n),
            Prepared::Value(_) => None,
        };
        SideResult {
            name: self.name,
            summary: Summary::of(&self.samples),
            samples: self.samples,
            iters,
            detail: self.detail,
            extras: self
                .extras
                .into_iter()
                .filter_map(|(name, unit, v)| {
                    Summary::of(&v).map(|summary| Extra {
                        name,
                        unit,
                        summary,
                    })
                })
                .collect(),
        }
    }
}

fn prepare(side: Side, first: u64, s: &Sampling) -> Result<Running, (String, String)> {
    let probe = match side.probe {
        Probe::Timed(mut f) => match calibrate(&mut f, first, s.sample_time) {
            Ok(n) => Prepared::Timed(f, n),
            Err(e) => return Err((side.name, e)),
        },
        Probe::Value(f) => Prepared::Value(f),
    };
    Ok(Running {
        name: side.name,
        probe,
        samples: Vec::new(),
        extras: Vec::new(),
        detail: None,
    })
}

/// Runs a row: calibrates both sides, then samples them alternately.
pub fn run_row(row: Row, s: &Sampling) -> RowResult {
    let mut out = RowResult {
        group: row.group,
        id: row.id,
        title: row.title,
        unit: row.unit,
        subject: SideResult::named(&row.subject.name),
        reference: row.reference.as_ref().map(|r| SideResult::named(&r.name)),
        ratio: None,
        target: row.target,
        verdict: None,
        note: row.note,
        error: None,
    };
    let (unit, per_iter) = (row.unit, row.per_iter);
    let fail = |mut out: RowResult, who: &str, e: String| {
        out.error = Some(format!("{who}: {e}"));
        out
    };
    let want = |is_subject: bool| s.only_subject.is_none_or(|x| x == is_subject);
    let mut sides: [Option<Running>; 2] = [None, None];
    for (i, side) in [Some(row.subject), row.reference].into_iter().enumerate() {
        if let Some(side) = side.filter(|_| want(i == 0)) {
            match prepare(side, row.first_iters, s) {
                Ok(r) => sides[i] = Some(r),
                Err((who, e)) => return fail(out, &who, e),
            }
        }
    }
    for round in 0..s.runs.max(1) {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            if let Some(side) = sides[i].as_mut()
                && let Err(e) = side.sample(unit, per_iter)
            {
                let who = side.name.clone();
                return fail(out, &who, e);
            }
        }
    }
    let [subject, reference] = sides;
    if let Some(subject) = subject {
        out.subject = subject.finish();
    }
    out.reference = reference.map(Running::finish).or(out.reference);
    if let Some(r) = &out.reference {
        out.ratio = Summary::of(&paired_ratios(&out.subject.samples, &r.samples));
    }
    out.verdict = out.target.and_then(|t| {
        t.judge(
            out.ratio.map(|r| r.median),
            out.subject.summary.map(|s| s.median),
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn timed_values_follow_the_unit() {
        let t = Duration::from_millis(500);
        assert_eq!(timed_value(Unit::OpsPerSec, 1.0, 1000, t), 2000.0);
        assert_eq!(timed_value(Unit::BytesPerSec, 64.0, 1000, t), 128_000.0);
        assert_eq!(timed_value(Unit::Nanos, 2.0, 1000, t), 250_000.0);
    }

    #[test]
    fn calibration_grows_until_the_target() {
        // A fake probe: 1 µs per iteration.
        let calls = Rc::new(RefCell::new(Vec::new()));
        let c = calls.clone();
        let mut run = move |n: u64| {
            c.borrow_mut().push(n);
            Ok(Duration::from_micros(n))
        };
        let n = calibrate(&mut run, 1, Duration::from_millis(100)).unwrap();
        assert!((100_000..=110_000).contains(&n), "n = {n}");
        let calls = calls.borrow();
        assert!(calls.len() < 12, "{calls:?}");
        assert_eq!(
            *calls.last().unwrap(),
            n,
            "the last call warms up at the final count"
        );
    }

    #[test]
    fn calibration_reports_the_probe_error() {
        let mut run = |_n: u64| -> Result<Duration, String> { Err("EBADF".into()) };
        assert_eq!(
            calibrate(&mut run, 1, Duration::from_millis(1)),
            Err("EBADF".to_string())
        );
    }

    #[test]
    fn targets_judge_and_measure_the_miss() {
        let v = Target::RatioAtLeast(3.0).judge(Some(2.0), None).unwrap();
        assert!(!v.met);
        assert_eq!(v.miss_factor, 1.5);
        assert!(
            Target::RatioAtLeast(3.0)
                .judge(Some(3.5), None)
                .unwrap()
                .met
        );
        let v = Target::RatioAtMost(0.5).judge(Some(0.6), None).unwrap();
        assert!(!v.met);
        assert!((v.miss_factor - 1.2).abs() < 1e-9);
        assert!(Target::Below(512.0).judge(None, Some(410.0)).unwrap().met);
        assert_eq!(Target::RatioAtLeast(3.0).judge(None, Some(1.0)), None);
        assert_eq!(Target::RatioAtMost(0.5).describe(Unit::Nanos), "<=0.50x");
        assert_eq!(Target::Below(512.0).describe(Unit::Bytes), "<512.0 B");
    }

    #[test]
    fn samples_alternate_and_ratios_pair_up() {
        let log = Rc::new(RefCell::new(String::new()));
        let (l1, l2) = (log.clone(), log.clone());
        let mut k = 0.0;
        let row = Row::new(
            "t",
            "t.x",
            "x",
            Unit::Bytes,
            Side::value("a", move || {
                l1.borrow_mut().push('S');
                k += 1.0;
                Ok(Measured {
                    value: 10.0 * k,
                    extras: vec![("part".into(), Unit::Bytes, k)],
                    detail: Some(format!("run {k}")),
                })
            }),
        )
        .against(Side::value("b", move || {
            l2.borrow_mut().push('R');
            Ok(Measured {
                value: 5.0,
                extras: vec![],
                detail: None,
            })
        }))
        .target(Target::Below(25.0));
        let r = run_row(
            row,
            &Sampling {
                runs: 4,
                sample_time: Duration::from_millis(1),
                only_subject: None,
            },
        );
        assert_eq!(r.error, None);
        assert_eq!(*log.borrow(), "SRRSSRRS");
        assert_eq!(r.subject.samples, vec![10.0, 20.0, 30.0, 40.0]);
        let ratio = r.ratio.unwrap();
        assert_eq!((ratio.median, ratio.min, ratio.max), (5.0, 2.0, 8.0));
        assert_eq!(r.subject.extras[0].summary.median, 2.5);
        assert_eq!(r.subject.detail.as_deref(), Some("run 4"));
        assert!(!r.verdict.unwrap().met, "median 25 is not below 25");
    }

    #[test]
    fn one_side_only_leaves_the_other_unmeasured() {
        let make = || {
            Row::new(
                "t",
                "t.x",
                "x",
                Unit::Bytes,
                Side::value("a", || {
                    Ok(Measured {
                        value: 1.0,
                        ..Default::default()
                    })
                }),
            )
            .against(Side::value("b", || Err("must not run".into())))
        };
        let s = Sampling {
            runs: 2,
            sample_time: Duration::from_millis(1),
            only_subject: Some(true),
        };
        let r = run_row(make(), &s);
        assert_eq!(r.error, None);
        assert_eq!(r.subject.samples, vec![1.0, 1.0]);
        let b = r.reference.unwrap();
        assert_eq!((b.name.as_str(), b.samples.len()), ("b", 0));
        assert_eq!(r.ratio, None);
        let r = run_row(
            make(),
            &Sampling {
                only_subject: Some(false),
                ..s
            },
        );
        assert_eq!(r.error.as_deref(), Some("b: must not run"));
    }

    #[test]
    fn a_failing_side_makes_an_error_row() {
        let row = Row::failed("g", "g.x", "x", Unit::Bytes, "no /dev/fuse".into());
        let r = run_row(
            row,
            &Sampling {
                runs: 3,
                sample_time: Duration::from_millis(1),
                only_subject: None,
            },
        );
        assert_eq!(r.error.as_deref(), Some("ksock: no /dev/fuse"));
        assert!(r.subject.summary.is_none());
    }
}
