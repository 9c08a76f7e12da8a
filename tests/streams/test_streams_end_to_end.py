"""Every offline stream (and a user stream, and a hub stream on fixtures) trains end to end with `naive`."""

import json

import pytest

from cl_nlp.config import load_config
from cl_nlp.experiment import run_experiment
from tests.conftest import FAST_TRAIN
from tests.fixtures.hub_layout import make_hub_layout
from tests.streams.test_user_streams import EXAMPLE

TINY = {
    "clinc-til": ["stream.n_tasks=2", "stream.classes_per_task=3", "stream.train_per_class=4", "stream.test_per_class=2"],
    "intent-domains": ["stream.classes_per_task=3", "stream.train_per_class=4", "stream.test_per_class=2"],
    "topics": ["stream.classes_per_task=3", "stream.train_per_class=4", "stream.test_per_class=2"],
    "custom": [f"stream.path={EXAMPLE}"],
}


def run(stream, overrides, model, tmp_path):
    cfg = load_config(None, [*overrides, *FAST_TRAIN, "eval.probes=false", "tracking.enabled=false", f"output={tmp_path}",
                             "run_name=e2e"], stream=stream, model=model)
    outcome = run_experiment(cfg, echo=lambda _: None, show_progress=False)
    return outcome, json.loads((tmp_path / "e2e" / "results.json").read_text())


@pytest.mark.parametrize("stream", sorted(TINY))
def test_offline_stream_runs_end_to_end(stream, tiny_model, tmp_path):
    outcome, results = run(stream, TINY[stream], tiny_model, tmp_path)
    n = {"clinc-til": 2, "intent-domains": 4, "topics": 3, "custom": 4}[stream]
    assert results["stages_done"] == n
    live = results["matrices"]["live"]
    assert len(live) == n and all(0.0 <= row[j] <= 1.0 for i, row in enumerate(live) for j in range(i + 1))
    assert results["scenario"] == {"clinc-til": "task-incremental", "intent-domains": "task-incremental"}.get(
        stream, "class-incremental")


def test_hub_stream_runs_end_to_end_on_fixtures(tiny_model, tmp_path):
    root = make_hub_layout(tmp_path / "hub", per_class=2)
    outcome, results = run("five-datasets", [f"stream.hub_root={root}", "stream.order=2"], tiny_model, tmp_path)
    assert results["stages_done"] == 5 and results["task_names"] == ["dbpedia", "yahoo", "agnews", "amazon", "yelp"]
