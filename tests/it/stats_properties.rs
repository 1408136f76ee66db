//! Invariants of the statistics, on random samples (proptest), and the calibration of the
//! ratio CI on samples with a known true ratio.

use harness::rng::Rng;
use harness::stats::compare::{cliffs_delta, log_ratio};
use harness::stats::mann_whitney::mann_whitney;
use harness::stats::{Sample, compare, holm};
use proptest::prelude::*;

/// Positive per-trial values like throughputs or latencies, 2 to 40 of them.
fn positive_values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.5f64..5000.0, 2..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mean_ci_is_the_t_interval(values in prop::collection::vec(-1e6f64..1e6, 2..60)) {
        // Recomputed here: centred on the mean, half-width t(0.975, n−1)·sd/√n, with the
        // quantile from statrs rather than harness's own.
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let q = StudentsT::new(0.0, 1.0, n - 1.0).unwrap().inverse_cdf(0.975);
        let s = Sample::new(values).unwrap();
        let (lo, hi) = s.mean_ci(0.95).unwrap();
        let tol = 1e-6 * (1.0 + mean.abs() + q * sd);
        prop_assert!(((lo + hi) / 2.0 - mean).abs() <= tol, "{lo} {hi} around {mean}");
        prop_assert!(((hi - lo) / 2.0 - q * sd / n.sqrt()).abs() <= tol, "{lo} {hi}");
        let d = s.describe();
        prop_assert!(d.min <= d.median && d.median <= d.max);
    }

    #[test]
    fn ratio_ci_of_a_sample_against_itself_contains_one(values in positive_values()) {
        let s = Sample::new(values).unwrap();
        if let Some((r, w)) = log_ratio(&s, &s, 0.95) {
            prop_assert!((r.ratio - 1.0).abs() < 1e-12);
            prop_assert!(r.low <= 1.0 && 1.0 <= r.high, "{r:?}");
            prop_assert!((w.p - 1.0).abs() < 1e-12);
        }
        prop_assert_eq!(cliffs_delta(&s, &s), 0.0);
    }

    #[test]
    fn ratio_ci_contains_the_estimate_and_inverts(x in positive_values(), y in positive_values()) {
        let (x, y) = (Sample::new(x).unwrap(), Sample::new(y).unwrap());
        if let (Some((a, _)), Some((b, _))) = (log_ratio(&x, &y, 0.95), log_ratio(&y, &x, 0.95)) {
            prop_assert!(a.low <= a.ratio && a.ratio <= a.high);
            // Swapping the samples inverts the ratio and its interval.
            prop_assert!((a.ratio * b.ratio - 1.0).abs() < 1e-9);
            prop_assert!((a.low * b.high - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn p_values_are_probabilities_and_agree_with_the_ci(
        x in positive_values(),
        y in positive_values(),
        seed in any::<u64>(),
    ) {
        let (x, y) = (Sample::new(x).unwrap(), Sample::new(y).unwrap());
        let c = compare(&x, &y, 0.95, 200, seed);
        let mw = c.mann_whitney.expect("independent samples get Mann-Whitney");
        prop_assert!((0.0..=1.0).contains(&mw.p), "{:?}", mw);
        prop_assert!((-1.0..=1.0).contains(&c.cliffs_delta));
        if let (Some(w), Some(r)) = (c.welch, c.ratio) {
            prop_assert!((0.0..=1.0).contains(&w.p));
            // p < 0.05 exactly when the 95% CI excludes 1 (both from the same t).
            let excludes_one = r.low > 1.0 || r.high < 1.0;
            if (w.p - 0.05).abs() > 1e-9 {
                prop_assert_eq!(w.p < 0.05, excludes_one, "p {} CI {:?}", w.p, r);
            }
        }
        if let Some(b) = c.median_ratio {
            prop_assert!(b.low <= b.high);
        }
        // The test is symmetric in its samples.
        let swapped = mann_whitney(&y, &x);
        prop_assert!((swapped.p - mw.p).abs() < 1e-12);
    }

    #[test]
    fn holm_is_at_least_raw_capped_and_order_preserving(p in prop::collection::vec(0.0f64..=1.0, 0..50)) {
        let adj = holm(&p);
        prop_assert_eq!(adj.len(), p.len());
        for (a, raw) in adj.iter().zip(&p) {
            prop_assert!(*a >= *raw && *a <= 1.0);
        }
        for i in 0..p.len() {
            for j in 0..p.len() {
                if p[i] < p[j] {
                    prop_assert!(adj[i] <= adj[j], "raw {} < {} but adjusted {} > {}", p[i], p[j], adj[i], adj[j]);
                }
            }
        }
    }
}

/// Coverage of the 95% ratio CI on lognormal samples with a true ratio of 1.2: over 4000
/// seeded experiments the interval must contain 1.2 between 93.5% and 96.5% of the time
/// (the binomial standard error of a 95% rate over 4000 draws is 0.34%).
#[test]
fn ratio_ci_covers_the_true_ratio_95_percent_of_the_time() {
    let mut rng = Rng::new(2026);
    let experiments = 4000;
    let mut covered = 0;
    for i in 0..experiments {
        let (n1, n2) = (5 + i % 11, 5 + (i / 11) % 13);
        let x = Sample::new((0..n1).map(|_| 120.0 * rng.lognormal_factor(0.1))).unwrap();
        let y = Sample::new((0..n2).map(|_| 100.0 * rng.lognormal_factor(0.15))).unwrap();
        let (r, _) = log_ratio(&x, &y, 0.95).unwrap();
        covered += usize::from(r.low <= 1.2 && 1.2 <= r.high);
    }
    let rate = covered as f64 / experiments as f64;
    assert!((0.935..=0.965).contains(&rate), "coverage {rate}");
}
