//! What each variant did at each load level (`load:`): request and token throughput,
//! goodput, latency percentiles, whether the client kept its schedule, and the level at
//! which more load stopped buying throughput (saturation).

use serde::{Deserialize, Serialize};

use super::GroupSummary;
use super::samples::measured;
use crate::metrics::CallRecord;
use crate::results::RunMeta;
use crate::scenario::{LATE_MS, LoadLevel, Metric};

/// A step up in load saturates when throughput grows by less than this share of the load's
/// growth while median latency grows by more than [`SATURATION_LATENCY_GROWTH`]. In a closed
/// loop throughput grows sublinearly by nature (each stream slows as more share the
/// server), so only a step that buys little counts: 4× the workers for under +45% requests/s.
pub const SATURATION_GAIN: f64 = 0.15;

/// Median latency growth a closed-loop step must also show.
pub const SATURATION_LATENCY_GROWTH: f64 = 0.10;

/// In an open loop, throughput follows the offered rate until the server falls behind: a
/// step that buys less than half the added rate while latency (from the schedule) grows by
/// half is past the knee.
pub const OPEN_SATURATION_GAIN: f64 = 0.5;

/// Median latency growth an open-loop step must also show.
pub const OPEN_SATURATION_LATENCY_GROWTH: f64 = 0.5;

/// Share of a level's requests sent late beyond which the report says the client fell
/// behind its schedule.
pub const BEHIND_SHARE: f64 = 0.01;

/// One variant at one load level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingRow {
    /// The arm without its level (`chimera` for `chimera@c16`).
    pub arm: String,
    /// The arm at this level.
    pub level_arm: String,
    /// Variant.
    pub variant: String,
    /// The level.
    pub level: LoadLevel,
    /// Measured trials.
    pub trials: usize,
    /// Measured requests (warm-up excluded), failed ones included.
    pub requests: usize,
    /// Of those, failed.
    pub failed: usize,
    /// Mean over trials of requests completed per second.
    pub req_per_s: Option<f64>,
    /// Mean over trials of output tokens per second, all streams.
    pub throughput_tps: Option<f64>,
    /// Mean over trials of requests per second that met every objective.
    pub goodput_rps: Option<f64>,
    /// Pooled TTFT median and 99th percentile, ms (from the schedule in an open loop).
    pub ttft_ms: Option<(f64, f64)>,
    /// Pooled end-to-end median and 99th percentile, ms (from the schedule in an open
    /// loop).
    pub e2e_ms: Option<(f64, f64)>,
    /// Open loop: requests sent more than `LATE_MS` behind schedule.
    pub late: usize,
    /// Open loop: the latest a request was sent, ms behind schedule.
    pub max_lag_ms: Option<f64>,
}

/// Where a variant's throughput stopped growing with the load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    /// The arm without its level.
    pub arm: String,
    /// Variant.
    pub variant: String,
    /// The level past which more load bought little throughput; `None` when every step
    /// up still did.
    pub level: Option<LoadLevel>,
    /// In words, with the numbers.
    pub note: String,
}

/// The serving rows of every load arm, levels in ascending order per (arm, variant);
/// the saturation of each; and a warning when the client fell behind its schedule.
pub fn serving(
    meta: &RunMeta,
    groups: &[GroupSummary],
    calls: &[CallRecord],
) -> (Vec<ServingRow>, Vec<Saturation>, Option<String>) {
    let mut rows = Vec::new();
    for arm in &meta.arms {
        let Some(level) = arm.load else { continue };
        for variant in arm.distinct_variants() {
            let Some(g) = groups
                .iter()
                .find(|g| g.arm == arm.name && g.variant == variant)
            else {
                continue;
            };
            let all = measured(calls, &arm.name, variant);
            let lags: Vec<f64> = all.iter().filter_map(|c| c.schedule_lag_ms).collect();
            let open = matches!(level, LoadLevel::Rate(_));
            let (ttft, e2e) = if open {
                (Metric::SchedTtftMs, Metric::SchedE2eMs)
            } else {
                (Metric::TtftMs, Metric::E2eMs)
            };
            let mean = |m: Metric| g.per_trial(m).map(|d| d.mean);
            let p50_p99 = |m: Metric| g.pooled(m).map(|p| (p.p50, p.p99));
            rows.push(ServingRow {
                arm: arm.base_name().to_owned(),
                level_arm: arm.name.clone(),
                variant: variant.to_owned(),
                level,
                trials: g.trials,
                requests: g.calls,
                failed: g.failed_calls,
                req_per_s: mean(Metric::ReqPerS),
                throughput_tps: mean(Metric::ThroughputTps),
                goodput_rps: mean(Metric::GoodputRps),
                ttft_ms: p50_p99(ttft),
                e2e_ms: p50_p99(e2e),
                late: lags.iter().filter(|&&l| l > LATE_MS).count(),
                max_lag_ms: lags.iter().copied().reduce(f64::max),
            });
        }
    }
    rows.sort_by(|a, b| {
        (&a.arm, &a.variant)
            .cmp(&(&b.arm, &b.variant))
            .then(a.level.value().total_cmp(&b.level.value()))
    });
    let mut saturation = Vec::new();
    for series in rows.chunk_by(|a, b| a.arm == b.arm && a.variant == b.variant) {
        if series.len() > 1 {
            saturation.push(saturates(series));
        }
    }
    let behind: Vec<String> = rows
        .iter()
        .filter(|r| r.requests > 0 && r.late as f64 > BEHIND_SHARE * r.requests as f64)
        .map(|r| {
            format!(
                "{} at {}: {} of {} requests sent more than {LATE_MS} ms late (latest {:.0} ms)",
                r.variant,
                r.level.describe(),
                r.late,
                r.requests,
                r.max_lag_ms.unwrap_or_default()
            )
        })
        .collect();
    let warning = (!behind.is_empty()).then(|| {
        format!(
            "the client fell behind its schedule: {}. Requests were held back by `max_inflight` or a client that could not keep up; sched_ttft_ms and sched_e2e_ms count the wait, ttft_ms and e2e_ms do not",
            behind.join("; ")
        )
    });
    (rows, saturation, warning)
}

/// The saturation of one (arm, variant) series, levels ascending: the first level after
/// which throughput grew by less than [`SATURATION_GAIN`] of the load's growth while the
/// median latency grew by more than [`SATURATION_LATENCY_GROWTH`] (in an open loop
/// [`OPEN_SATURATION_GAIN`] and [`OPEN_SATURATION_LATENCY_GROWTH`]).
fn saturates(series: &[ServingRow]) -> Saturation {
    let first = &series[0];
    let last = &series[series.len() - 1];
    let mut out = Saturation {
        arm: first.arm.clone(),
        variant: first.variant.clone(),
        level: None,
        note: format!(
            "throughput still grew up to {} ({} levels)",
            last.level.describe(),
            series.len()
        ),
    };
    for pair in series.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (Some(ta), Some(tb), Some((la, _)), Some((lb, _))) =
            (a.req_per_s, b.req_per_s, a.e2e_ms, b.e2e_ms)
        else {
            continue;
        };
        let (share, latency_growth) = match b.level {
            LoadLevel::Concurrency(_) => (SATURATION_GAIN, SATURATION_LATENCY_GROWTH),
            LoadLevel::Rate(_) => (OPEN_SATURATION_GAIN, OPEN_SATURATION_LATENCY_GROWTH),
        };
        let load_growth = b.level.value() / a.level.value() - 1.0;
        let gain = tb / ta - 1.0;
        let latency = lb / la - 1.0;
        if gain < share * load_growth && latency > latency_growth {
            out.level = Some(a.level);
            out.note = format!(
                "saturates at {}: at {} throughput changed by {:+.0}% ({:.2} → {:.2} req/s) while median latency rose {:+.0}%",
                a.level.describe(),
                b.level.describe(),
                gain * 100.0,
                ta,
                tb,
                latency * 100.0
            );
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(level: u32, req_per_s: f64, e2e_p50: f64) -> ServingRow {
        ServingRow {
            arm: "chimera".into(),
            level_arm: format!("chimera@c{level}"),
            variant: "chimera".into(),
            level: LoadLevel::Concurrency(level),
            trials: 3,
            requests: 30,
            failed: 0,
            req_per_s: Some(req_per_s),
            throughput_tps: None,
            goodput_rps: None,
            ttft_ms: None,
            e2e_ms: Some((e2e_p50, e2e_p50 * 2.0)),
            late: 0,
            max_lag_ms: None,
        }
    }

    #[test]
    fn saturation_is_where_throughput_stops_following_the_load() {
        // Linear up to 4 workers, then 16 workers buy +20% at 3× the latency.
        let s = saturates(&[
            row(1, 5.0, 200.0),
            row(4, 19.0, 210.0),
            row(16, 22.8, 700.0),
        ]);
        assert_eq!(s.level, Some(LoadLevel::Concurrency(4)));
        assert!(s.note.contains("saturates at concurrency 4"), "{}", s.note);
        assert!(s.note.contains("+20%"), "{}", s.note);
        // Still scaling: no saturation.
        let s = saturates(&[
            row(1, 5.0, 200.0),
            row(4, 19.0, 210.0),
            row(16, 70.0, 230.0),
        ]);
        assert_eq!(s.level, None);
        assert!(
            s.note.contains("still grew up to concurrency 16"),
            "{}",
            s.note
        );
        // Throughput flat but latency flat too (an idle client, not a full server): not
        // saturation.
        let s = saturates(&[row(1, 5.0, 200.0), row(4, 5.2, 205.0)]);
        assert_eq!(s.level, None);
        // An open loop: throughput follows the rate until the server falls behind.
        let rate = |r: f64, done: f64, e2e: f64| ServingRow {
            level: LoadLevel::Rate(r),
            ..row(1, done, e2e)
        };
        let s = saturates(&[
            rate(4.0, 4.9, 270.0),
            rate(12.0, 10.3, 390.0),
            rate(24.0, 12.9, 1170.0),
        ]);
        assert_eq!(s.level, Some(LoadLevel::Rate(12.0)));
        assert!(
            s.note.contains("at 24 req/s throughput changed by +25%"),
            "{}",
            s.note
        );
        // Less throughput than added rate, but latency steady: a noisy step, not saturation.
        let s = saturates(&[rate(4.0, 4.9, 270.0), rate(12.0, 10.3, 300.0)]);
        assert_eq!(s.level, None);
    }
}
