"""Hub streams through the real `datasets.load_dataset` code, on local copies laid out like the hub."""

import shutil
from collections import Counter

import pytest

from cl_nlp.errors import UserError
from cl_nlp.streams import build_stream
from cl_nlp.streams.benchmarks import FIVE_ORDERS, LONG_ORDERS, SOURCES
from cl_nlp.streams.hub import HUB_ROOT_ENV
from tests.fixtures.hub_layout import make_hub_layout


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory):
    return make_hub_layout(tmp_path_factory.mktemp("hub"), per_class=3)


def _check_texts_match_labels(stream, task, split_name):
    # Fixture texts read "<set> <split> <class name> <column> <i>": the label must name the same class.
    split = getattr(task, split_name)
    for text, label in zip(split["text"], split["label"]):
        name = stream.class_names[label].split(":", 1)[-1]
        assert text.startswith(f"{task.name} "), (task.name, text)
        assert f" {name} " in text, (name, text)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_five_datasets_orders_classes_and_shared_ratings(hub_root, order):
    s = build_stream("five-datasets", {"hub_root": str(hub_root), "order": order, "train_per_class": 2,
                                       "test_per_class": 1})
    assert s.task_names == FIVE_ORDERS[order] and s.scenario == "class-incremental"
    assert s.num_classes == 33 == 4 + 5 + 14 + 10
    by_name = {t.name: t for t in s.tasks}
    assert by_name["yelp"].class_ids == by_name["amazon"].class_ids  # the 5 shared ratings
    others = [c for k in ("agnews", "dbpedia", "yahoo") for c in by_name[k].class_ids]
    assert len(others) == len(set(others)) == 28 and not set(others) & set(by_name["yelp"].class_ids)
    for task in s.tasks:
        assert set(Counter(task.train["label"]).values()) == {2} and set(Counter(task.test["label"]).values()) == {1}
        _check_texts_match_labels(s, task, "train")
        _check_texts_match_labels(s, task, "test")
        assert all(" train " in t for t in task.train["text"]) and all(" test " in t for t in task.test["text"])


def test_five_datasets_full_sizes_and_text_templates(hub_root):
    s = build_stream("five-datasets", {"hub_root": str(hub_root), "train_per_class": None, "test_per_class": None})
    sizes = {t.name: t.sizes() for t in s.tasks}
    assert sizes["dbpedia"] == {"train": 14 * 3, "test": 14 * 2} and sizes["yelp"] == {"train": 15, "test": 10}
    dbpedia = next(t for t in s.tasks if t.name == "dbpedia")
    text = dbpedia.train["text"][0]
    assert " title " in text and ". dbpedia train " in text and " content " in text  # "{title}. {content}"


def test_long_sequence_pairs_and_glue_validation_as_test(hub_root):
    s = build_stream("long-sequence", {"hub_root": str(hub_root), "order": 5, "train_per_class": 1})
    assert s.task_names == LONG_ORDERS[5] and len(s) == 15 and s.scenario == "task-incremental"
    ids = [c for t in s.tasks for c in t.class_ids]
    assert len(ids) == len(set(ids)) == s.num_classes == sum(len(SOURCES[k].label_names) for k in LONG_ORDERS[5])
    mnli = next(t for t in s.tasks if t.name == "mnli")
    assert "text_pair" in mnli.train.column_names
    assert all(" validation_matched " in t for t in mnli.test["text"])  # GLUE test labels are hidden
    assert all(" hypothesis " in p for p in mnli.train["text_pair"])
    for task in s.tasks:
        _check_texts_match_labels(s, task, "test")


def test_ratings_dil_shares_one_label_space(hub_root):
    s = build_stream("ratings-dil", {"hub_root": str(hub_root), "train_per_class": 2})
    assert s.scenario == "domain-incremental" and s.task_names == ["yelp", "amazon"]
    assert s.class_names == ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"]
    assert s.tasks[0].class_ids == s.tasks[1].class_ids == [0, 1, 2, 3, 4]
    for task in s.tasks:
        _check_texts_match_labels(s, task, "train")


def test_hub_ids_replace_a_repository_and_env_var_sets_the_root(hub_root, monkeypatch):
    copy = hub_root / "my-org" / "amazon_review_full"
    if not copy.exists():
        shutil.copytree(hub_root / "Yelp" / "yelp_review_full", copy)
    monkeypatch.setenv(HUB_ROOT_ENV, str(hub_root))
    s = build_stream("five-datasets", {"train_per_class": 1, "test_per_class": 1,
                                       "hub_ids": {"amazon": "my-org/amazon_review_full"}})
    amazon = next(t for t in s.tasks if t.name == "amazon")
    assert amazon.source == "hub my-org/amazon_review_full"
    assert all(t.startswith("yelp ") for t in amazon.train["text"])  # the copy holds yelp's rows


def test_missing_local_repository_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"does not exist: lay out fancyzhx/ag_news under the hub root"):
        build_stream("five-datasets", {"hub_root": str(tmp_path), "order": 4})


def test_bad_hub_ids_and_order_are_refused_before_loading(hub_root):
    with pytest.raises(UserError, match="unknown data set 'amzon'"):
        build_stream("five-datasets", {"hub_root": str(hub_root), "hub_ids": {"amzon": "x/y"}})
    with pytest.raises(UserError, match="order"):
        build_stream("five-datasets", {"hub_root": str(hub_root), "order": 5})
