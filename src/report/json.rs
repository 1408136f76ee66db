//! `summary.json`: the whole [`Summary`], pretty-printed; the machine-readable record
//! that `harness gate` and `harness compare` read.

use super::Exporter;
use crate::summary::Summary;

/// Writes `summary.json`.
pub struct Json;

impl Exporter for Json {
    fn render(&self, summary: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(summary)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
