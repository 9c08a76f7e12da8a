"""Task and Stream: the ordered sequence of classification problems a model learns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from datasets import Dataset

Scenario = Literal["class-incremental", "task-incremental", "domain-incremental"]
SCENARIOS: tuple[str, ...] = ("class-incremental", "task-incremental", "domain-incremental")


@dataclass
class Task:
    """One classification problem of a stream.

    Splits are Hugging Face datasets with a ``text`` column (optionally ``text_pair``) and an
    integer ``label`` column holding *stream-global* class ids, so every task of a stream
    indexes one label space. ``class_ids`` lists the global ids this task uses.

    Example:
        >>> from datasets import Dataset
        >>> t = Task("greetings", Dataset.from_dict({"text": ["hi"], "label": [0]}),
        ...          Dataset.from_dict({"text": ["hello"], "label": [0]}), class_ids=[0])
        >>> t.num_classes
        1
    """

    name: str
    train: Dataset
    test: Dataset
    class_ids: list[int]
    validation: Dataset | None = None
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    def sizes(self) -> dict[str, int]:
        """Rows per split, e.g. ``{"train": 1800, "test": 450}``."""
        out = {"train": len(self.train), "test": len(self.test)}
        if self.validation is not None:
            out["validation"] = len(self.validation)
        return out


@dataclass
class Stream:
    """Ordered tasks under one scenario, over one global label space ``class_names``.

    - class-incremental: disjoint classes per task, one shared head, no task id at test time;
    - task-incremental: one head per task (rows of the shared linear layer restricted to the
      task's classes), task id given at test time;
    - domain-incremental: every task uses the same classes, one head.

    ``shared_classes`` names classes that several tasks of a class-incremental stream share on
    purpose (the five-dataset benchmark's Yelp and Amazon ratings); any other overlap between
    class-incremental tasks is refused by :func:`cl_nlp.streams.validation.check_stream`.
    """

    name: str
    scenario: Scenario
    tasks: list[Task]
    class_names: list[str]
    description: str = ""
    options: dict = field(default_factory=dict)
    shared_classes: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def __len__(self) -> int:
        return len(self.tasks)
