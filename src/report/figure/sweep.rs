//! Load sweeps: each variant across its load levels, as throughput against latency (the
//! curve a serving configuration is chosen from) and as goodput (or completed requests)
//! against the offered load, with the per-trial CI.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::lines::{self, Series};
use super::{Figure, GREY, INK, TICK, font, num, side_label};
use crate::scenario::{LoadLevel, Metric};
use crate::summary::Summary;
use crate::summary::serving::ServingRow;

/// Draws `sweep-latency.svg` and `sweep-goodput.svg` when the run had load levels.
pub fn draw(summary: &Summary) -> anyhow::Result<Vec<Figure>> {
    if summary.serving.is_empty() {
        return Ok(Vec::new());
    }
    let mut curves: BTreeMap<(String, String), Vec<&ServingRow>> = BTreeMap::new();
    for row in &summary.serving {
        curves
            .entry((row.arm.clone(), row.variant.clone()))
            .or_default()
            .push(row);
    }
    for rows in curves.values_mut() {
        rows.sort_by(|a, b| a.level.value().total_cmp(&b.level.value()));
    }
    let curves: Vec<(Series, Vec<&ServingRow>)> = curves
        .into_iter()
        .enumerate()
        .map(
            |(i, (key, rows)): (usize, ((String, String), Vec<&ServingRow>))| {
                (Series::nth(i, side_label(&key.0, &key.1)), rows)
            },
        )
        .collect();
    Ok(vec![latency(summary, &curves)?, goodput(summary, &curves)?])
}

/// The extent of `points`, with a margin.
fn bounds(points: impl Iterator<Item = (f64, f64)>) -> ((f64, f64), (f64, f64)) {
    let ((x0, x1), (y0, y1)) = lines::extent(points);
    (super::padded(x0, x1, 0.08), super::padded(y0, y1, 0.1))
}

fn latency(summary: &Summary, curves: &[(Series, Vec<&ServingRow>)]) -> anyhow::Result<Figure> {
    let open = summary
        .serving
        .iter()
        .any(|r| matches!(r.level, LoadLevel::Rate(_)));
    let point = |r: &ServingRow| Some((r.throughput_tps?, r.ttft_ms?.0));
    let ((x0, x1), (y0, y1)) = bounds(
        curves
            .iter()
            .flat_map(|c| c.1.iter().filter_map(|r| point(r))),
    );
    let series: Vec<Series> = curves.iter().map(|c| c.0.clone()).collect();
    let (page, top) = lines::page(&series, 270)?;
    let mut chart = lines::chart(
        &page,
        top,
        (x0.max(0.0), x1),
        (y0.max(0.0), y1),
        "throughput, all streams (tok/s)",
        if open {
            "median TTFT from schedule (ms)"
        } else {
            "median TTFT (ms)"
        },
    )?;
    let sheet = page.sheet();
    for (s, rows) in curves {
        let points: Vec<(f64, f64, &ServingRow)> = rows
            .iter()
            .filter_map(|r| point(r).map(|(x, y)| (x, y, *r)))
            .collect();
        sheet.open("curve", &s.label);
        s.line(&mut chart, points.iter().map(|p| (p.0, p.1)).collect())?;
        sheet.close();
        for (x, y, r) in &points {
            sheet.open(
                "level",
                &format!(
                    "{} at {}: {} tok/s, median TTFT {} ms ({} trials, {} requests)",
                    s.label,
                    r.level.describe(),
                    num(*x),
                    num(*y),
                    r.trials,
                    r.requests
                ),
            );
            chart.draw_series(std::iter::once(Circle::new((*x, *y), 4, s.color.filled())))?;
            let (px, py) = chart.backend_coord(&(*x, *y));
            page.root.draw(&Text::new(
                r.level.label(),
                (px + 6, py - 4),
                font(TICK - 1.0, &INK).pos(Pos::new(HPos::Left, VPos::Bottom)),
            ))?;
            sheet.close();
        }
    }
    let title = "Throughput against latency across load levels".to_owned();
    let caption = "Each variant at each load level (labelled: c = concurrent workers, r = \
                   requests per second): mean throughput over the level's measured trials \
                   against the median time to first token pooled over its requests. Up and to \
                   the left is worse; the knee is where added load buys latency, not throughput."
        .to_owned();
    Ok(Figure {
        name: "sweep-latency".to_owned(),
        title: title.clone(),
        caption,
        svg: page.finish(&title, summary.simulated),
    })
}

fn goodput(summary: &Summary, curves: &[(Series, Vec<&ServingRow>)]) -> anyhow::Result<Figure> {
    let metric = if summary.slo.is_some() {
        Metric::GoodputRps
    } else {
        Metric::ReqPerS
    };
    let ci = |r: &ServingRow| {
        summary
            .groups
            .iter()
            .find(|g| g.arm == r.level_arm && g.variant == r.variant)
            .and_then(|g| g.metrics.get(&metric))
            .map(|m| &m.per_trial)
    };
    let point = |r: &ServingRow| {
        let d = ci(r)?;
        Some((
            r.level.value(),
            d.mean,
            d.ci_low.unwrap_or(d.mean),
            d.ci_high.unwrap_or(d.mean),
        ))
    };
    let all: Vec<(f64, f64, f64, f64)> = curves
        .iter()
        .flat_map(|c| c.1.iter().filter_map(|r| point(r)))
        .collect();
    let ((x0, x1), (y0, y1)) = bounds(all.iter().flat_map(|p| [(p.0, p.2), (p.0, p.3)]));
    let open = summary
        .serving
        .iter()
        .any(|r| matches!(r.level, LoadLevel::Rate(_)));
    let series: Vec<Series> = curves.iter().map(|c| c.0.clone()).collect();
    let (page, top) = lines::page(&series, 270)?;
    let y_desc = if metric == Metric::GoodputRps {
        "goodput (req/s)"
    } else {
        "completed requests (req/s)"
    };
    let mut chart = lines::chart(
        &page,
        top,
        (x0.max(0.0), x1),
        (y0.max(0.0), y1),
        if open {
            "offered load (req/s)"
        } else {
            "concurrent workers"
        },
        y_desc,
    )?;
    let sheet = page.sheet();
    if open {
        // Served = offered: a server that keeps up stays on this line.
        sheet.layer("reference");
        let m = x1.min(y1);
        chart.draw_series(LineSeries::new(
            vec![(0.0, 0.0), (m, m)],
            GREY.stroke_width(1),
        ))?;
        sheet.close();
    }
    for (s, rows) in curves {
        let points: Vec<(f64, f64, f64, f64)> = rows.iter().filter_map(|r| point(r)).collect();
        sheet.open("curve", &s.label);
        s.line(&mut chart, points.iter().map(|p| (p.0, p.1)).collect())?;
        sheet.close();
        for (x, y, lo, hi) in &points {
            sheet.open(
                "ci",
                &format!(
                    "{} at {}: {} req/s [{}, {}]",
                    s.label,
                    num(*x),
                    num(*y),
                    num(*lo),
                    num(*hi)
                ),
            );
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                *x,
                *lo,
                *y,
                *hi,
                s.color.stroke_width(2),
                8,
            )))?;
            chart.draw_series(std::iter::once(Circle::new((*x, *y), 4, s.color.filled())))?;
            sheet.close();
        }
    }
    let title = if metric == Metric::GoodputRps {
        "Goodput across load levels"
    } else {
        "Completed requests across load levels"
    }
    .to_owned();
    let caption = format!(
        "Mean {} per measured trial at each load level, with its {:.0}% Student-t CI over \
         trials.{}",
        if metric == Metric::GoodputRps {
            "requests per second that met every service-level objective"
        } else {
            "requests completed per second"
        },
        summary.confidence * 100.0,
        if open {
            " On the diagonal, every offered request was served; below it, the server fell behind."
        } else {
            ""
        }
    );
    Ok(Figure {
        name: "sweep-goodput".to_owned(),
        title: title.clone(),
        caption,
        svg: page.finish(&title, summary.simulated),
    })
}
