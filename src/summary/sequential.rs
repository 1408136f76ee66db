//! The stopping rule read from the records: per measured round, the log ratio of the
//! variant's per-trial value over the baseline's (the two arms of one interleaved round),
//! the looks the rule made, and what they decided ([`crate::stats::sequential`]). The
//! scheduler decides with this code while the run goes, and the summary recomputes it from
//! the files, so the two cannot disagree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::CallRecord;
use crate::plan::Phase;
use crate::results::TrialRecord;
use crate::scenario::{Direction, Slo, Stopping};
use crate::stats::ALPHA;
use crate::stats::sequential::{Decision, Look, looks};

use super::samples::per_trial_values;

/// What the rule saw and decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialSummary {
    /// The rule.
    pub rule: Stopping,
    /// Measured rounds that ran.
    pub rounds: u32,
    /// Rounds planned at most.
    pub max_rounds: u32,
    /// Rounds with a value on both sides (the pairs the rule reads).
    pub pairs: usize,
    /// Every look, the last one deciding or the last round.
    pub looks: Vec<Look>,
    /// What the last look decided (`continue` when the rounds ran out undecided).
    pub decision: Decision,
    /// The run ended before its last planned round because a look decided.
    pub stopped_early: bool,
    /// The ratio's estimate at the last look (geometric mean of the per-round ratios).
    pub ratio: Option<f64>,
    /// The anytime-valid confidence interval of the ratio at the last look.
    pub low: Option<f64>,
    /// Its upper end.
    pub high: Option<f64>,
    /// The level of the sequence, α, spent over all the looks together (Ville's inequality
    /// bounds the error of every look at once: nothing is left to spend).
    pub alpha: f64,
}

/// Per measured round (0-based, in order), the log ratio variant / baseline, where both
/// sides have a value.
pub fn round_ratios(
    rule: &Stopping,
    calls: &[CallRecord],
    trials: &[TrialRecord],
    slo: Option<&Slo>,
) -> Vec<(u32, f64)> {
    let values = |arm: &str, variant: &str| {
        let by_trial = per_trial_values(calls, trials, (arm, variant), rule.metric, slo);
        let mut by_round: BTreeMap<u32, f64> = BTreeMap::new();
        for t in trials
            .iter()
            .filter(|t| t.phase == Phase::Measured && t.arm == arm)
        {
            if let Some(v) = by_trial.get(&t.trial).filter(|v| **v > 0.0) {
                by_round.insert(t.round, *v);
            }
        }
        by_round
    };
    let variant = values(&rule.arm, &rule.variant);
    let baseline = values(&rule.against, &rule.baseline);
    variant
        .iter()
        .filter_map(|(r, v)| baseline.get(r).map(|b| (*r, (v / b).ln())))
        .collect()
}

/// The looks after `rounds` measured rounds: after every `every` rounds, and after the
/// last planned one (`max_rounds`), at the pairs completed by then.
pub fn look(rule: &Stopping, pairs: &[(u32, f64)], rounds: u32, max_rounds: u32) -> Vec<Look> {
    let values: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let higher = rule.metric.direction() == Direction::HigherIsBetter;
    looks(
        &values,
        &look_points(rule, pairs, rounds, max_rounds),
        ALPHA,
        rule.tolerance,
        higher,
    )
}

/// Where the rule looks after `rounds` measured rounds: the pairs completed after every
/// `every` rounds and after the last planned one.
pub fn look_points(
    rule: &Stopping,
    pairs: &[(u32, f64)],
    rounds: u32,
    max_rounds: u32,
) -> Vec<usize> {
    (1..=rounds)
        .filter(|r| r % rule.every == 0 || *r == max_rounds)
        .map(|r| pairs.iter().filter(|p| p.0 < r).count())
        .collect()
}

/// The rule's account of a run: what it saw at each look and what it decided.
pub fn sequential(
    rule: &Stopping,
    max_rounds: u32,
    calls: &[CallRecord],
    trials: &[TrialRecord],
    slo: Option<&Slo>,
) -> SequentialSummary {
    let rounds = trials
        .iter()
        .filter(|t| t.phase == Phase::Measured)
        .map(|t| t.round + 1)
        .max()
        .unwrap_or(0);
    let pairs = round_ratios(rule, calls, trials, slo);
    let seen = look(rule, &pairs, rounds, max_rounds);
    let last = seen.last().copied();
    let decision = last.map_or(Decision::Continue, |l| l.decision);
    let finite = |x: f64| x.is_finite().then(|| x.exp());
    SequentialSummary {
        rule: rule.clone(),
        rounds,
        max_rounds,
        pairs: pairs.len(),
        decision,
        stopped_early: decision != Decision::Continue && rounds < max_rounds,
        ratio: last.map(|l| l.mean.exp()),
        low: last.and_then(|l| finite(l.low)),
        high: last.and_then(|l| finite(l.high)),
        looks: seen,
        alpha: ALPHA,
    }
}

/// The rule's outcome in one sentence.
pub fn words(s: &SequentialSummary) -> String {
    let r = &s.rule;
    let ci = match (s.ratio, s.low, s.high) {
        (Some(m), Some(l), Some(h)) => {
            format!("ratio {m:.3}, anytime-valid 95% CI [{l:.3}, {h:.3}]")
        }
        (Some(m), _, _) => format!("ratio {m:.3}, its anytime-valid CI still unbounded"),
        _ => "no pairs of rounds yet".to_owned(),
    };
    let tol = format!("±{:.1}%", r.tolerance * 100.0);
    let when = if s.stopped_early {
        format!(
            "The run stopped after round {} of {}",
            s.rounds, s.max_rounds
        )
    } else {
        format!("The run went {} of {} rounds", s.rounds, s.max_rounds)
    };
    let what = match s.decision {
        Decision::Faster => format!("{} is faster than the baseline on {}", r.variant, r.metric),
        Decision::SlowerBeyondTolerance => format!(
            "{} is slower than the baseline on {} by more than {:.1}%",
            r.variant,
            r.metric,
            r.tolerance * 100.0
        ),
        Decision::Equivalent => format!(
            "{} is equivalent to the baseline on {} within {tol}",
            r.variant, r.metric
        ),
        Decision::Continue => format!(
            "undetermined: {} against the baseline on {} is neither clearly faster, nor slower beyond {:.1}%, nor within {tol}",
            r.variant,
            r.metric,
            r.tolerance * 100.0
        ),
    };
    format!(
        "{when}: {what} ({ci}; {} looks at {} pairs of rounds, the error of all of them together at most α = {}).",
        s.looks.len(),
        s.pairs,
        s.alpha
    )
}
