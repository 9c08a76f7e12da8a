"""One ``cl-nlp run``, as a recipe: check the config, build the run, fit it, report.

Read top to bottom, :func:`run_experiment` is the whole run: the folder's life (lock, config,
status, outputs, checkpoints, failure) is :class:`cl_nlp.run_record.RunFolder`; what the run is
about (scenario, classes, padding id, device, seed) is one :class:`cl_nlp.run_context.RunContext`
handed to the strategy, the evaluator and the trainer; the metric keys are
:mod:`cl_nlp.evaluation.metric_keys`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from cl_nlp.config import ExperimentConfig
from cl_nlp.evaluation.evaluator import Evaluator, ProbeSettings
from cl_nlp.evaluation.metric_keys import final_metrics
from cl_nlp.evaluation.report import format_matrix, format_summary
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.verdict import closing_note, write_run_report
from cl_nlp.heads import task_class_matrix
from cl_nlp.models import build_model, check_model, load_tokenizer
from cl_nlp.progress import RunProgress, plan_run, resolve_mode
from cl_nlp.run_context import RunContext
from cl_nlp.run_outputs import TABLE_FILE, accuracy_table, finish_folder
from cl_nlp.run_record import RunFolder
from cl_nlp.runtime.checkpoint import restore_checkpoint
from cl_nlp.runtime.distributed import main_process_time
from cl_nlp.runtime.run_folder import check_output, check_run_name
from cl_nlp.strategies import build_strategy, strategy_label, strategy_options
from cl_nlp.streams import Stream, build_stream, stream_options
from cl_nlp.task_data import TaskData, tokenize_stream
from cl_nlp.tracking import Tracker
from cl_nlp.tracking_ui import ui_hint
from cl_nlp.training import StageReport, Trainer, make_accelerator

Echo = Callable[[str], None]


@dataclass
class RunOutcome:
    """What :func:`run_experiment` returns: the folder, the results and the tracker's run id."""

    run_dir: Path
    results: Results
    run_id: str | None
    seconds: float
    tracking_error: str | None = None  # set when MLflow logging failed part-way (results are complete on disk)
    tracking_ended: bool | None = None  # False: the MLflow run's final status never reached the server


def run_experiment(cfg: ExperimentConfig, tracker: Tracker | None = None, echo: Echo = print,
                   show_progress: bool | None = None, resume: bool = False) -> RunOutcome:
    """Run the experiment ``cfg`` end to end and return where its results are.

    With ``resume=True`` the run folder's newest checkpoint is loaded and training continues
    with the next task, logging into the same MLflow run (see :mod:`cl_nlp.runtime.checkpoint`).
    """
    started = time.perf_counter()
    stream = validate(cfg)
    # Under `accelerate launch` this joins the process group: every process runs this function,
    # only the main one talks to MLflow, prints and writes the run folder (docs/distributed.md).
    accelerator = make_accelerator(cfg.train)
    main = accelerator.is_main_process
    echo = echo if main else _quiet
    run_name = cfg.run_name or default_run_name(cfg, main_process_time())
    with RunFolder.open(cfg, run_name, resume, tracker, writes=main) as folder:
        seed_everything(cfg.seed)
        tokenizer = load_tokenizer(cfg.model.name_or_path, cfg.model.trust_remote_code)
        data = tokenize_stream(stream, tokenizer, cfg.model.max_length)
        ckpt = folder.checkpoint
        results = ckpt.results() if ckpt else Results(stream.task_names, stream.scenario)
        folder.start(run_name, cfg, stream, results)
        echo(f"run {run_name}: {cfg.strategy.name} on {stream.name} ({stream.scenario}, {len(stream)} tasks, "
             f"{stream.num_classes} classes) -> {folder.path}" + (f", resumed after task {ckpt.stage}" if ckpt else ""))
        with folder.recording_failure(results):
            trainer = build_trainer(cfg, stream, data, tokenizer, accelerator, results, folder, show_progress)
            fit(trainer, data, cfg, folder, echo, show_progress)
            results.timings["run_seconds"] = seconds = time.perf_counter() - started
            verdict, kept = report(trainer, results, cfg, stream, tokenizer, folder)
        held = "; ".join(x for x in (folder.end(results, cfg.save.keep_checkpoint), kept) if x)
        echo_results(results, verdict, f"\nwall time {seconds:.0f}s; results in {folder.path} ({held})", echo)
        echo_tracking(folder.tracker, cfg, time.perf_counter() - started, echo)
        tracker = folder.tracker
        return RunOutcome(folder.path, results, tracker.run_id, seconds, tracker.error, tracker.ended)


def validate(cfg: ExperimentConfig) -> Stream:
    """Every check before the model is loaded; returns the built, checked stream (built once per run).

    Option checks come first (instant: where the run writes, the stream's and strategy's options,
    the model's folder and its positions against ``model.max_length``); then the stream is built
    and checked (files, columns, labels, scenario), which is cheap next to loading a model.
    """
    check_run_name(cfg.run_name, "run_name (--run-name)")
    check_output(cfg.output)
    stream_options(cfg.stream.name, cfg.stream.options)
    strategy_options(cfg.strategy.name, cfg.strategy.options)
    check_model(cfg.model.name_or_path, cfg.model.max_length, cfg.model.trust_remote_code)
    return build_stream(cfg.stream.name, cfg.stream.options)


def build_trainer(cfg: ExperimentConfig, stream: Stream, data: list[TaskData], tokenizer: Any, accelerator: Any,
                  results: Results, folder: RunFolder, show_progress: bool | None) -> Trainer:
    """Model, run context, strategy, evaluator and trainer, restored from the folder's checkpoint if any."""
    seed_everything(cfg.seed)
    model = build_model(cfg.model.name_or_path, stream.num_classes, cfg.model.pooling, cfg.model.trust_remote_code)
    context = RunContext(stream.scenario, len(stream), stream.num_classes, cfg.seed, cfg.train.batch_size,
                         accelerator.device, pad_id=tokenizer.pad_token_id, task_classes=task_class_matrix(stream))
    strategy = build_strategy(cfg.strategy.name, cfg.strategy.options, context)
    probes = ProbeSettings(cfg.eval.probe_per_class, cfg.eval.probe_l2, cfg.eval.layerwise_probes, cfg.seed)
    evaluator = Evaluator(results, [d.test for d in data], context, cfg.eval.batch_size, cfg.eval.future_tasks,
                          trains=[d.train for d in data], probes=probes if cfg.eval.probes else None,
                          class_names=stream.class_names, ncm=cfg.eval.ncm)
    # A strategy may bring its own loop (``avalanche:*`` run Avalanche's); the default is cl-nlp's.
    trainer_cls = getattr(strategy, "trainer_cls", Trainer)
    trainer = trainer_cls(model, strategy, evaluator, folder.tracker, cfg.train, context, accelerator, show_progress)
    if folder.checkpoint:
        restore_checkpoint(folder.checkpoint, trainer)
    return trainer


def fit(trainer: Trainer, data: list[TaskData], cfg: ExperimentConfig, folder: RunFolder, echo: Echo,
        show_progress: bool | None) -> None:
    """Train on every task not yet learned, recording and checkpointing after each stage."""
    start = folder.checkpoint.stage if folder.checkpoint else 0
    # Bars on a terminal, plain lines elsewhere, with the run's ETA (cl_nlp.progress).
    progress = RunProgress(plan_run(data, trainer.evaluator, cfg.train.batch_size * trainer.accelerator.num_processes,
                                    cfg.train.epochs, start), echo, resolve_mode(show_progress) if folder.writes else "off")
    trainer.evaluator.progress = progress.evaluation
    trainer.progress = progress
    trainer.stage_callbacks.append(partial(record_stage, trainer.evaluator.results, folder, progress, echo, len(data)))
    # Keep this callback last: the checkpoint must hold the RNG state the next stage starts
    # from, after everything else done at this stage has drawn from the generators.
    trainer.stage_callbacks.append(partial(checkpoint_stage, trainer, cfg, folder))
    trainer.fit(data, start_stage=start)
    progress.close()


def record_stage(results: Results, folder: RunFolder, progress: RunProgress, echo: Echo, stages: int,
                 report: StageReport) -> None:
    """The stage's timings in the results, the folder's outputs, one line on the console."""
    if report.stage == 0:  # the untrained model, measured before the first task
        results.timings["eval_before_seconds"] = report.eval_seconds
        return
    results.timings[f"train_seconds/{report.task}"] = report.train_seconds
    results.timings[f"eval_seconds/{report.task}"] = report.eval_seconds
    folder.write_outputs(results)
    progress.close()
    echo(f"  stage {report.stage}/{stages} {report.task}: live acc {report.metrics['acc_avg']:.3f} "
         f"(this task {report.metrics['acc/' + report.task]:.3f}), train {report.train_seconds:.0f}s, "
         f"eval {report.eval_seconds:.0f}s; {progress.timing()}")


def checkpoint_stage(trainer: Trainer, cfg: ExperimentConfig, folder: RunFolder, report: StageReport) -> None:
    """The checkpoint after every learned task (none for the untrained model)."""
    if report.stage:
        folder.save_checkpoint(trainer, report.stage, cfg, trainer.evaluator.results)


def report(trainer: Trainer, results: Results, cfg: ExperimentConfig, stream: Stream, tokenizer: Any,
           folder: RunFolder) -> tuple[str, str]:
    """The finished run's outputs: results, report.md and figures, final metrics, what the folder keeps.

    Returns the verdict and what the folder kept (checkpoint, saved model).
    """
    tracker = folder.tracker
    folder.write_outputs(results)
    verdict = write_run_report(results, folder.path) if folder.writes else ""  # report.md, figures, class reports
    tracker.set_description(verdict)
    tracker.log_metrics(final_metrics(results), step=len(stream))
    tracker.log_table(accuracy_table(results), TABLE_FILE)
    kept = "; ".join(finish_folder(cfg, folder.path, trainer, tokenizer, stream)) if folder.writes else ""
    # FINISHED before the folder's last upload, so MLflow's copy of status.json says so too.
    folder.write_status("FINISHED", results)
    tracker.log_artifact(folder.path)
    return verdict, kept


def echo_results(results: Results, verdict: str, last_line: str, echo: Echo) -> None:
    """The live accuracy matrix, the summary, the plain-words verdict, where the results are."""
    echo("\nLive accuracy (rows: after training on task; columns: task evaluated)")
    echo(format_matrix(results, "live"))
    echo("\n" + format_summary(results))
    echo("\n" + closing_note(results, verdict))
    echo(last_line)


def echo_tracking(tracker: Tracker, cfg: ExperimentConfig, total_seconds: float, echo: Echo) -> None:
    """The MLflow run, what its calls cost, and how to look at it."""
    if tracker.run_id and not tracker.error:
        echo(f"MLflow run {tracker.run_id} (experiment {cfg.tracking.experiment!r}; its calls took "
             f"{tracker.seconds:.1f}s, {100 * tracker.seconds / total_seconds:.1f}% of the run)")
        echo(ui_hint(tracker))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_name(cfg: ExperimentConfig, now: datetime | None = None) -> str:
    """``<strategy>-<stream>-seed<seed>-<time>``."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    strategy = strategy_label(cfg.strategy.name).replace(":", "-")  # no colons (Windows) nor slashes in folder names
    return f"{strategy}-{cfg.stream.name}-seed{cfg.seed}-{stamp}"


def _quiet(message: str) -> None:
    """The echo of processes other than the main one: one copy of the output is enough."""


__all__ = ["RunOutcome", "final_metrics", "run_experiment", "tokenize_stream", "validate"]
