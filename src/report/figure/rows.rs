//! Figures with one labelled row per thing measured (the forest plot, the strip plots): the
//! labels on the left, where long arm names fit, a value axis along the bottom.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::text_width;
use super::{GRID, INK, LABEL, Page, TICK, WIDTH, font, legend_rows, linear_ticks, tick_label};

/// Height of a row, px.
const ROW: i32 = 18;
/// Below the rows: ticks, their labels and the axis title.
const AXIS: i32 = 44;
/// The title's band on top.
const TITLE: i32 = 28;

/// The labelled rows of a figure, top to bottom.
#[derive(Debug, Default)]
pub struct Rows {
    rows: Vec<(String, bool)>,
    gutter: i32,
}

impl Rows {
    /// A heading row (bold, no mark); returns its index.
    pub fn header(&mut self, label: String) -> usize {
        self.rows.push((label, true));
        self.rows.len() - 1
    }

    /// A row for a mark; returns its index.
    pub fn row(&mut self, label: String) -> usize {
        self.rows.push((label, false));
        self.rows.len() - 1
    }

    /// Keeps `px` on the right of the axis for a column of numbers.
    pub fn gutter(&mut self, px: i32) {
        self.gutter = px;
    }

    /// Where everything goes, with a legend of `legend` entries under the title.
    pub fn layout(self, legend: &[String]) -> Layout {
        let legend_h = if legend.is_empty() {
            0
        } else {
            legend_rows(legend) * 16 + 4
        };
        let top = TITLE + legend_h + 4;
        let widest = self
            .rows
            .iter()
            .filter(|r| !r.1)
            .map(|r| text_width(&r.0, LABEL).ceil() as i32)
            .max()
            .unwrap_or(0);
        let left = (widest + 16).clamp(60, WIDTH as i32 * 48 / 100);
        let height = (top + ROW * self.rows.len() as i32 + AXIS) as u32;
        Layout {
            rows: self.rows,
            top,
            left,
            right: WIDTH as i32 - 14 - self.gutter,
            height,
        }
    }
}

/// A value axis: linear, or logarithmic for ratios.
pub struct RowAxis {
    log: bool,
    lo: f64,
    hi: f64,
}

impl RowAxis {
    /// A log axis spanning `lo..hi` (positive), with a margin.
    pub fn log(lo: f64, hi: f64) -> RowAxis {
        let (l, h) = (lo.max(1e-9).ln(), hi.max(1e-9).ln());
        let pad = ((h - l) * 0.08).max(0.01);
        RowAxis {
            log: true,
            lo: l - pad,
            hi: h + pad,
        }
    }

    /// A linear axis spanning `lo..hi`, with a margin.
    pub fn linear(lo: f64, hi: f64) -> RowAxis {
        let (lo, hi) = super::padded(lo, hi, 0.06);
        RowAxis { log: false, lo, hi }
    }

    /// A linear axis from 0 to `hi`, with a margin on the right.
    pub fn from_zero(hi: f64) -> RowAxis {
        RowAxis {
            log: false,
            lo: 0.0,
            hi: if hi > 0.0 { hi * 1.03 } else { 1.0 },
        }
    }

    /// A value on the axis' own scale.
    pub fn x(&self, v: f64) -> f64 {
        if self.log { v.max(1e-12).ln() } else { v }
    }

    /// The ticks and their labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        if self.log {
            // Ratios people read, the roundest first: the first ones that fit are kept.
            const NICE: [f64; 25] = [
                2.0, 0.5, 10.0, 0.1, 1.5, 0.8, 1.25, 0.9, 1.1, 5.0, 0.2, 3.0, 0.7, 1.2, 0.6, 0.4,
                4.0, 0.25, 0.95, 1.05, 20.0, 0.05, 0.02, 0.01, 1.02,
            ];
            let inside: Vec<f64> = NICE
                .into_iter()
                .filter(|v| (self.lo..=self.hi).contains(&v.ln()))
                .collect();
            // Keep ticks at least 1/7 of the axis apart, always keeping 1.
            let min_gap = (self.hi - self.lo) / 7.0;
            let mut kept: Vec<f64> = vec![1.0];
            for v in inside.iter().copied() {
                if kept.iter().all(|k| (k.ln() - v.ln()).abs() >= min_gap) {
                    kept.push(v);
                }
            }
            kept.retain(|v| (self.lo..=self.hi).contains(&v.ln()));
            kept.sort_by(f64::total_cmp);
            kept.into_iter()
                .map(|v| (v.ln(), format!("{}", (v * 1000.0).round() / 1000.0)))
                .collect()
        } else {
            let ticks = linear_ticks(self.lo, self.hi, 5);
            let step = if ticks.len() > 1 {
                ticks[1] - ticks[0]
            } else {
                1.0
            };
            ticks
                .into_iter()
                .map(|v| (v, tick_label(v, step)))
                .collect()
        }
    }
}

/// Rows placed on a page.
pub struct Layout {
    rows: Vec<(String, bool)>,
    top: i32,
    left: i32,
    right: i32,
    /// The figure's height, px.
    pub height: u32,
}

impl Layout {
    /// The bottom of the last row.
    pub fn bottom(&self) -> i32 {
        self.top + ROW * self.rows.len() as i32
    }

    /// Draws the labels, the grid and the axis, and returns the pixel mapping.
    pub fn chart(&self, page: &Page, axis: &RowAxis, title: &str) -> anyhow::Result<RowChart> {
        let chart = RowChart {
            left: self.left,
            right: self.right,
            top: self.top,
            lo: axis.lo,
            hi: axis.hi,
        };
        let sheet = page.sheet();
        sheet.layer("axes");
        let bottom = self.bottom();
        for (v, label) in axis.ticks() {
            let x = chart.px(v);
            self.vline(page, &chart, x, GRID.into())?;
            page.root
                .draw(&PathElement::new(vec![(x, bottom), (x, bottom + 4)], INK))?;
            page.root.draw(&Text::new(
                label,
                (x, bottom + 6),
                font(TICK, &INK).pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        page.root.draw(&PathElement::new(
            vec![(chart.left, bottom), (chart.right, bottom)],
            INK,
        ))?;
        // Centred under the axis, but kept inside the figure when it is wider than the axis.
        let half = (text_width(title, LABEL) / 2.0).ceil() as i32;
        let centre = ((chart.left + chart.right) / 2).clamp(half + 4, WIDTH as i32 - half - 4);
        page.root.draw(&Text::new(
            title.to_owned(),
            (centre, bottom + 24),
            font(LABEL, &INK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        for (i, (label, header)) in self.rows.iter().enumerate() {
            let y = chart.py(i);
            if *header {
                page.root.draw(&Text::new(
                    label.clone(),
                    (8, y),
                    ("sans-serif", LABEL)
                        .into_font()
                        .style(FontStyle::Bold)
                        .color(&INK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                ))?;
            } else {
                page.root.draw(&Text::new(
                    fit(label, f64::from(self.left - 16)),
                    (self.left - 8, y),
                    font(LABEL, &INK).pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
            }
        }
        sheet.close();
        Ok(chart)
    }
}

impl Layout {
    /// A vertical line at pixel column `x` through the rows with marks, broken at the
    /// headings so it never crosses their text.
    pub fn vline(
        &self,
        page: &Page,
        chart: &RowChart,
        x: i32,
        style: ShapeStyle,
    ) -> anyhow::Result<()> {
        let mut i = 0;
        while i < self.rows.len() {
            if self.rows[i].1 {
                i += 1;
                continue;
            }
            let first = i;
            while i < self.rows.len() && !self.rows[i].1 {
                i += 1;
            }
            let (a, b) = (chart.py(first) - ROW / 2, chart.py(i - 1) + ROW / 2);
            page.root
                .draw(&PathElement::new(vec![(x, a), (x, b)], style))?;
        }
        Ok(())
    }
}

/// `label`, cut to `width` px with an ellipsis when it is wider.
fn fit(label: &str, width: f64) -> String {
    if text_width(label, LABEL) <= width {
        return label.to_owned();
    }
    let mut out = String::new();
    for c in label.chars() {
        if text_width(&out, LABEL) + text_width(&format!("{c}…"), LABEL) > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// From values to pixels.
pub struct RowChart {
    left: i32,
    right: i32,
    top: i32,
    lo: f64,
    hi: f64,
}

impl RowChart {
    /// The pixel column of a value on the axis' scale ([`RowAxis::x`]).
    pub fn px(&self, x: f64) -> i32 {
        let t = ((x - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        self.left + (t * f64::from(self.right - self.left)).round() as i32
    }

    /// The pixel line through the middle of row `i`.
    pub fn py(&self, i: usize) -> i32 {
        self.top + ROW * i as i32 + ROW / 2
    }
}
