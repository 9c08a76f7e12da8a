"""Batching: every example exactly once per epoch, padding only to the batch's longest."""

import numpy as np
import torch

from cl_nlp.batching import Examples, collate, eval_batches, train_batches


def make_examples(n=53, seed=0):
    rng = np.random.default_rng(seed)
    ids = [list(range(1, int(k) + 1)) for k in rng.integers(2, 30, size=n)]
    return Examples(ids, np.arange(n), np.zeros(n, np.int64))


def test_epoch_covers_each_example_once_with_and_without_grouping():
    ex = make_examples()
    for grouping in (True, False):
        seen = np.concatenate([b.labels for b in train_batches(ex, 8, np.random.default_rng(1), grouping, group_batches=2)])
        assert sorted(seen.tolist()) == list(range(len(ex)))


def test_length_grouping_reduces_padding():
    ex = make_examples(400)

    def padded_tokens(grouping):
        batches = train_batches(ex, 16, np.random.default_rng(0), grouping)
        return sum(len(b) * b.lengths.max() for b in batches)

    assert padded_tokens(True) < 0.8 * padded_tokens(False)


def test_collate_pads_to_longest_with_mask():
    ex = Examples([[5, 6, 7], [8]], np.array([1, 0]), np.array([0, 0]))
    batch = collate(ex, pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].dtype == torch.int64


def test_eval_batches_cover_all_positions():
    ex = make_examples(37)
    positions = np.concatenate([idx for idx, _ in eval_batches(ex, 10)])
    assert sorted(positions.tolist()) == list(range(37))
