"""What every benchmark here shares: the real cl-nlp pieces for a CLINC stream, and timing.

Benchmarks compare two things *in one process*, repetitions alternated (A B B A A B ...), and
report medians and ratios: on a shared 2-core machine absolute numbers drift by tens of per
cent from minute to minute, while the ratio of two interleaved measurements stays honest.

Nothing here reimplements the training loop: :func:`make_trainer` builds the same
:class:`cl_nlp.training.Trainer` a ``cl-nlp run`` builds.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Idle OpenMP threads sleep instead of spinning (must be set before torch loads). On a machine
# shared with other jobs, spinning threads made each MiniLM step ~10x slower at load 10 on 2
# cores: the measurement was of the scheduler, not the code. Export OMP_WAIT_POLICY=ACTIVE to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from cl_nlp.config import TrainConfig  # noqa: E402
from cl_nlp.evaluation.evaluator import Evaluator  # noqa: E402
from cl_nlp.evaluation.results import Results  # noqa: E402
from cl_nlp.heads import task_class_matrix  # noqa: E402
from cl_nlp.models import build_model, load_tokenizer  # noqa: E402
from cl_nlp.strategies import StrategyContext, build_strategy  # noqa: E402
from cl_nlp.streams import build_stream  # noqa: E402
from cl_nlp.task_data import (
    TaskData,  # noqa: E402
    tokenize_stream,  # noqa: E402
)
from cl_nlp.tracking import Tracker  # noqa: E402
from cl_nlp.training import Trainer, make_accelerator  # noqa: E402


@dataclass
class Bench:
    """A tokenized CLINC stream plus what is needed to build models and trainers for it."""

    model_path: str | None
    stream: object
    tokenizer: object
    data: list[TaskData]
    max_length: int

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id


def clinc_bench(n_tasks: int = 1, classes_per_task: int = 30, train_per_class: int = 40, test_per_class: int = 15,
                model_path: str | None = None, max_length: int = 64) -> Bench:
    """Tasks of the default ``clinc-cil`` stream (same intents, same order), tokenized once."""
    stream = build_stream("clinc-cil", {"n_tasks": n_tasks, "classes_per_task": classes_per_task,
                                        "train_per_class": train_per_class, "test_per_class": test_per_class})
    tokenizer = load_tokenizer(model_path)
    return Bench(model_path, stream, tokenizer, tokenize_stream(stream, tokenizer, max_length), max_length)


def make_trainer(bench: Bench, cfg: TrainConfig, strategy: str = "naive", options: dict | None = None,
                 seed: int = 0, tracker: Tracker | None = None) -> Trainer:
    """A fresh model (seeded) and the cl-nlp Trainer around it, exactly as ``cl-nlp run`` wires them."""
    torch.manual_seed(seed)
    model = build_model(bench.model_path, bench.stream.num_classes)
    task_classes = task_class_matrix(bench.stream)
    accelerator = make_accelerator(cfg)
    context = StrategyContext(bench.stream.scenario, len(bench.stream), bench.stream.num_classes, seed,
                              cfg.batch_size, accelerator.device, bench.pad_id, task_classes)
    evaluator = Evaluator(Results(bench.stream.task_names, bench.stream.scenario), [d.test for d in bench.data],
                          context)
    return Trainer(model, build_strategy(strategy, options, context), evaluator, tracker or Tracker(), cfg,
                   context, accelerator, show_progress=False)


def alternate(contenders: dict[str, Callable[[], float | None]], reps: int,
              log: Callable[[str], None] = print, warmup: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """Run each contender ``reps`` times, alternating the order every round (ABBA...).

    A contender returns the seconds to count, or ``None`` to count its whole wall time.
    ``warmup`` runs once first, untimed: the first run in a process pays one-time costs (lazy
    imports, first-touch page faults, allocator growth) that would otherwise land on whichever
    contender happens to go first.
    """
    names = list(contenders)
    out: dict[str, list[float]] = {n: [] for n in names}
    if warmup is not None:
        t0 = time.perf_counter()
        warmup()
        log(f"  warm-up (not counted): {time.perf_counter() - t0:.2f}s")
    for r in range(reps):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            measured = contenders[name]()
            seconds = measured if measured is not None else time.perf_counter() - t0
            out[name].append(seconds)
            log(f"  round {r + 1}/{reps} {name}: {seconds:.2f}s")
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    """``median (min-max)`` for a table cell."""
    if not values:
        return "n/a"
    return f"{_num(median(values))} ({_num(min(values))}-{_num(max(values))})"


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def load_note() -> str:
    """The 1-minute load average: other processes sharing the cores make absolute numbers drift."""
    try:
        load = f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, "
    except OSError:
        load = ""
    return f"{load}torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"


def print_ratios(title: str, rows: list[tuple[str, float, str]]) -> None:
    """The last thing every benchmark prints: ``name  value  (target)`` lines."""
    print(f"\n== {title} ==")
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:8.3f}  {note}")
    sys.stdout.flush()
