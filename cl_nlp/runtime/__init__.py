"""Runtime plumbing under the training loop: checkpoints, resuming, the run folder's lock and
checks, random-number states, data-parallel helpers, the CPU allocator and OpenMP settings.

Nothing is imported here: :mod:`cl_nlp.runtime.openmp` must run before torch loads, so
importing this package loads nothing heavy. Import the modules themselves.
"""
