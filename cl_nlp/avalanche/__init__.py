"""Avalanche interoperability (the optional extra ``cl-nlp[avalanche]``; see docs/avalanche.md).

- :func:`to_avalanche`: a cl-nlp stream as an Avalanche benchmark over tokenized text;
- :class:`TextClassifierModule`: the cl-nlp classifier as the module Avalanche strategies train;
- ``cl-nlp run --strategy avalanche:<Name>``: Avalanche strategies with cl-nlp's evaluation and
  tracking (:class:`AvalancheTrainer`, registered by :func:`cl_nlp.avalanche.strategies.register`);
- :class:`MLflowLogger`: an Avalanche logger writing to MLflow, usable on its own.

Importing this package does not import avalanche-lib (which takes seconds and pulls in
torchvision); the names above load it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "to_avalanche": "cl_nlp.avalanche.benchmark",
    "benchmark_from_examples": "cl_nlp.avalanche.benchmark",
    "TextClassifierModule": "cl_nlp.avalanche.model",
    "AvalancheTrainer": "cl_nlp.avalanche.trainer",
    "MLflowLogger": "cl_nlp.avalanche.logger",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cl_nlp.avalanche' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
