//! What `harness merge` costs at cluster scale: 100 shards of 10,000 calls each (1,000,000
//! call records, 2,000 measured trials of two arms), generated, then merged and analysed
//! into one results folder. Prints the wall time and the process's peak resident memory
//! (`VmHWM`; generating the shards holds one shard at a time, so the peak is the merge's).
//!
//! Run: `cargo bench --bench merge` (SHARDS and CALLS_PER_SHARD override the sizes).

use std::io::Write;
use std::time::Instant;

use harness::metrics::CallRecord;
use harness::plan::{Phase, Plan, Shard};
use harness::results::TrialRecord;
use harness::rng::Rng;

const SCENARIO: &str = "name: merged\nseed: 9\nserver: { backend: ollama }\nmodel: m\nworkload: { kind: prompts, synthetic: { input_tokens: 200, output_tokens: 64 } }\nvariants: { baseline: {}, fast: { options: { num_ctx: 1024 } } }\narms: [[baseline], [fast]]\nwarmup: 0\n";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn call(trial: u32, round: u32, arm: &str, i: usize, rng: &mut Rng) -> CallRecord {
    let decode = if arm == "fast" { 120.0 } else { 100.0 } * rng.lognormal_factor(0.05);
    let ttft = 80.0 * rng.lognormal_factor(0.3);
    let e2e = ttft + 64.0 * 1000.0 / decode;
    serde_json::from_value(serde_json::json!({
        "trial": trial, "round": round, "phase": "measured", "arm": arm, "variant": arm,
        "slot": 0, "agent": "prompts", "step": format!("p{}", i % 50),
        "started_at": "2026-11-29T00:00:00Z", "offset_ms": i as f64 * 10.0,
        "ok": true, "error_kind": null, "error": null, "ttft_ms": ttft, "e2e_ms": e2e,
        "itl_mean_ms": 1000.0 / decode, "itl_p50_ms": 1000.0 / decode, "itl_p95_ms": 1200.0 / decode,
        "itl_max_ms": 1500.0 / decode, "tpot_ms": 1000.0 / decode, "output_tokens": 64,
        "tokens_counted": false, "prompt_tokens": 200, "content_chunks": 64, "load_ms": 0.1,
        "prompt_eval_ms": 20.0, "eval_ms": 64.0 * 1000.0 / decode, "server_total_ms": e2e,
        "decode_tps": decode, "e2e_tps": 64.0 * 1000.0 / e2e, "queue_ms": 0.0, "cold": false,
        "response_chars": 256
    }))
    .expect("a call record")
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this without it, as a
    // check that it still works, on 2 shards of 200 calls.
    let measuring = std::env::args().any(|a| a == "--bench");
    let shards = env_or("SHARDS", if measuring { 100 } else { 2 }) as u32;
    let per_shard = env_or("CALLS_PER_SHARD", if measuring { 10_000 } else { 200 });
    let rounds = shards * 10;
    let calls_per_trial = per_shard / 20;
    let tmp = tempfile::tempdir().expect("temporary folder");
    let scenario_path = tmp.path().join("s.yaml");
    let yaml = format!("{SCENARIO}trials: {rounds}\n");
    std::fs::write(&scenario_path, &yaml).expect("scenario");
    let scenario = harness::scenario::Scenario::load(&scenario_path, None).expect("scenario");
    let plan = Plan::build(&scenario);
    let plan_sha = "0".repeat(64);

    let started = Instant::now();
    let mut dirs = Vec::new();
    let mut rng = Rng::new(1);
    for index in 0..shards {
        let shard = Shard::new(index, shards).expect("shard");
        let part = plan.shard(shard);
        let dir = tmp.path().join(format!("merged-shard-{index}-of-{shards}"));
        std::fs::create_dir_all(&dir).expect("shard folder");
        let manifest = serde_json::json!({
            "harness_version": "bench", "simulated": true, "scenario_file": "s.yaml",
            "scenario_sha256": "1".repeat(64), "plan_sha256": plan_sha, "shard": shard,
            "scenario": scenario, "trials_planned": part.trials.len(), "complete": true,
            "host": {"hostname": format!("node{index}")},
            "server": {"url": "http://127.0.0.1:11434"},
        });
        std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("manifest");
        std::fs::write(dir.join("scenario.yaml"), &yaml).expect("scenario copy");
        std::fs::write(
            dir.join("plan.json"),
            serde_json::to_vec(&part).expect("plan"),
        )
        .expect("plan");
        let mut calls =
            std::io::BufWriter::new(std::fs::File::create(dir.join("calls.jsonl")).expect("calls"));
        let mut trials = std::io::BufWriter::new(
            std::fs::File::create(dir.join("trials.jsonl")).expect("trials"),
        );
        for t in part.trials.iter().filter(|t| t.phase == Phase::Measured) {
            for i in 0..calls_per_trial {
                serde_json::to_writer(&mut calls, &call(t.trial, t.round, &t.arm, i, &mut rng))
                    .expect("call");
                calls.write_all(b"\n").expect("call");
            }
            let record = TrialRecord {
                trial: t.trial,
                round: t.round,
                phase: t.phase,
                arm: t.arm.clone(),
                variants: t.variants.clone(),
                started_at: "2026-11-29T00:00:00Z".to_owned(),
                wall_ms: 1000.0,
                pipelines: Vec::new(),
                primed: false,
                ok: true,
                offset_ms: None,
                loaded_after_prime: None,
                loaded_after: None,
                gpu: None,
                server: None,
                node: None,
            };
            serde_json::to_writer(&mut trials, &record).expect("trial");
            trials.write_all(b"\n").expect("trial");
        }
        dirs.push(dir);
    }
    let generated = started.elapsed();
    let before = peak_rss_mb();
    let out = tmp.path().join("merged");
    let started = Instant::now();
    let merged = harness::merge::merge(&dirs, &out).expect("merge");
    let took = started.elapsed();
    assert!(merged.summary.complete && merged.missing.is_empty());
    // Counted after the peak is read: reading the merged file whole here would be the peak.
    let peak = peak_rss_mb();
    let calls = std::io::BufRead::lines(std::io::BufReader::new(
        std::fs::File::open(out.join("calls.jsonl")).expect("merged calls"),
    ))
    .count();
    println!(
        "generated {shards} shards of {per_shard} calls in {:.1} s (peak memory so far {before:.0} MB)",
        generated.as_secs_f64()
    );
    println!(
        "merged {calls} calls from {shards} shards and analysed them in {:.1} s; peak resident memory {:.0} MB; {} comparisons, complete: {}",
        took.as_secs_f64(),
        peak,
        merged.summary.comparisons.len(),
        merged.summary.complete
    );
}
