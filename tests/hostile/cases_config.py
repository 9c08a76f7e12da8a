"""Hostile configs, flags and names: unreadable YAML, huge or non-finite values, escaping paths."""

from __future__ import annotations

from tests.hostile.harness import Case, Env, run_args, sets


def alias_bomb(levels: int = 6) -> str:
    """A few hundred bytes of YAML whose value expands to 10**levels items (its repr: megabytes)."""
    lines = ["eval:", "  batch_size:", "    l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for k in range(1, levels):
        lines.append(f"    l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def alias_bomb_list(levels: int = 6) -> str:
    """The same expansion as a list given where a name or mapping belongs (``stream:``)."""
    lines = ["stream:", "  - &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"  - &l{k} [" + ", ".join([f"*l{k - 1}"] * 10) + "]" for k in range(1, levels)]
    return "\n".join(lines) + "\n"


def config(e: Env, file: str, content: str | bytes, *extra: str, **kw) -> list[str]:
    return run_args(e, "--config", str(e.file(file, content)), *extra, **kw)


def deep(opening: str, closing: str, depth: int = 20000) -> str:
    return "seed: " + opening * depth + closing * depth + "\n"


SECRET = "PWNED-MARKER"

CASES = [
    Case("yaml binary", lambda e: config(e, "binary.yaml", bytes(range(256)) * 8), "not utf-8 text"),
    Case("yaml latin-1", lambda e: config(e, "latin1.yaml", "# café au lait\nseed: 1\n".encode("latin-1")),
         "not utf-8 text"),
    Case("yaml 20000-deep lists", lambda e: config(e, "deep.yaml", deep("[", "]")), "nested too deeply"),
    Case("yaml 20000-deep mappings", lambda e: config(e, "deepmap.yaml", deep("{a: ", "}")), "nested too deeply"),
    Case("yaml alias bomb as a known field", lambda e: config(e, "bomb.yaml", alias_bomb()), "eval.batch_size: expected int"),
    Case("yaml alias bomb as the stream", lambda e: config(e, "bomb2.yaml", alias_bomb_list()),
         "stream"),
    Case("yaml python tag", lambda e: config(e, "tag.yaml", f"seed: !!python/object/apply:os.system ['touch {e.root}/{SECRET}']\n"),
         "not valid yaml"),
    Case("--set python tag", lambda e: run_args(e, "--set", f"seed=!!python/object/apply:os.system ['touch {e.root}/{SECRET}']"),
         "seed: expected int"),
    Case("--set 100k-char value", lambda e: run_args(e, "--set", "train.epochs=" + "x" * 100_000), "train.epochs: expected int"),
    Case("--set 100k-char key", lambda e: run_args(e, "--set", "k" * 100_000 + "=1"), "unknown config section"),
    Case("--set 5k-char option name", lambda e: run_args(e, "--set", "train." + "k" * 5000 + "=1"), "train: unknown option"),
    Case("--seed 100k digits", lambda e: run_args(e, "--seed", "9" * 100_000), "seed"),
    Case("section given a 100k list", lambda e: config(e, "list.yaml", "model: [" + ", ".join(["1"] * 50_000) + "]\n"),
         "model: expected a mapping"),
    Case("seed -1", lambda e: run_args(e, "--seed", "-1"), "seed must be in [0, 4294967295]"),
    Case("seed 2**32", lambda e: run_args(e, "--seed", str(2**32)), "seed must be in [0, 4294967295]"),
    Case("seed 2**70 in YAML", lambda e: config(e, "bigseed.yaml", f"seed: {2**70}\n"), "seed must be in [0, 4294967295]"),
    Case("train.lr=inf", lambda e: run_args(e, "--set", "train.lr=inf"), "train.lr: expected a finite number"),
    Case("train.lr=.inf", lambda e: run_args(e, "--set", "train.lr=.inf"), "train.lr: expected a finite number"),
    Case("train.lr a 400-digit integer", lambda e: run_args(e, "--set", "train.lr=" + "9" * 400), "expected a finite number"),
    Case("train.lr=.nan", lambda e: run_args(e, "--set", "train.lr=.nan"), "train.lr"),
    Case("eval.probe_l2=inf", lambda e: run_args(e, "--set", "eval.probe_l2=inf"), "eval.probe_l2: expected a finite number"),
    Case("train.weight_decay=inf", lambda e: run_args(e, "--set", "train.weight_decay=inf"), "expected a finite number"),
    Case("train.max_grad_norm=inf", lambda e: run_args(e, "--set", "train.max_grad_norm=inf"), "expected a finite number"),
    Case("train.warmup_ratio=nan", lambda e: run_args(e, "--set", "train.warmup_ratio=nan"), "warmup_ratio"),
    Case("ewc lambda=inf", lambda e: run_args(e, "--strategy", "ewc", *sets("strategy.lambda=inf", "strategy.fisher_samples=8")),
         "lambda: expected a finite number"),
    Case("model.max_length 100000", lambda e: run_args(e, "--set", "model.max_length=100000"),
         "model.max_length=100000 is more than the 128 positions"),
    Case("--run-name ../../x", lambda e: run_args(e, name="../../escaped"), "--run-name"),
    Case("--run-name absolute", lambda e: run_args(e, name=str(e.root / "absolute")), "--run-name"),
    Case("--run-name a/b", lambda e: run_args(e, name="a/b"), "--run-name"),
    Case("--run-name ..", lambda e: run_args(e, name=".."), "--run-name"),
    Case("--run-name .", lambda e: run_args(e, name="."), "--run-name"),
    Case("--run-name empty", lambda e: run_args(e, name=""), "--run-name"),
    Case("--run-name with NUL", lambda e: run_args(e, name="a\x00b"), "--run-name"),
    Case("--run-name 300 chars", lambda e: run_args(e, name="r" * 300), "--run-name"),
    Case("run_name in YAML escapes", lambda e: config(e, "escape.yaml", "run_name: ../../escaped2\n", name=None), "run_name"),
    Case("--output is a file", lambda e: run_args(e, output=str(e.file("a-file", "x"))), "is a file"),
    Case("--output under a file", lambda e: run_args(e, output=str(e.file("b-file", "x")) + "/runs"), "not a folder"),
    Case("--output 300-char name", lambda e: run_args(e, output=str(e.root / ("o" * 300))), "too long"),
    Case("--model 300-char local path", lambda e: run_args(e, model="./" + "m" * 300), "too long"),
    Case("--model 5000-char name", lambda e: run_args(e, model="m" * 5000), "model"),
    Case("--config 300-char path", lambda e: run_args(e, "--config", str(e.root / ("c" * 300 + ".yaml"))), "too long"),
    Case("--tracking-uri 5000 chars", lambda e: run_args(e, "--tracking-uri", "foo://" + "u" * 5000, tracking=True),
         "cannot use mlflow tracking uri"),
]

