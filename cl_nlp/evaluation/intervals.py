"""Confidence intervals for the numbers the verdict rests on, in plain numpy (no SciPy at run time).

- :func:`wilson_interval`: an accuracy measured on ``n`` test examples (Wilson 1927, score
  interval without continuity correction — what ``statsmodels``' ``method="wilson"`` computes).
- :func:`paired_difference_interval`: the difference between two accuracies measured on the
  *same* test examples (two models, or two readings of one model), Newcombe's square-and-add
  interval for paired proportions (Newcombe 1998, "Improved confidence intervals for the
  difference between binomial proportions based on paired data", method 10; the correlation
  term with the continuity correction of Fagerland, Lydersen & Laake 2017, ch. 8). Unlike a
  percentile bootstrap it stays honest on small test sets: two models that agree on all 12
  examples get about ±0.2, not [0, 0].
- :func:`unpaired_difference_interval`: the same with the correlation set to 0 — Newcombe's
  interval for independent proportions; used only when a run saved no per-example correctness
  (old results files), and usually wider than the paired one.
- :func:`mover_mean`: the mean of several tasks' estimates from their own intervals (MOVER,
  "method of variance estimates recovery", Zou & Donner 2008), which keeps the small-sample
  behaviour of the per-task intervals — used for averages over tasks.
- :func:`bootstrap_multiplicities` / :func:`percentile_interval`: a seeded, vectorised paired
  bootstrap over test examples, for ratios of sums (shares of a drop), which have no
  closed-form interval.
- :func:`t_interval`: mean of a few values (one per run / seed) with Student's t.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def z_value(level: float) -> float:
    """Two-sided standard-normal quantile: 1.96 for ``level=0.95``."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson_interval(successes, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``successes / n`` (arrays broadcast; NaN where ``n == 0``).

    Example:
        >>> lo, hi = wilson_interval(9, 10)
        >>> round(float(lo), 4), round(float(hi), 4)
        (0.5958, 0.9821)
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_value(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        lo, hi = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    bad = ~(n > 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _square_and_add(p1, p2, n, phi, level):
    l1, u1 = wilson_interval(p1 * n, n, level)
    l2, u2 = wilson_interval(p2 * n, n, level)
    d = p1 - p2
    lower = d - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    upper = d + math.sqrt(max((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2, 0.0))
    return float(d), float(max(lower, -1.0)), float(min(upper, 1.0))


def paired_counts(first: np.ndarray, second: np.ndarray) -> tuple[int, int, int, int]:
    """The paired 2x2 table of two correctness vectors over the same examples:
    (both right, only first right, only second right, both wrong)."""
    x = np.asarray(first, dtype=bool)
    y = np.asarray(second, dtype=bool)
    if x.shape != y.shape:
        raise ValueError(f"paired vectors must cover the same examples, got {x.shape} and {y.shape}")
    return int(np.sum(x & y)), int(np.sum(x & ~y)), int(np.sum(~x & y)), int(np.sum(~x & ~y))


def paired_difference_interval(first: np.ndarray, second: np.ndarray,
                               level: float = 0.95) -> tuple[float, float, float]:
    """``(difference, lower, upper)`` of accuracy(first) − accuracy(second), both measured on the
    same examples (boolean correctness vectors in the same order); NaNs for empty vectors.

    Example:
        >>> first = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
        >>> d, lo, hi = paired_difference_interval(first, np.zeros(10, bool))
        >>> round(d, 2), lo > 0
        (0.8, True)
    """
    a, b, c, d = paired_counts(first, second)
    n = a + b + c + d
    if n == 0:
        return math.nan, math.nan, math.nan
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins > 0:
        cross = a * d - b * c
        # Continuity-corrected correlation (Newcombe 1998; Fagerland et al. 2017): shrunk to 0
        # unless the positive association exceeds n/2, which keeps small tables conservative.
        corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
        phi = corrected / math.sqrt(margins)
    return _square_and_add((a + b) / n, (a + c) / n, n, phi, level)


def unpaired_difference_interval(acc1: float, acc2: float, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """``(difference, lower, upper)`` of two accuracies on ``n`` examples each, without the pairing
    (Newcombe's hybrid score interval for independent proportions)."""
    if not n or any(map(math.isnan, (acc1, acc2))):
        return math.nan, math.nan, math.nan
    return _square_and_add(float(acc1), float(acc2), n, 0.0, level)


def mover_mean(values, lowers, uppers) -> tuple[float, float, float]:
    """``(mean, lower, upper)`` of independent estimates from their own intervals (MOVER; Zou & Donner
    2008, "Construction of confidence limits about effect measures: a general approach", Stat. Med. 27).

    ``lower = mean − sqrt(Σ (v_j − l_j)²) / m`` and ``upper = mean + sqrt(Σ (u_j − v_j)²) / m``: with
    symmetric normal intervals this is exactly the normal interval of the mean; with asymmetric
    (Wilson, Newcombe) intervals it keeps their asymmetry near 0 and 1. NaN bounds if any is missing.
    """
    v, lo, hi = (np.asarray(a, dtype=float) for a in (values, lowers, uppers))
    m = v.size
    if m == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return mean, math.nan, math.nan
    return (mean, mean - math.sqrt(float(np.sum((v - lo) ** 2))) / m,
            mean + math.sqrt(float(np.sum((hi - v) ** 2))) / m)


def bootstrap_multiplicities(n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, n) float32: how often each of ``n`` examples is drawn in each bootstrap resample
    (drawing n with replacement). A resampled accuracy is then ``counts @ correct / n``, so
    every reading of the same examples is resampled with the same draws (a paired bootstrap)."""
    idx = rng.integers(0, n, size=(draws, n))
    flat = idx + (np.arange(draws) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=draws * n).reshape(draws, n).astype(np.float32)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples`` (NaN draws ignored; NaN if fewer than 90% are finite)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0 or s.size < 0.9 * np.size(samples):
        return math.nan, math.nan
    tail = (1 - level) / 2
    lo, hi = np.quantile(s, [tail, 1 - tail])
    return float(lo), float(hi)


def student_t_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (closed form, Abramowitz & Stegun 26.7.3-4)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df == 1:
        return 2 * theta / math.pi
    if df % 2 == 1:
        term, total = c, c
        for k in range(1, (df - 3) // 2 + 1):
            term *= (2 * k) / (2 * k + 1) * c * c
            total += term
        return 2 / math.pi * (theta + s * total)
    term, total = 1.0, 1.0
    for k in range(1, (df - 2) // 2 + 1):
        term *= (2 * k - 1) / (2 * k) * c * c
        total += term
    return s * total


def t_quantile(level: float, df: int) -> float:
    """Two-sided Student-t quantile: the t with P(|T| <= t) = ``level`` (12.706 for 95%, df=1)."""
    lo, hi = 0.0, 1.0
    while student_t_two_sided(hi, df) < level:
        hi *= 2
    for _ in range(200):  # bisection to float precision
        mid = (lo + hi) / 2
        if student_t_two_sided(mid, df) < level:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def t_interval(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """``(mean, lower, upper, n)`` over the finite ``values``; the bounds are NaN with fewer than 2."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(float(x))], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan, 1
    half = t_quantile(level, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return mean, mean - half, mean + half, int(v.size)
