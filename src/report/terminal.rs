//! The summary printed at the end of `harness run` and by `harness report`: an overview per
//! arm and variant, every comparison against the baseline (green when significantly
//! faster, red when slower, only when stdout is a terminal), and the concurrency table.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell as ComfyCell, CellAlignment, Color, ContentArrangement, Table};

use super::{
    Align, COMPARISON_NOTE, CONCURRENCY_NOTE, Exporter, Grid, Tone, all_warnings, concurrency_grid,
    drift_grid, gate_grid, jobs_grid, loaded_findings, paper_grid, serving_grid,
};
use crate::gate::GateReport;
use crate::gate::power::PowerPlan;
use crate::scenario::Metric;
use crate::stats::Percentiles;
use crate::summary::Summary;

/// Renders grids with comfy-table; `color` turns tones into ANSI colours.
pub struct Terminal {
    /// Colour significant results (only when writing to a terminal).
    pub color: bool,
}

impl Terminal {
    fn table(&self, grid: &Grid) -> String {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t.set_header(grid.header.clone());
        for row in &grid.rows {
            t.add_row(row.iter().map(|c| {
                let cell = ComfyCell::new(format!("{}{}", c.text, c.mark));
                match c.tone {
                    Tone::Plain => cell,
                    Tone::Good => cell.fg(Color::Green),
                    Tone::Bad => cell.fg(Color::Red),
                }
            }));
        }
        for (i, a) in grid.align.iter().enumerate() {
            if let (Align::Right, Some(col)) = (a, t.column_mut(i)) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        t.to_string()
    }

    /// The whole terminal summary.
    pub fn text(&self, s: &Summary) -> String {
        let mut out = String::new();
        if s.simulated {
            out.push_str(
                "SIMULATED: numbers from harness's built-in simulator, not a GPU server.\n",
            );
        }
        if !s.complete {
            out.push_str("INCOMPLETE: the run stopped before its plan finished.\n");
        }
        if let Some(t) = &s.setup.gpu_telemetry {
            out.push_str(&t.words());
            out.push('\n');
        }
        if let Some(m) = &s.setup.server_metrics {
            out.push_str(&m.words());
            out.push('\n');
        }
        out.push_str(&self.table(&overview_grid(s)));
        let findings = loaded_findings(s);
        // The table ends without a newline: the notices under it start on a line of their own.
        if !findings.is_empty()
            || !s.server_warnings.is_empty()
            || !s.server_disagreements.is_empty()
        {
            out.push('\n');
        }
        for finding in findings {
            out.push_str(&format!(
                "NOT LOADED AS ASKED: {}\n",
                finding.replace("**", "")
            ));
        }
        for warning in &s.server_warnings {
            out.push_str(&format!("SERVER COUNTED: {warning}\n"));
        }
        for d in &s.server_disagreements {
            out.push_str(&format!("SERVERS DISAGREE: {d}\n"));
        }
        if let Some(seq) = &s.sequential {
            out.push_str(&format!(
                "\nSEQUENTIAL: {}\n",
                crate::summary::sequential::words(seq)
            ));
        }
        out.push_str("\nn = measured trials; decode tok/s = per-trial mean of eval_count/eval_duration, mean ± 95% t half-width; latencies in ms, pooled over calls; out tok = mean per call; cold = successful calls that (re)loaded the model; new conn = successful calls that opened a connection (their TTFT includes connecting).\n");

        if !s.comparisons.is_empty() {
            out.push('\n');
            out.push_str(&self.table(&paper_grid(s)));
            out.push_str(&format!(
                "\n{} comparisons; above 1 is faster for rates (tps), below 1 for times (ms). {COMPARISON_NOTE}\n",
                s.comparisons.len()
            ));
            for (about, w) in all_warnings(s) {
                out.push_str(&format!("WARNING ({about}): {w}\n"));
            }
        }

        if !s.serving.is_empty() {
            out.push('\n');
            out.push_str(&self.table(&serving_grid(s)));
            out.push_str("\nload levels: req/s, tok/s, goodput = per-trial rates over the measured window; TTFT, e2e pooled (from the schedule in an open loop).\n");
            for sat in &s.saturation {
                out.push_str(&format!("{} in {}: {}\n", sat.variant, sat.arm, sat.note));
            }
        }
        if !s.jobs.is_empty() {
            out.push('\n');
            out.push_str(&self.table(&jobs_grid(s)));
            out.push_str("\njobs: means over successful jobs; LLM, tool = time along the critical path; sibling wait = time outputs waited for a slower sibling; the path gives each agent's mean share of the job.\n");
        }
        if !s.concurrency.is_empty() {
            out.push('\n');
            out.push_str(&self.table(&concurrency_grid(s)));
            out.push('\n');
            out.push_str(CONCURRENCY_NOTE);
            out.push('\n');
        }
        let drifting = drift_grid(s);
        if !drifting.rows.is_empty() {
            out.push('\n');
            out.push_str(&self.table(&drifting));
            out.push_str("\ndrift = trend of the log per-trial values over the arm's rounds, Holm-adjusted over every series.\n");
        }
        out
    }
}

impl Exporter for Terminal {
    fn render(&self, summary: &Summary) -> anyhow::Result<Vec<u8>> {
        Ok(self.text(summary).into_bytes())
    }
}

impl Exporter<GateReport> for Terminal {
    fn render(&self, report: &GateReport) -> anyhow::Result<Vec<u8>> {
        Ok(self.gate_text(report).into_bytes())
    }
}

impl Terminal {
    /// The gate table with its headline.
    pub fn gate_text(&self, r: &GateReport) -> String {
        let mut out = self.table(&gate_grid(r));
        out.push('\n');
        out.push_str(&r.headline());
        out.push('\n');
        out
    }
}

impl Terminal {
    /// `harness power`: the comparisons' and the gates' plans, and what they assume.
    pub fn power_text(&self, plan: &PowerPlan) -> String {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let trials = |k: Option<u32>| k.map_or_else(|| "> 100000".to_owned(), |k| k.to_string());
        let mut out = String::new();
        if plan.simulated {
            out.push_str("SIMULATED: the pilot ran on harness's built-in simulator.\n");
        }
        out.push_str(&format!(
            "Trials a side to detect a {} change with {:.0}% power (two-sided t test on logs, α = {}; Welch, or paired within mixed arms), from the per-trial spread of {}:\n",
            pct(plan.effect),
            plan.power * 100.0,
            plan.alpha,
            plan.pilot
        ));
        let mut grid = Grid::new(&[
            ("metric", Align::Left),
            ("arm", Align::Left),
            ("variant", Align::Left),
            ("against", Align::Left),
            ("n now", Align::Right),
            ("sd log", Align::Right),
            ("detectable now", Align::Right),
            ("trials needed", Align::Right),
        ]);
        for c in &plan.comparisons {
            let sd = match c.sd_baseline {
                Some(b) => format!("{:.3} / {:.3}", c.sd_variant, b),
                None => format!("{:.3}", c.sd_variant),
            };
            grid.push(vec![
                c.metric.to_string(),
                c.arm.clone(),
                c.variant.clone(),
                c.against.clone(),
                c.n.to_string(),
                sd,
                c.detectable_now
                    .map_or_else(|| "–".to_owned(), |d| format!("±{}", pct(d))),
                trials(c.trials),
            ]);
        }
        out.push_str(&self.table(&grid));
        out.push_str(&format!(
            "\nsd log = per-trial standard deviation of ln(value), variant / baseline (paired: of the per-trial log ratios); detectable now = the smallest change the pilot's n finds with {:.0}% power.\n",
            plan.power * 100.0
        ));
        if !plan.gates.is_empty() {
            out.push_str(&format!(
                "\nGates: trials a side for PASS to be {:.0}% likely when nothing changed, and FAIL when the variant is {} beyond the bound (Holm's adjustment over several gates left out):\n",
                plan.power * 100.0,
                pct(plan.effect)
            ));
            let mut grid = Grid::new(&[
                ("gate", Align::Left),
                ("n now", Align::Right),
                ("P(PASS) now", Align::Right),
                ("trials to PASS", Align::Right),
                ("P(FAIL) now", Align::Right),
                ("trials to FAIL", Align::Right),
            ]);
            for g in &plan.gates {
                grid.push(vec![
                    g.gate.clone(),
                    g.n.to_string(),
                    format!("{:.2}", g.pass_now),
                    trials(g.trials_to_pass),
                    format!("{:.2}", g.fail_now),
                    trials(g.trials_to_fail),
                ]);
            }
            out.push_str(&self.table(&grid));
            out.push('\n');
        }
        for u in &plan.unplanned {
            out.push_str(&format!("not planned: {u}\n"));
        }
        out
    }
}

/// Per arm and variant, the numbers people look at first.
fn overview_grid(s: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("arm", Align::Left),
        ("variant", Align::Left),
        ("n", Align::Right),
        ("decode tok/s (95% CI)", Align::Right),
        ("TTFT p50", Align::Right),
        ("TTFT p95", Align::Right),
        ("e2e p50", Align::Right),
        ("e2e p95", Align::Right),
        ("out tok", Align::Right),
        ("cold", Align::Right),
        ("new conn", Align::Right),
        ("failed", Align::Right),
    ]);
    let dash = || "–".to_owned();
    for g in &s.groups {
        let decode = g
            .per_trial(Metric::DecodeTps)
            .map(|d| match (d.ci_low, d.ci_high) {
                (Some(lo), Some(hi)) => format!("{:.1} ± {:.1}", d.mean, (hi - lo) / 2.0),
                _ => format!("{:.1}", d.mean),
            })
            .unwrap_or_else(dash);
        let pooled = |m: Metric, f: fn(&Percentiles) -> f64| {
            g.pooled(m)
                .map(|p| format!("{:.0}", f(p)))
                .unwrap_or_else(dash)
        };
        grid.push(vec![
            g.arm.clone(),
            g.variant.clone(),
            g.trials.to_string(),
            decode,
            pooled(Metric::TtftMs, |p| p.p50),
            pooled(Metric::TtftMs, |p| p.p95),
            pooled(Metric::E2eMs, |p| p.p50),
            pooled(Metric::E2eMs, |p| p.p95),
            g.output_tokens_mean
                .map(|t| format!("{t:.0}"))
                .unwrap_or_else(dash),
            g.cold_calls.to_string(),
            format!("{}/{}", g.new_connection_calls, g.calls - g.failed_calls),
            format!("{}/{}", g.failed_calls, g.calls),
        ]);
    }
    grid
}
