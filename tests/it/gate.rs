//! Regression gates: verdicts and their reasons, and the `gate`, `compare` and `run --gate`
//! commands with every exit code (calibration is in `calibration.rs`).

use std::path::{Path, PathBuf};

use harness::gate::{GateReport, GateVerdict, evaluate};
use harness::scenario::Metric;
use harness::scenario::{Bound, Gate};
use harness::stats::Sample;

use crate::common::{harness, json, only_subdir, repo_root};

/// `decode_tps:chimera>=baseline-5%` with the defaults (α 0.05, 5 trials minimum).
fn decode_gate() -> Gate {
    harness::gate::expr::parse("decode_tps:chimera>=baseline-5%").unwrap()
}

#[test]
fn each_verdict_says_why_in_numbers() {
    let mut gate = decode_gate();
    gate.min_trials = 2;
    let base = Sample::new([100.0, 101.0, 99.0, 100.5]).unwrap();
    let check = |new: &[f64], want: GateVerdict, words: &str| {
        let new = Sample::new(new.iter().copied()).unwrap();
        let r = &evaluate(std::slice::from_ref(&gate), |_| {
            Ok((&new, &base, "baseline".to_owned()))
        })[0];
        assert_eq!(r.verdict, want, "{r:?}");
        assert!(r.reason.contains(words), "{}", r.reason);
        assert!(r.reason.contains("CI ["), "{}", r.reason);
    };
    check(
        &[80.0, 81.0, 79.5, 80.5],
        GateVerdict::Fail,
        "below the -5% bound (ratio >= 0.950) with confidence: one-sided p",
    );
    check(
        &[100.0, 101.5, 99.5, 100.0],
        GateVerdict::Pass,
        "lies above the -5% bound",
    );
    check(
        &[90.0, 100.0, 95.0, 99.0],
        GateVerdict::Inconclusive,
        "is neither shown above nor below the -5% bound",
    );
    // A bound that is not round is shown as it is, not rounded to three decimals.
    let mut odd = gate.clone();
    odd.threshold = 1.0 - 0.05016;
    let new = Sample::new([80.0, 81.0, 79.5, 80.5]).unwrap();
    let r = &evaluate(&[odd], |_| Ok((&new, &base, "baseline".to_owned())))[0];
    assert!(r.reason.contains("(ratio >= 0.94984)"), "{}", r.reason);
    let missing = &evaluate(&[gate.clone()], |_| Err("no data".to_owned()))[0];
    assert_eq!(missing.verdict, GateVerdict::Inconclusive);
    assert_eq!(gate.bound, Bound::AtLeast);
    assert_eq!(gate.metric, Metric::DecodeTps);
}

#[test]
fn a_ci_beyond_the_bound_is_not_a_fail_without_significance_after_holm() {
    // 1.5% slower against a no-change bound: alone, the one-sided p is about 0.009 and the
    // gate FAILs; judged with nine gates that pass easily, Holm multiplies it by ten, and
    // the gate is INCONCLUSIVE although its 95% CI still lies wholly below 1.
    let base = Sample::new([100.0, 101.0, 99.0, 100.5, 99.5]).unwrap();
    let slower = Sample::new(base.sorted().iter().map(|v| v * 0.985)).unwrap();
    let faster = Sample::new(base.sorted().iter().map(|v| v * 1.3)).unwrap();
    let gate = |v: &str| harness::gate::expr::parse(&format!("decode_tps:{v}>=baseline")).unwrap();
    let lookup = |g: &Gate| {
        let x = if g.variant == "v0" { &slower } else { &faster };
        Ok((x, &base, "baseline".to_owned()))
    };
    let alone = &evaluate(&[gate("v0")], lookup)[0];
    assert_eq!(alone.verdict, GateVerdict::Fail, "{}", alone.reason);
    assert!(alone.p.unwrap() < 0.01, "{:?}", alone.p);
    let gates: Vec<Gate> = (0..10).map(|i| gate(&format!("v{i}"))).collect();
    let together = &evaluate(&gates, lookup)[0];
    assert!(together.ratio.unwrap().high < 1.0, "{:?}", together.ratio);
    assert!((together.holm_p.unwrap() - 10.0 * alone.p.unwrap()).abs() < 1e-12);
    assert_eq!(
        together.verdict,
        GateVerdict::Inconclusive,
        "{}",
        together.reason
    );
    assert!(
        together.reason.contains("not below α = 0.05"),
        "{}",
        together.reason
    );
}

#[test]
fn alpha_sets_how_sure_a_fail_must_be() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture_copy(tmp.path(), "run");
    // baseline is ~18% slower than fast: beyond a 15% tolerance, but by little.
    let gate = "decode_tps:baseline>=fast-15%";
    let four = ["--min-trials", "4"];
    gate_cmd(&run, &[gate], &four).code(1);
    let p = json::<GateReport>(&run.join("gate.json")).gates[0]
        .holm_p
        .unwrap();
    assert!(p > 1e-6 && p < 0.05, "{p}");
    // With α below that p the same gate cannot FAIL.
    let alpha = format!("{}", p / 2.0);
    gate_cmd(&run, &[gate], &[&four[..], &["--alpha", &alpha]].concat()).code(0);
    let report: GateReport = json(&run.join("gate.json"));
    assert_eq!(report.gates[0].verdict, GateVerdict::Inconclusive);
    assert_eq!(report.gates[0].alpha, p / 2.0);
    // α outside (0, 0.5] is refused.
    gate_cmd(&run, &[gate], &["--alpha", "0.9"])
        .code(2)
        .stderr(predicates::str::contains(
            "--alpha 0.9 must lie in (0, 0.5]",
        ));
}

#[test]
fn a_variant_that_fails_more_often_cannot_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture_copy(tmp.path(), "run");
    let gate = ["decode_tps:fast>=baseline-5%"];
    let four = ["--min-trials", "4"];
    gate_cmd(&run, &gate, &four).code(0);
    assert_eq!(
        json::<GateReport>(&run.join("gate.json")).verdict,
        GateVerdict::Pass
    );
    // One of fast's solo calls fails: its successful calls are as fast as before, but the
    // gate no longer passes.
    let mut failed_one = false;
    edit_calls(&run, |v| {
        let solo_fast = v["arm"] == "fast" && v["phase"] == "measured" && v["step"] == "report";
        if solo_fast && !failed_one {
            failed_one = true;
            v["ok"] = serde_json::json!(false);
            v["error_kind"] = serde_json::json!("http");
            v["error"] = serde_json::json!("HTTP 500");
        }
    });
    assert!(failed_one);
    gate_cmd(&run, &gate, &four).code(0);
    let report: GateReport = json(&run.join("gate.json"));
    assert_eq!(report.gates[0].verdict, GateVerdict::Inconclusive);
    assert!(
        report.gates[0]
            .reason
            .contains("but it failed 1 of 16 calls against 0 of 16"),
        "{}",
        report.gates[0].reason
    );
}

#[test]
fn compare_refuses_a_simulated_run_against_a_real_one() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture_copy(tmp.path(), "base");
    let new = fixture_copy(tmp.path(), "new");
    replace_in(
        &base.join("manifest.json"),
        "\"simulated\": true",
        "\"simulated\": false",
    );
    harness()
        .arg("compare")
        .arg(&base)
        .arg(&new)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "the base run used a real server, the new one the simulator",
        ));
    assert!(!new.join("gate.json").exists());
    harness()
        .args(["compare", "--force"])
        .arg(&base)
        .arg(&new)
        .assert()
        .code(0);
    let report: GateReport = json(&new.join("gate.json"));
    assert!(report.simulated);
    assert!(
        report.differences[0].contains("a real server"),
        "{:?}",
        report.differences
    );
}

/// A copy of the results fixture (4 trials; `fast` decodes ~1.22× `baseline`).
fn fixture_copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    let from = repo_root().join("tests/data/results-fixture");
    for f in ["manifest.json", "calls.jsonl", "trials.jsonl"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    to
}

fn gate_cmd(dir: &Path, gates: &[&str], extra: &[&str]) -> assert_cmd::assert::Assert {
    let mut cmd = harness();
    cmd.arg("gate").arg(dir);
    for g in gates {
        cmd.args(["--gate", g]);
    }
    cmd.args(extra).assert()
}

#[test]
fn gate_exit_codes_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture_copy(tmp.path(), "run");
    let four = ["--min-trials", "4"];

    gate_cmd(&run, &["decode_tps:fast>=baseline-5%"], &four).code(0);
    let report: GateReport = json(&run.join("gate.json"));
    assert_eq!(report.verdict, GateVerdict::Pass);
    let md = std::fs::read_to_string(run.join("gate.md")).unwrap();
    assert!(md.starts_with("**PASS: all 1 gates passed**\n"), "{md}");
    assert!(
        md.contains("| decode_tps:fast>=baseline-5% | PASS | 4 vs 4 |"),
        "{md}"
    );

    // baseline against fast is ~18% slower: beyond a 5% tolerance.
    gate_cmd(
        &run,
        &[
            "decode_tps:baseline>=fast-5%",
            "decode_tps:fast>=baseline-5%",
        ],
        &four,
    )
    .code(1)
    .stdout(predicates::str::contains("FAIL: 1 of 2 gates failed"));
    let report: GateReport = json(&run.join("gate.json"));
    assert!(
        report.gates[0]
            .reason
            .contains("below the -5% bound (ratio >= 0.950) with confidence"),
        "{}",
        report.gates[0].reason
    );

    // Default minimum of 5 trials: the fixture's 4 are not enough.
    gate_cmd(&run, &["decode_tps:fast>=baseline-5%"], &[]).code(0);
    gate_cmd(
        &run,
        &["decode_tps:fast>=baseline-5%"],
        &["--fail-on-inconclusive"],
    )
    .code(3)
    .stdout(predicates::str::contains("needs at least 5"));

    for (bad, says) in [
        ("decode_tps:fast=>baseline", "expected `>=` or `<=`"),
        ("speed:fast>=baseline", "unknown metric `speed`"),
        ("decode_tps:fsat>=baseline", "no variant `fsat`"),
        ("decode_tps:fast@nope>=baseline", "no arm `nope`"),
    ] {
        gate_cmd(&run, &[bad], &[])
            .code(2)
            .stderr(predicates::str::contains(says));
    }
    // No gates anywhere: an error, not a silent pass.
    gate_cmd(&run, &[], &[])
        .code(2)
        .stderr(predicates::str::contains("no gates to evaluate"));
}

/// Rewrites a results folder's calls, scaling `variant`'s decode rate by `factor`.
fn scale_decode(dir: &Path, variant: &str, factor: f64) {
    edit_calls(dir, |v| {
        if v["variant"] == variant {
            if let Some(d) = v["decode_tps"].as_f64() {
                v["decode_tps"] = serde_json::json!(d * factor);
            }
        }
    });
}

/// Rewrites every call of the results folder `dir` with `edit`.
fn edit_calls(dir: &Path, mut edit: impl FnMut(&mut serde_json::Value)) {
    let path = dir.join("calls.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            edit(&mut v);
            v.to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// Replaces `from` (which must be there) with `to` in the file at `path`.
fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn compare_judges_a_new_run_against_a_base_run() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture_copy(tmp.path(), "base");
    let new = fixture_copy(tmp.path(), "new");
    scale_decode(&new, "fast", 0.8);
    harness()
        .args([
            "compare",
            "--min-trials",
            "4",
            "--gate",
            "decode_tps:fast>=fast-5%",
        ])
        .arg(&base)
        .arg(&new)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("FAIL: 1 of 1 gates failed"));
    let report: GateReport = json(&new.join("gate.json"));
    assert_eq!(report.mode, "across runs");
    // Every per-trial value of fast is the base's × 0.8: the ratio is 0.8 exactly, and the
    // Welch CI on logs, with equal variances and sizes, is 0.8 · exp(± t(0.975, 2n − 2) · se)
    // where se² = 2 · var(ln base) / n.
    let r = report.gates[0].ratio.unwrap();
    assert!((r.ratio - 0.8).abs() < 1e-12, "{r:?}");
    let run = harness::results::load(&base).unwrap();
    let samples = harness::summary::RunSamples::of(&run.meta, &run.calls, &run.trials);
    let logs = samples
        .sample("fast", "fast", Metric::DecodeTps)
        .unwrap()
        .ln()
        .unwrap();
    let n = logs.len() as f64;
    let se = (2.0 * logs.variance().unwrap() / n).sqrt();
    let q = {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        StudentsT::new(0.0, 1.0, 2.0 * n - 2.0)
            .unwrap()
            .inverse_cdf(0.975)
    };
    assert!((r.low - 0.8 * (-q * se).exp()).abs() < 1e-9, "{r:?}");
    assert!((r.high - 0.8 * (q * se).exp()).abs() < 1e-9, "{r:?}");

    // Without --gate: every (arm, variant) both runs have, every metric, 5% tolerance.
    // Nothing changed for baseline; fast's decode rate dropped.
    harness()
        .args(["compare"])
        .arg(&base)
        .arg(&new)
        .assert()
        .code(0)
        .stdout(predicates::str::contains("INCONCLUSIVE"));
    let report: GateReport = json(&new.join("gate.json"));
    assert_eq!(
        report.gates.len(),
        4 * Metric::ALL.iter().filter(|m| !m.needs_load()).count()
    );

    // The same variant name with other options is not the same experiment.
    replace_in(
        &new.join("manifest.json"),
        "\"num_ctx\": 1024",
        "\"num_ctx\": 2048",
    );
    harness()
        .arg("compare")
        .arg(&base)
        .arg(&new)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not comparable"))
        .stderr(predicates::str::contains("variant `fast`: options"))
        .stderr(predicates::str::contains("--force"));
    harness()
        .args(["compare", "--force"])
        .arg(&base)
        .arg(&new)
        .assert()
        .code(0);
    let md = std::fs::read_to_string(new.join("gate.md")).unwrap();
    assert!(md.contains("Compared despite differences"), "{md}");
}

/// Sets `value` at `path` (object keys) in a results folder's manifest.
fn set_in_manifest(dir: &Path, path: &[&str], value: serde_json::Value) {
    let file = dir.join("manifest.json");
    let mut manifest: serde_json::Value = json(&file);
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut manifest;
    for key in parents {
        at = &mut at[*key];
    }
    at[*last] = value;
    std::fs::write(&file, manifest.to_string()).unwrap();
}

#[test]
fn compare_refuses_runs_of_other_agents_workloads_or_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture_copy(tmp.path(), "base");
    let new = fixture_copy(tmp.path(), "new");
    let agents =
        |persona: &str| serde_json::json!([{"name": "a", "persona": persona, "consumes": null}]);
    let workload = serde_json::json!({"kind": "agent_report", "data_dir": "data"});
    let server = |version: &str| serde_json::json!({"version": version, "model_digest": "d1"});
    for dir in [&base, &new] {
        set_in_manifest(dir, &["scenario", "agents"], agents("You collect data."));
        set_in_manifest(dir, &["scenario", "workload"], workload.clone());
        set_in_manifest(dir, &["server"], server("0.5.1"));
    }
    let compare = || harness().arg("compare").arg(&base).arg(&new).assert();
    compare().code(0);
    for (path, value, says) in [
        (
            &["scenario", "agents"][..],
            agents("You write poems."),
            "the agents are a (persona ",
        ),
        (
            &["scenario", "workload"][..],
            serde_json::json!({"kind": "agent_report", "data_dir": "other"}),
            "the workload is",
        ),
        (
            &["server"][..],
            server("0.6.0"),
            "the server is 0.5.1 in the base run, 0.6.0 in the new one",
        ),
    ] {
        let before: serde_json::Value = json(&new.join("manifest.json"));
        set_in_manifest(&new, path, value);
        compare()
            .code(2)
            .stderr(predicates::str::contains("not comparable"))
            .stderr(predicates::str::contains(says));
        std::fs::write(new.join("manifest.json"), before.to_string()).unwrap();
    }
}

#[test]
fn run_with_gates_judges_the_run_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("gated.yaml");
    let text = format!(
        r#"
name: gated
seed: 3
model: m:latest
server: {{ backend: sim }}
sim: {{ decode_tps: 600, ctx_cost_per_1k: 0.07142857142857142, load_ms: 30, median_output_tokens: 30 }}
workload: {{ kind: agent_report, data_dir: {} }}
agents:
  collector: {{ persona: "You are a data collector. List findings." }}
variants:
  baseline: {{}}
  fast: {{ options: {{ num_ctx: 1024 }} }}
arms: [[baseline], [fast]]
trials: 6
warmup: 0
gates:
  - {{ metric: decode_tps, variant: fast, tolerance: 5% }}
"#,
        repo_root().join("scenarios/data").display()
    );
    std::fs::write(&scenario, text).unwrap();
    let out = dir.path().join("out");
    // The scenario's own gate passes (fast is 20% faster); the command line adds one
    // that demands the impossible of the baseline.
    harness()
        .arg("run")
        .arg(&scenario)
        .args(["-q", "--out"])
        .arg(&out)
        .args(["--gate", "decode_tps:baseline>=fast-5%"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("FAIL: 1 of 2 gates failed"));
    let run = only_subdir(&out);
    let report: GateReport = json(&run.join("gate.json"));
    let verdicts: Vec<GateVerdict> = report.gates.iter().map(|g| g.verdict).collect();
    assert_eq!(verdicts, [GateVerdict::Pass, GateVerdict::Fail]);
    // A bad expression stops the run before it starts.
    harness()
        .arg("run")
        .arg(&scenario)
        .args(["-q", "--out"])
        .arg(dir.path().join("never"))
        .args(["--gate", "decode_tps:fast>>baseline"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("malformed gate"));
    assert!(!dir.path().join("never").exists());
}

#[test]
fn gate_markdown_snapshot() {
    use harness::report::{Exporter, markdown::Markdown};
    let run = harness::results::load(&repo_root().join("tests/data/results-fixture")).unwrap();
    let samples = harness::summary::RunSamples::of(&run.meta, &run.calls, &run.trials);
    let gates: Vec<Gate> = [
        "decode_tps:fast>=baseline-5%",
        "ttft_ms:fast<=baseline+10%",
        "decode_tps:baseline>=fast-5%",
        "e2e_ms:fast@fast+fast<=baseline",
    ]
    .iter()
    .map(|e| {
        let mut g = harness::gate::expr::parse(e).unwrap();
        g.min_trials = 4;
        g
    })
    .collect();
    let results = harness::gate::within_run(&gates, &run.meta.arms, &samples);
    let report = GateReport {
        verdict: harness::gate::overall(&results),
        mode: "within one run".to_owned(),
        results: "tests/data/results-fixture".to_owned(),
        base: None,
        simulated: true,
        differences: Vec::new(),
        gates: results,
        sequential: None,
    };
    let md = String::from_utf8(Markdown.render(&report).unwrap()).unwrap();
    insta::assert_snapshot!(md);
}
