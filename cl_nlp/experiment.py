"""One ``cl-nlp run``: validate the config, build stream/model/strategy, train, record everything.

Everything a run produces lands in its run folder first (config, results JSON, CSVs), written
after every stage, and is then mirrored to MLflow — so a tracking outage never loses a result.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

import cl_nlp
from cl_nlp.batching import encode
from cl_nlp.checkpoint import Checkpoint, find_resumable, latest_checkpoint, restore_checkpoint, save_checkpoint
from cl_nlp.config import ExperimentConfig, flatten
from cl_nlp.distributed import is_main_process, main_process_time
from cl_nlp.errors import UserError
from cl_nlp.evaluation.evaluator import Evaluator, ProbeSettings
from cl_nlp.evaluation.report import format_matrix, format_summary, write_matrix_csv
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import final_retention_metrics
from cl_nlp.evaluation.verdict import closing_note, write_run_report
from cl_nlp.heads import task_class_matrix
from cl_nlp.models import EMBEDDED_MODEL, build_model, load_tokenizer, resolve_model_path
from cl_nlp.strategies import StrategyContext, build_strategy, strategy_options
from cl_nlp.streams import Stream, build_stream, stream_options
from cl_nlp.run_lock import RunFolderLock
from cl_nlp.tracking import Tracker, git_commit, make_tracker
from cl_nlp.training import NonFiniteLoss, StageReport, TaskData, Trainer, make_accelerator


@dataclass
class RunOutcome:
    """What :func:`run_experiment` returns: the folder, the results and the tracker's run id."""

    run_dir: Path
    results: Results
    run_id: str | None
    seconds: float
    tracking_error: str | None = None  # set when MLflow logging failed part-way (results are complete on disk)


def validate(cfg: ExperimentConfig) -> Stream:
    """Every check before the model is loaded; returns the built, checked stream (built once per run).

    Option checks come first (instant); then the stream is built and checked (files, columns,
    labels, scenario), which is cheap next to loading a model.
    """
    stream_options(cfg.stream.name, cfg.stream.options)
    strategy_options(cfg.strategy.name, cfg.strategy.options)
    resolve_model_path(cfg.model.name_or_path)
    return build_stream(cfg.stream.name, cfg.stream.options)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_name(cfg: ExperimentConfig, now: datetime | None = None) -> str:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    strategy = cfg.strategy.name.replace(":", "-")  # `avalanche:LwF`: no colons in folder names (Windows)
    return f"{strategy}-{cfg.stream.name}-seed{cfg.seed}-{stamp}"


def tokenize_stream(stream: Stream, tokenizer, max_length: int) -> list[TaskData]:
    """Every task's splits tokenized once for the whole run."""
    return [TaskData(i, t, encode(t.train, tokenizer, max_length, i), encode(t.test, tokenizer, max_length, i))
            for i, t in enumerate(stream.tasks)]


def run_experiment(cfg: ExperimentConfig, tracker: Tracker | None = None, echo: Callable[[str], None] = print,
                   show_progress: bool | None = None, resume: bool = False) -> RunOutcome:
    """Run the experiment ``cfg`` end to end and return where its results are.

    With ``resume=True`` the run folder's newest checkpoint is loaded and training continues
    with the next task, logging into the same MLflow run (see :mod:`cl_nlp.checkpoint`).
    """
    started = time.perf_counter()
    stream = validate(cfg)
    # Under `accelerate launch` this joins the process group: every process runs this function,
    # only the main one talks to MLflow, prints and writes the run folder (docs/distributed.md).
    accelerator = make_accelerator(cfg.train)
    main = accelerator.is_main_process
    run_name = cfg.run_name or default_run_name(cfg, main_process_time())
    run_dir = Path(cfg.output) / run_name
    ckpt = find_resumable(run_dir) if resume else None
    if ckpt is None and latest_checkpoint(run_dir) is not None:
        raise UserError(f"run folder {str(run_dir)!r} already holds a run; continue it with "
                        f"`cl-nlp run --resume {run_dir}` or pick another --run-name")
    # The tracker is made (and a tracking server reached) before anything heavy is loaded.
    if main:
        tracker = tracker or make_tracker(cfg.tracking.enabled, tracking_uri(cfg, ckpt), cfg.tracking.experiment)
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunFolderLock.acquire(run_dir)  # a second process on this folder is refused, not interleaved
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    else:
        tracker, echo, lock = Tracker(), _quiet, None

    try:
        seed_everything(cfg.seed)
        tokenizer = load_tokenizer(cfg.model.name_or_path, cfg.model.trust_remote_code)
        data = tokenize_stream(stream, tokenizer, cfg.model.max_length)
        results = ckpt.results() if ckpt else Results(stream.task_names, stream.scenario)

        if ckpt and ckpt.run_id:
            tracker.resume(ckpt.run_id, ckpt.stage)
        else:
            tracker.start(run_name, flatten(cfg.to_dict()), {
                "strategy": cfg.strategy.name, "stream": cfg.stream.name, "scenario": stream.scenario,
                "seed": str(cfg.seed), "model": cfg.model.name_or_path or EMBEDDED_MODEL,
                "cl_nlp_version": cl_nlp.__version__, "git_commit": git_commit(), "run_dir": str(run_dir.resolve()),
            })
        echo(f"run {run_name}: {cfg.strategy.name} on {stream.name} ({stream.scenario}, {len(stream)} tasks, "
             f"{stream.num_classes} classes) -> {run_dir}" + (f", resumed after task {ckpt.stage}" if ckpt else ""))
        write_status(run_dir, "RUNNING", results, tracker)
        try:
            seed_everything(cfg.seed)
            model = build_model(cfg.model.name_or_path, stream.num_classes, cfg.model.pooling, cfg.model.trust_remote_code)
            task_classes = task_class_matrix(stream)
            context = StrategyContext(stream.scenario, len(stream), stream.num_classes, cfg.seed, cfg.train.batch_size,
                                      accelerator.device, pad_id=tokenizer.pad_token_id, task_classes=task_classes)
            strategy = build_strategy(cfg.strategy.name, cfg.strategy.options, context)
            probes = ProbeSettings(cfg.eval.probe_per_class, cfg.eval.probe_l2, cfg.eval.layerwise_probes, cfg.seed)
            evaluator = Evaluator(results, [d.test for d in data], task_classes, tokenizer.pad_token_id,
                                  cfg.eval.batch_size, cfg.eval.future_tasks, accelerator.device,
                                  trains=[d.train for d in data], probes=probes if cfg.eval.probes else None,
                                  class_names=stream.class_names, ncm=cfg.eval.ncm)
            # A strategy may bring its own loop (``avalanche:*`` run Avalanche's); the default is cl-nlp's.
            trainer_cls = getattr(strategy, "trainer_cls", Trainer)
            trainer = trainer_cls(model, strategy, evaluator, tracker, cfg.train, task_classes, stream.scenario,
                                  tokenizer.pad_token_id, cfg.seed, accelerator, show_progress)
            if ckpt:
                restore_checkpoint(ckpt, trainer)

            def after_stage(report: StageReport) -> None:
                write_outputs(results, run_dir)
                echo(f"  stage {report.stage}/{len(stream)} {report.task}: live acc {report.metrics['acc_avg']:.3f} "
                     f"(this task {report.metrics['acc/' + report.task]:.3f}), train {report.train_seconds:.0f}s, "
                     f"eval {report.eval_seconds:.0f}s")

            def checkpoint(report: StageReport) -> None:
                if main:  # every process holds the same state
                    save_checkpoint(run_dir, trainer, report.stage, tracker.checkpoint_info())
                write_status(run_dir, "RUNNING", results, tracker)
                warn_tracking(tracker)

            trainer.stage_callbacks.append(after_stage)
            # Keep this callback last: the checkpoint must hold the RNG state the next stage starts
            # from, after everything else done at this stage has drawn from the generators.
            trainer.stage_callbacks.append(checkpoint)
            trainer.fit(data, start_stage=ckpt.stage if ckpt else 0)
            seconds = time.perf_counter() - started
            results.timings["run_seconds"] = seconds
            write_outputs(results, run_dir)
            verdict = write_run_report(results, run_dir) if main else ""  # report.md, PNG figures, classification reports
            tracker.set_description(verdict)
            tracker.log_metrics(final_metrics(results), step=len(stream))
            tracker.log_artifact(run_dir)
        except BaseException as exc:  # the run (or its report) failed: recorded as such, then re-raised
            fail_run(exc, results, run_dir, tracker)
            raise
        tracker.end("FINISHED")
        write_status(run_dir, "FINISHED", results, tracker)
        echo("\nLive accuracy (rows: after training on task; columns: task evaluated)")
        echo(format_matrix(results, "live"))
        echo("\n" + format_summary(results))
        echo("\n" + closing_note(results, verdict))
        echo(f"\nwall time {seconds:.0f}s; results in {run_dir}")
        if tracker.run_id and not tracker.error:
            total = time.perf_counter() - started
            echo(f"MLflow run {tracker.run_id} (experiment {cfg.tracking.experiment!r}; its calls took "
                 f"{tracker.seconds:.1f}s, {100 * tracker.seconds / total:.1f}% of the run); "
                 f"forgetting curves: `mlflow ui`, then {getattr(tracker, 'compare_url', lambda: '')()}")
        return RunOutcome(run_dir, results, tracker.run_id, seconds, tracker.error)
    finally:
        if lock is not None:
            lock.release()


def _quiet(message: str) -> None:
    """The echo of processes other than the main one: one copy of the output is enough."""


def tracking_uri(cfg: ExperimentConfig, ckpt: Checkpoint | None) -> str | None:
    """The configured URI; when resuming without one, the URI the run was logged to."""
    if cfg.tracking.uri is None and ckpt is not None and not os.environ.get("MLFLOW_TRACKING_URI"):
        return ckpt.state.get("tracking", {}).get("uri")
    return cfg.tracking.uri


def fail_run(exc: BaseException, results: Results, run_dir: Path, tracker: Tracker) -> None:
    """Record a failed run everywhere it can be recorded; never raises (``exc`` is what matters)."""
    if not is_main_process():  # nothing to record: the main process records the run
        return
    status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    reason = f"{type(exc).__name__}: {exc}"
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None and isinstance(exc, UserError):
        exc.args = (f"{exc} (the checkpoint after task {ckpt.stage} is kept: `cl-nlp run --resume {run_dir}`"
                    + (", with --set to change what failed)" if isinstance(exc, NonFiniteLoss) else ")"),)
    try:
        write_outputs(results, run_dir)
        write_status(run_dir, status, results, tracker, reason)
    except OSError:
        pass
    tracker.log_artifact(run_dir)
    tracker.end(status, reason)


def warn_tracking(tracker: Tracker) -> None:
    """Say once, on stderr, that MLflow logging failed (the run folder keeps everything)."""
    if tracker.error and not tracker.error_reported:
        tracker.error_reported = True
        print(f"warning: MLflow logging failed ({tracker.error}); training goes on and the run folder keeps "
              "every result", file=sys.stderr, flush=True)


def write_status(run_dir: Path, status: str, results: Results, tracker: Tracker, reason: str | None = None) -> None:
    """``status.json``: whether the run is RUNNING/FINISHED/FAILED/KILLED, how far it got, and any
    tracking outage — what a script driving many runs checks."""
    if not is_main_process():
        return
    warn_tracking(tracker)
    ckpt = latest_checkpoint(run_dir)
    info = {"status": status, "stages_done": results.stages_done, "tasks": results.num_tasks, "reason": reason,
            "checkpoint": str(ckpt.path.relative_to(run_dir)) if ckpt else None,
            "tracking": {"run_id": tracker.run_id, "error": tracker.error, "seconds": round(tracker.seconds, 3)}}
    tmp = run_dir / "status.json.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    tmp.replace(run_dir / "status.json")


def final_metrics(results: Results) -> dict[str, float]:
    """Summary metrics of the finished run, under ``final/``."""
    out = final_retention_metrics(results) if results.stages_done else {}  # final/probe_acc, final/recoverable_share, ...
    for name in ("live", "task_aware", "ncm"):
        if name == "ncm" and name not in results.matrices:  # only with eval.ncm
            continue
        for metric, value in results.summary(name).items():
            out[f"final/{metric}" + ("" if name == "live" else f"_{name}")] = value
    out["final/run_seconds"] = results.timings.get("run_seconds", float("nan"))
    # Training alone (no evaluation, probes or loading): what a strategy itself costs.
    train = [v for k, v in results.timings.items() if k.startswith("train_seconds/")]
    out["final/train_seconds"] = sum(train) if train else float("nan")
    return out


def write_outputs(results: Results, run_dir: Path) -> None:
    """Results JSON and one CSV per matrix (called after every stage and on failure); main process only."""
    if not is_main_process():
        return
    results.save(run_dir / "results.json")
    for name in results.matrices:
        write_matrix_csv(results, name, run_dir / f"matrix_{name}.csv")


__all__ = ["RunOutcome", "run_experiment", "validate"]
