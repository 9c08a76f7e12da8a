"""A task with its splits tokenized once: what the training loop, the evaluator and strategies work on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cl_nlp.batching import Examples, encode
from cl_nlp.streams.task import Task


@dataclass
class TaskData:
    """A task with its splits tokenized once (``index`` is its place in the stream)."""

    index: int
    task: Task
    train: Examples
    test: Examples

    @property
    def name(self) -> str:
        return self.task.name


def tokenize_stream(stream: Any, tokenizer: Any, max_length: int) -> list[TaskData]:
    """Every task's splits of ``stream`` tokenized once for the whole run."""
    return [TaskData(i, t, encode(t.train, tokenizer, max_length, i), encode(t.test, tokenizer, max_length, i))
            for i, t in enumerate(stream.tasks)]


__all__ = ["TaskData", "tokenize_stream"]
