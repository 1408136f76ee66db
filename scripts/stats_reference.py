#!/usr/bin/env python3
"""Reference values for harness's statistics, from SciPy, NumPy and statsmodels.

Writes tests/data/stats_reference.json, which tests/it/stats_reference.rs checks case by
case. Run it through scripts/stats-reference.sh, which makes a throwaway virtual
environment with the pinned versions of scripts/requirements-stats.txt; with those
versions a rerun reproduces the file byte for byte.

Each case is a variant sample `x` and a baseline sample `y` of per-trial values. The
expected values come from library routines wherever one exists (percentiles, t
intervals, Welch's test and its CI, Mann-Whitney U, the BCa bootstrap, Holm); Hedges' g
and Cliff's delta, which SciPy lacks, are written out here from their definitions with
NumPy so that they are at least a second, independent implementation.
"""

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import scipy
import statsmodels
from scipy import special, stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower

CONFIDENCE = 0.95
# Exact Mann-Whitney when there are no ties and n1 + n2 <= this (harness's rule).
EXACT_MAX_N = 120
# Resamples of the high-precision BCa reference, and of the fixed bootstrap
# distributions whose BCa interval harness must reproduce exactly.
BCA_REFERENCE_RESAMPLES = 200_000
BCA_FIXED_RESAMPLES = 500
SEED = 20261128


def f(v):
    """A float for JSON (None for NaN/inf, which JSON cannot carry)."""
    v = float(v)
    return v if math.isfinite(v) else None


def var(a):
    """Sample variance (ddof 1), exactly 0 when every value is the same (as harness)."""
    a = np.asarray(a, float)
    return 0.0 if np.ptp(a) == 0 else np.var(a, ddof=1)


def describe(a):
    a = np.asarray(a, dtype=float)
    n = len(a)
    out = {
        "n": n,
        "mean": f(np.mean(a)),
        "min": f(np.min(a)),
        "max": f(np.max(a)),
        "median": f(np.median(a)),
        "p10": f(np.percentile(a, 10)),
        "p90": f(np.percentile(a, 90)),
        "variance": None,
        "std_dev": None,
        "cv": None,
        "ci_low": None,
        "ci_high": None,
    }
    if n >= 2:
        v = var(a)
        sd = math.sqrt(v)
        out["variance"] = f(v)
        out["std_dev"] = f(sd)
        out["cv"] = f(sd / abs(np.mean(a))) if np.mean(a) != 0 else None
        if sd > 0:
            lo, hi = stats.t.interval(CONFIDENCE, n - 1, loc=np.mean(a), scale=stats.sem(a))
        else:
            lo = hi = np.mean(a)
        out["ci_low"], out["ci_high"] = f(lo), f(hi)
    return out


def welch(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    # Both samples without spread (max = min): t is undefined. Test the values, not the
    # variance: for five copies of ln 7 the variance is a rounding residue of ~6e-32, which
    # SciPy turns into t = 1e15 and p = 1e-60 for two constants.
    if len(x) < 2 or len(y) < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return None
    r = stats.ttest_ind(x, y, equal_var=False)
    ci = r.confidence_interval(CONFIDENCE)
    return {"t": f(r.statistic), "df": f(r.df), "p": f(r.pvalue), "low": f(ci.low), "high": f(ci.high)}


def welch_log(x, y):
    if min(x) <= 0 or min(y) <= 0:
        return None
    w = welch(np.log(x), np.log(y))
    if w is None:
        return None
    diff = np.mean(np.log(x)) - np.mean(np.log(y))
    return {
        "t": w["t"],
        "df": w["df"],
        "p": w["p"],
        "ratio": f(math.exp(diff)),
        "ratio_low": f(math.exp(w["low"])),
        "ratio_high": f(math.exp(w["high"])),
    }


def mann_whitney(x, y):
    ties = len(np.unique(np.concatenate([x, y]))) < len(x) + len(y)
    method = "exact" if not ties and len(x) + len(y) <= EXACT_MAX_N else "asymptotic"
    r = stats.mannwhitneyu(x, y, alternative="two-sided", method=method, use_continuity=True)
    p = r.pvalue
    if not math.isfinite(p):
        # Every value tied: SciPy divides 0 by 0; harness reports p = 1 (no evidence).
        p = 1.0
    return {"u": f(r.statistic), "p": f(p), "method": method}


def hedges_g(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    n1, n2 = len(x), len(y)
    df = n1 + n2 - 2
    if df < 2:
        return None
    pooled = math.sqrt(((n1 - 1) * var(x) + (n2 - 1) * var(y)) / df)
    if pooled == 0:
        return None
    j = math.exp(special.gammaln(df / 2) - math.log(math.sqrt(df / 2)) - special.gammaln((df - 1) / 2))
    return f(j * (np.mean(x) - np.mean(y)) / pooled)


def cliffs_delta(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    return f(np.sign(x[:, None] - y[None, :]).mean())


def median_ratio(a, b, axis=-1):
    return np.median(a, axis=axis) / np.median(b, axis=axis)


# Cases that also carry a fixed bootstrap distribution (kept to a few: they are long).
BCA_FIXED_CASES = {
    "normal_n10_shift1.2", "unequal_5_vs_9", "unequal_20_vs_6", "lognormal_n12_r0.8_s0.5",
    "ties_rounded_n10", "identical_n10", "constant_baseline_n9",
}


def bootstrap(name, x, y, seed):
    if min(x) <= 0 or min(y) <= 0 or len(x) < 2 or len(y) < 2:
        return None
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return None
    data = (np.asarray(x, float), np.asarray(y, float))
    ref = stats.bootstrap(
        data, median_ratio, vectorized=True, n_resamples=BCA_REFERENCE_RESAMPLES,
        confidence_level=CONFIDENCE, method="BCa", rng=np.random.default_rng(seed),
    )
    out = {
        "estimate": f(median_ratio(*data)),
        "resamples": BCA_REFERENCE_RESAMPLES,
        "low": f(ref.confidence_interval.low),
        "high": f(ref.confidence_interval.high),
        "fixed": None,
    }
    if name in BCA_FIXED_CASES:
        fixed = stats.bootstrap(
            data, median_ratio, vectorized=True, n_resamples=BCA_FIXED_RESAMPLES,
            confidence_level=CONFIDENCE, method="BCa", rng=np.random.default_rng(seed + 1),
        )
        out["fixed"] = {
            "replicates": [f(v) for v in fixed.bootstrap_distribution],
            "low": f(fixed.confidence_interval.low),
            "high": f(fixed.confidence_interval.high),
        }
    return out


def samples(rng):
    """(name, x, y, bootstrap?) for every case."""
    def normal(n, mean, sd, digits=6):
        return np.round(rng.normal(mean, sd, n), digits)

    def lognormal(n, median, sigma, digits=6):
        return np.round(median * rng.lognormal(0.0, sigma, n), digits)

    out = []
    # Normal per-trial throughputs, equal sizes, n from 3 to 40; every other one shifted.
    for i, n in enumerate([3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40]):
        shift = 1.0 + 0.1 * (i % 3)
        out.append((f"normal_n{n}_shift{shift:.1f}", normal(n, 100 * shift, 8), normal(n, 100, 8), n >= 8))
    # Unequal sizes both ways (n1 < n2 is where statrs's exact Mann-Whitney fails).
    for n1, n2 in [(3, 7), (7, 3), (4, 11), (11, 4), (5, 9), (9, 5), (6, 20), (20, 6), (10, 40), (40, 10)]:
        out.append((f"unequal_{n1}_vs_{n2}", normal(n1, 105, 10), normal(n2, 100, 10), min(n1, n2) >= 5))
    # Skewed latencies (lognormal), some far apart.
    for n, ratio, sigma in [(5, 1.0, 0.3), (8, 1.2, 0.25), (12, 0.8, 0.5), (20, 1.5, 0.4), (30, 1.05, 0.6), (40, 1.0, 0.8)]:
        out.append((f"lognormal_n{n}_r{ratio}_s{sigma}", lognormal(n, 250 * ratio, sigma), lognormal(n, 250, sigma), n >= 8))
    # Ties: values rounded to whole numbers, or drawn from a few levels.
    for n, digits in [(6, 0), (10, 0), (15, 0), (25, 0)]:
        out.append((f"ties_rounded_n{n}", normal(n, 52, 2, digits), normal(n, 50, 2, digits), n >= 10))
    for n1, n2 in [(5, 5), (8, 12), (30, 30)]:
        levels = np.array([10.0, 11.0, 12.0, 13.0])
        out.append((f"ties_levels_{n1}_vs_{n2}", rng.choice(levels, n1), rng.choice(levels, n2), False))
    # Identical samples (A/A with the very same numbers).
    for n in [3, 10, 25]:
        a = normal(n, 80, 5)
        out.append((f"identical_n{n}", a.copy(), a.copy(), n >= 10))
    # One sample with zero variance, either side; and both constant.
    out.append(("constant_variant_n6", np.full(6, 120.0), normal(6, 100, 5), False))
    out.append(("constant_baseline_n9", normal(9, 100, 5), np.full(9, 95.0), True))
    out.append(("both_constant_equal_n4", np.full(4, 7.0), np.full(4, 7.0), False))
    out.append(("both_constant_different_n5", np.full(5, 8.0), np.full(5, 7.0), False))
    # Complete separation, tiny samples: the smallest exact p-values.
    out.append(("separated_n3", np.array([10.0, 11.0, 12.0]), np.array([1.0, 2.0, 3.0]), False))
    out.append(("separated_n3_vs_n5", np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0, 7.0, 8.0]), False))
    # A value that is not positive: no ratio, no bootstrap.
    out.append(("contains_zero_n5", np.array([0.0, 1.5, 2.0, 2.5, 3.0]), normal(5, 2, 0.5), False))
    # Huge effect: p-values far in the tail.
    out.append(("far_apart_n20", normal(20, 200, 3), normal(20, 100, 3), False))
    # Mann-Whitney's switch from the exact null to the normal approximation: n1 + n2 = 120
    # is exact, 121 is not (no ties). Drawn from their own generator so that the cases
    # above, and the Holm cases after, keep their values.
    edge = np.random.default_rng(SEED + 120)
    out.append(("mw_exact_at_120_n60_vs_60", edge.normal(104, 10, 60), edge.normal(100, 10, 60), False))
    out.append(("mw_normal_at_121_n60_vs_61", edge.normal(104, 10, 60), edge.normal(100, 10, 61), False))
    return out


def holm_cases(rng):
    cases = [
        [0.01, 0.04, 0.03, 0.005],
        [0.5],
        [0.01, 0.01, 0.01],
        [1e-12, 0.049, 0.051, 0.9, 0.2],
        [0.7, 0.9, 0.95],
    ]
    for m in [8, 15, 40]:
        p = rng.uniform(0, 1, m) ** 3  # many small p-values
        cases.append([float(v) for v in p])
    return [{"p": c, "adjusted": [f(v) for v in multipletests(c, method="holm")[1]]} for c in cases]


def power_cases():
    """The noncentral t CDF (SciPy) and the two-sample t test's power, trials for a given
    power and detectable standardized effect (statsmodels' TTestIndPower)."""
    analysis = TTestIndPower()
    nct = [
        {"t": t, "df": df, "nc": nc, "cdf": f(stats.nct.cdf(t, df, nc))}
        for t, df, nc in [
            (2.0, 4.0, 1.0), (2.0, 4.0, 3.0), (-1.5, 7.5, 0.8), (0.3, 2.0, -1.2),
            (2.776, 4.0, 3.2), (1.2, 30.0, 6.0), (-2.1, 12.0, -2.5), (5.0, 3.0, 9.0),
            (0.0, 10.0, 2.0), (2.2, 58.0, 0.0), (3.5, 9.0, 12.0),
        ]
    ]
    power = [
        {"d": d, "n": n, "alpha": a,
         "power": f(analysis.power(effect_size=d, nobs1=n, alpha=a, ratio=1.0))}
        for d in [0.2, 0.8, 1.5, 3.0]
        for n in [3, 5, 12, 40]
        for a in [0.05, 0.01]
    ]
    # statsmodels answers NaN where the power rounds to 1; those cases say nothing.
    power = [c for c in power if c["power"] is not None]
    trials = [
        {"d": d, "power": p, "alpha": 0.05,
         "n": f(analysis.solve_power(effect_size=d, nobs1=None, alpha=0.05, power=p, ratio=1.0))}
        for d in [0.5, 1.0, 2.0, 4.0]
        for p in [0.8, 0.9]
    ]
    effect = [
        {"n": n, "power": 0.8, "alpha": 0.05,
         "d": f(analysis.solve_power(effect_size=None, nobs1=n, alpha=0.05, power=0.8, ratio=1.0))}
        for n in [3, 5, 10, 20, 50]
    ]
    return {"nct_cdf": nct, "power": power, "trials": trials, "effect": effect}


def meta_cases():
    """Pooling one effect over servers (statsmodels' combine_effects, DerSimonian-Laird):
    fixed and random effects with their standard errors, Cochran's Q, I2 and tau2."""
    cases = [
        ([0.10, 0.11, 0.09, 0.10], [0.001, 0.001, 0.001, 0.001]),
        ([0.10, 0.11, 0.09, 0.40], [0.001, 0.002, 0.0015, 0.001]),
        ([0.1, 0.2, 0.05, 0.4], [0.01, 0.02, 0.015, 0.01]),
        ([-0.02, 0.04], [0.0004, 0.0009]),
        ([0.18, 0.16, 0.21, 0.17, 0.02, 0.19], [0.0003, 0.0005, 0.0004, 0.0002, 0.0003, 0.0006]),
    ]
    out = []
    for eff, var in cases:
        r = combine_effects(np.array(eff), np.array(var), method_re="dl")
        out.append({
            "effects": eff, "variances": var,
            "fixed": f(r.mean_effect_fe), "fixed_se": f(r.sd_eff_w_fe),
            "random": f(r.mean_effect_re), "random_se": f(r.sd_eff_w_re),
            "q": f(r.q), "q_p": f(stats.chi2.sf(r.q, len(eff) - 1)),
            "i2": f(r.i2), "tau2": f(r.tau2),
        })
    return out


def main():
    rng = np.random.default_rng(SEED)
    cases = []
    for i, (name, x, y, with_bootstrap) in enumerate(samples(rng)):
        x, y = [float(v) for v in x], [float(v) for v in y]
        cases.append({
            "name": name,
            "x": x,
            "y": y,
            "describe_x": describe(x),
            "describe_y": describe(y),
            "welch": welch(x, y),
            "welch_log": welch_log(x, y),
            "mann_whitney": mann_whitney(np.array(x), np.array(y)),
            "hedges_g": hedges_g(x, y),
            "cliffs_delta": cliffs_delta(x, y),
            "bootstrap": bootstrap(name, x, y, SEED + 1000 * i) if with_bootstrap else None,
        })
    here = Path(__file__).resolve().parent
    sha256 = lambda name: hashlib.sha256((here / name).read_bytes()).hexdigest()
    doc = {
        "generator": "scripts/stats_reference.py",
        # What made this file: `make test` checks that neither changed since, so a changed
        # script or pin cannot go unregenerated.
        "script_sha256": sha256("stats_reference.py"),
        "requirements_sha256": sha256("requirements-stats.txt"),
        "versions": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
        },
        "confidence": CONFIDENCE,
        "cases": cases,
        "holm": holm_cases(rng),
        "power": power_cases(),
        "meta": meta_cases(),
    }
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/stats_reference.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{out}: {len(cases)} cases, {len(doc['holm'])} Holm cases")


if __name__ == "__main__":
    main()
