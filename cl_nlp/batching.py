"""Tokenized examples, length-grouped batches and dynamic padding.

Each task is tokenized once per run (:func:`encode`). A batch stays a small unpadded
:class:`Examples` until the trainer collates it, so strategies can mix examples of different
lengths (replay) without re-tokenizing. Padding is to the longest example in the batch:
CLINC utterances average ~12 tokens, and padding to a fixed 64 costs 3-4x the compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from datasets import Dataset

_BATCH_KEYS = ("input_ids", "attention_mask", "token_type_ids", "labels", "task_ids")  # collate's own keys


@dataclass
class Examples:
    """Unpadded token ids with labels, the index of the task each example came from, and extra columns.

    ``extra`` holds per-example columns a strategy attaches (first axis = example), carried
    through :meth:`subset`, :meth:`concat`, data-parallel sharding and :func:`collate`, which
    returns each as a tensor under its own key. Conventions: ``extra["replayed"]`` (bool: the
    example came from a buffer), ``extra["stored_logits"]`` (float32, examples x classes: DER).

    Example:
        >>> ex = Examples([[101, 7, 102], [101, 102]], np.array([0, 1]), np.zeros(2, np.int64),
        ...               extra={"replayed": np.array([True, False])})
        >>> ex.subset([1]).extra["replayed"]
        array([False])
    """

    input_ids: list[list[int]]
    labels: np.ndarray
    task_ids: np.ndarray
    token_type_ids: list[list[int]] | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, column in self.extra.items():
            if key in _BATCH_KEYS:
                raise ValueError(f"extra column {key!r} would overwrite the batch's own {key!r}")
            if len(column) != len(self.input_ids):
                raise ValueError(f"extra column {key!r} has {len(column)} rows for {len(self.input_ids)} examples")

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def subset(self, indices: Sequence[int] | np.ndarray) -> "Examples":
        idx = np.asarray(indices, dtype=np.int64)
        tt = None if self.token_type_ids is None else [self.token_type_ids[i] for i in idx]
        return Examples([self.input_ids[i] for i in idx], self.labels[idx], self.task_ids[idx], tt,
                        {k: v[idx] for k, v in self.extra.items()})

    @staticmethod
    def concat(parts: Sequence["Examples"]) -> "Examples":
        """The examples of ``parts`` in order. An extra column some part lacks is zero-filled there
        (same dtype and trailing shape as where it exists): ``replayed`` reads False for new examples."""
        columns: dict[str, np.ndarray] = {}
        for p in parts:  # the first part holding a column fixes its dtype and trailing shape
            for key, column in p.extra.items():
                columns.setdefault(key, column)
        parts = [p for p in parts if len(p)]
        if not parts:
            return Examples([], np.zeros(0, np.int64), np.zeros(0, np.int64),
                            extra={k: c[:0] for k, c in columns.items()})
        ids = [x for p in parts for x in p.input_ids]
        tt = None
        if any(p.token_type_ids is not None for p in parts):
            tt = [x for p in parts for x in (p.token_type_ids or [[0] * len(i) for i in p.input_ids])]
        extra = {key: np.concatenate([p.extra[key] if key in p.extra else np.zeros((len(p), *like.shape[1:]), like.dtype)
                                      for p in parts]) for key, like in columns.items()}
        return Examples(ids, np.concatenate([p.labels for p in parts]), np.concatenate([p.task_ids for p in parts]),
                        tt, extra)


def encode(dataset: Dataset, tokenizer, max_length: int, task_index: int) -> Examples:
    """Tokenize a split once (truncated, unpadded)."""
    texts = list(dataset["text"])
    pairs = list(dataset["text_pair"]) if "text_pair" in dataset.column_names else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length, padding=False)
    tt = enc.get("token_type_ids") if pairs is not None else None
    labels = np.asarray(dataset["label"], dtype=np.int64)
    return Examples(list(enc["input_ids"]), labels, np.full(len(labels), task_index, dtype=np.int64), tt)


def collate(examples: Examples, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest example: input_ids, attention_mask, (token_type_ids), labels, task_ids, and
    each ``examples.extra`` column as a tensor under its own key."""
    n = len(examples)
    width = max((len(x) for x in examples.input_ids), default=1)
    ids = np.full((n, width), pad_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    for row, seq in enumerate(examples.input_ids):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    batch = {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(examples.labels),
        "task_ids": torch.from_numpy(examples.task_ids),
    }
    if examples.token_type_ids is not None:
        tt = np.zeros((n, width), dtype=np.int64)
        for row, seq in enumerate(examples.token_type_ids):
            tt[row, : len(seq)] = seq
        batch["token_type_ids"] = torch.from_numpy(tt)
    for key, column in examples.extra.items():
        batch[key] = torch.from_numpy(np.ascontiguousarray(column))
    return batch


def train_batches(
    examples: Examples, batch_size: int, rng: np.random.Generator, length_grouping: bool = True, group_batches: int = 50
) -> Iterator[Examples]:
    """One epoch of shuffled batches.

    With ``length_grouping`` the shuffled examples are cut into chunks of ``group_batches``
    batches, each chunk sorted by length and split into batches, and the batch order is
    shuffled again: batches hold similar lengths (little padding) while every epoch still sees
    a fresh random grouping.
    """
    order = rng.permutation(len(examples))
    if length_grouping:
        lengths = examples.lengths
        chunk = batch_size * group_batches
        pieces = [order[s : s + chunk] for s in range(0, len(order), chunk)]
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in pieces]) if pieces else order
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if length_grouping:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    for idx in batches:
        yield examples.subset(idx)


def eval_batches(examples: Examples, batch_size: int, sort_by_length: bool = True) -> Iterator[tuple[np.ndarray, Examples]]:
    """(positions, batch) pairs covering every example once, longest-first when sorted."""
    order = np.argsort(-examples.lengths, kind="stable") if sort_by_length else np.arange(len(examples))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        yield idx, examples.subset(idx)
