"""EWC's cost on a default-sized task: a training step with and without its penalty gradient, plus its Fisher.

Run (from the repository root; about 1 minute on 2 quiet cores)::

    .venv/bin/python benchmarks/ewc_step.py

``--quick`` is a smoke test of seconds (add ``--model PATH`` for a tiny local model).

The model is the embedded MiniLM on the first task of the default ``clinc-cil`` stream (30
intents, 1,200 examples). EWC's ``after_task`` estimates the Fisher of that task (timed), then
the same batches are trained with and without ``strategy.adjust_gradients`` (which adds the
penalty's gradient λ·F·(θ − θ*) between backward and clipping, exactly where the trainer calls
it) in alternating blocks of steps (forward, backward, clipping and fused AdamW each time). The ratio of a default task's
wall time follows: (225 steps with the penalty + the Fisher) / (225 plain steps), 225 being the
default stream's 75 batches x 3 epochs.
"""

from __future__ import annotations

import argparse
import time

from harness import clinc_bench, load_note, make_trainer, median, print_ratios, spread

import numpy as np
import torch
import torch.nn.functional as F

from cl_nlp.batching import collate, train_batches
from cl_nlp.config import TrainConfig
from cl_nlp.heads import training_logits
from cl_nlp.training import make_optimizer

DEFAULT_TASK_STEPS = 225  # 1,200 examples / 16 x 3 epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 3-intent task and 2 steps a block: a smoke test")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--reps", type=int, default=None, help="blocks per contender")
    args = parser.parse_args()
    bench = clinc_bench(1, 3, 8, 2, args.model) if args.quick else clinc_bench(1, model_path=args.model)
    reps, block = (args.reps or 2, 2) if args.quick else (args.reps or 6, 10)
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu")
    trainer = make_trainer(bench, cfg, strategy="ewc")
    task, model, ewc = bench.data[0], trainer.model, trainer.strategy
    print(f"task: {len(task.train)} examples; {load_note()}")

    t0 = time.perf_counter()
    ewc.after_task(task, model)
    fisher_seconds = time.perf_counter() - t0
    model.train()
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    batches = [collate(b, bench.pad_id) for b in train_batches(task.train, 16, np.random.default_rng(0), True)]

    def step(batch: dict[str, torch.Tensor], with_penalty: bool) -> None:
        logits = model(batch["input_ids"], batch["attention_mask"]).logits.float()
        loss = F.cross_entropy(training_logits(logits, batch["task_ids"], trainer.task_classes, trainer.scenario),
                               batch["labels"])
        loss.backward()
        if with_penalty:
            ewc.adjust_gradients(model, batch)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:2]:  # warm-up, untimed
        step(batch, False)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for r in range(reps):  # both contenders train the same block of batches, in alternating order
        chunk = [batches[(r * block + i) % len(batches)] for i in range(block)]
        for with_penalty in ((False, True) if r % 2 == 0 else (True, False)):
            t = time.perf_counter()
            for batch in chunk:
                step(batch, with_penalty)
            seconds[with_penalty].append((time.perf_counter() - t) / block)
            print(f"  block {r + 1}/{reps} {'ewc' if with_penalty else 'plain'}: {seconds[with_penalty][-1] * 1000:.0f} ms a step")
    plain, penalised = median(seconds[False]), median(seconds[True])
    print(f"\nstep, plain: {spread([s * 1000 for s in seconds[False]])} ms; with the penalty: "
          f"{spread([s * 1000 for s in seconds[True]])} ms; Fisher of {ewc.options.fisher_samples} examples: "
          f"{fisher_seconds:.2f} s")
    print(f"after: {load_note()}")
    task_ratio = (DEFAULT_TASK_STEPS * penalised + fisher_seconds) / (DEFAULT_TASK_STEPS * plain)
    print_ratios("EWC on a default-sized task (medians)", [
        ("step with penalty / plain step", penalised / plain, ""),
        ("Fisher / plain step", fisher_seconds / plain, "(in steps)"),
        ("EWC / naive, wall per default task", task_ratio, "(target <= 1.10)"),
    ])


if __name__ == "__main__":
    main()
