//! Where a problem is: [`Problem`] and [`ScenarioError`], and the machinery that finds
//! positions for errors serde reports (the dotted path of a key from its indentation) and
//! blanks a bad key's lines so the text can be parsed again for the next problem.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One problem found in a scenario file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// Dotted path of the field, e.g. `variants.chimera.options.num_ctx`.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

/// Every problem found in one scenario file.
#[derive(Debug, thiserror::Error)]
pub struct ScenarioError {
    /// The file that was read.
    pub file: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}", self.file.display())?;
            if let (Some(line), Some(column)) = (p.line, p.column) {
                write!(f, ":{line}:{column}")?;
            }
            if p.field.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": field `{}`: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

/// Turns a YAML or serde error into a problem with a location and a field name.
pub(super) fn yaml_problem(e: &serde_saphyr::Error) -> Problem {
    let location = e.location();
    // The library's Display appends a source snippet; the first line carries the message,
    // followed by a location we report in our own format.
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML");
    let message = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let message = match message.strip_prefix("invalid ") {
        Some(ty @ ("u8" | "u16" | "u32" | "u64")) => {
            format!("wrong type: expected a whole number ≥ 0 ({ty})")
        }
        Some(ty @ ("i8" | "i16" | "i32" | "i64")) => {
            format!("wrong type: expected a whole number ({ty})")
        }
        Some(ty @ ("f32" | "f64")) => format!("wrong type: expected a number ({ty})"),
        Some("floating point") => "wrong type: expected a number".to_owned(),
        Some("bool" | "boolean") => "wrong type: expected true or false".to_owned(),
        _ => message.to_owned(),
    };
    let field = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"))
        .unwrap_or_default()
        .to_owned();
    Problem {
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        field,
        message,
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start().trim_start_matches("- ");
    let (key, _) = t.split_once(':')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty() && !key.starts_with('#') && !key.contains(['{', '[', ' '])).then_some(key)
}

/// The plain scalar that starts at 1-based `line` and `column` (up to a comment or the end
/// of a flow item), to show what was found where something else was expected.
pub(super) fn scalar_at(text: &str, line: u64, column: u64) -> Option<&str> {
    let line = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let start = line
        .char_indices()
        .nth(usize::try_from(column).ok()?.checked_sub(1)?)?
        .0;
    let rest = &line[start..];
    let end = rest.find([',', '}', ']', '#']).unwrap_or(rest.len());
    Some(rest[..end].trim()).filter(|s| !s.is_empty())
}

/// Dotted path of the block-style key on 1-based `line`, from its indentation.
pub(super) fn yaml_path_at(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.get(line.wrapping_sub(1)) else {
        return String::new();
    };
    let mut path: Vec<&str> = key_of(start).into_iter().collect();
    let mut indent = indent_of(start);
    for l in lines[..line - 1].iter().rev() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        if indent_of(l) < indent {
            indent = indent_of(l);
            if let Some(k) = key_of(l) {
                path.push(k);
            }
        }
        if indent == 0 {
            break;
        }
    }
    path.reverse();
    path.join(".")
}

/// Blanks 1-based `line` and the more-indented lines under it, keeping line numbers.
/// Refuses (None) for flow collections, whose line holds more than one key.
pub(super) fn blank_block(text: &mut String, line: usize) -> Option<()> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let target = lines.get(line.checked_sub(1)?)?;
    if target.contains(['{', '[']) || key_of(target).is_none() {
        return None;
    }
    let indent = indent_of(target);
    lines[line - 1].clear();
    for l in lines.iter_mut().skip(line) {
        if !l.trim().is_empty() && indent_of(l) <= indent {
            break;
        }
        l.clear();
    }
    *text = lines.join("\n");
    Some(())
}
