//! Statistics: pure functions over samples, no I/O.
//!
//! A [`Sample`] is non-empty and NaN-free by construction, so every function on it can
//! state its result without "unless empty" caveats.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A non-empty sample of finite values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    values: Vec<f64>,
}

impl Sample {
    /// The finite values of `values`, or `None` when none is finite. Non-finite values are
    /// dropped: a rate from a zero duration is not an observation.
    pub fn new(values: impl IntoIterator<Item = f64>) -> Option<Sample> {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        (!values.is_empty()).then_some(Sample { values })
    }

    /// Number of values (≥ 1).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Never true; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Arithmetic mean.
    pub fn mean(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }

    /// Sample standard deviation (n − 1 denominator); `None` when n < 2.
    pub fn std_dev(&self) -> Option<f64> {
        let n = self.values.len();
        if n < 2 {
            return None;
        }
        let mean = self.mean();
        let ss: f64 = self.values.iter().map(|v| (v - mean).powi(2)).sum();
        Some((ss / (n - 1) as f64).sqrt())
    }

    /// Two-sided Student-t confidence interval of the mean at `level` (e.g. 0.95);
    /// `None` when n < 2. A zero-variance sample gives a zero-width interval.
    pub fn mean_ci(&self, level: f64) -> Option<(f64, f64)> {
        let n = self.values.len();
        let sd = self.std_dev()?;
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).ok()?;
        let q = t.inverse_cdf(0.5 + level / 2.0);
        let half = q * sd / (n as f64).sqrt();
        let mean = self.mean();
        Some((mean - half, mean + half))
    }

    /// Descriptive statistics with a 95% CI.
    pub fn describe(&self) -> Estimate {
        let ci = self.mean_ci(0.95);
        Estimate {
            n: self.len(),
            mean: self.mean(),
            ci95_low: ci.map(|c| c.0),
            ci95_high: ci.map(|c| c.1),
            std_dev: self.std_dev(),
        }
    }
}

/// Mean with its 95% Student-t interval over per-trial values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Number of per-trial values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Lower end of the 95% CI (`null` when n < 2).
    pub ci95_low: Option<f64>,
    /// Upper end of the 95% CI.
    pub ci95_high: Option<f64>,
    /// Sample standard deviation.
    pub std_dev: Option<f64>,
}

/// Latency distribution pooled over calls: integer microseconds, 3 significant digits,
/// mergeable across trials and runs.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram that grows as needed.
    pub fn new() -> LatencyHistogram {
        let mut hist = Histogram::new(3).expect("3 significant digits is a valid precision");
        hist.auto(true);
        LatencyHistogram { hist }
    }

    /// Adds one latency in milliseconds (negative or non-finite values are ignored).
    pub fn record_ms(&mut self, ms: f64) {
        if ms.is_finite() && ms >= 0.0 {
            let _ = self.hist.record((ms * 1e3).round() as u64);
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        let _ = self.hist.add(&other.hist);
    }

    /// Pooled percentiles; `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.hist.is_empty() {
            return None;
        }
        let q = |p: f64| self.hist.value_at_quantile(p) as f64 / 1e3;
        Some(Percentiles {
            n: self.hist.len(),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            max: self.hist.max() as f64 / 1e3,
        })
    }
}

/// Percentiles of a pooled latency distribution, in ms (HdrHistogram's value at
/// quantile: the smallest recorded value with at least that fraction at or below it,
/// to 3 significant digits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of calls pooled.
    pub n: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
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
        let s = Sample::new([1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
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
    fn histogram_percentiles_and_merge() {
        let mut a = LatencyHistogram::new();
        for ms in 1..=100 {
            a.record_ms(ms as f64);
        }
        let p = a.percentiles().unwrap();
        assert_eq!(p.n, 100);
        assert!((p.p50 - 50.0).abs() < 0.1, "{}", p.p50);
        assert!((p.p99 - 99.0).abs() < 0.1, "{}", p.p99);
        let mut b = LatencyHistogram::new();
        b.record_ms(1000.0);
        a.merge(&b);
        assert_eq!(a.percentiles().unwrap().n, 101);
        assert!((a.percentiles().unwrap().max - 1000.0).abs() < 1.0);
        assert!(LatencyHistogram::new().percentiles().is_none());
    }
}
