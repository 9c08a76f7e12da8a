"""Every hostile case, in one list (the table of issue 19)."""

from __future__ import annotations

from tests.hostile import cases_checkpoints, cases_config, cases_faults, cases_models, cases_streams

CASES = [*cases_config.CASES, *cases_streams.CASES, *cases_models.CASES, *cases_checkpoints.CASES, *cases_faults.CASES]
