//! The ratio estimate against the simulator's truth: over many simulated runs, each with
//! its own seed (the simulator's noise derives from it), how far the decode-rate ratio lies
//! from the ratio the simulator's model implies (bias), and how often its 95% CI contains
//! that ratio (coverage), alone and with two agents sharing the server. Slow; run with
//!
//! ```text
//! cargo test --release --test it estimator_bias_and_coverage -- --ignored --nocapture
//! ```
//!
//! (`HARNESS_ESTIMATOR_RUNS` sets the number of runs, 480 by default.)

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use harness::stats::RatioCi;
use harness::summary::Summary;

use crate::common::{harness, json, only_subdir, repo_root, true_ratio_1024};

/// The simulator for the check: two requests decode at once (so the shared arms really
/// share), and a 1024-token context decodes 1.2× as fast as the default 4096.
const SIM: &str = "{ decode_tps: 600, ctx_cost_per_1k: 0.07142857142857142, load_ms: 30, median_output_tokens: 60, parallel: 2 }";

fn scenario(data: &str) -> String {
    format!(
        r#"
name: estimator
seed: 1
model: m:latest
server: {{ backend: sim }}
sim: {SIM}
workload: {{ kind: agent_report, data_dir: {data} }}
agents:
  collector: {{ persona: "You are a data collector. List findings." }}
variants:
  baseline: {{}}
  fast: {{ options: {{ num_ctx: 1024 }} }}
arms: [[baseline], [fast], [baseline, baseline], [fast, fast]]
trials: 8
warmup: 1
"#
    )
}

/// The decode_tps ratio of `fast` in `arm` against the baseline.
fn ratio(s: &Summary, arm: &str) -> RatioCi {
    s.comparisons
        .iter()
        .find(|c| c.metric == harness::scenario::Metric::DecodeTps && c.arm == arm && !c.paired)
        .and_then(|c| c.stats.ratio)
        .expect("a decode_tps ratio")
}

#[test]
#[ignore = "slow: hundreds of simulated runs in real time (about 15 minutes)"]
fn estimator_bias_and_coverage() {
    let runs: u64 = std::env::var("HARNESS_ESTIMATOR_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(480);
    // Two streams at once slow each alike, so the ratio is the same alone and shared.
    let truth = true_ratio_1024();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    let data = repo_root().join("scenarios/data");
    std::fs::write(&path, scenario(&data.display().to_string())).unwrap();
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<(RatioCi, RatioCi)>> = Mutex::default();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= runs {
                        return;
                    }
                    let out = dir.path().join(format!("out-{seed}"));
                    harness()
                        .arg("run")
                        .arg(&path)
                        .arg("--out")
                        .arg(&out)
                        .args(["-q", "--seed", &(1000 + seed).to_string()])
                        .assert()
                        .success();
                    let s: Summary = json(&only_subdir(&out).join("summary.json"));
                    let pair = (ratio(&s, "fast"), ratio(&s, "fast+fast"));
                    results.lock().unwrap().push(pair);
                    std::fs::remove_dir_all(&out).unwrap();
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    let n = results.len() as f64;
    println!("| arms | runs | bias of the ratio (± 1 s.e.) | 95% CI coverage (± 1 s.e.) |");
    println!("| --- | ---: | ---: | ---: |");
    let mut checks = Vec::new();
    for (what, pick) in [
        ("alone: [fast] vs [baseline]", 0),
        ("shared: [fast, fast] vs [baseline, baseline]", 1),
    ] {
        let get = |r: &(RatioCi, RatioCi)| if pick == 0 { r.0 } else { r.1 };
        let errors: Vec<f64> = results.iter().map(|r| get(r).ratio / truth - 1.0).collect();
        let bias = errors.iter().sum::<f64>() / n;
        let sd = (errors.iter().map(|e| (e - bias).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let covered = results
            .iter()
            .filter(|r| get(r).low <= truth && truth <= get(r).high)
            .count() as f64
            / n;
        println!(
            "| {what} | {n} | {:+.2}% ± {:.2}% | {:.1}% ± {:.1}% |",
            bias * 100.0,
            sd / n.sqrt() * 100.0,
            covered * 100.0,
            (covered * (1.0 - covered) / n).sqrt() * 100.0
        );
        checks.push((what, bias, covered));
    }
    println!("true ratio {truth:.4}");
    for (what, bias, covered) in checks {
        assert!(bias.abs() < 0.01, "{what}: bias {bias}");
        assert!(
            (0.93..=0.97).contains(&covered),
            "{what}: coverage {covered}"
        );
    }
}
