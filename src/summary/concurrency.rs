//! What running an arm's agents together gained against running each alone: speedup,
//! efficiency and each agent's slowdown, each with a 95% CI from a bootstrap over rounds
//! that keeps the solo and concurrent trials of one round together.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::GroupSummary;
use super::samples::{RunSamples, measured};
use crate::metrics::CallRecord;
use crate::plan::Phase;
use crate::results::{RunMeta, TrialRecord};
use crate::rng::{hash_bytes, mix64};
use crate::scenario::Metric;
use crate::stats::bootstrap::units_percentile_ci;
use crate::stats::{CONFIDENCE, Sample};

/// Resamples of the bootstrap over rounds.
pub const ROUND_RESAMPLES: usize = 2_000;

/// One variant's cost of sharing the server in a concurrent arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slowdown {
    /// Variant name.
    pub variant: String,
    /// Mean wall time of this variant's pipelines here / in its solo arm: what the agent
    /// experienced (above 1 means it took longer when sharing).
    #[serde(default)]
    pub wall_ratio: Option<f64>,
    /// 95% CI of `wall_ratio`.
    #[serde(default)]
    pub wall_ratio_ci: Option<[f64; 2]>,
    /// `decode_tps(concurrent) / decode_tps(solo)` of per-trial means: below 1 means
    /// slower decoding when sharing.
    pub decode_tps_ratio: Option<f64>,
    /// 95% CI of `decode_tps_ratio`.
    #[serde(default)]
    pub decode_tps_ratio_ci: Option<[f64; 2]>,
    /// `TTFT p50(concurrent) / TTFT p50(solo)`, each p50 pooled over calls: above 1 means
    /// waiting (queueing, loads).
    pub ttft_p50_ratio: Option<f64>,
    /// 95% CI of `ttft_p50_ratio`.
    #[serde(default)]
    pub ttft_p50_ratio_ci: Option<[f64; 2]>,
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
    /// 95% CI of `speedup`.
    #[serde(default)]
    pub speedup_ci: Option<[f64; 2]>,
    /// `speedup / agents`.
    pub efficiency: Option<f64>,
    /// 95% CI of `efficiency`.
    #[serde(default)]
    pub efficiency_ci: Option<[f64; 2]>,
    /// Rounds the intervals resample.
    #[serde(default)]
    pub rounds: usize,
    /// Per variant.
    pub slowdown: Vec<Slowdown>,
}

/// Values of one quantity by round index (into the run's list of measured rounds).
#[derive(Debug, Default)]
struct Series(BTreeMap<usize, Vec<f64>>);

impl Series {
    fn push(&mut self, round: usize, value: f64) {
        if value.is_finite() {
            self.0.entry(round).or_default().push(value);
        }
    }

    /// Mean of every value, each round weighted by how often it was drawn.
    fn mean(&self, counts: &[u32]) -> Option<f64> {
        let (mut sum, mut n) = (0.0, 0.0);
        for (&r, values) in &self.0 {
            let c = f64::from(counts[r]);
            sum += c * values.iter().sum::<f64>();
            n += c * values.len() as f64;
        }
        (n > 0.0).then(|| sum / n)
    }

    /// Median of the values of the drawn rounds, pooled (a round drawn twice counts twice).
    fn median(&self, counts: &[u32]) -> Option<f64> {
        let pooled = self.0.iter().flat_map(|(&r, values)| {
            std::iter::repeat_n(values, counts[r] as usize)
                .flatten()
                .copied()
        });
        Sample::new(pooled).map(|s| s.median())
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The series of one arm: trial wall times, and per variant the pipeline wall times,
/// per-trial decode rates and per-call TTFTs.
#[derive(Debug, Default)]
struct ArmSeries {
    wall: Series,
    pipeline_wall: BTreeMap<String, Series>,
    decode: BTreeMap<String, Series>,
    ttft: BTreeMap<String, Series>,
}

/// Per concurrent arm of `meta`, speedup, efficiency and slowdowns with their CIs.
pub fn concurrency(
    meta: &RunMeta,
    groups: &[GroupSummary],
    samples: &RunSamples,
    calls: &[CallRecord],
    trials: &[TrialRecord],
) -> Vec<ConcurrencySummary> {
    let measured_trials: Vec<&TrialRecord> = trials
        .iter()
        .filter(|t| t.phase == Phase::Measured && t.ok)
        .collect();
    let mut rounds: Vec<u32> = measured_trials.iter().map(|t| t.round).collect();
    rounds.sort_unstable();
    rounds.dedup();
    let index = |round: u32| rounds.binary_search(&round).ok();

    let mut series: BTreeMap<&str, ArmSeries> = BTreeMap::new();
    for t in &measured_trials {
        let Some(r) = index(t.round) else { continue };
        let s = series.entry(t.arm.as_str()).or_default();
        s.wall.push(r, t.wall_ms);
        for p in &t.pipelines {
            s.pipeline_wall
                .entry(p.variant.clone())
                .or_default()
                .push(r, p.wall_ms);
        }
    }
    let ok_trials: BTreeMap<u32, usize> = measured_trials
        .iter()
        .filter_map(|t| index(t.round).map(|r| (t.trial, r)))
        .collect();
    for arm in &meta.arms {
        let Some(s) = series.get_mut(arm.name.as_str()) else {
            continue;
        };
        for variant in arm.distinct_variants() {
            let mut ttft = Series::default();
            for c in measured(calls, &arm.name, variant)
                .into_iter()
                .filter(|c| c.ok)
            {
                if let (Some(&r), Some(v)) = (ok_trials.get(&c.trial), c.value(Metric::TtftMs)) {
                    ttft.push(r, v);
                }
            }
            let mut per_trial = Series::default();
            let decode =
                samples
                    .by_trial
                    .get(&(arm.name.clone(), variant.to_owned(), Metric::DecodeTps));
            for (trial, &value) in decode.into_iter().flatten() {
                if let Some(&r) = ok_trials.get(trial) {
                    per_trial.push(r, value);
                }
            }
            s.decode.insert(variant.to_owned(), per_trial);
            s.ttft.insert(variant.to_owned(), ttft);
        }
    }

    let group =
        |arm: &str, variant: &str| groups.iter().find(|g| g.arm == arm && g.variant == variant);
    let all = vec![1u32; rounds.len()];
    let mut out = Vec::new();
    for arm in meta.arms.iter().filter(|a| a.is_concurrent()) {
        let Some(here) = series.get(arm.name.as_str()) else {
            continue;
        };
        let Some(wall_ms) = here.wall.mean(&all) else {
            continue;
        };
        let agents = arm.variants.len();
        let speedup_of = |counts: &[u32]| -> Option<f64> {
            let solo: Option<Vec<f64>> = arm
                .variants
                .iter()
                .map(|v| series.get(v.as_str()).and_then(|s| s.wall.mean(counts)))
                .collect();
            ratio(solo.map(|w| w.iter().sum()), here.wall.mean(counts))
        };
        let solo_wall_sum_ms: Option<f64> = arm
            .variants
            .iter()
            .map(|v| series.get(v.as_str()).and_then(|s| s.wall.mean(&all)))
            .sum();
        let speedup = ratio(solo_wall_sum_ms, Some(wall_ms));
        let seed =
            |what: &str| mix64(meta.seed ^ hash_bytes(format!("{what}/{}", arm.name).as_bytes()));
        let ci = |what: &str, f: &dyn Fn(&[u32]) -> Option<f64>| {
            units_percentile_ci(rounds.len(), ROUND_RESAMPLES, seed(what), CONFIDENCE, f)
                .map(|(lo, hi)| [lo, hi])
        };
        let speedup_ci = ci("speedup", &speedup_of);
        let slowdown = arm
            .distinct_variants()
            .into_iter()
            .map(|v| {
                let solo = series.get(v);
                let per = |pick: fn(&ArmSeries) -> &BTreeMap<String, Series>,
                           stat: fn(&Series, &[u32]) -> Option<f64>,
                           counts: &[u32]| {
                    ratio(
                        pick(here).get(v).and_then(|s| stat(s, counts)),
                        solo.and_then(|s| pick(s).get(v))
                            .and_then(|s| stat(s, counts)),
                    )
                };
                let wall = |c: &[u32]| per(|s| &s.pipeline_wall, Series::mean, c);
                let decode = |c: &[u32]| per(|s| &s.decode, Series::mean, c);
                let ttft = |c: &[u32]| per(|s| &s.ttft, Series::median, c);
                let decode_mean = |a: &str| {
                    group(a, v)
                        .and_then(|g| g.per_trial(Metric::DecodeTps))
                        .map(|d| d.mean)
                };
                Slowdown {
                    variant: v.to_owned(),
                    wall_ratio: wall(&all),
                    wall_ratio_ci: ci(&format!("wall/{v}"), &wall),
                    decode_tps_ratio: ratio(decode_mean(&arm.name), decode_mean(v)),
                    decode_tps_ratio_ci: ci(&format!("decode/{v}"), &decode),
                    ttft_p50_ratio: ttft(&all),
                    ttft_p50_ratio_ci: ci(&format!("ttft/{v}"), &ttft),
                }
            })
            .collect();
        out.push(ConcurrencySummary {
            arm: arm.name.clone(),
            agents,
            wall_ms,
            solo_wall_sum_ms,
            speedup,
            speedup_ci,
            efficiency: speedup.map(|s| s / agents as f64),
            efficiency_ci: speedup_ci.map(|[lo, hi]| [lo / agents as f64, hi / agents as f64]),
            rounds: rounds.len(),
            slowdown,
        });
    }
    out
}
