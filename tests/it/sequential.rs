//! Proof by simulation that the sequential rule (`stats::sequential`) keeps its promises:
//! over thousands of seeded experiments, how often it declares a difference that is not
//! there, or equivalence at the tolerance bound; how often it finds a real change; and how
//! many rounds it used, against the fixed design of the same power.
//!
//! `cargo test --release --test it sequential::simulation -- --ignored --nocapture`
//! prints the table the README shows.

use harness::rng::Rng;
use harness::stats::power::{fewest_trials, log_test_power};
use harness::stats::sequential::{Decision, looks};

/// Experiments per row.
const EXPERIMENTS: usize = 4000;
/// Per-round spread of the log ratio: two arms' per-trial decode rates with a 2.8% spread
/// each, as in the flagship demo.
const SD: f64 = 0.04;
const TOLERANCE: f64 = 0.05;
const ALPHA: f64 = 0.05;
const MAX_ROUNDS: usize = 40;

struct Row {
    truth: &'static str,
    ratio: f64,
    faster: f64,
    slower_beyond: f64,
    equivalent: f64,
    undetermined: f64,
    mean_rounds: f64,
}

fn run(truth: &'static str, ratio: f64, seed: u64) -> Row {
    let mut rng = Rng::new(seed);
    let at: Vec<usize> = (1..=MAX_ROUNDS).collect();
    let (mut faster, mut slower, mut equivalent, mut undetermined, mut rounds) = (0, 0, 0, 0, 0);
    for _ in 0..EXPERIMENTS {
        let values: Vec<f64> = (0..MAX_ROUNDS)
            .map(|_| ratio.ln() + SD * rng.normal())
            .collect();
        let seen = looks(&values, &at, ALPHA, TOLERANCE, true);
        let last = seen.last().expect("looks from two rounds on");
        rounds += last.n;
        match last.decision {
            Decision::Faster => faster += 1,
            Decision::SlowerBeyondTolerance => slower += 1,
            Decision::Equivalent => equivalent += 1,
            Decision::Continue => undetermined += 1,
        }
    }
    let share = |k: usize| k as f64 / EXPERIMENTS as f64;
    Row {
        truth,
        ratio,
        faster: share(faster),
        slower_beyond: share(slower),
        equivalent: share(equivalent),
        undetermined: share(undetermined),
        mean_rounds: rounds as f64 / EXPERIMENTS as f64,
    }
}

#[test]
#[ignore = "a simulation of 24,000 experiments; run it in release, see the module docs"]
fn simulation() {
    let rows = [
        run("no change", 1.0, 1),
        run("slower by τ (at the bound)", 1.0 - TOLERANCE, 2),
        run("2% faster", 1.02, 3),
        run("3% faster", 1.03, 6),
        run("5% faster", 1.05, 4),
        run("10% faster", 1.10, 5),
    ];
    // Monte Carlo error of a rate of α over the experiments.
    let mc = (ALPHA * (1.0 - ALPHA) / EXPERIMENTS as f64).sqrt();
    println!(
        "| truth (ratio) | faster | slower beyond τ | equivalent within ±τ | undetermined at {MAX_ROUNDS} | mean rounds | fixed design of the same power |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        // The fixed-n paired t test with the power the sequential rule reached (a power
        // that rounds to 1 is matched at 99%, and the fixed design said to need more).
        let power = r.faster.min(0.99);
        let fixed = if r.ratio > 1.0 && power > ALPHA {
            fewest_trials(
                |n| log_test_power(r.ratio.ln(), SD * SD, 0.0, n, true, ALPHA),
                power,
            )
            .map_or("–".to_owned(), |n| {
                let more = if r.faster > 0.99 { "≥ " } else { "" };
                format!("{more}{n} rounds ({:.0}% power)", power * 100.0)
            })
        } else {
            "–".to_owned()
        };
        println!(
            "| {} ({:.2}) | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {fixed} |",
            r.truth,
            r.ratio,
            r.faster,
            r.slower_beyond,
            r.equivalent,
            r.undetermined,
            r.mean_rounds
        );
    }
    println!("\n{EXPERIMENTS} experiments a row; Monte Carlo standard error at α: {mc:.4}");

    // No change: a difference declared at most α of the time (within Monte Carlo error).
    let none = &rows[0];
    assert!(
        none.faster + none.slower_beyond <= ALPHA + 3.0 * mc,
        "{}",
        none.faster
    );
    // At the bound: equivalence declared at most α of the time.
    let bound = &rows[1];
    assert!(bound.equivalent <= ALPHA + 3.0 * mc, "{}", bound.equivalent);
    assert!(bound.faster <= ALPHA + 3.0 * mc);
    // Power rises with the change, and a clear change stops early.
    assert!(rows[5].faster > rows[4].faster && rows[4].faster > rows[3].faster);
    assert!(rows[3].faster > rows[2].faster);
    assert!(rows[5].faster > 0.95, "{}", rows[5].faster);
    assert!(rows[5].mean_rounds < 12.0, "{}", rows[5].mean_rounds);
}

#[test]
fn a_clear_change_stops_early_and_no_change_is_called_equivalent() {
    // A quick, seeded version of the simulation's two ends, for every `make test`.
    let at: Vec<usize> = (1..=MAX_ROUNDS).collect();
    let mut rng = Rng::new(7);
    let mut stops = Vec::new();
    for _ in 0..50 {
        let values: Vec<f64> = (0..MAX_ROUNDS).map(|_| 0.15 + SD * rng.normal()).collect();
        let seen = looks(&values, &at, ALPHA, TOLERANCE, true);
        let last = seen.last().unwrap();
        assert_eq!(last.decision, Decision::Faster, "{last:?}");
        // The interval covers the truth and nothing before the fifth round decides.
        assert!(last.low < 0.15 && 0.15 < last.high, "{last:?}");
        assert!(last.n >= 5);
        stops.push(last.n);
    }
    assert!(stops.iter().sum::<usize>() < 50 * 8, "{stops:?}");
    let values: Vec<f64> = (0..MAX_ROUNDS).map(|_| 0.005 * rng.normal()).collect();
    let seen = looks(&values, &at, ALPHA, TOLERANCE, true);
    assert_eq!(seen.last().unwrap().decision, Decision::Equivalent);
    // Lower-is-better metrics read the other side: a rise beyond τ is slower.
    let values: Vec<f64> = (0..MAX_ROUNDS).map(|_| 0.2 + 0.01 * rng.normal()).collect();
    let seen = looks(&values, &at, ALPHA, TOLERANCE, false);
    assert_eq!(
        seen.last().unwrap().decision,
        Decision::SlowerBeyondTolerance
    );
}

/// `scenarios/NAME.yaml` on the simulator with shorter answers, run to its end.
fn run_demo(
    name: &str,
    edit: impl Fn(String) -> String,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let text =
        std::fs::read_to_string(crate::common::repo_root().join(format!("scenarios/{name}.yaml")))
            .unwrap();
    let yaml = edit(
        text.replace("output_tokens: 48", "output_tokens: 16")
            .replace("input_tokens: 200", "input_tokens: 60"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let run =
        crate::common::run_scenario(tmp.path(), &yaml.replace("backend: ollama", "backend: sim"));
    (tmp, run)
}

#[test]
fn a_clearly_faster_variant_stops_the_run_early_and_its_gate_reads_the_anytime_interval() {
    let (_tmp, run) = run_demo("sequential", |s| s);
    let summary: serde_json::Value = crate::common::json(&run.join("summary.json"));
    let seq = &summary["sequential"];
    assert_eq!(seq["decision"], "faster", "{seq}");
    assert_eq!(seq["stopped_early"], true);
    let rounds = seq["rounds"].as_u64().unwrap();
    assert!((5..30).contains(&rounds), "{seq}");
    assert_eq!(summary["complete"], true);
    // The scheduler stopped at the first look that decided: the summary, recomputing the
    // looks from the files, finds every earlier look undecided and the last one at the end
    // of the last round that ran.
    let looks = seq["looks"].as_array().unwrap();
    assert!(
        looks[..looks.len() - 1]
            .iter()
            .all(|l| l["decision"] == "continue")
    );
    assert_eq!(looks.last().unwrap()["n"].as_u64().unwrap(), rounds);
    let trials = std::fs::read_to_string(run.join("trials.jsonl")).unwrap();
    let measured = trials
        .lines()
        .filter(|l| l.contains("\"phase\":\"measured\""))
        .count() as u64;
    assert_eq!(measured, 2 * rounds, "two arms a round");
    // The anytime-valid interval is wider than the fixed-n Welch interval of the same data.
    let (low, high) = (seq["low"].as_f64().unwrap(), seq["high"].as_f64().unwrap());
    assert!(low > 1.0, "{seq}");
    let welch = summary["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "decode_tps" && c["arm"] == "chimera")
        .unwrap();
    assert!(
        high - low
            > welch["ratio"]["high"].as_f64().unwrap() - welch["ratio"]["low"].as_f64().unwrap()
    );
    // The gate is judged by it, and gate.json carries the rule's account.
    let gate: serde_json::Value = crate::common::json(&run.join("gate.json"));
    assert_eq!(gate["verdict"], "PASS", "{gate}");
    assert!(
        gate["gates"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("anytime-valid"),
        "{gate}"
    );
    assert_eq!(gate["gates"][0]["ratio"]["low"].as_f64().unwrap(), low);
    assert_eq!(gate["sequential"]["rounds"], rounds);
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains(&format!("The run stopped after round {rounds} of 30: chimera is faster than the baseline on decode_tps")), "{md}");
    assert!(!md.contains("INCOMPLETE") && !md.contains("incomplete"));
}

#[test]
fn equal_variants_with_a_fine_tolerance_run_every_round_and_say_undetermined() {
    let (_tmp, run) = run_demo("sequential-equal", |s| s.replace("trials: 12", "trials: 6"));
    let summary: serde_json::Value = crate::common::json(&run.join("summary.json"));
    let seq = &summary["sequential"];
    assert_eq!(seq["decision"], "continue", "{seq}");
    assert_eq!(seq["stopped_early"], false);
    assert_eq!(seq["rounds"], 6);
    assert_eq!(summary["complete"], true);
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("The run went 6 of 6 rounds: undetermined"),
        "{md}"
    );
    // The gate at ±1% cannot pass on an interval that wide, nor fail: INCONCLUSIVE.
    let gate: serde_json::Value = crate::common::json(&run.join("gate.json"));
    assert_eq!(gate["verdict"], "INCONCLUSIVE", "{gate}");
}

#[test]
fn a_stopping_rule_needs_interleaved_rounds_a_known_variant_and_a_tolerance() {
    let text =
        std::fs::read_to_string(crate::common::repo_root().join("scenarios/sequential.yaml"))
            .unwrap();
    let check = |yaml: String| -> String {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = crate::common::harness()
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = check(text.replace("order: interleaved", "order: sequential"));
    assert!(e.contains("stopping") && e.contains("interleaved"), "{e}");
    let e = check(text.replace(
        "  variant: chimera\n  tolerance",
        "  variant: nobody\n  tolerance",
    ));
    assert!(e.contains("stopping.variant"), "{e}");
    let e = check(text.replace("  tolerance: 5%\n  every", "  tolerance: 0%\n  every"));
    assert!(
        e.contains("stopping.tolerance") && e.contains(":44:"),
        "{e}"
    );
}
