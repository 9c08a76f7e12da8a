"""cl-nlp's training loop against the Hugging Face Trainer, alternated in one process.

Run (from the repository root; about 5 minutes on 2 quiet cores)::

    .venv/bin/python benchmarks/vs_trainer.py

``--quick`` shrinks everything to a smoke test of a few seconds (add ``--model PATH`` for a
tiny local model). Both sides fine-tune the same model (the embedded MiniLM with cl-nlp's
mean-pooled linear head, same seed per round) on the same tokenized task (the first 30
intents of the default ``clinc-cil`` stream), with the same batch size, epochs, max length,
learning rate, weight decay, warm-up steps and gradient clipping:

* cl-nlp: the real :class:`cl_nlp.training.Trainer` (``train_task``), naive strategy;
* Hugging Face: ``transformers.Trainer`` + ``DataCollatorWithPadding`` (its defaults otherwise:
  random batches, fused AdamW in transformers 5), ``report_to="none"``; fp32 on CPU, bf16 autocast
  on a GPU (as cl-nlp's ``train.mixed_precision: auto``).

Both trained models are scored by the same function on the same test split: speed must not
come from doing less. Training time includes each side's optimizer/scheduler set-up.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch
import torch.nn.functional as F
from datasets import Dataset
from harness import Bench, alternate, clinc_bench, load_note, make_trainer, median, print_ratios, spread
from torch import nn

from cl_nlp.config import TrainConfig
from cl_nlp.evaluation.evaluator import predict


class LossHead(nn.Module):
    """The cl-nlp classifier with the ``labels -> loss`` interface ``transformers.Trainer`` expects."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels=None):
        logits = self.model(input_ids, attention_mask).logits
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


def hf_dataset(bench: Bench) -> Dataset:
    """The very token ids cl-nlp trains on, as the columns ``DataCollatorWithPadding`` pads."""
    train = bench.data[0].train
    return Dataset.from_dict({"input_ids": train.input_ids, "attention_mask": [[1] * len(x) for x in train.input_ids],
                              "labels": train.labels.tolist()})


def train_hf(bench: Bench, cfg: TrainConfig, seed: int, dataset: Dataset, out_dir: str) -> tuple[float, nn.Module]:
    """Seconds of ``transformers.Trainer.train()`` and the trained cl-nlp model inside."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    trainer_model = make_trainer(bench, cfg, seed=seed).model  # identical initial weights to the cl-nlp side
    steps = math.ceil(len(dataset) / cfg.batch_size) * cfg.epochs
    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=cfg.batch_size, num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=int(cfg.warmup_ratio * steps),
        max_grad_norm=cfg.max_grad_norm, lr_scheduler_type="linear", seed=seed, report_to="none",
        save_strategy="no", disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),  # as cl-nlp's mixed_precision=auto
    )
    trainer = Trainer(model=LossHead(trainer_model), args=args, train_dataset=dataset,
                      data_collator=DataCollatorWithPadding(bench.tokenizer))
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0, trainer_model


def train_cl_nlp(bench: Bench, cfg: TrainConfig, seed: int) -> tuple[float, nn.Module]:
    """Seconds of cl-nlp's ``Trainer.train_task`` on the task and the trained model."""
    trainer = make_trainer(bench, cfg, seed=seed)
    t0 = time.perf_counter()
    trainer.train_task(bench.data[0])
    return time.perf_counter() - t0, trainer.model


def accuracy(bench: Bench, model: nn.Module) -> float:
    test = bench.data[0].test
    classes = torch.ones(1, bench.stream.num_classes, dtype=torch.bool)
    return predict(model, test, classes, bench.pad_id, device=next(model.parameters()).device).accuracy("agnostic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 intents x 8 examples, 1 epoch, 2 rounds: a smoke test")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--reps", type=int, default=None, help="rounds (each trains both sides once)")
    parser.add_argument("--classes", type=int, default=None, help="intents in the task (default 30)")
    parser.add_argument("--per-class", type=int, default=None, help="training examples per intent (default 40)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 3, as in cl-nlp's default)")
    args = parser.parse_args()
    classes = args.classes or (6 if args.quick else 30)
    per_class = args.per_class or (8 if args.quick else 40)
    reps = args.reps or (2 if args.quick else 3)
    cfg = TrainConfig(epochs=args.epochs or (1 if args.quick else 3))  # cl-nlp's defaults: batch 16, lr 1e-4, ...

    bench = clinc_bench(1, classes, per_class, 15, args.model)
    n_train = len(bench.data[0].train)
    print(f"task: {classes} CLINC intents, {n_train} training / {len(bench.data[0].test)} test examples, "
          f"{cfg.epochs} epochs, batch {cfg.batch_size}, lr {cfg.lr}; {load_note()}")
    dataset = hf_dataset(bench)
    acc: dict[str, list[float]] = {"cl-nlp": [], "hf-trainer": []}
    round_no = [0, 0]

    def run_side(name: str, fn):
        def go() -> float:
            i = round_no[name == "hf-trainer"]
            round_no[name == "hf-trainer"] += 1
            seconds, model = fn(seed=i)
            acc[name].append(accuracy(bench, model))
            return seconds
        return go

    with tempfile.TemporaryDirectory() as out_dir:
        times = alternate({
            "cl-nlp": run_side("cl-nlp", lambda seed: train_cl_nlp(bench, cfg, seed)),
            "hf-trainer": run_side("hf-trainer", lambda seed: train_hf(bench, cfg, seed, dataset, out_dir)),
        }, reps)

    seen = n_train * cfg.epochs
    rate = {name: [seen / s for s in t] for name, t in times.items()}
    print(f"\n{'':12} {'examples/s (median, min-max)':30} {'test accuracy per round'}")
    for name in times:
        print(f"{name:12} {spread(rate[name]):30} {', '.join(f'{a:.3f}' for a in acc[name])}")
    print(f"after: {load_note()}")
    print_ratios("vs Hugging Face Trainer (medians; target: speed >= 1.3 at equal accuracy)", [
        ("speed: cl-nlp / hf-trainer examples/s", median(rate["cl-nlp"]) / median(rate["hf-trainer"]), ""),
        ("accuracy: cl-nlp - hf-trainer", median(acc["cl-nlp"]) - median(acc["hf-trainer"]),
         f"(±{1 / math.sqrt(len(bench.data[0].test)):.3f} is noise on this test split)"),
    ])


if __name__ == "__main__":
    main()
