//! `summary.json`: per arm and variant statistics, and what concurrency did, computed
//! from the records alone (measured phase, successful calls) so that it can be
//! recomputed from the files of any results folder.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{CallRecord, ErrorKind};
use crate::plan::Phase;
use crate::results::TrialRecord;
use crate::scenario::Arm;
use crate::stats::{Descriptive, LatencyHistogram, Percentiles, Sample};

/// Statistics of one variant within one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Arm name.
    pub arm: String,
    /// Variant name.
    pub variant: String,
    /// Measured trials with at least one successful call of this variant.
    pub trials: usize,
    /// Per-trial mean `decode_tps` (over the variant's successful calls in the trial):
    /// mean and 95% CI across trials.
    pub decode_tps: Option<Descriptive>,
    /// Per-trial mean `e2e_tps`, across trials.
    pub e2e_tps: Option<Descriptive>,
    /// TTFT pooled over all successful measured calls.
    pub ttft_ms: Option<Percentiles>,
    /// End-to-end time pooled over all successful measured calls.
    pub e2e_ms: Option<Percentiles>,
    /// Mean output tokens per successful call.
    pub output_tokens_mean: Option<f64>,
    /// Measured calls.
    pub calls: usize,
    /// Measured calls that failed.
    pub failed_calls: usize,
    /// Failed calls by error kind.
    pub failures_by_kind: BTreeMap<ErrorKind, usize>,
    /// Measured successful calls that (re)loaded the model.
    pub cold_calls: usize,
}

/// One variant's cost of sharing the server in a concurrent arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slowdown {
    /// Variant name.
    pub variant: String,
    /// `decode_tps(concurrent) / decode_tps(solo)`: below 1 means slower when sharing.
    pub decode_tps_ratio: Option<f64>,
    /// `ttft p50(concurrent) / ttft p50(solo)`: above 1 means waiting (queueing, loads).
    pub ttft_p50_ratio: Option<f64>,
}

/// What running an arm's variants together gained against running each alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencySummary {
    /// Arm name.
    pub arm: String,
    /// Pipelines launched together.
    pub agents: usize,
    /// Mean trial wall time of this arm, ms.
    pub wall_ms: f64,
    /// Σ over the arm's variants of the mean wall time of that variant's solo arm, ms.
    pub solo_wall_sum_ms: Option<f64>,
    /// `solo_wall_sum_ms / wall_ms`.
    pub speedup: Option<f64>,
    /// `speedup / agents`.
    pub efficiency: Option<f64>,
    /// Per variant.
    pub slowdown: Vec<Slowdown>,
}

/// The whole `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// The numbers come from the built-in simulator.
    pub simulated: bool,
    /// Every planned trial ran.
    pub complete: bool,
    /// Measured trials that ran.
    pub measured_trials: usize,
    /// How the numbers are defined.
    pub definitions: BTreeMap<String, String>,
    /// Per arm and variant, arms in scenario order.
    pub groups: Vec<GroupSummary>,
    /// Per concurrent arm.
    pub concurrency: Vec<ConcurrencySummary>,
}

fn definitions() -> BTreeMap<String, String> {
    [
        ("unit", "Statistics use measured trials only (warmups and priming calls excluded) and successful calls only; failures are counted separately."),
        ("decode_tps", "server eval_count / eval_duration per call; per trial the mean over the variant's calls; reported as mean and 95% Student-t CI across trials"),
        ("e2e_tps", "output_tokens / client end-to-end time per call; per-trial mean, then mean and 95% CI across trials"),
        ("ttft_ms", "client clock, request written -> first chunk with generated text; percentiles pooled over calls (HdrHistogram, 3 significant digits)"),
        ("e2e_ms", "client clock, request written -> final chunk; percentiles pooled over calls"),
        ("speedup", "sum over the arm's variants of their solo arms' mean trial wall time, divided by this arm's mean trial wall time"),
        ("efficiency", "speedup / number of agents launched together"),
        ("slowdown", "decode_tps and TTFT p50 of the variant in this arm divided by the same in its solo arm"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Per-trial mean of `metric` over `calls` (successful, one variant, one arm).
fn per_trial(calls: &[&CallRecord], metric: impl Fn(&CallRecord) -> Option<f64>) -> Option<Sample> {
    let mut by_trial: BTreeMap<u32, (f64, usize)> = BTreeMap::new();
    for c in calls {
        if let Some(v) = metric(c) {
            let e = by_trial.entry(c.trial).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    Sample::new(by_trial.values().map(|(sum, n)| sum / *n as f64))
}

fn pooled(
    calls: &[&CallRecord],
    metric: impl Fn(&CallRecord) -> Option<f64>,
) -> Option<Percentiles> {
    let mut h = LatencyHistogram::new();
    for c in calls {
        if let Some(v) = metric(c) {
            h.record_ms(v);
        }
    }
    h.percentiles()
}

/// Computes the summary. `arms` gives the order; records of other arms are ignored.
pub fn summarize(
    scenario: &str,
    arms: &[Arm],
    calls: &[CallRecord],
    trials: &[TrialRecord],
    simulated: bool,
    complete: bool,
) -> Summary {
    let measured: Vec<&CallRecord> = calls
        .iter()
        .filter(|c| c.phase == Phase::Measured && c.step != "prime")
        .collect();
    let mut groups = Vec::new();
    for arm in arms {
        let mut seen: Vec<&str> = Vec::new();
        for variant in &arm.variants {
            if seen.contains(&variant.as_str()) {
                continue;
            }
            seen.push(variant);
            let all: Vec<&CallRecord> = measured
                .iter()
                .copied()
                .filter(|c| c.arm == arm.name && &c.variant == variant)
                .collect();
            let ok: Vec<&CallRecord> = all.iter().copied().filter(|c| c.ok).collect();
            let mut failures_by_kind = BTreeMap::new();
            for c in all.iter().filter(|c| !c.ok) {
                if let Some(kind) = c.error_kind {
                    *failures_by_kind.entry(kind).or_insert(0) += 1;
                }
            }
            let decode = per_trial(&ok, |c| c.decode_tps);
            let tokens: Vec<f64> = ok
                .iter()
                .filter_map(|c| c.output_tokens.map(|n| n as f64))
                .collect();
            groups.push(GroupSummary {
                arm: arm.name.clone(),
                variant: variant.clone(),
                trials: ok
                    .iter()
                    .map(|c| c.trial)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len(),
                decode_tps: decode.map(|s| s.describe()),
                e2e_tps: per_trial(&ok, |c| c.e2e_tps).map(|s| s.describe()),
                ttft_ms: pooled(&ok, |c| c.ttft_ms),
                e2e_ms: pooled(&ok, |c| Some(c.e2e_ms)),
                output_tokens_mean: Sample::new(tokens).map(|s| s.mean()),
                calls: all.len(),
                failed_calls: all.len() - ok.len(),
                failures_by_kind,
                cold_calls: ok.iter().filter(|c| c.cold).count(),
            });
        }
    }

    let wall = |arm: &str| -> Option<f64> {
        Sample::new(
            trials
                .iter()
                .filter(|t| t.phase == Phase::Measured && t.arm == arm && t.ok)
                .map(|t| t.wall_ms),
        )
        .map(|s| s.mean())
    };
    let group =
        |arm: &str, variant: &str| groups.iter().find(|g| g.arm == arm && g.variant == variant);
    let mut concurrency = Vec::new();
    for arm in arms.iter().filter(|a| a.is_concurrent()) {
        let Some(wall_ms) = wall(&arm.name) else {
            continue;
        };
        let solo: Option<Vec<f64>> = arm.variants.iter().map(|v| wall(v)).collect();
        let solo_wall_sum_ms = solo.map(|w| w.iter().sum::<f64>());
        let speedup = solo_wall_sum_ms.map(|s| s / wall_ms);
        let mut slowdown = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for v in &arm.variants {
            if seen.contains(&v.as_str()) {
                continue;
            }
            seen.push(v);
            let (here, alone) = (group(&arm.name, v), group(v, v));
            let ratio = |f: &dyn Fn(&GroupSummary) -> Option<f64>| match (
                here.and_then(f),
                alone.and_then(f),
            ) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            slowdown.push(Slowdown {
                variant: v.clone(),
                decode_tps_ratio: ratio(&|g| g.decode_tps.map(|e| e.mean)),
                ttft_p50_ratio: ratio(&|g| g.ttft_ms.map(|p| p.p50)),
            });
        }
        concurrency.push(ConcurrencySummary {
            arm: arm.name.clone(),
            agents: arm.variants.len(),
            wall_ms,
            solo_wall_sum_ms,
            speedup,
            efficiency: speedup.map(|s| s / arm.variants.len() as f64),
            slowdown,
        });
    }

    Summary {
        scenario: scenario.to_owned(),
        simulated,
        complete,
        measured_trials: trials.iter().filter(|t| t.phase == Phase::Measured).count(),
        definitions: definitions(),
        groups,
        concurrency,
    }
}
