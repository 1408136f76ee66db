//! The terminal summary: comfy-table renderings of a [`Summary`].

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};

use crate::summary::Summary;

fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".to_owned())
}

/// Per arm and variant, then per concurrent arm; ready to print.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    if summary.simulated {
        out.push_str("SIMULATED: numbers from harness's built-in simulator, not a GPU server.\n");
    }
    if !summary.complete {
        out.push_str("INCOMPLETE: the run stopped before its plan finished.\n");
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "arm",
            "variant",
            "n",
            "decode tok/s (95% CI)",
            "TTFT p50",
            "TTFT p95",
            "e2e p50",
            "e2e p95",
            "out tok",
            "cold",
            "failed",
        ]);
    for g in &summary.groups {
        let decode = g
            .decode_tps
            .map(|e| match (e.ci_low, e.ci_high) {
                (Some(lo), Some(hi)) => format!("{:.1} ± {:.1}", e.mean, (hi - lo) / 2.0),
                _ => format!("{:.1}", e.mean),
            })
            .unwrap_or_else(|| "–".to_owned());
        let ms = |p: Option<f64>| num(p, 0);
        t.add_row(vec![
            g.arm.clone(),
            g.variant.clone(),
            g.trials.to_string(),
            decode,
            ms(g.ttft_ms.map(|p| p.p50)),
            ms(g.ttft_ms.map(|p| p.p95)),
            ms(g.e2e_ms.map(|p| p.p50)),
            ms(g.e2e_ms.map(|p| p.p95)),
            num(g.output_tokens_mean, 0),
            g.cold_calls.to_string(),
            format!("{}/{}", g.failed_calls, g.calls),
        ]);
    }
    for i in 2..11 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(&t.to_string());
    out.push_str("\nn = measured trials; decode tok/s = per-trial mean of eval_count/eval_duration, mean ± 95% t half-width; latencies in ms, pooled over calls; out tok = mean per call.\n");

    if !summary.concurrency.is_empty() {
        let mut c = Table::new();
        c.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(vec![
                "concurrent arm",
                "agents",
                "wall ms",
                "Σ solo ms",
                "speedup",
                "efficiency",
                "per-agent decode ×",
                "per-agent TTFT p50 ×",
            ]);
        for a in &summary.concurrency {
            let per = |f: &dyn Fn(&crate::summary::Slowdown) -> Option<f64>| {
                a.slowdown
                    .iter()
                    .map(|s| format!("{} {}", s.variant, num(f(s), 2)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            c.add_row(vec![
                a.arm.clone(),
                a.agents.to_string(),
                format!("{:.0}", a.wall_ms),
                num(a.solo_wall_sum_ms, 0),
                num(a.speedup, 2),
                num(a.efficiency, 2),
                per(&|s| s.decode_tps_ratio),
                per(&|s| s.ttft_p50_ratio),
            ]);
        }
        out.push('\n');
        out.push_str(&c.to_string());
        out.push_str("\nspeedup = Σ solo wall / concurrent wall (1.0 = no gain); efficiency = speedup / agents; × = concurrent / solo.\n");
    }
    out
}
