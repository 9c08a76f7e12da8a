"""``cl-nlp run --resume RUN_DIR``: which checkpoint, which config, and why a folder cannot be resumed.

Everything here only reads the run folder. Checking the checkpoint's hashes and contents
(:func:`cl_nlp.runtime.checkpoint_integrity.verify_checkpoint`) and removing a killed writer's
leftovers happen in :func:`cl_nlp.experiment.run_experiment`, under the run folder's lock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cl_nlp.errors import UserError, describe_os_error, shown, shown_path
from cl_nlp.runtime.checkpoint import _STAGE_DIR, CHECKPOINTS, Checkpoint, latest_checkpoint, read_state

if TYPE_CHECKING:  # pragma: no cover
    from cl_nlp.config import ExperimentConfig

# What --resume may not change: these define the experiment the checkpoint belongs to.
_FIXED = ("seed", "stream", "strategy.name", "model")
START_OVER = "start the run again under a new --run-name (this folder keeps what it measured so far)"


def _fixed(key: str) -> bool:
    return any(key == f or key.startswith(f + ".") for f in _FIXED)


def identity(cfg: "ExperimentConfig") -> dict[str, Any]:
    """The config fields that define the experiment (seed, stream, strategy name, model), flattened,
    as JSON would give them back: what a checkpoint records and a resume must match."""
    from cl_nlp.config import flatten

    return json.loads(json.dumps({k: v for k, v in flatten(cfg.to_dict()).items() if _fixed(k)}))


def run_path(run_dir: str | Path) -> Path:
    """``run_dir`` as a path whose last part is the run's folder name (``.`` is resolved)."""
    p = Path(run_dir)
    return p.resolve() if p.name in ("", ".", "..") else p


def stages_done(run_dir: Path) -> int:
    """How many tasks the run folder says finished (status.json, else results.json; 0 if unknown)."""
    for name in ("status.json", "results.json"):
        try:
            done = json.loads((run_dir / name).read_text(encoding="utf-8")).get("stages_done")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(done, int) and not isinstance(done, bool):
            return done
    return 0


def holds_a_run(run_dir: Path) -> bool:
    """Whether starting a new run in ``run_dir`` would overwrite an earlier run's results."""
    if latest_checkpoint(run_dir) is not None or stages_done(run_dir) > 0:
        return True
    root = run_dir / CHECKPOINTS
    return root.is_dir() and any(_STAGE_DIR.match(p.name) for p in root.iterdir())


def find_resumable(run_dir: str | Path) -> Checkpoint:
    """The checkpoint to resume ``run_dir`` from; a folder that cannot be resumed is a :class:`UserError`.

    Reads only: nothing in the folder is created, changed or removed.
    """
    p = run_path(run_dir)
    where = f"--resume {shown_path(run_dir)}"
    try:
        if not p.exists():
            raise UserError(f"{where}: no such folder; pass the run folder a run wrote, e.g. runs/<run-name>")
        if not p.is_dir():
            raise UserError(f"{where} is a file, not a folder; pass the run folder a run wrote, e.g. runs/<run-name>")
        if not (p / "config.yaml").is_file():
            raise UserError(f"{where} is not a cl-nlp run folder (no config.yaml)")
        ckpt = latest_checkpoint(p)
        if ckpt is None:
            raise UserError(_no_checkpoint(p, where))
        return ckpt
    except OSError as exc:
        raise UserError(describe_os_error(exc, "--resume")) from None


def _no_checkpoint(run_dir: Path, where: str) -> str:
    """Why ``run_dir`` has no checkpoint to resume, saying "before its first task" only when true."""
    root = run_dir / CHECKPOINTS
    if root.exists() and not root.is_dir():
        return f"{where}: {CHECKPOINTS} is a file, not the run's checkpoint folder; {START_OVER}"
    entries = sorted((p for p in root.iterdir() if _STAGE_DIR.match(p.name)), key=lambda p: p.name) if root.is_dir() else []
    if entries:
        newest = entries[-1]
        if not newest.is_dir():
            problem = "is a file, not a checkpoint folder"
        elif not (newest / "state.json").is_file():
            problem = "is damaged: its state.json is missing"
        elif read_state(newest) is None:
            problem = "is damaged: its state.json is unreadable or describes another stage"
        else:  # pragma: no cover - latest_checkpoint would have found it
            problem = "cannot be read"
        return f"{where}: the checkpoint {CHECKPOINTS}/{newest.name} {problem}; {START_OVER}"
    done = stages_done(run_dir)
    if done:
        return (f"{where}: the run has no checkpoint, though {done} task(s) had finished (its checkpoints were "
                f"removed); {START_OVER}")
    return f"{where}: the run has no checkpoint (it stopped before its first task finished); start it again without --resume"


def resume_config(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> "ExperimentConfig":
    """The saved config of ``run_dir`` with ``--set`` overrides applied (e.g. a lower ``train.lr``
    after a NaN). Overrides that would make it a different experiment are refused, and so is a
    ``config.yaml`` edited by hand into another experiment than the checkpoint's."""
    from cl_nlp.config import flatten, load_config

    ckpt = find_resumable(run_dir)
    p = run_path(run_dir)
    saved = load_config(p / "config.yaml")
    cfg = load_config(p / "config.yaml", overrides)
    old, new = flatten(saved.to_dict()), flatten(cfg.to_dict())
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key) and _fixed(key):
            raise UserError(f"--resume continues the same experiment; --set {key}={shown(new.get(key), 60)} would change "
                            f"it (it was {shown(old.get(key), 60)}); start a new run instead")
    recorded = ckpt.state.get("experiment")
    if isinstance(recorded, dict):
        now = identity(saved)
        for key in sorted(set(recorded) | set(now)):
            if recorded.get(key) != now.get(key):
                raise UserError(f"--resume: config.yaml has {key}={shown(now.get(key), 60)}, but the checkpoint was written "
                                f"by a run with {key}={shown(recorded.get(key), 60)}; restore config.yaml or start a new run")
    cfg.output = str(p.parent)
    cfg.run_name = p.name
    return cfg


__all__ = ["START_OVER", "find_resumable", "holds_a_run", "identity", "resume_config", "run_path", "stages_done"]
