//! The server's own metrics: its Prometheus page (vLLM, SGLang, TGI, llama.cpp with
//! `--metrics`), scraped at each trial's start and end and at an interval between, each
//! scrape written to `server-metrics.jsonl` as it is taken; a trial gets its counters'
//! increases and its gauges' peaks over the scrapes from its start to its end.
//!
//! The scrapes run on the async runtime (a scrape is one HTTP request), and each page is
//! read on the blocking pool (`benches/scrape.rs` measures it), through a fetch function
//! the caller gives, so this module knows no server API. Each server names its series its own way;
//! [`Role`] says which series mean the same thing (requests running and waiting, KV-cache
//! usage, prefix-cache hits, preemptions, tokens).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::prometheus::{self, Page};

/// One scrape: a row of `server-metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerScrape {
    /// When the request was sent, ms since the run started (the records' clock).
    pub offset_ms: f64,
    /// The server scraped, in a run with several (`server.urls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Counters by series (`name{label="value",…}`).
    #[serde(default)]
    pub counters: BTreeMap<String, f64>,
    /// Gauges by series.
    #[serde(default)]
    pub gauges: BTreeMap<String, f64>,
}

/// A trial's server metrics: over the scrapes from just before its first call to just
/// after its last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialServer {
    /// Scrapes in the window, its two ends included.
    pub scrapes: usize,
    /// Each counter's increase (a reset, when the server restarted, counts from zero).
    #[serde(default)]
    pub counters: BTreeMap<String, f64>,
    /// Each gauge's highest value.
    #[serde(default)]
    pub peaks: BTreeMap<String, f64>,
}

/// What a series means, whichever server wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Requests being computed (a gauge).
    Running,
    /// Requests queued for a slot or batch (a gauge).
    Waiting,
    /// Share of the KV cache in use, 0–1 (a gauge).
    KvCache,
    /// Prompt tokens served from the prefix cache (a counter).
    PrefixHits,
    /// Prompt tokens looked up in the prefix cache (a counter).
    PrefixQueries,
    /// Requests preempted (evicted and recomputed) (a counter).
    Preemptions,
    /// Prompt tokens, cached ones included (a counter).
    PromptTokens,
    /// Generated tokens (a counter).
    GenerationTokens,
}

/// The series of each role, by server. A role's value is the sum of its series present
/// (each server writes one spelling; llama.cpp counts cached prompt tokens apart from the
/// rest, so both are listed where the role is the whole prompt), except KV-cache usage,
/// which is a share and so the highest.
const ROLES: &[(Role, &[&str])] = &[
    (
        Role::Running,
        &[
            "vllm:num_requests_running",
            "sglang:num_running_reqs",
            "llamacpp:requests_processing",
            "tgi_batch_current_size",
        ],
    ),
    (
        Role::Waiting,
        &[
            "vllm:num_requests_waiting",
            "sglang:num_queue_reqs",
            "llamacpp:requests_deferred",
            "tgi_queue_size",
        ],
    ),
    (
        Role::KvCache,
        &[
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "sglang:token_usage",
            "llamacpp:kv_cache_usage_ratio",
        ],
    ),
    (
        Role::PrefixHits,
        &[
            "vllm:prefix_cache_hits_total",
            "vllm:gpu_prefix_cache_hits_total",
            "llamacpp:prompt_tokens_cached_total",
        ],
    ),
    (
        Role::PrefixQueries,
        &[
            "vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_queries_total",
            "llamacpp:prompt_tokens_cached_total",
            "llamacpp:prompt_tokens_total",
        ],
    ),
    (Role::Preemptions, &["vllm:num_preemptions_total"]),
    (
        Role::PromptTokens,
        &[
            "vllm:prompt_tokens_total",
            "sglang:prompt_tokens_total",
            "llamacpp:prompt_tokens_total",
            "llamacpp:prompt_tokens_cached_total",
        ],
    ),
    (
        Role::GenerationTokens,
        &[
            "vllm:generation_tokens_total",
            "sglang:generation_tokens_total",
            "llamacpp:tokens_predicted_total",
        ],
    ),
];

/// A series' metric name, without its labels.
fn base(series: &str) -> &str {
    series.split_once('{').map_or(series, |(name, _)| name)
}

impl TrialServer {
    /// The role's value over the trial, when the server writes one of its series.
    pub fn role(&self, role: Role) -> Option<f64> {
        let names = ROLES.iter().find(|(r, _)| *r == role)?.1;
        let gauge = matches!(role, Role::Running | Role::Waiting | Role::KvCache);
        let values = if gauge { &self.peaks } else { &self.counters };
        let found: Vec<f64> = values
            .iter()
            .filter(|(series, v)| names.contains(&base(series)) && v.is_finite())
            .map(|(_, v)| *v)
            .collect();
        if found.is_empty() {
            None
        } else if role == Role::KvCache {
            found.into_iter().reduce(f64::max)
        } else {
            Some(found.iter().sum())
        }
    }
}

/// The gauge by which harness's simulator says its page is simulated.
pub const SIMULATED_SERIES: &str = "harness_simulated";

/// Which server wrote a page, from its series' names.
pub fn server_family<'a>(series: impl IntoIterator<Item = &'a String>) -> Option<&'static str> {
    let series: Vec<&String> = series.into_iter().collect();
    if series.iter().any(|s| base(s) == SIMULATED_SERIES) {
        return Some("the simulator (under vLLM's names)");
    }
    series.into_iter().find_map(|s| {
        let name = base(s);
        [
            ("vllm:", "vLLM"),
            ("sglang:", "SGLang"),
            ("llamacpp:", "llama.cpp"),
            ("tgi_", "TGI"),
        ]
        .into_iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, family)| family)
    })
}

/// The window over `scrapes` (in time order, its first taken before the trial's first
/// call and its last after its last): counters' increases and gauges' peaks. A counter
/// missing from the first scrape started at zero (servers create labelled series on
/// first use); a fall is a restart, after which the counter counts from zero.
pub fn window(scrapes: &[&ServerScrape]) -> Option<TrialServer> {
    let (first, rest) = scrapes.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let mut counters: BTreeMap<String, f64> = BTreeMap::new();
    let mut last: BTreeMap<&str, f64> = BTreeMap::new();
    for s in rest {
        for (series, &v) in &s.counters {
            if !v.is_finite() {
                continue;
            }
            let before = last
                .get(series.as_str())
                .or_else(|| first.counters.get(series))
                .copied()
                .filter(|b| b.is_finite())
                .unwrap_or(0.0);
            let rise = if v >= before { v - before } else { v };
            *counters.entry(series.clone()).or_default() += rise;
            last.insert(series, v);
        }
    }
    // Counters present at the start that no later scrape had did not move.
    for series in first.counters.keys() {
        counters.entry(series.clone()).or_default();
    }
    let mut peaks: BTreeMap<String, f64> = BTreeMap::new();
    for s in scrapes {
        for (series, &v) in &s.gauges {
            if v.is_finite() {
                let peak = peaks.entry(series.clone()).or_insert(v);
                *peak = peak.max(v);
            }
        }
    }
    Some(TrialServer {
        scrapes: scrapes.len(),
        counters,
        peaks,
    })
}

/// What the manifest says about the server's metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerMetricsInfo {
    /// `recorded`, `unavailable` or `off`.
    pub status: String,
    /// Why they are unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The server that wrote them, by its series' names (`vLLM`, `llama.cpp`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Time between scrapes, ms (each trial's start and end are scraped as well).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<f64>,
    /// Scrapes taken.
    #[serde(default)]
    pub scrapes: usize,
    /// Scrapes that failed (refused, an HTTP error, a page that cannot be read).
    #[serde(default)]
    pub failed: usize,
    /// The first failure, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    /// Series kept from the last page.
    #[serde(default)]
    pub series: usize,
    /// Mean time a scrape took, fetching and reading, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_scrape_ms: Option<f64>,
}

impl ServerMetricsInfo {
    /// Switched off.
    pub fn off() -> ServerMetricsInfo {
        ServerMetricsInfo {
            status: "off".to_owned(),
            ..ServerMetricsInfo::default()
        }
    }

    /// Not offered, or not readable, for `reason`.
    pub fn unavailable(reason: String) -> ServerMetricsInfo {
        ServerMetricsInfo {
            status: "unavailable".to_owned(),
            reason: Some(reason),
            ..ServerMetricsInfo::default()
        }
    }

    /// One line for people: `Server metrics: /metrics of llama.cpp every 500 ms (84
    /// scrapes, 16 series)`.
    pub fn words(&self) -> String {
        match (self.status.as_str(), &self.reason) {
            ("unavailable", Some(r)) => format!("Server metrics: unavailable ({r})"),
            ("recorded", _) => {
                let failed = if self.failed > 0 {
                    format!(", {} failed", self.failed)
                } else {
                    String::new()
                };
                format!(
                    "Server metrics: /metrics{} every {} ms ({} scrapes{failed}, {} series)",
                    self.server
                        .as_deref()
                        .map_or(String::new(), |s| format!(" of {s}")),
                    self.interval_ms.unwrap_or(0.0),
                    self.scrapes,
                    self.series
                )
            }
            (status, _) => format!("Server metrics: {status}"),
        }
    }
}

/// Fetches the metrics page: its text, or why not.
pub type Fetch = Box<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// Where each scrape goes as it is taken (a line of `server-metrics.jsonl`).
pub type ScrapeSink = Box<dyn FnMut(&ServerScrape) + Send>;

/// Scrapes a server's metrics page when asked, keeps the scrapes until the trial they
/// belong to is windowed, and hands each to a sink (`server-metrics.jsonl`).
pub struct Scraper {
    fetch: Fetch,
    server: Option<String>,
    run_start: Instant,
    interval_ms: f64,
    state: Mutex<State>,
    sink: Mutex<ScrapeSink>,
}

#[derive(Default)]
struct State {
    kept: Vec<ServerScrape>,
    scrapes: usize,
    failed: usize,
    first_failure: Option<String>,
    series: usize,
    family: Option<&'static str>,
    busy_ms: f64,
}

impl ServerMetricsInfo {
    /// What the scrapers of a run's several servers recorded, together: their scrapes and
    /// failures summed, the first failure, the most series a page had, the mean scrape
    /// time over every attempt.
    pub fn combine(infos: Vec<ServerMetricsInfo>) -> Option<ServerMetricsInfo> {
        let mut infos = infos.into_iter();
        let mut all = infos.next()?;
        let attempts = |i: &ServerMetricsInfo| (i.scrapes + i.failed) as f64;
        let mut busy = all.mean_scrape_ms.unwrap_or(0.0) * attempts(&all);
        for i in infos {
            busy += i.mean_scrape_ms.unwrap_or(0.0) * attempts(&i);
            all.scrapes += i.scrapes;
            all.failed += i.failed;
            all.first_failure = all.first_failure.or(i.first_failure);
            all.series = all.series.max(i.series);
            all.server = all.server.or(i.server);
        }
        let n = attempts(&all);
        all.mean_scrape_ms = (n > 0.0).then(|| busy / n);
        Some(all)
    }
}

impl Scraper {
    /// A scraper on the records' clock (`run_start`); `interval_ms` is what the caller
    /// scrapes at between trials' ends, for the manifest.
    pub fn new(fetch: Fetch, run_start: Instant, interval_ms: f64, sink: ScrapeSink) -> Scraper {
        Scraper {
            fetch,
            server: None,
            run_start,
            interval_ms,
            state: Mutex::default(),
            sink: Mutex::new(sink),
        }
    }

    /// The scraper of `server`, one of a run's several: its scrapes name it.
    pub fn of_server(mut self, server: String) -> Scraper {
        self.server = Some(server);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Scrapes now; returns the scrape's time (ms since the run started), or `None` when
    /// it failed (counted, and the first failure kept for the manifest).
    pub async fn scrape(&self) -> Option<f64> {
        let sent = Instant::now();
        let offset_ms = sent.saturating_duration_since(self.run_start).as_secs_f64() * 1e3;
        // Reading a large page takes a millisecond or two: off the runtime's workers, which
        // stamp the calls' chunks.
        let page = match (self.fetch)().await {
            Ok(text) => tokio::task::spawn_blocking(move || prometheus::parse(&text))
                .await
                .map_err(|e| format!("/metrics: {e}"))
                .and_then(|parsed| parsed.map_err(|e| format!("/metrics {e}"))),
            Err(e) => Err(e),
        };
        let mut state = self.lock();
        state.busy_ms += sent.elapsed().as_secs_f64() * 1e3;
        match page {
            Ok(Page { counters, gauges }) => {
                let row = ServerScrape {
                    offset_ms,
                    server: self.server.clone(),
                    counters,
                    gauges,
                };
                state.scrapes += 1;
                state.series = row.counters.len() + row.gauges.len();
                if state.family.is_none() {
                    state.family = server_family(row.counters.keys().chain(row.gauges.keys()));
                }
                (self.sink.lock().unwrap_or_else(|e| e.into_inner()))(&row);
                // Kept in time order, whatever order concurrent scrapes finished in.
                let at = state.kept.partition_point(|s| s.offset_ms <= offset_ms);
                state.kept.insert(at, row);
                Some(offset_ms)
            }
            Err(e) => {
                state.failed += 1;
                if state.first_failure.is_none() {
                    state.first_failure = Some(e);
                }
                None
            }
        }
    }

    /// The window from the scrape at `from` to the one at `to` (both as [`Scraper::scrape`]
    /// returned them); forgets every scrape before `to`.
    pub fn trial(&self, from: f64, to: f64) -> Option<TrialServer> {
        let mut state = self.lock();
        let inside: Vec<&ServerScrape> = state
            .kept
            .iter()
            .filter(|s| s.offset_ms >= from && s.offset_ms <= to)
            .collect();
        let out = window(&inside);
        state.kept.retain(|s| s.offset_ms >= to);
        out
    }

    /// What was scraped, for the manifest.
    pub fn info(&self) -> ServerMetricsInfo {
        let state = self.lock();
        let attempts = state.scrapes + state.failed;
        ServerMetricsInfo {
            status: "recorded".to_owned(),
            reason: None,
            server: state.family.map(str::to_owned),
            interval_ms: Some(self.interval_ms),
            scrapes: state.scrapes,
            failed: state.failed,
            first_failure: state.first_failure.clone(),
            series: state.series,
            mean_scrape_ms: (attempts > 0).then(|| state.busy_ms / attempts as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(t: f64, counters: &[(&str, f64)], gauges: &[(&str, f64)]) -> ServerScrape {
        let map = |kv: &[(&str, f64)]| kv.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        ServerScrape {
            offset_ms: t,
            server: None,
            counters: map(counters),
            gauges: map(gauges),
        }
    }

    #[test]
    fn a_window_reads_counters_as_increases_and_gauges_as_peaks() {
        let scrapes = [
            scrape(
                0.0,
                &[("vllm:num_preemptions_total", 4.0), ("other_total", 1.0)],
                &[("vllm:num_requests_running", 0.0)],
            ),
            scrape(
                500.0,
                &[
                    ("vllm:num_preemptions_total", 6.0),
                    // Created on first use, during the trial.
                    ("vllm:request_success_total{finished_reason=\"stop\"}", 3.0),
                ],
                &[("vllm:num_requests_running", 8.0)],
            ),
            // The server restarted: counters start again from zero.
            scrape(
                900.0,
                &[
                    ("vllm:num_preemptions_total", 1.0),
                    ("vllm:request_success_total{finished_reason=\"stop\"}", 5.0),
                ],
                &[("vllm:num_requests_running", 2.0)],
            ),
        ];
        let refs: Vec<&ServerScrape> = scrapes.iter().collect();
        let w = window(&refs).unwrap();
        assert_eq!(w.scrapes, 3);
        assert_eq!(w.counters["vllm:num_preemptions_total"], 2.0 + 1.0);
        assert_eq!(
            w.counters["vllm:request_success_total{finished_reason=\"stop\"}"],
            5.0
        );
        assert_eq!(w.counters["other_total"], 0.0);
        assert_eq!(w.peaks["vllm:num_requests_running"], 8.0);
        assert_eq!(w.role(Role::Preemptions), Some(3.0));
        assert_eq!(w.role(Role::Running), Some(8.0));
        assert_eq!(w.role(Role::KvCache), None);
        // One scrape is not a window.
        assert!(window(&refs[..1]).is_none());
    }

    #[test]
    fn roles_sum_a_servers_spellings_and_labels() {
        let w = TrialServer {
            scrapes: 2,
            counters: [
                ("llamacpp:prompt_tokens_total".to_owned(), 30.0),
                ("llamacpp:prompt_tokens_cached_total".to_owned(), 10.0),
                ("llamacpp:tokens_predicted_total".to_owned(), 8.0),
            ]
            .into(),
            peaks: [
                ("vllm:kv_cache_usage_perc{engine=\"0\"}".to_owned(), 0.25),
                ("vllm:kv_cache_usage_perc{engine=\"1\"}".to_owned(), 0.5),
                ("vllm:num_requests_running{engine=\"0\"}".to_owned(), 3.0),
                ("vllm:num_requests_running{engine=\"1\"}".to_owned(), 4.0),
            ]
            .into(),
        };
        assert_eq!(w.role(Role::PromptTokens), Some(40.0));
        assert_eq!(w.role(Role::PrefixHits), Some(10.0));
        assert_eq!(w.role(Role::PrefixQueries), Some(40.0));
        assert_eq!(w.role(Role::GenerationTokens), Some(8.0));
        assert_eq!(w.role(Role::KvCache), Some(0.5));
        assert_eq!(w.role(Role::Running), Some(7.0));
        let names = ["llamacpp:requests_processing".to_owned()];
        assert_eq!(server_family(&names), Some("llama.cpp"));
    }

    #[tokio::test]
    async fn the_scraper_keeps_what_a_trial_needs_and_counts_failures() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let fetch: Fetch = {
            let calls = calls.clone();
            Box::new(move || {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Box::pin(async move {
                    if n == 2 {
                        return Err("GET /metrics: HTTP 503".to_owned());
                    }
                    Ok(format!(
                        "# TYPE llamacpp:tokens_predicted_total counter\nllamacpp:tokens_predicted_total {}\n# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing {}\n",
                        n * 10,
                        n % 2
                    ))
                })
            })
        };
        let rows = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let rows = rows.clone();
            Box::new(move |r: &ServerScrape| rows.lock().unwrap().push(r.clone()))
        };
        let scraper = Scraper::new(fetch, Instant::now(), 250.0, sink);
        let from = scraper.scrape().await.unwrap();
        scraper.scrape().await.unwrap();
        assert!(scraper.scrape().await.is_none());
        let to = scraper.scrape().await.unwrap();
        let w = scraper.trial(from, to).unwrap();
        assert_eq!(w.scrapes, 3);
        assert_eq!(w.counters["llamacpp:tokens_predicted_total"], 30.0);
        assert_eq!(w.peaks["llamacpp:requests_processing"], 1.0);
        // The end of one trial is the start of the next; nothing older is kept.
        assert_eq!(scraper.lock().kept.len(), 1);
        let info = scraper.info();
        assert_eq!((info.scrapes, info.failed), (3, 1));
        assert_eq!(info.server.as_deref(), Some("llama.cpp"));
        assert_eq!(info.series, 2);
        assert_eq!(rows.lock().unwrap().len(), 3);
        assert!(
            info.words().starts_with(
                "Server metrics: /metrics of llama.cpp every 250 ms (3 scrapes, 1 failed, 2 series)"
            ),
            "{}",
            info.words()
        );
    }
}
