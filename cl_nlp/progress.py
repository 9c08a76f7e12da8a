"""What a run is doing while it runs: per-phase progress and an ETA for the whole run.

A run spends its time in two kinds of work: training steps, and examples forwarded for
evaluation (each stage's test splits and probe samples; the probes' fits happen in between and
count as evaluation time). :func:`plan_run` counts both for every stage before anything runs;
:class:`RunProgress` then measures the seconds per step and per evaluated example as the run
goes, and its ETA is the remaining planned work at those rates::

    ETA = remaining training steps x seconds per step + remaining eval examples x seconds per example

How it shows depends on where the output goes:

- on a terminal (stderr is a TTY): one tqdm bar per phase (training a task, evaluating a
  stage), with the run's ETA in the postfix;
- anywhere else (a log file, a notebook, a cluster log): plain lines, no bar redraws — one when a
  phase starts, then one at least every ``CL_NLP_PROGRESS_SECONDS`` seconds (default 30) of work.

Example:
    >>> lines = []
    >>> progress = RunProgress(WorkPlan(train_steps=[0, 4], eval_examples=[8, 8]), lines.append,
    ...                        mode="lines", interval=0.0)
    >>> progress.evaluation(0, "t1 test", 8)
    >>> lines[0].split("] ")[1]
    'evaluating before training: 8 examples (test splits and probe samples)'
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

ENV_INTERVAL = "CL_NLP_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0  # a log shows life at least this often (seconds of work)
Mode = Literal["bar", "lines", "off"]


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = round(max(seconds, 0.0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def progress_interval() -> float:
    """Seconds between plain progress lines: ``$CL_NLP_PROGRESS_SECONDS`` or 30."""
    raw = os.environ.get(ENV_INTERVAL)
    try:
        return max(float(raw), 0.0) if raw else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL


def resolve_mode(show: bool | None) -> Mode:
    """``True``: bars; ``False``: nothing; ``None``: bars on a terminal, plain lines elsewhere."""
    if show is False:
        return "off"
    if show is True:
        return "bar"
    stream = sys.stderr
    return "bar" if stream is not None and hasattr(stream, "isatty") and stream.isatty() else "lines"


@dataclass
class WorkPlan:
    """Work expected per stage (index 0 = the evaluation before training): training steps and
    examples forwarded for evaluation. Counts of a phase replace the plan once it starts."""

    train_steps: list[int]
    eval_examples: list[int]


def plan_run(data: list[Any], evaluator: Any, batch_size: int, epochs: int, start_stage: int = 0) -> WorkPlan:
    """Count each stage's work from the tokenized tasks and the evaluator's schedule.

    Training steps assume each task trains on its own training split (a strategy that trains on
    more, like ``joint``, reports its real count when the task starts); evaluation counts the
    test splits of :meth:`Evaluator.tasks_at` plus each probed task's probe sample.
    """
    stages = len(data)
    steps = [0] + [epochs * math.ceil(len(d.train) / batch_size) for d in data]
    samples = getattr(evaluator, "probe_samples", None)
    examples = []
    for stage in range(stages + 1):
        tests = sum(len(evaluator.tests[j]) for j in evaluator.tasks_at(stage))
        probed = range(stages) if stage == 0 else range(stage)
        examples.append(tests + (sum(len(samples[j]) for j in probed) if samples is not None else 0))
    for stage in range(start_stage + 1 if start_stage else 0):  # a resumed run has done these already
        steps[stage] = examples[stage] = 0
    return WorkPlan(steps, examples)


class RunProgress:
    """Shows the progress of one run and estimates when it ends (see the module docstring).

    ``echo`` receives the plain lines (the run's own output stream); ``clock`` is injectable
    for tests; ``whole_run=False`` (a trainer used on its own) leaves the task count out of labels.
    """

    def __init__(self, plan: WorkPlan, echo: Callable[[str], None] = print, mode: Mode = "lines",
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic, whole_run: bool = True):
        self.plan = plan
        self.echo = echo
        self.mode = mode
        self.interval = progress_interval() if interval is None else interval
        self.clock = clock
        self.started = self.last_event = self.last_line = clock()
        self.stages = len(plan.train_steps) - 1
        self.whole_run = whole_run
        self.done = {"train": [0] * (self.stages + 1), "eval": [0] * (self.stages + 1)}
        self.seconds = {"train": 0.0, "eval": 0.0}
        self.units = {"train": 0, "eval": 0}
        self.phase: tuple[str, int] | None = None  # (kind, stage) of the phase in progress
        self.what = ""
        self.task = ""
        self.postfix: dict[str, str] = {}
        self._bar = None

    # ---- what the trainer and the evaluator report ------------------------------------------

    def training(self, stage: int, task: str, total_steps: int) -> TrainingPhase:
        """Start training task ``stage`` (1-based); returns the bar-like object the loop updates."""
        self.plan.train_steps[stage] = total_steps
        self._start("train", stage, task)
        return TrainingPhase(self)

    def evaluation(self, stage: int, what: str, examples: int) -> None:
        """``examples`` more examples of stage ``stage``'s evaluation are being forwarded (``what``:
        e.g. ``"clinc2 test"``): the evaluator's callback."""
        if self.phase != ("eval", stage):
            self._start("eval", stage, "")
        self.what = what
        self.advance("eval", stage, examples)

    def advance(self, kind: str, stage: int, units: int) -> None:
        now = self.clock()
        self.seconds[kind] += now - self.last_event  # every second of the run goes to the kind of work that ends it
        self.last_event = now
        self.units[kind] += units
        self.done[kind][stage] += units
        if self._bar is not None:
            self._bar.update(units)
            self._bar.set_postfix_str(self._postfix(), refresh=False)
        elif self.mode == "lines" and now - self.last_line >= self.interval:
            self._line(self._status())

    def close(self) -> None:
        """End the phase in progress (its bar disappears)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.phase = None

    # ---- estimates ---------------------------------------------------------------------------

    def rate(self, kind: str) -> float | None:
        """Seconds per unit of ``kind`` measured so far (``None`` before the first unit)."""
        return self.seconds[kind] / self.units[kind] if self.units[kind] else None

    def eta(self) -> float | None:
        """Seconds of planned work left at the measured rates; ``None`` while a rate is unknown."""
        total = 0.0
        for kind, planned in (("train", self.plan.train_steps), ("eval", self.plan.eval_examples)):
            left = sum(max(p - d, 0) for p, d in zip(planned, self.done[kind]))
            if left:
                rate = self.rate(kind)
                if rate is None:
                    return None
                total += left * rate
        return total

    def elapsed(self) -> float:
        return self.clock() - self.started

    def timing(self) -> str:
        """``run 3m10s so far, ETA ~9m40s``: the clock part of the per-stage line."""
        eta = self.eta()
        text = f"run {format_duration(self.elapsed())} so far"
        if eta is None:
            return text + ", ETA after the first training steps"
        return text + (f", ETA ~{format_duration(eta)}" if eta >= 0.5 else "")

    # ---- display -----------------------------------------------------------------------------

    def _start(self, kind: str, stage: int, task: str) -> None:
        self.close()
        self.phase = (kind, stage)
        self.task = task
        self.what = ""
        if self.mode == "off":
            return
        total = (self.plan.train_steps if kind == "train" else self.plan.eval_examples)[stage]
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=self._label(), unit="step" if kind == "train" else "ex",
                             leave=False, dynamic_ncols=True)
        else:
            unit = (f"{total:,} steps" if kind == "train"
                    else f"{total:,} examples (test splits and probe samples)")
            self._line(f"{self._label()}: {unit}")

    def _label(self) -> str:
        kind, stage = self.phase or ("eval", 0)
        task = f"task {stage}/{self.stages}" if self.whole_run else f"task {stage}"
        if kind == "train":
            return f"{task} {self.task}: training"
        return "evaluating before training" if stage == 0 else f"{task}: evaluating"

    def _status(self) -> str:
        kind, stage = self.phase or ("eval", 0)
        total = (self.plan.train_steps if kind == "train" else self.plan.eval_examples)[stage]
        done = self.done[kind][stage]
        share = f" ({100 * done / total:.0f}%)" if total else ""
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        if kind == "train":
            return f"{self._label()} step {done:,}/{total:,}{share}{extra}; {self.timing()}"
        what = f", {self.what}" if self.what else ""
        return f"{self._label()}: {done:,}/{total:,} examples{share}{what}; {self.timing()}"

    def _postfix(self) -> str:
        eta = self.eta()
        parts = [f"{k} {v}" for k, v in self.postfix.items()]
        parts.append("run ETA " + (format_duration(eta) if eta is not None else "?"))
        return ", ".join(parts)

    def _line(self, text: str) -> None:
        self.last_line = self.clock()
        self.echo(f"  [{format_duration(self.elapsed()):>6}] {text}")


class TrainingPhase:
    """The bar-like handle the training loop updates (``update``, ``set_postfix``, ``close``)."""

    def __init__(self, progress: RunProgress):
        self.progress = progress
        self.stage = progress.phase[1] if progress.phase else 0

    def update(self, steps: int = 1) -> None:
        self.progress.advance("train", self.stage, steps)

    def set_postfix(self, **values: Any) -> None:
        self.progress.postfix = {k: str(v) for k, v in values.items()}

    def close(self) -> None:
        self.progress.postfix = {}
        self.progress.close()


def training_bar(trainer: Any, index: int, name: str, total_steps: int) -> TrainingPhase:
    """The progress handle of task ``index`` (0-based) for ``trainer``'s loop: its run's
    :class:`RunProgress` when an experiment gave it one (``trainer.progress``), else a display of
    its own (``trainer.show_progress``; silent on processes other than the main one)."""
    progress = getattr(trainer, "progress", None)
    if progress is None:
        accelerator = getattr(trainer, "accelerator", None)
        main = accelerator is None or accelerator.is_main_process
        show = getattr(trainer, "show_progress", None) if main else False
        steps = [0] * (index + 2)
        progress = RunProgress(WorkPlan(steps, [0] * (index + 2)), lambda line: print(line, flush=True),
                               resolve_mode(show), whole_run=False)
    return progress.training(index + 1, name, total_steps)


__all__ = ["RunProgress", "TrainingPhase", "WorkPlan", "format_duration", "plan_run", "progress_interval",
           "resolve_mode", "training_bar"]
