"""The verdict over several runs: each group's verdict quantities with intervals across runs.

Every compared run's results are assessed on their own (:func:`~cl_nlp.evaluation.retention_overall.assess_run`:
run-level averages, category, knowledge source); a group (a strategy, or a strategy at one
setting) then gets, per quantity, the mean over its runs with a Student-t interval across runs
(seeds, class orders — the between-run spread, which the within-run bootstrap does not see).
The group's category and knowledge source are stated only where every run says the same, with
a determined answer; otherwise the table says the runs disagree and how.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from cl_nlp.evaluation.intervals import t_interval
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention_overall import RunRetention, assess_run

LEVEL = 0.95
# (key in the run's aggregates or drift, column header)
QUANTITIES = (("live_change", "live change"), ("probe_change", "probe change"), ("readout_loss", "readout loss"),
              ("recoverable_share", "readout share of the drop"), ("gain", "gain P_jj-P0"),
              ("final_vs_pretrained", "final probe-P0"), ("cka_debiased", "debiased CKA"))
UNDECIDED = (None, "undetermined", "mixed", "cannot_tell")


@dataclass
class GroupVerdict:
    """One group's verdict quantities across its runs, and its answers where the runs agree."""

    label: str
    runs: int
    stats: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)  # mean, lo, hi, runs
    categories: list[str] = field(default_factory=list)
    sources: list[str | None] = field(default_factory=list)

    @staticmethod
    def _agreed(values: list) -> str | None:
        return values[0] if values and len(set(values)) == 1 and values[0] not in UNDECIDED else None

    @property
    def category(self) -> str | None:
        return self._agreed(self.categories)

    @property
    def source(self) -> str | None:
        return self._agreed(self.sources)

    def answer(self, values: list, agreed: str | None) -> str:
        if agreed is not None:
            return f"{agreed} ({len(values)} of {len(values)} run{'s' if len(values) > 1 else ''})"
        counts = Counter(str(v) if v is not None else "none measured" for v in values)
        if len(counts) == 1:
            return f"no answer: every run says {next(iter(counts))}"
        return "no answer: runs disagree (" + ", ".join(f"{n} {k}" for k, n in counts.most_common()) + ")"


def _value(run: RunRetention, key: str) -> float:
    if key in run.aggregates:
        return run.aggregates[key].value
    return run.drift.get(key, math.nan)


def group_verdicts(groups: dict[str, list[Results]]) -> list[GroupVerdict]:
    """Each group's :class:`GroupVerdict` from its runs' results."""
    out = []
    for label, members in groups.items():
        runs = [assess_run(r) for r in members]
        g = GroupVerdict(label, len(runs))
        for key, _ in QUANTITIES:
            mean, lo, hi, n = t_interval([_value(r, key) for r in runs], LEVEL)
            g.stats[key] = (mean, lo, hi, n)
        g.categories = [r.category for r in runs]
        g.sources = [r.source for r in runs]
        out.append(g)
    return out


def _cell(stat: tuple[float, float, float, int], runs: int) -> str:
    mean, lo, hi, n = stat
    if n == 0:
        return "n/a"
    text = f"{mean:+.3f}" + (f" [{lo:+.3f}, {hi:+.3f}]" if n > 1 else "")
    return text + (f" (n={n})" if n < runs else "")


def markdown(verdicts: list[GroupVerdict]) -> str:
    """The across-runs table (mean [95% t-interval over runs]) and each group's answers."""
    head = ["group", "runs", *(label for _, label in QUANTITIES)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in verdicts:
        lines.append("| " + " | ".join([g.label, str(g.runs), *(_cell(g.stats[k], g.runs) for k, _ in QUANTITIES)]) + " |")
    lines += ["", ("Cells: mean over runs [95% Student-t interval across runs]; each run's value is its own average "
                   "over its earlier tasks (docs/retention.md). A group's answer is given only where all its runs agree."),
              ""]
    for g in verdicts:
        lines.append(f"- **{g.label}**: forgetting — {g.answer(g.categories, g.category)}; knowledge source — "
                     f"{g.answer(g.sources, g.source)}.")
    return "\n".join(lines)


def summary_metrics(verdicts: list[GroupVerdict]) -> dict[str, float]:
    """``summary/<group>/<quantity>_mean``, ``_lo``, ``_hi`` for logging (undefined values left out)."""
    out = {}
    for g in verdicts:
        for key, _ in QUANTITIES:
            mean, lo, hi, _n = g.stats[key]
            for part, v in (("mean", mean), ("lo", lo), ("hi", hi)):
                if math.isfinite(v):
                    out[f"summary/{g.label}/verdict_{key}_{part}"] = v
    return out
