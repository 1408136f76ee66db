//! The raw layer: exactly what the YAML says. Unknown keys are rejected, and every value
//! that needs a semantic check is wrapped in [`Spanned`] so the checker can point at its
//! line and column.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::prompts::Length;
use super::{BackendKind, OllamaApi, Order, Retries, SimConfig, Split, TraceFormat, WorkloadKind};

/// `arms:`: lists of variant names.
pub(super) type RawArms = Spanned<Vec<Spanned<Vec<Spanned<String>>>>>;

/// A whole scenario file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    /// The run's name: letters, digits, '-', '_', '.'; the results folder's prefix.
    #[schemars(with = "String")]
    pub(super) name: Spanned<String>,
    /// Free text.
    #[serde(default)]
    pub(super) description: Option<String>,
    /// Seed of the plan's order, the prompts drawn and the simulator (default 0).
    #[serde(default)]
    pub(super) seed: Option<u64>,
    /// Where the server is and how to talk to it.
    #[serde(default)]
    pub(super) server: Option<RawServer>,
    /// Parameters of the built-in simulator's model of a GPU server (backend `sim` or `sim-
    /// openai`).
    #[serde(default)]
    pub(super) sim: Option<SimConfig>,
    /// Default model tag; a variant may set its own `model`.
    #[schemars(with = "String")]
    pub(super) model: Spanned<String>,
    /// What each variant instance runs in a trial (a job).
    pub(super) workload: RawWorkload,
    /// Agents by name: a `persona` (system prompt), and for graphs `after`, `fan_out`, `turns`,
    /// `tool`, …
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, RawAgent>>")]
    pub(super) agents: Option<Spanned<BTreeMap<String, RawAgent>>>,
    /// The configurations under test, by name: Ollama `options`, `keep_alive`, `model`.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, RawVariant>>")]
    pub(super) variants: Option<Spanned<BTreeMap<String, RawVariant>>>,
    /// Variants generated from option lists (every combination but the `exclude`d ones).
    #[serde(default)]
    #[schemars(with = "Option<RawMatrix>")]
    pub(super) matrix: Option<Spanned<RawMatrix>>,
    /// The variant every other is compared against (default: the one named `baseline`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) baseline: Option<Spanned<String>>,
    /// Lists of variants launched together, e.g. `[[baseline], [chimera], [baseline, chimera]]`;
    /// optional with `load:`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<Vec<String>>>")]
    pub(super) arms: Option<RawArms>,
    /// Load levels: closed-loop `concurrency` or open-loop `rate`; every arm runs at every level
    /// (`arm@c16`).
    #[serde(default)]
    #[schemars(with = "Option<RawLoad>")]
    pub(super) load: Option<Spanned<RawLoad>>,
    /// Service objectives goodput counts at each load level.
    #[serde(default)]
    #[schemars(with = "Option<RawSlo>")]
    pub(super) slo: Option<Spanned<RawSlo>>,
    /// Measured trials per arm.
    #[schemars(with = "u32")]
    pub(super) trials: Spanned<u32>,
    /// Warm-up rounds before the measured ones, excluded from statistics (default 1).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) warmup: Option<Spanned<u32>>,
    /// `interleaved` (default), `sequential` or `random`.
    #[serde(default)]
    pub(super) order: Option<Order>,
    /// Send one tiny request before a trial whose model configuration may not be loaded (default
    /// true).
    #[serde(default)]
    pub(super) prime_on_switch: Option<bool>,
    /// Regression gates judged after the run.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawGate>>")]
    pub(super) gates: Option<Spanned<Vec<Spanned<RawGate>>>>,
    /// Stop early when one comparison is decided (anytime-valid confidence sequence).
    #[serde(default)]
    #[schemars(with = "Option<RawStopping>")]
    pub(super) stopping: Option<Spanned<RawStopping>>,
    /// Retries of calls whose connection failed before any byte arrived (default none).
    #[serde(default)]
    pub(super) retries: Option<Retries>,
    /// After Ctrl-C or SIGTERM, how long calls in flight may finish, s (default 30).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) stop_grace_s: Option<Spanned<f64>>,
}

/// `load:`: the load levels and how each level runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoad {
    /// Closed loop: the levels, in workers, each sending its next request when its last ended.
    #[serde(default)]
    #[schemars(with = "Option<Vec<u32>>")]
    pub(super) concurrency: Option<Spanned<Vec<Spanned<u32>>>>,
    /// Open loop: the levels, in requests per second, each request sent at a time fixed before the
    /// run.
    #[serde(default)]
    #[schemars(with = "Option<Vec<f64>>")]
    pub(super) rate: Option<Spanned<Vec<Spanned<f64>>>>,
    /// Open loop: how requests arrive (default `poisson`).
    #[serde(default)]
    #[schemars(with = "Option<ArrivalKind>")]
    pub(super) arrival: Option<Spanned<ArrivalKind>>,
    /// `arrival: gamma`: the shape of the gaps (1 is Poisson, below 1 burstier).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) burstiness: Option<Spanned<f64>>,
    /// Requests each job sends per trial (or give `duration_s`).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) requests: Option<Spanned<u32>>,
    /// How long each job sends per trial, s (or give `requests`).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) duration_s: Option<Spanned<f64>>,
    /// The first requests of each job, recorded as warm-up and left out.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) warmup_requests: Option<Spanned<u32>>,
    /// Open loop: at most this many requests in flight (default 1024); a request due past the cap
    /// waits.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) max_inflight: Option<Spanned<u32>>,
    /// Closed loop: start the workers evenly over this many seconds rather than all at once.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) ramp_up_s: Option<Spanned<f64>>,
}

/// `load.arrival:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ArrivalKind {
    Constant,
    Poisson,
    Gamma,
}

/// `slo:`: bounds a good request meets, ms.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlo {
    /// Bound on time to first token, ms (from the due time in an open loop).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) ttft_ms: Option<Spanned<f64>>,
    /// Bound on time per output token, ms.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) tpot_ms: Option<Spanned<f64>>,
    /// Bound on end-to-end time, ms (from the due time in an open loop).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) e2e_ms: Option<Spanned<f64>>,
}

/// `server:`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    #[serde(default)]
    pub(super) backend: Option<BackendKind>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) url: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub(super) urls: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) api: Option<OllamaApi>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) api_key_env: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub(super) ignore_options: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub(super) max_response_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub(super) max_response_tokens: Option<Spanned<u64>>,
}

/// `workload:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    #[schemars(with = "WorkloadKind")]
    pub(super) kind: Spanned<WorkloadKind>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) data_dir: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) task: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) trace: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) format: Option<TraceFormat>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) time_scale: Option<Spanned<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) block_tokens: Option<Spanned<u32>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) prompts: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) column: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<RawSynthetic>")]
    pub(super) synthetic: Option<Spanned<RawSynthetic>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) requests: Option<Spanned<u32>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) max_tokens: Option<Spanned<u32>>,
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub(super) ignore_eos: Option<Spanned<bool>>,
}

/// `workload.synthetic:`: prompt and reply lengths.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSynthetic {
    #[schemars(with = "Length")]
    pub(super) input_tokens: Spanned<Length>,
    #[schemars(with = "Length")]
    pub(super) output_tokens: Spanned<Length>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) shared_prefix_tokens: Option<Spanned<u32>>,
}

/// One entry of `agents:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    #[schemars(with = "String")]
    pub(super) persona: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) consumes: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub(super) after: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) fan_out: Option<Spanned<u32>>,
    #[serde(default)]
    #[schemars(with = "Option<Split>")]
    pub(super) split: Option<Spanned<Split>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) turns: Option<Spanned<u32>>,
    #[serde(default)]
    #[schemars(with = "Option<RawTool>")]
    pub(super) tool: Option<Spanned<RawTool>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) max_tokens: Option<Spanned<u32>>,
}

/// An agent's `tool:` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTool {
    #[schemars(with = "RawWait")]
    pub(super) wait_ms: Spanned<RawWait>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) result_tokens: Option<Spanned<u32>>,
}

/// A wait: `250`, `{fixed: 250}`, `{uniform: [100, 400]}` or
/// `{lognormal: {median: 300, sigma: 0.5}}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum RawWait {
    Fixed(f64),
    Named(RawNamedWait),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawNamedWait {
    Fixed(f64),
    Uniform([f64; 2]),
    Lognormal { median: f64, sigma: f64 },
}

/// One entry of `variants:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariant {
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) model: Option<String>,
    #[serde(default)]
    pub(super) options: Option<RawOptions>,
    #[serde(default)]
    pub(super) keep_alive: Option<String>,
}

/// A variant's `options:` (Ollama's names).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOptions {
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub(super) num_gpu: Option<Spanned<i64>>,
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub(super) num_ctx: Option<Spanned<i64>>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) temperature: Option<Spanned<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) top_p: Option<Spanned<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub(super) top_k: Option<Spanned<i64>>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) repeat_penalty: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) seed: Option<i64>,
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub(super) num_predict: Option<Spanned<i64>>,
}

/// One entry of `gates:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    #[schemars(with = "String")]
    pub(super) metric: Spanned<String>,
    #[schemars(with = "String")]
    pub(super) variant: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) arm: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) baseline: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<GoodDirection>")]
    pub(super) direction: Option<Spanned<GoodDirection>>,
    #[serde(default)]
    #[schemars(with = "Option<RawTolerance>")]
    pub(super) tolerance: Option<Spanned<RawTolerance>>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub(super) alpha: Option<Spanned<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) min_trials: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) accept_confounded: Option<bool>,
}

/// `stopping:`: the comparison that decides when the run may stop, and how often to look.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStopping {
    /// The metric of the comparison.
    #[schemars(with = "String")]
    pub(super) metric: Spanned<String>,
    /// The variant compared with the baseline.
    #[schemars(with = "String")]
    pub(super) variant: Spanned<String>,
    /// Its arm (default: the variant's solo arm).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) arm: Option<Spanned<String>>,
    /// τ: within ±τ is equivalent, slower beyond τ fails, e.g. `5%`.
    #[schemars(with = "RawTolerance")]
    pub(super) tolerance: Spanned<RawTolerance>,
    /// Rounds at most (default `trials`).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) max_trials: Option<Spanned<u32>>,
    /// Look every this many rounds (default 1).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub(super) every: Option<Spanned<u32>>,
}

/// `5%` or `0.05`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum RawTolerance {
    Fraction(f64),
    Text(String),
}

/// Which way is good for a gate; it must agree with the metric's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum GoodDirection {
    Higher,
    Lower,
}

/// `matrix:`: variants generated from lists of option values, every combination but the
/// excluded ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatrix {
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) model: Option<String>,
    #[serde(default)]
    pub(super) keep_alive: Option<String>,
    #[schemars(with = "RawAxes")]
    pub(super) options: Spanned<RawAxes>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<BTreeMap<String, f64>>>")]
    pub(super) exclude: Option<Spanned<Vec<Spanned<RawPoint>>>>,
}

/// One combination of option values (`{ num_ctx: 8192, num_gpu: 40 }`).
pub(super) type RawPoint = BTreeMap<String, Spanned<f64>>;

/// The option lists of a `matrix:` (Ollama's names, as in a variant's `options:`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAxes {
    #[serde(default)]
    #[schemars(with = "Option<Vec<i64>>")]
    pub(super) num_gpu: Option<Spanned<Vec<Spanned<i64>>>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<i64>>")]
    pub(super) num_ctx: Option<Spanned<Vec<Spanned<i64>>>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<f64>>")]
    pub(super) temperature: Option<Spanned<Vec<Spanned<f64>>>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<f64>>")]
    pub(super) top_p: Option<Spanned<Vec<Spanned<f64>>>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<i64>>")]
    pub(super) top_k: Option<Spanned<Vec<Spanned<i64>>>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<f64>>")]
    pub(super) repeat_penalty: Option<Spanned<Vec<Spanned<f64>>>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<i64>>")]
    pub(super) seed: Option<Spanned<Vec<Spanned<i64>>>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<i64>>")]
    pub(super) num_predict: Option<Spanned<Vec<Spanned<i64>>>>,
}
