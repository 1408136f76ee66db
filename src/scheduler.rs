//! Executes a plan on tokio: each server's trials one after another (the servers of a
//! run with several at once), the pipelines of each trial's arm concurrently; every record
//! goes to the collector, a blocking task that alone owns the files.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::FutureExt;
use futures::future::join_all;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, ChatRequest, LoadedModel, ServerInfo};
use crate::ingest::{self, DataSummary};
use crate::metrics::{CallContext, CallRecord, Names, utc_timestamp};
use crate::plan::{Phase, Plan, PlannedTrial};
use crate::results::{Event, RecordWriter, TrialRecord};
use crate::scenario::{Scenario, Variant};
use crate::summary::sequential;
use crate::telemetry::server::{ScrapeSink, Scraper, ServerMetricsInfo};
use crate::telemetry::{GpuTelemetry, Sampler, TelemetryInfo};
use crate::workflow::{PipelineSpec, run_job};

/// Everything the collector kept, for the summary.
#[derive(Debug, Default)]
pub struct Collected {
    /// All call records, in arrival order.
    pub calls: Vec<CallRecord>,
    /// All trial records, in plan order.
    pub trials: Vec<TrialRecord>,
}

/// How a scheduled run ended.
#[derive(Debug)]
pub struct RunOutcome {
    /// What was recorded.
    pub collected: Collected,
    /// Every planned trial ran, or the stopping rule decided.
    pub complete: bool,
    /// The stopping rule ended the run early.
    pub stopped_by_rule: bool,
    /// What the GPU sampler recorded, and what it cost, when it ran.
    pub telemetry: Option<TelemetryInfo>,
    /// What the server's metrics scrapes recorded, when they ran.
    pub server_metrics: Option<ServerMetricsInfo>,
}

/// Scraping the server's metrics page: how often between trials' ends, and where each
/// scrape goes.
pub struct ServerMetrics {
    /// Time between scrapes (each trial's start and end are scraped as well).
    pub interval: std::time::Duration,
    /// Called with every scrape.
    pub sink: ScrapeSink,
}

/// What runs beside the calls: the GPU sampler and the server's metrics scrapes.
#[derive(Default)]
pub struct Beside {
    /// GPU telemetry, when it is recorded.
    pub gpu: Option<GpuTelemetry>,
    /// The server's metrics, when they are scraped.
    pub server: Option<ServerMetrics>,
}

/// The collector: writes each event as it arrives and keeps the records (beside those of
/// a resumed run's earlier trials), counting the trials it has written so that a stopping
/// rule can read them. It runs on a blocking thread of its own, so writing and syncing
/// files never holds up a runtime worker that is reading another call's stream.
fn collect(
    mut writer: RecordWriter,
    mut rx: mpsc::Receiver<Event>,
    collected: Arc<Mutex<Collected>>,
    written: tokio::sync::watch::Sender<usize>,
) -> anyhow::Result<()> {
    let mut names = Names::default();
    while let Some(event) = rx.blocking_recv() {
        writer.write(&event)?;
        let mut kept = collected.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Call(r) => kept.calls.push(names.intern(*r)),
            Event::Trial(t) => {
                kept.trials.push(*t);
                drop(kept);
                written.send_modify(|n| *n += 1);
            }
            Event::AgentReport { .. } => {}
        }
    }
    Ok(())
}

/// Whether the stopping rule decides after the measured round that `trial` ended: the
/// records so far (waited for until the collector has written every trial sent), the
/// per-round ratios, and the looks up to this round.
async fn rule_decides(
    scenario: &Scenario,
    trial: &PlannedTrial,
    next: Option<&PlannedTrial>,
    collected: &Mutex<Collected>,
    written: &mut tokio::sync::watch::Receiver<usize>,
    sent: usize,
) -> bool {
    let Some(rule) = &scenario.stopping else {
        return false;
    };
    let round_ends = trial.phase == Phase::Measured
        && next.is_none_or(|n| n.round != trial.round || n.phase != trial.phase);
    let rounds = trial.round + 1;
    if !round_ends || rounds % rule.every != 0 {
        return false;
    }
    if written.wait_for(|n| *n >= sent).await.is_err() {
        return false; // the collector failed; its error is reported at the end
    }
    let kept = collected.lock().unwrap_or_else(|e| e.into_inner());
    let pairs = sequential::round_ratios(rule, &kept.calls, &kept.trials, scenario.slo.as_ref());
    let looks = sequential::look(rule, &pairs, rounds, scenario.trials);
    looks
        .last()
        .is_some_and(|l| l.decision != crate::stats::sequential::Decision::Continue)
}

/// The configuration a server must have loaded to serve a variant (Ollama reloads the
/// model when any of these change).
fn load_key(v: &Variant) -> (String, Option<u32>, Option<u32>) {
    (v.model.clone(), v.options.num_ctx, v.options.num_gpu)
}

/// One server of the run and the trials it runs: the whole plan with one server, the
/// trials the plan gives it with several (`server.urls`).
pub struct Lane {
    /// Its client.
    pub backend: Arc<dyn Backend>,
    /// What it is.
    pub server: Arc<ServerInfo>,
    /// Its URL, recorded in each of its trials when the run has several servers.
    pub node: Option<String>,
}

/// What every lane of a run shares.
struct Shared<'a> {
    scenario: Arc<Scenario>,
    plan: &'a Plan,
    done: &'a std::collections::BTreeSet<u32>,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
    hard_stop: CancellationToken,
    simulated: bool,
    run_start: Instant,
    progress: ProgressBar,
    gpu: Option<Arc<Sampler>>,
    /// Each lane's scraper, in the lanes' order; empty when no metrics are scraped.
    scrapers: Vec<Arc<Scraper>>,
    collected: Arc<Mutex<Collected>>,
    /// Each trial's run number of each pipeline: how many times its variant had run in
    /// the plan up to it, so reports are numbered as in plan order however lanes overlap.
    run_numbers: std::collections::BTreeMap<u32, Vec<u32>>,
}

/// How a lane ended: the trials it ran (or found done) and whether the stopping rule
/// decided.
struct LaneEnd {
    ran: usize,
    stopped_by_rule: bool,
}

/// Runs the plan, skipping the trials in `done` (a resumed run, whose records `prior` holds
/// and end at `clock_from_ms` on the run's clock): each lane's trials one after another,
/// the lanes at once. Stops starting trials once `cancel` fires; the trials in flight end.
#[allow(clippy::too_many_arguments)] // each is a distinct input of the run; see run::run
pub async fn execute(
    scenario: Arc<Scenario>,
    plan: &Plan,
    done: &std::collections::BTreeSet<u32>,
    lanes: Vec<Lane>,
    writer: RecordWriter,
    cancel: CancellationToken,
    simulated: bool,
    show_progress: bool,
    beside: Beside,
    prior: Collected,
    clock_from_ms: f64,
) -> anyhow::Result<RunOutcome> {
    anyhow::ensure!(!lanes.is_empty(), "a run needs a server");
    let (tx, rx) = mpsc::channel::<Event>(1024);
    // A resumed run's clock goes on from where its folder's records end, so every offset
    // in the folder (calls, trials, GPU samples, scrapes) counts on one clock; the time
    // the run was stopped is not on it.
    let run_start = Instant::now()
        .checked_sub(std::time::Duration::from_secs_f64(clock_from_ms / 1e3))
        .unwrap_or_else(Instant::now);
    let collected = Arc::new(Mutex::new(prior));
    let (written_tx, written) = tokio::sync::watch::channel(0usize);
    let collector = {
        let collected = collected.clone();
        tokio::task::spawn_blocking(move || collect(writer, rx, collected, written_tx))
    };
    // On its own thread, on the records' clock.
    let gpu = match beside.gpu {
        Some(g) => Some(Arc::new(Sampler::start(
            g.source, g.interval, run_start, g.sink,
        )?)),
        None => None,
    };
    let scrapers = match beside.server {
        Some(m) => start_scrapers(&lanes, m, run_start),
        None => Vec::new(),
    };
    let progress = if show_progress {
        let bar = ProgressBar::new(plan.trials.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trials  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    // After Ctrl-C/SIGTERM the trials in flight may finish for `stop_grace_s`; then their
    // remaining calls are cancelled (and recorded as such).
    let hard_stop = CancellationToken::new();
    {
        let (cancel, hard_stop) = (cancel.clone(), hard_stop.clone());
        let grace = std::time::Duration::from_secs_f64(scenario.stop_grace_s);
        tokio::spawn(async move {
            cancel.cancelled().await;
            tokio::time::sleep(grace).await;
            hard_stop.cancel();
        });
    }
    let mut counts: std::collections::BTreeMap<&str, u32> = Default::default();
    let run_numbers = plan
        .trials
        .iter()
        .map(|t| {
            let numbers = t
                .variants
                .iter()
                .map(|v| {
                    let n = counts.entry(v).or_insert(0);
                    *n += 1;
                    *n
                })
                .collect();
            (t.trial, numbers)
        })
        .collect();
    let shared = Shared {
        scenario,
        plan,
        done,
        tx,
        cancel,
        hard_stop,
        simulated,
        run_start,
        progress,
        gpu,
        scrapers: scrapers.iter().map(|(s, _)| s.clone()).collect(),
        collected,
        run_numbers,
    };
    let ends = futures::future::try_join_all(
        lanes
            .iter()
            .enumerate()
            .map(|(k, lane)| run_lane(&shared, k as u32, lane, written.clone())),
    )
    .await?;
    let Shared {
        progress,
        gpu,
        collected,
        tx,
        ..
    } = shared;
    progress.finish_and_clear();
    drop(tx);
    let telemetry = gpu
        .and_then(|g| Arc::try_unwrap(g).ok())
        .map(Sampler::finish);
    let server_metrics = ServerMetricsInfo::combine(
        scrapers
            .into_iter()
            .map(|(scraper, ticking)| {
                ticking.abort();
                scraper.info()
            })
            .collect(),
    );
    collector.await??;
    let collected = std::mem::take(&mut *collected.lock().unwrap_or_else(|e| e.into_inner()));
    let stopped_by_rule = ends.iter().any(|e| e.stopped_by_rule);
    Ok(RunOutcome {
        collected,
        complete: ends.iter().map(|e| e.ran).sum::<usize>() == plan.trials.len() || stopped_by_rule,
        stopped_by_rule,
        telemetry,
        server_metrics,
    })
}

/// Scrapes are small HTTP requests: on the runtime, at each trial's start and end, and
/// every interval from a task of their own; a scraper per server, all writing to one sink,
/// each scrape naming its server when there are several.
fn start_scrapers(
    lanes: &[Lane],
    m: ServerMetrics,
    run_start: Instant,
) -> Vec<(Arc<Scraper>, tokio::task::JoinHandle<()>)> {
    let sink = Arc::new(Mutex::new(m.sink));
    lanes
        .iter()
        .map(|lane| {
            let fetch = {
                let backend = lane.backend.clone();
                Box::new(move || {
                    let page = backend.metrics();
                    async move {
                        page.await
                            .unwrap_or_else(|| Err("no metrics API".to_owned()))
                    }
                    .boxed()
                })
            };
            let shared_sink: ScrapeSink = {
                let sink = sink.clone();
                Box::new(move |row| (sink.lock().unwrap_or_else(|e| e.into_inner()))(row))
            };
            let interval_ms = m.interval.as_secs_f64() * 1e3;
            let mut scraper = Scraper::new(fetch, run_start, interval_ms, shared_sink);
            if let Some(node) = &lane.node {
                scraper = scraper.of_server(node.clone());
            }
            let scraper = Arc::new(scraper);
            let ticking = {
                let scraper = scraper.clone();
                let interval = m.interval;
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(interval);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticks.tick().await;
                        scraper.scrape().await;
                    }
                })
            };
            (scraper, ticking)
        })
        .collect()
}

/// Runs the trials of lane `index` (every trial of a one-server plan) in plan order.
async fn run_lane(
    shared: &Shared<'_>,
    index: u32,
    lane: &Lane,
    mut written: tokio::sync::watch::Receiver<usize>,
) -> anyhow::Result<LaneEnd> {
    let Shared {
        scenario,
        tx,
        cancel,
        hard_stop,
        progress,
        run_start,
        ..
    } = shared;
    let run_start = *run_start;
    let backend = &lane.backend;
    let scraper = shared.scrapers.get(index as usize);
    let trials: Vec<&PlannedTrial> = shared
        .plan
        .trials
        .iter()
        .filter(|t| t.server.unwrap_or(0) == index)
        .collect();
    let mut sent_trials = 0usize;
    let mut last_loaded: Option<(String, Option<u32>, Option<u32>)> = None;
    let mut ran = 0usize;
    for (i, &trial) in trials.iter().enumerate() {
        if shared.done.contains(&trial.trial) {
            // The server may hold anything now.
            last_loaded = None;
            ran += 1;
            progress.inc(1);
            continue;
        }
        if cancel.is_cancelled() {
            break;
        }
        progress.set_message(format!("{} ({:?})", trial.arm, trial.phase).to_lowercase());
        let variants: Vec<Variant> = trial
            .variants
            .iter()
            .map(|v| scenario.variant(v).clone())
            .collect();

        // Prime when the arm needs one configuration and the server may hold another (it
        // last served a different one, or a mixed arm, or nothing yet), so the reload does
        // not land in a measured call. Mixed arms reload by nature: that is what they cost.
        let keys: std::collections::BTreeSet<_> = variants.iter().map(load_key).collect();
        let mut primed = false;
        let mut loaded_after_prime = None;
        if keys.len() == 1 {
            let key = keys.iter().next().cloned();
            if scenario.prime_on_switch && key != last_loaded {
                prime(&variants[0], trial, backend.as_ref(), run_start, tx).await;
                primed = true;
                loaded_after_prime = server_holds(backend.as_ref()).await;
            }
            last_loaded = key;
        } else {
            last_loaded = None;
        }

        let scraped_from = match scraper {
            Some(s) => s.scrape().await,
            None => None,
        };
        let data_dir = scenario.workload.data_dir.clone();
        let started_at = utc_timestamp();
        let launched = Instant::now();
        let offset_ms = launched.saturating_duration_since(run_start).as_secs_f64() * 1e3;
        // Each pipeline is its own task, so one pipeline's work never delays reading
        // another's stream.
        let mut tasks = Vec::with_capacity(variants.len());
        for (slot, variant) in variants.into_iter().enumerate() {
            let run_number = shared.run_numbers[&trial.trial][slot];
            let backend = backend.clone();
            let tx = tx.clone();
            let data_dir = data_dir.clone();
            let scenario = scenario.clone();
            let trial = trial.clone();
            let hard_stop = hard_stop.clone();
            let server = lane.server.clone();
            let simulated = shared.simulated;
            tasks.push(tokio::spawn(async move {
                let ingest_started = Instant::now();
                let data = match data_dir {
                    Some(dir) => tokio::task::spawn_blocking(move || ingest::scan(&dir))
                        .await
                        .map_err(anyhow::Error::from)
                        .and_then(|r| r)
                        .unwrap_or_else(|e| {
                            tracing::warn!("ingest failed: {e:#}");
                            DataSummary::default()
                        }),
                    None => DataSummary::default(),
                };
                let spec = PipelineSpec {
                    scenario,
                    trial,
                    variant,
                    slot: slot as u32,
                    run_number,
                    data,
                    ingest_ms: ingest_started.elapsed().as_secs_f64() * 1e3,
                    run_start,
                    simulated,
                    server,
                    hard_stop,
                };
                run_job(spec, backend, tx).await
            }));
        }
        let mut results = Vec::with_capacity(tasks.len());
        for joined in join_all(tasks).await {
            results.push(joined.map_err(|e| anyhow::anyhow!("a pipeline task failed: {e}"))?);
        }
        let wall_ms = launched.elapsed().as_secs_f64() * 1e3;
        let gpu_window = match &shared.gpu {
            Some(g) => {
                // Wait (at most three intervals, never blocking a worker) for the sample
                // after the trial's end, so its energy is interpolated at the edge.
                let end = offset_ms + wall_ms;
                let deadline = Instant::now() + 3 * g.interval();
                while !g.covers(end) && Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                g.trial(offset_ms, end)
            }
            None => None,
        };
        let server_window = match (scraper, scraped_from) {
            (Some(s), Some(from)) => match s.scrape().await {
                Some(to) => s.trial(from, to),
                None => None,
            },
            _ => None,
        };
        let loaded_after = server_holds(backend.as_ref()).await;
        let record = TrialRecord {
            trial: trial.trial,
            round: trial.round,
            phase: trial.phase,
            arm: trial.arm.clone(),
            variants: trial.variants.clone(),
            started_at,
            wall_ms,
            ok: results.iter().all(|r| r.ok),
            pipelines: results,
            primed,
            offset_ms: Some(offset_ms),
            loaded_after_prime,
            loaded_after,
            gpu: gpu_window,
            server: server_window,
            node: lane.node.clone(),
        };
        if tx.send(Event::Trial(Box::new(record))).await.is_err() {
            break; // the collector failed; its error is reported at the end
        }
        sent_trials += 1;
        ran += 1;
        progress.inc(1);
        let next = trials.get(i + 1).copied();
        if rule_decides(
            scenario,
            trial,
            next,
            &shared.collected,
            &mut written,
            sent_trials,
        )
        .await
        {
            return Ok(LaneEnd {
                ran,
                stopped_by_rule: true,
            });
        }
    }
    Ok(LaneEnd {
        ran,
        stopped_by_rule: false,
    })
}

/// What the server holds in memory now, when its API can say; a failure to ask is logged
/// and the run goes on.
async fn server_holds(backend: &dyn Backend) -> Option<Vec<LoadedModel>> {
    match backend.loaded().await? {
        Ok(models) => Some(models),
        Err(e) => {
            tracing::warn!("could not ask the server what it holds: {e}");
            None
        }
    }
}

/// One tiny call that makes the server load the variant's configuration.
async fn prime(
    variant: &Variant,
    trial: &PlannedTrial,
    backend: &dyn Backend,
    run_start: Instant,
    tx: &mpsc::Sender<Event>,
) {
    let mut options = variant.options.clone();
    options.num_predict = Some(1);
    let started_at = utc_timestamp();
    let outcome = backend
        .chat(ChatRequest {
            model: &variant.model,
            history: &[],
            ignore_eos: false,
            system: "You are a helpful assistant.",
            user: "Reply with OK.",
            options: &options,
            keep_alive: variant.keep_alive.as_deref(),
        })
        .await;
    // Priming is never measured, whatever phase its trial is in.
    let ctx = CallContext {
        phase: Phase::Warmup,
        ..CallContext::of(trial, &variant.name, 0, "-", "prime")
    };
    let _ = tx
        .send(Event::Call(Box::new(
            outcome.record(&ctx, run_start, started_at),
        )))
        .await;
}
