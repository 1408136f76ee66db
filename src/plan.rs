//! The plan: which arm runs in which order. A pure function of the scenario, written to
//! the results folder before anything runs so every run can be audited and resumed.

use serde::{Deserialize, Serialize};

use crate::rng::{Rng, mix64};
use crate::scenario::{Arrival, LoadLevel, MAX_SCHEDULED, Order, Scenario};

/// Why a trial runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Absorbs cold starts and caches; excluded from statistics.
    Warmup,
    /// Counts.
    Measured,
}

/// One trial of the plan: one arm, its variants launched together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTrial {
    /// Position in the plan, from 0.
    pub trial: u32,
    /// Round number within its phase, from 0.
    pub round: u32,
    /// Warmup or measured.
    pub phase: Phase,
    /// Index into the scenario's arms.
    pub arm_index: usize,
    /// Arm name.
    pub arm: String,
    /// Variants launched together.
    pub variants: Vec<String>,
    /// The load level each of its jobs runs at (`load:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadLevel>,
    /// Seed of this trial (for anything random a workload does).
    pub seed: u64,
    /// Which of the run's servers (`server.urls`, from 0) runs it; absent with one server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<u32>,
}

/// One of `count` parts of a run, from 0: the part a node of a cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` (`0/4` … `3/4`).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not a shard like `0/4` (index from 0, then the count)");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count)
    }

    /// Shard `index` of `count`, when it is one.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index} of {count}: the index counts from 0 and must be below the count"
            ));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The whole ordered plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Order used.
    pub order: Order,
    /// Seed used.
    pub seed: u64,
    /// Trials in execution order.
    pub trials: Vec<PlannedTrial>,
}

impl Plan {
    /// Builds the plan. Warmup rounds come first, each running every arm once in a
    /// shuffled order; then the measured trials in the scenario's order:
    ///
    /// - `interleaved`: `trials` rounds, each running every arm once in its own seeded
    ///   random order, so slow drift of the server hits every arm alike;
    /// - `sequential`: all trials of each arm back to back, arms in file order;
    /// - `random`: all measured trials shuffled together.
    ///
    /// With several servers (`server.urls`, n of them) every server runs the warm-up rounds
    /// (server 0's first, then server 1's, …) and measured round `r` runs on server
    /// `r mod n`, so each server runs every arm, interleaved as one server would.
    pub fn build(scenario: &Scenario) -> Plan {
        let mut rng = Rng::new(mix64(scenario.seed ^ 0x706c_616e));
        let arms: Vec<usize> = (0..scenario.arms.len()).collect();
        let mut slots: Vec<(Phase, u32, usize)> = Vec::new();
        for round in 0..scenario.warmup {
            let mut order = arms.clone();
            rng.shuffle(&mut order);
            slots.extend(order.into_iter().map(|a| (Phase::Warmup, round, a)));
        }
        match scenario.order {
            Order::Interleaved => {
                for round in 0..scenario.trials {
                    let mut order = arms.clone();
                    rng.shuffle(&mut order);
                    slots.extend(order.into_iter().map(|a| (Phase::Measured, round, a)));
                }
            }
            Order::Sequential => {
                for &a in &arms {
                    slots.extend((0..scenario.trials).map(|round| (Phase::Measured, round, a)));
                }
            }
            Order::Random => {
                let mut measured: Vec<(Phase, u32, usize)> = arms
                    .iter()
                    .flat_map(|&a| (0..scenario.trials).map(move |r| (Phase::Measured, r, a)))
                    .collect();
                rng.shuffle(&mut measured);
                slots.extend(measured);
            }
        }
        let servers = scenario.server.urls.len() as u32;
        let slots: Vec<(Phase, u32, usize, Option<u32>)> = if servers > 1 {
            let warmups = slots.iter().filter(|s| s.0 == Phase::Warmup);
            let warmed = (0..servers)
                .flat_map(|k| warmups.clone().map(move |&(p, r, a)| (p, r, a, Some(k))));
            let measured = slots
                .iter()
                .filter(|s| s.0 == Phase::Measured)
                .map(|&(p, r, a)| (p, r, a, Some(r % servers)));
            warmed.chain(measured).collect()
        } else {
            slots.into_iter().map(|(p, r, a)| (p, r, a, None)).collect()
        };
        let trials = slots
            .into_iter()
            .enumerate()
            .map(|(i, (phase, round, arm_index, server))| {
                let arm = &scenario.arms[arm_index];
                PlannedTrial {
                    trial: i as u32,
                    round,
                    phase,
                    arm_index,
                    arm: arm.name.clone(),
                    variants: arm.variants.clone(),
                    load: arm.load,
                    seed: mix64(scenario.seed.wrapping_add(i as u64)),
                    server,
                }
            })
            .collect();
        Plan {
            order: scenario.order,
            seed: scenario.seed,
            trials,
        }
    }

    /// The part of the plan shard `shard` runs: every warm-up trial (each shard warms its
    /// own server) and the measured trials of every round `r` with `r mod count = index`,
    /// so every shard runs every arm, interleaved as the whole plan is, and the shards'
    /// measured trials are disjoint and together the whole plan's. Trials keep their
    /// numbers in the whole plan.
    pub fn shard(&self, shard: Shard) -> Plan {
        Plan {
            trials: self
                .trials
                .iter()
                .filter(|t| t.phase == Phase::Warmup || t.round % shard.count == shard.index)
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// Number of measured trials.
    pub fn measured(&self) -> usize {
        self.trials
            .iter()
            .filter(|t| t.phase == Phase::Measured)
            .count()
    }
}

/// The send times of an open loop at `rate` requests/s, in seconds from the start of the
/// job: the first at 0, then gaps drawn from `arrival` with mean `1 / rate`; `requests`
/// of them, or every one before `duration_s`. Fixed before the first request is sent, so
/// a slow server or client cannot change when requests are due (no coordinated
/// omission), and the same `seed` gives the same schedule to every variant of a round.
pub fn arrivals(
    rate: f64,
    arrival: Arrival,
    requests: Option<u32>,
    duration_s: Option<f64>,
    seed: u64,
) -> Vec<f64> {
    let mut rng = Rng::new(mix64(seed ^ 0x6172_7269_7661_6c73));
    let mut gap = || match arrival {
        Arrival::Constant => 1.0 / rate,
        Arrival::Poisson => rng.exponential() / rate,
        Arrival::Gamma { burstiness } => rng.gamma(burstiness) / (burstiness * rate),
    };
    let mut times = Vec::new();
    let mut t = 0.0;
    while times.len() < MAX_SCHEDULED as usize {
        match (requests, duration_s) {
            (Some(n), _) if times.len() >= n as usize => break,
            (None, Some(d)) if t >= d => break,
            (None, None) => break,
            _ => {}
        }
        times.push(t);
        t += gap();
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(order: &str, seed: u64) -> Scenario {
        let text = format!(
            "name: p\nmodel: m\nseed: {seed}\norder: {order}\nwarmup: 1\ntrials: 4\n\
             workload: {{ kind: agent_report, data_dir: . }}\n\
             agents: {{ a: {{ persona: p }} }}\n\
             variants: {{ x: {{}}, y: {{}} }}\nbaseline: x\n\
             arms: [[x], [y], [x, y]]\n"
        );
        Scenario::parse(&text, Path::new(env!("CARGO_MANIFEST_DIR")), None).expect("valid")
    }

    #[test]
    fn several_servers_each_warm_up_and_run_every_arm_of_their_rounds() {
        let one = Plan::build(&scenario("interleaved", 10));
        let text = "name: p\nmodel: m\nseed: 10\nwarmup: 1\ntrials: 4\n\
             server: { urls: [\"http://a:1\", \"http://b:1\", \"http://c:1\"] }\n\
             workload: { kind: agent_report, data_dir: . }\n\
             agents: { a: { persona: p } }\n\
             variants: { x: {}, y: {} }\nbaseline: x\n\
             arms: [[x], [y], [x, y]]\n";
        let three = Plan::build(
            &Scenario::parse(text, Path::new(env!("CARGO_MANIFEST_DIR")), None).expect("valid"),
        );
        // Every server runs the one warm-up round (3 arms), then the measured rounds.
        assert_eq!(three.trials.len(), 3 * 3 + 4 * 3);
        for (i, t) in three.trials.iter().enumerate() {
            assert_eq!(t.trial as usize, i, "numbered in plan order");
        }
        for k in 0..3 {
            let warm: Vec<usize> = three
                .trials
                .iter()
                .filter(|t| t.phase == Phase::Warmup && t.server == Some(k))
                .map(|t| t.arm_index)
                .collect();
            assert_eq!(warm.len(), 3, "server {k}");
        }
        // The measured rounds are the one-server plan's, round r on server r mod 3, in
        // the same order.
        let measured = |p: &Plan| -> Vec<(u32, usize)> {
            p.trials
                .iter()
                .filter(|t| t.phase == Phase::Measured)
                .map(|t| (t.round, t.arm_index))
                .collect()
        };
        assert_eq!(measured(&three), measured(&one));
        assert!(
            three
                .trials
                .iter()
                .filter(|t| t.phase == Phase::Measured)
                .all(|t| t.server == Some(t.round % 3))
        );
        assert!(one.trials.iter().all(|t| t.server.is_none()));
    }

    #[test]
    fn shards_split_whole_rounds_disjointly_and_each_runs_every_arm() {
        let plan = Plan::build(&scenario("interleaved", 10));
        let arms: std::collections::BTreeSet<usize> =
            plan.trials.iter().map(|t| t.arm_index).collect();
        let mut seen = std::collections::BTreeSet::new();
        for index in 0..3 {
            let part = plan.shard(Shard::new(index, 3).unwrap());
            let measured: Vec<&PlannedTrial> = part
                .trials
                .iter()
                .filter(|t| t.phase == Phase::Measured)
                .collect();
            for t in &measured {
                assert_eq!(t.round % 3, index);
                assert!(seen.insert(t.trial), "trial {} in two shards", t.trial);
                // The trial is the whole plan's, unchanged.
                assert_eq!(&&plan.trials[t.trial as usize], t);
            }
            // Every arm of every round of the shard.
            let part_arms: std::collections::BTreeSet<usize> =
                measured.iter().map(|t| t.arm_index).collect();
            assert_eq!(part_arms, arms);
            // Every warm-up.
            let warm = |p: &Plan| p.trials.iter().filter(|t| t.phase == Phase::Warmup).count();
            assert_eq!(warm(&part), warm(&plan));
        }
        assert_eq!(seen.len(), plan.measured());
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("4/4").is_err() && Shard::parse("a/b").is_err());
    }

    #[test]
    fn interleaved_rounds_contain_every_arm_once() {
        let plan = Plan::build(&scenario("interleaved", 3));
        assert_eq!(plan.trials.len(), 3 + 12);
        assert!(plan.trials[..3].iter().all(|t| t.phase == Phase::Warmup));
        for round in plan.trials[3..].chunks(3) {
            let mut arms: Vec<usize> = round.iter().map(|t| t.arm_index).collect();
            arms.sort_unstable();
            assert_eq!(arms, [0, 1, 2]);
            assert!(round.iter().all(|t| t.round == round[0].round));
        }
        assert_eq!(plan.measured(), 12);
        let ids: Vec<u32> = plan.trials.iter().map(|t| t.trial).collect();
        assert_eq!(ids, (0..15).collect::<Vec<_>>());
    }

    #[test]
    fn same_seed_same_plan_and_seeds_differ() {
        assert_eq!(
            Plan::build(&scenario("interleaved", 11)),
            Plan::build(&scenario("interleaved", 11))
        );
        let orders: std::collections::BTreeSet<Vec<usize>> = (0..8)
            .map(|s| {
                Plan::build(&scenario("interleaved", s))
                    .trials
                    .iter()
                    .map(|t| t.arm_index)
                    .collect()
            })
            .collect();
        assert!(orders.len() > 1, "the seed must change the order");
    }

    /// Kolmogorov–Smirnov statistic of `xs` against the CDF `cdf`.
    fn ks(xs: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
        xs.sort_by(f64::total_cmp);
        let n = xs.len() as f64;
        xs.iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf(x);
                (f - i as f64 / n).max((i + 1) as f64 / n - f)
            })
            .fold(0.0, f64::max)
    }

    fn gaps(times: &[f64]) -> Vec<f64> {
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[test]
    fn poisson_gaps_are_exponential_at_the_declared_rate() {
        let times = arrivals(8.0, Arrival::Poisson, Some(4001), None, 42);
        assert_eq!(times.len(), 4001);
        assert_eq!(times[0], 0.0);
        let mut g = gaps(&times);
        let d = ks(&mut g, |x| 1.0 - (-8.0 * x).exp());
        // The 5% critical value of the one-sample KS test is 1.358 / √n.
        let critical = 1.358 / (g.len() as f64).sqrt();
        assert!(d < critical, "KS D = {d:.4} ≥ {critical:.4}");
        // The wrong rate is rejected: the test can fail.
        let wrong = ks(&mut g, |x| 1.0 - (-6.0 * x).exp());
        assert!(wrong > critical, "KS D = {wrong:.4} at the wrong rate");
        let mean = g.iter().sum::<f64>() / g.len() as f64;
        assert!((mean - 0.125).abs() < 0.01, "{mean}");
    }

    #[test]
    fn constant_and_gamma_schedules() {
        let c = arrivals(4.0, Arrival::Constant, None, Some(2.0), 1);
        assert_eq!(c, [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]);
        // Gamma gaps of shape k: mean 1/rate, coefficient of variation 1/√k.
        for k in [0.25, 4.0] {
            let g = gaps(&arrivals(
                10.0,
                Arrival::Gamma { burstiness: k },
                Some(20_001),
                None,
                3,
            ));
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            let sd = (g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / g.len() as f64).sqrt();
            assert!((mean - 0.1).abs() < 0.005, "k={k}: mean {mean}");
            assert!(
                (sd / mean - 1.0 / k.sqrt()).abs() < 0.08,
                "k={k}: cv {}",
                sd / mean
            );
        }
        // The same seed gives the same schedule; another seed another.
        let a = arrivals(2.0, Arrival::Poisson, Some(50), None, 9);
        assert_eq!(a, arrivals(2.0, Arrival::Poisson, Some(50), None, 9));
        assert_ne!(a, arrivals(2.0, Arrival::Poisson, Some(50), None, 10));
    }

    #[test]
    fn sequential_and_random_orders() {
        let seq = Plan::build(&scenario("sequential", 1));
        let measured: Vec<usize> = seq.trials[3..].iter().map(|t| t.arm_index).collect();
        assert_eq!(measured, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        let random = Plan::build(&scenario("random", 1));
        let mut counts = [0; 3];
        for t in &random.trials[3..] {
            counts[t.arm_index] += 1;
        }
        assert_eq!(counts, [4, 4, 4]);
    }
}
