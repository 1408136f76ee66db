//! ECDFs of a per-call time (TTFT, end-to-end), one line per arm and variant, pooled over
//! the calls of all its measured trials and labelled so: a distribution to look at, not a
//! statistic to test (calls within a trial are not independent).

use super::lines::{self, Series};
use super::{Figure, file_stem, metric_axis, num, side_label};
use crate::plan::Phase;
use crate::results::RunRecords;
use crate::scenario::Metric;
use crate::summary::Summary;

/// At most this many steps per line: beyond it the ECDF is drawn at evenly spaced
/// quantiles, which a 400 px figure cannot tell apart from every step.
const MAX_STEPS: usize = 400;

/// Draws `ecdf-<metric>.svg`, or nothing when no call measured it.
pub fn draw(summary: &Summary, run: &RunRecords, metric: Metric) -> anyhow::Result<Option<Figure>> {
    let mut groups: Vec<(Series, Vec<f64>)> = Vec::new();
    for g in &summary.groups {
        let mut values: Vec<f64> = run
            .calls
            .iter()
            .filter(|c| c.phase == Phase::Measured && c.step != "prime" && c.ok)
            .filter(|c| c.arm == g.arm && c.variant == g.variant)
            .filter_map(|c| c.value(metric))
            .filter(|v| v.is_finite())
            .collect();
        if values.is_empty() {
            continue;
        }
        values.sort_by(f64::total_cmp);
        let label = format!(
            "{} ({} calls)",
            side_label(&g.arm, &g.variant),
            values.len()
        );
        groups.push((Series::nth(groups.len(), label), values));
    }
    if groups.is_empty() {
        return Ok(None);
    }
    let lo = groups.iter().map(|l| l.1[0]).fold(f64::INFINITY, f64::min);
    let hi = groups
        .iter()
        .map(|l| *l.1.last().unwrap_or(&lo))
        .fold(f64::NEG_INFINITY, f64::max);
    let (x0, x1) = super::padded(lo, hi, 0.03);
    let series: Vec<Series> = groups.iter().map(|l| l.0.clone()).collect();
    let (page, top) = lines::page(&series, 260)?;
    let mut chart = lines::chart(
        &page,
        top,
        (x0.max(0.0), x1),
        (0.0, 1.0),
        &format!("{}, per call (pooled)", metric_axis(metric)),
        "fraction of calls ≤ x",
    )?;
    let sheet = page.sheet();
    for (s, values) in &groups {
        let n = values.len();
        sheet.open(
            "ecdf",
            &format!(
                "{}: median {}, p90 {}, max {}",
                s.label,
                num(values[(n - 1) / 2]),
                num(values[((n - 1) as f64 * 0.9) as usize]),
                num(values[n - 1])
            ),
        );
        s.line(&mut chart, steps(values))?;
        sheet.close();
    }
    let calls: usize = groups.iter().map(|l| l.1.len()).sum();
    let title = format!("{}: distribution over calls", metric_axis(metric));
    let caption = format!(
        "Empirical CDF of {} per successful measured call ({calls} calls), pooled over all \
         trials of each arm and variant. Pooled distributions show shape and tails; calls \
         within a trial share the server's state, so the tests of the report use per-trial \
         values, not these.",
        metric_axis(metric)
    );
    Ok(Some(Figure {
        name: format!("ecdf-{}", file_stem(metric.name())),
        title: title.clone(),
        caption,
        svg: page.finish(&title, summary.simulated),
    }))
}

/// The ECDF of sorted `values` as a step line, at most [`MAX_STEPS`] steps.
fn steps(values: &[f64]) -> Vec<(f64, f64)> {
    let n = values.len();
    let picks: Vec<usize> = if n <= MAX_STEPS {
        (0..n).collect()
    } else {
        (0..MAX_STEPS)
            .map(|k| (k * (n - 1)) / (MAX_STEPS - 1))
            .collect()
    };
    let mut points = Vec::with_capacity(picks.len() * 2 + 1);
    points.push((values[0], 0.0));
    let mut last = 0.0;
    for i in picks {
        let x = values[i];
        let f = (i + 1) as f64 / n as f64;
        points.push((x, last));
        points.push((x, f));
        last = f;
    }
    points
}
