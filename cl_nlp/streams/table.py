"""Reading the user's local files (csv, tsv, json, jsonl, parquet) into text / label rows."""

from __future__ import annotations

from pathlib import Path

from cl_nlp.errors import UserError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def read_table(path: Path, fmt: str | None, where: str):
    """A pandas DataFrame of ``path`` (format from ``fmt`` or the extension); csv/tsv cells stay strings."""
    import pandas as pd  # a dependency of `datasets`

    if not path.is_file():
        raise UserError(f"{where} file {str(path)!r} does not exist; fix the path "
                        "(relative paths start at the stream file's folder)")
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{where} file {str(path)!r}: unknown format {path.suffix or '(no extension)'!r}; "
                        f"use {', '.join(FORMATS)} files or set format: csv | tsv | json | jsonl | parquet")
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False)
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        if fmt == "json":
            try:
                return pd.read_json(path, dtype=False)
            except ValueError:  # JSON lines saved as .json
                return pd.read_json(path, lines=True, dtype=False)
        return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{where} file {str(path)!r} could not be read as {fmt}: {first}; "
                        "check the file or set format:") from None


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None / NaN -> empty
        return ""
    return str(value)


def table_rows(table, path: Path, columns: dict[str, str | None], where: str
               ) -> tuple[list[str], list[str] | None, list[str]]:
    """(texts, pairs or None, label strings) from ``table`` by the ``columns`` mapping (role -> column)."""
    for role, column in columns.items():
        if column is not None and column not in table.columns:
            have = ", ".join(map(str, table.columns))
            raise UserError(f"{where}: {str(path)!r} has no column {column!r} (columns: {have}); "
                            f"set columns.{role} to the column holding the {role.replace('_', ' ')}")
    texts = [_cell(v) for v in table[columns["text"]].tolist()]
    pairs = [_cell(v) for v in table[columns["text_pair"]].tolist()] if columns.get("text_pair") else None
    labels = [_cell(v) for v in table[columns["label"]].tolist()]
    return texts, pairs, labels
