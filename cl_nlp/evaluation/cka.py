"""Representation drift as linear CKA (centered kernel alignment, Kornblith et al. 2019).

For two feature matrices of the same examples, X (n, p) and Y (n, q), column-centred::

    CKA(X, Y) = ||Yᵀ X||_F² / (||Xᵀ X||_F · ||Yᵀ Y||_F)

1 means the two representations are the same up to an orthogonal transform and an isotropic
scaling (which CKA ignores by construction), 0 means no linear relation. With few examples
per dimension the estimate is biased upwards: independent random features give about p/n.
"""

from __future__ import annotations

import numpy as np


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between ``x`` (n, p) and ``y`` (n, q), rows being the same n examples.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 4))
        >>> round(linear_cka(x, 3 * x), 6)
        1.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"need two (n, dims) matrices over the same n examples, got {x.shape} and {y.shape}")
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else float("nan")
