//! `report.html`: the outline of `document.rs` as one self-contained page. The figures are
//! inline SVG, the style is inline CSS; no script, font or image is fetched, so the page
//! reads the same offline, from a CI artifact or from an e-mail attachment.

use std::fmt::Write;

use super::document::{Block, Report, outline};
use super::figure::Figure;
use super::figure::canvas::escape;
use super::{Align, Exporter, Grid, Tone};

/// Writes `report.html`.
pub struct Html;

const STYLE: &str = "\
:root{color-scheme:light;--ink:#222;--muted:#666;--rule:#ddd;--good:#00734f;--bad:#b34700}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:var(--ink);background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px 20px 64px}
h1{font-size:26px;margin:0 0 12px}
h2{font-size:20px;margin:36px 0 8px;padding-top:8px;border-top:1px solid var(--rule)}
h3{font-size:16px;margin:20px 0 6px}
p,li{max-width:80ch}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f3f3;padding:0 3px;border-radius:3px}
.callout{border-left:4px solid #D55E00;background:#fff4ec;padding:8px 12px;margin:12px 0}
nav{font-size:14px;color:var(--muted);margin:8px 0 16px}
nav a{color:inherit;margin-right:12px}
.table{overflow-x:auto;margin:8px 0 16px}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid var(--rule);text-align:left;white-space:nowrap}
th{border-bottom:2px solid var(--ink);font-weight:600}
td.num,th.num{text-align:right}
td.good{color:var(--good);font-weight:600}
td.bad{color:var(--bad);font-weight:600}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:24px;margin:12px 0}
figure{margin:0}
figure svg{width:100%;height:auto;display:block;border:1px solid #eee}
figcaption{font-size:13px;color:var(--muted);margin-top:6px}
figure.lead{max-width:640px;margin:16px 0}
@media print{main{max-width:none;padding:0}h2{break-after:avoid}figure,table{break-inside:avoid}}
";

/// Text with the outline's inline marks (`**strong**`, `` `code` ``) as HTML, escaped. As
/// in CommonMark, `**` opens only before a word and closes only after one, so the stars
/// of "** < 0.01" stay stars.
fn inline(text: &str) -> String {
    let escaped = escape(text);
    let mut out = String::with_capacity(escaped.len());
    let (mut strong, mut code) = (false, false);
    let mut rest = escaped.as_str();
    let mut before: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let after = rest[c.len_utf8()..].chars().nth(1);
        let flanks = if strong {
            before.is_some_and(|b| !b.is_whitespace() && b != '*')
        } else {
            after.is_some_and(|a| !a.is_whitespace() && a != '*')
        };
        if rest.starts_with("**") && !code && flanks {
            out.push_str(if strong { "</strong>" } else { "<strong>" });
            strong = !strong;
            rest = &rest[2..];
        } else if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            before = Some(c);
            continue;
        }
        before = None;
    }
    // An unpaired mark closes at the end rather than running into the page.
    if code {
        out.push_str("</code>");
    }
    if strong {
        out.push_str("</strong>");
    }
    out
}

/// A heading's anchor: lower case, words joined by `-`.
fn anchor(text: &str) -> String {
    let mut out = String::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_lowercase());
    }
    out
}

fn table(grid: &Grid) -> String {
    let class = |a: &Align| match a {
        Align::Left => "",
        Align::Right => " class=\"num\"",
    };
    let mut out = String::from("<div class=\"table\"><table>\n<thead><tr>");
    for (h, a) in grid.header.iter().zip(&grid.align) {
        let _ = write!(out, "<th{}>{}</th>", class(a), escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &grid.rows {
        out.push_str("<tr>");
        for (cell, a) in row.iter().zip(&grid.align) {
            let mut classes = Vec::new();
            if *a == Align::Right {
                classes.push("num");
            }
            match cell.tone {
                Tone::Good => classes.push("good"),
                Tone::Bad => classes.push("bad"),
                Tone::Plain => {}
            }
            let attr = if classes.is_empty() {
                String::new()
            } else {
                format!(" class=\"{}\"", classes.join(" "))
            };
            let _ = write!(out, "<td{attr}>{}{}</td>", escape(&cell.text), cell.mark);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

fn figure(f: &Figure, class: &str) -> String {
    format!(
        "<figure id=\"fig-{}\"{class}>\n{}<figcaption><strong>{}.</strong> {}</figcaption>\n</figure>\n",
        escape(&f.name),
        f.svg,
        escape(&f.title),
        escape(&f.caption)
    )
}

/// The page.
pub fn page(r: &Report) -> String {
    let blocks = outline(&r.summary, &r.figures);
    let mut body = String::new();
    let mut sections = Vec::new();
    let mut in_figures = false;
    for block in &blocks {
        if in_figures && !matches!(block, Block::Figure(_)) {
            body.push_str("</div>\n");
            in_figures = false;
        }
        match block {
            Block::Title(t) => {
                let _ = writeln!(body, "<h1>{}</h1>\n<!--nav-->", inline(t));
            }
            Block::Heading(t) => {
                let id = anchor(t);
                let _ = writeln!(body, "<h2 id=\"{id}\">{}</h2>", inline(t));
                sections.push((id, t.clone()));
            }
            Block::Subheading(t) => {
                let _ = writeln!(body, "<h3>{}</h3>", inline(t));
            }
            Block::Para(t) => {
                let _ = writeln!(body, "<p>{}</p>", inline(t));
            }
            Block::Callout(t) => {
                let _ = writeln!(body, "<p class=\"callout\">{}</p>", inline(t));
            }
            Block::Bullets(items) if items.is_empty() => {}
            Block::Bullets(items) => {
                body.push_str("<ul>\n");
                for i in items {
                    let _ = writeln!(body, "<li>{}</li>", inline(i));
                }
                body.push_str("</ul>\n");
            }
            Block::Table(grid) => body.push_str(&table(grid)),
            Block::Figure(i) => {
                let f = &r.figures[*i];
                if f.name == "forest" {
                    body.push_str(&figure(f, " class=\"lead\""));
                } else {
                    if !in_figures {
                        body.push_str("<div class=\"figures\">\n");
                        in_figures = true;
                    }
                    body.push_str(&figure(f, ""));
                }
            }
        }
    }
    if in_figures {
        body.push_str("</div>\n");
    }
    let nav: String = sections
        .iter()
        .map(|(id, t)| format!("<a href=\"#{id}\">{}</a>", escape(t)))
        .collect();
    let body = body.replacen("<!--nav-->", &format!("<nav>{nav}</nav>"), 1);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — harness report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(&r.summary.scenario)
    )
}

impl Exporter<Report> for Html {
    fn render(&self, r: &Report) -> anyhow::Result<Vec<u8>> {
        Ok(page(r).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_marks_become_tags_and_text_is_escaped() {
        assert_eq!(
            inline("**Simulated**: `a<b` & c"),
            "<strong>Simulated</strong>: <code>a&lt;b</code> &amp; c"
        );
        assert_eq!(inline("an open `mark"), "an open <code>mark</code>");
        assert_eq!(
            inline("marked * < 0.05, ** < 0.01, *** < 0.001; **bold**"),
            "marked * &lt; 0.05, ** &lt; 0.01, *** &lt; 0.001; <strong>bold</strong>"
        );
        assert_eq!(
            anchor("Comparisons against the baseline"),
            "comparisons-against-the-baseline"
        );
    }
}
