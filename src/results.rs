//! The results folder: one writer, owned by the collector task, and the reader that
//! reports and gates start from.
//!
//! Records are appended and flushed as they arrive (`calls.jsonl`, `calls.csv`,
//! `trials.jsonl`), so a crash or Ctrl-C loses nothing that finished. Whole documents
//! (`manifest.json`, `plan.json`, `summary.json`, agent reports) are written to a
//! temporary file and renamed into place, so a reader never sees half of one. [`load`]
//! reads a folder back as [`RunRecords`]: everything the analysis is computed from.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::backend::{LoadedModel, ModelShape};
use crate::metrics::{CallRecord, Names};
use crate::plan::Phase;
use crate::scenario::{Arm, BackendKind, Gate, ModelOptions, Order, Slo, Stopping};
use crate::telemetry::server::{ServerMetricsInfo, TrialServer};
use crate::telemetry::{TelemetryInfo, TrialGpu};

/// What workers send to the collector.
#[derive(Debug)]
pub enum Event {
    /// One finished LLM call (boxed: records are large and events move through a channel).
    Call(Box<CallRecord>),
    /// One finished trial (boxed, as calls are).
    Trial(Box<TrialRecord>),
    /// A per-run agent report to write as `agents/<variant>/run_<n>.md`.
    AgentReport {
        /// Variant name (a safe file name, checked at load).
        variant: String,
        /// Run number of the variant.
        run_number: u32,
        /// The report.
        markdown: String,
    },
}

/// One row of `trials.jsonl`: one arm's pipelines run together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Plan position.
    pub trial: u32,
    /// Round within the phase.
    pub round: u32,
    /// Warmup or measured.
    pub phase: Phase,
    /// Arm name.
    pub arm: String,
    /// Variants launched together.
    pub variants: Vec<String>,
    /// Wall-clock start (UTC, RFC 3339).
    pub started_at: String,
    /// Launch of the first pipeline → end of the last, ms.
    pub wall_ms: f64,
    /// One entry per pipeline.
    pub pipelines: Vec<PipelineResult>,
    /// A priming call ran before this trial (its model configuration had changed).
    pub primed: bool,
    /// Every pipeline finished every call successfully.
    pub ok: bool,
    /// The trial's launch, ms since the run started (the clock of calls' `offset_ms`
    /// and of GPU samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<f64>,
    /// What the server held in memory after this trial's priming call (`/api/ps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_after_prime: Option<Vec<LoadedModel>>,
    /// What it held when the trial ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_after: Option<Vec<LoadedModel>>,
    /// The GPUs over the trial (energy, mean power, peak memory), when telemetry ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<TrialGpu>,
    /// The server's own metrics over the trial (counters' increases, gauges' peaks),
    /// when its metrics page was scraped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<TrialServer>,
    /// The server this trial ran against, when the run spans several (a merged shard's
    /// server URL and host); comparisons are then also computed per server and pooled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One pipeline's outcome, stored in its trial's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineResult {
    /// Variant.
    pub variant: String,
    /// Position within the arm.
    pub slot: u32,
    /// Run number of the variant (names `agents/<variant>/run_<n>.md`).
    pub run_number: u32,
    /// Launch → last call finished, ms.
    pub wall_ms: f64,
    /// Calls made.
    pub calls: u32,
    /// Calls that failed.
    pub failed_calls: u32,
    /// Mean `decode_tps` over successful calls.
    pub decode_tps_mean: Option<f64>,
    /// Every call succeeded and every step ran.
    pub ok: bool,
    /// Where the job's time went: its critical path, and its time in LLM calls, tool
    /// waits and waiting for siblings (absent in folders written before jobs were timed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobTiming>,
}

/// Where one job's time went. A job is one run of the workload by one variant instance
/// in a trial (one pipeline); its completion time is the pipeline's `wall_ms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobTiming {
    /// The chain of agent instances that decided the job's completion time, first to
    /// last: each one waited for the previous to end (the last input it waited for).
    pub critical_path: Vec<PathStep>,
    /// Time in LLM calls along the critical path, ms.
    pub llm_ms: f64,
    /// Time in tool waits along the critical path, ms.
    pub tool_ms: f64,
    /// Summed over the agents that fanned out: the mean time an instance's output waited
    /// for its slowest sibling before the agents after it could start, ms.
    pub sibling_wait_ms: f64,
}

/// One agent instance on a job's critical path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStep {
    /// Agent (graph node), or conversation of a trace.
    pub node: String,
    /// Fan-out instance (0-based).
    pub instance: u32,
    /// From its start to its end, ms.
    pub ms: f64,
    /// Of which in LLM calls, ms.
    pub llm_ms: f64,
    /// Of which in tool waits, ms.
    pub tool_ms: f64,
}

/// A results folder being written.
#[derive(Debug, Clone)]
pub struct ResultsDir {
    path: PathBuf,
}

impl ResultsDir {
    /// Creates `out/<scenario>-<UTC timestamp>/`; never reuses an existing folder.
    pub fn create(
        out: &Path,
        scenario: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<ResultsDir> {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let stamp = now.format("%Y%m%dT%H%M%SZ");
        let mut path = out.join(format!("{scenario}-{stamp}"));
        let mut n = 1;
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                    n += 1;
                    path = out.join(format!("{scenario}-{stamp}-{n}"));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        Ok(ResultsDir { path })
    }

    /// Opens an existing folder (for reading or rewriting summaries).
    pub fn open(path: &Path) -> ResultsDir {
        ResultsDir {
            path: path.to_owned(),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `name` atomically (temporary file, fsync, rename).
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let target = self.path.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut tmp_name = target.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp~");
        let tmp = target.with_file_name(tmp_name);
        {
            let mut f =
                File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &target)
            .with_context(|| format!("cannot write {}", target.display()))?;
        Ok(())
    }

    /// Writes the record files from `calls` and `trials` as they come, each to a temporary
    /// file that is synced and renamed over the old one: nothing is held in memory beyond
    /// a buffer, so a merge of a million calls streams them.
    pub fn stream_records(
        &self,
        calls: impl IntoIterator<Item = anyhow::Result<CallRecord>>,
        trials: &[TrialRecord],
    ) -> anyhow::Result<()> {
        let open = |name: &str| -> anyhow::Result<(PathBuf, std::io::BufWriter<File>)> {
            let tmp = self.path.join(format!(".{name}.tmp"));
            let file =
                File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
            Ok((tmp, std::io::BufWriter::with_capacity(1 << 16, file)))
        };
        let (jsonl_tmp, mut jsonl) = open("calls.jsonl")?;
        let (csv_tmp, csv_file) = open("calls.csv")?;
        let mut csv = csv::Writer::from_writer(csv_file);
        for c in calls {
            let c = c?;
            json_line(&mut jsonl, &c)?;
            csv.serialize(&c)?;
        }
        let (trials_tmp, mut trials_out) = open("trials.jsonl")?;
        for t in trials {
            json_line(&mut trials_out, t)?;
        }
        let finish = |w: std::io::BufWriter<File>| -> anyhow::Result<()> {
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(())
        };
        finish(jsonl)?;
        finish(csv.into_inner().map_err(|e| e.into_error())?)?;
        finish(trials_out)?;
        for (tmp, name) in [
            (jsonl_tmp, "calls.jsonl"),
            (csv_tmp, "calls.csv"),
            (trials_tmp, "trials.jsonl"),
        ] {
            std::fs::rename(&tmp, self.path.join(name))
                .with_context(|| format!("cannot write {}", self.path.join(name).display()))?;
        }
        Ok(())
    }

    /// Replaces the record files with exactly `calls` and `trials`, each atomically: a
    /// resumed run drops what the trial it interrupted left behind.
    pub fn rewrite_records(
        &self,
        calls: &[CallRecord],
        trials: &[TrialRecord],
    ) -> anyhow::Result<()> {
        let mut calls_jsonl = Vec::new();
        let mut calls_csv = csv::Writer::from_writer(Vec::new());
        for c in calls {
            json_line(&mut calls_jsonl, c)?;
            calls_csv.serialize(c)?;
        }
        let mut trials_jsonl = Vec::new();
        for t in trials {
            json_line(&mut trials_jsonl, t)?;
        }
        self.write_atomic("calls.jsonl", &calls_jsonl)?;
        self.write_atomic("calls.csv", &calls_csv.into_inner()?)?;
        self.write_atomic("trials.jsonl", &trials_jsonl)?;
        Ok(())
    }

    /// A JSON-lines file opened for appending, each line flushed as it is written (for
    /// a sampler's rows, on the sampler's own thread).
    pub fn appender<T: Serialize>(
        &self,
        name: &str,
    ) -> anyhow::Result<impl FnMut(&T) + Send + 'static> {
        let path = self.path.join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut out = std::io::LineWriter::new(file);
        let mut failed = false;
        Ok(move |row: &T| {
            let written = serde_json::to_writer(&mut out, row)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = written
                && !failed
            {
                failed = true;
                tracing::warn!("cannot write {}: {e}", path.display());
            }
        })
    }

    /// Writes pretty JSON atomically.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        self.write_atomic(name, &bytes)
    }
}

/// `value` as one line of JSON.
fn json_line(w: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")?;
    Ok(())
}

/// Appends records to the JSONL and CSV files, flushing each.
pub struct RecordWriter {
    dir: ResultsDir,
    calls_jsonl: BufWriter<File>,
    calls_csv: csv::Writer<File>,
    trials_jsonl: BufWriter<File>,
}

impl RecordWriter {
    /// Creates the record files in `dir`.
    pub fn create(dir: &ResultsDir) -> anyhow::Result<RecordWriter> {
        let open = |name: &str| -> anyhow::Result<File> {
            let p = dir.path().join(name);
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .with_context(|| format!("cannot open {}", p.display()))
        };
        // A resumed run appends to a calls.csv that has its header already.
        let calls_csv = open("calls.csv")?;
        let has_header = calls_csv.metadata()?.len() > 0;
        Ok(RecordWriter {
            dir: dir.clone(),
            calls_jsonl: BufWriter::new(open("calls.jsonl")?),
            calls_csv: csv::WriterBuilder::new()
                .has_headers(!has_header)
                .from_writer(calls_csv),
            trials_jsonl: BufWriter::new(open("trials.jsonl")?),
        })
    }

    /// Writes one event to disk, flushed before returning.
    pub fn write(&mut self, event: &Event) -> anyhow::Result<()> {
        match event {
            Event::Call(record) => {
                json_line(&mut self.calls_jsonl, record)?;
                self.calls_jsonl.flush()?;
                self.calls_csv.serialize(record)?;
                self.calls_csv.flush()?;
            }
            Event::Trial(record) => {
                json_line(&mut self.trials_jsonl, record)?;
                self.trials_jsonl.flush()?;
            }
            Event::AgentReport {
                variant,
                run_number,
                markdown,
            } => {
                self.dir.write_atomic(
                    &format!("agents/{variant}/run_{run_number}.md"),
                    markdown.as_bytes(),
                )?;
            }
        }
        Ok(())
    }
}

/// What `summarize` needs to know about the run besides its records.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMeta {
    /// Scenario name.
    pub scenario: String,
    /// Scenario seed (the bootstrap's draws derive from it).
    pub seed: u64,
    /// The baseline variant.
    pub baseline: String,
    /// Arms in scenario order.
    pub arms: Vec<Arm>,
    /// Ran on the simulator.
    pub simulated: bool,
    /// Trials in the plan, warmups included.
    pub planned_trials: usize,
    /// The order trials ran in (`None` in folders written before it was recorded).
    pub order: Option<Order>,
    /// What ran: server, model, the options each variant sent, workload and agents.
    pub setup: RunSetup,
    /// The service objectives goodput counts against (`slo:`).
    pub slo: Option<Slo>,
    /// The stopping rule, and the measured rounds it may run at most.
    pub stopping: Option<(Stopping, u32)>,
}

/// The parts of `manifest.json` a report needs.
#[derive(Debug, Deserialize)]
struct RecordedManifest {
    scenario: RecordedScenario,
    simulated: bool,
    trials_planned: usize,
    #[serde(default)]
    harness_version: Option<String>,
    #[serde(default)]
    server: Option<RunServer>,
    #[serde(default)]
    gpu_telemetry: Option<TelemetryInfo>,
    #[serde(default)]
    server_metrics: Option<ServerMetricsInfo>,
    /// Every server of a run with several (`server.urls`).
    #[serde(default)]
    servers: Vec<RecordedServer>,
    /// The shards of a merged run.
    #[serde(default)]
    merged_from: Vec<RecordedShard>,
}

/// One of a run's several servers, as the manifest recorded it.
#[derive(Debug, Deserialize)]
struct RecordedServer {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

/// One shard of a merged run, as the merged manifest recorded it.
#[derive(Debug, Deserialize)]
struct RecordedShard {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    server_version: Option<String>,
    #[serde(default)]
    host: Option<String>,
}

/// `url (version)`, or `url on host (version)`: one server of several, in words.
fn server_entry(url: Option<&str>, host: Option<&str>, version: Option<&str>) -> String {
    let mut words = url.unwrap_or("?").to_owned();
    if let Some(h) = host {
        words.push_str(&format!(" on {h}"));
    }
    if let Some(v) = version {
        words.push_str(&format!(" ({v})"));
    }
    words
}

#[derive(Debug, Deserialize)]
struct RecordedServerConfig {
    backend: BackendKind,
    #[serde(default)]
    url: Option<String>,
}

/// A variant as the manifest recorded it.
#[derive(Debug, Deserialize)]
struct RecordedVariant {
    model: String,
    #[serde(default)]
    options: ModelOptions,
    #[serde(default)]
    keep_alive: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RecordedScenario {
    name: String,
    seed: u64,
    /// Folders written before scenarios named their baseline used the variant `baseline`.
    #[serde(default = "default_baseline")]
    baseline: String,
    arms: Vec<Arm>,
    #[serde(default)]
    order: Option<Order>,
    #[serde(default)]
    variants: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    gates: Vec<Gate>,
    #[serde(default)]
    workload: Option<serde_json::Value>,
    #[serde(default)]
    agents: Option<Vec<RunAgent>>,
    #[serde(default)]
    server: Option<RecordedServerConfig>,
    #[serde(default)]
    slo: Option<Slo>,
    #[serde(default)]
    stopping: Option<Stopping>,
    #[serde(default)]
    trials: Option<u32>,
}

/// An agent as the manifest recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunAgent {
    /// Name.
    pub name: String,
    /// System prompt.
    pub persona: String,
    /// The agent whose report it reads.
    #[serde(default)]
    pub consumes: Option<String>,
    /// Its place in an `agent_graph` (`after`, `fan_out`, `turns`, `tool`, …), as written.
    #[serde(flatten)]
    pub shape: BTreeMap<String, serde_json::Value>,
}

/// The server as the manifest recorded it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunServer {
    /// The API harness spoke (`ollama`, `openai`, `sim`).
    #[serde(default)]
    pub backend: Option<BackendKind>,
    /// Base URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Server version string.
    #[serde(default)]
    pub version: Option<String>,
    /// The model that answered, as the server names it.
    #[serde(default)]
    pub served_model: Option<String>,
    /// Digest of the model as the server stores it.
    #[serde(default)]
    pub model_digest: Option<String>,
    /// The model's layers and trained context, as the server describes it.
    #[serde(default)]
    pub model_shape: Option<ModelShape>,
    /// What else the server said of itself and the model (llama.cpp's `/props` and
    /// `/slots`: context per slot, slots; Ollama's `/api/show` details).
    #[serde(default)]
    pub model_details: Option<serde_json::Value>,
}

/// What one variant's requests carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantSetup {
    /// Variant name.
    pub name: String,
    /// The model tag requested.
    pub model: String,
    /// The options sent, e.g. `num_ctx=512, temperature=1`, or `server defaults`.
    pub sent: String,
    /// Settings of the variant the backend cannot send, left unsent as the scenario allowed.
    pub not_sent: Vec<String>,
    /// The `num_ctx` it asked for, when it sent one.
    #[serde(default)]
    pub num_ctx: Option<u32>,
    /// The `num_gpu` it asked for, when it sent one.
    #[serde(default)]
    pub num_gpu: Option<u32>,
}

/// What a run ran: the server and model, the options each variant sent, the workload,
/// its agents and the harness that sent the prompts. `None` or empty where the manifest
/// (written by an older harness) does not say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSetup {
    /// The server that answered.
    #[serde(default)]
    pub server: Option<RunServer>,
    /// Per variant, what its requests carried.
    #[serde(default)]
    pub variants: Vec<VariantSetup>,
    /// The scenario's `workload` (kind and data folder).
    pub workload: Option<serde_json::Value>,
    /// The agents in pipeline order.
    #[serde(default)]
    pub agents: Option<Vec<RunAgent>>,
    /// The harness version, which fixes the workflow's prompt templates.
    #[serde(default)]
    pub harness_version: Option<String>,
    /// GPU telemetry: recorded, unavailable (and why) or off; `None` from a harness that
    /// did not sample GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_telemetry: Option<TelemetryInfo>,
    /// The server's metrics page: recorded, unavailable (and why) or off; `None` from a
    /// harness that did not scrape it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<ServerMetricsInfo>,
    /// The servers, in words (`url (version)`; a merged run's `url on host (version)`),
    /// when the trials ran against several (`server.urls`, or the shards of a merged run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
}

fn default_baseline() -> String {
    "baseline".to_owned()
}

/// Everything a results folder holds that reports and gates are computed from.
#[derive(Debug, Clone)]
pub struct RunRecords {
    /// Names, arms, baseline, seed.
    pub meta: RunMeta,
    /// The variants as the manifest recorded them (model, options, …), to tell whether
    /// two runs are comparable.
    pub variants: BTreeMap<String, serde_json::Value>,
    /// The scenario's gates.
    pub gates: Vec<Gate>,
    /// `calls.jsonl`.
    pub calls: Vec<CallRecord>,
    /// `trials.jsonl`.
    pub trials: Vec<TrialRecord>,
}

/// Reads a results folder: `manifest.json`, `calls.jsonl` and `trials.jsonl`.
pub fn load(dir: &Path) -> anyhow::Result<RunRecords> {
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "cannot read {} (is this a harness results folder?)",
            manifest_path.display()
        )
    })?;
    let manifest: RecordedManifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a harness manifest", manifest_path.display()))?;
    let scenario = manifest.scenario;
    let backend = scenario.server.as_ref().map(|s| s.backend);
    let variants = scenario
        .variants
        .iter()
        .filter_map(|(name, v)| {
            let v: RecordedVariant = serde_json::from_value(v.clone()).ok()?;
            let (sent, not_sent) = match backend {
                Some(b) => v.options.as_sent(v.keep_alive.as_deref(), b),
                None => (v.options.clone(), Vec::new()),
            };
            let (num_ctx, num_gpu) = (sent.num_ctx, sent.num_gpu);
            let sent = match &v.keep_alive {
                Some(k) if !not_sent.contains(&"keep_alive") && sent.is_empty() => {
                    format!("keep_alive={k}")
                }
                Some(k) if !not_sent.contains(&"keep_alive") => {
                    format!("{}, keep_alive={k}", sent.label())
                }
                _ => sent.label(),
            };
            Some(VariantSetup {
                name: name.clone(),
                model: v.model,
                sent,
                not_sent: not_sent.into_iter().map(str::to_owned).collect(),
                num_ctx,
                num_gpu,
            })
        })
        .collect();
    let server = manifest.server.map(|s| RunServer {
        backend,
        url: s
            .url
            .or_else(|| scenario.server.as_ref().and_then(|c| c.url.clone())),
        ..s
    });
    let mut servers: Vec<String> = Vec::new();
    let entries = manifest
        .servers
        .iter()
        .map(|s| server_entry(s.url.as_deref(), None, s.version.as_deref()))
        .chain(manifest.merged_from.iter().map(|s| {
            server_entry(
                s.server.as_deref(),
                s.host.as_deref(),
                s.server_version.as_deref(),
            )
        }));
    for entry in entries {
        if !servers.contains(&entry) {
            servers.push(entry);
        }
    }
    if servers.len() < 2 {
        servers.clear();
    }
    let meta = RunMeta {
        scenario: scenario.name,
        seed: scenario.seed,
        baseline: scenario.baseline,
        arms: scenario.arms,
        simulated: manifest.simulated,
        planned_trials: manifest.trials_planned,
        order: scenario.order,
        setup: RunSetup {
            server,
            variants,
            workload: scenario.workload,
            agents: scenario.agents,
            harness_version: manifest.harness_version,
            gpu_telemetry: manifest.gpu_telemetry,
            server_metrics: manifest.server_metrics,
            servers,
        },
        slo: scenario.slo,
        stopping: scenario.stopping.zip(scenario.trials),
    };
    Ok(RunRecords {
        meta,
        variants: scenario.variants,
        gates: scenario.gates,
        calls: read_calls(&dir.join("calls.jsonl"))?,
        trials: read_jsonl(&dir.join("trials.jsonl"))?,
    })
}

/// Reads a JSONL file, skipping a torn last line (a crash mid-write). Any other bad line
/// is an error naming the file and line.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    jsonl(path)?.collect()
}

/// Reads `calls.jsonl` as [`read_jsonl`] does, the names of its records shared.
pub fn read_calls(path: &Path) -> anyhow::Result<Vec<CallRecord>> {
    let mut names = Names::default();
    jsonl(path)?.map(|c| c.map(|c| names.intern(c))).collect()
}

/// The records of a JSONL file one at a time, as [`read_jsonl`] reads them, so a file of a
/// million records is never held as text.
pub fn jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<JsonLines<T>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(JsonLines {
        reader: std::io::BufReader::with_capacity(1 << 16, file),
        path: path.to_owned(),
        line: 0,
        buffer: String::new(),
        done: false,
        item: std::marker::PhantomData,
    })
}

/// The iterator [`jsonl`] returns.
pub struct JsonLines<T> {
    reader: std::io::BufReader<File>,
    path: PathBuf,
    line: usize,
    buffer: String,
    done: bool,
    item: std::marker::PhantomData<fn() -> T>,
}

impl<T: for<'de> Deserialize<'de>> Iterator for JsonLines<T> {
    type Item = anyhow::Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::BufRead;
        while !self.done {
            self.buffer.clear();
            self.line += 1;
            match self.reader.read_line(&mut self.buffer) {
                Ok(0) => self.done = true,
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    let e = anyhow::Error::new(e)
                        .context(format!("cannot read {}", self.path.display()));
                    return Some(Err(e));
                }
            }
            // Only the last line can lack its newline: a line torn by an interrupted write.
            let complete = self.buffer.ends_with('\n');
            let line = self.buffer.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(v) => return Some(Ok(v)),
                Err(_) if !complete => self.done = true,
                Err(e) => {
                    self.done = true;
                    // serde_json counts lines within the one line it was given; say where
                    // in the file instead.
                    let message = e.to_string();
                    let suffix = format!(" at line {} column {}", e.line(), e.column());
                    let message = message.strip_suffix(&suffix).unwrap_or(&message);
                    return Some(Err(anyhow::anyhow!(
                        "{}: line {}, column {}: {message}",
                        self.path.display(),
                        self.line,
                        e.column()
                    )));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_never_sees_a_partly_written_file() {
        // A reader polls while the writer replaces a 1 MB file with another version again
        // and again: every read is one whole version, never a mix or a truncated file.
        let dir = tempfile::tempdir().unwrap();
        let out = ResultsDir::open(dir.path());
        let version = |k: u8| vec![b'a' + k; 1 << 20];
        out.write_atomic("summary.json", &version(0)).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        let reads = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let bytes = std::fs::read(dir.path().join("summary.json")).unwrap();
                    assert_eq!(bytes.len(), 1 << 20, "a truncated file");
                    assert!(bytes.iter().all(|&b| b == bytes[0]), "a mix of versions");
                    reads += 1;
                }
                reads
            });
            for k in 1..=40u8 {
                out.write_atomic("summary.json", &version(k % 20)).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            reader.join().unwrap()
        });
        assert!(reads > 0);
        // Nothing but the file itself is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["summary.json"]);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_broken_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let line = |t: u32| serde_json::to_string(&call(t)).unwrap();
        // A write cut short by a crash: the last line has no newline and no closing brace.
        let torn = format!("{}\n{}\n{}", line(0), line(1), &line(2)[..40]);
        std::fs::write(&path, &torn).unwrap();
        let calls: Vec<CallRecord> = read_jsonl(&path).unwrap();
        assert_eq!(calls.iter().map(|c| c.trial).collect::<Vec<_>>(), [0, 1]);
        // The same bytes in the middle of the file are damage, named by line.
        std::fs::write(
            &path,
            format!("{}\n{}\n{}\n", line(0), &line(2)[..40], line(1)),
        )
        .unwrap();
        let err = read_jsonl::<CallRecord>(&path).unwrap_err().to_string();
        assert!(err.contains("calls.jsonl: line 2, column"), "{err}");
        // A complete last line that does not parse is damage too.
        std::fs::write(&path, format!("{}\n{}\n", line(0), &line(2)[..40])).unwrap();
        assert!(read_jsonl::<CallRecord>(&path).is_err());
    }

    fn call(trial: u32) -> CallRecord {
        serde_json::from_value(serde_json::json!({
            "trial": trial, "round": 0, "phase": "measured", "arm": "a", "variant": "v",
            "slot": 0, "agent": "g", "step": "analysis", "started_at": "t", "offset_ms": 0.0,
            "ok": true, "error_kind": null, "error": null, "ttft_ms": 1.0, "e2e_ms": 2.0,
            "itl_mean_ms": null, "itl_p50_ms": null, "itl_p95_ms": null, "itl_max_ms": null,
            "tpot_ms": null, "output_tokens": 3, "tokens_counted": false, "prompt_tokens": 4,
            "content_chunks": 3, "load_ms": null, "prompt_eval_ms": null, "eval_ms": null,
            "server_total_ms": null, "decode_tps": null, "e2e_tps": 1.5, "queue_ms": null,
            "cold": false, "response_chars": 9
        }))
        .expect("a valid call record")
    }

    #[test]
    fn the_setup_says_what_each_variant_sent() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = |backend: &str| {
            serde_json::json!({
                "simulated": false, "trials_planned": 1, "harness_version": "0.1.0",
                "server": {"url": "http://h", "version": "1", "served_model": "m"},
                "scenario": {
                    "name": "s", "seed": 1, "arms": [], "server": {"backend": backend},
                    "variants": {
                        "a": {"model": "m", "options": {}, "keep_alive": "5m"},
                        "b": {"model": "m", "options": {"num_ctx": 512, "temperature": 0.5}, "keep_alive": null}
                    }
                }
            })
        };
        for f in ["calls.jsonl", "trials.jsonl"] {
            std::fs::write(tmp.path().join(f), "").unwrap();
        }
        let sent = |backend: &str| {
            std::fs::write(
                tmp.path().join("manifest.json"),
                manifest(backend).to_string(),
            )
            .unwrap();
            let setup = load(tmp.path()).unwrap().meta.setup;
            setup
                .variants
                .iter()
                .map(|v| (v.sent.clone(), v.not_sent.join(",")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sent("ollama"),
            [
                ("keep_alive=5m".to_owned(), String::new()),
                ("num_ctx=512, temperature=0.5".to_owned(), String::new())
            ]
        );
        assert_eq!(
            sent("openai"),
            [
                ("server defaults".to_owned(), "keep_alive".to_owned()),
                ("temperature=0.5".to_owned(), "num_ctx".to_owned())
            ]
        );
    }

    #[test]
    fn a_resumed_writer_appends_rows_under_the_one_header() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ResultsDir::open(tmp.path());
        for trial in [0, 1] {
            // A new writer per trial, as a run and then its resumption open the files.
            let mut writer = RecordWriter::create(&dir).unwrap();
            writer.write(&Event::Call(Box::new(call(trial)))).unwrap();
        }
        let text = std::fs::read_to_string(tmp.path().join("calls.csv")).unwrap();
        assert_eq!(text.matches("trial,round,phase").count(), 1, "{text}");
        let rows: Vec<CallRecord> = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows, [call(0), call(1)]);
        let jsonl: Vec<CallRecord> = read_jsonl(&tmp.path().join("calls.jsonl")).unwrap();
        assert_eq!(jsonl, rows);
    }
}
