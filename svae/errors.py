"""The one error type users are meant to see.

A HarnessError's message is a single line that names the problem and the fix; the command-line
entry points print it without a traceback and exit with status 2.
"""
import difflib


class HarnessError(Exception):
    """Bad input or a missing file that the user can fix."""


def did_you_mean(name, choices) -> str:
    """" (did you mean 'x'?)" for a close match among choices, else ""."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def choose(kind: str, name: str, choices: dict):
    """choices[name]; an unknown name is a HarnessError that lists the known ones."""
    if name not in choices:
        raise HarnessError(f"unknown {kind} {name!r}{did_you_mean(name, choices)}; choose from {', '.join(choices)}")
    return choices[name]


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""
