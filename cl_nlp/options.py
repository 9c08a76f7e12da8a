"""Typed option dataclasses built from plain dicts (YAML, ``--set``), with one-line errors.

Every configurable thing in cl-nlp (the experiment, each stream, each strategy) describes its
options as a dataclass. :func:`build_options` turns a dict into that dataclass, refusing
unknown keys and wrong types with a message that names the key path and what was expected,
then runs the dataclass's own ``__post_init__`` range checks.
"""

from __future__ import annotations

import dataclasses
import keyword
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from cl_nlp.errors import UserError, shown

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        return f"a list of {_type_name(inner)}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to float)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp):
            return value
        if isinstance(value, bool) and str(value).lower() in get_args(tp):
            return str(value).lower()  # YAML reads `fisher: true` as a boolean; the choice is the word
    elif origin in (Union, types.UnionType):
        not_finite = None
        for option in get_args(tp):
            try:
                return coerce(value, option, where)
            except NotFinite as exc:
                not_finite = exc
            except UserError:
                continue
        if not_finite is not None:  # ``float | None`` given inf: say what is wrong with it
            raise not_finite
    elif origin is list:
        if isinstance(value, (list, tuple)):
            (inner,) = get_args(tp) or (Any,)
            return [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif tp is type(None):
        if value is None:
            return None
    elif tp is float:
        number = _as_float(value)
        if number is not None:
            return finite(number, where)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise UserError(f"{where}: expected {_type_name(tp)}, got {shown(value)}")


def _as_float(value: Any) -> float | None:
    """``value`` as a float when it is a number (or a number written as a string), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an integer too large for a float: not finite either
            return math.inf
    if isinstance(value, str):  # PyYAML (YAML 1.1) reads "3e-5" as a string: accept it as a number
        try:
            return float(value)
        except ValueError:
            return None
    return None


class NotFinite(UserError):
    """A float option was given infinity or NaN."""


def finite(value: float, where: str) -> float:
    """``value`` if it is a finite number, else a :class:`UserError` naming ``where``.

    Every float option goes through this check (:func:`coerce`): no option of cl-nlp means
    something for infinity or NaN (``train.lr=inf`` fails at the second step, ``eval.probe_l2=inf``
    puts every probe at chance), and "no limit" is written ``null`` where an option has one.

    Example:
        >>> finite(0.5, "train.lr")
        0.5
    """
    if not math.isfinite(value):
        raise NotFinite(f"{where}: expected a finite number, got {value}; write a plain number (e.g. 0.001)")
    return value


def public_name(field_name: str) -> str:
    """The option name users write: ``lambda_`` → ``lambda`` (keywords cannot name fields)."""
    return field_name[:-1] if keyword.iskeyword(field_name[:-1]) else field_name


def build_options(cls: type[T], values: dict[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``values``; unknown keys and bad types raise :class:`UserError`.

    Example:
        >>> @dataclasses.dataclass
        ... class Opts:
        ...     lr: float = 1e-4
        >>> build_options(Opts, {"lr": 1}, "train").lr
        1.0
    """
    # A Python keyword (``lambda``) cannot name a dataclass field: the field is ``lambda_`` and
    # users write ``lambda``.
    values = {(f"{k}_" if keyword.iskeyword(k) else k): v for k, v in (values or {}).items()}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        known = ", ".join(sorted(public_name(f) for f in fields)) or "(none)"
        raise UserError(f"{where}: unknown option {shown(public_name(unknown[0]), 60)}; valid options are: {known}")
    kwargs = {k: coerce(v, hints[k], f"{where}.{public_name(k)}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc}") from None


def describe_options(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) for each field, the help taken from ``metadata['help']``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        rows.append((public_name(f.name), _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return rows


def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition``: for ``__post_init__`` range checks."""
    if not condition:
        raise ValueError(message)
