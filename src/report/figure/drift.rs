//! Drift: each arm and variant's per-trial values against the round they ran in, for the
//! metrics the summary tested for a trend. A line that climbs or sinks is a server that
//! warmed, throttled or filled up while the experiment ran.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::lines::{self, Series};
use super::{Figure, file_stem, metric_axis, num, side_label};
use crate::results::RunRecords;
use crate::scenario::Metric;
use crate::summary::{DriftRow, RunSamples, Summary};

/// A series, its points (round, value) and its trend.
type Trend<'a> = (Series, Vec<(f64, f64)>, &'a DriftRow);

/// Draws `drift-<metric>.svg`, or nothing when the summary tested no series of the metric.
pub fn draw(
    summary: &Summary,
    run: &RunRecords,
    samples: &RunSamples,
    metric: Metric,
) -> anyhow::Result<Option<Figure>> {
    let rounds: BTreeMap<u32, u32> = run.trials.iter().map(|t| (t.trial, t.round)).collect();
    let mut groups: Vec<Trend> = Vec::new();
    for row in summary.drift.iter().filter(|d| d.metric == metric) {
        let key = (row.arm.clone(), row.variant.clone(), metric);
        let Some(by_trial) = samples.by_trial.get(&key) else {
            continue;
        };
        let mut points: Vec<(f64, f64)> = by_trial
            .iter()
            .filter_map(|(t, v)| rounds.get(t).map(|r| (f64::from(*r), *v)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let label = format!(
            "{}{}",
            side_label(&row.arm, &row.variant),
            if row.drifting { " (drifting)" } else { "" }
        );
        groups.push((Series::nth(groups.len(), label), points, row));
    }
    if groups.is_empty() {
        return Ok(None);
    }
    let ((x0, x1), (y0, y1)) = lines::extent(groups.iter().flat_map(|g| g.1.iter().copied()));
    let series: Vec<Series> = groups.iter().map(|g| g.0.clone()).collect();
    let (page, top) = lines::page(&series, 260)?;
    let (x0, x1) = super::padded(x0, x1, 0.04);
    let (y0, y1) = super::padded(y0, y1, 0.08);
    let mut chart = lines::chart(
        &page,
        top,
        (x0, x1),
        (y0, y1),
        "round",
        &format!("{}, per trial", metric_axis(metric)),
    )?;
    let sheet = page.sheet();
    for (s, points, d) in &groups {
        let trend = format!(
            ": {:+.2}% per round [{:+.2}%, {:+.2}%], p (Holm) {}",
            d.change_per_round * 100.0,
            d.low * 100.0,
            d.high * 100.0,
            num(d.holm_p)
        );
        sheet.open("series", &format!("{}{trend}", s.label));
        s.line(&mut chart, points.clone())?;
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, s.color.filled())))?;
        sheet.close();
    }
    let title = format!("{}: drift over rounds", metric_axis(metric));
    let caption = format!(
        "{} of each measured trial against its round, per arm and variant. A series marked \
         drifting has a trend (least-squares slope of the log values over the order the \
         trials ran) significant after Holm's adjustment over all series tested.",
        metric_axis(metric)
    );
    Ok(Some(Figure {
        name: format!("drift-{}", file_stem(metric.name())),
        title: title.clone(),
        caption,
        svg: page.finish(&title, summary.simulated),
    }))
}
