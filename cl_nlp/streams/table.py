"""Reading the user's local files (csv, tsv, json, jsonl, parquet) into text / label rows.

Values keep the type the file gives them: csv/tsv cells are the strings as written; JSON and
parquet values are read as they are (no pandas float coercion: an integer label column with a
null stays integers and a null, which is then refused). :func:`table_rows` checks each row: an
empty or missing text or label is refused naming the file and row (rows count from 1, the
header not included). Labels become class names by one rule:

- a string is the class name as written (csv/tsv labels are always strings: ``1`` and ``1.0``
  there are two classes);
- an integer is its decimal digits (``1`` -> ``"1"``), and so is a whole float (``1.0``);
- a boolean is ``"True"`` or ``"False"``;
- one label column may not mix these kinds (``1`` and ``"1"``, ``1`` and ``true``): refused;
- anything else (``1.5``, a list, an object) is refused.

Messages never quote a file's contents, so a path that is not a data table (a password file,
a binary) is reported as "not a table with columns text, label", not echoed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cl_nlp.errors import UserError, describe_decode_error, describe_os_error, shown, shown_path

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass
class Table:
    """A file's cells by column, as the file typed them."""

    columns: list[str]
    values: dict[str, list[Any]]
    rows: int


def read_table(path: Path, fmt: str | None, where: str) -> Table:
    """The cells of ``path`` (format from ``fmt`` or the extension); ``where`` names it in messages."""
    name = f"{where} file {shown_path(path)}"
    try:
        if path.is_dir():
            raise UserError(f"{name} is a directory; give a data file")
        if not path.is_file():
            raise UserError(f"{name} does not exist; fix the path (relative paths start at the stream file's folder)")
    except OSError as exc:
        raise UserError(describe_os_error(exc, f"{where} file")) from None
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{name}: unknown format {shown(path.suffix or '(no extension)', 20)}; use "
                        f"{', '.join(FORMATS)} files or set format: csv | tsv | json | jsonl | parquet")
    try:
        return _READERS[fmt](path)
    except UnicodeDecodeError as exc:
        raise UserError(describe_decode_error(exc, name)) from None
    except UserError as exc:
        raise UserError(f"{name} {exc}") from None
    except RecursionError:
        raise UserError(f"{name} could not be read as {fmt}: it is nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow parse errors come in many types; all mean "not this format"
        if isinstance(exc, OSError) and exc.errno is not None:
            raise UserError(describe_os_error(exc, f"reading {where} file")) from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{name} could not be read as {fmt} ({shown(first, 100).strip(chr(39))}); check the file "
                        "or set format:") from None


def _read_delimited(path: Path, sep: str) -> Table:
    import pandas as pd  # a dependency of `datasets`

    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise UserError("is empty; give a table with a header line (e.g. text,label) and rows") from None
    columns = [str(c) for c in frame.columns]
    return Table(columns, {c: frame[c].tolist() for c in columns}, len(frame))


def _from_records(records: list[Any]) -> Table:
    columns: list[str] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise UserError(f"is not a table: row {i + 1} is a JSON {type(record).__name__}, not an object "
                            "like {\"text\": ..., \"label\": ...}")
        columns += [k for k in record if k not in columns]
    return Table(columns, {c: [r.get(c) for r in records] for c in columns}, len(records))


def _read_jsonl(path: Path) -> Table:
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                raise UserError(f"could not be read as jsonl: line {number} is not JSON") from None
    return _from_records(records)


def _read_json(path: Path) -> Table:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON lines saved as .json
            return _read_jsonl(path)
        raise UserError(f"could not be read as json (line {exc.lineno}: {exc.msg})") from None
    if isinstance(data, list):
        return _from_records(data)
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):  # {"text": [...], ...}
        n = len(next(iter(data.values())))
        if all(len(v) == n for v in data.values()):
            return Table([str(k) for k in data], {str(k): list(v) for k, v in data.items()}, n)
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):  # pandas' "columns" layout
        index = list(next(iter(data.values())))
        return Table([str(k) for k in data], {str(k): [v.get(i) for i in index] for k, v in data.items()}, len(index))
    raise UserError("could not be read as json: expected a list of objects ([{\"text\": ..., \"label\": ...}, ...]) "
                    "or an object of columns")


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq  # a dependency of `datasets`

    columns = pq.read_table(path).to_pydict()  # Python values: ints stay ints, nulls stay None
    n = len(next(iter(columns.values()))) if columns else 0
    return Table([str(c) for c in columns], {str(c): v for c, v in columns.items()}, n)


_READERS = {"csv": lambda p: _read_delimited(p, ","), "tsv": lambda p: _read_delimited(p, "\t"),
            "jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet}


def table_rows(table: Table, path: Path, columns: dict[str, str | None], where: str
               ) -> tuple[list[str], list[str] | None, list[str]]:
    """(texts, pairs or None, label names) from ``table`` by the ``columns`` mapping (role -> column).

    Raises:
        UserError: no rows, a missing column, an empty text or label (naming the row), a label
            that is not a string, integer or boolean, or a label column mixing those kinds.
    """
    name = f"{where}: {shown_path(path)}"
    if table.rows == 0:
        raise UserError(f"{name} has no rows" + (" (only a header)" if table.columns else "") + "; add rows or fix the path")
    needed = [c for c in columns.values() if c is not None]
    for role, column in columns.items():
        if column is not None and column not in table.values:
            raise UserError(f"{name} is not a table with columns {', '.join(needed)} (no column {shown(column, 40)} among "
                            f"its {len(table.columns)}); set columns.{role} to the column holding the "
                            f"{role.replace('_', ' ')}, or check the file")
    texts = _texts(table.values[columns["text"]], "text", name)
    pairs = _texts(table.values[columns["text_pair"]], "text pair", name) if columns.get("text_pair") else None
    return texts, pairs, label_names(table.values[columns["label"]], name)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _texts(values: list[Any], role: str, name: str) -> list[str]:
    out = []
    for row, value in enumerate(values, 1):
        if _missing(value):
            raise UserError(f"{name} row {row} has no {role} (null or missing); fill it in or drop the row")
        if isinstance(value, (dict, list, tuple)):
            raise UserError(f"{name} row {row}: the {role} is a {type(value).__name__}, not a string")
        text = value if isinstance(value, str) else str(value)
        if not text.strip():
            raise UserError(f"{name} row {row} has an empty {role}; fill it in or drop the row")
        out.append(text)
    return out


def _label(value: Any) -> tuple[str, str] | str:
    """(kind, class name) of one label, or why it is not one."""
    if isinstance(value, bool):
        return "boolean", str(value)
    if isinstance(value, int):
        return "integer", str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return "integer", str(int(value))
        return f"{value} is not a whole number"
    if isinstance(value, str):
        return ("string", value) if value.strip() else "is empty"
    return f"is a {type(value).__name__}"


def label_names(values: list[Any], name: str) -> list[str]:
    """Class names of a label column by the rule in this module's docstring."""
    names, first_of_kind = [], {}
    for row, value in enumerate(values, 1):
        if _missing(value):
            raise UserError(f"{name} row {row} has no label (null or missing); label every row or drop it")
        got = _label(value)
        if got == "is empty":
            raise UserError(f"{name} row {row} has an empty label; label every row or drop it")
        if isinstance(got, str):
            raise UserError(f"{name} row {row}: the label {got}; class labels are strings, integers or booleans")
        kind, label = got
        first_of_kind.setdefault(kind, row)
        if len(first_of_kind) > 1:
            (k1, r1), (k2, r2) = sorted(first_of_kind.items(), key=lambda item: item[1])[:2]
            raise UserError(f"{name}: the label column mixes kinds ({k1} in row {r1}, {k2} in row {r2}); write every "
                            "label the same way, e.g. all as strings")
        names.append(label)
    return names
