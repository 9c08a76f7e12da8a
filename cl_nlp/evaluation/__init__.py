"""Evaluation: pure metric functions, the per-stage evaluator and the results it fills."""

from cl_nlp.evaluation.metrics import (average_accuracy, average_forgetting, backward_transfer, forgetting_per_task,
                                       forward_transfer, intransigence, summary)
from cl_nlp.evaluation.results import Results

__all__ = ["Results", "average_accuracy", "average_forgetting", "backward_transfer", "forgetting_per_task",
           "forward_transfer", "intransigence", "summary"]
