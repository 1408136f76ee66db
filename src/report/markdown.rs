//! Markdown (GitHub-flavoured): `report.md` (verdicts in sentences, a comparison table and a
//! descriptive table per metric, the concurrency table and the methods) and `gate.md`.

use std::fmt::Write;

use super::{
    Align, COMPARISON_NOTE, CONCURRENCY_NOTE, Exporter, Grid, JOBS_NOTE, SERVING_NOTE,
    comparisons_grid, concurrency_grid, drift_grid, gate_grid, groups_grid, job_agents_grid,
    jobs_grid, order_words, sentence_with_warning, server_words, serving_grid, variant_words,
};
use crate::gate::GateReport;
use crate::scenario::{Direction, Metric};
use crate::summary::Summary;

/// Writes `report.md`.
pub struct Markdown;

/// A grid as a pipe table; `|` in cells is escaped.
pub fn table(grid: &Grid) -> String {
    let escape = |s: &str| s.replace('|', "\\|");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {} |",
        grid.header
            .iter()
            .map(|h| escape(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let rule: Vec<&str> = grid
        .align
        .iter()
        .map(|a| match a {
            Align::Left => "---",
            Align::Right => "---:",
        })
        .collect();
    let _ = writeln!(out, "| {} |", rule.join(" | "));
    for row in &grid.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| format!("{}{}", escape(&c.text), c.mark))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// A `###` section per metric with its grid's table; metrics whose grid is empty are left
/// out.
fn per_metric(out: &mut String, grid: impl Fn(Metric) -> Grid, heading: impl Fn(Metric) -> String) {
    for metric in Metric::ALL {
        let grid = grid(metric);
        if !grid.rows.is_empty() {
            let _ = writeln!(out, "\n### {}\n", heading(metric));
            out.push_str(&table(&grid));
        }
    }
}

fn direction(metric: Metric) -> &'static str {
    match metric.direction() {
        Direction::HigherIsBetter => "higher is faster",
        Direction::LowerIsBetter => "lower is faster",
    }
}

impl Exporter for Markdown {
    fn render(&self, s: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut out = String::new();
        let _ = writeln!(out, "# {} — harness report\n", s.scenario);
        if s.simulated {
            out.push_str("> **Simulated**: these numbers come from harness's built-in simulator, not a GPU server.\n\n");
        }
        if !s.complete {
            out.push_str(
                "> **Incomplete**: the run stopped before its plan finished; the statistics cover the trials that ran.\n\n",
            );
        }
        let _ = writeln!(
            out,
            "Baseline `{}`; {} measured trials ({} planned in all, warmups included). \
             Statistics are over per-trial means; intervals are {:.0}% and verdicts use \
             Holm-adjusted p < {} across all {} comparisons. {}\n",
            s.baseline,
            s.measured_trials,
            s.planned_trials,
            s.confidence * 100.0,
            s.alpha,
            s.comparisons.len(),
            order_words(s)
        );

        out.push_str("## Setup\n\n");
        let _ = writeln!(out, "- Server: {}", server_words(&s.setup));
        let _ = writeln!(
            out,
            "- Simulated: {}",
            if s.simulated { "yes" } else { "no" }
        );
        for v in &s.setup.variants {
            let _ = writeln!(out, "- {}", variant_words(v));
        }
        out.push('\n');

        out.push_str("## Verdicts\n\n");
        if s.comparisons.is_empty() && !s.complete {
            out.push_str("No comparisons yet: the run stopped before both sides of any comparison had a successful trial.\n");
        } else if s.comparisons.is_empty() {
            out.push_str("No comparisons: no arm has a counterpart with the baseline in the variant's place with successful trials on both sides.\n");
        }
        for row in &s.comparisons {
            let _ = writeln!(out, "- {}", sentence_with_warning(row));
        }

        out.push_str("\n## Comparisons against the baseline\n\n");
        out.push_str(COMPARISON_NOTE);
        out.push('\n');
        per_metric(
            &mut out,
            |m| comparisons_grid(s, m),
            |m| format!("{m} ({}, {})", m.unit(), direction(m)),
        );

        out.push_str("\n## Per arm and variant\n\n");
        out.push_str("Per-trial means: n trials, mean with 95% Student-t CI, sd, CV, min, median, max; for times also percentiles pooled over calls.\n");
        per_metric(
            &mut out,
            |m| groups_grid(s, m),
            |m| format!("{m} ({})", m.unit()),
        );
        let failures: Vec<String> = s
            .groups
            .iter()
            .filter(|g| {
                g.failed_calls > 0
                    || g.cold_calls > 0
                    || g.retried_calls > 0
                    || g.new_connection_calls > 0
            })
            .map(|g| {
                let kinds: Vec<String> = g
                    .failures_by_kind
                    .iter()
                    .map(|(k, n)| format!("{} {n}", k.as_str()))
                    .collect();
                format!(
                    "- {} in {}: {} of {} calls failed ({}); {} successful calls reloaded the model; {} needed retries; {} opened a new connection",
                    g.variant,
                    g.arm,
                    g.failed_calls,
                    g.calls,
                    if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") },
                    g.cold_calls,
                    g.retried_calls,
                    g.new_connection_calls
                )
            })
            .collect();
        if !failures.is_empty() {
            out.push_str("\n### Failures, cold calls and new connections\n\n");
            out.push_str(&failures.join("\n"));
            out.push('\n');
        }

        if !s.serving.is_empty() {
            out.push_str("\n## Load levels\n\n");
            out.push_str(SERVING_NOTE);
            out.push_str("\n\n");
            out.push_str(&table(&serving_grid(s)));
            if !s.saturation.is_empty() {
                out.push_str("\nSaturation (throughput against load, level by level):\n\n");
                for sat in &s.saturation {
                    let _ = writeln!(out, "- **{}** in {}: {}", sat.variant, sat.arm, sat.note);
                }
            }
            if let Some(w) = &s.schedule_warning {
                let _ = writeln!(out, "\n**Warning:** {w}.");
            }
        }

        if !s.jobs.is_empty() {
            out.push_str("\n## Jobs\n\n");
            out.push_str(JOBS_NOTE);
            out.push_str("\n\n");
            out.push_str(&table(&jobs_grid(s)));
            let agents = job_agents_grid(s);
            if !agents.rows.is_empty() {
                out.push_str(
                    "\nPer agent (all instances and turns; successful measured calls):\n\n",
                );
                out.push_str(&table(&agents));
            }
        }

        if !s.concurrency.is_empty() {
            out.push_str("\n## Concurrency\n\n");
            out.push_str(CONCURRENCY_NOTE);
            out.push_str("\n\n");
            out.push_str(&table(&concurrency_grid(s)));
        }

        out.push_str("\n## Drift\n\n");
        let drifting = drift_grid(s);
        let _ = write!(
            out,
            "Trend of each series' log per-trial values over its arm's rounds (least squares), {} series tested, Holm-adjusted together: ",
            s.drift.len()
        );
        if drifting.rows.is_empty() {
            out.push_str("none drifts significantly.\n");
        } else {
            let _ = writeln!(out, "{} drift.\n", drifting.rows.len());
            out.push_str(&table(&drifting));
            if let Some(w) = &s.drift_warning {
                let _ = writeln!(out, "\n**Warning:** {w}.");
            }
        }

        out.push_str("\n## Methods\n\n");
        for (name, text) in &s.definitions {
            let _ = writeln!(out, "- **{name}**: {text}");
        }
        Ok(out.into_bytes())
    }
}

/// `gate.md`, sized for a CI job summary: the verdict in one line, then the table.
impl Exporter<GateReport> for Markdown {
    fn render(&self, r: &GateReport) -> anyhow::Result<Vec<u8>> {
        let mut out = format!("**{}**\n\n", r.headline());
        out.push_str(&table(&gate_grid(r)));
        let _ = write!(
            out,
            "\n{}: `{}`",
            match &r.base {
                Some(_) => "Across runs; new",
                None => "Within one run",
            },
            r.results
        );
        if let Some(base) = &r.base {
            let _ = write!(out, ", base `{base}`");
        }
        out.push_str(". Ratio = variant / baseline of per-trial geometric means, 95% CI from Welch's t on logs. FAIL needs the one-sided test of \"the ratio is not beyond the bound\" to reject at α after Holm's adjustment over the gates judged together (so the 95% two-sided CI may still touch the bound); PASS needs the whole CI on the good side; fewer than the minimum trials, or sides that ran under different conditions (reloads, new connections) without `accept_confounded`, is INCONCLUSIVE.\n");
        if r.simulated {
            out.push_str(
                "\n> **Simulated**: numbers from harness's built-in simulator, not a GPU server.\n",
            );
        }
        if !r.differences.is_empty() {
            out.push_str("\n> **Compared despite differences** (`--force`):\n");
            for d in &r.differences {
                let _ = writeln!(out, "> - {d}");
            }
        }
        Ok(out.into_bytes())
    }
}
