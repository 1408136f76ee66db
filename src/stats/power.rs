//! Power: how likely a t test is to see a difference of a given size, the smallest
//! difference it sees with a given power (the minimum detectable effect), and how many
//! trials that takes. Computed with the noncentral t distribution, not a normal shortcut:
//! at the few trials a benchmark runs, the normal approximation promises power the test
//! does not have.
//!
//! Checked against statsmodels' `TTestIndPower` (`scripts/stats_reference.py`).

use statrs::function::beta::beta_reg;
use statrs::function::gamma::ln_gamma;

use super::dist::{normal_cdf, t_quantile};

/// `P(T ≤ t)` for the noncentral t distribution with `df` > 0 degrees of freedom and
/// noncentrality `nc`.
///
/// Lenth's series (Applied Statistics algorithm 243): for t ≥ 0,
/// `Φ(−δ) + ½ Σⱼ [pⱼ I_x(j + ½, ν/2) + qⱼ I_x(j + 1, ν/2)]` with `x = t²/(t² + ν)`, Poisson
/// weights `pⱼ = e^{−δ²/2} (δ²/2)ʲ / j!` and `qⱼ = δ e^{−δ²/2} (δ²/2)ʲ / (√2 Γ(j + 3/2))`,
/// summed from the Poisson mode outwards until the terms no longer matter; for t < 0,
/// `1 − F(−t; ν, −δ)`.
pub fn nct_cdf(t: f64, df: f64, nc: f64) -> f64 {
    if t.is_nan() || df.is_nan() || nc.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t < 0.0 {
        return 1.0 - nct_cdf_nonnegative(-t, df, -nc);
    }
    nct_cdf_nonnegative(t, df, nc)
}

fn nct_cdf_nonnegative(t: f64, df: f64, nc: f64) -> f64 {
    if t.is_infinite() {
        return 1.0;
    }
    let base = normal_cdf(-nc);
    if t == 0.0 {
        return base;
    }
    let x = t * t / (t * t + df);
    let lambda = nc * nc / 2.0;
    let half_df = df / 2.0;
    let term = |j: f64| -> f64 {
        // Poisson weights in logs, so a large λ neither overflows nor underflows.
        let log_poisson = if lambda > 0.0 {
            -lambda + j * lambda.ln()
        } else if j == 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let p = (log_poisson - ln_gamma(j + 1.0)).exp();
        let q = if nc == 0.0 {
            0.0
        } else {
            nc.signum()
                * (log_poisson + nc.abs().ln() - 0.5 * std::f64::consts::LN_2 - ln_gamma(j + 1.5))
                    .exp()
        };
        let mut out = 0.0;
        if p > 0.0 {
            out += p * beta_reg(j + 0.5, half_df, x);
        }
        if q != 0.0 {
            out += q * beta_reg(j + 1.0, half_df, x);
        }
        out
    };
    let mode = lambda.floor();
    let mut sum = term(mode);
    // Outwards from the mode: the weights fall off on both sides, and each term is at most
    // its weight, so a run of negligible weights ends the sum.
    let small = |v: f64, total: f64| v.abs() <= 1e-17 * total.abs().max(1e-300);
    let mut j = mode + 1.0;
    loop {
        let v = term(j);
        sum += v;
        if (small(v, sum) && j > mode + 3.0) || j > mode + 10_000.0 {
            break;
        }
        j += 1.0;
    }
    let mut j = mode - 1.0;
    while j >= 0.0 {
        let v = term(j);
        sum += v;
        if small(v, sum) && j < mode - 3.0 {
            break;
        }
        j -= 1.0;
    }
    (base + 0.5 * sum).clamp(0.0, 1.0)
}

/// Power of a two-sided t test at level `alpha` with `df` degrees of freedom when the
/// statistic's noncentrality is `nc` (the true difference over its standard error).
pub fn power_two_sided(nc: f64, df: f64, alpha: f64) -> f64 {
    let c = t_quantile(1.0 - alpha / 2.0, df);
    (1.0 - nct_cdf(c, df, nc)) + nct_cdf(-c, df, nc)
}

/// The noncentrality at which a two-sided t test at level `alpha` with `df` degrees of
/// freedom has power `power` (`alpha` < `power` < 1): the minimum detectable effect in
/// standard errors.
pub fn detectable_nc(df: f64, alpha: f64, power: f64) -> f64 {
    let f = |nc: f64| power_two_sided(nc, df, alpha) - power;
    // Power rises with nc from alpha (at 0); double until past the target, then bisect.
    let mut high = 1.0;
    while f(high) < 0.0 && high < 1e6 {
        high *= 2.0;
    }
    bisect(f, 0.0, high)
}

/// The smallest difference, on the scale of the samples, that a two-sided Welch test at
/// `alpha` finds with probability `power`, given the standard error `se` and degrees of
/// freedom `df` it has (or would have).
pub fn minimum_detectable(se: f64, df: f64, alpha: f64, power: f64) -> f64 {
    detectable_nc(df, alpha, power) * se
}

/// Power of the two-sample t test (pooled variance, `n1 + n2 − 2` degrees of freedom) for a
/// standardized difference `d` (difference over the common standard deviation), as
/// statsmodels' `TTestIndPower().power` defines it.
pub fn power_two_sample(d: f64, n1: f64, n2: f64, alpha: f64) -> f64 {
    let nc = d * (n1 * n2 / (n1 + n2)).sqrt();
    power_two_sided(nc, n1 + n2 - 2.0, alpha)
}

/// The trials per side (a real number, as statsmodels' `solve_power` gives it) at which
/// the two-sample t test with equal sides has power `power` for a standardized difference
/// `d` ≠ 0; round up for a plan.
pub fn trials_for_power(d: f64, alpha: f64, power: f64) -> f64 {
    let f = |n: f64| power_two_sample(d, n, n, alpha) - power;
    let mut high = 4.0;
    while f(high) < 0.0 && high < 1e9 {
        high *= 2.0;
    }
    bisect(f, 2.0 + 1e-9, high)
}

/// Welch's degrees of freedom for two sides of `n` trials each with per-trial variances
/// `v1` and `v2`.
fn welch_df(v1: f64, v2: f64, n: f64) -> f64 {
    let (a, b) = (v1 / n, v2 / n);
    (a + b).powi(2) / (a * a / (n - 1.0) + b * b / (n - 1.0))
}

/// The standard error and degrees of freedom of a log ratio from `n` trials a side: Welch's
/// (per-trial variances `v1`, `v2` of the logs) or, for paired trials, the paired t's
/// (`v1` the variance of the per-trial log differences, `v2` unused).
pub fn standard_error(v1: f64, v2: f64, n: u32, paired: bool) -> (f64, f64) {
    let n = f64::from(n);
    if paired {
        ((v1 / n).sqrt(), n - 1.0)
    } else {
        (((v1 + v2) / n).sqrt(), welch_df(v1, v2, n))
    }
}

/// Power of the two-sided test on logs at `alpha` for a true log ratio `delta`, with `n`
/// trials a side (see [`standard_error`]).
pub fn log_test_power(delta: f64, v1: f64, v2: f64, n: u32, paired: bool, alpha: f64) -> f64 {
    let (se, df) = standard_error(v1, v2, n, paired);
    if se == 0.0 {
        return if delta == 0.0 { alpha } else { 1.0 };
    }
    power_two_sided(delta / se, df, alpha)
}

/// The fewest trials a side, from 2, at which `power_at(n)` (rising with n) reaches
/// `target`; `None` when even 100,000 do not.
pub fn fewest_trials(power_at: impl Fn(u32) -> f64, target: f64) -> Option<u32> {
    const MOST: u32 = 100_000;
    if power_at(2) >= target {
        return Some(2);
    }
    let mut high = 4;
    while power_at(high) < target {
        if high >= MOST {
            return None;
        }
        high = (high * 2).min(MOST);
    }
    let mut low = high / 2;
    while high - low > 1 {
        let mid = (low + high) / 2;
        if power_at(mid) >= target {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some(high)
}

/// How a regression gate on the log ratio can end, for a true log ratio `truth`, its
/// bound at log `limit` (`at_most`: the ratio must stay at or below it, else at or above),
/// `n` trials a side (see [`standard_error`]): the probability that the whole 95% CI lies
/// on the good side of the bound (PASS), and that the one-sided test at `alpha` finds the
/// ratio beyond it (FAIL). Holm's adjustment over several gates is left out.
#[allow(clippy::too_many_arguments)] // the gate, the truth and the design, each distinct
pub fn gate_outcomes(
    truth: f64,
    limit: f64,
    at_most: bool,
    v1: f64,
    v2: f64,
    n: u32,
    paired: bool,
    alpha: f64,
) -> (f64, f64) {
    let (se, df) = standard_error(v1, v2, n, paired);
    if se == 0.0 {
        let good = if at_most {
            truth < limit
        } else {
            truth > limit
        };
        return (f64::from(u8::from(good)), f64::from(u8::from(!good)));
    }
    // (estimate − limit) / SE is noncentral t with noncentrality (truth − limit) / se.
    let nc = (truth - limit) / se;
    let two_sided = t_quantile(0.975, df);
    let one_sided = t_quantile(1.0 - alpha, df);
    if at_most {
        (
            nct_cdf(-two_sided, df, nc),
            1.0 - nct_cdf(one_sided, df, nc),
        )
    } else {
        (
            1.0 - nct_cdf(two_sided, df, nc),
            nct_cdf(-one_sided, df, nc),
        )
    }
}

/// The root of an increasing `f` between `low` (f ≤ 0) and `high` (f ≥ 0), to machine
/// precision.
fn bisect(f: impl Fn(f64) -> f64, mut low: f64, mut high: f64) -> f64 {
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if mid <= low || mid >= high {
            break;
        }
        if f(mid) < 0.0 {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noncentral_t_reduces_to_the_central_t_and_is_symmetric() {
        // δ = 0 is Student's t.
        for (t, df) in [(0.7, 3.0), (2.1, 9.5), (-1.3, 4.0)] {
            let central = 1.0 - super::super::dist::t_sf(t, df);
            assert!((nct_cdf(t, df, 0.0) - central).abs() < 1e-13, "{t} {df}");
        }
        // F(t; ν, δ) = 1 − F(−t; ν, −δ).
        let (a, b) = (nct_cdf(1.7, 6.0, 2.2), nct_cdf(-1.7, 6.0, -2.2));
        assert!((a + b - 1.0).abs() < 1e-13);
        // Monotone in δ: a larger noncentrality moves mass up.
        assert!(nct_cdf(1.0, 5.0, 0.5) > nct_cdf(1.0, 5.0, 1.5));
        // Power at δ = 0 is the level.
        assert!((power_two_sided(0.0, 8.0, 0.05) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn plans_need_more_trials_for_smaller_effects_and_noisier_metrics() {
        let v = 0.05f64.powi(2); // 5% per-trial spread on the log scale
        let n = |effect: f64, var: f64| {
            fewest_trials(
                |n| log_test_power(effect.ln_1p(), var, var, n, false, 0.05),
                0.8,
            )
            .unwrap()
        };
        assert!(n(0.05, v) > n(0.10, v));
        assert!(n(0.05, 4.0 * v) > n(0.05, v));
        // The answer has the power, one trial fewer has not.
        let k = n(0.05, v);
        assert!(log_test_power(0.05f64.ln_1p(), v, v, k, false, 0.05) >= 0.8);
        assert!(log_test_power(0.05f64.ln_1p(), v, v, k - 1, false, 0.05) < 0.8);
        // With equal variances Welch's degrees of freedom are the pooled test's, 2n − 2: a
        // 1-sd effect needs statsmodels' 16.71 a side, rounded up.
        let d1 = fewest_trials(|n| log_test_power(0.05, v, v, n, false, 0.05), 0.8).unwrap();
        assert_eq!(d1, 17);
    }

    #[test]
    fn a_gate_passes_without_a_change_and_fails_beyond_its_bound_given_enough_trials() {
        let v = 0.03f64.powi(2);
        let limit = 0.05f64.ln_1p(); // at most 5% slower
        let (pass, fail) = gate_outcomes(0.0, limit, true, v, v, 20, false, 0.05);
        assert!(pass > 0.9 && fail < 0.01, "{pass} {fail}");
        // At the bound itself the test fails at its level: α.
        let (_, fail) = gate_outcomes(limit, limit, true, v, v, 20, false, 0.05);
        assert!((fail - 0.05).abs() < 1e-9, "{fail}");
        // Mirrored for a higher-is-better bound.
        let (pass, fail) = gate_outcomes(0.0, -limit, false, v, v, 20, false, 0.05);
        assert!(pass > 0.9 && fail < 0.01, "{pass} {fail}");
        // With few trials PASS is unlikely.
        let (pass, _) = gate_outcomes(0.0, limit, true, v, v, 3, false, 0.05);
        assert!(pass < 0.5, "{pass}");
    }

    #[test]
    fn the_detectable_effect_has_the_power_asked_for() {
        let nc = detectable_nc(8.0, 0.05, 0.8);
        assert!((power_two_sided(nc, 8.0, 0.05) - 0.8).abs() < 1e-10);
        // With many degrees of freedom it approaches the normal answer, z₀.₉₇₅ + z₀.₈.
        let wide = detectable_nc(1e6, 0.05, 0.8);
        assert!((wide - (1.959_963_984_540_054 + 0.841_621_233_572_914_3)).abs() < 1e-3);
        // …and at few it is well above it: the normal shortcut would promise too much. At
        // five trials a side (8 degrees of freedom) its "80%" is 69% (SciPy: 0.69032), and
        // the detectable change 14% larger (3.20092 / 2.80159), as the README says.
        assert!(detectable_nc(4.0, 0.05, 0.8) > 3.4);
        let shortcut = 1.959_963_984_540_054 + 0.841_621_233_572_914_3;
        assert!((power_two_sided(shortcut, 8.0, 0.05) - 0.690_318_468_826_284).abs() < 1e-6);
        assert!((detectable_nc(8.0, 0.05, 0.8) - 3.200_919_648_650_649).abs() < 1e-6);
    }
}
