"""The final model of a run as a standard Hugging Face folder, plus the classifier head.

``cl-nlp run --save-model`` (``save.model: true``) writes ``<run>/model/``::

    config.json, model.safetensors     the fine-tuned encoder (``save_pretrained``)
    tokenizer files                    the tokenizer the run used
    head.safetensors                   the linear head over every class: ``weight`` (classes, hidden), ``bias``
    head.json                          what the head's rows mean: class names, each task's classes,
                                       scenario, pooling, dropout

The folder loads without cl-nlp as an encoder (``AutoModel.from_pretrained(folder)``; it is also
a valid ``--model`` for a new run) and with cl-nlp as the whole classifier
(:func:`load_saved_model`). Nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from cl_nlp.models import ContinualClassifier, load_encoder

HEAD_WEIGHTS = "head.safetensors"
HEAD_INFO = "head.json"
FORMAT = 1


def save_final_model(model: ContinualClassifier, tokenizer: Any, folder: str | Path, class_names: list[str],
                     task_classes: dict[str, list[int]], scenario: str) -> Path:
    """Write ``model`` (encoder + head) and ``tokenizer`` to ``folder``; returns the folder.

    Raises:
        TypeError: ``model`` is not an encoder with a linear head (e.g. a strategy kept it wrapped).
    """
    encoder, head = getattr(model, "encoder", None), getattr(model, "head", None)
    if not hasattr(encoder, "save_pretrained") or not isinstance(head, torch.nn.Linear):
        raise TypeError(f"cannot save a {type(model).__name__} as a Hugging Face folder: expected an encoder with "
                        "save_pretrained and a linear head")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_file({"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu().contiguous()},
              str(out / HEAD_WEIGHTS))
    dropout = model.dropout.p if isinstance(getattr(model, "dropout", None), torch.nn.Dropout) else 0.0
    info = {"format": FORMAT, "num_classes": head.out_features, "hidden_size": head.in_features,
            "pooling": getattr(model, "pooling", "mean"), "dropout": dropout, "scenario": scenario,
            "class_names": list(class_names), "task_classes": {k: list(map(int, v)) for k, v in task_classes.items()}}
    (out / HEAD_INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return out


def load_saved_model(folder: str | Path) -> tuple[ContinualClassifier, dict[str, Any]]:
    """The classifier written by :func:`save_final_model`, and its ``head.json``.

    Example:
        >>> model, info = load_saved_model("runs/my-run/model")  # doctest: +SKIP
        >>> info["class_names"][:2]  # doctest: +SKIP
    """
    path = Path(folder)
    info = json.loads((path / HEAD_INFO).read_text(encoding="utf-8"))
    model = ContinualClassifier(load_encoder(str(path)), info["num_classes"], info["pooling"], info["dropout"])
    weights = load_file(path / HEAD_WEIGHTS)
    with torch.no_grad():
        model.head.weight.copy_(weights["weight"])
        model.head.bias.copy_(weights["bias"])
    return model.eval(), info


__all__ = ["load_saved_model", "save_final_model"]
