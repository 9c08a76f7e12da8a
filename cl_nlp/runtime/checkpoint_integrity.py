"""Checkpoints that prove themselves: a manifest of content hashes, checked before resuming.

The last file a checkpoint writes is ``manifest.json``: the SHA-256 of every other file. A
resume first checks every hash (a flipped bit, a truncated copy, an edited file: one line
naming the file), then what each file must hold — the state's fields, the results, the
strategy state's tensor references, the RNG state, finite model weights — so a checkpoint
that cannot be resumed is refused before the run folder is touched, never loaded silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open

from cl_nlp.errors import UserError, shown, shown_path

if TYPE_CHECKING:  # pragma: no cover
    from cl_nlp.runtime.checkpoint import Checkpoint

MANIFEST = "manifest.json"
REQUIRED = ("model.safetensors", "strategy.safetensors", "strategy.json", "rng.safetensors", "results.json", "state.json")
OPTIONAL = ("evaluator.safetensors",)


class DamagedCheckpoint(UserError):
    """A checkpoint that cannot be resumed (a hash mismatch, a missing or unreadable file, NaN weights)."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, checkpoint_format: int) -> None:
    """Hash every file of ``folder`` into ``manifest.json`` (written whole or not at all)."""
    files = {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"format": checkpoint_format, "algorithm": "sha256", "files": files}, indent=1,
                              sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def verify_checkpoint(ckpt: "Checkpoint", advice: str) -> None:
    """Check ``ckpt`` can be resumed; otherwise raise :class:`DamagedCheckpoint` naming the file.

    Args:
        ckpt: the checkpoint (format 2 has a manifest; format 1, older, is checked by content only).
        advice: what the user can do instead, appended to the message.
    """
    def damaged(problem: str) -> DamagedCheckpoint:
        return DamagedCheckpoint(f"checkpoint {shown_path(ckpt.path)} cannot be resumed: {problem}; {advice}")

    if ckpt.state.get("format", 1) >= 2:
        _check_hashes(ckpt.path, damaged)
    for name in REQUIRED:
        if not (ckpt.path / name).is_file():
            raise damaged(f"{name} is missing")
    _check_state(ckpt.state, damaged)
    _check_json(ckpt.path / "results.json", damaged, _results_fields)
    tree = _check_json(ckpt.path / "strategy.json", damaged)
    tensors = _tensor_names(ckpt.path / "strategy.safetensors", damaged)
    missing = sorted(_references(tree) - tensors)
    if missing:
        raise damaged(f"strategy.json refers to tensor {shown(missing[0], 40)}, which strategy.safetensors lacks")
    if "torch_cpu" not in _tensor_names(ckpt.path / "rng.safetensors", damaged):
        raise damaged("rng.safetensors lacks the torch generator state (torch_cpu)")
    if (ckpt.path / "evaluator.safetensors").exists():
        _tensor_names(ckpt.path / "evaluator.safetensors", damaged)
    bad = _first_non_finite(ckpt.path / "model.safetensors", damaged)
    if bad is not None:
        raise damaged(f"model.safetensors holds NaN/inf weights ({shown(bad, 80)})")


def _check_hashes(folder: Path, damaged) -> None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("algorithm") != "sha256" or not isinstance(files, dict):
            raise ValueError
    except FileNotFoundError:
        raise damaged(f"{MANIFEST} is missing (it is written last, so the checkpoint was never completed)") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise damaged(f"{MANIFEST} is not a manifest cl-nlp wrote") from None
    for name in (*REQUIRED, *(n for n in OPTIONAL if (folder / n).exists())):
        if name not in files:
            raise damaged(f"{name} is not listed in {MANIFEST}")
    for name, expected in sorted(files.items()):
        path = folder / str(name)
        if not path.is_file():
            raise damaged(f"{shown(name, 60).strip(chr(39))} is missing")
        if file_sha256(path) != expected:
            raise damaged(f"{name} does not match its SHA-256 in {MANIFEST} (the file changed after it was written)")


def _check_state(state: dict[str, Any], damaged) -> None:
    step = state.get("global_step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise damaged(f"state.json: global_step is {shown(step, 40)}, not a step count")
    rng = state.get("rng")
    if not isinstance(rng, dict) or not {"numpy_trainer", "numpy_global", "python"} <= set(rng):
        raise damaged("state.json: the random generators' states are missing")


def _results_fields(value: Any) -> None:
    from cl_nlp.evaluation.results import Results

    Results.from_dict(value)


def _check_json(path: Path, damaged, check=None) -> Any:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        raise damaged(f"{path.name} cannot be read") from None
    except (ValueError, RecursionError):
        raise damaged(f"{path.name} is not valid JSON") from None
    if check is not None:
        try:
            check(value)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):
            raise damaged(f"{path.name} lacks fields a checkpoint holds") from None
    return value


def _tensor_names(path: Path, damaged) -> set[str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return set(f.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise damaged(f"{path.name} is not a readable safetensors file ({shown(first, 80).strip(chr(39))})") from None


def _references(tree: Any) -> set[str]:
    """Tensor names a strategy.json tree (:func:`cl_nlp.runtime.checkpoint.split_tensors`) refers to."""
    if isinstance(tree, dict):
        if set(tree) in ({"__tensor__"}, {"__ndarray__"}):
            return {str(next(iter(tree.values())))}
        return set().union(*(_references(v) for v in tree.values())) if tree else set()
    if isinstance(tree, list):
        return set().union(*(_references(v) for v in tree)) if tree else set()
    return set()


def _first_non_finite(path: Path, damaged) -> str | None:
    """The name of the first model tensor holding NaN/inf (``None`` when all are finite)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    return name
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise damaged(f"model.safetensors is not a readable safetensors file ({shown(first, 80).strip(chr(39))})") from None
    return None


__all__ = ["DamagedCheckpoint", "MANIFEST", "file_sha256", "verify_checkpoint", "write_manifest"]
