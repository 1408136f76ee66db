//! Two-sample comparison of a variant (`x`) against a baseline (`y`), each a sample of
//! per-trial statistics treated as independent observations.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::ln_gamma;

use super::bootstrap::{BootstrapCi, median_ratio_bca};
use super::mann_whitney::{MannWhitney, mann_whitney};
use super::{Sample, dist};

/// A t-test of a difference of means: Welch's unequal-variance test of `mean(x) − mean(y)`
/// for two independent samples, or the paired t-test of the mean within-pair difference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchTest {
    /// `(mean(x) − mean(y)) / se`.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// `mean(x) − mean(y)` (paired: the mean of the differences).
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

    /// One-sided p of H0 "the difference is at least `bound`" (`below` = true: the
    /// alternative is a difference below `bound`), or of H0 "at most `bound`" against a
    /// difference above it. The test a gate needs: is the change beyond the tolerance?
    pub fn one_sided_p(&self, bound: f64, below: bool) -> f64 {
        let t = (self.difference - bound) / self.se;
        if below {
            dist::t_sf(-t, self.df)
        } else {
            dist::t_sf(t, self.df)
        }
    }
}

/// Welch's t-test. `None` when either sample has fewer than 2 values or neither varies
/// (every value of each the same: the standard error is 0 and t is undefined, not
/// infinite; [`Sample::variance`] makes that exactly 0 rather than a rounding residue).
/// Cost O(n).
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

/// Ratio of geometric means of paired values `(x, y)` (a variant and the baseline in the
/// same trial) with a CI from the paired t-test on the log differences `ln x − ln y`.
/// `None` with fewer than 2 pairs, a value that is not positive, or differences that do
/// not vary (the test is undefined, not infinitely significant).
pub fn paired_log_ratio(pairs: &[(f64, f64)], level: f64) -> Option<(RatioCi, WelchTest)> {
    if pairs.iter().any(|&(x, y)| x <= 0.0 || y <= 0.0) {
        return None;
    }
    let diffs = Sample::new(pairs.iter().map(|&(x, y)| x.ln() - y.ln()))?;
    if diffs.len() < 2 || diffs.min() == diffs.max() {
        return None;
    }
    let n = diffs.len() as f64;
    let se = diffs.std_dev()? / n.sqrt();
    let difference = diffs.mean();
    let t = difference / se;
    let test = WelchTest {
        t,
        df: n - 1.0,
        p: dist::t_two_sided_p(t, n - 1.0),
        difference,
        se,
    };
    let (lo, hi) = test.difference_ci(level);
    Some((
        RatioCi {
            ratio: difference.exp(),
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
    /// Mann–Whitney U of the variant, two-sided; `None` for paired values, which it would
    /// treat as independent.
    pub mann_whitney: Option<MannWhitney>,
    /// Hedges' g on the raw values (variant − baseline).
    pub hedges_g: Option<f64>,
    /// Cliff's δ (variant vs baseline).
    pub cliffs_delta: f64,
    /// Ratio of medians with a seeded BCa bootstrap CI; `None` for paired values and below
    /// [`MIN_BCA_TRIALS`] a side.
    pub median_ratio: Option<BootstrapCi>,
    /// The smallest change the log test finds with [`DETECTABLE_POWER`] at its level, as a
    /// ratio ≥ 1 (a fall to its reciprocal is as detectable): `exp(λ·SE)`, with λ the
    /// noncentrality of the noncentral t at that power and the run's own standard error
    /// and degrees of freedom. `None` without a test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detectable: Option<f64>,
}

/// The power at which [`Comparison::detectable`] is stated.
pub const DETECTABLE_POWER: f64 = 0.8;

/// [`Comparison::detectable`] for a test on logs at `level`.
fn detectable(test: Option<&WelchTest>, level: f64) -> Option<f64> {
    let w = test?;
    let log = super::power::minimum_detectable(w.se, w.df, 1.0 - level, DETECTABLE_POWER);
    log.is_finite().then(|| log.exp())
}

/// Fewest values a side for the BCa interval of the median ratio: below about ten, the
/// bootstrap distribution of a median takes a handful of values and the interval
/// degenerates to ratios of order statistics, which is not a 95% interval.
pub const MIN_BCA_TRIALS: usize = 10;

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
        mann_whitney: Some(mann_whitney(variant, baseline)),
        hedges_g: hedges_g(variant, baseline),
        cliffs_delta: cliffs_delta(variant, baseline),
        median_ratio: (variant.len().min(baseline.len()) >= MIN_BCA_TRIALS)
            .then(|| median_ratio_bca(variant, baseline, level, resamples, seed))
            .flatten(),
        detectable: detectable(ratio.as_ref().map(|r| &r.1), level),
    }
}

/// Compares a variant with the baseline where each value of one is paired with a value of
/// the other (`(variant, baseline)` in the same trial): the ratio and p from the paired
/// t-test on log differences; Hedges' g and Cliff's δ describe the two sets of values as
/// they are. `None` when fewer than 2 pairs.
pub fn compare_paired(pairs: &[(f64, f64)], level: f64) -> Option<Comparison> {
    let x = Sample::new(pairs.iter().map(|p| p.0))?;
    let y = Sample::new(pairs.iter().map(|p| p.1))?;
    if pairs.len() < 2 || x.len() != pairs.len() || y.len() != pairs.len() {
        return None;
    }
    let ratio = paired_log_ratio(pairs, level);
    Some(Comparison {
        n_variant: x.len(),
        n_baseline: y.len(),
        ratio: ratio.map(|r| r.0),
        welch: ratio.map(|r| r.1),
        mann_whitney: None,
        hedges_g: hedges_g(&x, &y),
        cliffs_delta: cliffs_delta(&x, &y),
        median_ratio: None,
        detectable: detectable(ratio.as_ref().map(|r| &r.1), level),
    })
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
    fn two_constant_samples_have_no_test_however_the_logs_round() {
        // ln 8 and ln 7 averaged over five copies leave rounding residue; the two samples
        // still have no spread, so there is no t, no CI and no verdict (it was t = 1.2e15).
        let (x, y) = (s(&[8.0; 5]), s(&[7.0; 5]));
        assert!(log_ratio(&x, &y, 0.95).is_none());
        let c = compare(&x, &y, 0.95, 200, 1);
        assert!(c.welch.is_none() && c.ratio.is_none());
        assert!(hedges_g(&x, &y).is_none());
        // One constant side is fine: the other's spread makes the standard error.
        assert!(log_ratio(&s(&[8.0, 8.1, 7.9, 8.05, 7.95]), &y, 0.95).is_some());
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
    fn paired_ratio_uses_the_within_pair_differences() {
        // y varies a lot between pairs, x is y × 1.1 up to a small wobble: the paired CI is
        // tight around 1.1 where two independent samples would see mostly the spread of y.
        let pairs = [(110.0, 100.0), (222.0, 200.0), (54.5, 50.0), (329.0, 300.0)];
        let (r, t) = paired_log_ratio(&pairs, 0.95).unwrap();
        assert!((t.df - 3.0).abs() < 1e-12);
        assert!(r.low > 1.08 && r.high < 1.12, "{r:?}");
        let x = s(&pairs.map(|p| p.0));
        let y = s(&pairs.map(|p| p.1));
        let (independent, _) = log_ratio(&x, &y, 0.95).unwrap();
        assert!(
            independent.low < 0.5 && independent.high > 2.0,
            "{independent:?}"
        );
        // Differences that do not vary: no test.
        assert!(paired_log_ratio(&[(2.0, 1.0), (4.0, 2.0)], 0.95).is_none());
        assert!(paired_log_ratio(&[(2.0, 1.0)], 0.95).is_none());
    }

    #[test]
    fn one_sided_p_tests_against_the_bound() {
        let w = WelchTest {
            t: 0.0,
            df: 10.0,
            p: 1.0,
            difference: 0.0,
            se: 0.1,
        };
        // At the bound: one half either way.
        assert!((w.one_sided_p(0.0, true) - 0.5).abs() < 1e-12);
        // The estimate lies 2 se below a bound of 0.2: strong evidence of "below".
        let below = w.one_sided_p(0.2, true);
        assert!((below - dist::t_sf(2.0, 10.0)).abs() < 1e-15 && below < 0.05);
        assert!((w.one_sided_p(0.2, false) - (1.0 - below)).abs() < 1e-12);
    }

    #[test]
    fn bca_median_ratio_needs_ten_values_a_side() {
        let nine = s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let ten = s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!(compare(&nine, &ten, 0.95, 1000, 1).median_ratio.is_none());
        assert!(compare(&ten, &ten, 0.95, 1000, 1).median_ratio.is_some());
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
