//! The `harness` binary end to end.

use std::path::{Path, PathBuf};

use harness::metrics::CallRecord;
use harness::results::TrialRecord;
use harness::scenario::Metric;
use harness::summary::Summary;
use sha2::Digest;

use crate::common::{harness, json, only_subdir, repo_root};

#[test]
fn validate_accepts_the_shipped_scenarios() {
    for name in ["chimera.yaml", "quickstart.yaml"] {
        harness()
            .arg("validate")
            .arg(repo_root().join("scenarios").join(name))
            .assert()
            .success()
            .stdout(predicates::str::contains(": ok"));
    }
}

#[test]
fn validate_counts_in_words_and_names_no_url_for_the_simulator() {
    let ok = |file: &std::path::Path| {
        let out = harness().arg("validate").arg(file).assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let quickstart = ok(&repo_root().join("scenarios/quickstart.yaml"));
    assert!(quickstart.contains(", 1 agent, "), "{quickstart}");
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim.yaml");
    let text = std::fs::read_to_string(repo_root().join("scenarios/chimera.yaml"))
        .unwrap()
        .replace("backend: ollama ", "backend: sim ")
        .replace(
            "data_dir: data ",
            &format!(
                "data_dir: {} ",
                repo_root().join("scenarios/data").display()
            ),
        );
    std::fs::write(&sim, text).unwrap();
    let printed = ok(&sim);
    // The simulator listens on a port chosen when it starts: no URL to name.
    assert!(
        printed.contains("built-in simulator") && !printed.contains("11434"),
        "{printed}"
    );
}

#[test]
fn validate_reports_typo_wrong_type_and_range_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo_root().join("scenarios/chimera.yaml"))
        .unwrap()
        .replace(
            "data_dir: data ",
            &format!(
                "data_dir: {} ",
                repo_root().join("scenarios/data").display()
            ),
        )
        .replace("trials: 5", "trails: 5\ntrials: 5")
        .replace("warmup: 1", "warmup: once")
        .replace("temperature: 1.0", "temperature: -0.5");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, &text).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let out = harness()
        .arg("validate")
        .arg(&file)
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).unwrap();
    let f = file.display();
    for (needle, field) in [
        ("temperature: -0.5", "variants.chimera.options.temperature"),
        ("trails: 5", "trails"),
        ("warmup: once", "warmup"),
    ] {
        let expected = format!("{f}:{}:", line_of(needle));
        assert!(
            stderr.contains(&expected),
            "missing {expected} in:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("field `{field}`")),
            "missing {field} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("3 problems"), "{stderr}");
}

#[test]
fn run_without_a_server_names_the_url_suggests_sim_and_writes_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = tempfile::tempdir().unwrap();
    let assert = harness()
        .args(["run", "scenarios/chimera.yaml", "-q", "--out"])
        .arg(out.path())
        .env("OLLAMA_HOST", &url)
        .current_dir(repo_root())
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains(&url), "{stderr}");
    assert!(stderr.contains("--backend sim"), "{stderr}");
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "one clear error: {stderr}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "no results folder"
    );
}

const SMALL: &str = r#"
name: small
seed: 5
model: gemma3:latest
server: { backend: sim }
sim: { decode_tps: 600, load_ms: 40, median_output_tokens: 60, parallel: 1 }
workload: { kind: agent_report, data_dir: DATA }
agents:
  collector: { persona: "You are a data collector. List findings." }
  insight: { persona: "You recommend next steps.", consumes: collector }
variants:
  baseline: {}
  fast: { options: { num_ctx: 512 } }
arms: [[baseline], [fast], [baseline, fast]]
trials: 3
warmup: 1
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_run_against_a_sim_server_reached_by_url_is_marked_simulated() {
    let sim = harness::sim::SimServer::start(
        harness::scenario::SimConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("small.yaml");
    let data = repo_root().join("scenarios/data").display().to_string();
    // The scenario says Ollama; only the server's answers say it is the simulator.
    let text = SMALL
        .replace("DATA", &data)
        .replace("server: { backend: sim }", "server: { backend: ollama }");
    std::fs::write(&scenario, text).unwrap();
    let out = dir.path().join("out");
    let url = sim.url();
    let (run_out, stdout) = tokio::task::spawn_blocking(move || {
        let assert = harness()
            .args(["run", "--trials", "2", "--warmup", "0", "-q", "--url", &url])
            .arg(&scenario)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
        (only_subdir(&out), stdout)
    })
    .await
    .unwrap();
    sim.stop().await;
    assert!(stdout.starts_with("SIMULATED"), "{stdout}");
    let manifest: serde_json::Value = json(&run_out.join("manifest.json"));
    assert_eq!(manifest["simulated"], true);
    let summary: Summary = json(&run_out.join("summary.json"));
    assert!(summary.simulated);
    for file in ["report.md", "table.tex", "agents/baseline/run_1.md"] {
        let text = std::fs::read_to_string(run_out.join(file)).unwrap();
        let says = text.to_lowercase().contains("simulat");
        assert!(says, "{file} does not say the numbers are simulated");
    }
}

#[test]
fn end_to_end_run_on_the_simulator_writes_every_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("small.yaml");
    std::fs::write(
        &scenario,
        SMALL.replace(
            "DATA",
            &repo_root().join("scenarios/data").display().to_string(),
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let assert = harness()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .env("OLLAMA_NUM_PARALLEL", "3")
        .env("OLLAMA_API_KEY", "do-not-record")
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("SIMULATED"), "{stdout}");
    assert!(stdout.contains("baseline+fast"), "{stdout}");
    let run = only_subdir(&out);
    // What the README promises the manifest records: the harness version, the host, and
    // the server's OLLAMA_* settings, never anything secret-looking.
    let manifest: serde_json::Value = json(&run.join("manifest.json"));
    assert_eq!(manifest["harness_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["host"]["os"], std::env::consts::OS);
    assert_eq!(manifest["host"]["arch"], std::env::consts::ARCH);
    assert!(manifest["host"]["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(manifest["ollama_env"]["OLLAMA_NUM_PARALLEL"], "3");
    assert!(manifest["ollama_env"].get("OLLAMA_API_KEY").is_none());
    assert!(
        !std::fs::read_to_string(run.join("manifest.json"))
            .unwrap()
            .contains("do-not-record")
    );
    assert!(
        run.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("small-")
    );

    let manifest: serde_json::Value = json(&run.join("manifest.json"));
    assert_eq!(manifest["simulated"], true);
    assert_eq!(manifest["complete"], true);
    // The hash is of the scenario file as it was run (copied next to the results).
    let scenario_bytes = std::fs::read(run.join("scenario.yaml")).unwrap();
    assert_eq!(
        manifest["scenario_sha256"].as_str().unwrap(),
        format!("{:x}", sha2::Sha256::digest(&scenario_bytes))
    );
    assert!(
        manifest["server"]["version"]
            .as_str()
            .unwrap()
            .starts_with("harness-sim")
    );
    assert!(manifest["server"]["model_digest"].is_string());
    assert!(manifest["ended_at"].is_string());
    assert_eq!(
        std::fs::read(run.join("scenario.yaml")).unwrap(),
        std::fs::read(&scenario).unwrap()
    );

    let plan: serde_json::Value = json(&run.join("plan.json"));
    assert_eq!(plan["trials"].as_array().unwrap().len(), 3 * 3 + 3);

    let calls: Vec<CallRecord> = harness::results::read_jsonl(&run.join("calls.jsonl")).unwrap();
    // Pipelines: 3 arms × 4 rounds, 1 + 1 + 2 pipelines each, 4 calls per pipeline; plus primes.
    let workflow_calls = calls.iter().filter(|c| c.step != "prime").count();
    assert_eq!(workflow_calls, 4 * 4 * 4);
    assert!(calls.iter().all(|c| c.ok), "no failures on the simulator");
    for c in calls.iter().filter(|c| c.step != "prime") {
        let ttft = c.ttft_ms.unwrap();
        assert!(ttft > 0.0 && ttft < c.e2e_ms);
        assert!(c.output_tokens.unwrap() > 0 && !c.tokens_counted);
        assert!(c.decode_tps.unwrap() > 0.0);
    }
    let mut csv = csv::Reader::from_path(run.join("calls.csv")).unwrap();
    let csv_rows: Vec<CallRecord> = csv.deserialize().map(|r| r.unwrap()).collect();
    assert_eq!(csv_rows.len(), calls.len());
    assert_eq!(csv_rows[0].trial, calls[0].trial);

    let trials: Vec<TrialRecord> = harness::results::read_jsonl(&run.join("trials.jsonl")).unwrap();
    assert_eq!(trials.len(), 12);
    assert!(trials.iter().all(|t| t.ok && t.wall_ms > 0.0));

    let summary: Summary = json(&run.join("summary.json"));
    assert!(summary.simulated && summary.complete);
    assert_eq!(summary.measured_trials, 9);
    assert!(summary.serving.is_empty() && summary.saturation.is_empty());
    assert_eq!(summary.groups.len(), 4);
    assert!(summary.groups.iter().all(|g| g.trials == 3
        && g.metrics.len() == Metric::ALL.iter().filter(|m| !m.needs_load()).count()));
    // Without `load:` there are no serving or open-loop metrics, and no load table.
    assert!(
        summary
            .groups
            .iter()
            .all(|g| g.metrics.keys().all(|m| !m.needs_load()))
    );
    // Speedup and efficiency, recomputed from trials.jsonl: Σ solo mean walls / shared mean.
    assert_eq!(summary.concurrency.len(), 1);
    let c = &summary.concurrency[0];
    let trials_now: Vec<TrialRecord> =
        harness::results::read_jsonl(&run.join("trials.jsonl")).unwrap();
    let mean_wall = |arm: &str| {
        let walls: Vec<f64> = trials_now
            .iter()
            .filter(|t| t.arm == arm && t.phase == harness::plan::Phase::Measured && t.ok)
            .map(|t| t.wall_ms)
            .collect();
        walls.iter().sum::<f64>() / walls.len() as f64
    };
    let shared = mean_wall(&c.arm);
    let solo: f64 = c.arm.split('+').map(mean_wall).sum();
    assert!((c.wall_ms - shared).abs() < 1e-9 * shared);
    assert!((c.speedup.unwrap() - solo / shared).abs() < 1e-9);
    assert!((c.efficiency.unwrap() - solo / shared / 2.0).abs() < 1e-9);
    let [lo, hi] = c.speedup_ci.unwrap();
    assert!(lo <= c.speedup.unwrap() && c.speedup.unwrap() <= hi);
    // Only the solo arm has a baseline counterpart (9 metrics: 7, and the energy per token
    // and tokens per joule of the simulator's GPU); the mixed arm compares fast with
    // baseline in the same trials (6 more, paired: the arm's throughput and energy are one
    // value for both); all Holm-adjusted together.
    assert_eq!(summary.comparisons.len(), 15);
    let (paired, independent): (Vec<_>, Vec<_>) =
        summary.comparisons.iter().partition(|c| c.paired);
    assert!(
        independent
            .iter()
            .all(|c| c.arm == "fast" && c.baseline_arm == "baseline")
    );
    assert!(
        paired
            .iter()
            .all(|c| c.arm == "baseline+fast" && c.baseline_arm == "baseline+fast")
    );
    assert!(
        summary
            .comparisons
            .iter()
            .all(|c| c.holm_p.unwrap() >= c.stats.welch.unwrap().p)
    );

    // `harness report` recomputes the same summary from the records, byte for byte, and
    // rewrites the other formats and every figure identically too.
    let mut report_files: Vec<String> = harness::report::file_exporters()
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    assert_eq!(
        report_files,
        [
            "summary.json",
            "report.md",
            "report.html",
            "table.tex",
            "figures.tex",
            "comparisons.csv"
        ]
    );
    let mut figures: Vec<String> = std::fs::read_dir(run.join("figures"))
        .unwrap()
        .map(|e| format!("figures/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    figures.sort();
    for kind in [
        "forest",
        "strip-ttft_ms",
        "ecdf-ttft_ms",
        "timeline-baseline+fast",
    ] {
        assert!(
            figures.contains(&format!("figures/{kind}.svg")),
            "no {kind}.svg in {figures:?}"
        );
    }
    report_files.extend(figures);
    let before: Vec<Vec<u8>> = report_files
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect();
    std::fs::remove_file(run.join("report.md")).unwrap();
    std::fs::remove_file(run.join("figures/forest.svg")).unwrap();
    // A figure an older report drew and this one does not is removed.
    std::fs::write(run.join("figures/stale.svg"), "<svg/>").unwrap();
    let report = harness()
        .arg("report")
        .arg(&run)
        .env("NO_COLOR", "1")
        .assert()
        .success();
    let printed = String::from_utf8(report.get_output().stdout.clone()).unwrap();
    assert!(
        printed.contains("ratio [95% CI]") && !printed.contains('\u{1b}'),
        "{printed}"
    );
    for (f, bytes) in report_files.iter().zip(before) {
        assert_eq!(std::fs::read(run.join(f)).unwrap(), bytes, "{f} differs");
    }
    assert!(!run.join("figures/stale.svg").exists());

    for (variant, runs) in [("baseline", 8), ("fast", 8)] {
        for n in 1..=runs {
            let report =
                std::fs::read_to_string(run.join(format!("agents/{variant}/run_{n}.md"))).unwrap();
            for section in [
                "## Workflow Summary",
                "## Metrics",
                "## Key Findings",
                "## Recommendations",
                "## Persona Prompt",
                "Simulated run",
            ] {
                assert!(
                    report.contains(section),
                    "{variant} run {n} lacks {section}"
                );
            }
            assert!(
                !report.contains("_None extracted"),
                "{variant} run {n} has an empty section:\n{report}"
            );
        }
    }
    // No temporary files are left behind by the atomic writes.
    let leftovers = walk(&run)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with('~'))
        .count();
    assert_eq!(leftovers, 0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn flagship_on_the_simulator_shows_chimera_faster_and_queueing_when_shared() {
    let out = tempfile::tempdir().unwrap();
    harness()
        .args([
            "run",
            "scenarios/chimera.yaml",
            "--backend",
            "sim",
            "--trials",
            "3",
            "-q",
            "--out",
        ])
        .arg(out.path())
        .current_dir(repo_root())
        .assert()
        .success();
    let summary: Summary = json(&only_subdir(out.path()).join("summary.json"));
    let group = |arm: &str, variant: &str| {
        summary
            .groups
            .iter()
            .find(|g| g.arm == arm && g.variant == variant)
            .unwrap_or_else(|| panic!("no group {arm}/{variant}"))
    };
    let base = group("baseline", "baseline");
    let chimera = group("chimera", "chimera");
    // The model: chimera's 512-token context decodes 1.17× as fast as the 4096-token
    // default. With 3 trials the CIs are wide; the ratio of means is what must hold (a
    // loaded machine slows both sides' timers alike).
    let (b, c) = (
        base.per_trial(Metric::DecodeTps).unwrap(),
        chimera.per_trial(Metric::DecodeTps).unwrap(),
    );
    let ratio = c.mean / b.mean;
    assert!(
        ratio > 1.08 && ratio < 1.27,
        "chimera {c:?} vs baseline {b:?}"
    );
    // Sharing one slot: the concurrent arms wait, so TTFT grows well beyond solo.
    for arm in ["baseline+chimera", "chimera+chimera"] {
        let shared = group(arm, "chimera").pooled(Metric::TtftMs).unwrap().p50;
        let solo = chimera.pooled(Metric::TtftMs).unwrap().p50;
        assert!(
            shared > 2.0 * solo,
            "{arm}: TTFT p50 {shared} vs solo {solo}"
        );
    }
    assert_eq!(
        base.cold_calls, 0,
        "priming keeps reloads out of solo measured calls"
    );
}

#[test]
fn report_on_a_folder_that_is_not_a_results_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    harness()
        .arg("report")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("manifest.json"))
        .stderr(predicates::str::contains(
            "is this a harness results folder?",
        ));
    // A damaged record in the middle of calls.jsonl names the file and the line.
    let fixture = repo_root().join("tests/data/results-fixture");
    for f in ["manifest.json", "trials.jsonl"] {
        std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    let calls = std::fs::read_to_string(fixture.join("calls.jsonl")).unwrap();
    let mut lines: Vec<&str> = calls.lines().collect();
    lines[2] = "{\"trial\": oops}";
    std::fs::write(dir.path().join("calls.jsonl"), lines.join("\n") + "\n").unwrap();
    harness()
        .arg("report")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("calls.jsonl"))
        .stderr(predicates::str::contains("line 3"));
}
