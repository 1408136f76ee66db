//! Scenario files: the pre-registered experiment, parsed and validated.
//!
//! Loading happens in two layers. The *raw* layer ([`RawScenario`]) mirrors the YAML
//! exactly: unknown keys are rejected and every value that needs a semantic check is
//! wrapped in [`Spanned`] so the check can point at its line and column. [`Scenario`] is
//! the validated result that the rest of the program uses: plain types, defaults filled
//! in, names resolved, and relative paths made absolute against the scenario file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::gate::{Bound, DEFAULT_ALPHA, DEFAULT_MIN_TRIALS, Gate};
use crate::sim::fault::Fault;
use crate::summary::Metric;

/// Default Ollama address when neither the scenario nor `OLLAMA_HOST` names one.
pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";

/// Largest scenario file we read; anything bigger is not a hand-written experiment.
const MAX_SCENARIO_BYTES: u64 = 1 << 20;

/// One problem found in a scenario file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// Dotted path of the field, e.g. `variants.chimera.options.num_ctx`.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

/// Every problem found in one scenario file.
#[derive(Debug, thiserror::Error)]
pub struct ScenarioError {
    /// The file that was read.
    pub file: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}", self.file.display())?;
            if let (Some(line), Some(column)) = (p.line, p.column) {
                write!(f, ":{line}:{column}")?;
            }
            if p.field.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": field `{}`: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Raw layer: exactly what the YAML says.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    sim: Option<SimConfig>,
    model: Spanned<String>,
    workload: RawWorkload,
    agents: Spanned<BTreeMap<String, RawAgent>>,
    variants: Spanned<BTreeMap<String, RawVariant>>,
    #[serde(default)]
    baseline: Option<Spanned<String>>,
    arms: Spanned<Vec<Spanned<Vec<Spanned<String>>>>>,
    trials: Spanned<u32>,
    #[serde(default)]
    warmup: Option<Spanned<u32>>,
    #[serde(default)]
    order: Option<Order>,
    #[serde(default)]
    prime_on_switch: Option<bool>,
    #[serde(default)]
    gates: Option<Spanned<Vec<Spanned<RawGate>>>>,
    #[serde(default)]
    retries: Option<Retries>,
    #[serde(default)]
    stop_grace_s: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    backend: Option<BackendKind>,
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    api: Option<OllamaApi>,
    #[serde(default)]
    timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    api_key_env: Option<Spanned<String>>,
    #[serde(default)]
    ignore_options: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    max_response_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    max_response_tokens: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    kind: WorkloadKind,
    data_dir: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    persona: Spanned<String>,
    #[serde(default)]
    consumes: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    options: Option<RawOptions>,
    #[serde(default)]
    keep_alive: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    #[serde(default)]
    num_gpu: Option<Spanned<i64>>,
    #[serde(default)]
    num_ctx: Option<Spanned<i64>>,
    #[serde(default)]
    temperature: Option<Spanned<f64>>,
    #[serde(default)]
    top_p: Option<Spanned<f64>>,
    #[serde(default)]
    top_k: Option<Spanned<i64>>,
    #[serde(default)]
    repeat_penalty: Option<Spanned<f64>>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    num_predict: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    metric: Spanned<String>,
    variant: Spanned<String>,
    #[serde(default)]
    arm: Option<Spanned<String>>,
    #[serde(default)]
    baseline: Option<Spanned<String>>,
    #[serde(default)]
    direction: Option<GoodDirection>,
    #[serde(default)]
    tolerance: Option<Spanned<RawTolerance>>,
    #[serde(default)]
    alpha: Option<Spanned<f64>>,
    #[serde(default)]
    min_trials: Option<Spanned<u32>>,
}

/// `5%` or `0.05`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawTolerance {
    Fraction(f64),
    Text(String),
}

/// Which way is good for a gate, when it differs from the metric's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum GoodDirection {
    Higher,
    Lower,
}

// ---------------------------------------------------------------------------------------
// Validated layer.
// ---------------------------------------------------------------------------------------

/// Which API the harness speaks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Ollama's native API (`/api/chat`, `/api/generate`).
    Ollama,
    /// The built-in simulated Ollama server, started in-process.
    Sim,
    /// An OpenAI-compatible server (`/v1/chat/completions`): vLLM, llama.cpp, TGI, SGLang.
    Openai,
}

impl BackendKind {
    /// Lower-case name, as written in scenarios.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Ollama => "ollama",
            BackendKind::Sim => "sim",
            BackendKind::Openai => "openai",
        }
    }
}

/// Which Ollama endpoint the agent calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OllamaApi {
    /// `/api/chat` with a system and a user message.
    #[default]
    Chat,
    /// `/api/generate` with `system` and `prompt`.
    Generate,
}

/// The order in which trials run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// The seed prototype's workflow: ingest a data directory, an analysis call, a report
    /// call, and a per-run Markdown report.
    AgentReport,
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerConfig {
    /// Which API.
    pub backend: BackendKind,
    /// Base URL (no trailing slash). For `sim` this is filled in once the simulator runs.
    pub url: String,
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

/// Options `server.ignore_options` may name.
const IGNORABLE: [&str; 3] = ["num_ctx", "num_gpu", "keep_alive"];

/// How to run anyway, added to every "cannot send" message.
const IGNORE_HINT: &str = "list it in `server.ignore_options` to run without it";

/// Ollama options an OpenAI-compatible API cannot carry per request, and why.
const NOT_PER_REQUEST: [(&str, &str); 2] = [
    (
        "num_ctx",
        "the context size is set when the server starts (llama-server -c, vllm --max-model-len)",
    ),
    (
        "num_gpu",
        "GPU offload is set when the server starts (llama-server -ngl)",
    ),
];

/// Parameters of the built-in simulator's model of a GPU server. Every field has a
/// default that resembles one data-centre GPU serving a 4B model with Ollama.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Requests decoded at once (Ollama's `OLLAMA_NUM_PARALLEL`); more wait in a queue.
    pub parallel: u32,
    /// Decode rate of one stream with every layer on the GPU and a 2048-token context.
    pub decode_tps: f64,
    /// Decode rate with every layer on the CPU.
    pub cpu_decode_tps: f64,
    /// Prompt processing rate with every layer on the GPU.
    pub prefill_tps: f64,
    /// Number of layers of the simulated model (`num_gpu` at or above this is full offload).
    pub layers: u32,
    /// Context the server allocates when a request sets no `num_ctx`.
    pub default_num_ctx: u32,
    /// Time to load the model into memory when it or its `num_ctx`/`num_gpu` changes.
    pub load_ms: f64,
    /// Relative decode cost of each 1024 tokens of allocated context.
    pub ctx_cost_per_1k: f64,
    /// Relative per-stream slowdown for each additional stream decoding at once.
    pub batch_penalty: f64,
    /// Median number of tokens in a response.
    pub median_output_tokens: u32,
    /// Standard deviation of the log of each token's time (lognormal jitter).
    pub jitter_sigma: f64,
    /// Standard deviation of the log of each call's decode rate (call-to-call drift).
    pub call_sigma: f64,
    /// Seed of the simulator's own randomness.
    pub seed: u64,
    /// Faults to inject (see [`crate::sim::fault`]); none by default.
    pub faults: Vec<Fault>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            parallel: 1,
            decode_tps: 240.0,
            cpu_decode_tps: 18.0,
            prefill_tps: 6000.0,
            layers: 34,
            default_num_ctx: 4096,
            load_ms: 200.0,
            ctx_cost_per_1k: 0.05,
            batch_penalty: 0.35,
            median_output_tokens: 48,
            jitter_sigma: 0.15,
            call_sigma: 0.04,
            seed: 7,
            faults: Vec::new(),
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    /// Agent name.
    pub name: String,
    /// System prompt.
    pub persona: String,
    /// The agent whose report this agent reads instead of the data summary.
    pub consumes: Option<String>,
}

/// A set of variants launched together in one trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    /// `baseline`, `baseline+chimera`, `chimera+chimera`, …
    pub name: String,
    /// Variant names, one per concurrent agent pipeline.
    pub variants: Vec<String>,
}

impl Arm {
    /// True when more than one pipeline runs at once.
    pub fn is_concurrent(&self) -> bool {
        self.variants.len() > 1
    }
}

/// The workload each variant instance runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Which workflow.
    pub kind: WorkloadKind,
    /// The data directory the ingest step scans (absolute).
    pub data_dir: PathBuf,
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
    /// Arms in file order.
    pub arms: Vec<Arm>,
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
    /// Retries of calls whose connection failed before any byte arrived.
    pub retries: Retries,
    /// After Ctrl-C or SIGTERM, how long calls in flight may still finish before they
    /// are cancelled, s.
    pub stop_grace_s: f64,
}

/// Retrying a call is safe only when the server never saw it: a refused or failed
/// connection. Everything else is recorded as the failure it is.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
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

impl Scenario {
    /// Options the scenario's backend cannot send, for a backend chosen after parsing
    /// (`--backend`); parsing reports them with their lines already.
    pub fn check_backend(&self) -> Result<(), String> {
        if self.server.backend != BackendKind::Openai {
            return Ok(());
        }
        let ignored = |key: &str| self.server.ignore_options.iter().any(|i| i == key);
        let mut problems = Vec::new();
        for (name, v) in &self.variants {
            for (key, why) in NOT_PER_REQUEST {
                let set = match key {
                    "num_ctx" => v.options.num_ctx.is_some(),
                    _ => v.options.num_gpu.is_some(),
                };
                if set && !ignored(key) {
                    problems.push(format!(
                        "variant `{name}`: the openai backend cannot send `{key}` per request: {why}; {IGNORE_HINT}"
                    ));
                }
            }
            if v.keep_alive.is_some() && !ignored("keep_alive") {
                problems.push(format!(
                    "variant `{name}`: `keep_alive` is Ollama's; the openai backend cannot send it: {IGNORE_HINT}"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Reads, parses and validates a scenario file. `ollama_host` is the value of
    /// `OLLAMA_HOST`, if set, used when the scenario names no URL.
    pub fn load(path: &Path, ollama_host: Option<&str>) -> Result<Scenario, ScenarioError> {
        let fail = |message: String| ScenarioError {
            file: path.to_owned(),
            problems: vec![Problem {
                line: None,
                column: None,
                field: String::new(),
                message,
            }],
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        if meta.len() > MAX_SCENARIO_BYTES {
            return Err(fail(format!(
                "is {} bytes; a scenario may be at most {MAX_SCENARIO_BYTES}",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Scenario::parse(&text, base_dir, ollama_host).map_err(|problems| ScenarioError {
            file: path.to_owned(),
            problems,
        })
    }

    /// Parses and validates scenario text; relative paths resolve against `base_dir`.
    ///
    /// serde stops at the first error, so to report several at once a key that is unknown
    /// or has a value of the wrong type is blanked out (its lines, keeping line numbers)
    /// and the text parsed again. A required key blanked this way ends the search, since
    /// what follows would only be "missing field" about the problem already reported.
    pub fn parse(
        text: &str,
        base_dir: &Path,
        ollama_host: Option<&str>,
    ) -> Result<Scenario, Vec<Problem>> {
        const MAX_SYNTAX_PROBLEMS: usize = 20;
        let mut text = text.to_owned();
        let mut problems: Vec<Problem> = Vec::new();
        let mut blanked: Vec<String> = Vec::new();
        let mut scenario = None;
        for _ in 0..MAX_SYNTAX_PROBLEMS {
            match serde_saphyr::from_str::<RawScenario>(&text) {
                Ok(raw) => {
                    let mut check = Checker::default();
                    scenario = Some(check.scenario(raw, base_dir, ollama_host));
                    problems.extend(check.problems);
                    break;
                }
                Err(e) => {
                    let mut problem = yaml_problem(&e);
                    if problem.message.starts_with("missing field") {
                        // Reported at the end of its mapping: there is no line to blank,
                        // and parsing further would only repeat it. A field missing
                        // because we blanked it was reported already.
                        if !blanked.contains(&problem.field) {
                            problems.push(problem);
                        }
                        break;
                    }
                    if problem.field.is_empty() {
                        if let Some(line) = problem.line {
                            problem.field = yaml_path_at(&text, line as usize);
                        }
                    }
                    let line = problem.line;
                    let leaf = problem
                        .field
                        .rsplit('.')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    problems.push(problem);
                    match line.and_then(|l| blank_block(&mut text, l as usize)) {
                        Some(()) => blanked.push(leaf),
                        None => break,
                    }
                }
            }
        }
        problems.sort_by_key(|p| (p.line, p.column));
        match scenario {
            Some(s) if problems.is_empty() => Ok(s),
            _ => Err(problems),
        }
    }

    /// Variant by name; names were checked at load.
    pub fn variant(&self, name: &str) -> &Variant {
        &self.variants[name]
    }
}

/// Turns a YAML or serde error into a problem with a location and a field name.
fn yaml_problem(e: &serde_saphyr::Error) -> Problem {
    let location = e.location();
    // The library's Display appends a source snippet; the first line carries the message,
    // followed by a location we report in our own format.
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML");
    let message = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let message = match message.strip_prefix("invalid ") {
        Some(ty @ ("u8" | "u16" | "u32" | "u64")) => {
            format!("wrong type: expected a whole number ≥ 0 ({ty})")
        }
        Some(ty @ ("i8" | "i16" | "i32" | "i64")) => {
            format!("wrong type: expected a whole number ({ty})")
        }
        Some(ty @ ("f32" | "f64")) => format!("wrong type: expected a number ({ty})"),
        Some("bool") => "wrong type: expected true or false".to_owned(),
        _ => message.to_owned(),
    };
    let field = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"))
        .unwrap_or_default()
        .to_owned();
    Problem {
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        field,
        message,
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start().trim_start_matches("- ");
    let (key, _) = t.split_once(':')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty() && !key.starts_with('#') && !key.contains(['{', '[', ' '])).then_some(key)
}

/// Dotted path of the block-style key on 1-based `line`, from its indentation.
fn yaml_path_at(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.get(line.wrapping_sub(1)) else {
        return String::new();
    };
    let mut path: Vec<&str> = key_of(start).into_iter().collect();
    let mut indent = indent_of(start);
    for l in lines[..line - 1].iter().rev() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        if indent_of(l) < indent {
            indent = indent_of(l);
            if let Some(k) = key_of(l) {
                path.push(k);
            }
        }
        if indent == 0 {
            break;
        }
    }
    path.reverse();
    path.join(".")
}

/// Blanks 1-based `line` and the more-indented lines under it, keeping line numbers.
/// Refuses (None) for flow collections, whose line holds more than one key.
fn blank_block(text: &mut String, line: usize) -> Option<()> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let target = lines.get(line.checked_sub(1)?)?;
    if target.contains(['{', '[']) || key_of(target).is_none() {
        return None;
    }
    let indent = indent_of(target);
    lines[line - 1].clear();
    for l in lines.iter_mut().skip(line) {
        if !l.trim().is_empty() && indent_of(l) <= indent {
            break;
        }
        l.clear();
    }
    *text = lines.join("\n");
    Some(())
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report<T>(&mut self, at: &Spanned<T>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: Some(at.referenced.line()),
            column: Some(at.referenced.column()),
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Checks `lo <= value <= hi` and reports otherwise.
    fn range<T: PartialOrd + fmt::Display + Copy>(
        &mut self,
        at: &Spanned<T>,
        field: &str,
        lo: T,
        hi: T,
    ) -> T {
        if !(at.value >= lo && at.value <= hi) {
            self.report(
                at,
                field,
                format!("{} is out of range (must be {lo} to {hi})", at.value),
            );
        }
        at.value
    }

    fn safe_name(&mut self, at: &Spanned<String>, field: &str) {
        if !is_safe_name(&at.value) {
            self.report(
                at,
                field,
                format!(
                    "`{}` must be 1-64 characters of letters, digits, '-', '_' or '.', not starting with '.'",
                    at.value
                ),
            );
        }
    }

    fn scenario(&mut self, raw: RawScenario, base_dir: &Path, host: Option<&str>) -> Scenario {
        self.safe_name(&raw.name, "name");
        let server = self.server(raw.server, host);
        let model = raw.model.value.clone();
        if model.trim().is_empty() {
            self.report(&raw.model, "model", "must not be empty");
        }
        let data_dir = {
            let p = PathBuf::from(&raw.workload.data_dir.value);
            let p = if p.is_absolute() { p } else { base_dir.join(p) };
            if let Err(e) = std::fs::read_dir(&p) {
                self.report(
                    &raw.workload.data_dir,
                    "workload.data_dir",
                    format!("{} is not a readable directory ({e})", p.display()),
                );
            }
            p
        };
        let agents = self.agents(&raw.agents);
        let variants = self.variants(&raw.variants, &model);
        if server.backend == BackendKind::Openai {
            self.openai_options(&raw.variants, &server.ignore_options);
        }
        let baseline = self.baseline(raw.baseline.as_ref(), &raw.variants, &variants);
        let arms = self.arms(&raw.arms, &variants);
        let gates = raw
            .gates
            .as_ref()
            .map(|g| self.gates(g, &variants, &arms, &baseline))
            .unwrap_or_default();
        let trials = self.range(&raw.trials, "trials", 1, 10_000);
        let warmup = raw
            .warmup
            .as_ref()
            .map(|w| self.range(w, "warmup", 0, 1_000))
            .unwrap_or(1);
        Scenario {
            name: raw.name.value,
            description: raw.description,
            seed: raw.seed.unwrap_or(0),
            server,
            sim: raw.sim.unwrap_or_default(),
            model,
            workload: Workload {
                kind: raw.workload.kind,
                data_dir,
            },
            agents,
            variants,
            baseline,
            arms,
            trials,
            warmup,
            order: raw.order.unwrap_or_default(),
            prime_on_switch: raw.prime_on_switch.unwrap_or(true),
            gates,
            retries: raw.retries.unwrap_or_default(),
            stop_grace_s: raw
                .stop_grace_s
                .as_ref()
                .map_or(30.0, |g| self.range(g, "stop_grace_s", 0.0, 86_400.0)),
        }
    }

    fn server(&mut self, raw: Option<RawServer>, host: Option<&str>) -> ServerConfig {
        let raw = raw.unwrap_or(RawServer {
            backend: None,
            url: None,
            api: None,
            timeout_s: None,
            api_key_env: None,
            ignore_options: None,
            max_response_bytes: None,
            max_response_tokens: None,
        });
        let backend = raw.backend.unwrap_or(BackendKind::Ollama);
        let url = match &raw.url {
            Some(u) => {
                if !(u.value.starts_with("http://") || u.value.starts_with("https://")) {
                    self.report(u, "server.url", "must start with http:// or https://");
                }
                u.value.clone()
            }
            None if backend == BackendKind::Openai => DEFAULT_OPENAI_URL.to_owned(),
            None => host
                .map(normalize_ollama_host)
                .unwrap_or_else(|| DEFAULT_OLLAMA_URL.to_owned()),
        };
        let api_key_env = match &raw.api_key_env {
            Some(e) => {
                let ok = !e.value.is_empty()
                    && e.value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    self.report(
                        e,
                        "server.api_key_env",
                        "must name an environment variable (letters, digits, `_`), not hold the key itself",
                    );
                }
                e.value.clone()
            }
            None => DEFAULT_API_KEY_ENV.to_owned(),
        };
        let timeout_s = raw
            .timeout_s
            .as_ref()
            .map(|t| self.range(t, "server.timeout_s", 0.001, 86_400.0))
            .unwrap_or(300.0);
        let mut ignore_options = Vec::new();
        for o in raw.ignore_options.iter().flat_map(|l| &l.value) {
            if IGNORABLE.contains(&o.value.as_str()) {
                ignore_options.push(o.value.clone());
            } else {
                self.report(
                    o,
                    "server.ignore_options",
                    format!(
                        "`{}` cannot be ignored (only {})",
                        o.value,
                        IGNORABLE.join(", ")
                    ),
                );
            }
        }
        let defaults = crate::backend::ResponseLimits::default();
        ServerConfig {
            backend,
            url: url.trim_end_matches('/').to_owned(),
            api: raw.api.unwrap_or_default(),
            timeout_s,
            api_key_env,
            ignore_options,
            max_response_bytes: raw
                .max_response_bytes
                .as_ref()
                .map_or(defaults.max_bytes, |b| {
                    self.range(b, "server.max_response_bytes", 1024, 1 << 34)
                }),
            max_response_tokens: raw
                .max_response_tokens
                .as_ref()
                .map_or(defaults.max_tokens, |t| {
                    self.range(t, "server.max_response_tokens", 1, 100_000_000)
                }),
        }
    }

    fn agents(&mut self, raw: &Spanned<BTreeMap<String, RawAgent>>) -> Vec<Agent> {
        if raw.value.is_empty() {
            self.report(raw, "agents", "at least one agent is needed");
        }
        for (name, agent) in &raw.value {
            let field = format!("agents.{name}");
            if !is_safe_name(name) {
                self.report(&agent.persona, &field, "agent name is not a safe file name");
            }
            if agent.persona.value.trim().is_empty() {
                self.report(
                    &agent.persona,
                    &format!("{field}.persona"),
                    "must not be empty",
                );
            }
            if let Some(c) = &agent.consumes {
                if !raw.value.contains_key(&c.value) {
                    self.report(
                        c,
                        &format!("{field}.consumes"),
                        format!("no agent named `{}`", c.value),
                    );
                } else if &c.value == name {
                    self.report(
                        c,
                        &format!("{field}.consumes"),
                        "an agent cannot consume itself",
                    );
                }
            }
        }
        // Pipeline order: producers before consumers. A cycle leaves agents unplaced.
        let mut ordered: Vec<Agent> = Vec::new();
        while ordered.len() < raw.value.len() {
            let before = ordered.len();
            for (name, agent) in &raw.value {
                let placed = |n: &str| ordered.iter().any(|a| a.name == n);
                if placed(name) {
                    continue;
                }
                let ready = agent.consumes.as_ref().is_none_or(|c| placed(&c.value));
                if ready {
                    ordered.push(Agent {
                        name: name.clone(),
                        persona: agent.persona.value.trim_end().to_owned(),
                        consumes: agent.consumes.as_ref().map(|c| c.value.clone()),
                    });
                }
            }
            if ordered.len() == before {
                if let Some((name, agent)) = raw
                    .value
                    .iter()
                    .find(|(n, _)| !ordered.iter().any(|a| &a.name == *n))
                {
                    if let Some(c) = &agent.consumes {
                        if raw.value.contains_key(&c.value) && &c.value != name {
                            self.report(
                                c,
                                &format!("agents.{name}.consumes"),
                                "agents consume each other in a cycle",
                            );
                        }
                    }
                }
                break;
            }
        }
        ordered
    }

    fn variants(
        &mut self,
        raw: &Spanned<BTreeMap<String, RawVariant>>,
        model: &str,
    ) -> BTreeMap<String, Variant> {
        if raw.value.is_empty() {
            self.report(raw, "variants", "at least one variant is needed");
        }
        let mut out = BTreeMap::new();
        for (name, v) in &raw.value {
            if !is_safe_name(name) {
                self.report(
                    raw,
                    &format!("variants.{name}"),
                    "variant name is not a safe file name",
                );
            }
            let options = v
                .options
                .as_ref()
                .map(|o| self.options(o, &format!("variants.{name}.options")))
                .unwrap_or_default();
            out.insert(
                name.clone(),
                Variant {
                    name: name.clone(),
                    description: v.description.clone(),
                    model: v.model.clone().unwrap_or_else(|| model.to_owned()),
                    options,
                    keep_alive: v.keep_alive.clone(),
                },
            );
        }
        out
    }

    fn options(&mut self, raw: &RawOptions, prefix: &str) -> ModelOptions {
        let f = |name: &str| format!("{prefix}.{name}");
        ModelOptions {
            num_gpu: raw
                .num_gpu
                .as_ref()
                .map(|v| self.range(v, &f("num_gpu"), 0, 100_000) as u32),
            num_ctx: raw
                .num_ctx
                .as_ref()
                .map(|v| self.range(v, &f("num_ctx"), 1, 10_000_000) as u32),
            temperature: raw
                .temperature
                .as_ref()
                .map(|v| self.range(v, &f("temperature"), 0.0, 100.0)),
            top_p: raw
                .top_p
                .as_ref()
                .map(|v| self.range(v, &f("top_p"), 0.0, 1.0)),
            top_k: raw
                .top_k
                .as_ref()
                .map(|v| self.range(v, &f("top_k"), 0, 1_000_000) as u32),
            repeat_penalty: raw
                .repeat_penalty
                .as_ref()
                .map(|v| self.range(v, &f("repeat_penalty"), 0.0, 100.0)),
            seed: raw.seed,
            num_predict: raw
                .num_predict
                .as_ref()
                .map(|v| self.range(v, &f("num_predict"), -2, 10_000_000)),
        }
    }

    /// Reports options an OpenAI-compatible API cannot carry per request.
    fn openai_options(&mut self, raw: &Spanned<BTreeMap<String, RawVariant>>, ignored: &[String]) {
        let ignored = |key: &str| ignored.iter().any(|i| i == key);
        for (name, v) in &raw.value {
            if v.keep_alive.is_some() && !ignored("keep_alive") {
                self.report(
                    raw,
                    &format!("variants.{name}.keep_alive"),
                    format!(
                        "`keep_alive` is Ollama's; the openai backend cannot send it: {IGNORE_HINT}"
                    ),
                );
            }
            let Some(o) = &v.options else { continue };
            for (key, value) in [("num_ctx", &o.num_ctx), ("num_gpu", &o.num_gpu)] {
                if let (Some(at), false) = (value, ignored(key)) {
                    let why = NOT_PER_REQUEST
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map_or("", |(_, w)| w);
                    self.report(
                        at,
                        &format!("variants.{name}.options.{key}"),
                        format!(
                            "the openai backend cannot send `{key}` per request: {why}; {IGNORE_HINT}"
                        ),
                    );
                }
            }
        }
    }

    fn baseline(
        &mut self,
        named: Option<&Spanned<String>>,
        raw_variants: &Spanned<BTreeMap<String, RawVariant>>,
        variants: &BTreeMap<String, Variant>,
    ) -> String {
        if let Some(b) = named {
            if !variants.contains_key(&b.value) {
                let known: Vec<&str> = variants.keys().map(String::as_str).collect();
                self.report(
                    b,
                    "baseline",
                    format!(
                        "unknown variant `{}` (variants: {})",
                        b.value,
                        known.join(", ")
                    ),
                );
            }
            return b.value.clone();
        }
        if variants.contains_key("baseline") {
            return "baseline".to_owned();
        }
        if variants.len() > 1 {
            self.report(
                raw_variants,
                "baseline",
                "no variant is called `baseline`: name the one the others are compared against with `baseline: <variant>`",
            );
        }
        variants.keys().next().cloned().unwrap_or_default()
    }

    fn gates(
        &mut self,
        raw: &Spanned<Vec<Spanned<RawGate>>>,
        variants: &BTreeMap<String, Variant>,
        arms: &[Arm],
        default_baseline: &str,
    ) -> Vec<Gate> {
        let mut gates = Vec::new();
        for (i, g) in raw.value.iter().enumerate() {
            let at = |f: &str| format!("gates[{i}].{f}");
            let g = &g.value;
            let problems = self.problems.len();
            let metric = match g.metric.value.parse::<Metric>() {
                Ok(m) => m,
                Err(e) => {
                    self.report(&g.metric, &at("metric"), e);
                    Metric::DecodeTps
                }
            };
            let known = |name: &str| variants.contains_key(name);
            let names = || variants.keys().cloned().collect::<Vec<_>>().join(", ");
            if !known(&g.variant.value) {
                self.report(
                    &g.variant,
                    &at("variant"),
                    format!(
                        "unknown variant `{}` (variants: {})",
                        g.variant.value,
                        names()
                    ),
                );
            }
            let baseline = match &g.baseline {
                Some(b) => {
                    if !known(&b.value) {
                        self.report(
                            b,
                            &at("baseline"),
                            format!("unknown variant `{}` (variants: {})", b.value, names()),
                        );
                    }
                    b.value.clone()
                }
                None => default_baseline.to_owned(),
            };
            let arm_name = g.arm.as_ref().map_or(&g.variant.value, |a| &a.value);
            let at_arm: &Spanned<String> = g.arm.as_ref().unwrap_or(&g.variant);
            match arms.iter().find(|a| &a.name == arm_name) {
                // An unknown variant is already reported; its arm would only repeat it.
                _ if !known(&g.variant.value) => {}
                None => self.report(
                    at_arm,
                    &at("arm"),
                    format!(
                        "no arm `{arm_name}` (a gate without `arm` uses the variant's solo arm)"
                    ),
                ),
                Some(arm) if !arm.variants.contains(&g.variant.value) => self.report(
                    at_arm,
                    &at("arm"),
                    format!("arm `{arm_name}` does not run `{}`", g.variant.value),
                ),
                Some(arm) => {
                    if crate::summary::counterpart(arm, &g.variant.value, &baseline, arms).is_none()
                    {
                        self.report(
                            at_arm,
                            &at("arm"),
                            format!(
                                "no arm runs `{baseline}` in place of `{}` in `{arm_name}`, so there is nothing to compare against",
                                g.variant.value
                            ),
                        );
                    }
                }
            }
            let tolerance = match &g.tolerance {
                None => 0.0,
                Some(t) => {
                    let parsed = match &t.value {
                        RawTolerance::Text(text) => crate::gate::expr::percent(text),
                        RawTolerance::Fraction(f) if f.abs() < 1.0 => Ok(*f),
                        RawTolerance::Fraction(f) => Err(format!(
                            "{f} is not a fraction below 1: write a percentage like `5%`, or `0.05`"
                        )),
                    };
                    parsed.unwrap_or_else(|e| {
                        self.report(t, &at("tolerance"), e);
                        0.0
                    })
                }
            };
            let bound = match g.direction {
                None => Bound::for_metric(metric),
                Some(GoodDirection::Higher) => Bound::AtLeast,
                Some(GoodDirection::Lower) => Bound::AtMost,
            };
            let alpha = g
                .alpha
                .as_ref()
                .map_or(DEFAULT_ALPHA, |a| self.range(a, &at("alpha"), 1e-6, 0.5));
            let min_trials = g.min_trials.as_ref().map_or(DEFAULT_MIN_TRIALS, |m| {
                self.range(m, &at("min_trials"), 2, 10_000) as usize
            });
            if self.problems.len() > problems {
                continue;
            }
            gates.push(Gate {
                metric,
                variant: g.variant.value.clone(),
                arm: g.arm.as_ref().map(|a| a.value.clone()),
                baseline,
                bound,
                // The tolerance is the change allowed in the bad direction.
                threshold: match bound {
                    Bound::AtLeast => 1.0 - tolerance,
                    Bound::AtMost => 1.0 + tolerance,
                },
                alpha,
                min_trials,
            });
        }
        gates
    }

    fn arms(
        &mut self,
        raw: &Spanned<Vec<Spanned<Vec<Spanned<String>>>>>,
        variants: &BTreeMap<String, Variant>,
    ) -> Vec<Arm> {
        if raw.value.is_empty() {
            self.report(raw, "arms", "at least one arm is needed");
        }
        let mut arms: Vec<Arm> = Vec::new();
        for (i, arm) in raw.value.iter().enumerate() {
            if arm.value.is_empty() {
                self.report(
                    arm,
                    &format!("arms[{i}]"),
                    "an arm needs at least one variant",
                );
                continue;
            }
            for (j, v) in arm.value.iter().enumerate() {
                if !variants.contains_key(&v.value) {
                    let known: Vec<&str> = variants.keys().map(String::as_str).collect();
                    self.report(
                        v,
                        &format!("arms[{i}][{j}]"),
                        format!(
                            "unknown variant `{}` (variants: {})",
                            v.value,
                            known.join(", ")
                        ),
                    );
                }
            }
            let names: Vec<String> = arm.value.iter().map(|v| v.value.clone()).collect();
            let name = names.join("+");
            if arms.iter().any(|a| a.name == name) {
                self.report(
                    arm,
                    &format!("arms[{i}]"),
                    format!("arm `{name}` is listed twice"),
                );
            }
            arms.push(Arm {
                name,
                variants: names,
            });
        }
        arms
    }
}

/// True for names that are safe as a single path component on every OS we run on.
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

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
    }

    const GOOD: &str = r#"
name: t
model: m:latest
workload: { kind: agent_report, data_dir: data }
agents:
  a: { persona: "You are A." }
  b: { persona: "You are B.", consumes: a }
variants:
  baseline: {}
  fast:
    options: { num_ctx: 512, temperature: 1.0 }
arms: [[baseline], [fast], [baseline, fast]]
trials: 3
"#;

    #[test]
    fn good_scenario_parses_with_defaults() {
        let s = Scenario::parse(GOOD, &data_dir(), None).expect("valid");
        assert_eq!(s.server.url, DEFAULT_OLLAMA_URL);
        assert_eq!(s.server.backend, BackendKind::Ollama);
        assert_eq!(s.order, Order::Interleaved);
        assert_eq!(s.warmup, 1);
        assert!(s.variant("baseline").options.is_empty());
        assert_eq!(s.variant("fast").options.num_ctx, Some(512));
        assert_eq!(s.arms[2].name, "baseline+fast");
        assert_eq!(
            s.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn baseline_is_named_or_found() {
        let s = Scenario::parse(GOOD, &data_dir(), None).expect("valid");
        assert_eq!(s.baseline, "baseline");
        let named = GOOD.replace("trials: 3", "trials: 3\nbaseline: fast");
        assert_eq!(
            Scenario::parse(&named, &data_dir(), None).unwrap().baseline,
            "fast"
        );
        let unknown = GOOD.replace("trials: 3", "trials: 3\nbaseline: fsat");
        let problems = Scenario::parse(&unknown, &data_dir(), None).unwrap_err();
        assert_eq!(problems[0].field, "baseline");
        assert!(problems[0].message.contains("unknown variant `fsat`"));
        let unnamed = GOOD
            .replace("  baseline: {}", "  slow: {}")
            .replace("[[baseline], [fast], [baseline, fast]]", "[[slow], [fast]]");
        let problems = Scenario::parse(&unnamed, &data_dir(), None).unwrap_err();
        assert_eq!(problems[0].field, "baseline");
        assert_eq!(problems[0].line, Some(9));
    }

    #[test]
    fn gates_parse_with_defaults_and_report_mistakes_where_they_are() {
        let with_gates = GOOD.replace(
            "trials: 3",
            "trials: 3
gates:
  - { metric: decode_tps, variant: fast, tolerance: 5% }
  - { metric: ttft_ms, variant: fast, tolerance: 0.1, alpha: 0.01, min_trials: 8 }
  - { metric: e2e_tps, variant: fast, direction: lower }",
        );
        let s = Scenario::parse(&with_gates, &data_dir(), None).expect("valid");
        let exprs: Vec<String> = s.gates.iter().map(|g| g.expression()).collect();
        assert_eq!(
            exprs,
            [
                "decode_tps:fast>=baseline-5%",
                "ttft_ms:fast<=baseline+10%",
                "e2e_tps:fast<=baseline"
            ]
        );
        assert_eq!((s.gates[1].alpha, s.gates[1].min_trials), (0.01, 8));
        assert_eq!(s.gates[0].min_trials, crate::gate::DEFAULT_MIN_TRIALS);

        let bad = GOOD.replace(
            "trials: 3",
            "trials: 3
gates:
  - { metric: decode, variant: fast }
  - { metric: decode_tps, variant: fsat }
  - { metric: decode_tps, variant: fast, tolerance: 5 }
  - { metric: decode_tps, variant: fast, alpha: 0.9 }
  - { metric: decode_tps, variant: fast, arm: nope }",
        );
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "gates[0].metric",
                "gates[1].variant",
                "gates[2].tolerance",
                "gates[3].alpha",
                "gates[4].arm"
            ],
            "{problems:?}"
        );
        assert!(problems[0].message.contains("unknown metric `decode`"));
        assert!(problems.iter().all(|p| p.line.is_some()));
        assert_eq!(problems[4].line, Some(problems[0].line.unwrap() + 4));
    }

    #[test]
    fn openai_rejects_options_it_cannot_send_unless_told_to_ignore_them() {
        let openai = GOOD.replace(
            "model: m:latest",
            "model: m:latest\nserver: { backend: openai, url: http://127.0.0.1:8088 }",
        );
        let problems = Scenario::parse(&openai, &data_dir(), None).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "variants.fast.options.num_ctx");
        assert!(
            problems[0]
                .message
                .contains("cannot send `num_ctx` per request")
        );
        assert!(problems[0].message.contains("ignore_options"));
        let ignored = openai.replace(
            "url: http://127.0.0.1:8088 }",
            "url: http://127.0.0.1:8088, ignore_options: [num_ctx] }",
        );
        let s = Scenario::parse(&ignored, &data_dir(), None).expect("valid when ignored");
        assert_eq!(s.server.backend, BackendKind::Openai);
        assert_eq!(s.server.ignore_options, ["num_ctx"]);
        assert_eq!(s.server.api_key_env, DEFAULT_API_KEY_ENV);
        // Chosen on the command line instead: the same check, without a line.
        let mut ollama = Scenario::parse(GOOD, &data_dir(), None).unwrap();
        assert!(ollama.check_backend().is_ok());
        ollama.server.backend = BackendKind::Openai;
        assert!(
            ollama
                .check_backend()
                .unwrap_err()
                .contains("variant `fast`")
        );
        let bad = openai.replace(
            "url: http://127.0.0.1:8088 }",
            "url: http://x, api_key_env: sk-123 }",
        );
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        assert!(problems.iter().any(|p| p.field == "server.api_key_env"));
    }

    #[test]
    fn ollama_host_is_the_default_url() {
        let s = Scenario::parse(GOOD, &data_dir(), Some("0.0.0.0:11500")).expect("valid");
        assert_eq!(s.server.url, "http://127.0.0.1:11500");
        assert_eq!(normalize_ollama_host("gpu-box"), "http://gpu-box:11434");
        assert_eq!(
            normalize_ollama_host("https://x.example/"),
            "https://x.example:443"
        );
    }

    #[test]
    fn typo_key_names_line_column_and_field() {
        let bad = GOOD.replace("trials: 3", "trails: 3\ntrials: 3");
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "trails");
        assert_eq!(problems[0].line, Some(13));
        assert_eq!(problems[0].column, Some(1));
    }

    #[test]
    fn typo_wrong_type_and_bad_range_are_reported_together() {
        let bad = format!(
            "{}warmup: lots\nordre: random\n",
            GOOD.replace("num_ctx: 512", "num_ctx: 0")
        );
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        let found: Vec<(&str, Option<u64>, Option<u64>)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.line, p.column))
            .collect();
        assert_eq!(
            found,
            [
                ("variants.fast.options.num_ctx", Some(11), Some(25)),
                ("warmup", Some(14), Some(9)),
                ("ordre", Some(15), Some(1)),
            ]
        );
        assert!(
            problems[1].message.contains("wrong type"),
            "{}",
            problems[1].message
        );
    }

    #[test]
    fn wrong_type_has_location() {
        let bad = GOOD.replace("trials: 3", "trials: many");
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        assert_eq!(problems[0].line, Some(13));
        assert!(problems[0].column.is_some());
    }

    #[test]
    fn range_and_reference_errors_are_all_reported_in_file_order() {
        let bad = GOOD
            .replace(
                "num_ctx: 512, temperature: 1.0",
                "num_ctx: 0, temperature: -0.5",
            )
            .replace("[baseline, fast]]", "[baseline, fsat]]");
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "variants.fast.options.num_ctx",
                "variants.fast.options.temperature",
                "arms[2][1]"
            ]
        );
        assert_eq!(problems[0].line, Some(11));
        assert_eq!(problems[0].column, Some(25));
        assert_eq!(problems[2].line, Some(12));
        assert!(problems[2].message.contains("unknown variant `fsat`"));
    }

    #[test]
    fn cycles_and_missing_data_dir_are_errors() {
        let bad = GOOD
            .replace("You are A.\" }", "You are A.\", consumes: b }")
            .replace("data_dir: data", "data_dir: nowhere");
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        assert!(problems.iter().any(|p| p.field == "workload.data_dir"));
        assert!(problems.iter().any(|p| p.message.contains("cycle")));
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
