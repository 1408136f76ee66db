//! The `prompts` workload: a job sends `requests` prompts one after another. Request k of
//! a job is drawn from the scenario's seed with the round and the slot, so every arm of a
//! round sends the same prompts (common random numbers): a prompt of the file, or
//! synthetic text of a drawn length behind the prefix every prompt shares, asking for a
//! drawn number of tokens.

use std::fmt::Write as _;
use std::time::Instant;

use super::job::Span;
use super::{Call, Caller, PipelineSpec, metrics_row, report_header, synth};
use crate::backend::{Message, Role};
use crate::metrics::CallRecord;
use crate::results::PipelineResult;
use crate::rng::{Rng, hash_bytes, mix64};
use crate::scenario::prompts::{PromptSet, PromptSource};

/// Sends the job's prompts.
pub(crate) async fn run(caller: Caller) -> PipelineResult {
    let spec = caller.spec.clone();
    let Some(set) = spec.scenario.workload.prompts.clone() else {
        return caller.result(&[], &[], 0.0, false);
    };
    let agent = agent(&spec).0.to_owned();
    let launched = Instant::now();
    let mut records: Vec<CallRecord> = Vec::with_capacity(set.requests as usize);
    let mut llm_ms = 0.0;
    for k in 0..set.requests {
        let record = send(&caller, &set, k, Sent::default()).await;
        llm_ms += record.e2e_ms;
        records.push(record);
        if spec.hard_stop.is_cancelled() {
            break;
        }
    }
    let wall_ms = launched.elapsed().as_secs_f64() * 1e3;
    let span = Span {
        node: agent.clone(),
        instance: 0,
        start: launched,
        end: Instant::now(),
        llm_ms,
        tool_ms: 0.0,
        after: Vec::new(),
    };
    let refs: Vec<&CallRecord> = records.iter().collect();
    let result = caller.result(
        &refs,
        &[span],
        wall_ms,
        records.len() == set.requests as usize,
    );
    let mut md = report_header(&spec);
    let _ = writeln!(
        md,
        "## Prompts\n- {} requests, {}\n- Completion time: {:.2}s\n",
        set.requests,
        match &set.source {
            PromptSource::File { path, count, .. } =>
                format!("drawn from the {count} prompts of {}", path.display()),
            PromptSource::Synthetic { .. } => "synthetic".to_owned(),
        },
        wall_ms / 1e3
    );
    md.push_str("| requests | calls | failed | cold | throughput (tok/s) | TTFT (ms) | total duration (ms) | tokens generated | prompt eval (ms) | eval duration (ms) | load duration (ms) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let _ = writeln!(md, "{}", metrics_row("**all**", &refs));
    caller.report(md).await;
    result
}

/// The name a prompt set's calls are recorded under (its only agent, else `prompts`) and
/// the agent's persona, the system prompt of prompts that bring none.
pub(crate) fn agent(spec: &PipelineSpec) -> (&str, &str) {
    spec.scenario
        .agents
        .first()
        .map_or(("prompts", ""), |a| (a.name.as_str(), a.persona.as_str()))
}

/// How a request of the set is sent, besides its prompt.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sent {
    /// The worker sending it (a closed loop's).
    pub instance: Option<u32>,
    /// Recorded as warm-up.
    pub warmup: bool,
    /// When it was due (an open loop's).
    pub scheduled: Option<Instant>,
}

/// Draws request `k` of the job and sends it. Request k is drawn from the scenario's seed
/// with the round and the slot, so every arm of a round sends the same prompts.
pub(crate) async fn send(caller: &Caller, set: &PromptSet, k: u32, how: Sent) -> CallRecord {
    let spec = &caller.spec;
    let t = &spec.trial;
    let mut rng = Rng::new(mix64(
        spec.scenario.seed
            ^ hash_bytes(format!("{:?}|{}|{}|{k}", t.phase, t.round, spec.slot).as_bytes()),
    ));
    let (system, history, user, max_tokens) = request(set, &mut rng, spec.scenario.seed);
    let (agent, persona) = agent(spec);
    let (_, record) = caller
        .call(Call {
            history: &history,
            max_tokens,
            exact: set.ignore_eos,
            instance: how.instance,
            warmup: how.warmup,
            scheduled: how.scheduled,
            ..Call::new(
                agent,
                if system.is_empty() { persona } else { &system },
                "prompt",
                &user,
            )
        })
        .await;
    record
}

/// Request drawn from `rng`: its system prompt, earlier messages, user message and cap on
/// generated tokens.
fn request(
    set: &PromptSet,
    rng: &mut Rng,
    seed: u64,
) -> (String, Vec<Message>, String, Option<u32>) {
    match &set.source {
        PromptSource::File { items, .. } => {
            let p = &items[rng.below(items.len())];
            let history = p
                .history
                .iter()
                .map(|(role, content)| Message {
                    role: if role == "assistant" {
                        Role::Assistant
                    } else {
                        Role::User
                    },
                    content: content.clone(),
                })
                .collect();
            (p.system.clone(), history, p.user.clone(), set.max_tokens)
        }
        PromptSource::Synthetic {
            input_tokens,
            output_tokens,
            shared_prefix_tokens,
        } => {
            let input = input_tokens.draw(rng);
            let output = output_tokens.draw(rng);
            let prefix = (*shared_prefix_tokens).min(input);
            let mut user = synth::words(mix64(seed ^ 0x7072_6566), prefix);
            user.push_str(&synth::words(rng.next_u64(), input - prefix));
            (String::new(), Vec::new(), user, Some(output))
        }
    }
}
