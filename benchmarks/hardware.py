"""cl-nlp's training speed against the hardware: useful FLOP/s as a fraction of a big matmul's.

Run (from the repository root; about 2 minutes on 2 quiet cores)::

    .venv/bin/python benchmarks/hardware.py

``--quick`` is a smoke test of seconds (add ``--model PATH`` for a tiny local model).

Useful training FLOPs are counted the usual way: 6 x non-embedding parameters x non-pad tokens
(forward 2, backward 4; attention scores and padding are not counted as useful). The yardstick
is the sustained rate of a large fp32 matmul (2048^3) on the same threads, measured in
rounds alternated with training, so both see the same contention. Two more numbers say where
the rest goes: the rate of a matmul of the model's own shape (one batch of tokens through a
384 -> 1536 feed-forward layer: far from a big matmul's efficiency on a CPU), and the share of
each step spent updating parameters (gradient clipping + fused AdamW over all parameters,
embeddings included, which the 6N count does not see).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from harness import Bench, alternate, clinc_bench, load_note, make_trainer, median, print_ratios, spread

from cl_nlp.batching import train_batches
from cl_nlp.config import TrainConfig
from cl_nlp.training import make_optimizer


def matmul_rate(m: int, k: int, n: int, seconds: float = 1.5) -> float:
    """Median FLOP/s of ``[m, k] @ [k, n]`` repeated for about ``seconds``."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * m * k * n / median(times)


def token_counts(bench: Bench, cfg: TrainConfig, seed: int) -> tuple[int, int, int]:
    """(non-pad tokens, padded tokens, steps) of the batches the trainer draws with ``seed``.

    The trainer's batches come from ``train_batches`` with ``np.random.default_rng(seed)``,
    one call per epoch: replaying that gives the very same batches.
    """
    rng = np.random.default_rng(seed)
    real = padded = steps = 0
    for _ in range(cfg.epochs):
        for batch in train_batches(bench.data[0].train, cfg.batch_size, rng, cfg.length_grouping):
            lengths = batch.lengths
            real += int(lengths.sum())
            padded += int(lengths.max()) * len(lengths)
            steps += 1
    return real, padded, steps


def update_seconds(bench: Bench, cfg: TrainConfig, reps: int = 8) -> float:
    """Median seconds of one parameter update as the trainer does it: clip all gradients, fused AdamW step."""
    model = make_trainer(bench, cfg).model
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    times = []
    for _ in range(reps):
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        t0 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm or 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 intents x 8 examples, 2 rounds: a smoke test")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--reps", type=int, default=None, help="rounds of (matmul, training)")
    args = parser.parse_args()
    classes, per_class = (6, 8) if args.quick else (30, 40)
    reps = args.reps or (2 if args.quick else 3)
    cfg = TrainConfig(epochs=1)
    bench = clinc_bench(1, classes, per_class, 1, args.model)
    real, padded, steps = token_counts(bench, cfg, seed=0)
    model = make_trainer(bench, cfg).model
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if ".embeddings." not in f".{n}")
    total = sum(p.numel() for p in model.parameters())
    width = model.encoder.config.hidden_size
    ffn = model.encoder.config.intermediate_size
    tokens_per_step = round(padded / steps)
    print(f"model: {total / 1e6:.1f}M parameters, {non_embedding / 1e6:.1f}M outside the embeddings; "
          f"task: {len(bench.data[0].train)} examples, {steps} steps of {cfg.batch_size}, "
          f"{real} real / {padded} padded tokens ({1 - real / padded:.1%} padding); {load_note()}")

    def train() -> float:
        trainer = make_trainer(bench, cfg, seed=0)
        t0 = time.perf_counter()
        trainer.train_task(bench.data[0])
        return time.perf_counter() - t0

    rates: dict[str, list[float]] = {"big matmul": [], "model-shape matmul": []}

    def peaks() -> float:
        rates["big matmul"].append(matmul_rate(2048, 2048, 2048))
        rates["model-shape matmul"].append(matmul_rate(tokens_per_step, width, ffn))
        return 0.0

    times = alternate({"matmul": peaks, "training": train}, reps, log=lambda s: print(s) if "training" in s else None)
    train_rate = [6 * non_embedding * real / s for s in times["training"]]
    update = update_seconds(bench, cfg)
    step = median(times["training"]) / steps
    print(f"\n{'':30} GFLOP/s (median, min-max)")
    print(f"{'big matmul 2048^3':30} {spread([r / 1e9 for r in rates['big matmul']])}")
    print(f"{f'model-shape matmul {tokens_per_step}x{width}x{ffn}':30} {spread([r / 1e9 for r in rates['model-shape matmul']])}")
    print(f"{'training (6N x real tokens)':30} {spread([r / 1e9 for r in train_rate])}")
    print(f"step {step * 1000:.0f} ms, of which parameter update {update * 1000:.0f} ms; "
          f"{len(bench.data[0].train) * cfg.epochs / median(times['training']):.1f} examples/s")
    print(f"after: {load_note()}")
    print_ratios("hardware (medians; target: training >= 0.5 of the big-matmul rate)", [
        ("training / big-matmul FLOP/s", median(train_rate) / median(rates["big matmul"]), ""),
        ("training / model-shape-matmul FLOP/s", median(train_rate) / median(rates["model-shape matmul"]), ""),
        ("model-shape / big-matmul FLOP/s", median(rates["model-shape matmul"]) / median(rates["big matmul"]), ""),
        ("parameter update share of a step", update / step, "(clip + fused AdamW over every parameter)"),
        ("padding share of tokens computed", 1 - real / padded, "(length-grouped batches)"),
    ])


if __name__ == "__main__":
    main()
