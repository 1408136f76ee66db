//! The forest plot: every comparison as the ratio variant / baseline with its CI on a log
//! axis, grouped by metric, a line at 1, each gate's tolerance as a band on its row, and
//! the verdict in the marker's shape and colour.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::rows::{RowAxis, Rows};
use super::{GREY, INK, Key, Page, Swatch, TICK, WIDTH, font, metric_axis, num, side_label};

/// Room on the right for the trials per side.
const N_COLUMN: i32 = 30;
use crate::report::CONFOUNDED_MARK;
use crate::scenario::{Direction, Gate, Metric};
use crate::summary::{ComparisonRow, Summary, Verdict};

const FASTER: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const SLOWER: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const BAND: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);

fn direction(metric: Metric) -> &'static str {
    match metric.direction() {
        Direction::HigherIsBetter => "higher is faster",
        Direction::LowerIsBetter => "lower is faster",
    }
}

/// The gate that judges this comparison, if the scenario declared one.
fn gate_of<'a>(gates: &'a [Gate], c: &ComparisonRow) -> Option<&'a Gate> {
    gates.iter().find(|g| {
        g.metric == c.metric
            && g.variant == c.variant
            && g.arm() == c.arm
            && g.baseline == c.baseline
    })
}

/// Draws `forest.svg`.
pub fn draw(summary: &Summary, gates: &[Gate]) -> anyhow::Result<super::Figure> {
    let mut rows = Rows::default();
    let mut marks: Vec<(usize, &ComparisonRow)> = Vec::new();
    for metric in Metric::ALL {
        let of_metric: Vec<&ComparisonRow> = summary
            .comparisons
            .iter()
            .filter(|c| c.metric == metric)
            .collect();
        if of_metric.is_empty() {
            continue;
        }
        rows.header(format!("{}, {}", metric_axis(metric), direction(metric)));
        for c in of_metric {
            let label = format!(
                "{}{}{}",
                side_label(&c.arm, &c.variant),
                if c.paired { ", paired" } else { "" },
                if c.confound_warning.is_some() {
                    CONFOUNDED_MARK
                } else {
                    ""
                },
            );
            marks.push((rows.row(label), c));
        }
    }
    // The axis spans every CI, every gate's threshold and 1.
    let mut lo: f64 = 1.0;
    let mut hi: f64 = 1.0;
    for (_, c) in &marks {
        if let Some(r) = &c.stats.ratio {
            lo = lo.min(r.low);
            hi = hi.max(r.high);
        }
        if let Some(g) = gate_of(gates, c) {
            lo = lo.min(g.threshold);
            hi = hi.max(g.threshold);
        }
    }
    let any_gate = marks.iter().any(|(_, c)| gate_of(gates, c).is_some());
    let mut legend: Vec<Key> = vec![
        ("faster".to_owned(), FASTER, Swatch::Dot),
        ("slower".to_owned(), SLOWER, Swatch::Square),
        ("not significant".to_owned(), GREY, Swatch::Ring),
    ];
    if any_gate {
        legend.push(("gate tolerance".to_owned(), BAND, Swatch::Box));
    }
    rows.gutter(N_COLUMN);
    let page_rows = rows.layout(&legend.iter().map(|l| l.0.clone()).collect::<Vec<_>>());
    let page = Page::new(page_rows.height)?;
    super::legend(&page, 8, 28, &legend)?;
    let axis = RowAxis::log(lo, hi);
    let chart = page_rows.chart(&page, &axis, "ratio variant / baseline (log scale)")?;
    let sheet = page.sheet();

    // The gates' bands first, then the line of no difference over them, then the CIs.
    for (row, c) in &marks {
        let y = chart.py(*row);
        if let Some(g) = gate_of(gates, c) {
            sheet.open(
                "gate",
                &format!(
                    "gate on {} {}: ratio {} {}",
                    c.metric,
                    side_label(&c.arm, &c.variant),
                    g.bound.symbol(),
                    num(g.threshold)
                ),
            );
            let (a, b) = (chart.px(axis.x(1.0)), chart.px(axis.x(g.threshold)));
            page.root.draw(&Rectangle::new(
                [(a.min(b), y - 8), (a.max(b), y + 8)],
                BAND.filled(),
            ))?;
            page.root.draw(&PathElement::new(
                vec![(b, y - 8), (b, y + 8)],
                GREY.stroke_width(1),
            ))?;
            sheet.close();
        }
    }
    sheet.layer("no-difference");
    page_rows.vline(&page, &chart, chart.px(axis.x(1.0)), INK.into())?;
    sheet.close();
    for (row, c) in &marks {
        let y = chart.py(*row);
        let Some(r) = &c.stats.ratio else { continue };
        let (color, class) = match c.verdict {
            Verdict::Faster => (FASTER, "ci faster"),
            Verdict::Slower => (SLOWER, "ci slower"),
            Verdict::NoSignificantDifference => (GREY, "ci not-significant"),
            Verdict::Undetermined => (GREY, "ci undetermined"),
        };
        sheet.open(
            class,
            &format!(
                "{} {}: ratio {} [{}, {}] vs {}, {}",
                c.metric,
                side_label(&c.arm, &c.variant),
                num(r.ratio),
                num(r.low),
                num(r.high),
                side_label(&c.baseline_arm, &c.baseline),
                c.verdict.words()
            ),
        );
        let (l, h, m) = (
            chart.px(axis.x(r.low)),
            chart.px(axis.x(r.high)),
            chart.px(axis.x(r.ratio)),
        );
        page.root.draw(&PathElement::new(
            vec![(l, y), (h, y)],
            color.stroke_width(2),
        ))?;
        page.root.draw(&PathElement::new(
            vec![(l, y - 4), (l, y + 4)],
            color.stroke_width(2),
        ))?;
        page.root.draw(&PathElement::new(
            vec![(h, y - 4), (h, y + 4)],
            color.stroke_width(2),
        ))?;
        match c.verdict {
            Verdict::Faster => page.root.draw(&Circle::new((m, y), 5, color.filled()))?,
            Verdict::Slower => page.root.draw(&Rectangle::new(
                [(m - 5, y - 5), (m + 5, y + 5)],
                color.filled(),
            ))?,
            _ => page
                .root
                .draw(&Circle::new((m, y), 4, color.stroke_width(2)))?,
        }
        sheet.close();
    }
    // The trials on each side, right of the axis.
    sheet.layer("n");
    for (row, c) in &marks {
        page.root.draw(&Text::new(
            format!("{}|{}", c.stats.n_variant, c.stats.n_baseline),
            (WIDTH as i32 - 8, chart.py(*row)),
            font(TICK, &GREY).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    sheet.close();
    let n = marks.len();
    let confounded = marks.iter().any(|(_, c)| c.confound_warning.is_some());
    let caption = format!(
        "Every comparison against the baseline: the ratio of per-trial geometric means \
         (variant / baseline) with its {:.0}% Welch CI on the log scale; n|n at the right are \
         the trials on each side; paired rows compare the two variants within the same \
         trials of a mixed arm (paired t on logs). Filled circle: faster, filled square: slower, open circle: no \
         significant difference, by Holm-adjusted t-tests at α = {} over all {n} \
         comparisons.{}{}",
        summary.confidence * 100.0,
        summary.alpha,
        if confounded {
            format!(
                " {CONFOUNDED_MARK}: the two sides ran under different conditions (one reloaded \
                 the model or opened connections more often), so the ratio is confounded with them."
            )
        } else {
            String::new()
        },
        if any_gate {
            " Grey bands reach from 1 to each gate's tolerance."
        } else {
            ""
        }
    );
    Ok(super::Figure {
        name: "forest".to_owned(),
        title: "Ratios to the baseline".to_owned(),
        caption,
        svg: page.finish("Ratios to the baseline", summary.simulated),
    })
}
