//! `harness run --shard I/N`, and the shard a Slurm array task or a Kubernetes Indexed Job
//! runs: each shard's folder holds its part of the whole plan, the parts are disjoint and
//! together the whole, and every manifest names the whole plan's hash and its shard.

use std::collections::BTreeSet;

use harness::plan::{Phase, Plan, Shard};
use harness::run::shard_of;

use crate::common::{harness, json, only_subdir};

const SCENARIO: &str = r#"
name: sharded
seed: 3
server: { backend: sim }
sim: { load_ms: 5 }
model: m:latest
workload:
  kind: prompts
  synthetic: { input_tokens: 30, output_tokens: 4 }
variants:
  baseline: {}
  fast: { options: { num_ctx: 1024 } }
arms: [[baseline], [fast]]
trials: 5
warmup: 1
"#;

/// Runs the scenario with `args` and environment `env` into `dir/name`.
fn run(
    dir: &std::path::Path,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::path::PathBuf {
    run_yaml(dir, name, SCENARIO, args, env)
}

/// [`run`] of the scenario `yaml`.
fn run_yaml(
    dir: &std::path::Path,
    name: &str,
    yaml: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::path::PathBuf {
    let path = dir.join("s.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = dir.join(name);
    let mut cmd = harness();
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "JOB_COMPLETION_INDEX",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .arg("run")
        .arg(&path)
        .args(args)
        .args(["-q", "--out"])
        .arg(&out)
        .assert()
        .success();
    only_subdir(&out)
}

/// The pooling over the servers of the comparison on `metric` in a summary.
fn pooled(summary: &serde_json::Value, metric: &str) -> serde_json::Value {
    summary["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metric"] == metric)
        .unwrap_or_else(|| panic!("{metric} pooled over the servers: {summary}"))
        .clone()
}

/// The rows of a JSONL file of a results folder.
fn rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    harness::results::read_jsonl(path).unwrap()
}

fn measured_trials(run: &std::path::Path) -> BTreeSet<u64> {
    rows(&run.join("trials.jsonl"))
        .into_iter()
        .filter(|t| t["phase"] == "measured")
        .map(|t| t["trial"].as_u64().unwrap())
        .collect()
}

#[test]
fn shards_run_disjoint_parts_that_make_the_whole_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let a = run(tmp.path(), "a", &["--shard", "0/2"], &[]);
    // The second shard as a Slurm array task 2 of an array numbered from 1.
    let b = run(
        tmp.path(),
        "b",
        &[],
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    );
    let whole = run(tmp.path(), "whole", &[], &[]);
    let manifest = |d: &std::path::Path| json::<serde_json::Value>(&d.join("manifest.json"));
    let (ma, mb, mw) = (manifest(&a), manifest(&b), manifest(&whole));
    assert_eq!(ma["shard"], serde_json::json!({"index": 0, "count": 2}));
    assert_eq!(mb["shard"], serde_json::json!({"index": 1, "count": 2}));
    assert!(mw.get("shard").is_none());
    assert_eq!(ma["plan_sha256"], mw["plan_sha256"]);
    assert_eq!(mb["plan_sha256"], mw["plan_sha256"]);
    assert!(
        a.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("sharded-shard-0-of-2-")
    );
    // Disjoint, and together the whole plan's measured trials.
    let (ta, tb, tw) = (
        measured_trials(&a),
        measured_trials(&b),
        measured_trials(&whole),
    );
    assert!(ta.is_disjoint(&tb));
    assert_eq!(ta.union(&tb).copied().collect::<BTreeSet<_>>(), tw);
    // Rounds 0, 2, 4 and 1, 3: each shard runs both arms of its rounds.
    assert_eq!(ta.len(), 2 * 3);
    assert_eq!(tb.len(), 2 * 2);
    let plan: Plan = json(&a.join("plan.json"));
    assert!(
        plan.trials
            .iter()
            .filter(|t| t.phase == Phase::Measured)
            .all(|t| t.round % 2 == 0)
    );
}

#[test]
fn an_interrupted_shard_resumes_its_own_part_and_keeps_its_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let shard = run(tmp.path(), "b", &["--shard", "1/2"], &[]);
    let finished = measured_trials(&shard);
    let plan_before = std::fs::read(shard.join("plan.json")).unwrap();
    let measured_calls = |dir: &std::path::Path| {
        rows(&dir.join("calls.jsonl"))
            .into_iter()
            .filter(|c| c["phase"] == "measured" && c["step"] != "prime")
            .count()
    };
    let calls_before = measured_calls(&shard);
    // Interrupted after its first measured trial: the later trials' rows, and a call of
    // the next trial cut short, are all the folder holds of them.
    let first = *finished.iter().next().unwrap();
    let keep = |file: &str, extra: usize| {
        let text = std::fs::read_to_string(shard.join(file)).unwrap();
        let (mut kept, mut cut) = (Vec::new(), 0);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let trial = v["trial"].as_u64().unwrap();
            if v["phase"] == "warmup" || trial == first {
                kept.push(line);
            } else if cut < extra {
                kept.push(line);
                cut += 1;
            }
        }
        std::fs::write(shard.join(file), kept.join("\n") + "\n").unwrap();
    };
    keep("trials.jsonl", 0);
    keep("calls.jsonl", 1);
    assert_eq!(measured_trials(&shard).len(), 1);
    let mut manifest: serde_json::Value = json(&shard.join("manifest.json"));
    manifest["complete"] = false.into();
    std::fs::write(shard.join("manifest.json"), manifest.to_string()).unwrap();

    // Resumed as another shard: refused.
    harness()
        .args(["run", "-q", "--shard", "0/2", "--resume"])
        .arg(&shard)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "ran shard 1/2; it cannot be resumed as shard 0/2",
        ));
    // Resumed (with nothing said of the shard, or with a Slurm task of another index in
    // the environment: the folder's shard wins).
    harness()
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .args(["run", "-q", "--resume"])
        .arg(&shard)
        .assert()
        .success();
    assert_eq!(measured_trials(&shard), finished);
    // The cut call was dropped and its trial ran again whole.
    assert_eq!(measured_calls(&shard), calls_before);
    assert_eq!(std::fs::read(shard.join("plan.json")).unwrap(), plan_before);
    let manifest: serde_json::Value = json(&shard.join("manifest.json"));
    assert_eq!(
        manifest["shard"],
        serde_json::json!({"index": 1, "count": 2})
    );
    assert_eq!(manifest["resumed_at"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["complete"], true);
    // The resumed shard merges with its sibling into the whole plan.
    let other = run(tmp.path(), "a", &["--shard", "0/2"], &[]);
    let merged = tmp.path().join("merged");
    harness()
        .args(["merge", "--out"])
        .arg(&merged)
        .args([&other, &shard])
        .assert()
        .success();
    let summary: serde_json::Value = json(&merged.join("summary.json"));
    assert_eq!(summary["complete"], true);
    let whole: BTreeSet<u64> = measured_trials(&merged);
    assert_eq!(whole.len(), 2 * 5);
}

#[test]
fn a_kubernetes_index_needs_its_count_and_a_bad_shard_is_refused() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(
        shard_of(None, Some(4), env(&[("JOB_COMPLETION_INDEX", "3")])).unwrap(),
        Some(Shard { index: 3, count: 4 })
    );
    let e = shard_of(None, None, env(&[("JOB_COMPLETION_INDEX", "3")])).unwrap_err();
    assert!(e.to_string().contains("--shards"), "{e}");
    let e = shard_of(None, Some(3), env(&[("JOB_COMPLETION_INDEX", "3")])).unwrap_err();
    assert!(e.to_string().contains("below the count"), "{e}");
    // The flag wins over the environment; nothing set runs the whole plan.
    let flag = Some(Shard { index: 0, count: 2 });
    assert_eq!(
        shard_of(
            flag,
            None,
            env(&[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "2")
            ])
        )
        .unwrap(),
        flag
    );
    assert_eq!(shard_of(None, None, env(&[])).unwrap(), None);
    let out = harness()
        .args(["run", "--shard", "2/2", "scenarios/quickstart.yaml"])
        .current_dir(crate::common::repo_root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("index counts from 0"));
}

/// Writes shard `index` of `count` of the whole run in `whole` into `dir`, as a shard
/// process would have: its manifest names the shard, its plan is the shard's part, and
/// its records are the warm-ups and its rounds.
fn split(whole: &std::path::Path, dir: &std::path::Path, index: u32, count: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let shard = Shard::new(index, count).unwrap();
    let mut manifest: serde_json::Value = json(&whole.join("manifest.json"));
    manifest["shard"] = serde_json::to_value(shard).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::copy(whole.join("scenario.yaml"), dir.join("scenario.yaml")).unwrap();
    let plan: Plan = json(&whole.join("plan.json"));
    let part = plan.shard(shard);
    std::fs::write(dir.join("plan.json"), serde_json::to_string(&part).unwrap()).unwrap();
    let keep: BTreeSet<u32> = part.trials.iter().map(|t| t.trial).collect();
    for file in ["calls.jsonl", "trials.jsonl"] {
        let text = std::fs::read_to_string(whole.join(file)).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                keep.contains(&(v["trial"].as_u64().unwrap() as u32))
            })
            .collect();
        std::fs::write(dir.join(file), lines.join("\n") + "\n").unwrap();
    }
}

#[test]
fn merging_a_runs_records_split_by_round_reproduces_its_statistics_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = run(tmp.path(), "whole", &[], &[]);
    let shards: Vec<std::path::PathBuf> = (0..3)
        .map(|i| {
            let d = tmp.path().join(format!("shard{i}"));
            split(&whole, &d, i, 3);
            d
        })
        .collect();
    let merged = tmp.path().join("merged");
    // Given in any order.
    harness()
        .args(["merge", "--out"])
        .arg(&merged)
        .args([&shards[2], &shards[0], &shards[1]])
        .assert()
        .success();
    let a: serde_json::Value = json(&whole.join("summary.json"));
    let b: serde_json::Value = json(&merged.join("summary.json"));
    assert_eq!(a["groups"], b["groups"]);
    assert_eq!(a["comparisons"], b["comparisons"]);
    assert_eq!(a["drift"], b["drift"]);
    assert_eq!(b["complete"], true);
    let manifest: serde_json::Value = json(&merged.join("manifest.json"));
    assert_eq!(manifest["missing_shards"], serde_json::json!([]));
    assert_eq!(manifest["merged_from"].as_array().unwrap().len(), 3);
    assert_eq!(
        std::fs::read_to_string(merged.join("report.md"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("| "))
            .count(),
        std::fs::read_to_string(whole.join("report.md"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("| "))
            .count()
    );

    // A missing shard is named and the merge is incomplete; a shard twice, or shards of
    // different runs, are refused.
    let partial = tmp.path().join("partial");
    let out = harness()
        .args(["merge", "--out"])
        .arg(&partial)
        .args([&shards[0], &shards[2]])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("INCOMPLETE: shards 1 missing"));
    let m: serde_json::Value = json(&partial.join("manifest.json"));
    assert_eq!(m["missing_shards"], serde_json::json!([1]));
    assert_eq!(
        json::<serde_json::Value>(&partial.join("summary.json"))["complete"],
        false
    );
    let twice = harness()
        .args(["merge", "--out"])
        .arg(tmp.path().join("twice"))
        .args([&shards[0], &shards[0]])
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("given twice"));
    let mut other: serde_json::Value = json(&shards[1].join("manifest.json"));
    other["plan_sha256"] = "0".repeat(64).into();
    std::fs::write(shards[1].join("manifest.json"), other.to_string()).unwrap();
    let foreign = harness()
        .args(["merge", "--out"])
        .arg(tmp.path().join("foreign"))
        .args([&shards[0], &shards[1]])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("different plans"));
}

#[test]
fn a_paired_comparison_stays_paired_on_each_server() {
    // One arm runs both variants, so its comparison is paired by trial; the three shards
    // are given three servers, as if each had run on a node of its own.
    let tmp = tempfile::tempdir().unwrap();
    let yaml = SCENARIO
        .replace("arms: [[baseline], [fast]]", "arms: [[baseline, fast]]")
        .replace("trials: 5", "trials: 9");
    let whole = run_yaml(tmp.path(), "whole", &yaml, &[], &[]);
    let shards: Vec<std::path::PathBuf> = (0..3)
        .map(|i| {
            let d = tmp.path().join(format!("shard{i}"));
            split(&whole, &d, i, 3);
            let mut m: serde_json::Value = json(&d.join("manifest.json"));
            m["server"]["url"] = format!("http://node{i}:11434").into();
            std::fs::write(d.join("manifest.json"), m.to_string()).unwrap();
            d
        })
        .collect();
    let merge = |name: &str, dirs: &[std::path::PathBuf]| -> serde_json::Value {
        let out = tmp.path().join(name);
        harness()
            .args(["merge", "--out"])
            .arg(&out)
            .args(dirs)
            .assert()
            .success();
        json(&out.join("summary.json"))
    };
    let all = merge("all", &shards);
    let decode = |s: &serde_json::Value| -> serde_json::Value {
        s["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["metric"] == "decode_tps" && c["paired"] == true)
            .expect("a paired decode_tps comparison")
            .clone()
    };
    let pooling = pooled(&all, "decode_tps");
    let per_server = pooling["servers"].as_array().unwrap();
    assert_eq!(per_server.len(), 3, "{pooling}");
    for (i, estimate) in per_server.iter().enumerate() {
        // Three rounds per server, each a pair.
        assert_eq!(estimate["n_variant"], 3, "{estimate}");
        assert_eq!(estimate["n_baseline"], 3, "{estimate}");
        // The server's estimate is the paired comparison of its trials alone.
        let alone = decode(&merge(&format!("alone{i}"), &shards[i..=i]));
        assert_eq!(estimate["ratio"], alone["ratio"]["ratio"], "server {i}");
        assert_eq!(estimate["low"], alone["ratio"]["low"], "server {i}");
        assert_eq!(estimate["high"], alone["ratio"]["high"], "server {i}");
    }
}

#[test]
fn four_shards_on_four_servers_merge_whole_and_the_odd_server_shows_as_heterogeneity() {
    // Four simulated servers; the fourth's decode slows far more with a longer context, so
    // the small-context variant gains much more there.
    let servers: Vec<(std::process::Child, String)> = (0..4)
        .map(|i| {
            let odd = ["--set", "ctx_cost_per_1k=1.0"];
            let (child, _, addr) = crate::sim::sim_server(if i == 3 { &odd } else { &[] });
            (child, addr)
        })
        .collect();
    let yaml = SCENARIO
        .replace("server: { backend: sim }", "server: { backend: ollama }")
        .replace("trials: 5", "trials: 12");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let shards: Vec<std::path::PathBuf> = servers
        .iter()
        .enumerate()
        .map(|(i, (_, addr))| {
            let out = tmp.path().join(format!("shard{i}"));
            harness()
                .arg("run")
                .arg(&path)
                .args([
                    "--shard",
                    &format!("{i}/4"),
                    "--url",
                    &format!("http://{addr}"),
                    "-q",
                    "--out",
                ])
                .arg(&out)
                .assert()
                .success();
            only_subdir(&out)
        })
        .collect();
    for (mut child, _) in servers {
        child.kill().unwrap();
        let _ = child.wait();
    }
    let merged = tmp.path().join("merged");
    harness()
        .args(["merge", "--out"])
        .arg(&merged)
        .args(&shards)
        .assert()
        .success();

    // Complete coverage, and the trials per variant of the unsharded plan.
    let summary: serde_json::Value = json(&merged.join("summary.json"));
    assert_eq!(summary["complete"], true);
    let scenario = harness::scenario::Scenario::load(&path, None).unwrap();
    let plan = Plan::build(&scenario);
    for arm in ["baseline", "fast"] {
        let planned = plan
            .trials
            .iter()
            .filter(|t| t.phase == Phase::Measured && t.arm == arm)
            .count();
        let group = summary["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["arm"] == arm)
            .unwrap();
        assert_eq!(group["trials"].as_u64().unwrap() as usize, planned, "{arm}");
    }
    // The per-server table: four servers for every comparison, and the odd one stands out.
    let decode = pooled(&summary, "decode_tps");
    let per_server = decode["servers"].as_array().unwrap();
    assert_eq!(per_server.len(), 4);
    let ratios: Vec<f64> = per_server
        .iter()
        .map(|e| e["ratio"].as_f64().unwrap())
        .collect();
    let odd = ratios.iter().copied().fold(f64::MIN, f64::max);
    assert!(
        odd > 1.6 && ratios.iter().filter(|r| **r < 1.3).count() == 3,
        "{ratios:?}"
    );
    assert!(decode["pooled"]["i2"].as_f64().unwrap() > 0.5, "{decode}");
    assert!(decode["pooled"]["q_p"].as_f64().unwrap() < 0.01, "{decode}");
    let random = &decode["random"];
    let fixed = &decode["fixed"];
    assert!(
        random[2].as_f64().unwrap() - random[1].as_f64().unwrap()
            > fixed[2].as_f64().unwrap() - fixed[1].as_f64().unwrap()
    );
    let warnings = summary["server_disagreements"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("decode_tps")),
        "{warnings:?}"
    );
    let md = std::fs::read_to_string(merged.join("report.md")).unwrap();
    assert!(
        md.contains("## Servers") && md.contains("**The servers disagree:**"),
        "{md}"
    );
    assert!(
        md.contains("- Server: ollama at 4 servers: http://"),
        "{md}"
    );
    assert!(md.contains(" on "), "{md}");
}

/// Runs `scenario` (its server replaced, and nine rounds) on three `harness sim-server`s
/// through `backend` in one run (`server.urls`); the third server rewards a small context
/// far more. The servers' URLs, the results folder, and the folder holding it.
fn on_three_servers(
    backend: &str,
    scenario: &str,
) -> (Vec<String>, std::path::PathBuf, tempfile::TempDir) {
    let servers: Vec<(std::process::Child, String)> = (0..3)
        .map(|i| {
            let odd = ["--set", "ctx_cost_per_1k=1.0"];
            let (child, _, addr) = crate::sim::sim_server(if i == 2 { &odd } else { &[] });
            (child, format!("http://{addr}"))
        })
        .collect();
    let urls: Vec<String> = servers.iter().map(|(_, u)| u.clone()).collect();
    let yaml = scenario
        .replace(
            "server: { backend: sim }",
            &format!(
                "server: {{ backend: {backend}, urls: [{}] }}",
                urls.iter()
                    .map(|u| format!("\"{u}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .replace("trials: 5", "trials: 9");
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_yaml(tmp.path(), "three", &yaml, &[], &[]);
    for (mut child, _) in servers {
        child.kill().unwrap();
        let _ = child.wait();
    }
    (urls, dir, tmp)
}

#[test]
fn each_of_several_servers_has_its_metrics_scraped_around_its_own_trials() {
    // Through the OpenAI API, whose servers serve /metrics (the simulator under vLLM's
    // names); the variants differ in what that API sends.
    let scenario = SCENARIO.replace(
        "fast: { options: { num_ctx: 1024 } }",
        "fast: { options: { temperature: 0.2 } }",
    );
    let (urls, dir, _tmp) = on_three_servers("openai", &scenario);
    let manifest: serde_json::Value = json(&dir.join("manifest.json"));
    assert_eq!(
        manifest["server_metrics"]["status"], "recorded",
        "{manifest}"
    );
    let scrapes = rows(&dir.join("server-metrics.jsonl"));
    for url in &urls {
        assert!(scrapes.iter().any(|s| s["server"] == url.as_str()), "{url}");
    }
    // A trial's window is its own server's: the tokens that server generated in it are
    // those of the trial's calls, never those of another server's trials running at once.
    let calls = rows(&dir.join("calls.jsonl"));
    let measured: Vec<serde_json::Value> = rows(&dir.join("trials.jsonl"))
        .into_iter()
        .filter(|t| t["phase"] == "measured")
        .collect();
    assert_eq!(measured.len(), 18);
    for t in &measured {
        let counted = t["server"]["counters"]["vllm:generation_tokens_total"]
            .as_f64()
            .unwrap_or_else(|| panic!("{t}"));
        let sent: u64 = calls
            .iter()
            .filter(|c| c["trial"] == t["trial"] && c["step"] != "prime")
            .map(|c| c["output_tokens"].as_u64().unwrap())
            .sum();
        assert_eq!(counted, sent as f64, "trial {}", t["trial"]);
    }
}

#[test]
fn one_run_on_three_servers_runs_them_at_once_and_pools_them_as_blocks() {
    // Three simulated servers in one run (`server.urls`); the third rewards a small
    // context far more.
    let (urls, dir, _tmp) = on_three_servers("ollama", SCENARIO);

    let trials = rows(&dir.join("trials.jsonl"));
    // Each server warmed up on both arms, and ran measured round r when r mod 3 is its
    // index: three rounds of both arms.
    for (k, url) in urls.iter().enumerate() {
        let on = |phase: &str| {
            trials
                .iter()
                .filter(|t| t["node"] == url.as_str() && t["phase"] == phase)
                .collect::<Vec<_>>()
        };
        assert_eq!(on("warmup").len(), 2, "{url}");
        let measured = on("measured");
        assert_eq!(measured.len(), 2 * 3, "{url}");
        assert!(
            measured
                .iter()
                .all(|t| t["round"].as_u64().unwrap() % 3 == k as u64)
        );
    }
    // The servers ran at once: trials of different servers overlap in time.
    let span = |t: &serde_json::Value| {
        let from = t["offset_ms"].as_f64().unwrap();
        (from, from + t["wall_ms"].as_f64().unwrap())
    };
    let overlapping = trials.iter().any(|a| {
        trials.iter().any(|b| {
            let ((a0, a1), (b0, b1)) = (span(a), span(b));
            a["node"] != b["node"] && a0 < b1 && b0 < a1
        })
    });
    assert!(overlapping, "the servers' trials never overlapped");

    let manifest: serde_json::Value = json(&dir.join("manifest.json"));
    assert_eq!(manifest["servers"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["gpu_telemetry"]["status"], "unavailable");
    assert!(
        manifest["gpu_telemetry"]["reason"]
            .as_str()
            .unwrap()
            .contains("several servers")
    );
    assert_eq!(manifest["complete"], true);

    // The server is a block: three per-server ratios, and the odd one stands out.
    let summary: serde_json::Value = json(&dir.join("summary.json"));
    let decode = pooled(&summary, "decode_tps");
    let ratios: Vec<(String, f64)> = decode["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["server"].as_str().unwrap().to_owned(),
                e["ratio"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ratios.len(), 3, "{decode}");
    let (odd, highest) = ratios
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
        .clone();
    assert_eq!(odd, urls[2], "{ratios:?}");
    assert!(highest > 1.6, "{ratios:?}");
    assert!(decode["pooled"]["i2"].as_f64().unwrap() > 0.5, "{decode}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Servers"), "{md}");
    // The setup names every server with its version.
    let named = format!(
        "- Server: ollama at 3 servers: {} (harness-sim-0.1.0), {} (harness-sim-0.1.0), {} (harness-sim-0.1.0)",
        urls[0], urls[1], urls[2]
    );
    assert!(md.contains(&named), "{md}");
}
