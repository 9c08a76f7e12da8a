"""Checkpoints after every task, and resuming a run from the last one.

After stage ``k`` the run folder gets ``checkpoints/stage-<k>/`` holding everything the next
stage depends on::

    model.safetensors       the model's weights (shared tensors stored once)
    strategy.safetensors    the strategy's tensors (Fisher, anchors, replay buffer, adapters, ...)
    strategy.json           the rest of its state_dict, tensors replaced by references
    rng.safetensors         torch (CPU, CUDA) generator states
    evaluator.safetensors   test features drift (CKA) is measured against: right after each task, pretrained
    state.json              stage, global step, NumPy/Python RNG states, the MLflow run id (written last)
    results.json            every matrix measured so far

A checkpoint is written into a temporary folder and renamed into place, so a process killed
mid-write (even by SIGKILL) leaves the previous checkpoint whole; older ones are then removed.
Loading reads only safetensors and JSON: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

import cl_nlp
from cl_nlp.errors import UserError
from cl_nlp.evaluation.results import Results
from cl_nlp.rng import capture_rng, restore_rng

if TYPE_CHECKING:  # pragma: no cover
    from cl_nlp.config import ExperimentConfig
    from cl_nlp.training import Trainer

CHECKPOINTS = "checkpoints"
FORMAT = 1
_STAGE_DIR = re.compile(r"^stage-(\d+)$")


class NonFiniteWeights(UserError):
    """The model's weights hold NaN/inf after a task: such a state is never checkpointed."""


@dataclass
class Checkpoint:
    """A complete checkpoint on disk: its folder, the stage it ends and its ``state.json``."""

    path: Path
    stage: int
    state: dict[str, Any]

    @property
    def run_id(self) -> str | None:
        return self.state.get("tracking", {}).get("run_id")

    def results(self) -> Results:
        return Results.load(self.path / "results.json")


# ---- strategy state: tensors to safetensors, everything else to JSON -------------------------

def split_tensors(tree: Any, tensors: dict[str, torch.Tensor] | None = None, where: str = "state") -> tuple[Any, dict[str, torch.Tensor]]:
    """Replace every tensor/array in a nested dict/list by a reference; return (JSON tree, tensors).

    Tensors are cloned, so tensors sharing storage (which safetensors refuses) are saved apart.
    Dicts whose keys are not all strings are kept as ``{"__items__": [[key, value], ...]}``.
    """
    tensors = {} if tensors is None else tensors
    if isinstance(tree, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = tree.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}, tensors
    if isinstance(tree, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(tree)).clone()
        return {"__ndarray__": key}, tensors
    if isinstance(tree, np.generic):
        return tree.item(), tensors
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree):
            return {k: split_tensors(v, tensors, f"{where}.{k}")[0] for k, v in tree.items()}, tensors
        return {"__items__": [[k, split_tensors(v, tensors, f"{where}[{k!r}]")[0]] for k, v in tree.items()]}, tensors
    if isinstance(tree, (list, tuple)):
        return [split_tensors(v, tensors, f"{where}[{i}]")[0] for i, v in enumerate(tree)], tensors
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree, tensors
    raise TypeError(f"{where} is a {type(tree).__name__}; a strategy's state_dict may hold only tensors, "
                    "NumPy arrays and JSON values (dict, list, str, number, bool, None)")


def join_tensors(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_tensors`."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        if set(tree) == {"__ndarray__"}:
            return tensors[tree["__ndarray__"]].cpu().numpy()
        if set(tree) == {"__items__"}:
            return {k: join_tensors(v, tensors) for k, v in tree["__items__"]}
        return {k: join_tensors(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_tensors(v, tensors) for v in tree]
    return tree


# ---- writing ---------------------------------------------------------------------------------

def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _fsync_tree(folder: Path) -> None:
    # Renaming makes the checkpoint atomic against a killed process; fsync makes it survive a
    # power cut too (the rename must not reach the disk before the files it publishes).
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_dir: str | Path, trainer: "Trainer", stage: int, tracking: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of ``stage`` (tasks learned so far) atomically; keep only the newest.

    Raises:
        NonFiniteWeights: the model holds NaN/inf (the previous checkpoint is left in place).
    """
    bad = [name for name, p in trainer.model.state_dict().items()
           if p.is_floating_point() and not bool(torch.isfinite(p).all())]
    if bad:
        raise NonFiniteWeights(f"model weights became NaN/inf during task {stage} (first: {bad[0]}); lower train.lr "
                               "or the strategy's penalty weight; the checkpoint of the previous task is kept")
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"stage-{stage:03d}"
    tmp = root / f".stage-{stage:03d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    save_model(trainer.model, str(tmp / "model.safetensors"))
    strategy_tree, strategy_tensors = split_tensors(trainer.strategy.state_dict())
    save_file(strategy_tensors, str(tmp / "strategy.safetensors"))
    _write_json(tmp / "strategy.json", strategy_tree)
    rng_tensors, rng_values = capture_rng(trainer.rng)
    save_file({k: v.contiguous() for k, v in rng_tensors.items()}, str(tmp / "rng.safetensors"))
    if hasattr(trainer.evaluator, "state_dict"):
        save_file(trainer.evaluator.state_dict(), str(tmp / "evaluator.safetensors"))
    trainer.evaluator.results.save(tmp / "results.json")
    _write_json(tmp / "state.json", {
        "format": FORMAT, "stage": stage, "global_step": trainer.global_step, "rng": rng_values,
        "strategy": type(trainer.strategy).__name__, "cl_nlp_version": cl_nlp.__version__, "tracking": tracking or {},
    })
    _fsync_tree(tmp)
    if final.exists():  # only when a resumed run redoes a stage whose checkpoint survived
        shutil.rmtree(final)
    tmp.rename(final)
    for old in _stage_dirs(root):
        if old[0] < stage:
            shutil.rmtree(old[1], ignore_errors=True)
    return final


# ---- reading ---------------------------------------------------------------------------------

def _stage_dirs(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STAGE_DIR.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint of a run folder (``None`` if there is none).

    Leftover temporary folders of a killed writer are ignored (and removed).
    """
    root = Path(run_dir) / CHECKPOINTS
    for p in root.glob(".stage-*.tmp-*") if root.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)
    for stage, path in reversed(_stage_dirs(root)):
        try:
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if state.get("format") == FORMAT and state.get("stage") == stage:
            return Checkpoint(path, stage, state)
    return None


def restore_checkpoint(ckpt: Checkpoint, trainer: "Trainer") -> None:
    """Load weights, strategy state, RNG states and the step counter into a freshly built trainer."""
    device = str(trainer.device)
    try:
        load_model(trainer.model, ckpt.path / "model.safetensors", strict=True, device=device)
    except RuntimeError as exc:
        raise UserError(f"checkpoint {str(ckpt.path)!r} does not fit the model this config builds "
                        f"({str(exc).splitlines()[0][:200]}); was the model or stream changed?") from None
    tree = json.loads((ckpt.path / "strategy.json").read_text(encoding="utf-8"))
    trainer.strategy.load_state_dict(join_tensors(tree, load_file(ckpt.path / "strategy.safetensors", device=device)), trainer.model)
    trainer.global_step = int(ckpt.state["global_step"])
    restore_rng(trainer.rng, load_file(ckpt.path / "rng.safetensors"), ckpt.state["rng"])
    if (ckpt.path / "evaluator.safetensors").is_file():  # without it, drift of earlier tasks is not measured
        trainer.evaluator.load_state_dict(load_file(ckpt.path / "evaluator.safetensors"))


# ---- resuming from the command line ---------------------------------------------------------

# What --resume may not change: these define the experiment the checkpoint belongs to.
_FIXED = ("seed", "stream", "strategy.name", "model")


def find_resumable(run_dir: str | Path) -> Checkpoint:
    """The checkpoint to resume ``run_dir`` from; a folder that cannot be resumed is a :class:`UserError`."""
    p = Path(run_dir)
    if not p.is_dir():
        raise UserError(f"--resume {str(run_dir)!r}: no such folder; pass the run folder a run wrote, e.g. runs/<run-name>")
    if not (p / "config.yaml").is_file():
        raise UserError(f"--resume {str(run_dir)!r} is not a cl-nlp run folder (no config.yaml)")
    ckpt = latest_checkpoint(p)
    if ckpt is None:
        raise UserError(f"--resume {str(run_dir)!r}: the run has no checkpoint (it stopped before its first task "
                        "finished); start it again without --resume")
    return ckpt


def resume_config(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> "ExperimentConfig":
    """The saved config of ``run_dir`` with ``--set`` overrides applied (e.g. a lower ``train.lr``
    after a NaN). Overrides that would make it a different experiment are refused."""
    from cl_nlp.config import flatten, load_config

    find_resumable(run_dir)
    saved = load_config(Path(run_dir) / "config.yaml")
    cfg = load_config(Path(run_dir) / "config.yaml", overrides)
    old, new = flatten(saved.to_dict()), flatten(cfg.to_dict())
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key) and any(key == f or key.startswith(f + ".") for f in _FIXED):
            raise UserError(f"--resume continues the same experiment; --set {key}={new.get(key)!r} would change it "
                            f"(it was {old.get(key)!r}); start a new run instead")
    cfg.output = str(Path(run_dir).parent)
    cfg.run_name = Path(run_dir).name
    return cfg


__all__ = ["Checkpoint", "find_resumable", "latest_checkpoint", "restore_checkpoint", "resume_config",
           "save_checkpoint", "split_tensors", "join_tensors"]
