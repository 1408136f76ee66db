//! The validated layer: plain types with defaults filled in, names resolved and relative
//! paths made absolute. What the rest of the program reads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Gate, Metric, SimConfig};

/// Which API the harness speaks to the server.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Ollama's native API (`/api/chat`, `/api/generate`).
    Ollama,
    /// The built-in simulated Ollama server, started in-process.
    Sim,
    /// An OpenAI-compatible server (`/v1/chat/completions`): vLLM, llama.cpp, TGI, SGLang.
    Openai,
    /// The built-in simulated server, started in-process, spoken to through its
    /// OpenAI-compatible API (server-sent events, `usage`, llama.cpp-style `timings`).
    #[serde(rename = "sim-openai")]
    #[value(name = "sim-openai")]
    SimOpenai,
}

impl BackendKind {
    /// Lower-case name, as written in scenarios.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Ollama => "ollama",
            BackendKind::Sim => "sim",
            BackendKind::Openai => "openai",
            BackendKind::SimOpenai => "sim-openai",
        }
    }

    /// The built-in simulator, whichever API it is spoken to in.
    pub fn is_sim(self) -> bool {
        matches!(self, BackendKind::Sim | BackendKind::SimOpenai)
    }

    /// Requests go through the OpenAI-compatible API, which carries no `num_ctx`,
    /// `num_gpu` or `keep_alive`.
    pub fn speaks_openai(self) -> bool {
        matches!(self, BackendKind::Openai | BackendKind::SimOpenai)
    }
}

/// Which Ollama endpoint the agent calls.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OllamaApi {
    /// `/api/chat` with a system and a user message.
    #[default]
    Chat,
    /// `/api/generate` with `system` and `prompt`.
    Generate,
}

/// The order in which trials run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Each round runs every arm once, in a seeded random order (the default): drift over
    /// time hits every arm alike.
    #[default]
    Interleaved,
    /// All trials of the first arm, then all of the second, …: only for diagnosis.
    Sequential,
    /// All measured trials shuffled together with the seed.
    Random,
}

/// What each agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// The seed prototype's workflow: ingest a data directory, an analysis call, a report
    /// call, and a per-run Markdown report.
    AgentReport,
    /// A graph of agents: fan-out, fan-in, and multi-turn tool loops.
    AgentGraph,
    /// Recorded agent conversations or requests, replayed with synthetic text.
    Trace,
    /// A set of prompts (from a file, or synthetic of drawn lengths), sent one after
    /// another.
    Prompts,
}

impl WorkloadKind {
    /// The name used in scenarios.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::AgentReport => "agent_report",
            WorkloadKind::AgentGraph => "agent_graph",
            WorkloadKind::Trace => "trace",
            WorkloadKind::Prompts => "prompts",
        }
    }
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerConfig {
    /// Which API.
    pub backend: BackendKind,
    /// Base URL (no trailing slash). For `sim` this is filled in once the simulator runs.
    /// With `urls`, the first of them.
    pub url: String,
    /// Several servers of one run (`server.urls`), two or more: each measured round runs on
    /// one of them in turn (round `r` on server `r mod n`), the servers at once, each
    /// warmed up on its own; the server is then a block of the analysis. Empty for one
    /// server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Chat or generate endpoint.
    pub api: OllamaApi,
    /// Limit for one whole LLM call, in seconds.
    pub timeout_s: f64,
    /// Environment variable holding the API key (`openai`): its name is recorded, its
    /// value never.
    pub api_key_env: String,
    /// Variant options the backend cannot send that the scenario explicitly accepts to
    /// leave unsent (`openai`: `num_ctx`, `num_gpu`, `keep_alive`). Recorded in the
    /// manifest, so no reader mistakes the run for one that applied them.
    pub ignore_options: Vec<String>,
    /// Per-call cap on response bytes; past it the call fails as `response_too_long`.
    pub max_response_bytes: u64,
    /// Per-call cap on content chunks (tokens).
    pub max_response_tokens: u64,
}

/// Default environment variable of the OpenAI API key.
pub const DEFAULT_API_KEY_ENV: &str = "OPENAI_API_KEY";

/// Default URL of an OpenAI-compatible server (llama.cpp's `llama-server` port).
pub const DEFAULT_OPENAI_URL: &str = "http://127.0.0.1:8080";

/// Default Ollama address when neither the scenario nor `OLLAMA_HOST` names one.
pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";

impl ServerConfig {
    /// The servers the run's trials go to: `urls`, or the one `url`.
    pub fn servers(&self) -> Vec<&str> {
        if self.urls.is_empty() {
            vec![self.url.as_str()]
        } else {
            self.urls.iter().map(String::as_str).collect()
        }
    }

    /// The per-call caps on a response.
    pub fn limits(&self) -> ResponseLimits {
        ResponseLimits {
            max_bytes: self.max_response_bytes,
            max_tokens: self.max_response_tokens,
        }
    }
}

/// Per-call caps on a response, so a server that never stops cannot exhaust memory or
/// the run: past either, the call ends as `response_too_long`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Bytes of response body.
    pub max_bytes: u64,
    /// Content chunks (tokens, for servers that stream one per chunk).
    pub max_tokens: u64,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_bytes: 64 << 20,
            max_tokens: 200_000,
        }
    }
}

/// Ollama `options` of one variant. `None` means "not sent": the server's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelOptions {
    /// Number of layers to offload to the GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_gpu: Option<u32>,
    /// Context window to allocate, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u32>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Repetition penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Maximum number of tokens to generate (-1: unlimited, -2: fill the context).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i64>,
}

impl ModelOptions {
    /// What requests to `backend` carry of these options, and the names of the settings
    /// (of these and `keep_alive`) they cannot carry, which the scenario let go unsent
    /// (`server.ignore_options`). An OpenAI-compatible server takes no `num_ctx`, `num_gpu`
    /// or `keep_alive`, and a `num_predict` of zero or less (no limit) is its default.
    pub fn as_sent(
        &self,
        keep_alive: Option<&str>,
        backend: BackendKind,
    ) -> (ModelOptions, Vec<&'static str>) {
        if !backend.speaks_openai() {
            return (self.clone(), Vec::new());
        }
        let ignored = [
            ("num_ctx", self.num_ctx.is_some()),
            ("num_gpu", self.num_gpu.is_some()),
            ("keep_alive", keep_alive.is_some()),
        ];
        let sent = ModelOptions {
            num_ctx: None,
            num_gpu: None,
            num_predict: self.num_predict.filter(|&n| n > 0),
            ..self.clone()
        };
        let ignored = ignored.into_iter().filter(|&(_, set)| set).map(|(k, _)| k);
        (sent, ignored.collect())
    }

    /// True when no option is set, so the request carries no `options` key at all.
    pub fn is_empty(&self) -> bool {
        *self == ModelOptions::default()
    }

    /// A short human label, e.g. `num_gpu=80, num_ctx=512, temperature=1`.
    pub fn label(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        let Some(map) = value.as_object().filter(|m| !m.is_empty()) else {
            return "server defaults".to_owned();
        };
        map.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One agent configuration under test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// Name used in arms, tables and file names (validated to be a safe file name).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Model tag sent to the server.
    pub model: String,
    /// Options sent with every request (omitted entirely when empty).
    pub options: ModelOptions,
    /// Ollama `keep_alive`, sent when set.
    pub keep_alive: Option<String>,
}

/// One agent in the workflow: a persona, and optionally the agent whose output it reads.
/// In an `agent_graph` workload an agent is a node: it waits for the agents it comes
/// `after`, may run as several instances at once (`fan_out`) and may loop through
/// several turns with a tool step between them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    /// Agent name.
    pub name: String,
    /// System prompt.
    pub persona: String,
    /// The agent whose report this agent reads instead of the data summary
    /// (`agent_report`).
    pub consumes: Option<String>,
    /// The agents this one waits for and whose outputs it reads, joined (`agent_graph`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Instances run at once (`agent_graph`); 1 for one.
    #[serde(skip_serializing_if = "is_one")]
    pub fan_out: u32,
    /// What each instance of a fan-out reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// LLM calls in the agent's conversation, a tool step between each two.
    #[serde(skip_serializing_if = "is_one")]
    pub turns: u32,
    /// The tool step between turns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolStep>,
    /// Cap on each call's generated tokens: the smaller of this and the variant's
    /// `num_predict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Agent {
    /// An `agent_report` agent: a persona, reading `consumes` if set.
    pub fn new(name: &str, persona: &str, consumes: Option<&str>) -> Agent {
        Agent {
            name: name.to_owned(),
            persona: persona.to_owned(),
            consumes: consumes.map(str::to_owned),
            after: Vec::new(),
            fan_out: 1,
            split: None,
            turns: 1,
            tool: None,
            max_tokens: None,
        }
    }

    /// The agents whose output this one reads.
    pub fn inputs(&self) -> impl Iterator<Item = &str> {
        self.consumes.iter().chain(&self.after).map(String::as_str)
    }
}

/// What each instance of a fan-out reads of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Instance k reads the k-th list item of the input (items wrap around when there are
    /// fewer than instances; the whole input when it has none).
    Items,
    /// Every instance reads the whole input.
    Same,
}

/// A tool step between two turns: the agent waits for a tool, whose result (of
/// `result_tokens` tokens) is appended to the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ToolStep {
    /// How long the tool takes.
    pub wait: Wait,
    /// Size of the tool's result, in tokens (about four characters each).
    pub result_tokens: u32,
}

/// A seeded distribution of waits, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// Always this long.
    Fixed(f64),
    /// Uniform between the two bounds.
    Uniform([f64; 2]),
    /// Lognormal with this median and standard deviation of the log.
    Lognormal {
        /// Median wait, ms.
        median: f64,
        /// Standard deviation of the log of the wait.
        sigma: f64,
    },
}

impl Wait {
    /// One wait, ms, drawn from `rng`.
    pub fn sample(&self, rng: &mut crate::rng::Rng) -> f64 {
        match *self {
            Wait::Fixed(ms) => ms,
            Wait::Uniform([lo, hi]) => lo + (hi - lo) * rng.uniform(),
            Wait::Lognormal { median, sigma } => median * rng.lognormal_factor(sigma),
        }
    }
}

/// The load a trial puts on the server (`load:`): how each of its variants' jobs sends
/// its requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadLevel {
    /// Closed loop: this many workers, each sending its next request when its previous
    /// one has ended.
    Concurrency(u32),
    /// Open loop: requests per second, each sent at a time fixed before the run.
    Rate(f64),
}

// Rates are checked to be finite and positive, so equality is an equivalence.
impl Eq for LoadLevel {}

impl LoadLevel {
    /// The suffix of the arm's name: `c16`, `r2`, `r0.5`.
    pub fn label(self) -> String {
        match self {
            LoadLevel::Concurrency(c) => format!("c{c}"),
            LoadLevel::Rate(r) => format!("r{r}"),
        }
    }

    /// In words: `concurrency 16`, `2 req/s`.
    pub fn describe(self) -> String {
        match self {
            LoadLevel::Concurrency(c) => format!("concurrency {c}"),
            LoadLevel::Rate(r) => format!("{r} req/s"),
        }
    }

    /// The level as a number (workers, or requests per second), for ordering levels.
    pub fn value(self) -> f64 {
        match self {
            LoadLevel::Concurrency(c) => f64::from(c),
            LoadLevel::Rate(r) => r,
        }
    }
}

/// How an open loop's requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Evenly spaced, `1 / rate` apart.
    Constant,
    /// A Poisson process: exponential gaps of mean `1 / rate`.
    Poisson,
    /// Gamma-distributed gaps of mean `1 / rate` and shape `burstiness`: below 1 burstier
    /// than Poisson, above 1 more even (1 is Poisson).
    Gamma {
        /// The gamma distribution's shape.
        burstiness: f64,
    },
}

/// The load levels of a scenario (`load:`) and how each level's trials run. Every arm
/// runs at every level; each (arm, level) is an arm of its own, named `arm@c16`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    /// The levels, in the order written.
    pub levels: Vec<LoadLevel>,
    /// Arrival process of open-loop levels.
    pub arrival: Arrival,
    /// Requests each job sends per trial (all its workers together); `None` when the
    /// level runs for `duration_s`.
    pub requests: Option<u32>,
    /// How long each job sends, s; `None` when it sends `requests`.
    pub duration_s: Option<f64>,
    /// The first requests of each job (in send order) are recorded as warm-up and left
    /// out of every statistic.
    pub warmup_requests: u32,
    /// Open loop: at most this many requests in flight; a request due while the cap is
    /// reached is sent late, and the lateness is recorded.
    pub max_inflight: u32,
    /// Closed loop: worker k of C starts `k / C × ramp_up_s` seconds into the level, so the
    /// workers do not send their first requests (and, with equal lengths, every later one)
    /// in one burst; 0 starts them together.
    pub ramp_up_s: f64,
}

/// An open-loop request sent more than this long after it was due counts as late, ms.
pub const LATE_MS: f64 = 10.0;

/// What counts as good service (`slo:`): a request meets the objectives when every
/// declared bound holds. Goodput is the rate of such requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Bound on time to first token, ms (from the scheduled send time in an open loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Bound on time per output token, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    /// Bound on end-to-end time, ms (from the scheduled send time in an open loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
}

impl Slo {
    /// True when a call with these times meets every declared bound; a bound whose time
    /// the call lacks is not met.
    pub fn met(&self, ttft_ms: Option<f64>, tpot_ms: Option<f64>, e2e_ms: f64) -> bool {
        let within = |bound: Option<f64>, value: Option<f64>| {
            bound.is_none_or(|b| value.is_some_and(|v| v <= b))
        };
        within(self.ttft_ms, ttft_ms)
            && within(self.tpot_ms, tpot_ms)
            && within(self.e2e_ms, Some(e2e_ms))
    }

    /// The bounds in words: `TTFT ≤ 500 ms, TPOT ≤ 50 ms`.
    pub fn describe(&self) -> String {
        [
            ("TTFT", self.ttft_ms),
            ("TPOT", self.tpot_ms),
            ("e2e", self.e2e_ms),
        ]
        .into_iter()
        .filter_map(|(name, b)| b.map(|b| format!("{name} ≤ {b} ms")))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// A set of variants launched together in one trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    /// `baseline`, `baseline+chimera`, `chimera+chimera`, `chimera@c16`, …
    pub name: String,
    /// Variant names, one per concurrent agent pipeline.
    pub variants: Vec<String>,
    /// The load level each of its jobs runs at (`load:`); `None` for one job each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadLevel>,
}

impl Arm {
    /// The arm that launches `variants` together, named after them (`baseline+chimera`).
    pub fn new(variants: Vec<String>) -> Arm {
        Arm {
            name: variants.join("+"),
            variants,
            load: None,
        }
    }

    /// This arm at load `level`, named `arm@c16`.
    pub fn at(&self, level: LoadLevel) -> Arm {
        Arm {
            name: format!("{}@{}", self.name, level.label()),
            variants: self.variants.clone(),
            load: Some(level),
        }
    }

    /// Whether its trials measure `metric`: at a load level the serving metrics and not
    /// the job ones (the job is the level), elsewhere the job metrics and not the serving
    /// ones.
    pub fn measures(&self, metric: super::Metric) -> bool {
        match self.load {
            Some(_) => !metric.is_job(),
            None => !metric.needs_load(),
        }
    }

    /// The name without its load level: `chimera` for `chimera@c16`.
    pub fn base_name(&self) -> &str {
        match self.load {
            Some(_) => self
                .name
                .rsplit_once('@')
                .map_or(&self.name, |(base, _)| base),
            None => &self.name,
        }
    }

    /// True when more than one pipeline runs at once.
    pub fn is_concurrent(&self) -> bool {
        self.variants.len() > 1
    }

    /// The distinct variants of the arm, in arm order.
    pub fn distinct_variants(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for v in &self.variants {
            if !seen.contains(&v.as_str()) {
                seen.push(v);
            }
        }
        seen
    }

    /// The arm of `arms` that is this one with every `variant` replaced by `baseline` (as a
    /// multiset, so `[chimera, baseline]` finds `[baseline, baseline]`): what `variant` in
    /// this arm is compared against.
    pub fn counterpart<'a>(
        &self,
        variant: &str,
        baseline: &str,
        arms: &'a [Arm],
    ) -> Option<&'a Arm> {
        fn sorted(mut names: Vec<&str>) -> Vec<&str> {
            names.sort_unstable();
            names
        }
        let want = sorted(
            self.variants
                .iter()
                .map(|v| if v == variant { baseline } else { v.as_str() })
                .collect(),
        );
        arms.iter().find(|a| {
            a.load == self.load && sorted(a.variants.iter().map(String::as_str).collect()) == want
        })
    }
}

/// The workload each variant instance runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Which workflow.
    pub kind: WorkloadKind,
    /// The data directory the ingest step scans (absolute); an `agent_graph` without one
    /// gives its first agents `task` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// What an `agent_graph`'s first agents are asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The trace a `trace` workload replays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<super::Trace>,
    /// The prompts a `prompts` workload sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompts: Option<super::prompts::PromptSet>,
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Scenario name (safe as a file name).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Seed for the plan's order and the simulator.
    pub seed: u64,
    /// The server.
    pub server: ServerConfig,
    /// Simulator parameters (used when `server.backend` is `sim`).
    pub sim: SimConfig,
    /// Default model tag.
    pub model: String,
    /// The workload.
    pub workload: Workload,
    /// Agents in pipeline order: an agent comes after the one it consumes.
    pub agents: Vec<Agent>,
    /// Variants by name.
    pub variants: BTreeMap<String, Variant>,
    /// The variant every other is compared against: the `baseline:` key, else the variant
    /// named `baseline`, else the only variant.
    pub baseline: String,
    /// Arms in file order; with `load:`, every arm at every level (level by level).
    pub arms: Vec<Arm>,
    /// The load levels (`load:`), when the scenario sweeps them.
    pub load: Option<Load>,
    /// Service objectives that goodput counts against (`slo:`).
    pub slo: Option<Slo>,
    /// Measured trials per arm.
    pub trials: u32,
    /// Warmup rounds before the measured ones (excluded from statistics).
    pub warmup: u32,
    /// Trial order.
    pub order: Order,
    /// Send one short priming request before a trial whose model configuration differs
    /// from the previous trial's, so model reloads do not land in measured calls.
    pub prime_on_switch: bool,
    /// Regression gates judged at the end of `harness run` and by `harness gate`.
    pub gates: Vec<Gate>,
    /// Stop early when this comparison is decided.
    pub stopping: Option<Stopping>,
    /// Retries of calls whose connection failed before any byte arrived.
    pub retries: Retries,
    /// After Ctrl-C or SIGTERM, how long calls in flight may still finish before they
    /// are cancelled, s.
    pub stop_grace_s: f64,
}

/// A sequential stopping rule: after every `every` measured rounds, the per-round log ratios
/// of `variant` in `arm` over the baseline in `against` get an anytime-valid confidence
/// sequence; the run stops at the end of the round where it shows the variant faster,
/// slower beyond `tolerance`, or equivalent within ±`tolerance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stopping {
    /// The metric.
    pub metric: Metric,
    /// The variant.
    pub variant: String,
    /// Its arm.
    pub arm: String,
    /// The baseline.
    pub baseline: String,
    /// The baseline's arm it is compared with (the arm with the baseline in its place).
    pub against: String,
    /// τ, as a fraction.
    pub tolerance: f64,
    /// Look every this many rounds.
    pub every: u32,
}

/// Retrying a call is safe only when the server never saw it: a refused or failed
/// connection. Everything else is recorded as the failure it is.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Retries {
    /// Retries after the first attempt (0: none, the default).
    pub max: u32,
    /// Wait before the first retry, doubled for each further one, ms.
    pub backoff_ms: f64,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max: 0,
            backoff_ms: 250.0,
        }
    }
}

impl Retries {
    /// The wait before retry number `retry` (1 for the first), ms: `backoff_ms`, doubled
    /// for each further retry.
    pub fn delay_ms(&self, retry: u32) -> f64 {
        (self.backoff_ms * 2f64.powi(retry.saturating_sub(1) as i32)).max(0.0)
    }
}

pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Turns an `OLLAMA_HOST` value (`host`, `host:port`, or a URL) into a base URL, the way
/// Ollama's own client reads it.
pub fn normalize_ollama_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let (scheme, rest) = match host.split_once("://") {
        Some((s, r)) => (s.to_owned(), r.to_owned()),
        None => ("http".to_owned(), host.to_owned()),
    };
    let rest = if rest.is_empty() {
        "127.0.0.1".to_owned()
    } else {
        rest
    };
    let rest = rest.replace("0.0.0.0", "127.0.0.1");
    let has_port = rest
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if has_port {
        format!("{scheme}://{rest}")
    } else {
        let port = if scheme == "https" { 443 } else { 11434 };
        format!("{scheme}://{rest}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(variants: &[&str]) -> Arm {
        Arm::new(variants.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn the_retry_back_off_doubles() {
        let r = Retries {
            max: 4,
            backoff_ms: 100.0,
        };
        let waits: Vec<f64> = (1..=4).map(|k| r.delay_ms(k)).collect();
        assert_eq!(waits, [100.0, 200.0, 400.0, 800.0]);
    }

    #[test]
    fn counterpart_puts_the_baseline_in_the_variants_place() {
        let arms = [
            arm(&["baseline"]),
            arm(&["fast"]),
            arm(&["baseline", "baseline"]),
            arm(&["fast", "fast"]),
            arm(&["fast", "baseline"]),
            arm(&["slow", "fast"]),
        ];
        let find = |a: &Arm, v: &str| a.counterpart(v, "baseline", &arms).map(|a| a.name.clone());
        assert_eq!(find(&arms[1], "fast").as_deref(), Some("baseline"));
        assert_eq!(find(&arms[3], "fast").as_deref(), Some("baseline+baseline"));
        // A mixed arm with the baseline in it maps onto [baseline, baseline] as a multiset.
        assert_eq!(find(&arms[4], "fast").as_deref(), Some("baseline+baseline"));
        // [slow, fast] → [slow, baseline] is not in the scenario: no comparison.
        assert_eq!(find(&arms[5], "fast"), None);
    }

    #[test]
    fn unsafe_names_are_rejected() {
        assert!(is_safe_name("chimera-a_1.2"));
        assert!(!is_safe_name("../etc"));
        assert!(!is_safe_name("a/b"));
        assert!(!is_safe_name(""));
        assert!(!is_safe_name(".hidden"));
    }
}
