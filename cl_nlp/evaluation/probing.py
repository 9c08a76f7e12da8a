"""Probes on frozen features: multinomial logistic regression, and nearest class mean.

A probe asks whether a task is still *decodable* from the encoder's representation,
independently of the live classifier head. It is fitted on a small, fixed sample of the task's
training split and scored on the task's test split. Two kinds:

- the **linear probe**, whose L2 weight is chosen on a validation split carved from that
  sample (:func:`fit_probe_selected`: a third of each class held out, the grid ``L2_GRID``
  tried, the best validation accuracy wins — ties go to the stronger weight — and the probe is
  refitted on the whole sample); the test split is never used for the choice (Tao et al. 2023
  chose their probe's epoch on test, a flaw);
- the **nearest-class-mean probe** (:class:`NearestClassMean`, iCaRL's rule; the prototype
  probe Wu et al. 2022 found strongest): features centred on the sample's mean and
  L2-normalised, one mean per class, the nearest mean by cosine wins. It has no
  hyper-parameter.

Everything here is plain torch/numpy on CPU, deterministic for given inputs:

- features are standardised with the training sample's per-dimension mean and std (so one
  regularisation strength suits encoders of any scale);
- the loss is mean cross-entropy + ``l2 / 2 * ||W||^2`` (bias not penalised), minimised in
  full batch by L-BFGS with a strong-Wolfe line search — a convex problem, so the optimum
  does not depend on initialisation or ordering.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

# On standardised features. On pretrained-MiniLM CLINC features (30 intents x 30 examples) any
# weight from 1e-3 to 1e-1 gave the same test accuracy within 0.3 points; 1e-2 is the middle of that range.
DEFAULT_L2 = 1e-2
MAX_ITER = 300     # L-BFGS iterations; 30 intents x 30 examples x 384 dims converge in well under this
# L2 weights tried on the validation split (standardised features): 4 decades around DEFAULT_L2.
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
VALIDATION_SHARE = 1 / 3


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one thread: probe problems are far too small to gain from threads, and on
    busy CPUs thread synchronisation made each L-BFGS step ~30x slower than a single thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class LinearProbe:
    """A fitted probe: standardisation, weights over the task's classes, and those classes' ids."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor  # (classes, dims)
    bias: torch.Tensor    # (classes,)
    classes: np.ndarray   # label id of each output row

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Label ids predicted for ``features`` (n, dims)."""
        if len(features) == 0:
            return np.zeros(0, np.int64)
        with one_thread():
            x = (torch.as_tensor(features, dtype=torch.float64) - self.mean) / self.std
            return self.classes[(x @ self.weight.T + self.bias).argmax(-1).numpy()]

    def accuracy(self, features: np.ndarray, labels: np.ndarray) -> float:
        """Share of ``labels`` predicted correctly (labels absent from the fit count as wrong)."""
        labels = np.asarray(labels)
        return float(np.mean(self.predict(features) == labels)) if len(labels) else float("nan")


def fit_probe(features: np.ndarray, labels: np.ndarray, l2: float = DEFAULT_L2, max_iter: int = MAX_ITER) -> LinearProbe:
    """Fit a multinomial logistic regression on ``features`` (n, dims) with integer ``labels``.

    Example:
        >>> x = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]])
        >>> fit_probe(x, np.array([3, 3, 7, 7])).predict(np.array([[0.05, 1.0]]))
        array([3])
    """
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels) or len(labels) == 0:
        raise ValueError(f"need (n, dims) features and n labels, got {features.shape} and {labels.shape}")
    # float64: the problem is tiny (hundreds x hundreds), and double precision keeps L-BFGS's
    # line search from stalling, so results do not depend on rounding noise.
    x = torch.as_tensor(features, dtype=torch.float64)
    classes, y = np.unique(labels, return_inverse=True)
    target = torch.as_tensor(y, dtype=torch.long)
    mean = x.mean(0)
    std = x.std(0, unbiased=False).clamp_min(1e-6)  # constant dimensions carry nothing: keep them at 0
    x = (x - mean) / std
    weight = torch.zeros(len(classes), x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    if len(classes) > 1:
        optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                      tolerance_grad=1e-7, tolerance_change=1e-10, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(x @ weight.T + bias, target) + 0.5 * l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        with one_thread():
            optimizer.step(closure)
    return LinearProbe(mean, std, weight.detach(), bias.detach(), classes)


def probe_accuracy(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                   test_labels: np.ndarray, l2: float = DEFAULT_L2) -> float:
    """Fit on the training sample, score on the test split."""
    return fit_probe(train_features, train_labels, l2).accuracy(test_features, test_labels)


def validation_split(labels: np.ndarray, share: float = VALIDATION_SHARE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (fit, validation) indices: ``share`` of each class held out (rounded, at least one
    example where a class has two or more, never its last one), drawn with a seeded permutation.

    Example:
        >>> fit, val = validation_split(np.array([0, 0, 0, 1, 1, 1]), share=1 / 3, seed=0)
        >>> len(fit), len(val), sorted(set(np.array([0, 0, 0, 1, 1, 1])[val].tolist()))
        (4, 2, [0, 1])
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            continue
        k = min(max(1, round(share * len(members))), len(members) - 1)
        held.append(rng.permutation(members)[:k])
    val = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), val), val


@dataclass
class SelectedProbe:
    """A linear probe refitted on the whole sample at the L2 weight validation chose."""

    probe: LinearProbe
    l2: float
    validation_accuracy: float  # of the chosen weight, fitted without the validation examples (NaN: no choice made)


def fit_probe_selected(features: np.ndarray, labels: np.ndarray, grid: tuple[float, ...] = L2_GRID,
                       seed: int = 0) -> SelectedProbe:
    """Choose the L2 weight from ``grid`` on a validation split of the sample, then refit on all of it.

    A one-value grid, or a sample too small to hold examples out, fits that (first) value directly.
    """
    features, labels = np.asarray(features), np.asarray(labels)
    fit, val = validation_split(labels, VALIDATION_SHARE, seed)
    if len(grid) == 1 or len(val) == 0 or len(np.unique(labels[fit])) < 2:
        return SelectedProbe(fit_probe(features, labels, grid[0]), grid[0], float("nan"))
    scores = [fit_probe(features[fit], labels[fit], l2).accuracy(features[val], labels[val]) for l2 in grid]
    best = max(range(len(grid)), key=lambda i: (scores[i], grid[i]))  # ties: the stronger weight
    return SelectedProbe(fit_probe(features, labels, grid[best]), grid[best], scores[best])


@dataclass
class NearestClassMean:
    """Nearest-class-mean probe: cosine similarity to each class's mean of centred, normalised features."""

    centre: np.ndarray
    means: np.ndarray    # (classes, dims), unit length
    classes: np.ndarray  # label id of each row

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray) -> NearestClassMean:
        """Class means of the sample's features (centred on the sample mean, each normalised).

        Example:
            >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
            >>> NearestClassMean.fit(x, np.array([4, 4, 9, 9])).predict(np.array([[0.2, 1.0]]))
            array([9])
        """
        x = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels)
        if x.ndim != 2 or len(x) != len(labels) or len(labels) == 0:
            raise ValueError(f"need (n, dims) features and n labels, got {x.shape} and {labels.shape}")
        centre = x.mean(0)
        unit = cls._unit(x - centre)
        classes = np.unique(labels)
        means = np.stack([unit[labels == c].mean(0) for c in classes])
        return cls(centre, cls._unit(means), classes)

    def predict(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0, np.int64)
        unit = self._unit(np.asarray(features, dtype=np.float64) - self.centre)
        return self.classes[(unit @ self.means.T).argmax(-1)]

    def accuracy(self, features: np.ndarray, labels: np.ndarray) -> float:
        labels = np.asarray(labels)
        return float(np.mean(self.predict(features) == labels)) if len(labels) else float("nan")


def per_class_sample(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``per_class`` examples of each label, drawn with a seeded
    permutation: the same sample at every stage, so probe changes reflect the encoder only.
    """
    labels = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    shuffled = labels[order]
    # rank of each example among the shuffled examples of its own label
    by_label = np.argsort(shuffled, kind="stable")
    starts = np.searchsorted(shuffled[by_label], shuffled[by_label], side="left")
    rank = np.empty(len(labels), np.int64)
    rank[by_label] = np.arange(len(labels)) - starts
    return np.sort(order[rank < per_class])
