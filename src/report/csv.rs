//! `comparisons.csv`: one tidy row per comparison (variant × arm × metric), every number
//! at full precision, for R, pandas or a spreadsheet.

use serde::Serialize;

use super::Exporter;
use crate::scenario::{Direction, Metric};
use crate::stats::mann_whitney::Method;
use crate::summary::{Summary, Verdict};

/// Writes `comparisons.csv`.
pub struct Csv;

/// The columns, in order.
#[derive(Serialize)]
struct Row<'a> {
    metric: Metric,
    direction: Direction,
    arm: &'a str,
    variant: &'a str,
    baseline_arm: &'a str,
    baseline: &'a str,
    n_variant: usize,
    n_baseline: usize,
    variant_mean: f64,
    baseline_mean: f64,
    ratio: Option<f64>,
    ratio_ci_low: Option<f64>,
    ratio_ci_high: Option<f64>,
    welch_t: Option<f64>,
    welch_df: Option<f64>,
    welch_p: Option<f64>,
    holm_p: Option<f64>,
    mann_whitney_u: f64,
    mann_whitney_p: f64,
    mann_whitney_method: Method,
    hedges_g: Option<f64>,
    cliffs_delta: f64,
    median_ratio: Option<f64>,
    median_ratio_ci_low: Option<f64>,
    median_ratio_ci_high: Option<f64>,
    verdict: Verdict,
    failure_warning: Option<&'a str>,
    length_warning: Option<&'a str>,
}

impl Exporter for Csv {
    fn render(&self, summary: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &summary.comparisons {
            let s = &r.stats;
            w.serialize(Row {
                metric: r.metric,
                direction: r.direction,
                arm: &r.arm,
                variant: &r.variant,
                baseline_arm: &r.baseline_arm,
                baseline: &r.baseline,
                n_variant: s.n_variant,
                n_baseline: s.n_baseline,
                variant_mean: r.variant_mean,
                baseline_mean: r.baseline_mean,
                ratio: s.ratio.map(|x| x.ratio),
                ratio_ci_low: s.ratio.map(|x| x.low),
                ratio_ci_high: s.ratio.map(|x| x.high),
                welch_t: s.welch.map(|w| w.t),
                welch_df: s.welch.map(|w| w.df),
                welch_p: s.welch.map(|w| w.p),
                holm_p: r.holm_p,
                mann_whitney_u: s.mann_whitney.u,
                mann_whitney_p: s.mann_whitney.p,
                mann_whitney_method: s.mann_whitney.method,
                hedges_g: s.hedges_g,
                cliffs_delta: s.cliffs_delta,
                median_ratio: s.median_ratio.map(|b| b.estimate),
                median_ratio_ci_low: s.median_ratio.map(|b| b.low),
                median_ratio_ci_high: s.median_ratio.map(|b| b.high),
                verdict: r.verdict,
                failure_warning: r.failure_warning.as_deref(),
                length_warning: r.length_warning.as_deref(),
            })?;
        }
        if summary.comparisons.is_empty() {
            // csv writes headers with the first row; keep the header for empty runs too.
            return Ok(HEADER.as_bytes().to_vec());
        }
        Ok(w.into_inner()?)
    }
}

const HEADER: &str = "metric,direction,arm,variant,baseline_arm,baseline,n_variant,n_baseline,variant_mean,baseline_mean,ratio,ratio_ci_low,ratio_ci_high,welch_t,welch_df,welch_p,holm_p,mann_whitney_u,mann_whitney_p,mann_whitney_method,hedges_g,cliffs_delta,median_ratio,median_ratio_ci_low,median_ratio_ci_high,verdict,failure_warning,length_warning\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_for_empty_runs_matches_the_row_type() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(Row {
            metric: Metric::DecodeTps,
            direction: Direction::HigherIsBetter,
            arm: "a",
            variant: "v",
            baseline_arm: "b",
            baseline: "b",
            n_variant: 1,
            n_baseline: 1,
            variant_mean: 1.0,
            baseline_mean: 1.0,
            ratio: None,
            ratio_ci_low: None,
            ratio_ci_high: None,
            welch_t: None,
            welch_df: None,
            welch_p: None,
            holm_p: None,
            mann_whitney_u: 0.5,
            mann_whitney_p: 1.0,
            mann_whitney_method: Method::Exact,
            hedges_g: None,
            cliffs_delta: 0.0,
            median_ratio: None,
            median_ratio_ci_low: None,
            median_ratio_ci_high: None,
            verdict: Verdict::Undetermined,
            failure_warning: None,
            length_warning: None,
        })
        .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), HEADER.trim_end());
    }
}
