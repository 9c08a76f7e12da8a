"""Continual-learning strategies: the :class:`Strategy` hooks, the registry, built-ins."""

# Built-in strategies register themselves on import.
from cl_nlp.strategies import (  # noqa: F401  # noqa: F401
                                        agem,
                                        der,
                                        er_ace,
                                        ewc,
                                        freeze,
                                        joint,
                                        lora_merge,
                                        lwf,
                                        mas,
                                        naive,
                                        o_lora,
                                        replay,
                                        seq_star,
)
from cl_nlp.strategies.base import ForwardOutput, NoOptions, Strategy, StrategyContext, task_loss
from cl_nlp.strategies.loading import strategy_label
from cl_nlp.strategies.registry import (
                                        ENTRY_POINT_GROUP,
                                        build_strategy,
                                        get_strategy_spec,
                                        register_strategy,
                                        strategy_names,
                                        strategy_options,
)

__all__ = ["ENTRY_POINT_GROUP", "ForwardOutput", "NoOptions", "Strategy", "StrategyContext", "build_strategy",
           "get_strategy_spec", "register_strategy", "strategy_label", "strategy_names", "strategy_options", "task_loss"]
