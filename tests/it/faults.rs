//! Nothing lost: server faults, signals, kill -9 and resume, hostile input, secrets.
//! Every fault runs on the simulator through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::metrics::{CallRecord, ErrorKind};
use harness::plan::Phase;
use harness::results::{TrialRecord, read_jsonl};
use harness::summary::Summary;

use crate::common::{harness, harness_bin, json, only_subdir, repo_root};

/// A one-agent, one-arm simulator scenario: `sim` and `server` are added to those blocks
/// (the call timeout is 2 s unless `server` sets one), `extra` is appended.
fn scenario(dir: &Path, sim: &str, server: &str, extra: &str) -> PathBuf {
    let server = if server.contains("timeout_s") {
        server.to_owned()
    } else {
        format!(", timeout_s: 2{server}")
    };
    let path = dir.join("s.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
name: faulty
seed: 9
model: m:latest
server: {{ backend: sim{server} }}
sim: {{ decode_tps: 2000, load_ms: 5, median_output_tokens: 20{sim} }}
workload: {{ kind: agent_report, data_dir: {data} }}
agents:
  collector: {{ persona: "You are a data collector. List findings." }}
variants:
  baseline: {{}}
arms: [[baseline]]
trials: 3
warmup: 0
prime_on_switch: false
{extra}
"#,
            data = repo_root().join("scenarios/data").display()
        ),
    )
    .unwrap();
    path
}

struct Ran {
    code: i32,
    dir: PathBuf,
    calls: Vec<CallRecord>,
    summary: Summary,
}

fn run(path: &Path, out: &Path) -> Ran {
    let output = harness()
        .arg("run")
        .arg(path)
        .args(["-q", "--out"])
        .arg(out)
        .output()
        .unwrap();
    let dir = only_subdir(out);
    Ran {
        code: output.status.code().unwrap_or(-1),
        calls: read_jsonl(&dir.join("calls.jsonl")).unwrap(),
        summary: json(&dir.join("summary.json")),
        dir,
    }
}

#[test]
fn every_fault_is_recorded_with_its_kind_and_the_run_goes_on() {
    // Request 1 (trial 0's report call) gets the fault; the other five calls are clean.
    for (fault, want) in [
        ("http_500", Some(ErrorKind::Http)),
        ("http_503", Some(ErrorKind::Http)),
        ("model_not_found", Some(ErrorKind::ModelNotFound)),
        ("cut", Some(ErrorKind::StreamCut)),
        ("stall", Some(ErrorKind::Timeout)),
        ("malformed", Some(ErrorKind::MalformedChunk)),
        ("bad_utf8", Some(ErrorKind::MalformedChunk)),
        ("endless", Some(ErrorKind::ResponseTooLong)),
        ("drip", None),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let path = scenario(
            tmp.path(),
            &format!(", faults: [{{ kind: {fault}, requests: [1], after_chunks: 3 }}]"),
            ", max_response_tokens: 200",
            "",
        );
        let r = run(&path, &tmp.path().join("out"));
        assert_eq!(r.code, 0, "{fault}: the run goes on");
        assert_eq!(r.calls.len(), 6, "{fault}: every call recorded");
        let hit = r
            .calls
            .iter()
            .find(|c| c.trial == 0 && c.step == "report")
            .unwrap();
        assert_eq!(hit.error_kind, want, "{fault}: {:?}", hit.error);
        let others_ok = r.calls.iter().filter(|c| c.ok).count();
        let group = &r.summary.groups[0];
        match want {
            Some(kind) => {
                assert!(!hit.ok && hit.error.is_some());
                assert_eq!(others_ok, 5, "{fault}");
                assert_eq!(group.failed_calls, 1, "{fault}");
                assert_eq!(group.failures_by_kind.get(&kind), Some(&1), "{fault}");
                let trials: Vec<TrialRecord> = read_jsonl(&r.dir.join("trials.jsonl")).unwrap();
                assert!(!trials[0].ok && trials[1].ok && trials[2].ok, "{fault}");
                // Statistics use the successful calls only, and say how many failed.
                assert_eq!(group.calls, 6);
                let report = std::fs::read_to_string(r.dir.join("report.md")).unwrap();
                assert!(report.contains("1 of 6 calls failed"), "{fault}");
            }
            None => {
                assert!(hit.ok, "{fault}: {:?}", hit.error);
                assert_eq!(others_ok, 6);
            }
        }
        if fault == "endless" {
            assert!(
                hit.content_chunks > 200 && hit.content_chunks < 260,
                "{}",
                hit.content_chunks
            );
        }
        if fault == "cut" || fault == "malformed" {
            assert_eq!(hit.content_chunks, 3, "{fault}: what arrived is kept");
        }
    }
}

#[test]
fn max_response_bytes_caps_an_endless_stream() {
    // No token cap to speak of: only the 64 KiB byte cap ends the endless stream (an
    // ordinary answer here is a few KiB: its length follows the prompt, which holds the
    // data folder's path, so a tighter cap could catch one).
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(
        tmp.path(),
        ", faults: [{ kind: endless, requests: [1] }]",
        ", max_response_bytes: 65536, max_response_tokens: 100000000",
        "",
    );
    let r = run(&path, &tmp.path().join("out"));
    assert_eq!(r.code, 0);
    let hit = r
        .calls
        .iter()
        .find(|c| c.trial == 0 && c.step == "report")
        .unwrap();
    assert_eq!(
        hit.error_kind,
        Some(ErrorKind::ResponseTooLong),
        "{:?}",
        hit.error
    );
    let error = hit.error.as_deref().unwrap();
    assert!(error.contains("caps 65536 bytes"), "{error}");
    // The stream stopped at the cap: 64 KiB of NDJSON lines of about 100 bytes each.
    assert!(
        hit.content_chunks > 200 && hit.content_chunks < 1000,
        "{}",
        hit.content_chunks
    );
    assert_eq!(r.calls.iter().filter(|c| !c.ok).count(), 1);
}

#[test]
fn a_restart_refuses_connections_and_retries_carry_calls_over_it() {
    let tmp = tempfile::tempdir().unwrap();
    // Without retries: the calls that meet the closed port fail as `connect`.
    let path = scenario(
        tmp.path(),
        ", faults: [{ kind: restart, requests: [1], after_chunks: 2, down_ms: 700 }]",
        "",
        "",
    );
    let r = run(&path, &tmp.path().join("plain"));
    assert_eq!(r.code, 0);
    let kinds: Vec<Option<ErrorKind>> = r.calls.iter().map(|c| c.error_kind).collect();
    assert_eq!(kinds[1], Some(ErrorKind::StreamCut), "{kinds:?}");
    assert!(kinds.contains(&Some(ErrorKind::Connect)), "{kinds:?}");

    // With retries, a refused connection is tried again after the back-off.
    let path = scenario(
        tmp.path(),
        ", faults: [{ kind: restart, requests: [1], after_chunks: 2, down_ms: 300 }]",
        "",
        "retries: { max: 4, backoff_ms: 100 }",
    );
    let r = run(&path, &tmp.path().join("retried"));
    assert_eq!(r.code, 0);
    assert_eq!(
        r.calls.iter().filter(|c| !c.ok).count(),
        1,
        "only the cut call fails"
    );
    let retried: Vec<&CallRecord> = r.calls.iter().filter(|c| c.attempts > 1).collect();
    assert!(!retried.is_empty() && retried.iter().all(|c| c.ok));
    assert_eq!(r.summary.groups[0].retried_calls, retried.len());
}

/// Starts a run in the background on a slow simulator (about 0.5 s per trial).
fn slow_run(dir: &Path, out: &Path, trials: u32) -> std::process::Child {
    let path = dir.join("slow.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
name: slow
seed: 4
model: m:latest
server: {{ backend: sim }}
sim: {{ decode_tps: 300, load_ms: 20, median_output_tokens: 40 }}
workload: {{ kind: agent_report, data_dir: {} }}
agents:
  collector: {{ persona: "You are a data collector. List findings." }}
variants:
  baseline: {{}}
  fast: {{ options: {{ num_ctx: 1024 }} }}
arms: [[baseline], [fast]]
trials: {trials}
warmup: 1
"#,
            repo_root().join("scenarios/data").display()
        ),
    )
    .unwrap();
    spawn_run(&path, out, Stdio::piped())
}

/// Starts `harness run PATH -q --out OUT` in the background, stdout discarded.
fn spawn_run(path: &Path, out: &Path, stderr: Stdio) -> std::process::Child {
    Command::new(harness_bin())
        .arg("run")
        .arg(path)
        .args(["-q", "--out"])
        .arg(out)
        .env_remove("OLLAMA_HOST")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Waits until the run writing into `out` has at least `n` lines in its `file`; returns
/// its results folder.
fn wait_for_lines(out: &Path, file: &str, n: usize) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(dir) = std::fs::read_dir(out)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path())
        {
            let lines = std::fs::read_to_string(dir.join(file))
                .map(|t| t.lines().count())
                .unwrap_or(0);
            if lines >= n {
                return dir;
            }
        }
        assert!(Instant::now() < deadline, "the run made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

#[test]
fn sigint_and_sigterm_stop_cleanly_with_130_and_143() {
    for (name, code) in [("INT", 130), ("TERM", 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let child = slow_run(tmp.path(), &out, 20);
        let dir = wait_for_lines(&out, "trials.jsonl", 2);
        signal(&child, name);
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(code), "SIG{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("finishing the trial in flight"), "{stderr}");
        let summary: Summary = json(&dir.join("summary.json"));
        assert!(!summary.complete, "SIG{name}: marked incomplete");
        let manifest: serde_json::Value = json(&dir.join("manifest.json"));
        assert_eq!(manifest["complete"], false);
        // Every finished trial's calls are on disk and parse; no trial was cut short.
        let trials: Vec<TrialRecord> = read_jsonl(&dir.join("trials.jsonl")).unwrap();
        let calls: Vec<CallRecord> = read_jsonl(&dir.join("calls.jsonl")).unwrap();
        assert!(trials.len() >= 2 && trials.len() < 42);
        for t in &trials {
            let n = calls
                .iter()
                .filter(|c| c.trial == t.trial && c.step != "prime")
                .count();
            assert_eq!(n, 2, "trial {} has all its calls", t.trial);
        }
    }
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    // The second call stalls for up to 60 s: after one Ctrl-C the run waits for it (the
    // trial in flight finishes); a second Ctrl-C leaves at once.
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(
        tmp.path(),
        ", faults: [{ kind: stall, requests: [1], after_chunks: 2 }]",
        ", timeout_s: 60",
        "",
    );
    let out = tmp.path().join("out");
    let child = spawn_run(&path, &out, Stdio::piped());
    let dir = wait_for_lines(&out, "calls.jsonl", 1);
    // The stalled call has started once the first call is on disk; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(500));
    let waiting = Instant::now();
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    assert!(
        waiting.elapsed() < Duration::from_secs(5),
        "left after {:?}, not at once",
        waiting.elapsed()
    );
    assert_eq!(output.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("again to stop now"), "{stderr}");
    // What finished before is on disk.
    let calls: Vec<CallRecord> = read_jsonl(&dir.join("calls.jsonl")).unwrap();
    assert!(!calls.is_empty() && calls.iter().all(|c| c.ok));
}

/// The trial of `dir` that has workflow calls (not just its priming call) in `calls.jsonl`
/// but no row in `trials.jsonl`, and how many such calls it has, if any.
fn cut_short(dir: &Path) -> Option<(u32, usize)> {
    let calls: Vec<CallRecord> = read_jsonl(&dir.join("calls.jsonl")).ok()?;
    let trials: Vec<TrialRecord> = read_jsonl(&dir.join("trials.jsonl")).ok()?;
    let done: std::collections::BTreeSet<u32> = trials.iter().map(|t| t.trial).collect();
    let workflow = || calls.iter().filter(|c| c.step != "prime");
    let cut = workflow().map(|c| c.trial).find(|t| !done.contains(t))?;
    Some((cut, workflow().filter(|c| c.trial == cut).count()))
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_files_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    // Kill without warning while a trial is cut short: calls.jsonl holds a call of a trial
    // that trials.jsonl has no row for. A trial can finish between the look and the kill,
    // so look again afterwards and, rarely, start over.
    let (dir, cut) = (0..5)
        .find_map(|attempt| {
            let killed_out = tmp.path().join(format!("killed-{attempt}"));
            let mut child = slow_run(tmp.path(), &killed_out, 4);
            let dir = wait_for_lines(&killed_out, "trials.jsonl", 3);
            let deadline = Instant::now() + Duration::from_secs(60);
            while cut_short(&dir).is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            child.kill().unwrap();
            child.wait().unwrap();
            cut_short(&dir).map(|cut| (dir, cut))
        })
        .expect("a run killed while a trial was under way");
    let (cut_trial, cut_calls) = cut;
    assert!(cut_calls > 0);
    let before: Vec<TrialRecord> = read_jsonl(&dir.join("trials.jsonl")).unwrap();
    assert!(before.len() < 10, "killed mid-run");

    harness()
        .args(["run", "-q", "--resume"])
        .arg(&dir)
        .assert()
        .success();

    let clean_out = tmp.path().join("clean");
    let status = slow_run(tmp.path(), &clean_out, 4).wait().unwrap();
    assert!(status.success());
    let clean = only_subdir(&clean_out);

    assert_eq!(
        std::fs::read(dir.join("plan.json")).unwrap(),
        std::fs::read(clean.join("plan.json")).unwrap(),
        "same plan"
    );
    let count = |d: &Path| {
        let calls: Vec<CallRecord> = read_jsonl(&d.join("calls.jsonl")).unwrap();
        let trials: Vec<TrialRecord> = read_jsonl(&d.join("trials.jsonl")).unwrap();
        let mut per_arm = std::collections::BTreeMap::new();
        for c in &calls {
            *per_arm
                .entry((c.arm.clone(), c.phase == Phase::Measured, c.step.clone()))
                .or_insert(0) += 1;
        }
        let mut trial_ids: Vec<u32> = trials.iter().map(|t| t.trial).collect();
        trial_ids.sort_unstable();
        (per_arm, trial_ids, calls.iter().all(|c| c.ok))
    };
    let (resumed, clean_counts) = (count(&dir), count(&clean));
    // Priming calls depend on what ran just before, so compare the workflow's calls.
    let without_primes = |m: &std::collections::BTreeMap<
        (harness::metrics::Name, bool, harness::metrics::Name),
        i32,
    >| {
        m.iter()
            .filter(|(k, _)| k.2 != "prime")
            .map(|(k, v)| (k.clone(), *v))
            .collect::<Vec<_>>()
    };
    assert_eq!(without_primes(&resumed.0), without_primes(&clean_counts.0));
    assert_eq!(resumed.1, clean_counts.1, "every trial once");
    // The calls the cut trial left behind were dropped and the trial ran again: it has as
    // many calls as in the clean run, not those plus the leftovers.
    let calls_of = |d: &Path, trial: u32| {
        let calls: Vec<CallRecord> = read_jsonl(&d.join("calls.jsonl")).unwrap();
        calls
            .iter()
            .filter(|c| c.trial == trial && c.step != "prime")
            .count()
    };
    assert_eq!(calls_of(&dir, cut_trial), calls_of(&clean, cut_trial));
    assert!(resumed.2);
    let summary: Summary = json(&dir.join("summary.json"));
    assert!(summary.complete);
    let manifest: serde_json::Value = json(&dir.join("manifest.json"));
    assert_eq!(manifest["resumed_at"].as_array().unwrap().len(), 1);
    // One clock for the whole folder: the resumed part goes on where the records (the
    // interrupted trial's GPU samples included) ended.
    let offsets = |file: &str| -> Vec<f64> {
        let rows: Vec<serde_json::Value> = read_jsonl(&dir.join(file)).unwrap();
        rows.iter()
            .map(|r| r["offset_ms"].as_f64().unwrap())
            .collect()
    };
    let trial_starts = offsets("trials.jsonl");
    assert!(
        trial_starts.windows(2).all(|w| w[0] < w[1]),
        "{trial_starts:?}"
    );
    let samples = offsets("gpu.jsonl");
    assert!(samples.len() > 2);
    assert!(samples.windows(2).all(|w| w[0] <= w[1]), "{samples:?}");
    // The same agent reports exist, numbered as in the clean run.
    let reports = |d: &Path| {
        let mut names: Vec<String> = Vec::new();
        for v in ["baseline", "fast"] {
            for e in std::fs::read_dir(d.join("agents").join(v)).unwrap() {
                names.push(format!("{v}/{}", e.unwrap().file_name().to_string_lossy()));
            }
        }
        names.sort();
        names
    };
    assert_eq!(reports(&dir), reports(&clean));
}

#[test]
fn resume_refuses_a_folder_whose_scenario_was_edited() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert!(slow_run(tmp.path(), &out, 1).wait().unwrap().success());
    let dir = only_subdir(&out);
    let copy = dir.join("scenario.yaml");
    let mut text = std::fs::read_to_string(&copy).unwrap();
    text.push_str("# edited after the run\n");
    std::fs::write(&copy, text).unwrap();
    let calls_before = std::fs::read(dir.join("calls.jsonl")).unwrap();
    harness()
        .args(["run", "-q", "--resume"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "does not match the hash in the manifest: the folder was edited; refusing to resume",
        ));
    assert_eq!(
        std::fs::read(dir.join("calls.jsonl")).unwrap(),
        calls_before
    );
}

#[test]
fn hostile_scenarios_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = repo_root().join("scenarios/data").display().to_string();
    let base = format!(
        "name: h\nmodel: m\nworkload: {{ kind: agent_report, data_dir: {data} }}\nagents: {{ a: {{ persona: p }} }}\nvariants: {{ baseline: {{}} }}\narms: [[baseline]]\ntrials: 1\n"
    );
    // An alias bomb where it is expanded: `arms` holds a list of 2,000 aliases of a name,
    // then 1,000 aliases of that list (2 million names from 15 KB of YAML). The parser's
    // budget stops it; an unknown key holding the bomb would never expand it.
    let names = vec!["*s0"; 2000].join(", ");
    let lists = vec!["*s1"; 1000].join(", ");
    let bomb = base
        .replace("name: h", "name: h\ndescription: &s0 baseline")
        .replace(
            "arms: [[baseline]]",
            &format!("arms: [&s1 [{names}], {lists}]"),
        );
    let cases: Vec<(&str, String, &str)> = vec![
        ("alias bomb", bomb, "field `arms`: budget breached"),
        (
            "deep nesting",
            base.replace(
                "model: m",
                &format!("model: {}{}", "[".repeat(5000), "]".repeat(5000)),
            ),
            "model",
        ),
        (
            "huge string",
            base.replace(
                "persona: p",
                &format!("persona: '{}'", "x".repeat(2_000_000)),
            ),
            "at most",
        ),
        (
            "missing data dir",
            base.replace(&data, "/nonexistent/data"),
            "not a readable directory",
        ),
        (
            "unsafe variant name",
            base.replace("baseline: {}", "'../../etc': {}")
                .replace("[[baseline]]", "[['../../etc']]"),
            "safe",
        ),
        (
            "not YAML at all",
            "\u{0}\u{1}{{{{: : -".to_owned(),
            "h.yaml:1:1: unexpected character",
        ),
    ];
    for (what, text, says) in cases {
        let path = tmp.path().join("h.yaml");
        std::fs::write(&path, text).unwrap();
        let out = harness().arg("validate").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{what}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("h.yaml"),
            "{what}: names the file: {stderr}"
        );
        assert!(stderr.contains(says), "{what}: {stderr}");
    }
}

#[test]
fn results_folders_are_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "", "", "");
    let out = tmp.path().join("out");
    for _ in 0..2 {
        harness()
            .arg("run")
            .arg(&path)
            .args(["-q", "--out"])
            .arg(&out)
            .assert()
            .success();
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
}

#[test]
fn an_api_key_never_reaches_a_file_or_the_terminal() {
    use crate::common::{Reply, Step, fake_server};
    let key = "sk-harness-planted-3f9a1c";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(fake_server(Reply::Stream(vec![
        Step::Send(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello there\"}}]}\n\n",
        ),
        Step::Send(
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        ),
        Step::Send("data: [DONE]\n\n"),
    ])));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("openai.yaml");
    std::fs::write(
        &path,
        format!(
            "name: secret\nmodel: m\nserver: {{ backend: openai, url: {}, api_key_env: HARNESS_TEST_KEY }}\nworkload: {{ kind: agent_report, data_dir: {} }}\nagents: {{ a: {{ persona: p }} }}\nvariants: {{ baseline: {{}} }}\narms: [[baseline]]\ntrials: 2\n",
            fake.url,
            repo_root().join("scenarios/data").display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let output = harness()
        .arg("run")
        .arg(&path)
        .args(["-q", "--out"])
        .arg(&out)
        .env("HARNESS_TEST_KEY", key)
        .env("HARNESS_LOG", "debug")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The key was used…
    assert!(
        fake.authorization
            .lock()
            .unwrap()
            .iter()
            .all(|a| a.as_deref() == Some(&format!("Bearer {key}")))
    );
    // …and appears nowhere: not in any results file, not on stdout or stderr.
    for stream in [&output.stdout, &output.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(key));
    }
    let mut files = 0;
    let mut stack = vec![out];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(key),
                    "{} holds the key",
                    p.display()
                );
                files += 1;
            }
        }
    }
    assert!(files >= 8, "{files} files checked");
}

mod parser_fuzz {
    use std::path::Path;

    use harness::scenario::Scenario;
    use proptest::prelude::*;

    const VALID: &str = include_str!("../../scenarios/chimera.yaml");

    /// Parsing never panics, and every rejection says what and where.
    fn check(text: &str) {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        if let Err(problems) = Scenario::parse(text, &base, None) {
            assert!(!problems.is_empty());
            for p in &problems {
                assert!(!p.message.trim().is_empty(), "{problems:?}");
            }
        }
    }

    /// Characters that matter to YAML, to make mutations that reach deep into the parser.
    const SPICE: &[&str] = &[
        ":", "- ", "[", "]", "{", "}", "&a ", "*a", "!!", "'", "\"", "#", "\n", "  ", "|", ">",
        "?", ",", "%", "@", "\t", "~", "null", "1e999", "-1", "\u{0}", "\u{feff}", "é",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_text(text in ".{0,400}") {
            check(&text);
        }

        #[test]
        fn mutated_flagship_scenario(
            edits in prop::collection::vec((0usize..VALID.len(), 0usize..SPICE.len(), 0usize..40), 1..8)
        ) {
            let mut text = VALID.to_owned();
            for (at, spice, cut) in edits {
                let mut at = at.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + cut).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, SPICE[spice]);
            }
            check(&text);
        }
    }
}

#[test]
fn a_call_stalled_past_the_stop_grace_is_recorded_as_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(
        tmp.path(),
        ", faults: [{ kind: stall, requests: [1], after_chunks: 2 }]",
        ", timeout_s: 600",
        "stop_grace_s: 0.5",
    );
    let out = tmp.path().join("out");
    let child = spawn_run(&path, &out, Stdio::null());
    // The stalled call is under way once the first call is on disk.
    let dir = wait_for_lines(&out, "calls.jsonl", 1);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    signal(&child, "TERM");
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(143));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped within the grace, not the 600 s timeout"
    );
    let calls: Vec<CallRecord> = read_jsonl(&dir.join("calls.jsonl")).unwrap();
    let stalled = calls.iter().find(|c| c.step == "report").unwrap();
    assert_eq!(
        stalled.error_kind,
        Some(ErrorKind::Cancelled),
        "{stalled:?}"
    );
    assert_eq!(stalled.trial, 0);
}
