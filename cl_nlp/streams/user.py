"""``custom``: a stream described in the user's own YAML file (local files or hub data sets).

Point the experiment at it with ``stream: {name: custom, path: my_stream.yaml}``; a complete,
commented example is ``configs/streams/example.yaml``. Every problem is reported as one line
naming the stream file, the task and the fix, before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cl_nlp.config import read_yaml
from cl_nlp.errors import UserError, shown, shown_path
from cl_nlp.options import build_options, require
from cl_nlp.streams.hub import HubSource, label_strings, load_hub_split, shaped_rows
from cl_nlp.streams.registry import register_stream
from cl_nlp.streams.shaping import labelled_split
from cl_nlp.streams.table import read_table, table_rows
from cl_nlp.streams.task import SCENARIOS, Stream, Task
from cl_nlp.streams.validation import check_stream

SPLITS = ("train", "test", "validation")


@dataclass
class TaskSpec:
    """One task of a stream file: where its rows come from, which columns, which classes, how many."""

    name: str = ""
    train: str | None = None
    test: str | None = None
    validation: str | None = None
    test_fraction: float | None = None
    format: Literal["csv", "tsv", "json", "jsonl", "parquet"] | None = None
    hub: str | None = None
    config: str | None = None
    splits: dict[str, Any] = field(default_factory=lambda: {"train": "train", "test": "test"})
    columns: dict[str, Any] = field(default_factory=dict)
    labels: list[str | int | bool] | None = None
    classes: list[str | int | bool] | None = None
    train_per_class: int | None = None
    test_per_class: int | None = None
    validation_per_class: int | None = None

    def __post_init__(self) -> None:
        require(bool(self.name), "every task needs a name")
        require(self.hub is None or self.train is None, "give either hub or train files, not both")
        require(self.hub is not None or self.train is not None, "give its train file (train: FILE) or a hub id (hub: owner/name)")
        require(self.test_fraction is None or 0 < self.test_fraction < 1, "test_fraction must be in (0, 1)")
        require(self.hub is None or "train" in self.splits,
                "splits must name the repository's train split, e.g. splits: {train: train, test: test}")
        require(all(isinstance(v, str) or v is None for v in self.columns.values()), "columns: give column names as strings")
        unknown = sorted(set(self.columns) - {"text", "text_pair", "label"})
        require(not unknown, f"columns: unknown role {shown(unknown[0] if unknown else '', 40)}; use text, text_pair, label")
        for name in ("train_per_class", "test_per_class", "validation_per_class"):
            value = getattr(self, name)
            require(value is None or value >= 1, f"{name} must be >= 1 or null")

    def column(self, role: str) -> str | None:
        default = {"text": "text", "label": "label"}.get(role)
        return self.columns.get(role, default)


@dataclass
class StreamFile:
    """The top level of a stream file."""

    name: str = "custom"
    scenario: str = "class-incremental"
    seed: int = 0
    hub_root: str | None = None
    shared_classes: list[str] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(self.scenario in SCENARIOS, f"scenario must be one of {', '.join(SCENARIOS)}, got {shown(self.scenario, 60)}")
        require(len(self.tasks) >= 1, "tasks: list at least one task")


@dataclass
class CustomOptions:
    """Options of ``custom``: the stream file."""

    path: str = field(default="", metadata={"help": "stream YAML file (see configs/streams/example.yaml)"})

    def __post_init__(self) -> None:
        require(bool(self.path), "set path to a stream YAML file, e.g. --set stream.path=configs/streams/example.yaml")


def task_specs(spec: StreamFile, where: str) -> list[TaskSpec]:
    """Each task's spec with the file's ``defaults`` filled in (``columns`` merged key by key)."""
    out = []
    for i, raw in enumerate(spec.tasks):
        if not isinstance(raw, dict):
            raise UserError(f"{where}: tasks[{i}] must be a mapping with name, train/test or hub, ...; got {shown(raw, 80)}")
        merged = {**spec.defaults, **raw}
        merged["columns"] = {**spec.defaults.get("columns", {}), **raw.get("columns", {})}
        out.append(build_options(TaskSpec, merged, f"{where}: task {shown(raw.get('name', i), 60)}"))
    return out


def _split_rows(task: TaskSpec, split: str, folder: Path, hub_root: str | None, where: str):
    """(texts, pairs, labels, hub_data, hub_source) of one split; ``None`` when the task has no such split."""
    if task.hub is not None:
        repo_split = task.splits.get(split)
        if repo_split is None:
            return None
        source = HubSource(task.hub, task.config, "{" + task.column("text") + "}", label=task.column("label"),
                           text_pair="{" + task.column("text_pair") + "}" if task.column("text_pair") else None,
                           splits=((split, str(repo_split)),))
        data = load_hub_split(source, split, hub_root)
        return None, None, label_strings(data, source), data, source
    file = getattr(task, split)
    if file is None:
        return None
    path = Path(file) if Path(file).is_absolute() else folder / file
    table = read_table(path, task.format, f"{where}: task {shown(task.name, 60)}: {split}")
    texts, pairs, labels = table_rows(table, path, {r: task.column(r) for r in ("text", "text_pair", "label")},
                                      f"{where}: task {shown(task.name, 60)}")
    return texts, pairs, labels, None, None


def _carve_test(rows: tuple, fraction: float, seed: int) -> tuple[tuple, tuple]:
    texts, pairs, labels, _, _ = rows
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * fraction))
    pick = lambda idx, xs: None if xs is None else [xs[i] for i in idx]  # noqa: E731
    test, train = order[:n_test].tolist(), order[n_test:].tolist()
    return ((pick(train, texts), pick(train, pairs), pick(train, labels), None, None),
            (pick(test, texts), pick(test, pairs), pick(test, labels), None, None))


def build_task(task: TaskSpec, spec: StreamFile, folder: Path, class_names: list[str], where: str) -> Task:
    """Read, check, filter and cap one task's splits; its classes are appended to ``class_names``."""
    rows = {s: _split_rows(task, s, folder, spec.hub_root, where) for s in SPLITS}
    if rows["test"] is None:
        if task.test_fraction is None or rows["train"][3] is not None:
            raise UserError(f"{where}: task {shown(task.name, 60)} has no test split; give test: FILE "
                            "(or splits.test for a hub task), or test_fraction: 0.2 to carve one from train")
        rows["train"], rows["test"] = _carve_test(rows["train"], task.test_fraction, spec.seed)
    declared = None if task.labels is None else [str(x) for x in task.labels]
    for split, r in rows.items():
        if r is not None and declared is not None:
            outside = sorted(set(r[2]) - set(declared))
            if outside:
                raise UserError(f"{where}: task {shown(task.name, 60)}: the {split} data has labels outside the declared "
                                f"labels: {', '.join(shown(x, 40) for x in outside[:3])} ({sum(x in outside for x in r[2])} "
                                "rows); add them to labels or fix the data")
    classes = [str(x) for x in task.classes] if task.classes is not None else sorted(set(rows["train"][2]))
    if task.classes is None:  # no filter: a test class never seen in training is a data mistake, not a carve
        for split in ("test", "validation"):
            unseen = sorted(set(rows[split][2]) - set(classes)) if rows[split] is not None else []
            if unseen:
                raise UserError(f"{where}: task {shown(task.name, 60)}: the {split} split has labels outside the task's "
                                f"classes (those of its train data): {', '.join(shown(x, 40) for x in unseen[:3])}; add "
                                "training rows for them, or list the classes to keep with classes: [...]")
    if declared is not None:
        unknown = [c for c in classes if c not in declared]
        if unknown:
            raise UserError(f"{where}: task {shown(task.name, 60)}: class {shown(unknown[0], 40)} is not among its "
                            "declared labels; fix classes or labels")
    prefix = f"{task.name}:" if spec.scenario == "task-incremental" else ""
    class_index = {}
    for c in classes:
        name = prefix + c
        if name not in class_names:
            class_names.append(name)
        class_index[name] = class_names.index(name)
    keep = set(class_index)
    caps = {"train": task.train_per_class, "test": task.test_per_class, "validation": task.validation_per_class}
    splits = {}
    for i, (split, r) in enumerate(rows.items()):
        if r is None:
            continue
        texts, pairs, labels, data, source = r
        labels = [prefix + x for x in labels]
        if data is not None:  # hub: format only the rows kept
            texts, pairs, labels = shaped_rows(data, source, labels, keep, caps[split], spec.seed + i)
            splits[split] = labelled_split(texts, labels, class_index, keep, None, 0, pairs)
        else:
            splits[split] = labelled_split(texts, labels, class_index, keep, caps[split], spec.seed + i, pairs)
    return Task(task.name, splits["train"], splits["test"], list(class_index.values()), splits.get("validation"),
                source=f"hub {task.hub}" if task.hub else f"file {task.train}")


def load_stream_file(path: str | Path) -> Stream:
    """Build and check the stream described by the YAML file ``path``."""
    p = Path(path)
    where = f"stream file {shown_path(p)}"
    raw = read_yaml(p, "stream file", "set stream.path to an existing stream YAML (see configs/streams/example.yaml)")
    spec = build_options(StreamFile, raw, where)
    tasks_spec = task_specs(spec, where)
    names = [t.name for t in tasks_spec]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{where}: task name {shown(twice[0], 60)} is used twice; give every task its own name")
    class_names: list[str] = []
    tasks = [build_task(t, spec, p.parent, class_names, where) for t in tasks_spec]
    stream = Stream(spec.name, spec.scenario, tasks, class_names, shared_classes=tuple(spec.shared_classes),
                    description=f"from {p}")
    check_stream(stream, where)
    return stream


def custom(opts: CustomOptions) -> Stream:
    return load_stream_file(opts.path)


register_stream("custom", CustomOptions, custom, scenario="(from the file)", source="file",
                summary="your stream from a YAML file: local csv/tsv/json/jsonl/parquet or hub data (path: FILE)")
