//! The checker's part for `load:` and `slo:`: the load levels (closed-loop concurrency or
//! open-loop rates), how long each level runs, and the service objectives goodput counts.

use serde_saphyr::Spanned;

use super::check::Checker;
use super::raw::{ArrivalKind, RawLoad, RawSlo};
use super::{Arrival, Load, LoadLevel, Slo};

/// Most workers a closed-loop level may run.
const MAX_CONCURRENCY: u32 = 4096;

/// Highest open-loop rate, requests per second.
const MAX_RATE: f64 = 100_000.0;

/// Default cap on requests in flight in an open loop: high enough never to bind on a
/// server that keeps up, low enough to bound the client's memory when it does not.
pub(super) const DEFAULT_MAX_INFLIGHT: u32 = 1024;

/// Most requests one job may send at one level (an open loop's schedule is held in
/// memory before it starts).
pub const MAX_SCHEDULED: u32 = 10_000_000;

impl Checker {
    pub(super) fn load(&mut self, raw: &Spanned<RawLoad>) -> Load {
        let r = &raw.value;
        let mut levels: Vec<LoadLevel> = Vec::new();
        match (&r.concurrency, &r.rate) {
            (Some(c), Some(_)) => self.report(
                c,
                "load.concurrency",
                "give either `concurrency` (closed loop) or `rate` (open loop), not both",
            ),
            (None, None) => self.report(
                raw,
                "load",
                "give the levels: `concurrency: [1, 4, 16]` (closed loop) or `rate: [1, 2, 4]` requests/s (open loop)",
            ),
            (Some(c), None) => {
                if c.value.is_empty() {
                    self.report(c, "load.concurrency", "list at least one level");
                }
                for (i, n) in c.value.iter().enumerate() {
                    let field = format!("load.concurrency[{i}]");
                    let l = LoadLevel::Concurrency(self.range(n, &field, 1, MAX_CONCURRENCY));
                    self.level(&mut levels, n, &field, l);
                }
            }
            (None, Some(rates)) => {
                if rates.value.is_empty() {
                    self.report(rates, "load.rate", "list at least one level");
                }
                for (i, x) in rates.value.iter().enumerate() {
                    let field = format!("load.rate[{i}]");
                    if !(x.value > 0.0 && x.value <= MAX_RATE) {
                        self.report(
                            x,
                            &field,
                            format!("{} is out of range (requests per second above 0, at most {MAX_RATE})", x.value),
                        );
                    }
                    self.level(&mut levels, x, &field, LoadLevel::Rate(x.value));
                }
            }
        }
        let open = r.rate.is_some();
        let closed_only =
            "belongs to an open loop (`load.rate`); a closed loop's workers pace themselves";
        let arrival = match (&r.arrival, &r.burstiness) {
            (Some(a), _) if !open => {
                self.report(a, "load.arrival", format!("`arrival` {closed_only}"));
                Arrival::Poisson
            }
            (Some(a), Some(b)) if a.value == ArrivalKind::Gamma => Arrival::Gamma {
                burstiness: self.range(b, "load.burstiness", 0.01, 100.0),
            },
            (Some(a), None) if a.value == ArrivalKind::Gamma => {
                self.report(
                    a,
                    "load.burstiness",
                    "a gamma arrival needs `burstiness`, the shape of its gaps (1 is Poisson, below 1 burstier)",
                );
                Arrival::Poisson
            }
            (_, Some(b)) => {
                self.report(
                    b,
                    "load.burstiness",
                    "`burstiness` belongs to `arrival: gamma`",
                );
                Arrival::Poisson
            }
            (Some(a), None) if a.value == ArrivalKind::Constant => Arrival::Constant,
            _ => Arrival::Poisson,
        };
        let (requests, duration_s) = match (&r.requests, &r.duration_s) {
            (Some(n), Some(_)) => {
                self.report(
                    n,
                    "load.requests",
                    "give either `requests` or `duration_s` per level, not both",
                );
                (None, None)
            }
            (Some(n), None) => (Some(self.range(n, "load.requests", 1, MAX_SCHEDULED)), None),
            (None, Some(d)) => {
                let top = levels.iter().map(|l| l.value()).fold(0.0, f64::max);
                if open && top * d.value > f64::from(MAX_SCHEDULED) {
                    self.report(
                        d,
                        "load.duration_s",
                        format!(
                            "{top} req/s for {} s is more than {MAX_SCHEDULED} requests",
                            d.value
                        ),
                    );
                }
                (None, Some(self.range(d, "load.duration_s", 0.1, 86_400.0)))
            }
            (None, None) => {
                self.report(
                    raw,
                    "load.requests",
                    "say how long each level runs: `requests: N` (per job and trial) or `duration_s: S`",
                );
                (Some(1), None)
            }
        };
        let warmup_requests = r.warmup_requests.as_ref().map_or(0, |w| {
            let hi = requests.map_or(1_000_000, |n| n.saturating_sub(1));
            if requests.is_some_and(|n| w.value >= n) {
                self.report(
                    w,
                    "load.warmup_requests",
                    format!(
                        "{} leaves no measured request of the {} each level sends",
                        w.value,
                        requests.unwrap_or_default()
                    ),
                );
                return 0;
            }
            self.range(w, "load.warmup_requests", 0, hi)
        });
        let max_inflight = match &r.max_inflight {
            Some(m) if !open => {
                self.report(
                    m,
                    "load.max_inflight",
                    format!("`max_inflight` {closed_only}"),
                );
                DEFAULT_MAX_INFLIGHT
            }
            Some(m) => self.range(m, "load.max_inflight", 1, 100_000),
            None => DEFAULT_MAX_INFLIGHT,
        };
        let ramp_up_s = match &r.ramp_up_s {
            Some(at) if open => {
                self.report(
                    at,
                    "load.ramp_up_s",
                    "`ramp_up_s` belongs to a closed loop (`load.concurrency`); an open loop's schedule sets when requests start",
                );
                0.0
            }
            Some(at) => self.range(at, "load.ramp_up_s", 0.0, 3_600.0),
            None => 0.0,
        };
        Load {
            levels,
            arrival,
            requests,
            duration_s,
            warmup_requests,
            max_inflight,
            ramp_up_s,
        }
    }

    /// Adds `level` to `levels`, reporting it at `at` when it is there already.
    fn level<T>(
        &mut self,
        levels: &mut Vec<LoadLevel>,
        at: &Spanned<T>,
        field: &str,
        level: LoadLevel,
    ) {
        if levels.contains(&level) {
            self.report(at, field, format!("{} is listed twice", level.describe()));
        }
        levels.push(level);
    }

    pub(super) fn slo(&mut self, raw: &Spanned<RawSlo>) -> Slo {
        let r = &raw.value;
        let bound = |check: &mut Checker, b: &Option<Spanned<f64>>, field: &str| {
            b.as_ref()
                .map(|b| check.range(b, &format!("slo.{field}"), 0.001, 3_600_000.0))
        };
        let slo = Slo {
            ttft_ms: bound(self, &r.ttft_ms, "ttft_ms"),
            tpot_ms: bound(self, &r.tpot_ms, "tpot_ms"),
            e2e_ms: bound(self, &r.e2e_ms, "e2e_ms"),
        };
        if slo == Slo::default() {
            self.report(
                raw,
                "slo",
                "declare at least one of `ttft_ms`, `tpot_ms`, `e2e_ms`",
            );
        }
        slo
    }
}
