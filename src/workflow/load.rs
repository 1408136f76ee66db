//! A job at a load level (`load:`): the scenario's prompt set sent at a chosen load.
//!
//! - **Closed loop** (`concurrency: C`): C workers, each sending its next request as soon
//!   as its previous one ends, so C requests are in flight at every moment but the ends;
//!   `ramp_up_s` spreads the workers' starts so they do not send in one burst.
//! - **Open loop** (`rate: R`): every request's send time is fixed before the first is
//!   sent ([`plan::arrivals`]), so a slow server cannot slow the arrivals down (no
//!   coordinated omission). A request due while `max_inflight` requests are in flight,
//!   or when the client itself falls behind, is sent late; its record keeps how late
//!   (`schedule_lag_ms`), and the `sched_*` metrics count latency from when it was due.
//!
//! Request k is the k-th of the job in send order, drawn as the `prompts` workload draws
//! it, so every variant of a round sends the same requests; the first `warmup_requests`
//! are recorded as warm-up and left out of the statistics.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::job::Span;
use super::prompts::{Sent, send};
use super::{Caller, metrics_row, report_header};
use crate::metrics::CallRecord;
use crate::plan;
use crate::results::PipelineResult;
use crate::rng::{hash_bytes, mix64};
use crate::scenario::prompts::PromptSet;
use crate::scenario::{LATE_MS, Load, LoadLevel};

/// Runs the job at `level`.
pub(crate) async fn run(caller: Caller, level: LoadLevel) -> PipelineResult {
    let spec = caller.spec.clone();
    let (Some(set), Some(load)) = (
        spec.scenario.workload.prompts.clone(),
        spec.scenario.load.clone(),
    ) else {
        return caller.result(&[], &[], 0.0, false);
    };
    let set = Arc::new(set);
    let launched = Instant::now();
    let mut records = match level {
        LoadLevel::Concurrency(c) => closed(&caller, &set, &load, c, launched).await,
        LoadLevel::Rate(rate) => open(&caller, &set, &load, rate, launched).await,
    };
    let wall_ms = launched.elapsed().as_secs_f64() * 1e3;
    records.sort_by(|a, b| a.offset_ms.total_cmp(&b.offset_ms));
    let refs: Vec<&CallRecord> = records.iter().collect();
    // The level is one span: its requests overlap, so its time is the LLM's throughout.
    let span = Span {
        node: super::prompts::agent(&spec).0.to_owned(),
        instance: 0,
        start: launched,
        end: Instant::now(),
        llm_ms: wall_ms,
        tool_ms: 0.0,
        after: Vec::new(),
    };
    let planned = load.requests.map(|n| n as usize);
    let complete = planned.is_none_or(|n| records.len() == n);
    let result = caller.result(&refs, &[span], wall_ms, complete);

    let mut md = report_header(&spec);
    let measured: Vec<&CallRecord> = refs
        .iter()
        .copied()
        .filter(|r| r.phase == crate::plan::Phase::Measured)
        .collect();
    let _ = writeln!(
        md,
        "## Load: {}\n- {} requests sent ({} warm-up), in {:.2}s\n",
        level.describe(),
        records.len(),
        records.len() - measured.len(),
        wall_ms / 1e3
    );
    let lags: Vec<f64> = records.iter().filter_map(|r| r.schedule_lag_ms).collect();
    if let Some(max) = lags.iter().copied().reduce(f64::max) {
        let late = lags.iter().filter(|&&l| l > LATE_MS).count();
        let _ = writeln!(
            md,
            "- Sent behind schedule by more than {LATE_MS} ms: {late} of {} (latest {max:.1} ms)\n",
            lags.len()
        );
    }
    md.push_str("| requests | calls | failed | cold | throughput (tok/s) | TTFT (ms) | total duration (ms) | tokens generated | prompt eval (ms) | eval duration (ms) | load duration (ms) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let _ = writeln!(md, "{}", metrics_row("**measured**", &measured));
    caller.report(md).await;
    result
}

/// `workers` workers, each sending its next request when its previous one ends, until the
/// level's requests are sent or its time is up.
async fn closed(
    caller: &Caller,
    set: &Arc<PromptSet>,
    load: &Load,
    workers: u32,
    launched: Instant,
) -> Vec<CallRecord> {
    let next = Arc::new(AtomicU32::new(0));
    let total = load.requests.unwrap_or(u32::MAX);
    let until = load
        .duration_s
        .map(|d| launched + Duration::from_secs_f64(d));
    let warmup = load.warmup_requests;
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (caller, set, next) = (caller.clone(), set.clone(), next.clone());
            let start = launched
                + Duration::from_secs_f64(load.ramp_up_s * f64::from(worker) / f64::from(workers));
            tokio::spawn(async move {
                let mut records = Vec::new();
                tokio::select! {
                    _ = tokio::time::sleep_until(start.into()) => {}
                    _ = caller.spec.hard_stop.cancelled() => return records,
                }
                loop {
                    if caller.spec.hard_stop.is_cancelled()
                        || until.is_some_and(|t| Instant::now() >= t)
                    {
                        break;
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= total {
                        break;
                    }
                    let how = Sent {
                        instance: Some(worker),
                        warmup: k < warmup,
                        scheduled: None,
                    };
                    records.push(send(&caller, &set, k, how).await);
                }
                records
            })
        })
        .collect();
    let mut records = Vec::new();
    for task in futures::future::join_all(tasks).await {
        match task {
            Ok(r) => records.extend(r),
            Err(e) => tracing::error!("a load worker failed: {e}"),
        }
    }
    records
}

/// Requests sent at the times of a schedule fixed in advance, at most `max_inflight` at
/// once.
async fn open(
    caller: &Caller,
    set: &Arc<PromptSet>,
    load: &Load,
    rate: f64,
    launched: Instant,
) -> Vec<CallRecord> {
    let spec = &caller.spec;
    let t = &spec.trial;
    // The same schedule for every variant of a round (common random numbers).
    let seed = mix64(
        spec.scenario.seed
            ^ hash_bytes(format!("{:?}|{}|{}|{rate}", t.phase, t.round, spec.slot).as_bytes()),
    );
    let schedule = plan::arrivals(rate, load.arrival, load.requests, load.duration_s, seed);
    let permits = Arc::new(Semaphore::new(load.max_inflight as usize));
    let mut tasks = Vec::with_capacity(schedule.len());
    let stop = &spec.hard_stop;
    for (k, at) in schedule.iter().enumerate() {
        let due = launched + Duration::from_secs_f64(*at);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = stop.cancelled() => break,
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            _ = stop.cancelled() => break,
        };
        let Ok(permit) = permit else { break };
        let (caller, set) = (caller.clone(), set.clone());
        let how = Sent {
            instance: None,
            warmup: (k as u32) < load.warmup_requests,
            scheduled: Some(due),
        };
        tasks.push(tokio::spawn(async move {
            let record = send(&caller, &set, k as u32, how).await;
            drop(permit);
            record
        }));
    }
    let mut records = Vec::with_capacity(tasks.len());
    for task in futures::future::join_all(tasks).await {
        match task {
            Ok(r) => records.push(r),
            Err(e) => tracing::error!("a scheduled request failed: {e}"),
        }
    }
    records
}
