"""Checkpoint files without training: state round trips, RNG restore, atomic writes, no pickle,
and the manifest that names any file changed after it was written."""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from cl_nlp.errors import UserError
from cl_nlp.evaluation.results import Results
from cl_nlp.runtime.checkpoint import (
    NonFiniteWeights,
    clean_partial_checkpoints,
    join_tensors,
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    split_tensors,
)
from cl_nlp.runtime.checkpoint_integrity import DamagedCheckpoint, verify_checkpoint, write_manifest
from cl_nlp.runtime.resume import find_resumable
from cl_nlp.runtime.rng import capture_rng, restore_rng
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
    # Finding never deletes: the writer of that folder may be alive (only the lock holder cleans).
    assert (root / ".stage-003.tmp-12345" / "model.safetensors").exists()
    clean_partial_checkpoints(tmp_path)
    assert not (root / ".stage-003.tmp-12345").exists()
    assert latest_checkpoint(tmp_path).stage == 2


def test_nan_weights_are_never_checkpointed(tmp_path):
    trainer = fake_trainer(Tied(), Keeps())
    save_checkpoint(tmp_path, trainer, 1)
    with torch.no_grad():
        trainer.model.embed.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteWeights, match="NaN/inf during task 2"):
        save_checkpoint(tmp_path, trainer, 2)
    assert latest_checkpoint(tmp_path).stage == 1


def evaluated_trainer():
    """A trainer whose checkpoint holds every file kind, the evaluator's tensors included."""
    trainer = fake_trainer(Tied(), Keeps({"fisher": {"w": torch.rand(5, 3)}, "seen": 1}))
    trainer.evaluator.state_dict = lambda: {"features_0": torch.rand(4, 3)}
    return trainer


def flip(path, offset_from_end: int = 8) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF  # past any header: the content, not the framing
    path.write_bytes(bytes(data))


def test_the_manifest_names_every_file_whose_bytes_were_flipped(tmp_path):
    path = save_checkpoint(tmp_path / "run", evaluated_trainer(), 1)
    names = sorted(p.name for p in path.iterdir())
    assert names == ["evaluator.safetensors", "manifest.json", "model.safetensors", "results.json", "rng.safetensors",
                     "state.json", "strategy.json", "strategy.safetensors"]
    manifest = json.loads((path / "manifest.json").read_text())["files"]
    assert sorted(manifest) == [n for n in names if n != "manifest.json"]
    for name, digest in manifest.items():  # an independent hash of each file agrees with the manifest
        assert hashlib.sha256((path / name).read_bytes()).hexdigest() == digest
    verify_checkpoint(latest_checkpoint(tmp_path / "run"), "start over")  # whole: no error

    for name in names:
        copy = tmp_path / f"flipped-{name}"
        shutil.copytree(tmp_path / "run", copy)
        flip(copy / "checkpoints" / path.name / name)
        ckpt = latest_checkpoint(copy)
        if ckpt is None:  # the flip broke state.json's JSON: --resume names it while looking for a checkpoint
            assert name == "state.json"
            (copy / "config.yaml").write_text("seed: 0\n")
            with pytest.raises(UserError, match="stage-001 is damaged: its state.json is unreadable"):
                find_resumable(copy)
            continue
        with pytest.raises(DamagedCheckpoint) as info:
            verify_checkpoint(ckpt, "start over")
        message = str(info.value)
        assert name in message and message.endswith("; start over") and len(message.splitlines()) == 1, message
        if name != "manifest.json":
            assert f"{name} does not match its SHA-256 in manifest.json" in message


def test_a_checkpoint_that_changed_consistently_is_still_checked_by_content(tmp_path):
    """A writer's change (the manifest agrees) to NaN weights or a dangling tensor reference is refused too."""
    path = save_checkpoint(tmp_path, evaluated_trainer(), 1)
    weights = load_file(path / "model.safetensors")
    weights["embed.weight"][0, 0] = float("nan")
    save_file(weights, str(path / "model.safetensors"))
    write_manifest(path, 2)
    with pytest.raises(DamagedCheckpoint, match=r"model.safetensors holds NaN/inf weights \('embed.weight'\)"):
        verify_checkpoint(latest_checkpoint(tmp_path), "start over")

    path = save_checkpoint(tmp_path / "b", evaluated_trainer(), 1)
    tree = json.loads((path / "strategy.json").read_text())
    tree["fisher"]["w"] = {"__tensor__": "t404"}
    (path / "strategy.json").write_text(json.dumps(tree))
    write_manifest(path, 2)
    with pytest.raises(DamagedCheckpoint, match="strategy.json refers to tensor 't404'"):
        verify_checkpoint(latest_checkpoint(tmp_path / "b"), "start over")


def test_a_failed_write_leaves_no_partial_folder_and_the_last_checkpoint_whole(tmp_path, monkeypatch):
    trainer = evaluated_trainer()
    save_checkpoint(tmp_path, trainer, 1)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("cl_nlp.runtime.checkpoint.save_file", full_disk)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, trainer, 2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["stage-001"]
    verify_checkpoint(latest_checkpoint(tmp_path), "start over")
