"""What a run leaves behind: its resolved config, a small folder once it finished, the final model
on request, and the accuracy matrix as a table MLflow's UI can show.

A finished run's resume checkpoint (the model's weights, ~90 MB for MiniLM) is removed unless
``save.keep_checkpoint`` (``--keep-checkpoint``) is set: nobody resumes a finished run, and a
10-run sweep would otherwise leave ~1 GB of resume state. ``save.model`` (``--save-model``)
writes the final model as a Hugging Face folder instead (:mod:`cl_nlp.saved_model`).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import yaml

from cl_nlp.evaluation.results import Results
from cl_nlp.runtime.checkpoint import CHECKPOINTS
from cl_nlp.saved_model import save_final_model

MODEL_FOLDER = "model"
TABLE_FILE = "accuracy_matrix.json"


def resolved_config(cfg: Any, run_name: str, tracking_uri: str | None) -> dict[str, Any]:
    """``cfg.to_dict()`` with what the run resolved: its run name and the tracking URI it logs to."""
    out = cfg.to_dict()
    out["run_name"] = run_name
    if cfg.tracking.enabled and tracking_uri:
        out["tracking"]["uri"] = tracking_uri
    return out


def write_config(run_dir: Path, resolved: dict[str, Any]) -> None:
    (run_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")


def accuracy_table(results: Results) -> dict[str, list[Any]]:
    """Every accuracy matrix as one table: a row per (reading, stage), a column per task.

    ``reading`` is live, task_aware or probe; ``after`` names the task the row was measured
    after (``untrained``/``pretrained`` for the measurement before training); cells never
    measured are empty (``None``).
    """
    names = results.task_names
    columns: dict[str, list[Any]] = {"reading": [], "after": [], "stage": [], **{n: [] for n in names}}

    def add(reading: str, after: str, stage: int, row: Any) -> None:
        columns["reading"].append(reading)
        columns["after"].append(after)
        columns["stage"].append(stage)
        for name, value in zip(names, row):
            columns[name].append(None if value is None or math.isnan(float(value)) else round(float(value), 6))

    for reading in [m for m in ("live", "task_aware", "probe") if m in results.matrices]:
        if reading in results.before:
            add(reading, "pretrained" if reading == "probe" else "untrained", 0, results.before[reading])
        for i in range(results.stages_done):
            add(reading, names[i], i + 1, results.matrices[reading][i])
    return columns


def remove_checkpoints(run_dir: Path) -> bool:
    """Delete ``run_dir/checkpoints``; whether there was one."""
    folder = run_dir / CHECKPOINTS
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def folder_size(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def format_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def finish_folder(cfg: Any, run_dir: Path, trainer: Any, tokenizer: Any, stream: Any) -> list[str]:
    """Save the final model when asked; returns notes on it, e.g. ``final model in runs/x/model``."""
    notes = []
    if cfg.save.model:
        classes = {t.name: list(t.class_ids) for t in stream.tasks}
        try:
            save_final_model(trainer.model, tokenizer, run_dir / MODEL_FOLDER, stream.class_names, classes,
                             stream.scenario)
            notes.append(f"final model in {run_dir / MODEL_FOLDER}")
        except TypeError as exc:
            notes.append(f"model not saved: {exc}")
    return notes


def drop_checkpoint(run_dir: Path, keep: bool, tracking_complete: bool) -> str:
    """After the run's end reached (or failed to reach) MLflow: remove the resume checkpoint unless
    ``keep`` — or unless MLflow's record is incomplete, since ``cl-nlp run --resume`` is what
    completes it (its final status) once the server is back. Returns what the folder holds now."""
    if keep:
        note = "resume checkpoint kept (--keep-checkpoint)"
    elif not tracking_complete:
        note = "resume checkpoint kept: MLflow's record is incomplete, and `--resume` completes it"
    elif remove_checkpoints(run_dir):
        note = "resume checkpoint removed, as --keep-checkpoint was not given"
    else:
        note = ""
    return "; ".join(x for x in (format_size(folder_size(run_dir)), note) if x)


def finished_without_checkpoint(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run that finished and whose checkpoint was removed at the end."""
    p = Path(run_dir)
    try:
        status = json.loads((p / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return status.get("status") == "FINISHED" and not (p / CHECKPOINTS).exists()


__all__ = ["MODEL_FOLDER", "TABLE_FILE", "accuracy_table", "drop_checkpoint", "finish_folder", "finished_without_checkpoint",
           "folder_size", "format_size", "remove_checkpoints", "resolved_config", "write_config"]
