//! The distribution functions the tests need, written for accuracy in the tails: a p-value
//! of 1e-12 keeps its digits instead of becoming `1 − 0.999999999999`.
//!
//! Student's t comes from statrs's regularized incomplete beta (good to ~1e-13 relative);
//! the normal tails from `libm::erfc`, a port of the C library's (~1 ulp), because
//! statrs 0.19's `erfc` is off by up to ~1e-10 relative between |z| = 1 and 3.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::function::beta::beta_reg;

/// Two-sided tail probability of Student's t: `P(|T| ≥ |t|)` with `df` > 0 degrees of
/// freedom, computed as the regularized incomplete beta `I_{df/(df+t²)}(df/2, 1/2)`.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t == 0.0 {
        return 1.0;
    }
    if t.is_infinite() {
        return 0.0;
    }
    beta_reg(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// Upper tail of Student's t: `P(T > t)`.
pub fn t_sf(t: f64, df: f64) -> f64 {
    let half = t_two_sided_p(t, df) / 2.0;
    if t > 0.0 { half } else { 1.0 - half }
}

/// Density of Student's t.
fn t_pdf(t: f64, df: f64) -> f64 {
    use statrs::function::gamma::ln_gamma;
    let ln = ln_gamma((df + 1.0) / 2.0)
        - ln_gamma(df / 2.0)
        - 0.5 * (df * std::f64::consts::PI).ln()
        - (df + 1.0) / 2.0 * (t * t / df).ln_1p();
    ln.exp()
}

/// Quantile of Student's t (`p` ∈ (0, 1), `df` > 0): statrs's inverse, polished by Newton
/// steps on the tail-accurate CDF so that a CI carries full precision.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let Ok(dist) = StudentsT::new(0.0, 1.0, df) else {
        return f64::NAN;
    };
    let mut t = dist.inverse_cdf(p);
    for _ in 0..3 {
        // Work in the smaller tail so the residual keeps its digits.
        let residual = if p > 0.5 {
            (1.0 - p) - t_sf(t, df)
        } else {
            t_sf(-t, df) - p
        };
        let step = residual / t_pdf(t, df);
        if !step.is_finite() {
            break;
        }
        t -= step;
        if step.abs() <= 1e-15 * t.abs().max(1.0) {
            break;
        }
    }
    t
}

/// Standard normal CDF, `Φ(z)`.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal upper tail, `1 − Φ(z)`, accurate for large `z`.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Standard normal quantile, `Φ⁻¹(p)`; ±∞ at 0 and 1. (statrs's inverse is accurate to
/// about 1e-15 here.)
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    Normal::new(0.0, 1.0).map_or(f64::NAN, |d| d.inverse_cdf(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn t_tails_and_quantiles_match_scipy() {
        // scipy.stats.t.sf(2.5, 7.3) * 2, t.ppf(0.975, 4), t.ppf(0.975, 13.7), t.sf(40, 3)
        assert!(close(
            t_two_sided_p(2.5, 7.3),
            0.039_650_234_665_600_43,
            1e-9
        ));
        assert!(close(
            t_quantile(0.975, 4.0),
            2.776_445_105_197_793_4,
            1e-12
        ));
        assert!(close(t_quantile(0.975, 13.7), 2.149_201_262_229_809, 1e-9));
        assert!(close(t_quantile(0.025, 13.7), -2.149_201_262_229_809, 1e-9));
        assert!(close(t_sf(40.0, 3.0), 1.719_034_039_457_925_3e-5, 1e-9));
        assert_eq!(t_two_sided_p(0.0, 5.0), 1.0);
    }

    #[test]
    fn normal_tails_and_quantiles() {
        // scipy.stats.norm.sf(8) = 6.22096057427178e-16; norm.ppf(0.975) = 1.959963984540054
        assert!(close(normal_sf(8.0), 6.220_960_574_271_74e-16, 1e-9));
        assert!(close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-12));
        assert!(close(normal_quantile(0.025), -1.959_963_984_540_054, 1e-12));
        assert!(close(normal_cdf(-1.0), 0.158_655_253_931_457_05, 1e-12));
        assert_eq!(normal_quantile(0.5), 0.0);
    }
}
