//! Integration tests: one binary, shared helpers in `common`.

mod architecture;
mod calibration;
mod cli;
mod cluster;
mod common;
mod connections;
mod estimator;
mod faults;
mod figures;
mod gate;
mod graph;
mod load;
mod ollama_client;
mod openai_client;
mod power;
mod prompts;
mod real_llm;
mod report;
mod schema;
mod sequential;
mod server_metrics;
mod server_truth;
mod shard;
mod sim;
mod stats_properties;
mod stats_reference;
