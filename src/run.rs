//! `harness run`: scenario → plan → scheduler → results → summary table.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::backend::ServerInfo;
use crate::backend::ollama::OllamaClient;
use crate::backend::openai::OpenAiClient;
use crate::gate::GateReport;
use crate::gate::files::{GateOptions, gate_records};
use crate::metrics::CallRecord;
use crate::plan::{Plan, Shard};
use crate::report;
use crate::results::{RecordWriter, ResultsDir, TrialRecord, read_calls, read_jsonl};
use crate::scenario::{BackendKind, Scenario, SimConfig};
use crate::scheduler::{self, Beside, ServerMetrics};
use crate::sim::{SimServer, is_simulator_version};
use crate::summary::Summary;
use crate::telemetry::nvml::NvmlSource;
use crate::telemetry::prometheus;
use crate::telemetry::server::{ServerMetricsInfo, ServerScrape, server_family};
use crate::telemetry::{GpuSample, GpuSource, GpuTelemetry, TelemetryInfo};

/// Settings of one `harness run`, from the command line.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Scenario file (unused with `resume`, which reads the folder's own copy).
    pub scenario: PathBuf,
    /// Results folder of an interrupted run to finish.
    pub resume: Option<PathBuf>,
    /// Parent folder of the results folder.
    pub out: PathBuf,
    /// Overrides the scenario's backend.
    pub backend: Option<BackendKind>,
    /// Overrides the scenario's server URL.
    pub url: Option<String>,
    /// Overrides the number of measured trials.
    pub trials: Option<u32>,
    /// Overrides the number of warmup rounds.
    pub warmup: Option<u32>,
    /// Overrides the seed.
    pub seed: Option<u64>,
    /// Draw a progress bar.
    pub progress: bool,
    /// Value of `OLLAMA_HOST`.
    pub ollama_host: Option<String>,
    /// Gates from the command line, judged with the scenario's after the run.
    pub gates: GateOptions,
    /// Exit 3 when gates are inconclusive.
    pub fail_on_inconclusive: bool,
    /// Sample the GPUs.
    pub gpu_telemetry: bool,
    /// Time between GPU samples.
    pub gpu_interval: Duration,
    /// Scrape the server's metrics page.
    pub server_metrics: bool,
    /// Time between scrapes.
    pub server_metrics_interval: Duration,
    /// `--shard I/N`.
    pub shard: Option<Shard>,
    /// `--shards N`, the count of a Kubernetes Indexed Job's shards.
    pub shards: Option<u32>,
}

/// The shard this process runs: `--shard`, else a Slurm array task's (its id counted from
/// the array's first, of the array's count), else a Kubernetes Indexed Job's
/// (`JOB_COMPLETION_INDEX` of `--shards`); `None` runs the whole plan.
pub fn shard_of(
    flag: Option<Shard>,
    shards: Option<u32>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Shard>> {
    if flag.is_some() {
        return Ok(flag);
    }
    let number = |name: &str| -> anyhow::Result<Option<u32>> {
        env(name)
            .map(|v| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a whole number"))
            })
            .transpose()
    };
    if let (Some(id), Some(count)) = (
        number("SLURM_ARRAY_TASK_ID")?,
        number("SLURM_ARRAY_TASK_COUNT")?,
    ) {
        let first = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let index = id.checked_sub(first).ok_or_else(|| {
            anyhow::anyhow!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {first}")
        })?;
        return Shard::new(index, count)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("Slurm array task: {e}"));
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let count = shards.ok_or_else(|| {
            anyhow::anyhow!(
                "JOB_COMPLETION_INDEX={index} names a shard, but not how many there are: pass --shards N (the Job's completions)"
            )
        })?;
        return Shard::new(index, count)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("Kubernetes Indexed Job: {e}"));
    }
    anyhow::ensure!(
        shards.is_none(),
        "--shards counts the shards of a Kubernetes Indexed Job, but JOB_COMPLETION_INDEX is not set; pass --shard I/N"
    );
    Ok(None)
}

/// The end of a run.
#[derive(Debug)]
pub struct RunReport {
    /// The results folder.
    pub dir: PathBuf,
    /// The summary written there.
    pub summary: Summary,
    /// Stopped early (Ctrl-C).
    pub interrupted: bool,
    /// The gates' verdicts, when the scenario or the command line has gates.
    pub gate: Option<GateReport>,
}

/// Host facts for the manifest.
#[derive(Debug, Serialize)]
struct HostInfo {
    hostname: Option<String>,
    os: &'static str,
    arch: &'static str,
    cpus: usize,
}

/// `manifest.json`: everything needed to audit or repeat the run. No secrets.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    harness_version: &'static str,
    harness_git_sha: Option<&'static str>,
    simulated: bool,
    scenario_file: String,
    scenario_sha256: String,
    scenario: &'a Scenario,
    sim: Option<&'a SimConfig>,
    plan_file: &'static str,
    trials_planned: usize,
    host: HostInfo,
    server: &'a ServerInfo,
    /// Every server of a run with several (`server.urls`), in their order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    servers: Vec<ServerInfo>,
    ollama_env: std::collections::BTreeMap<String, String>,
    started_at: String,
    /// When the run was resumed after an interruption, in order.
    resumed_at: Vec<String>,
    ended_at: Option<String>,
    complete: Option<bool>,
    /// GPU telemetry: recorded (the GPUs, the driver, what sampling cost), unavailable
    /// (and why) or off.
    gpu_telemetry: TelemetryInfo,
    /// The server's metrics page: recorded (by which server, how many scrapes), unavailable
    /// and why, or off.
    server_metrics: ServerMetricsInfo,
    /// SHA-256 of the whole plan (every shard's the same), so shards can be merged.
    plan_sha256: String,
    /// The part of the plan this folder ran, when it ran one.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<Shard>,
}

/// What an interrupted results folder says about its run, for `--resume`.
struct Prior {
    dir: PathBuf,
    scenario: Scenario,
    scenario_file: String,
    scenario_text: Vec<u8>,
    plan: Plan,
    done: std::collections::BTreeSet<u32>,
    started_at: String,
    resumed_at: Vec<String>,
    /// The shard the folder runs.
    shard: Option<Shard>,
}

impl Prior {
    /// Reads `dir`: the scenario copy (checked against the manifest's hash), the effective
    /// settings the run started with, its plan, and the trials already on disk.
    fn read(dir: &Path, ollama_host: Option<&str>) -> anyhow::Result<Prior> {
        let manifest_path = dir.join("manifest.json");
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path).with_context(|| {
                format!(
                    "cannot read {} (is this a harness results folder?)",
                    manifest_path.display()
                )
            })?)
            .with_context(|| format!("{}: not a harness manifest", manifest_path.display()))?;
        let text_of = |key: &str| manifest[key].as_str().map(str::to_owned);
        let scenario_file = text_of("scenario_file")
            .with_context(|| format!("{}: no scenario_file", manifest_path.display()))?;
        let copy = dir.join("scenario.yaml");
        let scenario_text =
            std::fs::read(&copy).with_context(|| format!("cannot read {}", copy.display()))?;
        anyhow::ensure!(
            text_of("scenario_sha256").as_deref()
                == Some(format!("{:x}", Sha256::digest(&scenario_text)).as_str()),
            "{} does not match the hash in the manifest: the folder was edited; refusing to resume",
            copy.display()
        );
        let text = String::from_utf8(scenario_text.clone())
            .with_context(|| format!("{} is not UTF-8", copy.display()))?;
        // Relative paths in the scenario resolve against the original file's folder.
        let base = Path::new(&scenario_file)
            .parent()
            .unwrap_or(Path::new("."))
            .to_owned();
        let mut scenario = Scenario::parse(&text, &base, ollama_host).map_err(|problems| {
            crate::scenario::ScenarioError {
                file: copy.clone(),
                problems,
            }
        })?;
        // The settings the run actually used (command-line overrides included).
        let effective = &manifest["scenario"];
        let backend: BackendKind = serde_json::from_value(effective["server"]["backend"].clone())
            .context("manifest: scenario.server.backend")?;
        scenario.server.backend = backend;
        if !backend.is_sim() {
            if let Some(url) = effective["server"]["url"].as_str() {
                scenario.server.url = url.to_owned();
            }
        }
        for (key, slot) in [
            ("trials", &mut scenario.trials),
            ("warmup", &mut scenario.warmup),
        ] {
            if let Some(v) = effective[key].as_u64() {
                *slot = u32::try_from(v).context("manifest: trial count")?;
            }
        }
        if let Some(seed) = effective["seed"].as_u64() {
            scenario.seed = seed;
        }
        if let Some(trace) = &scenario.workload.trace {
            anyhow::ensure!(
                effective["workload"]["trace"]["sha256"].as_str() == Some(trace.sha256.as_str()),
                "{} is not the trace this run started replaying (its SHA-256 differs): refusing to resume",
                trace.path.display()
            );
        }
        let plan: Plan = serde_json::from_str(
            &std::fs::read_to_string(dir.join("plan.json")).context("cannot read plan.json")?,
        )
        .context("plan.json")?;
        let shard: Option<Shard> =
            serde_json::from_value(manifest["shard"].clone()).context("manifest.json: shard")?;
        let whole = Plan::build(&scenario);
        anyhow::ensure!(
            plan == shard.map_or(whole.clone(), |s| whole.shard(s)),
            "plan.json is not the plan of this scenario: refusing to resume"
        );
        let trials: Vec<TrialRecord> = read_jsonl(&dir.join("trials.jsonl"))?;
        Ok(Prior {
            dir: dir.to_owned(),
            scenario,
            scenario_file,
            scenario_text,
            plan,
            done: trials.iter().map(|t| t.trial).collect(),
            started_at: text_of("started_at").unwrap_or_default(),
            resumed_at: manifest["resumed_at"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            shard,
        })
    }

    /// Where the folder's records end on the run's clock, ms: the last call, trial, GPU
    /// sample or scrape, those of the interrupted trial included (its GPU samples and
    /// scrapes stay in their files).
    fn recorded_until_ms(&self) -> anyhow::Result<f64> {
        #[derive(serde::Deserialize)]
        struct Offset {
            offset_ms: Option<f64>,
            #[serde(default)]
            e2e_ms: f64,
            #[serde(default)]
            wall_ms: f64,
        }
        let mut until: f64 = 0.0;
        for file in [
            "calls.jsonl",
            "trials.jsonl",
            "gpu.jsonl",
            "server-metrics.jsonl",
        ] {
            let path = self.dir.join(file);
            if !path.exists() {
                continue;
            }
            for o in crate::results::jsonl::<Offset>(&path)? {
                let o = o?;
                if let Some(at) = o.offset_ms {
                    until = until.max(at + o.e2e_ms + o.wall_ms);
                }
            }
        }
        Ok(until)
    }

    /// Drops what the interrupted trial left behind (its calls, a torn last line), so the
    /// files hold exactly the finished trials before the rest run.
    fn clean_records(&self) -> anyhow::Result<scheduler::Collected> {
        let calls: Vec<CallRecord> = read_calls(&self.dir.join("calls.jsonl"))?
            .into_iter()
            .filter(|c: &CallRecord| self.done.contains(&c.trial))
            .collect();
        let trials: Vec<TrialRecord> = read_jsonl(&self.dir.join("trials.jsonl"))?;
        ResultsDir::open(&self.dir).rewrite_records(&calls, &trials)?;
        Ok(scheduler::Collected { calls, trials })
    }
}

/// `OLLAMA_*` variables that shape the server's behaviour, minus anything secret-looking.
fn ollama_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("OLLAMA_"))
        .filter(|(k, _)| {
            !["KEY", "TOKEN", "SECRET", "PASSWORD", "AUTH"]
                .iter()
                .any(|s| k.contains(s))
        })
        .collect()
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
}

/// Loads and checks a scenario with the run's overrides applied.
pub fn load_scenario(config: &RunConfig) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::load(&config.scenario, config.ollama_host.as_deref())?;
    if let Some(b) = config.backend {
        scenario.server.backend = b;
    }
    if let Some(url) = &config.url {
        // One server, in place of the scenario's one or several.
        scenario.server.url = url.trim_end_matches('/').to_owned();
        scenario.server.urls.clear();
    }
    if let Some(t) = config.trials {
        anyhow::ensure!(t >= 1, "--trials must be at least 1");
        scenario.trials = t;
    }
    if let Some(w) = config.warmup {
        scenario.warmup = w;
    }
    if let Some(s) = config.seed {
        scenario.seed = s;
    }
    scenario
        .check_backend()
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.scenario.display()))?;
    Ok(scenario)
}

/// Reads the server's metrics page once: what the manifest says of it, or why it cannot
/// be scraped.
async fn probe_metrics(backend: &dyn Backend) -> Result<ServerMetricsInfo, String> {
    let Some(page) = backend.metrics().await else {
        return Err("the Ollama API has no metrics page".to_owned());
    };
    let text = page.map_err(|e| {
        if e.contains(" 501 ") || e.contains(" 404 ") {
            format!("{e}; llama.cpp serves it when started with --metrics")
        } else {
            e
        }
    })?;
    let page = prometheus::parse(&text).map_err(|e| format!("/metrics {e}"))?;
    let series: Vec<&String> = page.counters.keys().chain(page.gauges.keys()).collect();
    if series.is_empty() {
        return Err("/metrics has no counters or gauges".to_owned());
    }
    Ok(ServerMetricsInfo {
        status: "recorded".to_owned(),
        server: server_family(series.iter().copied()).map(str::to_owned),
        series: series.len(),
        ..ServerMetricsInfo::default()
    })
}

/// [`probe_metrics`] of every server of the run: what they serve together, or why the first
/// that cannot be scraped cannot (named when there are several).
async fn probe_servers(
    servers: &[(Arc<dyn Backend>, ServerInfo)],
) -> Result<ServerMetricsInfo, String> {
    let mut all = Vec::new();
    for (backend, info) in servers {
        let one = probe_metrics(backend.as_ref()).await;
        all.push(one.map_err(|e| match servers.len() {
            1 => e,
            _ => format!("{}: {e}", info.url),
        })?);
    }
    Ok(ServerMetricsInfo::combine(all).unwrap_or_default())
}

/// Starts the simulator when the scenario runs on it (filling in its URL), builds a client
/// of each of the run's servers, checks each answers, and asks what it is.
async fn connect(
    scenario: &mut Scenario,
) -> anyhow::Result<(Option<SimServer>, Vec<(Arc<dyn Backend>, ServerInfo)>)> {
    let sim = if scenario.server.backend.is_sim() {
        let mut sim_config = scenario.sim.clone();
        sim_config.seed ^= scenario.seed;
        let server = SimServer::start(sim_config, "127.0.0.1:0".parse()?).await?;
        scenario.server.url = server.url();
        Some(server)
    } else {
        None
    };
    let timeout = Duration::from_secs_f64(scenario.server.timeout_s);
    let limits = scenario.server.limits();
    let mut servers = Vec::new();
    for url in scenario.server.servers() {
        let backend: Arc<dyn Backend> = match scenario.server.backend {
            BackendKind::Ollama | BackendKind::Sim => {
                Arc::new(OllamaClient::new(url, scenario.server.api, timeout)?.with_limits(limits))
            }
            BackendKind::Openai | BackendKind::SimOpenai => {
                // The key is read here and kept in the client only: never in a file or log.
                let key = std::env::var(&scenario.server.api_key_env).ok();
                Arc::new(OpenAiClient::new(url, key, timeout)?.with_limits(limits))
            }
        };
        if let Err(e) = backend.ping().await {
            let how = match scenario.server.backend {
                BackendKind::Openai | BackendKind::SimOpenai => {
                    "Start the server there, or point --url at it"
                }
                _ => {
                    "Start Ollama there (`ollama serve`), point OLLAMA_HOST or --url at your server"
                }
            };
            anyhow::bail!("{e}\n  {how}, or run on the built-in simulator with `--backend sim`.");
        }
        let info = backend.describe(&scenario.model).await;
        servers.push((backend, info));
    }
    Ok((sim, servers))
}

/// Runs a scenario end to end. Errors before the first trial leave no results folder.
pub async fn run(config: RunConfig, cancel: CancellationToken) -> anyhow::Result<RunReport> {
    let prior = match &config.resume {
        Some(dir) => Some(Prior::read(dir, config.ollama_host.as_deref())?),
        None => None,
    };
    let mut scenario = match &prior {
        Some(p) => p.scenario.clone(),
        None => load_scenario(&config)?,
    };
    // Bad gate expressions fail before anything runs.
    for g in config.gates.gates()? {
        for name in [&g.variant, &g.baseline] {
            anyhow::ensure!(
                scenario.variants.contains_key(name),
                "gate `{}`: no variant `{name}` in {}",
                g.expression(),
                config.scenario.display()
            );
        }
    }
    let scenario_text = match &prior {
        Some(p) => p.scenario_text.clone(),
        None => std::fs::read(&config.scenario)
            .with_context(|| format!("cannot read {}", config.scenario.display()))?,
    };
    let (sim, servers) = connect(&mut scenario).await?;
    // Simulated numbers must never pass for real ones: a simulator reached by its URL (a
    // `harness sim-server`) says what it is.
    let simulated = scenario.server.backend.is_sim()
        || servers
            .iter()
            .any(|(_, info)| info.version.as_deref().is_some_and(is_simulator_version));
    let server_info = servers[0].1.clone();
    let several = servers.len() > 1;

    let now = chrono::Utc::now();
    // A resumed run keeps its earlier trials' records, which a stopping rule reads too,
    // and its clock.
    let (kept, clock_from_ms) = match &prior {
        Some(p) => {
            let until = p.recorded_until_ms()?;
            (p.clean_records()?, until)
        }
        None => (scheduler::Collected::default(), 0.0),
    };
    // A shard runs its part of the whole plan; a resumed folder keeps the shard it ran.
    let shard = match &prior {
        Some(p) => {
            anyhow::ensure!(
                config.shard.is_none() || config.shard == p.shard,
                "{} ran shard {}; it cannot be resumed as shard {}",
                p.dir.display(),
                p.shard.map_or("none".to_owned(), |s| s.to_string()),
                config.shard.map_or("none".to_owned(), |s| s.to_string())
            );
            p.shard
        }
        None => shard_of(config.shard, config.shards, |k| std::env::var(k).ok())?,
    };
    anyhow::ensure!(
        shard.is_none() || !several,
        "{}: a shard runs against its node's server, so a scenario with `server.urls` cannot be split into shards",
        config.scenario.display()
    );
    anyhow::ensure!(
        !several || scenario.stopping.is_none(),
        "{}: a stopping rule decides on the rounds in order, so it cannot run with several servers (`server.urls`) running rounds at once",
        config.scenario.display()
    );
    anyhow::ensure!(
        shard.is_none() || scenario.stopping.is_none(),
        "{}: a stopping rule decides on all the rounds together, so a run with `stopping:` cannot be split into shards",
        config.scenario.display()
    );
    let whole_plan = Plan::build(&scenario);
    let plan_sha256 = format!(
        "{:x}",
        Sha256::digest(serde_json::to_vec(&whole_plan).unwrap_or_default())
    );
    let folder_name = match shard {
        Some(s) => format!("{}-shard-{}-of-{}", scenario.name, s.index, s.count),
        None => scenario.name.clone(),
    };
    let (dir, plan, done, scenario_file, started_at, mut resumed_at) = match &prior {
        Some(p) => (
            ResultsDir::open(&p.dir),
            p.plan.clone(),
            p.done.clone(),
            p.scenario_file.clone(),
            p.started_at.clone(),
            p.resumed_at.clone(),
        ),
        None => (
            ResultsDir::create(&config.out, &folder_name, now)?,
            shard.map_or(whole_plan.clone(), |s| whole_plan.shard(s)),
            Default::default(),
            config.scenario.display().to_string(),
            now.to_rfc3339(),
            Vec::new(),
        ),
    };
    if prior.is_some() {
        resumed_at.push(now.to_rfc3339());
    }
    let scenario = Arc::new(scenario);
    let mut manifest = Manifest {
        harness_version: env!("CARGO_PKG_VERSION"),
        harness_git_sha: option_env!("HARNESS_GIT_SHA"),
        simulated,
        scenario_file,
        scenario_sha256: format!("{:x}", Sha256::digest(&scenario_text)),
        scenario: &scenario,
        // The simulator's parameters when this run started it; a `harness sim-server`
        // was started with its own.
        sim: scenario.server.backend.is_sim().then_some(&scenario.sim),
        plan_file: "plan.json",
        trials_planned: plan.trials.len(),
        host: HostInfo {
            hostname: hostname(),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        server: &server_info,
        servers: if several {
            servers.iter().map(|(_, info)| info.clone()).collect()
        } else {
            Vec::new()
        },
        ollama_env: ollama_env(),
        started_at,
        resumed_at,
        ended_at: None,
        complete: None,
        gpu_telemetry: TelemetryInfo::off(),
        server_metrics: ServerMetricsInfo::off(),
        plan_sha256,
        shard,
    };
    // GPU telemetry: the simulator's GPU when this run started the simulator, else NVML;
    // without either the manifest says why, and nothing else changes.
    let gpu = if !config.gpu_telemetry {
        None
    } else if several {
        manifest.gpu_telemetry = TelemetryInfo::unavailable(
            "several servers run trials at once (server.urls), so no trial's GPU energy can be told apart from another's".to_owned(),
        );
        None
    } else {
        let source: Result<Box<dyn GpuSource>, String> = match &sim {
            Some(sim) => Ok(sim.gpu()),
            None => NvmlSource::open().map(|s| Box::new(s) as Box<dyn GpuSource>),
        };
        match source {
            Ok(source) => Some(GpuTelemetry {
                source,
                interval: config.gpu_interval,
                sink: Box::new(dir.appender::<GpuSample>("gpu.jsonl")?),
            }),
            Err(reason) => {
                manifest.gpu_telemetry = TelemetryInfo::unavailable(reason);
                None
            }
        }
    };
    if let Some(g) = &gpu {
        manifest.gpu_telemetry = TelemetryInfo {
            status: "recorded".to_owned(),
            simulated: g.source.simulated(),
            interval_ms: Some(g.interval.as_secs_f64() * 1e3),
            system: Some(g.source.system()),
            ..TelemetryInfo::default()
        };
    }
    // The server's metrics: read once now, so a server without them is said to be so
    // before anything runs. With several servers, every one must serve them.
    let server_metrics = if !config.server_metrics {
        None
    } else {
        match probe_servers(&servers).await {
            Ok(info) => {
                manifest.server_metrics = info;
                Some(ServerMetrics {
                    interval: config.server_metrics_interval,
                    sink: Box::new(dir.appender::<ServerScrape>("server-metrics.jsonl")?),
                })
            }
            Err(reason) => {
                manifest.server_metrics = ServerMetricsInfo::unavailable(reason);
                None
            }
        }
    };
    if let Some(m) = &server_metrics {
        manifest.server_metrics.interval_ms = Some(m.interval.as_secs_f64() * 1e3);
    }
    if prior.is_none() {
        dir.write_atomic("scenario.yaml", &scenario_text)?;
        dir.write_json("plan.json", &plan)?;
    }
    dir.write_json("manifest.json", &manifest)?;

    let writer = RecordWriter::create(&dir)?;
    let outcome = scheduler::execute(
        scenario.clone(),
        &plan,
        &done,
        servers
            .into_iter()
            .map(|(backend, info)| scheduler::Lane {
                backend,
                node: several.then(|| info.url.clone()),
                server: Arc::new(info),
            })
            .collect(),
        writer,
        cancel.clone(),
        simulated,
        config.progress,
        Beside {
            gpu,
            server: server_metrics,
        },
        kept,
        clock_from_ms,
    )
    .await?;
    if let Some(info) = outcome.telemetry.clone() {
        manifest.gpu_telemetry = info;
    }
    if let Some(info) = outcome.server_metrics.clone() {
        manifest.server_metrics = info;
    }

    manifest.ended_at = Some(chrono::Utc::now().to_rfc3339());
    manifest.complete = Some(outcome.complete);
    dir.write_json("manifest.json", &manifest)?;
    // The same code as `harness report` and `harness gate`, from the files just written,
    // so they agree.
    let records = crate::results::load(dir.path())?;
    let summary = report::write_records(dir.path(), &records)?;
    let gate = if scenario.gates.is_empty() && config.gates.expressions.is_empty() {
        None
    } else {
        let gate = gate_records(dir.path(), &records, &config.gates)?;
        report::write_gate(dir.path(), &gate)?;
        Some(gate)
    };
    if let Some(sim) = sim {
        sim.stop().await;
    }
    Ok(RunReport {
        dir: dir.path().to_owned(),
        summary,
        interrupted: !outcome.complete && cancel.is_cancelled(),
        gate,
    })
}

/// `harness validate`: the scenario's problems, or a one-line description of its plan.
pub fn validate(path: &Path, ollama_host: Option<&str>) -> anyhow::Result<String> {
    let scenario = Scenario::load(path, ollama_host)?;
    let plan = Plan::build(&scenario);
    let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
    let server = match scenario.server.backend {
        BackendKind::Sim => "the built-in simulator (started on a free local port)".to_owned(),
        BackendKind::SimOpenai => {
            "the built-in simulator's OpenAI-compatible API (started on a free local port)"
                .to_owned()
        }
        backend if scenario.server.urls.len() > 1 => format!(
            "backend {} at {} servers at once ({}), each its own block of rounds",
            backend.as_str(),
            scenario.server.urls.len(),
            scenario.server.urls.join(", ")
        ),
        backend => format!("backend {} at {}", backend.as_str(), scenario.server.url),
    };
    let arms = match &scenario.load {
        Some(load) => {
            let levels: Vec<String> = load.levels.iter().map(|l| l.label()).collect();
            format!(
                "{} (at load levels {})",
                count(scenario.arms.len(), "arm"),
                levels.join(", ")
            )
        }
        None => count(scenario.arms.len(), "arm"),
    };
    Ok(format!(
        "{}: ok — {}, {arms}, {}, {} measured + {} warmup trials ({} order), {server}",
        path.display(),
        count(scenario.variants.len(), "variant"),
        count(scenario.agents.len(), "agent"),
        plan.measured(),
        plan.trials.len() - plan.measured(),
        format!("{:?}", scenario.order).to_lowercase(),
    ))
}
