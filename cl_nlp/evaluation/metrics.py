"""Continual-learning metrics as pure functions of an accuracy matrix.

Conventions (0-based indices here; the papers cited below index tasks from 1):
``R[i, j]`` is the accuracy on task ``j`` after training through task ``i``; cells never
evaluated are NaN. ``b[j]`` is the accuracy on task ``j`` before any training. ``stage`` is
the number of tasks learned so far (1..T); every function reports the metric *as of* that
stage, so calling it with ``stage = T`` gives the final value.

- ACC  = mean_j R[s-1, j] over the tasks learned so far
- BWT  = 1/(s-1) Σ_{j<s-1} (R[s-1, j] - R[j, j])                    (Lopez-Paz & Ranzato 2017)
- FWT  = 1/(s-1) Σ_{1<=j<s} (R[j-1, j] - b[j])                       (ibid.)
- forgetting of task j at stage s: max_{j<=l<s-1} R[l, j] - R[s-1, j]; averaged over j<s-1
  (Chaudhry et al. 2018 — the max over earlier stages; Avalanche uses first-minus-last instead)
- intransigence of task k: a*_k - R[k, k], with a*_k from a joint model trained on tasks <= k.
"""

from __future__ import annotations

import numpy as np


def _check(R: np.ndarray, stage: int) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(f"accuracy matrix must be square, got shape {R.shape}")
    if not 1 <= stage <= R.shape[0]:
        raise ValueError(f"stage must be in 1..{R.shape[0]}, got {stage}")
    return R


def average_accuracy(R: np.ndarray, stage: int) -> float:
    """ACC: mean accuracy over the ``stage`` tasks learned so far, measured at that stage."""
    R = _check(R, stage)
    return float(np.mean(R[stage - 1, :stage]))


def backward_transfer(R: np.ndarray, stage: int) -> float:
    """BWT: mean change on earlier tasks since each was learned; NaN with one task."""
    R = _check(R, stage)
    if stage < 2:
        return float("nan")
    j = np.arange(stage - 1)
    return float(np.mean(R[stage - 1, j] - R[j, j]))


def forward_transfer(R: np.ndarray, b: np.ndarray, stage: int) -> float:
    """FWT: mean accuracy on each task just before learning it, minus its untrained accuracy b."""
    R = _check(R, stage)
    b = np.asarray(b, dtype=float)
    if stage < 2:
        return float("nan")
    j = np.arange(1, stage)
    return float(np.mean(R[j - 1, j] - b[j]))


def forgetting_per_task(R: np.ndarray, stage: int) -> np.ndarray:
    """f_j at ``stage`` for each earlier task j < stage-1 (max over earlier stages minus now)."""
    R = _check(R, stage)
    last = stage - 1
    out = np.full(last, np.nan)
    for j in range(last):
        earlier = R[j:last, j]
        if np.all(np.isnan(earlier)):
            continue
        out[j] = np.nanmax(earlier) - R[last, j]
    return out


def average_forgetting(R: np.ndarray, stage: int) -> float:
    """Mean forgetting over the tasks learned before the current one; NaN with one task."""
    f = forgetting_per_task(R, stage)
    return float(np.nanmean(f)) if f.size and not np.all(np.isnan(f)) else float("nan")


def intransigence(R: np.ndarray, joint_diagonal: np.ndarray) -> np.ndarray:
    """I_k = a*_k - R[k, k], where ``joint_diagonal[k]`` is a joint model's accuracy on task k
    after training on tasks <= k (the diagonal of a joint run's matrix)."""
    R = np.asarray(R, dtype=float)
    return np.asarray(joint_diagonal, dtype=float) - np.diag(R)


def summary(R: np.ndarray, stage: int, b: np.ndarray | None = None) -> dict[str, float]:
    """ACC, BWT, forgetting (and FWT when ``b`` is given) as of ``stage``."""
    out = {
        "acc": average_accuracy(R, stage),
        "bwt": backward_transfer(R, stage),
        "forgetting": average_forgetting(R, stage),
    }
    if b is not None:
        out["fwt"] = forward_transfer(R, b, stage)
    return out
