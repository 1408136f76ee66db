//! The metrics harness compares, and which way is good for each: the vocabulary that
//! scenarios (gates), summaries, gates and reports share.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A per-call measurement harness summarizes and compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Server decode rate, `eval_count / eval_duration`.
    DecodeTps,
    /// Output tokens per client end-to-end second.
    E2eTps,
    /// Time to first token, client clock.
    TtftMs,
    /// End-to-end call time, client clock.
    E2eMs,
    /// Time per output token after the first.
    TpotMs,
    /// A job's completion time: one run of the workload by one variant instance.
    JobE2eMs,
    /// Jobs the arm completed per minute of its trials' wall time (all its variants' jobs
    /// together: the arm's throughput).
    JobsPerMin,
    /// At a load level: requests completed per second of the level's measured window.
    ReqPerS,
    /// At a load level: output tokens per second of the measured window, all streams.
    ThroughputTps,
    /// At a load level: requests per second that met every objective of `slo:`.
    GoodputRps,
    /// Open loop: time to first token from the request's scheduled send time.
    SchedTtftMs,
    /// Open loop: end-to-end time from the request's scheduled send time.
    SchedE2eMs,
    /// GPU energy of a trial per output token of the whole arm (GPU telemetry).
    JoulesPerToken,
    /// Output tokens of the whole arm per joule of GPU energy in a trial.
    TokensPerJoule,
}

/// Which way is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Rates: more is faster.
    HigherIsBetter,
    /// Times: less is faster.
    LowerIsBetter,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 14] = [
        Metric::DecodeTps,
        Metric::E2eTps,
        Metric::TtftMs,
        Metric::E2eMs,
        Metric::TpotMs,
        Metric::JobE2eMs,
        Metric::JobsPerMin,
        Metric::ReqPerS,
        Metric::ThroughputTps,
        Metric::GoodputRps,
        Metric::SchedTtftMs,
        Metric::SchedE2eMs,
        Metric::JoulesPerToken,
        Metric::TokensPerJoule,
    ];

    /// The name used in files and on the command line (`decode_tps`, …).
    pub fn name(self) -> &'static str {
        match self {
            Metric::DecodeTps => "decode_tps",
            Metric::E2eTps => "e2e_tps",
            Metric::TtftMs => "ttft_ms",
            Metric::E2eMs => "e2e_ms",
            Metric::TpotMs => "tpot_ms",
            Metric::JobE2eMs => "job_e2e_ms",
            Metric::JobsPerMin => "jobs_per_min",
            Metric::ReqPerS => "req_per_s",
            Metric::ThroughputTps => "throughput_tps",
            Metric::GoodputRps => "goodput_rps",
            Metric::SchedTtftMs => "sched_ttft_ms",
            Metric::SchedE2eMs => "sched_e2e_ms",
            Metric::JoulesPerToken => "joules_per_token",
            Metric::TokensPerJoule => "tokens_per_joule",
        }
    }

    /// Unit for table headers.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::DecodeTps | Metric::E2eTps | Metric::ThroughputTps => "tok/s",
            Metric::TtftMs
            | Metric::E2eMs
            | Metric::TpotMs
            | Metric::JobE2eMs
            | Metric::SchedTtftMs
            | Metric::SchedE2eMs => "ms",
            Metric::JobsPerMin => "jobs/min",
            Metric::ReqPerS | Metric::GoodputRps => "req/s",
            Metric::JoulesPerToken => "J/tok",
            Metric::TokensPerJoule => "tok/J",
        }
    }

    /// Which way is faster.
    pub fn direction(self) -> Direction {
        match self {
            Metric::DecodeTps
            | Metric::E2eTps
            | Metric::JobsPerMin
            | Metric::ReqPerS
            | Metric::ThroughputTps
            | Metric::GoodputRps
            | Metric::TokensPerJoule => Direction::HigherIsBetter,
            Metric::TtftMs
            | Metric::E2eMs
            | Metric::TpotMs
            | Metric::JobE2eMs
            | Metric::SchedTtftMs
            | Metric::SchedE2eMs
            | Metric::JoulesPerToken => Direction::LowerIsBetter,
        }
    }

    /// True for metrics that grow or shrink with the number of tokens a call generates,
    /// so two sides that generate different lengths are not compared like for like.
    pub fn depends_on_length(self) -> bool {
        matches!(
            self,
            Metric::E2eMs
                | Metric::E2eTps
                | Metric::JobE2eMs
                | Metric::JobsPerMin
                | Metric::ReqPerS
                | Metric::ThroughputTps
                | Metric::GoodputRps
                | Metric::SchedE2eMs
        )
    }

    /// One value per trial for the whole arm, whichever variant it is read for: the arm's
    /// throughput.
    pub fn is_per_arm(self) -> bool {
        matches!(
            self,
            Metric::JobsPerMin | Metric::JoulesPerToken | Metric::TokensPerJoule
        )
    }

    /// From the GPU's energy over a trial (GPU telemetry), for the whole arm.
    pub fn is_energy(self) -> bool {
        matches!(self, Metric::JoulesPerToken | Metric::TokensPerJoule)
    }

    /// Measured per job (from the trial records) rather than per call.
    pub fn is_job(self) -> bool {
        matches!(self, Metric::JobE2eMs | Metric::JobsPerMin)
    }

    /// Measured per trial of a load level from all its calls (a rate over the level's
    /// measured window), not per call.
    pub fn is_serving(self) -> bool {
        matches!(
            self,
            Metric::ReqPerS | Metric::ThroughputTps | Metric::GoodputRps
        )
    }

    /// Only measured at a load level (`load:`): the serving rates, and the open loop's
    /// times from the schedule.
    pub fn needs_load(self) -> bool {
        self.is_serving() || matches!(self, Metric::SchedTtftMs | Metric::SchedE2eMs)
    }

    /// Times of calls get pooled percentiles over calls as well as per-trial statistics
    /// (a job's time is not a call's).
    pub fn is_time(self) -> bool {
        self.direction() == Direction::LowerIsBetter && !self.is_job() && !self.is_energy()
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Metric, String> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                format!("unknown metric `{s}` (metrics: {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_round_trip_and_directions() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>(), Ok(m));
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert!(
            "decode"
                .parse::<Metric>()
                .unwrap_err()
                .contains("decode_tps")
        );
        assert_eq!(Metric::DecodeTps.direction(), Direction::HigherIsBetter);
        assert!(Metric::TtftMs.is_time() && !Metric::E2eTps.is_time());
        assert!(!Metric::JobE2eMs.is_time() && Metric::JobE2eMs.is_job());
    }
}
