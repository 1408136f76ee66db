//! The whole harness against a real LLM server: llama.cpp serving SmolLM2-135M on one CPU
//! thread, started by `scripts/real-llm.sh start`. Ignored by `make test`; `make test-real`
//! starts the server and runs these with `--ignored`. They assert shape and internal
//! consistency, never absolute speed.

use std::path::Path;

use harness::gate::GateReport;
use harness::metrics::CallRecord;
use harness::plan::Phase;
use harness::results::read_jsonl;
use harness::scenario::Metric;
use harness::summary::Summary;

use crate::common::{harness, json, only_subdir, repo_root, run_scenario};

fn server_url() -> String {
    std::env::var("REAL_LLM_URL").unwrap_or_else(|_| "http://127.0.0.1:8088".to_owned())
}

fn measured(run: &Path) -> Vec<CallRecord> {
    harness::results::read_jsonl::<CallRecord>(&run.join("calls.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|c| c.phase == Phase::Measured && c.step != "prime")
        .collect()
}

/// Every measured call is complete and consistent with what the server reported.
fn check_calls(calls: &[CallRecord]) {
    assert!(!calls.is_empty());
    for c in calls {
        let at = format!("trial {} {} {} {}", c.trial, c.variant, c.agent, c.step);
        assert!(c.ok, "{at}: {:?}", c.error);
        let tokens = c.output_tokens.unwrap_or(0);
        assert!(
            tokens > 0 && !c.tokens_counted,
            "{at}: tokens from usage: {c:?}"
        );
        // llama.cpp streams one chunk per token (a token that ends mid-character waits
        // for the next), so chunks never outnumber the tokens usage reports.
        assert!(
            c.content_chunks >= 1 && c.content_chunks <= tokens,
            "{at}: {} chunks, {tokens} tokens",
            c.content_chunks
        );
        let ttft = c.ttft_ms.unwrap();
        assert!(
            0.0 < ttft && ttft < c.e2e_ms,
            "{at}: ttft {ttft}, e2e {}",
            c.e2e_ms
        );
        // decode_tps comes from llama.cpp's timings: predicted_n / predicted_ms. Its token
        // count must be usage's.
        let (decode, eval_ms) = (c.decode_tps.unwrap(), c.eval_ms.unwrap());
        let predicted = decode * eval_ms / 1e3;
        assert!(
            (predicted - tokens as f64).abs() < 0.5,
            "{at}: timings say {predicted} tokens, usage {tokens}"
        );
        // A plausible decode rate for a 135M model on one CPU thread, whatever the CPU.
        assert!(
            (1.0..20_000.0).contains(&decode),
            "{at}: decode_tps {decode}"
        );
        assert!(c.prompt_tokens.unwrap() > 0);
    }
}

/// The per-run reports hold the model's own words: each agent's section is the text of
/// that agent's report call (its length matches the call's `response_chars` up to the
/// whitespace trimmed around it), it is not empty, and it is not the simulator's. (What a 135M
/// model writes is not checked: it may be a list of dates.)
fn check_reports(run: &Path, calls: &[CallRecord]) {
    let mut checked = 0;
    for variant_dir in std::fs::read_dir(run.join("agents")).unwrap() {
        for report in std::fs::read_dir(variant_dir.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(report.unwrap().path()).unwrap();
            assert!(!text.contains("Simulated run"), "{text}");
            let trial: u32 = text
                .split("**Trial:** ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|t| t.parse().ok())
                .expect("trial number in the report");
            for section in text.split("## Report of agent `").skip(1) {
                let (agent, rest) = section.split_once("`\n\n").unwrap();
                // The section ends where the next agent's begins (split above) or at the
                // workflow summary; the model's own text may hold headings and rules.
                let body = rest
                    .split("---\n\n## Workflow Summary")
                    .next()
                    .unwrap()
                    .trim();
                let Some(call) = calls
                    .iter()
                    .find(|c| c.trial == trial && c.agent == agent && c.step == "report")
                else {
                    continue; // a warmup run: its calls are not among the measured ones
                };
                let chars = body.chars().count() as u64;
                assert!(
                    chars <= call.response_chars && call.response_chars - chars <= 64,
                    "trial {trial} {agent}: section has {chars} chars, the call returned {}",
                    call.response_chars
                );
                assert!(!body.is_empty(), "trial {trial} {agent}: empty section");
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 6,
        "only {checked} report sections matched measured calls"
    );
}

#[test]
#[ignore = "needs a real LLM server: make test-real"]
fn real_smoke_scenario_on_llama_cpp() {
    let out = tempfile::tempdir().unwrap();
    harness()
        .args([
            "run",
            "scenarios/real-smoke.yaml",
            "-q",
            "--url",
            &server_url(),
            "--out",
        ])
        .arg(out.path())
        .current_dir(repo_root())
        .assert()
        .success();
    let run = only_subdir(out.path());
    let calls = measured(&run);
    // 2 arms × 3 trials × 2 agents × 2 calls.
    assert_eq!(calls.len(), 2 * 3 * 2 * 2);
    check_calls(&calls);
    check_reports(&run, &calls);

    let summary: Summary = json(&run.join("summary.json"));
    assert!(summary.complete && !summary.simulated);
    // Energy is compared only where GPU telemetry was recorded (NVML on a GPU machine).
    let telemetry = summary
        .setup
        .gpu_telemetry
        .as_ref()
        .expect("telemetry status");
    let with_energy = telemetry.status == "recorded";
    assert_eq!(
        summary.comparisons.len(),
        Metric::ALL
            .iter()
            .filter(|m| !m.needs_load() && (with_energy || !m.is_energy()))
            .count()
    );
    for f in ["report.md", "table.tex", "comparisons.csv"] {
        let text = std::fs::read_to_string(run.join(f)).unwrap();
        assert!(text.contains("terse"), "{f} lacks the variant");
    }
    let gate: GateReport = json(&run.join("gate.json"));
    assert_eq!(gate.gates.len(), 1);
    let manifest: serde_json::Value = json(&run.join("manifest.json"));
    assert_eq!(manifest["scenario"]["server"]["backend"], "openai");
    assert!(
        manifest["server"]["field_sources"]["decode_tps"]
            .as_str()
            .unwrap()
            .contains("predicted_ms")
    );
    assert_eq!(
        manifest["server"]["model_details"]["served_models"][0],
        "smollm2-135m"
    );
    // llama.cpp's own settings, from /props and /slots, are recorded and stated.
    let details = &manifest["server"]["model_details"];
    let n_ctx = details["n_ctx"].as_u64().expect("/props n_ctx");
    let slots = details["total_slots"].as_u64().expect("/props total_slots");
    assert!(n_ctx >= 512 && slots >= 1, "{details}");
    assert_eq!(
        details["slots"].as_u64(),
        Some(slots),
        "/slots has one entry a slot"
    );
    assert!(
        details["slot_n_ctx"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.as_u64() == Some(n_ctx / slots) || c.as_u64() == Some(n_ctx))
    );
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains(&format!("context {n_ctx} tokens per slot")),
        "{md}"
    );

    // llama.cpp's own metrics (--metrics), scraped around and during every trial: it
    // counted exactly the tokens the calls recorded, and ran one request at a time.
    let info = &manifest["server_metrics"];
    assert_eq!(info["status"], "recorded", "{info}");
    assert_eq!(info["server"], "llama.cpp");
    assert_eq!(info["failed"], 0, "{info}");
    let scrapes = std::fs::read_to_string(run.join("server-metrics.jsonl")).unwrap();
    assert_eq!(
        scrapes.lines().count() as u64,
        info["scrapes"].as_u64().unwrap()
    );
    let rows = summary.server.clone();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!((r.covered, r.trials), (3, 3), "{r:?}");
        assert_eq!(
            r.server_generated_tokens,
            Some(r.recorded_generated_tokens as f64),
            "{r:?}"
        );
        assert_eq!(
            r.server_prompt_tokens,
            Some(r.recorded_prompt_tokens as f64),
            "{r:?}"
        );
        assert!(r.running.is_some_and(|p| p.max <= 1.0), "{r:?}");
        assert!(r.prefix_hit_share.is_some(), "{r:?}");
    }
    assert!(
        summary.server_warnings.is_empty(),
        "{:?}",
        summary.server_warnings
    );
    assert!(md.contains("- Server metrics: /metrics of llama.cpp every 500 ms"));
    assert!(md.contains("## What the server counted"));
}

#[test]
#[ignore = "needs a real LLM server: make test-real"]
fn chimera_workflow_runs_on_llama_cpp_by_changing_only_the_server_block() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(repo_root().join("scenarios/chimera.yaml")).unwrap();
    let start = original.find("\nserver:\n").unwrap();
    let end = original[start..].find("\nmodel:").unwrap() + start;
    let server_block = format!(
        "\nserver:\n  backend: openai\n  url: {}\n  timeout_s: 300\n  ignore_options: [num_ctx, num_gpu]\n",
        server_url()
    );
    let scenario = format!("{}{server_block}{}", &original[..start], &original[end..]);
    std::fs::write(dir.path().join("chimera.yaml"), &scenario).unwrap();
    // The scenario's `data_dir: data` is relative to the file: bring the data along.
    let data = dir.path().join("data");
    copy_dir(&repo_root().join("scenarios/data"), &data);

    let out = dir.path().join("out");
    harness()
        .arg("run")
        .arg(dir.path().join("chimera.yaml"))
        .args(["-q", "--trials", "1", "--warmup", "0", "--out"])
        .arg(&out)
        .assert()
        .success();
    let run = only_subdir(&out);
    let summary: Summary = json(&run.join("summary.json"));
    assert_eq!(
        summary.groups.len(),
        6,
        "every arm and variant of chimera.yaml ran"
    );
    check_calls(&measured(&run));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
#[ignore = "needs a real LLM server: make test-real"]
fn a_small_agent_graph_runs_on_llama_cpp_and_its_conversations_grow() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!(
        r#"
name: real-graph
seed: 4
model: smollm2-135m
server: {{ backend: openai, url: {}, timeout_s: 120 }}
workload:
  kind: agent_graph
  task: "List two ways to make a web page load faster, one bullet each."
agents:
  planner: {{ persona: "You plan. Answer with bullet points only.", max_tokens: 32 }}
  worker:
    persona: "You are an engineer. Answer briefly."
    after: [planner]
    fan_out: 2
    turns: 2
    tool: {{ wait_ms: 20, result_tokens: 30 }}
    max_tokens: 24
  writer: {{ persona: "You summarise.", after: [worker], max_tokens: 24 }}
variants: {{ baseline: {{ options: {{ temperature: 0.2, seed: 1 }} }} }}
arms: [[baseline]]
trials: 1
warmup: 0
"#,
        server_url()
    );
    let run = run_scenario(dir.path(), &scenario);
    let calls = measured(&run);
    // planner 1 + worker 2 instances × 2 turns + writer 1, none failed.
    assert_eq!(calls.len(), 6, "{calls:?}");
    check_calls(&calls);
    for instance in [0, 1] {
        let turns: Vec<&CallRecord> = calls
            .iter()
            .filter(|c| c.agent == "worker" && c.instance == Some(instance))
            .collect();
        assert_eq!(turns.len(), 2);
        let (first, second) = (turns[0], turns[1]);
        assert_eq!((first.turn, second.turn), (Some(1), Some(2)));
        // The second prompt holds the first, its reply and the tool's result.
        assert!(
            second.prompt_tokens.unwrap()
                > first.prompt_tokens.unwrap() + first.output_tokens.unwrap(),
            "prompt {:?} → {:?} after a {:?}-token reply",
            first.prompt_tokens,
            second.prompt_tokens,
            first.output_tokens
        );
    }
    let trials: Vec<harness::results::TrialRecord> =
        harness::results::read_jsonl(&run.join("trials.jsonl")).unwrap();
    let job = trials[0].pipelines[0].job.as_ref().unwrap();
    let path: Vec<&str> = job.critical_path.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(path, ["planner", "worker", "writer"]);
    let summary: Summary = json(&run.join("summary.json"));
    assert_eq!(summary.jobs[0].jobs, 1);
}

#[test]
#[ignore = "needs a real LLM server: make test-real"]
fn load_levels_run_on_llama_cpp_and_its_one_slot_queues_the_second_stream() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!(
        r#"
name: real-load
seed: 6
model: smollm2-135m
server: {{ backend: openai, url: {}, timeout_s: 120 }}
workload:
  kind: prompts
  synthetic: {{ input_tokens: 24, output_tokens: 12 }}
variants: {{ baseline: {{ options: {{ temperature: 0.2, seed: 1 }} }} }}
load: {{ concurrency: [1, 2], requests: 6, warmup_requests: 2 }}
slo: {{ ttft_ms: 60000 }}
trials: 1
warmup: 0
"#,
        server_url()
    );
    // Scraped often enough to see the slot's queue, which lasts about a second.
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, &scenario).unwrap();
    let out = dir.path().join("out");
    harness()
        .arg("run")
        .arg(&path)
        .args(["-q", "--server-metrics-interval-ms", "50", "--out"])
        .arg(&out)
        .assert()
        .success();
    let run = only_subdir(&out);
    let calls = measured(&run);
    assert_eq!(calls.len(), 2 * 4, "{calls:?}");
    check_calls(&calls);
    // Synthetic prompts ask for exactly their length, and llama.cpp honours ignore_eos.
    assert!(
        calls.iter().all(|c| c.output_tokens == Some(12)),
        "{calls:?}"
    );
    let at = |arm: &str| -> Vec<&CallRecord> { calls.iter().filter(|c| c.arm == arm).collect() };
    let workers: std::collections::BTreeSet<u32> = at("baseline@c2")
        .iter()
        .filter_map(|c| c.instance)
        .collect();
    assert_eq!(workers, [0, 1].into());
    // One slot: at two streams a request waits for the other's decode before its first
    // token, so TTFT grows with the load.
    let mean_ttft = |arm: &str| {
        let c = at(arm);
        c.iter().map(|c| c.ttft_ms.unwrap()).sum::<f64>() / c.len() as f64
    };
    assert!(
        mean_ttft("baseline@c2") > 1.5 * mean_ttft("baseline@c1"),
        "TTFT {} at c1, {} at c2",
        mean_ttft("baseline@c1"),
        mean_ttft("baseline@c2")
    );
    let summary: Summary = json(&run.join("summary.json"));
    assert_eq!(summary.serving.len(), 2);
    for row in &summary.serving {
        let (rps, good) = (row.req_per_s.unwrap(), row.goodput_rps.unwrap());
        assert!(rps > 0.0 && (good - rps).abs() < 1e-9, "{row:?}");
    }
    // The server saw it too: at two streams its one slot deferred the second request.
    let waiting = |arm: &str| {
        let row = summary.server.iter().find(|r| r.arm == arm).unwrap();
        row.waiting.expect("llamacpp:requests_deferred").max
    };
    assert_eq!(waiting("baseline@c1"), 0.0);
    assert!(waiting("baseline@c2") >= 1.0, "{:?}", summary.server);
}

/// A second real server for the test that needs two, stopped when dropped.
struct SecondServer {
    port: &'static str,
}

impl SecondServer {
    fn start(port: &'static str) -> SecondServer {
        let status = std::process::Command::new(repo_root().join("scripts/real-llm.sh"))
            .arg("start")
            .env("REAL_LLM_PORT", port)
            .status()
            .unwrap();
        assert!(status.success(), "scripts/real-llm.sh start on port {port}");
        SecondServer { port }
    }
}

impl Drop for SecondServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_root().join("scripts/real-llm.sh"))
            .arg("stop")
            .env("REAL_LLM_PORT", self.port)
            .status();
    }
}

#[test]
#[ignore = "needs a real LLM server: make test-real"]
fn one_run_on_two_llama_cpp_servers_runs_a_lane_on_each_and_scrapes_each() {
    let second = SecondServer::start("8089");
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!(
        r#"
name: real-two
seed: 8
model: smollm2-135m
server: {{ backend: openai, urls: ["{}", "http://127.0.0.1:{}"], timeout_s: 120 }}
workload:
  kind: prompts
  synthetic: {{ input_tokens: 24, output_tokens: 8 }}
  requests: 2
variants:
  baseline: {{ options: {{ temperature: 0.2, seed: 1 }} }}
  hot: {{ options: {{ temperature: 0.9, seed: 1 }} }}
arms: [[baseline], [hot]]
trials: 4
warmup: 1
"#,
        server_url(),
        second.port
    );
    let run = run_scenario(dir.path(), &scenario);
    let calls = measured(&run);
    check_calls(&calls);
    let trials: Vec<serde_json::Value> = read_jsonl(&run.join("trials.jsonl")).unwrap();
    let urls = [server_url(), format!("http://127.0.0.1:{}", second.port)];
    for (k, url) in urls.iter().enumerate() {
        // Each server warmed up on both arms and ran both arms of rounds k and k + 2.
        let on: Vec<&serde_json::Value> = trials
            .iter()
            .filter(|t| t["node"] == url.as_str())
            .collect();
        assert_eq!(on.len(), 2 + 2 * 2, "{url}: {on:?}");
        assert!(
            on.iter()
                .filter(|t| t["phase"] == "measured")
                .all(|t| t["round"].as_u64().unwrap() % 2 == k as u64)
        );
    }
    // llama.cpp's own metrics, per server: each trial's window counted the tokens of its
    // own calls, not those of the other server's trial running at the same time.
    let manifest: serde_json::Value = json(&run.join("manifest.json"));
    assert_eq!(
        manifest["server_metrics"]["status"], "recorded",
        "{manifest}"
    );
    assert_eq!(manifest["server_metrics"]["server"], "llama.cpp");
    let all: Vec<serde_json::Value> = read_jsonl(&run.join("calls.jsonl")).unwrap();
    for t in trials.iter().filter(|t| t["phase"] == "measured") {
        let counted = t["server"]["counters"]["llamacpp:tokens_predicted_total"]
            .as_f64()
            .unwrap_or_else(|| panic!("{t}"));
        let sent: u64 = all
            .iter()
            .filter(|c| c["trial"] == t["trial"] && c["step"] != "prime")
            .map(|c| c["output_tokens"].as_u64().unwrap())
            .sum();
        assert_eq!(counted, sent as f64, "trial {}", t["trial"]);
    }
    let summary: serde_json::Value = json(&run.join("summary.json"));
    let pooled = summary["servers"].as_array().unwrap();
    assert!(
        pooled
            .iter()
            .any(|p| p["metric"] == "e2e_ms" && p["servers"].as_array().unwrap().len() == 2),
        "{pooled:?}"
    );
}
