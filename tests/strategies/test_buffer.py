"""Replay buffer selection, checked statistically, and its saved state."""

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cl_nlp.batching import Examples
from cl_nlp.strategies import StrategyContext
from cl_nlp.strategies.buffer import ReplayBuffer
from cl_nlp.strategies.replay import Replay, ReplayOptions
from tests.strategies.helpers import task_data

CHI2_999 = {49: 85.351, 59: 98.324}  # 0.999 quantiles of chi-square (df: value), from tables


def items(labels, start=0, task=0):
    n = len(labels)
    return Examples([[101, start + i, 102] for i in range(n)], np.asarray(labels, np.int64), np.full(n, task, np.int64))


def chi2(counts):
    counts = np.asarray(counts, float)
    expected = counts.mean()
    return float(((counts - expected) ** 2 / expected).sum())


def test_reservoir_keeps_every_example_with_equal_probability():
    size, trials = 10, 2000
    inclusion = np.zeros(50)
    for seed in range(trials):  # 50 examples arriving as two tasks of 30 and 20
        buf = ReplayBuffer(size, "reservoir", seed)
        buf.add(items([0] * 30))
        buf.add(items([1] * 20, start=30, task=1))
        assert len(buf) == size and buf.seen == 50
        for ids in buf.examples().input_ids:
            inclusion[ids[1]] += 1
    assert inclusion.sum() == size * trials
    assert chi2(inclusion) < CHI2_999[49]  # uniform: each example kept with probability size / seen
    assert abs(inclusion[:30].mean() / trials - 0.2) < 0.01  # the older task is not favoured or starved


def test_class_balanced_buffer_is_balanced_and_uniform_within_classes():
    labels = [0] * 60 + [1] * 30 + [2] * 4 + [3] * 26  # unbalanced, as in real streams
    trials, inclusion = 1000, np.zeros(60)
    for seed in range(trials):
        rng = np.random.default_rng(seed + 10_000)
        buf = ReplayBuffer(30, "class_balanced", seed)
        order = rng.permutation(len(labels))
        # example i carries token id i, so inclusion is counted per example whatever the arrival order
        buf.add(Examples([[101, int(i), 102] for i in order], np.asarray(labels)[order], np.zeros(len(order), np.int64)))
        counts = buf.class_counts()
        assert len(buf) == 30 and counts[2] == 4  # the rare class keeps everything it has
        big = [counts[c] for c in (0, 1, 3)]
        assert max(big) - min(big) <= 1  # the rest share the room equally
        for ids, label in zip(buf.examples().input_ids, buf.examples().labels):
            if label == 0:
                inclusion[ids[1]] += 1
    assert chi2(inclusion) < CHI2_999[59]  # within class 0 (60 examples, ~8.7 kept): uniform
    assert inclusion.min() > 0


def test_reservoir_is_not_balanced_but_class_balanced_is():
    labels = [0] * 90 + [1] * 10
    res, bal = ReplayBuffer(20, "reservoir", 0), ReplayBuffer(20, "class_balanced", 0)
    for buf in (res, bal):
        buf.add(items(labels))
    assert bal.class_counts() == {0: 10, 1: 10}
    assert res.class_counts()[0] > res.class_counts().get(1, 0)


def test_buffer_state_is_tensors_and_json_and_restores_exactly():
    buf = ReplayBuffer(8, "class_balanced", 3)
    buf.add(items([0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 2]))
    state = buf.state_dict()
    json.dumps({k: v for k, v in state.items() if k != "examples"})
    assert all(v.dtype.is_floating_point is False for v in state["examples"].values())
    other = ReplayBuffer(8, "class_balanced", 99)
    other.load_state_dict(state)
    assert other.examples().input_ids == buf.examples().input_ids
    assert other.class_counts() == buf.class_counts()
    more = items([3, 3, 3, 1], start=50)
    buf.add(more)
    other.add(more)  # the same random draws follow
    assert other.examples().input_ids == buf.examples().input_ids
    assert other.sample(3).input_ids == buf.sample(3).input_ids


def test_replay_mixes_buffer_examples_into_every_batch_after_the_first_task():
    replay = Replay(ReplayOptions(size=5, per_batch=3), StrategyContext())
    first = task_data(0, items([0, 1] * 10))
    batches = [items([2, 3], start=100, task=1) for _ in range(4)]
    assert [len(b) for b in replay.train_batches(first, iter(batches))] == [2] * 4  # empty buffer: unchanged
    replay.after_task(first, model=None)
    mixed = list(replay.train_batches(task_data(1, batches[0]), iter(batches)))
    assert [len(b) for b in mixed] == [5] * 4
    assert all(set(b.task_ids[2:].tolist()) == {0} and b.labels[:2].tolist() == [2, 3] for b in mixed)
    assert replay.figures()["replay/buffer/t0"] == 5.0


def interleaved_stream(n: int, probs: list[float], seed: int) -> np.ndarray:
    """Labels drawn i.i.d. from ``probs``: every class arrives throughout the stream, imbalanced."""
    return np.random.default_rng(seed).choice(len(probs), size=n, p=probs)


def test_cbrs_inclusion_does_not_depend_on_arrival_order_within_a_class():
    # The earlier buffer called a class full only while it was largest now; on this stream (size
    # not divisible by the class count, so counts differ by one and take turns being "not largest")
    # it stored a class's last quarter of arrivals 10-100x more often than its first quarter
    # (class 0: 0.0001 / 0.0007 / 0.0089 / 0.084 per quarter). CBRS: the same rate in every quarter.
    n, size, trials, probs = 2000, 102, 200, [0.55, 0.25, 0.15, 0.05]
    kept = np.zeros((4, 4))
    arrived = np.zeros((4, 4))
    quarter = np.arange(n) * 4 // n
    for seed in range(trials):
        labels = interleaved_stream(n, probs, 1000 + seed)
        buf = ReplayBuffer(size, "class_balanced", seed)
        buf.add(items(labels))
        stored = np.zeros(n, bool)
        stored[[ids[1] for ids in buf.examples().input_ids]] = True
        np.add.at(kept, (labels, quarter), stored)
        np.add.at(arrived, (labels, quarter), 1)
    rates = kept / arrived
    for c in range(4):
        # kept per quarter against arrivals per quarter: chi-square, df 3, 0.999 quantile 16.27
        expected = arrived[c] * kept[c].sum() / arrived[c].sum()
        assert float(((kept[c] - expected) ** 2 / expected).sum()) < 16.27, (c, rates[c])
        assert rates[c].max() / rates[c].min() < 1.25, (c, rates[c])
    # The buffer still balances: the rare class (5% of arrivals, ~100 per stream) keeps about a
    # quarter of the buffer (~25 of ~100), the majority class a quarter too (~25 of ~1100).
    assert abs(kept[3].sum() / trials - size / 4) < 2 and abs(kept[0].sum() / trials - size / 4) < 2


def test_a_full_class_stays_full_after_falling_below_the_largest():
    # size 4: A A A B fills the buffer with A largest, so A is full. Two C's evict two A's
    # (A 1, B 1, C 2: C is now largest and full). A is no longer among the largest, but it stays
    # full: its arrivals only replace A's own slot (reservoir within A) and never take C's room.
    buf = ReplayBuffer(4, "class_balanced", 0)
    buf.add(items([0, 0, 0, 1, 2, 2]))
    assert buf.class_counts() == {0: 1, 1: 1, 2: 2} and buf.full == {0, 2}
    buf.add(items([0] * 50, start=10))
    assert buf.class_counts() == {0: 1, 1: 1, 2: 2}
    buf.add(items([1]))  # B was never largest: not full, so it takes a slot from the largest (C)
    assert buf.class_counts() == {0: 1, 1: 2, 2: 1} and buf.full == {0, 1, 2}


@settings(max_examples=300, deadline=None)
@given(labels=st.lists(st.integers(0, 5), max_size=120), size=st.integers(1, 25), seed=st.integers(0, 2**32 - 1))
def test_cbrs_invariants_on_any_stream(labels, size, seed):
    buf = ReplayBuffer(size, "class_balanced", seed)
    for start in range(0, len(labels), 7):  # offered in pieces, as batches arrive
        buf.add(items(labels[start:start + 7], start=start))
    seen = {c: labels.count(c) for c in set(labels)}
    counts = buf.class_counts()
    assert len(buf) == min(size, len(labels)) and buf.seen == len(labels)
    stored = [ids[1] for ids in buf.examples().input_ids]
    assert len(stored) == len(set(stored))  # no example stored twice
    assert all(labels[ids[1]] == y for ids, y in zip(buf.examples().input_ids, buf.examples().labels))
    largest = max(counts.values(), default=0)
    for c, n_c in seen.items():
        m_c = counts.get(c, 0)
        assert m_c <= n_c
        if c not in buf.full:
            assert m_c == n_c  # a class that is not full has lost nothing
        # water-filling: every class keeps all it saw, or is within one of the largest
        assert m_c == n_c or m_c >= largest - 1
    assert buf.full <= set(seen) and (len(buf) < size or buf.full)


@settings(max_examples=100, deadline=None)
@given(labels=st.lists(st.integers(0, 4), min_size=1, max_size=80), cut=st.integers(0, 80),
       selection=st.sampled_from(["reservoir", "class_balanced"]), seed=st.integers(0, 1000))
def test_restored_buffer_continues_exactly(labels, cut, selection, seed):
    cut = min(cut, len(labels))
    whole, first = ReplayBuffer(9, selection, seed), ReplayBuffer(9, selection, seed)
    whole.add(items(labels))
    first.add(items(labels[:cut]))
    restored = ReplayBuffer(9, selection, 12345)
    restored.load_state_dict(first.state_dict())
    restored.add(items(labels[cut:], start=cut))
    assert restored.examples().input_ids == whole.examples().input_ids
    assert restored.full == whole.full and restored.sample(4).input_ids == whole.sample(4).input_ids


def test_a_format_1_state_loads_with_the_largest_classes_as_full():
    buf = ReplayBuffer(6, "class_balanced", 0)
    buf.add(items([0, 0, 0, 1, 1, 2, 2, 2]))
    state = buf.state_dict()
    old = {k: v for k, v in state.items() if k not in ("format", "full")}  # what format 1 saved
    restored = ReplayBuffer(6, "class_balanced", 0)
    restored.load_state_dict(old)
    assert restored.class_counts() == buf.class_counts()
    largest = max(buf.class_counts().values())
    assert restored.full == {c for c, m in buf.class_counts().items() if m == largest}
