"""One ``cl-nlp run``: validate the config, build stream/model/strategy, train, record everything.

Everything a run produces lands in its run folder first (config, results JSON, CSVs), written
after every stage, and is then mirrored to MLflow — so a tracking outage never loses a result.
"""

from __future__ import annotations

import random
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
from cl_nlp.config import ExperimentConfig, flatten
from cl_nlp.evaluation.evaluator import Evaluator
from cl_nlp.evaluation.report import format_matrix, format_summary, write_matrix_csv
from cl_nlp.evaluation.results import Results
from cl_nlp.heads import task_class_matrix
from cl_nlp.models import EMBEDDED_MODEL, build_model, load_tokenizer, resolve_model_path
from cl_nlp.strategies import StrategyContext, build_strategy, strategy_options
from cl_nlp.streams import Stream, build_stream, stream_options
from cl_nlp.tracking import Tracker, git_commit, make_tracker
from cl_nlp.training import StageReport, TaskData, Trainer, make_accelerator


@dataclass
class RunOutcome:
    """What :func:`run_experiment` returns: the folder, the results and the tracker's run id."""

    run_dir: Path
    results: Results
    run_id: str | None
    seconds: float


def validate(cfg: ExperimentConfig) -> None:
    """Every check that needs no model or data: fails fast, before anything heavy is loaded."""
    stream_options(cfg.stream.name, cfg.stream.options)
    strategy_options(cfg.strategy.name, cfg.strategy.options)
    resolve_model_path(cfg.model.name_or_path)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_name(cfg: ExperimentConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{cfg.strategy.name}-{cfg.stream.name}-seed{cfg.seed}-{stamp}"


def tokenize_stream(stream: Stream, tokenizer, max_length: int) -> list[TaskData]:
    """Every task's splits tokenized once for the whole run."""
    return [TaskData(i, t, encode(t.train, tokenizer, max_length, i), encode(t.test, tokenizer, max_length, i))
            for i, t in enumerate(stream.tasks)]


def run_experiment(cfg: ExperimentConfig, tracker: Tracker | None = None, echo: Callable[[str], None] = print,
                   show_progress: bool | None = None) -> RunOutcome:
    """Run the experiment ``cfg`` end to end and return where its results are."""
    started = time.perf_counter()
    validate(cfg)
    run_name = cfg.run_name or default_run_name(cfg)
    run_dir = Path(cfg.output) / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")

    tracker = tracker or make_tracker(cfg.tracking.enabled, cfg.tracking.uri, cfg.tracking.experiment)
    seed_everything(cfg.seed)
    stream = build_stream(cfg.stream.name, cfg.stream.options)
    tokenizer = load_tokenizer(cfg.model.name_or_path, cfg.model.trust_remote_code)
    data = tokenize_stream(stream, tokenizer, cfg.model.max_length)
    results = Results(stream.task_names, stream.scenario)

    tracker.start(run_name, flatten(cfg.to_dict()), {
        "strategy": cfg.strategy.name, "stream": cfg.stream.name, "scenario": stream.scenario,
        "seed": str(cfg.seed), "model": cfg.model.name_or_path or EMBEDDED_MODEL,
        "cl_nlp_version": cl_nlp.__version__, "git_commit": git_commit(), "run_dir": str(run_dir.resolve()),
    })
    echo(f"run {run_name}: {cfg.strategy.name} on {stream.name} ({stream.scenario}, {len(stream)} tasks, "
         f"{stream.num_classes} classes) -> {run_dir}")
    try:
        accelerator = make_accelerator(cfg.train)
        seed_everything(cfg.seed)
        model = build_model(cfg.model.name_or_path, stream.num_classes, cfg.model.pooling, cfg.model.trust_remote_code)
        task_classes = task_class_matrix(stream)
        context = StrategyContext(stream.scenario, len(stream), stream.num_classes, cfg.seed, cfg.train.batch_size,
                                  accelerator.device)
        strategy = build_strategy(cfg.strategy.name, cfg.strategy.options, context)
        evaluator = Evaluator(results, [d.test for d in data], task_classes, tokenizer.pad_token_id,
                              cfg.eval.batch_size, cfg.eval.future_tasks, accelerator.device)
        trainer = Trainer(model, strategy, evaluator, tracker, cfg.train, task_classes, stream.scenario,
                          tokenizer.pad_token_id, cfg.seed, accelerator, show_progress)

        def after_stage(report: StageReport) -> None:
            write_outputs(results, run_dir)
            echo(f"  stage {report.stage}/{len(stream)} {report.task}: live acc {report.metrics['acc_avg']:.3f} "
                 f"(this task {report.metrics['acc/' + report.task]:.3f}), train {report.train_seconds:.0f}s, "
                 f"eval {report.eval_seconds:.0f}s")

        trainer.stage_callbacks.append(after_stage)
        trainer.fit(data)
    except BaseException as exc:
        write_outputs(results, run_dir)
        tracker.end("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    seconds = time.perf_counter() - started
    results.timings["run_seconds"] = seconds
    write_outputs(results, run_dir)
    tracker.log_metrics(final_metrics(results), step=len(stream))
    tracker.log_artifact(run_dir)
    tracker.end("FINISHED")
    echo("\nLive accuracy (rows: after training on task; columns: task evaluated)")
    echo(format_matrix(results, "live"))
    echo("\n" + format_summary(results))
    echo(f"\nwall time {seconds:.0f}s; results in {run_dir}")
    if tracker.run_id:
        echo(f"MLflow run {tracker.run_id} (experiment {cfg.tracking.experiment!r}); "
             f"forgetting curves: `mlflow ui`, then {getattr(tracker, 'compare_url', lambda: '')()}")
    return RunOutcome(run_dir, results, tracker.run_id, seconds)


def final_metrics(results: Results) -> dict[str, float]:
    """Summary metrics of the finished run, under ``final/``."""
    out = {}
    for name in results.matrices:
        for metric, value in results.summary(name).items():
            out[f"final/{metric}" + ("" if name == "live" else f"_{name}")] = value
    out["final/run_seconds"] = results.timings.get("run_seconds", float("nan"))
    return out


def write_outputs(results: Results, run_dir: Path) -> None:
    """Results JSON and one CSV per matrix (called after every stage and on failure)."""
    results.save(run_dir / "results.json")
    for name in results.matrices:
        write_matrix_csv(results, name, run_dir / f"matrix_{name}.csv")


__all__ = ["RunOutcome", "run_experiment", "validate"]
