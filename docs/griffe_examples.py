"""Griffe extension for the API pages: render ``Example:`` sections as doctest examples.

cl-nlp's docstrings follow the Google style with ``Example:`` sections holding ``>>>`` lines.
Griffe reads only ``Examples:`` as examples and renders ``Example:`` as an admonition of
markdown text, where ``>>>`` lines turn into nested quotes and ``[...]`` outputs into broken
cross-references. This renames the section before the docstring is parsed; the source stays as it is.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Read every ``Example:`` section as ``Examples:``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is not None and "Example:" in docstring.value:
            docstring.value = _EXAMPLE.sub(r"\1Examples:", docstring.value)
