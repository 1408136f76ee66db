//! The server is a block. When a run's trials ran against several servers (the shards of a
//! merged run), every comparison is computed on each server's trials alone and the
//! servers' log ratios are pooled with inverse-variance weights ([`crate::stats::meta`]):
//! the fixed-effect estimate, Cochran's Q and I², and the random-effects estimate, whose
//! wider interval is the one to quote when the servers disagree.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::plan::Phase;
use crate::results::TrialRecord;
use crate::scenario::Metric;
use crate::stats::compare::{log_ratio, paired_log_ratio};
use crate::stats::meta::{Pooled, pool};
use crate::stats::{CONFIDENCE, Sample};

use super::{ComparisonRow, RunSamples};

/// One server's estimate of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerEstimate {
    /// The server (URL and host).
    pub server: String,
    /// The variant's trials on it (for a paired comparison, the trials with both sides).
    pub n_variant: usize,
    /// The baseline's.
    pub n_baseline: usize,
    /// Ratio of geometric means with its 95% Welch CI.
    pub ratio: f64,
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// One comparison, per server and pooled over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerPooling {
    /// Metric.
    pub metric: Metric,
    /// The variant's arm.
    pub arm: String,
    /// Variant.
    pub variant: String,
    /// The baseline's arm.
    pub baseline_arm: String,
    /// Every server with a ratio.
    pub servers: Vec<ServerEstimate>,
    /// The pooled estimates and the heterogeneity, on the log scale.
    pub pooled: Pooled,
    /// Fixed-effect ratio and its 95% CI.
    pub fixed: (f64, f64, f64),
    /// Random-effects ratio and its 95% CI.
    pub random: (f64, f64, f64),
}

/// Per-server pooling of every comparison (a paired one paired on each server), and for
/// each whose servers disagree substantially a line that says so (`fast vs baseline
/// (decode_tps, fast): I² = …`; the report heads the lines "The servers disagree").
/// Empty unless the measured trials ran against two servers or more.
pub fn servers(
    comparisons: &[ComparisonRow],
    samples: &RunSamples,
    trials: &[TrialRecord],
) -> (Vec<ServerPooling>, Vec<String>) {
    let mut by_node: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    for t in trials.iter().filter(|t| t.phase == Phase::Measured) {
        if let Some(node) = &t.node {
            by_node.entry(node).or_default().insert(t.trial);
        }
    }
    if by_node.len() < 2 {
        return (Vec::new(), Vec::new());
    }
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for row in comparisons {
        let Some((v, b)) = samples.sides(row) else {
            continue;
        };
        let mut estimates = Vec::new();
        let (mut effects, mut variances) = (Vec::new(), Vec::new());
        for (node, on) in &by_node {
            let of = |values: &BTreeMap<u32, f64>| {
                Sample::new(
                    values
                        .iter()
                        .filter(|(t, _)| on.contains(t))
                        .map(|(_, x)| *x),
                )
            };
            // A paired comparison stays paired on each server: the trials of that server
            // that have both sides.
            let estimate = if row.paired {
                let pairs: Vec<(f64, f64)> = v
                    .iter()
                    .filter(|(t, _)| on.contains(t))
                    .filter_map(|(t, x)| Some((*x, *b.get(t)?)))
                    .collect();
                paired_log_ratio(&pairs, CONFIDENCE).map(|e| (e, pairs.len(), pairs.len()))
            } else {
                match (of(v), of(b)) {
                    (Some(x), Some(y)) => {
                        log_ratio(&x, &y, CONFIDENCE).map(|e| (e, x.len(), y.len()))
                    }
                    _ => None,
                }
            };
            let Some(((ratio, welch), n_variant, n_baseline)) = estimate else {
                continue;
            };
            if welch.se.is_nan() || welch.se <= 0.0 {
                continue;
            }
            effects.push(welch.difference);
            variances.push(welch.se * welch.se);
            estimates.push(ServerEstimate {
                server: (*node).to_owned(),
                n_variant,
                n_baseline,
                ratio: ratio.ratio,
                low: ratio.low,
                high: ratio.high,
            });
        }
        let Some(pooled) = pool(&effects, &variances) else {
            continue;
        };
        let ratio = |random: bool| {
            let m = if random { pooled.random } else { pooled.fixed };
            let (lo, hi) = pooled.interval(random, CONFIDENCE);
            (m.exp(), lo.exp(), hi.exp())
        };
        let (fixed, random) = (ratio(false), ratio(true));
        if pooled.substantial() {
            warnings.push(format!(
                "{} vs {} ({}, {}): I² = {:.0}%, Cochran's Q p {}; per server {}; the random-effects ratio {:.3} [{:.3}, {:.3}] is the one to quote",
                row.variant,
                row.baseline,
                row.metric,
                row.arm,
                pooled.i2 * 100.0,
                if pooled.q_p < 0.001 {
                    "< 0.001".to_owned()
                } else {
                    format!("= {:.3}", pooled.q_p)
                },
                estimates
                    .iter()
                    .map(|e| format!("{} {:.3}", e.server, e.ratio))
                    .collect::<Vec<_>>()
                    .join(", "),
                random.0,
                random.1,
                random.2
            ));
        }
        out.push(ServerPooling {
            metric: row.metric,
            arm: row.arm.clone(),
            variant: row.variant.clone(),
            baseline_arm: row.baseline_arm.clone(),
            servers: estimates,
            pooled,
            fixed,
            random,
        });
    }
    (out, warnings)
}
