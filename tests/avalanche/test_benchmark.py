"""cl-nlp streams as Avalanche benchmarks: padding layout, targets, task labels, class timelines."""

import numpy as np
import pytest
import torch

avalanche = pytest.importorskip("avalanche", reason="the avalanche extra is not installed (see .ci/avalanche)")

from transformers import AutoTokenizer  # noqa: E402

from cl_nlp.avalanche.benchmark import text_rows, to_avalanche, trim_padding  # noqa: E402
from cl_nlp.batching import Examples  # noqa: E402
from cl_nlp.streams import build_stream  # noqa: E402

SMALL = {"n_tasks": 2, "classes_per_task": 3, "train_per_class": 8, "test_per_class": 4}


def examples(ids, token_types=None):
    n = len(ids)
    return Examples(ids, np.arange(n, dtype=np.int64), np.zeros(n, np.int64), token_types)


def test_rows_are_ids_mask_and_token_types_right_padded_to_the_stream_width():
    rows = text_rows(examples([[101, 7, 102], [101, 102]], [[0, 1, 1], [0, 0]]), pad_id=9, width=5)
    assert rows.tolist() == [
        [[101, 7, 102, 9, 9], [1, 1, 1, 0, 0], [0, 1, 1, 0, 0]],
        [[101, 102, 9, 9, 9], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]],
    ]


def test_trim_padding_cuts_to_the_longest_sequence_of_the_batch():
    rows = text_rows(examples([[101, 5, 6, 102], [101, 102], [101, 8, 102]]), pad_id=0, width=10)
    ids, mask, tt = trim_padding(rows[1:])  # a batch without the longest example
    assert ids.tolist() == [[101, 102, 0], [101, 8, 102]]
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert tt is None  # single-text: no token types passed (DistilBERT/RoBERTa take none)
    _, _, tt = trim_padding(text_rows(examples([[101, 5, 102, 6, 102]], [[0, 0, 0, 1, 1]]), 0, 6))
    assert tt.tolist() == [[0, 0, 0, 1, 1]]


@pytest.fixture(scope="module")
def stream():
    return build_stream("clinc-cil", SMALL)


def test_to_avalanche_keeps_every_example_its_class_and_task(stream, tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    bench = to_avalanche(stream, tokenizer, max_length=32)
    assert len(bench.train_stream) == len(bench.test_stream) == len(stream.tasks)
    seen: set[int] = set()
    for i, task in enumerate(stream.tasks):
        for exp, split in ((bench.train_stream[i], task.train), (bench.test_stream[i], task.test)):
            data = exp.dataset
            assert len(data) == len(split)
            assert list(data.targets) == list(split["label"])
            assert set(data.targets_task_labels) == {0} and exp.task_label == 0  # class-incremental: no task ids
            assert set(exp.classes_in_this_experience) == set(task.class_ids)
            x, y, t = data[1]
            ids, _, _ = trim_padding(x.unsqueeze(0))
            assert ids[0].tolist() == tokenizer(split["text"][1], truncation=True, max_length=32)["input_ids"]
            assert (y, t) == (split["label"][1], 0)
        assert set(bench.train_stream[i].previous_classes) == seen
        seen |= set(task.class_ids)


def test_task_incremental_streams_carry_the_task_index_as_task_label(tiny_model):
    bench = to_avalanche(build_stream("clinc-til", SMALL), AutoTokenizer.from_pretrained(tiny_model))
    assert [exp.task_label for exp in bench.train_stream] == [0, 1]
    assert [exp.task_label for exp in bench.test_stream] == [0, 1]


def test_batches_from_any_loader_concatenate(stream, tiny_model):
    # DER and ER-ACE load memory with PyTorch's default collate and torch.cat it onto the batch.
    bench = to_avalanche(stream, AutoTokenizer.from_pretrained(tiny_model))
    a = next(iter(torch.utils.data.DataLoader(bench.train_stream[0].dataset, batch_size=4)))
    b = next(iter(torch.utils.data.DataLoader(bench.train_stream[1].dataset, batch_size=3,
                                              collate_fn=bench.train_stream[1].dataset.collate_fn)))
    x = torch.cat([a[0], b[0]])
    assert x.shape[0] == 7 and x.shape[1] == 3
