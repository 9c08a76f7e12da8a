"""Hostile run folders for ``--resume``: every kind of damaged checkpoint, config and folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from tests.hostile.harness import (
    Case,
    Env,
    corrupt_header,
    edit_json,
    flip_bytes,
    rehash,
    resume_args,
    run_args,
    truncate,
)


def resume_damaged(damage: Callable[[Path], None], *, rewrite_manifest: bool = False) -> Callable[[Env], list[str]]:
    """Copy the base run, apply ``damage`` to its checkpoint folder, resume it.

    ``rewrite_manifest``: the damage is a writer's (the manifest agrees with it), so what must
    catch it is the check of the content itself, not the hash.
    """
    def prepare(e: Env) -> list[str]:
        run = e.victim()
        ckpt = e.checkpoint(run)
        damage(ckpt)
        if rewrite_manifest:
            rehash(ckpt)
        return resume_args(run)
    return prepare


def resume_with_run(damage: Callable[[Path], None]) -> Callable[[Env], list[str]]:
    """Copy the base run, apply ``damage`` to the run folder itself, resume it."""
    def prepare(e: Env) -> list[str]:
        run = e.victim()
        damage(run)
        return resume_args(run)
    return prepare


def nan_weights(ckpt: Path) -> None:
    weights = load_file(ckpt / "model.safetensors")
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.numel() > 1)
    weights[name][0] = float("nan")
    save_file(weights, str(ckpt / "model.safetensors"))


def rng_without_torch_state(ckpt: Path) -> None:
    save_file({"other": torch.zeros(3)}, str(ckpt / "rng.safetensors"))


def stage_is_a_file(run: Path) -> None:
    (stage,) = (run / "checkpoints").glob("stage-*")
    shutil.rmtree(stage)
    stage.write_text("not a folder")


def checkpoints_is_a_file(run: Path) -> None:
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").write_text("not a folder")


def other_strategy(run: Path) -> None:
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("name: ewc", "name: replay", 1))


def unlink(name: str) -> Callable[[Path], None]:
    return lambda ckpt: (ckpt / name).unlink()


def set_state(**change) -> Callable[[Path], None]:
    return lambda ckpt: edit_json(ckpt / "state.json", lambda s: {**s, **change})


def dangle(tree):
    """Point the first tensor reference of strategy.json at a tensor that does not exist."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return {"__tensor__": "t99999"}
        out, done = {}, False
        for k, v in tree.items():
            new = v if done else dangle(v)
            done = done or new != v
            out[k] = new
        return out
    if isinstance(tree, list):
        return [dangle(v) for v in tree]
    return tree


def weights_a_folder(ckpt: Path) -> None:
    (ckpt / "model.safetensors").unlink()
    (ckpt / "model.safetensors").mkdir()


def _newest_of_two_damaged(e: Env) -> list[str]:
    """stage-001 whole, a stage-002 copy of it whose weights then rot: the older one is named."""
    run = e.victim()
    older = e.checkpoint(run)
    newer = older.with_name("stage-002")
    shutil.copytree(older, newer)
    edit_json(newer / "state.json", lambda s: {**s, "stage": 2})
    rehash(newer)
    flip_bytes(newer / "model.safetensors")
    return resume_args(run)


def _relaunch_damaged(e: Env) -> list[str]:
    run = e.victim()
    (e.checkpoint(run) / "state.json").unlink()
    return run_args(e, "--strategy", "ewc", name="victim")


def _resume_file(e: Env) -> list[str]:
    return resume_args(e.file("a-run-file", "x"))


def _resume_long(e: Env) -> list[str]:
    return resume_args(e.root / ("r" * 300))


def _relaunch_into_victim(e: Env) -> list[str]:
    e.victim()
    return run_args(e, "--strategy", "ewc", name="victim")


CASES = [
    Case("ckpt model truncated", resume_damaged(lambda c: truncate(c / "model.safetensors")), "model.safetensors"),
    Case("ckpt model header corrupted", resume_damaged(lambda c: corrupt_header(c / "model.safetensors")), "model.safetensors"),
    Case("ckpt model bytes flipped", resume_damaged(lambda c: flip_bytes(c / "model.safetensors")), "model.safetensors"),
    Case("ckpt model NaN weights", resume_damaged(nan_weights, rewrite_manifest=True), "nan"),
    Case("ckpt strategy.json missing", resume_damaged(unlink("strategy.json")), "strategy.json"),
    Case("ckpt strategy.safetensors truncated", resume_damaged(lambda c: truncate(c / "strategy.safetensors")),
         "strategy.safetensors"),
    Case("ckpt strategy.json dangling tensor", resume_damaged(lambda c: edit_json(c / "strategy.json", dangle),
                                                              rewrite_manifest=True), "strategy"),
    Case("ckpt results.json missing", resume_damaged(unlink("results.json")), "results.json"),
    Case("ckpt results.json not JSON", resume_damaged(lambda c: (c / "results.json").write_text("{not json"),
                                                      rewrite_manifest=True), "results.json"),
    Case("ckpt rng.safetensors missing", resume_damaged(unlink("rng.safetensors")), "rng.safetensors"),
    Case("ckpt rng.safetensors without torch state", resume_damaged(rng_without_torch_state, rewrite_manifest=True),
         "rng.safetensors"),
    Case("ckpt evaluator.safetensors truncated", resume_damaged(lambda c: truncate(c / "evaluator.safetensors")),
         "evaluator.safetensors"),
    Case("ckpt state.json missing", resume_damaged(unlink("state.json")), "state.json"),
    Case("ckpt state.json garbage", resume_damaged(lambda c: (c / "state.json").write_bytes(b"\x00\xff" * 40)), "state.json"),
    Case("ckpt global_step not an integer", resume_damaged(set_state(global_step="abc"), rewrite_manifest=True),
         "state.json"),
    Case("ckpt stage number disagrees", resume_damaged(set_state(stage=7), rewrite_manifest=True), "state.json"),
    Case("ckpt stage folder is a file", resume_with_run(stage_is_a_file), "stage-001 is a file"),
    Case("ckpt checkpoints is a file", resume_with_run(checkpoints_is_a_file), "checkpoints"),
    Case("run config.yaml binary", resume_with_run(lambda r: (r / "config.yaml").write_bytes(bytes(range(256)))),
         "not utf-8 text"),
    Case("run config.yaml another strategy", resume_with_run(other_strategy), "ewc"),
    Case("ckpt model.safetensors is a folder", resume_damaged(weights_a_folder), "model.safetensors"),
    Case("ckpt newest of two damaged", _newest_of_two_damaged, "an older checkpoint, checkpoints/stage-001, is left"),
    Case("relaunch into a run with a damaged checkpoint", _relaunch_damaged, "already holds a run"),
    Case("--resume names a file", _resume_file, "not a folder"),
    Case("--resume 300-char path", _resume_long, "too long"),
    Case("relaunch into a run that holds a checkpoint", _relaunch_into_victim, "already holds a run"),
]
