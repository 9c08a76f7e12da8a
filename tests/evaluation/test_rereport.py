"""`cl-nlp report RUN_DIR`: the report re-derived from a run folder alone, old results files included."""

import json

import pytest

from cl_nlp.cli import main
from tests.evaluation.constructed import constructed_run

LIVE = [[0.90], [0.20, 0.85]]
PROBE = [[0.95], [0.93, 0.94]]
P0 = [0.60, 0.60]


def old_results_file(folder):
    """A results.json as cl-nlp wrote it before per-example correctness: matrices, before, class reports."""
    results = constructed_run(LIVE, PROBE, P0, per_class=20)
    data = results.to_dict()
    for key in ("schema_version", "correct", "task_classes", "test_class_counts"):
        del data[key]
    data["matrices"]["cka"] = [[1.0, None], [0.7, 1.0]]
    data["extra"]["classification_reports"] = {
        "1": {"t1": {"classes": list(range(30)), "precision": [1.0] * 30, "recall": [1.0] * 30, "f1": [1.0] * 30,
                     "support": [20] * 30}},
        "2": {"t2": {"classes": list(range(30, 60)), "precision": [1.0] * 30, "recall": [1.0] * 30,
                     "f1": [1.0] * 30, "support": [20] * 30}}}
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(data))
    return folder


def test_an_old_results_file_gets_what_can_be_derived_and_says_what_cannot(tmp_path, capsys):
    folder = old_results_file(tmp_path / "old-run")
    main(["report", str(folder)])
    printed = capsys.readouterr().out
    assert "note: results file schema 1" in printed and "no per-example correctness" in printed
    assert "only the biased linear CKA was recorded" in printed
    data = json.loads((folder / "retention.json").read_text())
    t1 = data["tasks"][0]
    assert t1["n"] == 600 and t1["chance"] == pytest.approx(1 / 30)  # from the classification reports
    assert t1["differences"]["live_change"]["method"] == "unpaired" and t1["category"] == "readout"
    report = (folder / "report.md").read_text()
    assert "## What this run folder cannot tell" in report and data["verdict"] in report
    assert (folder / "classification_report.csv").is_file() and (folder / "retention_curves.png").is_file()


def test_output_elsewhere_leaves_the_run_folder_alone(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    constructed_run(LIVE, PROBE, P0).save(folder / "results.json")
    main(["report", str(folder), "--output", str(tmp_path / "re-read")])
    assert sorted(p.name for p in folder.iterdir()) == ["results.json"]
    assert (tmp_path / "re-read" / "report.md").is_file()


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "is not a folder"),
    (lambda p: p.mkdir(), "holds no results.json"),
    (lambda p: (p.mkdir(), (p / "results.json").write_text("{not json")), "is not a readable results file"),
    (lambda p: (p.mkdir(), (p / "results.json").write_text('{"task_names": ["a"], "scenario": "x", "matrices": {}, '
                                                           '"before": {}, "stages_done": 0}')), "no finished task"),
])
def test_bad_run_folders_are_one_error_line(tmp_path, capsys, setup, message):
    folder = tmp_path / "run"
    setup(folder)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(folder)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error: ") and message in err and len(err.splitlines()) == 1
