//! The command line. clap stays here: arguments become plain config structs.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::gate::files::GateOptions;
use crate::run::RunConfig;
use crate::scenario::{BackendKind, SimConfig};
use crate::sim::SimApis;

/// Compare LLM agent configurations on inference servers, with statistics you can defend.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write a results folder.
    Run {
        /// Scenario YAML file.
        #[arg(required_unless_present = "resume")]
        scenario: Option<PathBuf>,
        /// Finish an interrupted run (Ctrl-C, SIGTERM, a crash, kill -9): runs only the
        /// trials its results folder lacks and rewrites its summaries.
        #[arg(long, value_name = "RESULTS_DIR", conflicts_with_all = ["scenario", "backend", "url", "trials", "warmup", "seed"])]
        resume: Option<PathBuf>,
        /// Where results folders go.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Server API; `sim` starts the built-in simulated Ollama server.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Server base URL (default: the scenario's, else OLLAMA_HOST, else 127.0.0.1:11434);
        /// one server, in place of the scenario's `server.urls`.
        #[arg(long)]
        url: Option<String>,
        /// Measured trials per arm (overrides the scenario).
        #[arg(long)]
        trials: Option<u32>,
        /// Warmup rounds (overrides the scenario).
        #[arg(long)]
        warmup: Option<u32>,
        /// Seed (overrides the scenario).
        #[arg(long)]
        seed: Option<u64>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Sample the GPUs (NVML; the simulator's synthetic GPU on `--backend sim`) into
        /// gpu.jsonl, for energy per token.
        #[arg(long, value_enum, default_value_t = Switch::On)]
        gpu_telemetry: Switch,
        /// Time between GPU samples, ms.
        #[arg(long, default_value_t = 100.0, value_name = "MS")]
        gpu_interval_ms: f64,
        /// Scrape the server's Prometheus metrics (`GET /metrics` of an OpenAI-compatible
        /// server: vLLM, SGLang, TGI, llama.cpp with --metrics) at each trial's start and
        /// end and every interval, into server-metrics.jsonl.
        #[arg(long, value_enum, default_value_t = Switch::On)]
        server_metrics: Switch,
        /// Time between scrapes of the server's metrics, ms.
        #[arg(long, default_value_t = 500.0, value_name = "MS")]
        server_metrics_interval_ms: f64,
        /// Run one shard of the plan, I of N (I from 0): the measured rounds r with r mod N =
        /// I, and every warm-up. Without it a Slurm array task (SLURM_ARRAY_TASK_ID of
        /// SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX of
        /// --shards) runs its shard.
        #[arg(long, value_name = "I/N", value_parser = crate::plan::Shard::parse)]
        shard: Option<crate::plan::Shard>,
        /// How many shards a Kubernetes Indexed Job's JOB_COMPLETION_INDEX counts.
        #[arg(long, value_name = "N")]
        shards: Option<u32>,
        #[command(flatten)]
        gates: GateArgs,
    },
    /// Judge a finished run by its gates: PASS (exit 0), FAIL (exit 1) or INCONCLUSIVE
    /// (exit 0, or 3 with --fail-on-inconclusive). Writes gate.md and gate.json there.
    Gate {
        /// A results folder written by `harness run`.
        results_dir: PathBuf,
        #[command(flatten)]
        gates: GateArgs,
    },
    /// How many trials? From a pilot run: per comparison, the trials a side to detect a
    /// change of --effect with --power, and the smallest change the pilot's own trials
    /// detect; per gate, the trials for PASS (nothing changed) and FAIL (the effect beyond
    /// its bound) to be likely.
    Power {
        /// A results folder written by `harness run` (the pilot).
        results_dir: PathBuf,
        /// The change to detect, e.g. 5%.
        #[arg(long, default_value = "5%", value_name = "PERCENT", value_parser = effect)]
        effect: f64,
        /// The probability of detecting it.
        #[arg(long, default_value_t = 0.8, value_name = "P")]
        power: f64,
        #[command(flatten)]
        gates: GateArgs,
    },
    /// Merge the shards of one run (`harness run --shard I/N` on several nodes) into one
    /// results folder, analysed as a single run: checks that they share the scenario and
    /// plan and are disjoint, and names missing shards (the merged run is then incomplete).
    Merge {
        /// The shards' results folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged results folder (new, or empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Judge a new run against a base run (e.g. a pull request against main), variant by
    /// variant; exit codes as `harness gate`. Writes gate.md and gate.json into NEW_DIR.
    Compare {
        /// The run to compare against.
        base_dir: PathBuf,
        /// The run judged.
        new_dir: PathBuf,
        /// Compare even when the runs' variants differ in model or options.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        gates: GateArgs,
    },
    /// Recompute the statistics of a results folder from its records and rewrite
    /// summary.json, report.md, table.tex and comparisons.csv.
    Report {
        /// A results folder written by `harness run`.
        results_dir: PathBuf,
    },
    /// Check a scenario file without running it.
    Validate {
        /// Scenario YAML file.
        scenario: PathBuf,
    },
    /// Print a synthetic agentic trace (JSON lines, the `conversations` format of a
    /// `trace` workload): seeded tool loops with fan-out, as in scenarios/traces/agentic.jsonl.
    SynthTrace {
        /// Conversations to write.
        #[arg(long, default_value_t = 12)]
        conversations: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print the JSON Schema of scenario files (for editors: point `# yaml-language-server:
    /// $schema=…` at it).
    Schema,
    /// Serve the simulated server (for trying harness, or testing CI pipelines, without a GPU).
    SimServer {
        /// Port to listen on (0: any free port).
        #[arg(long, default_value_t = 11435)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Seed of the simulator's randomness.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Requests served at once; more queue.
        #[arg(long, default_value_t = 1)]
        parallel: u32,
        /// Which API to serve: Ollama's (`/api/…`), the OpenAI-compatible one
        /// (`/v1/chat/completions`), or both on the same port.
        #[arg(long, value_enum, default_value_t = SimApis::Both)]
        api: SimApis,
        /// Any other parameter of the simulator's model, as in a scenario's `sim:` block,
        /// e.g. `--set decode_tps=300 --set ctx_cost_per_1k=0.2`; repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = sim_setting)]
        set: Vec<(String, serde_json::Value)>,
    },
}

/// One `--set KEY=VALUE` of `harness sim-server`, checked against the simulator's
/// parameters.
fn sim_setting(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    let value: serde_json::Value =
        serde_saphyr::from_str(value.trim()).map_err(|e| format!("{key}: {e}"))?;
    let mut config = serde_json::to_value(SimConfig::default()).map_err(|e| e.to_string())?;
    config[key.trim()] = value.clone();
    serde_json::from_value::<SimConfig>(config).map_err(|e| format!("{key}: {e}"))?;
    Ok((key.trim().to_owned(), value))
}

/// Gate options shared by `run`, `gate` and `compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// A gate, e.g. 'decode_tps:chimera>=baseline-5%' or 'ttft_ms:chimera<=baseline+10%'
    /// (METRIC:VARIANT[@ARM] then >= or <= then BASELINE[±N%]); repeatable. Added to the
    /// scenario's `gates:`.
    #[arg(long = "gate", value_name = "EXPR")]
    pub expressions: Vec<String>,
    /// Minimum trials per side for --gate gates (default 5).
    #[arg(long, value_name = "N")]
    pub min_trials: Option<usize>,
    /// Significance level for --gate gates (default 0.05).
    #[arg(long, value_name = "A")]
    pub alpha: Option<f64>,
    /// Judge every gate even when its two sides ran under different conditions (one
    /// reloading the model or opening connections more often); without it such a gate is
    /// INCONCLUSIVE.
    #[arg(long)]
    pub accept_confounded: bool,
    /// Exit 3 when no gate failed but some were inconclusive.
    #[arg(long)]
    pub fail_on_inconclusive: bool,
}

/// A change to detect: `5%` (the sign does not matter).
fn effect(text: &str) -> Result<f64, String> {
    let e = crate::scenario::percent(text)?.abs();
    if e == 0.0 {
        return Err("the change to detect must not be 0%".to_owned());
    }
    Ok(e)
}

impl GateArgs {
    fn split(self) -> (GateOptions, bool) {
        (
            GateOptions {
                expressions: self.expressions,
                min_trials: self.min_trials,
                alpha: self.alpha,
                accept_confounded: self.accept_confounded,
            },
            self.fail_on_inconclusive,
        )
    }
}

/// A parsed command in plain terms.
pub enum Action {
    /// `harness run`.
    Run(RunConfig),
    /// `harness report`.
    Report {
        /// The results folder.
        dir: PathBuf,
    },
    /// `harness gate`.
    Gate {
        /// The results folder.
        dir: PathBuf,
        /// Command-line gates.
        options: GateOptions,
        /// Exit 3 on INCONCLUSIVE.
        fail_on_inconclusive: bool,
    },
    /// `harness power`.
    Power {
        /// The pilot's results folder.
        dir: PathBuf,
        /// What to plan for.
        options: crate::gate::power::PowerOptions,
    },
    /// `harness merge`.
    Merge {
        /// The shards' folders.
        dirs: Vec<PathBuf>,
        /// The merged folder.
        out: PathBuf,
    },
    /// `harness compare`.
    Compare {
        /// The base run.
        base: PathBuf,
        /// The new run.
        new: PathBuf,
        /// Compare despite differences.
        force: bool,
        /// Command-line gates.
        options: GateOptions,
        /// Exit 3 on INCONCLUSIVE.
        fail_on_inconclusive: bool,
    },
    /// `harness validate`.
    Validate {
        /// File to check.
        scenario: PathBuf,
        /// OLLAMA_HOST.
        ollama_host: Option<String>,
    },
    /// `harness synth-trace`.
    SynthTrace {
        /// Conversations.
        conversations: usize,
        /// Seed.
        seed: u64,
    },
    /// `harness schema`.
    Schema,
    /// `harness sim-server`.
    SimServer {
        /// Which APIs it serves.
        apis: SimApis,
        /// Address.
        addr: SocketAddr,
        /// Model parameters.
        config: SimConfig,
    },
}

impl Cli {
    /// Converts arguments into an action. `stderr_is_terminal` decides the progress bar.
    pub fn into_action(self, stderr_is_terminal: bool) -> Action {
        let ollama_host = std::env::var("OLLAMA_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty());
        match self.command {
            Command::Run {
                scenario,
                resume,
                out,
                backend,
                url,
                trials,
                warmup,
                seed,
                quiet,
                gpu_telemetry,
                gpu_interval_ms,
                server_metrics,
                server_metrics_interval_ms,
                shard,
                shards,
                gates,
            } => {
                let (gates, fail_on_inconclusive) = gates.split();
                Action::Run(RunConfig {
                    scenario: scenario.unwrap_or_default(),
                    resume,
                    out,
                    backend,
                    url,
                    trials,
                    warmup,
                    seed,
                    progress: !quiet && stderr_is_terminal,
                    ollama_host,
                    gates,
                    fail_on_inconclusive,
                    gpu_telemetry: gpu_telemetry == Switch::On,
                    gpu_interval: std::time::Duration::from_secs_f64(
                        gpu_interval_ms.max(1.0) / 1e3,
                    ),
                    server_metrics: server_metrics == Switch::On,
                    server_metrics_interval: std::time::Duration::from_secs_f64(
                        server_metrics_interval_ms.max(10.0) / 1e3,
                    ),
                    shard,
                    shards,
                })
            }
            Command::Gate { results_dir, gates } => {
                let (options, fail_on_inconclusive) = gates.split();
                Action::Gate {
                    dir: results_dir,
                    options,
                    fail_on_inconclusive,
                }
            }
            Command::Power {
                results_dir,
                effect,
                power,
                gates,
            } => {
                let (options, _) = gates.split();
                Action::Power {
                    dir: results_dir,
                    options: crate::gate::power::PowerOptions {
                        effect,
                        power,
                        gates: options,
                    },
                }
            }
            Command::Merge { dirs, out } => Action::Merge { dirs, out },
            Command::Compare {
                base_dir,
                new_dir,
                force,
                gates,
            } => {
                let (options, fail_on_inconclusive) = gates.split();
                Action::Compare {
                    base: base_dir,
                    new: new_dir,
                    force,
                    options,
                    fail_on_inconclusive,
                }
            }
            Command::Report { results_dir } => Action::Report { dir: results_dir },
            Command::Validate { scenario } => Action::Validate {
                scenario,
                ollama_host,
            },
            Command::SynthTrace {
                conversations,
                seed,
            } => Action::SynthTrace {
                conversations,
                seed,
            },
            Command::Schema => Action::Schema,
            Command::SimServer {
                port,
                host,
                seed,
                parallel,
                api,
                set,
            } => {
                let mut config = SimConfig {
                    seed,
                    parallel,
                    ..SimConfig::default()
                };
                // Each setting was checked on its own; together they stay valid.
                if let Ok(mut value) = serde_json::to_value(&config) {
                    for (key, v) in set {
                        value[key] = v;
                    }
                    if let Ok(c) = serde_json::from_value(value) {
                        config = c;
                    }
                }
                Action::SimServer {
                    apis: api,
                    addr: SocketAddr::new(host, port),
                    config,
                }
            }
        }
    }
}
