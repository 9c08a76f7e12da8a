"""A strategy's state as a JSON tree plus named tensors: what safetensors + JSON checkpoints store.

No pickle: every tensor or NumPy array in a nested dict/list becomes a reference into a flat
``{name: tensor}`` dict (saved with safetensors); everything else must be a JSON value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def split_tensors(tree: Any, tensors: dict[str, torch.Tensor] | None = None, where: str = "state") -> tuple[Any, dict[str, torch.Tensor]]:
    """Replace every tensor/array in a nested dict/list by a reference; return (JSON tree, tensors).

    Tensors are cloned, so tensors sharing storage (which safetensors refuses) are saved apart.
    Dicts whose keys are not all strings are kept as ``{"__items__": [[key, value], ...]}``.
    """
    tensors = {} if tensors is None else tensors
    if isinstance(tree, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = tree.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}, tensors
    if isinstance(tree, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(tree)).clone()
        return {"__ndarray__": key}, tensors
    if isinstance(tree, np.generic):
        return tree.item(), tensors
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree):
            return {k: split_tensors(v, tensors, f"{where}.{k}")[0] for k, v in tree.items()}, tensors
        return {"__items__": [[k, split_tensors(v, tensors, f"{where}[{k!r}]")[0]] for k, v in tree.items()]}, tensors
    if isinstance(tree, (list, tuple)):
        return [split_tensors(v, tensors, f"{where}[{i}]")[0] for i, v in enumerate(tree)], tensors
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree, tensors
    raise TypeError(f"{where} is a {type(tree).__name__}; a strategy's state_dict may hold only tensors, "
                    "NumPy arrays and JSON values (dict, list, str, number, bool, None)")


def join_tensors(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_tensors`."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        if set(tree) == {"__ndarray__"}:
            return tensors[tree["__ndarray__"]].cpu().numpy()
        if set(tree) == {"__items__"}:
            return {k: join_tensors(v, tensors) for k, v in tree["__items__"]}
        return {k: join_tensors(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_tensors(v, tensors) for v in tree]
    return tree


__all__ = ["join_tensors", "split_tensors"]
