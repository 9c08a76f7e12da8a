"""A sweep: every (strategy, seed) of a grid as one run, nested under one MLflow parent run.

The children are ordinary ``cl-nlp run`` experiments (same config, only strategy, seed and
run folder changed), so each one is a complete run on its own. They run one after another,
seeds in the outer loop, so a sweep stopped half-way already holds every strategy for the
first seeds. A child that fails — a bad option, a crash — is recorded as a FAILED child run
with its reason (and its traceback in the run folder's ``error.txt``) and the sweep goes on.

At the end the finished children are compared (:mod:`cl_nlp.comparison.comparison`): the summary table
(mean ± sample std over seeds), forgetting curves and final matrices go to
``<output>/<sweep>/comparison/`` and to the parent run (artifacts + ``summary/<strategy>/*``
metrics). The parent ends FINISHED when at least one child finished — its description and
the tag ``failed_children`` say how many failed and why — and FAILED when every child failed.
"""

from __future__ import annotations

import copy
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import cl_nlp
from cl_nlp.comparison.comparison import (
    ComparedRun,
    Comparison,
    echo_comparison,
    log_comparison,
    plural,
    write_comparison,
)
from cl_nlp.config import SEED_MAX, ComponentConfig, ExperimentConfig, flatten, parse_override
from cl_nlp.errors import UserError, shown
from cl_nlp.tracking import MlflowTracker, Tracker, git_commit, make_tracker
from cl_nlp.tracking_ui import ui_hint


def parse_names(text: str, what: str) -> list[str]:
    """``"naive,ewc"`` → ``["naive", "ewc"]``; empty items and repeats are refused."""
    items = [x.strip() for x in text.split(",")]
    if not all(items):
        raise UserError(f"--{what}: empty item in {shown(text)}; give a comma-separated list, e.g. naive,ewc")
    if len(set(items)) != len(items):
        raise UserError(f"--{what}: {shown(text)} names an item twice")
    return items


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]``."""
    items = parse_names(text, "seeds")
    try:
        seeds = [int(x) for x in items]
    except ValueError:
        raise UserError(f"--seeds: expected comma-separated integers, e.g. 0,1,2; got {shown(text)}") from None
    for seed in seeds:
        if not 0 <= seed <= SEED_MAX:
            raise UserError(f"--seeds: seed must be in [0, {SEED_MAX}], got {shown(seed, 60)}")
    return seeds


def parse_strategy_sets(items: tuple[str, ...] | list[str], strategies: list[str]) -> dict[str, dict]:
    """``["ewc.lambda=100"]`` → ``{"ewc": {"lambda": 100}}`` (values parsed as YAML scalars)."""
    out: dict[str, dict] = {}
    for text in items:
        name, dot, rest = text.partition(".")
        if not dot or "=" not in rest:
            raise UserError(f"--strategy-set {shown(text)}: expected STRATEGY.KEY=VALUE, e.g. ewc.lambda=100")
        if name not in strategies:
            raise UserError(f"--strategy-set {shown(text)}: {shown(name, 60)} is not in --strategies ({', '.join(strategies)})")
        keys, value = parse_override(rest)
        out.setdefault(name, {})[".".join(keys)] = value
    return out


def child_config(base: ExperimentConfig, sweep_name: str, strategy: str, seed: int, options: dict) -> ExperimentConfig:
    """The base config with this child's strategy, seed and run folder ``<output>/<sweep>/<strategy>-seed<seed>``."""
    cfg = copy.deepcopy(base)
    cfg.strategy = ComponentConfig(strategy, {**base.strategy.options, **options})
    cfg.seed = seed
    cfg.output = str(Path(base.output) / sweep_name)
    cfg.run_name = f"{strategy}-seed{seed}"
    return cfg


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` returns."""

    name: str
    parent_run_id: str | None
    children: list[ComparedRun] = field(default_factory=list)
    comparison: Comparison | None = None

    @property
    def failed(self) -> list[ComparedRun]:
        return [c for c in self.children if c.status != "FINISHED"]


def validate_sweep(base: ExperimentConfig, strategies: list[str]) -> None:
    """What every child shares is checked once, before anything starts: strategy names, stream, model."""
    from cl_nlp.models import resolve_model_path
    from cl_nlp.runtime.run_folder import check_output, check_run_name
    from cl_nlp.strategies import get_strategy_spec
    from cl_nlp.streams import stream_options

    check_run_name(base.run_name, "run_name (--run-name)")  # the sweep's folder name
    check_output(base.output)
    for name in strategies:
        get_strategy_spec(name)
    stream_options(base.stream.name, base.stream.options)
    resolve_model_path(base.model.name_or_path)


def run_sweep(base: ExperimentConfig, strategies: list[str], seeds: list[int],
              strategy_sets: dict[str, dict] | None = None, echo: Callable[[str], None] = print,
              debug: bool = False) -> SweepOutcome:
    """Run every (strategy, seed) of the grid as a child of one parent run; compare them at the end.

    Strategy options in ``base`` apply to every child; ``strategy_sets[name]`` only to ``name``.

    Example:
        >>> outcome = run_sweep(load_config(None, ["train.epochs=1"]), ["naive", "ewc"], [0, 1])  # doctest: +SKIP
        >>> print(outcome.comparison.table)  # doctest: +SKIP
    """
    validate_sweep(base, strategies)
    strategy_sets = strategy_sets or {}
    name = base.run_name or f"sweep-{base.stream.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder = Path(base.output) / name
    if folder.is_dir() and any(folder.iterdir()):  # every child would refuse its used run folder
        raise UserError(f"sweep folder {shown(str(folder))} already holds runs; pick another --run-name")
    folder.mkdir(parents=True, exist_ok=True)
    parent = make_tracker(base.tracking.enabled, base.tracking.uri, base.tracking.experiment)
    params = {**flatten(base.to_dict()), "sweep.strategies": ",".join(strategies),
              "sweep.seeds": ",".join(map(str, seeds))}
    parent.start(name, params, {"cl_nlp.kind": "sweep", "stream": base.stream.name, "strategies": ",".join(strategies),
                                "seeds": ",".join(map(str, seeds)), "cl_nlp_version": cl_nlp.__version__,
                                "git_commit": git_commit(), "run_dir": str(folder.resolve())})
    outcome = SweepOutcome(name, parent.run_id)
    grid = [(s, seed) for seed in seeds for s in strategies]
    echo(f"sweep {name}: {plural(len(strategies), 'strategy', 'strategies')} x {plural(len(seeds), 'seed')} = {plural(len(grid), 'run')} "
         f"on {base.stream.name}"
         + (f" (MLflow parent run {parent.run_id})" if parent.run_id else "") + f" -> {folder}")
    try:
        for k, (strategy, seed) in enumerate(grid, 1):
            cfg = child_config(base, name, strategy, seed, strategy_sets.get(strategy, {}))
            echo(f"\n[{k}/{len(grid)}] {strategy} seed {seed}")
            child = _run_child(cfg, parent, echo, debug)
            outcome.children.append(child)
            echo(f"[{k}/{len(grid)}] {strategy} seed {seed}: {_child_line(child)}")
        _finish(outcome, parent, folder, echo)
    except BaseException as exc:
        done = len(outcome.children)
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        parent.end(status, f"{type(exc).__name__} after {done} of {len(grid)} runs: {exc}")
        raise
    return outcome


def _run_child(cfg: ExperimentConfig, parent: Tracker, echo: Callable[[str], None], debug: bool) -> ComparedRun:
    from cl_nlp.evaluation.metric_keys import final_metrics
    from cl_nlp.experiment import run_experiment

    params = {k: str(v) for k, v in flatten(cfg.to_dict()).items()}
    child = ComparedRun(None, cfg.run_name, cfg.strategy.name, cfg.stream.name, str(cfg.seed), "FAILED", params=params)
    tracker: Tracker = Tracker()
    try:
        if isinstance(parent, MlflowTracker):
            tracker = MlflowTracker(parent.uri, cfg.tracking.experiment, parent_run_id=parent.run_id)
        result = run_experiment(cfg, tracker=tracker, echo=lambda text: echo(_indent(text)))
    except Exception as exc:  # a child's failure is recorded; the sweep goes on (Ctrl-C still stops it)
        child.reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if debug:
            traceback.print_exc()
        _record_failure(cfg, tracker, child.reason, traceback.format_exc())
        child.run_id = tracker.run_id
        return child
    finally:
        release_memory()
    child.run_id, child.results, child.status = result.run_id, result.results, "FINISHED"
    child.final = final_metrics(result.results)
    if result.run_id and not getattr(result, "tracking_error", None):
        # The tracked numbers are the reference: other code may log more final metrics.
        try:
            child.final = dict(tracker.client.get_run(result.run_id).data.metrics)
        except Exception as exc:  # the server went away: the computed metrics are the same numbers
            echo(f"    (could not read run {result.run_id} back from MLflow: {type(exc).__name__}; using local results)")
    return child


def release_memory() -> None:
    """Drop the finished child's model before the next one is built (matters on a GPU)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _record_failure(cfg: ExperimentConfig, tracker: Tracker, reason: str, trace: str) -> None:
    """Make the failure visible where people look: a FAILED child run and ``error.txt``."""
    run_dir = Path(cfg.output) / str(cfg.run_name)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.txt").write_text(trace, encoding="utf-8")
    if not isinstance(tracker, MlflowTracker):
        return
    try:
        if tracker.run_id is None:  # it failed before its run was opened (e.g. a bad strategy option)
            tracker.start(str(cfg.run_name), flatten(cfg.to_dict()), {
                "strategy": cfg.strategy.name, "stream": cfg.stream.name, "seed": str(cfg.seed),
                "cl_nlp_version": cl_nlp.__version__, "run_dir": str(run_dir.resolve())})
            tracker.log_artifact(run_dir / "error.txt")
            tracker.end("FAILED", reason)
        else:
            tracker.log_artifact(run_dir / "error.txt")
            if tracker.client.get_run(tracker.run_id).info.status == "RUNNING":  # failed after its own handler
                tracker.end("FAILED", reason)
    except Exception:  # tracking itself is what failed: the reason is printed and in error.txt
        pass


def _finish(outcome: SweepOutcome, parent: Tracker, folder: Path, echo: Callable[[str], None]) -> None:
    failed = outcome.failed
    notes = [f"{c.strategy} seed {c.seed} FAILED: {c.reason}" for c in failed]
    if len(failed) == len(outcome.children):
        echo("\nevery run of the sweep failed:\n" + "\n".join("  " + n for n in notes))
        parent.set_description("Every child run failed.\n\n" + "\n".join(f"- {n}" for n in notes))
        parent.end("FAILED", f"all {len(failed)} child runs failed")
        return
    outcome.comparison = write_comparison(outcome.children, folder / "comparison", title=f"Sweep {outcome.name}")
    echo(f"\nSummary of sweep {outcome.name} (mean ± sample std over seeds)")
    echo_comparison(outcome.comparison, echo)
    if parent.run_id:
        try:
            log_comparison(parent.client, parent.run_id, outcome.comparison)
            parent.client.set_tag(parent.run_id, "failed_children", str(len(failed)))
        except Exception as exc:  # the files are on disk; say so rather than lose the sweep's end
            echo(f"warning: could not log the summary to MLflow run {parent.run_id}: {type(exc).__name__}: {exc}")
    parent.set_description(outcome.comparison.table + (
        f"\n\n{len(failed)} of {len(outcome.children)} child runs failed:\n" + "\n".join(f"- {n}" for n in notes)
        if failed else ""))
    parent.end("FINISHED")
    if failed:
        echo(f"\n{len(failed)} of {len(outcome.children)} runs failed:\n" + "\n".join("  " + n for n in notes))
    if parent.run_id:
        echo(f"MLflow parent run {parent.run_id}")
        echo(ui_hint(parent))


def _child_line(child: ComparedRun) -> str:
    if child.status != "FINISHED":
        return f"FAILED: {child.reason}" + (f" (run {child.run_id})" if child.run_id else "")
    f = child.final
    return (f"finished: ACC {f.get('final/acc', float('nan')):.3f}, BWT {f.get('final/bwt', float('nan')):+.3f}"
            + (f" (run {child.run_id})" if child.run_id else ""))


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.splitlines())
