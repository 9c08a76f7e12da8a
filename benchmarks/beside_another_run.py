"""A default-sized task alone and beside a second identical run, with and without passive OpenMP waiting.

Run (from the repository root; about 3 minutes a round on 2 cores, most of it the spinning pair)::

    .venv/bin/python benchmarks/beside_another_run.py
    .venv/bin/python benchmarks/beside_another_run.py --policies passive,spin:20000,spinning --reps 2

``--quick`` is a smoke test of seconds (add ``--model PATH`` for a tiny local model).

Each measurement is a real ``cl-nlp run`` process (no MLflow, no probes) on the first task of the
default ``clinc-cil`` stream: 30 intents, 1,200 training examples, one epoch (75 steps of 16).
Wait policies (``--policies``):

- ``passive``: the command line as shipped: it sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads;
- ``spinning``: the same command with torch imported first, so the policy stays libgomp's
  default (idle threads spin 300,000 times before sleeping) — cl-nlp before it set the policy;
- ``spin:N``: as ``spinning``, with ``GOMP_SPINCOUNT=N`` (a shorter spin before sleeping);

each alone (one process) and as a pair (two identical processes started together, every one of
them with torch's default thread count, 2 on this machine). Each process prints libgomp's settings
(``OMP_DISPLAY_ENV=verbose``), and the script checks that the spin count is the one the condition
claims. The number compared is the task's training seconds (``train_seconds/clinc1`` in the run's
results.json; for a pair, the mean of the two); the processes' wall times are printed too.
Conditions run in the order given, reversed every other round (``--reps``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

SPINNING_CODE = "import sys, torch; from cl_nlp.cli import main; main(sys.argv[1:])"  # torch first: too late to set
EXPECTED_SPINCOUNT = {"passive": "0", "spinning": "300000"}
DEFAULT_TASK = ["stream.n_tasks=1", "train.epochs=1", "eval.probes=false", "eval.future_tasks=none"]
QUICK_TASK = ["stream.n_tasks=1", "stream.classes_per_task=3", "stream.train_per_class=8", "stream.test_per_class=4",
              "train.epochs=1", "train.batch_size=8", "eval.probes=false", "eval.future_tasks=none"]


def command(policy: str, output: Path, name: str, settings: list[str], model: str | None) -> list[str]:
    """The ``cl-nlp run`` command line of one process under ``policy``."""
    # spinning and spin:N load torch before the command line can set the policy
    head = [sys.executable, "-m", "cl_nlp.cli"] if policy == "passive" else [sys.executable, "-c", SPINNING_CODE]
    args = ["run", "--output", str(output), "--run-name", name, "--no-tracking"]
    args += ["--model", model] if model else []
    for item in settings:
        args += ["--set", item]
    return head + args


def spincount(stderr: str) -> str | None:
    """``GOMP_SPINCOUNT`` as libgomp printed it at load (``OMP_DISPLAY_ENV=verbose``)."""
    found = re.search(r"GOMP_SPINCOUNT = '(\d+)'", stderr)
    return found.group(1) if found else None


def expected_spincount(policy: str) -> str:
    return policy.split(":", 1)[1] if policy.startswith("spin:") else EXPECTED_SPINCOUNT[policy]


def environment(policy: str = "passive") -> dict[str, str]:
    """The caller's environment without OpenMP settings (the command line decides, as for a user),
    plus ``GOMP_SPINCOUNT`` for ``spin:N``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    env["OMP_DISPLAY_ENV"] = "verbose"
    if policy.startswith("spin:"):
        env["GOMP_SPINCOUNT"] = policy.split(":", 1)[1]
    return env


def measure(policy: str, processes: int, settings: list[str], model: str | None, folder: Path, tag: str) -> dict:
    """Start ``processes`` identical runs together; their training seconds and wall times."""
    started = time.perf_counter()
    procs = []
    for k in range(processes):
        name = f"{tag}-{policy}-{processes}-{k}"
        procs.append((name, subprocess.Popen(command(policy, folder, name.replace(":", ""), settings, model),
                                             env=environment(policy),
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
    train, wall = [], []
    for name, proc in procs:
        _, err = proc.communicate()
        wall.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed ({proc.returncode}):\n{err[-2000:]}")
        if spincount(err) != expected_spincount(policy):
            raise SystemExit(f"{name}: GOMP_SPINCOUNT {spincount(err)!r}, expected {expected_spincount(policy)!r}")
        timings = json.loads((folder / name.replace(":", "") / "results.json").read_text())["timings"]
        train.append(sum(v for k, v in timings.items() if k.startswith("train_seconds/")))
    return {"train": sum(train) / len(train), "wall": max(wall), "each": train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 3-intent task: a smoke test")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--reps", type=int, default=1, help="rounds over the conditions")
    parser.add_argument("--policies", default="passive,spinning", help="comma-separated: passive, spinning, spin:N")
    args = parser.parse_args()
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    conditions = [(policy, processes) for policy in policies for processes in (1, 2)]
    settings = QUICK_TASK if args.quick else DEFAULT_TASK
    print(f"load before: {os.getloadavg()[0]:.2f}; cores visible: {len(os.sched_getaffinity(0))}", flush=True)
    results: dict[tuple[str, int], list[dict]] = {c: [] for c in conditions}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            order = conditions if rep % 2 == 0 else conditions[::-1]
            for policy, processes in order:
                m = measure(policy, processes, settings, args.model, Path(tmp), f"r{rep}")
                results[(policy, processes)].append(m)
                each = ", ".join(f"{t:.1f}" for t in m["each"])
                print(f"round {rep + 1} {policy:>10} x{processes}: training {m['train']:.1f} s ({each}), "
                      f"wall {m['wall']:.1f} s; load {os.getloadavg()[0]:.2f}", flush=True)

    def train(policy: str, processes: int) -> float:
        return median([m["train"] for m in results[(policy, processes)]])

    print("\nratios (training seconds of the task; medians over rounds):")
    for policy in policies:
        print(f"  beside another run / alone, {policy:>10}: {train(policy, 2) / train(policy, 1):.2f}"
              f"  ({train(policy, 2):.1f} / {train(policy, 1):.1f} s)")
    for policy in policies[1:]:
        print(f"  {policy} / {policies[0]}: alone {train(policy, 1) / train(policies[0], 1):.2f}, "
              f"beside another run {train(policy, 2) / train(policies[0], 2):.2f}")


if __name__ == "__main__":
    main()
