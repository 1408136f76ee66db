//! Latencies pooled over calls in an HdrHistogram.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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
