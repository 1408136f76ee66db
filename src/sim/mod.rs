//! The built-in simulated Ollama server.
//!
//! Speaks Ollama's HTTP API (`/api/version`, `/api/tags`, `/api/show`, `/api/chat`,
//! `/api/generate`) and, on the same port, the OpenAI-compatible one (`/v1/models`,
//! `/v1/chat/completions` as server-sent events with `usage` and llama.cpp-style `timings`,
//! `/version`, `/health`), and streams real NDJSON with real timing from a seeded model of one
//! GPU server:
//!
//! - **slots**: `parallel` requests are served at once; the rest queue, first come first
//!   served;
//! - **loading**: one configuration (model, `num_ctx`, `num_gpu`) is loaded at a time;
//!   a request for another waits until the loaded one is idle, then pays `load_ms`;
//! - **prefill** at `prefill_tps`, slower by the fraction of layers left on the CPU;
//! - **decode**: each token takes `1 / rate` where
//!   `rate = 1 / (f / decode_tps + (1 − f) / cpu_decode_tps) / (1 + ctx_cost_per_1k · num_ctx / 1024)
//!   / (1 + batch_penalty · (streams − 1))`, `f` the offloaded fraction of layers and
//!   `streams` the number of responses decoding at that moment; times carry lognormal jitter
//!   per token and per call.
//!
//! - **prefix cache** (`prefix_cache`, on by default): the longest prefix of a prompt
//!   that an earlier prompt of the loaded configuration shared, in blocks of
//!   [`PREFIX_BLOCK_CHARS`], costs no prefill; it holds `parallel × num_ctx` tokens,
//!   least recently used out first, and a reload empties it;
//! - **`ignore_eos`** with `num_predict`: exactly that many tokens (trace replay).
//!
//! - **what is loaded**: `/api/ps` reports the loaded configuration as Ollama does (memory =
//!   weights + KV cache of the context for each slot, `size_vram` the share of layers on the
//!   GPU, `num_ctx` capped at the model's `context_length`), `/api/show` the layers; the
//!   OpenAI side answers llama.cpp's `/props` and `/slots`;
//! - **a GPU** for telemetry ([`SimServer::gpu`]): power that follows the streams decoding
//!   and the share of layers on the GPU, and an energy counter integrating it.
//!
//! The final chunk reports the whole prompt in `prompt_eval_count` and the part taken
//! from the cache in `cached_prompt_count`, a field of the simulator's own (Ollama has
//! none). It also carries `sim_timing`: the simulator's own clock for the request
//! (arrival, slot, decode start and end) and the decode time its model intended.
//!
//! Generated text depends only on the seed, the model and the prompt ([`text`]). Nothing
//! here pretends to be a real GPU: every output of a simulated run says so.

pub mod text;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::rng::{Rng, hash_bytes, mix64};
use crate::scenario::{Fault, FaultKind, ModelOptions, SimConfig};
use crate::telemetry::{GpuDevice, GpuSample, GpuSource, GpuSystem};

/// Version string the simulator reports; it says what it is.
pub const SIM_VERSION: &str = concat!("harness-sim-", env!("CARGO_PKG_VERSION"));

/// True when a server's version string is the simulator's (of any harness version).
pub fn is_simulator_version(version: &str) -> bool {
    version.starts_with("harness-sim-")
}

/// A running simulator.
pub struct SimServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    engine: Arc<Engine>,
}

impl SimServer {
    /// Binds `addr` (port 0 for an ephemeral one) and serves until [`SimServer::stop`].
    pub async fn start(config: SimConfig, addr: SocketAddr) -> anyhow::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let engine = Arc::new(Engine::new(config));
        let task = tokio::spawn(serve(listener, engine.clone(), SimApis::Both, stop.clone()));
        Ok(SimServer {
            addr,
            stop,
            task,
            engine,
        })
    }

    /// Its synthetic GPU, for the telemetry sampler.
    pub fn gpu(&self) -> Box<dyn GpuSource> {
        Box::new(SimGpu {
            engine: self.engine.clone(),
            energy_j: 0.0,
            last: Instant::now(),
            rng: Rng::new(mix64(self.engine.config.seed ^ 0x6770_7500)),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// The simulator's GPU, for telemetry: one device whose power follows the work the
/// simulator is doing. Idle it draws [`IDLE_W`]; each stream decoding adds to the busy
/// share until the slots are full, and only the layers on the GPU draw GPU power, so a
/// partly offloaded model runs the GPU cooler but longer. The energy counter integrates
/// that power, so a variant that finishes its tokens sooner spends fewer joules on them.
struct SimGpu {
    engine: Arc<Engine>,
    energy_j: f64,
    last: Instant,
    rng: Rng,
}

/// The simulated GPU's idle power, W.
pub const IDLE_W: f64 = 70.0;
/// Its power with every slot decoding on a fully offloaded model, W.
pub const BUSY_W: f64 = 420.0;

impl GpuSource for SimGpu {
    fn system(&self) -> GpuSystem {
        GpuSystem {
            devices: vec![GpuDevice {
                index: 0,
                name: "simulated GPU".to_owned(),
                memory_total_mb: 80_000.0,
            }],
            driver: Some(SIM_VERSION.to_owned()),
            cuda: None,
        }
    }

    fn sample(&mut self) -> Vec<GpuSample> {
        let config = &self.engine.config;
        let streams = self.engine.decoding.load(Ordering::Relaxed) as f64;
        let (gpu_share, memory_mb) = {
            let runner = self.engine.runner.lock().unwrap_or_else(|e| e.into_inner());
            match &runner.loaded {
                Some(key) => (
                    f64::from(key.num_gpu) / f64::from(config.layers.max(1)),
                    config.loaded_mb(key.num_ctx, key.num_gpu).1,
                ),
                None => (1.0, 0.0),
            }
        };
        let busy = if streams > 0.0 {
            (0.6 + 0.4 * (streams - 1.0) / f64::from(config.parallel.max(1))).min(1.0)
        } else {
            0.0
        };
        let power_w =
            (IDLE_W + (BUSY_W - IDLE_W) * busy * gpu_share) * self.rng.lognormal_factor(0.02);
        let now = Instant::now();
        self.energy_j += power_w * now.duration_since(self.last).as_secs_f64();
        self.last = now;
        vec![GpuSample {
            offset_ms: 0.0,
            gpu: 0,
            util_pct: Some((busy * gpu_share * 100.0).round()),
            memory_used_mb: Some(memory_mb.round()),
            power_w: Some((power_w * 10.0).round() / 10.0),
            energy_j: Some(self.energy_j),
            temp_c: Some((35.0 + 40.0 * busy * gpu_share).round()),
            sm_clock_mhz: Some(1980),
            throttle: Vec::new(),
        }]
    }

    fn simulated(&self) -> bool {
        true
    }
}

/// Which APIs a simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SimApis {
    /// Ollama's under `/api` and the OpenAI-compatible one under `/v1`, on one port.
    #[default]
    Both,
    /// Only Ollama's.
    Ollama,
    /// Only the OpenAI-compatible one (with llama.cpp's `/health`), as vLLM or
    /// llama-server would.
    Openai,
}

/// Serves forever on `addr` (the `harness sim-server` command).
pub async fn serve_forever(
    config: SimConfig,
    addr: SocketAddr,
    apis: SimApis,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let what = match apis {
        SimApis::Both => "Ollama's API under /api, the OpenAI-compatible one under /v1",
        SimApis::Ollama => "Ollama's API under /api",
        SimApis::Openai => "the OpenAI-compatible API under /v1",
    };
    eprintln!(
        "simulated server (not a real GPU; {what}) listening on http://{}",
        listener.local_addr()?
    );
    serve(
        listener,
        Arc::new(Engine::new(config)),
        apis,
        CancellationToken::new(),
    )
    .await;
    Ok(())
}

/// Serves on `listener` until `stop`. A `restart` fault closes the port (requests in
/// flight finish, new connections are refused) for its `down_ms`, then binds the same
/// address again.
async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    apis: SimApis,
    stop: CancellationToken,
) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let app = router(engine.clone(), apis);
    let mut listener = Some(listener);
    loop {
        let current = match listener.take() {
            Some(l) => l,
            None => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("simulator: cannot listen on {addr} again: {e}");
                    return;
                }
            },
        };
        let token = stop.clone();
        let restart = engine.clone();
        let served = axum::serve(no_delay(current), app.clone())
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = restart.restart.notified() => {}
                }
            })
            .await;
        if let Err(e) = served {
            tracing::error!("simulator stopped: {e}");
            return;
        }
        if stop.is_cancelled() {
            return;
        }
        let down = Duration::from_millis(engine.down_ms.load(Ordering::Relaxed));
        tracing::info!("simulator: restarting, port closed for {down:?}");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(down) => {}
        }
    }
}

/// Streams are many small writes: without TCP_NODELAY, Nagle's algorithm meeting the
/// client's delayed ACK holds a chunk back for tens of milliseconds, which would show up
/// as TTFT that no real server has.
fn no_delay(listener: tokio::net::TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("simulator: cannot set TCP_NODELAY: {e}");
        }
    })
}

fn router(engine: Arc<Engine>, apis: SimApis) -> Router {
    let mut app = Router::new().route("/sim/stats", get(stats)).route(
        "/",
        get(|| async { "Ollama is running (simulated by harness)" }),
    );
    if apis != SimApis::Openai {
        app = app
            .route(
                "/api/version",
                get(|| async { axum::Json(json!({ "version": SIM_VERSION })) }),
            )
            .route("/api/tags", get(tags))
            .route("/api/show", post(show))
            .route("/api/ps", get(ps))
            .route("/api/chat", post(chat))
            .route("/api/generate", post(generate));
    }
    if apis != SimApis::Ollama {
        app = app
            .route("/v1/chat/completions", post(completions))
            .route("/v1/models", get(models))
            .route("/props", get(props))
            .route("/slots", get(slots))
            .route("/metrics", get(metrics))
            .route(
                "/version",
                get(|| async { axum::Json(json!({ "version": SIM_VERSION })) }),
            )
            .route(
                "/health",
                get(|| async { axum::Json(json!({ "status": "ok" })) }),
            );
    }
    app.with_state(engine)
}

/// Which configuration occupies the (single) model runner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LoadKey {
    model: String,
    num_ctx: u32,
    num_gpu: u32,
}

#[derive(Debug, Default)]
struct Runner {
    loaded: Option<LoadKey>,
    active: usize,
    /// When the loaded configuration was last used, for `/api/ps`'s `expires_at`.
    last_used: Option<chrono::DateTime<chrono::Utc>>,
}

/// Characters per block of the prefix cache: 16 tokens at the simulator's four
/// characters a token. Only whole blocks are cached.
pub const PREFIX_BLOCK_CHARS: usize = 64;

/// The prompts of the loaded configuration, as chained hashes of their leading blocks
/// (a block's hash covers everything before it, so a hit is always a prefix), each with
/// when it was last used. Within one prompt the later blocks count as used earlier, so
/// eviction takes a prompt's tail before its head and what stays is still a prefix.
#[derive(Debug, Default)]
struct PrefixCache {
    key: Option<LoadKey>,
    blocks: HashMap<u64, u64>,
    clock: u64,
}

impl PrefixCache {
    /// Tokens of `prompt`'s longest cached prefix for `key`; then caches every whole block
    /// of `prompt`, keeping at most `capacity_blocks`.
    fn reuse(&mut self, key: &LoadKey, prompt: &[u8], capacity_blocks: usize) -> u64 {
        if self.key.as_ref() != Some(key) {
            self.key = Some(key.clone());
            self.blocks.clear();
        }
        let n = (prompt.len() / PREFIX_BLOCK_CHARS) as u64;
        let newest = self.clock + n;
        self.clock = newest + 1;
        let mut hash = 0u64;
        let mut hits = 0u64;
        let mut missed = false;
        for (i, block) in prompt.chunks_exact(PREFIX_BLOCK_CHARS).enumerate() {
            hash = mix64(hash ^ hash_bytes(block));
            match self.blocks.insert(hash, newest - i as u64) {
                Some(_) if !missed => hits += 1,
                _ => missed = true,
            }
        }
        while self.blocks.len() > capacity_blocks {
            let oldest = self
                .blocks
                .iter()
                .min_by_key(|&(h, &t)| (t, *h))
                .map(|(&h, _)| h);
            match oldest {
                Some(h) => self.blocks.remove(&h),
                None => break,
            };
        }
        hits * (PREFIX_BLOCK_CHARS as u64 / 4)
    }
}

/// The timing model and its shared state.
pub struct Engine {
    config: SimConfig,
    slots: Arc<Semaphore>,
    runner: Mutex<Runner>,
    runner_idle: Notify,
    decoding: AtomicUsize,
    sequence: AtomicU64,
    seen_models: Mutex<Vec<String>>,
    /// Signalled by a `restart` fault; the server loop closes the port.
    restart: Notify,
    /// How long the port stays closed on restart, ms.
    down_ms: AtomicU64,
    /// When the engine started: the origin of the times in a response's `sim_timing`.
    epoch: Instant,
    prefix_cache: Mutex<PrefixCache>,
    in_flight: Mutex<InFlight>,
    /// What `/metrics` counts.
    counted: Counted,
}

/// The simulator's counters, for its `/metrics` page.
#[derive(Default)]
struct Counted {
    prompt_tokens: AtomicU64,
    cached_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    finished: AtomicU64,
    /// Tokens held in the KV cache by requests in flight now.
    kv_tokens: AtomicU64,
    /// Requests waiting for a slot now.
    waiting: AtomicU64,
}

/// Tokens a request holds in the KV cache, given back when it ends.
struct KvHeld<'a> {
    kv: &'a AtomicU64,
    held: u64,
}

impl KvHeld<'_> {
    fn add(&mut self, tokens: u64) {
        self.kv.fetch_add(tokens, Ordering::Relaxed);
        self.held += tokens;
    }
}

impl Drop for KvHeld<'_> {
    fn drop(&mut self) {
        self.kv.fetch_sub(self.held, Ordering::Relaxed);
    }
}

impl Engine {
    /// A fresh engine with nothing loaded.
    pub fn new(config: SimConfig) -> Engine {
        let parallel = config.parallel.max(1) as usize;
        Engine {
            config,
            slots: Arc::new(Semaphore::new(parallel)),
            runner: Mutex::new(Runner::default()),
            runner_idle: Notify::new(),
            decoding: AtomicUsize::new(0),
            sequence: AtomicU64::new(0),
            seen_models: Mutex::new(vec!["gemma3:latest".to_owned()]),
            restart: Notify::new(),
            down_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            prefix_cache: Mutex::new(PrefixCache::default()),
            in_flight: Mutex::new(InFlight::new()),
            counted: Counted::default(),
        }
    }

    /// Prompt tokens of `request` the prefix cache already holds (none when it is off).
    fn cached_tokens(&self, key: &LoadKey, request: &SimRequest, prompt_tokens: u64) -> u64 {
        if !self.config.prefix_cache {
            return 0;
        }
        let mut text = Vec::with_capacity(request.system.len() + request.prompt.len() + 1);
        text.extend_from_slice(request.system.as_bytes());
        text.push(0);
        text.extend_from_slice(request.prompt.as_bytes());
        let capacity_tokens = u64::from(self.config.parallel.max(1)) * u64::from(key.num_ctx);
        let capacity_blocks = (capacity_tokens / (PREFIX_BLOCK_CHARS as u64 / 4)) as usize;
        let cached = self
            .prefix_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reuse(key, &text, capacity_blocks);
        // The last prompt token is always computed: it yields the first output token.
        cached.min(prompt_tokens.saturating_sub(1))
    }

    /// Milliseconds from the engine's start to `at`.
    fn ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.epoch).as_secs_f64() * 1e3
    }

    /// Waits until the runner holds `key`, loading it when it is idle. Returns true when
    /// this request caused the load (a cold call).
    async fn acquire_runner(&self, key: &LoadKey) -> bool {
        loop {
            let notified = self.runner_idle.notified();
            {
                let mut runner = self.runner.lock().unwrap_or_else(|e| e.into_inner());
                if runner.loaded.as_ref() == Some(key) {
                    runner.active += 1;
                    return false;
                }
                if runner.active == 0 {
                    runner.loaded = Some(key.clone());
                    runner.active = 1;
                    return true;
                }
            }
            notified.await;
        }
    }

    fn release_runner(&self) {
        let mut runner = self.runner.lock().unwrap_or_else(|e| e.into_inner());
        runner.active = runner.active.saturating_sub(1);
        runner.last_used = Some(chrono::Utc::now());
        if runner.active == 0 {
            self.runner_idle.notify_waiters();
        }
    }
}

impl SimConfig {
    fn offload_fraction(&self, options: &ModelOptions) -> f64 {
        f64::from(self.gpu_layers(options.num_gpu)) / f64::from(self.layers.max(1))
    }

    /// Expected decode rate of one stream alone (no jitter) for these options: the
    /// simulator's ground truth, for tests and documentation.
    pub fn expected_decode_tps(&self, options: &ModelOptions) -> f64 {
        let f = self.offload_fraction(options);
        let num_ctx = self.effective_num_ctx(options.num_ctx);
        let offload = 1.0 / (f / self.decode_tps + (1.0 - f) / self.cpu_decode_tps);
        offload / (1.0 + self.ctx_cost_per_1k * f64::from(num_ctx) / 1024.0)
    }

    fn prefill_ms(&self, options: &ModelOptions, prompt_tokens: u64) -> f64 {
        let f = self.offload_fraction(options);
        // CPU prefill is about as much slower than GPU prefill as CPU decode is.
        let cpu_prefill = self.prefill_tps * self.cpu_decode_tps / self.decode_tps;
        let rate = 1.0 / (f / self.prefill_tps + (1.0 - f) / cpu_prefill);
        prompt_tokens as f64 / rate * 1e3
    }
}

/// Which API a request came in on, so its answer is written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// Ollama's `/api/chat`: NDJSON with `message.content`.
    Chat,
    /// Ollama's `/api/generate`: NDJSON with `response`.
    Generate,
    /// OpenAI's `/v1/chat/completions`: server-sent events.
    OpenAi,
}

/// The fields of a request the model uses.
struct SimRequest {
    model: String,
    system: String,
    prompt: String,
    options: ModelOptions,
    api: Api,
    stream: bool,
    /// Generate exactly `num_predict` tokens.
    ignore_eos: bool,
    /// The fault this request gets, if any.
    fault: Option<Fault>,
}

fn parse_request(body: &[u8], api: Api) -> Result<SimRequest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let model = v["model"].as_str().ok_or("missing model")?.to_owned();
    let (system, prompt) = if api == Api::Generate {
        (
            v["system"].as_str().unwrap_or_default().to_owned(),
            v["prompt"].as_str().unwrap_or_default().to_owned(),
        )
    } else {
        let messages = v["messages"].as_array().ok_or("missing messages")?;
        let join = |system: bool| {
            messages
                .iter()
                .filter(|m| (m["role"].as_str() == Some("system")) == system)
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        };
        (join(true), join(false))
    };
    let options: ModelOptions = if api == Api::OpenAi {
        // OpenAI's names for the options it has; no context size or offload per request.
        ModelOptions {
            temperature: v["temperature"].as_f64(),
            top_p: v["top_p"].as_f64(),
            top_k: v["top_k"].as_u64().map(|k| k as u32),
            repeat_penalty: v["repeat_penalty"].as_f64(),
            seed: v["seed"].as_i64(),
            num_predict: v["max_tokens"]
                .as_i64()
                .or(v["max_completion_tokens"].as_i64()),
            ..ModelOptions::default()
        }
    } else {
        match v.get("options") {
            Some(o) => {
                serde_json::from_value(o.clone()).map_err(|e| format!("invalid options: {e}"))?
            }
            None => ModelOptions::default(),
        }
    };
    Ok(SimRequest {
        model,
        system,
        prompt,
        options,
        api,
        stream: api == Api::OpenAi || v["stream"].as_bool().unwrap_or(true),
        ignore_eos: v["ignore_eos"].as_bool().unwrap_or(false),
        fault: None,
    })
}

async fn chat(State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(engine, &headers, &body, Api::Chat)
}

async fn generate(State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(engine, &headers, &body, Api::Generate)
}

async fn completions(
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(engine, &headers, &body, Api::OpenAi)
}

fn error_response(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn respond(engine: Arc<Engine>, headers: &HeaderMap, body: &[u8], api: Api) -> Response {
    let mut request = match parse_request(body, api) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e),
    };
    let sequence = engine.sequence.fetch_add(1, Ordering::Relaxed);
    let fault = match headers.get("x-harness-fault").map(|v| v.to_str()) {
        Some(Ok(value)) => match Fault::from_header(value) {
            Ok(f) => Some(f),
            Err(e) => return error_response(StatusCode::BAD_REQUEST, e),
        },
        Some(Err(_)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "x-harness-fault is not text".into(),
            );
        }
        None => engine
            .config
            .faults
            .iter()
            .find(|f| f.applies_to(sequence))
            .cloned(),
    };
    match fault.as_ref().map(|f| f.kind) {
        Some(FaultKind::Http500) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "simulated fault: the runner crashed".into(),
            );
        }
        Some(FaultKind::Http503) => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "simulated fault: server busy".into(),
            );
        }
        Some(FaultKind::ModelNotFound) => {
            return error_response(
                StatusCode::NOT_FOUND,
                format!("model '{}' not found (simulated fault)", request.model),
            );
        }
        _ => {}
    }
    let drip = fault.as_ref().is_some_and(|f| f.kind == FaultKind::Drip);
    request.fault = fault;
    {
        let mut seen = engine.seen_models.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains(&request.model) {
            seen.push(request.model.clone());
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let stream = request.stream;
    tokio::spawn(run_request(engine, request, sequence, tx));
    if stream {
        let body = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
        });
        let body = if drip {
            // One byte per write, a millisecond's pause every 16 bytes.
            use futures::StreamExt;
            Body::from_stream(body.flat_map(|chunk| {
                let bytes: Vec<Bytes> = match chunk {
                    Ok(b) => (0..b.len()).map(|i| b.slice(i..i + 1)).collect(),
                    Err(e) => match e {},
                };
                futures::stream::iter(bytes.into_iter().enumerate()).then(|(i, b)| async move {
                    if i % 16 == 15 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                    Ok::<_, Infallible>(b)
                })
            }))
        } else {
            Body::from_stream(body)
        };
        let content_type = match api {
            Api::OpenAi => "text/event-stream",
            Api::Chat | Api::Generate => "application/x-ndjson",
        };
        Response::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    } else {
        // Non-streaming: gather the chunks into one response with the whole text.
        let body = async move {
            let mut rx = rx;
            let mut text = String::new();
            let mut last = Value::Null;
            while let Some(line) = rx.recv().await {
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    if let Some(t) = v["message"]["content"].as_str().or(v["response"].as_str()) {
                        text.push_str(t);
                    }
                    last = v;
                }
            }
            if last["message"].is_object() {
                last["message"]["content"] = json!(text);
            } else {
                last["response"] = json!(text);
            }
            Ok::<_, Infallible>(Bytes::from(last.to_string()))
        };
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(futures::stream::once(body)))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// Decrements a counter when dropped, so a client hanging up cannot leak a stream count.
/// Requests in flight (arrived, their stream not yet ended) over time: what the server
/// saw of the load, served at `GET /sim/stats` so tests can check that the client put the
/// load on it that it said it did.
#[derive(Debug)]
struct InFlight {
    now: usize,
    max: usize,
    /// ∫ requests in flight dt, ms.
    area_ms: f64,
    /// Time with at least one request in flight, ms.
    busy_ms: f64,
    since: Instant,
    requests: u64,
}

impl InFlight {
    fn new() -> InFlight {
        InFlight {
            now: 0,
            max: 0,
            area_ms: 0.0,
            busy_ms: 0.0,
            since: Instant::now(),
            requests: 0,
        }
    }

    /// Adds `delta` to the count at this instant.
    fn step(&mut self, delta: isize) {
        let now = Instant::now();
        let dt = now.saturating_duration_since(self.since).as_secs_f64() * 1e3;
        self.area_ms += self.now as f64 * dt;
        if self.now > 0 {
            self.busy_ms += dt;
        }
        self.since = now;
        self.now = self.now.saturating_add_signed(delta);
        self.max = self.max.max(self.now);
        if delta > 0 {
            self.requests += 1;
        }
    }
}

/// Counts a request in flight until dropped.
struct InFlightGuard<'a>(&'a Mutex<InFlight>);

impl<'a> InFlightGuard<'a> {
    fn enter(gauge: &'a Mutex<InFlight>) -> InFlightGuard<'a> {
        gauge.lock().unwrap_or_else(|e| e.into_inner()).step(1);
        InFlightGuard(gauge)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).step(-1);
    }
}

/// `GET /sim/stats`: requests in flight now and at most, their time-weighted mean while
/// any was in flight, and how many arrived; `?reset=1` starts counting afresh.
async fn stats(State(engine): State<Arc<Engine>>, uri: axum::http::Uri) -> axum::Json<Value> {
    let mut g = engine.in_flight.lock().unwrap_or_else(|e| e.into_inner());
    g.step(0);
    let body = json!({
        "simulated": true,
        "in_flight": g.now,
        "max_in_flight": g.max,
        "mean_in_flight": if g.busy_ms > 0.0 { g.area_ms / g.busy_ms } else { 0.0 },
        "busy_ms": g.busy_ms,
        "requests": g.requests,
    });
    if uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("reset")))
    {
        let now = g.now;
        *g = InFlight::new();
        g.now = now;
        g.max = now;
    }
    axum::Json(body)
}

struct CountGuard<'a>(&'a AtomicUsize);

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn run_request(
    engine: Arc<Engine>,
    request: SimRequest,
    sequence: u64,
    tx: mpsc::Sender<Bytes>,
) {
    let arrived = Instant::now();
    let _in_flight = InFlightGuard::enter(&engine.in_flight);
    let config = &engine.config;
    let mut rng = Rng::new(mix64(config.seed ^ mix64(sequence)));

    // Waiting is exactly the time before a slot is free (counted for `/metrics`).
    engine.counted.waiting.fetch_add(1, Ordering::Relaxed);
    let acquired = engine.slots.clone().acquire_owned().await;
    engine.counted.waiting.fetch_sub(1, Ordering::Relaxed);
    let Ok(_slot) = acquired else {
        return;
    };
    let slot_at = Instant::now();
    let key = LoadKey {
        model: request.model.clone(),
        num_ctx: config.effective_num_ctx(request.options.num_ctx),
        num_gpu: config.gpu_layers(request.options.num_gpu),
    };
    let cold = engine.acquire_runner(&key).await;
    let times = (arrived, slot_at);
    let result = generate_stream(&engine, &request, &key, cold, times, &mut rng, &tx).await;
    engine.release_runner();
    if result.is_err() {
        tracing::debug!("simulator: client went away");
    }
}

async fn generate_stream(
    engine: &Engine,
    request: &SimRequest,
    key: &LoadKey,
    cold: bool,
    (arrived, slot_at): (Instant, Instant),
    rng: &mut Rng,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), mpsc::error::SendError<Bytes>> {
    let config = &engine.config;
    let fault = request.fault.as_ref();
    let options = &request.options;
    let load_started = Instant::now();
    if cold {
        let load_ms = config.load_ms * rng.lognormal_factor(0.05);
        tokio::time::sleep(Duration::from_secs_f64(load_ms / 1e3)).await;
    }
    let load = if cold {
        load_started.elapsed()
    } else {
        Duration::from_micros(300)
    };

    let prompt_tokens = (text::approx_tokens(&request.system)
        + text::approx_tokens(&request.prompt))
    .clamp(1, u64::from(key.num_ctx));
    let cached_tokens = engine.cached_tokens(key, request, prompt_tokens);
    let counted = &engine.counted;
    counted
        .prompt_tokens
        .fetch_add(prompt_tokens, Ordering::Relaxed);
    counted
        .cached_tokens
        .fetch_add(cached_tokens, Ordering::Relaxed);
    let mut kv = KvHeld {
        kv: &counted.kv_tokens,
        held: 0,
    };
    kv.add(prompt_tokens);
    let prefill_started = Instant::now();
    let prefill_ms = config.prefill_ms(options, prompt_tokens - cached_tokens)
        * rng.lognormal_factor(config.jitter_sigma);
    tokio::time::sleep(Duration::from_secs_f64(prefill_ms / 1e3)).await;
    let prefill = prefill_started.elapsed();

    let text_seed = hash_bytes(
        format!(
            "{}|{}|{}|{}|{}",
            config.seed,
            options.seed.unwrap_or(0),
            request.model,
            request.system,
            request.prompt
        )
        .as_bytes(),
    );
    let full_text = text::compose(text_seed, &request.system, &request.prompt);
    let composed = text::tokenize(&full_text);
    // Past the end of its text, a request that ignores end-of-sequence gets the text again.
    let exact = options
        .num_predict
        .filter(|&p| p > 0 && request.ignore_eos)
        .map(|p| p as usize);
    let tokens: Vec<&str> = match exact {
        Some(p) => composed.iter().copied().cycle().take(p).collect(),
        None => composed,
    };
    let mut length_rng = Rng::new(text_seed);
    let target = (f64::from(config.median_output_tokens) * length_rng.lognormal_factor(0.35))
        .round() as usize;
    let room = (u64::from(key.num_ctx).saturating_sub(prompt_tokens)).max(1) as usize;
    // A reply to an agent's prompt is never a handful of tokens; the floor also keeps the
    // first section of the composed text whole.
    const MIN_OUTPUT_TOKENS: usize = 16;
    let mut n = match exact {
        Some(p) => p.min(room),
        None => target
            .clamp(MIN_OUTPUT_TOKENS.min(tokens.len()), tokens.len())
            .min(room),
    };
    let mut done_reason = "stop";
    if let Some(limit) = options.num_predict.filter(|&p| p > 0) {
        if (limit as usize) < n {
            n = limit as usize;
            done_reason = "length";
        }
    }

    let base_rate = config.expected_decode_tps(options) / rng.lognormal_factor(config.call_sigma);
    engine.decoding.fetch_add(1, Ordering::Relaxed);
    let _decoding = CountGuard(&engine.decoding);
    let decode_started = Instant::now();
    let mut model_eval_ms = 0.0;
    let mut deadline = tokio::time::Instant::now();
    let endless = fault.is_some_and(|f| f.kind == FaultKind::Endless);
    let script: Box<dyn Iterator<Item = &&str> + Send> = if endless {
        Box::new(tokens.iter().cycle())
    } else {
        Box::new(tokens[..n].iter())
    };
    for (sent, token) in script.enumerate() {
        if let Some(f) = fault.filter(|f| sent as u64 == u64::from(f.after_chunks)) {
            if strike(engine, f, request.api, tx).await? {
                return Ok(());
            }
        }
        let streams = engine.decoding.load(Ordering::Relaxed).max(1) as f64;
        let rate = base_rate / (1.0 + config.batch_penalty * (streams - 1.0));
        let token_ms = 1e3 / rate * rng.lognormal_factor(config.jitter_sigma);
        model_eval_ms += token_ms;
        deadline += Duration::from_secs_f64(token_ms / 1e3);
        tokio::time::sleep_until(deadline).await;
        tx.send(Bytes::from(content_line(request, token))).await?;
        counted.generated_tokens.fetch_add(1, Ordering::Relaxed);
        kv.add(1);
    }
    counted.finished.fetch_add(1, Ordering::Relaxed);
    let eval = decode_started.elapsed();
    // The simulator's own account, in ms since it started: when the request arrived, got a
    // slot, and decoded, and how long its model meant decoding to take (the measured
    // `eval_duration` is that plus timer and scheduling delays).
    let sim_timing = json!({
        "arrived_ms": engine.ms(arrived),
        "slot_ms": engine.ms(slot_at),
        "decode_started_ms": engine.ms(decode_started),
        "decode_ended_ms": engine.ms(decode_started + eval),
        "model_eval_ms": model_eval_ms,
    });
    if request.api == Api::OpenAi {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let finish = json!({
            "object": "chat.completion.chunk",
            "model": request.model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": done_reason}],
        });
        let usage = json!({
            "object": "chat.completion.chunk",
            "model": request.model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": n,
                "total_tokens": prompt_tokens + n as u64,
                "prompt_tokens_details": {"cached_tokens": cached_tokens},
            },
            // llama.cpp's names, which the OpenAI client reads for the server's timers.
            "timings": {
                "cache_n": cached_tokens,
                "prompt_n": prompt_tokens - cached_tokens,
                "prompt_ms": ms(prefill),
                "predicted_n": n,
                "predicted_ms": ms(eval),
            },
            "simulated": true,
            "sim_timing": sim_timing,
        });
        let text = format!("data: {finish}\n\ndata: {usage}\n\ndata: [DONE]\n\n");
        return tx.send(Bytes::from(text)).await;
    }
    let chat = request.api == Api::Chat;
    let final_chunk = json!({
        "model": request.model,
        "created_at": chrono::Utc::now().to_rfc3339(),
        "message": if chat { json!({"role": "assistant", "content": ""}) } else { Value::Null },
        "response": if chat { Value::Null } else { json!("") },
        "done": true,
        "done_reason": done_reason,
        "total_duration": arrived.elapsed().as_nanos() as u64,
        "load_duration": load.as_nanos() as u64,
        "prompt_eval_count": prompt_tokens,
        "cached_prompt_count": cached_tokens,
        "prompt_eval_duration": prefill.as_nanos() as u64,
        "eval_count": n,
        "eval_duration": eval.as_nanos() as u64,
        "simulated": true,
        "sim_timing": sim_timing,
    });
    let mut line = final_chunk.to_string().into_bytes();
    line.push(b'\n');
    tx.send(Bytes::from(line)).await
}

/// Carries out a mid-stream fault. Returns true when the stream must end here.
async fn strike(
    engine: &Engine,
    fault: &Fault,
    api: Api,
    tx: &mpsc::Sender<Bytes>,
) -> Result<bool, mpsc::error::SendError<Bytes>> {
    match fault.kind {
        FaultKind::Cut => Ok(true),
        FaultKind::Stall => {
            // Hold the connection open without a byte until the client gives up.
            tx.closed().await;
            Ok(true)
        }
        FaultKind::Malformed => {
            let line: &'static [u8] = match api {
                Api::OpenAi => b"data: {\"choices\": oops}\n\n",
                _ => b"{\"message\": {\"content\": oops}\n",
            };
            tx.send(Bytes::from_static(line)).await?;
            Ok(true)
        }
        FaultKind::BadUtf8 => {
            let line: &'static [u8] = match api {
                Api::OpenAi => b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xff\xfe\"}}]}\n\n",
                _ => b"{\"message\":{\"role\":\"assistant\",\"content\":\"\xff\xfe\"},\"done\":false}\n",
            };
            tx.send(Bytes::from_static(line)).await?;
            Ok(true)
        }
        FaultKind::Restart => {
            engine.down_ms.store(fault.down_ms, Ordering::Relaxed);
            engine.restart.notify_one();
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn content_line(request: &SimRequest, token: &str) -> Vec<u8> {
    if request.api == Api::OpenAi {
        let chunk = json!({
            "object": "chat.completion.chunk",
            "model": request.model,
            "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": null}],
        });
        return format!("data: {chunk}\n\n").into_bytes();
    }
    let mut chunk = json!({
        "model": request.model,
        "created_at": chrono::Utc::now().to_rfc3339(),
        "done": false,
    });
    if request.api == Api::Chat {
        chunk["message"] = json!({"role": "assistant", "content": token});
    } else {
        chunk["response"] = json!(token);
    }
    let mut line = chunk.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// `/v1/models`: every model asked for so far.
async fn models(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let seen = engine
        .seen_models
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let data: Vec<Value> = seen
        .iter()
        .map(|id| json!({"id": id, "object": "model", "owned_by": "harness-sim (simulated)"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data}))
}

async fn tags(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let seen = engine
        .seen_models
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let models: Vec<Value> = seen
        .iter()
        .map(|name| {
            json!({
                "name": name,
                "model": name,
                "digest": digest(name),
                "details": {"family": "simulated", "parameter_size": "4.3B", "quantization_level": "Q4_K_M"},
            })
        })
        .collect();
    axum::Json(json!({ "models": models }))
}

/// `/props`, as llama.cpp's server answers it: the context each slot gets and the
/// number of slots (the simulator's `default_num_ctx` and `parallel`).
async fn props(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let config = &engine.config;
    axum::Json(json!({
        "build_info": SIM_VERSION,
        "total_slots": config.parallel.max(1),
        "model_alias": "simulated",
        "default_generation_settings": { "n_ctx": config.effective_num_ctx(None) },
    }))
}

/// `/slots`, as llama.cpp's server answers it: one entry per slot, busy or not.
async fn slots(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let config = &engine.config;
    let free = engine.slots.available_permits();
    let total = config.parallel.max(1) as usize;
    let slots: Vec<Value> = (0..total)
        .map(|id| {
            json!({
                "id": id,
                "n_ctx": config.effective_num_ctx(None),
                "is_processing": id < total.saturating_sub(free),
            })
        })
        .collect();
    axum::Json(Value::Array(slots))
}

/// `/metrics`: the simulator's state in Prometheus's text format, under vLLM's names (so
/// a run on the simulator reads them as it would a vLLM server's), each described as
/// simulated.
async fn metrics(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let config = &engine.config;
    let parallel = config.parallel.max(1) as usize;
    let running = parallel.saturating_sub(engine.slots.available_permits());
    let waiting = engine.counted.waiting.load(Ordering::Relaxed);
    let num_ctx = {
        let runner = engine.runner.lock().unwrap_or_else(|e| e.into_inner());
        runner
            .loaded
            .as_ref()
            .map_or(config.effective_num_ctx(None), |k| k.num_ctx)
    };
    let c = &engine.counted;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let kv_share = get(&c.kv_tokens) as f64 / (parallel as f64 * f64::from(num_ctx.max(1)));
    let mut page = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: String| {
        page.push_str(&format!(
            "# HELP {name} {help} (simulated by harness)\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    family(
        crate::telemetry::server::SIMULATED_SERIES,
        "gauge",
        "1: every number on this page is the simulator's",
        "1".to_owned(),
    );
    family(
        "vllm:num_requests_running",
        "gauge",
        "Requests holding a slot.",
        running.to_string(),
    );
    family(
        "vllm:num_requests_waiting",
        "gauge",
        "Requests waiting for a slot.",
        waiting.to_string(),
    );
    family(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "Share of the slots' context held by requests in flight, 1 meaning all of it.",
        format!("{:.6}", kv_share.min(1.0)),
    );
    let counters = [
        (
            "vllm:prompt_tokens_total",
            "Prompt tokens, cached ones included.",
            get(&c.prompt_tokens),
        ),
        (
            "vllm:prefix_cache_queries_total",
            "Prompt tokens looked up in the prefix cache.",
            get(&c.prompt_tokens),
        ),
        (
            "vllm:prefix_cache_hits_total",
            "Prompt tokens served from the prefix cache.",
            get(&c.cached_tokens),
        ),
        (
            "vllm:generation_tokens_total",
            "Generated tokens.",
            get(&c.generated_tokens),
        ),
        (
            "vllm:request_success_total",
            "Requests finished.",
            get(&c.finished),
        ),
        (
            "vllm:num_preemptions_total",
            "Requests preempted (the simulator never preempts).",
            0,
        ),
    ];
    for (name, help, value) in counters {
        family(name, "counter", help, value.to_string());
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        page,
    )
}

/// How long a loaded model stays loaded after its last request (Ollama's default
/// `keep_alive`).
const KEEP_ALIVE_S: i64 = 300;

fn digest(model: &str) -> String {
    format!("{:016x}", hash_bytes(model.as_bytes()))
}

/// `/api/ps`: the configuration loaded now, its memory and how much of it is on the GPU
/// (in proportion to the layers offloaded), and its context length after the cap.
async fn ps(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let runner = engine.runner.lock().unwrap_or_else(|e| e.into_inner());
    let config = &engine.config;
    let models: Vec<Value> = runner
        .loaded
        .iter()
        .map(|key| {
            let (size, vram) = config.loaded_mb(key.num_ctx, key.num_gpu);
            let expires = runner.last_used.unwrap_or_else(chrono::Utc::now)
                + chrono::Duration::seconds(KEEP_ALIVE_S);
            json!({
                "name": key.model,
                "model": key.model,
                "size": (size * 1e6).round() as u64,
                "size_vram": (vram * 1e6).round() as u64,
                "digest": digest(&key.model),
                "details": {"family": "simulated", "parameter_size": "4.3B", "quantization_level": "Q4_K_M"},
                "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "context_length": key.num_ctx,
            })
        })
        .collect();
    axum::Json(json!({ "models": models }))
}

async fn show(State(engine): State<Arc<Engine>>, body: Bytes) -> Response {
    let model = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v["model"]
            .as_str()
            .or(v["name"].as_str())
            .map(str::to_owned)
    });
    let Some(model) = model else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "missing model"})),
        )
            .into_response();
    };
    axum::Json(json!({
        "details": {"family": "simulated", "parameter_size": "4.3B", "quantization_level": "Q4_K_M", "model": model},
        "parameters": format!("simulated: {} layers, default num_ctx {}", engine.config.layers, engine.config.default_num_ctx),
        "model_info": {
            "general.architecture": "simulated",
            "simulated.block_count": engine.config.layers,
            "simulated.context_length": engine.config.context_length,
        },
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(num_ctx: u32) -> LoadKey {
        LoadKey {
            model: "m".into(),
            num_ctx,
            num_gpu: 34,
        }
    }

    #[test]
    fn the_prefix_cache_reuses_whole_blocks_keeps_its_capacity_and_empties_on_reload() {
        let mut cache = PrefixCache::default();
        let first = "a".repeat(PREFIX_BLOCK_CHARS * 4);
        // Nothing cached yet; then the same prompt's four blocks (16 tokens each).
        assert_eq!(cache.reuse(&key(4096), first.as_bytes(), 100), 0);
        assert_eq!(cache.reuse(&key(4096), first.as_bytes(), 100), 64);
        // A prompt that departs in its third block reuses two.
        let mut other = first.clone();
        other.replace_range(PREFIX_BLOCK_CHARS * 2..PREFIX_BLOCK_CHARS * 2 + 1, "b");
        assert_eq!(cache.reuse(&key(4096), other.as_bytes(), 100), 32);
        // Room for three blocks: the older prompts go first, then the new prompt's tail,
        // so its first three blocks stay, a prefix.
        let fresh = "c".repeat(PREFIX_BLOCK_CHARS * 4);
        assert_eq!(cache.reuse(&key(4096), fresh.as_bytes(), 3), 0);
        assert_eq!(cache.blocks.len(), 3);
        assert_eq!(cache.reuse(&key(4096), fresh.as_bytes(), 3), 48);
        assert_eq!(cache.reuse(&key(4096), fresh.as_bytes(), 3), 48);
        // A bigger budget (more slots or context) keeps the whole prompt.
        assert_eq!(cache.reuse(&key(4096), fresh.as_bytes(), 8), 48);
        assert_eq!(cache.reuse(&key(4096), fresh.as_bytes(), 8), 64);
        // Another configuration loaded: the cache starts empty.
        assert_eq!(cache.reuse(&key(512), fresh.as_bytes(), 8), 0);
    }
}
