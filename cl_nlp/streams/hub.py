"""Hugging Face hub data sets as tasks, through the real ``datasets.load_dataset`` code path.

A :class:`HubSource` says which repository (and config) holds a data set and how its columns
become ``text`` / ``text_pair`` / label. ``hub_root`` (or the ``CL_NLP_HUB_ROOT`` environment
variable) points the same code at a local folder laid out like the hub, ``<hub_root>/<owner>/
<name>/...`` with the repository's own files (parquet shards, README with ``configs:``): that
is how an offline machine, and the test suite, use the hub streams.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset

from cl_nlp.errors import UserError
from cl_nlp.streams.shaping import capped_indices

HUB_ROOT_ENV = "CL_NLP_HUB_ROOT"


@dataclass(frozen=True)
class HubSource:
    """One hub data set and how its rows become examples.

    Args:
        repo: hub repository id, e.g. ``"fancyzhx/ag_news"``.
        config: the repository's config name, or ``None`` for its default.
        text: a ``str.format`` template over the row's columns, e.g. ``"{title}. {content}"``.
        label: the column holding the class (integer ids or strings).
        label_names: names of integer labels, index = id (``None``: the ClassLabel names in the
            data, else the values themselves as strings).
        text_pair: template of the second text of sentence-pair tasks.
        splits: our split name -> the repository's split (GLUE's test labels are hidden, so
            its validation split serves as test).
    """

    repo: str
    config: str | None
    text: str
    label: str = "label"
    label_names: tuple[str, ...] | None = None
    text_pair: str | None = None
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))

    def split_name(self, split: str) -> str | None:
        return dict(self.splits).get(split)

    def columns(self) -> set[str]:
        fields = {f for tpl in (self.text, self.text_pair) if tpl for _, f, _, _ in string.Formatter().parse(tpl) if f}
        return fields | {self.label}


def resolve_hub_root(hub_root: str | None) -> Path | None:
    """The local hub mirror to read from: ``hub_root``, else ``$CL_NLP_HUB_ROOT``, else none (the hub)."""
    root = hub_root or os.environ.get(HUB_ROOT_ENV) or None
    return Path(root).expanduser() if root else None


def load_hub_split(source: HubSource, split: str, hub_root: str | None = None) -> Dataset:
    """``datasets.load_dataset(repo, config, split=...)``, from ``hub_root`` when one is set."""
    from datasets import load_dataset

    root = resolve_hub_root(hub_root)
    path = source.repo
    if root is not None:
        folder = root / source.repo
        if not folder.is_dir():
            raise UserError(f"{folder} does not exist: lay out {source.repo} under the hub root {root} as on the "
                            f"hub (<root>/{source.repo}/...), or unset hub_root / ${HUB_ROOT_ENV} to download it")
        path = str(folder)
    repo_split = source.split_name(split)
    try:
        data = load_dataset(path, source.config, split=repo_split)
    except (OSError, ValueError) as exc:  # missing repo/config/split, no network: all surface as these
        where = "the hub" if root is None else str(root)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"could not load {source.repo} ({source.config or 'default'} config, {repo_split} split) "
                        f"from {where}: {first}; check the id, or set hub_root / ${HUB_ROOT_ENV} to a local copy") from None
    missing = sorted(source.columns() - set(data.column_names))
    if missing:
        raise UserError(f"{source.repo} ({repo_split} split) has no column {missing[0]!r} (columns: "
                        f"{', '.join(data.column_names)}); fix the column mapping")
    return data


def label_strings(data: Dataset, source: HubSource) -> list[str]:
    """Every row's label as a name: from ``source.label_names``, ClassLabel names, or the raw value."""
    values = data[source.label]
    names = source.label_names
    if names is None:
        feature = data.features[source.label]
        names = tuple(feature.names) if hasattr(feature, "names") else None
    if names is None:
        return [str(v) for v in values]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < len(names):
            raise UserError(f"{source.repo}: label {v!r} is not an index into its {len(names)} label names")
        out.append(names[v])
    return out


def shaped_rows(data: Dataset, source: HubSource, labels: list[str], keep: set[str], cap: int | None,
                seed: int) -> tuple[list[str], list[str] | None, list[str]]:
    """(texts, pairs, label names) of the capped rows, formatted only for the rows kept."""
    rows = capped_indices(labels, keep, cap, seed)
    picked = data.select(rows)
    cols = sorted(source.columns() - {source.label})
    records = [{c: "" if v is None else v for c, v in zip(cols, values)} for values in zip(*(picked[c] for c in cols))] if cols else [{}] * len(rows)
    texts = [source.text.format(**r).strip() for r in records]
    pairs = [source.text_pair.format(**r).strip() for r in records] if source.text_pair else None
    return texts, pairs, [labels[i] for i in rows]
