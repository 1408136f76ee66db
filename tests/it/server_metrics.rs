//! The server's own metrics (its Prometheus page), scraped at each trial's start and end
//! and between: on the simulator, whose page counts what it served; beside another client
//! of the same server; and from servers that have no page.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::{harness, json, only_subdir, repo_root, run_scenario};

const SCRAPED: &str = r#"
name: scraped
seed: 5
server: { backend: sim-openai }
sim: { load_ms: 20, parallel: 2 }
model: m:latest
workload:
  kind: prompts
  synthetic: { input_tokens: 200, output_tokens: 24 }
variants:
  baseline: {}
  hot:
    options: { temperature: 0.2 }
arms: [[baseline], [hot], [baseline, hot]]
trials: 2
warmup: 0
"#;

/// Runs `yaml` with extra arguments into `dir/NAME`, and returns the results folder.
fn run_with(dir: &std::path::Path, name: &str, yaml: &str, args: &[&str]) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    let out = dir.join(name);
    harness()
        .arg("run")
        .arg(&path)
        .args(args)
        .args(["-q", "--out"])
        .arg(&out)
        .assert()
        .success();
    only_subdir(&out)
}

#[test]
fn each_trial_gets_the_servers_counters_and_peaks_and_they_agree_with_the_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_with(
        tmp.path(),
        "on",
        SCRAPED,
        &["--server-metrics-interval-ms", "20"],
    );
    let manifest: serde_json::Value = json(&run.join("manifest.json"));
    let info = &manifest["server_metrics"];
    assert_eq!(info["status"], "recorded", "{info}");
    assert_eq!(info["server"], "the simulator (under vLLM's names)");
    assert_eq!(info["failed"], 0);
    // Every scrape is a line of server-metrics.jsonl, written as it was taken.
    let lines = std::fs::read_to_string(run.join("server-metrics.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count() as u64,
        info["scrapes"].as_u64().unwrap()
    );
    let trials: Vec<serde_json::Value> = std::fs::read_to_string(run.join("trials.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(trials.len(), 6);
    for t in &trials {
        assert!(t["server"]["scrapes"].as_u64().unwrap() >= 2, "{t}");
    }

    let summary: serde_json::Value = json(&run.join("summary.json"));
    let rows = summary["server"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["covered"], 2, "{r}");
        // The server counted exactly the tokens the calls recorded: no one else used it.
        assert_eq!(
            r["server_generated_tokens"].as_f64().unwrap(),
            r["recorded_generated_tokens"].as_f64().unwrap(),
            "{r}"
        );
        assert_eq!(
            r["server_prompt_tokens"].as_f64().unwrap(),
            r["recorded_prompt_tokens"].as_f64().unwrap(),
            "{r}"
        );
        assert!(r["recorded_generated_tokens"].as_u64().unwrap() > 0);
        assert_eq!(r["waiting"]["max"], 0.0, "two slots, at most two requests");
        let running = r["running"]["max"].as_f64().unwrap();
        // One pipeline sends one request at a time; the mixed arm's two fill both slots.
        let expected = if r["arm"] == "baseline+hot" { 2.0 } else { 1.0 };
        assert_eq!(running, expected, "{r}");
        assert!(r["kv_cache"]["max"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(summary.get("server_warnings").is_none(), "{summary}");
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("## What the server counted"));
    assert!(
        md.contains("- Server metrics: /metrics of the simulator (under vLLM's names) every 20 ms")
    );

    // Switched off: said so, no file, no section, the same comparisons.
    let off = run_with(tmp.path(), "off", SCRAPED, &["--server-metrics", "off"]);
    let manifest: serde_json::Value = json(&off.join("manifest.json"));
    assert_eq!(manifest["server_metrics"]["status"], "off");
    assert!(!off.join("server-metrics.jsonl").exists());
    let md = std::fs::read_to_string(off.join("report.md")).unwrap();
    assert!(!md.contains("## What the server counted"));
    assert!(md.contains("- Server metrics: off"));
}

#[test]
fn another_client_of_the_same_server_shows_in_its_token_counts() {
    let (mut child, _, addr) = crate::sim::sim_server(&[]);
    // Another client, sending its own requests to the server all through the run.
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (stop, addr) = (stop.clone(), addr.clone());
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            let body = r#"{"model":"m","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"someone else's request"}]}"#;
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
                    continue;
                };
                let request = format!(
                    "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(request.as_bytes());
                let _ = s.read_to_end(&mut Vec::new());
            }
        })
    };
    let yaml = SCRAPED
        .replace(
            "server: { backend: sim-openai }",
            &format!("server: {{ backend: openai, url: \"http://{addr}\" }}"),
        )
        .replace(
            "arms: [[baseline], [hot], [baseline, hot]]",
            "arms: [[baseline], [hot]]",
        );
    let tmp = tempfile::tempdir().unwrap();
    let run = run_scenario(tmp.path(), &yaml);
    stop.store(true, Ordering::Relaxed);
    other.join().unwrap();
    child.kill().unwrap();
    let _ = child.wait();

    let summary: serde_json::Value = json(&run.join("summary.json"));
    for r in summary["server"].as_array().unwrap() {
        assert!(
            r["server_generated_tokens"].as_f64().unwrap()
                > r["recorded_generated_tokens"].as_f64().unwrap(),
            "{r}"
        );
    }
    let warnings: Vec<&str> = summary["server_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("baseline: the server counted") && w.contains("another client")),
        "{warnings:?}"
    );
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("**The server and the calls disagree:**"),
        "{md}"
    );
}

#[test]
fn a_server_without_a_metrics_page_is_said_so_once_and_the_run_goes_on() {
    // Ollama's API has no metrics page.
    let tmp = tempfile::tempdir().unwrap();
    let ollama = run_scenario(
        tmp.path(),
        &SCRAPED.replace("backend: sim-openai", "backend: sim"),
    );
    let manifest: serde_json::Value = json(&ollama.join("manifest.json"));
    assert_eq!(manifest["server_metrics"]["status"], "unavailable");
    assert_eq!(
        manifest["server_metrics"]["reason"],
        "the Ollama API has no metrics page"
    );
    assert!(!ollama.join("server-metrics.jsonl").exists());

    // An OpenAI-compatible server that answers /metrics with 404 (llama.cpp without
    // --metrics answers 501): the reason names the fix.
    use crate::common::{Reply, Step, fake_server};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(fake_server(Reply::Stream(vec![
        Step::Send("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"}}]}\n\n"),
        Step::Send(
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        ),
        Step::Send("data: [DONE]\n\n"),
    ])));
    let yaml = format!(
        "name: bare\nmodel: m\nserver: {{ backend: openai, url: {} }}\nworkload: {{ kind: agent_report, data_dir: {} }}\nagents: {{ a: {{ persona: p }} }}\nvariants: {{ baseline: {{}} }}\narms: [[baseline]]\ntrials: 2\n",
        fake.url,
        repo_root().join("scenarios/data").display()
    );
    let bare_dir = tmp.path().join("bare");
    std::fs::create_dir(&bare_dir).unwrap();
    let bare = run_scenario(&bare_dir, &yaml);
    let manifest: serde_json::Value = json(&bare.join("manifest.json"));
    let reason = manifest["server_metrics"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("GET /metrics: HTTP 404") && reason.contains("--metrics"),
        "{reason}"
    );
    let md = std::fs::read_to_string(bare.join("report.md")).unwrap();
    assert_eq!(
        md.matches("Server metrics: unavailable (GET /metrics")
            .count(),
        1
    );
    assert!(!md.contains("## What the server counted"));
    let trials = std::fs::read_to_string(bare.join("trials.jsonl")).unwrap();
    // Warm-up and measured trials ran, none with server metrics.
    assert!(trials.lines().count() >= 2);
    assert!(!trials.contains("\"server\""));
}
