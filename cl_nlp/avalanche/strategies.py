"""Avalanche's supervised strategies under cl-nlp names: ``avalanche:<Name>``.

Each entry names an Avalanche strategy class and an options dataclass whose fields are that
class's own constructor arguments (so Avalanche's documentation applies to ``--set
strategy.<arg>=value``). Registration needs no Avalanche import: the table is plain data, and
:func:`register` (the ``cl_nlp.strategies`` entry point) adds it only when avalanche-lib is
installed. Avalanche itself is imported when a run builds the strategy.

Only strategies that fit a fixed encoder + linear classifier over all classes are listed; those
that need their own architecture (PNN, iCaRL, CWR*, LaMAML, Expert Gate, ...) are not.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from cl_nlp.options import require
from cl_nlp.strategies.base import Strategy
from cl_nlp.strategies.registry import AVALANCHE_PREFIX

PREFIX = AVALANCHE_PREFIX


def _mem(default: int = 200) -> Any:
    return field(default=default, metadata={"help": "examples kept in the replay buffer"})


@dataclass
class NaiveOptions:
    """Naive: plain fine-tuning in Avalanche's loop (the lower bound)."""

    avalanche_class: ClassVar[str] = "avalanche.training.Naive"


@dataclass
class CumulativeOptions:
    """Cumulative: retrain on every experience seen so far (an upper bound)."""

    avalanche_class: ClassVar[str] = "avalanche.training.Cumulative"


@dataclass
class ReplayOptions:
    """Replay: experience-balanced random buffer; each batch adds as many memory examples."""

    avalanche_class: ClassVar[str] = "avalanche.training.Replay"
    mem_size: int = _mem()

    def __post_init__(self) -> None:
        require(self.mem_size >= 1, f"mem_size must be >= 1, got {self.mem_size}")


@dataclass
class GDumbOptions:
    """GDumb: class-balanced buffer; the model is retrained from its initial weights on it."""

    avalanche_class: ClassVar[str] = "avalanche.training.GDumb"
    mem_size: int = _mem()

    def __post_init__(self) -> None:
        require(self.mem_size >= 1, f"mem_size must be >= 1, got {self.mem_size}")


@dataclass
class EWCOptions:
    """EWC: quadratic penalty weighted by a diagonal Fisher of squared mini-batch gradients."""

    avalanche_class: ClassVar[str] = "avalanche.training.EWC"
    ewc_lambda: float = field(default=1000.0, metadata={"help": "penalty weight (Avalanche: lambda * sum F (w - w*)^2, no 1/2)"})
    mode: Literal["separate", "online"] = field(default="separate", metadata={"help": "one penalty per task, or one decayed running Fisher"})
    decay_factor: float | None = field(default=None, metadata={"help": "Fisher decay for mode=online"})
    keep_importance_data: bool = field(default=False, metadata={"help": "online mode: keep every task's Fisher"})

    def __post_init__(self) -> None:
        require(self.ewc_lambda >= 0, f"ewc_lambda must be >= 0, got {self.ewc_lambda}")
        require((self.mode == "online") == (self.decay_factor is not None),
                "decay_factor is required with mode=online and only then")


@dataclass
class LwFOptions:
    """LwF: distill the previous model's softened outputs on current data."""

    avalanche_class: ClassVar[str] = "avalanche.training.LwF"
    alpha: float = field(default=1.0, metadata={"help": "distillation weight"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature"})

    def __post_init__(self) -> None:
        require(self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}")
        require(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")


@dataclass
class SIOptions:
    """SI (Synaptic Intelligence): penalty weighted by each parameter's path-integral importance."""

    avalanche_class: ClassVar[str] = "avalanche.training.SynapticIntelligence"
    si_lambda: float = field(default=1.0, metadata={"help": "penalty weight"})
    eps: float = field(default=1e-7, metadata={"help": "damping of the importance denominator"})

    def __post_init__(self) -> None:
        require(self.si_lambda >= 0, f"si_lambda must be >= 0, got {self.si_lambda}")


@dataclass
class MASOptions:
    """MAS: penalty weighted by the sensitivity of the output norm to each parameter."""

    avalanche_class: ClassVar[str] = "avalanche.training.MAS"
    lambda_reg: float = field(default=1.0, metadata={"help": "penalty weight"})
    alpha: float = field(default=0.5, metadata={"help": "running-average weight of old importances"})

    def __post_init__(self) -> None:
        require(self.lambda_reg >= 0, f"lambda_reg must be >= 0, got {self.lambda_reg}")
        require(0 <= self.alpha <= 1, f"alpha must be in [0, 1], got {self.alpha}")


@dataclass
class AGEMOptions:
    """A-GEM: project the gradient so the loss on a memory sample does not increase."""

    avalanche_class: ClassVar[str] = "avalanche.training.AGEM"
    patterns_per_exp: int = field(default=100, metadata={"help": "examples kept per experience"})
    sample_size: int = field(default=64, metadata={"help": "memory examples per reference gradient"})

    def __post_init__(self) -> None:
        require(self.patterns_per_exp >= 1 and self.sample_size >= 1, "patterns_per_exp and sample_size must be >= 1")


@dataclass
class GEMOptions:
    """GEM: project the gradient (a quadratic program) so no past task's memory loss increases."""

    avalanche_class: ClassVar[str] = "avalanche.training.GEM"
    patterns_per_exp: int = field(default=100, metadata={"help": "examples kept per experience"})
    memory_strength: float = field(default=0.5, metadata={"help": "margin added to the projection"})

    def __post_init__(self) -> None:
        require(self.patterns_per_exp >= 1, f"patterns_per_exp must be >= 1, got {self.patterns_per_exp}")


@dataclass
class DEROptions:
    """DER++: replay with the logits recorded when the example was stored (MSE) plus labels."""

    avalanche_class: ClassVar[str] = "avalanche.training.DER"
    mem_size: int = _mem()
    batch_size_mem: int | None = field(default=None, metadata={"help": "memory examples per batch; null = train batch size"})
    alpha: float = field(default=0.1, metadata={"help": "weight of the logit-matching (MSE) term"})
    beta: float = field(default=0.5, metadata={"help": "weight of the memory cross-entropy term"})

    def __post_init__(self) -> None:
        require(self.mem_size >= 1, f"mem_size must be >= 1, got {self.mem_size}")


@dataclass
class ER_ACEOptions:  # noqa: N801 (named after the strategy)
    """ER-ACE: replay with an asymmetric cross-entropy on the current batch's classes."""

    avalanche_class: ClassVar[str] = "avalanche.training.ER_ACE"
    mem_size: int = _mem()
    batch_size_mem: int = field(default=10, metadata={"help": "memory examples per batch"})

    def __post_init__(self) -> None:
        require(self.mem_size >= 1 and self.batch_size_mem >= 1, "mem_size and batch_size_mem must be >= 1")


@dataclass
class MIROptions:
    """MIR: replay the memory examples whose loss a virtual update would raise most."""

    avalanche_class: ClassVar[str] = "avalanche.training.MIR"
    mem_size: int = _mem()
    subsample: int = field(default=50, metadata={"help": "memory candidates scored per batch"})
    batch_size_mem: int = field(default=10, metadata={"help": "memory examples per batch"})

    def __post_init__(self) -> None:
        require(self.mem_size >= 1 and self.subsample >= 1 and self.batch_size_mem >= 1,
                "mem_size, subsample and batch_size_mem must be >= 1")


AVALANCHE_STRATEGIES: dict[str, type] = {
    "Naive": NaiveOptions, "Cumulative": CumulativeOptions, "Replay": ReplayOptions, "GDumb": GDumbOptions,
    "EWC": EWCOptions, "LwF": LwFOptions, "SI": SIOptions, "MAS": MASOptions, "AGEM": AGEMOptions,
    "GEM": GEMOptions, "DER": DEROptions, "ER_ACE": ER_ACEOptions, "MIR": MIROptions,
}


class AvalancheStrategy(Strategy):
    """An Avalanche strategy: cl-nlp's hooks stay no-ops; its own loop runs in :class:`AvalancheTrainer`."""

    @property
    def trainer_cls(self) -> type:
        """The trainer that runs this strategy (read by :func:`cl_nlp.experiment.run_experiment`)."""
        from cl_nlp.avalanche.trainer import AvalancheTrainer

        return AvalancheTrainer

    def avalanche_class(self) -> type:
        module, _, name = type(self.options).avalanche_class.rpartition(".")
        return getattr(importlib.import_module(module), name)


def avalanche_available() -> bool:
    """Whether avalanche-lib is importable (checked without importing it: that takes seconds)."""
    return importlib.util.find_spec("avalanche") is not None


def register() -> None:
    """Entry point of ``cl_nlp.strategies``: registers ``avalanche:<Name>`` when the extra is installed."""
    from cl_nlp.strategies.registry import register_strategy, strategy_names

    if not avalanche_available():
        return
    known = set(strategy_names())
    for name, options_cls in AVALANCHE_STRATEGIES.items():
        if PREFIX + name not in known:
            register_strategy(PREFIX + name, options_cls, AvalancheStrategy,
                              f"{_summary(options_cls)} (Avalanche's {name})")


def _summary(options_cls: type) -> str:
    """``"EWC: quadratic penalty ..."`` -> ``"Quadratic penalty ..."``, for `cl-nlp strategies`."""
    text = options_cls.__doc__.split(":", 1)[1].strip().rstrip(".")
    return text[0].upper() + text[1:]


__all__ = ["AVALANCHE_STRATEGIES", "AvalancheStrategy", "PREFIX", "avalanche_available", "register"]
