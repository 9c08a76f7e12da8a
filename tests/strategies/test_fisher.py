"""The diagonal Fisher against a brute-force per-example computation with plain autograd."""

import pytest
import torch
import torch.nn.functional as F

from cl_nlp.batching import collate
from cl_nlp.strategies.ewc.fisher import fisher_diagonal
from tests.strategies.helpers import tiny_classifier, tiny_examples


def brute_force_fisher(model, examples, labels_for=None, mask=None):
    """Mean over examples of squared full gradients, one unpadded example at a time."""
    model.eval()
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in params.items()}
    for i in range(len(examples)):
        b = collate(examples.subset([i]), pad_id=0)
        logits = model(b["input_ids"], b["attention_mask"]).logits
        if mask is not None:
            logits = logits.masked_fill(~mask[b["task_ids"]], float("-inf"))
        label = b["labels"] if labels_for is None else labels_for(logits)
        grads = torch.autograd.grad(F.cross_entropy(logits, label), list(params.values()), allow_unused=True)
        for n, g in zip(params, grads):
            if g is not None:
                total[n] += g.double() ** 2
    return {n: t / len(examples) for n, t in total.items()}


# None: one backward pass per example; 3: batches of mixed lengths (padding) and a ragged last one;
# 32: the whole sample in one batch.
BATCHES = pytest.mark.parametrize("batch_size", [None, 3, 32])


@BATCHES
def test_empirical_fisher_equals_per_example_brute_force(tiny_model, batch_size):
    model = tiny_classifier(tiny_model)
    examples = tiny_examples(tiny_model, [0, 1, 2, 3, 1, 0, 2, 2, 3, 1])  # the last two are longer ("... again")
    names = [n for n, _ in model.named_parameters()]
    fast = fisher_diagonal(model, examples, names, pad_id=0, batch_size=batch_size)
    assert model.training and all(p.requires_grad for p in model.parameters())  # left as it was found
    slow = brute_force_fisher(model, examples)
    assert set(fast) == set(slow)
    for n in names:
        assert torch.allclose(fast[n].double(), slow[n], rtol=1e-4, atol=1e-12), n
    # the word-embedding rows of tokens never used stay exactly zero (what makes row storage exact)
    emb = fast["encoder.embeddings.word_embeddings.weight"]
    used = {t for ids in examples.input_ids for t in ids}
    nonzero = set((emb != 0).any(1).nonzero().view(-1).tolist())
    assert nonzero == used


@BATCHES
def test_true_fisher_samples_labels_from_the_model(tiny_model, batch_size):
    model = tiny_classifier(tiny_model)
    examples = tiny_examples(tiny_model, [0, 1, 2, 3, 1, 0])
    names = ["head.weight", "encoder.encoder.layer.1.output.dense.weight", "encoder.embeddings.LayerNorm.weight"]
    fast = fisher_diagonal(model, examples, names, pad_id=0, kind="true", generator=torch.Generator().manual_seed(5),
                           batch_size=batch_size)
    # One uniform per example, drawn up front; the label is where it falls in the predicted CDF.
    uniforms = iter(torch.rand(len(examples), generator=torch.Generator().manual_seed(5), dtype=torch.float64).tolist())

    def drawn_label(logits):
        cdf = logits.detach().double().softmax(-1).view(-1).cumsum(0)
        return torch.searchsorted(cdf, next(uniforms) * cdf[-1], right=True).view(1)

    slow = brute_force_fisher(model, examples, labels_for=drawn_label)
    for n in names:
        assert torch.allclose(fast[n].double(), slow[n], rtol=1e-4, atol=1e-12), n
    empirical = fisher_diagonal(model, examples, names, pad_id=0)
    assert not torch.allclose(fast["head.weight"], empirical["head.weight"])


def test_task_incremental_fisher_frees_other_tasks_head_rows(tiny_model):
    model = tiny_classifier(tiny_model)
    examples = tiny_examples(tiny_model, [0, 1, 0, 1])
    task_classes = torch.tensor([[True, True, False, False], [False, False, True, True]])
    fisher = fisher_diagonal(model, examples, ["head.weight", "head.bias"], pad_id=0, task_classes=task_classes,
                             scenario="task-incremental")
    slow = brute_force_fisher(model, examples, mask=task_classes)
    assert torch.allclose(fisher["head.weight"].double(), slow["head.weight"], rtol=1e-4, atol=1e-12)
    assert (fisher["head.weight"][2:] == 0).all() and (fisher["head.weight"][:2] > 0).all()
    ci = fisher_diagonal(model, examples, ["head.weight"], pad_id=0)  # class-incremental: the whole head is shared
    assert (ci["head.weight"][2:] > 0).all()


class Scaled(torch.nn.Module):
    """A parameter outside any Linear/LayerNorm/Embedding: the batched path cannot take it apart."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier
        self.temperature = torch.nn.Parameter(torch.tensor(1.5))

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        out = self.classifier(input_ids, attention_mask, token_type_ids)
        out.logits = out.logits * self.temperature
        return out


def test_parameters_the_batched_path_cannot_see_fall_back_to_one_example_at_a_time(tiny_model):
    model = Scaled(tiny_classifier(tiny_model))
    examples = tiny_examples(tiny_model, [0, 1, 2, 3, 1, 0])
    names = ["temperature", "classifier.head.weight"]
    fast = fisher_diagonal(model, examples, names, pad_id=0, batch_size=4)
    slow = brute_force_fisher(model, examples)
    for n in names:
        assert torch.allclose(fast[n].double(), slow[n], rtol=1e-4, atol=1e-12), n
