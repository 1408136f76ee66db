//! `comparisons.csv`: one tidy row per comparison (variant × arm × metric, and paired
//! within mixed arms), every number at full precision, for R, pandas or a spreadsheet.
//! `t_test` says which t-test `t`, `t_df` and `t_p` come from (`welch` or `paired`);
//! `detectable_ratio` is the smallest ratio (≥ 1) that test finds with 80% power.

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
    paired: bool,
    n_variant: usize,
    n_baseline: usize,
    variant_mean: f64,
    baseline_mean: f64,
    ratio: Option<f64>,
    ratio_ci_low: Option<f64>,
    ratio_ci_high: Option<f64>,
    t_test: &'static str,
    t: Option<f64>,
    t_df: Option<f64>,
    t_p: Option<f64>,
    holm_p: Option<f64>,
    mann_whitney_u: Option<f64>,
    mann_whitney_p: Option<f64>,
    mann_whitney_method: Option<Method>,
    hedges_g: Option<f64>,
    cliffs_delta: f64,
    median_ratio: Option<f64>,
    median_ratio_ci_low: Option<f64>,
    median_ratio_ci_high: Option<f64>,
    detectable_ratio: Option<f64>,
    variant_calls: usize,
    variant_cold: usize,
    variant_new_connections: usize,
    baseline_calls: usize,
    baseline_cold: usize,
    baseline_new_connections: usize,
    confounded: bool,
    verdict: Verdict,
    confound_warning: Option<&'a str>,
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
                paired: r.paired,
                n_variant: s.n_variant,
                n_baseline: s.n_baseline,
                variant_mean: r.variant_mean,
                baseline_mean: r.baseline_mean,
                ratio: s.ratio.map(|x| x.ratio),
                ratio_ci_low: s.ratio.map(|x| x.low),
                ratio_ci_high: s.ratio.map(|x| x.high),
                t_test: if r.paired { "paired" } else { "welch" },
                t: s.welch.map(|w| w.t),
                t_df: s.welch.map(|w| w.df),
                t_p: s.welch.map(|w| w.p),
                holm_p: r.holm_p,
                mann_whitney_u: s.mann_whitney.map(|m| m.u),
                mann_whitney_p: s.mann_whitney.map(|m| m.p),
                mann_whitney_method: s.mann_whitney.map(|m| m.method),
                hedges_g: s.hedges_g,
                cliffs_delta: s.cliffs_delta,
                median_ratio: s.median_ratio.map(|b| b.estimate),
                median_ratio_ci_low: s.median_ratio.map(|b| b.low),
                median_ratio_ci_high: s.median_ratio.map(|b| b.high),
                detectable_ratio: s.detectable,
                variant_calls: r.variant_conditions.calls,
                variant_cold: r.variant_conditions.cold,
                variant_new_connections: r.variant_conditions.new_connections,
                baseline_calls: r.baseline_conditions.calls,
                baseline_cold: r.baseline_conditions.cold,
                baseline_new_connections: r.baseline_conditions.new_connections,
                confounded: r.confound_warning.is_some(),
                verdict: r.verdict,
                confound_warning: r.confound_warning.as_deref(),
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

const HEADER: &str = "metric,direction,arm,variant,baseline_arm,baseline,paired,n_variant,n_baseline,variant_mean,baseline_mean,ratio,ratio_ci_low,ratio_ci_high,t_test,t,t_df,t_p,holm_p,mann_whitney_u,mann_whitney_p,mann_whitney_method,hedges_g,cliffs_delta,median_ratio,median_ratio_ci_low,median_ratio_ci_high,detectable_ratio,variant_calls,variant_cold,variant_new_connections,baseline_calls,baseline_cold,baseline_new_connections,confounded,verdict,confound_warning,failure_warning,length_warning\n";

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
            paired: false,
            n_variant: 1,
            n_baseline: 1,
            variant_mean: 1.0,
            baseline_mean: 1.0,
            ratio: None,
            ratio_ci_low: None,
            ratio_ci_high: None,
            t_test: "welch",
            t: None,
            t_df: None,
            t_p: None,
            holm_p: None,
            mann_whitney_u: Some(0.5),
            mann_whitney_p: Some(1.0),
            mann_whitney_method: Some(Method::Exact),
            hedges_g: None,
            cliffs_delta: 0.0,
            median_ratio: None,
            median_ratio_ci_low: None,
            median_ratio_ci_high: None,
            detectable_ratio: None,
            variant_calls: 0,
            variant_cold: 0,
            variant_new_connections: 0,
            baseline_calls: 0,
            baseline_cold: 0,
            baseline_new_connections: 0,
            confounded: false,
            verdict: Verdict::Undetermined,
            confound_warning: None,
            failure_warning: None,
            length_warning: None,
        })
        .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), HEADER.trim_end());
    }
}
