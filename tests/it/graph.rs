//! Agent graphs and trace replay on the simulator, through the real binary: fan-out
//! really runs at once (and queues on one slot), tool waits are honoured, conversations
//! grow, the prefix cache shows, and a replay keeps the trace's lengths and clock. Graph
//! and trace problems are reported where they are.

use std::path::Path;

use harness::metrics::CallRecord;
use harness::results::RunRecords;
use harness::scenario::{Problem, Scenario};

use crate::common::{harness, repo_root, run_scenario};

/// Runs `yaml` (with `TRACE` replaced by `trace`'s path, when given) on the simulator and
/// reads the results folder back.
fn run(yaml: &str, trace: Option<&str>) -> RunRecords {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = yaml.to_owned();
    if let Some(text) = trace {
        let path = dir.path().join("trace.jsonl");
        std::fs::write(&path, text).unwrap();
        yaml = yaml.replace("TRACE", &path.display().to_string());
    }
    harness::results::load(&run_scenario(dir.path(), &yaml)).unwrap()
}

/// One measured trial of one variant on the simulator with `sim` and these `agents`.
fn graph(sim: &str, agents: &str) -> String {
    format!(
        r#"
name: g
seed: 3
model: m:latest
server: {{ backend: sim }}
sim: {{ decode_tps: 400, load_ms: 20, {sim} }}
workload: {{ kind: agent_graph, task: "- one\n- two\n- three\n- four" }}
prime_on_switch: false
agents:
{agents}
variants: {{ baseline: {{}} }}
arms: [[baseline]]
trials: 1
warmup: 0
"#
    )
}

fn of<'a>(calls: &'a [CallRecord], agent: &str) -> Vec<&'a CallRecord> {
    let mut v: Vec<&CallRecord> = calls.iter().filter(|c| c.agent == agent).collect();
    v.sort_by_key(|c| (c.instance, c.turn));
    v
}

/// When the first token arrived and when the call ended, ms after the run's start.
fn first_and_end(c: &CallRecord) -> (f64, f64) {
    (c.offset_ms + c.ttft_ms.unwrap(), c.offset_ms + c.e2e_ms)
}

const FAN_OUT: &str = r#"
  fan:
    persona: "You research one item."
    fan_out: 4
    split: items
    max_tokens: 24
  join:
    persona: "You merge."
    after: [fan]
    max_tokens: 8
"#;

#[test]
fn fan_out_instances_run_at_once_with_enough_slots_and_queue_on_one() {
    let wide = run(&graph("parallel: 4", FAN_OUT), None);
    let fan = of(&wide.calls, "fan");
    assert_eq!(fan.len(), 4);
    assert!(fan.iter().all(|c| c.ok && c.output_tokens == Some(24)));
    // Each instance read its own item of the task.
    let prompts: std::collections::BTreeSet<_> = fan.iter().map(|c| c.prompt_tokens).collect();
    assert!(prompts.len() >= 2, "{prompts:?}");
    // Four slots: every instance has its first token before any instance ends.
    let last_first = fan.iter().map(|c| first_and_end(c).0).fold(0.0, f64::max);
    let first_end = fan
        .iter()
        .map(|c| first_and_end(c).1)
        .fold(f64::INFINITY, f64::min);
    assert!(last_first < first_end, "{last_first} ≥ {first_end}");
    // The join starts after the last instance ended.
    let join = of(&wide.calls, "join");
    let fan_end = fan.iter().map(|c| first_and_end(c).1).fold(0.0, f64::max);
    assert!(join[0].offset_ms >= fan_end - 1.0);

    let narrow = run(&graph("parallel: 1", FAN_OUT), None);
    let mut fan: Vec<(f64, f64)> = of(&narrow.calls, "fan")
        .into_iter()
        .map(first_and_end)
        .collect();
    fan.sort_by(|a, b| a.0.total_cmp(&b.0));
    // One slot: each instance's first token comes after the previous one ended.
    for w in fan.windows(2) {
        assert!(w[1].0 >= w[0].1 - 1.0, "{fan:?}");
    }
}

const LOOP: &str = r#"
  agent:
    persona: "You are a performance engineer who calls tools."
    turns: 3
    tool: { wait_ms: 80, result_tokens: 50 }
    max_tokens: 16
"#;

#[test]
fn tool_waits_are_honoured_and_conversations_grow_by_reply_and_result() {
    let r = run(&graph("parallel: 1", LOOP), None);
    let calls = of(&r.calls, "agent");
    assert_eq!(
        calls.iter().map(|c| c.turn).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    for w in calls.windows(2) {
        let (prev, next) = (w[0], w[1]);
        // The next turn starts at least the tool's wait after the previous ended.
        assert!(
            next.offset_ms >= prev.offset_ms + prev.e2e_ms + 80.0 - 1.0,
            "{} < {} + {} + 80",
            next.offset_ms,
            prev.offset_ms,
            prev.e2e_ms
        );
        // Its prompt holds the previous prompt, the reply and the tool result.
        let grown = next.prompt_tokens.unwrap() - prev.prompt_tokens.unwrap();
        assert!(
            grown >= prev.output_tokens.unwrap() + 50,
            "grew by {grown}, reply {:?}",
            prev.output_tokens
        );
    }
    let pipeline = &r.trials[0].pipelines[0];
    let job = pipeline.job.as_ref().unwrap();
    assert_eq!(job.critical_path.len(), 1);
    // Two tool steps of 80 ms on the critical path, and the job took at least that.
    assert!(job.tool_ms >= 160.0 - 1.0, "{job:?}");
    assert!(
        pipeline.wall_ms >= job.tool_ms + job.llm_ms - 1.0,
        "{pipeline:?}"
    );
}

#[test]
fn the_simulators_prefix_cache_shows_as_cached_prompt_tokens() {
    let cached = |sim: &str| -> Vec<u64> {
        let r = run(&graph(sim, LOOP), None);
        of(&r.calls, "agent")
            .iter()
            .map(|c| c.cached_prompt_tokens.unwrap())
            .collect()
    };
    let on = cached("parallel: 1");
    assert_eq!(on[0], 0, "nothing is cached before the first call: {on:?}");
    // Later turns start with the earlier prompt: at least its whole 16-token blocks.
    assert!(on[1] >= 16 && on[2] > on[1], "{on:?}");
    assert_eq!(cached("parallel: 1, prefix_cache: false"), [0, 0, 0]);
}

fn trace_scenario(extra: &str) -> String {
    format!(
        r#"
name: t
seed: 5
model: m:latest
server: {{ backend: sim }}
sim: {{ decode_tps: 2000, load_ms: 20, parallel: 8 }}
workload: {{ kind: trace, trace: TRACE, {extra} }}
prime_on_switch: false
variants: {{ baseline: {{}} }}
arms: [[baseline]]
trials: 1
warmup: 0
"#
    )
}

#[test]
fn a_replay_keeps_the_traces_lengths_and_relative_times() {
    let trace = r#"{"id": "a", "start_ms": 0, "turns": [{"input_tokens": 120, "output_tokens": 30}, {"tool_wait_ms": 40, "input_tokens": 60, "output_tokens": 12, "fan_out": 2}]}
{"id": "b", "start_ms": 100, "turns": [{"input_tokens": 75, "output_tokens": 9}]}
{"id": "c", "start_ms": 250, "turns": [{"input_tokens": 200, "output_tokens": 41}]}
"#;
    let r = run(&trace_scenario("time_scale: 1.0"), Some(trace));
    let calls: Vec<&CallRecord> = r.calls.iter().filter(|c| c.step == "replay").collect();
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|c| c.ok), "{calls:?}");
    let first = |id: &str| {
        calls
            .iter()
            .find(|c| c.agent == id && c.turn == Some(1))
            .copied()
            .unwrap()
    };
    // Prompts and replies of the recorded lengths.
    for (id, input, output) in [("a", 120, 30), ("b", 75, 9), ("c", 200, 41)] {
        let c = first(id);
        assert_eq!(
            (c.prompt_tokens, c.output_tokens),
            (Some(input), Some(output)),
            "{id}"
        );
    }
    let second: Vec<&&CallRecord> = calls.iter().filter(|c| c.turn == Some(2)).collect();
    assert_eq!(second.len(), 2, "the fanned-out turn is two calls");
    assert!(second.iter().all(|c| c.output_tokens == Some(12)));
    // The second turn's prompt is the conversation so far plus its 60 new tokens.
    let grown = second[0].prompt_tokens.unwrap();
    assert!(grown >= 120 + 30 + 60, "{grown}");
    // Conversations start at their recorded offsets (within 5 ms).
    let t0 = first("a").offset_ms;
    for (id, at) in [("b", 100.0), ("c", 250.0)] {
        let start = first(id).offset_ms - t0;
        assert!(
            (start - at).abs() < 5.0,
            "{id} started at {start} ms, not {at}"
        );
    }
}

#[test]
fn mooncake_requests_that_share_blocks_share_a_cached_prefix() {
    let trace = r#"{"timestamp": 0, "input_length": 150, "output_length": 5, "hash_ids": [1, 2, 3]}
{"timestamp": 300, "input_length": 140, "output_length": 7, "hash_ids": [1, 2, 9]}
"#;
    let r = run(
        &trace_scenario("format: mooncake, block_tokens: 64"),
        Some(trace),
    );
    let mut calls: Vec<&CallRecord> = r.calls.iter().filter(|c| c.step == "replay").collect();
    calls.sort_by(|a, b| a.offset_ms.total_cmp(&b.offset_ms));
    let lengths: Vec<_> = calls
        .iter()
        .map(|c| (c.prompt_tokens, c.output_tokens))
        .collect();
    assert_eq!(lengths, [(Some(150), Some(5)), (Some(140), Some(7))]);
    // Blocks 1 and 2 (128 tokens) are the same text: the second request finds them cached.
    assert_eq!(calls[0].cached_prompt_tokens, Some(0));
    assert_eq!(calls[1].cached_prompt_tokens, Some(128), "{:?}", calls[1]);
}

/// Problems of a graph scenario, as (field, line, column, message).
fn problems(agents: &str, workload: &str) -> Vec<Problem> {
    let text = format!(
        "name: g\nmodel: m\nworkload: {workload}\nagents:\n{agents}variants: {{ baseline: {{}} }}\narms: [[baseline]]\ntrials: 2\n"
    );
    Scenario::parse(&text, &repo_root().join("scenarios"), None).unwrap_err()
}

fn one(agents: &str) -> Problem {
    let p = problems(agents, "{ kind: agent_graph }");
    assert_eq!(p.len(), 1, "{p:?}");
    p.into_iter().next().unwrap()
}

#[test]
fn graph_problems_are_reported_where_they_are() {
    // An unknown agent, at its name in `after`.
    let p = one("  a: { persona: A }\n  b: { persona: B, after: [a, c] }\n");
    assert_eq!(
        (p.field.as_str(), p.line, p.column),
        ("agents.b.after", Some(6), Some(31))
    );
    assert!(
        p.message.contains("no agent named `c` (agents: a, b)"),
        "{p:?}"
    );

    // A cycle, with its path.
    let p = one(
        "  a: { persona: A, after: [c] }\n  b: { persona: B, after: [a] }\n  c: { persona: C, after: [b] }\n  d: { persona: D, after: [c] }\n",
    );
    assert_eq!((p.field.as_str(), p.line), ("agents.a.after", Some(5)));
    assert!(
        p.message
            .contains("cycle: a waits for c waits for b waits for a"),
        "{p:?}"
    );

    // No instances.
    let p = one("  a: { persona: A, fan_out: 0 }\n");
    assert_eq!(
        (p.field.as_str(), p.line, p.column),
        ("agents.a.fan_out", Some(5), Some(29))
    );
    assert!(
        p.message.contains("out of range (must be 1 to 1024)"),
        "{p:?}"
    );

    // A node nobody reaches: two agents with nothing after them.
    let p = problems(
        "  a: { persona: A }\n  b: { persona: B, after: [a] }\n  c: { persona: C, after: [a] }\n",
        "{ kind: agent_graph }",
    );
    let at: Vec<(&str, Option<u64>)> = p.iter().map(|p| (p.field.as_str(), p.line)).collect();
    assert_eq!(at, [("agents.b", Some(6)), ("agents.c", Some(7))]);
    assert!(p[0].message.contains("its output reaches no one"), "{p:?}");

    // Keys in the wrong place.
    let p = one("  a: { persona: A, turns: 1, tool: { wait_ms: 5 } }\n");
    assert_eq!(p.field, "agents.a.tool");
    assert!(p.message.contains("with one turn it never runs"), "{p:?}");
    let p = one("  a: { persona: A, split: same }\n");
    assert!(p.message.contains("no `fan_out` above 1"), "{p:?}");
    let p = one("  a: { persona: A }\n  b: { persona: B, consumes: a }\n");
    assert!(p.message.contains("`after: [a]`"), "{p:?}");
    let p = one("  a: { persona: A, turns: 2, tool: { wait_ms: { uniform: [50, 10] } } }\n");
    assert_eq!(p.field, "agents.a.tool.wait_ms");
    let p = problems(
        "  a: { persona: A, fan_out: 2 }\n",
        "{ kind: agent_report, data_dir: data }",
    );
    assert_eq!(p[0].field, "agents.a.fan_out");
    assert!(
        p[0].message
            .contains("belong to `workload.kind: agent_graph`"),
        "{p:?}"
    );
}

#[test]
fn trace_problems_name_the_trace_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    std::fs::write(
        &trace,
        "{\"turns\": [{\"input_tokens\": 5, \"output_tokens\": 3}]}\n{\"turns\": []}\n",
    )
    .unwrap();
    let text = format!(
        "name: t\nmodel: m\nworkload: {{ kind: trace, trace: {} }}\nvariants: {{ baseline: {{}} }}\narms: [[baseline]]\ntrials: 2\n",
        trace.display()
    );
    let p = Scenario::parse(&text, Path::new("."), None).unwrap_err();
    assert_eq!(
        (p[0].field.as_str(), p[0].line),
        ("workload.trace", Some(3))
    );
    assert!(
        p[0].message
            .contains("t.jsonl: line 2: turns: a conversation needs at least one turn"),
        "{p:?}"
    );

    let missing = text.replace("t.jsonl", "nope.jsonl");
    let p = Scenario::parse(&missing, Path::new("."), None).unwrap_err();
    assert!(p[0].message.contains("cannot read"), "{p:?}");
}

#[test]
fn the_shipped_trace_is_the_one_synth_trace_writes() {
    let shipped =
        std::fs::read_to_string(repo_root().join("scenarios/traces/agentic.jsonl")).unwrap();
    assert_eq!(shipped, harness::scenario::trace::synthesize(1, 8));
    let out = harness()
        .args(["synth-trace", "--conversations", "8", "--seed", "1"])
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), shipped);
}

#[test]
fn resume_refuses_a_trace_that_changed_since_the_run_started() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    std::fs::write(
        &trace,
        "{\"turns\": [{\"input_tokens\": 8, \"output_tokens\": 2}]}\n",
    )
    .unwrap();
    let yaml = trace_scenario("").replace("TRACE", &trace.display().to_string());
    let results = run_scenario(dir.path(), &yaml);
    std::fs::write(
        &trace,
        "{\"turns\": [{\"input_tokens\": 9, \"output_tokens\": 2}]}\n",
    )
    .unwrap();
    harness()
        .args(["run", "-q", "--resume"])
        .arg(&results)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "is not the trace this run started replaying",
        ));
}

#[test]
fn the_same_graph_runs_through_the_simulators_openai_api() {
    let yaml = graph("parallel: 1", LOOP).replace("backend: sim }", "backend: sim-openai }");
    let r = run(&yaml, None);
    let calls = of(&r.calls, "agent");
    assert_eq!(calls.len(), 3);
    for w in calls.windows(2) {
        let grown = w[1].prompt_tokens.unwrap() - w[0].prompt_tokens.unwrap();
        assert!(grown >= w[0].output_tokens.unwrap() + 50, "grew by {grown}");
        assert!(w[1].cached_prompt_tokens.unwrap() >= 16, "{:?}", w[1]);
    }
    // Read from `usage` and `timings`, as from llama.cpp.
    assert!(
        calls
            .iter()
            .all(|c| !c.tokens_counted && c.decode_tps.is_some())
    );
    // Options the OpenAI API cannot carry are refused as for any OpenAI-compatible server.
    let refused = yaml.replace(
        "variants: { baseline: {} }",
        "variants: { baseline: { options: { num_ctx: 512 } } }",
    );
    let problems = Scenario::parse(&refused, Path::new("."), None).unwrap_err();
    assert!(
        problems[0].message.contains("cannot send `num_ctx`"),
        "{problems:?}"
    );
}
