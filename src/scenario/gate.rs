//! Gate declarations: what a regression gate bounds, as data. The scenario's `gates:` and
//! the command line's `--gate` both produce a [`Gate`]; judging one (PASS, FAIL,
//! INCONCLUSIVE) is the `gate` module's work.

use serde::{Deserialize, Serialize};

use super::metric::{Direction, Metric};

/// α of a gate that does not set one.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Minimum trials per side of a gate that does not set one: below it a gate is
/// INCONCLUSIVE, never PASS.
pub const DEFAULT_MIN_TRIALS: usize = 5;

/// Which side of the threshold is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// `>=`: the ratio must not fall below the threshold (rates).
    AtLeast,
    /// `<=`: the ratio must not rise above the threshold (times).
    AtMost,
}

impl Bound {
    /// The bound a metric's direction implies.
    pub fn for_metric(metric: Metric) -> Bound {
        match metric.direction() {
            Direction::HigherIsBetter => Bound::AtLeast,
            Direction::LowerIsBetter => Bound::AtMost,
        }
    }

    /// The other bound.
    pub fn flipped(self) -> Bound {
        match self {
            Bound::AtLeast => Bound::AtMost,
            Bound::AtMost => Bound::AtLeast,
        }
    }

    /// `>=` or `<=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Bound::AtLeast => ">=",
            Bound::AtMost => "<=",
        }
    }

    /// τ for a tolerance: the change allowed in the bad direction (0.05 → 0.95 for `>=`,
    /// 1.05 for `<=`).
    pub fn threshold(self, tolerance: f64) -> f64 {
        match self {
            Bound::AtLeast => 1.0 - tolerance,
            Bound::AtMost => 1.0 + tolerance,
        }
    }
}

/// One gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// The metric bounded.
    pub metric: Metric,
    /// The variant judged.
    pub variant: String,
    /// Its arm; `None` for its solo arm (the arm named after it).
    pub arm: Option<String>,
    /// What it is judged against (within a run).
    pub baseline: String,
    /// Which side of the threshold is good.
    pub bound: Bound,
    /// τ: the ratio variant / baseline must stay on the good side of it.
    pub threshold: f64,
    /// Significance level of a FAIL (Holm-adjusted).
    pub alpha: f64,
    /// Fewer trials than this on either side: INCONCLUSIVE.
    pub min_trials: usize,
    /// Judge the comparison even when its sides ran under different conditions (one side
    /// reloading the model or opening connections more often); otherwise such a gate is
    /// INCONCLUSIVE.
    #[serde(default)]
    pub accept_confounded: bool,
}

impl Gate {
    /// The arm the variant is judged in.
    pub fn arm(&self) -> &str {
        self.arm.as_deref().unwrap_or(&self.variant)
    }

    /// The tolerance as a signed percentage, e.g. `-5%` (empty when τ = 1).
    pub fn tolerance(&self) -> String {
        if (self.threshold - 1.0).abs() < 1e-12 {
            return String::new();
        }
        signed_percent(self.threshold)
    }

    /// The gate as a command-line expression, e.g. `decode_tps:chimera>=baseline-5%`.
    pub fn expression(&self) -> String {
        let arm = self
            .arm
            .as_ref()
            .map(|a| format!("@{a}"))
            .unwrap_or_default();
        format!(
            "{}:{}{arm}{}{}{}",
            self.metric,
            self.variant,
            self.bound.symbol(),
            self.baseline,
            self.tolerance()
        )
    }
}

/// A threshold as the reader should see it: three decimals, more when the value has them
/// (up to six), so a bound is never shown rounded (`0.950`, `0.94984`, `1.100`).
pub fn threshold_text(tau: f64) -> String {
    let text = format!("{tau:.6}");
    let point = text.find('.').unwrap_or(text.len());
    let keep = text.trim_end_matches('0').len().max(point + 4);
    text[..keep.min(text.len())].to_owned()
}

/// A ratio as a signed change, e.g. 0.95 → `-5%`, 1.025 → `+2.5%`.
fn signed_percent(ratio: f64) -> String {
    let text = format!("{:+.3}", (ratio - 1.0) * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Parses a percentage like `5%`, `-5%`, `+2.5%` into a fraction (0.05, …).
pub fn percent(text: &str) -> Result<f64, String> {
    let number = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("`{text}` is not a percentage like `5%`"))?;
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage like `5%`"))?;
    if !value.is_finite() || value.abs() >= 100.0 {
        return Err(format!("`{text}` must lie between -100% and 100%"));
    }
    Ok(value / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_never_shown_rounded() {
        assert_eq!(threshold_text(0.95), "0.950");
        assert_eq!(threshold_text(1.1), "1.100");
        assert_eq!(threshold_text(1.0 - 0.05016), "0.94984");
        assert_eq!(threshold_text(1.0 - 0.07), "0.930");
        assert_eq!(threshold_text(1.025), "1.025");
    }
}
