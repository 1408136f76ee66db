//! The gate expression of the command line: `METRIC:VARIANT[@ARM](>=|<=)BASELINE[±N%]`.
//!
//! - `decode_tps:chimera>=baseline-5%`: chimera's decode rate may be at most 5% below the
//!   baseline's (ratio ≥ 0.95);
//! - `ttft_ms:chimera<=baseline+10%`: chimera's TTFT may be at most 10% above (ratio ≤ 1.10);
//! - `e2e_ms:chimera@chimera+chimera<=baseline`: in the shared arm, no slower at all;
//! - `decode_tps:chimera>=baseline+5%`: chimera must be at least 5% faster.

use crate::scenario::{Bound, DEFAULT_ALPHA, DEFAULT_MIN_TRIALS, Direction, Gate, Metric, percent};

const EXAMPLE: &str = "e.g. `decode_tps:chimera>=baseline-5%` or `ttft_ms:chimera<=baseline+10%`";

/// Parses one expression; the gate gets the default α and minimum trials.
pub fn parse(expr: &str) -> Result<Gate, String> {
    let fail = |why: String| format!("malformed gate `{expr}`: {why} ({EXAMPLE})");
    let (left, right, bound) = if let Some((l, r)) = expr.split_once(">=") {
        (l, r, Bound::AtLeast)
    } else if let Some((l, r)) = expr.split_once("<=") {
        (l, r, Bound::AtMost)
    } else {
        return Err(fail(
            "expected `>=` or `<=` between the variant and the baseline".into(),
        ));
    };
    let (metric, subject) = left
        .split_once(':')
        .ok_or_else(|| fail("expected `METRIC:VARIANT` before the comparison".into()))?;
    let metric: Metric = metric.trim().parse().map_err(&fail)?;
    let (variant, arm) = match subject.split_once('@') {
        Some((v, a)) => (v.trim(), Some(a.trim().to_owned())),
        None => (subject.trim(), None),
    };
    if variant.is_empty() || arm.as_deref() == Some("") {
        return Err(fail(
            "the variant (and arm, after `@`) must not be empty".into(),
        ));
    }
    // The baseline may itself contain '-' or '+': only a trailing `±N%` is the tolerance.
    let right = right.trim();
    let (baseline, change) = match right.rfind(['+', '-']) {
        Some(i) if right.ends_with('%') => (&right[..i], percent(&right[i..]).map_err(&fail)?),
        _ if right.ends_with('%') => {
            return Err(fail("a tolerance needs a sign: `-5%` or `+10%`".into()));
        }
        _ => (right, 0.0),
    };
    let baseline = baseline.trim();
    if baseline.is_empty() {
        return Err(fail(
            "the baseline variant is missing after the comparison".into(),
        ));
    }
    let gate = Gate {
        metric,
        variant: variant.to_owned(),
        arm,
        baseline: baseline.to_owned(),
        bound,
        threshold: 1.0 + change,
        alpha: DEFAULT_ALPHA,
        min_trials: DEFAULT_MIN_TRIALS,
        accept_confounded: false,
    };
    if bound != Bound::for_metric(metric) {
        // The same change allowed the other way round: `ttft_ms:a>=b-5%` → `ttft_ms:a<=b+5%`.
        let right = Gate {
            bound: bound.flipped(),
            threshold: 1.0 - change,
            ..gate.clone()
        };
        let (better, worse) = match metric.direction() {
            Direction::HigherIsBetter => ("higher", "lower"),
            Direction::LowerIsBetter => ("lower", "higher"),
        };
        return Err(format!(
            "gate `{expr}`: {metric} is {better}-is-better, so `{}` would fail when the variant improves; a gate bounds how much {worse} it may get: write `{}`",
            bound.symbol(),
            right.expression()
        ));
    }
    Ok(gate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_and_print_back() {
        for (expr, threshold) in [
            ("decode_tps:chimera>=baseline-5%", 0.95),
            ("ttft_ms:chimera<=baseline+10%", 1.10),
            ("e2e_ms:chimera@chimera+chimera<=baseline", 1.0),
            ("decode_tps:chimera>=base-v2+2.5%", 1.025),
        ] {
            let g = parse(expr).unwrap_or_else(|e| panic!("{e}"));
            assert!((g.threshold - threshold).abs() < 1e-12, "{expr}");
            assert_eq!(g.expression(), expr);
        }
        let g = parse("decode_tps:chimera>=base-v2+2.5%").unwrap();
        assert_eq!(g.baseline, "base-v2");
        let g = parse(" e2e_ms : chimera @ chimera+chimera <= baseline ").unwrap();
        assert_eq!(g.arm.as_deref(), Some("chimera+chimera"));
        assert_eq!(g.bound, Bound::AtMost);
    }

    #[test]
    fn malformed_expressions_say_what_is_wrong() {
        for (expr, why) in [
            ("decode_tps:chimera=>baseline", "expected `>=` or `<=`"),
            ("chimera>=baseline", "METRIC:VARIANT"),
            ("decode:chimera>=baseline", "unknown metric `decode`"),
            ("decode_tps:chimera>=baseline5%", "needs a sign"),
            ("decode_tps:chimera>=baseline-x%", "not a percentage"),
            ("decode_tps:chimera>=-5%", "baseline variant is missing"),
            ("decode_tps:>=baseline", "must not be empty"),
            (
                "decode_tps:chimera>=baseline-150%",
                "between -100% and 100%",
            ),
        ] {
            let err = parse(expr).unwrap_err();
            assert!(err.contains(why), "{expr}: {err}");
            assert!(err.contains("e.g."), "{err}");
        }
    }

    #[test]
    fn an_operator_against_the_metric_direction_is_refused_with_the_right_form() {
        for (expr, right) in [
            (
                "ttft_ms:chimera>=baseline-5%",
                "ttft_ms:chimera<=baseline+5%",
            ),
            (
                "e2e_ms:chimera@chimera+chimera>=baseline",
                "e2e_ms:chimera@chimera+chimera<=baseline",
            ),
            (
                "decode_tps:chimera<=baseline+10%",
                "decode_tps:chimera>=baseline-10%",
            ),
        ] {
            let err = parse(expr).unwrap_err();
            assert!(err.contains(&format!("write `{right}`")), "{expr}: {err}");
            assert!(
                err.contains("would fail when the variant improves"),
                "{err}"
            );
            parse(right).unwrap_or_else(|e| panic!("{right}: {e}"));
        }
    }
}
