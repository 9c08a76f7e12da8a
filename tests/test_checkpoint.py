"""Checkpoint files without training: state round trips, RNG restore, atomic writes, no pickle."""

from __future__ import annotations

import json
import pickle
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from cl_nlp.checkpoint import (NonFiniteWeights, join_tensors, latest_checkpoint, restore_checkpoint, save_checkpoint,
                               split_tensors)
from cl_nlp.evaluation.results import Results
from cl_nlp.rng import capture_rng, restore_rng
from cl_nlp.strategies.base import Strategy


class Tied(nn.Module):
    """Two modules sharing one weight, like a tied LM head: safetensors refuses shared storage."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight
        self.dropout = nn.Dropout(0.5)


class Keeps(Strategy):
    """Holds whatever state it is given (as a replay buffer or an EWC strategy would)."""

    def __init__(self, state=None):
        super().__init__()
        self.state = state or {}

    def state_dict(self):
        return self.state

    def load_state_dict(self, state, model):
        self.state = state


def fake_trainer(model, strategy, seed=0):
    results = Results(["a", "b", "c"], "class-incremental")
    return SimpleNamespace(model=model, strategy=strategy, rng=np.random.default_rng(seed), global_step=0,
                           evaluator=SimpleNamespace(results=results), device=torch.device("cpu"))


def draws(trainer_rng):
    return (torch.rand(4).tolist(), trainer_rng.permutation(10).tolist(), np.random.rand(3).tolist(),
            [random.random() for _ in range(3)])


def test_rng_restore_replays_every_generator():
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    gen = np.random.default_rng(4)
    draws(gen)  # move every generator away from its seed
    tensors, values = capture_rng(gen)
    json.dumps(values)  # the non-tensor part must be plain JSON
    first = draws(gen)
    draws(gen)
    restore_rng(gen, tensors, json.loads(json.dumps(values)))
    assert draws(gen) == first


def test_strategy_state_round_trip_keeps_structure_and_values():
    shared = torch.arange(6.0)
    state = {"fisher": {"w": shared, "w_view": shared[:3]}, "anchors": [torch.ones(2, 2, dtype=torch.bfloat16)],
             "buffer": {"labels": np.array([3, 1], dtype=np.int64), "ids": [[101, 7, 102], [101, 102]]},
             "per_task": {0: 1.5, 1: np.float32(2.5)}, "seen": 2, "name": "x", "none": None, "pair": (1, 2)}
    tree, tensors = split_tensors(state)
    back = join_tensors(json.loads(json.dumps(tree)), tensors)
    assert torch.equal(back["fisher"]["w"], shared) and torch.equal(back["fisher"]["w_view"], shared[:3])
    assert back["anchors"][0].dtype == torch.bfloat16
    assert isinstance(back["buffer"]["labels"], np.ndarray) and back["buffer"]["labels"].tolist() == [3, 1]
    assert back["buffer"]["ids"] == [[101, 7, 102], [101, 102]]
    assert back["per_task"] == {0: 1.5, 1: 2.5} and back["pair"] == [1, 2]
    assert (back["seen"], back["name"], back["none"]) == (2, "x", None)
    with pytest.raises(TypeError, match=r"state\.obj is a object"):
        split_tensors({"obj": object()})


def test_checkpoint_round_trip_with_tied_weights_and_strategy_state(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = Tied()
    strategy = Keeps({"fisher": {"embed.weight": torch.rand(5, 3)}, "seen": [1, 2]})
    trainer = fake_trainer(model, strategy)
    trainer.global_step = 17
    trainer.evaluator.results.record("live", 1, 0, 0.75)
    trainer.evaluator.results.stages_done = 1
    path = save_checkpoint(tmp_path, trainer, 1, {"run_id": "abc"})
    expected_next = draws(trainer.rng)

    fresh = fake_trainer(Tied(), Keeps(), seed=99)
    # Loading must never unpickle: make every pickle entry point (and torch.load) explode.
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used on the load path")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.path == path and ckpt.stage == 1 and ckpt.run_id == "abc"
    restore_checkpoint(ckpt, fresh)
    assert torch.equal(fresh.model.embed.weight, model.embed.weight)
    assert fresh.model.out.weight is fresh.model.embed.weight  # still tied after loading
    assert torch.equal(fresh.strategy.state["fisher"]["embed.weight"], strategy.state["fisher"]["embed.weight"])
    assert fresh.strategy.state["seen"] == [1, 2] and fresh.global_step == 17
    assert ckpt.results().matrix("live")[0, 0] == 0.75
    assert draws(fresh.rng) == expected_next


def test_a_killed_or_broken_write_never_hides_the_last_good_checkpoint(tmp_path):
    trainer = fake_trainer(Tied(), Keeps())
    save_checkpoint(tmp_path, trainer, 1)
    save_checkpoint(tmp_path, trainer, 2)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["stage-002"]  # older ones are removed
    # A writer killed mid-way leaves a temporary folder; a half-copied folder has no state.json.
    (root / ".stage-003.tmp-12345").mkdir()
    (root / ".stage-003.tmp-12345" / "model.safetensors").write_bytes(b"partial")
    (root / "stage-004").mkdir()
    assert latest_checkpoint(tmp_path).stage == 2
    assert not (root / ".stage-003.tmp-12345").exists()


def test_nan_weights_are_never_checkpointed(tmp_path):
    trainer = fake_trainer(Tied(), Keeps())
    save_checkpoint(tmp_path, trainer, 1)
    with torch.no_grad():
        trainer.model.embed.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteWeights, match="NaN/inf during task 2"):
        save_checkpoint(tmp_path, trainer, 2)
    assert latest_checkpoint(tmp_path).stage == 1
