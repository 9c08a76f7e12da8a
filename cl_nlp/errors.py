"""The one exception type that means "the user gave us something we cannot use".

The CLI turns a :class:`UserError` into a single line on stderr and a non-zero exit; every
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input (config, data, CLI option, model path): the message says what and how to fix it."""
