//! Sequential stopping that stays honest however often it looks: an anytime-valid
//! confidence sequence for the mean of per-round log ratios (variant over baseline, one pair
//! per interleaved round).
//!
//! The evidence against "the mean is μ₀" after n rounds is the Bayes factor of the one-sample
//! t test with a normal prior of variance `g` on the standardized effect and the right-Haar
//! prior on the unknown scale (Gönen et al. 2005; Pérez-Ortiz, Lardy, de Heide & Grünwald,
//! "E-statistics, group invariance and anytime-valid testing", 2024):
//!
//! ```text
//! BF(t, n) = (1 + n g)^(−1/2) · [(1 + t²/ν) / (1 + t²/(ν (1 + n g)))]^((ν+1)/2),  ν = n − 1
//! ```
//!
//! with `t` the usual t statistic for μ₀. It depends on the data only through the t
//! statistic, which the scale does not change, and under μ₀ it is a nonnegative martingale
//! of the scale-invariant data with mean 1; by Ville's inequality it ever reaches 1/α with
//! probability at most α, whenever and however often one looks, and whatever the rule for
//! stopping (so long as it reads the data, not the future). The μ₀ it does not reject at
//! level α form the confidence sequence: `x̄ ± r·s/√n` with `r` where the factor reaches
//! 1/α, intersected over the looks. It is wider than a fixed-n t interval, which is the
//! price of looking at every round; `tests/it/sequential.rs` measures what it buys.

use serde::{Deserialize, Serialize};

/// The prior variance of the standardized effect: a unit-information prior, whose mass sits
/// at effects of about one standard deviation of the per-round differences, the size of a
/// change a benchmark is run to find.
pub const PRIOR_G: f64 = 1.0;

/// The Bayes factor for "the mean is not μ₀" from the t statistic `t` for μ₀ after `n`
/// values (n ≥ 2).
pub fn bayes_factor(t: f64, n: usize, g: f64) -> f64 {
    let n = n as f64;
    let nu = n - 1.0;
    let spread = 1.0 + n * g;
    let ln = -0.5 * spread.ln()
        + (nu + 1.0) / 2.0 * ((t * t / nu).ln_1p() - (t * t / (nu * spread)).ln_1p());
    ln.exp()
}

/// The |t| at which the factor after `n` values reaches `1/alpha`: the half-width of the
/// confidence sequence in standard errors.
pub fn radius(n: usize, alpha: f64, g: f64) -> f64 {
    let target = 1.0 / alpha;
    // The factor rises with |t| to a limit of (1 + n g)^(ν/2); beyond it no t suffices.
    let nu = n as f64 - 1.0;
    let ceiling = 0.5 * nu * (1.0 + n as f64 * g).ln();
    if ceiling <= target.ln() {
        return f64::INFINITY;
    }
    let (mut low, mut high) = (0.0, 1.0);
    while bayes_factor(high, n, g) < target {
        high *= 2.0;
    }
    for _ in 0..64 {
        let mid = 0.5 * (low + high);
        if bayes_factor(mid, n, g) < target {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

/// What a look decides, for a comparison of a variant with its baseline on the log scale
/// against a tolerance τ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Not clear yet.
    Continue,
    /// Better than the baseline: the whole sequence on the good side of 1.
    Faster,
    /// Worse than the baseline by more than the tolerance: the whole sequence beyond it.
    SlowerBeyondTolerance,
    /// Within ±τ of the baseline: the whole sequence inside the tolerance.
    Equivalent,
}

/// One look at the data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// Values (rounds) so far.
    pub n: usize,
    /// Their mean (log ratio).
    pub mean: f64,
    /// The confidence sequence so far (log ratio), intersected over the looks.
    pub low: f64,
    /// Its upper end.
    pub high: f64,
    /// The evidence against "no difference": the Bayes factor for μ₀ = 0.
    pub e_value: f64,
    /// What it decides.
    pub decision: Decision,
}

/// The confidence sequence of `values` (log ratios) at each look, intersected over the
/// looks so far, with its evidence against "no difference"; every look undecided. `at` are
/// the counts of values at which to look (ascending; looks before 2 values are skipped).
pub fn sequence(values: &[f64], at: &[usize], alpha: f64) -> Vec<Look> {
    let mut out = Vec::new();
    let (mut low, mut high) = (f64::NEG_INFINITY, f64::INFINITY);
    for &n in at.iter().filter(|&&n| n >= 2 && n <= values.len()) {
        let x = &values[..n];
        let mean = x.iter().sum::<f64>() / n as f64;
        let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let se = sd / (n as f64).sqrt();
        let r = radius(n, alpha, PRIOR_G);
        if se > 0.0 && r.is_finite() {
            low = low.max(mean - r * se);
            high = high.min(mean + r * se);
        } else if se == 0.0 {
            // No spread at all: every value is the mean.
            low = low.max(mean);
            high = high.min(mean);
        }
        let e_value = if se > 0.0 {
            bayes_factor(mean / se, n, PRIOR_G)
        } else if mean != 0.0 {
            f64::INFINITY
        } else {
            1.0
        };
        out.push(Look {
            n,
            mean,
            low,
            high,
            e_value,
            decision: Decision::Continue,
        });
    }
    out
}

/// [`sequence`], and what each look decides for a comparison whose faster side is above 1
/// when `higher_is_better`, against the tolerance τ (`tolerance`, a fraction in (0, 1)):
/// ratios within ±τ of 1 are equivalent, a slower one beyond τ fails (the bounds of a gate
/// `≥ baseline−τ` or `≤ baseline+τ`). The looks stop at the first decision.
pub fn looks(
    values: &[f64],
    at: &[usize],
    alpha: f64,
    tolerance: f64,
    higher_is_better: bool,
) -> Vec<Look> {
    let (down, up) = ((-tolerance).ln_1p(), tolerance.ln_1p());
    let mut out = Vec::new();
    for mut look in sequence(values, at, alpha) {
        let (low, high) = (look.low, look.high);
        let faster = if higher_is_better {
            low > 0.0
        } else {
            high < 0.0
        };
        let slower_beyond = if higher_is_better {
            high < down
        } else {
            low > up
        };
        look.decision = if low > high {
            // Intersected to nothing (the data moved more than chance allows at this
            // level): no decision.
            Decision::Continue
        } else if faster {
            Decision::Faster
        } else if slower_beyond {
            Decision::SlowerBeyondTolerance
        } else if low > down && high < up {
            Decision::Equivalent
        } else {
            Decision::Continue
        };
        out.push(look);
        if look.decision != Decision::Continue {
            break;
        }
    }
    out
}

/// The confidence sequence of `values` (log ratios) at level `alpha` after the last of the
/// looks `at`, intersected over all of them, whatever they would have decided: the
/// interval a gate on a run with a stopping rule is judged by. `None` before two values.
pub fn confidence_sequence(values: &[f64], at: &[usize], alpha: f64) -> Option<Look> {
    sequence(values, at, alpha).last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_factor_is_one_at_no_evidence_and_grows_with_t_and_n() {
        // t = 0: the data favour μ₀; the factor is below 1.
        assert!(bayes_factor(0.0, 10, 1.0) < 1.0);
        assert!(bayes_factor(3.0, 10, 1.0) > bayes_factor(2.0, 10, 1.0));
        // The same t from more values is more evidence (once n g ≫ 1 it grows like √n·…).
        assert!(bayes_factor(4.0, 30, 1.0) > bayes_factor(4.0, 10, 1.0));
        // The radius is where the factor reaches 1/α, and wider than the fixed-n t quantile.
        for n in [5, 10, 40] {
            let r = radius(n, 0.05, 1.0);
            assert!((bayes_factor(r, n, 1.0) - 20.0).abs() < 1e-6, "{n}");
            let fixed = super::super::dist::t_quantile(0.975, n as f64 - 1.0);
            assert!(r > fixed, "{n}: {r} vs {fixed}");
        }
        // Below five values the factor cannot reach 20 whatever t is, (1 + n g)^(ν/2) ≤
        // 20: the first decision can come at the fifth round.
        for n in 2..5 {
            assert!(radius(n, 0.05, 1.0).is_infinite(), "{n}");
        }
    }
}
