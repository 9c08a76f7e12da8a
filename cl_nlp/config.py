"""The experiment configuration: dataclasses, YAML loading and ``key=value`` overrides.

Precedence, lowest first: dataclass defaults < ``--config FILE.yaml`` < ``--set key=value`` <
dedicated CLI flags (``--strategy``, ``--stream``, ``--model``, ``--seed``). Stream and strategy
sections hold a ``name`` plus that component's own options, which its registered options
dataclass validates (see :mod:`cl_nlp.streams.registry`, :mod:`cl_nlp.strategies.registry`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cl_nlp.errors import UserError, describe_decode_error, describe_os_error, shown, shown_path
from cl_nlp.options import build_options, require

SEED_MAX = 2**32 - 1  # NumPy's legacy seeding, and so every seeded generator of a run, takes 32 bits


@dataclass
class ModelConfig:
    """Which encoder to fine-tune and how its inputs are shaped."""

    name_or_path: str | None = field(default=None, metadata={"help": "local folder or hub id; null = embedded all-MiniLM-L6-v2"})
    max_length: int = field(default=64, metadata={"help": "tokens kept per example (truncation)"})
    pooling: Literal["mean", "cls"] = field(default="mean", metadata={"help": "sentence feature for head and probes"})
    trust_remote_code: bool = field(default=False, metadata={"help": "run model code from the hub; only for models you trust"})

    def __post_init__(self) -> None:
        require(self.max_length >= 8, f"max_length must be >= 8, got {self.max_length}")


@dataclass
class TrainConfig:
    """Optimisation of each task (a fresh AdamW and schedule per task)."""

    epochs: int = field(default=3, metadata={"help": "passes over each task's training split"})
    batch_size: int = field(default=16, metadata={"help": "examples per optimisation step"})
    lr: float = field(default=1e-4, metadata={"help": "peak learning rate of AdamW"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW decoupled weight decay"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of each task's steps with linear warm-up"})
    max_grad_norm: float | None = field(default=1.0, metadata={"help": "gradient clipping; null disables"})
    length_grouping: bool = field(default=True, metadata={"help": "batch similar lengths together (less padding)"})
    device: Literal["auto", "cpu", "cuda"] = field(default="auto", metadata={"help": "auto picks a GPU when present"})
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = field(default="auto", metadata={"help": "auto = bf16 on GPUs that support it, else fp32"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the training forward (meant for GPUs; compiling costs start-up time)"})

    def __post_init__(self) -> None:
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        require(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        require(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm must be > 0 or null")


@dataclass
class EvalConfig:
    """What is measured after each task."""

    batch_size: int = field(default=128, metadata={"help": "examples per inference batch"})
    future_tasks: Literal["next", "all", "none"] = field(
        default="next", metadata={"help": "unseen tasks also evaluated per stage: 'next' is enough for FWT"}
    )
    probes: bool = field(default=True, metadata={"help": "linear probes on the frozen encoder after every task and on the pretrained one"})
    probe_per_class: int = field(default=30, metadata={"help": "training examples per class fitting each probe (a fixed sample of the task's train split)"})
    probe_l2: float | None = field(default=None, metadata={
        "help": "L2 weight of the probes' logistic regression (on standardised features); null = chosen on a "
                "validation split of the probe sample from 1e-3..10"})
    layerwise_probes: bool = field(default=False, metadata={"help": "also probe every hidden layer (one more fit per layer and task)"})
    ncm: bool = field(default=False, metadata={"help": "nearest-class-mean readout: prototypes of each task's probe sample when it is learned, matrix 'ncm'"})

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.probe_per_class >= 1, f"probe_per_class must be >= 1, got {self.probe_per_class}")
        require(self.probe_l2 is None or self.probe_l2 >= 0, f"probe_l2 must be >= 0 or null, got {self.probe_l2}")


@dataclass
class TrackingConfig:
    """Where the run is logged. ``uri: null`` uses MLFLOW_TRACKING_URI or MLflow's default."""

    uri: str | None = field(default=None, metadata={"help": "MLflow tracking URI; null = $MLFLOW_TRACKING_URI or sqlite:///mlflow.db"})
    experiment: str = field(default="cl-nlp", metadata={"help": "MLflow experiment name"})
    enabled: bool = field(default=True, metadata={"help": "false = no MLflow (results still written to the run folder)"})


@dataclass
class SaveConfig:
    """What a finished run keeps in its folder besides its results."""

    keep_checkpoint: bool = field(default=False, metadata={"help": "keep checkpoints/ (resume state, ~90 MB for MiniLM) after the run finished"})
    model: bool = field(default=False, metadata={"help": "write the final model to <run>/model/: a Hugging Face folder plus the head"})


@dataclass
class ComponentConfig:
    """A registered component chosen by ``name`` plus its own options (validated by its registry)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExperimentConfig:
    """Everything one ``cl-nlp run`` needs. ``to_dict()`` is what MLflow logs as params."""

    seed: int = 0
    output: str = "runs"
    run_name: str | None = None
    stream: ComponentConfig = field(default_factory=lambda: ComponentConfig("clinc-cil"))
    strategy: ComponentConfig = field(default_factory=lambda: ComponentConfig("naive"))
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    save: SaveConfig = field(default_factory=SaveConfig)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict in the YAML layout (component options inlined beside ``name``)."""
        out: dict[str, Any] = {"seed": self.seed, "output": self.output, "run_name": self.run_name}
        for key in ("stream", "strategy"):
            comp: ComponentConfig = getattr(self, key)
            out[key] = {"name": comp.name, **comp.options}
        for key in ("model", "train", "eval", "tracking", "save"):
            out[key] = dataclasses.asdict(getattr(self, key))
        return out


_SECTIONS = {"model": ModelConfig, "train": TrainConfig, "eval": EvalConfig, "tracking": TrackingConfig,
             "save": SaveConfig}
_TOP_LEVEL = {"seed": int, "output": str, "run_name": (str, type(None))}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (the form MLflow params take)."""
    flat: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-5"`` → ``(["train", "lr"], 3e-05)``; values are parsed as YAML scalars."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {shown(text)}: expected key=value, e.g. --set train.epochs=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise UserError(f"--set {shown(key.strip(), 60)}=...: the value is nested too deeply") from None
    return key.strip().split("."), value


def read_text_file(path: str | Path, what: str, fix: str) -> str:
    """The UTF-8 text of ``path`` (``what`` names it in messages: "config file"); every way
    the file can be unreadable — missing, a folder, a name too long, not UTF-8 — is a
    :class:`UserError` ending in ``fix`` where the path is wrong."""
    p = Path(path)
    where = f"{what} {shown_path(p)}"
    try:
        if p.is_dir():
            raise UserError(f"{where} is a directory; {fix}")
        if not p.is_file():
            raise UserError(f"{where} does not exist; {fix}")
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(describe_decode_error(exc, where)) from None
    except OSError as exc:
        raise UserError(describe_os_error(exc, f"reading {what}")) from None


def read_yaml(path: str | Path, what: str = "config file",
              fix: str = "pass an existing YAML file to --config") -> dict[str, Any]:
    """Load a YAML mapping with ``yaml.safe_load``; a bad file raises :class:`UserError`."""
    p = Path(path)
    text = read_text_file(p, what, fix)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{what} {shown_path(p)} is not valid YAML{where}: {shown(problem, 100).strip(chr(39))}") from None
    except RecursionError:  # PyYAML composes recursively: a few hundred levels exhaust the stack
        raise UserError(f"{what} {shown_path(p)} is nested too deeply (hundreds of levels); a config needs a few") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{what} {shown_path(p)} must hold a mapping of sections (seed, stream, strategy, ...)")
    return data


def _set_path(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    node = tree
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            if depth == 0 and key in ("stream", "strategy") and isinstance(child, str):
                child = node[key] = {"name": child}  # `strategy: ewc` plus `--set strategy.lambda=10`
            else:  # overriding one key must not hide a section that is not a mapping
                where = ".".join(keys[: depth + 1])
                raise UserError(f"{where}: expected a mapping of options, got {shown(child)}")
        node = child
    node[keys[-1]] = value


def _component(raw: Any, default: str, where: str) -> ComponentConfig:
    if isinstance(raw, str):
        return ComponentConfig(raw)
    if raw is None:
        return ComponentConfig(default)
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a name or a mapping with 'name', got {shown(raw)}")
    options = dict(raw)
    name = options.pop("name", default)
    if not isinstance(name, str):
        raise UserError(f"{where}.name: expected a string, got {shown(name)}")
    return ComponentConfig(name, options)


def build_config(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a nested dict (YAML layout) into an :class:`ExperimentConfig`."""
    unknown = sorted(set(raw) - set(_SECTIONS) - set(_TOP_LEVEL) - {"stream", "strategy"})
    if unknown:
        valid = ", ".join(sorted([*_SECTIONS, *_TOP_LEVEL, "stream", "strategy"]))
        raise UserError(f"unknown config section {shown(unknown[0], 60)}; valid sections are: {valid}")
    cfg = ExperimentConfig()
    for key, tp in _TOP_LEVEL.items():
        if key in raw:
            if not isinstance(raw[key], tp) or isinstance(raw[key], bool):
                raise UserError(f"{key}: expected {getattr(tp, '__name__', 'a string or null')}, got {shown(raw[key])}")
            setattr(cfg, key, raw[key])
    if not 0 <= cfg.seed <= SEED_MAX:
        raise UserError(f"seed must be in [0, {SEED_MAX}], got {shown(cfg.seed, 60)}")
    for key, cls in _SECTIONS.items():
        section = raw.get(key)
        if section is not None and not isinstance(section, dict):
            raise UserError(f"{key}: expected a mapping of options, got {shown(section)}")
        setattr(cfg, key, build_options(cls, section, key))
    cfg.stream = _component(raw.get("stream"), "clinc-cil", "stream")
    cfg.strategy = _component(raw.get("strategy"), "naive", "strategy")
    return cfg


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    **flags: Any,
) -> ExperimentConfig:
    """Defaults < YAML file < ``--set`` overrides < flags (``strategy=``, ``stream=``, ``model=``, ``seed=``).

    Example:
        >>> cfg = load_config(None, ["train.epochs=1"], strategy="naive")
        >>> cfg.train.epochs, cfg.strategy.name
        (1, 'naive')
    """
    raw: dict[str, Any] = read_yaml(path) if path else {}
    for key in ("stream", "strategy"):
        if isinstance(raw.get(key), str):
            raw[key] = {"name": raw[key]}
    for text in overrides:
        keys, value = parse_override(text)
        _set_path(raw, keys, value)
    for key, value in flags.items():
        if value is None:
            continue
        if key in ("strategy", "stream"):
            _set_path(raw, [key, "name"], value)
        elif key == "model":
            _set_path(raw, ["model", "name_or_path"], value)
        else:
            raw[key] = value
    return build_config(raw)
