"""The verdict's claims, checked, and their rendering as short markdown bullets.

:func:`verdict_claims` builds the structured claims (:mod:`cl_nlp.evaluation.claims`) from the
run's assessment (:mod:`cl_nlp.evaluation.retention_overall`) and checks each one against its
numbers; :func:`render` writes them as bullets, one per topic — the verdict printed at the end
of a run, set as the MLflow run description and put at the top of ``report.md``
(:mod:`cl_nlp.evaluation.verdict`).
"""

from __future__ import annotations

import numpy as np

from cl_nlp.evaluation.claim_text import (
    CATEGORY_WORDS,
    SOURCE_WORDS,
    drift_claims,
    fate_evidence,
    forgetting_claims,
    gain_fate_claims,
    learning_claims,
    level_text,
    location_claims,
    names,
    per_task_claims,
    probe_kind_claims,
    source_claims,
)
from cl_nlp.evaluation.claims import Claim, check_claim
from cl_nlp.evaluation.judgement import evidence
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import probe_reading
from cl_nlp.evaluation.retention_overall import RunRetention, assess_run

HEADLINES = {
    "never_learned": "nothing was shown to be learned, so nothing can be said about forgetting",
    "one_task": "one task learned: nothing could be forgotten yet",
    "nothing_to_forget": "no earlier task was shown to be learned: nothing to forget",
    "not_forgotten": "not forgotten (live accuracy on earlier tasks did not drop beyond the margin)",
    "readout": "forgotten in the readout (the classifier), not the representation",
    "both": "forgotten in both the readout and the representation",
    "representation_unclear": "forgotten; whether the representation kept it cannot be told",
    "live_dropped": "forgotten; probes were off, so where cannot be told",
    "cannot_tell": "cannot tell: too few test examples",
}
SOURCE_HEADLINES = {"pretraining": "what the probes found right after learning came from pretraining",
                    "fine-tuning": "what the probes found right after learning came from fine-tuning",
                    "both": "what the probes found right after learning came from pretraining and fine-tuning",
                    "none": "neither probe is shown above chance: no evidence the encoder holds the tasks",
                    "mixed": "the knowledge source differs between tasks",
                    "undetermined": "the knowledge source cannot be told on every task"}
FATE_HEADLINES = {"survives": "; fine-tuning's gain survives to the end, at least in part",
                  "back_to_pretrained": "; at the end fine-tuning's part is gone (back at the pretrained level)",
                  "below_pretrained": "; at the end fine-tuning's part is gone, and some of pretraining's with it",
                  "unclear": "; whether fine-tuning's part survives cannot be told"}


def best_layers(results: Results) -> list[int] | None:
    """Layers the layer-wise probes chose for the tasks learned, at the last stage (``None`` when off)."""
    m = results.matrices.get("probe_best_layer_index")
    if m is None or results.stages_done < 1:
        return None
    row = m[results.stages_done - 1, : results.stages_done]
    return [int(x) for x in row if np.isfinite(x)]


def _headline(run: RunRetention) -> list[Claim]:
    ev = []
    if run.category in ("readout", "both", "representation_unclear", "live_dropped", "not_forgotten", "cannot_tell"):
        for name in ("live_change", "probe_change"):
            if name in run.aggregates:
                members = [t for t in run.tasks if t.task in run.members[name]]
                m = float(np.mean([t.margin for t in members]))
                ev.append(evidence(name, f"mean {name}", run.aggregates[name], 0.0, m))
    elif run.category == "never_learned":
        ev = [evidence("learned", t.task, t.tests["learned"], t.chance) for t in run.tasks]
    # Without a live-change estimate (no test sizes) the category is no outcome of an interval: plain words.
    kind = "limit" if run.category == "cannot_tell" and "live_change" not in run.aggregates else run.category
    words = "cannot tell: no test-set sizes, so no intervals" if kind == "limit" else HEADLINES[run.category]
    out = [Claim("headline", kind, f"Verdict: {words}.", ev)]
    if run.source is not None:
        src = [e for t in run.tasks if t.source is not None for e in
               (evidence("pretrained_vs_chance", t.task, t.tests["pretrained_vs_chance"], t.chance, t.margin),
                evidence("after_vs_chance", t.task, t.tests["after_vs_chance"], t.chance, t.margin))
               + ((evidence("gain", t.task, t.differences["gain"], 0.0, t.margin),) if "gain" in t.differences else ())]
        every = len([t for t in run.tasks if t.source is not None])
        scope = f" (on {'each of the ' + str(every) + ' tasks' if every > 1 else 'the task'})" if run.source not in (
            "mixed", "undetermined") else ""
        fate = ""
        if run.source in ("both", "fine-tuning") and run.gain_fate is not None:
            fate = FATE_HEADLINES[run.gain_fate]
            src += fate_evidence(run)
        out.append(Claim("headline", f"source_{run.source}", f"Source: {SOURCE_HEADLINES[run.source]}{scope}{fate}.",
                         src))
    return out


def verdict_claims(results: Results, run: RunRetention | None = None) -> list[Claim]:
    """Every claim of the verdict, each checked against its own numbers (``AssertionError`` if not)."""
    run = run or assess_run(results)
    if run.stage < 1:
        return [Claim("limits", "limit", "No task was learned: nothing to judge.")]
    has_probe = probe_reading(results) in results.matrices
    claims = _headline(run) + learning_claims(run)
    if run.stage == 1:
        claims.append(Claim("forgetting", "one_task", "Only one task was learned: nothing could be forgotten yet."))
    claims += forgetting_claims(run) + location_claims(run, has_probe) + per_task_claims(run)
    claims += source_claims(run) + gain_fate_claims(run) + probe_kind_claims(run, best_layers(results))
    claims += drift_claims(run)
    claims += [Claim("limits", "limit", f"Cannot tell from this run: {note}.") for note in run.notes]
    for claim in claims:
        check_claim(claim)
    return claims


def _group(claims: list[Claim], words: dict[str, str], prefix: str) -> str:
    groups: dict[str, list[Claim]] = {}
    for c in claims:
        groups.setdefault(c.kind, []).append(c)
    parts = [f"{words.get(kind.removeprefix(prefix), kind)} — " + "; ".join(c.text for c in members)
             for kind, members in groups.items()]
    return " · ".join(parts)


def render(claims: list[Claim], run: RunRetention | None = None) -> str:
    """The claims as markdown bullets, one per topic, in a fixed order."""
    by_topic: dict[str, list[Claim]] = {}
    for c in claims:
        by_topic.setdefault(c.topic, []).append(c)
    bullets = []
    if "headline" in by_topic:
        bullets.append(" ".join(c.text for c in by_topic["headline"]))
    for topic in ("learning", "forgetting", "location"):
        if topic in by_topic:
            bullets.append(" ".join(c.text for c in by_topic[topic]))
    tasks = by_topic.get("per_task", [])
    if tasks and run is not None:
        earlier = [t for t in run.tasks if t.category is not None]
        level = level_text(earlier[0].levels["live_change"]) if earlier else ""
        bullets.append(f"Per earlier task ({level} intervals, Bonferroni over {len(earlier)} task"
                       f"{'s' if len(earlier) > 1 else ''}): " + _group(tasks, CATEGORY_WORDS, "") + ".")
    source = [c for c in by_topic.get("source", []) if c.kind.startswith("source_")]
    if source and run is not None:
        level = level_text(run.tasks[0].levels["source"])
        kinds = {c.kind for c in source}
        if len(kinds) == 1:
            kind = next(iter(kinds)).removeprefix("source_")
            scope = f"each of the {len(source)} tasks" if len(source) > 1 else names(source[0].tasks)
            text = (f"Knowledge source ({level} intervals): {kind} on {scope} — {SOURCE_WORDS[kind]}: "
                    + "; ".join(c.text for c in source) + ".")
        else:
            text = (f"Knowledge source ({level} intervals): "
                    + " · ".join(f"{k.removeprefix('source_')} — " + "; ".join(c.text for c in source if c.kind == k)
                                 + f" ({SOURCE_WORDS[k.removeprefix('source_')]})" for k in dict.fromkeys(c.kind for c in source))
                    + ".")
        average = [c for c in by_topic.get("source", []) if c.kind == "gain_average"]
        bullets.append(text + "".join(" " + c.text for c in average))
    for topic in ("gain_fate", "probes", "drift", "limits"):
        if topic in by_topic:
            bullets.append(" ".join(c.text for c in by_topic[topic]))
    return "\n".join(f"- {b}" for b in bullets)
