//! What one variant instance runs in a trial: a job. Three workloads, one mechanism:
//! every call goes through [`Caller`] (recorded and sent to the collector as soon as it
//! ends), and every job reports where its time went ([`job`]).
//!
//! - `agent_report` (this file): the seed prototype's workflow, ingest → for each agent
//!   (producers first) an analysis call and a report call → the per-run Markdown report;
//! - `agent_graph` ([`graph`]): agents as nodes that fan out, fan in and loop through
//!   turns with tool steps;
//! - `trace` ([`replay`]): recorded conversations or requests, replayed on their clock;
//! - `prompts` ([`prompts`]): a prompt set, one request after another, or, at a load
//!   level, from many workers at once or on an open loop's schedule ([`load`]).

pub mod graph;
pub mod job;
pub mod load;
pub mod prompts;
pub mod replay;
pub mod synth;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::backend::{Backend, ChatRequest, Message, ServerInfo};
use crate::ingest::DataSummary;
use crate::metrics::{
    CallContext, CallError, CallOutcome, CallRecord, ErrorKind, StreamTimer, utc_timestamp,
};
use crate::plan::PlannedTrial;
use crate::results::{Event, PipelineResult};
use crate::scenario::{Scenario, Variant, WorkloadKind};
use job::Span;
use tokio_util::sync::CancellationToken;

/// What one pipeline needs besides the backend. Owned, so each pipeline can run as its
/// own task.
pub struct PipelineSpec {
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// The trial it belongs to.
    pub trial: PlannedTrial,
    /// Variant it runs.
    pub variant: Variant,
    /// Position within the arm.
    pub slot: u32,
    /// Per-variant run number (1-based), used in the report's file name.
    pub run_number: u32,
    /// What this pipeline's own ingest step found (empty when the workload reads no data).
    pub data: DataSummary,
    /// Time the ingest took for this pipeline, ms.
    pub ingest_ms: f64,
    /// Monotonic origin of the run.
    pub run_start: Instant,
    /// Say "simulated" in the report.
    pub simulated: bool,
    /// The server that answers, and the model it serves.
    pub server: Arc<ServerInfo>,
    /// Fires when calls still in flight must stop (the stop grace after Ctrl-C/SIGTERM
    /// ran out); they are recorded as `cancelled`.
    pub hard_stop: CancellationToken,
}

/// Runs one job of the scenario's workload for one variant instance.
pub async fn run_job(
    spec: PipelineSpec,
    backend: Arc<dyn Backend>,
    events: mpsc::Sender<Event>,
) -> PipelineResult {
    let caller = Caller {
        spec: Arc::new(spec),
        backend,
        events,
    };
    if let Some(level) = caller.spec.trial.load {
        return load::run(caller, level).await;
    }
    match caller.spec.scenario.workload.kind {
        WorkloadKind::AgentReport => run_pipeline(caller).await,
        WorkloadKind::AgentGraph => graph::run(caller).await,
        WorkloadKind::Trace => replay::run(caller).await,
        WorkloadKind::Prompts => prompts::run(caller).await,
    }
}

/// One call to make: who makes it, where it sits in the job, and what it sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    /// Agent (graph node), or the conversation of a trace.
    pub agent: &'a str,
    /// Its system prompt.
    pub system: &'a str,
    /// Workflow step (`analysis`, `report`, `turn`, `replay`).
    pub step: &'a str,
    /// Earlier messages of the conversation.
    pub history: &'a [Message],
    /// The new user message.
    pub user: &'a str,
    /// Cap on generated tokens: the smaller of this and the variant's `num_predict`
    /// (with `exact`, this one).
    pub max_tokens: Option<u32>,
    /// Generate exactly `max_tokens` (trace replay).
    pub exact: bool,
    /// Fan-out instance.
    pub instance: Option<u32>,
    /// Turn of the conversation (1-based).
    pub turn: Option<u32>,
    /// Recorded as warm-up: left out of every statistic (a load level's first requests).
    pub warmup: bool,
    /// When the request was due (an open loop's schedule); its record keeps how late it
    /// was sent.
    pub scheduled: Option<Instant>,
}

impl<'a> Call<'a> {
    /// A one-off call of `agent` at `step`.
    pub fn new(agent: &'a str, system: &'a str, step: &'a str, user: &'a str) -> Call<'a> {
        Call {
            agent,
            system,
            step,
            history: &[],
            user,
            max_tokens: None,
            exact: false,
            instance: None,
            turn: None,
            warmup: false,
            scheduled: None,
        }
    }
}

/// What every call of one job shares; cheap to clone into the tasks of its instances.
#[derive(Clone)]
pub(crate) struct Caller {
    pub spec: Arc<PipelineSpec>,
    pub backend: Arc<dyn Backend>,
    pub events: mpsc::Sender<Event>,
}

impl Caller {
    /// Makes `call`: retried while its connection fails (as the scenario allows),
    /// recorded, and sent to the collector. Returns the generated text and the record.
    pub async fn call(&self, call: Call<'_>) -> (String, CallRecord) {
        let spec = &self.spec;
        let variant = &spec.variant;
        let retries = spec.scenario.retries;
        let mut options = variant.options.clone();
        if let Some(cap) = call.max_tokens {
            let cap = i64::from(cap);
            options.num_predict = Some(match options.num_predict {
                Some(n) if n > 0 && !call.exact => n.min(cap),
                _ => cap,
            });
        }
        let lag_ms = call
            .scheduled
            .map(|due| Instant::now().saturating_duration_since(due).as_secs_f64() * 1e3);
        let mut attempts = 1u32;
        let (started_at, outcome) = loop {
            let started_at = utc_timestamp();
            let waited = StreamTimer::start(0);
            let outcome = tokio::select! {
                outcome = self.backend.chat(ChatRequest {
                    model: &variant.model,
                    system: call.system,
                    history: call.history,
                    user: call.user,
                    ignore_eos: call.exact,
                    options: &options,
                    keep_alive: variant.keep_alive.as_deref(),
                }) => outcome,
                _ = spec.hard_stop.cancelled() => CallOutcome::failed(
                    waited,
                    CallError::new(
                        ErrorKind::Cancelled,
                        "the run was stopped while this call was in flight",
                    ),
                ),
            };
            // Only a connection that never reached the server is safe to retry.
            let refused = outcome
                .error
                .as_ref()
                .is_some_and(|e| e.kind == ErrorKind::Connect);
            if !refused || attempts > retries.max || spec.hard_stop.is_cancelled() {
                break (started_at, outcome);
            }
            let wait_ms = retries.delay_ms(attempts);
            tokio::time::sleep(std::time::Duration::from_secs_f64(wait_ms / 1e3)).await;
            attempts += 1;
        };
        let mut ctx = CallContext {
            instance: call.instance,
            turn: call.turn,
            ..CallContext::of(&spec.trial, &variant.name, spec.slot, call.agent, call.step)
        };
        if call.warmup {
            ctx.phase = crate::plan::Phase::Warmup;
        }
        let mut record = outcome.record(&ctx, spec.run_start, started_at);
        record.attempts = attempts;
        record.schedule_lag_ms = lag_ms;
        let _ = self
            .events
            .send(Event::Call(Box::new(record.clone())))
            .await;
        (outcome.text, record)
    }

    /// Sends the job's per-run report to the collector.
    pub async fn report(&self, markdown: String) {
        let _ = self
            .events
            .send(Event::AgentReport {
                variant: self.spec.variant.name.clone(),
                run_number: self.spec.run_number,
                markdown,
            })
            .await;
    }

    /// The job's result from its records, spans and completion time.
    pub fn result(
        &self,
        records: &[&CallRecord],
        spans: &[Span],
        wall_ms: f64,
        ok: bool,
    ) -> PipelineResult {
        let decode: Vec<f64> = records.iter().filter_map(|r| r.decode_tps).collect();
        PipelineResult {
            variant: self.spec.variant.name.clone(),
            slot: self.spec.slot,
            run_number: self.spec.run_number,
            wall_ms,
            calls: records.len() as u32,
            failed_calls: records.iter().filter(|r| !r.ok).count() as u32,
            decode_tps_mean: (!decode.is_empty())
                .then(|| decode.iter().sum::<f64>() / decode.len() as f64),
            ok: ok && records.iter().all(|r| r.ok),
            job: Some(job::timing(spans)),
        }
    }
}

struct AgentOutput {
    name: String,
    persona: String,
    analysis: String,
    report: String,
    records: Vec<CallRecord>,
}

/// The seed workflow for one variant instance; each agent is one span of the job, after
/// the agent it consumes.
async fn run_pipeline(caller: Caller) -> PipelineResult {
    let launched = Instant::now();
    let spec = caller.spec.clone();
    let scenario = spec.scenario.clone();
    let data_text = spec.data.render();
    let mut outputs: Vec<AgentOutput> = Vec::with_capacity(scenario.agents.len());
    let mut spans: Vec<Span> = Vec::with_capacity(scenario.agents.len());
    let mut all_ok = true;
    for agent in &scenario.agents {
        let producer = agent
            .consumes
            .as_ref()
            .and_then(|p| outputs.iter().position(|o| &o.name == p));
        let input = match (&agent.consumes, producer) {
            (None, _) => Some(format!(
                "Here is an inventory of benchmark artifacts:\n\n{data_text}\nAnalyze it and list the key findings as bullet points."
            )),
            (Some(name), Some(i)) if !outputs[i].report.is_empty() => Some(format!(
                "Here is the report of agent `{name}`:\n\n{}\n\nRecommend concrete next steps as a numbered list, each with a short rationale.",
                outputs[i].report
            )),
            _ => None,
        };
        let Some(input) = input else {
            all_ok = false; // its producer failed: nothing to consume
            continue;
        };
        let start = Instant::now();
        let mut out = AgentOutput {
            name: agent.name.clone(),
            persona: agent.persona.clone(),
            analysis: String::new(),
            report: String::new(),
            records: Vec::with_capacity(2),
        };
        let (analysis, record) = caller
            .call(Call::new(&agent.name, &agent.persona, "analysis", &input))
            .await;
        let ok = record.ok;
        out.records.push(record);
        if ok {
            out.analysis = analysis;
            let prompt = format!(
                "Write a technical report with an executive summary, key findings and recommendations, based on this analysis:\n\n{}",
                out.analysis
            );
            let (report, record) = caller
                .call(Call::new(&agent.name, &agent.persona, "report", &prompt))
                .await;
            if record.ok {
                out.report = report;
            }
            out.records.push(record);
        }
        spans.push(Span {
            node: agent.name.clone(),
            instance: 0,
            start,
            end: Instant::now(),
            llm_ms: out.records.iter().map(|r| r.e2e_ms).sum(),
            tool_ms: 0.0,
            after: producer.into_iter().collect(),
        });
        outputs.push(out);
    }
    let wall_ms = launched.elapsed().as_secs_f64() * 1e3 + spec.ingest_ms;
    let records: Vec<&CallRecord> = outputs.iter().flat_map(|o| &o.records).collect();
    let result = caller.result(&records, &spans, wall_ms, all_ok);
    caller
        .report(render_report(&spec, &outputs, &data_text, wall_ms))
        .await;
    result
}

/// Bullet or numbered items of a Markdown text, preferring those under a heading that
/// contains `heading` (case-insensitive).
pub fn extract_items(text: &str, heading: &str, max: usize) -> Vec<String> {
    let heading = heading.to_ascii_lowercase();
    let mut under: Vec<String> = Vec::new();
    let mut any: Vec<String> = Vec::new();
    let mut in_section = false;
    for line in text.lines() {
        let trimmed = line.trim();
        let item = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "))
            .or_else(|| {
                let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
                (digits > 0)
                    .then(|| trimmed[digits..].strip_prefix(". "))
                    .flatten()
            });
        match item {
            Some(item) if !item.trim().is_empty() => {
                if in_section {
                    under.push(item.trim().to_owned());
                }
                any.push(item.trim().to_owned());
            }
            _ if !trimmed.is_empty() => {
                let is_heading = trimmed.starts_with('#')
                    || (trimmed.starts_with("**") && trimmed.ends_with("**"));
                if is_heading {
                    in_section = trimmed.to_ascii_lowercase().contains(&heading);
                }
            }
            _ => {}
        }
    }
    let chosen = if under.is_empty() { any } else { under };
    chosen.into_iter().take(max).collect()
}

fn render_report(
    spec: &PipelineSpec,
    outputs: &[AgentOutput],
    data_text: &str,
    wall_ms: f64,
) -> String {
    let mut md = report_header(spec);
    for o in outputs {
        let _ = writeln!(md, "## Report of agent `{}`\n", o.name);
        if o.report.is_empty() {
            md.push_str("_No report: a call of this agent failed (see calls.jsonl)._\n\n");
        } else {
            md.push_str(o.report.trim());
            md.push_str("\n\n");
        }
    }
    md.push_str("---\n\n## Workflow Summary\n");
    let step_s = |step: &str| -> f64 {
        outputs
            .iter()
            .flat_map(|o| &o.records)
            .filter(|r| r.step == step)
            .map(|r| r.e2e_ms)
            .sum::<f64>()
            / 1e3
    };
    let _ = writeln!(md, "- Files analyzed: {}", spec.data.total_files);
    let _ = writeln!(
        md,
        "- Execution time: {:.2}s (ingest {:.2}s | analysis {:.2}s | report {:.2}s)",
        wall_ms / 1e3,
        spec.ingest_ms / 1e3,
        step_s("analysis"),
        step_s("report")
    );
    md.push_str("  - analysis and report are the sums of the calls' end-to-end times over all agents; the rest of the execution time is the harness's own work between calls.\n");
    let _ = writeln!(md, "- Data summary:\n```\n{}```\n", data_text);

    md.push_str("## Metrics\n");
    md.push_str("Throughput and TTFT are means over the run's successful calls; durations and tokens are sums over them (as in the seed prototype).\n\n");
    md.push_str("| agent | calls | failed | cold | throughput (tok/s) | TTFT (ms) | total duration (ms) | tokens generated | prompt eval (ms) | eval duration (ms) | load duration (ms) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut rows: Vec<(String, Vec<&CallRecord>)> = outputs
        .iter()
        .map(|o| (o.name.clone(), o.records.iter().collect()))
        .collect();
    rows.push((
        "**all**".to_owned(),
        outputs.iter().flat_map(|o| &o.records).collect(),
    ));
    for (name, records) in rows {
        let _ = writeln!(md, "{}", metrics_row(&name, &records));
    }
    md.push_str("\nDefinitions: throughput = server `eval_count / eval_duration` (decode rate); TTFT = client clock from the request to the first chunk with generated text; total duration = client end-to-end time; tokens generated = server `eval_count`; prompt eval, eval and load duration = the server's `prompt_eval_duration`, `eval_duration`, `load_duration`. A call is cold when its load duration exceeds 50 ms.\n\n");

    md.push_str("## Key Findings\n");
    let first = outputs.first();
    let findings = first
        .map(|o| extract_items(&o.analysis, "finding", 6))
        .unwrap_or_default();
    push_items(&mut md, &findings);
    md.push_str("## Recommendations\n");
    let recs = outputs
        .iter()
        .rev()
        .find(|o| !o.report.is_empty())
        .map(|o| extract_items(&o.report, "recommend", 6))
        .unwrap_or_default();
    push_items(&mut md, &recs);
    md.push_str("## Persona Prompt\n");
    for o in outputs {
        let _ = writeln!(md, "Agent `{}`:\n```\n{}\n```\n", o.name, o.persona);
    }
    md
}

fn push_items(md: &mut String, items: &[String]) {
    if items.is_empty() {
        md.push_str("_None extracted: the model's text had no list items._\n\n");
    } else {
        for item in items {
            let _ = writeln!(md, "- {item}");
        }
        md.push('\n');
    }
}

pub(crate) fn metrics_row(name: &str, records: &[&CallRecord]) -> String {
    let ok: Vec<&&CallRecord> = records.iter().filter(|r| r.ok).collect();
    let mean = |f: &dyn Fn(&CallRecord) -> Option<f64>| {
        let xs: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
        if xs.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.2}", xs.iter().sum::<f64>() / xs.len() as f64)
        }
    };
    let sum = |f: &dyn Fn(&CallRecord) -> Option<f64>| {
        let xs: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
        if xs.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.2}", xs.iter().sum::<f64>())
        }
    };
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        records.len(),
        records.len() - ok.len(),
        records.iter().filter(|r| r.cold).count(),
        mean(&|r| r.decode_tps),
        mean(&|r| r.ttft_ms),
        sum(&|r| Some(r.e2e_ms)),
        sum(&|r| r.output_tokens.map(|n| n as f64)).trim_end_matches(".00"),
        sum(&|r| r.prompt_eval_ms),
        sum(&|r| r.eval_ms),
        sum(&|r| r.load_ms),
    )
}

/// The head of every per-run report: what ran, where, with which options, in which trial.
pub(crate) fn report_header(spec: &PipelineSpec) -> String {
    let v = &spec.variant;
    let t = &spec.trial;
    let mut md = String::new();
    let _ = writeln!(md, "# {} — run {}\n", v.name, spec.run_number);
    if spec.simulated {
        md.push_str("> **Simulated run.** These numbers come from harness's built-in simulated Ollama server, not from a GPU.\n\n");
    }
    let _ = writeln!(
        md,
        "**Date:** {}  ",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    let server = &spec.server;
    let backend = spec.scenario.server.backend;
    let _ = writeln!(
        md,
        "**Server:** {} at {}, version {}  ",
        backend.as_str(),
        server.url,
        server.version.as_deref().unwrap_or("not reported")
    );
    let _ = writeln!(
        md,
        "**Model:** {} requested, {}  ",
        v.model,
        match &server.served_model {
            Some(m) => format!("{m} served"),
            None => "the model served not reported".to_owned(),
        }
    );
    let (sent, not_sent) = v.options.as_sent(v.keep_alive.as_deref(), backend);
    let _ = write!(md, "**Options sent:** {}", sent.label());
    if !not_sent.is_empty() {
        let _ = write!(
            md,
            "; not sent (server.ignore_options): {}",
            not_sent.join(", ")
        );
    }
    md.push_str("  \n");
    let _ = writeln!(
        md,
        "**Trial:** {} ({}, round {}), arm `{}`, slot {} of {}\n",
        t.trial,
        format!("{:?}", t.phase).to_lowercase(),
        t.round,
        t.arm,
        spec.slot + 1,
        t.variants.len()
    );
    md.push_str("---\n\n");
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_under_the_named_heading_win() {
        let text =
            "Intro\n\n**Key Findings**\n- one\n- two\n\n**Recommendations**\n1. do a\n2. do b\n";
        assert_eq!(extract_items(text, "finding", 5), ["one", "two"]);
        assert_eq!(extract_items(text, "recommend", 5), ["do a", "do b"]);
        assert_eq!(extract_items(text, "nothing", 3), ["one", "two", "do a"]);
        assert!(extract_items("no lists here", "x", 3).is_empty());
    }
}
