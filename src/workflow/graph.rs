//! The `agent_graph` workload: each agent is a node that starts when every agent it comes
//! `after` has ended, reads their outputs joined (fan-in), runs as `fan_out` instances at
//! once (each its own task, reading one list item of its input or all of it), and loops
//! through `turns` LLM calls with a growing conversation, a seeded tool wait and a tool
//! result between turns.
//!
//! Tool waits and results are drawn from the scenario's seed with the round, the slot, the
//! agent, the instance and the turn: every arm of a round meets the same tools (common
//! random numbers), so the comparison is not noisier for them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared, join_all};

use super::job::Span;
use super::{Call, Caller, extract_items, metrics_row, report_header, synth};
use crate::backend::{Message, Role};
use crate::metrics::CallRecord;
use crate::results::{JobTiming, PipelineResult};
use crate::rng::{Rng, hash_bytes, mix64};
use crate::scenario::{Agent, Split};

/// One instance of an agent, as it ran.
struct InstanceRun {
    start: Instant,
    end: Instant,
    llm_ms: f64,
    tool_ms: f64,
    /// The last reply ("" when a call failed).
    output: String,
    records: Vec<CallRecord>,
}

impl InstanceRun {
    fn ok(&self) -> bool {
        !self.records.is_empty() && self.records.iter().all(|r| r.ok)
    }
}

/// One agent, as it ran: its instances, or none when an input had no output.
struct NodeRun {
    name: String,
    instances: Vec<InstanceRun>,
}

impl NodeRun {
    /// Outputs of the instances that succeeded, with their instance numbers.
    fn outputs(&self) -> impl Iterator<Item = (usize, &str)> {
        self.instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.ok())
            .map(|(k, i)| (k, i.output.as_str()))
    }
}

type NodeFuture = Shared<BoxFuture<'static, Arc<NodeRun>>>;

/// Runs the graph once for the caller's variant instance.
pub(crate) async fn run(caller: Caller) -> PipelineResult {
    let launched = Instant::now();
    let spec = caller.spec.clone();
    let scenario = spec.scenario.clone();
    let task: Arc<str> = {
        let task = scenario.workload.task.clone().unwrap_or_default();
        if scenario.workload.data_dir.is_some() {
            format!(
                "Here is an inventory of benchmark artifacts:\n\n{}\n{task}",
                spec.data.render()
            )
        } else {
            task
        }
        .into()
    };
    // Agents are in dependency order, so every input's future exists when it is needed.
    let mut nodes: BTreeMap<&str, NodeFuture> = BTreeMap::new();
    for agent in &scenario.agents {
        let inputs: Vec<NodeFuture> = agent
            .after
            .iter()
            .map(|p| nodes[p.as_str()].clone())
            .collect();
        let (caller, agent_owned, task) = (caller.clone(), Arc::new(agent.clone()), task.clone());
        let node = async move {
            let inputs = join_all(inputs).await;
            Arc::new(run_node(&caller, agent_owned, &task, &inputs).await)
        };
        nodes.insert(&agent.name, node.boxed().shared());
    }
    let runs: Vec<Arc<NodeRun>> = join_all(
        scenario
            .agents
            .iter()
            .map(|a| nodes[a.name.as_str()].clone()),
    )
    .await;
    let wall_ms = launched.elapsed().as_secs_f64() * 1e3 + spec.ingest_ms;

    // Spans in agent order; each instance waited for every instance of its inputs.
    let mut spans: Vec<Span> = Vec::new();
    let mut spans_of: BTreeMap<&str, std::ops::Range<usize>> = BTreeMap::new();
    for (agent, run) in scenario.agents.iter().zip(&runs) {
        let after: Vec<usize> = agent
            .after
            .iter()
            .filter_map(|p| spans_of.get(p.as_str()))
            .flat_map(|r| r.clone())
            .collect();
        let from = spans.len();
        for (k, i) in run.instances.iter().enumerate() {
            spans.push(Span {
                node: agent.name.clone(),
                instance: k as u32,
                start: i.start,
                end: i.end,
                llm_ms: i.llm_ms,
                tool_ms: i.tool_ms,
                after: after.clone(),
            });
        }
        spans_of.insert(&agent.name, from..spans.len());
    }
    let records: Vec<&CallRecord> = runs
        .iter()
        .flat_map(|r| &r.instances)
        .flat_map(|i| &i.records)
        .collect();
    let every_agent_ran = runs.iter().all(|r| !r.instances.is_empty());
    let result = caller.result(&records, &spans, wall_ms, every_agent_ran);
    let markdown = render(
        &caller,
        &runs,
        &scenario.agents,
        wall_ms,
        result.job.as_ref(),
    );
    caller.report(markdown).await;
    result
}

/// Runs one agent on the outputs of its inputs; no instance runs when an input has none.
async fn run_node(
    caller: &Caller,
    agent: Arc<Agent>,
    task: &str,
    inputs: &[Arc<NodeRun>],
) -> NodeRun {
    let mut run = NodeRun {
        name: agent.name.clone(),
        instances: Vec::new(),
    };
    if inputs.iter().any(|i| i.outputs().next().is_none()) {
        return run; // an input failed: nothing to read
    }
    let joined = if inputs.is_empty() {
        task.to_owned()
    } else {
        join_inputs(inputs)
    };
    let items = match agent.split {
        Some(Split::Items) => extract_items(&joined, "", usize::MAX),
        _ => Vec::new(),
    };
    let tasks: Vec<_> = (0..agent.fan_out)
        .map(|k| {
            let input = if items.is_empty() {
                joined.clone()
            } else {
                format!(
                    "Here is your part of a larger task:\n\n{}\n\nWork on it and report what you find as bullet points.",
                    items[k as usize % items.len()]
                )
            };
            tokio::spawn(run_instance(caller.clone(), agent.clone(), k, input))
        })
        .collect();
    for joined in join_all(tasks).await {
        match joined {
            Ok(i) => run.instances.push(i),
            Err(e) => tracing::error!("an instance of agent `{}` failed: {e}", agent.name),
        }
    }
    run
}

/// The outputs of `inputs` as one prompt (fan-in).
fn join_inputs(inputs: &[Arc<NodeRun>]) -> String {
    let mut text = String::from("Here is what the agents before you produced:\n\n");
    for input in inputs {
        let n = input.instances.len();
        for (k, output) in input.outputs() {
            if n > 1 {
                let _ = writeln!(text, "### {} ({} of {n})\n", input.name, k + 1);
            } else {
                let _ = writeln!(text, "### {}\n", input.name);
            }
            text.push_str(output.trim());
            text.push_str("\n\n");
        }
    }
    text.push_str("Combine them into one answer: key findings as bullet points, then recommendations as a numbered list.");
    text
}

/// One instance: its turns, with a tool step between each two.
async fn run_instance(
    caller: Caller,
    agent: Arc<Agent>,
    instance: u32,
    input: String,
) -> InstanceRun {
    let spec = &caller.spec;
    let t = &spec.trial;
    let mut rng = Rng::new(mix64(
        spec.scenario.seed
            ^ hash_bytes(
                format!(
                    "{:?}|{}|{}|{}|{instance}",
                    t.phase, t.round, spec.slot, agent.name
                )
                .as_bytes(),
            ),
    ));
    let mut run = InstanceRun {
        start: Instant::now(),
        end: Instant::now(),
        llm_ms: 0.0,
        tool_ms: 0.0,
        output: String::new(),
        records: Vec::with_capacity(agent.turns as usize),
    };
    let mut history: Vec<Message> = Vec::with_capacity(2 * agent.turns as usize);
    let mut user = input;
    for turn in 1..=agent.turns {
        let (text, record) = caller
            .call(Call {
                history: &history,
                max_tokens: agent.max_tokens,
                instance: Some(instance),
                turn: Some(turn),
                ..Call::new(&agent.name, &agent.persona, "turn", &user)
            })
            .await;
        run.llm_ms += record.e2e_ms;
        let ok = record.ok;
        run.records.push(record);
        if !ok {
            run.output.clear();
            break;
        }
        run.output.clone_from(&text);
        if turn == agent.turns {
            break;
        }
        history.push(Message {
            role: Role::User,
            content: std::mem::take(&mut user),
        });
        history.push(Message {
            role: Role::Assistant,
            content: text,
        });
        user = match &agent.tool {
            Some(tool) => {
                let wait_ms = tool.wait.sample(&mut rng);
                let waited = Instant::now();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(wait_ms / 1e3)) => {}
                    _ = spec.hard_stop.cancelled() => {}
                }
                run.tool_ms += waited.elapsed().as_secs_f64() * 1e3;
                format!(
                    "Tool result ({} tokens):{}",
                    tool.result_tokens,
                    synth::words(rng.next_u64(), tool.result_tokens)
                )
            }
            None => "Go on: take the most important point further.".to_owned(),
        };
    }
    run.end = Instant::now();
    run
}

/// The per-run report of a graph job: each agent's output, the job's critical path, and
/// the calls per agent.
fn render(
    caller: &Caller,
    runs: &[Arc<NodeRun>],
    agents: &[Agent],
    wall_ms: f64,
    job: Option<&JobTiming>,
) -> String {
    let mut md = report_header(&caller.spec);
    for (agent, run) in agents.iter().zip(runs) {
        let _ = writeln!(md, "## Output of agent `{}`\n", agent.name);
        if run.instances.is_empty() {
            md.push_str("_Not run: an agent it comes after produced no output._\n\n");
        }
        let n = run.instances.len();
        for (k, i) in run.instances.iter().enumerate() {
            if n > 1 {
                let _ = writeln!(md, "### Instance {} of {n}\n", k + 1);
            }
            if i.ok() {
                md.push_str(i.output.trim());
                md.push_str("\n\n");
            } else {
                md.push_str("_No output: a call of this instance failed (see calls.jsonl)._\n\n");
            }
        }
    }
    md.push_str("---\n\n## Job\n");
    let _ = writeln!(md, "- Completion time: {:.2}s", wall_ms / 1e3);
    if let Some(job) = job {
        let _ = writeln!(
            md,
            "- On the critical path: LLM calls {:.2}s, tool waits {:.2}s; waiting for siblings {:.2}s (mean per fanned-out agent, summed)\n",
            job.llm_ms / 1e3,
            job.tool_ms / 1e3,
            job.sibling_wait_ms / 1e3
        );
        md.push_str("| critical path | instance | time (ms) | share of the job | LLM calls (ms) | tool waits (ms) |\n|---|---:|---:|---:|---:|---:|\n");
        for step in &job.critical_path {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.0}% | {:.1} | {:.1} |",
                step.node,
                step.instance + 1,
                step.ms,
                100.0 * step.ms / wall_ms.max(f64::MIN_POSITIVE),
                step.llm_ms,
                step.tool_ms
            );
        }
        md.push('\n');
    }
    md.push_str("## Metrics\nThroughput and TTFT are means over the agent's successful calls (all instances and turns); durations and tokens are sums over them.\n\n");
    md.push_str("| agent | calls | failed | cold | throughput (tok/s) | TTFT (ms) | total duration (ms) | tokens generated | prompt eval (ms) | eval duration (ms) | load duration (ms) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for run in runs {
        let records: Vec<&CallRecord> = run.instances.iter().flat_map(|i| &i.records).collect();
        let _ = writeln!(md, "{}", metrics_row(&run.name, &records));
    }
    let all: Vec<&CallRecord> = runs
        .iter()
        .flat_map(|r| &r.instances)
        .flat_map(|i| &i.records)
        .collect();
    let _ = writeln!(md, "{}", metrics_row("**all**", &all));
    md.push_str("\n## Persona Prompt\n");
    for a in agents {
        let _ = writeln!(md, "Agent `{}`:\n```\n{}\n```\n", a.name, a.persona);
    }
    md
}
