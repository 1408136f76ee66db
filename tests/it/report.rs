//! Reports: snapshots of every file format on a fixed results folder, and what the
//! comparisons say about simulator runs whose truth is known.

use harness::report::terminal::Terminal;
use harness::report::{Exporter, csv::Csv, latex::Latex, markdown::Markdown, paper_grid};
use harness::scenario::Metric;
use harness::summary::{Summary, Verdict};

use crate::common::{json, repo_root, run_scenario, true_ratio_1024};

/// A results folder recorded from a simulator run (manifest reduced to what a report
/// reads): arms `[baseline]`, `[fast]`, `[baseline, baseline]`, `[fast, fast]`, 4 trials.
fn fixture() -> Summary {
    let dir = repo_root().join("tests/data/results-fixture");
    let run = harness::results::load(&dir).expect("fixture loads");
    harness::summary::summarize(&run.meta, &run.calls, &run.trials)
}

fn text(exporter: &dyn Exporter, summary: &Summary) -> String {
    String::from_utf8(exporter.render(summary).unwrap()).unwrap()
}

#[test]
fn markdown_report_snapshot() {
    insta::assert_snapshot!(text(&Markdown, &fixture()));
}

#[test]
fn latex_table_snapshot() {
    insta::assert_snapshot!(text(&Latex, &fixture()));
}

#[test]
fn comparisons_csv_snapshot() {
    insta::assert_snapshot!(text(&Csv, &fixture()));
}

#[test]
fn a_run_stopped_before_any_comparison_says_so() {
    let dir = repo_root().join("tests/data/results-fixture");
    let mut run = harness::results::load(&dir).expect("fixture loads");
    // Interrupted after the baseline's first trials: the variant never ran.
    run.calls.retain(|c| c.variant == "baseline");
    run.trials
        .retain(|t| t.variants.iter().all(|v| v == "baseline"));
    let s = harness::summary::summarize(&run.meta, &run.calls, &run.trials);
    assert!(!s.complete && s.comparisons.is_empty());
    let md = text(&Markdown, &s);
    assert!(md.contains("the run stopped before"), "{md}");
    assert!(!md.contains("no arm has a counterpart"), "{md}");
}

#[test]
fn the_terminal_shows_the_papers_comparison_table() {
    let s = fixture();
    let printed = text(&Terminal { color: false }, &s);
    let grid = paper_grid(&s);
    for header in &grid.header {
        assert!(
            printed.contains(header.as_str()),
            "no `{header}` in\n{printed}"
        );
    }
    // Each comparison is one line of the terminal with the paper's cells in order.
    for row in &grid.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| format!("{}{}", c.text, c.mark))
            .collect();
        let line = printed.lines().find(|l| {
            let mut rest = *l;
            cells.iter().all(|cell| match rest.find(cell.as_str()) {
                Some(i) => {
                    rest = &rest[i + cell.len()..];
                    true
                }
                None => false,
            })
        });
        assert!(line.is_some(), "no line with {cells:?} in\n{printed}");
    }
}

#[test]
fn fixture_compares_solo_and_shared_arms_against_their_baseline_counterparts() {
    let s = fixture();
    let pairs: Vec<(&str, &str)> = s
        .comparisons
        .iter()
        .filter(|c| c.metric == Metric::DecodeTps)
        .map(|c| (c.arm.as_str(), c.baseline_arm.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("fast", "baseline"), ("fast+fast", "baseline+baseline")]
    );
    // The fixture predates GPU telemetry: no energy metrics.
    let without_load = Metric::ALL
        .iter()
        .filter(|m| !m.needs_load() && !m.is_energy())
        .count();
    assert_eq!(s.comparisons.len(), 2 * without_load);
    // Holm over all ten: each adjusted p is at least its raw p.
    for c in &s.comparisons {
        assert!(c.holm_p.unwrap() >= c.stats.welch.unwrap().p);
    }
}

#[test]
fn a_confounded_comparison_is_flagged_in_every_format() {
    // The fixture, with every measured call of `fast` in `fast+fast` a model reload.
    let dir = repo_root().join("tests/data/results-fixture");
    let mut run = harness::results::load(&dir).expect("fixture loads");
    for c in &mut run.calls {
        if c.arm == "fast+fast" && c.variant == "fast" {
            c.cold = true;
        }
    }
    let s = harness::summary::summarize(&run.meta, &run.calls, &run.trials);
    let flagged: Vec<_> = s
        .comparisons
        .iter()
        .filter(|c| c.confound_warning.is_some())
        .collect();
    // The fixture predates GPU telemetry: no energy metrics.
    let without_load = Metric::ALL
        .iter()
        .filter(|m| !m.needs_load() && !m.is_energy())
        .count();
    assert_eq!(flagged.len(), without_load);
    assert!(flagged.iter().all(|c| c.arm == "fast+fast"));
    let says = "confounded: 28 of 28 of fast's calls reloaded the model, 0 of 32 of baseline's";
    let terminal = Terminal { color: false }.text(&s);
    assert!(
        terminal.contains(&format!("WARNING (fast in fast+fast): {says}")),
        "{terminal}"
    );
    assert!(terminal.contains("100% / 0%†"), "{terminal}");
    let markdown = text(&Markdown, &s);
    assert!(
        markdown.contains(&format!("**Warning:** {says}")),
        "{markdown}"
    );
    let latex = text(&Latex, &s);
    assert!(latex.contains("100\\% / 0\\%$^{\\dagger}$"), "{latex}");
    assert!(
        latex.contains("fast in fast+fast: confounded: 28 of 28"),
        "{latex}"
    );
    let csv = text(&Csv, &s);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in reader.records().map(|r| r.unwrap()) {
        let confounded = &row[at("arm")] == "fast+fast";
        assert_eq!(
            &row[at("confounded")],
            if confounded { "true" } else { "false" }
        );
        if confounded {
            assert_eq!(
                (&row[at("variant_cold")], &row[at("baseline_cold")]),
                ("28", "0")
            );
        }
    }
    // The unmodified fixture flags nothing.
    assert!(
        fixture()
            .comparisons
            .iter()
            .all(|c| c.confound_warning.is_none())
    );
}

#[test]
fn terminal_colours_only_when_asked() {
    use harness::report::terminal::Terminal;
    let s = fixture();
    let plain = Terminal { color: false }.text(&s);
    let coloured = Terminal { color: true }.text(&s);
    assert!(!plain.contains('\u{1b}'));
    assert!(
        coloured.contains("\u{1b}["),
        "significant rows are coloured"
    );
    assert!(plain.contains("ratio [95% CI]") && plain.contains("p (Holm)"));
}

/// Runs `scenario` (YAML with `DATA` standing for the shipped data folder) on the
/// simulator and returns its summary.
fn run_sim(scenario: &str) -> Summary {
    let dir = tempfile::tempdir().unwrap();
    let data = repo_root().join("scenarios/data");
    let run = run_scenario(
        dir.path(),
        &scenario.replace("DATA", &data.display().to_string()),
    );
    json(&run.join("summary.json"))
}

/// Decode cost grows with the allocated context: with `ctx_cost_per_1k: 1/14`, 1024
/// tokens decode (1 + 4/14) / (1 + 1/14) = 1.2 times as fast as the default 4096.
const SIM: &str = "{ decode_tps: 600, ctx_cost_per_1k: 0.07142857142857142, load_ms: 30, median_output_tokens: 40 }";

/// Two variants, each alone, 10 trials, on the simulator with [`SIM`].
fn two_variants(name: &str, seed: u64, variants: &str, arms: &str) -> String {
    format!(
        r#"
name: {name}
seed: {seed}
model: m:latest
server: {{ backend: sim }}
sim: {SIM}
workload: {{ kind: agent_report, data_dir: DATA }}
agents:
  collector: {{ persona: "You are a data collector. List findings." }}
  insight: {{ persona: "You recommend next steps.", consumes: collector }}
variants:
{variants}
arms: {arms}
trials: 10
"#
    )
}

#[test]
fn a_variant_the_simulator_makes_20_percent_faster_is_found_significantly_faster() {
    let scenario = two_variants(
        "faster",
        11,
        "  baseline: {}\n  fast: { options: { num_ctx: 1024 } }",
        "[[baseline], [fast]]",
    );
    let s = run_sim(&scenario);
    let truth = true_ratio_1024();
    assert!((truth - 1.2).abs() < 1e-9, "{truth}");

    let c = s
        .comparisons
        .iter()
        .find(|c| c.metric == Metric::DecodeTps)
        .expect("decode_tps comparison");
    let r = c.stats.ratio.unwrap();
    assert_eq!(c.verdict, Verdict::Faster, "{c:?}");
    assert!(c.holm_p.unwrap() < 0.001, "{c:?}");
    // The 95% CI misses the truth in one run of twenty by design, and timing noise is not
    // seeded; what must hold every time is an estimate within five standard errors of the
    // truth (a miss once in ~10⁵ runs), plus the half-percent bias the estimator check
    // measured (tests/it/estimator.rs).
    let w = c.stats.welch.unwrap();
    assert!(
        ((r.ratio / truth).ln()).abs() < 5.0 * w.se + 0.005,
        "ratio {} [{}, {}] is {:.1} standard errors from the true {truth}",
        r.ratio,
        r.low,
        r.high,
        (r.ratio / truth).ln().abs() / w.se
    );
    // The agent feels it too, if less than the server: prefill and TTFT do not speed up.
    // (Its Holm-adjusted verdict shares α with 13 other comparisons, so the unadjusted CI
    // is what is asserted.)
    let e2e = s
        .comparisons
        .iter()
        .find(|c| c.metric == Metric::E2eMs)
        .unwrap();
    let r = e2e.stats.ratio.unwrap();
    assert!(r.high < 1.0 && r.ratio > 1.0 / truth, "{e2e:?}");
}

#[test]
fn a_variant_against_an_identical_copy_shows_no_difference() {
    let scenario = two_variants(
        "aa",
        12,
        "  baseline: { options: { num_ctx: 2048 } }\n  copy: { options: { num_ctx: 2048 } }",
        "[[baseline], [copy]]",
    );
    let s = run_sim(&scenario);
    assert_eq!(
        s.comparisons.len(),
        Metric::ALL.iter().filter(|m| !m.needs_load()).count()
    );
    // Twelve 95% CIs of an A/A run miss 1 somewhere in a good share of runs, and Holm's
    // verdicts at α = 0.05 in one run of twenty, by design (tests/it/calibration.rs checks
    // those rates). What must hold in every run: no estimate five standard errors from 1
    // (p ≈ 1e-4 a metric) and no Holm-adjusted p below 0.001. Energy comes from the
    // simulated GPU's power integrated over wall time, which a busy machine disturbs more,
    // so it is held to its adjusted p only.
    for c in &s.comparisons {
        let r = c.stats.ratio.unwrap();
        let w = c.stats.welch.unwrap();
        assert!(
            c.metric.is_energy() || r.ratio.ln().abs() < 5.0 * w.se,
            "{}: A/A ratio {} [{}, {}] is {:.1} standard errors from 1",
            c.metric,
            r.ratio,
            r.low,
            r.high,
            r.ratio.ln().abs() / w.se
        );
        assert!(c.holm_p.unwrap() > 1e-3, "{c:?}");
    }
}
