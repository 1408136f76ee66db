//! Prometheus's text exposition format (version 0.0.4, and the OpenMetrics text that
//! Python's `prometheus_client` writes), read into the series harness keeps.
//!
//! Written here rather than taken from a crate: `prometheus-parse` reads metric names as
//! `\w+` and silently drops every series whose name has a colon, which is every series
//! vLLM (`vllm:…`), SGLang (`sglang:…`) and llama.cpp (`llamacpp:…`) export;
//! `prom_text_format_parser` rejects a counter family whose samples end in `_total`, as
//! OpenMetrics writes them, and has not been released since 2023; `openmetrics-parser`
//! is LGPL. The format is a line format with a published grammar, tested here on the pages
//! those servers write.
//!
//! What is kept: counters (and a histogram's or summary's `_sum` and `_count`, which are
//! counters too) and gauges (untyped series count as gauges). Buckets, quantiles and
//! OpenMetrics' `_created` timestamps are left out: a trial's window needs deltas and
//! peaks, not distributions the server bucketed its own way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a kept series is read over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Only rises (until the server restarts): read as its increase.
    Counter,
    /// Goes up and down: read as its peak.
    Gauge,
}

/// One page, as kept: each series (`name{label="value",…}`, labels sorted) and its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Counters by series.
    pub counters: BTreeMap<String, f64>,
    /// Gauges by series.
    pub gauges: BTreeMap<String, f64>,
}

/// A line the format does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A family's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// Reads a page. A line that is not a comment, blank, or a well-formed sample is an
/// error naming its line: a page that cannot be read whole is not read at all.
pub fn parse(text: &str) -> Result<Page, ParseError> {
    let mut types: BTreeMap<&str, Family> = BTreeMap::new();
    let mut page = Page::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let fail = |message: String| ParseError {
            line: i + 1,
            message,
        };
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                    return Err(fail("a TYPE line needs a name and a type".into()));
                };
                let family = match kind {
                    "counter" => Family::Counter,
                    "gauge" => Family::Gauge,
                    "histogram" | "gaugehistogram" => Family::Histogram,
                    "summary" => Family::Summary,
                    _ => Family::Untyped,
                };
                types.insert(name, family);
            }
            continue;
        }
        let (name, after_name) = metric_name(line).map_err(fail)?;
        // Series left out (buckets, most of a page) are not read further.
        let Some(kind) = kind_of(&types, name) else {
            continue;
        };
        let (labels, rest) = labels(name, after_name).map_err(fail)?;
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| fail(format!("{name} has no value")))?;
        let value = float(value_text)
            .ok_or_else(|| fail(format!("{name}: {value_text:?} is not a number")))?;
        let series = if labels.is_empty() {
            name.to_owned()
        } else {
            let joined: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            format!("{name}{{{}}}", joined.join(","))
        };
        match kind {
            Kind::Counter => page.counters.insert(series, value),
            Kind::Gauge => page.gauges.insert(series, value),
        };
    }
    Ok(page)
}

/// How a sample named `name` is kept, from its family's type; `None` leaves it out.
fn kind_of(types: &BTreeMap<&str, Family>, name: &str) -> Option<Kind> {
    // When a counter or histogram was created (a timestamp, whatever its TYPE line says).
    if name.ends_with("_created") {
        return None;
    }
    if let Some(family) = types.get(name) {
        return match family {
            Family::Counter => Some(Kind::Counter),
            Family::Gauge | Family::Untyped => Some(Kind::Gauge),
            // A summary's own name carries its quantiles.
            Family::Histogram | Family::Summary => None,
        };
    }
    for suffix in ["_total", "_sum", "_count", "_bucket"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(family) = types.get(base)
        {
            return match (family, suffix) {
                (_, "_bucket") => None,
                (Family::Counter, "_total") => Some(Kind::Counter),
                (Family::Histogram | Family::Summary, "_sum" | "_count") => Some(Kind::Counter),
                _ => Some(Kind::Gauge),
            };
        }
    }
    // No TYPE line: untyped, read as a gauge (Prometheus's own reading).
    Some(Kind::Gauge)
}

/// A sample line's metric name and what follows it.
fn metric_name(line: &str) -> Result<(&str, &str), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("{line:?} does not start with a metric name"));
    }
    Ok((name, &line[name_end..]))
}

/// A sample's labels: names and unescaped values.
type Labels<'a> = Vec<(&'a str, String)>;

/// The labels after a sample's name (sorted by name), and what follows them.
fn labels<'a>(name: &str, mut rest: &'a str) -> Result<(Labels<'a>, &'a str), String> {
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let key_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .ok_or_else(|| format!("{name}: unterminated labels"))?;
            let key = &rest[..key_end];
            let after_key = rest[key_end..].trim_start();
            let Some(quoted) = after_key
                .strip_prefix('=')
                .map(str::trim_start)
                .and_then(|s| s.strip_prefix('"'))
            else {
                return Err(format!("{name}: label {key:?} needs =\"value\""));
            };
            if key.is_empty() {
                return Err(format!("{name}: a label has no name"));
            }
            let (value, after_value) =
                unquote(quoted).ok_or_else(|| format!("{name}: label {key} is not closed"))?;
            labels.push((key, value));
            rest = after_value.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    if !rest.starts_with(char::is_whitespace) {
        return Err(format!("{name}: a space must separate the value"));
    }
    labels.sort();
    Ok((labels, rest))
}

/// A label value up to its closing quote (escapes `\\`, `\"`, `\n` undone) and what
/// follows the quote.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// A label value written back with its escapes.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A value as Go writes floats (`+Inf`, `-Inf`, `NaN`, exponents).
fn float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What llama.cpp's server (`--metrics`) wrote after one call, as recorded.
    const LLAMA_CPP: &str = "\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 31
# HELP llamacpp:prompt_tokens_cached_total Number of prompt tokens reused from the cache
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total 0
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 8
# HELP llamacpp:predicted_tokens_seconds Average generation throughput in tokens/s
# TYPE llamacpp:predicted_tokens_seconds gauge
llamacpp:predicted_tokens_seconds 40.7609
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 0
# HELP llamacpp:requests_deferred Number of requests deferred
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 0";

    /// vLLM's page, in the shape Python's prometheus_client writes it.
    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.4125
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
# HELP vllm:num_preemptions_created Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_created gauge
vllm:num_preemptions_created{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.7e+09
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 12.5
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="m"} 1.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 9.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 9.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 8.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 1.0
"#;

    #[test]
    fn reads_llama_cpp_and_vllm_pages_with_colons_in_their_names() {
        let page = parse(LLAMA_CPP).unwrap();
        assert_eq!(page.counters["llamacpp:prompt_tokens_total"], 31.0);
        assert_eq!(page.counters["llamacpp:tokens_predicted_total"], 8.0);
        assert_eq!(page.gauges["llamacpp:predicted_tokens_seconds"], 40.7609);
        assert_eq!(page.counters.len() + page.gauges.len(), 6);

        let page = parse(VLLM).unwrap();
        let running = r#"vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"}"#;
        assert_eq!(page.gauges[running], 3.0);
        assert_eq!(
            page.counters[r#"vllm:num_preemptions_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"}"#],
            7.0
        );
        // A histogram keeps its sum and count (counters); buckets and _created are left out.
        assert_eq!(
            page.counters[r#"vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"}"#],
            9.0
        );
        assert!(page.counters.keys().all(|k| !k.contains("_bucket")));
        assert!(page.gauges.keys().all(|k| !k.contains("_created")));
        // One series per label set.
        assert_eq!(
            page.counters
                .keys()
                .filter(|k| k.starts_with("vllm:request_success_total"))
                .count(),
            2
        );
    }

    #[test]
    fn labels_are_sorted_and_their_escapes_kept() {
        let page = parse(
            "# TYPE x gauge\nx{b=\"2\",a=\"say \\\"hi\\\", \\\\ok\"} 1\nx{ a = \"1\" , } 2 1700000000000\n",
        )
        .unwrap();
        assert_eq!(page.gauges[r#"x{a="say \"hi\", \\ok",b="2"}"#], 1.0);
        assert_eq!(page.gauges[r#"x{a="1"}"#], 2.0);
    }

    #[test]
    fn openmetrics_counters_special_values_and_untyped_series() {
        let page = parse(
            "# TYPE reqs counter\nreqs_total 5\nreqs_created 1.7e9\nup 1\nnan_gauge NaN\n# EOF\n",
        )
        .unwrap();
        assert_eq!(page.counters["reqs_total"], 5.0);
        assert_eq!(page.gauges["up"], 1.0);
        assert!(page.gauges["nan_gauge"].is_nan());
        assert!(!page.gauges.contains_key("reqs_created"));
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        let e = parse("# TYPE a gauge\na 1\na{x=\"1\" 2\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("a one\n").unwrap_err();
        assert!(e.message.contains("not a number"), "{e}");
        let e = parse("<html>\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1:"), "{e}");
    }
}
