"""Continual-learning strategies: the :class:`Strategy` hooks, the registry, built-ins."""

from cl_nlp.strategies.base import ForwardOutput, NoOptions, Strategy, StrategyContext, task_loss
from cl_nlp.strategies.registry import (ENTRY_POINT_GROUP, build_strategy, get_strategy_spec, register_strategy,
                                        strategy_names, strategy_options)

# Built-in strategies register themselves on import.
from cl_nlp.strategies import ewc, freeze, joint, lora_merge, naive, o_lora, replay, seq_star  # noqa: E402,F401

__all__ = ["ENTRY_POINT_GROUP", "ForwardOutput", "NoOptions", "Strategy", "StrategyContext", "build_strategy",
           "get_strategy_spec", "register_strategy", "strategy_names", "strategy_options", "task_loss"]
