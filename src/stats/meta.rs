//! Pooling one comparison measured on several servers: each server is a block, its log
//! ratio an effect with its variance. Fixed effect: the inverse-variance weighted mean.
//! Heterogeneity: Cochran's Q against χ²(k − 1) and I² = (Q − df) / Q. Random effects:
//! DerSimonian–Laird's τ², each weight 1 / (variance + τ²), a wider interval that admits
//! the servers differ. Checked against statsmodels' `combine_effects`
//! (`scripts/stats_reference.py`).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::dist::normal_quantile;

/// Several servers' estimates of one effect, pooled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pooled {
    /// Servers.
    pub k: usize,
    /// Fixed-effect estimate.
    pub fixed: f64,
    /// Its standard error.
    pub fixed_se: f64,
    /// Random-effects estimate (DerSimonian–Laird).
    pub random: f64,
    /// Its standard error.
    pub random_se: f64,
    /// Cochran's Q.
    pub q: f64,
    /// P(χ²(k − 1) ≥ Q): small when the servers disagree beyond chance.
    pub q_p: f64,
    /// I²: the share of the spread between servers not due to chance, 0–1.
    pub i2: f64,
    /// τ²: the variance of the true effects between servers.
    pub tau2: f64,
}

impl Pooled {
    /// The normal `level` interval of the fixed (`random` false) or random-effects estimate.
    pub fn interval(&self, random: bool, level: f64) -> (f64, f64) {
        let z = normal_quantile(0.5 + level / 2.0);
        let (m, se) = if random {
            (self.random, self.random_se)
        } else {
            (self.fixed, self.fixed_se)
        };
        (m - z * se, m + z * se)
    }

    /// I² at or above one half: the servers' effects differ substantially (Higgins &
    /// Thompson's "substantial"), so the random-effects estimate is the one to quote.
    pub fn substantial(&self) -> bool {
        self.i2 >= 0.5
    }
}

/// Pools `effects` with their `variances` (each > 0); `None` with fewer than two.
pub fn pool(effects: &[f64], variances: &[f64]) -> Option<Pooled> {
    let k = effects.len();
    if k < 2 || variances.len() != k || variances.iter().any(|v| v.is_nan() || *v <= 0.0) {
        return None;
    }
    let w: Vec<f64> = variances.iter().map(|v| 1.0 / v).collect();
    let sw: f64 = w.iter().sum();
    let fixed = w.iter().zip(effects).map(|(w, y)| w * y).sum::<f64>() / sw;
    let q: f64 = w
        .iter()
        .zip(effects)
        .map(|(w, y)| w * (y - fixed).powi(2))
        .sum();
    let df = (k - 1) as f64;
    let sw2: f64 = w.iter().map(|w| w * w).sum();
    let tau2 = ((q - df) / (sw - sw2 / sw)).max(0.0);
    let wr: Vec<f64> = variances.iter().map(|v| 1.0 / (v + tau2)).collect();
    let swr: f64 = wr.iter().sum();
    let random = wr.iter().zip(effects).map(|(w, y)| w * y).sum::<f64>() / swr;
    let q_p = ChiSquared::new(df).map_or(f64::NAN, |c| c.sf(q));
    Some(Pooled {
        k,
        fixed,
        fixed_se: (1.0 / sw).sqrt(),
        random,
        random_se: (1.0 / swr).sqrt(),
        q,
        q_p,
        i2: if q > 0.0 {
            ((q - df) / q).max(0.0)
        } else {
            0.0
        },
        tau2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreeing_servers_pool_to_the_fixed_effect_and_disagreeing_ones_widen_it() {
        // Four servers that agree: τ² = 0, I² = 0, random = fixed.
        let p = pool(&[0.10, 0.11, 0.09, 0.10], &[0.001; 4]).unwrap();
        assert_eq!(p.tau2, 0.0);
        assert_eq!(p.i2, 0.0);
        assert!((p.random - p.fixed).abs() < 1e-15 && (p.fixed - 0.10).abs() < 1e-12);
        assert!(!p.substantial());
        // One odd server: Q large, I² substantial, and the random-effects interval wider.
        let p = pool(&[0.10, 0.11, 0.09, 0.40], &[0.001; 4]).unwrap();
        assert!(p.substantial() && p.q_p < 1e-6, "{p:?}");
        assert!(p.random_se > p.fixed_se);
        assert!(pool(&[0.1], &[0.01]).is_none());
    }
}
