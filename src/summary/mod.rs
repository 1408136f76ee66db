//! `summary.json`: per arm and variant statistics, comparisons against the baseline, drift
//! and what concurrency did, computed from the records alone (measured phase, successful
//! calls), so `harness report` recomputes it from the files of any results folder.
//!
//! - [`samples`]: per-trial values, failure counts and call conditions per arm and variant;
//! - [`drift`]: trends over the run;
//! - [`concurrency`]: speedup, efficiency and slowdowns with bootstrap CIs over rounds;
//! - [`jobs`]: where jobs spent their time, and their critical paths.

pub mod concurrency;
pub mod drift;
pub mod jobs;
pub mod loaded;
pub mod samples;
pub mod sequential;
pub mod server;
pub mod servers;
pub mod serving;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use concurrency::{ConcurrencySummary, Slowdown};
pub use drift::DriftRow;
pub use jobs::{AgentCalls, JobSummary, PathShare};
pub use loaded::LoadedRow;
pub use samples::{Conditions, FailureCounts, RunSamples, TrialSamples, confound_warning};
pub use sequential::SequentialSummary;
pub use server::ServerRow;

use crate::metrics::{CallRecord, ErrorKind};
use crate::plan::Phase;
use crate::results::{RunMeta, RunSetup, TrialRecord};
use crate::rng::{hash_bytes, mix64};
use crate::scenario::{Direction, Metric, Order, Slo};
use crate::stats::bootstrap::DEFAULT_RESAMPLES;
use crate::stats::{
    ALPHA, CONFIDENCE, Comparison, Descriptive, LatencyHistogram, Percentiles, Sample, compare,
    compare_paired, holm,
};
use samples::measured;
use serving::{Saturation, ServingRow};

/// One metric of one variant in one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The per-trial means (the unit of analysis), described across trials.
    pub per_trial: Descriptive,
    /// For times: percentiles pooled over every successful measured call.
    pub pooled: Option<Percentiles>,
}

/// Statistics of one variant within one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Arm name.
    pub arm: String,
    /// Variant name.
    pub variant: String,
    /// Measured trials with at least one successful call of this variant.
    pub trials: usize,
    /// Measured calls.
    pub calls: usize,
    /// Measured calls that failed.
    pub failed_calls: usize,
    /// Failed calls by error kind.
    pub failures_by_kind: BTreeMap<ErrorKind, usize>,
    /// Measured successful calls that (re)loaded the model.
    pub cold_calls: usize,
    /// Measured successful calls that opened a new connection (their TTFT includes
    /// connecting, `connect_ms`); the others reused a kept one.
    #[serde(default)]
    pub new_connection_calls: usize,
    /// Measured calls that needed more than one attempt (connection retries, or a resend
    /// after the server had closed the pooled connection).
    #[serde(default)]
    pub retried_calls: usize,
    /// Mean output tokens per successful call.
    pub output_tokens_mean: Option<f64>,
    /// Per metric; a metric no call had is absent.
    pub metrics: BTreeMap<Metric, MetricSummary>,
}

impl GroupSummary {
    /// Per-trial description of `metric`.
    pub fn per_trial(&self, metric: Metric) -> Option<&Descriptive> {
        self.metrics.get(&metric).map(|m| &m.per_trial)
    }

    /// Pooled percentiles of a time `metric`.
    pub fn pooled(&self, metric: Metric) -> Option<&Percentiles> {
        self.metrics.get(&metric).and_then(|m| m.pooled.as_ref())
    }
}

/// What a comparison says, in words a reader can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Holm-adjusted p < α and the ratio is on the good side.
    Faster,
    /// Holm-adjusted p < α and the ratio is on the bad side.
    Slower,
    /// Holm-adjusted p ≥ α: the data cannot tell them apart.
    NoSignificantDifference,
    /// No test was possible (fewer than 2 trials a side, or no spread at all).
    Undetermined,
}

impl Verdict {
    /// Plain words.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoSignificantDifference => "no significant difference",
            Verdict::Undetermined => "undetermined (too few trials)",
        }
    }
}

/// A Holm-adjusted p in words: `Holm p < 0.001`, `Holm p = 0.012`, or `no p`.
pub fn holm_p_phrase(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => "Holm p < 0.001".to_owned(),
        Some(p) => format!("Holm p = {p:.3}"),
        None => "no p".to_owned(),
    }
}

/// One variant against the baseline on one metric: across arms (the variant's arm against
/// the arm with the baseline in its place, independent trials), or within one arm that runs
/// both (`paired`: the two in the same trials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// The metric compared (per-trial means).
    pub metric: Metric,
    /// Which way is faster.
    pub direction: Direction,
    /// Arm of the variant.
    pub arm: String,
    /// The variant.
    pub variant: String,
    /// The same arm with the baseline in the variant's place (paired: the same arm).
    pub baseline_arm: String,
    /// Variant and baseline ran in the same trials of `arm` and are compared trial by
    /// trial (paired t-test on log ratios); otherwise as independent samples (Welch).
    #[serde(default)]
    pub paired: bool,
    /// The baseline variant.
    pub baseline: String,
    /// Mean of the variant's per-trial values.
    pub variant_mean: f64,
    /// Mean of the baseline's per-trial values.
    pub baseline_mean: f64,
    /// The statistics (for a paired row, `welch` holds the paired t-test).
    #[serde(flatten)]
    pub stats: Comparison,
    /// How the variant's calls ran: how many reloaded the model or opened a connection.
    #[serde(default)]
    pub variant_conditions: Conditions,
    /// How the baseline's calls ran.
    #[serde(default)]
    pub baseline_conditions: Conditions,
    /// The t-test's p on log values, Holm-adjusted over every comparison of the run.
    pub holm_p: Option<f64>,
    /// What it means.
    pub verdict: Verdict,
    /// Set when the two sides failed at different rates: the statistics use successful
    /// calls only, and a variant that is faster but fails more is not simply faster.
    #[serde(default)]
    pub failure_warning: Option<String>,
    /// Set for a metric that depends on how many tokens a call generates (`e2e_ms`,
    /// `e2e_tps`) when the two sides' mean output lengths differ by more than
    /// [`LENGTH_TOLERANCE`]: a shorter reply is quicker without being faster.
    #[serde(default)]
    pub length_warning: Option<String>,
    /// Set when the two sides' shares of cold calls or new connections differ by more than
    /// [`samples::CONDITION_TOLERANCE`]: the ratio charges reloads or connecting to one side.
    #[serde(default)]
    pub confound_warning: Option<String>,
}

impl ComparisonRow {
    /// The comparison's warnings: different failure rates, output lengths, conditions.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        [
            &self.confound_warning,
            &self.failure_warning,
            &self.length_warning,
        ]
        .into_iter()
        .filter_map(|w| w.as_deref())
    }
}

/// Relative difference of two sides' mean output tokens per call beyond which a
/// length-dependent comparison carries a warning.
pub const LENGTH_TOLERANCE: f64 = 0.10;

/// The warning for a length-dependent metric when the two sides' mean output tokens
/// (`name`, tokens per call) differ beyond [`LENGTH_TOLERANCE`].
pub fn length_warning(
    metric: Metric,
    variant: (&str, f64),
    baseline: (&str, f64),
) -> Option<String> {
    let ((v, v_tokens), (b, b_tokens)) = (variant, baseline);
    if !metric.depends_on_length() || b_tokens <= 0.0 {
        return None;
    }
    let ratio = v_tokens / b_tokens;
    ((ratio - 1.0).abs() > LENGTH_TOLERANCE).then(|| {
        format!(
            "output lengths differ: {v} generated {v_tokens:.0} tokens per call, {b} {b_tokens:.0} (×{ratio:.2}), and {metric} depends on length"
        )
    })
}

/// The warning for two sides' failure counts, when their rates differ.
pub fn failure_warning(
    variant: (&str, usize, usize),
    baseline: (&str, usize, usize),
) -> Option<String> {
    let ((v, v_failed, v_calls), (b, b_failed, b_calls)) = (variant, baseline);
    let rate = |f: usize, n: usize| if n == 0 { 0.0 } else { f as f64 / n as f64 };
    if v_failed + b_failed == 0 || rate(v_failed, v_calls) == rate(b_failed, b_calls) {
        return None;
    }
    Some(format!(
        "failure rates differ: {v} failed {v_failed} of {v_calls} calls, {b} {b_failed} of {b_calls}; the statistics use successful calls only"
    ))
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
    /// Trials in the plan, warmups included.
    pub planned_trials: usize,
    /// Measured trials that ran.
    pub measured_trials: usize,
    /// The variant the others are compared against.
    pub baseline: String,
    /// What ran: the server and the model it served, the options each variant sent.
    #[serde(default)]
    pub setup: RunSetup,
    /// The order trials ran in (`None` in folders written before it was recorded).
    #[serde(default)]
    pub order: Option<Order>,
    /// Significance level of the verdicts (Holm-adjusted).
    pub alpha: f64,
    /// Confidence level of every interval.
    pub confidence: f64,
    /// How the numbers are defined and which tests made them.
    pub definitions: BTreeMap<String, String>,
    /// Per arm and variant, arms in scenario order.
    pub groups: Vec<GroupSummary>,
    /// Every variant against the baseline, per metric.
    pub comparisons: Vec<ComparisonRow>,
    /// Per concurrent arm.
    pub concurrency: Vec<ConcurrencySummary>,
    /// The trend of every series over the run.
    #[serde(default)]
    pub drift: Vec<DriftRow>,
    /// What the drift means for this run's comparisons, when there is any.
    #[serde(default)]
    pub drift_warning: Option<String>,
    /// Per arm and variant, where the jobs spent their time.
    #[serde(default)]
    pub jobs: Vec<JobSummary>,
    /// Per load level, arm and variant: throughput, goodput, latency (`load:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serving: Vec<ServingRow>,
    /// Where each variant's throughput stopped growing with the load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saturation: Vec<Saturation>,
    /// The service objectives goodput counts against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// Said when an open loop's client fell behind its schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_warning: Option<String>,
    /// Per variant, what the server loaded against what it asked for (`/api/ps`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded: Vec<LoadedRow>,
    /// Variants that asked for different configurations but were loaded identically.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded_warnings: Vec<String>,
    /// Per arm, what the server's own metrics counted over the measured trials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server: Vec<ServerRow>,
    /// Trials the server's metrics miss, and token counts the server and the calls
    /// disagree on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_warnings: Vec<String>,
    /// The stopping rule's looks and decision, when the scenario has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<SequentialSummary>,
    /// Each comparison per server and pooled, when the trials ran against several servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<servers::ServerPooling>,
    /// Comparisons whose servers disagree substantially.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_disagreements: Vec<String>,
}

impl Summary {
    /// The group of `variant` in `arm`.
    pub fn group(&self, arm: &str, variant: &str) -> Option<&GroupSummary> {
        self.groups
            .iter()
            .find(|g| g.arm == arm && g.variant == variant)
    }
}

fn definitions() -> BTreeMap<String, String> {
    [
        ("unit", "The unit of analysis is the trial: each metric is averaged over a variant's successful measured calls in one trial (warmups and priming calls excluded), and statistics are computed across those per-trial means. Failed calls are counted, not averaged."),
        ("decode_tps", "server eval_count / eval_duration per call (tokens/s)"),
        ("e2e_tps", "output_tokens / client end-to-end time per call (tokens/s)"),
        ("ttft_ms", "client clock, request handed to the HTTP client -> first chunk with generated text; includes connecting when the call opened a new connection (connect_ms)"),
        ("e2e_ms", "client clock, request handed to the HTTP client -> final chunk"),
        ("connect_ms", "time to open the call's connection (TCP and TLS) when it opened one rather than reusing a kept one; new connections are counted per arm and variant"),
        ("tpot_ms", "(e2e_ms - time to the first generated token) / (output_tokens - 1); the first token is the first of the answer or of reasoning sent apart, since output_tokens counts both (without reasoning: (e2e_ms - ttft_ms) / (output_tokens - 1))"),
        ("per_trial", "n, mean with a 95% Student-t CI, sample standard deviation (n-1), CV, min, median, max of the per-trial means; percentiles are Hyndman-Fan type 7"),
        ("pooled", "times only: p50/p90/p95/p99/max pooled over every successful measured call (HdrHistogram, integer microseconds, 3 significant digits), labelled pooled because calls within a trial are not independent"),
        ("comparison", "each variant against the baseline in the same arm with the baseline in the variant's place, per metric, on per-trial means (independent trials); and, in an arm that runs both, the variant against the baseline in the same trials (paired)"),
        ("ratio", "ratio of geometric means variant/baseline with a 95% CI from Welch's t on log values (paired rows: the paired t on log ratios); the CI is not adjusted for multiplicity, so it can exclude 1 while the Holm-adjusted verdict says no significant difference"),
        ("welch_p", "two-sided Welch t-test on log values (agrees with the ratio CI); for paired rows the paired t-test"),
        ("holm_p", "the t-test's p adjusted by Holm's step-down method over every comparison of the run, paired ones included"),
        ("mann_whitney", "two-sided Mann-Whitney U of the variant, unadjusted: exact null distribution when there are no ties and n1+n2 <= 120, else normal approximation with tie and continuity corrections; not computed for paired rows"),
        ("hedges_g", "signed, variant minus baseline: (mean variant - mean baseline) / pooled SD, times the exact small-sample correction J; positive = the variant's values are higher"),
        ("cliffs_delta", "signed, variant against baseline: P(variant > baseline) - P(variant < baseline) over all pairs of trials; positive = the variant's values tend to be higher"),
        ("median_ratio", "ratio of medians with a seeded BCa bootstrap 95% CI (10,000 resamples, each sample resampled on its own); omitted below 10 trials a side, where it degenerates to ratios of order statistics, and for paired rows"),
        ("conditions", "per side, successful measured calls, how many reloaded the model (cold) and how many opened a new connection; a comparison whose sides' shares differ by more than 10 percentage points is flagged as confounded (its ratio charges reloads or connecting to one side), and a gate on it is INCONCLUSIVE unless it accepts that"),
        ("verdict", "faster/slower when the Holm-adjusted p < alpha, on the side the ratio lies; otherwise no significant difference; undetermined without a test"),
        ("detectable", "the smallest change, as a ratio ≥ 1 (a fall to its reciprocal alike), that the comparison's t test on logs finds with 80% power at alpha (before Holm's adjustment), from the run's own per-trial variance and degrees of freedom, with the noncentral t distribution; a no significant difference is only news for changes at least this large"),
        ("speedup", "sum over the arm's variants of their solo arms' mean trial wall time, divided by this arm's mean trial wall time, with a 95% percentile bootstrap CI over rounds (2,000 resamples; a round's solo and concurrent trials are drawn together); with fewer than about 10 rounds a percentile bootstrap is too narrow, so read it as a rough range"),
        ("efficiency", "speedup / number of agents launched together, with the speedup's CI divided likewise"),
        ("slowdown", "per variant in a concurrent arm against its solo arm, each with a bootstrap CI over rounds: agent wall = mean pipeline wall time (what the agent experienced); decode = mean per-trial decode_tps; TTFT p50 = median TTFT pooled over calls (exact, not the histogram's)"),
        ("job", "one run of the workload by one variant instance in a trial (its pipeline): for agent_report the seed workflow, for agent_graph the whole graph, for trace the whole trace replayed"),
        ("job_e2e_ms", "a job's completion time, launch (ingest included) to the end of its last call, averaged over the variant's jobs that succeeded in the trial"),
        ("jobs_per_min", "the arm's throughput: jobs of the trial that succeeded (all its variants) per minute of the trial's wall time; the same value for every variant of an arm, so it has no paired rows"),
        ("critical_path", "from the agent instance that ended last, back through the input each one waited for last; llm and tool = time in LLM calls and tool waits along it; sibling wait = summed over agents that fanned out, the mean time an instance's output waited for its slowest sibling; share = an agent's time on the path / the job's completion time, averaged over jobs"),
        ("load", "with `load:`, each arm runs at each level as an arm of its own (`chimera@c16`, `chimera@r2`), compared with the baseline at the same level; closed loop (`c`): that many workers, each sending its next request when its last ended; open loop (`r`): requests per second, each sent at a time fixed before the run; a level's first warmup_requests are excluded"),
        ("req_per_s", "at a load level, per trial: successful measured requests / the measured window, which runs from the first measured request's due time (its send time in a closed loop) to the last one's end"),
        ("throughput_tps", "at a load level, per trial: output tokens of the successful measured requests / the measured window (all streams together)"),
        ("goodput_rps", "at a load level, per trial: successful measured requests that met every objective of `slo:` / the measured window; in an open loop TTFT and e2e are counted from the due time"),
        ("sched_ttft_ms", "open loop: ttft_ms plus how late the request was sent against its schedule (schedule_lag_ms), so time spent waiting for a send slot counts (no coordinated omission)"),
        ("sched_e2e_ms", "open loop: e2e_ms plus schedule_lag_ms"),
        ("joules_per_token", "with GPU telemetry, per trial: the energy of every GPU over the trial (the rise of NVML's energy counter, else power integrated over the samples, edges interpolated) / the output tokens of every successful measured call of the arm in it; the GPU is shared, so the value is the arm's, the same for each of its variants"),
        ("tokens_per_joule", "with GPU telemetry, per trial: 1 / joules_per_token"),
        ("saturation", "per arm and variant over its load levels in ascending order: the first level after which throughput grew by less than 15% of the load's growth (4x the workers for less than +45% requests/s) while median e2e latency grew by more than 10%; in an open loop, by less than half the added rate while median e2e latency from the schedule grew by more than half"),
        ("drift", "per arm, variant and metric with at least 4 trials: least-squares slope of the log per-trial values over the arm's rounds in the order they ran, reported as change per round with a 95% CI; Holm-adjusted over every series, drifting when the adjusted p < alpha"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn pooled(calls: &[&CallRecord], metric: Metric) -> Option<Percentiles> {
    let mut h = LatencyHistogram::new();
    for c in calls {
        if let Some(v) = c.value(metric) {
            h.record_ms(v);
        }
    }
    h.percentiles()
}

/// Computes the summary from a run's records. Records of arms not in `meta.arms` are
/// ignored. Deterministic: the same records give the same summary, bit for bit.
pub fn summarize(meta: &RunMeta, calls: &[CallRecord], trials: &[TrialRecord]) -> Summary {
    summarize_samples(meta, calls, trials, &RunSamples::of(meta, calls, trials))
}

/// [`summarize`] with the records' per-trial samples already read (the report draws its
/// figures from the same samples).
pub fn summarize_samples(
    meta: &RunMeta,
    calls: &[CallRecord],
    trials: &[TrialRecord],
    samples: &RunSamples,
) -> Summary {
    let mut groups = Vec::new();
    for arm in &meta.arms {
        for variant in arm.distinct_variants() {
            let all = measured(calls, &arm.name, variant);
            let ok: Vec<&CallRecord> = all.iter().copied().filter(|c| c.ok).collect();
            let mut failures_by_kind = BTreeMap::new();
            for c in all.iter().filter(|c| !c.ok) {
                if let Some(kind) = c.error_kind {
                    *failures_by_kind.entry(kind).or_insert(0) += 1;
                }
            }
            let mut metrics = BTreeMap::new();
            for metric in Metric::ALL {
                let Some(sample) = samples.sample(&arm.name, variant, metric) else {
                    continue;
                };
                metrics.insert(
                    metric,
                    MetricSummary {
                        per_trial: sample.describe(),
                        pooled: if metric.is_time() {
                            pooled(&ok, metric)
                        } else {
                            None
                        },
                    },
                );
            }
            let tokens = ok.iter().filter_map(|c| c.output_tokens.map(|n| n as f64));
            let conditions = samples.conditions(&arm.name, variant);
            groups.push(GroupSummary {
                arm: arm.name.clone(),
                variant: variant.to_owned(),
                trials: ok.iter().map(|c| c.trial).collect::<BTreeSet<_>>().len(),
                calls: all.len(),
                failed_calls: all.len() - ok.len(),
                failures_by_kind,
                cold_calls: conditions.cold,
                new_connection_calls: conditions.new_connections,
                retried_calls: all.iter().filter(|c| c.attempts > 1 || c.resent).count(),
                output_tokens_mean: Sample::new(tokens).map(|s| s.mean()),
                metrics,
            });
        }
    }

    let comparisons = compare_all(meta, samples, &groups);
    let (servers, server_disagreements) = servers::servers(&comparisons, samples, trials);
    let concurrency = concurrency::concurrency(meta, &groups, samples, calls, trials);
    let drift = drift::drift(&meta.arms, samples);
    let drift_warning = drift::drift_warning(&drift, meta.order);
    let (serving, saturation, schedule_warning) = serving::serving(meta, &groups, calls);
    let (loaded, loaded_warnings) = loaded::loaded(meta, trials);
    let (server, server_warnings) = server::server(trials, calls);
    let sequential = meta
        .stopping
        .as_ref()
        .map(|(rule, max)| sequential::sequential(rule, *max, calls, trials, meta.slo.as_ref()));
    let ran: BTreeSet<u32> = trials.iter().map(|t| t.trial).collect();
    // A run its rule stopped is complete: the rounds it skipped were never needed.
    let stopped = sequential.as_ref().is_some_and(|s| s.stopped_early);
    Summary {
        scenario: meta.scenario.clone(),
        simulated: meta.simulated,
        complete: ran.len() >= meta.planned_trials || stopped,
        planned_trials: meta.planned_trials,
        measured_trials: trials.iter().filter(|t| t.phase == Phase::Measured).count(),
        baseline: meta.baseline.clone(),
        setup: meta.setup.clone(),
        order: meta.order,
        alpha: ALPHA,
        confidence: CONFIDENCE,
        definitions: definitions(),
        groups,
        comparisons,
        concurrency,
        drift,
        drift_warning,
        jobs: jobs::jobs(&meta.arms, calls, trials),
        serving,
        saturation,
        slo: meta.slo,
        schedule_warning,
        loaded,
        loaded_warnings,
        server,
        server_warnings,
        sequential,
        servers,
        server_disagreements,
    }
}

/// Every (arm, variant ≠ baseline, metric) with a baseline counterpart, and, in an arm
/// that runs both, the variant against the baseline in the same trials; Holm-adjusted
/// together.
fn compare_all(
    meta: &RunMeta,
    samples: &RunSamples,
    groups: &[GroupSummary],
) -> Vec<ComparisonRow> {
    let tokens = |arm: &str, variant: &str| {
        groups
            .iter()
            .find(|g| g.arm == arm && g.variant == variant)
            .and_then(|g| g.output_tokens_mean)
    };
    let baseline = meta.baseline.as_str();
    // The row of `variant` in `arm` against the baseline in `base_arm`, once its
    // statistics are known.
    let row = |metric: Metric,
               arm: &str,
               variant: &str,
               base_arm: &str,
               paired: bool,
               stats: Comparison,
               means: (f64, f64)| {
        let (vf, vn) = samples.failures(arm, variant);
        let (bf, bn) = samples.failures(base_arm, baseline);
        let (vc, bc) = (
            samples.conditions(arm, variant),
            samples.conditions(base_arm, baseline),
        );
        ComparisonRow {
            metric,
            direction: metric.direction(),
            arm: arm.to_owned(),
            variant: variant.to_owned(),
            baseline_arm: base_arm.to_owned(),
            paired,
            baseline: baseline.to_owned(),
            variant_mean: means.0,
            baseline_mean: means.1,
            stats,
            variant_conditions: vc,
            baseline_conditions: bc,
            holm_p: None,
            verdict: Verdict::Undetermined,
            failure_warning: failure_warning((variant, vf, vn), (baseline, bf, bn)),
            length_warning: match (tokens(arm, variant), tokens(base_arm, baseline)) {
                (Some(v), Some(b)) => length_warning(metric, (variant, v), (baseline, b)),
                _ => None,
            },
            confound_warning: confound_warning((variant, &vc), (baseline, &bc)),
        }
    };
    let mut rows = Vec::new();
    for metric in Metric::ALL {
        for arm in &meta.arms {
            for variant in arm.distinct_variants() {
                if variant == baseline {
                    continue;
                }
                if let Some(base_arm) = arm.counterpart(variant, baseline, &meta.arms) {
                    if let (Some(x), Some(y)) = (
                        samples.sample(&arm.name, variant, metric),
                        samples.sample(&base_arm.name, baseline, metric),
                    ) {
                        let seed = mix64(
                            meta.seed
                                ^ hash_bytes(format!("{metric}/{}/{variant}", arm.name).as_bytes()),
                        );
                        let stats = compare(x, y, CONFIDENCE, DEFAULT_RESAMPLES, seed);
                        rows.push(row(
                            metric,
                            &arm.name,
                            variant,
                            &base_arm.name,
                            false,
                            stats,
                            (x.mean(), y.mean()),
                        ));
                    }
                }
                // An arm-level metric has one value per trial for all its variants.
                if arm.variants.iter().any(|v| v == baseline) && !metric.is_per_arm() {
                    let pairs = samples.pairs(&arm.name, variant, baseline, metric);
                    if let Some(stats) = compare_paired(&pairs, CONFIDENCE) {
                        let mean = |f: fn(&(f64, f64)) -> f64| {
                            pairs.iter().map(f).sum::<f64>() / pairs.len() as f64
                        };
                        rows.push(row(
                            metric,
                            &arm.name,
                            variant,
                            &arm.name,
                            true,
                            stats,
                            (mean(|p| p.0), mean(|p| p.1)),
                        ));
                    }
                }
            }
        }
    }
    let tested: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].stats.welch.is_some())
        .collect();
    let raw: Vec<f64> = tested
        .iter()
        .filter_map(|&i| rows[i].stats.welch.map(|w| w.p))
        .collect();
    for (&i, adjusted) in tested.iter().zip(holm(&raw)) {
        let row = &mut rows[i];
        row.holm_p = Some(adjusted);
        row.verdict = match row.stats.ratio {
            Some(r) if adjusted < ALPHA => {
                if (r.ratio > 1.0) == (row.direction == Direction::HigherIsBetter) {
                    Verdict::Faster
                } else {
                    Verdict::Slower
                }
            }
            _ => Verdict::NoSignificantDifference,
        };
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Arm;

    fn arm(variants: &[&str]) -> Arm {
        Arm::new(variants.iter().map(|v| v.to_string()).collect())
    }

    fn call(trial: u32, arm: &str, variant: &str, decode_tps: f64, ttft_ms: f64) -> CallRecord {
        serde_json::from_value(serde_json::json!({
            "trial": trial, "round": trial, "phase": "measured", "arm": arm, "variant": variant,
            "slot": 0, "agent": "a", "step": "analysis", "started_at": "t", "offset_ms": 0.0,
            "ok": true, "error_kind": null, "error": null, "ttft_ms": ttft_ms, "e2e_ms": 2.0 * ttft_ms,
            "itl_mean_ms": null, "itl_p50_ms": null, "itl_p95_ms": null, "itl_max_ms": null,
            "tpot_ms": null, "output_tokens": 10, "tokens_counted": false, "prompt_tokens": 5,
            "content_chunks": 10, "load_ms": 0.0, "prompt_eval_ms": 1.0, "eval_ms": 1.0,
            "server_total_ms": 2.0, "decode_tps": decode_tps, "e2e_tps": 1.0, "queue_ms": 0.0,
            "cold": false, "response_chars": 10
        }))
        .expect("a valid call record")
    }

    /// A run of the baseline's solo arm and `variant`'s, 12 trials planned.
    fn two_arms(variant: &str) -> RunMeta {
        RunMeta {
            scenario: "s".into(),
            seed: 1,
            baseline: "baseline".into(),
            arms: vec![arm(&["baseline"]), arm(&[variant])],
            simulated: true,
            planned_trials: 12,
            order: Some(Order::Interleaved),
            setup: RunSetup::default(),
            slo: None,
            stopping: None,
        }
    }

    /// Six rounds of the baseline's solo arm (decode 100 + j tok/s, TTFT 50 + j ms) and
    /// `variant`'s, whose (decode, TTFT) `values(j)` gives, with j = 0, 1, 2, 0, … a little
    /// spread so that every test is defined.
    fn six_rounds(variant: &str, values: impl Fn(f64) -> (f64, f64)) -> Vec<CallRecord> {
        let mut calls = Vec::new();
        for t in 0..6u32 {
            let j = f64::from(t % 3);
            calls.push(call(2 * t, "baseline", "baseline", 100.0 + j, 50.0 + j));
            let (decode, ttft) = values(j);
            calls.push(call(2 * t + 1, variant, variant, decode, ttft));
        }
        calls
    }

    #[test]
    fn a_length_dependent_comparison_says_when_output_lengths_differ() {
        let meta = two_arms("terse");
        // terse generates half as many tokens per call.
        let mut calls = six_rounds("terse", |j| (100.0 - j, 50.0 - j));
        for c in calls.iter_mut().filter(|c| c.variant == "terse") {
            c.output_tokens = Some(5);
        }
        let s = summarize(&meta, &calls, &[]);
        for row in &s.comparisons {
            match row.metric {
                Metric::E2eMs | Metric::E2eTps => {
                    let w = row.length_warning.as_deref().unwrap_or_default();
                    assert!(
                        w.contains("terse generated 5 tokens per call, baseline 10"),
                        "{w}"
                    );
                }
                _ => assert_eq!(row.length_warning, None, "{:?}", row.metric),
            }
        }
        // Within the tolerance (21 against 20 tokens), no warning.
        for c in &mut calls {
            c.output_tokens = Some(if c.variant == "terse" { 21 } else { 20 });
        }
        let s = summarize(&meta, &calls, &[]);
        assert!(s.comparisons.iter().all(|r| r.length_warning.is_none()));
    }

    #[test]
    fn verdicts_follow_the_metric_direction_and_holm() {
        let meta = two_arms("fast");
        // fast decodes 30% faster; TTFT is the same up to noise.
        let calls = six_rounds("fast", |j| (130.0 + j, 52.0 - j));
        let s = summarize(&meta, &calls, &[]);
        assert!(
            !s.complete,
            "no trial records: nothing of the plan is known to have run"
        );
        let by = |m: Metric| s.comparisons.iter().find(|c| c.metric == m).unwrap();
        assert_eq!(by(Metric::DecodeTps).verdict, Verdict::Faster);
        assert_eq!(by(Metric::TtftMs).verdict, Verdict::NoSignificantDifference);
        // e2e_tps is the constant 1.0 on both sides: no spread, no test.
        assert_eq!(by(Metric::E2eTps).verdict, Verdict::Undetermined);
        assert_eq!(by(Metric::E2eTps).holm_p, None);
        // Holm over the tested ones only (decode, ttft, e2e): ≥ raw, ≤ 3 × raw.
        for c in s.comparisons.iter().filter(|c| c.holm_p.is_some()) {
            let raw = c.stats.welch.unwrap().p;
            assert!(c.holm_p.unwrap() >= raw && c.holm_p.unwrap() <= (3.0 * raw).min(1.0));
        }
        // A slower variant is called slower on a rate and on a time.
        let slow: Vec<CallRecord> = calls
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if c.variant == "fast" {
                    c.decode_tps = c.decode_tps.map(|d| d / 2.0);
                    c.ttft_ms = c.ttft_ms.map(|t| t * 3.0);
                }
                c
            })
            .collect();
        let s = summarize(&meta, &slow, &[]);
        let by = |m: Metric| s.comparisons.iter().find(|c| c.metric == m).unwrap();
        assert_eq!(by(Metric::DecodeTps).verdict, Verdict::Slower);
        assert_eq!(by(Metric::TtftMs).verdict, Verdict::Slower);
    }

    #[test]
    fn statistics_use_successful_calls_only() {
        let meta = two_arms("fast");
        let mut calls = six_rounds("fast", |j| (120.0 + j, 40.0 + j));
        let clean = summarize(&meta, &calls, &[]);
        // A failed call with absurd numbers in a trial of fast: counted, never averaged.
        let mut failed = call(1, "fast", "fast", 1e6, 1e6);
        failed.ok = false;
        failed.error_kind = Some(ErrorKind::StreamCut);
        calls.push(failed);
        let s = summarize(&meta, &calls, &[]);
        let fast = s.group("fast", "fast").unwrap();
        assert_eq!((fast.calls, fast.failed_calls), (7, 1));
        assert_eq!(fast.failures_by_kind.get(&ErrorKind::StreamCut), Some(&1));
        assert_eq!(fast.metrics, clean.group("fast", "fast").unwrap().metrics);
        let ratio = |s: &Summary| s.comparisons[0].stats.ratio;
        assert_eq!(ratio(&s), ratio(&clean));
        assert!(s.comparisons[0].failure_warning.is_some());
    }

    /// A run with arms `[baseline]`, `[fast]`, `[baseline, baseline]`, `[baseline, fast]`,
    /// in `order`.
    fn mixed(order: Order) -> RunMeta {
        RunMeta {
            arms: vec![
                arm(&["baseline"]),
                arm(&["fast"]),
                arm(&["baseline", "baseline"]),
                arm(&["baseline", "fast"]),
            ],
            order: Some(order),
            ..two_arms("fast")
        }
    }

    #[test]
    fn a_mixed_arm_compares_its_variants_paired_by_trial_and_flags_reloads() {
        let meta = mixed(Order::Interleaved);
        let mut calls = Vec::new();
        for t in 0..8u32 {
            // The server's speed swings ±30% from round to round; within a trial, fast
            // decodes 10% faster than the baseline beside it (± a little).
            let swing = [1.0, 1.3, 0.7, 1.2, 0.8, 1.25, 0.75, 1.1][t as usize];
            let wobble = 1.0 + 0.005 * f64::from(t % 3);
            let mut b = call(3 * t + 2, "baseline+fast", "baseline", 100.0 * swing, 80.0);
            let mut f = call(
                3 * t + 2,
                "baseline+fast",
                "fast",
                110.0 * swing * wobble,
                80.0,
            );
            // Both reload the model on every call in the mixed arm (they evict each other).
            b.cold = true;
            f.cold = true;
            calls.extend([b, f]);
            calls.push(call(
                3 * t,
                "baseline",
                "baseline",
                100.0,
                50.0 + f64::from(t % 3),
            ));
            calls.push(call(
                3 * t + 1,
                "fast",
                "fast",
                110.0 + f64::from(t % 2),
                50.0,
            ));
            let shared = 100.0 * (1.0 + 0.01 * f64::from(t % 3));
            calls.push(call(100 + t, "baseline+baseline", "baseline", shared, 80.0));
        }
        let s = summarize(&meta, &calls, &[]);
        let row = |arm: &str, paired: bool| {
            s.comparisons
                .iter()
                .find(|c| c.metric == Metric::DecodeTps && c.arm == arm && c.paired == paired)
                .unwrap()
        };
        let paired = row("baseline+fast", true);
        assert_eq!(paired.baseline_arm, "baseline+fast");
        assert_eq!((paired.stats.n_variant, paired.stats.n_baseline), (8, 8));
        assert_eq!(paired.verdict, Verdict::Faster);
        let r = paired.stats.ratio.unwrap();
        assert!(r.low > 1.09 && r.high < 1.12, "{r:?}");
        assert!(paired.stats.mann_whitney.is_none() && paired.confound_warning.is_none());
        // Against the baseline in [baseline, baseline], the mixed arm's fast calls all
        // reloaded and the baseline's none: confounded, and said so.
        let across = row("baseline+fast", false);
        assert_eq!(across.baseline_arm, "baseline+baseline");
        assert_eq!(across.variant_conditions.cold, 8);
        assert_eq!(across.baseline_conditions.cold, 0);
        let w = across.confound_warning.as_deref().unwrap_or_default();
        assert!(
            w.contains("8 of 8 of fast's calls reloaded the model, 0 of 8 of baseline's"),
            "{w}"
        );
        assert!(row("fast", false).confound_warning.is_none());
        // Paired rows join the Holm family.
        assert!(paired.holm_p.unwrap() > paired.stats.welch.unwrap().p);
    }

    #[test]
    fn drift_over_the_run_is_found_and_worse_when_arms_ran_in_sequence() {
        let calls_with = |drift: f64| {
            let mut calls = Vec::new();
            for t in 0..12u32 {
                let jitter = 1.0 + 0.01 * f64::from(t % 3);
                let factor = (1.0 + drift).powi(t as i32) * jitter;
                calls.push(call(
                    2 * t,
                    "baseline",
                    "baseline",
                    100.0 * factor,
                    50.0 * jitter,
                ));
                calls.push(call(
                    2 * t + 1,
                    "fast",
                    "fast",
                    120.0 * jitter,
                    50.0 * jitter,
                ));
            }
            calls
        };
        // The baseline loses 2% a round: its decode rate drifts, and so does e2e_tps.
        let s = summarize(&two_arms("fast"), &calls_with(-0.02), &[]);
        let drifting: Vec<&DriftRow> = s.drift.iter().filter(|d| d.drifting).collect();
        assert!(!drifting.is_empty());
        assert!(
            drifting.iter().all(|d| d.variant == "baseline"),
            "{drifting:?}"
        );
        let d = drifting
            .iter()
            .find(|d| d.metric == Metric::DecodeTps)
            .unwrap();
        assert!(d.low < -0.02 && d.high > -0.02 && d.high < 0.0, "{d:?}");
        let w = s.drift_warning.as_deref().unwrap();
        assert!(w.contains("hits every arm alike"), "{w}");
        let sequential = RunMeta {
            order: Some(Order::Sequential),
            ..two_arms("fast")
        };
        let s = summarize(&sequential, &calls_with(-0.02), &[]);
        let w = s.drift_warning.as_deref().unwrap();
        assert!(
            w.contains("order: sequential") && w.contains("interleaved"),
            "{w}"
        );
        // Without drift: tested, none flagged, no warning.
        let s = summarize(&sequential, &calls_with(0.0), &[]);
        assert!(!s.drift.is_empty() && s.drift.iter().all(|d| !d.drifting));
        assert_eq!(s.drift_warning, None);
    }

    /// A trial record of `arm` whose pipelines (one per variant) took `walls` ms.
    fn trial(trial: u32, round: u32, arm: &str, walls: &[(&str, f64)]) -> TrialRecord {
        let pipelines: Vec<serde_json::Value> = walls
            .iter()
            .enumerate()
            .map(|(slot, (v, w))| {
                serde_json::json!({ "variant": v, "slot": slot, "run_number": 1, "wall_ms": w,
                    "calls": 1, "failed_calls": 0, "decode_tps_mean": null, "ok": true })
            })
            .collect();
        let wall = walls.iter().map(|w| w.1).fold(0.0, f64::max);
        serde_json::from_value(serde_json::json!({
            "trial": trial, "round": round, "phase": "measured", "arm": arm,
            "variants": walls.iter().map(|w| w.0).collect::<Vec<_>>(),
            "started_at": "t", "wall_ms": wall, "pipelines": pipelines, "primed": false, "ok": true
        }))
        .expect("a valid trial record")
    }

    #[test]
    fn speedup_and_slowdowns_carry_intervals_that_cover_them() {
        let meta = RunMeta {
            arms: vec![arm(&["baseline"]), arm(&["baseline", "baseline"])],
            ..two_arms("fast")
        };
        let (mut calls, mut trials) = (Vec::new(), Vec::new());
        for r in 0..10u32 {
            // Alone an agent takes ~1000 ms; two together take ~1250 ms each (wall 1250):
            // speedup 2000/1250 = 1.6, each agent 1.25× slower, decoding at 0.8×. The noise
            // of each side averages to exactly 1 over the ten rounds.
            let noise = |k: u32| 1.0 + 0.01 * (f64::from(k % 5) - 2.0);
            let (alone, together) = (noise(r), noise(3 * r + 1));
            trials.push(trial(2 * r, r, "baseline", &[("baseline", 1000.0 * alone)]));
            trials.push(trial(
                2 * r + 1,
                r,
                "baseline+baseline",
                &[
                    ("baseline", 1250.0 * together),
                    ("baseline", 1250.0 * together),
                ],
            ));
            let mut solo = call(2 * r, "baseline", "baseline", 100.0 * alone, 50.0);
            solo.round = r;
            let mut shared = call(
                2 * r + 1,
                "baseline+baseline",
                "baseline",
                80.0 * together,
                50.0,
            );
            shared.round = r;
            calls.extend([solo, shared]);
        }
        let s = summarize(&meta, &calls, &trials);
        let c = &s.concurrency[0];
        assert_eq!(c.rounds, 10);
        let inside = |x: Option<f64>, ci: Option<[f64; 2]>, truth: f64| {
            let (x, [lo, hi]) = (x.unwrap(), ci.unwrap());
            assert!(lo <= x && x <= hi, "{x} outside [{lo}, {hi}]");
            assert!(lo < truth && truth < hi, "{truth} outside [{lo}, {hi}]");
            assert!((x - truth).abs() < 1e-9, "{x}");
            assert!(
                hi - lo < 0.05 * truth,
                "[{lo}, {hi}] is too wide for 2% noise"
            );
        };
        inside(c.speedup, c.speedup_ci, 1.6);
        inside(c.efficiency, c.efficiency_ci, 0.8);
        let b = &c.slowdown[0];
        inside(b.wall_ratio, b.wall_ratio_ci, 1.25);
        inside(b.decode_tps_ratio, b.decode_tps_ratio_ci, 0.8);
    }
}
