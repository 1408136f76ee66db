//! Deterministic response text for the simulator.
//!
//! Not a language model: a seeded composer of short Markdown with the sections the agent
//! workflow extracts (key findings, recommendations), mentioning numbers it finds in the
//! prompt so the reports read as if they were about the data. Same seed and prompt, same
//! text.

use crate::rng::Rng;

const FINDINGS: &[&str] = &[
    "JSON results dominate the inventory, so raw numbers are easy to aggregate.",
    "Markdown reports trail the JSON runs, which suggests summaries lag the data.",
    "CSV exports cover only part of the runs; some sweeps have no tabular form.",
    "Quantized and baseline runs sit side by side, enabling direct comparison.",
    "Parameter-tuning sweeps recur across dates, a sign of iterative search.",
    "Compilation benchmarks and model benchmarks share one folder layout.",
    "The newest files are reports, not raw data: analysis is still in progress.",
    "Several runs record throughput but not latency percentiles.",
    "No file records GPU temperature or clock speed, a telemetry gap.",
    "File names encode model size and quantization, which aids grouping.",
];

const RECOMMENDATIONS: &[&str] = &[
    "Record TTFT and decode rate in every run, with the server version.",
    "Keep one CSV per sweep so tables can be regenerated from data.",
    "Pin num_ctx and num_gpu in each run and store them with the results.",
    "Repeat each configuration at least five times and report intervals.",
    "Interleave baseline and tuned runs to cancel thermal drift.",
    "Log GPU clocks and temperature alongside every benchmark.",
    "Archive old sweeps so the active folder holds current work only.",
    "Adopt one naming scheme: model, quantization, options, date.",
];

/// Composes a response to `prompt` under the persona `system` from `seed`.
/// The sections come first, with no preamble, and recommendations lead when the persona
/// is about recommending, so that a response cut short still carries what it was for.
pub fn compose(seed: u64, system: &str, prompt: &str) -> String {
    let mut rng = Rng::new(seed);
    let mut findings = pick(&mut rng, FINDINGS, 4);
    let file_count = prompt.split_once("files analyzed: ").and_then(|(_, rest)| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty()).then_some(digits)
    });
    if let Some(n) = file_count {
        findings.insert(
            0,
            format!("The inventory lists {n} files across the scanned folders."),
        );
    }
    let recommendations = pick(&mut rng, RECOMMENDATIONS, 4);
    let findings_block: String = findings.iter().map(|f| format!("- {f}\n")).collect();
    let recs_block: String = recommendations
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}. {r}\n", i + 1))
        .collect();
    let asks_for_recommendations = system.to_ascii_lowercase().contains("recommend");
    if asks_for_recommendations {
        format!("**Recommendations**\n{recs_block}\n**Key Findings**\n{findings_block}")
    } else {
        format!("**Key Findings**\n{findings_block}\n**Recommendations**\n{recs_block}")
    }
}

fn pick(rng: &mut Rng, from: &[&str], n: usize) -> Vec<String> {
    let mut idx: Vec<usize> = (0..from.len()).collect();
    rng.shuffle(&mut idx);
    idx.into_iter()
        .take(n)
        .map(|i| from[i].to_owned())
        .collect()
}

/// Splits text into token-like pieces: each word with its leading whitespace, long words
/// in two. Concatenating the pieces gives the text back.
pub fn tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Skip leading whitespace into the token, then the word.
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let word_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i - word_start > 8 {
            let mut mid = word_start + (i - word_start) / 2;
            while !text.is_char_boundary(mid) {
                mid += 1;
            }
            out.push(&text[start..mid]);
            start = mid;
        }
        if i > start {
            out.push(&text[start..i]);
        }
        start = i;
    }
    out
}

/// Rough prompt token count: about four characters a token (none for no text).
pub fn approx_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_text_and_sections_present() {
        let a = compose(5, "You are X-9000.", "Total files analyzed: 42");
        assert_eq!(a, compose(5, "You are X-9000.", "Total files analyzed: 42"));
        assert_ne!(a, compose(6, "You are X-9000.", "Total files analyzed: 42"));
        assert!(a.contains("**Key Findings**") && a.contains("**Recommendations**"));
        assert!(a.contains("42 files") && !a.contains("9000"));
        let r = compose(5, "You recommend things.", "Inventory");
        assert!(r.find("**Recommendations**") < r.find("**Key Findings**"));
    }

    #[test]
    fn tokens_reassemble_the_text() {
        let text = "Hello  wonderful\nworld, extraordinarily  long-winded é";
        let tokens = tokenize(text);
        assert_eq!(tokens.concat(), text);
        assert!(tokens.len() >= 6);
    }
}
