"""Every random number generator a run draws from, captured and restored at stage boundaries.

A resumed run must draw the same dropout masks and batch orders as an uninterrupted one, so a
checkpoint holds the state of: torch's CPU generator (dropout, initialisations), CUDA's
generators when a GPU is in use, NumPy's global generator and the trainer's own
``numpy.random.Generator`` (batch order), and Python's ``random``. Tensors go to safetensors,
everything else to JSON; nothing is pickled.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng(trainer_rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, JSON-able values) describing every generator's state right now."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = state
    legacy = np.random.get_state(legacy=False)
    version, mt_state, gauss = random.getstate()
    values = {
        "numpy_trainer": trainer_rng.bit_generator.state,  # PCG64: plain ints, JSON-able as is
        "numpy_global": {**legacy, "state": {"key": legacy["state"]["key"].tolist(), "pos": int(legacy["state"]["pos"])}},
        "python": [version, list(mt_state), gauss],
    }
    return tensors, values


def restore_rng(trainer_rng: np.random.Generator, tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
    """Put every generator back in the state :func:`capture_rng` recorded."""
    torch.set_rng_state(tensors["torch_cpu"].cpu())
    cuda = [tensors[k].cpu() for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    trainer_rng.bit_generator.state = values["numpy_trainer"]
    legacy = values["numpy_global"]
    np.random.set_state({**legacy, "state": {"key": np.asarray(legacy["state"]["key"], dtype=np.uint32),
                                             "pos": legacy["state"]["pos"]}})
    version, mt_state, gauss = values["python"]
    random.setstate((version, tuple(mt_state), gauss))
