"""``python -m cl_nlp.cli``: the same command line as ``cl-nlp``."""

from cl_nlp.cli import main

main()
