//! Load levels through the binary: a closed loop puts the asked concurrency on the server
//! (as the simulator counts it), an open loop keeps and records its schedule and says when
//! it fell behind, every level is compared with the baseline at the same level, and bad
//! `load:` keys are refused where they are written.

use std::path::Path;

use harness::plan::Phase;
use harness::scenario::{LoadLevel, Metric, Scenario};
use harness::summary::Summary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{harness, json, run_scenario};

/// The body of `GET path` from the server at `addr`.
async fn get(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap()
}

const PROMPTS: &str = "{ kind: prompts, synthetic: { input_tokens: 40, output_tokens: 24 } }";

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_loop_keeps_its_concurrency_in_flight_at_the_server() {
    let config = harness::scenario::SimConfig {
        parallel: 16,
        decode_tps: 600.0,
        load_ms: 5.0,
        ..Default::default()
    };
    let sim = harness::sim::SimServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: c\nseed: 3\nmodel: m:latest\nserver: {{ backend: ollama, url: '{}' }}\nworkload: {PROMPTS}\nvariants: {{ baseline: {{}} }}\nload: {{ concurrency: [4], requests: 48 }}\nprime_on_switch: false\ntrials: 1\nwarmup: 0\n",
        sim.url()
    );
    let _ = get(sim.addr, "/sim/stats?reset=1").await;
    let path = dir.path().to_owned();
    let run = tokio::task::spawn_blocking(move || run_scenario(&path, &yaml))
        .await
        .unwrap();
    let stats = get(sim.addr, "/sim/stats").await;
    assert_eq!(stats["requests"], 48, "{stats}");
    assert_eq!(stats["max_in_flight"], 4, "{stats}");
    let mean = stats["mean_in_flight"].as_f64().unwrap();
    // Four workers, one request each at every moment but the last few ends.
    assert!(
        (3.4..=4.0).contains(&mean),
        "mean in flight {mean}: {stats}"
    );

    let records = harness::results::load(&run).unwrap();
    let workers: std::collections::BTreeSet<u32> =
        records.calls.iter().filter_map(|c| c.instance).collect();
    assert_eq!(workers, (0..4).collect());
    assert!(records.calls.iter().all(|c| c.schedule_lag_ms.is_none()));
    sim.stop().await;
}

#[test]
fn levels_are_arms_compared_and_gated_at_the_same_level() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: s\nseed: 5\nmodel: m:latest\nserver: {{ backend: sim }}\nsim: {{ parallel: 4, decode_tps: 900, load_ms: 5 }}\nworkload: {PROMPTS}\nvariants: {{ baseline: {{}}, fast: {{ options: {{ num_ctx: 1024 }} }} }}\nload: {{ concurrency: [1, 3], requests: 9, warmup_requests: 3 }}\nslo: {{ ttft_ms: 10000, e2e_ms: 10000 }}\ntrials: 3\nwarmup: 0\ngates: [{{ metric: req_per_s, variant: fast, tolerance: 50% }}]\n"
    );
    let run = run_scenario(dir.path(), &yaml);
    let s: Summary = json(&run.join("summary.json"));
    let arms: Vec<&str> = s.groups.iter().map(|g| g.arm.as_str()).collect();
    assert_eq!(arms, ["baseline@c1", "fast@c1", "baseline@c3", "fast@c3"]);
    // Each level's comparison is against the baseline at that level.
    let pairs: Vec<(&str, &str)> = s
        .comparisons
        .iter()
        .filter(|c| c.metric == Metric::ReqPerS)
        .map(|c| (c.arm.as_str(), c.baseline_arm.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("fast@c1", "baseline@c1"), ("fast@c3", "baseline@c3")]
    );
    // No job metrics at a load level; the serving ones instead.
    assert!(s.comparisons.iter().all(|c| !c.metric.is_job()));
    // The serving table: levels ascending, warm-up excluded, a generous SLO met by all.
    assert_eq!(s.serving.len(), 4);
    for r in &s.serving {
        assert_eq!((r.trials, r.requests, r.failed), (3, 3 * 6, 0), "{r:?}");
        let (rps, good) = (r.req_per_s.unwrap(), r.goodput_rps.unwrap());
        assert!(rps > 0.0 && (good - rps).abs() < 1e-9, "{r:?}");
    }
    assert_eq!(s.serving[0].level, LoadLevel::Concurrency(1));
    assert_eq!(s.saturation.len(), 2);
    let records = harness::results::load(&run).unwrap();
    let warm = records
        .calls
        .iter()
        .filter(|c| c.phase == Phase::Warmup && c.step != "prime")
        .count();
    assert_eq!(warm, 4 * 3 * 3, "3 warm-up requests per job");
    // The gate, written without an arm, is judged at every level.
    let gate: serde_json::Value = json(&run.join("gate.json"));
    let gated: Vec<&str> = gate["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["arm"].as_str().unwrap())
        .collect();
    assert_eq!(gated, ["fast@c1", "fast@c3"]);
    // So is one given on the command line.
    harness()
        .arg("gate")
        .arg(&run)
        .args(["--gate", "ttft_ms:fast<=baseline+90%"])
        .assert()
        .success();
    let gate: serde_json::Value = json(&run.join("gate.json"));
    let gated: Vec<(&str, &str)> = gate["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["metric"].as_str().unwrap(), g["arm"].as_str().unwrap()))
        .collect();
    assert_eq!(
        gated,
        [
            ("req_per_s", "fast@c1"),
            ("req_per_s", "fast@c3"),
            ("ttft_ms", "fast@c1"),
            ("ttft_ms", "fast@c3")
        ]
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## Load levels"), "{report}");
    assert!(report.contains("goodput req/s (TTFT ≤ 10000 ms, e2e ≤ 10000 ms)"));
}

#[test]
fn an_open_loop_keeps_its_schedule_and_says_when_it_fell_behind() {
    let dir = tempfile::tempdir().unwrap();
    // 80 req/s against a server that takes ~50 ms a request, one at a time: with at most
    // two in flight the client cannot keep the schedule.
    let yaml = format!(
        "name: o\nseed: 9\nmodel: m:latest\nserver: {{ backend: sim }}\nsim: {{ parallel: 1, decode_tps: 500, load_ms: 5 }}\nworkload: {PROMPTS}\nvariants: {{ baseline: {{}} }}\nload: {{ rate: [2, 80], arrival: constant, requests: 12, max_inflight: 2 }}\nprime_on_switch: false\ntrials: 2\nwarmup: 0\n"
    );
    let run = run_scenario(dir.path(), &yaml);
    let records = harness::results::load(&run).unwrap();
    let at = |arm: &str| -> Vec<&harness::metrics::CallRecord> {
        let mut calls: Vec<_> = records.calls.iter().filter(|c| c.arm == arm).collect();
        calls.sort_by(|a, b| a.offset_ms.total_cmp(&b.offset_ms));
        calls
    };
    // At 2 req/s the requests go out on time, 500 ms apart (within a timer's slack on a
    // busy test machine).
    let slow = at("baseline@r2");
    assert_eq!(slow.len(), 2 * 12);
    for c in &slow {
        assert!(c.schedule_lag_ms.unwrap() < 25.0, "{c:?}");
    }
    let gaps: Vec<f64> = slow[..12]
        .windows(2)
        .map(|w| w[1].offset_ms - w[0].offset_ms)
        .collect();
    assert!(gaps.iter().all(|g| (g - 500.0).abs() < 25.0), "{gaps:?}");
    // At 80 req/s they queue behind `max_inflight`, and the record says how late.
    let fast = at("baseline@r80");
    let latest = fast
        .iter()
        .filter_map(|c| c.schedule_lag_ms)
        .fold(0.0, f64::max);
    assert!(latest > 100.0, "{latest}");
    for c in &fast {
        let sched = c.value(Metric::SchedE2eMs).unwrap();
        assert!((sched - c.e2e_ms - c.schedule_lag_ms.unwrap()).abs() < 1e-9);
    }
    let s: Summary = json(&run.join("summary.json"));
    let w = s.schedule_warning.expect("the client fell behind");
    // The warning counts requests more than 10 ms late; on a loaded machine one or two at
    // 2 req/s can be (the check above bounds them at 25 ms), but never most of them.
    assert!(w.contains("baseline at 80 req/s:"), "{w}");
    if let Some(at) = w.find("baseline at 2 req/s: ") {
        let late: usize = w[at + "baseline at 2 req/s: ".len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        assert!(late <= 3, "{w}");
    }
    let r80 = s
        .serving
        .iter()
        .find(|r| r.level == LoadLevel::Rate(80.0))
        .unwrap();
    assert!(
        r80.late > 10 && r80.req_per_s.unwrap() < 0.5 * 80.0,
        "{r80:?}"
    );
    let sat = &s.saturation[0];
    assert_eq!(sat.level, Some(LoadLevel::Rate(2.0)), "{sat:?}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("the client fell behind its schedule"));
}

/// The problems of `yaml`, one line each (`line:column field: message`).
fn problems(yaml: &str) -> Vec<String> {
    Scenario::parse(yaml, Path::new("."), None)
        .expect_err("must be refused")
        .iter()
        .map(|p| {
            format!(
                "{}:{} {}: {}",
                p.line.unwrap_or(0),
                p.column.unwrap_or(0),
                p.field,
                p.message
            )
        })
        .collect()
}

#[test]
fn bad_load_keys_are_refused_at_their_position() {
    let base = |load: &str, extra: &str| {
        format!(
            "name: s\nmodel: m\nworkload: {PROMPTS}\nvariants: {{ baseline: {{}} }}\n{load}\ntrials: 2\n{extra}"
        )
    };
    let p = problems(&base(
        "load: { concurrency: [4], rate: [2], requests: 5 }",
        "",
    ));
    assert!(p[0].starts_with("5:") && p[0].contains("not both"), "{p:?}");
    let p = problems(&base("load: { requests: 5 }", ""));
    assert!(p[0].contains("give the levels"), "{p:?}");
    let p = problems(&base(
        "load: { concurrency: [4, 4], arrival: poisson, requests: 5 }",
        "",
    ));
    assert!(
        p.iter()
            .any(|m| m.contains("load.concurrency[1]: concurrency 4 is listed twice")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("load.arrival: `arrival` belongs to an open loop")),
        "{p:?}"
    );
    let p = problems(&base("load: { rate: [0, 2], arrival: gamma }", ""));
    assert!(
        p.iter()
            .any(|m| m.contains("load.rate[0]: 0 is out of range")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("load.burstiness: a gamma arrival needs")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|m| m.contains("load.requests: say how long")),
        "{p:?}"
    );
    let p = problems(&base(
        "load: { concurrency: [2], requests: 4, warmup_requests: 4 }",
        "",
    ));
    assert!(p[0].contains("leaves no measured request"), "{p:?}");
    // `slo` needs levels; levels need a prompt set; the level sets the request count.
    let p = problems(&base("slo: { ttft_ms: 100 }", "arms: [[baseline]]\n"));
    assert!(
        p[0].starts_with("5:") && p[0].contains("`slo` needs `load:`"),
        "{p:?}"
    );
    let p = problems(
        &base("load: { concurrency: [2], requests: 4 }", "").replace(
            PROMPTS,
            "{ kind: prompts, requests: 3, synthetic: { input_tokens: 4, output_tokens: 4 } }",
        ),
    );
    assert!(p[0].contains("workload.requests: with `load:`"), "{p:?}");
    let p = problems(
        &base(
            "load: { concurrency: [2], requests: 4 }",
            "agents: { a: { persona: p } }\n",
        )
        .replace(PROMPTS, "{ kind: agent_report, data_dir: . }"),
    );
    assert!(
        p.iter()
            .any(|m| m.contains("load levels drive a prompt set")),
        "{p:?}"
    );
    // Without `load:`, arms are still required.
    let p = problems(&base("", ""));
    assert!(p[0].contains("missing field `arms`"), "{p:?}");
}

#[test]
fn a_load_run_reports_the_same_when_recomputed() {
    // `harness report` on the folder recomputes the same summary, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: r\nseed: 2\nmodel: m:latest\nserver: {{ backend: sim }}\nsim: {{ decode_tps: 2000, load_ms: 5 }}\nworkload: {PROMPTS}\nvariants: {{ baseline: {{}} }}\nload: {{ rate: [20], requests: 6 }}\nslo: {{ tpot_ms: 100 }}\ntrials: 2\nwarmup: 0\n"
    );
    let run = run_scenario(dir.path(), &yaml);
    let before = std::fs::read(run.join("summary.json")).unwrap();
    harness().arg("report").arg(&run).assert().success();
    assert_eq!(before, std::fs::read(run.join("summary.json")).unwrap());
}

#[test]
fn validate_names_the_load_levels_of_the_sweep() {
    let out = harness()
        .arg("validate")
        .arg(crate::common::repo_root().join("scenarios/sweep.yaml"))
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("6 arms (at load levels c1, c4, c16)") && text.contains("30 measured"),
        "{text}"
    );
}

#[test]
fn a_ramp_starts_the_workers_of_a_closed_loop_apart() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: ramp\nseed: 4\nmodel: m:latest\nserver: {{ backend: sim }}\nsim: {{ parallel: 4, decode_tps: 2000, load_ms: 5 }}\nworkload: {PROMPTS}\nvariants: {{ baseline: {{}} }}\nload: {{ concurrency: [4], duration_s: 0.8, ramp_up_s: 0.4 }}\nprime_on_switch: false\ntrials: 1\nwarmup: 0\n"
    );
    let run = run_scenario(dir.path(), &yaml);
    let calls = harness::results::load(&run).unwrap().calls;
    let first = |worker: u32| {
        calls
            .iter()
            .filter(|c| c.instance == Some(worker))
            .map(|c| c.offset_ms)
            .fold(f64::INFINITY, f64::min)
    };
    let t0 = first(0);
    for k in 1..4u32 {
        let at = first(k) - t0;
        assert!(
            (at - 100.0 * f64::from(k)).abs() < 30.0,
            "worker {k} started at +{at} ms"
        );
    }
    // An open loop's schedule says when requests start: a ramp is refused there.
    let p = problems(&format!(
        "name: s\nmodel: m\nworkload: {PROMPTS}\nvariants: {{ baseline: {{}} }}\nload: {{ rate: [2], requests: 4, ramp_up_s: 1 }}\ntrials: 2\n"
    ));
    assert!(
        p[0].contains("load.ramp_up_s: `ramp_up_s` belongs to a closed loop"),
        "{p:?}"
    );
}
