"""OpenMP settings for the ``cl-nlp`` process, made before torch loads its thread pool.

torch's CPU kernels run on OpenMP (GNU libgomp in the Linux wheels). After each parallel
region libgomp's idle threads spin for a while (``GOMP_SPINCOUNT`` 300,000) before sleeping;
on a machine where another job wants the same cores, that spinning steals the cores the other
job's threads are waiting for, and both slow down many times over. ``OMP_WAIT_POLICY=PASSIVE``
makes idle threads sleep at once (spin count 0). Measured on 2 cores with
``benchmarks/beside_another_run.py`` (a default-sized task's training, 3 rounds): beside an
identical run it took 4.9x its time alone with spinning threads, 1.15x (1.06-1.40) with passive
ones, 3.2x faster than spinning; alone, passive waiting cost 1.07-1.40x against spinning. A
shorter spin (``GOMP_SPINCOUNT=20000``) collapsed like the default (4.9x).

libgomp reads its environment once, when torch loads it: setting the variables after
``import torch`` changes nothing (checked with ``OMP_DISPLAY_ENV=verbose``, which prints
``GOMP_SPINCOUNT = '0'`` only when the policy was set before the import). So the command line
calls :func:`configure_openmp` first thing; library users set the variables in their shell.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path


def cpu_quota(root: str | Path = "/sys/fs/cgroup") -> int | None:
    """CPUs the container's cgroup allows (rounded up), or ``None`` when unlimited or unknown.

    Affinity masks (``taskset``) are seen by OpenMP itself; a CPU quota (docker ``--cpus``,
    Kubernetes limits) is not, and OpenMP would start a thread per visible core.
    """
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "200000 100000"
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 else None
    except (OSError, ValueError):
        return None


def visible_cpus() -> int:
    """Cores this process's affinity mask allows (what OpenMP sizes its thread pool by)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def openmp_defaults(env: Mapping[str, str]) -> dict[str, str]:
    """The variables cl-nlp sets where ``env`` does not: ``OMP_WAIT_POLICY=PASSIVE``, and
    ``OMP_NUM_THREADS`` = the CPU quota where a container's quota hides some of the visible cores.

    A user's ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` leaves the waiting alone: on a machine of
    your own, ``GOMP_SPINCOUNT=300000 cl-nlp run ...`` restores libgomp's default spinning.
    """
    chosen: dict[str, str] = {}
    if not env.get("OMP_WAIT_POLICY") and not env.get("GOMP_SPINCOUNT"):
        chosen["OMP_WAIT_POLICY"] = "PASSIVE"
    if not env.get("OMP_NUM_THREADS"):
        quota = cpu_quota()
        if quota is not None and quota < visible_cpus():
            chosen["OMP_NUM_THREADS"] = str(quota)
    return chosen


def configure_openmp(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Apply :func:`openmp_defaults` to ``environ`` (default ``os.environ``); returns what was set.

    Does nothing once torch is imported (too late to matter, see the module docstring).
    """
    env = os.environ if environ is None else environ
    if "torch" in sys.modules:
        return {}
    chosen = openmp_defaults(env)
    env.update(chosen)
    return chosen


__all__ = ["configure_openmp", "cpu_quota", "openmp_defaults", "visible_cpus"]
