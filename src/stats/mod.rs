//! Statistics: pure functions over samples, no I/O.
//!
//! - [`Sample`]: a non-empty, NaN-free set of values (per-trial statistics, usually), with
//!   its descriptive statistics ([`Descriptive`]) and type-7 percentiles.
//! - [`compare`]: a variant against a baseline: ratio of geometric means with a Welch CI on
//!   log values, Welch's p, Mann–Whitney U ([`mann_whitney`]), Hedges' g, Cliff's δ and a
//!   seeded BCa bootstrap CI of the ratio of medians ([`bootstrap`]).
//! - [`compare_paired`]: the same for values paired by trial (paired t on log differences).
//! - [`trend`]: the least-squares trend of a series over rounds (drift).
//! - [`holm`]: the Holm step-down adjustment across every comparison of a run.
//! - [`LatencyHistogram`]: per-call latencies pooled in an HdrHistogram (integer µs).
//!
//! Every function states its assumptions; where a statistic is undefined for the data it
//! is given (n < 2, zero variance, a non-positive value under a logarithm) it returns
//! `None` rather than a NaN that would travel into a table. The numbers are checked
//! against SciPy in `tests/it/stats_reference.rs` (cases from `scripts/stats_reference.py`).

pub mod bootstrap;
pub mod compare;
pub mod dist;
mod histogram;
pub mod holm;
pub mod mann_whitney;
pub mod meta;
pub mod power;
pub mod sequential;
pub mod trend;

pub use compare::{Comparison, RatioCi, WelchTest, compare, compare_paired};
pub use histogram::{LatencyHistogram, Percentiles};
pub use holm::holm;

use serde::{Deserialize, Serialize};

/// Significance level of every verdict (after Holm's adjustment).
pub const ALPHA: f64 = 0.05;

/// Confidence level of every interval harness reports, `1 − α`.
pub const CONFIDENCE: f64 = 1.0 - ALPHA;

/// A non-empty sample of finite values, kept sorted.
///
/// Invariants, established by [`Sample::new`]: at least one value, no NaN or infinity.
/// The order the values came in is not kept: every statistic here is invariant under
/// permutation, and sorted values make the median and percentiles O(1).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    sorted: Vec<f64>,
}

impl Sample {
    /// The finite values of `values`, or `None` when none is finite. Non-finite values are
    /// dropped: a rate from a zero duration is not an observation.
    pub fn new(values: impl IntoIterator<Item = f64>) -> Option<Sample> {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        Some(Sample { sorted })
    }

    /// The values in ascending order.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    /// Number of values (≥ 1).
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Never true; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Arithmetic mean.
    pub fn mean(&self) -> f64 {
        self.sorted.iter().sum::<f64>() / self.sorted.len() as f64
    }

    /// Sample variance (n − 1 denominator, two-pass); `None` when n < 2. Exactly 0 when
    /// every value is the same: the mean of n copies of a value need not be that value in
    /// floating point (five copies of ln 7 are not), and the residue, squared, would pass
    /// for a spread of 1e-32 that makes a t statistic of 1e15 out of nothing.
    pub fn variance(&self) -> Option<f64> {
        let n = self.sorted.len();
        if n < 2 {
            return None;
        }
        if self.min() == self.max() {
            return Some(0.0);
        }
        let mean = self.mean();
        let ss: f64 = self.sorted.iter().map(|v| (v - mean).powi(2)).sum();
        Some(ss / (n - 1) as f64)
    }

    /// Sample standard deviation (n − 1 denominator); `None` when n < 2.
    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// Coefficient of variation, `std_dev / |mean|`; `None` when n < 2 or the mean is 0.
    pub fn cv(&self) -> Option<f64> {
        let mean = self.mean();
        self.std_dev()
            .filter(|_| mean != 0.0)
            .map(|sd| sd / mean.abs())
    }

    /// Smallest value.
    pub fn min(&self) -> f64 {
        self.sorted[0]
    }

    /// Largest value.
    pub fn max(&self) -> f64 {
        self.sorted[self.sorted.len() - 1]
    }

    /// Median: the middle value, or the mean of the middle two when n is even.
    pub fn median(&self) -> f64 {
        median_sorted(&self.sorted)
    }

    /// Percentile `p` ∈ [0, 1] by Hyndman & Fan's type 7 (linear interpolation between
    /// order statistics at `h = (n − 1)·p`; R's default, NumPy's `linear`). `p` is clamped.
    pub fn percentile(&self, p: f64) -> f64 {
        quantile_sorted(&self.sorted, p)
    }

    /// Natural logarithms of the values, or `None` when a value is not positive.
    pub fn ln(&self) -> Option<Sample> {
        if self.sorted[0] <= 0.0 {
            return None;
        }
        Some(Sample {
            sorted: self.sorted.iter().map(|v| v.ln()).collect(),
        })
    }

    /// Two-sided Student-t confidence interval of the mean at `level` (e.g. 0.95);
    /// `None` when n < 2. A zero-variance sample gives a zero-width interval.
    pub fn mean_ci(&self, level: f64) -> Option<(f64, f64)> {
        let n = self.sorted.len();
        let sd = self.std_dev()?;
        let q = dist::t_quantile(0.5 + level / 2.0, (n - 1) as f64);
        let half = q * sd / (n as f64).sqrt();
        let mean = self.mean();
        Some((mean - half, mean + half))
    }

    /// Descriptive statistics with a [`CONFIDENCE`] interval of the mean.
    pub fn describe(&self) -> Descriptive {
        let ci = self.mean_ci(CONFIDENCE);
        Descriptive {
            n: self.len(),
            mean: self.mean(),
            ci_low: ci.map(|c| c.0),
            ci_high: ci.map(|c| c.1),
            std_dev: self.std_dev(),
            cv: self.cv(),
            min: self.min(),
            median: self.median(),
            max: self.max(),
        }
    }
}

/// Type-7 quantile of ascending `sorted` values (non-empty), `p` clamped to [0, 1].
pub(crate) fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Median of ascending `sorted` values (non-empty). For even n it is `(a + b) / 2`, the
/// same value as the type-7 50th percentile up to the last bit; computed this way so that a
/// bootstrap replicate equal to the estimate compares equal, as in NumPy.
pub(crate) fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// What a sample of per-trial values looks like.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Descriptive {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Lower end of the 95% Student-t CI of the mean (`null` when n < 2).
    pub ci_low: Option<f64>,
    /// Upper end of the 95% CI.
    pub ci_high: Option<f64>,
    /// Sample standard deviation (n − 1).
    pub std_dev: Option<f64>,
    /// Coefficient of variation.
    pub cv: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Median (type 7).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_drops_non_finite_and_rejects_empty() {
        assert!(Sample::new([f64::NAN, f64::INFINITY]).is_none());
        assert_eq!(Sample::new([1.0, f64::NAN, 3.0]).unwrap().len(), 2);
    }

    #[test]
    fn mean_sd_and_t_interval_match_reference() {
        // Reference: scipy.stats.t.interval(0.95, 4, loc=3, scale=stats.sem([1,2,3,4,5]))
        //            = (1.0367568385224393, 4.96324316147756)
        let s = Sample::new([5.0, 2.0, 3.0, 1.0, 4.0]).unwrap();
        assert_eq!(s.mean(), 3.0);
        assert!((s.std_dev().unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
        let (lo, hi) = s.mean_ci(0.95).unwrap();
        assert!((lo - 1.036_756_838_522_439_3).abs() < 1e-9, "{lo}");
        assert!((hi - 4.963_243_161_477_56).abs() < 1e-9, "{hi}");
    }

    #[test]
    fn single_value_has_no_interval_and_constant_has_zero_width() {
        assert_eq!(Sample::new([2.0]).unwrap().mean_ci(0.95), None);
        let (lo, hi) = Sample::new([2.0, 2.0, 2.0]).unwrap().mean_ci(0.95).unwrap();
        assert_eq!((lo, hi), (2.0, 2.0));
    }

    #[test]
    fn type7_percentiles() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
        let s = Sample::new([4.0, 1.0, 3.0, 2.0]).unwrap();
        for (p, want) in [(0.0, 1.0), (0.25, 1.75), (0.5, 2.5), (0.9, 3.7), (1.0, 4.0)] {
            assert!(
                (s.percentile(p) - want).abs() < 1e-12,
                "p{p}: {}",
                s.percentile(p)
            );
        }
        assert_eq!(Sample::new([7.0]).unwrap().median(), 7.0);
    }

    #[test]
    fn a_sample_without_spread_has_exactly_zero_variance() {
        // The two-pass variance of five copies of ln 7 is about 6e-32, not 0.
        let logs = Sample::new([7.0f64.ln(); 5]).unwrap();
        let mean = logs.mean();
        let residue: f64 = logs.sorted().iter().map(|v| (v - mean).powi(2)).sum();
        assert!(residue > 0.0, "this input shows the rounding residue");
        assert_eq!(logs.variance(), Some(0.0));
        assert_eq!(logs.cv(), Some(0.0));
    }

    #[test]
    fn ln_needs_positive_values() {
        assert!(Sample::new([0.0, 1.0]).unwrap().ln().is_none());
        let l = Sample::new([1.0, std::f64::consts::E])
            .unwrap()
            .ln()
            .unwrap();
        assert_eq!(l.sorted(), &[0.0, 1.0]);
    }
}
