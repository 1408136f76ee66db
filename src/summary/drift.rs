//! Drift: does a metric trend over a run (thermal throttling, a background job, a cache
//! warming up)? Per arm, variant and metric, the least-squares trend of the log per-trial
//! values over the arm's measured trials in the order they ran, Holm-adjusted together.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::samples::RunSamples;
use crate::scenario::{Arm, Metric, Order};
use crate::stats::trend::trend;
use crate::stats::{ALPHA, CONFIDENCE, holm};

/// The trend of one metric of one variant in one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftRow {
    /// Arm name.
    pub arm: String,
    /// Variant name.
    pub variant: String,
    /// Metric.
    pub metric: Metric,
    /// Trials in the fit.
    pub n: usize,
    /// Relative change per round, `exp(slope of ln value) − 1` (0.01 = +1% a round).
    pub change_per_round: f64,
    /// Lower end of its 95% CI.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Two-sided p of "no trend".
    pub p: f64,
    /// `p` Holm-adjusted over every trend of the run.
    pub holm_p: f64,
    /// `holm_p < α`.
    pub drifting: bool,
}

/// The trend of every (arm, variant, metric) with at least 4 trials whose values vary.
/// The x axis is the position of each trial among its arm's measured trials in plan order
/// (the round, for interleaved and sequential orders).
pub fn drift(arms: &[Arm], samples: &RunSamples) -> Vec<DriftRow> {
    let mut rows = Vec::new();
    let mut raw = Vec::new();
    for arm in arms {
        for variant in arm.distinct_variants() {
            for metric in Metric::ALL {
                let Some(values) =
                    samples
                        .by_trial
                        .get(&(arm.name.clone(), variant.to_owned(), metric))
                else {
                    continue;
                };
                // Trials are numbered in plan order, so their rank is the arm's round.
                let points: Vec<(f64, f64)> = values
                    .values()
                    .enumerate()
                    .filter(|(_, v)| **v > 0.0)
                    .map(|(k, v)| (k as f64, v.ln()))
                    .collect();
                let Some(t) = trend(&points, CONFIDENCE) else {
                    continue;
                };
                raw.push(t.p);
                rows.push(DriftRow {
                    arm: arm.name.clone(),
                    variant: variant.to_owned(),
                    metric,
                    n: t.n,
                    change_per_round: t.slope.exp_m1(),
                    low: t.low.exp_m1(),
                    high: t.high.exp_m1(),
                    p: t.p,
                    holm_p: 1.0,
                    drifting: false,
                });
            }
        }
    }
    for (row, adjusted) in rows.iter_mut().zip(holm(&raw)) {
        row.holm_p = adjusted;
        row.drifting = adjusted < ALPHA;
    }
    rows
}

/// The warning a run's drift calls for: any drift, and worse with arms run one after the
/// other, where drift over time is indistinguishable from a difference between arms.
pub fn drift_warning(rows: &[DriftRow], order: Option<Order>) -> Option<String> {
    let drifting: Vec<&DriftRow> = rows.iter().filter(|r| r.drifting).collect();
    if drifting.is_empty() {
        return None;
    }
    let mut by_metric: BTreeMap<Metric, usize> = BTreeMap::new();
    for r in &drifting {
        *by_metric.entry(r.metric).or_default() += 1;
    }
    let listed: Vec<String> = by_metric
        .iter()
        .map(|(m, n)| format!("{m} in {n}"))
        .collect();
    let first = drifting[0];
    let mut text = format!(
        "drift: {} of {} series trend over the run (Holm p < {ALPHA}: {}), e.g. {} of {} in {} changes {:+.1}% a round [{:+.1}%, {:+.1}%]",
        drifting.len(),
        rows.len(),
        listed.join(", "),
        first.metric,
        first.variant,
        first.arm,
        first.change_per_round * 100.0,
        first.low * 100.0,
        first.high * 100.0
    );
    match order {
        Some(Order::Sequential) => text.push_str(
            "; the arms ran one after the other (order: sequential), so the drift is mixed into every comparison between arms: rerun with order: interleaved",
        ),
        _ => text.push_str(
            "; with interleaved or random order the drift hits every arm alike, but it widens the intervals",
        ),
    }
    Some(text)
}
