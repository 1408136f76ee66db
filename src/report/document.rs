//! What the report says, in order, before any syntax: headings, paragraphs, lists, grids
//! and figures. `report.md` and `report.html` spell the same outline, so they cannot
//! disagree about what a run found. Text may carry two inline marks, `**strong**` and
//! `` `code` ``, which both formats can spell.

use std::fmt::Write;

use super::figure::Figure;
use super::{
    COMPARISON_NOTE, CONCURRENCY_NOTE, Grid, JOBS_NOTE, LOADED_NOTE, SEQUENTIAL_NOTE, SERVER_NOTE,
    SERVERS_NOTE, SERVING_NOTE, comparisons_grid, concurrency_grid, drift_grid, groups_grid,
    job_agents_grid, jobs_grid, loaded_findings, loaded_grid, order_words, sentence_with_warning,
    sequential_grid, server_grid, server_words, servers_grid, servers_pooled_grid, serving_grid,
    variant_words,
};
use crate::scenario::{Direction, Metric};
use crate::summary::Summary;

/// One block of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// The report's title.
    Title(String),
    /// A section.
    Heading(String),
    /// A part of a section.
    Subheading(String),
    /// A paragraph.
    Para(String),
    /// Something the reader must not miss (simulated, incomplete).
    Callout(String),
    /// A bulleted list.
    Bullets(Vec<String>),
    /// A table.
    Table(Grid),
    /// A figure, by its index in the report's figures.
    Figure(usize),
}

/// A run's summary and its figures: what `report.md` and `report.html` show.
#[derive(Debug, Clone)]
pub struct Report {
    /// The statistics.
    pub summary: crate::summary::Summary,
    /// The figures drawn from the same records.
    pub figures: Vec<Figure>,
}

fn direction(metric: Metric) -> &'static str {
    match metric.direction() {
        Direction::HigherIsBetter => "higher is faster",
        Direction::LowerIsBetter => "lower is faster",
    }
}

/// A subheading and a table per metric whose grid has rows.
fn per_metric(
    out: &mut Vec<Block>,
    grid: impl Fn(Metric) -> Grid,
    heading: impl Fn(Metric) -> String,
) {
    for metric in Metric::ALL {
        let grid = grid(metric);
        if !grid.rows.is_empty() {
            out.push(Block::Subheading(heading(metric)));
            out.push(Block::Table(grid));
        }
    }
}

/// The report of `s`, with `figures` placed where they belong: the forest plot under the
/// verdicts, the others in a section of their own.
pub fn outline(s: &Summary, figures: &[Figure]) -> Vec<Block> {
    let mut out = vec![Block::Title(format!("{} — harness report", s.scenario))];
    if s.simulated {
        out.push(Block::Callout("**Simulated**: these numbers come from harness's built-in simulator, not a GPU server.".to_owned()));
    }
    if !s.complete {
        out.push(Block::Callout(
            "**Incomplete**: the run stopped before its plan finished; the statistics cover the trials that ran.".to_owned(),
        ));
    }
    out.push(Block::Para(format!(
        "Baseline `{}`; {} measured trials ({} planned in all, warmups included). \
         Statistics are over per-trial means; intervals are {:.0}% and verdicts use \
         Holm-adjusted p < {} across all {} comparisons. {}",
        s.baseline,
        s.measured_trials,
        s.planned_trials,
        s.confidence * 100.0,
        s.alpha,
        s.comparisons.len(),
        order_words(s)
    )));

    out.push(Block::Heading("Setup".to_owned()));
    let mut setup = vec![
        format!("Server: {}", server_words(&s.setup)),
        format!("Simulated: {}", if s.simulated { "yes" } else { "no" }),
    ];
    setup.extend(s.setup.variants.iter().map(variant_words));
    if let Some(t) = &s.setup.gpu_telemetry {
        setup.push(t.words());
    }
    if let Some(m) = &s.setup.server_metrics {
        setup.push(m.words());
    }
    out.push(Block::Bullets(setup));

    if !s.loaded.is_empty() {
        out.push(Block::Heading("What the server loaded".to_owned()));
        out.push(Block::Para(LOADED_NOTE.to_owned()));
        out.push(Block::Table(loaded_grid(s)));
        out.push(Block::Bullets(
            s.loaded
                .iter()
                .map(|r| format!("**{}**: {}", r.variant, r.words))
                .collect(),
        ));
        let findings = loaded_findings(s);
        if !findings.is_empty() {
            out.push(Block::Para("**Not loaded as asked:**".to_owned()));
            out.push(Block::Bullets(findings));
        }
    }

    if !s.server.is_empty() {
        out.push(Block::Heading("What the server counted".to_owned()));
        out.push(Block::Para(SERVER_NOTE.to_owned()));
        out.push(Block::Table(server_grid(s)));
        if !s.server_warnings.is_empty() {
            out.push(Block::Para(
                "**The server and the calls disagree:**".to_owned(),
            ));
            out.push(Block::Bullets(s.server_warnings.clone()));
        }
    }

    out.push(Block::Heading("Verdicts".to_owned()));
    if s.comparisons.is_empty() && !s.complete {
        out.push(Block::Para("No comparisons yet: the run stopped before both sides of any comparison had a successful trial.".to_owned()));
    } else if s.comparisons.is_empty() {
        out.push(Block::Para("No comparisons: no arm has a counterpart with the baseline in the variant's place with successful trials on both sides.".to_owned()));
    }
    out.push(Block::Bullets(
        s.comparisons.iter().map(sentence_with_warning).collect(),
    ));
    if let Some(seq) = &s.sequential {
        out.push(Block::Heading("Sequential stopping".to_owned()));
        out.push(Block::Para(crate::summary::sequential::words(seq)));
        out.push(Block::Para(SEQUENTIAL_NOTE.to_owned()));
        out.push(Block::Table(sequential_grid(seq)));
    }
    if !s.servers.is_empty() {
        out.push(Block::Heading("Servers".to_owned()));
        out.push(Block::Para(SERVERS_NOTE.to_owned()));
        if !s.server_disagreements.is_empty() {
            out.push(Block::Para("**The servers disagree:**".to_owned()));
            out.push(Block::Bullets(s.server_disagreements.clone()));
        }
        out.push(Block::Table(servers_pooled_grid(s)));
        // Each server's own ratios, for every metric with a disagreement (else the first).
        let mut metrics: Vec<Metric> = Vec::new();
        for p in s.servers.iter().filter(|p| p.pooled.substantial()) {
            if !metrics.contains(&p.metric) {
                metrics.push(p.metric);
            }
        }
        if metrics.is_empty() {
            metrics.extend(s.servers.first().map(|p| p.metric));
        }
        for m in metrics {
            out.push(Block::Para(format!("Per server, {m}:")));
            out.push(Block::Table(servers_grid(s, m)));
        }
    }
    let forest = figures.iter().position(|f| f.name == "forest");
    if let Some(i) = forest {
        out.push(Block::Figure(i));
    }

    out.push(Block::Heading(
        "Comparisons against the baseline".to_owned(),
    ));
    out.push(Block::Para(COMPARISON_NOTE.to_owned()));
    per_metric(
        &mut out,
        |m| comparisons_grid(s, m),
        |m| format!("{m} ({}, {})", m.unit(), direction(m)),
    );

    out.push(Block::Heading("Per arm and variant".to_owned()));
    out.push(Block::Para("Per-trial means: n trials, mean with 95% Student-t CI, sd, CV, min, median, max; for times also percentiles pooled over calls.".to_owned()));
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
                "{} in {}: {} of {} calls failed ({}); {} successful calls reloaded the model; {} needed retries; {} opened a new connection",
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
        out.push(Block::Subheading(
            "Failures, cold calls and new connections".to_owned(),
        ));
        out.push(Block::Bullets(failures));
    }

    if !s.serving.is_empty() {
        out.push(Block::Heading("Load levels".to_owned()));
        out.push(Block::Para(SERVING_NOTE.to_owned()));
        out.push(Block::Table(serving_grid(s)));
        if !s.saturation.is_empty() {
            out.push(Block::Para(
                "Saturation (throughput against load, level by level):".to_owned(),
            ));
            out.push(Block::Bullets(
                s.saturation
                    .iter()
                    .map(|sat| format!("**{}** in {}: {}", sat.variant, sat.arm, sat.note))
                    .collect(),
            ));
        }
        if let Some(w) = &s.schedule_warning {
            out.push(Block::Para(format!("**Warning:** {w}.")));
        }
    }

    if !s.jobs.is_empty() {
        out.push(Block::Heading("Jobs".to_owned()));
        out.push(Block::Para(JOBS_NOTE.to_owned()));
        out.push(Block::Table(jobs_grid(s)));
        let agents = job_agents_grid(s);
        if !agents.rows.is_empty() {
            out.push(Block::Para(
                "Per agent (all instances and turns; successful measured calls):".to_owned(),
            ));
            out.push(Block::Table(agents));
        }
    }

    if !s.concurrency.is_empty() {
        out.push(Block::Heading("Concurrency".to_owned()));
        out.push(Block::Para(CONCURRENCY_NOTE.to_owned()));
        out.push(Block::Table(concurrency_grid(s)));
    }

    out.push(Block::Heading("Drift".to_owned()));
    let drifting = drift_grid(s);
    let mut trend = format!(
        "Trend of each series' log per-trial values over its arm's rounds (least squares), {} series tested, Holm-adjusted together: ",
        s.drift.len()
    );
    if drifting.rows.is_empty() {
        trend.push_str("none drifts significantly.");
        out.push(Block::Para(trend));
    } else {
        let _ = write!(trend, "{} drift.", drifting.rows.len());
        out.push(Block::Para(trend));
        out.push(Block::Table(drifting));
        if let Some(w) = &s.drift_warning {
            out.push(Block::Para(format!("**Warning:** {w}.")));
        }
    }

    let rest: Vec<usize> = (0..figures.len()).filter(|i| Some(*i) != forest).collect();
    if !rest.is_empty() {
        out.push(Block::Heading("Figures".to_owned()));
        out.extend(rest.into_iter().map(Block::Figure));
    }

    out.push(Block::Heading("Methods".to_owned()));
    out.push(Block::Bullets(
        s.definitions
            .iter()
            .map(|(name, text)| format!("**{name}**: {text}"))
            .collect(),
    ));
    out
}
