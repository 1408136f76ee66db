//! Seeded bootstrap: the BCa (bias-corrected and accelerated) CI of the ratio of medians,
//! and percentile CIs of statistics of a run's rounds ([`units_percentile_ci`]).
//!
//! Each sample is resampled with replacement on its own (the two samples are independent),
//! the bias correction `z₀` counts replicates equal to the estimate as half below, and the
//! acceleration comes from the jackknife of each sample in turn (Efron & Tibshirani 1993,
//! §14.3 and eq. 15.36), as SciPy's `bootstrap(method="BCa")` does. Endpoints are type-7
//! quantiles of the replicates.

use serde::{Deserialize, Serialize};

use super::{Sample, dist, median_sorted, quantile_sorted};
use crate::rng::Rng;

/// Resamples harness draws by default: the Monte-Carlo error of a 95% endpoint is then
/// about a hundredth of the interval's width.
pub const DEFAULT_RESAMPLES: usize = 10_000;

/// A bootstrap CI and how it was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCi {
    /// The statistic on the data.
    pub estimate: f64,
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Resamples drawn.
    pub resamples: usize,
    /// Seed of the draws.
    pub seed: u64,
}

fn median_of(buf: &mut [f64]) -> f64 {
    buf.sort_unstable_by(f64::total_cmp);
    median_sorted(buf)
}

/// Medians of `sample` with each value left out in turn. Cost O(n²).
fn jackknife_medians(sample: &Sample) -> Vec<f64> {
    let values = sample.sorted();
    (0..values.len())
        .map(|i| {
            let rest: Vec<f64> = values
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &v)| v)
                .collect();
            median_sorted(&rest)
        })
        .collect()
}

/// BCa CI of `median(x) / median(y)` from `resamples` draws seeded with `seed`.
/// `None` when a value is not positive, a sample has a single value, or the bootstrap
/// distribution is degenerate (every replicate on one side of the estimate, or no
/// jackknife spread). Cost O(resamples · (n₁ log n₁ + n₂ log n₂)).
pub fn median_ratio_bca(
    x: &Sample,
    y: &Sample,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<BootstrapCi> {
    if x.min() <= 0.0 || y.min() <= 0.0 || x.len() < 2 || y.len() < 2 || resamples == 0 {
        return None;
    }
    let (xs, ys) = (x.sorted(), y.sorted());
    let estimate = x.median() / y.median();
    let mut rng = Rng::new(seed);
    let (mut bx, mut by) = (vec![0.0; xs.len()], vec![0.0; ys.len()]);
    let mut replicates: Vec<f64> = (0..resamples)
        .map(|_| {
            bx.iter_mut().for_each(|v| *v = xs[rng.below(xs.len())]);
            by.iter_mut().for_each(|v| *v = ys[rng.below(ys.len())]);
            median_of(&mut bx) / median_of(&mut by)
        })
        .collect();
    let jackknife = median_ratio_jackknife(x, y);
    let (low, high) = bca_interval(&mut replicates, estimate, &jackknife, level)?;
    Some(BootstrapCi {
        estimate,
        low,
        high,
        resamples,
        seed,
    })
}

/// Jackknife values of `median(x) / median(y)`: leaving out each value of `x` in turn,
/// then each value of `y`.
pub fn median_ratio_jackknife(x: &Sample, y: &Sample) -> [Vec<f64>; 2] {
    [
        jackknife_medians(x)
            .into_iter()
            .map(|m| m / y.median())
            .collect(),
        jackknife_medians(y)
            .into_iter()
            .map(|m| x.median() / m)
            .collect(),
    ]
}

/// The BCa interval at `level` from bootstrap `replicates` (sorted in place), the
/// estimate on the data, and each sample's jackknife values of the statistic.
pub fn bca_interval(
    replicates: &mut [f64],
    estimate: f64,
    jackknife: &[Vec<f64>],
    level: f64,
) -> Option<(f64, f64)> {
    let b = replicates.len() as f64;
    let below = replicates.iter().filter(|&&r| r < estimate).count();
    let at_or_below = replicates.iter().filter(|&&r| r <= estimate).count();
    let share = (below + at_or_below) as f64 / (2.0 * b);
    if share <= 0.0 || share >= 1.0 {
        return None;
    }
    let z0 = dist::normal_quantile(share);

    let (mut num, mut den) = (0.0, 0.0);
    for values in jackknife {
        // Identical values contribute exactly nothing; computing their mean would leave
        // rounding residue that passes for spread.
        if values.iter().all(|&v| v == values[0]) {
            continue;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let u = values.iter().map(|v| (n - 1.0) * (mean - v));
        num += u.clone().map(|u| u.powi(3)).sum::<f64>() / n.powi(3);
        den += u.map(|u| u.powi(2)).sum::<f64>() / n.powi(2);
    }
    if den <= 0.0 {
        return None;
    }
    let a = num / (6.0 * den.powf(1.5));

    let z = dist::normal_quantile((1.0 - level) / 2.0);
    let adjusted = |z_alpha: f64| {
        let shifted = z0 + z_alpha;
        dist::normal_cdf(z0 + shifted / (1.0 - a * shifted))
    };
    replicates.sort_unstable_by(f64::total_cmp);
    Some((
        quantile_sorted(replicates, adjusted(z)),
        quantile_sorted(replicates, adjusted(-z)),
    ))
}

/// Percentile CI at `level` of a statistic of `units` independent units (rounds of a run),
/// from `resamples` draws of the units with replacement, seeded with `seed`. `stat` gets
/// how many times each unit was drawn (one count per unit) and returns the statistic of
/// that resample, or `None` where it is undefined (e.g. a side drew no unit). `None` when
/// there are fewer than 2 units or over 10% of the resamples are undefined.
/// Cost O(resamples · (units + cost of `stat`)).
pub fn units_percentile_ci(
    units: usize,
    resamples: usize,
    seed: u64,
    level: f64,
    mut stat: impl FnMut(&[u32]) -> Option<f64>,
) -> Option<(f64, f64)> {
    if units < 2 || resamples == 0 {
        return None;
    }
    let mut rng = Rng::new(seed);
    let mut counts = vec![0u32; units];
    let mut replicates = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        counts.iter_mut().for_each(|c| *c = 0);
        for _ in 0..units {
            counts[rng.below(units)] += 1;
        }
        if let Some(v) = stat(&counts).filter(|v| v.is_finite()) {
            replicates.push(v);
        }
    }
    if (replicates.len() as f64) < 0.9 * resamples as f64 {
        return None;
    }
    replicates.sort_unstable_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some((
        quantile_sorted(&replicates, tail),
        quantile_sorted(&replicates, 1.0 - tail),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Sample {
        Sample::new(v.iter().copied()).unwrap()
    }

    #[test]
    fn same_seed_same_interval_and_it_brackets_the_estimate() {
        let x = s(&[12.0, 13.5, 11.8, 12.9, 14.1, 12.2, 13.0]);
        let y = s(&[10.0, 10.9, 9.7, 10.4, 11.2, 10.1]);
        let a = median_ratio_bca(&x, &y, 0.95, 2000, 1).unwrap();
        let b = median_ratio_bca(&x, &y, 0.95, 2000, 1).unwrap();
        assert_eq!(a, b);
        assert!(a.low <= a.estimate && a.estimate <= a.high, "{a:?}");
        assert!(a.low > 1.0, "clearly larger medians: {a:?}");
    }

    #[test]
    fn unit_bootstrap_of_a_mean_covers_it_and_is_seeded() {
        let values = [10.0, 12.0, 9.0, 11.0, 13.0, 10.5, 11.5, 9.5];
        let mean = |counts: &[u32]| {
            let n: u32 = counts.iter().sum();
            let sum: f64 = counts
                .iter()
                .zip(values)
                .map(|(&c, v)| f64::from(c) * v)
                .sum();
            Some(sum / f64::from(n))
        };
        let a = units_percentile_ci(values.len(), 4000, 3, 0.95, mean).unwrap();
        assert_eq!(
            a,
            units_percentile_ci(values.len(), 4000, 3, 0.95, mean).unwrap()
        );
        // The t interval of these values is [9.70, 11.93]; the percentile bootstrap is a
        // little narrower, as it is at small n.
        assert!(a.0 > 9.6 && a.0 < 10.3 && a.1 > 11.3 && a.1 < 12.0, "{a:?}");
        assert!(units_percentile_ci(1, 100, 3, 0.95, mean).is_none());
        assert!(units_percentile_ci(values.len(), 100, 3, 0.95, |_| None).is_none());
    }

    #[test]
    fn degenerate_data_has_no_interval() {
        assert!(median_ratio_bca(&s(&[2.0, 2.0, 2.0]), &s(&[1.0, 1.0]), 0.95, 500, 1).is_none());
        assert!(median_ratio_bca(&s(&[2.0]), &s(&[1.0, 1.5]), 0.95, 500, 1).is_none());
        assert!(median_ratio_bca(&s(&[0.0, 1.0]), &s(&[1.0, 1.5]), 0.95, 500, 1).is_none());
    }
}
