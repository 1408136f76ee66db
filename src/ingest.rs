//! The ingest step of the agent workflow: scan a data directory of benchmark artifacts
//! into the text summary the first agent reads (the seed's "Data summary").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many paths per type the summary lists.
const PATHS_SHOWN: usize = 5;
/// Directory depth the scan descends at most (guards against link loops).
const MAX_DEPTH: usize = 16;

/// Files of one type.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TypeSummary {
    /// Number of files.
    pub count: usize,
    /// Their total size.
    pub bytes: u64,
    /// The first paths in sorted order, relative to the data directory.
    pub first_paths: Vec<String>,
    /// Newest modification time.
    pub latest_modified: Option<DateTime<Utc>>,
}

/// The inventory of a data directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DataSummary {
    /// Files of the counted types.
    pub total_files: usize,
    /// Their total size.
    pub total_bytes: u64,
    /// Per type: `CSV`, `JSON`, `MARKDOWN`.
    pub by_type: BTreeMap<String, TypeSummary>,
}

fn file_type(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "csv" => Some("CSV"),
        "json" => Some("JSON"),
        "md" | "markdown" => Some("MARKDOWN"),
        _ => None,
    }
}

/// Scans `dir` recursively (blocking I/O; run it off the async runtime).
pub fn scan(dir: &Path) -> anyhow::Result<DataSummary> {
    let mut files: Vec<(PathBuf, u64, Option<SystemTime>)> = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((current, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("cannot read data directory {}", current.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", current.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?;
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((entry.path(), depth + 1));
                }
            } else if meta.is_file() {
                files.push((entry.path(), meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    let mut summary = DataSummary::default();
    for (path, bytes, modified) in files {
        let Some(kind) = file_type(&path) else {
            continue;
        };
        let entry = summary.by_type.entry(kind.to_owned()).or_default();
        entry.count += 1;
        entry.bytes += bytes;
        if entry.first_paths.len() < PATHS_SHOWN {
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            entry
                .first_paths
                .push(rel.to_string_lossy().replace('\\', "/"));
        }
        let modified = modified.map(DateTime::<Utc>::from);
        if modified > entry.latest_modified {
            entry.latest_modified = modified;
        }
        summary.total_files += 1;
        summary.total_bytes += bytes;
    }
    Ok(summary)
}

impl DataSummary {
    /// The text block the first agent reads, in the seed's layout.
    pub fn render(&self) -> String {
        let mut out = format!("Total files analyzed: {}\n", self.total_files);
        out.push_str(&format!("Total size: {} bytes\n", self.total_bytes));
        for (kind, t) in &self.by_type {
            out.push_str(&format!("\n{kind} Files ({})\n", t.count));
            for p in &t.first_paths {
                out.push_str(&format!("  - {p}\n"));
            }
            if t.count > t.first_paths.len() {
                out.push_str(&format!(
                    "  ... and {} more\n",
                    t.count - t.first_paths.len()
                ));
            }
            if let Some(m) = t.latest_modified {
                out.push_str(&format!(
                    "  Latest modified: {}\n",
                    m.format("%Y-%m-%d %H:%M:%S UTC")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_types_sizes_and_lists_sorted_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("reports/sub")).unwrap();
        for i in 0..7 {
            std::fs::write(d.join(format!("reports/r{i}.json")), "{}").unwrap();
        }
        std::fs::write(d.join("reports/sub/a.csv"), "a,b\n1,2\n").unwrap();
        std::fs::write(d.join("notes.md"), "# n").unwrap();
        std::fs::write(d.join("image.png"), "x").unwrap();
        let s = scan(d).unwrap();
        assert_eq!(s.total_files, 9);
        assert_eq!(s.total_bytes, 7 * 2 + 8 + 3);
        assert_eq!(s.by_type["JSON"].count, 7);
        assert_eq!(s.by_type["JSON"].first_paths[0], "reports/r0.json");
        assert_eq!(s.by_type["JSON"].first_paths.len(), 5);
        assert_eq!(s.by_type["CSV"].first_paths, ["reports/sub/a.csv"]);
        let text = s.render();
        assert!(text.starts_with("Total files analyzed: 9\n"));
        assert!(text.contains("JSON Files (7)"));
        assert!(text.contains("... and 2 more"));
        assert!(text.contains("Latest modified: "));
    }

    #[test]
    fn missing_directory_is_an_error_naming_it() {
        let err = scan(Path::new("/definitely/not/here")).unwrap_err();
        assert!(format!("{err:#}").contains("/definitely/not/here"));
    }
}
