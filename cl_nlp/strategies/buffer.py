"""A replay buffer of raw examples (token ids, label, task id), and how examples are saved.

Selection policies:

* ``reservoir`` (Vitter 1985): after n examples have been offered, each of them is in the
  buffer with probability size / n, whatever their order or task.
* ``class_balanced``: class-balanced reservoir sampling (CBRS, Chrysakis & Moens 2020). While
  there is room every example is kept; once full, an example of a class that is not among the
  largest in the buffer replaces a random example of a largest class; an example of a largest
  class replaces a random example of its own class with probability stored_c / seen_c. The
  buffer ends as balanced as the classes allow, and uniform within each class.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from cl_nlp.batching import Examples

Selection = Literal["reservoir", "class_balanced"]


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
    return state


def examples_from_state(state: dict[str, Any]) -> Examples:
    """Inverse of :func:`examples_to_state`."""
    bounds = np.concatenate([[0], np.cumsum(state["lengths"].cpu().numpy())])

    def split(flat: torch.Tensor) -> list[list[int]]:
        values = flat.cpu().tolist()
        return [values[bounds[i]: bounds[i + 1]] for i in range(len(bounds) - 1)]

    tt = split(state["token_type_ids"]) if state.get("token_type_ids") is not None else None
    return Examples(split(state["input_ids"]), state["labels"].cpu().numpy().astype(np.int64),
                    state["task_ids"].cpu().numpy().astype(np.int64), tt)


class ReplayBuffer:
    """A fixed-size store of examples with reservoir or class-balanced selection.

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
        self.slots: list[tuple[list[int], int, int, list[int] | None]] = []  # (ids, label, task, token types)
        self.seen = 0
        self.seen_per_class: dict[int, int] = {}
        self.counts: dict[int, int] = {}  # stored examples per class, kept in step with ``slots``

    def __len__(self) -> int:
        return len(self.slots)

    def add(self, examples: Examples) -> None:
        """Offer every example, in order, to the selection policy."""
        tt = examples.token_type_ids
        for i in range(len(examples)):
            item = (list(examples.input_ids[i]), int(examples.labels[i]), int(examples.task_ids[i]),
                    None if tt is None else list(tt[i]))
            self.seen += 1
            self.seen_per_class[item[1]] = self.seen_per_class.get(item[1], 0) + 1
            slot = self._reservoir_slot() if self.selection == "reservoir" else self._balanced_slot(item[1])
            if slot is None:
                continue
            if slot == len(self.slots):
                self.slots.append(item)
            else:
                self.counts[self.slots[slot][1]] -= 1
                self.slots[slot] = item
            self.counts[item[1]] = self.counts.get(item[1], 0) + 1

    def _reservoir_slot(self) -> int | None:
        if len(self.slots) < self.size:
            return len(self.slots)
        j = int(self.rng.integers(self.seen))
        return j if j < self.size else None

    def _balanced_slot(self, label: int) -> int | None:
        if len(self.slots) < self.size:
            return len(self.slots)
        counts = self.counts
        largest = max(counts.values())
        if counts.get(label, 0) < largest:  # a class that is not among the largest: evict from one
            victims = [c for c, n in counts.items() if n == largest]
            victim = victims[int(self.rng.integers(len(victims)))]
            return self._random_slot_of(victim)
        if self.rng.random() < counts[label] / self.seen_per_class[label]:
            return self._random_slot_of(label)
        return None

    def _random_slot_of(self, label: int) -> int:
        slots = [i for i, s in enumerate(self.slots) if s[1] == label]
        return slots[int(self.rng.integers(len(slots)))]

    def class_counts(self) -> dict[int, int]:
        """Stored examples per class label (classes with none left out)."""
        return {c: n for c, n in sorted(self.counts.items()) if n}

    def examples(self) -> Examples:
        """Everything stored, as :class:`Examples`."""
        return _as_examples(self.slots)

    def sample(self, k: int) -> Examples:
        """``k`` distinct stored examples drawn uniformly (fewer when the buffer holds fewer)."""
        idx = self.rng.choice(len(self.slots), size=min(k, len(self.slots)), replace=False)
        return _as_examples([self.slots[i] for i in idx])

    def state_dict(self) -> dict[str, Any]:
        return {"examples": examples_to_state(self.examples()), "seen": self.seen,
                "seen_per_class": {str(c): n for c, n in self.seen_per_class.items()},
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ex = examples_from_state(state["examples"])
        tt = ex.token_type_ids
        self.slots = [(ex.input_ids[i], int(ex.labels[i]), int(ex.task_ids[i]), None if tt is None else tt[i])
                      for i in range(len(ex))]
        self.counts = {}
        for s in self.slots:
            self.counts[s[1]] = self.counts.get(s[1], 0) + 1
        self.seen = int(state["seen"])
        self.seen_per_class = {int(c): int(n) for c, n in state["seen_per_class"].items()}
        self.rng.bit_generator.state = state["rng"]


def _as_examples(slots: list[tuple[list[int], int, int, list[int] | None]]) -> Examples:
    tt = None if not slots or slots[0][3] is None else [s[3] for s in slots]
    return Examples([s[0] for s in slots], np.array([s[1] for s in slots], dtype=np.int64),
                    np.array([s[2] for s in slots], dtype=np.int64), tt)
