"""Data parallelism: which process this is, its share of the work, and sums across processes.

``cl-nlp run`` scales out through Hugging Face accelerate, with no second code path: started by
``accelerate launch`` (or ``torchrun``) every process runs the same run, and the trainer's
:class:`~accelerate.Accelerator` wraps the model in DistributedDataParallel. What the loop adds
is here, on top of accelerate's own state (:class:`~accelerate.PartialState`) and collectives
(:func:`accelerate.utils.reduce`, :func:`accelerate.utils.broadcast`):

* every process draws the same seeded batches of ``num_processes x batch_size`` examples and
  trains on its own contiguous slice (:func:`shard`), so a run on P processes with batch size B
  takes the steps a single process takes with batch size P*B;
* the Fisher and the evaluation split their per-example work (:func:`share`) and add the
  partial results up (:func:`sum_across_processes`), so every process ends with the numbers a
  single process computes;
* only the main process (:func:`is_main_process`) talks to MLflow and writes the run folder.

Outside a distributed launch everything here is the identity (one process, index 0), and
nothing initialises a process group that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

import numpy as np
import torch

from cl_nlp.batching import Examples


def _state():
    """accelerate's process state, or ``None`` when no Accelerator/PartialState was made."""
    from accelerate import PartialState

    return PartialState() if PartialState._shared_state else None


def process_layout() -> tuple[int, int]:
    """``(index, count)`` of this process in the data-parallel group; ``(0, 1)`` outside one."""
    state = _state()
    return (state.process_index, state.num_processes) if state is not None else (0, 1)


def is_main_process() -> bool:
    """Whether this process is the one that logs, prints and writes files (always true alone)."""
    return process_layout()[0] == 0


def share(n: int, index: int, count: int) -> range:
    """The contiguous part of ``range(n)`` process ``index`` of ``count`` takes: sizes differ by
    at most one, earlier processes take the larger parts (as ``numpy.array_split``)."""
    base, extra = divmod(n, count)
    start = index * base + min(index, extra)
    return range(start, start + base + (index < extra))


def shard(examples: Examples, index: int, count: int) -> tuple[Examples, float]:
    """This process's slice of a batch every process drew alike, and the weight of its mean loss.

    DistributedDataParallel averages gradients over processes. With the mean loss of each
    slice multiplied by ``weight = count * len(slice) / len(batch)``, that average is exactly
    the gradient of the whole batch's mean loss, also when a last, short batch splits unevenly
    (equal slices get weight 1). A process left without examples (a batch shorter than the
    process count) trains on the batch's first example with weight 0: it still has to join the
    gradient all-reduce, and adds nothing to it. The slice keeps the batch's ``extra`` columns.
    """
    if count == 1:
        return examples, 1.0
    part = share(len(examples), index, count)
    if len(part) == 0:
        return examples.subset([0]), 0.0
    return examples.subset(np.arange(part.start, part.stop)), count * len(part) / len(examples)


def sum_across_processes(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Elementwise sums over all processes of same-shaped tensors (unchanged when alone)."""
    if process_layout()[1] == 1:
        return tensors
    from accelerate.utils import reduce

    return reduce(tensors, reduction="sum")


def sum_arrays_across_processes(arrays: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """Elementwise sums of int64/float32 NumPy arrays over processes, for work split by rows:
    each process fills its own rows and leaves the rest zero, so the sum holds every row.

    A process that had no share leaves an entry ``None`` and contributes zeros; the main process
    (which always has a share: shares are handed out from the first process on) gives shape and
    type. Entries that are ``None`` everywhere are left out.
    """
    if process_layout()[1] == 1:
        return {k: v for k, v in arrays.items() if v is not None}
    from accelerate.utils import broadcast, reduce

    device = _state().device
    out = {}
    for key, value in arrays.items():
        meta = torch.full((5,), -1, dtype=torch.int64, device=device)  # up to 4 dims, then 1 = int64, 0 = float32
        if value is not None:
            meta[: value.ndim] = torch.tensor(value.shape, dtype=torch.int64)
            meta[4] = int(value.dtype == np.int64)
        meta = broadcast(meta).tolist()
        if meta[4] < 0:
            continue
        shape, dtype = [d for d in meta[:4] if d >= 0], (torch.int64 if meta[4] else torch.float32)
        mine = torch.zeros(shape, dtype=dtype, device=device) if value is None else torch.from_numpy(value).to(device)
        out[key] = reduce(mine, reduction="sum").cpu().numpy()
    return out


def mean_across_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all processes (unchanged when alone)."""
    if process_layout()[1] == 1:
        return value
    from accelerate.utils import reduce

    return reduce(value, reduction="mean")


def own_dropout_stream(seed: int, key: int) -> Callable[[], None]:
    """Give this process its own torch random stream (dropout masks) until the returned function
    is called, which puts the shared stream back; nothing happens when alone.

    Every process seeds torch alike, so without this the same row of every process's slice would
    draw the same dropout mask. Outside training the shared stream stays identical on every
    process: whatever draws from it there (a LoRA adapter's initialisation) draws alike.
    """
    index, count = process_layout()
    if count == 1:
        return lambda: None
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    torch.manual_seed(int(np.random.default_rng([seed, key, index]).integers(2**62)))

    def restore() -> None:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)

    return restore


def diverged(model: torch.nn.Module, strategy) -> list[str]:
    """Which parts of the model and the strategy's state (its ``state_dict``) differ between
    processes (``[]`` when alone, or when every process holds the same).

    Data-parallel training keeps replicas identical only if every hook acts alike everywhere:
    DDP hands every process the same gradients, and the strategies draw only from seeded
    generators. A hook that does not (a third-party strategy sampling from an unseeded source)
    would silently train a different model per process; one gather of a few float64 numbers per
    task catches it.
    """
    count = process_layout()[1]
    if count == 1:
        return []
    import hashlib
    import json

    from accelerate.utils import gather

    from cl_nlp.checkpoint import split_tensors

    tree, tensors = split_tensors(strategy.state_dict())
    named = {f"model.{k}": v for k, v in model.state_dict().items()}
    named.update({f"strategy.{k}": v for k, v in tensors.items()})
    digest = hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).digest()
    rows = [[float(int.from_bytes(digest[:6], "little")), 0.0]]
    for value in named.values():
        v = value.detach().double()
        rows.append([float(v.sum()), float(v.square().sum())])
    mine = torch.tensor(rows, dtype=torch.float64, device=_state().device)
    every = gather(mine).view(count, len(rows), 2).cpu()
    names = ["strategy (non-tensor state)"] + list(named)
    return [names[i] for i in range(len(rows)) if not bool((every[:, i] == every[0, i]).all())]


def main_process_time() -> datetime:
    """The main process's clock, the same on every process (run names carry a timestamp, and
    processes that started a second apart must still agree on their run folder)."""
    now = datetime.now()
    if process_layout()[1] == 1:
        return now
    from accelerate.utils import broadcast

    state = _state()
    stamp = broadcast(torch.tensor([now.timestamp()], dtype=torch.float64, device=state.device))
    return datetime.fromtimestamp(float(stamp.item()))


__all__ = ["diverged", "is_main_process", "main_process_time", "mean_across_processes", "own_dropout_stream", "process_layout",
           "shard", "share", "sum_across_processes", "sum_arrays_across_processes"]
