//! What comparisons, gates and drift checks are computed from: per arm and variant, the
//! per-trial means of every metric (successful measured calls), the failure counts, and the
//! conditions the calls ran under (reloads, new connections).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::CallRecord;
use crate::plan::Phase;
use crate::results::{RunMeta, TrialRecord};
use crate::scenario::{Metric, Slo};
use crate::stats::Sample;

/// Absolute difference between two sides' shares of cold calls (or of calls on a new
/// connection) beyond which a comparison of them is confounded: 10 percentage points.
pub const CONDITION_TOLERANCE: f64 = 0.10;

/// Under what conditions one side's successful measured calls ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// Successful measured calls.
    pub calls: usize,
    /// Of those, calls that (re)loaded the model: their TTFT includes the load.
    pub cold: usize,
    /// Of those, calls that opened a new connection: their TTFT includes connecting.
    pub new_connections: usize,
}

impl Conditions {
    /// Share of cold calls; `None` without calls.
    pub fn cold_share(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.cold as f64 / self.calls as f64)
    }

    /// Share of calls on a new connection; `None` without calls.
    pub fn new_connection_share(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.new_connections as f64 / self.calls as f64)
    }

    /// The cold shares of `self` and `other` differ beyond [`CONDITION_TOLERANCE`].
    pub fn cold_differs(&self, other: &Conditions) -> bool {
        differs(self.cold_share(), other.cold_share())
    }

    /// The new-connection shares differ beyond [`CONDITION_TOLERANCE`].
    pub fn connections_differ(&self, other: &Conditions) -> bool {
        differs(self.new_connection_share(), other.new_connection_share())
    }
}

fn differs(a: Option<f64>, b: Option<f64>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if (x - y).abs() > CONDITION_TOLERANCE)
}

/// What differs between the conditions of two sides beyond [`CONDITION_TOLERANCE`], in
/// words; `None` when they ran alike. A comparison with such a difference is confounded:
/// its ratio charges reloads or connecting to whichever side had more of them.
pub fn confound_warning(
    variant: (&str, &Conditions),
    baseline: (&str, &Conditions),
) -> Option<String> {
    let ((v, vc), (b, bc)) = (variant, baseline);
    let mut parts = Vec::new();
    let mut check =
        |what: &str, share: fn(&Conditions) -> Option<f64>, count: fn(&Conditions) -> usize| {
            if let (Some(x), Some(y)) = (share(vc), share(bc)) {
                if (x - y).abs() > CONDITION_TOLERANCE {
                    parts.push(format!(
                        "{} of {} of {v}'s calls {what}, {} of {} of {b}'s",
                        count(vc),
                        vc.calls,
                        count(bc),
                        bc.calls
                    ));
                }
            }
        };
    check("reloaded the model", Conditions::cold_share, |c| c.cold);
    check(
        "opened a new connection",
        Conditions::new_connection_share,
        |c| c.new_connections,
    );
    (!parts.is_empty()).then(|| {
        format!(
            "confounded: {}; the ratio charges that to one side",
            parts.join("; ")
        )
    })
}

/// Per-trial samples of every metric, keyed by (arm, variant, metric).
pub type TrialSamples = BTreeMap<(String, String, Metric), Sample>;

/// Failed and total measured calls of each (arm, variant).
pub type FailureCounts = BTreeMap<(String, String), (usize, usize)>;

/// Everything comparisons and gates need of one run's records, per (arm, variant).
#[derive(Debug, Clone, Default)]
pub struct RunSamples {
    /// Per-trial means keyed by trial number.
    pub by_trial: BTreeMap<(String, String, Metric), BTreeMap<u32, f64>>,
    /// The same values as samples.
    pub samples: TrialSamples,
    /// Failed and total measured calls.
    pub failures: FailureCounts,
    /// The conditions of the successful measured calls.
    pub conditions: BTreeMap<(String, String), Conditions>,
}

/// Measured (not warmup, not priming) calls of `variant` in `arm`, failed ones included.
pub(crate) fn measured<'a>(
    calls: &'a [CallRecord],
    arm: &str,
    variant: &str,
) -> Vec<&'a CallRecord> {
    calls
        .iter()
        .filter(|c| c.phase == Phase::Measured && c.step != "prime")
        .filter(|c| c.arm == arm && c.variant == variant)
        .collect()
}

/// Per-trial mean of `metric` over `calls` (successful, one variant, one arm).
fn per_trial(calls: &[&CallRecord], metric: Metric) -> BTreeMap<u32, f64> {
    let mut by_trial: BTreeMap<u32, (f64, usize)> = BTreeMap::new();
    for c in calls {
        if let Some(v) = c.value(metric).filter(|v| v.is_finite()) {
            let e = by_trial.entry(c.trial).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    by_trial
        .into_iter()
        .map(|(t, (sum, n))| (t, sum / n as f64))
        .collect()
}

/// Per-trial values of the job metrics of `variant` in `arm`: the mean completion time of
/// its jobs that succeeded, and how many jobs of the arm succeeded per minute of the
/// trial's wall time (the arm's throughput, the same for each of its variants).
fn per_trial_jobs(
    trials: &[TrialRecord],
    arm: &str,
    variant: &str,
    metric: Metric,
) -> BTreeMap<u32, f64> {
    trials
        .iter()
        .filter(|t| t.phase == Phase::Measured && t.arm == arm)
        .filter_map(|t| {
            let ok: Vec<f64> = t
                .pipelines
                .iter()
                .filter(|p| p.variant == variant && p.ok)
                .map(|p| p.wall_ms)
                .collect();
            if ok.is_empty() {
                return None;
            }
            let value = match metric {
                Metric::JobsPerMin if t.wall_ms > 0.0 => {
                    let done = t.pipelines.iter().filter(|p| p.ok).count();
                    done as f64 / (t.wall_ms / 60_000.0)
                }
                Metric::JobE2eMs => ok.iter().sum::<f64>() / ok.len() as f64,
                _ => return None,
            };
            Some((t.trial, value))
        })
        .collect()
}

/// Per-trial values of an energy metric of `arm`: the GPUs' energy over the trial (from
/// its telemetry) against the output tokens of every successful measured call of the
/// arm in it, all its variants together (the GPU is shared). The same value for each
/// variant of the arm; trials in which `variant` had no successful call are left out.
fn per_trial_energy(
    calls: &[CallRecord],
    trials: &[TrialRecord],
    arm: &str,
    variant: &str,
    metric: Metric,
) -> BTreeMap<u32, f64> {
    // One pass over the calls: per trial of the arm, its output tokens and whether
    // `variant` had a successful call.
    let mut per_trial: BTreeMap<u32, (u64, bool)> = BTreeMap::new();
    for c in calls
        .iter()
        .filter(|c| c.arm == arm && c.ok && c.phase == Phase::Measured && c.step != "prime")
    {
        let e = per_trial.entry(c.trial).or_default();
        e.0 += c.output_tokens.unwrap_or(0);
        e.1 |= c.variant == variant;
    }
    trials
        .iter()
        .filter(|t| t.phase == Phase::Measured && t.arm == arm)
        .filter_map(|t| {
            let joules = t.gpu.as_ref()?.energy_j;
            let &(tokens, ran) = per_trial.get(&t.trial)?;
            if !ran {
                return None;
            }
            let tokens = tokens as f64;
            let value = match metric {
                Metric::JoulesPerToken if tokens > 0.0 => joules / tokens,
                Metric::TokensPerJoule if joules > 0.0 => tokens / joules,
                _ => return None,
            };
            Some((t.trial, value))
        })
        .collect()
}

/// Per-trial values of a serving metric of a load level: a rate over the trial's
/// measured window, which runs from the first measured request's due time (its send time
/// in a closed loop) to the last one's end. `calls` are one side's measured calls, failed
/// ones included (they hold the window open but count as nothing done). Goodput counts
/// the successful calls that met every objective of `slo`, with latency from the due time;
/// without objectives it has no value.
fn per_trial_serving(
    calls: &[&CallRecord],
    metric: Metric,
    slo: Option<&Slo>,
) -> BTreeMap<u32, f64> {
    let mut by_trial: BTreeMap<u32, Vec<&CallRecord>> = BTreeMap::new();
    for c in calls {
        by_trial.entry(c.trial).or_default().push(c);
    }
    by_trial
        .into_iter()
        .filter_map(|(trial, calls)| {
            let due = |c: &CallRecord| c.offset_ms - c.schedule_lag_ms.unwrap_or(0.0);
            let start = calls.iter().map(|c| due(c)).fold(f64::INFINITY, f64::min);
            let end = calls
                .iter()
                .map(|c| c.offset_ms + c.e2e_ms)
                .fold(f64::NEG_INFINITY, f64::max);
            let window_s = (end - start) / 1e3;
            if window_s.is_nan() || window_s <= 0.0 {
                return None;
            }
            let ok = calls.iter().filter(|c| c.ok);
            let done = match metric {
                Metric::ReqPerS => ok.count() as f64,
                Metric::ThroughputTps => ok.filter_map(|c| c.output_tokens).sum::<u64>() as f64,
                Metric::GoodputRps => {
                    let slo = slo?;
                    ok.filter(|c| {
                        let lag = c.schedule_lag_ms.unwrap_or(0.0);
                        slo.met(c.ttft_ms.map(|t| t + lag), c.tpot_ms, c.e2e_ms + lag)
                    })
                    .count() as f64
                }
                _ => return None,
            };
            Some((trial, done / window_s))
        })
        .collect()
}

/// The per-trial values of `metric` for one side, given its measured calls (`all`, and
/// the successful ones, `ok`).
fn values_of(
    (all, ok): (&[&CallRecord], &[&CallRecord]),
    calls: &[CallRecord],
    trials: &[TrialRecord],
    (arm, variant): (&str, &str),
    metric: Metric,
    slo: Option<&Slo>,
) -> BTreeMap<u32, f64> {
    if metric.is_serving() {
        per_trial_serving(all, metric, slo)
    } else if metric.is_energy() {
        per_trial_energy(calls, trials, arm, variant, metric)
    } else if metric.is_job() {
        per_trial_jobs(trials, arm, variant, metric)
    } else {
        per_trial(ok, metric)
    }
}

/// The per-trial values of `metric` for `variant` in `arm`, by trial number, as
/// [`RunSamples`] reads them.
pub fn per_trial_values(
    calls: &[CallRecord],
    trials: &[TrialRecord],
    (arm, variant): (&str, &str),
    metric: Metric,
    slo: Option<&Slo>,
) -> BTreeMap<u32, f64> {
    let all = measured(calls, arm, variant);
    let ok: Vec<&CallRecord> = all.iter().copied().filter(|c| c.ok).collect();
    values_of((&all, &ok), calls, trials, (arm, variant), metric, slo)
}

/// Values by trial number.
type ByTrial = BTreeMap<u32, f64>;

impl RunSamples {
    /// Reads every arm and variant of the run out of `calls` and, for the job metrics,
    /// `trials`. A load level's arms get the serving metrics instead of the job ones (its
    /// job is the level, whose length the load decides).
    pub fn of(meta: &RunMeta, calls: &[CallRecord], trials: &[TrialRecord]) -> RunSamples {
        let mut out = RunSamples::default();
        for arm in &meta.arms {
            for variant in arm.distinct_variants() {
                let side = (arm.name.clone(), variant.to_owned());
                let all = measured(calls, &arm.name, variant);
                let ok: Vec<&CallRecord> = all.iter().copied().filter(|c| c.ok).collect();
                out.failures
                    .insert(side.clone(), (all.len() - ok.len(), all.len()));
                out.conditions.insert(
                    side,
                    Conditions {
                        calls: ok.len(),
                        cold: ok.iter().filter(|c| c.cold).count(),
                        new_connections: ok.iter().filter(|c| c.connect_ms.is_some()).count(),
                    },
                );
                for metric in Metric::ALL.into_iter().filter(|&m| arm.measures(m)) {
                    let values = values_of(
                        (&all, &ok),
                        calls,
                        trials,
                        (&arm.name, variant),
                        metric,
                        meta.slo.as_ref(),
                    );
                    let key = (arm.name.clone(), variant.to_owned(), metric);
                    if let Some(sample) = Sample::new(values.values().copied()) {
                        out.samples.insert(key.clone(), sample);
                        out.by_trial.insert(key, values);
                    }
                }
            }
        }
        out
    }

    /// The per-trial sample of `variant` in `arm` on `metric`.
    pub fn sample(&self, arm: &str, variant: &str, metric: Metric) -> Option<&Sample> {
        self.samples
            .get(&(arm.to_owned(), variant.to_owned(), metric))
    }

    /// The per-trial values of a comparison's two sides (the variant in its arm, the
    /// baseline in its arm), when both have some.
    pub fn sides(&self, row: &super::ComparisonRow) -> Option<(&ByTrial, &ByTrial)> {
        let side = |arm: &str, variant: &str| {
            self.by_trial
                .get(&(arm.to_owned(), variant.to_owned(), row.metric))
        };
        Some((
            side(&row.arm, &row.variant)?,
            side(&row.baseline_arm, &row.baseline)?,
        ))
    }

    /// Failed and total measured calls of `variant` in `arm`.
    pub fn failures(&self, arm: &str, variant: &str) -> (usize, usize) {
        self.failures
            .get(&(arm.to_owned(), variant.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// The conditions of `variant`'s successful measured calls in `arm`.
    pub fn conditions(&self, arm: &str, variant: &str) -> Conditions {
        self.conditions
            .get(&(arm.to_owned(), variant.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Per-trial values of `variant` and `baseline` in the trials of `arm` that have both,
    /// as `(variant, baseline)` pairs in trial order.
    pub fn pairs(
        &self,
        arm: &str,
        variant: &str,
        baseline: &str,
        metric: Metric,
    ) -> Vec<(f64, f64)> {
        let get = |v: &str| self.by_trial.get(&(arm.to_owned(), v.to_owned(), metric));
        let (Some(x), Some(y)) = (get(variant), get(baseline)) else {
            return Vec::new();
        };
        x.iter()
            .filter_map(|(t, &xv)| y.get(t).map(|&yv| (xv, yv)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_that_reload_differently_are_confounded() {
        let cold = Conditions {
            calls: 20,
            cold: 18,
            new_connections: 0,
        };
        let warm = Conditions {
            calls: 40,
            cold: 0,
            new_connections: 0,
        };
        let w = confound_warning(("chimera", &cold), ("baseline", &warm)).unwrap();
        assert!(
            w.contains("18 of 20 of chimera's calls reloaded the model, 0 of 40 of baseline's"),
            "{w}"
        );
        assert!(!w.contains("connection"), "{w}");
        // Within the tolerance (1 in 20 against none): alike.
        let one = Conditions { cold: 1, ..cold };
        assert_eq!(confound_warning(("a", &one), ("b", &warm)), None);
        // Connections count too.
        let fresh = Conditions {
            new_connections: 20,
            ..one
        };
        let w = confound_warning(("a", &fresh), ("b", &warm)).unwrap();
        assert!(
            w.contains("20 of 20 of a's calls opened a new connection"),
            "{w}"
        );
        // No calls on a side: nothing to compare.
        assert_eq!(
            confound_warning(("a", &Conditions::default()), ("b", &warm)),
            None
        );
    }
}
