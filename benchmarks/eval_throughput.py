"""Evaluation throughput with and without length-sorted batches, alternated in one process.

Run (from the repository root; about 2 minutes on 2 quiet cores)::

    .venv/bin/python benchmarks/eval_throughput.py

``--quick`` is a smoke test of seconds (add ``--model PATH`` for a tiny local model).

Both sides call cl-nlp's own ``predict`` (``torch.inference_mode``, batch 128 as
``eval.batch_size``, dynamic padding) on the test splits of the default ``clinc-cil`` stream
(5 tasks x 30 intents x 15 = 2,250 utterances): once with batches of similar lengths
(``sort_by_length=True``, what the evaluator does) and once in the split's order. Speed only
depends on shapes, so the untrained model is used; the two must predict the same classes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from harness import alternate, clinc_bench, load_note, make_trainer, median, print_ratios, spread

from cl_nlp.batching import Examples, eval_batches
from cl_nlp.config import TrainConfig
from cl_nlp.evaluation.evaluator import predict


def padded_tokens(examples: Examples, batch_size: int, sort_by_length: bool) -> int:
    return sum(int(part.lengths.max()) * len(part) for _, part in eval_batches(examples, batch_size, sort_by_length))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 tasks x 6 intents, 2 rounds: a smoke test")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--reps", type=int, default=None, help="rounds (each evaluates both ways once)")
    parser.add_argument("--batch-size", type=int, default=128, help="examples per inference batch")
    args = parser.parse_args()
    n_tasks, classes = (2, 6) if args.quick else (5, 30)
    reps = args.reps or (2 if args.quick else 5)
    bench = clinc_bench(n_tasks, classes, 1, 15, args.model)
    test = Examples.concat([d.test for d in bench.data])
    model = make_trainer(bench, TrainConfig()).model
    classes_of = torch.ones(1, bench.stream.num_classes, dtype=torch.bool)
    test.task_ids[:] = 0  # one all-class row is enough: speed is what is measured
    print(f"{len(test)} test utterances, batch {args.batch_size}; padded tokens: sorted "
          f"{padded_tokens(test, args.batch_size, True)}, split order {padded_tokens(test, args.batch_size, False)} "
          f"(real {int(test.lengths.sum())}); {load_note()}")
    preds: dict[str, np.ndarray] = {}

    def side(sort: bool):
        def go() -> float:
            t0 = time.perf_counter()
            p = predict(model, test, classes_of, bench.pad_id, args.batch_size, sort_by_length=sort)
            seconds = time.perf_counter() - t0
            preds["sorted" if sort else "split order"] = p.agnostic
            return seconds
        return go

    times = alternate({"sorted": side(True), "split order": side(False)}, reps)
    rate = {k: [len(test) / s for s in v] for k, v in times.items()}
    print(f"\n{'':12} examples/s (median, min-max)")
    for name, values in rate.items():
        print(f"{name:12} {spread(values)}")
    print(f"after: {load_note()}")
    print_ratios("evaluation throughput (medians)", [
        ("speed: sorted / split-order examples/s", median(rate["sorted"]) / median(rate["split order"]), ""),
        ("same predictions (share)", float(np.mean(preds["sorted"] == preds["split order"])), "(must be 1.000)"),
    ])


if __name__ == "__main__":
    main()
