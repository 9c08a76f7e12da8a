"""The verdict quotes the run's own numbers; the report files and figures are real files."""

import numpy as np

from cl_nlp.evaluation.plots import plot_layer_probes, plot_matrices, plot_retention_curves
from cl_nlp.evaluation.verdict import closing_note, verdict, write_run_report
from tests.evaluation.test_retention import LIVE, PROBE, hand_made

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_verdict_quotes_the_numbers_of_the_run():
    text = verdict(hand_made())
    # mean live drop (0.70 + 0.50) / 2 = 60 points; recovered (0.50 + 0.50) / 2 = 50 points = 83% of it
    assert "fell 60 points" in text and "recovers 50 of them (83%)" in text
    assert "readout" in text
    assert "averages 0.65" in text  # final CKA of the earlier tasks: (0.6 + 0.7) / 2
    assert "scored 0.77" in text  # pretrained probes (0.80 + 0.91 + 0.60) / 3
    assert "added 24 points" in text and "clinc1 and clinc3" in text  # gains 0.15 and 0.33; clinc2 gained 0.01
    assert "on clinc2 the pretrained encoder already knew" in text
    assert "Warning" not in text


def test_verdict_changes_with_the_numbers():
    # probes barely above live: the forgetting is in the representation
    probe = LIVE + 0.05
    probe[np.isnan(LIVE)] = np.nan
    text = verdict(hand_made(probe=probe, p0=[0.2, 0.2, 0.2]))
    assert "representation itself" in text and "(8%)" in text  # 0.05 recovered of 0.60 dropped
    # gains 0.95-0.2 and 0.85-0.2 on the earlier tasks; their final probes keep 0.05 and 0.15 of it: 0.2/1.4
    assert "14% of that gain survives" in text and "knowledge comes from fine-tuning" in text


def test_knowledge_from_pretraining_is_named_as_such():
    text = verdict(hand_made(p0=np.diag(PROBE)))  # the pretrained encoder's probes already scored as high
    assert "came from pretraining, not from learning the tasks" in text


def test_warns_about_tasks_not_learned_well():
    live = LIVE.copy()
    live[1, 1] = 0.42
    text = verdict(hand_made(live=live))
    assert "Warning: clinc2 was not learned well" in text and "0.42" in text


def test_one_task_and_no_probes():
    one = hand_made(live=[[0.9]], probe=None, cka=None, names=("only",))
    assert "Only one task" in verdict(one)
    assert "probes were off" in verdict(hand_made(probe=None))


def test_figures_are_png_files(tmp_path):
    results = hand_made()
    results.matrices["probe_layer0"] = PROBE - 0.2
    results.matrices["probe_layer1"] = PROBE
    results.before["probe_layer0"] = np.array([0.5, 0.5, 0.5])
    for path in (plot_retention_curves(results, tmp_path / "curves.png"), plot_matrices(results, tmp_path / "m.png"),
                 plot_layer_probes(results, tmp_path / "layers.png")):
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    assert plot_layer_probes(hand_made(), tmp_path / "none.png") is None


def test_run_report_files(tmp_path):
    results = hand_made()
    results.extra["classification_reports"] = {"1": {"clinc1": {"classes": [0, 1], "precision": [1.0, 0.5],
                                                                "recall": [0.5, 1.0], "f1": [2 / 3, 2 / 3],
                                                                "support": [2, 1]}}}
    results.extra["class_names"] = ["greet", "bye"]
    results.timings.update({"run_seconds": 50.0, "probe_seconds/pretrained": 5.0})
    text = write_run_report(results, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert text in report
    assert "| clinc1 | 0.800 | 0.950 | 0.700 | 0.900 | 0.200 | 0.150 |" in report  # P0, P_jj, P_Tj, R_jj, R_Tj, gain
    assert "(10.0%)" in report  # probe time share
    for png in ("retention_curves.png", "matrices.png"):
        assert (tmp_path / png).read_bytes().startswith(PNG_SIGNATURE)
    rows = (tmp_path / "classification_report.csv").read_text().splitlines()
    assert rows[0].startswith("stage,after_task,task,class_id,class_name,precision")
    assert rows[1] == "1,clinc1,clinc1,0,greet,1.0000,0.5000,0.6667,2"
    assert "Probes and drift took 5s of the run's 50s (10%)" in closing_note(results, text)
