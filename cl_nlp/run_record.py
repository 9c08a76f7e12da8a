"""A run's folder through its life, in one place: lock, config, status, outputs, checkpoints, failure.

Everything a run produces lands in its folder first (config, results JSON, CSVs), written after
every stage, and is then mirrored to MLflow, so a tracking outage never loses a result. Under
``accelerate launch`` only the main process writes; the others hold a :class:`RunFolder` that
writes nothing and a tracker that logs nothing.

Example:
    >>> with RunFolder.open(cfg, run_name, resume=False) as folder:  # doctest: +SKIP
    ...     folder.start(run_name, cfg, stream, results)
    ...     with folder.recording_failure(results):
    ...         ...  # train; folder.after_stage(...) after every stage
    ...         folder.finish(results, verdict)
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cl_nlp
from cl_nlp.config import ExperimentConfig, flatten
from cl_nlp.dataset_inputs import task_datasets
from cl_nlp.errors import UserError, describe_os_error
from cl_nlp.evaluation.report import write_matrix_csv
from cl_nlp.evaluation.results import Results
from cl_nlp.models import EMBEDDED_MODEL
from cl_nlp.run_outputs import drop_checkpoint, resolved_config, write_config
from cl_nlp.runtime.checkpoint import Checkpoint, DamagedCheckpoint, latest_checkpoint, save_checkpoint
from cl_nlp.runtime.resume import find_resumable, identity
from cl_nlp.runtime.run_folder import open_run_folder
from cl_nlp.runtime.run_lock import RunFolderLock
from cl_nlp.strategies import strategy_label
from cl_nlp.streams import Stream
from cl_nlp.tracking import Tracker, git_commit, make_tracker
from cl_nlp.training import NonFiniteLoss, Trainer


@dataclass
class RunFolder:
    """``<output>/<run name>/`` of one run: opened under its lock, closed by ``with``.

    Attributes:
        path: the run folder.
        tracker: the run's tracker (a no-op one when tracking is off or on other processes).
        checkpoint: the checkpoint a resumed run continues from, else ``None``.
        writes: whether this process writes the folder (the main process of a data-parallel run).
    """

    path: Path
    tracker: Tracker
    checkpoint: Checkpoint | None
    writes: bool
    lock: RunFolderLock | None = None

    @classmethod
    def open(cls, cfg: ExperimentConfig, run_name: str, resume: bool, tracker: Tracker | None = None,
             writes: bool = True) -> RunFolder:
        """Lock the folder (the main process), find the checkpoint to resume, reach the tracker and
        write ``config.yaml`` (the run name and tracking URI actually used)."""
        path = Path(cfg.output) / run_name
        if not writes:
            return cls(path, Tracker(), find_resumable(path) if resume else None, False)
        # The tracker is made (and a tracking server reached) before anything heavy is loaded.
        lock, ckpt, tracker = open_run_folder(path, resume, lambda ckpt: tracker or make_tracker(
            cfg.tracking.enabled, tracking_uri(cfg, ckpt), cfg.tracking.experiment))
        folder = cls(path, tracker, ckpt, True, lock)
        try:
            write_config(path, resolved_config(cfg, run_name, getattr(tracker, "uri", None)))
        except BaseException:
            folder.close()
            raise
        return folder

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the folder's lock (another process may now resume the run)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def start(self, run_name: str, cfg: ExperimentConfig, stream: Stream, results: Results) -> None:
        """Start (or resume) the tracker's run and mark the folder RUNNING."""
        ckpt = self.checkpoint
        if ckpt and ckpt.run_id:
            self.tracker.resume(ckpt.run_id, ckpt.stage)
        else:
            resolved = resolved_config(cfg, run_name, getattr(self.tracker, "uri", None))
            self.tracker.start(run_name, flatten(resolved), {
                "strategy": strategy_label(cfg.strategy.name), "stream": cfg.stream.name, "scenario": stream.scenario,
                "seed": str(cfg.seed), "model": cfg.model.name_or_path or EMBEDDED_MODEL,
                "cl_nlp_version": cl_nlp.__version__, "git_commit": git_commit(), "run_dir": str(self.path.resolve()),
            })
            self.tracker.log_datasets(task_datasets(stream))  # the UI's Datasets column: each task's source and digest
        self.write_status("RUNNING", results)

    def write_outputs(self, results: Results) -> None:
        """Results JSON and one CSV per matrix (after every stage, at the end and on failure)."""
        if not self.writes:
            return
        results.save(self.path / "results.json")
        for name in results.matrices:
            write_matrix_csv(results, name, self.path / f"matrix_{name}.csv")

    def save_checkpoint(self, trainer: Trainer, stage: int, cfg: ExperimentConfig, results: Results) -> None:
        """The checkpoint after ``stage`` (every process holds the same state; the main one writes it)."""
        if self.writes:
            save_checkpoint(self.path, trainer, stage, self.tracker.checkpoint_info(), identity(cfg))
        self.write_status("RUNNING", results)
        self.warn_tracking()

    def write_status(self, status: str, results: Results, reason: str | None = None) -> None:
        """``status.json``: whether the run is RUNNING/FINISHED/FAILED/KILLED, how far it got, and any
        tracking outage — what a script driving many runs checks."""
        if not self.writes:
            return
        self.warn_tracking()
        ckpt = latest_checkpoint(self.path)
        tracker = self.tracker
        info = {"status": status, "stages_done": results.stages_done, "tasks": results.num_tasks, "reason": reason,
                "checkpoint": str(ckpt.path.relative_to(self.path)) if ckpt else None,
                "tracking": {"run_id": tracker.run_id, "error": tracker.error, "seconds": round(tracker.seconds, 3),
                             "status_sent": tracker.ended}}  # False: `--resume` sets the MLflow run's status
        tmp = self.path / "status.json.tmp"
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path / "status.json")

    def warn_tracking(self) -> None:
        """Say once, on stderr, that MLflow logging failed (the run folder keeps everything)."""
        tracker = self.tracker
        if tracker.error and not tracker.error_reported:
            tracker.error_reported = True
            print(f"warning: MLflow logging failed ({tracker.error}); training goes on and the run folder keeps "
                  "every result", file=sys.stderr, flush=True)

    @contextmanager
    def recording_failure(self, results: Results) -> Iterator[None]:
        """Inside: any failure is recorded (folder and tracker, FAILED or KILLED), then raised again,
        an operating-system error as the one-line :class:`UserError` it is."""
        try:
            yield
        except BaseException as exc:
            failure = as_user_error(exc)
            self.fail(failure, results)
            if failure is exc:
                raise
            raise failure from exc

    def fail(self, exc: BaseException, results: Results) -> None:
        """Record a failed run everywhere it can be recorded; never raises (``exc`` is what matters)."""
        if not self.writes:  # nothing to record: the main process records the run
            return
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        reason = f"{type(exc).__name__}: {exc}"
        explain_failure(exc, self.path)
        try:
            self.write_outputs(results)
            self.write_status(status, results, reason)
        except OSError:
            pass
        self.tracker.log_artifact(self.path)
        self.tracker.end(status, reason)

    def end(self, results: Results, keep_checkpoint: bool) -> str:
        """The run finished: the tracker's run ends, the resume checkpoint goes (unless kept, or
        MLflow's record is incomplete), then status.json says so with the tracking time; returns
        what the folder holds."""
        self.tracker.end("FINISHED")
        held = ""
        if self.writes:
            complete = self.tracker.error is None and self.tracker.ended is not False
            held = drop_checkpoint(self.path, keep_checkpoint, complete)
        self.write_status("FINISHED", results)  # again: the tracking time and any upload error
        return held


def explain_failure(exc: BaseException, run_dir: Path) -> None:
    """Add to ``exc``'s words how to go on from the newest checkpoint (the CLI prints them)."""
    ckpt = latest_checkpoint(run_dir)
    if isinstance(exc, KeyboardInterrupt):  # the CLI prints these words after "interrupted: "
        exc.args = (f"the checkpoint after task {ckpt.stage} is kept; continue with `cl-nlp run --resume {run_dir}`"
                    if ckpt is not None else "no task had finished, so there is no checkpoint; start the run again",)
    elif ckpt is not None and isinstance(exc, UserError) and not isinstance(exc, DamagedCheckpoint):
        # A checkpoint that failed to resume is never recommended again: its own message says what to do.
        exc.args = (f"{exc} (the checkpoint after task {ckpt.stage} is kept: `cl-nlp run --resume {run_dir}`"
                    + (", with --set to change what failed)" if isinstance(exc, NonFiniteLoss) else ")"),)


def as_user_error(exc: BaseException) -> BaseException:
    """An operating-system error stopping a run (disk full, read-only) as the one-line error it is."""
    if isinstance(exc, OSError):
        return UserError(describe_os_error(exc, "the run stopped"))
    return exc


def tracking_uri(cfg: ExperimentConfig, ckpt: Checkpoint | None) -> str | None:
    """The configured URI; when resuming without one, the URI the run was logged to."""
    if cfg.tracking.uri is None and ckpt is not None and not os.environ.get("MLFLOW_TRACKING_URI"):
        return ckpt.state.get("tracking", {}).get("uri")
    return cfg.tracking.uri


__all__ = ["RunFolder", "as_user_error", "tracking_uri"]

