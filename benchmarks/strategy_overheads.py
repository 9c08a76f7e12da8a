"""What continual-learning strategies, probes and MLflow cost on top of naive fine-tuning.

Run (from the repository root; about 14 minutes on 2 quiet cores)::

    .venv/bin/python benchmarks/strategy_overheads.py

``--quick`` is a smoke test of seconds (add ``--model PATH`` for a tiny local model);
``--results runs/*/results.json`` only reports the probe share of finished runs (e.g. of the
default ``cl-nlp run``, which is what the probe target is about).

Every contender is a whole ``cl-nlp run`` (``cl_nlp.experiment.run_experiment``) of the same
small class-incremental CLINC stream with the same seed and default options, alternated in
one process:

* ``naive``, ``ewc``, ``replay``, ``lora-merge`` (whichever are registered), MLflow off: each
  strategy's wall time per task (``train_seconds/<task>`` in ``results.json``: before_task,
  training and after_task, so EWC's Fisher is included) against naive's; replay is also
  compared with its data share (examples trained on, counted at the strategy's batch hook);
* ``naive+mlflow``: naive logging to a fresh sqlite MLflow store: MLflow's share of the run is
  the time spent inside the tracker's calls (``MlflowTracker.seconds``: store creation and
  ``import mlflow`` included) over the run's wall time. Timing the calls themselves, rather than
  subtracting two runs' wall times, keeps the measurement clear of a shared machine's drift;
* probes: the share of each naive run spent in ``probe_seconds/*`` (the evaluator's timings).

One untimed naive run warms the process up first. Each strategy's ratio is the median over
rounds of its time per task over naive's *in the same round*, so drift between rounds cancels.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness import alternate, load_note, median, print_ratios, spread

from cl_nlp import training
from cl_nlp.config import load_config
from cl_nlp.experiment import run_experiment
from cl_nlp.strategies import strategy_names
from cl_nlp.tracking import Tracker, make_tracker

WANTED = ("ewc", "replay", "lora-merge")
real_collate = training.collate


def counting_collate(counts: list[int]):
    """The trainer's ``collate``, counting every example it pads into a training batch.

    Patched into :mod:`cl_nlp.training` for one run: it sees whatever the strategy's batch hook
    passed on (replayed examples included), and nothing else (Fisher and evaluation collate
    through their own modules).
    """
    def counted(examples, pad_id):
        counts[-1] += len(examples)
        return real_collate(examples, pad_id)
    return counted


def probe_share(results: dict) -> float:
    timings = results.get("timings", {})
    probes = sum(v for k, v in timings.items() if k.startswith("probe_seconds/"))
    return probes / timings["run_seconds"] if timings.get("run_seconds") else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 tasks x 3 intents x 8 examples, 1 round: a smoke test")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--reps", type=int, default=None, help="rounds (each runs every contender once)")
    parser.add_argument("--results", nargs="+", default=None, help="only report the probe share of these results.json files")
    args = parser.parse_args()
    if args.results:
        for path in args.results:
            share = probe_share(json.loads(Path(path).read_text(encoding="utf-8")))
            print_ratios(f"probe share of {path} (target <= 0.30)", [("probe seconds / run seconds", share, "")])
        return

    size = (["stream.n_tasks=2", "stream.classes_per_task=3", "stream.train_per_class=8", "stream.test_per_class=4",
             "train.epochs=1", "eval.probe_per_class=4"] if args.quick else
            ["stream.n_tasks=3", "stream.classes_per_task=10", "stream.train_per_class=40", "train.epochs=2"])
    reps = args.reps or (1 if args.quick else 3)
    present = [s for s in WANTED if s in strategy_names()]
    missing = [s for s in WANTED if s not in present]
    counts: dict[str, list[int]] = {}
    results: dict[str, list[dict]] = {}
    mlflow_seconds: list[float] = []  # seconds inside the MLflow tracker, per naive+mlflow run
    mlflow_runs: list[float] = []     # those runs' wall times, tracker creation included
    print(f"stream: clinc-cil {' '.join(size)}; strategies: naive {' '.join(present)}"
          f"{f' (not registered: {missing})' if missing else ''}; {load_note()}")

    with tempfile.TemporaryDirectory() as tmp:
        def contender(strategy: str, mlflow: bool = False, name: str | None = None):
            name = name or strategy + ("+mlflow" if mlflow else "")

            def go() -> float:
                counts.setdefault(name, []).append(0)
                run = len(counts[name])
                cfg = load_config(None, [*size, f"output={tmp}/runs", f"run_name={name.replace('+', '_')}-{run}"],
                                  strategy=strategy, model=args.model)
                tracker = Tracker()
                t0 = time.perf_counter()
                if mlflow:  # a fresh store each time: the worst case (creating the tables is most of the cost)
                    tracker = make_tracker(True, f"sqlite:///{tmp}/mlflow-{run}.db", "bench")
                training.collate = counting_collate(counts[name])
                try:
                    outcome = run_experiment(cfg, tracker=tracker, echo=lambda _: None, show_progress=False)
                finally:
                    training.collate = real_collate
                results.setdefault(name, []).append(outcome.results.to_dict())
                if mlflow:
                    mlflow_seconds.append(tracker.seconds)  # the tracker's own clock: every call, store set-up included
                    mlflow_runs.append(time.perf_counter() - t0)
                return outcome.seconds
            return go

        contenders = {s: contender(s) for s in ["naive", *present]}
        contenders["naive+mlflow"] = contender("naive", mlflow=True)
        wall = alternate(contenders, reps, warmup=contender("naive", name="warm-up"))

    def per_task(name: str) -> list[float]:
        out = []
        for r in results[name]:
            train = [v for k, v in r["timings"].items() if k.startswith("train_seconds/")]
            out.append(sum(train) / len(train))
        return out

    def paired(name: str) -> float:
        """Median over rounds of (name / naive) in the same round: drift between rounds cancels."""
        return median([a / b for a, b in zip(per_task(name), per_task("naive"))])

    print(f"\n{'':14} {'s per task (median, min-max)':30} {'examples trained':>16}  run s")
    for name in contenders:
        print(f"{name:14} {spread(per_task(name)):30} {median(counts[name]):16.0f}  {spread(wall[name])}")
    shares = [probe_share(r) for r in results["naive"]]
    print(f"probes: {spread([s * 100 for s in shares])} % of each naive run; "
          f"MLflow calls took {spread(mlflow_seconds)} s per run")
    print(f"after: {load_note()}")
    targets = {"ewc": "(target <= 1.10)", "lora-merge": ""}
    rows = [(f"{s} / naive, wall per task", paired(s), targets.get(s, "")) for s in present]
    if "replay" in present:
        data = median(counts["replay"]) / median(counts["naive"])
        rows.append(("replay data share (examples / naive's)", data, ""))
        rows.append(("replay wall ratio / data share", paired("replay") / data, "(target <= 1.00)"))
    rows.append(("probe share of a naive run", median(shares), "(target <= 0.30 of a default run)"))
    rows.append(("MLflow share of a naive run", median([m / w for m, w in zip(mlflow_seconds, mlflow_runs)]),
                 "(seconds inside the tracker / run; target <= 0.02)"))
    print_ratios("strategy overheads (medians)" + (f"; not registered: {', '.join(missing)}" if missing else ""), rows)


if __name__ == "__main__":
    main()
