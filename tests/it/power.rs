//! `harness power`: trials a side from a pilot's spread, on a recorded results folder; the
//! power arithmetic itself is checked against statsmodels in `stats_reference.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use harness::gate::files::GateOptions;
use harness::gate::power::{PowerOptions, plan_dir};
use harness::metrics::CallRecord;
use harness::plan::Phase;
use harness::scenario::Metric;
use harness::stats::ALPHA;
use harness::stats::power::log_test_power;

use crate::common::harness;

fn fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/results-fixture"
    ))
}

fn options(effect: f64, gates: &[&str]) -> PowerOptions {
    PowerOptions {
        effect,
        power: 0.8,
        gates: GateOptions {
            expressions: gates.iter().map(|g| (*g).to_owned()).collect(),
            ..GateOptions::default()
        },
    }
}

#[test]
fn each_comparison_gets_the_fewest_trials_with_the_power_from_the_pilots_own_spread() {
    let plan = plan_dir(&fixture(), &options(0.05, &[])).unwrap();
    assert!(!plan.comparisons.is_empty());
    // The spread, recomputed here from calls.jsonl: per-trial mean decode rate of the
    // measured, successful calls, then the standard deviation of its logs.
    let calls: Vec<CallRecord> = std::fs::read_to_string(fixture().join("calls.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sd_log = |arm: &str, variant: &str| {
        let mut per_trial: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        for c in calls
            .iter()
            .filter(|c| c.arm == arm && c.variant == variant && c.phase == Phase::Measured && c.ok)
        {
            if let Some(v) = c.decode_tps {
                let e = per_trial.entry(c.trial).or_default();
                e.0 += v;
                e.1 += 1.0;
            }
        }
        let logs: Vec<f64> = per_trial.values().map(|(s, n)| (s / n).ln()).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (logs.len() - 1) as f64).sqrt()
    };
    let mut checked = 0;
    for c in &plan.comparisons {
        let (v1, v2) = (c.sd_variant.powi(2), c.sd_baseline.unwrap_or(0.0).powi(2));
        let k = c.trials.expect("a plan within 100,000 trials");
        let power = |n| log_test_power(0.05f64.ln_1p(), v1, v2, n, c.paired, ALPHA);
        assert!(power(k) >= 0.8, "{c:?}");
        assert!(k == 2 || power(k - 1) < 0.8, "{c:?}: not the fewest");
        if c.metric == Metric::DecodeTps && !c.paired {
            let (baseline, baseline_arm) = c.against.split_once(" in ").unwrap();
            assert!(
                (c.sd_variant - sd_log(&c.arm, &c.variant)).abs() < 1e-12,
                "{c:?}"
            );
            assert!(
                (c.sd_baseline.unwrap() - sd_log(baseline_arm, baseline)).abs() < 1e-12,
                "{c:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
    // A larger change needs no more trials.
    let wide = plan_dir(&fixture(), &options(0.20, &[])).unwrap();
    for (a, b) in plan.comparisons.iter().zip(&wide.comparisons) {
        assert!(b.trials <= a.trials, "{a:?} vs {b:?}");
    }
}

#[test]
fn the_cli_plans_gates_and_refuses_a_change_of_nothing() {
    let out = harness()
        .args([
            "power",
            "--effect",
            "10%",
            "--gate",
            "decode_tps:fast>=baseline-5%",
        ])
        .arg(fixture())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SIMULATED"), "{text}");
    assert!(
        text.contains("Trials a side to detect a 10.0% change with 80% power"),
        "{text}"
    );
    assert!(text.contains("decode_tps:fast>=baseline-5%"), "{text}");
    assert!(text.contains("trials to PASS"), "{text}");

    let out = harness()
        .args(["power", "--effect", "0%"])
        .arg(fixture())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must not be 0%"));
}
