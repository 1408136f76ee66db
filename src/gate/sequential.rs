//! Gates on a run with a stopping rule. The run may have stopped because of what it saw, so
//! a fixed-n interval no longer holds its level there; each gate is judged instead by the
//! anytime-valid confidence sequence of its per-round log ratios at the run's looks, at
//! α / m for m gates (Bonferroni, which needs no independence): PASS when it lies on the good
//! side of the bound, FAIL when it lies beyond it, INCONCLUSIVE otherwise.

use super::{GateResult, GateVerdict, baseline_arm};
use crate::results::RunRecords;
use crate::scenario::{Bound, Gate, Stopping, threshold_text};
use crate::stats::RatioCi;
use crate::stats::sequential::confidence_sequence;
use crate::summary::sequential::{look_points, round_ratios};

/// Rejudges `results` (one per gate, as [`super::within_run`] made them) by their
/// confidence sequences; a gate already inconclusive for want of data or arms stays so.
pub fn judge_anytime(
    results: &mut [GateResult],
    gates: &[Gate],
    run: &RunRecords,
    rule: &Stopping,
    max_rounds: u32,
) {
    let m = gates.len().max(1) as f64;
    let rounds = run
        .trials
        .iter()
        .filter(|t| t.phase == crate::plan::Phase::Measured)
        .map(|t| t.round + 1)
        .max()
        .unwrap_or(0);
    for (r, g) in results.iter_mut().zip(gates) {
        let Ok(base) = baseline_arm(g, &run.meta.arms) else {
            continue;
        };
        // Too few trials, or no ratio at all: within_run's reason stands.
        if r.ratio.is_none() || r.n_variant.min(r.n_baseline) < g.min_trials {
            continue;
        }
        let side = Stopping {
            metric: g.metric,
            variant: g.variant.clone(),
            arm: g.arm().to_owned(),
            baseline: g.baseline.clone(),
            against: base.name.clone(),
            ..rule.clone()
        };
        let pairs = round_ratios(&side, &run.calls, &run.trials, run.meta.slo.as_ref());
        let values: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let at = look_points(rule, &pairs, rounds, max_rounds);
        let alpha = g.alpha / m;
        let tau = g.threshold;
        let bound = format!(
            "the bound (ratio {} {})",
            g.bound.symbol(),
            threshold_text(tau)
        );
        let Some(cs) = confidence_sequence(&values, &at, alpha).filter(|c| c.low.is_finite())
        else {
            r.verdict = GateVerdict::Inconclusive;
            r.reason = format!(
                "the run has a stopping rule, so the gate reads the anytime-valid interval of its {} pairs of rounds, which is not bounded yet",
                values.len()
            );
            continue;
        };
        let (low, high) = (cs.low.exp(), cs.high.exp());
        r.ratio = Some(RatioCi {
            ratio: cs.mean.exp(),
            low,
            high,
        });
        r.p = None;
        r.holm_p = None;
        let interval = format!(
            "anytime-valid {:.1}% CI [{low:.3}, {high:.3}] of {} pairs of rounds (the run has a stopping rule; α / {m} over the gates)",
            100.0 * (1.0 - alpha),
            values.len()
        );
        let (good, bad) = match g.bound {
            Bound::AtLeast => (low >= tau, high < tau),
            Bound::AtMost => (high <= tau, low > tau),
        };
        let (verdict, how) = if good {
            (GateVerdict::Pass, "lies on the good side of")
        } else if bad {
            (GateVerdict::Fail, "lies beyond")
        } else {
            (GateVerdict::Inconclusive, "reaches across")
        };
        r.verdict = verdict;
        r.reason = format!("{interval} {how} {bound}");
    }
}
