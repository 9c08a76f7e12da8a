"""Hostile stream files: secrets as tables, folders as files, empty and mixed-type labels, binary text."""

from __future__ import annotations

import json

from tests.hostile.harness import Case, Env, run_args, sets

SHADOW_HASH = "$6$SECRETSALT$Qm9vYmFyYmF6cXV4"
VALID_CSV = "text,label\n" + "".join(f"{w} sentence {i},{c}\n" for i in range(4) for w, c in (("red", "a"), ("blue", "b")))
VALID_JSONL = [{"text": f"{w} sentence {i}", "label": c} for i in range(4) for w, c in (("red", 1), ("blue", 2))]


def stream(e: Env, train: str | bytes, *, train_name: str = "train.csv", test: str | bytes = VALID_CSV,
           test_name: str = "test.csv", task_extra: str = "", yaml_text: str | bytes | None = None) -> list[str]:
    """A one-task custom stream whose train (and test) file hold the given content."""
    folder = e.root / "stream"
    if train_name:
        e.file(f"stream/{train_name}", train)
    e.file(f"stream/{test_name}", test)
    if yaml_text is None:
        yaml_text = (f"name: hostile\nscenario: class-incremental\ntasks:\n  - name: t1\n    train: {train_name}\n"
                     f"    test: {test_name}\n{task_extra}")
    path = e.file("stream/stream.yaml", yaml_text)
    assert path.parent == folder
    return run_args(e, "--stream", "custom", *sets(f"stream.path={path}", "train.epochs=1", "eval.probes=false"), small=False)


def jsonl(rows: list) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def with_row(rows: list, index: int, **change) -> list:
    out = [dict(r) for r in rows]
    out[index].update(change)
    return out


def without(rows: list, index: int, key: str) -> list:
    out = [dict(r) for r in rows]
    del out[index][key]
    return out


def jsonl_stream(e: Env, rows: list, test_rows: list | None = None) -> list[str]:
    return stream(e, jsonl(rows), train_name="train.jsonl", test=jsonl(test_rows or VALID_JSONL), test_name="test.jsonl")


def _dir_as_train(e: Env) -> list[str]:
    (e.root / "stream" / "train.csv").mkdir(parents=True)
    return _stream_with_existing_train(e, "train.csv")


def _stream_with_existing_train(e: Env, name: str) -> list[str]:
    return stream(e, b"", train_name="", yaml_text=(f"tasks:\n  - name: t1\n    train: {name}\n    test: test.csv\n"))


def _stream_yaml_is_dir(e: Env) -> list[str]:
    (e.root / "streams.yaml").mkdir()
    return run_args(e, "--stream", "custom", *sets(f"stream.path={e.root / 'streams.yaml'}"), small=False)


CASES = [
    Case("train file is a password-hash file", lambda e: stream(
        e, f"root:{SHADOW_HASH}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n", train_name="shadow",
        task_extra="    format: csv\n"), "is not a table with columns text, label", absent=(SHADOW_HASH, "SECRETSALT", "root:")),
    Case("train file is a folder", _dir_as_train, "is a directory"),
    Case("train csv header only", lambda e: stream(e, "text,label\n"), "has no rows"),
    Case("train csv zero bytes", lambda e: stream(e, ""), "is empty"),
    Case("csv empty label cell", lambda e: stream(e, VALID_CSV + "green sentence,\n"), "empty label"),
    Case("csv empty text cell", lambda e: stream(e, VALID_CSV + ",a\n"), "empty text"),
    Case("csv whitespace-only text", lambda e: stream(e, VALID_CSV + "   ,a\n"), "empty text"),
    Case("test csv empty label cell", lambda e: stream(e, VALID_CSV, test=VALID_CSV + "green sentence,\n"), "empty label"),
    Case("jsonl null label", lambda e: jsonl_stream(e, with_row(VALID_JSONL, 3, label=None)), "row 4"),
    Case("jsonl missing label", lambda e: jsonl_stream(e, without(VALID_JSONL, 2, "label")), "row 3"),
    Case("jsonl null text", lambda e: jsonl_stream(e, with_row(VALID_JSONL, 0, text=None)), "row 1"),
    Case("jsonl empty text", lambda e: jsonl_stream(e, with_row(VALID_JSONL, 1, text="")), "empty text"),
    Case("jsonl labels 1 and '1'", lambda e: jsonl_stream(e, with_row(VALID_JSONL, 0, label="1")), "mixes"),
    Case("jsonl labels 1 and true", lambda e: jsonl_stream(e, with_row(VALID_JSONL, 0, label=True)), "mixes"),
    Case("jsonl label 1.5", lambda e: jsonl_stream(e, with_row(VALID_JSONL, 0, label=1.5)), "1.5"),
    Case("jsonl label a list", lambda e: jsonl_stream(e, with_row(VALID_JSONL, 0, label=[1, 2])), "label"),
    Case("jsonl text a mapping", lambda e: jsonl_stream(e, with_row(VALID_JSONL, 0, text={"a": 1})), "text"),
    Case("train csv binary", lambda e: stream(e, bytes(range(128, 256)) * 16), "not utf-8 text"),
    Case("train csv latin-1", lambda e: stream(e, ("text,label\n" + "café crème,a\n" * 4 + "thé,b\n" * 4).encode("latin-1")),
         "not utf-8 text"),
    Case("stream yaml binary", lambda e: stream(e, VALID_CSV, yaml_text=bytes(range(256)) * 4), "not utf-8 text"),
    Case("stream yaml 20000-deep", lambda e: stream(e, VALID_CSV, yaml_text="tasks: " + "[" * 20000 + "]" * 20000 + "\n"),
         "nested too deeply"),
    Case("stream yaml is a folder", _stream_yaml_is_dir, "is a directory"),
    Case("stream task is a 100k string", lambda e: stream(e, VALID_CSV, yaml_text="tasks:\n  - " + "t" * 100_000 + "\n"),
         "tasks[0]: expected dict"),
    Case("train file 300-char name", lambda e: stream(e, VALID_CSV, yaml_text="tasks:\n  - name: t1\n    train: "
                                                      + "f" * 300 + ".csv\n    test: test.csv\n"), "too long"),
    Case("10k-char label outside the declared ones", lambda e: stream(
        e, VALID_CSV + "green," + "L" * 10_000 + "\n", task_extra="    labels: [a, b]\n"), "outside the declared labels"),
    Case("parquet file of garbage", lambda e: stream(e, b"PAR1" + b"\x00garbage" * 64 + b"PAR1", train_name="train.parquet"),
         "could not be read as parquet"),
    Case("json file of scalars", lambda e: stream(e, '{"a": 1, "b": 2}', train_name="train.json"), "could not be read as json"),
]
