"""Streams from the user's YAML: formats, column mapping, class filters, caps, scenarios, and every
validation failure as one `error:` line (exit status 2) naming the file, the task and the fix."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cl_nlp.cli import main
from cl_nlp.streams import build_stream
from cl_nlp.streams.user import load_stream_file

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "streams" / "example.yaml"


def write_table(path: Path, rows: list[tuple[str, str]], text="text", label="label") -> Path:
    frame = pd.DataFrame({text: [t for t, _ in rows], label: [lab for _, lab in rows]})
    suffix = path.suffix
    if suffix in (".csv", ".tsv", ".txt"):
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict("records")))
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


def rows(labels, n, tag=""):
    return [(f"{tag}{lab} example {i}", lab) for lab in labels for i in range(n)]


def stream_file(folder: Path, tasks: list[dict], **top) -> Path:
    path = folder / "stream.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "tasks": tasks, **top}, sort_keys=False))
    return path


def two_task_files(folder: Path, fmt=".csv") -> list[dict]:
    write_table(folder / f"a_train{fmt}", rows(["x", "y"], 4))
    write_table(folder / f"a_test{fmt}", rows(["x", "y"], 2))
    write_table(folder / f"b_train{fmt}", rows(["z", "w"], 4))
    write_table(folder / f"b_test{fmt}", rows(["z", "w"], 2))
    return [{"name": "a", "train": f"a_train{fmt}", "test": f"a_test{fmt}"},
            {"name": "b", "train": f"b_train{fmt}", "test": f"b_test{fmt}"}]


def test_shipped_example_stream():
    s = build_stream("custom", {"path": str(EXAMPLE)})
    assert s.name == "assistant-demo" and s.scenario == "class-incremental"
    assert s.task_names == ["home", "assistant", "cards", "card-problems"]
    assert [t.num_classes for t in s.tasks] == [4, 3, 2, 2] and s.num_classes == 11
    cards = s.tasks[2]
    assert {s.class_names[c] for c in cards.class_ids} == {"card_arrival", "card_linking"}
    assert max(Counter(s.tasks[0].train["label"]).values()) == 10  # defaults.train_per_class
    raw = pd.read_parquet(EXAMPLE.parent / "data" / "banking.parquet")
    carved = set(cards.train["text"]) | set(cards.test["text"])
    assert carved <= set(raw.question) and not set(cards.train["text"]) & set(cards.test["text"])


@pytest.mark.parametrize("fmt", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_every_format_reads_the_same_rows(tmp_path, fmt):
    s = load_stream_file(stream_file(tmp_path, two_task_files(tmp_path, fmt)))
    assert s.class_names == ["x", "y", "z", "w"] or sorted(s.class_names) == ["w", "x", "y", "z"]
    a = s.tasks[0]
    got = sorted(zip(a.train["text"], (s.class_names[i] for i in a.train["label"])))
    assert got == sorted(rows(["x", "y"], 4))


def test_columns_pairs_filters_caps_and_task_incremental_names(tmp_path):
    frame = pd.DataFrame({"q": [f"q{i}" for i in range(12)], "p": [f"p{i}" for i in range(12)],
                          "cls": ["s", "t", "u"] * 4})
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    spec = {"train": "pairs.csv", "test": "pairs.csv", "columns": {"text": "q", "text_pair": "p", "label": "cls"},
            "train_per_class": 2}
    s = load_stream_file(stream_file(tmp_path, [{"name": "one", **spec, "classes": ["s", "t"]},
                                                {"name": "two", **spec, "classes": ["s", "u"]}],
                                     scenario="task-incremental"))
    assert s.class_names == ["one:s", "one:t", "two:s", "two:u"]
    one = s.tasks[0]
    assert Counter(one.train["label"]) == {0: 2, 1: 2} and len(one.test) == 8
    for q, p, lab in zip(one.train["text"], one.train["text_pair"], one.train["label"]):
        i = int(q[1:])
        assert p == f"p{i}" and frame.cls[i] == s.class_names[lab].split(":")[1]


def test_domain_incremental_shares_one_label_space(tmp_path):
    write_table(tmp_path / "d1.csv", rows(["pos", "neg"], 3, "d1 "))
    write_table(tmp_path / "d2.csv", rows(["neg", "pos"], 3, "d2 "))
    s = load_stream_file(stream_file(tmp_path, [{"name": "d1", "train": "d1.csv", "test": "d1.csv"},
                                                {"name": "d2", "train": "d2.csv", "test": "d2.csv"}],
                                     scenario="domain-incremental"))
    assert s.num_classes == 2 and s.tasks[0].class_ids == s.tasks[1].class_ids


def test_hub_task_in_a_stream_file_reads_the_local_hub_copy(tmp_path):
    from tests.fixtures.hub_layout import make_hub_layout

    root = make_hub_layout(tmp_path / "hub", per_class=3)
    write_table(tmp_path / "a_train.csv", rows(["x", "y"], 4))
    write_table(tmp_path / "a_test.csv", rows(["x", "y"], 2))
    s = load_stream_file(stream_file(tmp_path, [
        {"name": "a", "train": "a_train.csv", "test": "a_test.csv"},
        {"name": "news", "hub": "fancyzhx/ag_news", "classes": ["World", "Sports"], "train_per_class": 2},
    ], hub_root=str(root)))
    news = s.tasks[1]
    assert [s.class_names[c] for c in news.class_ids] == ["World", "Sports"] and news.sizes() == {"train": 4, "test": 4}
    for text, label in zip(news.train["text"], news.train["label"]):
        assert text.startswith(f"agnews train {s.class_names[label]} text ")  # ClassLabel ids became names


# --- validation: each failure is one line naming file, task and fix; exit status 2 ---------------------------

def fail(capsys, path: Path) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["streams", "show", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def _set(task: int, key: str, value):
    def mutate(folder: Path, tasks: list[dict]) -> None:
        tasks[task][key] = value
    return mutate


def _rewrite(name: str, labels: list[str], n: int):
    def mutate(folder: Path, tasks: list[dict]) -> None:
        write_table(folder / name, rows(labels, n))
    return mutate


def _both(*mutations):
    def mutate(folder: Path, tasks: list[dict]) -> None:
        for m in mutations:
            m(folder, tasks)
    return mutate


# (problem, change to a valid two-task stream, what the one error line must say)
FAILURES = [
    ("missing file", _set(1, "test", "b_tst.csv"), ["task 'b'", "b_tst.csv' does not exist; fix the path"]),
    ("unknown extension", _both(_rewrite("a_train.txt", ["x", "y"], 4), _set(0, "train", "a_train.txt")),
     ["task 'a'", "unknown format '.txt'", "set format: csv | tsv | json | jsonl | parquet"]),
    ("unknown format name", _set(0, "format", "xlsx"),
     ["task 'a'.format: expected 'csv' | 'tsv' | 'json' | 'jsonl' | 'parquet'"]),
    ("missing column", _set(1, "columns", {"text": "utterance"}),
     ["task 'b'", "is not a table with columns utterance, label (no column 'utterance' among its 2)",
      "set columns.text to the column holding the text"]),
    ("empty split", _both(_rewrite("b_test.csv", ["z"], 2), _set(1, "classes", ["w"])),
     ["task 'b' has an empty test split", "its class filter"]),
    ("labels outside the declared set", _set(0, "labels", ["x"]),
     ["task 'a'", "labels outside the declared labels: 'y' (4 rows)", "add them to labels or fix the data"]),
    ("test labels never trained", _rewrite("a_test.csv", ["x", "y", "v"], 2),
     ["task 'a': the test split has labels outside the task's classes (those of its train data): 'v'"]),
    ("duplicate task names", _set(1, "name", "a"), ["task name 'a' is used twice; give every task its own name"]),
    ("overlapping classes", _both(_rewrite("b_train.csv", ["z", "x"], 4), _rewrite("b_test.csv", ["z", "x"], 2)),
     ["class 'x' is in tasks 'a' and 'b'", "disjoint classes or use scenario domain-incremental"]),
]


@pytest.mark.parametrize("problem,mutate,expected", FAILURES, ids=[f[0] for f in FAILURES])
def test_each_problem_is_one_line_naming_file_task_and_fix(tmp_path, capsys, problem, mutate, expected):
    tasks = two_task_files(tmp_path)
    mutate(tmp_path, tasks)
    err = fail(capsys, stream_file(tmp_path, tasks))
    assert f"stream file {str(tmp_path / 'stream.yaml')!r}" in err
    for text in expected:
        assert text in err


def test_missing_stream_file(tmp_path, capsys):
    err = fail(capsys, tmp_path / "nope.yaml")
    assert "nope.yaml' does not exist; set stream.path to an existing stream YAML" in err


def test_empty_task_list(tmp_path, capsys):
    err = fail(capsys, stream_file(tmp_path, []))
    assert "stream.yaml" in err and "tasks: list at least one task" in err


def test_scenario_contradicted_by_tasks(tmp_path, capsys):
    err = fail(capsys, stream_file(tmp_path, two_task_files(tmp_path), scenario="domain-incremental"))
    assert "domain-incremental needs the same classes in every task, but tasks 'a' and 'b' differ" in err
    tasks = two_task_files(tmp_path)
    tasks[1]["classes"] = ["z"]
    err = fail(capsys, stream_file(tmp_path, tasks, scenario="task-incremental"))
    assert "task 'b' its own head, but it has a single class" in err


def test_unknown_scenario(tmp_path, capsys):
    err = fail(capsys, stream_file(tmp_path, two_task_files(tmp_path), scenario="class-incrementl"))
    assert "scenario must be one of class-incremental, task-incremental, domain-incremental" in err


def test_run_stops_before_the_model_is_loaded(tmp_path, tiny_model, monkeypatch):
    import cl_nlp.experiment as experiment

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the stream was checked")

    monkeypatch.setattr(experiment, "build_model", no_model)
    monkeypatch.setattr(experiment, "load_tokenizer", no_model)
    tasks = two_task_files(tmp_path)
    tasks[1]["name"] = "a"
    path = stream_file(tmp_path, tasks)
    out = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "run", "--stream", "custom", "--set", f"stream.path={path}",
                          "--model", tiny_model, "--no-tracking", "--output", str(tmp_path / "runs")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"error: stream file {str(path)!r}: task name 'a' is used twice; "
                                  "give every task its own name")
    with pytest.raises(SystemExit) as exc:  # in-process, with model loading made impossible
        main(["run", "--stream", "custom", "--set", f"stream.path={path}", "--model", tiny_model, "--no-tracking",
              "--output", str(tmp_path / "runs")])
    assert exc.value.code == 2
