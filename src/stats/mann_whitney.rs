//! The Mann–Whitney U test, two-sided, written here rather than taken from statrs 0.19,
//! whose exact method returns the complement of the p-value when n₁ ≤ n₂.
//!
//! - **Exact** when there are no ties and n₁ + n₂ ≤ [`EXACT_MAX_N`]: the null distribution
//!   of U is the coefficient list of the Gaussian binomial `[n₁+n₂ choose n₁]_q`, built in
//!   exact 128-bit integers, and `p = min(1, 2·P(U ≥ max(U₁, U₂)))`.
//! - **Asymptotic** otherwise: the normal approximation with the tie-corrected variance
//!   `n₁n₂/12 · ((n+1) − Σ(t³ − t) / (n(n−1)))` and a continuity correction of ½.
//!
//! Both match SciPy's `mannwhitneyu(x, y, method=…)`.

use serde::{Deserialize, Serialize};

use super::{Sample, dist};

/// Largest n₁ + n₂ for the exact distribution: the counts stay below
/// `C(120, 60) ≈ 9.7e34`, well inside `i128`.
pub const EXACT_MAX_N: usize = 120;

/// How the p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact null distribution of U (no ties).
    Exact,
    /// Normal approximation with tie and continuity corrections.
    Asymptotic,
}

/// Result of the test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U of the first sample: pairs where it is larger, ties counting ½.
    pub u: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// How `p` was computed.
    pub method: Method,
}

/// Midranks of `x` ∪ `y` → (rank sum of `x`, Σ(t³ − t) over tie groups, any ties).
fn rank_sum(x: &Sample, y: &Sample) -> (f64, f64, bool) {
    let (xs, ys) = (x.sorted(), y.sorted());
    let (mut i, mut j) = (0, 0);
    let mut rank = 0usize; // values ranked so far
    let (mut sum_x, mut tie_term, mut ties) = (0.0, 0.0, false);
    while i < xs.len() || j < ys.len() {
        let v = match (xs.get(i), ys.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => unreachable!("loop condition"),
        };
        let from_x = xs[i..].iter().take_while(|&&a| a == v).count();
        let from_y = ys[j..].iter().take_while(|&&b| b == v).count();
        let t = from_x + from_y;
        // Ranks rank+1 ..= rank+t share their mean.
        let mid = rank as f64 + (t as f64 + 1.0) / 2.0;
        sum_x += mid * from_x as f64;
        if t > 1 {
            ties = true;
            tie_term += (t as f64).powi(3) - t as f64;
        }
        rank += t;
        i += from_x;
        j += from_y;
    }
    (sum_x, tie_term, ties)
}

/// Two-sided Mann–Whitney U test of `x` against `y`, method chosen as the module says.
/// Cost O(n log n) asymptotic; O(n₁² n₂) exact.
pub fn mann_whitney(x: &Sample, y: &Sample) -> MannWhitney {
    let (sum_x, tie_term, ties) = rank_sum(x, y);
    let (n1, n2) = (x.len(), y.len());
    let u = sum_x - (n1 * (n1 + 1)) as f64 / 2.0;
    if !ties && n1 + n2 <= EXACT_MAX_N {
        MannWhitney {
            u,
            p: exact_p(u, n1, n2),
            method: Method::Exact,
        }
    } else {
        MannWhitney {
            u,
            p: asymptotic_p(u, n1, n2, tie_term),
            method: Method::Asymptotic,
        }
    }
}

/// Exact two-sided p for U (an integer when there are no ties).
pub fn exact_p(u: f64, n1: usize, n2: usize) -> f64 {
    let counts = u_distribution(n1, n2);
    let total: i128 = counts.iter().sum();
    // P(U ≥ u_big) with u_big the larger of U₁ and U₂ = n₁n₂ − U₁ (≥ the mean, so
    // doubling it gives the two-sided p; at the mean itself that exceeds 1 and is capped).
    let u_big = u.max((n1 * n2) as f64 - u).round() as usize;
    let upper: i128 = counts[u_big.min(counts.len())..].iter().sum();
    (2.0 * upper as f64 / total as f64).min(1.0)
}

/// Number of arrangements giving each U = 0 ..= n₁n₂ under the null: the coefficients of
/// `∏_{i=1}^{n₁} (1 − q^{n₂+i}) / (1 − q^i)`. After step i the polynomial is the Gaussian
/// binomial `[n₂+i choose i]_q`, so dividing by `1 − q^i` is exact.
fn u_distribution(n1: usize, n2: usize) -> Vec<i128> {
    let (small, large) = (n1.min(n2), n1.max(n2));
    let len = small * large + 1;
    let mut c = vec![0i128; len];
    c[0] = 1;
    for i in 1..=small {
        let k = large + i;
        // × (1 − q^k), high degrees first so each term uses the old coefficient.
        for m in (k..len).rev() {
            c[m] -= c[m - k];
        }
        // ÷ (1 − q^i): c[m] += c[m − i], low degrees first.
        for m in i..len {
            c[m] += c[m - i];
        }
    }
    c
}

/// Normal approximation with tie-corrected variance and continuity correction.
pub fn asymptotic_p(u: f64, n1: usize, n2: usize, tie_term: f64) -> f64 {
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let n = n1f + n2f;
    let mean = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let u_big = u.max(n1f * n2f - u);
    if var <= 0.0 {
        // Every value tied: no evidence either way.
        return 1.0;
    }
    let z = (u_big - mean - 0.5) / var.sqrt();
    (2.0 * dist::normal_sf(z)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Sample {
        Sample::new(v.iter().copied()).unwrap()
    }

    #[test]
    fn u_distribution_is_the_gaussian_binomial() {
        // [4 choose 2]_q = 1 + q + 2q² + q³ + q⁴
        assert_eq!(u_distribution(2, 2), vec![1, 1, 2, 1, 1]);
        let c = u_distribution(5, 7);
        assert_eq!(c.iter().sum::<i128>(), 792); // C(12, 5)
        assert!(
            c.iter().zip(c.iter().rev()).all(|(a, b)| a == b),
            "symmetric"
        );
        // The largest case fits: C(120, 60).
        let big = u_distribution(60, 60);
        assert_eq!(
            big.iter().sum::<i128>(),
            96_614_908_840_363_322_603_893_139_521_372_656
        );
    }

    #[test]
    fn exact_p_is_symmetric_in_the_samples() {
        // statrs 0.19 gets one of these two wrong (it returns the complement when n₁ ≤ n₂).
        let (x, y) = (s(&[1.1, 2.2, 3.3]), s(&[4.4, 5.5, 6.6, 7.7, 8.8]));
        let (a, b) = (mann_whitney(&x, &y), mann_whitney(&y, &x));
        assert_eq!(a.method, Method::Exact);
        assert_eq!(a.u, 0.0);
        assert_eq!(b.u, 15.0);
        // Complete separation: p = 2 / C(8, 3) = 2 / 56.
        assert!((a.p - 2.0 / 56.0).abs() < 1e-15);
        assert_eq!(a.p, b.p);
    }

    #[test]
    fn ties_use_the_normal_approximation_and_all_tied_is_p_one() {
        let r = mann_whitney(&s(&[1.0, 2.0, 2.0]), &s(&[2.0, 3.0, 4.0]));
        assert_eq!(r.method, Method::Asymptotic);
        assert_eq!(r.u, 1.0); // only the two (2, 2) pairs, each ½
        let all = mann_whitney(&s(&[5.0, 5.0]), &s(&[5.0, 5.0, 5.0]));
        assert_eq!(all.p, 1.0);
    }
}
