//! One streamed LLM call turned into one [`CallRecord`], with the definitions of
//! `DESIGN.md` ("Metric definitions"). The stream parsers feed a [`StreamTimer`] with the
//! instant each network chunk arrived; everything else is derived once, at the end.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::plan::{Phase, PlannedTrial};
use crate::scenario::Metric;

/// A name a million call records share (arm, variant, agent, step): one allocation per
/// distinct name once [`Names`] has interned them, so a large run's records in memory are
/// mostly their numbers. Reads, compares and serializes as the string it holds.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(std::sync::Arc<str>);

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name(s.into())
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Name(s.into())
    }
}

impl From<&Name> for String {
    fn from(n: &Name) -> Self {
        n.0.to_string()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

/// Interns the names of call records as they are read, so equal names share one
/// allocation.
#[derive(Debug, Default)]
pub struct Names(std::collections::HashSet<Name>);

impl Names {
    /// The shared copy of `name`.
    pub fn get(&mut self, name: &Name) -> Name {
        match self.0.get(&**name) {
            Some(shared) => shared.clone(),
            None => {
                self.0.insert(name.clone());
                name.clone()
            }
        }
    }

    /// `record` with its names shared.
    pub fn intern(&mut self, mut record: CallRecord) -> CallRecord {
        record.arm = self.get(&record.arm);
        record.variant = self.get(&record.variant);
        record.agent = self.get(&record.agent);
        record.step = self.get(&record.step);
        record
    }
}

/// `load_ms` above this means the model was (re)loaded in the call.
pub const COLD_LOAD_THRESHOLD_MS: f64 = 50.0;

/// Why a call failed. A failed call is data, never an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection was refused or could not be made.
    Connect,
    /// The call did not finish within the per-call timeout.
    Timeout,
    /// The server answered with an HTTP error status.
    Http,
    /// The server does not have the requested model.
    ModelNotFound,
    /// The stream ended before its final chunk.
    StreamCut,
    /// A chunk was not valid JSON of the expected shape.
    MalformedChunk,
    /// The server reported an error inside the stream.
    ServerError,
    /// The response passed the per-call cap on bytes or tokens (a server that never
    /// stops).
    ResponseTooLong,
    /// A successful reply that is not the API's stream (a proxy's or gateway's page).
    NotAStream,
    /// The run was interrupted while the call was in flight.
    Cancelled,
}

impl ErrorKind {
    /// The snake_case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http => "http",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::StreamCut => "stream_cut",
            ErrorKind::MalformedChunk => "malformed_chunk",
            ErrorKind::ServerError => "server_error",
            ErrorKind::ResponseTooLong => "response_too_long",
            ErrorKind::NotAStream => "not_a_stream",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

/// A failed call's kind and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// Kind.
    pub kind: ErrorKind,
    /// Human-readable detail (never carries credentials).
    pub message: String,
}

impl CallError {
    /// Builds an error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CallError {
        CallError {
            kind,
            message: message.into(),
        }
    }
}

/// Counters and timers the server reports in its final chunk (Ollama's names, in ms).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerTimers {
    /// Tokens the server decoded in `eval_ms` (Ollama `eval_count`, llama.cpp
    /// `timings.predicted_n`).
    pub eval_count: Option<u64>,
    /// Generated tokens as the API reports them when that is not `eval_count`
    /// (OpenAI `usage.completion_tokens`); `None` means `eval_count` is the count.
    pub output_count: Option<u64>,
    /// Prompt tokens served from the server's cache (llama.cpp `timings.cache_n`,
    /// OpenAI `usage.prompt_tokens_details.cached_tokens`).
    pub cached_prompt_count: Option<u64>,
    /// `prompt_eval_count`.
    pub prompt_eval_count: Option<u64>,
    /// `load_duration`.
    pub load_ms: Option<f64>,
    /// `prompt_eval_duration`.
    pub prompt_eval_ms: Option<f64>,
    /// `eval_duration`.
    pub eval_ms: Option<f64>,
    /// `total_duration`.
    pub total_ms: Option<f64>,
}

/// Client-side timing of one stream, fed as chunks arrive. Holds only fixed-size state
/// plus the inter-token gaps, which are preallocated.
#[derive(Debug)]
pub struct StreamTimer {
    start: Instant,
    first_content: Option<Instant>,
    last_content: Option<Instant>,
    itl_us: Vec<u32>,
    content_chunks: u64,
    first_reasoning: Option<Instant>,
    reasoning_chunks: u64,
    end: Option<Instant>,
}

impl StreamTimer {
    /// Starts the clock: call right before the request is written.
    pub fn start(expected_chunks: usize) -> StreamTimer {
        StreamTimer {
            start: Instant::now(),
            first_content: None,
            last_content: None,
            itl_us: Vec::with_capacity(expected_chunks),
            content_chunks: 0,
            first_reasoning: None,
            reasoning_chunks: 0,
            end: None,
        }
    }

    /// A chunk carrying non-empty generated text arrived at `at`.
    #[inline]
    pub fn content(&mut self, at: Instant) {
        match self.last_content {
            None => self.first_content = Some(at),
            Some(prev) => {
                let gap = at.saturating_duration_since(prev).as_micros();
                self.itl_us.push(u32::try_from(gap).unwrap_or(u32::MAX));
            }
        }
        self.last_content = Some(at);
        self.content_chunks += 1;
    }

    /// A chunk of reasoning ("thinking") text, sent apart from the answer, arrived at
    /// `at`. It does not count as the first token of the answer.
    #[inline]
    pub fn reasoning(&mut self, at: Instant) {
        if self.first_reasoning.is_none() {
            self.first_reasoning = Some(at);
        }
        self.reasoning_chunks += 1;
    }

    /// The final chunk or the end of the stream arrived at `at`.
    pub fn finish(&mut self, at: Instant) {
        self.end = Some(at);
    }

    /// Number of content chunks seen so far.
    pub fn content_chunks(&self) -> u64 {
        self.content_chunks
    }

    fn ms_since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64() * 1e3
    }
}

/// The wall-clock time as records carry it: UTC, RFC 3339, milliseconds.
pub fn utc_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where a call sits in the experiment; copied into its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    /// Plan position of the trial.
    pub trial: u32,
    /// Round within the phase.
    pub round: u32,
    /// Warmup or measured.
    pub phase: Phase,
    /// Arm name.
    pub arm: String,
    /// Variant name.
    pub variant: String,
    /// Which of the arm's pipelines (0-based), for arms that run a variant twice.
    pub slot: u32,
    /// Agent name.
    pub agent: String,
    /// Workflow step (`analysis`, `report`, `turn`, `replay`, `prime`).
    pub step: String,
    /// Fan-out instance of the agent (graphs and traces).
    pub instance: Option<u32>,
    /// Turn of the agent's conversation, 1-based (graphs and traces).
    pub turn: Option<u32>,
}

impl CallContext {
    /// A call of `agent` at `step` in `slot` of `trial`, run by `variant`.
    pub fn of(trial: &PlannedTrial, variant: &str, slot: u32, agent: &str, step: &str) -> Self {
        CallContext {
            trial: trial.trial,
            round: trial.round,
            phase: trial.phase,
            arm: trial.arm.clone(),
            variant: variant.to_owned(),
            slot,
            agent: agent.to_owned(),
            step: step.to_owned(),
            instance: None,
            turn: None,
        }
    }
}

/// One row per LLM call: the unit of `calls.jsonl` and `calls.csv`. Durations in ms,
/// rates in tokens/s; fields that a failed call could not measure are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Plan position of the trial.
    pub trial: u32,
    /// Round within the phase.
    pub round: u32,
    /// Warmup or measured.
    pub phase: Phase,
    /// Arm name.
    pub arm: Name,
    /// Variant name.
    pub variant: Name,
    /// Pipeline index within the arm.
    pub slot: u32,
    /// Agent name.
    pub agent: Name,
    /// Workflow step.
    pub step: Name,
    /// Fan-out instance of the agent (graph node) within the job, 0-based; the job is
    /// the (`trial`, `slot`) pipeline.
    #[serde(default)]
    pub instance: Option<u32>,
    /// Turn of the agent's conversation, 1-based.
    #[serde(default)]
    pub turn: Option<u32>,
    /// Wall-clock start (UTC, RFC 3339).
    pub started_at: String,
    /// Start on the run's clock, ms: monotonic, from the run's start; a resumed run's clock
    /// goes on where its records ended, so the time it was stopped is not on it.
    pub offset_ms: f64,
    /// True when the call finished with its final chunk.
    pub ok: bool,
    /// Error kind, when not ok.
    pub error_kind: Option<ErrorKind>,
    /// Error detail, when not ok.
    pub error: Option<String>,
    /// Request written → first chunk with non-empty generated text.
    pub ttft_ms: Option<f64>,
    /// Request written → final chunk or end of stream.
    pub e2e_ms: f64,
    /// Mean gap between successive content chunks.
    pub itl_mean_ms: Option<f64>,
    /// Median gap between successive content chunks.
    pub itl_p50_ms: Option<f64>,
    /// 95th percentile gap (nearest rank).
    pub itl_p95_ms: Option<f64>,
    /// Largest gap.
    pub itl_max_ms: Option<f64>,
    /// `(e2e − first generated token) / (output_tokens − 1)`; the first token of the answer
    /// or of reasoning sent apart, whichever came first (the count includes both).
    pub tpot_ms: Option<f64>,
    /// Generated tokens (server-reported unless `tokens_counted`).
    pub output_tokens: Option<u64>,
    /// True when `output_tokens` is the count of content chunks because the server sent
    /// no count.
    pub tokens_counted: bool,
    /// Prompt tokens (server-reported).
    pub prompt_tokens: Option<u64>,
    /// Prompt tokens the server took from its cache instead of computing.
    #[serde(default)]
    pub cached_prompt_tokens: Option<u64>,
    /// Content chunks received.
    pub content_chunks: u64,
    /// Request written → first chunk of reasoning text sent apart from the answer.
    #[serde(default)]
    pub reasoning_ttft_ms: Option<f64>,
    /// Chunks of reasoning text sent apart from the answer.
    #[serde(default)]
    pub reasoning_chunks: u64,
    /// Server: model load time.
    pub load_ms: Option<f64>,
    /// Server: prompt processing time.
    pub prompt_eval_ms: Option<f64>,
    /// Server: decode time.
    pub eval_ms: Option<f64>,
    /// Server: total time.
    pub server_total_ms: Option<f64>,
    /// `eval_count / eval_duration`: the server's decode rate.
    pub decode_tps: Option<f64>,
    /// `output_tokens / e2e`: what the agent experiences.
    pub e2e_tps: Option<f64>,
    /// `ttft − load − prompt_eval`: time spent waiting (Ollama only).
    pub queue_ms: Option<f64>,
    /// The model was (re)loaded during this call.
    pub cold: bool,
    /// Characters of generated text.
    pub response_chars: u64,
    /// Attempts made (above 1 when connection failures were retried; the timings are
    /// those of the last attempt).
    #[serde(default = "one")]
    pub attempts: u32,
    /// The request was sent once more on a new connection: the pooled connection it was
    /// first written on had been closed by the server before any response byte (the
    /// timings are the resend's).
    #[serde(default)]
    pub resent: bool,
    /// The call opened a new connection, and making it (TCP, TLS included) took this long;
    /// `null` when it reused a kept one. TTFT and e2e include it.
    #[serde(default)]
    pub connect_ms: Option<f64>,
    /// Open loop: how late the request was sent against its schedule (actual send time −
    /// scheduled send time), ms; `null` for requests that had no schedule.
    #[serde(default)]
    pub schedule_lag_ms: Option<f64>,
}

fn one() -> u32 {
    1
}

impl CallRecord {
    /// The value of `metric` in this call, when it has one (job, serving and energy
    /// metrics have none; times from the schedule only calls that had one).
    pub fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::JobE2eMs
            | Metric::JobsPerMin
            | Metric::ReqPerS
            | Metric::ThroughputTps
            | Metric::GoodputRps
            | Metric::JoulesPerToken
            | Metric::TokensPerJoule => None,
            Metric::DecodeTps => self.decode_tps,
            Metric::E2eTps => self.e2e_tps,
            Metric::TtftMs => self.ttft_ms,
            Metric::E2eMs => Some(self.e2e_ms),
            Metric::TpotMs => self.tpot_ms,
            Metric::SchedTtftMs => Some(self.ttft_ms? + self.schedule_lag_ms?),
            Metric::SchedE2eMs => Some(self.e2e_ms + self.schedule_lag_ms?),
        }
    }
}

/// What a call measured: filled as its stream is parsed, returned by a backend when the
/// call ends, failures included.
#[derive(Debug)]
pub struct CallOutcome {
    /// Client timing.
    pub timer: StreamTimer,
    /// Server counters (from the final chunk).
    pub server: ServerTimers,
    /// Generated text.
    pub text: String,
    /// The first failure, if any.
    pub error: Option<CallError>,
    /// The request was sent a second time, on a new connection, because the pooled one it
    /// was first written on had been closed by the server (see `backend::stream_call`).
    pub resent: bool,
    /// How long opening the call's connection took (TCP and TLS), when it opened one;
    /// `None` when it reused a kept connection.
    pub connect_ms: Option<f64>,
}

impl CallOutcome {
    /// Nothing measured yet; the clock starts now, with room for `expected_chunks`
    /// inter-token gaps.
    pub fn start(expected_chunks: usize) -> CallOutcome {
        CallOutcome {
            timer: StreamTimer::start(expected_chunks),
            server: ServerTimers::default(),
            text: String::new(),
            error: None,
            resent: false,
            connect_ms: None,
        }
    }

    /// A call that failed with `error` before anything arrived; its clock stopped now.
    pub fn failed(mut timer: StreamTimer, error: CallError) -> CallOutcome {
        timer.finish(Instant::now());
        CallOutcome {
            timer,
            server: ServerTimers::default(),
            text: String::new(),
            error: Some(error),
            resent: false,
            connect_ms: None,
        }
    }

    /// Turns the raw measurement into a record. `run_start` is the run's monotonic origin.
    pub fn record(&self, ctx: &CallContext, run_start: Instant, started_at: String) -> CallRecord {
        let t = &self.timer;
        let end = t.end.unwrap_or_else(Instant::now);
        let e2e_ms = t.ms_since_start(end);
        let ttft_ms = t.first_content.map(|at| t.ms_since_start(at));
        let (output_tokens, tokens_counted) =
            match self.server.output_count.or(self.server.eval_count) {
                Some(n) => (Some(n), false),
                None if t.content_chunks > 0 => (Some(t.content_chunks), true),
                None => (None, false),
            };
        let itl = ItlSummary::of(&t.itl_us);
        // The server counts reasoning tokens among the output tokens, so the time per token
        // runs from the first generated token of either kind, not from the first answer
        // token (which would understate it by (reasoning + answer) / answer).
        let first_token = match (t.first_content, t.first_reasoning) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        };
        let tpot_ms = match (first_token, output_tokens) {
            (Some(first), Some(n)) if n > 1 && self.error.is_none() => {
                Some((e2e_ms - t.ms_since_start(first)) / (n - 1) as f64)
            }
            _ => None,
        };
        let decode_tps = match (self.server.eval_count, self.server.eval_ms) {
            (Some(n), Some(ms)) if ms > 0.0 => Some(n as f64 / (ms / 1e3)),
            _ => None,
        };
        let e2e_tps = match output_tokens {
            Some(n) if e2e_ms > 0.0 && self.error.is_none() => Some(n as f64 / (e2e_ms / 1e3)),
            _ => None,
        };
        let queue_ms = match (ttft_ms, self.server.load_ms, self.server.prompt_eval_ms) {
            (Some(ttft), Some(load), Some(prompt)) => Some(ttft - load - prompt),
            _ => None,
        };
        CallRecord {
            trial: ctx.trial,
            round: ctx.round,
            phase: ctx.phase,
            arm: ctx.arm.as_str().into(),
            variant: ctx.variant.as_str().into(),
            slot: ctx.slot,
            agent: ctx.agent.as_str().into(),
            step: ctx.step.as_str().into(),
            instance: ctx.instance,
            turn: ctx.turn,
            started_at,
            offset_ms: t.start.saturating_duration_since(run_start).as_secs_f64() * 1e3,
            ok: self.error.is_none(),
            error_kind: self.error.as_ref().map(|e| e.kind),
            error: self.error.as_ref().map(|e| e.message.clone()),
            ttft_ms,
            e2e_ms,
            itl_mean_ms: itl.map(|s| s.mean_ms),
            itl_p50_ms: itl.map(|s| s.p50_ms),
            itl_p95_ms: itl.map(|s| s.p95_ms),
            itl_max_ms: itl.map(|s| s.max_ms),
            tpot_ms,
            output_tokens,
            tokens_counted,
            prompt_tokens: self.server.prompt_eval_count,
            cached_prompt_tokens: self.server.cached_prompt_count,
            content_chunks: t.content_chunks,
            reasoning_ttft_ms: t.first_reasoning.map(|at| t.ms_since_start(at)),
            reasoning_chunks: t.reasoning_chunks,
            load_ms: self.server.load_ms,
            prompt_eval_ms: self.server.prompt_eval_ms,
            eval_ms: self.server.eval_ms,
            server_total_ms: self.server.total_ms,
            decode_tps,
            e2e_tps,
            queue_ms,
            cold: self
                .server
                .load_ms
                .is_some_and(|ms| ms > COLD_LOAD_THRESHOLD_MS),
            response_chars: self.text.chars().count() as u64,
            attempts: 1,
            resent: self.resent,
            connect_ms: self.connect_ms,
            schedule_lag_ms: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ItlSummary {
    mean_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

impl ItlSummary {
    /// Summary of the gaps; `None` when there are none. Percentiles are nearest-rank.
    fn of(gaps_us: &[u32]) -> Option<ItlSummary> {
        if gaps_us.is_empty() {
            return None;
        }
        let mut sorted = gaps_us.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let k = (p * sorted.len() as f64).ceil() as usize;
            f64::from(sorted[k.clamp(1, sorted.len()) - 1]) / 1e3
        };
        let sum: u64 = sorted.iter().map(|&g| u64::from(g)).sum();
        Some(ItlSummary {
            mean_ms: sum as f64 / sorted.len() as f64 / 1e3,
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            max_ms: f64::from(sorted[sorted.len() - 1]) / 1e3,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn interned_names_share_one_allocation_and_read_as_their_text() {
        let outcome = || CallOutcome::start(4);
        let (a, b) = (
            outcome().record(&ctx(), Instant::now(), "t".into()),
            outcome().record(&ctx(), Instant::now(), "t".into()),
        );
        assert!(!std::ptr::eq(a.arm.as_ptr(), b.arm.as_ptr()));
        let mut names = Names::default();
        let (a, b) = (names.intern(a), names.intern(b));
        assert!(std::ptr::eq(a.arm.as_ptr(), b.arm.as_ptr()));
        assert!(std::ptr::eq(a.step.as_ptr(), b.step.as_ptr()));
        assert!(a.arm == "a" && a.variant == *"v");
        assert!("a" == a.arm && a.agent == ctx().agent);
        assert_eq!(a.arm, b.arm);
        // Serialized as the plain string it holds.
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["arm"], "a");
        let back: CallRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.variant.to_string(), "v");
    }

    fn ctx() -> CallContext {
        CallContext {
            trial: 0,
            round: 0,
            phase: Phase::Measured,
            arm: "a".into(),
            variant: "v".into(),
            slot: 0,
            agent: "g".into(),
            step: "analysis".into(),
            instance: None,
            turn: None,
        }
    }

    #[test]
    fn derived_metrics_follow_their_definitions() {
        let mut timer = StreamTimer::start(8);
        let t0 = timer.start;
        for ms in [100, 110, 130, 160] {
            timer.content(t0 + Duration::from_millis(ms));
        }
        timer.finish(t0 + Duration::from_millis(200));
        let outcome = CallOutcome {
            timer,
            server: ServerTimers {
                eval_count: Some(5),
                prompt_eval_count: Some(40),
                load_ms: Some(60.0),
                prompt_eval_ms: Some(20.0),
                eval_ms: Some(50.0),
                total_ms: Some(190.0),
                ..ServerTimers::default()
            },
            text: "héllo".into(),
            error: None,
            resent: false,
            connect_ms: None,
        };
        let r = outcome.record(&ctx(), t0, "now".into());
        assert!((r.ttft_ms.unwrap() - 100.0).abs() < 1e-9);
        assert!((r.e2e_ms - 200.0).abs() < 1e-9);
        assert!((r.tpot_ms.unwrap() - 25.0).abs() < 1e-9);
        assert!((r.decode_tps.unwrap() - 100.0).abs() < 1e-9);
        assert!((r.e2e_tps.unwrap() - 25.0).abs() < 1e-9);
        assert!((r.queue_ms.unwrap() - 20.0).abs() < 1e-9);
        assert!((r.itl_mean_ms.unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(r.itl_p50_ms, Some(20.0));
        assert_eq!(r.itl_max_ms, Some(30.0));
        assert!(r.cold);
        assert!(!r.tokens_counted);
        assert_eq!(r.response_chars, 5);
    }

    #[test]
    fn time_per_token_counts_reasoning_tokens_from_the_first_of_them() {
        let mut timer = StreamTimer::start(8);
        let t0 = timer.start;
        for ms in [10, 20] {
            timer.reasoning(t0 + Duration::from_millis(ms));
        }
        for ms in [100, 110] {
            timer.content(t0 + Duration::from_millis(ms));
        }
        timer.finish(t0 + Duration::from_millis(120));
        let outcome = CallOutcome {
            timer,
            // completion_tokens: 2 reasoning + 2 answer tokens.
            server: ServerTimers {
                output_count: Some(4),
                ..ServerTimers::default()
            },
            text: "ab".into(),
            error: None,
            resent: false,
            connect_ms: None,
        };
        let r = outcome.record(&ctx(), t0, "now".into());
        assert!((r.ttft_ms.unwrap() - 100.0).abs() < 1e-9);
        assert!((r.reasoning_ttft_ms.unwrap() - 10.0).abs() < 1e-9);
        // (120 − 10) / (4 − 1), not (120 − 100) / 3.
        assert!(
            (r.tpot_ms.unwrap() - 110.0 / 3.0).abs() < 1e-9,
            "{:?}",
            r.tpot_ms
        );
    }

    #[test]
    fn missing_server_count_falls_back_to_labelled_chunk_count() {
        let mut timer = StreamTimer::start(2);
        let t0 = timer.start;
        timer.content(t0 + Duration::from_millis(5));
        timer.content(t0 + Duration::from_millis(9));
        timer.finish(t0 + Duration::from_millis(9));
        let outcome = CallOutcome {
            timer,
            server: ServerTimers::default(),
            text: String::new(),
            error: Some(CallError::new(ErrorKind::StreamCut, "cut")),
            resent: false,
            connect_ms: None,
        };
        let r = outcome.record(&ctx(), t0, "now".into());
        assert_eq!(r.output_tokens, Some(2));
        assert!(r.tokens_counted);
        assert!(!r.ok);
        assert_eq!(r.error_kind, Some(ErrorKind::StreamCut));
        assert_eq!(r.decode_tps, None);
        assert_eq!(r.tpot_ms, None, "a cut stream has no per-token time");
    }
}
