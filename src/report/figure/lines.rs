//! Figures of lines on two linear axes (ECDFs, drift, sweeps): the chart frame with its
//! grid and axis titles, one style per series and a legend that shows the lines.

use super::{
    GRID, INK, Key, LABEL, PALETTE, Page, Swatch, TICK, font, legend_rows, linear_ticks, tick_label,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// A chart on two linear axes.
pub type Chart =
    ChartContext<'static, super::canvas::Canvas, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// How one series is drawn.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its legend entry.
    pub label: String,
    /// Its colour.
    pub color: RGBColor,
    /// Drawn dashed (when the palette has run out of colours).
    pub dashed: bool,
}

impl Series {
    /// The `i`-th series' style: the palette's colours, then the same dashed.
    pub fn nth(i: usize, label: String) -> Series {
        Series {
            label,
            color: PALETTE[i % PALETTE.len()],
            dashed: i >= PALETTE.len(),
        }
    }

    /// Draws a line through `points` on `chart`.
    pub fn line(&self, chart: &mut Chart, points: Vec<(f64, f64)>) -> anyhow::Result<()> {
        let style = self.color.stroke_width(2);
        if self.dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?;
        } else {
            chart.draw_series(LineSeries::new(points, style))?;
        }
        Ok(())
    }
}

impl Series {
    /// Its legend entry.
    pub fn key(&self) -> Key {
        let swatch = if self.dashed {
            Swatch::Dashed
        } else {
            Swatch::Line
        };
        (self.label.clone(), self.color, swatch)
    }
}

/// A figure for lines of `series`: the legend under the title, then `height` px for the
/// chart, which starts at the returned offset.
pub fn page(series: &[Series], height: u32) -> anyhow::Result<(Page, i32)> {
    let labels: Vec<String> = series.iter().map(|s| s.label.clone()).collect();
    let top = 28 + legend_rows(&labels) * 16 + 4;
    let page = Page::new(top as u32 + height)?;
    let keys: Vec<Key> = series.iter().map(Series::key).collect();
    super::legend(&page, 8, 28, &keys)?;
    Ok((page, top))
}

/// The smallest and largest x and y of `points`.
pub fn extent(points: impl IntoIterator<Item = (f64, f64)>) -> ((f64, f64), (f64, f64)) {
    let inf = f64::INFINITY;
    points.into_iter().fold(
        ((inf, -inf), (inf, -inf)),
        |((x0, x1), (y0, y1)), (x, y)| ((x0.min(x), x1.max(x)), (y0.min(y), y1.max(y))),
    )
}

/// A chart below `top` on `page` for `x` × `y`, with its grid, ticks and axis titles.
pub fn chart(
    page: &Page,
    top: i32,
    x: (f64, f64),
    y: (f64, f64),
    x_desc: &str,
    y_desc: &str,
) -> anyhow::Result<Chart> {
    let area = page.root.margin(top, 4, 4, 14);
    let mut chart = ChartBuilder::on(&area)
        .x_label_area_size(42)
        .y_label_area_size(58)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    let x_ticks = linear_ticks(x.0, x.1, 5);
    let y_ticks = linear_ticks(y.0, y.1, 5);
    let step = |t: &[f64]| if t.len() > 1 { t[1] - t[0] } else { 1.0 };
    let (xs, ys) = (step(&x_ticks), step(&y_ticks));
    let x_fmt = move |v: &f64| tick_label(*v, xs);
    let y_fmt = move |v: &f64| tick_label(*v, ys);
    page.sheet().layer("axes");
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .axis_style(INK)
        .x_labels(x_ticks.len().max(2))
        .y_labels(y_ticks.len().max(2))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(font(TICK, &INK))
        .axis_desc_style(font(LABEL, &INK))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    page.sheet().close();
    Ok(chart)
}
