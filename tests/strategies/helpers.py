"""A tiny classifier and tokenized examples for the strategy tests."""

from __future__ import annotations

import numpy as np
import torch

from cl_nlp.batching import Examples
from cl_nlp.models import build_model, load_tokenizer
from cl_nlp.streams.task import Task
from cl_nlp.task_data import TaskData

TEXTS = ["book a flight to paris", "what is my balance", "play some jazz music", "set an alarm for six am",
         "how is the weather today", "transfer money to my savings", "flight flight flight", "cancel my order"]


def tiny_classifier(path: str, num_classes: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(path, num_classes)


def tiny_examples(path: str, labels: list[int], task: int = 0) -> Examples:
    tok = load_tokenizer(path)
    texts = [TEXTS[i % len(TEXTS)] + (" again" * (i // len(TEXTS))) for i in range(len(labels))]
    enc = tok(texts, truncation=True, max_length=32)
    return Examples(list(enc["input_ids"]), np.asarray(labels, np.int64), np.full(len(labels), task, np.int64))


def task_data(index: int, train: Examples, name: str | None = None) -> TaskData:
    from datasets import Dataset

    empty = Dataset.from_dict({"text": [], "label": []})
    return TaskData(index, Task(name or f"t{index}", empty, empty, class_ids=sorted(set(train.labels.tolist()))),
                    train, train)


def perturb_(model: torch.nn.Module, scale: float = 0.01, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def forward_output(model: torch.nn.Module, batch: dict[str, torch.Tensor], task_classes: torch.Tensor | None = None,
                   scenario: str = "class-incremental"):
    """What the trainer hands a strategy's loss hook for ``batch``: one forward pass, float32 logits."""
    from cl_nlp.heads import training_logits
    from cl_nlp.strategies import ForwardOutput

    out = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    all_logits = out.logits.float()
    logits = all_logits if task_classes is None else training_logits(all_logits, batch["task_ids"], task_classes, scenario)
    return ForwardOutput(logits=logits, all_logits=all_logits, features=out.features)
