"""An MLflow logger for Avalanche: metric values from an ``EvaluationPlugin`` become MLflow metrics.

Usable in plain Avalanche code::

    logger = MLflowLogger(tracking_uri="sqlite:///mlflow.db", experiment_name="avalanche")
    strategy = Naive(..., evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[logger]))
    for experience in benchmark.train_stream:
        strategy.train(experience)
        strategy.eval(benchmark.test_stream)
    logger.close()

Numbers go to ``log_batch`` (one call per batch of values Avalanche emits) with ``step`` =
Avalanche's ``x_plot``; matplotlib figures and images become artifacts; values MLflow cannot hold
(tensors, raw confusion matrices) are skipped. Like cl-nlp's tracker it talks to ``MlflowClient``
with an explicit run id, never to MLflow's global active run.
"""

from __future__ import annotations

import math
import numbers
import re
import time
from typing import Any, Callable

from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metric_results import AlternativeValues, MetricValue
from avalanche.logging import BaseLogger
from matplotlib.figure import Figure

_BAD_KEY_CHARS = re.compile(r"[^\w\-. /:]")  # what MLflow accepts in metric names


def metric_key(name: str, prefix: str = "") -> str:
    """An MLflow-safe metric name: characters MLflow refuses become ``_``."""
    return _BAD_KEY_CHARS.sub("_", prefix + name)


def as_number(value: Any) -> float | None:
    """A finite float for numbers and one-element tensors/arrays; ``None`` for anything else."""
    if hasattr(value, "numel"):  # torch tensor
        value = value.item() if value.numel() == 1 else None
    elif getattr(value, "size", None) == 1 and hasattr(value, "item"):  # numpy array
        value = value.item()
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return None


class MLflowLogger(BaseLogger, SupervisedPlugin):
    """Logs Avalanche metric values to one MLflow run.

    Args:
        tracking_uri: MLflow tracking URI; ``None`` = ``$MLFLOW_TRACKING_URI`` or MLflow's default.
        experiment_name: experiment of a new run (ignored with ``run_id``).
        run_name: name of a new run.
        run_id: log into this existing run instead of creating one (it is then left open).
        prefix: put before every metric name, e.g. ``"avalanche/"``.
        params: parameters of a new run (e.g. the strategy's hyperparameters).
        tags: tags of a new run.
        on_error: called with the exception when a logging call fails, after which the logger
            stops logging (training goes on); ``None`` = raise.

    Example:
        >>> logger = MLflowLogger("sqlite:///mlflow.db", "avalanche", run_name="lwf")  # doctest: +SKIP
        >>> logger.log_single_metric("Top1_Acc_Stream/eval_phase/test_stream", 0.8, 1)  # doctest: +SKIP
        >>> logger.close()  # doctest: +SKIP
    """

    def __init__(self, tracking_uri: str | None = None, experiment_name: str = "avalanche",
                 run_name: str | None = None, run_id: str | None = None, prefix: str = "",
                 params: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
                 on_error: Callable[[Exception], None] | None = None):
        super().__init__()
        import mlflow
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri or mlflow.get_tracking_uri())
        self.prefix = prefix
        self.owns_run = run_id is None
        if run_id is None:
            exp = self.client.get_experiment_by_name(experiment_name)
            exp_id = exp.experiment_id if exp else self.client.create_experiment(experiment_name)
            run_id = self.client.create_run(exp_id, tags=dict(tags or {}), run_name=run_name).info.run_id
            items = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
            for s in range(0, len(items), 100):  # MLflow takes at most 100 params per call
                self.client.log_batch(run_id, params=items[s : s + 100])
        self.run_id = run_id
        self.on_error = on_error
        self.failed = False

    def log_single_metric(self, name: str, value: Any, x_plot: int) -> None:
        """Log one value (called by :class:`BaseLogger` for values not batched by :meth:`log_metrics`)."""
        self._log([(name, value, x_plot)])

    def log_metrics(self, metric_values: list[MetricValue]) -> None:
        """Log what the evaluation plugin emitted, numbers in one batch; dict values as ``name/key``."""
        items = []
        for mval in metric_values:
            if isinstance(mval.value, dict):
                items += [(f"{mval.name}/{k}", v, mval.x_plot) for k, v in mval.value.items()]
            else:
                items.append((mval.name, mval.value, mval.x_plot))
        self._log(items)

    def _log(self, items: list[tuple[str, Any, int]]) -> None:
        if self.failed:
            return
        try:
            self._write(items)
        except Exception as exc:
            if self.on_error is None:
                raise
            self.failed = True
            self.on_error(exc)

    def _write(self, items: list[tuple[str, Any, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        for name, value, step in items:
            if isinstance(value, AlternativeValues):
                value = self._best(value)
            number = as_number(value)
            if number is not None:
                metrics.append(Metric(metric_key(name, self.prefix), number, now, int(step)))
            elif value is not None:
                self._log_artifact(metric_key(name, self.prefix), value, int(step))
        for s in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[s : s + 1000])

    @staticmethod
    def _best(value: AlternativeValues) -> Any:
        return value.best_supported_value(float, int, Figure)

    def _log_artifact(self, key: str, value: Any, step: int) -> None:
        path = f"avalanche/{key.strip('/').replace('/', '_')}_step{step}.png"
        if isinstance(value, Figure):
            self.client.log_figure(self.run_id, value, path)
        elif type(value).__module__.startswith("PIL."):
            self.client.log_image(self.run_id, value, path)

    def close(self, status: str = "FINISHED") -> None:
        """End the run this logger created (a run passed by ``run_id`` belongs to its owner)."""
        if self.owns_run:
            self.client.set_terminated(self.run_id, status=status)

    def __enter__(self) -> "MLflowLogger":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("FAILED" if exc_type else "FINISHED")


__all__ = ["MLflowLogger", "as_number", "metric_key"]
