//! Drift: the least-squares trend of a series over time (rounds), with its CI and the
//! t-test of "no trend".

use serde::{Deserialize, Serialize};

use super::dist;

/// The straight-line trend of `y` over `x`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Points fitted.
    pub n: usize,
    /// Least-squares slope: change of `y` per unit of `x`.
    pub slope: f64,
    /// Lower end of the slope's CI (Student t, n − 2 degrees of freedom).
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Two-sided p of "slope = 0".
    pub p: f64,
}

/// Ordinary least squares of `y` on `x` with a `level` CI of the slope. `None` with fewer
/// than 4 points (a trend over 3 has one degree of freedom), when `x` does not vary, or
/// when the points lie exactly on a line (no residual spread: the test is undefined).
pub fn trend(points: &[(f64, f64)], level: f64) -> Option<Trend> {
    let n = points.len();
    if n < 4 {
        return None;
    }
    let nf = n as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let rss: f64 = points
        .iter()
        .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
        .sum();
    let df = nf - 2.0;
    let se = (rss / df / sxx).sqrt();
    // A residual sum that is rounding noise relative to the values is no spread at all.
    let scale: f64 = points
        .iter()
        .map(|p| p.1 * p.1)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    if rss <= scale * 1e-24 || se <= 0.0 {
        return None;
    }
    let t = slope / se;
    let half = dist::t_quantile(0.5 + level / 2.0, df) * se;
    Some(Trend {
        n,
        slope,
        low: slope - half,
        high: slope + half,
        p: dist::t_two_sided_p(t, df),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_fit() {
        // x = 0..5, y = 1, 3, 2, 5, 4: slope = sxy/sxx = 8/10;
        // scipy.stats.linregress gives p = 0.10408803866182778.
        let pts: Vec<(f64, f64)> = [1.0, 3.0, 2.0, 5.0, 4.0]
            .iter()
            .enumerate()
            .map(|(i, &y)| (i as f64, y))
            .collect();
        let t = trend(&pts, 0.95).unwrap();
        assert!((t.slope - 0.8).abs() < 1e-12);
        assert!((t.p - 0.104_088_038_661_827_78).abs() < 1e-12, "{}", t.p);
        assert!(t.low < 0.0 && t.high > 0.8);
    }

    #[test]
    fn undefined_without_enough_points_or_spread() {
        assert!(trend(&[(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)], 0.95).is_none());
        let line: Vec<(f64, f64)> = (0..6).map(|i| (f64::from(i), 0.1 * f64::from(i))).collect();
        assert!(trend(&line, 0.95).is_none());
        let same_x: Vec<(f64, f64)> = (0..6).map(|i| (1.0, f64::from(i))).collect();
        assert!(trend(&same_x, 0.95).is_none());
    }
}
