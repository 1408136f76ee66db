//! `harness power`: from a pilot run, how many trials a side a comparison needs to detect
//! a given change with a given power, and how many a gate needs for PASS (with no change)
//! and FAIL (with the change beyond its bound) to be likely. The per-trial variance on the
//! log scale comes from the pilot; the power from the noncentral t ([`stats::power`]).
//!
//! [`stats::power`]: crate::stats::power

use std::path::Path;

use serde::Serialize;

use super::baseline_arm;
use super::files::{GateOptions, run_gates};
use crate::results::{RunRecords, load};
use crate::scenario::{Bound, Metric};
use crate::stats::ALPHA;
use crate::stats::power::{fewest_trials, gate_outcomes, log_test_power};
use crate::summary::{RunSamples, summarize_samples};

/// What to plan for.
#[derive(Debug, Clone)]
pub struct PowerOptions {
    /// The change to detect, as a fraction (0.05 = 5%).
    pub effect: f64,
    /// The probability of detecting it.
    pub power: f64,
    /// Gates from the command line, beside the scenario's.
    pub gates: GateOptions,
}

/// One comparison of the pilot, and the trials it needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonPlan {
    /// Metric.
    pub metric: Metric,
    /// The variant's arm.
    pub arm: String,
    /// Variant.
    pub variant: String,
    /// What it is compared with, in words (`baseline in baseline`, or `paired`).
    pub against: String,
    /// Paired by trial within a mixed arm.
    pub paired: bool,
    /// Trials a side in the pilot (the smaller side).
    pub n: usize,
    /// Per-trial standard deviation of the logs: the variant's (of the differences, paired).
    pub sd_variant: f64,
    /// The baseline's (`None` when paired).
    pub sd_baseline: Option<f64>,
    /// The smallest change the pilot's n detects with the power asked for, as a fraction.
    pub detectable_now: Option<f64>,
    /// Trials a side to detect the effect with the power asked for; `None` beyond 100,000.
    pub trials: Option<u32>,
}

/// One gate, and the trials it needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatePlan {
    /// The gate, as written.
    pub gate: String,
    /// Trials a side in the pilot.
    pub n: usize,
    /// Per-trial standard deviations of the logs, variant and baseline.
    pub sd: (f64, f64),
    /// The probability of PASS at the pilot's n when nothing changed.
    pub pass_now: f64,
    /// Trials a side for PASS to have the power asked for when nothing changed (at least
    /// the gate's minimum).
    pub trials_to_pass: Option<u32>,
    /// The probability of FAIL at the pilot's n when the variant is the effect beyond the
    /// bound.
    pub fail_now: f64,
    /// Trials a side for that FAIL to have the power asked for.
    pub trials_to_fail: Option<u32>,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerPlan {
    /// The pilot's folder.
    pub pilot: String,
    /// Its numbers are the simulator's.
    pub simulated: bool,
    /// The change to detect, fraction.
    pub effect: f64,
    /// The power asked for.
    pub power: f64,
    /// The comparisons' level (two-sided).
    pub alpha: f64,
    /// Every comparison of the pilot.
    pub comparisons: Vec<ComparisonPlan>,
    /// Every gate.
    pub gates: Vec<GatePlan>,
    /// Gates that could not be planned, and why.
    pub unplanned: Vec<String>,
}

/// Sample variance.
fn variance(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    Some(values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64)
}

/// The logs of positive values.
fn logs(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    values
        .into_iter()
        .filter(|v| *v > 0.0)
        .map(f64::ln)
        .collect()
}

/// [`plan`] on a results folder.
pub fn plan_dir(dir: &Path, options: &PowerOptions) -> anyhow::Result<PowerPlan> {
    let run = load(dir)?;
    let mut plan = plan(&run, options)?;
    plan.pilot = dir.display().to_string();
    Ok(plan)
}

/// Plans from a pilot run's records.
pub fn plan(run: &RunRecords, options: &PowerOptions) -> anyhow::Result<PowerPlan> {
    anyhow::ensure!(
        options.effect > 0.0 && options.effect < 10.0,
        "--effect {} must be a positive change, e.g. 5%",
        options.effect
    );
    anyhow::ensure!(
        options.power > ALPHA && options.power < 1.0,
        "--power {} must lie between {ALPHA} and 1",
        options.power
    );
    let samples = RunSamples::of(&run.meta, &run.calls, &run.trials);
    let summary = summarize_samples(&run.meta, &run.calls, &run.trials, &samples);
    let delta = options.effect.ln_1p();
    let mut comparisons = Vec::new();
    for row in &summary.comparisons {
        let Some((v, b)) = samples.sides(row) else {
            continue;
        };
        let (v1, v2, n) = if row.paired {
            let diffs: Vec<f64> = v
                .iter()
                .filter_map(|(t, x)| {
                    b.get(t)
                        .filter(|y| **y > 0.0 && *x > 0.0)
                        .map(|y| x.ln() - y.ln())
                })
                .collect();
            let n = diffs.len();
            (variance(&diffs), Some(0.0), n)
        } else {
            let (lv, lb) = (logs(v.values().copied()), logs(b.values().copied()));
            let n = lv.len().min(lb.len());
            (variance(&lv), variance(&lb), n)
        };
        let (Some(v1), Some(v2)) = (v1, v2) else {
            continue;
        };
        let power_at = |k: u32| log_test_power(delta, v1, v2, k, row.paired, ALPHA);
        comparisons.push(ComparisonPlan {
            metric: row.metric,
            arm: row.arm.clone(),
            variant: row.variant.clone(),
            against: if row.paired {
                "paired".to_owned()
            } else {
                format!("{} in {}", row.baseline, row.baseline_arm)
            },
            paired: row.paired,
            n,
            sd_variant: v1.sqrt(),
            sd_baseline: (!row.paired).then(|| v2.sqrt()),
            detectable_now: row.stats.detectable.map(|d| d - 1.0),
            trials: fewest_trials(power_at, options.power),
        });
    }

    let mut gates = Vec::new();
    let mut unplanned = Vec::new();
    for g in run_gates(run, &options.gates)? {
        let sides = baseline_arm(&g, &run.meta.arms).and_then(|base| {
            let get = |a: &str, v: &str| {
                samples
                    .sample(a, v, g.metric)
                    .map(|s| logs(s.sorted().iter().copied()))
                    .ok_or_else(|| format!("no successful measured calls of `{v}` in `{a}`"))
            };
            Ok((get(g.arm(), &g.variant)?, get(&base.name, &g.baseline)?))
        });
        let (x, y) = match sides {
            Ok(s) => s,
            Err(why) => {
                unplanned.push(format!("{}: {why}", g.expression()));
                continue;
            }
        };
        let (Some(v1), Some(v2)) = (variance(&x), variance(&y)) else {
            unplanned.push(format!("{}: fewer than 2 trials a side", g.expression()));
            continue;
        };
        let limit = g.threshold.ln();
        let at_most = g.bound == Bound::AtMost;
        // FAIL is planned for a variant that is the effect beyond the bound.
        let beyond = if at_most {
            limit + delta
        } else {
            limit - delta
        };
        let outcomes =
            |truth: f64, k: u32| gate_outcomes(truth, limit, at_most, v1, v2, k, false, g.alpha);
        let n = x.len().min(y.len());
        let at_least_min = |k: Option<u32>| k.map(|k| k.max(g.min_trials as u32));
        gates.push(GatePlan {
            gate: g.expression(),
            n,
            sd: (v1.sqrt(), v2.sqrt()),
            pass_now: outcomes(0.0, n as u32).0,
            trials_to_pass: at_least_min(fewest_trials(|k| outcomes(0.0, k).0, options.power)),
            fail_now: outcomes(beyond, n as u32).1,
            trials_to_fail: at_least_min(fewest_trials(|k| outcomes(beyond, k).1, options.power)),
        });
    }
    Ok(PowerPlan {
        pilot: String::new(),
        simulated: run.meta.simulated,
        effect: options.effect,
        power: options.power,
        alpha: ALPHA,
        comparisons,
        gates,
        unplanned,
    })
}
