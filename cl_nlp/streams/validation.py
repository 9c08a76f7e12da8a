"""Checks every stream passes before training starts, each failure one line saying what and how to fix.

Sources check what only they can see (a missing file, an unknown format, a missing column,
labels outside a declared set: :mod:`cl_nlp.streams.user`); :func:`check_stream` checks what
every built stream must satisfy, whatever its source: unique task names, no empty split,
labels inside each task's classes, and a scenario its tasks do not contradict.
"""

from __future__ import annotations

from collections import Counter

from cl_nlp.errors import UserError, shown
from cl_nlp.streams.task import SCENARIOS, Stream


def check_stream(stream: Stream, where: str) -> None:
    """Raise :class:`UserError` naming ``where`` (a stream or file) and the task at the first problem.

    Example:
        >>> from datasets import Dataset
        >>> from cl_nlp.streams.task import Task
        >>> d = Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
        >>> check_stream(Stream("s", "class-incremental", [Task("t", d, d, [0, 1])], ["x", "y"]), "stream 's'")
    """
    if stream.scenario not in SCENARIOS:
        raise UserError(f"{where}: unknown scenario {shown(stream.scenario, 60)}; use one of: {', '.join(SCENARIOS)}")
    if not stream.tasks:
        raise UserError(f"{where}: the stream has no tasks; list at least one task")
    twice = [name for name, n in Counter(t.name for t in stream.tasks).items() if n > 1]
    if twice:
        raise UserError(f"{where}: task name {shown(twice[0], 60)} is used twice; give every task its own name")
    for task in stream.tasks:
        _check_task(stream, task, where)
    _check_scenario(stream, where)


def _check_task(stream: Stream, task, where: str) -> None:
    if not task.class_ids:
        raise UserError(f"{where}: task {shown(task.name, 60)} has no classes; give it at least two")
    bad = [c for c in task.class_ids if not 0 <= c < stream.num_classes]
    if bad:
        raise UserError(f"{where}: task {shown(task.name, 60)} uses class id {bad[0]} outside the stream's "
                        f"{stream.num_classes} classes")
    splits = {"train": task.train, "test": task.test}
    if task.validation is not None:
        splits["validation"] = task.validation
    own = set(task.class_ids)
    for split, data in splits.items():
        if len(data) == 0:
            raise UserError(f"{where}: task {shown(task.name, 60)} has an empty {split} split; check its file, "
                            "its class filter and its per-class cap")
        outside = sorted(set(data["label"]) - own)
        if outside:
            names = ", ".join(shown(stream.class_names[c], 60) for c in outside[:3])
            raise UserError(f"{where}: task {shown(task.name, 60)}: the {split} split has labels outside the task's "
                            f"classes ({names}); add them to the task's classes or drop those rows")
    missing = own - set(task.train["label"])
    if missing:
        name = stream.class_names[min(missing)]
        raise UserError(f"{where}: task {shown(task.name, 60)}: class {shown(name, 60)} has no training examples; "
                        "remove it from the task's classes or add rows for it")


def _check_scenario(stream: Stream, where: str) -> None:
    first = stream.tasks[0]
    if stream.scenario == "domain-incremental":
        for task in stream.tasks[1:]:
            if set(task.class_ids) != set(first.class_ids):
                extra = sorted(set(task.class_ids) ^ set(first.class_ids))
                raise UserError(
                    f"{where}: scenario domain-incremental needs the same classes in every task, but tasks "
                    f"{shown(first.name, 60)} and {shown(task.name, 60)} differ in {shown(stream.class_names[extra[0]], 60)}; give every task "
                    "the same classes or use scenario class-incremental / task-incremental")
        return
    if stream.scenario == "task-incremental":
        for task in stream.tasks:
            if task.num_classes < 2:
                raise UserError(f"{where}: scenario task-incremental gives task {shown(task.name, 60)} its own head, but it "
                                "has a single class (nothing to predict); give it two or more classes")
    owner: dict[int, str] = {}
    shared = set(stream.shared_classes)
    for task in stream.tasks:
        for c in task.class_ids:
            if c in owner and stream.class_names[c] not in shared:
                fix = ("give the tasks disjoint classes or use scenario domain-incremental"
                       if stream.scenario == "class-incremental" else "give each task its own class ids")
                raise UserError(f"{where}: scenario {stream.scenario} needs disjoint classes, but class "
                                f"{shown(stream.class_names[c], 60)} is in tasks {shown(owner[c], 60)} and {shown(task.name, 60)}; {fix}")
            owner.setdefault(c, task.name)
