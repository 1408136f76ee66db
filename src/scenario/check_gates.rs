//! The checker's part for `gates:`: each gate's metric, variants, arm and tolerance, with
//! the arm checked to have a counterpart to compare against.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::check::Checker;
use super::gate::percent;
use super::raw::{GoodDirection, RawGate, RawStopping, RawTolerance};
use super::{
    Arm, Bound, DEFAULT_ALPHA, DEFAULT_MIN_TRIALS, Direction, Gate, Metric, Order, Stopping,
    Variant,
};

impl Checker {
    /// `stopping:`, and the rounds it runs at most (`max_trials`, else `trials`).
    pub(super) fn stopping(
        &mut self,
        raw: &Spanned<RawStopping>,
        variants: &BTreeMap<String, Variant>,
        arms: &[Arm],
        baseline: &str,
        order: Order,
    ) -> (Option<Stopping>, Option<u32>) {
        let s = &raw.value;
        let problems = self.problems.len();
        if order != Order::Interleaved {
            self.report(
                raw,
                "stopping",
                "a run may stop only at the end of a round, so its arms must run interleaved: remove `order` or set it to `interleaved`",
            );
        }
        let metric = match s.metric.value.parse::<Metric>() {
            Ok(m) => m,
            Err(e) => {
                self.report(&s.metric, "stopping.metric", e);
                Metric::DecodeTps
            }
        };
        let known = self.known_variant(&s.variant, "stopping.variant", &s.variant.value, variants);
        if known && s.variant.value == baseline {
            self.report(
                &s.variant,
                "stopping.variant",
                format!("`{baseline}` is the baseline; name the variant compared with it"),
            );
        }
        let arm_name = s.arm.as_ref().map_or(&s.variant.value, |a| &a.value);
        let at_arm: &Spanned<String> = s.arm.as_ref().unwrap_or(&s.variant);
        let mut against = String::new();
        match arms.iter().find(|a| &a.name == arm_name) {
            _ if !known => {}
            None => self.report(
                at_arm,
                "stopping.arm",
                format!("no arm `{arm_name}` (without `arm` the variant's solo arm is used)"),
            ),
            Some(arm) if !arm.variants.contains(&s.variant.value) => self.report(
                at_arm,
                "stopping.arm",
                format!("arm `{}` does not run `{}`", arm.name, s.variant.value),
            ),
            Some(arm) => match arm.counterpart(&s.variant.value, baseline, arms) {
                Some(base) => against = base.name.clone(),
                None => self.report(
                    at_arm,
                    "stopping.arm",
                    format!(
                        "no arm runs `{baseline}` in place of `{}` in `{}`, so there is nothing to compare against",
                        s.variant.value, arm.name
                    ),
                ),
            },
        }
        let tolerance = match &s.tolerance.value {
            RawTolerance::Text(text) => percent(text),
            RawTolerance::Fraction(f) => Ok(*f),
        }
        .and_then(|t| {
            if t > 0.0 && t < 1.0 {
                Ok(t)
            } else {
                Err(format!(
                    "must be a positive change below 100%, like `5%`, not {}",
                    t
                ))
            }
        })
        .unwrap_or_else(|e| {
            self.report(&s.tolerance, "stopping.tolerance", e);
            0.05
        });
        let max = s
            .max_trials
            .as_ref()
            .map(|m| self.range(m, "stopping.max_trials", 5, 10_000));
        let every = s
            .every
            .as_ref()
            .map_or(1, |e| self.range(e, "stopping.every", 1, 1_000));
        if self.problems.len() > problems {
            return (None, max);
        }
        let rule = Stopping {
            metric,
            variant: s.variant.value.clone(),
            arm: arm_name.clone(),
            baseline: baseline.to_owned(),
            against,
            tolerance,
            every,
        };
        (Some(rule), max)
    }

    pub(super) fn gates(
        &mut self,
        raw: &Spanned<Vec<Spanned<RawGate>>>,
        variants: &BTreeMap<String, Variant>,
        arms: &[Arm],
        default_baseline: &str,
    ) -> Vec<Gate> {
        let mut gates = Vec::new();
        for (i, g) in raw.value.iter().enumerate() {
            let at = |f: &str| format!("gates[{i}].{f}");
            let g = &g.value;
            let problems = self.problems.len();
            let metric = match g.metric.value.parse::<Metric>() {
                Ok(m) => m,
                Err(e) => {
                    self.report(&g.metric, &at("metric"), e);
                    Metric::DecodeTps
                }
            };
            let known_variant =
                self.known_variant(&g.variant, &at("variant"), &g.variant.value, variants);
            let baseline = match &g.baseline {
                Some(b) => {
                    self.known_variant(b, &at("baseline"), &b.value, variants);
                    b.value.clone()
                }
                None => default_baseline.to_owned(),
            };
            let arm_name = g.arm.as_ref().map_or(&g.variant.value, |a| &a.value);
            let at_arm: &Spanned<String> = g.arm.as_ref().unwrap_or(&g.variant);
            // An arm named without its load level is judged at every level.
            let targets: Vec<&Arm> = match arms.iter().find(|a| &a.name == arm_name) {
                Some(a) => vec![a],
                None => arms
                    .iter()
                    .filter(|a| a.load.is_some() && a.base_name() == arm_name)
                    .collect(),
            };
            if !known_variant {
                // An unknown variant is already reported; its arm would only repeat it.
            } else if targets.is_empty() {
                self.report(
                    at_arm,
                    &at("arm"),
                    format!(
                        "no arm `{arm_name}` (a gate without `arm` uses the variant's solo arm)"
                    ),
                );
            }
            for arm in targets.iter().filter(|_| known_variant) {
                if !arm.variants.contains(&g.variant.value) {
                    self.report(
                        at_arm,
                        &at("arm"),
                        format!("arm `{}` does not run `{}`", arm.name, g.variant.value),
                    );
                } else if arm.counterpart(&g.variant.value, &baseline, arms).is_none() {
                    self.report(
                        at_arm,
                        &at("arm"),
                        format!(
                            "no arm runs `{baseline}` in place of `{}` in `{}`, so there is nothing to compare against",
                            g.variant.value, arm.name
                        ),
                    );
                }
            }
            let tolerance = match &g.tolerance {
                None => 0.0,
                Some(t) => {
                    let parsed = match &t.value {
                        RawTolerance::Text(text) => percent(text),
                        RawTolerance::Fraction(f) if f.abs() < 1.0 => Ok(*f),
                        RawTolerance::Fraction(f) => Err(format!(
                            "{f} is not a fraction below 1: write a percentage like `5%`, or `0.05`"
                        )),
                    };
                    parsed.unwrap_or_else(|e| {
                        self.report(t, &at("tolerance"), e);
                        0.0
                    })
                }
            };
            let bound = Bound::for_metric(metric);
            if let Some(d) = &g.direction {
                let (said, own) = match (d.value, metric.direction()) {
                    (GoodDirection::Higher, Direction::LowerIsBetter) => ("higher", "lower"),
                    (GoodDirection::Lower, Direction::HigherIsBetter) => ("lower", "higher"),
                    _ => ("", ""),
                };
                if !said.is_empty() {
                    self.report(
                        d,
                        &at("direction"),
                        format!(
                            "`{said}` is the wrong way for {metric}, where {own} is better: the gate would fail when the variant improves; leave `direction` out (a gate bounds how much worse the metric may get)"
                        ),
                    );
                }
            }
            let alpha = g
                .alpha
                .as_ref()
                .map_or(DEFAULT_ALPHA, |a| self.range(a, &at("alpha"), 1e-6, 0.5));
            let min_trials = g.min_trials.as_ref().map_or(DEFAULT_MIN_TRIALS, |m| {
                self.range(m, &at("min_trials"), 2, 10_000) as usize
            });
            if self.problems.len() > problems {
                continue;
            }
            let gate = Gate {
                metric,
                variant: g.variant.value.clone(),
                arm: g.arm.as_ref().map(|a| a.value.clone()),
                baseline,
                bound,
                threshold: bound.threshold(tolerance),
                alpha,
                min_trials,
                accept_confounded: g.accept_confounded.unwrap_or(false),
            };
            match targets.as_slice() {
                [one] if one.load.is_none() => gates.push(gate),
                _ => gates.extend(targets.iter().map(|a| Gate {
                    arm: Some(a.name.clone()),
                    ..gate.clone()
                })),
            }
        }
        gates
    }
}
