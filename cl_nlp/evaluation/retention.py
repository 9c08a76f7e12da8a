"""Where did the knowledge go, and where did it come from? Derived numbers, as pure functions.

Inputs are the run's matrices (0-based: ``M[k, j]`` = value on task ``j`` after training
through task ``k``; NaN = not measured): ``live`` (the prediction a user gets), ``probe`` (a
fresh linear probe on the frozen encoder), ``before["probe"]`` (the same probe on the untouched
pretrained encoder, ``P0``) and ``cka`` (linear CKA of task ``j``'s test features right after
learning it against those at stage ``k``).

Definitions, per earlier task ``j`` as of stage ``s`` (tasks learned so far):

- live / probe retention: ``M[s-1, j] / M[j, j]``;
- live drop ``d_j``: Chaudhry's forgetting of the live matrix, ``max_{j<=l<s-1} R[l, j] - R[s-1, j]``;
- recovered points: ``clip(P[s-1, j] - R[s-1, j], 0, d_j)`` — a probe above the best live accuracy
  recovers the whole drop, one below the current live accuracy recovers none;
- recoverable share: recovered / drop, per task where ``d_j >= MIN_DROP`` and averaged as
  Σ recovered / Σ drop over those tasks (weighted by points lost, so a task that barely dropped
  cannot dominate);
- representation gain: ``P[j, j] - P0[j]``, what fine-tuning on ``j`` added to the encoder;
- surviving share: ``(P[s-1, j] - P0[j]) / gain`` where ``gain >= MIN_GAIN`` (aggregated over
  the earlier tasks as Σ surviving / Σ gain), since a smaller gain is within the noise of a
  probe on a few hundred test examples.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cl_nlp.evaluation import metrics
from cl_nlp.evaluation.results import Results

# DESIGN.md: "differences under ~3 points are noise" (one seed, 450 test examples per task).
MIN_GAIN = 0.03
# A drop under 5 points is within ~2.5 standard errors of two accuracies on 450 examples: not
# enough to say what share of it a probe recovers.
MIN_DROP = 0.05
# Live accuracy right after learning below which a task "was not learned well": a stream whose
# tasks are not learned first measures little forgetting (DESIGN.md).
LEARNED_WELL = 0.70


def _nan() -> float:
    return float("nan")


def retention_matrix(R: np.ndarray) -> np.ndarray:
    """``R[k, j] / R[j, j]`` for ``k >= j``; NaN elsewhere or where ``R[j, j]`` is 0 or missing."""
    R = np.asarray(R, dtype=float)
    out = np.full(R.shape, np.nan)
    diag = np.diag(R)
    for j in range(R.shape[1]):
        if diag[j] > 0:
            out[j:, j] = R[j:, j] / diag[j]
    return out


def recoverable_share(live: np.ndarray, probe: np.ndarray, stage: int,
                      min_drop: float = MIN_DROP) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per earlier task: (live drop, points a probe recovers, share recovered), and the
    points-weighted share over tasks whose drop is at least ``min_drop`` (NaN if none).

    Example:
        >>> live = np.array([[0.9, np.nan], [0.3, 0.9]])
        >>> probe = np.array([[0.95, np.nan], [0.75, 0.95]])
        >>> drop, recovered, share, overall = recoverable_share(live, probe, stage=2)
        >>> [round(float(v), 3) for v in (drop[0], recovered[0], share[0], overall)]
        [0.6, 0.45, 0.75, 0.75]
    """
    live = np.asarray(live, dtype=float)
    probe = np.asarray(probe, dtype=float)
    drop = metrics.forgetting_per_task(live, stage)
    now_live, now_probe = live[stage - 1, : stage - 1], probe[stage - 1, : stage - 1]
    with np.errstate(invalid="ignore"):
        recovered = np.clip(now_probe - now_live, 0.0, np.maximum(drop, 0.0))
        meaningful = drop >= min_drop
        share = np.where(meaningful, recovered / np.where(meaningful, drop, 1.0), np.nan)
    ok = meaningful & ~np.isnan(recovered)
    overall = float(recovered[ok].sum() / drop[ok].sum()) if ok.any() else _nan()
    return drop, recovered, share, overall


def representation_gain(probe: np.ndarray, pretrained: np.ndarray, stage: int,
                        min_gain: float = MIN_GAIN) -> tuple[np.ndarray, np.ndarray, float]:
    """Per task learned so far: gain ``P[j, j] - P0[j]`` and the share of it surviving at
    ``stage`` (NaN where the gain is below ``min_gain``), plus the gain-weighted share over the
    earlier tasks (NaN if none qualifies)."""
    probe = np.asarray(probe, dtype=float)
    p0 = np.asarray(pretrained, dtype=float)[:stage]
    gain = np.diag(probe)[:stage] - p0
    kept = probe[stage - 1, :stage] - p0
    with np.errstate(invalid="ignore"):
        meaningful = gain >= min_gain
        share = np.where(meaningful, kept / np.where(meaningful, gain, 1.0), np.nan)
    # The task just learned trivially keeps all of its gain: only earlier tasks enter the aggregate.
    ok = meaningful & ~np.isnan(kept) & (np.arange(stage) < stage - 1)
    overall = float(kept[ok].sum() / gain[ok].sum()) if ok.any() else _nan()
    return gain, share, overall


def _mean(values: np.ndarray | list[float]) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if v.size and not np.all(np.isnan(v)) else _nan()


def _get(M: np.ndarray | None, i: int, j: int) -> float:
    return float(M[i, j]) if M is not None else _nan()


def task_table(results: Results, stage: int | None = None) -> list[dict[str, Any]]:
    """One row per task learned by ``stage``: the side-by-side numbers of the retention question."""
    s = stage or results.stages_done
    live = results.matrix("live")
    probe = results.matrices.get("probe")
    cka = results.matrices.get("cka")
    p0 = results.before.get("probe", np.full(results.num_tasks, np.nan))
    live_ret = retention_matrix(live)
    probe_ret = retention_matrix(probe) if probe is not None else None
    drop = recovered = share = np.full(max(s - 1, 0), np.nan)
    if probe is not None and s >= 2:
        drop, recovered, share, _ = recoverable_share(live, probe, s)
    elif s >= 2:
        drop = metrics.forgetting_per_task(live, s)
    gain, surviving = np.full(s, np.nan), np.full(s, np.nan)
    if probe is not None:
        gain, surviving, _ = representation_gain(probe, p0, s)
    rows = []
    for j in range(s):
        earlier = j < s - 1
        rows.append({
            "task": results.task_names[j],
            "pretrained_probe": float(p0[j]),
            "probe_after_learning": _get(probe, j, j),
            "final_probe": _get(probe, s - 1, j),
            "live_after_learning": float(live[j, j]),
            "final_live": float(live[s - 1, j]),
            "representation_gain": float(gain[j]),
            "surviving_share": float(surviving[j]),
            "live_retention": float(live_ret[s - 1, j]),
            "probe_retention": _get(probe_ret, s - 1, j),
            "live_drop": float(drop[j]) if earlier else _nan(),
            "recovered": float(recovered[j]) if earlier else _nan(),
            "recoverable_share": float(share[j]) if earlier else _nan(),
            "cka": _get(cka, s - 1, j),
            "learned_well": bool(live[j, j] >= LEARNED_WELL),
        })
    return rows


def retention_summary(results: Results, stage: int | None = None) -> dict[str, Any]:
    """Averages of :func:`task_table` (earlier tasks only where a measure needs a later stage),
    the thresholds used, and the tasks not learned well."""
    s = stage or results.stages_done
    rows = task_table(results, s)
    earlier = rows[: s - 1]
    probe = results.matrices.get("probe")
    out: dict[str, Any] = {
        "stage": s,
        "thresholds": {"min_gain": MIN_GAIN, "min_drop": MIN_DROP, "learned_well": LEARNED_WELL},
        "live_acc": metrics.average_accuracy(results.matrix("live"), s),
        "live_after_learning": _mean([r["live_after_learning"] for r in rows]),
        "live_drop": _mean([r["live_drop"] for r in earlier]),
        "recovered": _mean([r["recovered"] for r in earlier]),
        "live_retention": _mean([r["live_retention"] for r in earlier]),
        "probe_retention": _mean([r["probe_retention"] for r in earlier]),
        "cka": _mean([r["cka"] for r in earlier]),
        "pretrained_probe_acc": _mean([r["pretrained_probe"] for r in rows]),
        "probe_after_learning": _mean([r["probe_after_learning"] for r in rows]),
        "representation_gain": _mean([r["representation_gain"] for r in rows]),
        "not_learned_well": [r["task"] for r in rows if not r["learned_well"]],
        "gained_tasks": [r["task"] for r in rows if r["representation_gain"] >= MIN_GAIN],
    }
    out["recoverable_share"] = _nan()
    out["surviving_share"] = _nan()
    if probe is not None:
        p = metrics.summary(probe, s)
        out.update(probe_acc=p["acc"], probe_bwt=p["bwt"], probe_forgetting=p["forgetting"])
        if s >= 2:
            out["recoverable_share"] = recoverable_share(results.matrix("live"), probe, s)[3]
        p0 = results.before.get("probe", np.full(results.num_tasks, np.nan))
        out["surviving_share"] = representation_gain(probe, p0, s)[2]
    else:
        out.update(probe_acc=_nan(), probe_bwt=_nan(), probe_forgetting=_nan())
    return out


def probe_seconds(results: Results) -> float:
    """Seconds spent on probes and drift in the whole run (``probe_seconds/*`` timings)."""
    return float(sum(v for k, v in results.timings.items() if k.startswith("probe_seconds/")))


def final_retention_metrics(results: Results) -> dict[str, float]:
    """The ``final/*`` metrics of the retention question (names read by ``cl-nlp compare``/``sweep``)."""
    summary = retention_summary(results)
    out = {f"final/{k}": float(summary[k]) for k in (
        "probe_acc", "probe_bwt", "probe_forgetting", "recoverable_share", "pretrained_probe_acc",
        "representation_gain", "surviving_share", "live_retention", "probe_retention", "cka")}
    seconds = probe_seconds(results)
    out["final/probe_seconds"] = seconds
    run = results.timings.get("run_seconds", _nan())
    out["final/probe_time_share"] = seconds / run if run and not math.isnan(run) else _nan()
    return out
