//! `harness merge`: the shards of one run (`harness run --shard I/N` on several nodes) into
//! one results folder, analysed as a single run would be. The shards must come from the
//! same scenario and the same whole plan and be disjoint; missing shards are named and the
//! merged run is marked incomplete. The merged folder holds every shard's measured trials
//! and calls (in shard order; each trial's calls stay in the order they were written), the
//! warm-ups of the lowest shard present, and the whole plan; the summary, tables, figures
//! and gates are then computed from it by the same code as `harness report`, so pooled
//! percentiles come from the calls themselves, never from averaging the shards'.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::gate::GateReport;
use crate::gate::files::{GateOptions, gate_records};
use crate::metrics::CallRecord;
use crate::plan::{Phase, Plan, Shard};
use crate::report;
use crate::results::{ResultsDir, TrialRecord, jsonl, load, read_jsonl};
use crate::summary::Summary;

/// What a merge produced.
#[derive(Debug)]
pub struct Merged {
    /// The merged folder.
    pub dir: PathBuf,
    /// Its summary.
    pub summary: Summary,
    /// The shards of the plan no folder held.
    pub missing: Vec<u32>,
    /// The gates' verdicts, when the scenario has gates.
    pub gate: Option<GateReport>,
}

/// One shard folder, as the merge reads it.
struct Part {
    dir: PathBuf,
    manifest: serde_json::Value,
    shard: Shard,
    trials: Vec<TrialRecord>,
}

/// Merges the shard folders `dirs` into `out` (which must not exist or be empty).
pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<Merged> {
    anyhow::ensure!(!dirs.is_empty(), "name the shard folders to merge");
    if out.exists() {
        anyhow::ensure!(
            std::fs::read_dir(out)?.next().is_none(),
            "{} exists and is not empty: merge into a new folder",
            out.display()
        );
    }
    let mut parts = Vec::new();
    for dir in dirs {
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("manifest.json"))
                .with_context(|| format!("cannot read {}/manifest.json", dir.display()))?,
        )
        .with_context(|| format!("{}/manifest.json", dir.display()))?;
        let shard: Shard = serde_json::from_value(manifest["shard"].clone()).map_err(|_| {
            anyhow::anyhow!(
                "{} is not a shard (its manifest names none): run shards with --shard I/N",
                dir.display()
            )
        })?;
        parts.push(Part {
            trials: read_jsonl(&dir.join("trials.jsonl"))?,
            dir: dir.clone(),
            manifest,
            shard,
        });
    }
    parts.sort_by_key(|p| p.shard.index);
    let first = &parts[0];
    let same = |key: &str, what: &str| -> anyhow::Result<()> {
        for p in &parts[1..] {
            anyhow::ensure!(
                p.manifest[key] == first.manifest[key],
                "{} and {} ran {what}: they are not shards of one run",
                first.dir.display(),
                p.dir.display()
            );
        }
        Ok(())
    };
    same("scenario_sha256", "different scenarios")?;
    same("plan_sha256", "different plans")?;
    let count = first.shard.count;
    let mut indexes = BTreeSet::new();
    for p in &parts {
        anyhow::ensure!(
            p.shard.count == count,
            "{} is shard {} but {} is shard {}: the counts differ",
            first.dir.display(),
            first.shard,
            p.dir.display(),
            p.shard
        );
        anyhow::ensure!(
            indexes.insert(p.shard.index),
            "shard {} is given twice ({} and another folder)",
            p.shard,
            p.dir.display()
        );
    }
    let missing: Vec<u32> = (0..count).filter(|i| !indexes.contains(i)).collect();

    // The plan of the merged run: the shards' plans together (every shard's plan holds the
    // warm-ups and its own rounds), in the whole plan's order.
    let mut plan: Plan = read_plan(&first.dir)?;
    let mut planned: BTreeSet<u32> = plan.trials.iter().map(|t| t.trial).collect();
    for p in &parts[1..] {
        for t in read_plan(&p.dir)?.trials {
            if planned.insert(t.trial) {
                plan.trials.push(t);
            }
        }
    }
    plan.trials.sort_by_key(|t| t.trial);
    let whole_measured = measured_of_whole(first);
    let mut manifest = first.manifest.clone();
    let scenario_yaml = std::fs::read(first.dir.join("scenario.yaml"))
        .with_context(|| format!("cannot read {}/scenario.yaml", first.dir.display()))?;
    let mut trials = Vec::new();
    let mut seen = BTreeSet::new();
    for (k, p) in parts.iter().enumerate() {
        // Warm-ups ran on every shard under the same trial numbers: the lowest shard's stand.
        let keep = |phase: Phase| phase == Phase::Measured || k == 0;
        // The server a shard ran against, by its URL and the host the shard ran on.
        let node = format!(
            "{} on {}",
            p.manifest["server"]["url"].as_str().unwrap_or("?"),
            p.manifest["host"]["hostname"].as_str().unwrap_or("?")
        );
        for t in p.trials.iter().filter(|t| keep(t.phase)) {
            anyhow::ensure!(
                seen.insert(t.trial),
                "trial {} is in two shards ({}): the shards are not disjoint",
                t.trial,
                p.dir.display()
            );
            trials.push(TrialRecord {
                node: Some(node.clone()),
                ..t.clone()
            });
        }
    }

    let whole_trials = plan
        .trials
        .iter()
        .filter(|t| t.phase == Phase::Warmup)
        .count()
        + whole_measured;
    let object = manifest
        .as_object_mut()
        .context("manifest.json is not an object")?;
    object.remove("shard");
    object.insert("trials_planned".into(), whole_trials.into());
    let complete = missing.is_empty() && parts.iter().all(|p| p.manifest["complete"] == true);
    object.insert("complete".into(), complete.into());
    object.insert(
        "merged_from".into(),
        parts
            .iter()
            .map(|p| {
                serde_json::json!({
                    "dir": p.dir.display().to_string(),
                    "shard": p.shard,
                    "host": p.manifest["host"]["hostname"],
                    "server": p.manifest["server"]["url"],
                    "server_version": p.manifest["server"]["version"],
                    "complete": p.manifest["complete"],
                })
            })
            .collect::<Vec<_>>()
            .into(),
    );
    object.insert("missing_shards".into(), missing.clone().into());

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let dir = ResultsDir::open(out);
    dir.write_json("manifest.json", &manifest)?;
    dir.write_atomic("scenario.yaml", &scenario_yaml)?;
    dir.write_json("plan.json", &plan)?;
    // Streamed from the shards, one call at a time.
    let calls = parts.iter().enumerate().flat_map(|(k, p)| {
        let keep = move |c: &anyhow::Result<CallRecord>| match c {
            Ok(c) => c.phase == Phase::Measured || k == 0,
            Err(_) => true,
        };
        let read: Box<dyn Iterator<Item = anyhow::Result<CallRecord>>> =
            match jsonl(&p.dir.join("calls.jsonl")) {
                Ok(calls) => Box::new(calls.filter(keep)),
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
        read
    });
    dir.stream_records(calls, &trials)?;
    drop(trials);
    drop(parts);
    let records = load(out)?;
    let summary = report::write_records(out, &records)?;
    let gate = if records.gates.is_empty() {
        None
    } else {
        let gate = gate_records(out, &records, &GateOptions::default())?;
        report::write_gate(out, &gate)?;
        Some(gate)
    };
    Ok(Merged {
        dir: out.to_owned(),
        summary,
        missing,
        gate,
    })
}

/// The measured trials of the whole plan: the scenario's rounds times its arms, as the
/// first shard's manifest recorded them.
fn measured_of_whole(first: &Part) -> usize {
    let rounds = first.manifest["scenario"]["trials"].as_u64().unwrap_or(0) as usize;
    let arms = first.manifest["scenario"]["arms"]
        .as_array()
        .map_or(0, Vec::len);
    rounds * arms
}

/// A shard folder's `plan.json`.
fn read_plan(dir: &Path) -> anyhow::Result<Plan> {
    let path = dir.join("plan.json");
    serde_json::from_str(
        &std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| path.display().to_string())
}
