"""Runs built from chosen accuracies: results with per-example correctness, and a checker that
no sentence of a verdict says more (or other) than its numbers.

Correctness vectors are *nested*: a reading with accuracy a on n examples gets the first
round(a·n) examples right, so two readings of one task differ only in one direction — the
paired table is fully determined by the two accuracies, and every expected outcome can be
worked out by hand.
"""

from __future__ import annotations

import math
import re

import numpy as np

from cl_nlp.evaluation.results import Results


def nested(accuracy: float, n: int) -> np.ndarray:
    v = np.zeros(n, bool)
    v[: round(accuracy * n)] = True
    return v


def constructed_run(live, probe=None, p0=None, *, per_class: int = 15, classes: int = 30, names=None,
                    ncm=None, scenario: str = "class-incremental") -> Results:
    """A finished run: ``live[i][j]`` / ``probe[i][j]`` = accuracy on task j after learning task i (j <= i),
    ``p0[j]`` = the pretrained probe; every task has ``classes`` classes of ``per_class`` test examples."""
    t = len(live)
    names = list(names or [f"t{j + 1}" for j in range(t)])
    n = per_class * classes
    r = Results(names, scenario)
    r.task_classes = [list(range(j * classes, (j + 1) * classes)) for j in range(t)]
    r.test_class_counts = [[per_class] * classes for _ in range(t)]
    for j in range(t):
        r.record_correct("live", 0, j, nested(1 / classes, n))
        if p0 is not None:
            r.record_correct("probe", 0, j, nested(p0[j], n))
    for i in range(t):
        for j in range(i + 1):
            r.record_correct("live", i + 1, j, nested(live[i][j], n))
            r.record_correct("task_aware", i + 1, j, nested(live[i][j], n))
            if probe is not None:
                r.record_correct("probe", i + 1, j, nested(probe[i][j], n))
            if ncm is not None:
                r.record_correct("ncm_probe", i + 1, j, nested(ncm[i][j], n))
    r.stages_done = t
    return r


# ---- an independent reading of a verdict's claims (retention.json "claims") ----

def outcome(lo: float, hi: float, reference: float, margin: float) -> str:
    """Re-implemented on purpose (not imported): what an interval allows one to say."""
    if lo is None or hi is None or not math.isfinite(lo) or not math.isfinite(hi):
        return "unclear"
    if margin > 0 and reference - margin < lo and hi < reference + margin:
        return "same"
    if lo > reference:
        return "higher"
    if hi < reference:
        return "lower"
    return "unclear"


# Words a sentence may only use when some evidence of the claim has this outcome.
WORD_NEEDS = {"fell": "lower", "dropped": "lower", "rose": "higher", "within the": "same",
              "is gone, and more": "lower", "back at the pretrained": "same", "still above": "higher"}
# What each claim kind needs, restated from the definitions (not read from the library).
KIND_NEEDS = {
    "learned": {"learned": {"higher"}}, "never_learned": {"learned": {"lower", "same", "unclear"}},
    "dropped": {"live_change": {"lower"}}, "not_forgotten": {"live_change": {"same", "higher"}},
    "cannot_tell": {"live_change": {"unclear"}},
    "readout": {"live_change": {"lower"}, "probe_change": {"same", "higher"}},
    "both": {"live_change": {"lower"}, "probe_change": {"lower"}},
    "source_pretraining": {"pretrained_vs_chance": {"higher"}, "gain": {"same", "lower"}},
    "source_both": {"pretrained_vs_chance": {"higher"}, "gain": {"higher"}},
    "source_fine-tuning": {"pretrained_vs_chance": {"same", "lower"}, "gain": {"higher"}},
    # fate of fine-tuning's gain: final probe - P0 judged without a margin; "back" also needs it within the
    # margin and a significant probe drop since right after learning
    "gain_below_pretrained": {"gained_final_vs_pretrained": {"lower"}},
    "gain_back_to_pretrained": {"gained_final_vs_pretrained": {"unclear"}, "gained_final_within_margin": {"same"},
                                "gained_probe_change": {"lower"}},
    "gain_survives": {"gained_final_vs_pretrained": {"higher"}},
}


def _renderings(x: float) -> set[str]:
    if x is None or not math.isfinite(x):
        return set()
    out = {f"{x:.2f}", f"{x:.3f}", str(abs(round(x * 100))), f"{abs(x) * 100:.0f}"}
    out.add(f"{x * 100:.4g}")  # confidence levels: 95, 97.5, 98.33
    return out


def check_claims(claims: list[dict], task_names: list[str]) -> None:
    """Assert that every claim's outcomes follow from its intervals, its kind from its outcomes, its
    words from its outcomes, and that every number in its text is one of the numbers it rests on."""
    for claim in claims:
        text, ev = claim["text"], claim["evidence"]
        outcomes = {}
        for e in ev:
            est = e["estimate"]
            got = outcome(est["lo"], est["hi"], e["reference"], e["margin"])
            assert got == e["outcome"], f"{e['label']}: interval says {got}, claim says {e['outcome']}: {text}"
            if not e["role"].startswith("context:"):  # quoted numbers no outcome word rests on
                outcomes.setdefault(e["role"], set()).add(got)
        for role, allowed in KIND_NEEDS.get(claim["kind"], {}).items():
            assert outcomes.get(role) and outcomes[role] <= allowed, f"{claim['kind']} needs {role} in {allowed}: {text}"
        for word, needed in WORD_NEEDS.items():
            if word in text and claim["topic"] not in ("drift", "limits", "probes"):
                assert any(needed in o for o in outcomes.values()), f"{word!r} without a {needed} outcome: {text}"
        allowed = set()
        for e in ev:
            for key in ("value", "lo", "hi"):
                allowed |= _renderings(e["estimate"][key])
            allowed |= _renderings(e["reference"]) | _renderings(e["margin"]) | _renderings(e["estimate"]["level"])
        for x in claim["numbers"]:
            allowed |= _renderings(x) | ({str(int(x))} if x is not None and float(x).is_integer() else set())
        stripped = text
        for name in sorted(task_names, key=len, reverse=True):
            stripped = stripped.replace(name, "TASK")
        stripped = re.sub(r"\b\d+ (of|earlier|task|tasks|test)\b|over \d+ tasks?|\d+ = |(on|layers?) \d+", " ", stripped)
        for number in re.findall(r"\d+(?:\.\d+)?", stripped):
            assert number in allowed, f"{number} in {text!r} is none of the numbers it rests on"
