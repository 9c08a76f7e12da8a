"""cl-nlp streams as Avalanche benchmarks: tokenized text with targets and task labels.

Every example becomes Avalanche's ``(x, y, t)`` triple. ``x`` is one LongTensor of shape
``(3, width)`` — token ids, attention mask, token type ids — right-padded to the longest example
of the *stream*, so that any two batches can be concatenated: DER, ER-ACE and MIR draw memory
batches through PyTorch's default collate and ``torch.cat`` them onto the current batch, and GEM
stacks memory batches, so a collate that pads each batch to its own width breaks them.

Dynamic padding still happens, one step later: :func:`trim_padding` (called by the model wrapper
in :mod:`cl_nlp.avalanche.model`) cuts every batch to its longest real sequence before the
encoder runs, so the encoder sees exactly the batch shape cl-nlp's own ``collate`` produces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from cl_nlp.batching import Examples, collate
from cl_nlp.streams.task import Stream

ROWS = 3  # input_ids, attention_mask, token_type_ids


def text_rows(examples: Examples, pad_id: int, width: int) -> torch.Tensor:
    """``(n, 3, width)`` LongTensor: ids (padded with ``pad_id``), attention mask, token types."""
    batch = collate(examples, pad_id)
    ids = batch["input_ids"]
    tt = batch.get("token_type_ids", torch.zeros_like(ids))
    rows = torch.stack([ids, batch["attention_mask"], tt], dim=1)
    extra = width - rows.shape[-1]
    if extra < 0:
        raise ValueError(f"an example has {rows.shape[-1]} tokens, more than the width {width}")
    if extra:
        rows = F.pad(rows, (0, extra))
        rows[:, 0, -extra:] = pad_id
    return rows


def trim_padding(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Split a ``(batch, 3, width)`` input into ids, mask and token types cut to the longest sequence.

    Token types are ``None`` when all zero (single-text tasks), so encoders without token types
    (DistilBERT, RoBERTa) work too.
    """
    x = x.long()
    mask = x[:, 1]
    width = max(int(mask.sum(1).max()), 1) if x.shape[0] else 1
    ids, mask, tt = x[:, 0, :width], mask[:, :width], x[:, 2, :width]
    return ids, mask, (tt if bool(tt.any()) else None)


class TokenizedText(Dataset):
    """A tokenized split as a map-style dataset of ``(x, label)`` pairs (Avalanche adds ``t``)."""

    def __init__(self, examples: Examples, pad_id: int, width: int):
        self.rows = text_rows(examples, pad_id, width)
        self.labels = [int(y) for y in examples.labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.rows[i], self.labels[i]


def avalanche_dataset(examples: Examples, pad_id: int, width: int, task_label: int):
    """An Avalanche classification dataset with ``targets`` and ``targets_task_labels``."""
    from avalanche.benchmarks.utils import DataAttribute, TaskLabels
    from avalanche.benchmarks.utils.classification_dataset import TaskAwareSupervisedClassificationDataset

    data = TokenizedText(examples, pad_id, width)
    return TaskAwareSupervisedClassificationDataset(
        [data], data_attributes=[DataAttribute(data.labels, "targets"), TaskLabels([task_label] * len(data))])


def task_label_of(index: int, scenario: str) -> int:
    """Avalanche's convention: task labels only where the task id is known at test time (TIL)."""
    return index if scenario == "task-incremental" else 0


def benchmark_from_examples(tasks: list[tuple[Examples, Examples]], scenario: str, pad_id: int):
    """A ``CLScenario`` with ``train_stream``/``test_stream``, one experience per (train, test) pair.

    Experiences carry ``classes_in_this_experience``, ``previous_classes``, ``task_label`` and
    ``task_labels``, as Avalanche's own benchmarks do.
    """
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    width = max(max((len(x) for split in pair for x in split.input_ids), default=1) for pair in tasks)
    train, test = [], []
    for i, (tr, te) in enumerate(tasks):
        t = task_label_of(i, scenario)
        train.append(avalanche_dataset(tr, pad_id, width, t))
        test.append(avalanche_dataset(te, pad_id, width, t))
    return with_task_labels(with_classes_timeline(benchmark_from_datasets(train=train, test=test)))


def to_avalanche(stream: Stream, tokenizer=None, max_length: int = 64):
    """The cl-nlp ``stream`` as an Avalanche benchmark over tokenized text.

    Args:
        stream: a cl-nlp stream (e.g. ``build_stream("clinc-cil", {...})``).
        tokenizer: a Hugging Face tokenizer; default: the embedded all-MiniLM-L6-v2's.
        max_length: tokens kept per example (truncation).

    Returns:
        An Avalanche ``CLScenario``: ``train_stream`` and ``test_stream`` with one experience per
        task; targets are the stream's global class ids; task labels are the task index in
        task-incremental streams and 0 otherwise. Feed its inputs to a model wrapped with
        :class:`cl_nlp.avalanche.model.TextClassifierModule`.

    Example:
        >>> from cl_nlp.streams import build_stream  # doctest: +SKIP
        >>> bench = to_avalanche(build_stream("clinc-cil", {"n_tasks": 2}))  # doctest: +SKIP
        >>> x, y, t = bench.train_stream[0].dataset[0]  # doctest: +SKIP
    """
    from cl_nlp.models import load_tokenizer
    from cl_nlp.task_data import tokenize_stream

    tokenizer = tokenizer or load_tokenizer(None)
    data = tokenize_stream(stream, tokenizer, max_length)
    return benchmark_from_examples([(d.train, d.test) for d in data], stream.scenario, tokenizer.pad_token_id)


__all__ = ["TokenizedText", "avalanche_dataset", "benchmark_from_examples", "text_rows", "to_avalanche", "trim_padding"]
