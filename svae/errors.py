"""The one error type users are meant to see.

A HarnessError's message is a single line that names the problem and the fix; the command-line
entry points print it without a traceback and exit with status 2.
"""


class HarnessError(Exception):
    """Bad input or a missing file that the user can fix."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""
