"""Batching: every example exactly once per epoch, padding only to the batch's longest."""

import numpy as np
import pytest
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


def with_extras(n, start=0, logits=True):
    extra = {"replayed": np.ones(n, dtype=bool)}
    if logits:
        extra["stored_logits"] = np.arange(start, start + 3 * n, dtype=np.float32).reshape(n, 3)
    return Examples([[101, start + i, 102] for i in range(n)], np.arange(start, start + n), np.zeros(n, np.int64),
                    extra=extra)


def test_subset_carries_extra_columns_row_by_row():
    ex = with_extras(5)
    sub = ex.subset([4, 1])
    assert sub.extra["replayed"].tolist() == [True, True]
    assert sub.extra["stored_logits"].tolist() == [[12.0, 13.0, 14.0], [3.0, 4.0, 5.0]]
    assert sub.extra["stored_logits"].dtype == np.float32


def test_concat_zero_fills_a_column_missing_from_one_part():
    new = Examples([[101, 9, 102]] * 2, np.array([7, 8]), np.ones(2, np.int64))  # no extras at all
    old = with_extras(3, start=10)
    both = Examples.concat([new, old])
    assert both.labels.tolist() == [7, 8, 10, 11, 12]
    assert both.extra["replayed"].dtype == np.bool_
    assert both.extra["replayed"].tolist() == [False, False, True, True, True]
    logits = both.extra["stored_logits"]
    assert logits.dtype == np.float32 and logits.shape == (5, 3)
    assert logits[:2].tolist() == [[0.0] * 3] * 2 and logits[2].tolist() == [10.0, 11.0, 12.0]
    # a column only the first part has is zero-filled in later parts too
    assert Examples.concat([old, new]).extra["replayed"].tolist() == [True, True, True, False, False]
    # nothing but empty parts: the columns survive, empty
    empty = Examples.concat([old.subset([]), new.subset([])])
    assert len(empty) == 0 and empty.extra["stored_logits"].shape == (0, 3)


def test_collate_returns_each_extra_column_as_a_tensor():
    batch = collate(with_extras(2).subset([1, 0]), pad_id=0)
    assert batch["replayed"].dtype == torch.bool and batch["replayed"].tolist() == [True, True]
    assert batch["stored_logits"].dtype == torch.float32
    assert batch["stored_logits"].tolist() == [[3.0, 4.0, 5.0], [0.0, 1.0, 2.0]]
    assert set(batch) == {"input_ids", "attention_mask", "labels", "task_ids", "replayed", "stored_logits"}


def test_extra_columns_must_have_one_row_per_example_and_a_free_name():
    with pytest.raises(ValueError, match="2 rows for 3 examples"):
        Examples([[1]] * 3, np.zeros(3, np.int64), np.zeros(3, np.int64), extra={"replayed": np.zeros(2, bool)})
    with pytest.raises(ValueError, match="overwrite"):
        Examples([[1]], np.zeros(1, np.int64), np.zeros(1, np.int64), extra={"labels": np.zeros(1, np.int64)})


def test_data_parallel_shards_carry_extra_columns():
    from cl_nlp.distributed import shard

    ex = with_extras(5)
    parts = [shard(ex, rank, 2)[0] for rank in range(2)]
    assert [p.labels.tolist() for p in parts] == [[0, 1, 2], [3, 4]]
    assert np.concatenate([p.extra["stored_logits"] for p in parts]).tolist() == ex.extra["stored_logits"].tolist()
    alone, weight = shard(ex.subset([3]), 1, 2)  # a process left without examples gets the first one, weight 0
    assert weight == 0.0 and alone.extra["stored_logits"].tolist() == [[9.0, 10.0, 11.0]]
