"""Representation drift as CKA (centered kernel alignment, Kornblith et al. 2019), biased and debiased.

For two feature matrices of the same n examples, X (n, p) and Y (n, q), with linear kernels
K = XXᵀ and L = YYᵀ:

- **linear CKA** (biased): ``HSIC_b(K, L) / sqrt(HSIC_b(K, K) · HSIC_b(L, L))`` with the plug-in
  HSIC ``tr(KHLH)``; equals ``||Yᵀ X||_F² / (||Xᵀ X||_F · ||Yᵀ Y||_F)`` on column-centred
  features. With few examples per dimension it is biased upwards: independent isotropic
  features of 450 × 384 give about 0.46.
- **debiased CKA**: the same ratio with the unbiased HSIC estimator of Song et al. (2012,
  "Feature selection via dependence maximization", JMLR 13), as used for CKA by Nguyen,
  Raghu & Kornblith (2021)::

      HSIC_u(K, L) = [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3))

  where K̃, L̃ are K, L with their diagonals set to 0. Its expectation for independent
  features is 0; it can come out slightly negative.

:func:`cka_null` gives the level the drift is read against: both estimators on the same
features with the pairing of examples shuffled (a permutation of Y's rows), i.e. what
unrelated features of exactly these sizes and spectra score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _check(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"need two (n, dims) matrices over the same n examples, got {x.shape} and {y.shape}")
    return x, y


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear (biased) CKA between ``x`` (n, p) and ``y`` (n, q), rows being the same n examples.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 4))
        >>> round(linear_cka(x, 3 * x), 6)
        1.0
    """
    x, y = _check(x, y)
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else float("nan")


def _zero_diagonal_gram(x: np.ndarray) -> np.ndarray:
    k = x @ x.T
    np.fill_diagonal(k, 0.0)
    return k


def _hsic_unbiased(k: np.ndarray, l: np.ndarray, l_rows: np.ndarray | None = None) -> float:
    """Song et al.'s unbiased HSIC of zero-diagonal Gram matrices (``l_rows`` = L̃1 when precomputed)."""
    n = len(k)
    k_rows = k.sum(1)
    l_rows = l.sum(1) if l_rows is None else l_rows
    trace = float(np.sum(k * l))
    return (trace + k_rows.sum() * l_rows.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(k_rows @ l_rows)) / (
        n * (n - 3))


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased linear CKA (unbiased HSIC); NaN with fewer than 4 examples or a degenerate side.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 4))
        >>> round(debiased_cka(x, 2 * x + 1), 6)
        1.0
    """
    x, y = _check(x, y)
    if len(x) < 4:
        return math.nan
    k, l = _zero_diagonal_gram(x - x.mean(0)), _zero_diagonal_gram(y - y.mean(0))
    denom = _hsic_unbiased(k, k) * _hsic_unbiased(l, l)
    return float(_hsic_unbiased(k, l) / math.sqrt(denom)) if denom > 0 else math.nan


@dataclass(frozen=True)
class CkaNull:
    """Both CKAs of the same features with the pairing of examples shuffled ``permutations`` times."""

    linear_mean: float
    debiased_mean: float
    debiased_hi: float  # 95th percentile of the shuffled debiased CKA
    permutations: int


def cka_null(x: np.ndarray, y: np.ndarray, permutations: int = 50, seed: int = 0) -> CkaNull:
    """What unrelated features of these sizes score: CKA of ``x`` against ``y`` with shuffled rows.

    One Gram matrix per side is computed once; each permutation costs O(n²).
    """
    x, y = _check(x, y)
    n = len(x)
    if n < 4 or permutations < 1:
        return CkaNull(math.nan, math.nan, math.nan, 0)
    xc, yc = x - x.mean(0), y - y.mean(0)
    k, l = xc @ xc.T, yc @ yc.T  # centred features: HKH = K, so the biased HSIC is tr(KL)
    k_norm, l_norm = np.linalg.norm(k), np.linalg.norm(l)
    k0, l0 = _zero_diagonal_gram(xc), _zero_diagonal_gram(yc)
    kk, ll = _hsic_unbiased(k0, k0), _hsic_unbiased(l0, l0)
    l0_rows = l0.sum(1)
    rng = np.random.default_rng(seed)
    linear, debiased = [], []
    for _ in range(permutations):
        p = rng.permutation(n)
        if k_norm > 0 and l_norm > 0:
            linear.append(float(np.sum(k * l[np.ix_(p, p)])) / (k_norm * l_norm))
        if kk > 0 and ll > 0:
            debiased.append(_hsic_unbiased(k0, l0[np.ix_(p, p)], l0_rows[p]) / math.sqrt(kk * ll))
    lin = float(np.mean(linear)) if linear else math.nan
    if not debiased:
        return CkaNull(lin, math.nan, math.nan, permutations)
    return CkaNull(lin, float(np.mean(debiased)), float(np.quantile(debiased, 0.95)), permutations)
