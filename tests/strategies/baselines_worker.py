"""Run by every process of a data-parallel launch (tests/strategies/test_baselines_distributed.py); not a test.

``python -m accelerate.commands.launch --multi_gpu --num_processes 2 tests/strategies/baselines_worker.py OUT MODEL``

Each process trains LwF, A-GEM, DER, DER++, ER-ACE and MAS on a tiny 2-task stream through the
real Trainer and writes ``OUT/rank<i>.json`` (SHA-256 of its final weights and strategy state, and
its accuracy matrix); the main process also saves each final model as ``OUT/<name>.safetensors``.
:func:`train` is also what the test runs in one process, with the same effective batch.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.` helpers when run as a script

from cl_nlp.config import TrainConfig  # noqa: E402
from cl_nlp.evaluation.evaluator import Evaluator  # noqa: E402
from cl_nlp.evaluation.results import Results  # noqa: E402
from cl_nlp.experiment import tokenize_stream  # noqa: E402
from cl_nlp.heads import task_class_matrix  # noqa: E402
from cl_nlp.models import build_model, load_tokenizer  # noqa: E402
from cl_nlp.runtime.checkpoint import split_tensors  # noqa: E402
from cl_nlp.strategies import StrategyContext, build_strategy  # noqa: E402
from cl_nlp.streams import build_stream  # noqa: E402
from cl_nlp.tracking import Tracker  # noqa: E402
from cl_nlp.training import Trainer, make_accelerator  # noqa: E402
from tests.distributed_worker import digest  # noqa: E402

# 7 train examples per class: 21 per task; with 2 x 5 per step the batches hold 10, 10 and 1
# examples, so the last one leaves the second process without an example (the weight-0 path).
STREAM = {"n_tasks": 2, "classes_per_task": 3, "train_per_class": 7, "test_per_class": 4}
STRATEGIES = {"lwf": {"alpha": 1.0}, "agem": {"size": 9, "memory_batch": 4}, "der": {"size": 9, "per_batch": 3},
              "derpp": {"size": 9, "per_batch": 3}, "er-ace": {"size": 9, "per_batch": 3}, "mas": {"samples": 7, "lambda": 50.0}}


def train(name: str, options: dict, model_path: str, batch_size: int, accelerator=None) -> Trainer:
    """One strategy through both tasks of the tiny stream (2 epochs, lr 1e-3, no probes)."""
    cfg = TrainConfig(epochs=2, batch_size=batch_size, lr=1e-3, device="cpu", mixed_precision="no")
    accelerator = accelerator or make_accelerator(cfg)
    stream = build_stream("clinc-cil", STREAM)
    tokenizer = load_tokenizer(model_path)
    data = tokenize_stream(stream, tokenizer, 64)
    classes = task_class_matrix(stream)
    torch.manual_seed(0)
    model = build_model(model_path, stream.num_classes)
    context = StrategyContext(stream.scenario, len(stream), stream.num_classes, 0, cfg.batch_size, accelerator.device,
                              pad_id=tokenizer.pad_token_id, task_classes=classes)
    evaluator = Evaluator(Results(stream.task_names, stream.scenario), [d.test for d in data], context, batch_size=5)
    trainer = Trainer(model, build_strategy(name, options, context), evaluator, Tracker(), cfg, context, accelerator,
                      show_progress=False)
    trainer.fit(data)  # raises if the processes' weights or strategy states differ after a task
    return trainer


def main(out: Path, model_path: str) -> None:
    accelerator = make_accelerator(TrainConfig(device="cpu", mixed_precision="no"))
    report: dict = {"rank": accelerator.process_index, "processes": accelerator.num_processes}
    for name, options in STRATEGIES.items():
        trainer = train(name, options, model_path, batch_size=5, accelerator=accelerator)
        tree, tensors = split_tensors(trainer.strategy.state_dict())
        report[name] = {"model": digest(trainer.model.state_dict()), "strategy": digest(tensors, tree),
                        "steps": trainer.global_step, "live": trainer.evaluator.results.matrix("live").tolist()}
        if accelerator.is_main_process:
            save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, str(out / f"{name}.safetensors"))
    (out / f"rank{accelerator.process_index}.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(Path(sys.argv[1]), sys.argv[2])
