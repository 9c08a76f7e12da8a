"""Naive sequential fine-tuning: the lower bound every continual-learning table starts from."""

from cl_nlp.strategies.base import NoOptions, Strategy
from cl_nlp.strategies.registry import register_strategy


class Naive(Strategy):
    """Plain sequential fine-tuning, no protection against forgetting (the lower bound)."""


register_strategy("naive", NoOptions, Naive)
