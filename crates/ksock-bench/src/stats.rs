//! Statistics over a handful of samples, and the units they are printed in.
//!
//! Benchmarks here run a few samples per side (the machines are noisy), so the summary is
//! the median with the range, never a mean. Ratios are taken per interleaved pair of samples
//! (ksock run `i` against reference run `i`, measured back to back) and then summarised the
//! same way: a burst of load from elsewhere slows both halves of a pair alike.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Median, minimum and maximum of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The middle value (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// How many samples.
    pub n: usize,
}

impl Summary {
    /// Summarises `samples`; `None` if there are none or one is not a finite number.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: s[0],
            max: s[n - 1],
            n,
        })
    }

    /// The spread of the samples relative to the median: (max - min) / median.
    pub fn spread(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median.abs()
        }
    }
}

/// Ratios `a[i] / b[i]` of paired samples (pairs with a zero denominator are left out).
pub fn paired_ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter(|(_, d)| **d != 0.0)
        .map(|(n, d)| n / d)
        .collect()
}

/// What a number measures, which fixes how it is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Operations (messages, connections) per second.
    OpsPerSec,
    /// Bytes per second.
    BytesPerSec,
    /// Nanoseconds (per operation or per round trip).
    Nanos,
    /// Bytes.
    Bytes,
}

impl Unit {
    /// Whether a larger value is better (rates) or a smaller one (times, memory).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Unit::OpsPerSec | Unit::BytesPerSec)
    }

    /// The short name used in JSON and tables.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::OpsPerSec => "op/s",
            Unit::BytesPerSec => "B/s",
            Unit::Nanos => "ns",
            Unit::Bytes => "B",
        }
    }

    /// `value` with an SI or binary prefix and the unit, in about 4 significant digits.
    pub fn format(self, value: f64) -> String {
        let (div, suffix) = self.scale(value);
        format!("{} {suffix}", digits(value / div))
    }

    /// `median [min-max]`, the range in the median's scale.
    pub fn format_range(self, s: &Summary) -> String {
        let (div, suffix) = self.scale(s.median);
        format!(
            "{} {suffix} [{}-{}]",
            digits(s.median / div),
            digits(s.min / div),
            digits(s.max / div)
        )
    }

    /// The divisor and suffix that print `value` in about 4 significant digits.
    pub fn scale(self, value: f64) -> (f64, String) {
        const SI: [&str; 5] = ["", "k", "M", "G", "T"];
        const BIN: [&str; 5] = ["", "Ki", "Mi", "Gi", "Ti"];
        let pick = |base: f64, prefixes: &[&str; 5], unit: &str| {
            let mut div = 1.0;
            let mut i = 0;
            while (value / div).abs() >= base && i + 1 < prefixes.len() {
                div *= base;
                i += 1;
            }
            (div, format!("{}{unit}", prefixes[i]))
        };
        match self {
            Unit::OpsPerSec => pick(1000.0, &SI, "/s"),
            Unit::BytesPerSec => pick(1024.0, &BIN, "B/s"),
            Unit::Bytes => pick(1024.0, &BIN, "B"),
            Unit::Nanos => {
                let a = value.abs();
                if a >= 1e9 {
                    (1e9, "s".into())
                } else if a >= 1e6 {
                    (1e6, "ms".into())
                } else if a >= 1e3 {
                    (1e3, "µs".into())
                } else {
                    (1.0, "ns".into())
                }
            }
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Four significant digits at most, without a trailing fraction for large numbers.
pub fn digits(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A ratio as printed: `3.42x`.
pub fn format_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1.0, 5.0, 3));
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert_eq!(Summary::of(&[7.0]).unwrap().median, 7.0);
    }

    #[test]
    fn median_resists_one_outlier() {
        let s = Summary::of(&[10.0, 11.0, 9.0, 10.5, 1000.0]).unwrap();
        assert_eq!(s.median, 10.5);
        assert_eq!(s.max, 1000.0);
        assert!(s.spread() > 90.0);
    }

    #[test]
    fn empty_or_non_finite_has_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
        assert_eq!(Summary::of(&[f64::INFINITY]), None);
    }

    #[test]
    fn ratios_pair_samples_and_skip_zero_denominators() {
        let r = paired_ratios(&[10.0, 20.0, 30.0], &[5.0, 0.0, 10.0]);
        assert_eq!(r, vec![2.0, 3.0]);
        let r = paired_ratios(&[1.0, 2.0, 3.0], &[1.0]);
        assert_eq!(r, vec![1.0], "extra samples without a partner are ignored");
    }

    #[test]
    fn units_print_with_prefixes() {
        assert_eq!(Unit::OpsPerSec.format(12_345_678.0), "12.35 M/s");
        assert_eq!(Unit::OpsPerSec.format(999.0), "999.0 /s");
        assert_eq!(
            Unit::BytesPerSec.format(3.0 * 1024.0 * 1024.0 * 1024.0),
            "3.000 GiB/s"
        );
        assert_eq!(Unit::Nanos.format(850.0), "850.0 ns");
        assert_eq!(Unit::Nanos.format(12_500.0), "12.50 µs");
        assert_eq!(Unit::Nanos.format(2.5e9), "2.500 s");
        assert_eq!(Unit::Bytes.format(410.0), "410.0 B");
        assert_eq!(Unit::Bytes.format(4096.0), "4.000 KiB");
        let r = Summary::of(&[11.5e6, 12.0e6, 13.25e6]).unwrap();
        assert_eq!(Unit::OpsPerSec.format_range(&r), "12.00 M/s [11.50-13.25]");
        assert_eq!(format_ratio(3.4567), "3.46x");
        assert_eq!(format_ratio(12.34), "12.3x");
        assert_eq!(format_ratio(250.0), "250x");
    }

    #[test]
    fn direction_of_better() {
        assert!(Unit::OpsPerSec.higher_is_better());
        assert!(Unit::BytesPerSec.higher_is_better());
        assert!(!Unit::Nanos.higher_is_better());
        assert!(!Unit::Bytes.higher_is_better());
    }
}
