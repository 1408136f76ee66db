//! The command line. clap stays here: arguments become plain config structs.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::run::RunConfig;
use crate::scenario::{BackendKind, SimConfig};

/// Compare LLM agent configurations on inference servers, with statistics you can defend.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write a results folder.
    Run {
        /// Scenario YAML file.
        scenario: PathBuf,
        /// Where results folders go.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Server API; `sim` starts the built-in simulated Ollama server.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Server base URL (default: the scenario's, else OLLAMA_HOST, else 127.0.0.1:11434).
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
    /// Serve the simulated Ollama API (for trying harness, or testing CI pipelines, without a GPU).
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
    },
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
    /// `harness validate`.
    Validate {
        /// File to check.
        scenario: PathBuf,
        /// OLLAMA_HOST.
        ollama_host: Option<String>,
    },
    /// `harness sim-server`.
    SimServer {
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
                out,
                backend,
                url,
                trials,
                warmup,
                seed,
                quiet,
            } => Action::Run(RunConfig {
                scenario,
                out,
                backend,
                url,
                trials,
                warmup,
                seed,
                progress: !quiet && stderr_is_terminal,
                ollama_host,
            }),
            Command::Report { results_dir } => Action::Report { dir: results_dir },
            Command::Validate { scenario } => Action::Validate {
                scenario,
                ollama_host,
            },
            Command::SimServer {
                port,
                host,
                seed,
                parallel,
            } => Action::SimServer {
                addr: SocketAddr::new(host, port),
                config: SimConfig {
                    seed,
                    parallel,
                    ..SimConfig::default()
                },
            },
        }
    }
}
