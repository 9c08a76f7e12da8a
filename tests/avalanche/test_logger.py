"""The MLflow logger for Avalanche, on its own: values, steps, dicts, figures, non-finite values."""

import math

import pytest
import torch

pytest.importorskip("avalanche", reason="the avalanche extra is not installed (see .ci/avalanche)")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
from avalanche.evaluation.metric_results import AlternativeValues, MetricValue  # noqa: E402
from avalanche.evaluation.metrics import accuracy_metrics  # noqa: E402
from avalanche.training import Naive  # noqa: E402
from avalanche.training.plugins import EvaluationPlugin  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from cl_nlp.avalanche import MLflowLogger, TextClassifierModule, to_avalanche  # noqa: E402
from cl_nlp.models import build_model  # noqa: E402
from cl_nlp.streams import build_stream  # noqa: E402


def test_values_land_as_metrics_with_their_steps(tracking_uri):
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    with MLflowLogger(tracking_uri, "av", run_name="unit", params={"lr": 0.1}) as logger:
        logger.log_metrics([
            MetricValue(None, "Top1_Acc_Stream/eval_phase/test_stream/Task000", 0.25, 3),
            MetricValue(None, "Top1_Acc_Stream/eval_phase/test_stream/Task000", torch.tensor(0.5), 7),
            MetricValue(None, "per_class", {0: 0.1, 1: 0.9}, 7),
            MetricValue(None, "curve", AlternativeValues(fig, 0.75), 2),
            MetricValue(None, "diverged", float("nan"), 7),
            MetricValue(None, "weird[name]", 1, 1),
        ])
        run_id = logger.run_id
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.1"}
    history = client.get_metric_history(run_id, "Top1_Acc_Stream/eval_phase/test_stream/Task000")
    assert [(m.step, m.value) for m in history] == [(3, 0.25), (7, 0.5)]
    assert run.data.metrics["per_class/0"] == pytest.approx(0.1) and run.data.metrics["per_class/1"] == pytest.approx(0.9)
    assert run.data.metrics["weird_name_"] == 1.0
    assert "diverged" not in run.data.metrics  # MLflow charts cannot draw NaN
    assert "curve" not in run.data.metrics  # the figure is the better alternative: an artifact
    (folder,) = client.list_artifacts(run_id)
    assert [a.path for a in client.list_artifacts(run_id, folder.path)] == ["avalanche/curve_step2.png"]


def test_logger_in_a_plain_avalanche_strategy_logs_the_accuracy_it_measured(tiny_model, tracking_uri):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    stream = build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 3, "train_per_class": 8, "test_per_class": 4})
    bench = to_avalanche(stream, tokenizer)
    torch.manual_seed(0)
    model = TextClassifierModule(build_model(tiny_model, stream.num_classes))
    logger = MLflowLogger(tracking_uri, "av", run_name="naive")
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), criterion=torch.nn.CrossEntropyLoss(),
                     train_mb_size=8, eval_mb_size=8, evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[logger]))
    strategy.train(bench.train_stream[0], eval_streams=[])
    strategy.eval(bench.test_stream)
    logger.close()

    # Independent accuracy over both test experiences.
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for exp in bench.test_stream:
            for x, y, _ in torch.utils.data.DataLoader(exp.dataset, batch_size=5):
                correct += int((model(x).argmax(-1) == y).sum())
                total += len(y)
    logged = MlflowClient(tracking_uri).get_run(logger.run_id).data.metrics["Top1_Acc_Stream/eval_phase/test_stream/Task000"]
    assert math.isclose(logged, correct / total, abs_tol=1e-9)


def test_a_failing_store_raises_or_is_reported_once(tracking_uri):
    logger = MLflowLogger(tracking_uri, "av", run_name="flaky")

    def broken(*args, **kwargs):
        raise ConnectionError("store down")

    logger.client.log_batch = broken
    with pytest.raises(ConnectionError):
        logger.log_single_metric("loss", 1.0, 1)
    reported = []
    quiet = MLflowLogger(tracking_uri, run_id=logger.run_id, on_error=reported.append)
    quiet.client.log_batch = broken
    quiet.log_single_metric("loss", 1.0, 1)
    quiet.log_single_metric("loss", 2.0, 2)  # logging stopped after the first failure
    assert [str(e) for e in reported] == ["store down"]
