"""Published hub benchmarks: the five-dataset text classification stream and the 15-task sequence.

- ``five-datasets`` (de Masson d'Autume et al. 2019; IDBR, Huang et al. 2021): AG News, Yelp,
  Amazon, DBpedia, Yahoo Answers; 33 classes in one head, Yelp and Amazon sharing their five
  ratings; the paper's four task orders; "sampled" sizes of 2,000 training examples per class
  by default (``train_per_class: null`` for the full sets).
- ``ratings-dil``: Yelp then Amazon reviews, the same five star ratings: a domain-incremental
  stream (one head, the label set shared, the input domain shifting).
- ``long-sequence`` (Razdaibiedina et al. 2023, Progressive Prompts, orders 4-6): the five
  above plus GLUE (MNLI, QQP, RTE, SST-2), SuperGLUE (WiC, CB, COPA, BoolQ, MultiRC) and IMDB;
  different label spaces, so task-incremental (a head per task).

Default repositories are the hub's current homes of these sets. The original benchmark's
Amazon Review Full (Zhang et al. 2015) has no canonical hub copy; the default is the English
part of the Multilingual Amazon Reviews corpus (same five star ratings). ``hub_ids`` replaces
any repository, e.g. ``{amazon: "my-org/amazon_review_full"}`` (``repo:config`` picks a config).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cl_nlp.options import require
from cl_nlp.streams.hub import HubSource, label_strings, load_hub_split, shaped_rows
from cl_nlp.streams.registry import register_stream
from cl_nlp.streams.shaping import labelled_split
from cl_nlp.streams.task import Stream, Task

RATINGS = ("1 star", "2 stars", "3 stars", "4 stars", "5 stars")
GLUE_EVAL = (("train", "train"), ("test", "validation"))

SOURCES: dict[str, HubSource] = {
    "agnews": HubSource("fancyzhx/ag_news", None, "{text}", label_names=("World", "Sports", "Business", "Sci/Tech")),
    "yelp": HubSource("Yelp/yelp_review_full", None, "{text}", label_names=RATINGS),
    "amazon": HubSource("Samoed/AmazonReviewsClassification", "en", "{text}", label_names=RATINGS),
    "dbpedia": HubSource("fancyzhx/dbpedia_14", None, "{title}. {content}", label_names=(
        "Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder", "MeanOfTransportation", "Building",
        "NaturalPlace", "Village", "Animal", "Plant", "Album", "Film", "WrittenWork")),
    "yahoo": HubSource("community-datasets/yahoo_answers_topics", None,
                       "{question_title} {question_content} {best_answer}", label="topic", label_names=(
        "Society & Culture", "Science & Mathematics", "Health", "Education & Reference", "Computers & Internet",
        "Sports", "Business & Finance", "Entertainment & Music", "Family & Relationships", "Politics & Government")),
    "mnli": HubSource("nyu-mll/glue", "mnli", "{premise}", text_pair="{hypothesis}",
                      label_names=("entailment", "neutral", "contradiction"),
                      splits=(("train", "train"), ("test", "validation_matched"))),
    "qqp": HubSource("nyu-mll/glue", "qqp", "{question1}", text_pair="{question2}",
                     label_names=("not_duplicate", "duplicate"), splits=GLUE_EVAL),
    "rte": HubSource("nyu-mll/glue", "rte", "{sentence1}", text_pair="{sentence2}",
                     label_names=("entailment", "not_entailment"), splits=GLUE_EVAL),
    "sst2": HubSource("nyu-mll/glue", "sst2", "{sentence}", label_names=("negative", "positive"), splits=GLUE_EVAL),
    "wic": HubSource("aps/super_glue", "wic", "{word}: {sentence1}", text_pair="{sentence2}",
                     label_names=("different", "same"), splits=GLUE_EVAL),
    "cb": HubSource("aps/super_glue", "cb", "{premise}", text_pair="{hypothesis}",
                    label_names=("entailment", "contradiction", "neutral"), splits=GLUE_EVAL),
    "copa": HubSource("aps/super_glue", "copa", "{premise} What was the {question}?", text_pair="{choice1} or {choice2}",
                      label_names=("choice1", "choice2"), splits=GLUE_EVAL),
    "boolq": HubSource("aps/super_glue", "boolq", "{question}?", text_pair="{passage}",
                       label_names=("false", "true"), splits=GLUE_EVAL),
    "multirc": HubSource("aps/super_glue", "multirc", "{paragraph}", text_pair="{question} {answer}",
                         label_names=("false", "true"), splits=GLUE_EVAL),
    "imdb": HubSource("stanfordnlp/imdb", "plain_text", "{text}", label_names=("negative", "positive")),
}

FIVE_ORDERS = {  # de Masson d'Autume et al. 2019, Table 4
    1: ["yelp", "agnews", "dbpedia", "amazon", "yahoo"],
    2: ["dbpedia", "yahoo", "agnews", "amazon", "yelp"],
    3: ["yelp", "yahoo", "amazon", "dbpedia", "agnews"],
    4: ["agnews", "yelp", "amazon", "yahoo", "dbpedia"],
}
LONG_ORDERS = {  # Razdaibiedina et al. 2023, orders 4, 5, 6
    4: ["mnli", "cb", "wic", "copa", "qqp", "boolq", "rte", "imdb", "yelp", "amazon", "sst2", "dbpedia", "agnews",
        "multirc", "yahoo"],
    5: ["multirc", "boolq", "wic", "mnli", "cb", "copa", "qqp", "rte", "imdb", "sst2", "dbpedia", "agnews", "yelp",
        "amazon", "yahoo"],
    6: ["yelp", "amazon", "mnli", "cb", "copa", "qqp", "rte", "imdb", "sst2", "dbpedia", "agnews", "yahoo", "multirc",
        "boolq", "wic"],
}


@dataclass
class HubStreamOptions:
    """Sizes and where the data comes from (the hub, or a local copy laid out like it)."""

    train_per_class: int | None = field(default=2000, metadata={"help": "training examples per class (IDBR's sampled setting); null = full"})
    test_per_class: int | None = field(default=500, metadata={"help": "test examples per class; null = full test split"})
    seed: int = field(default=0, metadata={"help": "which rows the caps keep"})
    hub_root: str | None = field(default=None, metadata={"help": "local folder laid out like the hub; null = $CL_NLP_HUB_ROOT or the hub"})
    hub_ids: dict[str, Any] = field(default_factory=dict, metadata={"help": "replace a data set's repository: {amazon: 'owner/name[:config]'}"})

    def __post_init__(self) -> None:
        for name in ("train_per_class", "test_per_class"):
            value = getattr(self, name)
            require(value is None or value >= 1, f"{name} must be >= 1 or null, got {value}")
        unknown = sorted(set(self.hub_ids) - set(SOURCES))
        require(not unknown, f"hub_ids: unknown data set {unknown[0] if unknown else ''!r}; choose from: {', '.join(SOURCES)}")
        require(all(isinstance(v, str) and v for v in self.hub_ids.values()), "hub_ids values must be 'owner/name[:config]' strings")


@dataclass
class FiveDatasetsOptions(HubStreamOptions):
    order: Literal[1, 2, 3, 4] = field(default=1, metadata={"help": "task order 1-4 of de Masson d'Autume et al. 2019"})


@dataclass
class LongSequenceOptions(HubStreamOptions):
    train_per_class: int | None = field(default=1000, metadata={"help": "training examples per class; null = full"})
    order: Literal[4, 5, 6] = field(default=4, metadata={"help": "task order 4-6 of Razdaibiedina et al. 2023"})


def source_for(key: str, opts: HubStreamOptions) -> HubSource:
    """The built-in source of ``key``, with its repository replaced by ``opts.hub_ids`` when given."""
    source = SOURCES[key]
    if key in opts.hub_ids:
        repo, _, config = opts.hub_ids[key].partition(":")
        source = replace(source, repo=repo, config=config or None)
    return source


def hub_task(key: str, opts: HubStreamOptions, class_index: dict[str, int], prefix: str) -> Task:
    """Task ``key`` with labels named ``prefix + label`` looked up in ``class_index`` (added if new)."""
    source = source_for(key, opts)
    splits = {}
    for split, cap, seed in (("train", opts.train_per_class, opts.seed), ("test", opts.test_per_class, opts.seed + 1)):
        data = load_hub_split(source, split, opts.hub_root)
        labels = [prefix + name for name in label_strings(data, source)]
        for name in sorted(set(labels), key=labels.index):
            class_index.setdefault(name, len(class_index))
        texts, pairs, kept = shaped_rows(data, source, labels, set(labels), cap, seed)
        splits[split] = labelled_split(texts, kept, class_index, set(kept), None, 0, pairs)
    ids = sorted(set(splits["train"]["label"]))
    return Task(key, splits["train"], splits["test"], ids, source=f"hub {source.repo}" + (f":{source.config}" if source.config else ""))


def five_datasets(opts: FiveDatasetsOptions) -> Stream:
    class_index: dict[str, int] = {}
    tasks = []
    for key in FIVE_ORDERS[opts.order]:
        # Yelp and Amazon rate 1-5 stars: one shared set of rating classes, as in the benchmark's 33.
        prefix = "" if key in ("yelp", "amazon") else f"{key}:"
        tasks.append(hub_task(key, opts, class_index, prefix))
    return Stream("five-datasets", "class-incremental", tasks, list(class_index), shared_classes=RATINGS,
                  description=f"AG News, Yelp, Amazon, DBpedia, Yahoo in order {opts.order}; 33 classes, one head")


def long_sequence(opts: LongSequenceOptions) -> Stream:
    class_index: dict[str, int] = {}
    tasks = [hub_task(key, opts, class_index, f"{key}:") for key in LONG_ORDERS[opts.order]]
    return Stream("long-sequence", "task-incremental", tasks, list(class_index),
                  description=f"15 classification tasks in order {opts.order}, a head per task")


def ratings_dil(opts: HubStreamOptions) -> Stream:
    class_index: dict[str, int] = {}
    tasks = [hub_task(key, opts, class_index, "") for key in ("yelp", "amazon")]
    return Stream("ratings-dil", "domain-incremental", tasks, list(class_index),
                  description="Yelp then Amazon reviews rated 1-5 stars: same classes, new domain")


register_stream("five-datasets", FiveDatasetsOptions, five_datasets, scenario="class-incremental", source="hub",
                summary="AG News, Yelp, Amazon, DBpedia, Yahoo: 5 tasks, 33 classes, orders 1-4 (hub)")
register_stream("long-sequence", LongSequenceOptions, long_sequence, scenario="task-incremental", source="hub",
                summary="15 tasks: the five + GLUE, SuperGLUE, IMDB; orders 4-6 of Progressive Prompts (hub)")
register_stream("ratings-dil", HubStreamOptions, ratings_dil, scenario="domain-incremental", source="hub",
                summary="Yelp -> Amazon reviews, the same 5 star ratings in one head (hub)")
