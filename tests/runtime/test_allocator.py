"""keep_freed_memory: the per-step embedding gradient no longer costs fresh page faults every step."""

import resource
import sys

import pytest
import torch

from cl_nlp.runtime.allocator import keep_freed_memory, restore_glibc_defaults

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")

VOCAB, WIDTH = 30522, 384  # MiniLM's word embeddings: a 47 MB dense gradient per step
PAGES = VOCAB * WIDTH * 4 // 4096


def faults_per_step(steps: int = 8) -> float:
    """Minor page faults per training-like step: embedding backward, then the gradient set to None."""
    weight = torch.zeros(VOCAB, WIDTH, requires_grad=True)
    ids = torch.randint(0, VOCAB, (16, 12), generator=torch.Generator().manual_seed(0))
    for step in range(steps + 1):
        if step == 1:  # the first step only grows the heap
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.nn.functional.embedding(ids, weight).sum().backward()
        weight.grad = None
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def test_embedding_gradient_reuses_freed_memory():
    try:
        if not keep_freed_memory():
            pytest.skip("not glibc: mallopt unavailable")
        kept = faults_per_step()
        restore_glibc_defaults()
        default = faults_per_step()
    finally:
        keep_freed_memory()  # the state training leaves the process in
    assert default > 0.5 * PAGES  # glibc's default: the whole gradient is faulted in again every step
    assert kept < 0.5 * default
