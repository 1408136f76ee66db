//! Strip plots: for one metric, a row per arm and variant with one dot per trial (the unit
//! of analysis), over a box from the lower to the upper quartile with the median, so a
//! reader sees n, spread and outliers before any statistic.

use plotters::prelude::*;

use super::rows::{RowAxis, Rows};
use super::{Figure, GREY, Page, file_stem, metric_axis, num, side_label, variant_color};
use crate::rng::mix64;
use crate::scenario::Metric;
use crate::stats::Sample;
use crate::summary::{RunSamples, Summary};

/// Draws `strip-<metric>.svg`, or nothing when no arm measured the metric.
pub fn draw(
    summary: &Summary,
    samples: &RunSamples,
    metric: Metric,
) -> anyhow::Result<Option<Figure>> {
    let mut rows = Rows::default();
    let mut series = Vec::new();
    for g in &summary.groups {
        let key = (g.arm.clone(), g.variant.clone(), metric);
        let Some(by_trial) = samples.by_trial.get(&key).filter(|t| !t.is_empty()) else {
            continue;
        };
        let row = rows.row(format!(
            "{} (n={})",
            side_label(&g.arm, &g.variant),
            by_trial.len()
        ));
        series.push((row, g, by_trial));
    }
    if series.is_empty() {
        return Ok(None);
    }
    let values = series.iter().flat_map(|s| s.2.values().copied());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let layout = rows.layout(&[]);
    let page = Page::new(layout.height)?;
    let axis = RowAxis::linear(lo, hi);
    let what = if metric.is_per_arm() {
        "per trial, whole arm"
    } else if metric.is_serving() {
        "per trial"
    } else {
        "mean per trial"
    };
    let chart = layout.chart(&page, &axis, &format!("{}, {what}", metric_axis(metric)))?;
    let sheet = page.sheet();
    for (row, g, by_trial) in &series {
        let y = chart.py(*row);
        let color = variant_color(summary, &g.variant);
        if let Some(sample) = Sample::new(by_trial.values().copied()) {
            let (q1, med, q3) = (
                sample.percentile(0.25),
                sample.median(),
                sample.percentile(0.75),
            );
            sheet.open(
                "box",
                &format!(
                    "{}: median {}, quartiles {} to {}",
                    side_label(&g.arm, &g.variant),
                    num(med),
                    num(q1),
                    num(q3)
                ),
            );
            let (a, b, m) = (chart.px(q1), chart.px(q3), chart.px(med));
            page.root.draw(&Rectangle::new(
                [(a, y - 6), (b.max(a + 1), y + 6)],
                GREY.mix(0.25).filled(),
            ))?;
            page.root.draw(&PathElement::new(
                vec![(m, y - 8), (m, y + 8)],
                GREY.stroke_width(2),
            ))?;
            sheet.close();
        }
        for (trial, v) in by_trial.iter() {
            // A fixed vertical offset per trial, so dots with equal values stay apart and
            // the same data lands in the same place.
            let jitter = (mix64(u64::from(*trial)) % 9) as i32 - 4;
            sheet.open(
                "trial",
                &format!(
                    "{} trial {trial}: {} {}",
                    side_label(&g.arm, &g.variant),
                    num(*v),
                    metric.unit()
                ),
            );
            page.root.draw(&Circle::new(
                (chart.px(*v), y + jitter),
                3,
                color.mix(0.85).filled(),
            ))?;
            sheet.close();
        }
    }
    let n_trials: usize = series.iter().map(|s| s.2.len()).sum();
    let title = format!("{}: one dot per trial", metric_axis(metric));
    let per = if metric.is_job() { "jobs" } else { "calls" };
    let value = if metric.is_per_arm() || metric.is_serving() {
        "its value over the trial".to_owned()
    } else {
        format!("the mean over its {per}")
    };
    let caption = format!(
        "One dot per measured trial of every arm and variant ({n_trials} in all; n per row \
         in brackets), at {value}; the box spans the lower to the upper quartile of the \
         trials, the bar is their median. Trials are the unit of analysis: the report's \
         statistics are computed over these dots."
    );
    Ok(Some(Figure {
        name: format!("strip-{}", file_stem(metric.name())),
        title: title.clone(),
        caption,
        svg: page.finish(&title, summary.simulated),
    }))
}
