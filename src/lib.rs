//! `harness` compares LLM agent configurations on inference servers with statistical
//! rigor.
//!
//! Data flows one way, and the modules follow it:
//!
//! ```text
//! scenario (YAML) ─► plan ─► scheduler ─► backend ─► metrics ─► results on disk
//!                                                                  │
//!                              summary / report / gate ◄── stats ◄┘
//! ```
//!
//! - [`scenario`]: typed, validated experiment definitions (errors carry line and column);
//! - [`plan`]: the pure, seeded order of trials;
//! - [`scheduler`]: runs the plan on tokio, one collector owning the files;
//! - [`workflow`] and [`ingest`]: the agent workflow each variant instance runs;
//! - [`backend`]: server APIs behind one trait (Ollama NDJSON, OpenAI-compatible SSE);
//! - [`sim`]: the built-in simulated Ollama server;
//! - [`metrics`]: one streamed call → one [`metrics::CallRecord`];
//! - [`results`]: the results folder (append-and-flush records, atomic documents);
//! - [`stats`]: pure statistics (descriptive, comparisons, Holm, bootstrap);
//! - [`summary`]: records → per-group statistics and comparisons against the baseline;
//! - [`report`]: one exporter per format (JSON, Markdown, LaTeX, CSV, terminal);
//! - [`gate`]: regression gates (PASS / FAIL / INCONCLUSIVE) within a run or across two.

pub mod backend;
pub mod cli;
pub mod gate;
pub mod ingest;
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
pub mod workflow;
