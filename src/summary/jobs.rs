//! Where each arm's and variant's jobs spent their time: completion, the critical path's
//! LLM calls and tool waits, waiting for siblings, and which agents the critical path ran
//! through, with each one's share of the job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// The job summaries of every arm and variant that has timed jobs.
pub fn jobs(arms: &[Arm], trials: &[TrialRecord]) -> Vec<JobSummary> {
    let mut out = Vec::new();
    for arm in arms {
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
            });
        }
    }
    out
}
