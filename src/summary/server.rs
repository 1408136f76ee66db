//! What the server counted during the measured trials, from its own metrics page: per arm,
//! how many requests it ran and queued at the peak, how full its KV cache got, how much
//! of the prompts its prefix cache served, how often it preempted, and how many tokens it
//! processed, set beside the tokens the calls recorded. A server that counted more tokens
//! than harness's calls asked for served someone else too, and the run's latencies include
//! that load; this says so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::CallRecord;
use crate::plan::Phase;
use crate::results::TrialRecord;
use crate::stats::Sample;
use crate::telemetry::server::Role;

/// A gauge's per-trial peaks: their median and their highest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// Median over the trials of each trial's peak.
    pub median: f64,
    /// The highest peak of any trial.
    pub max: f64,
}

/// One arm's measured trials, as the server counted them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRow {
    /// Arm.
    pub arm: String,
    /// Measured trials of the arm.
    pub trials: usize,
    /// Of which the server's metrics cover (both ends scraped).
    pub covered: usize,
    /// Requests running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Peaks>,
    /// Requests waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Peaks>,
    /// KV-cache usage, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache: Option<Peaks>,
    /// Prompt tokens served from the prefix cache, as a share of those looked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_hit_share: Option<f64>,
    /// Requests preempted, summed over the trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<f64>,
    /// Prompt tokens the server processed (cached ones included), summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_prompt_tokens: Option<f64>,
    /// Prompt tokens the calls of those trials recorded.
    pub recorded_prompt_tokens: u64,
    /// Tokens the server generated, summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_generated_tokens: Option<f64>,
    /// Tokens the calls of those trials recorded.
    pub recorded_generated_tokens: u64,
}

/// Token counts may differ by this share (and two tokens) before the difference is said:
/// servers count a prompt's template tokens their own way.
const TOKEN_TOLERANCE: f64 = 0.02;

/// Every arm's row, in the order arms first ran, and warnings: trials the metrics do not
/// cover, and arms whose server counted other tokens than the calls did. Empty when the
/// server's metrics were not scraped.
pub fn server(trials: &[TrialRecord], calls: &[CallRecord]) -> (Vec<ServerRow>, Vec<String>) {
    let measured: Vec<&TrialRecord> = trials
        .iter()
        .filter(|t| t.phase == Phase::Measured)
        .collect();
    if measured.iter().all(|t| t.server.is_none()) {
        return (Vec::new(), Vec::new());
    }
    // The calls of each trial, the priming call (before the window opened) left out.
    let mut tokens: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.step != "prime") {
        let t = tokens.entry(c.trial).or_default();
        t.0 += c.prompt_tokens.unwrap_or(0);
        t.1 += c.output_tokens.unwrap_or(0);
    }
    let mut arms: Vec<&str> = Vec::new();
    for t in &measured {
        if !arms.contains(&t.arm.as_str()) {
            arms.push(&t.arm);
        }
    }
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for arm in arms {
        let of_arm: Vec<&TrialRecord> = measured.iter().copied().filter(|t| t.arm == arm).collect();
        let covered: Vec<(&TrialRecord, &crate::telemetry::server::TrialServer)> = of_arm
            .iter()
            .filter_map(|t| t.server.as_ref().map(|s| (*t, s)))
            .collect();
        let peaks = |role: Role| {
            let values: Vec<f64> = covered.iter().filter_map(|(_, s)| s.role(role)).collect();
            let max = values.iter().copied().reduce(f64::max)?;
            Some(Peaks {
                median: Sample::new(values)?.median(),
                max,
            })
        };
        let total = |role: Role| -> Option<f64> {
            let values: Vec<f64> = covered.iter().filter_map(|(_, s)| s.role(role)).collect();
            (!values.is_empty()).then(|| values.iter().sum())
        };
        let recorded = covered
            .iter()
            .map(|(t, _)| tokens.get(&t.trial).copied().unwrap_or_default())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let prefix_hit_share = match (total(Role::PrefixHits), total(Role::PrefixQueries)) {
            (Some(h), Some(q)) if q > 0.0 => Some(h / q),
            _ => None,
        };
        let row = ServerRow {
            arm: arm.to_owned(),
            trials: of_arm.len(),
            covered: covered.len(),
            running: peaks(Role::Running),
            waiting: peaks(Role::Waiting),
            kv_cache: peaks(Role::KvCache),
            prefix_hit_share,
            preemptions: total(Role::Preemptions),
            server_prompt_tokens: total(Role::PromptTokens),
            recorded_prompt_tokens: recorded.0,
            server_generated_tokens: total(Role::GenerationTokens),
            recorded_generated_tokens: recorded.1,
        };
        if row.covered < row.trials {
            warnings.push(format!(
                "{arm}: the server's metrics cover {} of {} measured trials (a scrape at a trial's start or end failed)",
                row.covered, row.trials
            ));
        }
        for (what, server, recorded) in [
            (
                "generated",
                row.server_generated_tokens,
                row.recorded_generated_tokens,
            ),
            (
                "prompt",
                row.server_prompt_tokens,
                row.recorded_prompt_tokens,
            ),
        ] {
            if let Some(server) = server {
                let recorded = recorded as f64;
                if (server - recorded).abs() > (TOKEN_TOLERANCE * recorded).max(2.0) {
                    warnings.push(format!(
                        "{arm}: the server counted {server:.0} {what} tokens during the measured trials, the calls recorded {recorded:.0}{}",
                        if server > recorded {
                            ": another client may have used the server meanwhile, and its load is in these latencies"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
        rows.push(row);
    }
    (rows, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::server::TrialServer;

    fn trial(n: u32, arm: &str, server: Option<TrialServer>) -> TrialRecord {
        TrialRecord {
            trial: n,
            round: n,
            phase: Phase::Measured,
            arm: arm.to_owned(),
            variants: vec![arm.to_owned()],
            started_at: String::new(),
            wall_ms: 1000.0,
            pipelines: Vec::new(),
            primed: false,
            ok: true,
            offset_ms: None,
            loaded_after_prime: None,
            loaded_after: None,
            gpu: None,
            server,
            node: None,
        }
    }

    fn window(running: f64, generated: f64) -> TrialServer {
        TrialServer {
            scrapes: 3,
            counters: [
                ("vllm:generation_tokens_total".to_owned(), generated),
                ("vllm:prefix_cache_hits_total".to_owned(), 30.0),
                ("vllm:prefix_cache_queries_total".to_owned(), 120.0),
            ]
            .into(),
            peaks: [("vllm:num_requests_running".to_owned(), running)].into(),
        }
    }

    #[test]
    fn rows_per_arm_and_a_warning_when_the_server_counted_more_than_the_calls() {
        let trials = [
            trial(0, "a", Some(window(2.0, 100.0))),
            trial(1, "a", Some(window(4.0, 100.0))),
            trial(2, "a", Some(window(3.0, 100.0))),
            trial(3, "b", Some(window(1.0, 500.0))),
            trial(4, "b", None),
        ];
        let call = |trial: u32, out: u64, step: &str| -> CallRecord {
            serde_json::from_value(serde_json::json!({
                "trial": trial, "round": trial, "phase": "measured", "arm": "a", "variant": "a",
                "slot": 0, "agent": "a", "step": step, "started_at": "t", "offset_ms": 0.0,
                "ok": true, "error_kind": null, "error": null, "ttft_ms": 1.0, "e2e_ms": 2.0,
                "itl_mean_ms": null, "itl_p50_ms": null, "itl_p95_ms": null, "itl_max_ms": null,
                "tpot_ms": null, "output_tokens": out, "tokens_counted": false,
                "prompt_tokens": null, "content_chunks": out, "load_ms": 0.0,
                "prompt_eval_ms": 1.0, "eval_ms": 1.0, "server_total_ms": 2.0,
                "decode_tps": 1.0, "e2e_tps": 1.0, "queue_ms": 0.0, "cold": false,
                "response_chars": 10
            }))
            .expect("a valid call record")
        };
        let calls = vec![
            call(0, 100, "report"),
            call(1, 100, "report"),
            call(2, 100, "report"),
            call(2, 1, "prime"),
            call(3, 100, "report"),
        ];
        let (rows, warnings) = server(&trials, &calls);
        assert_eq!(rows.len(), 2);
        let a = &rows[0];
        assert_eq!((a.trials, a.covered), (3, 3));
        assert_eq!(
            a.running,
            Some(Peaks {
                median: 3.0,
                max: 4.0
            })
        );
        assert_eq!(a.prefix_hit_share, Some(0.25));
        assert_eq!(a.server_generated_tokens, Some(300.0));
        assert_eq!(a.recorded_generated_tokens, 300);
        assert_eq!(a.preemptions, None);
        let b = &rows[1];
        assert_eq!((b.trials, b.covered), (2, 1));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("cover 1 of 2"), "{warnings:?}");
        assert!(
            warnings[1].contains("counted 500 generated tokens")
                && warnings[1].contains("recorded 100")
                && warnings[1].contains("another client"),
            "{warnings:?}"
        );
        // Without any scrape there is nothing to say.
        let bare = [trial(0, "a", None)];
        assert_eq!(server(&bare, &calls), (Vec::new(), Vec::new()));
    }
}
