//! Where each arm's and variant's jobs spent their time: completion, the critical path's
//! LLM calls and tool waits, waiting for siblings, and which agents the critical path ran
//! through, with each one's share of the job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::CallRecord;
use crate::plan::Phase;
use crate::results::TrialRecord;
use crate::scenario::Arm;

/// The jobs of one variant in one arm (measured trials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Arm.
    pub arm: String,
    /// Variant.
    pub variant: String,
    /// Jobs run.
    pub jobs: usize,
    /// Of which some call failed or some agent could not run.
    pub failed_jobs: usize,
    /// Mean completion time of the jobs that succeeded, ms.
    pub completion_ms: Option<f64>,
    /// Means over the jobs that succeeded: time in LLM calls on the critical path, ms.
    pub llm_ms: Option<f64>,
    /// Time in tool waits on the critical path, ms.
    pub tool_ms: Option<f64>,
    /// Time outputs waited for slower siblings, ms (see `JobTiming`).
    pub sibling_wait_ms: Option<f64>,
    /// The agents on the critical path, in the order they first appear on it.
    pub critical_path: Vec<PathShare>,
    /// Per agent, its successful measured calls (all instances and turns); none for a
    /// trace, whose agents are its conversations.
    #[serde(default)]
    pub agents: Vec<AgentCalls>,
}

/// The calls of one agent of a variant's jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCalls {
    /// Agent.
    pub agent: String,
    /// Successful measured calls.
    pub calls: usize,
    /// Mean TTFT, ms.
    pub ttft_ms: Option<f64>,
    /// Mean end-to-end time, ms.
    pub e2e_ms: Option<f64>,
}

/// One agent's place on the critical paths of a variant's jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathShare {
    /// Agent (or conversation).
    pub node: String,
    /// Jobs whose critical path ran through it.
    pub on_path: usize,
    /// Mean over the jobs that succeeded of its time on the path / the job's completion
    /// time (0 for a job whose path missed it).
    pub share: f64,
}

/// Per agent of `calls` (successful, measured, one arm and variant), in order of first call.
fn agent_calls(calls: &[&CallRecord]) -> Vec<AgentCalls> {
    let mut order: Vec<&str> = Vec::new();
    for c in calls {
        if !order.contains(&&*c.agent) {
            order.push(&c.agent);
        }
    }
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    order
        .into_iter()
        .map(|agent| {
            let mine: Vec<&&CallRecord> = calls.iter().filter(|c| c.agent == agent).collect();
            AgentCalls {
                agent: agent.to_owned(),
                calls: mine.len(),
                ttft_ms: mean(mine.iter().filter_map(|c| c.ttft_ms).collect()),
                e2e_ms: mean(mine.iter().map(|c| c.e2e_ms).collect()),
            }
        })
        .collect()
}

/// The job summaries of every arm and variant that has timed jobs.
pub fn jobs(arms: &[Arm], calls: &[CallRecord], trials: &[TrialRecord]) -> Vec<JobSummary> {
    let mut out = Vec::new();
    // A load level's job is the level itself: its serving table says what it did.
    for arm in arms.iter().filter(|a| a.load.is_none()) {
        for variant in arm.distinct_variants() {
            let all: Vec<_> = trials
                .iter()
                .filter(|t| t.phase == Phase::Measured && t.arm == arm.name)
                .flat_map(|t| &t.pipelines)
                .filter(|p| p.variant == variant)
                .collect();
            let ok: Vec<_> = all.iter().filter(|p| p.ok).collect();
            let timed: Vec<_> = ok
                .iter()
                .filter_map(|p| p.job.as_ref().map(|j| (p.wall_ms, j)))
                .collect();
            if timed.is_empty() {
                continue;
            }
            let n = timed.len() as f64;
            let mean = |f: &dyn Fn(&crate::results::JobTiming) -> f64| {
                Some(timed.iter().map(|(_, j)| f(j)).sum::<f64>() / n)
            };
            let mut order: Vec<String> = Vec::new();
            let mut shares: BTreeMap<String, (usize, f64)> = BTreeMap::new();
            for (wall, job) in &timed {
                let mut here: BTreeMap<&str, f64> = BTreeMap::new();
                for step in &job.critical_path {
                    if !order.contains(&step.node) {
                        order.push(step.node.clone());
                    }
                    *here.entry(&step.node).or_default() += step.ms;
                }
                for (node, ms) in here {
                    let e = shares.entry(node.to_owned()).or_default();
                    e.0 += 1;
                    e.1 += if *wall > 0.0 { ms / wall } else { 0.0 };
                }
            }
            let mut ok_calls: Vec<&CallRecord> =
                super::samples::measured(calls, &arm.name, variant)
                    .into_iter()
                    .filter(|c| c.ok && c.step != "replay")
                    .collect();
            ok_calls.sort_by(|a, b| a.offset_ms.total_cmp(&b.offset_ms));
            out.push(JobSummary {
                arm: arm.name.clone(),
                variant: variant.to_owned(),
                jobs: all.len(),
                failed_jobs: all.len() - ok.len(),
                completion_ms: Some(ok.iter().map(|p| p.wall_ms).sum::<f64>() / ok.len() as f64),
                llm_ms: mean(&|j| j.llm_ms),
                tool_ms: mean(&|j| j.tool_ms),
                sibling_wait_ms: mean(&|j| j.sibling_wait_ms),
                critical_path: order
                    .into_iter()
                    .map(|node| {
                        let (on_path, sum) = shares[&node];
                        PathShare {
                            node,
                            on_path,
                            share: sum / n,
                        }
                    })
                    .collect(),
                agents: agent_calls(&ok_calls),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{JobTiming, PathStep, PipelineResult};

    fn step(node: &str, ms: f64) -> PathStep {
        PathStep {
            node: node.to_owned(),
            instance: 0,
            ms,
            llm_ms: ms,
            tool_ms: 0.0,
        }
    }

    fn trial(trial: u32, phase: Phase, wall_ms: f64, path: Vec<PathStep>, ok: bool) -> TrialRecord {
        TrialRecord {
            trial,
            round: trial,
            phase,
            arm: "v".into(),
            variants: vec!["v".into()],
            started_at: String::new(),
            wall_ms,
            pipelines: vec![PipelineResult {
                variant: "v".into(),
                slot: 0,
                run_number: trial + 1,
                wall_ms,
                calls: 3,
                failed_calls: u32::from(!ok),
                decode_tps_mean: None,
                ok,
                job: Some(JobTiming {
                    tool_ms: 10.0,
                    llm_ms: path.iter().map(|p| p.llm_ms).sum(),
                    sibling_wait_ms: 4.0,
                    critical_path: path,
                }),
            }],
            primed: false,
            ok,
            offset_ms: None,
            loaded_after_prime: None,
            loaded_after: None,
            gpu: None,
            server: None,
            node: None,
        }
    }

    #[test]
    fn shares_and_means_cover_the_measured_jobs_that_succeeded() {
        let trials = [
            // A warmup and a failed job are left out of the means.
            trial(0, Phase::Warmup, 999.0, vec![step("p", 999.0)], true),
            trial(
                1,
                Phase::Measured,
                100.0,
                vec![step("p", 20.0), step("r", 80.0)],
                true,
            ),
            trial(
                2,
                Phase::Measured,
                200.0,
                vec![step("p", 20.0), step("w", 100.0)],
                true,
            ),
            trial(3, Phase::Measured, 50.0, vec![step("p", 50.0)], false),
        ];
        let arms = [Arm::new(vec!["v".into()])];
        let j = &jobs(&arms, &[], &trials)[0];
        assert_eq!((j.jobs, j.failed_jobs), (3, 1));
        assert_eq!(j.completion_ms, Some(150.0));
        assert_eq!(j.llm_ms, Some((100.0 + 120.0) / 2.0));
        assert_eq!((j.tool_ms, j.sibling_wait_ms), (Some(10.0), Some(4.0)));
        let path: Vec<(&str, usize, f64)> = j
            .critical_path
            .iter()
            .map(|p| (p.node.as_str(), p.on_path, p.share))
            .collect();
        // p: (0.2 + 0.1) / 2; r: 0.8 / 2 (absent from the second job's path); w: 0.5 / 2.
        assert_eq!(
            path,
            [("p", 2, 0.15000000000000002), ("r", 1, 0.4), ("w", 1, 0.25)]
        );
        assert!(j.agents.is_empty(), "no calls given");
    }
}
