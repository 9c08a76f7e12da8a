"""Run by every process of a data-parallel launch (tests/test_distributed.py starts it); not a test.

``python -m accelerate.commands.launch --multi_gpu --num_processes 2 tests/distributed_worker.py OUT MODEL``

Each process trains replay, LoRA-merge and joint on a tiny 2-task stream through the real
Trainer, then writes ``OUT/rank<i>.json``: SHA-256 digests of its final weights and strategy
state, its accuracy matrices, whether evaluation split across processes equals evaluation on
this process alone, and how far the Fisher computed across processes is from a one-process
brute force. The test compares what the processes wrote; nothing here compares across processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.` helpers when run as a script

from cl_nlp.checkpoint import split_tensors  # noqa: E402
from cl_nlp.config import TrainConfig  # noqa: E402
from cl_nlp.distributed import diverged  # noqa: E402
from cl_nlp.evaluation.evaluator import Evaluator, ProbeSettings, predict  # noqa: E402
from cl_nlp.evaluation.results import Results  # noqa: E402
from cl_nlp.experiment import tokenize_stream  # noqa: E402
from cl_nlp.heads import task_class_matrix  # noqa: E402
from cl_nlp.models import build_model, load_tokenizer  # noqa: E402
from cl_nlp.strategies import Strategy, StrategyContext, build_strategy  # noqa: E402
from cl_nlp.strategies.ewc.fisher import fisher_diagonal  # noqa: E402
from cl_nlp.streams import build_stream  # noqa: E402
from cl_nlp.tracking import Tracker  # noqa: E402
from cl_nlp.training import Trainer, make_accelerator  # noqa: E402
from tests.strategies.test_fisher import brute_force_fisher  # noqa: E402

# 7 train examples per class: 21 per task; 5 per process per step: batches of 10, 10 and 1, so
# the last batch leaves the second process without an example (the weight-0 path).
STREAM = {"n_tasks": 2, "classes_per_task": 3, "train_per_class": 7, "test_per_class": 4}
STRATEGIES = {"replay": {"size": 9, "per_batch": 3}, "lora-merge": {"r": 4}, "joint": {}}


def digest(tensors: dict[str, torch.Tensor], extra: object = None) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def main(out: Path, model_path: str) -> None:
    cfg = TrainConfig(epochs=2, batch_size=5, lr=1e-3, device="cpu", mixed_precision="no")
    accelerator = make_accelerator(cfg)
    stream = build_stream("clinc-cil", STREAM)
    tokenizer = load_tokenizer(model_path)
    data = tokenize_stream(stream, tokenizer, 64)
    classes = task_class_matrix(stream)
    report: dict = {"rank": accelerator.process_index, "processes": accelerator.num_processes}
    for name, options in STRATEGIES.items():
        torch.manual_seed(0)
        model = build_model(model_path, stream.num_classes)
        context = StrategyContext(stream.scenario, len(stream), stream.num_classes, 0, cfg.batch_size,
                                  accelerator.device, pad_id=tokenizer.pad_token_id, task_classes=classes)
        evaluator = Evaluator(Results(stream.task_names, stream.scenario), [d.test for d in data], classes,
                              tokenizer.pad_token_id, batch_size=5, device=accelerator.device,
                              trains=[d.train for d in data], probes=ProbeSettings(per_class=3))
        trainer = Trainer(model, build_strategy(name, options, context), evaluator, Tracker(), cfg, classes,
                          stream.scenario, tokenizer.pad_token_id, 0, accelerator, show_progress=False)
        trainer.fit(data)
        tree, tensors = split_tensors(trainer.strategy.state_dict())
        report[name] = {"model": digest(trainer.model.state_dict()), "strategy": digest(tensors, tree),
                        "steps": trainer.global_step,
                        **{m: trainer.evaluator.results.matrix(m).tolist() for m in ("live", "task_aware", "probe")}}

    model = trainer.model  # joint's final model
    split = predict(model, data[0].test, classes, tokenizer.pad_token_id, batch_size=3, across_processes=True)
    alone = predict(model, data[0].test, classes, tokenizer.pad_token_id, batch_size=3)
    report["predict_equal"] = all(np.array_equal(getattr(split, k), getattr(alone, k))
                                  for k in ("agnostic", "aware", "features"))

    sample = data[1].train.subset(range(7))  # 4 + 3 examples per process
    names = [n for n, _ in model.named_parameters()]
    fisher = fisher_diagonal(model, sample, names, pad_id=tokenizer.pad_token_id, task_classes=classes)
    reference = brute_force_fisher(model, sample)  # class-incremental: no logit mask
    report["fisher_max_error"] = max(float((fisher[n].double() - reference[n]).abs().max()) for n in names)
    report["fisher_max"] = max(float(reference[n].abs().max()) for n in names)
    odd = torch.nn.Linear(2, 2)  # a replica that went its own way: the per-task check must name it
    with torch.no_grad():
        odd.weight.fill_(accelerator.process_index)
        odd.bias.fill_(1.0)
    report["diverged"] = diverged(odd, Strategy())
    (out / f"rank{accelerator.process_index}.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(Path(sys.argv[1]), sys.argv[2])
