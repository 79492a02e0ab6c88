"""The one error type users are meant to see.

A HarnessError's message is a single line that names the problem and the fix; the command-line
entry points print it without a traceback and exit with status 2.
"""


class HarnessError(Exception):
    """Bad input or a missing file that the user can fix."""


def choose(kind: str, name: str, choices: dict):
    """choices[name]; an unknown name is a HarnessError that lists the known ones."""
    if name not in choices:
        raise HarnessError(f"unknown {kind} {name!r}; choose from {', '.join(choices)}")
    return choices[name]


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""
