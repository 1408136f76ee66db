//! The `trace` workload: every conversation of the trace starts at its (scaled) time after
//! the job's start, as its own task; its turns run in order, each after its (scaled) tool
//! wait, with `fan_out` calls at once. Prompts are synthetic text of the recorded lengths
//! ([`synth`]): a turn's prompt is the conversation so far plus its new input, and Mooncake
//! requests that share a `hash_ids` block share its text, so a server's prefix cache sees
//! what it saw in the recorded workload. Each call asks for exactly the recorded output
//! length (`ignore_eos`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::job::Span;
use super::{Call, Caller, metrics_row, report_header, synth};
use crate::backend::{Message, Role};
use crate::metrics::CallRecord;
use crate::results::PipelineResult;
use crate::rng::{hash_bytes, mix64};
use crate::scenario::Trace;
use crate::scenario::trace::{Conversation, Turn};

/// One conversation, as it ran.
struct ConversationRun {
    id: String,
    start: Instant,
    end: Instant,
    llm_ms: f64,
    tool_ms: f64,
    records: Vec<CallRecord>,
}

/// Replays the whole trace once.
pub(crate) async fn run(caller: Caller) -> PipelineResult {
    let spec = caller.spec.clone();
    let Some(trace) = spec.scenario.workload.trace.clone() else {
        return caller.result(&[], &[], 0.0, false);
    };
    let system: Arc<str> = spec
        .scenario
        .agents
        .first()
        .map_or_else(String::new, |a| a.persona.clone())
        .into();
    let trace = Arc::new(trace);
    let origin = trace
        .items
        .iter()
        .map(|c| c.start_ms)
        .fold(f64::INFINITY, f64::min);
    let launched = Instant::now();
    let tasks: Vec<_> = (0..trace.items.len())
        .map(|i| {
            let at = launched
                + Duration::from_secs_f64(
                    (trace.items[i].start_ms - origin) * trace.time_scale / 1e3,
                );
            tokio::spawn(conversation(
                caller.clone(),
                trace.clone(),
                i,
                at,
                system.clone(),
            ))
        })
        .collect();
    let mut runs = Vec::with_capacity(tasks.len());
    for joined in join_all(tasks).await {
        match joined {
            Ok(run) => runs.push(run),
            Err(e) => tracing::error!("a replayed conversation failed: {e}"),
        }
    }
    let wall_ms = launched.elapsed().as_secs_f64() * 1e3;
    let spans: Vec<Span> = runs
        .iter()
        .filter(|r| !r.records.is_empty())
        .map(|r| Span {
            node: r.id.clone(),
            instance: 0,
            start: r.start,
            end: r.end,
            llm_ms: r.llm_ms,
            tool_ms: r.tool_ms,
            after: Vec::new(),
        })
        .collect();
    let records: Vec<&CallRecord> = runs.iter().flat_map(|r| &r.records).collect();
    let complete = runs.len() == trace.items.len() && runs.iter().all(|r| !r.records.is_empty());
    let result = caller.result(&records, &spans, wall_ms, complete);
    caller.report(render(&caller, &trace, &runs, wall_ms)).await;
    result
}

/// The new input of `turn` (number `k`) of conversation `c`: its blocks' text when it has
/// `hash_ids`, else words of its own.
fn input_text(trace: &Trace, c: &Conversation, k: usize, turn: &Turn) -> String {
    if turn.hash_ids.is_empty() {
        let seed = hash_bytes(format!("{}|{k}", c.id).as_bytes());
        return synth::words(seed, turn.input_tokens);
    }
    let mut left = turn.input_tokens;
    let mut text = String::with_capacity(left as usize * 4);
    for &id in &turn.hash_ids {
        let n = left.min(trace.block_tokens);
        text.push_str(&synth::words(mix64(id ^ 0x626c_6f63_6b00), n));
        left -= n;
    }
    text
}

/// Runs conversation `index` from `at`.
async fn conversation(
    caller: Caller,
    trace: Arc<Trace>,
    index: usize,
    at: Instant,
    system: Arc<str>,
) -> ConversationRun {
    let c = &trace.items[index];
    let mut run = ConversationRun {
        id: c.id.clone(),
        start: Instant::now(),
        end: Instant::now(),
        llm_ms: 0.0,
        tool_ms: 0.0,
        records: Vec::new(),
    };
    // A conversation that had not started when the run was stopped never starts.
    tokio::select! {
        _ = tokio::time::sleep_until(at.into()) => {}
        _ = caller.spec.hard_stop.cancelled() => return run,
    }
    run.start = Instant::now();
    let mut history: Vec<Message> = Vec::new();
    for (k, turn) in c.turns.iter().enumerate() {
        if turn.tool_wait_ms > 0.0 {
            let waited = Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(turn.tool_wait_ms * trace.time_scale / 1e3)) => {}
                _ = caller.spec.hard_stop.cancelled() => {}
            }
            run.tool_ms += waited.elapsed().as_secs_f64() * 1e3;
        }
        let user = input_text(&trace, c, k, turn);
        let calls = (0..turn.fan_out).map(|i| {
            caller.call(Call {
                history: &history,
                max_tokens: Some(turn.output_tokens),
                exact: true,
                instance: Some(i),
                turn: Some(k as u32 + 1),
                ..Call::new(&c.id, &system, "replay", &user)
            })
        });
        let mut replies = join_all(calls).await;
        run.llm_ms += replies.iter().map(|(_, r)| r.e2e_ms).fold(0.0, f64::max);
        let ok = replies.iter().all(|(_, r)| r.ok);
        let text = std::mem::take(&mut replies[0].0);
        run.records.extend(replies.into_iter().map(|(_, r)| r));
        if !ok {
            break;
        }
        history.push(Message {
            role: Role::User,
            content: user,
        });
        history.push(Message {
            role: Role::Assistant,
            content: text,
        });
    }
    run.end = Instant::now();
    run
}

/// The per-run report of a replay: the trace, the job's time, and per conversation its
/// calls and time.
fn render(caller: &Caller, trace: &Trace, runs: &[ConversationRun], wall_ms: f64) -> String {
    let mut md = report_header(&caller.spec);
    let _ = writeln!(
        md,
        "## Replay\n- Trace: {} ({:?}, {} conversations, {} calls, time scale {}, sha256 {})\n- Completion time: {:.2}s\n",
        trace.path.display(),
        trace.format,
        trace.conversations,
        trace.calls,
        trace.time_scale,
        &trace.sha256[..trace.sha256.len().min(12)],
        wall_ms / 1e3
    );
    md.push_str("## Metrics\nThroughput and TTFT are means over the conversation's successful calls; durations and tokens are sums over them.\n\n");
    md.push_str("| conversation | calls | failed | cold | throughput (tok/s) | TTFT (ms) | total duration (ms) | tokens generated | prompt eval (ms) | eval duration (ms) | load duration (ms) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        let records: Vec<&CallRecord> = r.records.iter().collect();
        let _ = writeln!(md, "{}", metrics_row(&r.id, &records));
    }
    let all: Vec<&CallRecord> = runs.iter().flat_map(|r| &r.records).collect();
    let _ = writeln!(md, "{}", metrics_row("**all**", &all));
    md
}
