//! `harness gate` and `harness compare` on results folders: read the records and evaluate
//! the gates (the `report` module writes `gate.md` and `gate.json`).

use std::collections::BTreeSet;
use std::path::Path;

use super::{GateReport, across_runs, overall, within_run};
use sha2::{Digest, Sha256};

use crate::results::{RunRecords, RunServer, RunSetup, load};
use crate::scenario::{Bound, DEFAULT_ALPHA, DEFAULT_MIN_TRIALS, Gate, Metric};
use crate::summary::RunSamples;

/// Tolerance of the gates `harness compare` makes up when none is given: 5%.
pub const DEFAULT_COMPARE_TOLERANCE: f64 = 0.05;

/// Gates from the command line, and overrides for them.
#[derive(Debug, Clone, Default)]
pub struct GateOptions {
    /// `--gate` expressions.
    pub expressions: Vec<String>,
    /// `--min-trials` for those gates.
    pub min_trials: Option<usize>,
    /// `--alpha` for those gates.
    pub alpha: Option<f64>,
    /// `--accept-confounded`: judge every gate (the scenario's too) even when its sides
    /// ran under different conditions.
    pub accept_confounded: bool,
}

impl GateOptions {
    /// The command-line gates, parsed, with the overrides applied.
    pub fn gates(&self) -> anyhow::Result<Vec<Gate>> {
        if let Some(a) = self.alpha {
            anyhow::ensure!(a > 0.0 && a <= 0.5, "--alpha {a} must lie in (0, 0.5]");
        }
        if let Some(n) = self.min_trials {
            anyhow::ensure!(n >= 2, "--min-trials {n} must be at least 2");
        }
        self.expressions
            .iter()
            .map(|e| {
                let mut gate = super::expr::parse(e).map_err(anyhow::Error::msg)?;
                gate.alpha = self.alpha.unwrap_or(DEFAULT_ALPHA);
                gate.min_trials = self.min_trials.unwrap_or(DEFAULT_MIN_TRIALS);
                gate.accept_confounded = self.accept_confounded;
                Ok(gate)
            })
            .collect()
    }
}

/// A gate on an arm named without its load level (`chimera`, or no arm at all in a run of
/// load levels) is judged at every level, as a scenario's gate is.
fn at_every_level(gates: Vec<Gate>, run: &RunRecords) -> Vec<Gate> {
    let arms = &run.meta.arms;
    gates
        .into_iter()
        .flat_map(|g| {
            let levels: Vec<&str> = arms
                .iter()
                .filter(|a| a.load.is_some() && a.base_name() == g.arm())
                .map(|a| a.name.as_str())
                .collect();
            if levels.is_empty() || arms.iter().any(|a| a.name == g.arm()) {
                return vec![g];
            }
            levels
                .into_iter()
                .map(|arm| Gate {
                    arm: Some(arm.to_owned()),
                    ..g.clone()
                })
                .collect()
        })
        .collect()
}

/// Command-line gates must name variants and arms the run has: a typo is an error, not an
/// INCONCLUSIVE that a CI job would wave through.
fn check_names(gates: &[Gate], run: &RunRecords, across: bool) -> anyhow::Result<()> {
    let variants: BTreeSet<&str> = run
        .meta
        .arms
        .iter()
        .flat_map(|a| a.variants.iter().map(String::as_str))
        .collect();
    let listed = || variants.iter().copied().collect::<Vec<_>>().join(", ");
    for g in gates {
        let mut names = vec![g.variant.as_str()];
        if !across {
            names.push(&g.baseline);
        }
        for name in names {
            anyhow::ensure!(
                variants.contains(name),
                "gate `{}`: no variant `{name}` in this run (variants: {})",
                g.expression(),
                listed()
            );
        }
        anyhow::ensure!(
            run.meta.arms.iter().any(|a| a.name == g.arm()),
            "gate `{}`: no arm `{}` in this run (arms: {})",
            g.expression(),
            g.arm(),
            run.meta
                .arms
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Evaluates the scenario's gates and the command-line ones within the run in `dir`.
pub fn gate_dir(dir: &Path, options: &GateOptions) -> anyhow::Result<GateReport> {
    gate_records(dir, &load(dir)?, options)
}

/// The gates of a run: the scenario's and the command line's, each at every load level it
/// names, with the overrides applied.
pub fn run_gates(run: &RunRecords, options: &GateOptions) -> anyhow::Result<Vec<Gate>> {
    let extra = at_every_level(options.gates()?, run);
    check_names(&extra, run, false)?;
    let mut gates = run.gates.clone();
    if options.accept_confounded {
        gates.iter_mut().for_each(|g| g.accept_confounded = true);
    }
    gates.extend(extra);
    Ok(gates)
}

/// [`gate_dir`] with the folder's records already read.
pub fn gate_records(
    dir: &Path,
    run: &RunRecords,
    options: &GateOptions,
) -> anyhow::Result<GateReport> {
    let gates = run_gates(run, options)?;
    anyhow::ensure!(
        !gates.is_empty(),
        "no gates to evaluate: declare `gates:` in the scenario or pass --gate, e.g. --gate 'decode_tps:chimera>=baseline-5%'"
    );
    let samples = RunSamples::of(&run.meta, &run.calls, &run.trials);
    let mut results = within_run(&gates, &run.meta.arms, &samples);
    if let Some((rule, max)) = &run.meta.stopping {
        super::sequential::judge_anytime(&mut results, &gates, run, rule, *max);
        super::downgrade(&mut results, &gates, &run.meta.arms, &samples);
    }
    let report = GateReport {
        verdict: overall(&results),
        mode: "within one run".to_owned(),
        results: dir.display().to_string(),
        base: None,
        simulated: run.meta.simulated,
        differences: Vec::new(),
        gates: results,
        sequential: run.meta.stopping.as_ref().map(|(rule, max)| {
            crate::summary::sequential::sequential(
                rule,
                *max,
                &run.calls,
                &run.trials,
                run.meta.slo.as_ref(),
            )
        }),
    };
    Ok(report)
}

/// What differs between two runs' variants (model, options, keep_alive) or backends,
/// in words.
pub fn differences(base: &RunRecords, new: &RunRecords) -> Vec<String> {
    let mut out = Vec::new();
    if base.meta.simulated != new.meta.simulated {
        let what = |s: bool| if s { "the simulator" } else { "a real server" };
        out.push(format!(
            "the base run used {}, the new one {}",
            what(base.meta.simulated),
            what(new.meta.simulated)
        ));
    }
    out.extend(setup_differences(&base.meta.setup, &new.meta.setup));
    for (name, b) in &base.variants {
        let Some(n) = new.variants.get(name) else {
            continue;
        };
        for key in ["model", "options", "keep_alive"] {
            if b.get(key) != n.get(key) {
                let show = |v: Option<&serde_json::Value>| {
                    v.map_or_else(|| "nothing".to_owned(), |v| v.to_string())
                };
                out.push(format!(
                    "variant `{name}`: {key} {} in the base run, {} in the new one",
                    show(b.get(key)),
                    show(n.get(key))
                ));
            }
        }
    }
    out
}

/// What differs between the workloads, agents, servers and prompts of two runs, where
/// both manifests say.
fn setup_differences(base: &RunSetup, new: &RunSetup) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, b: Option<String>, n: Option<String>| {
        if let (Some(b), Some(n)) = (b, n) {
            if b != n {
                out.push(format!("{what} {b} in the base run, {n} in the new one"));
            }
        }
    };
    differ(
        "the workload is",
        base.workload.as_ref().map(|w| w.to_string()),
        new.workload.as_ref().map(|w| w.to_string()),
    );
    // Personas are long: name them by a hash.
    let agents = |s: &RunSetup| {
        s.agents.as_ref().map(|agents| {
            let listed: Vec<String> = agents
                .iter()
                .map(|a| {
                    let persona = format!("{:x}", Sha256::digest(a.persona.as_bytes()));
                    let consumes = a
                        .consumes
                        .as_ref()
                        .map(|c| format!(", reads {c}"))
                        .unwrap_or_default();
                    let shape = if a.shape.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", serde_json::to_string(&a.shape).unwrap_or_default())
                    };
                    format!("{} (persona {}{consumes}{shape})", a.name, &persona[..12])
                })
                .collect();
            listed.join(", ")
        })
    };
    differ("the agents are", agents(base), agents(new));
    let server = |s: &RunSetup, f: fn(&RunServer) -> &Option<String>| {
        s.server.as_ref().and_then(|v| f(v).clone())
    };
    differ(
        "the server is",
        server(base, |s| &s.version),
        server(new, |s| &s.version),
    );
    differ(
        "the model's digest is",
        server(base, |s| &s.model_digest),
        server(new, |s| &s.model_digest),
    );
    differ(
        "the prompts come from harness",
        base.harness_version.clone(),
        new.harness_version.clone(),
    );
    out
}

/// Gates every (arm, variant) both runs have, on every metric it measures, with the metric's own
/// bound and a 5% tolerance: what `harness compare` judges when no gate is given.
fn default_compare_gates(base: &RunRecords, new: &RunRecords) -> Vec<Gate> {
    let mut gates = Vec::new();
    for metric in Metric::ALL {
        for arm in &new.meta.arms {
            if !base.meta.arms.iter().any(|a| a.name == arm.name) {
                continue;
            }
            if !arm.measures(metric) {
                continue;
            }
            for variant in arm.distinct_variants() {
                let bound = Bound::for_metric(metric);
                gates.push(Gate {
                    metric,
                    variant: variant.to_owned(),
                    arm: (arm.name != variant).then(|| arm.name.clone()),
                    baseline: variant.to_owned(),
                    bound,
                    threshold: bound.threshold(DEFAULT_COMPARE_TOLERANCE),
                    alpha: DEFAULT_ALPHA,
                    min_trials: DEFAULT_MIN_TRIALS,
                    accept_confounded: false,
                });
            }
        }
    }
    gates
}

/// Compares the run in `new` against the run in `base`, variant by variant and arm by
/// arm. Refuses runs whose variants differ unless `force`.
pub fn compare_dirs(
    base: &Path,
    new: &Path,
    options: &GateOptions,
    force: bool,
) -> anyhow::Result<GateReport> {
    let (base_run, new_run) = (load(base)?, load(new)?);
    let differences = differences(&base_run, &new_run);
    if !differences.is_empty() && !force {
        anyhow::bail!(
            "the runs are not comparable:\n  - {}\nPass --force to compare them anyway.",
            differences.join("\n  - ")
        );
    }
    let mut gates = at_every_level(options.gates()?, &new_run);
    check_names(&gates, &new_run, true)?;
    if gates.is_empty() {
        gates = new_run.gates.clone();
    }
    if gates.is_empty() {
        gates = default_compare_gates(&base_run, &new_run);
    }
    // Across runs a variant is judged against itself in the base run.
    for g in &mut gates {
        g.baseline = g.variant.clone();
        g.accept_confounded |= options.accept_confounded;
    }
    let results = across_runs(
        &gates,
        &RunSamples::of(&new_run.meta, &new_run.calls, &new_run.trials),
        &RunSamples::of(&base_run.meta, &base_run.calls, &base_run.trials),
    );
    let report = GateReport {
        verdict: overall(&results),
        mode: "across runs".to_owned(),
        results: new.display().to_string(),
        base: Some(base.display().to_string()),
        simulated: base_run.meta.simulated || new_run.meta.simulated,
        differences,
        gates: results,
        sequential: None,
    };
    Ok(report)
}
