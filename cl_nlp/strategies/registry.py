"""Strategies registered by name; third-party ones come in through the entry-point group
``cl_nlp.strategies`` (each entry point names a module that calls :func:`register_strategy` on
import, or a callable that does so). The one table feeds CLI choices, `cl-nlp strategies` and tests.
A name of the form ``path/to/file.py:ClassName`` or ``package.module:ClassName`` loads that class
without registration (:mod:`cl_nlp.strategies.loading`).
"""

from __future__ import annotations

import importlib.metadata
import inspect
from dataclasses import dataclass
from typing import Any

from cl_nlp.errors import UserError
from cl_nlp.options import build_options
from cl_nlp.strategies.loading import is_class_spec, load_strategy_class

ENTRY_POINT_GROUP = "cl_nlp.strategies"

# The strategies the optional Avalanche adapter (cl_nlp.avalanche.strategies) registers, as plain
# data: naming one where the extra is missing says how to install it, without importing the
# adapter (which sits above the core). tests/avalanche checks the two lists agree.
AVALANCHE_PREFIX = "avalanche:"
AVALANCHE_NAMES = frozenset({"Naive", "Cumulative", "Replay", "GDumb", "EWC", "LwF", "SI", "MAS", "AGEM", "GEM",
                             "DER", "ER_ACE", "MIR"})


@dataclass(frozen=True)
class StrategySpec:
    name: str
    options_cls: type
    strategy_cls: type
    summary: str


_STRATEGIES: dict[str, StrategySpec] = {}
_entry_points_loaded = False


def register_strategy(name: str, options_cls: type, strategy_cls: type, summary: str | None = None) -> None:
    """Register ``strategy_cls`` (built as ``strategy_cls(options, context)``) under ``name``.

    ``summary`` defaults to the first line of the class docstring. Duplicate names are refused.
    """
    if name in _STRATEGIES:
        raise ValueError(f"strategy {name!r} is already registered (by {_STRATEGIES[name].strategy_cls.__module__})")
    doc = inspect.getdoc(strategy_cls) or ""
    _STRATEGIES[name] = StrategySpec(name, options_cls, strategy_cls, summary or doc.split("\n")[0])


def load_entry_points() -> None:
    """Import every registered ``cl_nlp.strategies`` entry point once."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _STRATEGIES:
            continue
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plug-in must not break the built-in strategies
            raise UserError(f"strategy plug-in {ep.name!r} ({ep.value}) failed to load: {exc}") from None
        if callable(loaded) and not inspect.isclass(loaded) and ep.name not in _STRATEGIES:
            loaded()


def strategy_names() -> list[str]:
    load_entry_points()
    return sorted(_STRATEGIES)


def get_strategy_spec(name: str) -> StrategySpec:
    """The registered strategy ``name``, or the class ``name`` points to (``file.py:Class``,
    ``package.module:Class``: :mod:`cl_nlp.strategies.loading`)."""
    load_entry_points()
    if name not in _STRATEGIES:
        if is_class_spec(name) and not name.startswith(AVALANCHE_PREFIX):
            strategy_cls, options_cls = load_strategy_class(name)
            doc = inspect.getdoc(strategy_cls) or ""
            return StrategySpec(name, options_cls, strategy_cls, doc.split("\n")[0])
        if name.startswith(AVALANCHE_PREFIX) and name[len(AVALANCHE_PREFIX):] in AVALANCHE_NAMES:
            raise UserError(f"strategy {name!r} needs the optional extra cl-nlp[avalanche], which is not installed here; "
                            "install it in its own environment (docs/avalanche.md): python3 -m venv .venv-avalanche && "
                            ".venv-avalanche/bin/pip install torch==2.14.1 torchvision==0.29.1 -e '.[avalanche]'")
        raise UserError(f"unknown strategy {name!r}; choose one of: {', '.join(sorted(_STRATEGIES))} (see `cl-nlp strategies`), "
                        "or name a class: path/to/file.py:ClassName or package.module:ClassName")
    return _STRATEGIES[name]


def strategy_options(name: str, options: dict[str, Any] | None) -> Any:
    """Validate ``options`` for strategy ``name`` into its options dataclass."""
    return build_options(get_strategy_spec(name).options_cls, options, f"strategy ({name})")


def build_strategy(name: str, options: dict[str, Any] | None, context: Any) -> Any:
    spec = get_strategy_spec(name)
    return spec.strategy_cls(strategy_options(name, options), context)
