//! Reports: everything `harness run` and `harness report` write about a run, recomputed
//! from the records on disk so the two always agree.
//!
//! Each output format lives in its own file behind [`Exporter`]. What the tables contain
//! (columns, number formats, significance marks) is decided once here, as [`Grid`]s; a
//! format only says how a grid is spelled, so a new one is a few dozen lines.

pub mod csv;
pub mod document;
pub mod figure;
pub mod html;
pub mod json;
pub mod latex;
pub mod markdown;
pub mod terminal;

pub use document::Report;

use std::path::Path;

use anyhow::Context;

use crate::gate::{GateReport, GateVerdict};
use crate::results::{ResultsDir, RunRecords, RunSetup, VariantSetup, load};
use crate::scenario::{Bound, Metric, threshold_text};
use crate::stats::{Descriptive, RatioCi};
use crate::summary::{
    ComparisonRow, RunSamples, Slowdown, Summary, Verdict, holm_p_phrase, summarize_samples,
};

/// One output format: a document in (a run's [`Summary`], or a [`GateReport`]), the
/// bytes of the output out.
pub trait Exporter<T: ?Sized = Summary> {
    /// Renders the document.
    fn render(&self, doc: &T) -> anyhow::Result<Vec<u8>>;
}

/// An exporter of the summary alone, as one of the report's files.
struct OfSummary<E>(E);

impl<E: Exporter<Summary>> Exporter<Report> for OfSummary<E> {
    fn render(&self, r: &Report) -> anyhow::Result<Vec<u8>> {
        self.0.render(&r.summary)
    }
}

/// The files written into every results folder besides the figures, and the format of
/// each.
pub fn file_exporters() -> Vec<(&'static str, Box<dyn Exporter<Report>>)> {
    vec![
        ("summary.json", Box::new(OfSummary(json::Json))),
        ("report.md", Box::new(markdown::Markdown)),
        ("report.html", Box::new(html::Html)),
        ("table.tex", Box::new(OfSummary(latex::Latex))),
        ("figures.tex", Box::new(latex::LatexFigures)),
        ("comparisons.csv", Box::new(OfSummary(csv::Csv))),
    ]
}

/// The folder of the figures inside a results folder.
pub const FIGURES_DIR: &str = "figures";

/// Recomputes the summary of the results folder `dir` from its records and writes every
/// file format into it atomically.
pub fn write(dir: &Path) -> anyhow::Result<Summary> {
    write_records(dir, &load(dir)?)
}

/// The summary and the figures of a run's records, both from one reading of its samples.
pub fn report(run: &RunRecords) -> anyhow::Result<Report> {
    let samples = RunSamples::of(&run.meta, &run.calls, &run.trials);
    let summary = summarize_samples(&run.meta, &run.calls, &run.trials, &samples);
    let figures = figure::draw(&summary, run, &samples)?;
    Ok(Report { summary, figures })
}

/// [`write`] with the folder's records already read. Figures a previous version of the
/// report drew and this one does not are removed, so `figures/` matches `figures.tex`.
pub fn write_records(dir: &Path, run: &RunRecords) -> anyhow::Result<Summary> {
    let report = report(run)?;
    let out = ResultsDir::open(dir);
    for f in &report.figures {
        out.write_atomic(&format!("{FIGURES_DIR}/{}.svg", f.name), f.svg.as_bytes())?;
    }
    if let Ok(entries) = std::fs::read_dir(dir.join(FIGURES_DIR)) {
        for entry in entries.flatten() {
            let path = entry.path();
            let stale = path.extension().is_some_and(|e| e == "svg")
                && !report
                    .figures
                    .iter()
                    .any(|f| path.file_stem().is_some_and(|s| *s == *f.name));
            if stale {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    }
    for (file_name, exporter) in file_exporters() {
        out.write_atomic(file_name, &exporter.render(&report)?)?;
    }
    Ok(report.summary)
}

/// Writes a gate report into the results folder `dir` as `gate.json` and `gate.md`.
pub fn write_gate(dir: &Path, report: &GateReport) -> anyhow::Result<()> {
    let out = ResultsDir::open(dir);
    out.write_atomic("gate.json", &json::Json.render(report)?)?;
    out.write_atomic("gate.md", &markdown::Markdown.render(report)?)?;
    Ok(())
}

/// How a cell lines up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// The tone of a cell, for formats that can show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Nothing to point out.
    Plain,
    /// A significant improvement.
    Good,
    /// A significant regression.
    Bad,
}

/// One cell of a [`Grid`].
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// What it says.
    pub text: String,
    /// How it reads.
    pub tone: Tone,
    /// Significance marks (`*`, `**`, `***`) that follow the text, set as a format can.
    pub mark: &'static str,
}

impl Cell {
    fn plain(text: String) -> Cell {
        Cell {
            text,
            tone: Tone::Plain,
            mark: "",
        }
    }
}

/// A table: what the columns are and what the cells say, before any syntax. Headers are
/// written as they read in running text (`ratio [95% CI]`, `p (Holm)`); a format that sets
/// table heads in another case does so when it renders.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Column headers.
    pub header: Vec<String>,
    /// Alignment per column.
    pub align: Vec<Align>,
    /// Rows of cells.
    pub rows: Vec<Vec<Cell>>,
}

impl Grid {
    pub(crate) fn new(columns: &[(&str, Align)]) -> Grid {
        Grid {
            header: columns.iter().map(|c| c.0.to_owned()).collect(),
            align: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(Cell::plain).collect());
    }
}

/// A number with four significant digits and no exponent (at most four decimals).
pub fn sig4(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 4) as usize;
    format!("{x:.decimals$}")
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map(f).unwrap_or_else(|| "–".to_owned())
}

/// A p-value as papers print it: three decimals, or `<0.001`.
pub fn p_value(p: Option<f64>) -> String {
    match p {
        None => "–".to_owned(),
        Some(p) if p < 0.001 => "<0.001".to_owned(),
        Some(p) => format!("{p:.3}"),
    }
}

/// Significance marks of a Holm-adjusted p: `***` < 0.001, `**` < 0.01, `*` < 0.05.
pub fn stars(p: Option<f64>) -> &'static str {
    match p {
        Some(p) if p < 0.001 => "***",
        Some(p) if p < 0.01 => "**",
        Some(p) if p < 0.05 => "*",
        _ => "",
    }
}

/// `1.213 [1.180, 1.247]`.
pub fn ratio_ci(ratio: Option<RatioCi>) -> String {
    match ratio {
        Some(r) => format!("{:.3} [{:.3}, {:.3}]", r.ratio, r.low, r.high),
        None => "–".to_owned(),
    }
}

/// `mean [low, high]` of per-trial values.
pub fn mean_ci(d: &Descriptive) -> String {
    match (d.ci_low, d.ci_high) {
        (Some(lo), Some(hi)) => format!("{} [{}, {}]", sig4(d.mean), sig4(lo), sig4(hi)),
        _ => sig4(d.mean),
    }
}

/// The most servers the setup line names one by one.
const NAMED_SERVERS: usize = 6;

/// The server in words: `openai at http://h:8088, version b4567, serving smollm2-135m`
/// (what the manifest does not say is left out); several servers each with its version.
pub fn server_words(setup: &RunSetup) -> String {
    let Some(s) = &setup.server else {
        return "not recorded".to_owned();
    };
    // Several servers: each named with its version, the first few of a long list (a merge
    // of a hundred shards), the manifest holding them all.
    let several = setup.servers.len() > 1;
    let mut words = match (&s.backend, &s.url) {
        (Some(b), _) if several => {
            let n = setup.servers.len();
            let named = if n <= NAMED_SERVERS {
                setup.servers.join(", ")
            } else {
                format!(
                    "{}, and {} more (the manifest names them all)",
                    setup.servers[..NAMED_SERVERS - 1].join(", "),
                    n - (NAMED_SERVERS - 1)
                )
            };
            format!("{} at {n} servers: {named}", b.as_str())
        }
        (Some(b), Some(url)) => format!("{} at {url}", b.as_str()),
        (Some(b), None) => b.as_str().to_owned(),
        (None, Some(url)) => url.clone(),
        (None, None) => "a server".to_owned(),
    };
    if let Some(v) = s.version.as_ref().filter(|_| !several) {
        words.push_str(&format!(", version {v}"));
    }
    match &s.served_model {
        Some(m) => words.push_str(&format!(", serving {m}")),
        None => words.push_str(", model served not reported"),
    }
    // A server's own settings (llama.cpp's /props and /slots), so a run states them.
    if let Some(d) = &s.model_details {
        if let Some(n_ctx) = d["n_ctx"].as_u64() {
            words.push_str(&format!(", context {n_ctx} tokens per slot"));
        }
        match (d["total_slots"].as_u64(), d["slots"].as_u64()) {
            (Some(n), _) | (None, Some(n)) => {
                words.push_str(&format!(
                    ", {n} parallel slot{}",
                    if n == 1 { "" } else { "s" }
                ));
            }
            (None, None) => {}
        }
    }
    words
}

/// What one variant's requests carried, in words: `chimera: model gemma3:latest, options
/// sent: temperature=1; not sent: num_ctx, num_gpu`.
pub fn variant_words(v: &VariantSetup) -> String {
    let mut words = format!("{}: model {}, options sent: {}", v.name, v.model, v.sent);
    if !v.not_sent.is_empty() {
        words.push_str(&format!(
            "; not sent (server.ignore_options): {}",
            v.not_sent.join(", ")
        ));
    }
    words
}

/// Hedges' g with two decimals.
fn hedges_g(row: &ComparisonRow) -> String {
    opt(row.stats.hedges_g, |g| format!("{g:.2}"))
}

/// Cliff's δ with two decimals.
fn cliffs_delta(row: &ComparisonRow) -> String {
    format!("{:.2}", row.stats.cliffs_delta)
}

/// The tone of a verdict.
pub fn tone(verdict: Verdict) -> Tone {
    match verdict {
        Verdict::Faster => Tone::Good,
        Verdict::Slower => Tone::Bad,
        _ => Tone::Plain,
    }
}

/// [`sentence`] with the comparison's warnings, when there are any.
pub fn sentence_with_warning(row: &ComparisonRow) -> String {
    let mut text = sentence(row);
    for w in row.warnings() {
        text.push_str(&format!(" **Warning:** {w}."));
    }
    text
}

/// Every warning of the run, each once, in order, with what it is about (`fast in
/// fast+fast`, or `the run` for drift).
pub fn all_warnings(summary: &Summary) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for row in &summary.comparisons {
        for w in row.warnings() {
            let warning = (format!("{} in {}", row.variant, row.arm), w.to_owned());
            if !out.contains(&warning) {
                out.push(warning);
            }
        }
    }
    if let Some(w) = &summary.drift_warning {
        out.push(("the run".to_owned(), w.clone()));
    }
    if let Some(w) = &summary.schedule_warning {
        out.push(("the load".to_owned(), w.clone()));
    }
    out
}

/// The arm a comparison's baseline ran in: `baseline+baseline`, or `same trials` for a
/// paired comparison within one arm.
pub fn base_arm(row: &ComparisonRow) -> String {
    if row.paired {
        "same trials".to_owned()
    } else {
        row.baseline_arm.clone()
    }
}

/// A share as a whole percentage, `–` without calls.
fn share(x: Option<f64>) -> String {
    opt(x, |s| format!("{:.0}%", s * 100.0))
}

/// Cold shares of both sides, `90% / 0%`, marked when they differ.
pub fn cold_shares(row: &ComparisonRow) -> Cell {
    let (v, b) = (&row.variant_conditions, &row.baseline_conditions);
    shares_cell(v.cold_share(), b.cold_share(), v.cold_differs(b))
}

/// New-connection shares of both sides, `5% / 0%`, marked when they differ.
pub fn connection_shares(row: &ComparisonRow) -> Cell {
    let (v, b) = (&row.variant_conditions, &row.baseline_conditions);
    shares_cell(
        v.new_connection_share(),
        b.new_connection_share(),
        v.connections_differ(b),
    )
}

/// `variant / baseline` shares in one cell, marked [`CONFOUNDED_MARK`] when they `differ`.
fn shares_cell(variant: Option<f64>, baseline: Option<f64>, differ: bool) -> Cell {
    Cell {
        mark: if differ { CONFOUNDED_MARK } else { "" },
        ..Cell::plain(format!("{} / {}", share(variant), share(baseline)))
    }
}

/// The mark of a confounded comparison, after its significance stars.
pub const CONFOUNDED_MARK: &str = "†";

/// How the order trials ran in reads in the methods: what it protects against.
pub fn order_words(summary: &Summary) -> String {
    use crate::scenario::Order;
    match summary.order {
        Some(Order::Interleaved) => "Trials ran interleaved: each round ran every arm once, in its own seeded random order, so drift over time hits every arm alike.".to_owned(),
        Some(Order::Random) => "Trials ran in one seeded random order over all arms, so drift over time hits every arm alike on average.".to_owned(),
        Some(Order::Sequential) => "Trials ran sequentially: all trials of one arm, then the next, so any drift over time is mixed into the differences between arms.".to_owned(),
        None => "The order trials ran in is not recorded.".to_owned(),
    }
}

/// A sentence a reader can quote: "chimera is faster than baseline on decode_tps:
/// ×1.213 [1.180, 1.247], Holm p < 0.001."
pub fn sentence(row: &ComparisonRow) -> String {
    // Solo arms are named after their variant; only shared arms need naming.
    let vs = if row.paired {
        format!(" (in {}, paired by trial)", row.arm)
    } else if row.arm == row.variant {
        String::new()
    } else {
        format!(" (in {}, against {})", row.arm, row.baseline_arm)
    };
    match (row.verdict, row.stats.ratio) {
        (Verdict::Undetermined, _) | (_, None) => format!(
            "{} vs {}{vs} on {}: undetermined (needs at least 2 trials a side with some spread).",
            row.variant, row.baseline, row.metric
        ),
        (verdict, Some(r)) => {
            let p = holm_p_phrase(row.holm_p);
            let what = match verdict {
                Verdict::NoSignificantDifference => "shows no significant difference from",
                Verdict::Faster => "is faster than",
                _ => "is slower than",
            };
            // A difference not found is only news when the test could have found it.
            let could = match (verdict, row.stats.detectable) {
                (Verdict::NoSignificantDifference, Some(d)) => {
                    let (nv, nb) = (row.stats.n_variant, row.stats.n_baseline);
                    let n = if nv == nb {
                        format!("n = {nv} a side")
                    } else {
                        format!("n = {nv} and {nb}")
                    };
                    format!(
                        "; with {n}, changes under {:.1}% could not be detected reliably ({:.0}% power at α = {})",
                        (d - 1.0) * 100.0,
                        crate::stats::compare::DETECTABLE_POWER * 100.0,
                        crate::stats::ALPHA
                    )
                }
                _ => String::new(),
            };
            format!(
                "{} {what} {}{vs} on {}: ratio {}, {p}{could}.",
                row.variant,
                row.baseline,
                row.metric,
                ratio_ci(Some(r))
            )
        }
    }
}

/// Per arm and variant: the per-trial description of `metric`, plus pooled percentiles
/// for times.
pub fn groups_grid(summary: &Summary, metric: Metric) -> Grid {
    let mut columns = vec![
        ("arm", Align::Left),
        ("variant", Align::Left),
        ("n", Align::Right),
        ("mean [95% CI]", Align::Right),
        ("sd", Align::Right),
        ("CV", Align::Right),
        ("min", Align::Right),
        ("median", Align::Right),
        ("max", Align::Right),
    ];
    if metric.is_time() {
        columns.extend([
            ("pooled p50", Align::Right),
            ("pooled p95", Align::Right),
            ("pooled p99", Align::Right),
        ]);
    }
    let mut grid = Grid::new(&columns);
    for g in &summary.groups {
        let Some(m) = g.metrics.get(&metric) else {
            continue;
        };
        let d = &m.per_trial;
        let mut cells = vec![
            g.arm.clone(),
            g.variant.clone(),
            d.n.to_string(),
            mean_ci(d),
            opt(d.std_dev, sig4),
            opt(d.cv, |cv| format!("{:.1}%", cv * 100.0)),
            sig4(d.min),
            sig4(d.median),
            sig4(d.max),
        ];
        if metric.is_time() {
            cells.extend([
                opt(m.pooled.map(|p| p.p50), sig4),
                opt(m.pooled.map(|p| p.p95), sig4),
                opt(m.pooled.map(|p| p.p99), sig4),
            ]);
        }
        grid.push(cells);
    }
    grid
}

/// Every comparison on `metric`, all the statistics.
pub fn comparisons_grid(summary: &Summary, metric: Metric) -> Grid {
    let mut grid = Grid::new(&[
        ("variant", Align::Left),
        ("arm", Align::Left),
        ("vs baseline arm", Align::Left),
        ("n", Align::Right),
        ("ratio [95% CI]", Align::Right),
        ("t-test p", Align::Right),
        ("Holm p", Align::Right),
        ("MW p", Align::Right),
        ("Hedges g", Align::Right),
        ("Cliff δ", Align::Right),
        ("cold var./base", Align::Right),
        ("new conn var./base", Align::Right),
        ("verdict", Align::Left),
    ]);
    for row in summary.comparisons.iter().filter(|r| r.metric == metric) {
        let n = if row.paired {
            format!("{} pairs", row.stats.n_variant)
        } else {
            format!("{} vs {}", row.stats.n_variant, row.stats.n_baseline)
        };
        grid.push(vec![
            row.variant.clone(),
            row.arm.clone(),
            base_arm(row),
            n,
            ratio_ci(row.stats.ratio),
            p_value(row.stats.welch.map(|w| w.p)),
            p_value(row.holm_p),
            opt(row.stats.mann_whitney.map(|m| m.p), |p| p_value(Some(p))),
            hedges_g(row),
            cliffs_delta(row),
            String::new(),
            String::new(),
            row.verdict.words().to_owned(),
        ]);
        set_conditions(&mut grid, row, 10);
        mark_verdict(&mut grid, row, 4, 6, 12);
    }
    grid
}

/// Tones the ratio and verdict cells of the last row and marks the Holm p.
fn mark_verdict(grid: &mut Grid, row: &ComparisonRow, ratio: usize, holm: usize, verdict: usize) {
    let t = tone(row.verdict);
    if let Some(cells) = grid.rows.last_mut() {
        cells[ratio].tone = t;
        cells[verdict].tone = t;
        cells[holm].mark = stars(row.holm_p);
    }
}

/// Puts the cold and new-connection shares in columns `at` and `at + 1` of the last row.
fn set_conditions(grid: &mut Grid, row: &ComparisonRow, at: usize) {
    if let Some(cells) = grid.rows.last_mut() {
        cells[at] = cold_shares(row);
        cells[at + 1] = connection_shares(row);
    }
}

/// Every comparison in one table: the arm the baseline ran in, per-trial means of baseline
/// and variant, the ratio with its CI (toned and marked by its verdict), Holm and
/// Mann–Whitney p, and both effect sizes. The paper's table and the terminal's.
pub fn paper_grid(summary: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("metric", Align::Left),
        ("variant", Align::Left),
        ("arm", Align::Left),
        ("base arm", Align::Left),
        ("base mean", Align::Right),
        ("var. mean", Align::Right),
        ("ratio [95% CI]", Align::Right),
        ("p (Holm)", Align::Right),
        ("p (MW)", Align::Right),
        ("g", Align::Right),
        ("δ", Align::Right),
        ("cold", Align::Right),
        ("new conn", Align::Right),
    ]);
    for row in &summary.comparisons {
        grid.push(vec![
            row.metric.to_string(),
            row.variant.clone(),
            row.arm.clone(),
            base_arm(row),
            sig4(row.baseline_mean),
            sig4(row.variant_mean),
            ratio_ci(row.stats.ratio),
            p_value(row.holm_p),
            opt(row.stats.mann_whitney.map(|m| m.p), |p| p_value(Some(p))),
            hedges_g(row),
            cliffs_delta(row),
            String::new(),
            String::new(),
        ]);
        set_conditions(&mut grid, row, 11);
        if let Some(cells) = grid.rows.last_mut() {
            cells[6].mark = stars(row.holm_p);
            cells[6].tone = tone(row.verdict);
        }
    }
    grid
}

/// The run's drifting series: change per round with its CI and Holm p.
pub fn drift_grid(summary: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("arm", Align::Left),
        ("variant", Align::Left),
        ("metric", Align::Left),
        ("n", Align::Right),
        ("change per round [95% CI]", Align::Right),
        ("p (Holm)", Align::Right),
    ]);
    for d in summary.drift.iter().filter(|d| d.drifting) {
        grid.push(vec![
            d.arm.clone(),
            d.variant.clone(),
            d.metric.to_string(),
            d.n.to_string(),
            format!(
                "{:+.2}% [{:+.2}%, {:+.2}%]",
                d.change_per_round * 100.0,
                d.low * 100.0,
                d.high * 100.0
            ),
            p_value(Some(d.holm_p)),
        ]);
    }
    grid
}

/// Per arm and variant: where the jobs spent their time, and the agents on their critical
/// path with their shares.
pub fn jobs_grid(summary: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("arm", Align::Left),
        ("variant", Align::Left),
        ("jobs (failed)", Align::Right),
        ("job ms", Align::Right),
        ("LLM ms", Align::Right),
        ("tool ms", Align::Right),
        ("sibling wait ms", Align::Right),
        (
            "critical path (share of the job, jobs through it)",
            Align::Left,
        ),
    ]);
    let ms = |x: Option<f64>| opt(x, |v| format!("{v:.0}"));
    for j in &summary.jobs {
        let path: Vec<String> = j
            .critical_path
            .iter()
            .map(|p| {
                format!(
                    "{} {:.0}% ({}/{})",
                    p.node,
                    p.share * 100.0,
                    p.on_path,
                    j.jobs - j.failed_jobs
                )
            })
            .collect();
        grid.push(vec![
            j.arm.clone(),
            j.variant.clone(),
            format!("{} ({})", j.jobs, j.failed_jobs),
            ms(j.completion_ms),
            ms(j.llm_ms),
            ms(j.tool_ms),
            ms(j.sibling_wait_ms),
            path.join(" → "),
        ]);
    }
    grid
}

/// Per variant: what it asked the server to load and what the server says it loaded.
pub fn loaded_grid(summary: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("variant", Align::Left),
        ("num_gpu asked", Align::Right),
        ("layers", Align::Right),
        ("num_ctx asked", Align::Right),
        ("context loaded", Align::Right),
        ("memory GB", Align::Right),
        ("in VRAM", Align::Right),
        ("seen", Align::Right),
        ("as asked", Align::Left),
    ]);
    let n = |x: Option<u32>| opt(x.map(f64::from), |v| format!("{v:.0}"));
    for r in &summary.loaded {
        let share = r.size_vram as f64 / r.size.max(1) as f64;
        grid.rows.push(vec![
            Cell::plain(r.variant.clone()),
            Cell::plain(
                r.num_gpu
                    .map_or_else(|| "default".to_owned(), |g| g.to_string()),
            ),
            Cell::plain(n(r.layers)),
            Cell::plain(
                r.num_ctx
                    .map_or_else(|| "default".to_owned(), |c| c.to_string()),
            ),
            Cell::plain(n(r.context_length)),
            Cell::plain(format!("{:.1}", r.size as f64 / 1e9)),
            Cell::plain(format!("{:.0}%", (share * 100.0).floor())),
            Cell::plain(r.observations.to_string()),
            Cell {
                text: if r.flags.is_empty() { "yes" } else { "no" }.to_owned(),
                tone: if r.flags.is_empty() {
                    Tone::Plain
                } else {
                    Tone::Bad
                },
                mark: "",
            },
        ]);
    }
    grid
}

/// What the loaded-state table means.
pub const LOADED_NOTE: &str = "What the server held in memory (Ollama's `/api/ps`) after priming and after each trial in which the variant ran alone, against what the variant asked for: layers from `/api/show`; in VRAM = size_vram / size; seen = times asked; the most common state is shown.";

/// Every loaded-state flag and warning, in words.
pub fn loaded_findings(summary: &Summary) -> Vec<String> {
    let mut out: Vec<String> = summary
        .loaded
        .iter()
        .flat_map(|r| {
            r.flags
                .iter()
                .map(move |f| format!("**{}**: {f}", r.variant))
        })
        .collect();
    out.extend(summary.loaded_warnings.iter().cloned());
    out
}

/// Per arm: what the server's own metrics counted over the measured trials.
pub fn server_grid(summary: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("arm", Align::Left),
        ("trials", Align::Right),
        ("running peak", Align::Right),
        ("waiting peak", Align::Right),
        ("KV cache peak", Align::Right),
        ("prefix-cache hits", Align::Right),
        ("preemptions", Align::Right),
        ("generated tok server / calls", Align::Right),
        ("prompt tok server / calls", Align::Right),
    ]);
    let peaks = |p: Option<crate::summary::server::Peaks>, scale: f64, unit: &str| {
        p.map_or_else(
            || "–".to_owned(),
            |p| {
                let f = |v: f64| {
                    if unit == "%" {
                        format!("{:.1}%", v * scale)
                    } else {
                        format!("{v:.0}")
                    }
                };
                if p.median == p.max {
                    f(p.max)
                } else {
                    format!("{} (max {})", f(p.median), f(p.max))
                }
            },
        )
    };
    let tokens = |server: Option<f64>, calls: u64| {
        server.map_or_else(|| "–".to_owned(), |s| format!("{s:.0} / {calls}"))
    };
    for r in &summary.server {
        let agree = |server: Option<f64>, calls: u64| {
            server.is_none_or(|s| (s - calls as f64).abs() <= (0.02 * calls as f64).max(2.0))
        };
        let tone = |ok: bool| if ok { Tone::Plain } else { Tone::Bad };
        grid.rows.push(vec![
            Cell::plain(r.arm.clone()),
            Cell {
                text: format!("{}/{}", r.covered, r.trials),
                tone: tone(r.covered == r.trials),
                mark: "",
            },
            Cell::plain(peaks(r.running, 1.0, "")),
            Cell::plain(peaks(r.waiting, 1.0, "")),
            Cell::plain(peaks(r.kv_cache, 100.0, "%")),
            Cell::plain(opt(r.prefix_hit_share, |v| format!("{:.0}%", v * 100.0))),
            Cell::plain(opt(r.preemptions, |v| format!("{v:.0}"))),
            Cell {
                text: tokens(r.server_generated_tokens, r.recorded_generated_tokens),
                tone: tone(agree(
                    r.server_generated_tokens,
                    r.recorded_generated_tokens,
                )),
                mark: "",
            },
            Cell {
                text: tokens(r.server_prompt_tokens, r.recorded_prompt_tokens),
                tone: tone(agree(r.server_prompt_tokens, r.recorded_prompt_tokens)),
                mark: "",
            },
        ]);
    }
    grid
}

/// The stopping rule's looks: the pairs of rounds read, the estimate, the anytime-valid
/// interval and the evidence at each.
pub fn sequential_grid(s: &crate::summary::SequentialSummary) -> Grid {
    let mut grid = Grid::new(&[
        ("look", Align::Right),
        ("pairs", Align::Right),
        ("ratio", Align::Right),
        ("anytime-valid 95% CI", Align::Right),
        ("e-value", Align::Right),
        ("decision", Align::Left),
    ]);
    for (i, l) in s.looks.iter().enumerate() {
        let ci = if l.low.is_finite() && l.high.is_finite() {
            format!("[{:.3}, {:.3}]", l.low.exp(), l.high.exp())
        } else {
            "unbounded".to_owned()
        };
        let decision = serde_json::to_value(l.decision)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        grid.push(vec![
            (i + 1).to_string(),
            l.n.to_string(),
            format!("{:.3}", l.mean.exp()),
            ci,
            if l.e_value >= 1000.0 {
                format!("{:.0}", l.e_value)
            } else {
                format!("{:.2}", l.e_value)
            },
            decision,
        ]);
    }
    grid
}

/// Every comparison pooled over servers: the fixed- and random-effects ratios and the
/// heterogeneity.
pub fn servers_pooled_grid(summary: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("metric", Align::Left),
        ("variant", Align::Left),
        ("arm", Align::Left),
        ("servers", Align::Right),
        ("fixed effect [95% CI]", Align::Right),
        ("random effects [95% CI]", Align::Right),
        ("Q p", Align::Right),
        ("I²", Align::Right),
    ]);
    for p in &summary.servers {
        let ci = |(m, lo, hi): (f64, f64, f64)| format!("{m:.3} [{lo:.3}, {hi:.3}]");
        grid.rows.push(vec![
            Cell::plain(p.metric.to_string()),
            Cell::plain(p.variant.clone()),
            Cell::plain(p.arm.clone()),
            Cell::plain(p.pooled.k.to_string()),
            Cell::plain(ci(p.fixed)),
            Cell::plain(ci(p.random)),
            Cell::plain(if p.pooled.q_p < 0.001 {
                "<0.001".to_owned()
            } else {
                format!("{:.3}", p.pooled.q_p)
            }),
            Cell {
                text: format!("{:.0}%", p.pooled.i2 * 100.0),
                tone: if p.pooled.substantial() {
                    Tone::Bad
                } else {
                    Tone::Plain
                },
                mark: "",
            },
        ]);
    }
    grid
}

/// Each server's own ratio for the comparisons on `metric`.
pub fn servers_grid(summary: &Summary, metric: Metric) -> Grid {
    let mut grid = Grid::new(&[
        ("variant", Align::Left),
        ("arm", Align::Left),
        ("server", Align::Left),
        ("n", Align::Right),
        ("ratio [95% CI]", Align::Right),
    ]);
    for p in summary.servers.iter().filter(|p| p.metric == metric) {
        for e in &p.servers {
            grid.push(vec![
                p.variant.clone(),
                p.arm.clone(),
                e.server.clone(),
                format!("{} vs {}", e.n_variant, e.n_baseline),
                format!("{:.3} [{:.3}, {:.3}]", e.ratio, e.low, e.high),
            ]);
        }
    }
    grid
}

/// What the server tables mean.
pub const SERVERS_NOTE: &str = "The trials ran against several servers (the shards of a merged run, or `server.urls`), so each comparison is also computed on each server's trials alone (a paired one on the pairs of that server's trials) and the servers' log ratios are pooled with inverse-variance weights: fixed effect (the servers measure one true ratio) and random effects (DerSimonian–Laird: the true ratio differs between servers, and the interval admits it); Q p = Cochran's test that the servers agree; I² = the share of the spread between servers beyond chance, marked from 50% (substantial), where the random-effects ratio is the one to quote. The comparisons above pool every trial as one sample.";

/// What the sequential table means.
pub const SEQUENTIAL_NOTE: &str = "Each look reads the per-round ratios (the variant's per-trial value over the baseline's in the same interleaved round) and gives a confidence sequence: an interval that covers the true ratio at every look at once with probability 95%, so the run may stop at any look without raising its error; it is wider than a fixed-n interval and intersected over the looks. e-value = the evidence against no difference (the t test's Bayes factor with a normal prior on the standardized effect and the scale-invariant prior on the spread); 20 = 1/α is decisive. It decides faster when the interval lies on the faster side of 1, slower beyond the tolerance when it lies past the tolerance, and equivalent when it lies within ±tolerance; before five pairs no interval is bounded.";

/// What the server-metrics table means.
pub const SERVER_NOTE: &str = "From the server's own metrics page (Prometheus), scraped at each measured trial's start and end and at an interval between: trials = trials both ends of which were scraped / measured trials; a peak is a trial's highest scraped value, shown as the median over the arm's trials (and the highest), so a peak shorter than the interval can be missed; prefix-cache hits = prompt tokens served from the cache / prompt tokens looked up; preemptions and tokens = the counters' increases, summed; calls = the tokens the trials' calls recorded.";

/// Per arm, variant and load level: throughput, goodput and latency percentiles.
pub fn serving_grid(summary: &Summary) -> Grid {
    let goodput = summary
        .slo
        .map(|slo| format!("goodput req/s ({})", slo.describe()));
    let mut columns = vec![
        ("arm", Align::Left),
        ("variant", Align::Left),
        ("load", Align::Left),
        ("n", Align::Right),
        ("requests (failed)", Align::Right),
        ("req/s", Align::Right),
        ("output tok/s", Align::Right),
    ];
    if let Some(g) = &goodput {
        columns.push((g.as_str(), Align::Right));
    }
    columns.extend([
        ("TTFT p50 / p99 ms", Align::Right),
        ("e2e p50 / p99 ms", Align::Right),
        ("sent late", Align::Right),
    ]);
    let mut grid = Grid::new(&columns);
    let rate = |x: Option<f64>| opt(x, |v| format!("{v:.2}"));
    let pair = |x: Option<(f64, f64)>| {
        x.map_or_else(|| "–".to_owned(), |(a, b)| format!("{a:.0} / {b:.0}"))
    };
    for r in &summary.serving {
        let mut cells = vec![
            r.arm.clone(),
            r.variant.clone(),
            r.level.describe(),
            r.trials.to_string(),
            format!("{} ({})", r.requests, r.failed),
            rate(r.req_per_s),
            opt(r.throughput_tps, |v| format!("{v:.0}")),
        ];
        if goodput.is_some() {
            cells.push(rate(r.goodput_rps));
        }
        cells.extend([
            pair(r.ttft_ms),
            pair(r.e2e_ms),
            match r.max_lag_ms {
                Some(max) => format!("{} (max {max:.0} ms)", r.late),
                None => "–".to_owned(),
            },
        ]);
        grid.push(cells);
    }
    grid
}

/// What the serving table's numbers are.
pub const SERVING_NOTE: &str = "Per load level (c = closed-loop workers, req/s = open-loop rate): n = measured trials; req/s, output tok/s and goodput = per-trial rates over the measured window (warm-up requests excluded), averaged over trials; TTFT and e2e pooled over the level's successful measured calls, from the scheduled send time in an open loop; sent late = open-loop requests sent more than 10 ms after they were due. Each level's comparisons against the baseline at the same level are in the comparison tables (arms `variant@level`).";

/// Per arm, variant and agent of the jobs: calls, mean TTFT and end-to-end time, and the
/// agent's mean share of the job on the critical path.
pub fn job_agents_grid(summary: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("arm", Align::Left),
        ("variant", Align::Left),
        ("agent", Align::Left),
        ("calls", Align::Right),
        ("TTFT ms (mean)", Align::Right),
        ("e2e ms (mean)", Align::Right),
        ("share on the critical path", Align::Right),
    ]);
    for j in &summary.jobs {
        for a in &j.agents {
            let share = j.critical_path.iter().find(|p| p.node == a.agent);
            grid.push(vec![
                j.arm.clone(),
                j.variant.clone(),
                a.agent.clone(),
                a.calls.to_string(),
                opt(a.ttft_ms, |v| format!("{v:.1}")),
                opt(a.e2e_ms, |v| format!("{v:.1}")),
                share.map_or_else(|| "0%".to_owned(), |p| format!("{:.0}%", p.share * 100.0)),
            ]);
        }
    }
    grid
}

/// What the jobs table's numbers mean.
pub const JOBS_NOTE: &str = "A job is one run of the workload by one variant instance in a trial; means over the measured jobs that succeeded. LLM and tool ms = time in LLM calls and tool waits along the critical path (the chain of agent instances that decided the completion time); sibling wait = the mean time an instance's output waited for its slowest sibling, summed over agents that fan out; the path lists each agent with its mean share of the job's time and in how many jobs the path ran through it. job_e2e_ms and jobs_per_min are compared with CIs in the comparison tables.";

/// Per concurrent arm: what running together gained.
pub fn concurrency_grid(summary: &Summary) -> Grid {
    let mut grid = Grid::new(&[
        ("arm", Align::Left),
        ("agents", Align::Right),
        ("wall ms", Align::Right),
        ("Σ solo ms", Align::Right),
        ("speedup [95% CI]", Align::Right),
        ("efficiency [95% CI]", Align::Right),
        ("agent wall ×", Align::Left),
        ("decode ×", Align::Left),
        ("TTFT p50 × (pooled)", Align::Left),
    ]);
    for a in &summary.concurrency {
        let per = |f: &dyn Fn(&Slowdown) -> Estimate| {
            a.slowdown
                .iter()
                .map(|s| {
                    let (x, ci) = f(s);
                    format!("{} {}", s.variant, with_ci(x, ci))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        grid.push(vec![
            a.arm.clone(),
            a.agents.to_string(),
            format!("{:.0}", a.wall_ms),
            opt(a.solo_wall_sum_ms, |x| format!("{x:.0}")),
            with_ci(a.speedup, a.speedup_ci),
            with_ci(a.efficiency, a.efficiency_ci),
            per(&|s| (s.wall_ratio, s.wall_ratio_ci)),
            per(&|s| (s.decode_tps_ratio, s.decode_tps_ratio_ci)),
            per(&|s| (s.ttft_p50_ratio, s.ttft_p50_ratio_ci)),
        ]);
    }
    grid
}

/// A value and its 95% CI, where there is one.
type Estimate = (Option<f64>, Option<[f64; 2]>);

/// `1.63 [1.50, 1.77]`, or the value alone without an interval.
fn with_ci(x: Option<f64>, ci: Option<[f64; 2]>) -> String {
    match (x, ci) {
        (Some(x), Some([lo, hi])) => format!("{x:.2} [{lo:.2}, {hi:.2}]"),
        (x, _) => opt(x, |x| format!("{x:.2}")),
    }
}

/// What the concurrency table's columns mean, for every format.
pub const CONCURRENCY_NOTE: &str = "speedup = Σ solo wall / concurrent wall (1.0 = no gain); efficiency = speedup / agents; agent wall × = an agent's pipeline wall time here / alone (what the agent experienced); decode × = per-trial decode rate here / alone; TTFT p50 × = median TTFT pooled over calls here / alone; 95% CIs from a percentile bootstrap over rounds (each round's solo and concurrent trials resampled together).";

/// What the comparison tables' numbers mean: which are adjusted and which way effect sizes
/// point.
pub const COMPARISON_NOTE: &str = "ratio = variant / baseline of per-trial geometric means with a 95% CI (Welch's t on logs; paired t for `same trials` rows, where both ran in the same trials); p (Holm) = that test's p, Holm-adjusted over all comparisons, marked * < 0.05, ** < 0.01, *** < 0.001; the CIs are not adjusted, so a CI can exclude 1 beside \"no significant difference\"; MW = Mann–Whitney p (unadjusted; not for paired rows); g (Hedges) and δ (Cliff) are signed variant − baseline: positive = the variant's values are higher (faster for tok/s, slower for ms); cold, new conn = shares of the variant's / the baseline's calls that reloaded the model / opened a connection, † = they differ by more than 10 points, so the ratio is confounded with them.";

/// Every gate: its verdict, the ratio against the bound, and why.
pub fn gate_grid(report: &GateReport) -> Grid {
    let mut grid = Grid::new(&[
        ("gate", Align::Left),
        ("verdict", Align::Left),
        ("n", Align::Right),
        ("ratio [95% CI]", Align::Right),
        ("bound", Align::Right),
        ("p beyond bound (Holm)", Align::Right),
        ("why", Align::Left),
    ]);
    for g in &report.gates {
        let bound = match g.bound {
            Bound::AtLeast => format!("≥ {}", threshold_text(g.threshold)),
            Bound::AtMost => format!("≤ {}", threshold_text(g.threshold)),
        };
        grid.push(vec![
            g.gate.clone(),
            g.verdict.word().to_owned(),
            format!("{} vs {}", g.n_variant, g.n_baseline),
            ratio_ci(g.ratio),
            bound,
            p_value(g.holm_p),
            g.reason.clone(),
        ]);
        let tone = match g.verdict {
            GateVerdict::Pass => Tone::Good,
            GateVerdict::Fail => Tone::Bad,
            GateVerdict::Inconclusive => Tone::Plain,
        };
        if let Some(cells) = grid.rows.last_mut() {
            cells[1].tone = tone;
        }
    }
    grid
}

/// The range of per-group trial counts among the comparisons, e.g. `n = 10` or
/// `n = 8–10 trials per group`.
pub fn n_range(summary: &Summary) -> String {
    let ns: Vec<usize> = summary
        .comparisons
        .iter()
        .flat_map(|r| [r.stats.n_variant, r.stats.n_baseline])
        .collect();
    match (ns.iter().min(), ns.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => format!("n = {lo} trials per group"),
        (Some(lo), Some(hi)) => format!("n = {lo}–{hi} trials per group"),
        _ => "no comparisons".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_significant_digits_without_exponents() {
        assert_eq!(sig4(240.345), "240.3");
        assert_eq!(sig4(1234.5), "1234"); // round-half-even of the binary value
        assert_eq!(sig4(98765.4), "98765");
        assert_eq!(sig4(4.17234), "4.172");
        assert_eq!(sig4(0.012345), "0.0123");
        assert_eq!(sig4(-3.0), "-3.000");
        assert_eq!(sig4(f64::NAN), "–");
    }

    #[test]
    fn the_setup_names_a_few_servers_and_counts_the_rest() {
        let setup = |n: usize| RunSetup {
            server: Some(crate::results::RunServer {
                backend: Some(crate::scenario::BackendKind::Ollama),
                url: Some("http://n0:11434".to_owned()),
                version: Some("0.12.0".to_owned()),
                served_model: Some("m".to_owned()),
                ..crate::results::RunServer::default()
            }),
            servers: (0..n)
                .map(|i| format!("http://n{i}:11434 on node{i} (0.12.0)"))
                .collect(),
            ..RunSetup::default()
        };
        assert_eq!(
            server_words(&setup(0)),
            "ollama at http://n0:11434, version 0.12.0, serving m"
        );
        assert_eq!(
            server_words(&setup(2)),
            "ollama at 2 servers: http://n0:11434 on node0 (0.12.0), http://n1:11434 on node1 (0.12.0), serving m"
        );
        let many = server_words(&setup(100));
        assert!(many.starts_with("ollama at 100 servers: http://n0:11434 on node0 (0.12.0), "));
        assert!(many.contains("http://n4:11434 on node4 (0.12.0), and 95 more (the manifest names them all), serving m"), "{many}");
        assert!(!many.contains("node5"), "{many}");
    }

    #[test]
    fn p_values_and_stars() {
        assert_eq!(p_value(Some(0.0004)), "<0.001");
        assert_eq!(p_value(Some(0.0123)), "0.012");
        assert_eq!(p_value(None), "–");
        assert_eq!(stars(Some(0.0004)), "***");
        assert_eq!(stars(Some(0.004)), "**");
        assert_eq!(stars(Some(0.04)), "*");
        assert_eq!(stars(Some(0.05)), "");
    }
}
