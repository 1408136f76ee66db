//! Figures and the HTML report: every SVG parsed as XML and its marks counted against the
//! records they were drawn from, snapshots of each figure kind on the recorded fixtures,
//! and the report files that carry the figures (`report.md`, `report.html`,
//! `figures.tex`).

use harness::plan::Phase;
use harness::report::figure::Figure;
use harness::report::{Exporter, Report, html::Html, latex::LatexFigures, markdown::Markdown};
use harness::results::RunRecords;
use harness::summary::{RunSamples, Verdict};
use roxmltree::{Document, Node};

use crate::common::repo_root;

/// The records and the report of a recorded results folder under `tests/data`.
fn fixture(name: &str) -> (RunRecords, Report) {
    let run = harness::results::load(&repo_root().join("tests/data").join(name)).unwrap();
    let report = harness::report::report(&run).unwrap();
    (run, report)
}

fn figure<'a>(report: &'a Report, name: &str) -> &'a Figure {
    report
        .figures
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no figure {name}"))
}

fn has_class(node: &Node, class: &str) -> bool {
    node.attribute("class")
        .is_some_and(|c| c.split(' ').any(|t| t == class))
}

/// The mark groups of a class.
fn marks<'a>(doc: &'a Document, class: &str) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("g") && has_class(n, class))
        .collect()
}

/// A mark's hover title.
fn title(node: &Node) -> String {
    node.children()
        .find(|c| c.has_tag_name("title"))
        .and_then(|t| t.text())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_figure_is_well_formed_labelled_and_the_same_bytes_each_time() {
    for name in ["results-fixture", "results-fixture-load"] {
        let (run, report) = fixture(name);
        assert!(
            report.figures.len() >= 5,
            "{name}: {}",
            report.figures.len()
        );
        let again = harness::report::report(&run).unwrap();
        assert_eq!(report.figures, again.figures, "{name}: not deterministic");
        for f in &report.figures {
            let doc = Document::parse(&f.svg)
                .unwrap_or_else(|e| panic!("{name}/{}: not XML: {e}", f.name));
            let root = doc.root_element();
            assert!(root.has_tag_name("svg"));
            assert_eq!(root.attribute("width"), Some("400"), "{}", f.name);
            assert_eq!(
                root.attribute("viewBox"),
                Some(format!("0 0 400 {}", root.attribute("height").unwrap()).as_str())
            );
            // No ids or times that would differ between two drawings of the same data.
            assert!(doc.descendants().all(|n| n.attribute("id").is_none()));
            // The fixtures are simulator runs: every figure says so.
            assert_eq!(marks(&doc, "simulated").len(), 1, "{}", f.name);
            let texts: Vec<&str> = doc
                .descendants()
                .filter(|n| n.has_tag_name("text"))
                .filter_map(|n| n.text())
                .collect();
            assert!(texts.contains(&f.title.as_str()), "{}: no title", f.name);
            assert!(texts.iter().all(|t| !t.trim().is_empty()));
            // Every mark says what it is when hovered.
            for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
                let layer = [
                    "axes",
                    "legend",
                    "simulated",
                    "no-difference",
                    "reference",
                    "n",
                ]
                .iter()
                .any(|c| has_class(&g, c));
                assert!(layer || !title(&g).is_empty(), "{}: untitled {g:?}", f.name);
            }
            assert!(f.caption.len() > 80, "{}: caption too thin", f.name);
        }
    }
}

#[test]
fn the_forest_plot_has_one_whisker_per_comparison_and_shows_verdicts_and_gates() {
    let (_, report) = fixture("results-fixture");
    let s = &report.summary;
    let doc = Document::parse(&figure(&report, "forest").svg).unwrap();
    let cis = marks(&doc, "ci");
    let with_ratio = s.comparisons.iter().filter(|c| c.stats.ratio.is_some());
    assert_eq!(cis.len(), with_ratio.count());
    assert!(cis.len() >= 10);
    for (class, verdict) in [
        ("faster", Verdict::Faster),
        ("slower", Verdict::Slower),
        ("not-significant", Verdict::NoSignificantDifference),
    ] {
        let n = s
            .comparisons
            .iter()
            .filter(|c| c.verdict == verdict)
            .count();
        assert_eq!(
            cis.iter().filter(|g| has_class(g, class)).count(),
            n,
            "{class}"
        );
    }
    // Each whisker: the CI's line and its two caps; the line is longer for a wider CI.
    let width = |g: &Node| {
        let line = g.children().find(|c| c.has_tag_name("polyline")).unwrap();
        let xs: Vec<i32> = line
            .attribute("points")
            .unwrap()
            .split([' ', ','])
            .step_by(2)
            .map(|x| x.parse().unwrap())
            .collect();
        xs[1] - xs[0]
    };
    let widths: Vec<(f64, i32)> = s
        .comparisons
        .iter()
        .filter_map(|c| c.stats.ratio.as_ref())
        .zip(&cis)
        .map(|(r, g)| ((r.high / r.low).ln(), width(g)))
        .collect();
    let widest = widths.iter().max_by(|a, b| a.0.total_cmp(&b.0)).unwrap();
    let narrowest = widths.iter().min_by(|a, b| a.0.total_cmp(&b.0)).unwrap();
    assert!(widest.1 > narrowest.1 * 3, "{widths:?}");
    assert!(marks(&doc, "gate").is_empty(), "the fixture has no gates");

    // The load fixture gates req_per_s at every level: one band per gated comparison.
    let (run, report) = fixture("results-fixture-load");
    let doc = Document::parse(&figure(&report, "forest").svg).unwrap();
    let gates = marks(&doc, "gate");
    assert_eq!(gates.len(), 3);
    assert_eq!(run.gates.len(), 3, "one gate, expanded to the three levels");
    assert!(
        gates.iter().all(|g| title(g).contains(">= 0.9000")),
        "{gates:?}"
    );
}

#[test]
fn a_strip_plot_has_one_dot_per_trial_placed_by_its_value() {
    let (run, report) = fixture("results-fixture");
    let samples = RunSamples::of(&run.meta, &run.calls, &run.trials);
    for metric in harness::scenario::Metric::ALL {
        let name = format!("strip-{metric}");
        let expected: usize = samples
            .by_trial
            .iter()
            .filter(|(k, _)| k.2 == metric)
            .map(|(_, v)| v.len())
            .sum();
        let Some(f) = report.figures.iter().find(|f| f.name == name) else {
            assert_eq!(expected, 0, "{metric} measured but not drawn");
            continue;
        };
        let doc = Document::parse(&f.svg).unwrap();
        let dots = marks(&doc, "trial");
        assert_eq!(dots.len(), expected, "{metric}");
        // A dot's column follows its value (the value is in its title).
        let mut placed: Vec<(f64, i32)> = dots
            .iter()
            .map(|g| {
                let t = title(g);
                let value = t.split(": ").nth(1).unwrap().split(' ').next().unwrap();
                let cx = g
                    .children()
                    .find(|c| c.has_tag_name("circle"))
                    .unwrap()
                    .attribute("cx")
                    .unwrap();
                (value.parse().unwrap(), cx.parse().unwrap())
            })
            .collect();
        placed.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            placed.windows(2).all(|w| w[0].1 <= w[1].1),
            "{metric}: {placed:?}"
        );
        assert!(
            placed.last().unwrap().1 - placed[0].1 > 100,
            "{metric}: {placed:?}"
        );
        assert_eq!(
            marks(&doc, "box").len(),
            samples.by_trial.keys().filter(|k| k.2 == metric).count()
        );
    }
}

#[test]
fn a_timeline_has_one_bar_per_call_of_the_median_trial() {
    let (run, report) = fixture("results-fixture");
    let timelines: Vec<&Figure> = report
        .figures
        .iter()
        .filter(|f| f.name.starts_with("timeline-"))
        .collect();
    // The two arms of two pipelines overlap; the solo arms' calls run one after another.
    let names: Vec<&str> = timelines.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["timeline-baseline+baseline", "timeline-fast+fast"]);
    for f in timelines {
        let arm = f.name.strip_prefix("timeline-").unwrap();
        let mut trials: Vec<_> = run
            .trials
            .iter()
            .filter(|t| t.arm == arm && t.phase == Phase::Measured)
            .collect();
        trials.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
        let median = trials[(trials.len() - 1) / 2];
        assert!(
            f.title.contains(&format!("Trial {} ", median.trial)),
            "{}",
            f.title
        );
        let calls: Vec<_> = run
            .calls
            .iter()
            .filter(|c| c.trial == median.trial && c.step != "prime")
            .collect();
        let doc = Document::parse(&f.svg).unwrap();
        let bars = marks(&doc, "call");
        assert_eq!(bars.len(), calls.len(), "{}", f.name);
        let failed = calls.iter().filter(|c| !c.ok).count();
        assert_eq!(
            bars.iter().filter(|g| has_class(g, "failed")).count(),
            failed
        );
        // Lanes: one per pipeline and agent; the critical path is starred.
        let lanes: std::collections::BTreeSet<_> =
            calls.iter().map(|c| (c.slot, c.agent.clone())).collect();
        let labels: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .filter(|t| t.contains('#'))
            .collect();
        assert_eq!(labels.len(), lanes.len(), "{labels:?}");
        // The fixture predates job timing: no critical path to star.
        let timed = median.pipelines.iter().any(|p| p.job.is_some());
        assert_eq!(labels.iter().any(|l| l.ends_with('★')), timed, "{labels:?}");
    }
}

#[test]
fn ecdf_drift_and_sweep_figures_cover_their_data() {
    let (run, report) = fixture("results-fixture");
    let s = &report.summary;
    let doc = Document::parse(&figure(&report, "ecdf-ttft_ms").svg).unwrap();
    let lines = marks(&doc, "ecdf");
    assert_eq!(lines.len(), s.groups.len());
    // Each line's legend counts the successful measured calls of its group.
    let measured = run
        .calls
        .iter()
        .filter(|c| c.phase == Phase::Measured && c.step != "prime" && c.ok)
        .count();
    let counted: usize = lines
        .iter()
        .map(|g| {
            let t = title(g);
            let n = t.split(" (").nth(1).unwrap().split(' ').next().unwrap();
            n.parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(counted, measured);

    let drift = Document::parse(&figure(&report, "drift-ttft_ms").svg).unwrap();
    let series = marks(&drift, "series");
    assert_eq!(
        series.len(),
        s.drift
            .iter()
            .filter(|d| d.metric == harness::scenario::Metric::TtftMs)
            .count()
    );
    // One dot per measured trial of each series.
    let dots: usize = series
        .iter()
        .map(|g| g.children().filter(|c| c.has_tag_name("circle")).count())
        .sum();
    assert_eq!(dots, 16);

    let (_, report) = fixture("results-fixture-load");
    let serving = report.summary.serving.len();
    assert_eq!(serving, 6);
    let latency = Document::parse(&figure(&report, "sweep-latency").svg).unwrap();
    assert_eq!(marks(&latency, "level").len(), serving);
    assert_eq!(marks(&latency, "curve").len(), 2);
    let goodput = Document::parse(&figure(&report, "sweep-goodput").svg).unwrap();
    assert_eq!(marks(&goodput, "ci").len(), serving);
    // A timed job's critical path is starred in its timeline.
    let timeline = Document::parse(&figure(&report, "timeline-fast@c8").svg).unwrap();
    let starred = timeline
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .filter(|t| t.ends_with('★'))
        .count();
    assert_eq!(starred, 1);
}

#[test]
fn figure_snapshots() {
    let (_, report) = fixture("results-fixture");
    for name in [
        "forest",
        "strip-ttft_ms",
        "ecdf-ttft_ms",
        "timeline-fast+fast",
        "drift-ttft_ms",
    ] {
        insta::assert_snapshot!(name, figure(&report, name).svg);
    }
    let (_, report) = fixture("results-fixture-load");
    for name in ["sweep-latency", "sweep-goodput", "timeline-fast@c8"] {
        insta::assert_snapshot!(name, figure(&report, name).svg);
    }
}

#[test]
fn the_reports_carry_every_figure() {
    let (_, report) = fixture("results-fixture");
    let md = String::from_utf8(Markdown.render(&report).unwrap()).unwrap();
    let html = String::from_utf8(Html.render(&report).unwrap()).unwrap();
    let tex = String::from_utf8(LatexFigures.render(&report).unwrap()).unwrap();
    for f in &report.figures {
        assert!(md.contains(&format!("![{}](figures/{}.svg)", f.title, f.name)));
        assert!(html.contains(&f.svg), "{} not inline", f.name);
        assert!(html.contains(&format!("<figure id=\"fig-{}\"", f.name)));
        assert!(tex.contains(&format!(
            "\\includegraphics[width=\\columnwidth]{{figures/{}}}",
            f.name
        )));
        assert!(tex.contains(&format!("\\label{{fig:harness-{}}}", f.name)));
    }
    // The forest plot sits under the verdicts, the rest in their own section.
    let verdicts = md.find("## Verdicts").unwrap();
    let forest = md.find("(figures/forest.svg)").unwrap();
    let comparisons = md.find("## Comparisons against the baseline").unwrap();
    assert!(verdicts < forest && forest < comparisons);
    assert!(md.find("## Figures").unwrap() < md.find("(figures/strip-ttft_ms.svg)").unwrap());
    // Captions state n, the interval and the test.
    let forest_caption = &figure(&report, "forest").caption;
    for words in ["95%", "Welch", "Holm", "n|n", "paired t"] {
        assert!(forest_caption.contains(words), "{words}: {forest_caption}");
    }
    assert!(
        tex.contains("Holm-adjusted t-tests at $\\alpha$ = 0.05"),
        "{tex}"
    );
    assert_eq!(tex.matches("\\begin{figure}").count(), report.figures.len());

    // Self-contained: nothing is fetched, nothing runs.
    for banned in [
        "<script",
        " src=",
        "<link",
        "@import",
        "url(",
        "href=\"http",
    ] {
        assert!(!html.contains(banned), "report.html has {banned}");
    }
    // The same tables as the Markdown, and the stars of the significance legend are text.
    assert_eq!(
        html.matches("<table>").count(),
        md.lines()
            .filter(|l| l.starts_with("| ---") || l.starts_with("| --"))
            .count()
    );
    assert!(html.contains("** &lt; 0.01"));
    assert!(html.contains("<p class=\"callout\"><strong>Simulated</strong>"));
}

/// The Markdown a report writes is the figureless report with the figures added: the
/// outline is shared, so nothing else moves.
#[test]
fn figures_add_to_the_markdown_and_change_nothing_else() {
    let (_, report) = fixture("results-fixture");
    let with = String::from_utf8(Markdown.render(&report).unwrap()).unwrap();
    let without = String::from_utf8(Markdown.render(&report.summary).unwrap()).unwrap();
    // `without` is a subsequence of `with`'s lines, and what else `with` has is figures.
    let mut rest = without.lines().peekable();
    let mut extra = Vec::new();
    for line in with.lines() {
        if rest.peek() == Some(&line) {
            rest.next();
        } else {
            extra.push(line);
        }
    }
    assert_eq!(
        rest.next(),
        None,
        "the figureless report's lines are not all kept in order"
    );
    let figures = report.figures.len();
    let images = extra.iter().filter(|l| l.starts_with("![")).count();
    let captions = extra.iter().filter(|l| l.starts_with('*')).count();
    assert_eq!((images, captions), (figures, figures));
    assert!(
        extra.iter().all(|l| l.is_empty()
            || l.starts_with("![")
            || l.starts_with('*')
            || *l == "## Figures"),
        "{extra:?}"
    );
}

/// The README shows the flagship demo's forest plot: it is what the code draws from the
/// demo's records (`HARNESS_UPDATE_DOCS=1 cargo test --test it readme_forest` redraws it).
#[test]
fn the_readme_forest_plot_is_the_demo_s() {
    let (_, report) = fixture("results-demo");
    let drawn = &figure(&report, "forest").svg;
    let path = repo_root().join("docs/forest.svg");
    if std::env::var_os("HARNESS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, drawn).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == *drawn,
        "docs/forest.svg is stale: HARNESS_UPDATE_DOCS=1 cargo test --test it readme_forest"
    );
    // What the README says of it.
    let row = |arm: &str, metric| {
        report
            .summary
            .comparisons
            .iter()
            .find(|c| c.arm == arm && c.metric == metric && !c.paired)
            .unwrap()
    };
    use harness::scenario::Metric::{DecodeTps, E2eTps};
    assert_eq!(row("chimera", DecodeTps).verdict, Verdict::Faster);
    assert_eq!(row("chimera+chimera", DecodeTps).verdict, Verdict::Faster);
    let mixed = row("baseline+chimera", E2eTps);
    assert_eq!(mixed.verdict, Verdict::Slower);
    assert!(mixed.confound_warning.is_some());
}
