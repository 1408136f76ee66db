//! Timelines: one trial of each arm whose calls overlapped, every call a bar in its agent
//! instance's lane, split into where its time went (waiting, model load, prefill, decode),
//! with the gaps between a lane's calls (tool waits, waiting for inputs) and the job's
//! critical path in bold. It shows what running together did.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::rows::{RowAxis, Rows};
use super::{Figure, GREY, INK, Key, Page, Swatch, file_stem, legend, num};
use crate::metrics::{CallRecord, Name};
use crate::plan::Phase;
use crate::results::{RunRecords, TrialRecord};
use crate::summary::Summary;

/// Lanes beyond this many are left out (and the caption says so).
const MAX_LANES: usize = 40;

const WAITING: RGBColor = RGBColor(0xBB, 0xBB, 0xBB);
const LOAD: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
const PREFILL: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const DECODE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const FAILED: RGBColor = RGBColor(0xD5, 0x5E, 0x00);

/// The lane of a call: its pipeline, then its agent instance.
type Lane = (u32, Name, Name, u32);

fn lane(c: &CallRecord) -> Lane {
    (
        c.slot,
        c.variant.clone(),
        c.agent.clone(),
        c.instance.unwrap_or(0),
    )
}

/// The time a call spent loading the model, ms; under 1 ms is a server's bookkeeping (a
/// loaded model reports a fraction of a millisecond), not a load, and counts as prefill.
fn model_load(c: &CallRecord) -> f64 {
    c.load_ms.filter(|l| *l >= 1.0).unwrap_or(0.0)
}

/// The measured trial of `arm` whose wall time is the median (the lower one of two).
fn typical<'a>(run: &'a RunRecords, arm: &str) -> Option<&'a TrialRecord> {
    let mut trials: Vec<&TrialRecord> = run
        .trials
        .iter()
        .filter(|t| t.arm == arm && t.phase == Phase::Measured)
        .collect();
    trials.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms).then(a.trial.cmp(&b.trial)));
    trials.get(trials.len().checked_sub(1)? / 2).copied()
}

/// True when some two calls were in flight at once.
fn overlapped(calls: &[&CallRecord]) -> bool {
    let mut spans: Vec<(f64, f64)> = calls
        .iter()
        .map(|c| (c.offset_ms, c.offset_ms + c.e2e_ms))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    spans.windows(2).any(|w| w[1].0 < w[0].1)
}

/// Draws `timeline-<arm>.svg` for every arm whose typical trial ran calls concurrently.
pub fn draw(summary: &Summary, run: &RunRecords) -> anyhow::Result<Vec<Figure>> {
    let mut out = Vec::new();
    for arm in &run.meta.arms {
        let Some(trial) = typical(run, &arm.name) else {
            continue;
        };
        let calls: Vec<&CallRecord> = run
            .calls
            .iter()
            .filter(|c| c.trial == trial.trial && c.step != "prime")
            .collect();
        // Time zero: the job's first call (a priming call before it is left out).
        let Some(start) = calls.iter().map(|c| c.offset_ms).min_by(f64::total_cmp) else {
            continue;
        };
        if !overlapped(&calls) {
            continue;
        }
        out.push(draw_trial(summary, &arm.name, trial, &calls, start)?);
    }
    Ok(out)
}

fn draw_trial(
    summary: &Summary,
    arm: &str,
    trial: &TrialRecord,
    calls: &[&CallRecord],
    start: f64,
) -> anyhow::Result<Figure> {
    let mut lanes: BTreeMap<Lane, Vec<&CallRecord>> = BTreeMap::new();
    for c in calls {
        lanes.entry(lane(c)).or_default().push(c);
    }
    let total_lanes = lanes.len();
    let on_path = |l: &Lane| {
        trial
            .pipelines
            .iter()
            .filter(|p| p.slot == l.0)
            .filter_map(|p| p.job.as_ref())
            .any(|j| {
                j.critical_path
                    .iter()
                    .any(|s| s.node == l.2 && s.instance == l.3)
            })
    };
    let solo = trial.pipelines.len() <= 1;
    let mut rows = Rows::default();
    let mut placed = Vec::new();
    for (l, lane_calls) in lanes.iter().take(MAX_LANES) {
        let agent = if lane_calls.iter().any(|c| c.instance.is_some()) {
            format!("{}[{}]", l.2, l.3)
        } else {
            l.2.to_string()
        };
        let label = if solo {
            agent
        } else {
            format!("{}#{} {agent}", l.1, l.0)
        };
        let label = if on_path(l) {
            format!("{label} ★")
        } else {
            label
        };
        placed.push((rows.row(label), l, lane_calls));
    }
    let end = calls
        .iter()
        .map(|c| c.offset_ms - start + c.e2e_ms)
        .fold(0.0, f64::max);
    let mut keys: Vec<Key> = vec![
        ("waiting".to_owned(), WAITING, Swatch::Box),
        ("model load".to_owned(), LOAD, Swatch::Box),
        ("prefill".to_owned(), PREFILL, Swatch::Box),
        ("decode".to_owned(), DECODE, Swatch::Box),
        ("failed".to_owned(), FAILED, Swatch::Box),
    ];
    // Only what the figure shows.
    let shows = [
        calls
            .iter()
            .any(|c| c.ok && c.queue_ms.is_some_and(|q| q > 0.0)),
        calls.iter().any(|c| c.ok && model_load(c) > 0.0),
        true,
        true,
        calls.iter().any(|c| !c.ok),
    ];
    let mut shown = shows.iter();
    keys.retain(|_| *shown.next().unwrap_or(&true));
    let layout = rows.layout(&keys.iter().map(|k| k.0.clone()).collect::<Vec<_>>());
    let page = Page::new(layout.height)?;
    legend(&page, 8, 28, &keys)?;
    let axis = RowAxis::from_zero(end);
    let chart = layout.chart(&page, &axis, "time since the first call (ms)")?;
    let sheet = page.sheet();
    for (row, l, lane_calls) in &placed {
        let y = chart.py(*row);
        let bold = on_path(l);
        // The gaps between a lane's calls: tool waits, or waiting for inputs.
        for pair in lane_calls.windows(2) {
            let (a, b) = (
                pair[0].offset_ms - start + pair[0].e2e_ms,
                pair[1].offset_ms - start,
            );
            if b - a >= 1.0 {
                sheet.open(
                    "wait",
                    &format!(
                        "{}: {} ms between calls (tool wait or inputs)",
                        l.2,
                        num(b - a)
                    ),
                );
                page.root.draw(&PathElement::new(
                    vec![(chart.px(a), y), (chart.px(b), y)],
                    GREY.stroke_width(1),
                ))?;
                sheet.close();
            }
        }
        for c in lane_calls.iter() {
            let title = match c.ttft_ms {
                Some(ttft) => format!(
                    "{} {}: starts {} ms, TTFT {} ms, e2e {} ms{}",
                    c.agent,
                    c.step,
                    num(c.offset_ms - start),
                    num(ttft),
                    num(c.e2e_ms),
                    c.queue_ms.map_or(String::new(), |q| format!(
                        ", waiting {} ms",
                        num(q.max(0.0))
                    ))
                ),
                None => format!(
                    "{} {}: starts {} ms, failed after {} ms ({})",
                    c.agent,
                    c.step,
                    num(c.offset_ms - start),
                    num(c.e2e_ms),
                    c.error_kind
                        .map_or("error".to_owned(), |k| format!("{k:?}"))
                ),
            };
            let title = if c.phase == Phase::Warmup {
                format!("{title} (warm-up, not measured)")
            } else {
                title
            };
            sheet.open(if c.ok { "call" } else { "call failed" }, &title);
            let t0 = c.offset_ms - start;
            let mut segments: Vec<(f64, f64, RGBColor)> = Vec::new();
            match c.ttft_ms {
                Some(ttft) => {
                    let mut at = t0;
                    let waiting = c.queue_ms.unwrap_or(0.0).clamp(0.0, ttft);
                    let load = model_load(c).min(ttft - waiting);
                    for (len, color) in [
                        (waiting, WAITING),
                        (load, LOAD),
                        (ttft - waiting - load, PREFILL),
                    ] {
                        segments.push((at, at + len, color));
                        at += len;
                    }
                    segments.push((t0 + ttft, t0 + c.e2e_ms, DECODE));
                }
                None => segments.push((t0, t0 + c.e2e_ms, WAITING)),
            }
            // Warm-up requests ran, and loaded the server, but are not measured: faded.
            let warmup = c.phase == Phase::Warmup;
            for (a, b, color) in segments {
                let color = if warmup {
                    color.mix(0.4)
                } else {
                    color.to_rgba()
                };
                let (pa, pb) = (chart.px(a), chart.px(b));
                if pb > pa {
                    page.root
                        .draw(&Rectangle::new([(pa, y - 5), (pb, y + 5)], color.filled()))?;
                }
            }
            let (pa, pb) = (chart.px(t0), chart.px(t0 + c.e2e_ms).max(chart.px(t0) + 1));
            if !c.ok {
                page.root.draw(&Rectangle::new(
                    [(pa, y - 6), (pb, y + 6)],
                    FAILED.stroke_width(2),
                ))?;
            } else if bold {
                page.root.draw(&Rectangle::new(
                    [(pa, y - 6), (pb, y + 6)],
                    INK.stroke_width(1),
                ))?;
            }
            sheet.close();
        }
    }
    let left_out = if total_lanes > MAX_LANES {
        format!(" The first {MAX_LANES} of {total_lanes} lanes are shown.")
    } else {
        String::new()
    };
    let warmups = if calls.iter().any(|c| c.phase == Phase::Warmup) {
        " Faded bars are warm-up requests, run but not measured."
    } else {
        ""
    };
    let title = format!("Trial {} of {arm}: every call", trial.trial);
    let caption = format!(
        "Every call of trial {} (arm {arm}, round {}, the measured trial with the median wall \
         time, {} ms) as a bar in its agent instance's lane: waiting (time to first token \
         less model load and prompt evaluation, as the server reports them), model load, \
         prefill, decode. Grey lines are gaps between a lane's calls (tool waits, or waiting \
         for inputs); ★ and outlined bars are the job's critical path.{warmups}{left_out}",
        trial.trial,
        trial.round,
        num(trial.wall_ms)
    );
    Ok(Figure {
        name: format!("timeline-{}", file_stem(arm)),
        title: title.clone(),
        caption,
        svg: page.finish(&title, summary.simulated),
    })
}
