//! Markdown (GitHub-flavoured): `report.md` (the outline of `document.rs`: verdicts in
//! sentences, the tables, the figures linked from `figures/`, the methods) and `gate.md`.

use std::fmt::Write;

use super::document::{Block, Report, outline};
use super::figure::Figure;
use super::{Align, Exporter, Grid, gate_grid};
use crate::gate::GateReport;
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

/// Spells an outline: each block ends its last line, and one blank line separates blocks.
pub fn spell(blocks: &[Block], figures: &[Figure]) -> String {
    let mut out = String::new();
    for block in blocks {
        let text = match block {
            Block::Title(t) => format!("# {t}\n"),
            Block::Heading(t) => format!("## {t}\n"),
            Block::Subheading(t) => format!("### {t}\n"),
            Block::Para(t) => format!("{t}\n"),
            Block::Callout(t) => format!("> {t}\n"),
            Block::Bullets(items) if items.is_empty() => continue,
            Block::Bullets(items) => items.iter().map(|i| format!("- {i}\n")).collect(),
            Block::Table(grid) => table(grid),
            Block::Figure(i) => {
                let f = &figures[*i];
                format!(
                    "![{}](figures/{}.svg)\n\n*{}.* {}\n",
                    f.title, f.name, f.title, f.caption
                )
            }
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text);
    }
    out
}

/// `report.md` without figures.
impl Exporter for Markdown {
    fn render(&self, s: &Summary) -> anyhow::Result<Vec<u8>> {
        Ok(spell(&outline(s, &[]), &[]).into_bytes())
    }
}

/// `report.md`, the figures linked from `figures/`.
impl Exporter<Report> for Markdown {
    fn render(&self, r: &Report) -> anyhow::Result<Vec<u8>> {
        Ok(spell(&outline(&r.summary, &r.figures), &r.figures).into_bytes())
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
        if let Some(seq) = &r.sequential {
            let _ = write!(
                out,
                "\n**Sequential stopping.** {} Each gate is therefore judged by the anytime-valid interval of its per-round ratios, at α divided by the number of gates, not by the fixed-n Welch interval described above.\n",
                crate::summary::sequential::words(seq)
            );
        }
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
