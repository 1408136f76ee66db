//! JSON: any document pretty-printed with a final newline: `summary.json` (the whole
//! [`Summary`](crate::summary::Summary)) and `gate.json`.

use serde::Serialize;

use super::Exporter;

/// Writes `summary.json` and `gate.json`.
pub struct Json;

impl<T: Serialize> Exporter<T> for Json {
    fn render(&self, doc: &T) -> anyhow::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(doc)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
