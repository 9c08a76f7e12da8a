"""The verdict's sentences, built from a :class:`~cl_nlp.evaluation.retention_overall.RunRetention`.

Each function returns :class:`~cl_nlp.evaluation.claims.Claim` objects whose words follow the
outcomes of their evidence: "fell" only where the interval says lower, "kept" only where it
lies within the margin, "cannot tell" where it holds both. Numbers are written as accuracies
(``0.93``), signed points (``-75 points``) or shares (``36%``), each with its interval.
"""

from __future__ import annotations

import math

from cl_nlp.evaluation.claims import Claim
from cl_nlp.evaluation.judgement import (
    HIGHER,
    LOWER,
    SAME,
    UNCLEAR,
    Estimate,
    Evidence,
    evidence,
)
from cl_nlp.evaluation.retention import TaskRetention
from cl_nlp.evaluation.retention_overall import RunRetention

CATEGORY_WORDS = {
    "never_learned": "never learned", "not_forgotten": "not forgotten",
    "readout": "forgotten in the readout only", "both": "forgotten in the readout and the representation",
    "representation_unclear": "forgotten, representation unclear", "live_dropped": "forgotten (no probes to say where)",
    "cannot_tell": "cannot tell (too few test examples)",
}
SOURCE_WORDS = {
    "pretraining": "the untouched encoder's probe was already above chance and fine-tuning added nothing beyond the margin",
    "both": "the untouched encoder's probe was above chance and fine-tuning added to it",
    "fine-tuning": "the untouched encoder's probe was at chance and fine-tuning raised it",
    "none": "neither the pretrained probe nor the probe after learning is shown above chance",
    "undetermined": "the intervals do not decide",
}

# What an unclear comparison leaves open, for tasks whose source is undetermined.
UNDECIDED_SOURCE = {"pretrained_vs_chance": "whether the pretrained probe is above chance",
                    "gain": "whether fine-tuning changed it"}


def level_text(level: float) -> str:
    return f"{level * 100:.4g}%"


def acc(v: float) -> str:
    return f"{v:.2f}"


def chance_text(v: float) -> str:
    """A chance level: three decimals below 0.1 (1/30 is 0.033, not 0.03)."""
    return f"{v:.3f}" if v < 0.1 else f"{v:.2f}"


def points(v: float) -> str:
    r = round(v * 100)
    return f"{r:+d} point{'' if abs(r) == 1 else 's'}" if r else "+0 points"


def _pt(v: float) -> str:
    r = round(v * 100)
    return f"{r:+d}" if r else "+0"


def pts_interval(e: Estimate) -> str:
    if not e.has_interval:
        return "no interval: test size unknown"
    return f"{level_text(e.level)} interval {_pt(e.lo)} to {_pt(e.hi)}"


def acc_interval(e: Estimate) -> str:
    if not e.has_interval:
        return "no interval"
    return f"{level_text(e.level)} interval {e.lo:.2f}-{e.hi:.2f}"


def share_interval(e: Estimate) -> str:
    text = f"{e.value:.0%}"
    return text + (f" ({level_text(e.level)} interval {e.lo:.0%} to {e.hi:.0%})" if e.has_interval else "")


def margin_text(m: float) -> str:
    return f"±{m * 100:.0f}-point margin"


def names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _range(values: list[float], fmt=None) -> str:
    fmt = fmt or acc
    lo, hi = min(values), max(values)
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}-{fmt(hi)}"


def learning_claims(run: RunRetention) -> list[Claim]:
    """Which tasks were learned (live right after learning above chance) and which were not."""
    sized = [t for t in run.tasks if t.n]
    learned = [t for t in sized if t.outcomes["learned"] == HIGHER]
    out = []
    if learned:
        level = level_text(learned[0].levels["learned"])
        out.append(Claim(
            "learning", "learned",
            f"Learned: {len(learned)} of {len(run.tasks)} task{'s' if len(run.tasks) > 1 else ''} — live accuracy "
            f"right after learning is above chance on {'each' if len(learned) > 1 else 'it'} "
            f"({_range([t.tests['learned'].value for t in learned])} against chance "
            f"{_range([t.chance for t in learned], chance_text)}; the {level} intervals start at "
            f"{_range([t.tests['learned'].lo for t in learned])}).",
            [evidence("learned", f"{t.task}: live after learning vs chance", t.tests["learned"], t.chance) for t in learned],
            [t.chance for t in learned], [t.task for t in learned]))
    missed = [t for t in sized if t.outcomes["learned"] != HIGHER]
    if missed:
        parts = [f"{t.task} ({acc(t.tests['learned'].value)}, {acc_interval(t.tests['learned'])}, chance "
                 f"{chance_text(t.chance)})" for t in missed]
        out.append(Claim(
            "learning", "never_learned",
            f"Not shown to be learned: {'; '.join(parts)} — live accuracy right after learning is not above chance, "
            f"so there was nothing to forget there.",
            [evidence("learned", f"{t.task}: live after learning vs chance", t.tests["learned"], t.chance)
             for t in missed], [t.chance for t in missed], [t.task for t in missed]))
    if not learned and sized:
        out.append(Claim("learning", "nothing_learned",
                         "No task was shown to be learned, so nothing about forgetting can be said."))
    return out


def context(name: str, e: Estimate) -> Evidence:
    """An estimate a sentence quotes without an outcome word resting on it (role ``context:<name>``)."""
    return evidence(f"context:{name}", name, e)


def _pair(run: RunRetention, name: str) -> Evidence:
    members = [t for t in run.tasks if t.task in run.members[name]]
    m = sum(t.margin for t in members) / len(members)
    return evidence(name, f"mean over {names(run.members[name])}: {name}", run.aggregates[name], 0.0, m)


def forgetting_claims(run: RunRetention) -> list[Claim]:
    """The live change on the earlier learned tasks, averaged, and what it allows one to say."""
    if "live_change" not in run.aggregates:
        return []
    e = _pair(run, "live_change")
    members = run.members["live_change"]
    before, after = run.aggregates["live_after"].value, run.aggregates["live_final"].value
    scope = (f"on {names(members)} (earlier task{'s' if len(members) > 1 else ''} that "
             f"{'were' if len(members) > 1 else 'was'} learned)" if len(members) <= 4
             else f"on the {len(members)} earlier tasks that were learned")
    change = f"({points(e.estimate.value)}, {pts_interval(e.estimate)})"
    numbers = [before, after, e.margin]
    if e.outcome == LOWER:
        return [Claim("forgetting", "dropped", f"Forgetting: {scope}, live accuracy fell from {acc(before)} right after "
                      f"learning to {acc(after)} at the end {change}.", [e], numbers)]
    if e.outcome in (SAME, HIGHER):
        verb = "rose" if e.outcome == HIGHER else "went"
        return [Claim("forgetting", "not_forgotten", f"No forgetting beyond the margin: {scope}, live accuracy {verb} "
                      f"from {acc(before)} right after learning to {acc(after)} at the end {change}"
                      + (f", within the {margin_text(e.margin)}." if e.outcome == SAME else "."), [e], numbers)]
    size = sum(t.n or 0 for t in run.tasks if t.task in run.members["live_change"])
    return [Claim("forgetting", "cannot_tell", f"Cannot tell whether the earlier tasks were forgotten: {scope}, live "
                  f"accuracy went from {acc(before)} to {acc(after)} {change}; the interval holds both no change and a "
                  f"change beyond the {margin_text(e.margin)}, so their {size} test examples are too few to tell.",
                  [e], numbers + [size])]


def location_claims(run: RunRetention, has_probe: bool) -> list[Claim]:
    """Readout or representation: the probe change next to the live drop (only when live dropped)."""
    if run.outcomes.get("live_change") != LOWER:
        return []
    live = _pair(run, "live_change")
    if not has_probe or "probe_change" not in run.aggregates:
        return [Claim("location", "forgetting_no_probe", "Where: unknown — without probes the run cannot tell a lost "
                      "representation from a drifted readout.")]
    pc, loss = _pair(run, "probe_change"), _pair(run, "readout_loss")
    before, after = run.aggregates["probe_after"].value, run.aggregates["probe_final"].value
    share = run.aggregates.get("representation_share")
    numbers = [before, after, pc.margin]
    change = f"({points(pc.estimate.value)}, {pts_interval(pc.estimate)})"
    readout = (f"the readout loss (final probe minus final live) is {points(loss.estimate.value)} "
               f"({pts_interval(loss.estimate)})")
    ev = [live, pc, loss] + [context(k, run.aggregates[k]) for k in ("representation_share", "recoverable_share")
                             if k in run.aggregates]
    if pc.outcome in (SAME, HIGHER):
        rec = run.aggregates.get("recoverable_share")
        tail = f"; {share_interval(rec)} of the live drop is in the readout" if rec and math.isfinite(rec.value) else ""
        verb = "rose from" if pc.outcome == HIGHER else "went from"
        text = (f"Where: in the readout, not the representation. The probe on the frozen encoder {verb} {acc(before)} "
                f"right after learning to {acc(after)} at the end {change}"
                + (f", within the {margin_text(pc.margin)}" if pc.outcome == SAME else "") + f"; {readout}{tail}.")
        return [Claim("location", "readout", text, ev, numbers)]
    if pc.outcome == LOWER:
        tail = (f"; the representation accounts for {share_interval(share)} of the live drop, the readout for the rest"
                if share and math.isfinite(share.value) else "")
        return [Claim("location", "both", f"Where: in both the readout and the representation. The probe on the frozen "
                      f"encoder fell from {acc(before)} right after learning to {acc(after)} at the end {change}; "
                      f"{readout}{tail}.", ev, numbers)]
    return [Claim("location", "representation_unclear", f"Where: cannot tell whether the representation kept the "
                  f"earlier tasks — the probe went from {acc(before)} to {acc(after)} {change}, an interval that holds "
                  f"both no change and a change beyond the {margin_text(pc.margin)}; {readout}.", ev, numbers)]


def _task_change(t: TaskRetention, name: str, role: str) -> Evidence:
    return evidence(role, f"{t.task}: {name}", t.differences[name], 0.0, t.margin)


def per_task_claims(run: RunRetention) -> list[Claim]:
    """Each earlier task's category, with the per-task (Bonferroni-level) changes it rests on."""
    out = []
    for t in run.tasks:
        if t.category is None or not t.n:
            continue
        if t.category == "never_learned":
            continue  # said in the learning bullet
        ev = [evidence("learned", t.task, t.tests["learned"], t.chance), _task_change(t, "live_change", "live_change")]
        parts = [f"live {points(t.differences['live_change'].value)}, {pts_interval(t.differences['live_change'])}"]
        if "probe_change" in t.differences:
            ev.append(_task_change(t, "probe_change", "probe_change"))
            parts.append(f"probe {points(t.differences['probe_change'].value)}, "
                         f"{pts_interval(t.differences['probe_change'])}")
        out.append(Claim("per_task", t.category, f"{t.task} ({'; '.join(parts)})", ev, [t.margin], [t.task]))
    return out


def source_claims(run: RunRetention) -> list[Claim]:
    """Per task: did the knowledge come from pretraining, fine-tuning, both, or neither?"""
    out = []
    for t in run.tasks:
        if t.source is None:
            continue
        ev = [evidence("pretrained_vs_chance", f"{t.task}: pretrained probe vs chance", t.tests["pretrained_vs_chance"],
                       t.chance, t.margin),
              evidence("after_vs_chance", f"{t.task}: probe after learning vs chance", t.tests["after_vs_chance"],
                       t.chance, t.margin)]
        text = f"{t.task} (P0 {acc(t.tests['pretrained_vs_chance'].value)}"
        if "gain" in t.differences:
            ev.append(_task_change(t, "gain", "gain"))
            text += f", gain {points(t.differences['gain'].value)}, {pts_interval(t.differences['gain'])}"
        if t.source == "undetermined":
            text += ": cannot tell " + " or ".join(UNDECIDED_SOURCE[k] for k in UNDECIDED_SOURCE
                                                     if t.outcomes.get(k, UNCLEAR) == UNCLEAR)
        out.append(Claim("source", f"source_{t.source}", text + ")", ev, [t.chance, t.margin], [t.task]))
    if "gain" in run.aggregates:
        g, p0 = run.aggregates["gain"], run.aggregates["pretrained_probe"]
        k = len(run.members["gain"])
        out.append(Claim("source", "gain_average", f"Averaged over {k} task{'s' if k > 1 else ''}, the pretrained "
                         f"encoder's probe scored {acc(p0.value)} and fine-tuning changed it by {points(g.value)} "
                         f"({pts_interval(g)}).", [evidence("gain", "mean gain", g), context("pretrained_probe", p0)]))
    return out


def fate_evidence(run: RunRetention) -> list[Evidence]:
    """The three estimates the fate of fine-tuning's gain rests on (see ``retention_overall.gain_fate``)."""
    members = [t for t in run.tasks if t.task in run.members["gained_final_vs_pretrained"]]
    margin = sum(t.margin for t in members) / len(members)
    kept = run.aggregates["gained_final_vs_pretrained"]
    return [evidence("gained_final_vs_pretrained", "final probe - P0, gained tasks", kept),
            evidence("gained_final_within_margin", "final probe - P0 within the margin", kept, 0.0, margin),
            evidence("gained_probe_change", "probe change, gained tasks", run.aggregates["gained_probe_change"])]


def gain_fate_claims(run: RunRetention) -> list[Claim]:
    """On earlier tasks whose probe gained from fine-tuning: how much of that gain is left."""
    if run.gain_fate is None:
        return []
    ev = fate_evidence(run)
    kept, within, drop = ev
    where = (f"on {names(run.members['gained_final_vs_pretrained'])} (earlier tasks whose probe gained from "
             "fine-tuning)")
    change = f"{points(kept.estimate.value)}, {pts_interval(kept.estimate)}"
    fell = f"{points(drop.estimate.value)}, {pts_interval(drop.estimate)}"
    survive = run.aggregates.get("surviving_share")
    text = {
        "survives": f"What fine-tuning added survives, at least in part: {where}, the final probe is still above the "
                    f"pretrained encoder's ({change})" + (f"; {share_interval(survive)} of the gain survives"
                                                          if survive and math.isfinite(survive.value) else "") + ".",
        "back_to_pretrained": f"What fine-tuning added is gone: {where}, the probe fell since right after learning "
                              f"({fell}) and is back at the pretrained encoder's level ({change}, within the "
                              f"{margin_text(within.margin)}).",
        "below_pretrained": f"What fine-tuning added is gone, and more: {where}, the final probe is below the pretrained "
                            f"encoder's ({change}) — the representation lost all that fine-tuning added and part of "
                            "what pretraining knew.",
        "unclear": f"Cannot tell how much of what fine-tuning added survives {where}: final probe minus pretrained "
                   f"probe {change}; probe change since right after learning {fell}.",
    }[run.gain_fate]
    extra = [context("surviving_share", survive)] if survive is not None else []
    return [Claim("gain_fate", "gain_" + run.gain_fate, text, [*ev, *extra], [within.margin])]


def probe_kind_claims(run: RunRetention, best_layers: list[int] | None) -> list[Claim]:
    """The nearest-class-mean probe beside the linear one; the layers layer-wise probes chose."""
    out = []
    if "ncm_vs_linear" in run.aggregates and "ncm_final" in run.aggregates:
        e = _pair(run, "ncm_vs_linear")
        word = {HIGHER: "higher", LOWER: "lower", SAME: "the same within the " + margin_text(e.margin),
                UNCLEAR: "cannot tell which is higher"}[e.outcome]
        out.append(Claim("probes", f"ncm_{e.outcome}", f"Probe kinds: at the end a nearest-class-mean probe scores "
                         f"{acc(run.aggregates['ncm_final'].value)} on the earlier tasks against the linear probe's "
                         f"{acc(run.aggregates['probe_final'].value)} ({points(e.estimate.value)}, "
                         f"{pts_interval(e.estimate)}: {word}).",
                         [e, context("ncm_final", run.aggregates["ncm_final"]),
                          context("probe_final", run.aggregates["probe_final"])], [e.margin]))
    if best_layers:
        out.append(Claim("probes", "probe_layers", "Layer-wise probes were on: the probe statements use, per task and "
                         f"stage, the layer chosen on validation (at the end: layer{'s' if len(set(best_layers)) > 1 else ''} "
                         f"{names([str(x) for x in sorted(set(best_layers))])}; 0 = embeddings).",
                         numbers=[float(x) for x in best_layers]))
    return out


def _sim(x: float) -> str:
    return f"{x:.2f}".replace("-0.00", "0.00")


def drift_claims(run: RunRetention) -> list[Claim]:
    """Representation drift as debiased CKA with the level independent features give; no outcome words."""
    d = run.drift
    if "cka_debiased" in d:
        text = (f"Drift: debiased CKA (unbiased HSIC) between each earlier task's test features right after learning "
                f"and at the end averages {_sim(d['cka_debiased'])} (1 = same up to rotation and scale)")
        numbers = [d["cka_debiased"]]
        if "cka_debiased_null" in d:
            text += (f"; features unrelated to them give {_sim(d['cka_debiased_null'])} "
                     f"(95% of shuffled pairings at most {_sim(d.get('cka_debiased_null_hi', math.nan))})")
            numbers += [d["cka_debiased_null"], d.get("cka_debiased_null_hi", math.nan)]
        if "cka_debiased_pretrained" in d:
            text += f"; against the pretrained encoder {_sim(d['cka_debiased_pretrained'])}"
            numbers.append(d["cka_debiased_pretrained"])
        if "cka" in d:
            text += f". The biased linear CKA reads {_sim(d['cka'])}"
            numbers.append(d["cka"])
            if "cka_null" in d:
                text += f", where shuffled pairings already give {_sim(d['cka_null'])}"
                numbers.append(d["cka_null"])
        return [Claim("drift", "drift", text + ".", numbers=numbers)]
    if "cka" in d:
        return [Claim("drift", "drift", f"Drift: biased linear CKA between each earlier task's test features right "
                      f"after learning and at the end averages {_sim(d['cka'])}; what unrelated features score on this "
                      "estimator depends on their size and spectrum (0.46 for independent isotropic features of "
                      "450 x 384), and this run did not record that level for its own features.",
                      numbers=[d["cka"], 0.46, 450, 384])]
    return []
