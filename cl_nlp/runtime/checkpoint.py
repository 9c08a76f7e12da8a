"""Checkpoints after every task, and resuming a run from the last one.

After stage ``k`` the run folder gets ``checkpoints/stage-<k>/`` holding everything the next
stage depends on::

    model.safetensors       the model's weights (shared tensors stored once)
    strategy.safetensors    the strategy's tensors (Fisher, anchors, replay buffer, adapters, ...)
    strategy.json           the rest of its state_dict, tensors replaced by references
    rng.safetensors         torch (CPU, CUDA) generator states
    evaluator.safetensors   test features drift (CKA) is measured against: right after each task, pretrained
    state.json              stage, global step, NumPy/Python RNG states, the MLflow run id, the experiment
    results.json            every matrix measured so far
    manifest.json           the SHA-256 of every file above (written last)

A checkpoint is written into a temporary folder and renamed into place, so a process killed
mid-write (even by SIGKILL) leaves the previous checkpoint whole; older ones are then removed.
Leftover temporary folders are removed only by the process holding the run folder's lock
(:func:`clean_partial_checkpoints`): finding a checkpoint never deletes anything, so a second
process started on a running run cannot destroy the checkpoint it is writing. A resume checks
the manifest and the files' contents first (:mod:`cl_nlp.runtime.checkpoint_integrity`). Loading reads
only safetensors and JSON: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

import cl_nlp
from cl_nlp.errors import UserError, shown, shown_path
from cl_nlp.evaluation.results import Results
from cl_nlp.runtime.checkpoint_integrity import DamagedCheckpoint, verify_checkpoint, write_manifest
from cl_nlp.runtime.rng import capture_rng, restore_rng
from cl_nlp.runtime.state_tree import join_tensors, split_tensors


class TrainerState(Protocol):
    """What a checkpoint saves and restores of a trainer (:class:`cl_nlp.training.Trainer` has it):
    named here so this module does not import the training loop it sits beside."""

    model: torch.nn.Module
    strategy: Any
    evaluator: Any
    rng: np.random.Generator
    global_step: int

    @property
    def device(self) -> torch.device: ...

CHECKPOINTS = "checkpoints"
FORMAT = 2  # 2: with manifest.json; 1 (read, checked by content only): without
_STAGE_DIR = re.compile(r"^stage-(\d+)$")
_PARTIAL = ".stage-*.tmp-*"


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


# ---- strategy state: tensors to safetensors, everything else to JSON (cl_nlp.runtime.state_tree)


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


def save_checkpoint(run_dir: str | Path, trainer: TrainerState, stage: int, tracking: dict[str, Any] | None = None,
                    experiment: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of ``stage`` (tasks learned so far) atomically; keep only the newest.

    ``experiment``: what defines the run (seed, stream, strategy, model; see :func:`identity`),
    kept in ``state.json`` so a resume can tell a hand-edited ``config.yaml`` from the run's own.

    Raises:
        NonFiniteWeights: the model holds NaN/inf (the previous checkpoint is left in place).
        OSError: the disk refused (full, read-only): the partial folder is removed, the previous
            checkpoint is left in place.
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
    try:
        _write_stage(tmp, trainer, stage, tracking, experiment)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a full disk gets its space back; the last checkpoint stays
        raise
    if final.exists():  # only when a resumed run redoes a stage whose checkpoint survived
        shutil.rmtree(final)
    tmp.rename(final)
    for old in _stage_dirs(root):
        if old[0] < stage:
            shutil.rmtree(old[1], ignore_errors=True)
    return final


def _write_stage(tmp: Path, trainer: TrainerState, stage: int, tracking: dict[str, Any] | None,
                 experiment: dict[str, Any] | None) -> None:
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
        "experiment": experiment,
    })
    write_manifest(tmp, FORMAT)  # last: a checkpoint with a manifest is a complete one
    _fsync_tree(tmp)


# ---- reading ---------------------------------------------------------------------------------

def _stage_dirs(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STAGE_DIR.match(p.name))]
    return sorted(found)


def read_state(path: Path) -> dict[str, Any] | None:
    """A stage folder's ``state.json`` when it describes that stage, else ``None``."""
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    m = _STAGE_DIR.match(path.name)
    if not isinstance(state, dict) or m is None or state.get("stage") != int(m.group(1)):
        return None
    return state if state.get("format") in (1, FORMAT) else None


def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint of a run folder (``None`` if there is none).

    Reads only: leftover temporary folders of a killed writer are ignored, never removed here
    (a writer may be alive: see :func:`clean_partial_checkpoints`).
    """
    for stage, path in reversed(_stage_dirs(Path(run_dir) / CHECKPOINTS)):
        state = read_state(path)
        if state is not None:
            return Checkpoint(path, stage, state)
    return None


def clean_partial_checkpoints(run_dir: str | Path) -> None:
    """Remove temporary folders left by a writer that was killed mid-checkpoint.

    Call only while holding the run folder's lock (:class:`cl_nlp.runtime.run_lock.RunFolderLock`):
    without it, the folder may belong to a checkpoint being written right now.
    """
    root = Path(run_dir) / CHECKPOINTS
    for p in root.glob(_PARTIAL) if root.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)


def restore_checkpoint(ckpt: Checkpoint, trainer: TrainerState) -> None:
    """Load weights, strategy state, RNG states and the step counter into a freshly built trainer.

    Every failure is a :class:`DamagedCheckpoint` naming the file and what it does not fit.
    """
    device = str(trainer.device)
    where = f"checkpoint {shown_path(ckpt.path)}"
    try:
        load_model(trainer.model, ckpt.path / "model.safetensors", strict=True, device=device)
    except Exception as exc:  # noqa: BLE001 - any failure here is a checkpoint that does not fit this model
        raise DamagedCheckpoint(f"{where} does not fit the model this config builds (model.safetensors: "
                                f"{_first_line(exc)}); was the model or stream changed?") from exc
    written_by = ckpt.state.get("strategy")
    if written_by and written_by != type(trainer.strategy).__name__:
        raise DamagedCheckpoint(f"{where} was written by strategy {shown(written_by, 60)}, but the config builds "
                                f"{type(trainer.strategy).__name__}; restore the run's config.yaml or start a new run")
    try:
        tree = json.loads((ckpt.path / "strategy.json").read_text(encoding="utf-8"))
        trainer.strategy.load_state_dict(join_tensors(tree, load_file(ckpt.path / "strategy.safetensors", device=device)),
                                         trainer.model)
    except Exception as exc:  # noqa: BLE001 - a strategy's own load_state_dict may raise anything on foreign state
        raise DamagedCheckpoint(f"{where}: the strategy state (strategy.json, strategy.safetensors) does not fit "
                                f"{type(trainer.strategy).__name__} ({type(exc).__name__}: {_first_line(exc)}); "
                                "restore the run's config.yaml or start a new run") from exc
    try:
        trainer.global_step = int(ckpt.state["global_step"])
        restore_rng(trainer.rng, load_file(ckpt.path / "rng.safetensors"), ckpt.state["rng"])
        if (ckpt.path / "evaluator.safetensors").is_file():  # without it, drift of earlier tasks is not measured
            trainer.evaluator.load_state_dict(load_file(ckpt.path / "evaluator.safetensors"))
    except Exception as exc:  # noqa: BLE001
        raise DamagedCheckpoint(f"{where}: the RNG or evaluator state cannot be restored ({type(exc).__name__}: "
                                f"{_first_line(exc)})") from exc


def _first_line(exc: BaseException, limit: int = 160) -> str:
    lines = str(exc).strip().splitlines()
    return shown(lines[0] if lines else type(exc).__name__, limit).strip("'\"")


__all__ = ["Checkpoint", "DamagedCheckpoint", "clean_partial_checkpoints", "latest_checkpoint", "read_state",
           "restore_checkpoint", "save_checkpoint", "split_tensors", "join_tensors", "verify_checkpoint"]
