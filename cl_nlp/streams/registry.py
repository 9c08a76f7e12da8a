"""Streams registered by name: the same table feeds the CLI choices, `cl-nlp streams` and tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from cl_nlp.errors import UserError
from cl_nlp.options import build_options
from cl_nlp.streams.task import Stream
from cl_nlp.streams.validation import check_stream


@dataclass(frozen=True)
class StreamSpec:
    """A registered stream: its options dataclass and the function that builds it.

    ``source`` says where its data comes from: ``"offline"`` (packaged, cheap to build, so
    `cl-nlp streams` shows its sizes), ``"hub"`` (downloads) or ``"file"`` (the user's YAML).
    """

    name: str
    options_cls: type
    build: Callable[[Any], Stream]
    scenario: str
    summary: str
    source: str = "offline"


_STREAMS: dict[str, StreamSpec] = {}


def register_stream(name: str, options_cls: type, build: Callable[[Any], Stream], *, scenario: str, summary: str,
                    source: str = "offline") -> None:
    """Register ``build(options) -> Stream`` under ``name``; duplicate names are refused."""
    if name in _STREAMS:
        raise ValueError(f"stream {name!r} is already registered")
    _STREAMS[name] = StreamSpec(name, options_cls, build, scenario, summary, source)


def stream_names() -> list[str]:
    return sorted(_STREAMS)


def get_stream_spec(name: str) -> StreamSpec:
    if name not in _STREAMS:
        raise UserError(f"unknown stream {name!r}; choose one of: {', '.join(stream_names())} (see `cl-nlp streams`)")
    return _STREAMS[name]


def stream_options(name: str, options: dict[str, Any] | None) -> Any:
    """Validate ``options`` for stream ``name`` (before anything is loaded)."""
    return build_options(get_stream_spec(name).options_cls, options, f"stream ({name})")


def build_stream(name: str, options: dict[str, Any] | None = None) -> Stream:
    """Build the registered stream ``name`` with its (validated) options, and check the result.

    Raises:
        UserError: bad options, unreadable data, or a stream :func:`check_stream` refuses.
    """
    spec = get_stream_spec(name)
    stream = spec.build(stream_options(name, options))
    check_stream(stream, f"stream {name!r}")
    return stream
