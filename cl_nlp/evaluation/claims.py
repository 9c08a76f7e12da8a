"""The verdict as structured claims: what each sentence says, and the estimates it rests on.

A :class:`Claim` is one sentence (or one task's fragment of a sentence) with a ``kind`` — what
it asserts, e.g. ``dropped``, ``readout``, ``source_pretraining`` — and the
:class:`~cl_nlp.evaluation.judgement.Evidence` it rests on. :data:`REQUIRED` says which outcome
each kind needs from which evidence; :func:`check_claim` re-judges every estimate and refuses
a claim its own numbers do not support. The verdict (:mod:`cl_nlp.evaluation.verdict`) checks
every claim before printing it, so a sentence contradicting its numbers is a crash, not a
report. The sentences themselves are built in :mod:`cl_nlp.evaluation.claim_text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cl_nlp.evaluation.judgement import (
    HIGHER,
    LOWER,
    SAME,
    UNCLEAR,
    Evidence,
    check_outcome,
)

# kind -> {evidence role -> outcomes that kind needs}
REQUIRED: dict[str, dict[str, set[str]]] = {
    "learned": {"learned": {HIGHER}},
    "never_learned": {"learned": {LOWER, SAME, UNCLEAR}},
    "dropped": {"live_change": {LOWER}},
    "not_forgotten": {"live_change": {SAME, HIGHER}},
    "cannot_tell": {"live_change": {UNCLEAR}},
    "readout": {"live_change": {LOWER}, "probe_change": {SAME, HIGHER}},
    "both": {"live_change": {LOWER}, "probe_change": {LOWER}},
    "representation_unclear": {"live_change": {LOWER}, "probe_change": {UNCLEAR}},
    "live_dropped": {"live_change": {LOWER}},
    "source_pretraining": {"pretrained_vs_chance": {HIGHER}, "gain": {SAME, LOWER}},
    "source_both": {"pretrained_vs_chance": {HIGHER}, "gain": {HIGHER}},
    "source_fine-tuning": {"pretrained_vs_chance": {SAME, LOWER}, "gain": {HIGHER}},
    "source_none": {"pretrained_vs_chance": {SAME, LOWER, UNCLEAR}, "after_vs_chance": {SAME, LOWER, UNCLEAR}},
    "gain_survives": {"gained_final_vs_pretrained": {HIGHER}},
    "gain_back_to_pretrained": {"gained_final_vs_pretrained": {UNCLEAR}, "gained_final_within_margin": {SAME},
                                "gained_probe_change": {LOWER}},
    "gain_below_pretrained": {"gained_final_vs_pretrained": {LOWER}},
    "gain_unclear": {"gained_final_vs_pretrained": {UNCLEAR}},
    "ncm_higher": {"ncm_vs_linear": {HIGHER}},
    "ncm_lower": {"ncm_vs_linear": {LOWER}},
    "ncm_same": {"ncm_vs_linear": {SAME}},
    "ncm_unclear": {"ncm_vs_linear": {UNCLEAR}},
}
# Kinds that state no outcome (plain numbers, or what the run cannot tell).
DESCRIPTIVE = ("drift", "limit", "one_task", "gain_average", "probe_layers", "source_undetermined", "source_mixed",
               "nothing_learned", "nothing_to_forget", "forgetting_no_probe")


@dataclass
class Claim:
    """One statement of the verdict.

    ``text`` is the sentence (or a task's fragment of one); ``evidence`` the estimates its
    outcome words rest on; ``numbers`` any other value it quotes (chance levels, margins, CKA);
    ``topic`` the bullet it belongs to.
    """

    topic: str
    kind: str
    text: str
    evidence: list[Evidence] = field(default_factory=list)
    numbers: list[float] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "kind": self.kind, "text": self.text, "tasks": self.tasks,
                "evidence": [e.to_dict() for e in self.evidence], "numbers": self.numbers}


def check_claim(claim: Claim) -> None:
    """Raise ``AssertionError`` unless every estimate's outcome is what its interval says and the
    claim's kind is what those outcomes allow."""
    for e in claim.evidence:
        check_outcome(e)
    if claim.kind in DESCRIPTIVE:
        return
    if claim.kind not in REQUIRED:
        raise AssertionError(f"claim kind {claim.kind!r} has no rule in REQUIRED")
    for role, allowed in REQUIRED[claim.kind].items():
        found = [e for e in claim.evidence if e.role == role]
        if not found:
            raise AssertionError(f"{claim.kind!r} claim rests on no {role!r} evidence: {claim.text}")
        for e in found:
            if e.outcome not in allowed:
                raise AssertionError(f"{claim.kind!r} claim needs {role} in {sorted(allowed)}, "
                                     f"but {e.label} is {e.outcome!r}: {claim.text}")
