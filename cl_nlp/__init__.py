"""cl-nlp: continual learning for NLP, with evaluators that tell forgotten knowledge from
knowledge that is only unreachable through a drifted classifier."""

__version__ = "0.1.0"
