//! The layers of `src/`, written once, and the test that holds the code to them.
//!
//! Each top-level module may import (through `crate::` paths) only modules of layers below
//! its own: never a module above, never a peer of its own layer. So data and types flow
//! one way and no import cycle can form. When a change seems to need an upward import,
//! the shared type is in the wrong room: move it down (see `ARCHITECTURE.md`).
//!
//! Test code (`#[cfg(test)]` items), comments and string literals do not count. The
//! picture of the layers in `src/lib.rs` is checked against [`LAYERS`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom first, each with its modules and what the layer is for.
const LAYERS: &[(&[&str], &str)] = &[
    (&["rng"], "seeded randomness"),
    (
        &["stats", "scenario"],
        "pure statistics; the configuration and its vocabulary",
    ),
    (&["plan"], "the seeded order of trials"),
    (
        &["metrics", "telemetry"],
        "one streamed call → one record; GPU and server samples",
    ),
    (
        &["backend", "sim", "ingest"],
        "server APIs; the simulated server; the data scan",
    ),
    (&["results"], "the results folder, written and read"),
    (
        &["workflow", "summary"],
        "the jobs workloads run; records → statistics",
    ),
    (&["scheduler", "gate"], "running a plan; gate verdicts"),
    (&["report"], "every output format"),
    (&["run", "merge"], "`harness run` end to end; shards merged"),
    (&["cli"], "arguments → plain configuration"),
];

/// The layer of each module.
fn layer_of() -> BTreeMap<&'static str, usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, (modules, _))| modules.iter().map(move |m| (*m, i)))
        .collect()
}

/// The picture of [`LAYERS`] that `src/lib.rs` shows, top layer first.
fn picture() -> String {
    let mut out = String::new();
    for (i, (modules, what)) in LAYERS.iter().enumerate().rev() {
        let names = modules.join(", ");
        out.push_str(&format!("{i:>2}  {names:<26}{what}\n"));
    }
    out
}

/// `text` with comments and the contents of string and character literals blanked out
/// (newlines kept, so positions keep their lines).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push('"');
            for _ in i + 1..=j {
                out.push(' ');
            }
            i = j + 1;
            while i < chars.len() {
                let closes =
                    chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#'));
                if closes {
                    out.push('"');
                    for _ in 0..hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let end = if next == Some('\\') {
                (i + 3..chars.len()).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.push('\'');
                    for _ in i + 1..end {
                        out.push(' ');
                    }
                    out.push('\'');
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// True when the character before `i` continues an identifier (so `r` is not a prefix).
fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `code` with every `#[cfg(test)]` item blanked out.
fn without_tests(code: &str) -> String {
    const ATTRIBUTE: &str = "#[cfg(test)]";
    let mut out: Vec<char> = code.chars().collect();
    let text: Vec<char> = out.clone();
    let attribute: Vec<char> = ATTRIBUTE.chars().collect();
    let mut i = 0;
    while i + attribute.len() <= text.len() {
        if text[i..i + attribute.len()] != attribute[..] {
            i += 1;
            continue;
        }
        // The item runs to its first `;` at depth 0, or to the `}` closing its first `{`.
        let mut j = i + attribute.len();
        let mut depth = 0usize;
        while j < text.len() {
            match text[j] {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                ';' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        for c in out.iter_mut().take((j + 1).min(text.len())).skip(i) {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = j + 1;
    }
    out.into_iter().collect()
}

/// The top-level modules `code` imports, each with the 1-based line where it does.
fn imports(code: &str) -> Vec<(String, usize)> {
    let line_at = |offset: usize| code[..offset].matches('\n').count() + 1;
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::x, b::{y, z}, c}`: the first segment of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        found.push((ident(&group[k..]), line_at(at)));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.push((name, line_at(at)));
            }
        }
    }
    found
}

/// The top-level module a file of `src/` belongs to (`a.rs` and `a/**` are `a`); `None`
/// for the crate root and the binary.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// Every way `sources` (path relative to `src/`, text) break the layers, in words.
fn violations(sources: &[(PathBuf, String)]) -> Vec<String> {
    let layer = layer_of();
    let mut edges: Vec<(String, String, String)> = Vec::new();
    let mut problems = Vec::new();
    for (path, text) in sources {
        let Some(module) = module_of(path) else {
            continue;
        };
        if !layer.contains_key(module.as_str()) {
            problems.push(format!(
                "src/{}: module `{module}` is in no layer: place it in LAYERS (tests/it/architecture.rs) and in the picture of src/lib.rs",
                path.display()
            ));
            continue;
        }
        for (target, line) in imports(&without_tests(&code_only(text))) {
            if target == module {
                continue;
            }
            let at = format!("src/{}:{line}", path.display());
            match layer.get(target.as_str()) {
                None => problems.push(format!(
                    "{at}: `{module}` imports `crate::{target}`, which is in no layer"
                )),
                Some(_) => edges.push((module.clone(), target, at)),
            }
        }
    }
    for (from, to, at) in &edges {
        let (a, b) = (layer[from.as_str()], layer[to.as_str()]);
        if b < a {
            continue;
        }
        let kind = if a == b {
            "its peer"
        } else {
            "a module above it"
        };
        let cycle = if edges.iter().any(|(f, t, _)| f == to && t == from) {
            format!(", and `{to}` imports `{from}`: an import cycle")
        } else {
            String::new()
        };
        problems.push(format!(
            "{at}: `{from}` (layer {a}) imports `{to}` (layer {b}), {kind}{cycle}; move what both need down to a layer below `{from}`"
        ));
    }
    problems
}

fn src_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            out.push((path.strip_prefix(root).unwrap().to_owned(), text));
        }
    }
}

#[test]
fn every_module_imports_only_layers_below_its_own() {
    let root = src_dir();
    let mut sources = Vec::new();
    rust_files(&root, &root, &mut sources);
    assert!(sources.len() > 20, "read {} files of src/", sources.len());
    let problems = violations(&sources);
    assert!(
        problems.is_empty(),
        "layer violations:\n{}",
        problems.join("\n")
    );
    // Every layer's modules exist.
    let modules: std::collections::BTreeSet<String> =
        sources.iter().filter_map(|(p, _)| module_of(p)).collect();
    for m in layer_of().keys() {
        assert!(
            modules.contains(*m),
            "LAYERS names `{m}`, which is not a module of src/"
        );
    }
}

#[test]
fn the_picture_in_lib_rs_is_the_layers() {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    let shown: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! "))
        .filter(|l| l.starts_with(|c: char| c == ' ' || c.is_ascii_digit()))
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<usize>().is_ok())
        })
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    let expected: String = picture()
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    assert_eq!(
        shown,
        expected,
        "src/lib.rs must show the layers of tests/it/architecture.rs; paste this between its ```text fences:\n{}",
        picture()
    );
}

#[test]
fn an_upward_import_or_a_cycle_is_named() {
    let source = |path: &str, text: &str| (PathBuf::from(path), text.to_owned());
    let sources = [
        source(
            "scenario/check.rs",
            "use crate::rng::Rng;\nuse crate::gate::GateVerdict;\n",
        ),
        source("gate/mod.rs", "use crate::scenario::Gate;\n"),
        source("backend/mod.rs", "fn f() { crate::sim::start(); }\n"),
        source(
            "metrics.rs",
            "use crate::{\n    plan::Phase,\n    run::{RunConfig, run},\n};\n",
        ),
        source("fresh.rs", "use crate::rng::Rng;\n"),
        source("stats/mod.rs", "use crate::nowhere::X;\n"),
    ];
    let problems = violations(&sources);
    let expected = [
        ("src/fresh.rs", "module `fresh` is in no layer"),
        (
            "src/stats/mod.rs:1",
            "`crate::nowhere`, which is in no layer",
        ),
        (
            "src/scenario/check.rs:2",
            "`scenario` (layer 1) imports `gate` (layer 7), a module above it, and `gate` imports `scenario`: an import cycle",
        ),
        (
            "src/backend/mod.rs:1",
            "`backend` (layer 4) imports `sim` (layer 4), its peer",
        ),
        (
            "src/metrics.rs:1",
            "`metrics` (layer 3) imports `run` (layer 9), a module above it",
        ),
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (at, what) in expected {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(at) && p.contains(what)),
            "no problem `{at}: …{what}…` in {problems:#?}"
        );
    }
}

#[test]
fn comments_strings_and_test_code_are_not_imports() {
    let text = r##"
//! See [`crate::run`] for the whole run.
/* a block comment naming crate::report /* nested crate::gate */ */
use crate::rng::Rng;
const URL: &str = "http://x/crate::report";
const RAW: &str = r#"crate::gate "quoted" crate::run"#;
fn f<'a>(x: &'a str) -> char { let _ = x; '"' }
pub(crate) fn g() {}
#[cfg(test)]
mod tests {
    use crate::run::RunConfig;
    fn nested() { if true { crate::report::write(); } }
}
#[cfg(test)]
use crate::cli::Cli;
fn after() { crate::stats::holm(&[]); }
"##;
    let found: Vec<(String, usize)> = imports(&without_tests(&code_only(text)));
    assert_eq!(
        found,
        [("rng".to_owned(), 4), ("stats".to_owned(), 16)],
        "{}",
        without_tests(&code_only(text))
    );
}
