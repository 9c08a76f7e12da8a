"""Interval code against independent computations: statsmodels, SciPy, brute force, simulation."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from cl_nlp.evaluation.intervals import (
    bootstrap_multiplicities,
    mover_mean,
    paired_counts,
    paired_difference_interval,
    percentile_interval,
    student_t_two_sided,
    t_interval,
    t_quantile,
    unpaired_difference_interval,
    wilson_interval,
)


@pytest.mark.parametrize("level", [0.95, 0.975, 0.99, 0.9875])
def test_wilson_matches_statsmodels(level):
    for n in (1, 3, 12, 50, 450, 3000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            lo, hi = wilson_interval(k, n, level)
            ref = proportion_confint(k, n, alpha=1 - level, method="wilson")
            assert (float(lo), float(hi)) == pytest.approx(ref, abs=1e-12), (k, n)


def test_wilson_is_vectorised_and_nan_without_examples():
    lo, hi = wilson_interval(np.array([1, 5]), np.array([10, 0]))
    assert lo[0] == pytest.approx(proportion_confint(1, 10, method="wilson")[0]) and np.isnan(lo[1]) and np.isnan(hi[1])


def newcombe_paired_reference(a, b, c, d, level):
    """Newcombe's square-and-add paired interval restated from Fagerland, Lydersen & Laake (2017),
    ch. 8, on statsmodels' Wilson intervals."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = proportion_confint(a + b, n, alpha=1 - level, method="wilson")
    l2, u2 = proportion_confint(a + c, n, alpha=1 - level, method="wilson")
    if 0 in (a + b, c + d, a + c, b + d):
        psi = 0.0
    else:
        big_a = a * d - b * c
        psi = (big_a - n / 2) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d)) if big_a > n / 2 else (
            0.0 if big_a >= 0 else big_a / math.sqrt((a + b) * (c + d) * (a + c) * (b + d)))
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2))
    high = p1 - p2 + math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1))
    return p1 - p2, low, high


def vectors(a, b, c, d, seed=0):
    """Two correctness vectors whose paired table is (a, b, c, d), in shuffled order."""
    x = np.array([1] * a + [1] * b + [0] * c + [0] * d, bool)
    y = np.array([1] * a + [0] * b + [1] * c + [0] * d, bool)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


@pytest.mark.parametrize("table", [(59, 6, 16, 80), (1, 1, 7, 12), (7, 4, 0, 1), (11, 0, 0, 1), (300, 20, 5, 125),
                                   (0, 3, 2, 5), (40, 0, 0, 0)])
@pytest.mark.parametrize("level", [0.95, 0.99])
def test_paired_interval_matches_the_textbook_formula(table, level):
    x, y = vectors(*table)
    assert paired_counts(x, y) == table
    d, lo, hi = paired_difference_interval(x, y, level)
    ref = newcombe_paired_reference(*table, level)
    assert (d, lo, hi) == pytest.approx((ref[0], max(ref[1], -1), min(ref[2], 1)), abs=1e-12)


def test_paired_interval_covers_at_small_n_where_the_percentile_bootstrap_does_not():
    # Truth: accuracy 0.90 vs 0.80 with no example gained (a pure loss of 10 points), 12 examples.
    rng = np.random.default_rng(1)
    truth, n, sims = 0.10, 12, 400
    covered = boot_covered = 0
    for _ in range(sims):
        cell = rng.choice(3, size=n, p=[0.8, 0.1, 0.1])  # both right, only first right, both wrong
        x, y = cell <= 1, cell == 0
        _, lo, hi = paired_difference_interval(x, y)
        covered += lo <= truth <= hi
        diffs = bootstrap_multiplicities(n, 1000, rng) @ (x.astype(np.float32) - y.astype(np.float32)) / n
        blo, bhi = percentile_interval(diffs)
        boot_covered += blo <= truth <= bhi
    assert covered / sims >= 0.95
    assert boot_covered / sims < 0.85  # why the per-task intervals are not bootstrapped


def test_unpaired_interval_matches_statsmodels_newcombe():
    for k1, k2, n in ((40, 30, 50), (12, 3, 12), (450, 400, 450), (0, 5, 20)):
        d, lo, hi = unpaired_difference_interval(k1 / n, k2 / n, n)
        ref = confint_proportions_2indep(k1, n, k2, n, method="newcomb", compare="diff")
        assert d == pytest.approx(k1 / n - k2 / n) and (lo, hi) == pytest.approx(ref, abs=1e-10)


def test_bootstrap_multiplicities_equal_explicit_resampling():
    x = np.random.default_rng(3).random(37) < 0.6
    counts = bootstrap_multiplicities(37, 500, np.random.default_rng(9))
    idx = np.random.default_rng(9).integers(0, 37, size=(500, 37))
    brute = np.array([x[row].mean() for row in idx])
    assert counts.sum(1).tolist() == [37.0] * 500
    assert counts @ x.astype(np.float32) / 37 == pytest.approx(brute, abs=1e-6)


def test_mover_reduces_to_the_normal_interval_with_symmetric_intervals():
    values, se = np.array([0.1, -0.3, 0.25]), np.array([0.02, 0.05, 0.03])
    z = stats.norm.ppf(0.975)
    mean, lo, hi = mover_mean(values, values - z * se, values + z * se)
    half = z * math.sqrt(np.sum(se ** 2)) / 3
    assert (mean, lo, hi) == pytest.approx((values.mean(), values.mean() - half, values.mean() + half))
    assert mover_mean([0.5], [0.4], [0.7]) == pytest.approx((0.5, 0.4, 0.7))
    assert math.isnan(mover_mean([0.5, 0.2], [0.4, float("nan")], [0.7, 0.3])[1])


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 10, 29])
def test_student_t_matches_scipy(df):
    for t in (0.3, 1.0, 2.5, 8.0):
        assert student_t_two_sided(t, df) == pytest.approx(stats.t.cdf(t, df) - stats.t.cdf(-t, df), abs=1e-12)
    for level in (0.9, 0.95, 0.99):
        assert t_quantile(level, df) == pytest.approx(stats.t.ppf(0.5 + level / 2, df), rel=1e-10)


def test_t_interval_matches_scipy():
    values = [0.12, 0.18, 0.09, 0.15]
    mean, lo, hi, n = t_interval(values)
    ref = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
    assert n == 4 and mean == pytest.approx(np.mean(values)) and (lo, hi) == pytest.approx(ref)
    assert t_interval([0.3, float("nan")])[3] == 1 and math.isnan(t_interval([0.3])[1])
