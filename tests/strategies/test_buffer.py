"""Replay buffer selection, checked statistically, and its saved state."""

import json

import numpy as np

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
