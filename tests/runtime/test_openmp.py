"""OpenMP settings of the cl-nlp process: passive waiting unless the user chose, set before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

from cl_nlp.runtime import openmp as runtime
from cl_nlp.runtime.openmp import cpu_quota, openmp_defaults

# libgomp prints its settings when it loads (OMP_DISPLAY_ENV); GOMP_SPINCOUNT tells an unset wait
# policy (spin 300,000 times) from a passive one (0), which its OMP_WAIT_POLICY line does not.
PROBE = "import torch; x = torch.ones(64, 64); (x @ x).sum()"


def openmp_settings(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         env={**clean, "OMP_DISPLAY_ENV": "verbose", **env})
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_the_cli_makes_openmp_wait_passively_before_torch_loads():
    assert "GOMP_SPINCOUNT = '300000'" in openmp_settings(PROBE)  # torch alone: threads spin
    settings = openmp_settings("from cl_nlp.cli import main; import sys; sys.argv = ['cl-nlp', 'strategies']; "
                               "main()")
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in settings and "GOMP_SPINCOUNT = '0'" in settings
    # Too late once torch is loaded: nothing is changed (and nothing claims to be).
    assert openmp_settings("import torch; from cl_nlp.runtime.openmp import configure_openmp; "
                           "assert configure_openmp() == {}; " + PROBE.split("; ", 1)[1])


def test_the_users_own_settings_win(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_quota", lambda: 1)  # a container allowed 1 of the 2+ visible cores
    monkeypatch.setattr(runtime, "visible_cpus", lambda: 2)
    assert openmp_defaults({}) == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    assert openmp_defaults({"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "2"}) == {}
    assert openmp_defaults({"GOMP_SPINCOUNT": "300000"}) == {"OMP_NUM_THREADS": "1"}
    monkeypatch.setattr(runtime, "cpu_quota", lambda: None)
    assert openmp_defaults({}) == {"OMP_WAIT_POLICY": "PASSIVE"}  # no quota: OpenMP's own thread count
    settings = openmp_settings("from cl_nlp.runtime.openmp import configure_openmp; configure_openmp(); " + PROBE,
                               OMP_WAIT_POLICY="ACTIVE")
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in settings
    # libgomp's default spinning, asked for by its spin count: the policy is not set over it.
    settings = openmp_settings("from cl_nlp.runtime.openmp import configure_openmp; configure_openmp(); " + PROBE,
                               GOMP_SPINCOUNT="300000")
    assert "GOMP_SPINCOUNT = '300000'" in settings


def test_cpu_quota_of_cgroup_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(v2) == 2  # 1.5 CPUs: two threads, rounded up
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(v2) is None
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(tmp_path / "v1") == 3
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_quota(tmp_path / "v1") is None
    assert cpu_quota(tmp_path / "none") is None
