//! Parameters of the built-in simulator's model of a GPU server, and the faults it can
//! inject, so tests and CI pipelines can script what a real GPU server does on a bad night.
//!
//! A fault applies to chosen generation requests, counted from 0 in arrival order: the
//! scenario's `sim.faults` lists them (`requests: [3, 8]` or `every: 5`), or a request
//! carries the header `x-harness-fault: KIND[;after_chunks=N][;down_ms=N]`. The simulator
//! (the `sim` module) carries them out.

use serde::{Deserialize, Serialize};

/// Parameters of the built-in simulator's model of a GPU server. Every field has a
/// default that resembles one data-centre GPU serving a 4B model with Ollama.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
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
    /// The model's own context length: a larger `num_ctx` is capped to it, as Ollama caps
    /// a request at what the model was trained for (`/api/ps` shows the capped length).
    pub context_length: u32,
    /// Memory of the model's weights, MB.
    pub weights_mb: f64,
    /// Memory of the KV cache per 1024 tokens of context and parallel slot, MB.
    pub kv_mb_per_1k: f64,
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
    /// Keep the prompts it computed and reuse their longest cached prefix, as llama.cpp's
    /// and vLLM's prefix caches do: cached prompt tokens cost no prefill and are reported
    /// as `cached_prompt_count`. The cache holds `parallel × num_ctx` tokens of the loaded
    /// configuration (least recently used evicted first) and is emptied by a reload.
    pub prefix_cache: bool,
    /// Seed of the simulator's own randomness.
    pub seed: u64,
    /// Faults to inject (see [`Fault`]); none by default.
    pub faults: Vec<Fault>,
}

impl SimConfig {
    /// The context a request gets: its `num_ctx` (or the default), capped at the model's
    /// context length.
    pub fn effective_num_ctx(&self, requested: Option<u32>) -> u32 {
        requested
            .unwrap_or(self.default_num_ctx)
            .min(self.context_length)
    }

    /// Layers on the GPU for a request's `num_gpu` (all of them when it sets none).
    pub fn gpu_layers(&self, requested: Option<u32>) -> u32 {
        requested.unwrap_or(self.layers).min(self.layers)
    }

    /// Memory the loaded model takes, MB: weights plus a KV cache of `num_ctx` for each
    /// slot; and the part of it on the GPU, in proportion to the layers offloaded.
    pub fn loaded_mb(&self, num_ctx: u32, gpu_layers: u32) -> (f64, f64) {
        let size = self.weights_mb
            + self.kv_mb_per_1k * f64::from(num_ctx) / 1024.0 * f64::from(self.parallel.max(1));
        (
            size,
            size * f64::from(gpu_layers) / f64::from(self.layers.max(1)),
        )
    }
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
            context_length: 8192,
            weights_mb: 3300.0,
            kv_mb_per_1k: 136.0,
            load_ms: 200.0,
            ctx_cost_per_1k: 0.05,
            batch_penalty: 0.35,
            median_output_tokens: 48,
            jitter_sigma: 0.15,
            call_sigma: 0.04,
            prefix_cache: true,
            seed: 7,
            faults: Vec::new(),
        }
    }
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 500 with a JSON error.
    #[serde(rename = "http_500")]
    Http500,
    /// HTTP 503 (overloaded) with a JSON error.
    #[serde(rename = "http_503")]
    Http503,
    /// HTTP 404 "model not found".
    ModelNotFound,
    /// The stream ends after `after_chunks` content chunks, without its final chunk.
    Cut,
    /// After `after_chunks` chunks no byte arrives any more; the connection stays open.
    Stall,
    /// After `after_chunks` chunks, a line that is not JSON.
    Malformed,
    /// After `after_chunks` chunks, a line with bytes that are not UTF-8.
    BadUtf8,
    /// The whole response arrives one byte at a time (it completes, slowly).
    Drip,
    /// Content chunks never stop: only the client's response cap ends the call.
    Endless,
    /// The stream is cut after `after_chunks` chunks and the server stops listening for
    /// `down_ms` (connections are refused), then comes back on the same port.
    Restart,
}

impl FaultKind {
    fn parse(name: &str) -> Option<FaultKind> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

fn default_after_chunks() -> u32 {
    2
}

fn default_down_ms() -> u64 {
    500
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Generation requests (0-based, arrival order) that get it.
    #[serde(default)]
    pub requests: Vec<u64>,
    /// Every n-th request gets it (requests n−1, 2n−1, …).
    #[serde(default)]
    pub every: Option<u64>,
    /// Content chunks sent before the fault strikes.
    #[serde(default = "default_after_chunks")]
    pub after_chunks: u32,
    /// How long `restart` keeps the port closed, ms.
    #[serde(default = "default_down_ms")]
    pub down_ms: u64,
}

impl Fault {
    /// Whether request number `sequence` gets this fault.
    pub fn applies_to(&self, sequence: u64) -> bool {
        self.requests.contains(&sequence)
            || self.every.is_some_and(|n| n > 0 && (sequence + 1) % n == 0)
    }

    /// Parses the `x-harness-fault` header: `KIND[;after_chunks=N][;down_ms=N]`.
    pub fn from_header(value: &str) -> Result<Fault, String> {
        let mut parts = value.split(';').map(str::trim);
        let kind_name = parts.next().unwrap_or_default();
        let kind =
            FaultKind::parse(kind_name).ok_or_else(|| format!("unknown fault `{kind_name}`"))?;
        let mut fault = Fault {
            kind,
            requests: Vec::new(),
            every: None,
            after_chunks: default_after_chunks(),
            down_ms: default_down_ms(),
        };
        for part in parts.filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got `{part}`"))?;
            let bad = |_| format!("`{part}`: not a number");
            match key.trim() {
                "after_chunks" => fault.after_chunks = value.trim().parse().map_err(bad)?,
                "down_ms" => fault.down_ms = value.trim().parse().map_err(bad)?,
                other => return Err(format!("unknown fault parameter `{other}`")),
            }
        }
        Ok(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_select_requests() {
        let f = Fault::from_header("cut;after_chunks=3").unwrap();
        assert_eq!((f.kind, f.after_chunks), (FaultKind::Cut, 3));
        assert!(
            !f.applies_to(0),
            "a header fault applies only to its own request"
        );
        let every = Fault {
            every: Some(3),
            ..f.clone()
        };
        let hit: Vec<u64> = (0..9).filter(|&s| every.applies_to(s)).collect();
        assert_eq!(hit, [2, 5, 8]);
        let listed = Fault {
            requests: vec![0, 4],
            ..f
        };
        assert!(listed.applies_to(0) && listed.applies_to(4) && !listed.applies_to(1));
        assert_eq!(
            Fault::from_header("http_503").unwrap().kind,
            FaultKind::Http503
        );
        assert!(
            Fault::from_header("explode")
                .unwrap_err()
                .contains("unknown fault")
        );
        assert!(
            Fault::from_header("cut;after=2")
                .unwrap_err()
                .contains("after")
        );
    }
}
