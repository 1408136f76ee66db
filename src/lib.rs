//! `harness` compares LLM agent configurations on inference servers with statistical
//! rigor.
//!
//! Data flows one way:
//!
//! ```text
//! scenario (YAML) ─► plan ─► scheduler ─► backend ─► metrics ─► results on disk
//!                                                                  │
//!                              summary / report / gate ◄── stats ◄┘
//! ```
//!
//! and the modules stand in layers, each importing only layers below its own (never a
//! peer, never above), so no type has to reach upward and no import cycle can form. The
//! layers, top first (the test `tests/it/architecture.rs` holds this order and checks both
//! the code and this picture against it; `ARCHITECTURE.md` says what each module owns):
//!
//! ```text
//! 10  cli                       arguments → plain configuration
//!  9  run, merge                `harness run` end to end; shards merged
//!  8  report                    every output format
//!  7  scheduler, gate           running a plan; gate verdicts
//!  6  workflow, summary         the jobs workloads run; records → statistics
//!  5  results                   the results folder, written and read
//!  4  backend, sim, ingest      server APIs; the simulated server; the data scan
//!  3  metrics, telemetry        one streamed call → one record; GPU and server samples
//!  2  plan                      the seeded order of trials
//!  1  stats, scenario           pure statistics; the configuration and its vocabulary
//!  0  rng                       seeded randomness
//! ```
//!
//! - [`scenario`]: typed, validated experiment definitions (errors carry line and column),
//!   and the vocabulary every layer shares: metrics and their direction, gate
//!   declarations, the simulator's parameters;
//! - [`plan`]: the pure, seeded order of trials;
//! - [`metrics`]: one streamed call → one [`metrics::CallRecord`];
//! - [`backend`]: server APIs behind one trait (Ollama NDJSON, OpenAI-compatible SSE);
//! - [`sim`]: the built-in simulated Ollama server;
//! - [`ingest`]: the data scan the agent workflow starts with;
//! - [`results`]: the results folder (append-and-flush records, atomic documents, reading
//!   a finished folder back);
//! - [`workflow`]: the job each variant instance runs (seed workflow, agent graph, trace);
//! - [`scheduler`]: runs the plan on tokio, one collector owning the files;
//! - [`stats`]: pure statistics (descriptive, comparisons, Holm, bootstrap);
//! - [`summary`]: records → per-group statistics and comparisons against the baseline;
//! - [`gate`]: regression gates (PASS / FAIL / INCONCLUSIVE) within a run or across two;
//! - [`report`]: one exporter per format (JSON, Markdown, LaTeX, CSV, terminal);
//! - [`run`]: `harness run` from scenario to summary; [`merge`]: shards into one run;
//!   [`cli`]: the command line.

pub mod backend;
pub mod cli;
pub mod gate;
pub mod ingest;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod results;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod scheduler;
pub mod sim;
pub mod stats;
pub mod summary;
pub mod telemetry;
pub mod workflow;
