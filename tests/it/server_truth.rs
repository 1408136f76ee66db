//! Server truth: what the server loaded for each variant (`/api/ps`, `/api/show`) against
//! what the variant asked for, on the simulator, whose loading model is known.

use crate::common::{json, run_scenario};

const OFFLOAD: &str = r#"
name: offload
seed: 11
server: { backend: sim }
sim: { layers: 34, context_length: 8192, weights_mb: 3300, kv_mb_per_1k: 136, load_ms: 20 }
model: m:latest
workload:
  kind: prompts
  synthetic: { input_tokens: 50, output_tokens: 4 }
variants:
  baseline: {}
  full:
    options: { num_gpu: 80, num_ctx: 2048 }
  partial:
    options: { num_gpu: 17, num_ctx: 2048 }
  wide:
    options: { num_ctx: 16384 }
  capped:
    options: { num_ctx: 8192 }
arms: [[baseline], [full], [partial], [wide], [capped], [baseline, partial]]
trials: 2
warmup: 0
"#;

#[test]
fn the_report_says_what_the_server_loaded_and_flags_what_it_did_not_load_as_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_scenario(tmp.path(), OFFLOAD);
    let summary: serde_json::Value = json(&run.join("summary.json"));
    let rows = summary["loaded"].as_array().unwrap();
    let row = |v: &str| rows.iter().find(|r| r["variant"] == v).unwrap();

    // Every trial where a variant ran alone was observed after priming and after the
    // trial; the mixed arm's trials are not counted for either side.
    for v in ["baseline", "full", "partial", "wide", "capped"] {
        assert_eq!(row(v)["observations"], 4, "{v}");
        assert_eq!(row(v)["states"], 1, "{v}");
        assert_eq!(row(v)["layers"], 34);
    }
    // Memory: weights + KV for the context; VRAM in proportion to the layers offloaded.
    let mb = |ctx: f64| ((3300.0 + 136.0 * ctx / 1024.0) * 1e6_f64).round() as u64;
    assert_eq!(row("full")["size"], mb(2048.0));
    assert_eq!(row("full")["size_vram"], mb(2048.0));
    let partial = row("partial");
    assert_eq!(
        partial["size_vram"],
        ((mb(2048.0) as f64) * 17.0 / 34.0).round() as u64
    );
    assert!(
        partial["words"]
            .as_str()
            .unwrap()
            .contains("partial offload, 17 of 34 layers")
    );
    assert!(partial["words"].as_str().unwrap().contains("50% in VRAM"));
    assert!(partial["flags"].as_array().unwrap().is_empty(), "{partial}");
    // num_gpu 80 on a 34-layer model is full offload, as asked.
    assert!(row("full")["flags"].as_array().unwrap().is_empty());
    // The simulator caps num_ctx at the model's 8192: flagged, with the reason.
    assert_eq!(row("wide")["context_length"], 8192);
    let flags = row("wide")["flags"].to_string();
    assert!(
        flags.contains("asked for num_ctx 16384") && flags.contains("capped"),
        "{flags}"
    );
    assert_eq!(row("capped")["context_length"], 8192);
    assert!(row("capped")["flags"].as_array().unwrap().is_empty());
    // capped and wide asked apart but were loaded alike.
    let warnings = summary["loaded_warnings"].to_string();
    assert!(warnings.contains("capped and wide"), "{warnings}");
    assert_eq!(
        summary["loaded_warnings"].as_array().unwrap().len(),
        1,
        "{warnings}"
    );

    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("## What the server loaded"));
    assert!(
        md.contains("| partial | 17 | 34 | 2048 | 2048 | 3.6 | 50% | 4 | yes |"),
        "{md}"
    );
    assert!(md.contains("**Not loaded as asked:**"));
}

/// Two variants on the simulator, whose GPU's power follows its work: `partial` keeps
/// half its layers on the CPU, so each token takes longer and costs more energy.
const ENERGY: &str = r#"
name: energy
seed: 5
server: { backend: sim }
sim: { load_ms: 20 }
model: m:latest
workload:
  kind: prompts
  synthetic: { input_tokens: 50, output_tokens: 24 }
  requests: 3
variants:
  baseline: {}
  partial:
    options: { num_gpu: 17 }
arms: [[baseline], [partial]]
trials: 4
warmup: 0
"#;

fn read_jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn gpu_telemetry_on_the_simulator_gives_energy_per_token_compared_with_a_ci() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_scenario(tmp.path(), ENERGY);
    let manifest: serde_json::Value = json(&run.join("manifest.json"));
    let t = &manifest["gpu_telemetry"];
    assert_eq!(t["status"], "recorded");
    assert_eq!(t["simulated"], true);
    assert_eq!(t["interval_ms"], 100.0);
    let samples = read_jsonl(&run.join("gpu.jsonl"));
    assert_eq!(t["samples"], samples.len());
    assert!(samples.len() > 20, "{}", samples.len());
    // The sampler's own cost is recorded: well under 1% of a core at 100 ms.
    let (cpu, wall) = (
        t["sampler_cpu_ms"].as_f64().unwrap(),
        t["sampler_wall_ms"].as_f64().unwrap(),
    );
    assert!(cpu < 0.01 * wall, "{cpu} ms of CPU in {wall} ms");

    // Each measured trial's energy is the counter's rise over its window, recomputed here
    // from gpu.jsonl by linear interpolation.
    let counter: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| {
            (
                s["offset_ms"].as_f64().unwrap(),
                s["energy_j"].as_f64().unwrap(),
            )
        })
        .collect();
    let at = |t: f64| {
        let i = counter
            .windows(2)
            .position(|w| t <= w[1].0)
            .unwrap_or(counter.len() - 2);
        let ((ta, a), (tb, b)) = (counter[i], counter[i + 1]);
        a + (b - a) * (t - ta) / (tb - ta)
    };
    let trials = read_jsonl(&run.join("trials.jsonl"));
    for trial in &trials {
        let gpu = &trial["gpu"];
        let t0 = trial["offset_ms"].as_f64().unwrap();
        let t1 = t0 + trial["wall_ms"].as_f64().unwrap();
        let expected = at(t1) - at(t0);
        let energy = gpu["energy_j"].as_f64().unwrap();
        assert!(
            (energy - expected).abs() < 1e-6 * expected.max(1.0),
            "{energy} vs {expected}"
        );
        assert_eq!(gpu["from_counter"], true);
        let power = gpu["mean_power_w"].as_f64().unwrap();
        assert!((power - energy / ((t1 - t0) / 1e3)).abs() < 1e-6);
        assert!((70.0..=420.0).contains(&power), "{power}");
    }
    // Energy per token is compared like any metric, with a CI: partial offload costs more.
    let summary: serde_json::Value = json(&run.join("summary.json"));
    let row = summary["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "joules_per_token" && c["variant"] == "partial")
        .expect("an energy comparison");
    let ratio = &row["ratio"];
    assert!(ratio["ratio"].as_f64().unwrap() > 1.3, "{row}");
    assert!(ratio["low"].as_f64().unwrap() < ratio["ratio"].as_f64().unwrap());
    assert!(
        summary["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["metric"] == "tokens_per_joule")
    );
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("- GPU telemetry: simulated, simulated GPU every 100 ms"),
        "{md}"
    );
    assert!(md.contains("### joules_per_token (J/tok, lower is faster)"));
}

#[test]
fn without_nvml_telemetry_is_unavailable_once_and_nothing_else_changes() {
    // A simulator reached by its URL is not this run's: telemetry falls to NVML, which
    // this machine (no NVIDIA driver) lacks.
    let (mut child, _, addr) = crate::sim::sim_server(&[]);
    let yaml = ENERGY.replace(
        "server: { backend: sim }",
        &format!("server: {{ backend: ollama, url: \"http://{addr}\" }}"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let run = run_scenario(tmp.path(), &yaml);
    let off = {
        let path = tmp.path().join("off.yaml");
        std::fs::write(&path, &yaml).unwrap();
        let out = tmp.path().join("off");
        crate::common::harness()
            .args(["run", "--gpu-telemetry", "off", "-q", "--out"])
            .arg(&out)
            .arg(&path)
            .assert()
            .success();
        crate::common::only_subdir(&out)
    };
    child.kill().unwrap();
    let _ = child.wait();

    let manifest: serde_json::Value = json(&run.join("manifest.json"));
    if manifest["gpu_telemetry"]["status"] == "recorded" {
        eprintln!("this machine has NVML: the unavailable path is not tested here");
        return;
    }
    assert_eq!(manifest["gpu_telemetry"]["status"], "unavailable");
    assert_eq!(manifest["gpu_telemetry"]["reason"], "NVML not found");
    assert!(!run.join("gpu.jsonl").exists());
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert_eq!(
        md.matches("GPU telemetry: unavailable (NVML not found)")
            .count(),
        1
    );
    let summary: serde_json::Value = json(&run.join("summary.json"));
    assert!(
        summary["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["metric"] != "joules_per_token" && c["metric"] != "tokens_per_joule")
    );
    // Nothing else changes: the same comparisons as with telemetry switched off.
    let off_manifest: serde_json::Value = json(&off.join("manifest.json"));
    assert_eq!(off_manifest["gpu_telemetry"]["status"], "off");
    assert!(!off.join("gpu.jsonl").exists());
    let metrics = |s: &serde_json::Value| -> Vec<String> {
        s["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["metric"].to_string())
            .collect()
    };
    assert_eq!(metrics(&summary), metrics(&json(&off.join("summary.json"))));
}

#[test]
fn an_openai_compatible_run_states_the_servers_own_context_and_slots() {
    // The simulator's OpenAI API answers /props and /slots as llama.cpp's server does.
    let yaml = ENERGY
        .replace(
            "server: { backend: sim }",
            "server: { backend: sim-openai, ignore_options: [num_gpu] }",
        )
        .replace(
            "sim: { load_ms: 20 }",
            "sim: { load_ms: 20, parallel: 3, default_num_ctx: 2048 }",
        )
        .replace("trials: 4", "trials: 1");
    let tmp = tempfile::tempdir().unwrap();
    let run = run_scenario(tmp.path(), &yaml);
    let manifest: serde_json::Value = json(&run.join("manifest.json"));
    let details = &manifest["server"]["model_details"];
    assert_eq!(details["n_ctx"], 2048);
    assert_eq!(details["total_slots"], 3);
    assert_eq!(details["slots"], 3);
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("context 2048 tokens per slot, 3 parallel slots"),
        "{md}"
    );
    // No /api/ps on this API: nothing is said about what was loaded.
    assert!(!md.contains("## What the server loaded"));
}
