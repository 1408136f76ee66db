//! Regression gates: PASS, FAIL or INCONCLUSIVE for "is this variant slower than that one,
//! beyond what we tolerate?", with an exit code for CI.
//!
//! A gate bounds the ratio variant / baseline of one metric's per-trial values (geometric
//! means, Welch CI on logs, as in every comparison) by a threshold τ = 1 ± tolerance:
//!
//! - **FAIL** when the one-sided test of H0 "the ratio is not beyond τ" rejects at the
//!   gate's α after Holm's adjustment over the gates judged together, so that the chance
//!   of any false FAIL among them stays at most α (the true ratio exactly at τ is the
//!   worst case);
//! - **PASS** when the whole 95% CI lies on the good side of τ (an overall PASS needs every
//!   gate to pass, which needs no adjustment);
//! - **INCONCLUSIVE** otherwise: neither is shown, a side has fewer than the gate's minimum
//!   trials (never PASS on too little data), the variant failed more calls than what it is
//!   compared with (a PASS only), or the two sides ran under different conditions (reloads,
//!   new connections) and the gate does not say it accepts that.
//!
//! Within one run ([`within_run`]) a gate compares its variant with the baseline in the
//! arm that has the baseline in the variant's place; across runs ([`across_runs`]) it
//! compares the variant in the new run with the same variant, same arm, in the base run.
//!
//! What a gate declares ([`Gate`], [`Bound`]) is configuration and lives in `scenario`;
//! this module judges gates and explains the verdict. Writing `gate.md` and `gate.json` is
//! the `report` module's.

pub mod expr;
pub mod files;
pub mod power;
pub mod sequential;

use serde::{Deserialize, Serialize};

use crate::scenario::{Arm, Bound, Gate, Metric, threshold_text};
use crate::stats::compare::log_ratio;
use crate::stats::{CONFIDENCE, RatioCi, Sample, holm};
use crate::summary::{RunSamples, confound_warning};

/// What a gate says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GateVerdict {
    /// Within tolerance, with confidence.
    Pass,
    /// Not enough evidence either way.
    Inconclusive,
    /// Beyond tolerance, with confidence.
    Fail,
}

impl GateVerdict {
    /// Upper-case word.
    pub fn word(self) -> &'static str {
        match self {
            GateVerdict::Pass => "PASS",
            GateVerdict::Inconclusive => "INCONCLUSIVE",
            GateVerdict::Fail => "FAIL",
        }
    }
}

/// One evaluated gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate, as an expression.
    pub gate: String,
    /// Metric.
    pub metric: Metric,
    /// Variant judged, and its arm.
    pub variant: String,
    /// Arm of the variant.
    pub arm: String,
    /// What it was judged against, in words (`baseline in baseline`, `chimera in the base run`).
    pub against: String,
    /// Trials on the variant's side.
    pub n_variant: usize,
    /// Trials on the other side.
    pub n_baseline: usize,
    /// Ratio with its CI.
    pub ratio: Option<RatioCi>,
    /// The threshold τ.
    pub threshold: f64,
    /// Which side of τ is good.
    pub bound: Bound,
    /// One-sided p of H0 "the ratio is not beyond the threshold" (Welch's t on log
    /// values, shifted by ln τ).
    pub p: Option<f64>,
    /// `p` Holm-adjusted over the gates judged together.
    pub holm_p: Option<f64>,
    /// Set when the two sides ran under different conditions (reloads, new connections).
    #[serde(default)]
    pub confound_warning: Option<String>,
    /// α of this gate.
    pub alpha: f64,
    /// The verdict.
    pub verdict: GateVerdict,
    /// Why, in plain words.
    pub reason: String,
}

/// All gates of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// FAIL if any gate failed, else INCONCLUSIVE if any was, else PASS.
    pub verdict: GateVerdict,
    /// What was compared: `within one run` or `across runs`.
    pub mode: String,
    /// The results folder judged.
    pub results: String,
    /// The base results folder (across runs).
    pub base: Option<String>,
    /// Any side ran on the simulator.
    pub simulated: bool,
    /// Scenario differences accepted with `--force` (across runs).
    pub differences: Vec<String>,
    /// Every gate.
    pub gates: Vec<GateResult>,
    /// The stopping rule's looks, decision and anytime-valid interval, when the run had
    /// one (its gates are judged by such intervals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<crate::summary::SequentialSummary>,
}

impl GateReport {
    /// One line: the verdict and what drove it.
    pub fn headline(&self) -> String {
        let count = |v: GateVerdict| self.gates.iter().filter(|g| g.verdict == v).count();
        let n = self.gates.len();
        match self.verdict {
            GateVerdict::Fail => format!("FAIL: {} of {n} gates failed", count(GateVerdict::Fail)),
            GateVerdict::Inconclusive => format!(
                "INCONCLUSIVE: {} of {n} gates could not decide, none failed",
                count(GateVerdict::Inconclusive)
            ),
            GateVerdict::Pass => format!("PASS: all {n} gates passed"),
        }
    }
}

/// The two samples a gate weighs, or why there are none.
pub type GateSamples<'a> = Result<(&'a Sample, &'a Sample, String), String>;

/// Downgrades verdicts whose sides failed differently or ran under different conditions
/// (see [`within_run`]); judging again after another rule set a verdict keeps them.
pub(super) fn downgrade(
    results: &mut [GateResult],
    gates: &[Gate],
    arms: &[Arm],
    run: &RunSamples,
) {
    let base_arm = |g: &Gate| baseline_arm(g, arms);
    for (r, g) in results.iter_mut().zip(gates) {
        if let Ok(base_arm) = base_arm(g) {
            downgrade_if_failing(
                r,
                run.failures(g.arm(), &g.variant),
                run.failures(&base_arm.name, &g.baseline),
            );
            let warning = confound_warning(
                (&g.variant, &run.conditions(g.arm(), &g.variant)),
                (&g.baseline, &run.conditions(&base_arm.name, &g.baseline)),
            );
            downgrade_if_confounded(r, g, warning);
        }
    }
}

/// The arm a gate's variant is compared against within one run: the gate's arm with the
/// baseline in the variant's place; the reason in words when there is none.
pub fn baseline_arm<'a>(g: &Gate, arms: &'a [Arm]) -> Result<&'a Arm, String> {
    let arm = arms
        .iter()
        .find(|a| a.name == g.arm())
        .ok_or_else(|| format!("no arm `{}` in this run", g.arm()))?;
    if !arm.variants.contains(&g.variant) {
        return Err(format!("arm `{}` has no `{}`", arm.name, g.variant));
    }
    arm.counterpart(&g.variant, &g.baseline, arms)
        .ok_or_else(|| {
            format!(
                "no arm with `{}` in place of `{}` in `{}` to compare against",
                g.baseline, g.variant, arm.name
            )
        })
}

/// Evaluates `gates`, each with the samples `lookup` finds for it; Holm's adjustment runs
/// over the gates that got a p-value and have their minimum trials.
pub fn evaluate<'a>(gates: &[Gate], lookup: impl Fn(&Gate) -> GateSamples<'a>) -> Vec<GateResult> {
    let mut results: Vec<GateResult> = gates
        .iter()
        .map(|gate| {
            let mut result = GateResult {
                gate: gate.expression(),
                metric: gate.metric,
                variant: gate.variant.clone(),
                arm: gate.arm().to_owned(),
                against: String::new(),
                n_variant: 0,
                n_baseline: 0,
                ratio: None,
                threshold: gate.threshold,
                bound: gate.bound,
                p: None,
                holm_p: None,
                confound_warning: None,
                alpha: gate.alpha,
                verdict: GateVerdict::Inconclusive,
                reason: String::new(),
            };
            match lookup(gate) {
                Err(why) => result.reason = why,
                Ok((x, y, against)) => {
                    result.against = against;
                    result.n_variant = x.len();
                    result.n_baseline = y.len();
                    if let Some((ratio, welch)) = log_ratio(x, y, CONFIDENCE) {
                        result.ratio = Some(ratio);
                        let below = gate.bound == Bound::AtLeast;
                        result.p = Some(welch.one_sided_p(gate.threshold.ln(), below));
                    }
                }
            }
            result
        })
        .collect();
    let enough = |r: &GateResult, g: &Gate| r.n_variant.min(r.n_baseline) >= g.min_trials;
    let tested: Vec<usize> = (0..results.len())
        .filter(|&i| results[i].p.is_some() && enough(&results[i], &gates[i]))
        .collect();
    let raw: Vec<f64> = tested.iter().filter_map(|&i| results[i].p).collect();
    for (&i, adjusted) in tested.iter().zip(holm(&raw)) {
        results[i].holm_p = Some(adjusted);
    }
    for (result, gate) in results.iter_mut().zip(gates) {
        if result.reason.is_empty() {
            (result.verdict, result.reason) = judge(gate, result);
        }
    }
    results
}

/// The verdict of one gate with its numbers in place, and why.
fn judge(gate: &Gate, r: &GateResult) -> (GateVerdict, String) {
    let min = gate.min_trials;
    if r.n_variant < min || r.n_baseline < min {
        return (
            GateVerdict::Inconclusive,
            format!(
                "{} vs {} trials; the gate needs at least {min} a side",
                r.n_variant, r.n_baseline
            ),
        );
    }
    let Some(ci) = r.ratio else {
        return (
            GateVerdict::Inconclusive,
            "no ratio CI (a value is not positive, or neither side varies)".to_owned(),
        );
    };
    let tau = gate.threshold;
    let change = match gate.tolerance() {
        t if t.is_empty() => "no-change".to_owned(),
        t => t,
    };
    let bound = format!(
        "the {change} bound (ratio {} {})",
        gate.bound.symbol(),
        threshold_text(tau)
    );
    let interval = format!("ratio {:.3}, CI [{:.3}, {:.3}]", ci.ratio, ci.low, ci.high);
    let (good_side, bad_side) = match gate.bound {
        Bound::AtLeast => ("above", "below"),
        Bound::AtMost => ("below", "above"),
    };
    let good = match gate.bound {
        Bound::AtLeast => ci.low >= tau,
        Bound::AtMost => ci.high <= tau,
    };
    let test = match (r.p, r.holm_p) {
        (Some(p), Some(h)) => format!(
            "one-sided p {} against \"not {bad_side} {}\", Holm-adjusted p {}",
            p_text(p),
            threshold_text(tau),
            p_text(h)
        ),
        _ => "no test".to_owned(),
    };
    let significant = r.holm_p.is_some_and(|p| p < gate.alpha);
    if good {
        (
            GateVerdict::Pass,
            format!("{interval} lies {good_side} {bound}"),
        )
    } else if significant {
        (
            GateVerdict::Fail,
            format!(
                "{interval}: {bad_side} {bound} with confidence: {test}, below α = {}",
                gate.alpha
            ),
        )
    } else {
        (
            GateVerdict::Inconclusive,
            format!(
                "{interval} is neither shown {good_side} nor {bad_side} {bound}: {test}, not below α = {}",
                gate.alpha
            ),
        )
    }
}

/// A p-value's relation in a sentence: `= 0.012`, `< 0.001`.
fn p_text(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".to_owned()
    } else {
        format!("= {p:.3}")
    }
}

/// A verdict on two sides that ran under different conditions is not a verdict on the
/// variant, unless the gate says it accepts that.
fn downgrade_if_confounded(r: &mut GateResult, gate: &Gate, warning: Option<String>) {
    r.confound_warning = warning;
    let Some(w) = &r.confound_warning else { return };
    if gate.accept_confounded || r.verdict == GateVerdict::Inconclusive {
        return;
    }
    r.reason = format!(
        "{}; but the sides are {w}: INCONCLUSIVE unless the gate accepts it (`accept_confounded: true`, or --accept-confounded)",
        r.reason
    );
    r.verdict = GateVerdict::Inconclusive;
}

/// A PASS for a variant that failed more often than what it was compared with is not a
/// pass: the statistics saw only its successful calls.
fn downgrade_if_failing(r: &mut GateResult, variant: (usize, usize), baseline: (usize, usize)) {
    let rate = |(f, n): (usize, usize)| if n == 0 { 0.0 } else { f as f64 / n as f64 };
    if r.verdict == GateVerdict::Pass && rate(variant) > rate(baseline) {
        r.verdict = GateVerdict::Inconclusive;
        r.reason = format!(
            "{}; but it failed {} of {} calls against {} of {}, and the statistics use successful calls only",
            r.reason, variant.0, variant.1, baseline.0, baseline.1
        );
    }
}

/// Gates within one run: each variant against the baseline in the arm with the baseline
/// in the variant's place.
pub fn within_run(gates: &[Gate], arms: &[Arm], run: &RunSamples) -> Vec<GateResult> {
    let base_arm = |g: &Gate| baseline_arm(g, arms);
    let mut results = evaluate(gates, |g| {
        let base_arm = base_arm(g)?;
        let get = |a: &str, v: &str| {
            run.sample(a, v, g.metric)
                .ok_or_else(|| format!("no successful measured calls of `{v}` in `{a}`"))
        };
        Ok((
            get(g.arm(), &g.variant)?,
            get(&base_arm.name, &g.baseline)?,
            format!("{} in {}", g.baseline, base_arm.name),
        ))
    });
    downgrade(&mut results, gates, arms, run);
    results
}

/// Gates across runs: the variant in the new run against the same variant, same arm, in
/// the base run.
pub fn across_runs(gates: &[Gate], new: &RunSamples, base: &RunSamples) -> Vec<GateResult> {
    let mut results = evaluate(gates, |g| {
        let x = new
            .sample(g.arm(), &g.variant, g.metric)
            .ok_or_else(|| format!("no `{}` in `{}` in the new run", g.variant, g.arm()))?;
        let y = base
            .sample(g.arm(), &g.variant, g.metric)
            .ok_or_else(|| format!("no `{}` in `{}` in the base run", g.variant, g.arm()))?;
        Ok((
            x,
            y,
            format!("{} in {} of the base run", g.variant, g.arm()),
        ))
    });
    for (r, g) in results.iter_mut().zip(gates) {
        downgrade_if_failing(
            r,
            new.failures(g.arm(), &g.variant),
            base.failures(g.arm(), &g.variant),
        );
        let (this, before) = (
            format!("{} now", g.variant),
            format!("{} before", g.variant),
        );
        let warning = confound_warning(
            (&this, &new.conditions(g.arm(), &g.variant)),
            (&before, &base.conditions(g.arm(), &g.variant)),
        );
        downgrade_if_confounded(r, g, warning);
    }
    results
}

/// The overall verdict: the worst of the gates (no gates: PASS).
pub fn overall(results: &[GateResult]) -> GateVerdict {
    results
        .iter()
        .map(|r| r.verdict)
        .max()
        .unwrap_or(GateVerdict::Pass)
}
