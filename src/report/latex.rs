//! `table.tex`: every comparison as one booktabs table with a caption that states n, α
//! and the tests, ready to `\input` into a paper (needs `\usepackage{booktabs,graphicx}`).
//! A table wider than the text is scaled down to the line width, never up.

use std::fmt::Write;

use super::document::Report;
use super::{
    Align, CONFOUNDED_MARK, Exporter, Grid, Tone, all_warnings, n_range, order_words, paper_grid,
    server_words, variant_words,
};
use crate::summary::Summary;

/// Writes `table.tex`.
pub struct Latex;

/// Writes `figures.tex`.
pub struct LatexFigures;

/// Escapes LaTeX's special characters in text mode; a leading minus of a number becomes a
/// math minus rather than a hyphen.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let text = match text.strip_prefix('-') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            out.push_str("$-$");
            rest
        }
        _ => text,
    };
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '<' => out.push_str("$<$"),
            '>' => out.push_str("$>$"),
            'δ' => out.push_str("$\\delta$"),
            'Σ' => out.push_str("$\\Sigma$"),
            '×' => out.push_str("$\\times$"),
            '–' => out.push_str("--"),
            '—' => out.push_str("---"),
            'α' => out.push_str("$\\alpha$"),
            '≤' => out.push_str("$\\le$"),
            '≥' => out.push_str("$\\ge$"),
            '★' => out.push_str("$\\star$"),
            '·' => out.push_str("$\\cdot$"),
            '|' => out.push_str("\\textbar{}"),
            _ => out.push(c),
        }
    }
    out
}

/// A column head as a paper sets it: the first word capitalized (`Ratio [95% CI]`),
/// unless it is a one-letter symbol that keeps its case (`p (Holm)`, `g`, `δ`).
pub fn head(header: &str) -> String {
    let first_word = header.split_whitespace().next().unwrap_or_default();
    let mut chars = header.chars();
    match chars.next() {
        Some(first) if first_word.chars().count() > 1 => {
            first.to_uppercase().chain(chars).collect()
        }
        _ => header.to_owned(),
    }
}

/// A grid as a booktabs tabular; significance marks become superscripts and significant
/// cells are bold.
pub fn tabular(grid: &Grid) -> String {
    let spec: String = grid
        .align
        .iter()
        .map(|a| match a {
            Align::Left => 'l',
            Align::Right => 'r',
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "\\begin{{tabular}}{{{spec}}}");
    out.push_str("\\toprule\n");
    let header: Vec<String> = grid.header.iter().map(|h| escape(&head(h))).collect();
    let _ = writeln!(out, "{} \\\\", header.join(" & "));
    out.push_str("\\midrule\n");
    for row in &grid.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| {
                let mut text = escape(&c.text);
                if c.tone != Tone::Plain {
                    text = format!("\\textbf{{{text}}}");
                }
                if !c.mark.is_empty() {
                    let mark = c.mark.replace(CONFOUNDED_MARK, "\\dagger");
                    let _ = write!(text, "$^{{{mark}}}$");
                }
                text
            })
            .collect();
        let _ = writeln!(out, "{} \\\\", cells.join(" & "));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
    out
}

/// The server and what each variant sent, for the caption.
fn setup_sentence(s: &Summary) -> String {
    let mut text = format!("Server: {}.", server_words(&s.setup));
    if !s.setup.variants.is_empty() {
        let variants: Vec<String> = s.setup.variants.iter().map(variant_words).collect();
        text.push_str(&format!(" Variants: {}.", variants.join("; ")));
    }
    escape(&text)
}

/// The run's warnings for the caption (different failure rates, different output
/// lengths), or nothing.
fn warnings_sentence(s: &Summary) -> String {
    let warnings = all_warnings(s);
    if warnings.is_empty() {
        return String::new();
    }
    let listed: Vec<String> = warnings
        .iter()
        .map(|(about, w)| escape(&format!("{about}: {w}")))
        .collect();
    format!(" \\textbf{{Warnings:}} {}.", listed.join("; "))
}

impl Exporter for Latex {
    fn render(&self, s: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "% harness: {} against {}. Needs \\usepackage{{booktabs,graphicx}}.",
            escape(&s.scenario),
            escape(&s.baseline)
        );
        out.push_str("\\begin{table}[htbp]\n\\centering\n\\small\n");
        out.push_str("\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n");
        out.push_str(&tabular(&paper_grid(s)));
        out.push_str("}\n");
        let simulated = if s.simulated {
            " Numbers from harness's built-in simulator, not a GPU server."
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "\\caption{{{scenario}: each variant against {baseline} on per-trial means ({n}); \
             rates in tokens/s, times in ms. \
             Base arm: the arm whose baseline trials a row is compared with; same trials: \
             variant and baseline ran together and are paired by trial. \
             Ratio: variant/baseline ratio of geometric means with a {conf:.0}\\% CI from \
             Welch's $t$ on log values (paired $t$ for paired rows), not adjusted for \
             multiplicity. $p$ (Holm): that test's two-sided $p$, \
             Holm-adjusted over all {m} comparisons; marks $^{{*}}$, $^{{**}}$, $^{{***}}$ for \
             $p<0.05$, $0.01$, $0.001$; bold: significant at $\\alpha={alpha}$. $p$ (MW): \
             two-sided Mann--Whitney $U$ (exact without ties), unadjusted. $g$: Hedges' $g$; \
             $\\delta$: Cliff's $\\delta$; both signed variant $-$ baseline (positive: the \
             variant's values are higher). Cold, new conn: shares of the variant's / \
             baseline's calls that reloaded the model / opened a connection; $^{{\\dagger}}$: \
             they differ by more than 10 points and the ratio is confounded with them. \
             {order} {setup}{simulated}{warnings}}}",
            scenario = escape(&s.scenario),
            baseline = escape(&s.baseline),
            n = escape(&n_range(s)),
            conf = s.confidence * 100.0,
            m = s.comparisons.len(),
            alpha = s.alpha,
            warnings = warnings_sentence(s),
            setup = setup_sentence(s),
            order = escape(&order_words(s)),
        );
        let label: String = s
            .scenario
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let _ = writeln!(out, "\\label{{tab:harness-{label}}}");
        out.push_str("\\end{table}\n");
        Ok(out.into_bytes())
    }
}

/// `figures.tex`: a `figure` environment per figure with a caption that states what is
/// drawn, n, the interval and the test. The figures are SVG: pdfLaTeX needs them as PDF
/// (`rsvg-convert -f pdf`, or `\usepackage{svg}` and `\includesvg`), which the header says.
impl Exporter<Report> for LatexFigures {
    fn render(&self, r: &Report) -> anyhow::Result<Vec<u8>> {
        let mut out = format!(
            "% Figures of harness run `{}`{}. \\includegraphics finds figures/<name>.pdf:\n\
             % convert each SVG once, e.g.\n\
             %   for f in figures/*.svg; do rsvg-convert -f pdf -o \"${{f%.svg}}.pdf\" \"$f\"; done\n\
             % or use \\usepackage{{svg}} and \\includesvg. Needs \\usepackage{{graphicx}}.\n",
            r.summary.scenario,
            if r.summary.simulated {
                " (SIMULATED: numbers from the built-in simulator)"
            } else {
                ""
            }
        );
        for f in &r.figures {
            let _ = write!(
                out,
                "\n\\begin{{figure}}[tbp]\n  \\centering\n  \\includegraphics[width=\\columnwidth]{{figures/{}}}\n  \\caption{{{}. {}}}\n  \\label{{fig:harness-{}}}\n\\end{{figure}}\n",
                f.name,
                escape(&f.title),
                escape(&f.caption),
                f.name
            );
        }
        Ok(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_are_escaped() {
        assert_eq!(escape("decode_tps"), "decode\\_tps");
        assert_eq!(escape("50% & #1"), "50\\% \\& \\#1");
        assert_eq!(escape("<0.001"), "$<$0.001");
        assert_eq!(
            escape("a\\b~c^d"),
            "a\\textbackslash{}b\\textasciitilde{}c\\textasciicircum{}d"
        );
        assert_eq!(escape("{x}"), "\\{x\\}");
        assert_eq!(escape("-0.22"), "$-$0.22");
        assert_eq!(escape("baseline-2"), "baseline-2");
    }

    #[test]
    fn heads_are_capitalized_but_symbols_keep_their_case() {
        assert_eq!(head("ratio [95% CI]"), "Ratio [95% CI]");
        assert_eq!(head("var. mean"), "Var. mean");
        assert_eq!(head("p (Holm)"), "p (Holm)");
        assert_eq!(head("g"), "g");
        assert_eq!(head("δ"), "δ");
    }
}
