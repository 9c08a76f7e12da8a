"""The default stream: deterministic, disjoint classes, caps respected, real CLINC text."""

from collections import Counter

from cl_nlp.streams import build_stream


def test_default_stream_shape():
    s = build_stream("clinc-cil")
    assert s.scenario == "class-incremental" and len(s) == 5 and s.num_classes == 150
    ids = [c for t in s.tasks for c in t.class_ids]
    assert len(ids) == len(set(ids)) == 150
    for t in s.tasks:
        counts = Counter(t.train["label"])
        assert set(counts) == set(t.class_ids) and max(counts.values()) == 40
        assert set(t.test["label"]) <= set(t.class_ids) and len(t.test) == 30 * 15
        assert all(isinstance(x, str) and x for x in t.train["text"][:20])


def test_stream_is_deterministic_and_order_seed_matters():
    a = build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 5})
    b = build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 5})
    c = build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 5, "class_order_seed": 1})
    assert a.class_names == b.class_names and a.tasks[1].train["text"] == b.tasks[1].train["text"]
    assert a.class_names != c.class_names


def test_sorted_order_uses_alphabetical_intents():
    s = build_stream("clinc-cil", {"n_tasks": 1, "classes_per_task": 4, "class_order": "sorted"})
    assert s.class_names == sorted(s.class_names)
