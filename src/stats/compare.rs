//! Two-sample comparison of a variant (`x`) against a baseline (`y`), each a sample of
//! per-trial statistics treated as independent observations.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::ln_gamma;

use super::bootstrap::{BootstrapCi, median_ratio_bca};
use super::mann_whitney::{MannWhitney, mann_whitney};
use super::{Sample, dist};

/// Welch's unequal-variance t-test of `mean(x) − mean(y)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchTest {
    /// `(mean(x) − mean(y)) / se`.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// `mean(x) − mean(y)`.
    pub difference: f64,
    /// Standard error of the difference.
    pub se: f64,
}

impl WelchTest {
    /// Two-sided CI of the difference of means at `level`.
    pub fn difference_ci(&self, level: f64) -> (f64, f64) {
        let half = dist::t_quantile(0.5 + level / 2.0, self.df) * self.se;
        (self.difference - half, self.difference + half)
    }
}

/// Welch's t-test. `None` when either sample has fewer than 2 values or both have zero
/// variance (the standard error is 0 and t is undefined). Cost O(n).
pub fn welch(x: &Sample, y: &Sample) -> Option<WelchTest> {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let (v1, v2) = (x.variance()? / n1, y.variance()? / n2);
    let se2 = v1 + v2;
    if se2 <= 0.0 {
        return None;
    }
    let se = se2.sqrt();
    let difference = x.mean() - y.mean();
    let t = difference / se;
    let df = se2 * se2 / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0));
    Some(WelchTest {
        t,
        df,
        p: dist::t_two_sided_p(t, df),
        difference,
        se,
    })
}

/// Ratio of geometric means `exp(mean ln x − mean ln y)` with its CI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatioCi {
    /// Point estimate.
    pub ratio: f64,
    /// Lower end of the CI.
    pub low: f64,
    /// Upper end of the CI.
    pub high: f64,
}

/// Ratio of geometric means with a CI from Welch's t on log values, and that Welch test
/// (so the p-value and the CI always agree: p < 1 − level exactly when the CI excludes 1).
/// `None` when a value is not positive or Welch is undefined on the logs.
pub fn log_ratio(x: &Sample, y: &Sample, level: f64) -> Option<(RatioCi, WelchTest)> {
    let test = welch(&x.ln()?, &y.ln()?)?;
    let (lo, hi) = test.difference_ci(level);
    Some((
        RatioCi {
            ratio: test.difference.exp(),
            low: lo.exp(),
            high: hi.exp(),
        },
        test,
    ))
}

/// Hedges' g: `(mean(x) − mean(y)) / s_pooled`, times the exact small-sample correction
/// `J(ν) = Γ(ν/2) / (√(ν/2) · Γ((ν−1)/2))`, ν = n₁ + n₂ − 2. `None` when ν < 2 or the
/// pooled standard deviation is 0.
pub fn hedges_g(x: &Sample, y: &Sample) -> Option<f64> {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let df = n1 + n2 - 2.0;
    if df < 2.0 {
        return None;
    }
    let ss = |s: &Sample| s.variance().unwrap_or(0.0) * (s.len() as f64 - 1.0);
    let pooled = ((ss(x) + ss(y)) / df).sqrt();
    if pooled <= 0.0 {
        return None;
    }
    let j = (ln_gamma(df / 2.0) - (df / 2.0).sqrt().ln() - ln_gamma((df - 1.0) / 2.0)).exp();
    Some(j * (x.mean() - y.mean()) / pooled)
}

/// Cliff's δ: `(#{xᵢ > yⱼ} − #{xᵢ < yⱼ}) / (n₁·n₂)`, in [−1, 1]; positive when `x` tends to
/// be larger. Cost O(n₁ + n₂) on the sorted samples.
pub fn cliffs_delta(x: &Sample, y: &Sample) -> f64 {
    let ys = y.sorted();
    let (mut greater, mut less) = (0usize, 0usize);
    for &v in x.sorted() {
        less += ys.len() - ys.partition_point(|&w| w <= v);
        greater += ys.partition_point(|&w| w < v);
    }
    (greater as f64 - less as f64) / (x.len() * y.len()) as f64
}

/// Everything harness says about one variant against its baseline on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Values of the variant.
    pub n_variant: usize,
    /// Values of the baseline.
    pub n_baseline: usize,
    /// Ratio of geometric means (variant / baseline) with its Welch CI on logs.
    pub ratio: Option<RatioCi>,
    /// Welch's test on log values.
    pub welch: Option<WelchTest>,
    /// Mann–Whitney U of the variant, two-sided.
    pub mann_whitney: MannWhitney,
    /// Hedges' g on the raw values (variant − baseline).
    pub hedges_g: Option<f64>,
    /// Cliff's δ (variant vs baseline).
    pub cliffs_delta: f64,
    /// Ratio of medians with a seeded BCa bootstrap CI.
    pub median_ratio: Option<BootstrapCi>,
}

/// Compares `variant` against `baseline` at `level`, bootstrapping with `resamples` draws
/// from `seed`. Cost O(resamples · (n₁ + n₂)).
pub fn compare(
    variant: &Sample,
    baseline: &Sample,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Comparison {
    let ratio = log_ratio(variant, baseline, level);
    Comparison {
        n_variant: variant.len(),
        n_baseline: baseline.len(),
        ratio: ratio.map(|r| r.0),
        welch: ratio.map(|r| r.1),
        mann_whitney: mann_whitney(variant, baseline),
        hedges_g: hedges_g(variant, baseline),
        cliffs_delta: cliffs_delta(variant, baseline),
        median_ratio: median_ratio_bca(variant, baseline, level, resamples, seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Sample {
        Sample::new(v.iter().copied()).unwrap()
    }

    #[test]
    fn welch_needs_two_values_and_some_variance() {
        assert!(welch(&s(&[1.0]), &s(&[1.0, 2.0])).is_none());
        assert!(welch(&s(&[3.0, 3.0]), &s(&[4.0, 4.0])).is_none());
        // One constant sample: df is the other's n − 1.
        let w = welch(&s(&[3.0, 3.0, 3.0]), &s(&[1.0, 2.0, 3.0, 4.0])).unwrap();
        assert!((w.df - 3.0).abs() < 1e-12);
    }

    #[test]
    fn ratio_of_a_scaled_copy_is_the_scale() {
        let y = s(&[10.0, 12.0, 9.0, 11.0]);
        let x = s(&[12.0, 14.4, 10.8, 13.2]);
        let (r, w) = log_ratio(&x, &y, 0.95).unwrap();
        assert!((r.ratio - 1.2).abs() < 1e-12);
        assert!(r.low < 1.2 && r.high > 1.2);
        assert!(w.p > 0.0 && w.p < 1.0);
        assert!(log_ratio(&s(&[0.0, 1.0]), &y, 0.95).is_none());
    }

    #[test]
    fn cliffs_delta_counts_pairs() {
        assert_eq!(cliffs_delta(&s(&[3.0, 4.0]), &s(&[1.0, 2.0])), 1.0);
        assert_eq!(cliffs_delta(&s(&[1.0, 2.0]), &s(&[3.0, 4.0])), -1.0);
        // pairs: (2,1)>, (2,2)=, (2,3)<, (5,*)> ×3 → (4 − 1) / 6
        assert!((cliffs_delta(&s(&[2.0, 5.0]), &s(&[1.0, 2.0, 3.0])) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn hedges_g_is_undefined_without_spread() {
        assert!(hedges_g(&s(&[1.0, 1.0]), &s(&[2.0, 2.0])).is_none());
        assert!(hedges_g(&s(&[1.0]), &s(&[2.0, 3.0])).is_none());
        assert!(hedges_g(&s(&[1.0, 2.0, 3.0]), &s(&[2.0, 3.0, 4.0])).unwrap() < 0.0);
    }
}
