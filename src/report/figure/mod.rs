//! Figures: SVG drawn with plotters from a run's records and its summary, written into
//! `figures/` and inlined in `report.html`.
//!
//! Every figure shows an estimate with its uncertainty or the data behind it, one paper
//! column wide (400 px drawn at 3.5 in puts tick labels at about 7.5 pt), with units and n
//! on its axes, in the Okabe–Ito palette (told apart with colour-blindness too), and
//! "SIMULATED" in its corner when the numbers came from the simulator. Each mark a reader
//! or a test counts (a comparison's CI, a trial's dot, a call's bar) is a
//! `<g class="…">` with a `<title>` saying what it is ([`canvas`]). The same records draw
//! the same bytes.
//!
//! | file | what it shows |
//! |---|---|
//! | `forest.svg` | every comparison: ratio and CI on a log axis, the gates' tolerances |
//! | `strip-<metric>.svg` | one dot per trial per arm and variant, median and quartiles |
//! | `ecdf-<metric>.svg` | TTFT and e2e over calls, pooled, per arm and variant |
//! | `timeline-<arm>.svg` | one trial of a concurrent arm: every call as a bar |
//! | `drift-<metric>.svg` | per-trial values against the round |
//! | `sweep-latency.svg`, `sweep-goodput.svg` | load levels: throughput against latency, goodput against load |

pub mod canvas;
mod drift;
mod ecdf;
mod forest;
mod lines;
mod rows;
mod strip;
mod sweep;
mod timeline;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::results::RunRecords;
use crate::scenario::Metric;
use crate::summary::{RunSamples, Summary};
use canvas::{Canvas, FONT, Sheet, escape};

/// One figure, drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem under `figures/` (`forest`, `strip-ttft_ms`, …).
    pub name: String,
    /// What it shows, as a heading.
    pub title: String,
    /// A caption that stands alone: what is drawn, n, the interval and the test.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

/// Draws every figure the run has data for, in report order, from its summary, its
/// records and their per-trial samples.
pub fn draw(
    summary: &Summary,
    run: &RunRecords,
    samples: &RunSamples,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    if !summary.comparisons.is_empty() {
        figures.push(forest::draw(summary, &run.gates)?);
    }
    for metric in Metric::ALL {
        if let Some(f) = strip::draw(summary, samples, metric)? {
            figures.push(f);
        }
    }
    for metric in [Metric::TtftMs, Metric::E2eMs] {
        if let Some(f) = ecdf::draw(summary, run, metric)? {
            figures.push(f);
        }
    }
    figures.extend(timeline::draw(summary, run)?);
    for metric in Metric::ALL {
        if let Some(f) = drift::draw(summary, run, samples, metric)? {
            figures.push(f);
        }
    }
    figures.extend(sweep::draw(summary)?);
    Ok(figures)
}

/// Width of every figure, px.
pub const WIDTH: u32 = 400;
/// Tick labels, px.
pub const TICK: f64 = 12.0;
/// Axis titles and row labels, px.
pub const LABEL: f64 = 13.0;

/// Ink for text and axes.
pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
/// Grid lines and the line at ratio 1.
pub const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
/// Muted marks (no significant difference).
pub const GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);

/// The Okabe–Ito colours, black and yellow left out (black is the ink; yellow cannot be
/// read on white): told apart under the common colour-vision deficiencies.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
];

/// The colour of a variant: its place among the run's variants, so a variant has the same
/// colour in every figure.
pub fn variant_color(summary: &Summary, variant: &str) -> RGBColor {
    let i = summary
        .setup
        .variants
        .iter()
        .position(|v| v.name == variant)
        .unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// A side of a comparison as a label: `fast` alone, `fast@c16` at a load level, `fast ×2`
/// in an arm of copies of itself, `fast w/ baseline` beside others (the rest of the arm).
/// Arms with names of their own keep them: `fast in my-arm`.
pub fn side_label(arm: &str, variant: &str) -> String {
    let (base, level) = arm.split_once('@').map_or((arm, ""), |(b, l)| (b, l));
    let at = if level.is_empty() {
        String::new()
    } else {
        format!("@{level}")
    };
    let mut others: Vec<&str> = base.split('+').collect();
    let Some(me) = others.iter().position(|v| *v == variant) else {
        return format!("{variant} in {arm}");
    };
    others.remove(me);
    if others.is_empty() {
        format!("{variant}{at}")
    } else if others.iter().all(|v| *v == variant) {
        format!("{variant} ×{}{at}", others.len() + 1)
    } else {
        format!("{variant} w/ {}{at}", others.join("+"))
    }
}

/// A metric as an axis says it: `TTFT (ms)`.
pub fn metric_axis(metric: Metric) -> String {
    let name = match metric {
        Metric::DecodeTps => "decode rate",
        Metric::E2eTps => "end-to-end rate",
        Metric::TtftMs => "TTFT",
        Metric::E2eMs => "end-to-end time",
        Metric::TpotMs => "time per output token",
        Metric::JobE2eMs => "job completion time",
        Metric::JobsPerMin => "jobs per minute",
        Metric::ReqPerS => "requests per second",
        Metric::ThroughputTps => "throughput",
        Metric::GoodputRps => "goodput",
        Metric::SchedTtftMs => "TTFT from schedule",
        Metric::SchedE2eMs => "end-to-end from schedule",
        Metric::JoulesPerToken => "GPU energy per token",
        Metric::TokensPerJoule => "tokens per joule",
    };
    format!("{name} ({})", metric.unit())
}

/// A file name's safe form of an arm name (`fast+fast` → `fast+fast`, `a b` → `a_b`).
pub fn file_stem(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A text style of `size` px in `color`.
pub fn font(size: f64, color: &RGBColor) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(color)
}

/// One figure being drawn: the sheet and the root area plotters draws on.
pub struct Page {
    sheet: Sheet,
    size: (u32, u32),
    /// The whole figure, in pixels from its top left.
    pub root: DrawingArea<Canvas, Shift>,
}

impl Page {
    /// A blank figure of `height` px.
    pub fn new(height: u32) -> anyhow::Result<Page> {
        let sheet = Sheet::default();
        let size = (WIDTH, height);
        let root = Canvas::new(size, sheet.clone()).into_drawing_area();
        root.fill(&WHITE)?;
        Ok(Page { sheet, size, root })
    }

    /// Marks: see [`Sheet::open`].
    pub fn sheet(&self) -> &Sheet {
        &self.sheet
    }

    /// The SVG document: the title on top, "SIMULATED" in the corner when it is.
    pub fn finish(self, title: &str, simulated: bool) -> String {
        let (w, h) = self.size;
        let body = self.sheet.take();
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" role=\"img\" font-family=\"{FONT}\">\n<title>{}</title>\n",
            escape(title)
        );
        out.push_str(&body);
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "<text x=\"8\" y=\"18\" font-size=\"{LABEL}\" font-weight=\"bold\" fill=\"#222222\">{}</text>\n",
                escape(title)
            ),
        );
        if simulated {
            let _ = std::fmt::Write::write_fmt(
                &mut out,
                format_args!(
                    "<g class=\"simulated\"><text x=\"{}\" y=\"18\" text-anchor=\"end\" font-size=\"11\" \
                     font-weight=\"bold\" fill=\"#D55E00\" letter-spacing=\"1\">SIMULATED</text></g>\n",
                    w - 8
                ),
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Tick values for a linear axis from `lo` to `hi`: steps of 1, 2 or 5 × 10ᵏ, about
/// `target` of them.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label: as few decimals as the step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

/// `lo..hi` widened by `pad` of its span on each side (or ±1 when it is a point).
pub fn padded(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    if hi > lo {
        let d = (hi - lo) * pad;
        (lo - d, hi + d)
    } else {
        (
            lo - 1.0_f64.max(lo.abs() * 0.1),
            hi + 1.0_f64.max(hi.abs() * 0.1),
        )
    }
}

/// How a legend entry shows its mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    /// A filled box (areas, bars).
    Box,
    /// A filled dot.
    Dot,
    /// A filled square.
    Square,
    /// An open circle.
    Ring,
    /// A line.
    Line,
    /// A dashed line.
    Dashed,
}

/// One legend entry.
pub type Key = (String, RGBColor, Swatch);

fn key_width(label: &str) -> i32 {
    22 + canvas::text_width(label, TICK).ceil() as i32 + 12
}

/// Where each entry of a legend starting at `(x, y)` goes, wrapping at the right edge.
fn key_places(x: i32, y: i32, labels: impl Iterator<Item = String>) -> Vec<(i32, i32)> {
    let (mut cx, mut cy) = (x, y);
    let mut out = Vec::new();
    for label in labels {
        let w = key_width(&label);
        if cx + w > WIDTH as i32 - 8 && cx > x {
            cx = x;
            cy += 16;
        }
        out.push((cx, cy));
        cx += w;
    }
    out
}

/// Draws a legend at `(x, y)`, one row of entries wrapping as needed.
pub fn legend(page: &Page, x: i32, y: i32, keys: &[Key]) -> anyhow::Result<()> {
    let sheet = page.sheet();
    sheet.layer("legend");
    for ((label, color, swatch), (cx, cy)) in
        keys.iter()
            .zip(key_places(x, y, keys.iter().map(|k| k.0.clone())))
    {
        let (mx, my) = (cx + 5, cy + 7);
        match swatch {
            Swatch::Box => page.root.draw(&Rectangle::new(
                [(cx, cy + 2), (cx + 10, cy + 12)],
                color.filled(),
            ))?,
            Swatch::Dot => page.root.draw(&Circle::new((mx, my), 5, color.filled()))?,
            Swatch::Square => page.root.draw(&Rectangle::new(
                [(mx - 5, my - 5), (mx + 5, my + 5)],
                color.filled(),
            ))?,
            Swatch::Ring => page
                .root
                .draw(&Circle::new((mx, my), 4, color.stroke_width(2)))?,
            Swatch::Line => page.root.draw(&PathElement::new(
                vec![(cx, my), (cx + 16, my)],
                color.stroke_width(2),
            ))?,
            Swatch::Dashed => {
                for a in [cx, cx + 11] {
                    page.root.draw(&PathElement::new(
                        vec![(a, my), (a + 5, my)],
                        color.stroke_width(2),
                    ))?;
                }
            }
        }
        page.root.draw(&Text::new(
            label.clone(),
            (cx + 20, cy),
            font(TICK, &INK).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Top,
            )),
        ))?;
    }
    sheet.close();
    Ok(())
}

/// How many rows a legend of `labels` needs at full width.
pub fn legend_rows(labels: &[String]) -> i32 {
    key_places(8, 0, labels.iter().cloned())
        .last()
        .map_or(1, |p| p.1 / 16 + 1)
}

/// A number for a mark's title: four significant digits.
pub fn num(x: f64) -> String {
    super::sig4(x)
}
