"""train.compile: the training forward goes through torch.compile, once per model, with unchanged results."""

import torch

from cl_nlp.config import TrainConfig
from cl_nlp.evaluation.evaluator import Evaluator
from cl_nlp.evaluation.results import Results
from cl_nlp.heads import task_class_matrix
from cl_nlp.models import build_model, load_tokenizer
from cl_nlp.strategies import StrategyContext, build_strategy
from cl_nlp.streams import build_stream
from cl_nlp.task_data import tokenize_stream
from cl_nlp.tracking import Tracker
from cl_nlp.training import Trainer


def train_two_tasks(tiny_model: str, compile: bool) -> torch.Tensor:
    stream = build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 2, "train_per_class": 4, "test_per_class": 1})
    tokenizer = load_tokenizer(tiny_model)
    data = tokenize_stream(stream, tokenizer, 32)
    torch.manual_seed(0)
    model = build_model(tiny_model, stream.num_classes)
    classes = task_class_matrix(stream)
    context = StrategyContext(stream.scenario, len(stream), stream.num_classes, pad_id=tokenizer.pad_token_id,
                              task_classes=classes)
    evaluator = Evaluator(Results(stream.task_names, stream.scenario), [d.test for d in data], context)
    cfg = TrainConfig(epochs=1, batch_size=8, device="cpu", compile=compile)
    trainer = Trainer(model, build_strategy("naive", None, context), evaluator, Tracker(), cfg, context,
                      show_progress=False)
    for task in data:
        trainer.train_task(task)
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


def test_compiled_training_matches_eager_and_compiles_once(tiny_model, monkeypatch):
    real_compile, compiled = torch.compile, []

    def eager_compile(model, **kwargs):  # dynamo's graph capture without C++ code generation: seconds, not minutes
        compiled.append(model)
        return real_compile(model, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    plain = train_two_tasks(tiny_model, compile=False)
    assert compiled == []
    with_compile = train_two_tasks(tiny_model, compile=True)
    assert len(compiled) == 1  # two tasks, one model object: compiled once
    assert torch.equal(plain, with_compile)
