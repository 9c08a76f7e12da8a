"""A replay buffer of raw examples (token ids, label, task id), and how examples are saved.

Selection policies:

* ``reservoir`` (Vitter 1985, Algorithm R): after n examples have been offered, each of them is
  in the buffer with probability size / n, whatever their order or task.
* ``class_balanced``: class-balancing reservoir sampling (CBRS; Chrysakis & Moens, "Online
  Continual Learning from Imbalanced Data", ICML 2020, Algorithm 1). While there is room every
  example is kept. Once the buffer is full, a class is *full* if it is, or has ever been since
  the buffer filled, among the largest classes in the buffer — and stays full from then on.
  An example of a class that is not full replaces a random stored example of a largest class;
  an example of a full class c replaces a random stored example of its own class with
  probability m_c / n_c (m_c stored, n_c seen so far, this one included), else it is dropped.

  Two consequences the tests check. Within each class the stored examples are a uniform sample
  of the class's examples, whatever their arrival order (a class that is not full has lost
  nothing; a full one runs reservoir sampling on its own arrivals, and evictions by other
  classes pick uniformly). And the buffer is water-filled: with L the largest class count,
  every class keeps all it has seen or holds at least L − 1.

  Why "has ever been" matters: an earlier version called a class full only while it was among
  the largest *now*. Counts that differ by one (size not divisible by the number of classes)
  then took turns being "not largest", and every arrival of such a class was kept: on an
  interleaved, imbalanced stream the last quarter of a class's arrivals was ~10x likelier to
  be stored than the first.
"""

from __future__ import annotations

import bisect
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from cl_nlp.batching import Examples

Selection = Literal["reservoir", "class_balanced"]
STATE_FORMAT = 2  # 1 (no "format" key): before CBRS's full classes were recorded


def examples_to_state(examples: Examples) -> dict[str, Any]:
    """Examples as flat tensors + offsets (safetensors-friendly; no pickles)."""
    lengths = torch.tensor([len(x) for x in examples.input_ids], dtype=torch.int64)
    state = {
        "input_ids": torch.tensor([t for x in examples.input_ids for t in x], dtype=torch.int64),
        "lengths": lengths,
        "labels": torch.from_numpy(np.asarray(examples.labels, dtype=np.int64)),
        "task_ids": torch.from_numpy(np.asarray(examples.task_ids, dtype=np.int64)),
    }
    if examples.token_type_ids is not None:
        state["token_type_ids"] = torch.tensor([t for x in examples.token_type_ids for t in x], dtype=torch.int64)
    if examples.extra:
        state["extra"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in examples.extra.items()}
    return state


def examples_from_state(state: dict[str, Any]) -> Examples:
    """Inverse of :func:`examples_to_state`."""
    bounds = np.concatenate([[0], np.cumsum(state["lengths"].cpu().numpy())])

    def split(flat: torch.Tensor) -> list[list[int]]:
        values = flat.cpu().tolist()
        return [values[bounds[i]: bounds[i + 1]] for i in range(len(bounds) - 1)]

    tt = split(state["token_type_ids"]) if state.get("token_type_ids") is not None else None
    extra = {k: v.cpu().numpy() for k, v in state.get("extra", {}).items()}
    return Examples(split(state["input_ids"]), state["labels"].cpu().numpy().astype(np.int64),
                    state["task_ids"].cpu().numpy().astype(np.int64), tt, extra)


class Stored(NamedTuple):
    """One buffer slot: an example's token ids, label, task index, token types and its row of each
    ``Examples.extra`` column (DER's logits at insertion)."""

    input_ids: list[int]
    label: int
    task_id: int
    token_type_ids: list[int] | None = None
    extra: dict[str, np.ndarray] | None = None


class ReplayBuffer:
    """A fixed-size store of examples with reservoir or class-balanced (CBRS) selection.

    Every random draw comes from the buffer's own seeded generator, and the state holds that
    generator, so a restored buffer makes the same decisions as the original.

    Example:
        >>> buf = ReplayBuffer(size=2, selection="reservoir", seed=0)
        >>> buf.add(Examples([[101, 7, 102]] * 3, np.array([0, 1, 1]), np.zeros(3, np.int64)))
        >>> len(buf), buf.seen
        (2, 3)
    """

    def __init__(self, size: int, selection: Selection = "reservoir", seed: int = 0):
        self.size = size
        self.selection = selection
        self.rng = np.random.default_rng(seed)
        self.slots: list[Stored] = []
        self.seen = 0
        self.seen_per_class: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}  # class -> its slots, ascending (a draw's k-th slot is well defined)
        self.full: set[int] = set()  # CBRS: classes that have been among the largest since the buffer filled

    def __len__(self) -> int:
        return len(self.slots)

    def add(self, examples: Examples) -> None:
        """Offer every example, in order, to the selection policy."""
        tt = examples.token_type_ids
        for i in range(len(examples)):
            item = Stored(list(examples.input_ids[i]), int(examples.labels[i]), int(examples.task_ids[i]),
                          None if tt is None else list(tt[i]), {k: v[i].copy() for k, v in examples.extra.items()})
            self.seen += 1
            self.seen_per_class[item.label] = self.seen_per_class.get(item.label, 0) + 1
            slot = self._reservoir_slot() if self.selection == "reservoir" else self._balanced_slot(item.label)
            if slot is not None:
                self._write(slot, item)
                if self.selection == "class_balanced" and len(self.slots) == self.size:
                    self._mark_full()

    def _write(self, slot: int, item: Stored) -> None:
        if slot == len(self.slots):
            self.slots.append(item)
        else:
            old = self.members[self.slots[slot].label]
            del old[bisect.bisect_left(old, slot)]
            self.slots[slot] = item
        bisect.insort(self.members.setdefault(item.label, []), slot)

    def _reservoir_slot(self) -> int | None:
        if len(self.slots) < self.size:
            return len(self.slots)
        j = int(self.rng.integers(self.seen))
        return j if j < self.size else None

    def _balanced_slot(self, label: int) -> int | None:
        if len(self.slots) < self.size:
            return len(self.slots)
        if label not in self.full:  # evict from a largest class (ties: each equally likely)
            largest = max(len(m) for m in self.members.values())
            victims = sorted(c for c, m in self.members.items() if len(m) == largest)
            return self._random_slot_of(victims[int(self.rng.integers(len(victims)))])
        stored = len(self.members.get(label, ()))
        if self.rng.random() < stored / self.seen_per_class[label]:  # reservoir sampling within the class
            return self._random_slot_of(label)
        return None

    def _mark_full(self) -> None:
        largest = max(len(m) for m in self.members.values())
        self.full.update(c for c, m in self.members.items() if len(m) == largest)

    def _random_slot_of(self, label: int) -> int:
        slots = self.members[label]
        return slots[int(self.rng.integers(len(slots)))]

    def class_counts(self) -> dict[int, int]:
        """Stored examples per class label (classes with none left out)."""
        return {c: len(m) for c, m in sorted(self.members.items()) if m}

    def examples(self) -> Examples:
        """Everything stored, as :class:`Examples`."""
        return _as_examples(self.slots)

    def sample(self, k: int) -> Examples:
        """``k`` distinct stored examples drawn uniformly (fewer when the buffer holds fewer)."""
        idx = self.rng.choice(len(self.slots), size=min(k, len(self.slots)), replace=False)
        return _as_examples([self.slots[i] for i in idx])

    def state_dict(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "examples": examples_to_state(self.examples()), "seen": self.seen,
                "seen_per_class": {str(c): n for c, n in self.seen_per_class.items()},
                "full": sorted(self.full), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; also reads format 1, which did not record CBRS's full
        classes: they are then taken to be the classes largest now (the history is lost)."""
        ex = examples_from_state(state["examples"])
        tt = ex.token_type_ids
        self.slots = []
        self.members = {}
        for i in range(len(ex)):
            self._write(i, Stored(ex.input_ids[i], int(ex.labels[i]), int(ex.task_ids[i]), None if tt is None else tt[i],
                                  {k: v[i] for k, v in ex.extra.items()}))
        self.seen = int(state["seen"])
        self.seen_per_class = {int(c): int(n) for c, n in state["seen_per_class"].items()}
        for c in self.seen_per_class:
            self.members.setdefault(c, [])  # a class that lost every slot still counts as known (and 0)
        self.full = set()
        if "full" in state:
            self.full = {int(c) for c in state["full"]}
        elif self.selection == "class_balanced" and len(self.slots) == self.size and self.slots:
            self._mark_full()
        self.rng.bit_generator.state = state["rng"]


def _as_examples(slots: list[Stored]) -> Examples:
    tt = None if not slots or slots[0].token_type_ids is None else [s.token_type_ids for s in slots]
    extra = {k: np.stack([s.extra[k] for s in slots]) for k in (slots[0].extra or {})} if slots else {}
    return Examples([s.input_ids for s in slots], np.array([s.label for s in slots], dtype=np.int64),
                    np.array([s.task_id for s in slots], dtype=np.int64), tt, extra)


def buffer_figures(buffer: ReplayBuffer, task_names: dict[int, str], prefix: str) -> dict[str, float]:
    """What a replay-family strategy logs about its buffer: fill, classes, per-class range, per-task counts."""
    counts = buffer.class_counts()
    if not counts:
        return {}
    out = {f"{prefix}/buffer_size": float(len(buffer)), f"{prefix}/classes": float(len(counts)),
           f"{prefix}/min_per_class": float(min(counts.values())), f"{prefix}/max_per_class": float(max(counts.values()))}
    tasks = np.asarray([s.task_id for s in buffer.slots])
    for index, name in task_names.items():
        out[f"{prefix}/buffer/{name}"] = float((tasks == index).sum())
    return out
